//! Random models of a given shape and made-up text for them, so that training and encoding
//! can be timed on the real code path without any download (`cargo xtask bench train
//! --synthetic`).
//!
//! A synthetic model is an [`Encoder`] of the requested shape with burn's random
//! initialisation (seeded), mean pooling and L2 normalisation like e5, **no** query/passage
//! prefixes (so that a sentence of `n` words is exactly `n + 2` tokens), and a word-level
//! tokenizer over `[PAD] [UNK] [CLS] [SEP]` (ids 0–3) and the words `w4 … w{V−1}` (word `wᵢ`
//! is id `i`), split on whitespace and wrapped as `[CLS] … [SEP]`.
//!
//! Synthetic sentences draw words uniformly from that vocabulary and their lengths from
//! [`LengthHistogram::bible`]: the token lengths (e5 tokenizer, specials included, no prefix)
//! of the English ↔ Swahili Old Testament bitext the real benchmark trains on, committed as
//! numbers only in `synthetic_lengths.tsv`.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use clir_data::formats::BitextPair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::embedder::{Embedder, EmbedderConfig};
use crate::encoder::EncoderConfig;
use crate::error::{ModelError, Result};
use crate::pooling::Pooling;
use crate::tokenizer::{TextTokenizer, write_word_level_tokenizer};

/// Special tokens before the first word (`[PAD] [UNK] [CLS] [SEP]`).
pub const SPECIALS: usize = 4;

/// The committed length histogram (`side  length  count` rows).
pub const LENGTHS_TSV: &str = include_str!("synthetic_lengths.tsv");

/// multilingual-e5-small's full vocabulary (rows of its word-embedding table).
pub const E5_SMALL_VOCAB: usize = 250_002;

/// Shape of a synthetic model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    pub layers: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub heads: usize,
    /// Position-table rows = the longest input in tokens.
    pub max_position: usize,
    /// Vocabulary size `V` including the 4 specials (words `w4 … w{V−1}`).
    pub vocab_size: usize,
}

impl Default for SyntheticSpec {
    /// multilingual-e5-small's shape: 12 layers, width 384, FFN 1536, 12 heads, 512
    /// positions, 250,002 tokens.
    fn default() -> Self {
        SyntheticSpec {
            layers: 12,
            hidden: 384,
            ffn: 1536,
            heads: 12,
            max_position: 512,
            vocab_size: E5_SMALL_VOCAB,
        }
    }
}

impl SyntheticSpec {
    /// The encoder configuration of this shape (XLM-R's LayerNorm ε, no position offset).
    pub fn encoder_config(&self) -> EncoderConfig {
        EncoderConfig::new(
            self.vocab_size,
            self.hidden,
            self.layers,
            self.heads,
            self.ffn,
            self.max_position,
        )
        .with_layer_norm_eps(1e-5)
    }

    /// A name saying the shape (never containing `e5`, which would ask for e5's prefixes).
    pub fn name(&self) -> String {
        format!(
            "synthetic-L{}-H{}-F{}-A{}-V{}",
            self.layers, self.hidden, self.ffn, self.heads, self.vocab_size
        )
    }
}

/// Word `i` of the synthetic vocabulary (`i ≥ 4`).
pub fn word(i: usize) -> String {
    format!("w{i}")
}

/// A random model of shape `spec` (weights drawn after seeding `device` with `seed`) with the
/// synthetic word-level tokenizer; mean pooling, L2-normalised, no prefixes.
pub fn synthetic_embedder(spec: SyntheticSpec, seed: u64, device: &Device) -> Result<Embedder> {
    if spec.vocab_size <= SPECIALS {
        return Err(ModelError::Invalid(format!(
            "a synthetic vocabulary needs more than {SPECIALS} tokens, not {}",
            spec.vocab_size
        )));
    }
    let encoder = spec.encoder_config();
    encoder.validate().map_err(ModelError::Invalid)?;
    let tokenizer = synthetic_tokenizer(spec.vocab_size, spec.max_position)?;
    device.seed(seed);
    Ok(Embedder {
        config: EmbedderConfig {
            name: spec.name(),
            encoder: encoder.clone(),
            pooling: Pooling::Mean,
            normalize: true,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            max_len: spec.max_position,
            base: None,
        },
        encoder: encoder.init(device),
        tokenizer,
        device: device.clone(),
    })
}

