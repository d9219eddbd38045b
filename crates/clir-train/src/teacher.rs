//! The frozen teacher's outputs on the English side of the bitext, computed once and kept on
//! disk so that every language pair (and every method, and a resumed run) sharing an English
//! sentence reuses them.
//!
//! Per sentence the store holds the token states `T ∈ R^{n×d}` of the distilled layer (all
//! `n` tokens, specials included), the token ids, and the teacher's sentence embedding (its
//! retrieval embedding: pooled last layer). Entries are keyed by the SHA-256 of the text under
//! a store directory keyed by the teacher (configuration, layer, side, length limit and a
//! fingerprint of its weights), in a [`StateStore`]: a run reads the entries of its own
//! texts from the shards, never the whole store, and writes the ones it computed as a new
//! shard (temporary file, fsync, rename).

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use clir_models::{Embedder, TextKind, TokenBatch, l2_normalize, pool};
use serde::Serialize;

use crate::error::{Result, TrainError};
pub use crate::store::text_hash;
use crate::store::{StateStore, StoredEntry};

/// The teacher's outputs for one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherEntry {
    /// Token ids in the teacher's vocabulary (specials included), `n` of them.
    pub ids: Vec<u32>,
    /// `n × d` token states, row-major.
    pub states: Vec<f32>,
    /// `d`: the teacher's sentence embedding of the text.
    pub sentence: Vec<f32>,
}

impl TeacherEntry {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// What identifies a teacher's outputs.
#[derive(Serialize)]
struct StoreKey<'a> {
    config: &'a clir_models::EmbedderConfig,
    layer: usize,
    kind: TextKind,
    fingerprint: Vec<f32>,
}

/// Teacher outputs for a list of texts, in their order.
#[derive(Debug, Clone)]
pub struct TeacherStates {
    pub dim: usize,
    pub entries: Vec<TeacherEntry>,
    /// How many entries came from the disk store rather than being computed.
    pub reused: usize,
}

/// Computes (or reads from `store_root`) the teacher's layer-`layer` token states and
/// sentence embeddings of `texts`, read as `kind`.
pub fn teacher_states(
    teacher: &Embedder,
    texts: &[String],
    kind: TextKind,
    layer: Option<usize>,
    store_root: Option<&Path>,
    batch_size: usize,
    progress: bool,
) -> Result<TeacherStates> {
    let n_layers = teacher.encoder.num_layers();
    let layer = layer.unwrap_or(n_layers);
    if layer > n_layers {
        return Err(TrainError::Invalid(format!(
            "teacher layer {layer} requested but the teacher has {n_layers} layers"
        )));
    }
    let dim = teacher.config.encoder.hidden_size;
    let store = match store_root {
        Some(root) => Some(root.join(store_key(teacher, layer, kind)?)),
        None => None,
    };
    let mut store = match &store {
        Some(dir) => Some(StateStore::open(dir, dim, dim)?),
        None => None,
    };
    let hashes: Vec<String> = texts.iter().map(|t| text_hash(t)).collect();
    let mut missing: Vec<usize> = Vec::new();
    {
        let mut seen = std::collections::HashSet::new();
        for (i, h) in hashes.iter().enumerate() {
            if !store.as_ref().is_some_and(|s| s.contains(h)) && seen.insert(h.as_str()) {
                missing.push(i);
            }
        }
    }
    let reused = texts.len() - missing.len();
    let mut computed: HashMap<&str, TeacherEntry> = HashMap::new();
    if !missing.is_empty() {
        let new = compute(teacher, texts, &missing, kind, layer, batch_size, progress)?;
        if let Some(store) = store.as_mut() {
            let stored: Vec<(String, StoredEntry)> = missing
                .iter()
                .zip(&new)
                .map(|(&i, e)| {
                    let entry = StoredEntry {
                        ids: e.ids.clone(),
                        states: e.states.clone(),
                        extra: e.sentence.clone(),
                    };
                    (hashes[i].clone(), entry)
                })
                .collect();
            store.write(&stored)?;
        }
        for (&i, e) in missing.iter().zip(new) {
            computed.insert(hashes[i].as_str(), e);
        }
    }
    // Only this run's texts are read back from the store.
    let from_store = match &store {
        Some(s) => {
            let want: Vec<&str> = hashes
                .iter()
                .filter(|h| !computed.contains_key(h.as_str()))
                .map(String::as_str)
                .collect();
            want.iter()
                .copied()
                .zip(s.get_many(&want)?)
                .filter_map(|(h, e)| {
                    e.map(|e| {
                        let entry = TeacherEntry {
                            ids: e.ids,
                            states: e.states,
                            sentence: e.extra,
                        };
                        (h, entry)
                    })
                })
                .collect()
        }
        None => HashMap::new(),
    };
    let entries = hashes
        .iter()
        .map(|h| {
            computed
                .get(h.as_str())
                .or_else(|| from_store.get(h.as_str()))
                .cloned()
                .expect("every text is known now")
        })
        .collect();
    Ok(TeacherStates {
        dim,
        entries,
        reused,
    })
}

