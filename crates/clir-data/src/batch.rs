//! Tokenization and batching: a `tokenizer.json` (Hugging Face `tokenizers`), truncation to a
//! maximum length (special tokens kept), optional text prefixes (e5 uses `"query: "` and
//! `"passage: "`), length-bucketed batches in a deterministic order from a seed, and padding
//! into plain row-major `Vec<u32>` ids and attention masks that a model crate turns into tensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{DataError, Result};

/// e5's query prefix.
pub const E5_QUERY_PREFIX: &str = "query: ";
/// e5's passage prefix.
pub const E5_PASSAGE_PREFIX: &str = "passage: ";

/// A tokenizer with a maximum sequence length and a padding id.
pub struct TextTokenizer {
    tok: Tokenizer,
    max_len: usize,
    pad_id: u32,
    source: PathBuf,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; sequences are truncated to `max_len` tokens (special tokens
    /// included). The padding id comes from the file's padding settings, else the `<pad>` or
    /// `[PAD]` token.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        let tok = Tokenizer::from_file(path).map_err(|e| DataError::Tokenizer {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        Self::new(tok, max_len, path)
    }

    /// Wraps a tokenizer; `source` names it in errors.
    pub fn new(mut tok: Tokenizer, max_len: usize, source: &Path) -> Result<Self> {
        let err = |msg: String| DataError::Tokenizer {
            path: source.to_path_buf(),
            msg,
        };
        if max_len < 3 {
            return Err(err(format!("max length {max_len} is too small")));
        }
        let pad_id = tok
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| tok.token_to_id("<pad>"))
            .or_else(|| tok.token_to_id("[PAD]"))
            .ok_or_else(|| {
                err("no padding token (<pad> or [PAD]) and no padding settings".into())
            })?;
        tok.with_padding(None);
        tok.with_truncation(Some(TruncationParams {
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| err(e.to_string()))?;
        Ok(TextTokenizer {
            tok,
            max_len,
            pad_id,
            source: source.to_path_buf(),
        })
    }

    /// The maximum sequence length.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The padding id.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Vocabulary size (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.tok.get_vocab_size(true)
    }

    /// The wrapped tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tok
    }

    /// Token ids of each text with `prefix` prepended, special tokens added, truncated.
    pub fn encode(&self, texts: &[&str], prefix: Option<&str>) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| format!("{}{t}", prefix.unwrap_or("")))
            .collect();
        let enc = self
            .tok
            .encode_batch(inputs, true)
            .map_err(|e| DataError::Tokenizer {
                path: self.source.clone(),
                msg: e.to_string(),
            })?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }
}

/// Padded sequences: `rows × seq_len` ids and mask (1 = token, 0 = padding), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Attention mask.
    pub mask: Vec<u32>,
    /// Number of sequences.
    pub rows: usize,
    /// Padded length.
    pub seq_len: usize,
    /// Position of each row in the original example list.
    pub indices: Vec<usize>,
}

/// Pads the sequences `indices` of `seqs` to the longest of them (or to `pad_to` if longer).
pub fn pad_batch(
    seqs: &[Vec<u32>],
    indices: &[usize],
    pad_id: u32,
    pad_to: Option<usize>,
) -> Batch {
    let longest = indices.iter().map(|&i| seqs[i].len()).max().unwrap_or(0);
    let seq_len = longest.max(pad_to.unwrap_or(0));
    let rows = indices.len();
    let mut ids = vec![pad_id; rows * seq_len];
    let mut mask = vec![0u32; rows * seq_len];
    for (r, &i) in indices.iter().enumerate() {
        let s = &seqs[i];
        ids[r * seq_len..r * seq_len + s.len()].copy_from_slice(s);
        mask[r * seq_len..r * seq_len + s.len()].fill(1);
    }
    Batch {
        ids,
        mask,
        rows,
        seq_len,
        indices: indices.to_vec(),
    }
}

/// Groups example indices into batches of similar length.
///
/// Without shuffling, examples are sorted by length (ties by index) and cut into consecutive
/// batches. With shuffling, the order is drawn from `seed`: examples are shuffled, sorted by
/// length within pools of `pool_batches` batches, cut into batches, and the batch order is
/// shuffled. Every index appears exactly once; the same seed gives the same batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucketing {
    /// Examples per batch (the last batch may be smaller).
    pub batch_size: usize,
    /// Shuffle (from `seed`) or keep a length-sorted order.
    pub shuffle: bool,
    /// Seed of the shuffles.
    pub seed: u64,
    /// Batches per sorting pool when shuffling (larger = tighter buckets, less randomness).
    pub pool_batches: usize,
}

impl Bucketing {
    /// Length-sorted, unshuffled batches (for encoding a corpus).
    pub fn sorted(batch_size: usize) -> Self {
        Bucketing {
            batch_size,
            shuffle: false,
            seed: 0,
            pool_batches: 50,
        }
    }

