//! Per-text arrays on disk, read on demand: the teacher's token states and sentence
//! embeddings ([`crate::teacher`]) and the student's frozen-prefix states (the trainer).
//!
//! A store is a directory of shard files. A shard is `OPTTCH01`, the header length (u64 LE),
//! a JSON header `{dim, extra, entries: [(sha256 of text, token ids)]}` and then, per entry,
//! its `n × dim` token states followed by `extra` more floats (f32 LE). Opening a store reads
//! only the headers into an index; entries are read from their shard when asked for, so a run
//! holds the states of the texts it uses, not the whole store. Shards are written through a
//! temporary file, fsynced and renamed, so an interrupted run never leaves half a shard.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};

const SHARD_MAGIC: &[u8; 8] = b"OPTTCH01";

/// One text's arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// Token ids (specials included), `n` of them.
    pub ids: Vec<u32>,
    /// `n × dim` token states, row-major.
    pub states: Vec<f32>,
    /// `extra` more floats (the teacher's sentence embedding; empty for prefix states).
    pub extra: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct ShardHeader {
    dim: usize,
    /// Floats after each entry's states (absent in the first teacher shards: `dim`).
    #[serde(default)]
    extra: Option<usize>,
    /// `(sha256 hex, ids)` per entry, in data order.
    entries: Vec<(String, Vec<u32>)>,
}

/// Where an entry lies.
#[derive(Debug, Clone)]
struct Location {
    shard: usize,
    /// Byte offset of its states.
    offset: u64,
    ids: Vec<u32>,
}

/// The order in which to encode `seqs` (longest first, so that batches hold similar
/// lengths) and a progress bar over them (hidden unless `progress`).
pub(crate) fn longest_first(
    seqs: &[Vec<u32>],
    what: &str,
    progress: bool,
) -> (Vec<usize>, clir_eval::progress::Progress) {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
    let bar = clir_eval::progress::Progress::task(what, seqs.len() as u64)
        .unit("sentences")
        .template("{prefix} {bar:30} {pos}/{len} sentences [{elapsed}<{eta}]")
        .show(progress);
    (order, bar)
}

/// Hex SHA-256 of a text.
pub fn text_hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// An opened store: its shards' index.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    dim: usize,
    extra: usize,
    shards: Vec<PathBuf>,
    index: HashMap<String, Location>,
}