/// The word-level tokenizer over `vocab_size` ids, read from a temporary `tokenizer.json`
/// (the tokenizer keeps the file's bytes; the file is removed).
fn synthetic_tokenizer(vocab_size: usize, max_len: usize) -> Result<TextTokenizer> {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("optical-synthetic-{}-{n}", std::process::id()));
    let words: Vec<String> = (SPECIALS..vocab_size).map(word).collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let result = write_word_level_tokenizer(&dir, &refs)
        .and_then(|path| TextTokenizer::from_file(&path, max_len));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Token lengths (specials included) of the two sides of a bitext, as `(length, count)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LengthHistogram {
    /// The translation the student reads (e5 tokens of the target language).
    pub target: Vec<(usize, u64)>,
    /// The English side the teacher reads.
    pub english: Vec<(usize, u64)>,
}

impl LengthHistogram {
    /// The committed Bible histogram ([`LENGTHS_TSV`]).
    pub fn bible() -> Self {
        Self::parse(LENGTHS_TSV).expect("the committed histogram parses")
    }

    /// Reads `side<TAB>length<TAB>count` rows (`#` comments and blank lines skipped, side
    /// `target` or `english`, length ≥ 3, count ≥ 1).
    pub fn parse(text: &str) -> Result<Self> {
        let mut h = LengthHistogram {
            target: Vec::new(),
            english: Vec::new(),
        };
        let origin = Path::new("synthetic_lengths.tsv");
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |m: &str| ModelError::format(origin, format!("line {}: {m}", i + 1));
            let f: Vec<&str> = line.split('\t').collect();
            let [side, len, count] = f[..] else {
                return Err(bad("expected side, length and count"));
            };
            let len: usize = len.parse().map_err(|_| bad("length is not a number"))?;
            let count: u64 = count.parse().map_err(|_| bad("count is not a number"))?;
            if len < 3 || count == 0 {
                return Err(bad("length must be ≥ 3 and count ≥ 1"));
            }
            match side {
                "target" => h.target.push((len, count)),
                "english" => h.english.push((len, count)),
                _ => return Err(bad("side must be target or english")),
            }
        }
        if h.target.is_empty() || h.english.is_empty() {
            return Err(ModelError::format(origin, "a side has no rows"));
        }
        Ok(h)
    }
}

/// A length drawn from `(length, count)` rows with probability ∝ count.
pub fn draw_length(rows: &[(usize, u64)], rng: &mut impl Rng) -> usize {
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let mut x = rng.random_range(0..total);
    for &(len, count) in rows {
        if x < count {
            return len;
        }
        x -= count;
    }
    rows.last().map_or(3, |r| r.0)
}

/// A sentence of `tokens − 2` words drawn uniformly from the vocabulary (`tokens` ≥ 3, specials
/// included).
pub fn sentence(tokens: usize, vocab_size: usize, rng: &mut impl Rng) -> String {
    (0..tokens.saturating_sub(2).max(1))
        .map(|_| word(rng.random_range(SPECIALS..vocab_size)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `n` made-up sentence pairs (English first) for a synthetic model of `vocab_size` tokens,
/// each side's length drawn from its histogram row (seeded).
pub fn synthetic_bitext(
    n: usize,
    lengths: &LengthHistogram,
    vocab_size: usize,
    seed: u64,
) -> Vec<BitextPair> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (en, tgt) = (
                draw_length(&lengths.english, &mut rng),
                draw_length(&lengths.target, &mut rng),
            );
            BitextPair {
                src: sentence(en, vocab_size, &mut rng),
                tgt: sentence(tgt, vocab_size, &mut rng),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TextKind;

    fn tiny() -> SyntheticSpec {
        SyntheticSpec {
            layers: 2,
            hidden: 32,
            ffn: 64,
            heads: 2,
            max_position: 64,
            vocab_size: 200,
        }
    }

    #[test]
    fn the_default_shape_is_e5_small() {
        let s = SyntheticSpec::default();
        assert_eq!(
            (
                s.layers,
                s.hidden,
                s.ffn,
                s.heads,
                s.max_position,
                s.vocab_size
            ),
            (12, 384, 1536, 12, 512, 250_002)
        );
        assert!(!s.name().to_lowercase().contains("e5"));
    }

    #[test]
    fn a_synthetic_model_has_its_shape_and_n_words_are_n_plus_2_tokens() {
        let device = ot_core::backend::Backend::cpu_default().device().unwrap();
        let spec = tiny();
        let m = synthetic_embedder(spec, 7, &device).unwrap();
        assert_eq!(m.encoder.num_layers(), 2);
        assert_eq!(m.config.encoder.vocab_size, 200);
        assert_eq!(m.config.encoder.intermediate_size, 64);
        assert_eq!(m.config.encoder.num_heads, 2);
        assert_eq!(m.tokenizer.vocab_size(), 200);
        assert_eq!(m.encoder.embeddings.word.weight.dims(), [200, 32]);
        let ids = m.tokenizer.encode("w4 w199 w17").unwrap();
        assert_eq!(ids, [2, 4, 199, 17, 3]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in [1, 5, 30] {
            let s = sentence(n + 2, 200, &mut rng);
            assert_eq!(s.split(' ').count(), n);
            assert_eq!(m.tokenizer.encode(&s).unwrap().len(), n + 2, "{s}");
        }
        let v = m.embed(&["w5 w6", "w7"], TextKind::Passage, 8).unwrap();
        assert_eq!((v.len(), v[0].len()), (2, 32));
        // The same seed gives the same weights.
        let again = synthetic_embedder(spec, 7, &device).unwrap();
        assert_eq!(
            again.embed(&["w5 w6"], TextKind::Query, 8).unwrap()[0],
            v[0]
        );
    }

    #[test]
    fn the_committed_histogram_parses_with_positive_counts() {
        let h = LengthHistogram::bible();
        for rows in [&h.target, &h.english] {
            assert!(rows.len() > 10);
            assert!(
                rows.iter()
                    .all(|&(len, c)| c > 0 && (3..=512).contains(&len))
            );
        }
        let pairs = synthetic_bitext(50, &h, 1000, 3);
        assert_eq!(pairs.len(), 50);
        assert_eq!(pairs, synthetic_bitext(50, &h, 1000, 3));
        assert!(LengthHistogram::parse("target\t2\t1\nenglish\t5\t1").is_err());
        assert!(LengthHistogram::parse("target\t5\t0\nenglish\t5\t1").is_err());
    }
}
