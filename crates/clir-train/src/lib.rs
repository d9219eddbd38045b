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
//!
//! A tiny OPTICAL run, end to end (real runs name `e5-small` / `minilm` as teacher and
//! student, or use `cargo xtask train`): a random two-layer model teaches a copy of itself on
//! four made-up pairs; the run folder holds `config.toml`, `log.jsonl` and `student/`, and a
//! second call reads the finished run back instead of training again.
//!
//! ```
//! use clir_data::formats::BitextPair;
//! use clir_models::{Embedder, EmbedderConfig, EncoderConfig, Pooling, TextTokenizer};
//! use clir_train::config::{Method, TrainConfig};
//! use clir_train::trainer::{TrainInputs, train};
//! use ot_core::backend::Backend;
//!
//! let dir = tempfile::tempdir()?;
//! let words = ["water", "king", "house", "maji", "mfalme", "nyumba"];
//! let tok = clir_models::tokenizer::write_word_level_tokenizer(dir.path(), &words)?;
//! let device = Backend::cpu_default().device()?;
//! let encoder = EncoderConfig::new(10, 16, 2, 2, 32, 32);
//! let model = Embedder {
//!     config: EmbedderConfig {
//!         name: "tiny".into(),
//!         encoder: encoder.clone(),
//!         pooling: Pooling::Mean,
//!         normalize: true,
//!         query_prefix: String::new(),
//!         passage_prefix: String::new(),
//!         max_len: 16,
//!         base: None,
//!     },
//!     encoder: encoder.init(&device),
//!     tokenizer: TextTokenizer::from_file(&tok, 16)?,
//!     device: device.clone(),
//! };
//! model.save(&dir.path().join("tiny"))?;
//!
//! let mut cfg = TrainConfig::new();
//! cfg.model.teacher = dir.path().join("tiny").display().to_string();
//! cfg.model.student = cfg.model.teacher.clone();
//! cfg.model.max_len = 16;
//! cfg.model.trim_vocab = false;
//! cfg.loss.method = Method::Optical;
//! cfg.optim.steps = 3;
//! cfg.optim.warmup_steps = 1;
//! cfg.optim.batch_size = 2;
//! cfg.run.progress = false;
//! let pair = |src: &str, tgt: &str| BitextPair { src: src.into(), tgt: tgt.into() };
//! let pairs = vec![
//!     pair("water", "maji"),
//!     pair("king", "mfalme"),
//!     pair("house", "nyumba"),
//!     pair("king house", "nyumba mfalme"),
//! ];
//! let inputs = TrainInputs { pairs, ..Default::default() };
//! let run = dir.path().join("run");
//! let outcome = train(&cfg, &inputs, &run, &device)?;
//! assert_eq!((outcome.steps_done, outcome.log.len()), (3, 3));
//! assert!(outcome.log.iter().all(|s| s.loss.is_finite() && s.ot_iterations > 0));
//! assert!(run.join("student").is_dir() && run.join("log.jsonl").is_file());
//! let again = train(&cfg, &inputs, &run, &device)?; // finished: read back, not retrained
//! assert_eq!((again.resumed_from, again.log), (Some(3), outcome.log)); // bit for bit
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