/// The store directory name of `teacher`'s layer-`layer` outputs read as `kind`.
pub(crate) fn store_key(teacher: &Embedder, layer: usize, kind: TextKind) -> Result<String> {
    // A fingerprint of the weights: the embedding of a fixed probe sentence.
    let probe = teacher.embed(&["Optimal transport aligns the tokens."], kind, 1)?;
    let key = StoreKey {
        config: &teacher.config,
        layer,
        kind,
        fingerprint: probe[0].iter().map(|x| (x * 1e4).round() / 1e4).collect(),
    };
    let json = serde_json::to_string(&key).map_err(|e| TrainError::Invalid(e.to_string()))?;
    Ok(format!(
        "{}-{}",
        teacher.config.name.replace(['/', ' '], "_"),
        &text_hash(&json)[..16]
    ))
}

#[allow(clippy::too_many_arguments)]
fn compute(
    teacher: &Embedder,
    texts: &[String],
    which: &[usize],
    kind: TextKind,
    layer: usize,
    batch_size: usize,
    progress: bool,
) -> Result<Vec<TeacherEntry>> {
    let prefix = teacher.config.prefix(kind);
    let seqs = which
        .iter()
        .map(|&i| teacher.tokenizer.encode(&format!("{prefix}{}", texts[i])))
        .collect::<clir_models::Result<Vec<_>>>()?;
    let (order, bar) = crate::store::longest_first(&seqs, "teacher states", progress);
    let d = teacher.config.encoder.hidden_size;
    let mut out: Vec<Option<TeacherEntry>> = vec![None; seqs.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let group: Vec<Vec<u32>> = chunk.iter().map(|&i| seqs[i].clone()).collect();
        let batch = TokenBatch::from_sequences(&group, teacher.tokenizer.pad_id());
        let ids = batch.ids_tensor(&teacher.device);
        let mask = batch.mask_tensor(&teacher.device);
        let hidden = teacher.encoder.forward(ids, mask.clone());
        let states = hidden.layer(layer)?;
        let sent = pool(hidden.last(), mask, teacher.config.pooling);
        let sent = if teacher.config.normalize {
            l2_normalize(sent)
        } else {
            sent
        };
        let states = to_vec(states)?;
        let sent = to_vec(sent)?;
        for (row, &i) in chunk.iter().enumerate() {
            let n = group[row].len();
            let start = row * batch.len * d;
            out[i] = Some(TeacherEntry {
                ids: group[row].clone(),
                states: states[start..start + n * d].to_vec(),
                sentence: sent[row * d..(row + 1) * d].to_vec(),
            });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out.into_iter().map(|e| e.expect("filled")).collect())
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Invalid(format!("reading teacher states: {e:?}")))
}
