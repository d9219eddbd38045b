//! One step's loss, per method: where a new objective goes. OPTICAL's transport cost (and the
//! hybrid's sentence term), the MSE and KL sentence losses, the joint objective's monolingual
//! term, and the helpers that pad teacher states and read values back.

use std::collections::{HashMap, HashSet};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Bool;
use clir_data::formats::BitextPair;
use clir_models::TextKind;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Method, TrainConfig};
use crate::error::{Result, TrainError};
use crate::losses::{TokenStates, contrastive_loss, joint_loss, kl_loss, mse_loss, optical_loss};
use crate::monolingual::MonoQuery;
use crate::prefix_cache::PrefixCache;
use crate::teacher::{TeacherEntry, TeacherStates};
use ot_core::sharpness::PlanSharpness;

use super::batches::BatchOrder;
use super::student::{Student, Tokenized, content_mask};

/// Per-token masses `log(1 + N / df)` from document frequencies over `corpus`.
pub(crate) fn idf_table<'a>(corpus: impl Iterator<Item = &'a [u32]>) -> HashMap<u32, f32> {
    let mut df: HashMap<u32, usize> = HashMap::new();
    let mut n = 0usize;
    for ids in corpus {
        n += 1;
        for id in ids.iter().copied().collect::<HashSet<_>>() {
            *df.entry(id).or_default() += 1;
        }
    }
    df.into_iter()
        .map(|(id, c)| (id, (1.0 + n as f64 / c as f64).ln() as f32))
        .collect()
}

/// Token masses by id: `(teacher vocabulary, student vocabulary)`.
pub(crate) type IdfTables = (HashMap<u32, f32>, HashMap<u32, f32>);

pub(crate) struct StepInputs<'a> {
    pub(crate) cfg: &'a TrainConfig,
    pub(crate) pairs: &'a [BitextPair],
    pub(crate) idx: &'a [usize],
    pub(crate) teacher: &'a TeacherStates,
    pub(crate) teacher_masks: &'a [Vec<bool>],
    pub(crate) idf: Option<&'a IdfTables>,
    pub(crate) side: TextKind,
    /// Joint objective: the query batches, the queries and the step.
    pub(crate) mono: Option<(&'a MonoBatches, &'a [MonoQuery], usize)>,
    /// The student's frozen-prefix states, when cached.
    pub(crate) prefix: Option<&'a PrefixCache>,
    /// The objective of this step (the method, or `Mse` during a warm start).
    pub(crate) method: Method,
}

/// Seed offset of the monolingual query order (independent of the bitext order).
pub(crate) const MONO_SEED: u64 = 0x4A4F_494E_545F_4D4F;

/// The joint objective's monolingual batches: teacher query embeddings, a seeded order of
/// the queries, and at each step one relevant document per query drawn with `(seed, step)`.
pub(crate) struct MonoBatches {
    pub(crate) queries: Vec<Vec<f32>>,
    pub(crate) order: BatchOrder,
    pub(crate) seed: u64,
}

impl MonoBatches {
    /// `(query index, document index)` pairs of step `step`.
    pub(crate) fn batch(&self, step: usize, queries: &[MonoQuery]) -> Vec<(usize, usize)> {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed
                .wrapping_mul(0xD129_1B5C_4A3F_8E27)
                .wrapping_add(step as u64),
        );
        self.order
            .batch(step)
            .into_iter()
            .map(|q| (q, rng.random_range(0..queries[q].docs.len())))
            .collect()
    }
}

/// What one step's loss computation returns.
pub(crate) struct StepLoss {
    pub(crate) loss: Tensor<1>,
    /// OT diagnostics (OT methods).
    pub(crate) diag: Option<ot_core::tensor::Diagnostics>,
    /// Batch mean of the cross-lingual plan's sharpness (OT methods).
    pub(crate) sharpness: Option<PlanSharpness>,
    /// Student tokens processed.
    pub(crate) tokens: usize,
    /// Joint objective: `(cross-lingual, monolingual)` terms before weighting.
    pub(crate) terms: Option<(f64, f64)>,
    /// Hybrid objective: `(OT, sentence MSE)` terms before weighting.
    pub(crate) hybrid: Option<(f64, f64)>,
}

