//! # clir-train
//!
//! Teacher/student distillation for cross-lingual retrieval: OPTICAL's optimal-transport
//! token alignment and the baselines it is compared with (sentence-level MSE, in-batch KL,
//! the joint monolingual + cross-lingual objective).

pub mod losses;
