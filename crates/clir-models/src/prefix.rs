//! Reusing a frozen prefix: the token states `hᵏ` after the lowest `k` layers.
//!
//! A student trained with its embeddings and lowest `k` layers frozen (and no dropout)
//! computes `hᵏ(x)` exactly as the model it started from. Its embedding of `x` is then
//! `normalize?(pool(Layersₖ₊₁..ₙ(hᵏ(x))))`, where `hᵏ(x)` may be computed once, by the
//! starting model, for every student of that model:
//!
//! ```text
//! states = source.prefix_states(texts, kind, batch, k)        // layers 1..k, once
//! e      = student.embed_from_prefix(texts, kind, &states, &source)  // layers k+1..N
//! ```
//!
//! `embed_from_prefix` first checks that the student's embeddings and lowest `k` layers are
//! bit for bit the source's (rows of a trimmed vocabulary compared with the source rows they
//! were cut from) and that it tokenises every text to the same original ids; the result then
//! equals `student.embed(texts, kind, batch)` exactly, because the same operations run on the
//! same values in the same batches.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use crate::embedder::{Embedder, TextKind};
use crate::error::{ModelError, Result};
use crate::pooling::{l2_normalize, pool};
use crate::tokenizer::TokenBatch;

/// `hᵏ` of a list of texts, in the length-sorted batches [`Embedder::embed`] uses.
#[derive(Debug, Clone)]
pub struct PrefixStates {
    /// Layers already applied (`0` = the embedding output).
    layers: usize,
    kind: TextKind,
    /// Original-vocabulary ids of each text (prefix and specials included, truncated).
    ids: Vec<Vec<u32>>,
    batches: Vec<PrefixBatch>,
}

#[derive(Debug, Clone)]
struct PrefixBatch {
    /// Input positions of the rows.
    rows: Vec<usize>,
    /// `[rows, len, d]` states after `layers` layers.
    hidden: Tensor<3>,
    /// `[rows, len]` padding mask.
    mask: Tensor<2>,
}

