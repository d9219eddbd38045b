//! The student being trained: an [`Embedder`] whose encoder lives on the autodiff device,
//! its token roles (specials, prefix) and how a fresh run builds it.

use std::collections::HashSet;

use burn::module::Module;
use burn::prelude::*;
use clir_models::placement::host_for;
use clir_models::{Embedder, Encoder, TextKind, TextTokenizer, TokenBatch, l2_normalize, pool};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::prefix_cache::PrefixCache;

use super::TrainInputs;

/// The student being trained: the parts of an [`Embedder`] with its encoder on the
/// autodiff device.
pub(crate) struct Student {
    /// The model's configuration; its `max_len` is the length the student encodes at once
    /// trained (its base model's maximum), not the training length.
    pub(crate) config: clir_models::EmbedderConfig,
    /// The tokenizer at the training length `model.max_len` (capped by the model's own).
    pub(crate) tokenizer: TextTokenizer,
    pub(crate) encoder: Encoder,
    /// The autodiff device the encoder trains on.
    pub(crate) device: Device,
    /// The plain device the run was started on.
    pub(crate) plain: Device,
    pub(crate) specials: HashSet<u32>,
    pub(crate) prefix: Vec<u32>,
    /// Whether any parameter is trained (not every layer and the embeddings frozen).
    pub(crate) trainable: bool,
}

impl Student {
    /// Takes over `e` for training.
    pub(crate) fn from_embedder(e: Embedder, cfg: &TrainConfig) -> Result<Self> {
        let plain = e.device.clone();
        let device = plain.clone().autodiff();
        let mut encoder = e.encoder.fork(&device).train();
        if cfg.model.freeze_embeddings {
            encoder.embeddings = encoder.embeddings.no_grad();
        }
        let frozen = cfg.model.freeze_layers.min(encoder.layers.len());
        let trainable = !(cfg.model.freeze_embeddings && frozen == encoder.layers.len());
        for layer in encoder.layers.iter_mut().take(frozen) {
            *layer = layer.clone().no_grad();
        }
        let (specials, prefix) =
            token_roles(&e.tokenizer, e.config.prefix(cfg.model.student_side.into()))?;
        let train_len = e.config.max_len.min(cfg.model.max_len);
        Ok(Student {
            config: e.config,
            tokenizer: e.tokenizer.with_max_len(train_len)?,
            encoder,
            device,
            plain,
            specials,
            prefix,
            trainable,
        })
    }

    /// The student as a model for use: at its own length (the training length is a
    /// training setting only).
    pub(crate) fn to_embedder(&self) -> Result<Embedder> {
        Ok(Embedder {
            config: self.config.clone(),
            encoder: self.encoder.valid(),
            tokenizer: self.tokenizer.clone().with_max_len(self.config.max_len)?,
            device: self.plain.clone(),
        })
    }

    /// The training length (tokens, specials included).
    pub(crate) fn train_len(&self) -> usize {
        self.tokenizer.max_len()
    }

    /// Pooled (and, if the model says so, L2-normalised) sentence embeddings `(B, d)` of the
    /// last layer's states `h`.
    pub(crate) fn sentence_embeddings(&self, h: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let e = pool(h, mask, self.config.pooling);
        if self.config.normalize {
            l2_normalize(e)
        } else {
            e
        }
    }

    /// `texts` read as `kind`: tokenised once, in the original vocabulary (what the
    /// frozen-prefix cache checks) and in the emitted, possibly trimmed, one (the batch).
    pub(crate) fn tokenize(&self, texts: &[&str], kind: TextKind) -> Result<Tokenized> {
        let prefixed = self.prefixed(texts, kind);
        let original = prefixed
            .iter()
            .map(|t| self.tokenizer.encode_original(t))
            .collect::<clir_models::Result<Vec<_>>>()?;
        let emitted: Vec<Vec<u32>> = match self.tokenizer.vocab_map() {
            Some(map) => original
                .iter()
                .map(|ids| ids.iter().map(|&i| map.to_new(i)).collect())
                .collect(),
            None => original.clone(),
        };
        let batch = TokenBatch::from_sequences(&emitted, self.tokenizer.pad_id());
        Ok(Tokenized {
            prefixed,
            original,
            batch,
        })
    }

    /// `texts` with the model's prefix for `kind`.
    pub(crate) fn prefixed<S: AsRef<str>>(&self, texts: &[S], kind: TextKind) -> Vec<String> {
        let prefix = self.config.prefix(kind);
        texts
            .iter()
            .map(|t| format!("{prefix}{}", t.as_ref()))
            .collect()
    }