impl StateStore {
    /// Opens (or prepares, if absent) the store in `dir` for entries of width `dim` with
    /// `extra` trailing floats; every shard's header and size are checked.
    pub fn open(dir: &Path, dim: usize, extra: usize) -> Result<Self> {
        let mut store = StateStore {
            dir: dir.to_path_buf(),
            dim,
            extra,
            shards: Vec::new(),
            index: HashMap::new(),
        };
        let Ok(listing) = std::fs::read_dir(dir) else {
            return Ok(store);
        };
        let mut shards: Vec<PathBuf> = listing
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "bin"))
            .collect();
        shards.sort();
        for path in shards {
            store.add_shard(path)?;
        }
        Ok(store)
    }

    /// Number of entries indexed.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.index.contains_key(hash)
    }

    fn add_shard(&mut self, path: PathBuf) -> Result<()> {
        let bad = |m: String| TrainError::checkpoint(&path, m);
        let mut f = File::open(&path).map_err(|e| TrainError::io(&path, e))?;
        let size = f.metadata().map_err(|e| TrainError::io(&path, e))?.len();
        let mut head = [0u8; 16];
        if size < 16 || f.read_exact(&mut head).is_err() || &head[..8] != SHARD_MAGIC {
            return Err(bad("not a state shard (bad magic)".into()));
        }
        let hlen = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        if hlen > size - 16 {
            return Err(bad("truncated header".into()));
        }
        let mut json = vec![0u8; hlen as usize];
        f.read_exact(&mut json)
            .map_err(|e| TrainError::io(&path, e))?;
        let header: ShardHeader =
            serde_json::from_slice(&json).map_err(|e| bad(format!("bad header: {e}")))?;
        let extra = header.extra.unwrap_or(header.dim);
        if header.dim != self.dim || extra != self.extra {
            return Err(bad(format!(
                "entries of width {} (+{extra}) but this store holds width {} (+{})",
                header.dim, self.dim, self.extra
            )));
        }
        let floats: u64 = header
            .entries
            .iter()
            .map(|(_, ids)| (ids.len() * self.dim + self.extra) as u64)
            .sum();
        let body = 16 + hlen;
        if size - body != floats * 4 {
            return Err(bad(format!(
                "expected {} bytes of states, found {}",
                floats * 4,
                size - body
            )));
        }
        let shard = self.shards.len();
        self.shards.push(path);
        let mut offset = body;
        for (hash, ids) in header.entries {
            let n = ids.len();
            self.index.insert(hash, Location { shard, offset, ids });
            offset += ((n * self.dim + self.extra) * 4) as u64;
        }
        Ok(())
    }

    /// The entries of `hashes` (`None` for those not stored), each shard opened once.
    pub fn get_many(&self, hashes: &[&str]) -> Result<Vec<Option<StoredEntry>>> {
        let mut open: HashMap<usize, File> = HashMap::new();
        hashes
            .iter()
            .map(|h| {
                let Some(loc) = self.index.get(*h) else {
                    return Ok(None);
                };
                let path = &self.shards[loc.shard];
                let f = match open.entry(loc.shard) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(File::open(path).map_err(|e| TrainError::io(path, e))?)
                    }
                };
                let n = loc.ids.len() * self.dim;
                let mut bytes = vec![0u8; (n + self.extra) * 4];
                f.seek(SeekFrom::Start(loc.offset))
                    .and_then(|_| f.read_exact(&mut bytes))
                    .map_err(|e| TrainError::io(path, e))?;
                let mut floats: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect();
                let extra = floats.split_off(n);
                Ok(Some(StoredEntry {
                    ids: loc.ids.clone(),
                    states: floats,
                    extra,
                }))
            })
            .collect()
    }

    /// Writes `entries` as a new shard and indexes them. Entries already stored are skipped;
    /// nothing is written when none is new.
    pub fn write(&mut self, entries: &[(String, StoredEntry)]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let new: Vec<&(String, StoredEntry)> = entries
            .iter()
            .filter(|(h, _)| !self.index.contains_key(h) && seen.insert(h.as_str()))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        for (h, e) in &new {
            if e.states.len() != e.ids.len() * self.dim || e.extra.len() != self.extra {
                return Err(TrainError::Invalid(format!(
                    "entry {h}: {} states for {} ids of width {}, {} extra (want {})",
                    e.states.len(),
                    e.ids.len(),
                    self.dim,
                    e.extra.len(),
                    self.extra
                )));
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        let header = ShardHeader {
            dim: self.dim,
            extra: Some(self.extra),
            entries: new
                .iter()
                .map(|(h, e)| (h.clone(), e.ids.clone()))
                .collect(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| TrainError::Invalid(e.to_string()))?;
        // Unique per process and call: concurrent writers never share a file name.
        let name = format!(
            "shard-{}-{}-{}.bin",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            std::process::id(),
            &text_hash(&String::from_utf8_lossy(&json))[..8]
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(File::create(&tmp)?);
            f.write_all(SHARD_MAGIC)?;
            f.write_all(&(json.len() as u64).to_le_bytes())?;
            f.write_all(&json)?;
            for (_, e) in &new {
                for x in e.states.iter().chain(&e.extra) {
                    f.write_all(&x.to_le_bytes())?;
                }
            }
            f.into_inner()?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            crate::atomic::sync_dir(&self.dir)
        };
        write().map_err(|e| TrainError::io(&path, e))?;
        self.add_shard(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, dim: usize, extra: usize, base: f32) -> StoredEntry {
        StoredEntry {
            ids: (0..n as u32).collect(),
            states: (0..n * dim).map(|x| base + x as f32).collect(),
            extra: (0..extra).map(|x| -base - x as f32).collect(),
        }
    }

    #[test]
    fn entries_round_trip_across_shards_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StateStore::open(dir.path(), 2, 1).unwrap();
        assert!(s.is_empty());
        let (a, b, c) = (
            entry(3, 2, 1, 0.0),
            entry(1, 2, 1, 10.0),
            entry(2, 2, 1, 20.0),
        );
        s.write(&[("a".into(), a.clone()), ("b".into(), b.clone())])
            .unwrap();
        // A second shard; "a" again is skipped, not duplicated.
        s.write(&[("c".into(), c.clone()), ("a".into(), b.clone())])
            .unwrap();
        let reopened = StateStore::open(dir.path(), 2, 1).unwrap();
        for st in [&s, &reopened] {
            assert_eq!(st.len(), 3);
            let got = st.get_many(&["c", "x", "a", "b"]).unwrap();
            assert_eq!(
                got,
                [Some(c.clone()), None, Some(a.clone()), Some(b.clone())]
            );
        }
        // Nothing new: no third shard.
        s.write(&[("a".into(), a)]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn foreign_truncated_or_inconsistent_shards_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StateStore::open(dir.path(), 2, 0).unwrap();
        s.write(&[("a".into(), entry(2, 2, 0, 1.0))]).unwrap();
        let e = StateStore::open(dir.path(), 3, 0).unwrap_err().to_string();
        assert!(e.contains("shard-") && e.contains("width"), "{e}");
        let e = s
            .write(&[("b".into(), entry(2, 3, 0, 1.0))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry b"), "{e}");
        let shard = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let bytes = std::fs::read(&shard).unwrap();
        std::fs::write(&shard, &bytes[..bytes.len() - 4]).unwrap();
        let e = StateStore::open(dir.path(), 2, 0).unwrap_err().to_string();
        assert!(e.contains("shard-") && e.contains("bytes"), "{e}");
        std::fs::write(&shard, b"not a shard at all").unwrap();
        let e = StateStore::open(dir.path(), 2, 0).unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
    }
}