    /// Shuffled batches from `seed` (for training).
    pub fn shuffled(batch_size: usize, seed: u64) -> Self {
        Bucketing {
            batch_size,
            shuffle: true,
            seed,
            pool_batches: 50,
        }
    }

    /// The batches of one epoch (`epoch` varies the shuffle).
    pub fn batches(&self, lengths: &[usize], epoch: u64) -> Vec<Vec<usize>> {
        let bs = self.batch_size.max(1);
        let mut idx: Vec<usize> = (0..lengths.len()).collect();
        if !self.shuffle {
            idx.sort_by_key(|&i| (lengths[i], i));
            return idx.chunks(bs).map(<[usize]>::to_vec).collect();
        }
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        idx.shuffle(&mut rng);
        let pool = bs * self.pool_batches.max(1);
        let mut batches: Vec<Vec<usize>> = Vec::with_capacity(lengths.len().div_ceil(bs));
        for chunk in idx.chunks_mut(pool) {
            chunk.sort_by_key(|&i| lengths[i]);
            batches.extend(chunk.chunks(bs).map(<[usize]>::to_vec));
        }
        batches.shuffle(&mut rng);
        batches
    }
}

/// A batch of sentence pairs (same rows on both sides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairBatch {
    /// Source side.
    pub src: Batch,
    /// Target side.
    pub tgt: Batch,
}

/// Tokenized bitext ready to batch.
pub struct EncodedPairs {
    /// Source token ids per pair.
    pub src: Vec<Vec<u32>>,
    /// Target token ids per pair.
    pub tgt: Vec<Vec<u32>>,
    /// Padding id.
    pub pad_id: u32,
}

