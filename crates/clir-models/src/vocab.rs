//! Vocabulary trimming: keep only the embedding rows of token ids that occur in given
//! corpora (plus the special tokens), with an old → new id map that wraps the tokenizer.
//!
//! New ids are the kept old ids in increasing order, so the relative order (and e.g.
//! `<s> = 0, <pad> = 1` in XLM-R) is preserved; ids outside the kept set map to `<unk>`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::encoder::Encoder;
use crate::error::{ModelError, Result};
use crate::tokenizer::TextTokenizer;

/// A trimmed vocabulary: `kept[new] = old`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "VocabFile", into = "VocabFile")]
pub struct VocabMap {
    kept: Vec<u32>,
    unk_new: u32,
    lookup: HashMap<u32, u32>,
}

#[derive(Serialize, Deserialize)]
struct VocabFile {
    /// Original id of each new id.
    kept: Vec<u32>,
    /// Original id of the unknown token.
    unk: u32,
}

impl TryFrom<VocabFile> for VocabMap {
    type Error = String;
    fn try_from(f: VocabFile) -> std::result::Result<Self, String> {
        VocabMap::from_kept(f.kept, f.unk)
    }
}

impl From<VocabMap> for VocabFile {
    fn from(m: VocabMap) -> Self {
        let unk = m.kept[m.unk_new as usize];
        VocabFile { kept: m.kept, unk }
    }
}

impl VocabMap {
    /// Builds the map from the original ids to keep (`unk` must be among them).
    pub fn from_kept(
        ids: impl IntoIterator<Item = u32>,
        unk: u32,
    ) -> std::result::Result<Self, String> {
        let set: BTreeSet<u32> = ids.into_iter().collect();
        if !set.contains(&unk) {
            return Err(format!("the unknown token {unk} is not among the kept ids"));
        }
        let kept: Vec<u32> = set.into_iter().collect();
        let lookup: HashMap<u32, u32> = kept
            .iter()
            .enumerate()
            .map(|(n, &o)| (o, n as u32))
            .collect();
        let unk_new = lookup[&unk];
        Ok(Self {
            kept,
            unk_new,
            lookup,
        })
    }

    /// Keeps every id the tokenizer emits for `texts` (with `prefixes` prepended, e.g.
    /// `"query: "`, so the prefix tokens are kept too) plus all special tokens.
    pub fn from_corpus<'a>(
        tokenizer: &TextTokenizer,
        texts: impl IntoIterator<Item = &'a str>,
        prefixes: &[&str],
    ) -> Result<Self> {
        let unk = tokenizer.unk_id().ok_or_else(|| ModelError::Tokenizer {
            path: tokenizer.path().to_path_buf(),
            msg: "has no <unk> / [UNK] token: cannot trim its vocabulary".into(),
        })?;
        let mut ids: BTreeSet<u32> = tokenizer.special_ids().into_iter().collect();
        ids.insert(unk);
        let prefixes: Vec<&str> = if prefixes.is_empty() {
            vec![""]
        } else {
            prefixes.to_vec()
        };
        for text in texts {
            for p in &prefixes {
                ids.extend(tokenizer.encode_original(&format!("{p}{text}"))?);
            }
        }
        Self::from_kept(ids, unk).map_err(ModelError::Invalid)
    }

    /// Number of kept ids (the trimmed vocabulary size).
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether nothing is kept (never true for a valid map: `<unk>` is always kept).
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// New id of original id `old` (`<unk>` when it was trimmed away).
    pub fn to_new(&self, old: u32) -> u32 {
        self.lookup.get(&old).copied().unwrap_or(self.unk_new)
    }

    /// Whether `old` survived trimming.
    pub fn contains(&self, old: u32) -> bool {
        self.lookup.contains_key(&old)
    }

    /// Original ids in new-id order.
    pub fn kept(&self) -> &[u32] {
        &self.kept
    }

    /// Writes the map as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_string(self).map_err(|e| ModelError::format(path, e.to_string()))?;
        std::fs::write(path, json).map_err(|e| ModelError::io(path, e))
    }

    /// Reads a map written by [`VocabMap::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| ModelError::format(path, e.to_string()))
    }
}

impl Encoder {
    /// Keeps only the word-embedding rows of `map` (row `new` = old row `kept[new]`).
    pub fn trim_vocab(mut self, map: &VocabMap) -> Result<Self> {
        let [rows, _] = self.embeddings.word.weight.dims();
        if let Some(&bad) = map.kept().iter().find(|&&o| o as usize >= rows) {
            return Err(ModelError::Invalid(format!(
                "vocabulary map keeps id {bad} but the embedding table has {rows} rows"
            )));
        }
        let w = self.embeddings.word.weight.val();
        let device = w.device();
        let idx: Vec<i64> = map.kept().iter().map(|&o| o as i64).collect();
        let n = idx.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &device);
        self.embeddings.word.weight = Param::from_tensor(w.select(0, idx));
        Ok(self)
    }
}