impl PrefixStates {
    /// Layers the states have been through.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Number of texts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no text is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Embedder {
    /// Token states after the lowest `k` layers of every text, batched as [`Embedder::embed`]
    /// batches them (at most `batch_size` texts of similar length).
    pub fn prefix_states<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: TextKind,
        batch_size: usize,
        k: usize,
    ) -> Result<PrefixStates> {
        if batch_size == 0 {
            return Err(ModelError::Invalid("batch size must be positive".into()));
        }
        if k > self.encoder.num_layers() {
            return Err(ModelError::Invalid(format!(
                "a prefix of {k} layers requested from an encoder of {}",
                self.encoder.num_layers()
            )));
        }
        let prefix = self.config.prefix(kind);
        let mut seqs = Vec::with_capacity(texts.len());
        let mut ids = Vec::with_capacity(texts.len());
        for t in texts {
            let text = format!("{prefix}{}", t.as_ref());
            seqs.push(self.tokenizer.encode(&text)?);
            ids.push(self.tokenizer.encode_original(&text)?);
        }
        let mut batches = Vec::new();
        for rows in length_batches(&seqs, batch_size) {
            let group: Vec<Vec<u32>> = rows.iter().map(|&i| seqs[i].clone()).collect();
            let batch = TokenBatch::from_sequences(&group, self.tokenizer.pad_id());
            let mask = batch.mask_tensor(&self.device);
            let hidden =
                self.encoder
                    .forward_layer(batch.ids_tensor(&self.device), mask.clone(), k)?;
            batches.push(PrefixBatch { rows, hidden, mask });
        }
        Ok(PrefixStates {
            layers: k,
            kind,
            ids,
            batches,
        })
    }

    /// Embeds `texts` from `states` (computed by `source` for the same texts), running only
    /// the layers above the prefix. Fails unless this embedder's embeddings and lowest
    /// `states.layers()` layers equal `source`'s bit for bit and it tokenises every text to the
    /// ids the states were computed from.
    pub fn embed_from_prefix<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: TextKind,
        states: &PrefixStates,
        source: &Embedder,
    ) -> Result<Vec<Vec<f32>>> {
        if kind != states.kind || texts.len() != states.ids.len() {
            return Err(ModelError::Invalid(format!(
                "prefix states of {} {:?} texts cannot embed {} {kind:?} texts",
                states.ids.len(),
                states.kind,
                texts.len()
            )));
        }
        let prefix = self.config.prefix(kind);
        for (i, t) in texts.iter().enumerate() {
            let text = format!("{prefix}{}", t.as_ref());
            let own = self.tokenizer.encode_original(&text)?;
            if own != states.ids[i] {
                return Err(ModelError::Invalid(format!(
                    "text {i} tokenises to other ids than the prefix states were computed from"
                )));
            }
            if let Some(map) = self.tokenizer.vocab_map()
                && let Some(&lost) = own.iter().find(|&&o| !map.contains(o))
            {
                return Err(ModelError::Invalid(format!(
                    "text {i} holds token {lost}, outside the trimmed vocabulary"
                )));
            }
        }
        if !std::ptr::eq(self, source) {
            self.check_shares_prefix(source, states.layers)?;
        }
        let n = self.encoder.num_layers();
        let d = self.config.encoder.hidden_size;
        let mut out = vec![Vec::new(); texts.len()];
        for b in &states.batches {
            let h = self.encoder.forward_layers(
                b.hidden.clone().to_device(&self.device),
                b.mask.clone().to_device(&self.device),
                states.layers,
                n,
            )?;
            let mask = b.mask.clone().to_device(&self.device);
            let e = pool(h, mask, self.config.pooling);
            let e = if self.config.normalize {
                l2_normalize(e)
            } else {
                e
            };
            let flat: Vec<f32> = e
                .into_data()
                .convert::<f32>()
                .try_into_vec()
                .map_err(|e| ModelError::Invalid(format!("reading embeddings: {e:?}")))?;
            for (row, &i) in b.rows.iter().enumerate() {
                out[i] = flat[row * d..(row + 1) * d].to_vec();
            }
        }
        Ok(out)
    }

    /// `Ok` when this embedder's input embeddings and lowest `k` layers hold exactly the
    /// values of `source`'s (word rows compared through the trimmed vocabularies, if any);
    /// otherwise an error naming the first parameter that differs.
    pub fn check_shares_prefix(&self, source: &Embedder, k: usize) -> Result<()> {
        let (a, b) = (&self.encoder, &source.encoder);
        if k > a.num_layers() || k > b.num_layers() {
            return Err(ModelError::Invalid(format!(
                "a shared prefix of {k} layers needs both encoders that deep ({} and {})",
                a.num_layers(),
                b.num_layers()
            )));
        }
        if self.config.encoder.hidden_size != source.config.encoder.hidden_size
            || a.embeddings.position_offset != b.embeddings.position_offset
        {
            return Err(ModelError::Invalid(
                "the encoders differ in width or position offset".into(),
            ));
        }
        // Word rows: row `new` of a trimmed table is original row `kept[new]`.
        let own_rows = a.embeddings.word.weight.dims()[0];
        let original: Vec<u32> = match self.tokenizer.vocab_map() {
            Some(map) => map.kept().to_vec(),
            None => (0..own_rows as u32).collect(),
        };
        let source_rows: Vec<i64> = original
            .iter()
            .map(|&o| match source.tokenizer.vocab_map() {
                Some(map) if map.contains(o) => Ok(map.to_new(o) as i64),
                Some(_) => Err(ModelError::Invalid(format!(
                    "token {o} is in this vocabulary but not in the source's"
                ))),
                None => Ok(o as i64),
            })
            .collect::<Result<_>>()?;
        let n = source_rows.len();
        let dev = b.embeddings.word.weight.device();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(source_rows, [n]), &dev);
        let theirs = b.embeddings.word.weight.val().select(0, idx);
        if !bits_equal(
            a.embeddings.word.weight.val().into_data(),
            theirs.into_data(),
        ) {
            return Err(ModelError::Invalid(
                "the word embeddings differ from the source's".into(),
            ));
        }
        let pairs: [(&str, Vec<TensorData>, Vec<TensorData>); 3] = [
            (
                "position embeddings",
                floats(&a.embeddings.position),
                floats(&b.embeddings.position),
            ),
            (
                "token-type embeddings",
                floats(&a.embeddings.token_type),
                floats(&b.embeddings.token_type),
            ),
            (
                "embedding LayerNorm",
                floats(&a.embeddings.norm),
                floats(&b.embeddings.norm),
            ),
        ];
        for (what, x, y) in pairs {
            if !all_bits_equal(x, y) {
                return Err(ModelError::Invalid(format!(
                    "the {what} differ from the source's"
                )));
            }
        }
        for l in 0..k {
            if !all_bits_equal(floats(&a.layers[l]), floats(&b.layers[l])) {
                return Err(ModelError::Invalid(format!(
                    "layer {} differs from the source's",
                    l + 1
                )));
            }
        }
        Ok(())
    }
}

/// Input positions grouped as [`Embedder::embed`] groups them: longest first, `batch_size`
/// at a time (ties keep input order).
pub(crate) fn length_batches(seqs: &[Vec<u32>], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

struct Floats(Vec<TensorData>);

impl ModuleVisitor for Floats {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().into_data());
    }
}

fn floats<M: Module>(m: &M) -> Vec<TensorData> {
    let mut v = Floats(Vec::new());
    m.visit(&mut v);
    v.0
}

fn all_bits_equal(x: Vec<TensorData>, y: Vec<TensorData>) -> bool {
    x.len() == y.len() && x.into_iter().zip(y).all(|(a, b)| bits_equal(a, b))
}

fn bits_equal(a: TensorData, b: TensorData) -> bool {
    if a.shape() != b.shape() {
        return false;
    }
    match (
        a.convert::<f32>().try_into_vec::<f32>(),
        b.convert::<f32>().try_into_vec::<f32>(),
    ) {
        (Ok(x), Ok(y)) => x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
        _ => false,
    }
}