/// The batch loss, the OT diagnostics and plan sharpness (OT methods) and the student tokens
/// processed.
pub(crate) fn step_loss(student: &Student, x: &StepInputs<'_>) -> Result<StepLoss> {
    let cfg = x.cfg;
    let tgt: Vec<&str> = x.idx.iter().map(|&i| x.pairs[i].tgt.as_str()).collect();
    let tok = student.tokenize(&tgt, x.side)?;
    let batch = &tok.batch;
    let tokens: usize = batch.lengths.iter().sum();
    let dev = &student.device;
    let entries: Vec<&TeacherEntry> = x.idx.iter().map(|&i| &x.teacher.entries[i]).collect();
    match x.method {
        Method::Optical | Method::Joint => {
            let teacher = teacher_tokens(&entries, x, dev);
            let (cross, diag, sharpness, states) = ot_term(student, &tok, &teacher, x)?;
            if x.method == Method::Optical {
                let mu = cfg.loss.hybrid_mse_weight;
                let (loss, hybrid) = if mu > 0.0 {
                    let mse = sentence_mse(student, &tok, states, &entries, x)?;
                    let terms = (scalar(cross.clone())?, scalar(mse.clone())?);
                    (cross + mse.mul_scalar(mu), Some(terms))
                } else {
                    (cross, None)
                };
                return Ok(StepLoss {
                    loss,
                    diag: Some(diag),
                    sharpness: Some(sharpness),
                    tokens,
                    terms: None,
                    hybrid,
                });
            }
            let (mono_state, queries, step) = x.mono.ok_or_else(|| {
                TrainError::Invalid("the joint objective needs monolingual queries".into())
            })?;
            let pairs = mono_state.batch(step, queries);
            let docs: Vec<&str> = pairs
                .iter()
                .map(|&(q, d)| queries[q].docs[d].as_str())
                .collect();
            let (doc_emb, doc_tokens) = student.embed(&docs, TextKind::Passage, x.prefix)?;
            let d = mono_state.queries[0].len();
            let flat: Vec<f32> = pairs
                .iter()
                .flat_map(|&(q, _)| mono_state.queries[q].iter().copied())
                .collect();
            let q_emb = Tensor::<2>::from_data(TensorData::new(flat, [pairs.len(), d]), dev);
            let mono = contrastive_loss(q_emb, doc_emb, cfg.loss.joint_temperature);
            let terms = (scalar(cross.clone())?, scalar(mono.clone())?);
            let tokens = tokens + doc_tokens;
            Ok(StepLoss {
                loss: joint_loss(cross, mono, cfg.loss.joint_lambda),
                diag: Some(diag),
                sharpness: Some(sharpness),
                tokens,
                terms: Some(terms),
                hybrid: None,
            })
        }
        Method::Mse | Method::Kl => {
            let n = student.encoder.num_layers();
            let h = student.states(&tok, n, x.prefix)?;
            let s = student.sentence_embeddings(h, batch.mask_tensor(dev));
            let d = x.teacher.dim;
            let flat: Vec<f32> = entries
                .iter()
                .flat_map(|e| e.sentence.iter().copied())
                .collect();
            let t = Tensor::<2>::from_data(TensorData::new(flat, [entries.len(), d]), dev);
            if x.method == Method::Kl {
                return Ok(StepLoss {
                    loss: kl_loss(t, s, cfg.loss.kl_temperature),
                    diag: None,
                    sharpness: None,
                    tokens,
                    terms: None,
                    hybrid: None,
                });
            }
            let mut loss = mse_loss(t.clone(), s);
            let mut tokens = tokens;
            if cfg.loss.mse_english_term {
                // make_multilingual's second term: the student's English onto the teacher's.
                let src: Vec<&str> = x.idx.iter().map(|&i| x.pairs[i].src.as_str()).collect();
                let (s_en, en_tokens) = student.embed(&src, x.side, x.prefix)?;
                tokens += en_tokens;
                loss = loss + mse_loss(t, s_en);
            }
            Ok(StepLoss {
                loss,
                diag: None,
                sharpness: None,
                tokens,
                terms: None,
                hybrid: None,
            })
        }
    }
}

/// The hybrid objective's sentence term: the MSE between the student's sentence embedding
/// of the batch (from its last layer: `states` when the OT term read that layer) and the
/// teacher's sentence embeddings `entries`.
pub(crate) fn sentence_mse(
    student: &Student,
    tok: &Tokenized,
    states: (usize, Tensor<3>),
    entries: &[&TeacherEntry],
    x: &StepInputs<'_>,
) -> Result<Tensor<1>> {
    let dev = &student.device;
    let n = student.encoder.num_layers();
    let h = match states {
        (layer, h) if layer == n => h,
        _ => student.states(tok, n, x.prefix)?,
    };
    let s = student.sentence_embeddings(h, tok.batch.mask_tensor(dev));
    let flat: Vec<f32> = entries
        .iter()
        .flat_map(|e| e.sentence.iter().copied())
        .collect();
    let t = Tensor::<2>::from_data(TensorData::new(flat, [entries.len(), x.teacher.dim]), dev);
    Ok(mse_loss(t, s))
}

