//! A Hugging Face `tokenizer.json` wrapped for batching, truncation and (optionally) a
//! trimmed vocabulary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use tokenizers::Tokenizer;

use crate::error::{ModelError, Result};
use crate::vocab::VocabMap;

/// Token ids of a batch, right-padded to a common length.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// `[batch × len]` row-major ids (padding = the pad id).
    pub ids: Vec<i64>,
    /// `[batch × len]`: 1.0 for real tokens, 0.0 for padding.
    pub mask: Vec<f32>,
    pub batch: usize,
    pub len: usize,
    /// Real tokens per row.
    pub lengths: Vec<usize>,
}

impl TokenBatch {
    /// Pads `seqs` on the right with `pad_id`.
    pub fn from_sequences(seqs: &[Vec<u32>], pad_id: u32) -> Self {
        let batch = seqs.len();
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![pad_id as i64; batch * len];
        let mut mask = vec![0.0f32; batch * len];
        for (r, s) in seqs.iter().enumerate() {
            for (c, &t) in s.iter().enumerate() {
                ids[r * len + c] = t as i64;
                mask[r * len + c] = 1.0;
            }
        }
        Self {
            ids,
            mask,
            batch,
            len,
            lengths: seqs.iter().map(Vec::len).collect(),
        }
    }

    /// Row `i`'s real token ids.
    pub fn row(&self, i: usize) -> &[i64] {
        &self.ids[i * self.len..i * self.len + self.lengths[i]]
    }

    /// `[batch, len]` id tensor.
    pub fn ids_tensor(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.ids.clone(), [self.batch, self.len]),
            device,
        )
    }

    /// `[batch, len]` float mask tensor.
    pub fn mask_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.mask.clone(), [self.batch, self.len]),
            device,
        )
    }
}

