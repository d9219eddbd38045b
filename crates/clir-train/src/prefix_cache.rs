//! The student's frozen prefix in training.
//!
//! With the embeddings and the lowest `k` layers frozen (and no dropout: the encoder has
//! none), the student's token states `hᵏ(x)` after layer `k` are a fixed function of the
//! sentence for the whole run, equal to the pretrained model's. They are computed once per
//! sentence by the pretrained (untrimmed) student, in length-sorted batches, kept in a
//! [`StateStore`] under `<root>/<model key>/` (key: configuration, `k`, training length and a
//! fingerprint of the weights; entries keyed by the SHA-256 of the prefixed text) and read back
//! for each step, so that a step runs only layers `k+1 … N` forward and backward. Every method,
//! seed and resumed run sharing a sentence reuses its states.
//!
//! Exactness: the trained student's embeddings and lowest `k` layers are checked bit for bit
//! against the pretrained model's when the cache is set up, and every sentence's ids against
//! the ids its states were computed from. The states then differ from the uncached forward pass
//! only by the batch shape they were computed in (f32 rounding of the same operations).

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use clir_models::{Embedder, TextKind, TokenBatch};

use crate::error::{Result, TrainError};
use crate::store::{StateStore, StoredEntry, text_hash};

/// Entries kept in memory before they are written as a shard (when there is a store).
const FLUSH_EVERY: usize = 2048;

/// `hᵏ` of the sentences a run uses.
pub struct PrefixCache {
    k: usize,
    dim: usize,
    source: Embedder,
    store: Option<StateStore>,
    /// Computed entries not (yet) in the store; everything when there is no store.
    memory: HashMap<String, StoredEntry>,
    /// Sentences computed and read from the store by [`PrefixCache::fill`].
    pub computed: usize,
    pub reused: usize,
}

impl PrefixCache {
    /// A cache of `source`'s `hᵏ` (the pretrained student, truncated to the training length),
    /// persisted under `store_root` when given.
    pub fn new(source: Embedder, k: usize, store_root: Option<&Path>) -> Result<Self> {
        if k == 0 || k > source.encoder.num_layers() {
            return Err(TrainError::Invalid(format!(
                "a frozen prefix of {k} layers needs 1..={} layers",
                source.encoder.num_layers()
            )));
        }
        let dim = source.config.encoder.hidden_size;
        let store = match store_root {
            Some(root) => {
                let key = crate::teacher::store_key(&source, k, TextKind::Passage)?;
                Some(StateStore::open(&root.join(key), dim, 0)?)
            }
            None => None,
        };
        Ok(PrefixCache {
            k,
            dim,
            source,
            store,
            memory: HashMap::new(),
            computed: 0,
            reused: 0,
        })
    }

    /// Layers the cached states have been through.
    pub fn layers(&self) -> usize {
        self.k
    }

    /// The pretrained model the states come from.
    pub fn source(&self) -> &Embedder {
        &self.source
    }

    fn has(&self, hash: &str) -> bool {
        self.memory.contains_key(hash) || self.store.as_ref().is_some_and(|s| s.contains(hash))
    }

    /// Makes sure every one of `texts` (already prefixed) has its states: computes the missing
    /// ones in length-sorted batches of `batch_size`.
    pub fn fill(&mut self, texts: &[String], batch_size: usize, progress: bool) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let missing: Vec<(String, &String)> = texts
            .iter()
            .map(|t| (text_hash(t), t))
            .filter(|(h, _)| !self.has(h) && seen.insert(h.clone()))
            .collect();
        self.reused += texts.len() - missing.len();
        if missing.is_empty() {
            return Ok(());
        }
        let seqs = missing
            .iter()
            .map(|(_, t)| self.source.tokenizer.encode(t))
            .collect::<clir_models::Result<Vec<_>>>()?;
        let (order, bar) = crate::store::longest_first(&seqs, "student prefix states", progress);
        let d = self.dim;
        for chunk in order.chunks(batch_size.max(1)) {
            let group: Vec<Vec<u32>> = chunk.iter().map(|&i| seqs[i].clone()).collect();
            let batch = TokenBatch::from_sequences(&group, self.source.tokenizer.pad_id());
            let dev = &self.source.device;
            let h = self.source.encoder.forward_layer(
                batch.ids_tensor(dev),
                batch.mask_tensor(dev),
                self.k,
            )?;
            let flat: Vec<f32> = h
                .into_data()
                .convert::<f32>()
                .try_into_vec()
                .map_err(|e| TrainError::Invalid(format!("reading prefix states: {e:?}")))?;
            for (row, &i) in chunk.iter().enumerate() {
                let n = group[row].len();
                let start = row * batch.len * d;
                let entry = StoredEntry {
                    ids: group[row].clone(),
                    states: flat[start..start + n * d].to_vec(),
                    extra: Vec::new(),
                };
                self.memory.insert(missing[i].0.clone(), entry);
            }
            self.computed += chunk.len();
            bar.inc(chunk.len() as u64);
            if self.memory.len() >= FLUSH_EVERY {
                self.flush()?;
            }
        }
        bar.finish_and_clear();
        self.flush()
    }

    /// Writes the computed entries to the store (a no-op without one).
    pub fn flush(&mut self) -> Result<()> {
        if let Some(store) = self.store.as_mut() {
            let entries: Vec<(String, StoredEntry)> = self.memory.drain().collect();
            store.write(&entries)?;
        }
        Ok(())
    }

    /// `hᵏ` of the rows of `batch` (the student's tokenisation of `texts`, already prefixed)
    /// as `(B, L, d)` on `device`, zero at padding. Each text's stored ids must be the ids the
    /// student's tokenizer gives it in the original vocabulary (`original`).
    pub fn states(
        &self,
        texts: &[String],
        original: &[Vec<u32>],
        batch: &TokenBatch,
        device: &Device,
    ) -> Result<Tensor<3>> {
        let hashes: Vec<String> = texts.iter().map(|t| text_hash(t)).collect();
        let want: Vec<&str> = hashes
            .iter()
            .filter(|h| !self.memory.contains_key(h.as_str()))
            .map(String::as_str)
            .collect();
        let read: HashMap<&str, StoredEntry> = match &self.store {
            Some(s) if !want.is_empty() => want
                .iter()
                .copied()
                .zip(s.get_many(&want)?)
                .filter_map(|(h, e)| e.map(|e| (h, e)))
                .collect(),
            _ => HashMap::new(),
        };
        let (b, l, d) = (batch.batch, batch.len, self.dim);
        let mut flat = vec![0f32; b * l * d];
        for (r, h) in hashes.iter().enumerate() {
            let e = match self.memory.get(h) {
                Some(e) => e,
                None => read.get(h.as_str()).ok_or_else(|| {
                    TrainError::Invalid(format!(
                        "no prefix states for sentence {r} of the batch: fill the cache first"
                    ))
                })?,
            };
            if e.ids != original[r] || e.ids.len() != batch.lengths[r] {
                return Err(TrainError::Invalid(format!(
                    "sentence {r} of the batch tokenises to other ids than its prefix states were computed from"
                )));
            }
            flat[r * l * d..r * l * d + e.states.len()].copy_from_slice(&e.states);
        }
        Ok(Tensor::from_data(TensorData::new(flat, [b, l, d]), device))
    }
}