    /// Token states `hˡ` of tokenised texts: from the frozen-prefix cache when there is one
    /// below `l` (only layers `k+1 … l` run), else the whole forward pass.
    pub(crate) fn states(
        &self,
        tok: &Tokenized,
        layer: usize,
        cache: Option<&PrefixCache>,
    ) -> Result<Tensor<3>> {
        let dev = &self.device;
        let batch = &tok.batch;
        let mask = batch.mask_tensor(dev);
        match cache {
            Some(c) if layer >= c.layers() => {
                let h = c.states(&tok.prefixed, &tok.original, batch, dev)?;
                Ok(self.encoder.forward_layers(h, mask, c.layers(), layer)?)
            }
            _ => Ok(self
                .encoder
                .forward_layer(batch.ids_tensor(dev), mask, layer)?),
        }
    }

    /// Sentence embeddings of `texts` read as `kind`, through the cache when there is one,
    /// and the number of tokens read.
    pub(crate) fn embed(
        &self,
        texts: &[&str],
        kind: TextKind,
        cache: Option<&PrefixCache>,
    ) -> Result<(Tensor<2>, usize)> {
        let tok = self.tokenize(texts, kind)?;
        let h = self.states(&tok, self.encoder.num_layers(), cache)?;
        let e = self.sentence_embeddings(h, tok.batch.mask_tensor(&self.device));
        Ok((e, tok.batch.lengths.iter().sum()))
    }
}

/// Texts tokenised for a step: prefixed, their original-vocabulary ids and the padded batch.
pub(crate) struct Tokenized {
    pub(crate) prefixed: Vec<String>,
    pub(crate) original: Vec<Vec<u32>>,
    pub(crate) batch: TokenBatch,
}

/// Special-token ids and the ids of the E5 prefix (without specials) in the emitted id space,
/// as [`content_mask`] takes them.
pub fn token_roles(tok: &TextTokenizer, prefix: &str) -> Result<(HashSet<u32>, Vec<u32>)> {
    let specials: HashSet<u32> = tok
        .special_ids()
        .into_iter()
        .map(|id| match tok.vocab_map() {
            Some(m) => m.to_new(id),
            None => id,
        })
        .collect();
    let prefix = if prefix.trim().is_empty() {
        Vec::new()
    } else {
        tok.encode(prefix.trim_end())?
            .into_iter()
            .filter(|id| !specials.contains(id))
            .collect()
    };
    Ok((specials, prefix))
}

/// Positions that carry OT mass: not special, not the leading prefix. A sentence whose
/// tokens are all special or prefix falls back to its non-special tokens.
pub fn content_mask(ids: &[u32], specials: &HashSet<u32>, prefix: &[u32]) -> Vec<bool> {
    let mut mask: Vec<bool> = ids.iter().map(|id| !specials.contains(id)).collect();
    if let Some(first) = mask.iter().position(|&m| m)
        && !prefix.is_empty()
        && ids[first..].starts_with(prefix)
        && mask[first + prefix.len()..].iter().any(|&m| m)
    {
        mask[first..first + prefix.len()].fill(false);
    }
    mask
}

/// Builds the student [`Embedder`] a fresh run starts from: loads it, keeps its first
/// `student_depth` layers and trims its vocabulary to the bitext plus `vocab_texts`. It
/// keeps the pretrained length; training reads at most `model.max_len` tokens of a sentence.
pub fn initial_student(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    device: &Device,
) -> Result<Embedder> {
    // Loaded and trimmed on the host, then placed: the untrimmed table may not fit a GPU
    // buffer (clir_models::placement).
    let mut student = inputs.models.load(&cfg.model.student, &host_for(device))?;
    if let Some(depth) = cfg.model.student_depth {
        let have = student.encoder.layers.len();
        if depth == 0 || depth > have {
            return Err(TrainError::Invalid(format!(
                "model.student_depth {depth} must lie in 1..={have}"
            )));
        }
        student.encoder.layers.truncate(depth);
        student.config.encoder.num_layers = depth;
    }
    // The vocabulary is trimmed at the pretrained length, so that it holds every token the
    // student meets at evaluation, where texts are not cut at the training length. The
    // model's `base` (recorded by the loader) restores the other rows when it is loaded.
    if cfg.model.trim_vocab {
        let texts = inputs
            .pairs
            .iter()
            .flat_map(|p| [p.src.as_str(), p.tgt.as_str()])
            .chain(inputs.vocab_texts.iter().map(String::as_str))
            .chain(
                inputs
                    .monolingual
                    .iter()
                    .flat_map(|q| q.docs.iter().map(String::as_str)),
            );
        student = student.trim_vocab(texts)?;
    }
    Ok(student.placed("student", device))
}
