//! The frozen teacher's outputs on the English side of the bitext, computed once and kept on
//! disk so that every language pair (and every method, and a resumed run) sharing an English
//! sentence reuses them.
//!
//! Per sentence the store holds the token states `T ∈ R^{n×d}` of the distilled layer (all
//! `n` tokens, specials included), the token ids, and the teacher's sentence embedding (its
//! retrieval embedding: pooled last layer). Entries are keyed by the SHA-256 of the text under
//! a store directory keyed by the teacher (configuration, layer, side, length limit and a
//! fingerprint of its weights). New entries are written as a shard file through a temporary
//! file and a rename, so an interrupted run never leaves a half-written shard behind.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use clir_models::{Embedder, TextKind, TokenBatch, l2_normalize, pool};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};

const SHARD_MAGIC: &[u8; 8] = b"OPTTCH01";

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

#[derive(Serialize, Deserialize)]
struct ShardHeader {
    dim: usize,
    /// `(sha256 hex, ids)` per entry, in data order.
    entries: Vec<(String, Vec<u32>)>,
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

/// Hex SHA-256 of a text.
pub fn text_hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
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
    let mut known: HashMap<String, TeacherEntry> = HashMap::new();
    if let Some(dir) = &store {
        read_store(dir, dim, &mut known)?;
    }
    let hashes: Vec<String> = texts.iter().map(|t| text_hash(t)).collect();
    let mut missing: Vec<usize> = Vec::new();
    {
        let mut seen = std::collections::HashSet::new();
        for (i, h) in hashes.iter().enumerate() {
            if !known.contains_key(h) && seen.insert(h.clone()) {
                missing.push(i);
            }
        }
    }
    let reused = texts.len() - missing.len();
    if !missing.is_empty() {
        let computed = compute(teacher, texts, &missing, kind, layer, batch_size, progress)?;
        if let Some(dir) = &store {
            write_shard(dir, dim, &missing, &hashes, &computed)?;
        }
        for (&i, e) in missing.iter().zip(computed) {
            known.insert(hashes[i].clone(), e);
        }
    }
    let entries = hashes
        .iter()
        .map(|h| known.get(h).cloned().expect("every text is known now"))
        .collect();
    Ok(TeacherStates {
        dim,
        entries,
        reused,
    })
}

fn store_key(teacher: &Embedder, layer: usize, kind: TextKind) -> Result<String> {
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
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
    let bar = if progress {
        let b = ProgressBar::new(seqs.len() as u64);
        b.set_style(
            ProgressStyle::with_template(
                "teacher states {bar:30} {pos}/{len} sentences [{elapsed}<{eta}]",
            )
            .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
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

fn read_store(dir: &Path, dim: usize, into: &mut HashMap<String, TeacherEntry>) -> Result<()> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut shards: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    shards.sort();
    for path in shards {
        read_shard(&path, dim, into)?;
    }
    Ok(())
}

fn read_shard(path: &Path, dim: usize, into: &mut HashMap<String, TeacherEntry>) -> Result<()> {
    let bad = |m: String| TrainError::checkpoint(path, m);
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| TrainError::io(path, e))?;
    if bytes.len() < 16 || &bytes[..8] != SHARD_MAGIC {
        return Err(bad("not a teacher-state shard (bad magic)".into()));
    }
    let hlen = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let body = 16usize
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header".into()))?;
    let header: ShardHeader =
        serde_json::from_slice(&bytes[16..body]).map_err(|e| bad(format!("bad header: {e}")))?;
    if header.dim != dim {
        return Err(bad(format!(
            "states of width {} but the teacher has {dim}",
            header.dim
        )));
    }
    let floats: usize = header
        .entries
        .iter()
        .map(|(_, ids)| (ids.len() + 1) * dim)
        .sum();
    if bytes.len() - body != floats * 4 {
        return Err(bad(format!(
            "expected {} bytes of states, found {}",
            floats * 4,
            bytes.len() - body
        )));
    }
    let data: Vec<f32> = bytes[body..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let mut at = 0;
    for (hash, ids) in header.entries {
        let n = ids.len();
        let states = data[at..at + n * dim].to_vec();
        at += n * dim;
        let sentence = data[at..at + dim].to_vec();
        at += dim;
        into.insert(
            hash,
            TeacherEntry {
                ids,
                states,
                sentence,
            },
        );
    }
    Ok(())
}

fn write_shard(
    dir: &Path,
    dim: usize,
    which: &[usize],
    hashes: &[String],
    entries: &[TeacherEntry],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let header = ShardHeader {
        dim,
        entries: which
            .iter()
            .zip(entries)
            .map(|(&i, e)| (hashes[i].clone(), e.ids.clone()))
            .collect(),
    };
    let json = serde_json::to_vec(&header).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let name = format!(
        "shard-{}-{}.bin",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
        &text_hash(&String::from_utf8_lossy(&json))[..8]
    );
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(SHARD_MAGIC)?;
        f.write_all(&(json.len() as u64).to_le_bytes())?;
        f.write_all(&json)?;
        for e in entries {
            for x in e.states.iter().chain(&e.sentence) {
                f.write_all(&x.to_le_bytes())?;
            }
        }
        f.into_inner()?.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| TrainError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_round_trips_and_a_truncated_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = TeacherEntry {
            ids: vec![0, 5, 2],
            states: (0..6).map(|x| x as f32).collect(),
            sentence: vec![0.5, -0.5],
        };
        let hashes = vec![text_hash("a")];
        write_shard(dir.path(), 2, &[0], &hashes, std::slice::from_ref(&e)).unwrap();
        let mut m = HashMap::new();
        read_store(dir.path(), 2, &mut m).unwrap();
        assert_eq!(m[&hashes[0]], e);
        // Width mismatch and truncation are errors naming the shard.
        assert!(read_store(dir.path(), 3, &mut HashMap::new()).is_err());
        let shard = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let bytes = std::fs::read(&shard).unwrap();
        std::fs::write(&shard, &bytes[..bytes.len() - 4]).unwrap();
        let err = read_store(dir.path(), 2, &mut HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("shard-") && err.contains("bytes"), "{err}");
    }
}