/// OT term between the teacher's English tokens and the student's tokens of `batch`, with
/// the student layer it read and its states.
#[allow(clippy::type_complexity)]
pub(crate) fn ot_term(
    student: &Student,
    tok: &Tokenized,
    teacher: &(TokenStates, Option<Tensor<2>>),
    x: &StepInputs<'_>,
) -> Result<(
    Tensor<1>,
    ot_core::tensor::Diagnostics,
    PlanSharpness,
    (usize, Tensor<3>),
)> {
    let layer = x
        .cfg
        .model
        .student_layer
        .unwrap_or(student.encoder.num_layers());
    let batch = &tok.batch;
    let states = student.states(tok, layer, x.prefix)?;
    let dev = &student.device;
    let rows: Vec<Vec<bool>> = (0..batch.batch)
        .map(|r| {
            let ids: Vec<u32> = batch.row(r).iter().map(|&i| i as u32).collect();
            let mut m = content_mask(&ids, &student.specials, &student.prefix);
            m.resize(batch.len, false);
            m
        })
        .collect();
    let flat: Vec<bool> = rows.iter().flatten().copied().collect();
    let smask = Tensor::<2, Bool>::from_data(TensorData::new(flat, [batch.batch, batch.len]), dev);
    let weights = match (x.idf, &teacher.1) {
        (Some((_, s_idf)), Some(tw)) => {
            let sw: Vec<f32> = batch
                .ids
                .iter()
                .map(|&id| s_idf.get(&(id as u32)).copied().unwrap_or(1.0))
                .collect();
            let sw = Tensor::<2>::from_data(TensorData::new(sw, [batch.batch, batch.len]), dev);
            Some((tw.clone(), sw))
        }
        _ => None,
    };
    let s = TokenStates {
        states: states.clone(),
        mask: smask,
    };
    let (loss, diag, sharpness) = optical_loss(&teacher.0, &s, weights, &x.cfg.loss.optical)?;
    Ok((loss, diag, sharpness, (layer, states)))
}

/// Pads the teacher's token states of a batch into `(B, n, d)` with their content mask and,
/// for IDF marginals, their weights.
pub(crate) fn teacher_tokens(
    entries: &[&TeacherEntry],
    x: &StepInputs<'_>,
    dev: &Device,
) -> (TokenStates, Option<Tensor<2>>) {
    let d = x.teacher.dim;
    let b = entries.len();
    let n = entries.iter().map(|e| e.len()).max().unwrap_or(0);
    let mut states = vec![0f32; b * n * d];
    let mut mask = vec![false; b * n];
    let mut weights = vec![0f32; b * n];
    for (r, (e, &i)) in entries.iter().zip(x.idx).enumerate() {
        states[r * n * d..r * n * d + e.states.len()].copy_from_slice(&e.states);
        for (c, &m) in x.teacher_masks[i].iter().enumerate() {
            mask[r * n + c] = m;
        }
        if let Some((t_idf, _)) = x.idf {
            for (c, id) in e.ids.iter().enumerate() {
                weights[r * n + c] = t_idf.get(id).copied().unwrap_or(1.0);
            }
        }
    }
    let ts = TokenStates {
        states: Tensor::from_data(TensorData::new(states, [b, n, d]), dev),
        mask: Tensor::from_data(TensorData::new(mask, [b, n]), dev),
    };
    let w = x
        .idf
        .map(|_| Tensor::<2>::from_data(TensorData::new(weights, [b, n]), dev));
    (ts, w)
}

/// `Σ ‖∂L/∂θ‖²` over the trainable parameters of `module`, read back with one device sync:
/// NaN or infinite when any gradient entry is (or when the norm overflows f32, which is
/// divergence as well).
pub fn grad_squared_norm<M: Module>(module: &M, grads: &GradientsParams) -> Result<f64> {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl burn::module::ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    v.total.map_or(Ok(0.0), scalar)
}

pub(crate) fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Invalid(format!("reading the loss: {e:?}")))?;
    Ok(v[0] as f64)
}