impl EncodedPairs {
    /// Tokenizes both sides (with optional prefixes, e.g. e5's `"passage: "` on both).
    pub fn new(
        tok: &TextTokenizer,
        pairs: &[crate::formats::BitextPair],
        prefix: Option<&str>,
    ) -> Result<Self> {
        let src: Vec<&str> = pairs.iter().map(|p| p.src.as_str()).collect();
        let tgt: Vec<&str> = pairs.iter().map(|p| p.tgt.as_str()).collect();
        Ok(EncodedPairs {
            src: tok.encode(&src, prefix)?,
            tgt: tok.encode(&tgt, prefix)?,
            pad_id: tok.pad_id(),
        })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    /// The batches of one epoch, bucketed by the longer side of each pair.
    pub fn batches(&self, bucketing: &Bucketing, epoch: u64) -> Vec<PairBatch> {
        let lengths: Vec<usize> = self
            .src
            .iter()
            .zip(&self.tgt)
            .map(|(a, b)| a.len().max(b.len()))
            .collect();
        bucketing
            .batches(&lengths, epoch)
            .iter()
            .map(|ix| PairBatch {
                src: pad_batch(&self.src, ix, self.pad_id, None),
                tgt: pad_batch(&self.tgt, ix, self.pad_id, None),
            })
            .collect()
    }
}

/// Tokenizes `texts` (with an optional prefix) and returns length-sorted padded batches; each
/// batch's `indices` say which texts its rows are.
pub fn encode_sorted(
    tok: &TextTokenizer,
    texts: &[&str],
    prefix: Option<&str>,
    batch_size: usize,
) -> Result<Vec<Batch>> {
    let seqs = tok.encode(texts, prefix)?;
    let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
    Ok(Bucketing::sorted(batch_size)
        .batches(&lengths, 0)
        .iter()
        .map(|ix| pad_batch(&seqs, ix, tok.pad_id(), None))
        .collect())
}

/// Builds a small word-level tokenizer (whitespace split, `<s> … </s>`), for tests and examples.
pub fn word_level_tokenizer(words: &[&str]) -> Result<Tokenizer> {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    use tokenizers::processors::template::TemplateProcessing;
    let mut vocab: HashMap<String, u32> = HashMap::new();
    for (i, w) in ["<pad>", "<s>", "</s>", "<unk>"]
        .iter()
        .chain(words)
        .enumerate()
    {
        vocab.entry(w.to_string()).or_insert(i as u32);
    }
    let err = |e: String| DataError::Tokenizer {
        path: PathBuf::from("<word-level>"),
        msg: e,
    };
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<unk>".into())
        .build()
        .map_err(|e| err(e.to_string()))?;
    let post = TemplateProcessing::builder()
        .try_single("<s> $A </s>")
        .map_err(err)?
        .special_tokens(vec![("<s>", 1), ("</s>", 2)])
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    tok.with_post_processor(Some(post));
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::BitextPair;
    use proptest::prelude::*;

    fn tok(max_len: usize) -> TextTokenizer {
        let t = word_level_tokenizer(&["query", ":", "passage", "a", "b", "c", "d"]).unwrap();
        // Through a file, as in real use.
        let p = std::env::temp_dir().join(format!(
            "clir-data-tok-{}-{max_len}.json",
            std::process::id()
        ));
        t.save(&p, false).unwrap();
        let t = TextTokenizer::from_file(&p, max_len).unwrap();
        let _ = std::fs::remove_file(&p);
        t
    }

    #[test]
    fn encodes_with_prefix_and_truncates_keeping_specials() {
        let t = tok(5);
        assert_eq!(t.pad_id(), 0);
        let e = t
            .encode(&["a b", "a b c d a b", "zzz"], Some(E5_QUERY_PREFIX))
            .unwrap();
        // <s> query : a b </s> → 7 tokens, truncated to 5 with </s> kept.
        assert_eq!(e[0], [1, 4, 5, 7, 2]);
        assert_eq!(e[1].len(), 5);
        assert_eq!(*e[1].last().unwrap(), 2);
        assert_eq!(e[2], [1, 4, 5, 3, 2]);
        let e = tok(16).encode(&["a b"], None).unwrap();
        assert_eq!(e[0], [1, 7, 8, 2]);
        assert!(TextTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"), 8).is_err());
    }

    #[test]
    fn pads_row_major() {
        let seqs = vec![vec![1, 5, 2], vec![1, 2], vec![1, 6, 7, 2]];
        let b = pad_batch(&seqs, &[1, 0], 9, None);
        assert_eq!((b.rows, b.seq_len), (2, 3));
        assert_eq!(b.ids, [1, 2, 9, 1, 5, 2]);
        assert_eq!(b.mask, [1, 1, 0, 1, 1, 1]);
        assert_eq!(pad_batch(&seqs, &[2], 0, Some(6)).seq_len, 6);
    }

    #[test]
    fn pair_batches_share_rows() {
        let t = tok(8);
        let pairs: Vec<BitextPair> = ["a", "a b", "a b c", "d"]
            .iter()
            .map(|s| BitextPair {
                src: s.to_string(),
                tgt: format!("{s} d"),
            })
            .collect();
        let enc = EncodedPairs::new(&t, &pairs, None).unwrap();
        let batches = enc.batches(&Bucketing::shuffled(2, 7), 0);
        assert_eq!(batches.len(), 2);
        for b in &batches {
            assert_eq!(b.src.indices, b.tgt.indices);
            assert_eq!(b.src.rows, 2);
        }
        assert_eq!(batches, enc.batches(&Bucketing::shuffled(2, 7), 0));
        let sorted = encode_sorted(&t, &["a b c", "a", "a b"], Some("passage: "), 2).unwrap();
        assert_eq!(sorted[0].indices, [1, 2]);
        assert_eq!(sorted[1].indices, [0]);
    }

    proptest! {
        #[test]
        fn bucketing_is_a_deterministic_partition(
            lengths in proptest::collection::vec(1usize..64, 0..300),
            bs in 1usize..17,
            seed in any::<u64>(),
            shuffle in any::<bool>(),
            epoch in 0u64..3,
        ) {
            let b = Bucketing { batch_size: bs, shuffle, seed, pool_batches: 4 };
            let batches = b.batches(&lengths, epoch);
            prop_assert_eq!(&batches, &b.batches(&lengths, epoch));
            let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
            all.sort();
            prop_assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
            prop_assert!(batches.iter().all(|x| !x.is_empty() && x.len() <= bs));
            prop_assert_eq!(batches.iter().filter(|x| x.len() < bs).count(), usize::from(lengths.len() % bs != 0));
            // Pools hold whole batches, so only the very last batch can be short.
        }
    }

    #[test]
    fn shuffling_depends_on_seed_and_epoch_and_buckets_lengths() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 100 + 1).collect();
        let b = Bucketing::shuffled(10, 1);
        let e0 = b.batches(&lengths, 0);
        assert_ne!(e0, b.batches(&lengths, 1));
        assert_ne!(e0, Bucketing::shuffled(10, 2).batches(&lengths, 0));
        // Bucketing keeps each batch's lengths close: far less spread than random batches.
        let spread = |bs: &[Vec<usize>]| -> usize {
            bs.iter()
                .map(|x| {
                    x.iter().map(|&i| lengths[i]).max().unwrap()
                        - x.iter().map(|&i| lengths[i]).min().unwrap()
                })
                .sum()
        };
        let random: Vec<Vec<usize>> = (0..1000)
            .collect::<Vec<_>>()
            .chunks(10)
            .map(<[usize]>::to_vec)
            .collect();
        assert!(
            spread(&e0) * 5 < spread(&random),
            "{} vs {}",
            spread(&e0),
            spread(&random)
        );
    }
}