/// `tokenizer.json` + truncation to the model's length + optional trimmed-vocabulary remap.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<Tokenizer>,
    path: PathBuf,
    /// The file's bytes as read: what [`Self::write_json`] writes, whatever the file holds
    /// by then.
    json: Arc<[u8]>,
    max_len: usize,
    pad_id: u32,
    specials: BTreeSet<u32>,
    vocab: Option<Arc<VocabMap>>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("max_len", &self.max_len)
            .field("pad_id", &self.pad_id)
            .field("trimmed", &self.vocab.as_ref().map(|v| v.len()))
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; sequences are cut to `max_len` tokens (specials included).
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(ModelError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "tokenizer file not found"),
            ));
        }
        let json = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        let mut inner = Tokenizer::from_bytes(&json).map_err(|e| ModelError::Tokenizer {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer {
                path: path.to_path_buf(),
                msg: e.to_string(),
            })?;
        // The pad id: the file's padding settings, else its `<pad>` or `[PAD]` token. A
        // tokenizer with neither is an error: padding with id 0 would silently feed a real
        // token into every padded position.
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| ["<pad>", "[PAD]"].iter().find_map(|t| inner.token_to_id(t)))
            .ok_or_else(|| ModelError::Tokenizer {
                path: path.to_path_buf(),
                msg: "no padding token (<pad> or [PAD]) and no padding settings".into(),
            })?;
        inner.with_padding(None);
        let specials: BTreeSet<u32> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&id, _)| id)
            .collect();
        if max_len < 2 {
            return Err(ModelError::Invalid(format!("max_len {max_len} < 2")));
        }
        Ok(Self {
            inner: Arc::new(inner),
            path: path.to_path_buf(),
            json: json.into(),
            max_len,
            pad_id,
            specials,
            vocab: None,
        })
    }

    /// The file this tokenizer was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the `tokenizer.json` this tokenizer was read from to `dest`: the bytes read
    /// then, so a source file replaced since cannot slip into a checkpoint or an export.
    pub fn write_json(&self, dest: &Path) -> Result<()> {
        std::fs::write(dest, &*self.json).map_err(|e| ModelError::io(dest, e))
    }

    /// The wrapped Hugging Face tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Longest sequence produced (specials included).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Special-token ids of the original vocabulary (`<s>`, `<pad>`, `[CLS]`, ...).
    pub fn special_ids(&self) -> Vec<u32> {
        self.specials.iter().copied().collect()
    }

    /// Id of the unknown token in the original vocabulary.
    pub fn unk_id(&self) -> Option<u32> {
        ["<unk>", "[UNK]"]
            .iter()
            .find_map(|t| self.inner.token_to_id(t))
    }

    /// Size of the id space this tokenizer emits (trimmed size when trimmed).
    pub fn vocab_size(&self) -> usize {
        match &self.vocab {
            Some(v) => v.len(),
            None => self.inner.get_vocab_size(true),
        }
    }

    /// The trimmed vocabulary, if any.
    pub fn vocab_map(&self) -> Option<&VocabMap> {
        self.vocab.as_deref()
    }

    /// This tokenizer emitting the original ids again (no trimmed vocabulary).
    pub fn without_vocab_map(mut self) -> Self {
        self.vocab = None;
        self
    }

    /// Wraps this tokenizer so that it emits ids of the trimmed vocabulary `map`.
    pub fn with_vocab_map(mut self, map: VocabMap) -> Self {
        self.vocab = Some(Arc::new(map));
        self
    }

    /// Pad id in the emitted id space.
    pub fn pad_id(&self) -> u32 {
        match &self.vocab {
            Some(v) => v.to_new(self.pad_id),
            None => self.pad_id,
        }
    }

    /// Pad id in the original vocabulary (whether or not trimmed).
    pub fn original_pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The same tokenizer cutting sequences to `max_len` tokens instead (specials included).
    pub fn with_max_len(mut self, max_len: usize) -> Result<Self> {
        if max_len < 2 {
            return Err(ModelError::Invalid(format!("max_len {max_len} < 2")));
        }
        self.max_len = max_len;
        Ok(self)
    }

    /// Ids of the original vocabulary (specials added, truncated to `max_len`).
    pub fn encode_original(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                msg: format!("cannot encode {text:?}: {e}"),
            })?;
        let mut ids = enc.get_ids().to_vec();
        if ids.len() > self.max_len {
            let last = *ids.last().unwrap();
            ids.truncate(self.max_len);
            if self.specials.contains(&last) {
                ids[self.max_len - 1] = last;
            }
        }
        Ok(ids)
    }

    /// Ids in the emitted id space (remapped when trimmed). A trimmed vocabulary never reads
    /// a token it dropped as `<unk>`: such a text is an error naming the token (a trained
    /// student's saved folder, loaded with `Embedder::load_checkpoint`, has the full
    /// vocabulary back).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let ids = self.encode_original(text)?;
        let Some(v) = &self.vocab else {
            return Ok(ids);
        };
        if let Some(&lost) = ids.iter().find(|&&i| !v.contains(i)) {
            let token = self.inner.id_to_token(lost).unwrap_or_default();
            let shown: String = text.chars().take(60).collect();
            let more = if shown.len() < text.len() { "…" } else { "" };
            return Err(ModelError::Tokenizer {
                path: self.path.clone(),
                msg: format!(
                    "token {token:?} (id {lost}) of {shown:?}{more} lies outside this model's \
                     trimmed vocabulary of {} tokens and would be read as <unk>; load the \
                     trained student's folder with Embedder::load_checkpoint (cargo xtask \
                     search/embed do), which restores the full vocabulary",
                    v.len()
                ),
            });
        }
        Ok(ids.into_iter().map(|i| v.to_new(i)).collect())
    }

    /// Encodes and right-pads a batch.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<TokenBatch> {
        let seqs = texts
            .iter()
            .map(|t| self.encode(t.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(TokenBatch::from_sequences(&seqs, self.pad_id()))
    }
}

/// Writes `dir/tokenizer.json`: a whitespace-split WordLevel tokenizer over `[PAD] [UNK]
/// [CLS] [SEP]` (ids 0–3) and `words` (ids from 4), wrapping each text as `[CLS] … [SEP]`.
/// For tests and examples with made-up vocabularies.
pub fn write_word_level_tokenizer(dir: &Path, words: &[&str]) -> Result<PathBuf> {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
    let mut vocab = serde_json::Map::new();
    for (i, s) in specials.iter().chain(words.iter()).enumerate() {
        vocab.insert(s.to_string(), serde_json::json!(i));
    }
    let added: Vec<_> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({"id": i, "content": s, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json.to_string()).map_err(|e| ModelError::io(&path, e))?;
    Ok(path)
}
