//! # clir-train
//!
//! Teacher/student distillation for cross-lingual retrieval: OPTICAL's optimal-transport
//! token alignment and the baselines it is compared with (sentence-level MSE, in-batch KL,
//! the joint monolingual + cross-lingual objective).
//!
//! * [`losses`]: the objectives on burn tensors.
//! * [`config`]: every hyperparameter of a run, as TOML.
//! * [`bitext`]: Bible or user-supplied bitext, cut to a seeded budget.
//! * [`monolingual`]: English relevance data of the joint objective (Nave OT subtopics).
//! * [`prefix_cache`]: the student's frozen-prefix states, computed once per sentence.
//! * [`teacher`]: the frozen teacher's token states, cached on disk and shared across runs.
//! * [`trainer`]: the resumable training loop (AdamW, warm-up/decay, clipping, freezing,
//!   checkpoints, snapshots, JSONL log, progress), one job per file: the student, each
//!   method's step loss, the batch order, the run directory.
//! * [`atomic`]: atomic file writes and directory fsyncs (imports nothing else of the crate).
//! * [`store`]: per-text arrays on disk (teacher states, frozen-prefix states), read on demand.
//! * [`retrieval`]: evaluating a teacher/student pair on a CLIR collection.

pub mod atomic;
pub mod bitext;
pub mod config;
pub mod error;
pub mod losses;
pub mod monolingual;
pub mod prefix_cache;
pub mod retrieval;
pub mod store;
pub mod teacher;
pub mod trainer;

pub use config::{Method, TrainConfig};
pub use error::{Result, TrainError};
pub use trainer::{TrainInputs, TrainOutcome, train};
