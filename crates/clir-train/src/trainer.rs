//! The distillation loop: a frozen teacher reads the English side of each bitext pair, the
//! student reads the translation, and only the student is updated (AdamW, linear warm-up and
//! decay, gradient clipping, optional layer freezing).
//!
//! A run directory holds `config.toml`, `log.jsonl` (one line per step), `checkpoints/` and,
//! at the end, `student/` (a checkpoint [`Embedder::save`] wrote). Checkpoints hold the
//! student, the optimiser state and the step; the batch order is a pure function of the seed
//! and the step, so a resumed run ends with the same weights as an uninterrupted one.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Bool;
use clir_data::formats::BitextPair;
use clir_models::{Embedder, Encoder, TextKind, TextTokenizer, TokenBatch, l2_normalize, pool};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Marginal, Method, TrainConfig};
use crate::error::{Result, TrainError};
use crate::losses::{TokenStates, contrastive_loss, joint_loss, kl_loss, mse_loss, optical_loss};
use crate::monolingual::MonoQuery;
use crate::prefix_cache::PrefixCache;
use crate::teacher::{TeacherEntry, TeacherStates, teacher_states};
use ot_core::sharpness::PlanSharpness;

/// Files of a run directory.
pub const RUN_CONFIG: &str = "config.toml";
pub const RUN_LOG: &str = "log.jsonl";
pub const RUN_STUDENT: &str = "student";
pub const RUN_CHECKPOINTS: &str = "checkpoints";
pub const RUN_SNAPSHOTS: &str = "snapshots";
const LATEST: &str = "latest";
const CKPT_STATE: &str = "state.json";
const CKPT_OPTIMIZER: &str = "optimizer.bpk";

/// What a run needs besides its configuration.
#[derive(Debug, Clone)]
pub struct TrainInputs {
    /// The bitext (English first).
    pub pairs: Vec<BitextPair>,
    /// English queries with relevant English documents: the joint objective's monolingual
    /// term (required by `joint`, unused otherwise; see [`crate::monolingual`]).
    pub monolingual: Vec<MonoQuery>,
    /// Extra texts whose tokens the trimmed student vocabulary must keep (e.g. the target
    /// documents it will encode at retrieval time).
    pub vocab_texts: Vec<String>,
    /// Where teacher states are kept between runs (`None`: recompute every time).
    pub teacher_store: Option<PathBuf>,
    /// With the embeddings and the lowest `k ≥ 1` layers frozen, compute the student's `hᵏ`
    /// once per sentence and run only the layers above it at each step
    /// ([`crate::prefix_cache`]; default on). The losses equal the uncached ones to f32
    /// rounding; `false` is for measuring the difference.
    pub prefix_cache: bool,
    /// Where those states are kept between runs (`None`: in memory, for this run only).
    pub prefix_store: Option<PathBuf>,
    /// Stop after this many steps in this call, leaving a checkpoint (tests simulate a
    /// killed run with it).
    pub stop_after: Option<usize>,
    /// Steps after which the student is also saved, as `snapshots/step-NNNNNN/` (a model
    /// folder like `student/`, see [`snapshot_dir`]): a training curve from one run, each
    /// point the model a run stopped at that step would hold. Each must lie in
    /// `1..=optim.steps`.
    pub snapshots: Vec<usize>,
    /// Pretrained teacher and student, loaded once and shared by the runs given the same
    /// cache (`Default`: a fresh cache, loaded on first use).
    pub models: clir_models::embedder::ModelCache,
}

impl Default for TrainInputs {
    fn default() -> Self {
        TrainInputs {
            pairs: Vec::new(),
            monolingual: Vec::new(),
            vocab_texts: Vec::new(),
            teacher_store: None,
            prefix_cache: true,
            prefix_store: None,
            stop_after: None,
            snapshots: Vec::new(),
            models: Default::default(),
        }
    }
}

/// One line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
    /// Sinkhorn iterations run (OT methods; 0 otherwise).
    pub ot_iterations: usize,
    /// Iterations the slowest item of the batch needed to meet the tolerance, exactly (not
    /// rounded up to the check interval); `None` if one never did or for non-OT methods.
    #[serde(default)]
    pub ot_iterations_needed: Option<usize>,
    /// Largest marginal error in the batch (OT methods).
    pub ot_marginal_error: f64,
    pub ot_converged: bool,
    /// Mean ε (cost units) the batch's plans were solved with (OT methods).
    #[serde(default)]
    pub ot_epsilon: Option<f64>,
    /// Batch means of the cross-lingual plan's sharpness (OT methods, see
    /// `ot_core::sharpness`): `H(P)/log(n·m)`, the share of each teacher token's mass on its
    /// best student token, `⟨P, C⟩` and the mean cost of the same matrices.
    #[serde(default)]
    pub plan_entropy: Option<f64>,
    #[serde(default)]
    pub plan_best_mass: Option<f64>,
    #[serde(default)]
    pub ot_transport_cost: Option<f64>,
    #[serde(default)]
    pub ot_mean_cost: Option<f64>,
    /// The joint objective's two terms before weighting: the cross-lingual OT loss and the
    /// monolingual contrastive loss.
    #[serde(default)]
    pub cross_loss: Option<f64>,
    #[serde(default)]
    pub mono_loss: Option<f64>,
    /// The hybrid objective's sentence MSE before weighting by `μ` (its OT term is
    /// `cross_loss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentence_loss: Option<f64>,
    /// Student tokens processed in the step (padding excluded).
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
}

/// A run's log in a few numbers (stored with each `reproduce` cell).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub first_loss: f64,
    pub last_loss: f64,
    /// Steps whose Sinkhorn solve missed its tolerance for some batch item (OT methods): a
    /// counted event, not only a log line.
    pub ot_unconverged_steps: usize,
    /// Means over the steps of the [`StepLog`] fields of the same names (OT methods);
    /// `ot_iterations_needed` over the converged steps.
    pub ot_iterations_needed: Option<f64>,
    pub ot_epsilon: Option<f64>,
    pub plan_entropy: Option<f64>,
    pub plan_best_mass: Option<f64>,
    pub ot_transport_cost: Option<f64>,
    pub ot_mean_cost: Option<f64>,
    /// Joint objective: the two terms' means over the first and the last tenth of the steps
    /// (at least one step each), `(first, last)`.
    #[serde(default)]
    pub cross_loss: Option<(f64, f64)>,
    #[serde(default)]
    pub mono_loss: Option<(f64, f64)>,
}

impl TrainSummary {
    /// `None` for an empty log.
    pub fn from_log(log: &[StepLog]) -> Option<Self> {
        let (first, last) = (log.first()?, log.last()?);
        let mean = |f: fn(&StepLog) -> Option<f64>| {
            let v: Vec<f64> = log.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let ot = log.iter().any(|l| l.ot_iterations > 0);
        Some(TrainSummary {
            steps: log.len(),
            first_loss: first.loss,
            last_loss: last.loss,
            ot_unconverged_steps: log
                .iter()
                .filter(|l| l.ot_iterations > 0 && !l.ot_converged)
                .count(),
            ot_iterations_needed: if ot {
                mean(|l| l.ot_iterations_needed.map(|k| k as f64))
            } else {
                None
            },
            ot_epsilon: mean(|l| l.ot_epsilon),
            plan_entropy: mean(|l| l.plan_entropy),
            plan_best_mass: mean(|l| l.plan_best_mass),
            ot_transport_cost: mean(|l| l.ot_transport_cost),
            ot_mean_cost: mean(|l| l.ot_mean_cost),
            cross_loss: first_last(log, |l| l.cross_loss),
            mono_loss: first_last(log, |l| l.mono_loss),
        })
    }
}

/// Means of `f` over the first and the last tenth of `log` (at least one step each), when
/// every step has it.
fn first_last(log: &[StepLog], f: fn(&StepLog) -> Option<f64>) -> Option<(f64, f64)> {
    let v: Vec<f64> = log.iter().map(f).collect::<Option<_>>()?;
    let k = (v.len() / 10).max(1).min(v.len());
    if k == 0 {
        return None;
    }
    let mean = |w: &[f64]| w.iter().sum::<f64>() / w.len() as f64;
    Some((mean(&v[..k]), mean(&v[v.len() - k..])))
}

/// What [`train`] leaves behind.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The trained student (inference mode, on the run's device, at its base model's length)
    /// with the vocabulary it was trained with: trimmed unless `model.trim_vocab = false`, so
    /// it refuses texts with tokens outside the bitext and `vocab_texts` rather than read them
    /// as `<unk>`. `Embedder::load_checkpoint(run_dir/student)` is the same model over the
    /// full vocabulary (the rows trimming dropped come from the base model).
    pub student: Embedder,
    pub run_dir: PathBuf,
    /// Steps completed (equals `optim.steps` unless `stop_after` cut the run short).
    pub steps_done: usize,
    /// The step a checkpoint was resumed from.
    pub resumed_from: Option<usize>,
    /// Per-step log of this call.
    pub log: Vec<StepLog>,
    /// Teacher sentences read from the disk store rather than computed.
    pub teacher_reused: usize,
    /// Frozen-prefix cache: `(layers k, sentences computed, sentences read from the store)`;
    /// `None` when the run does not use one.
    pub prefix: Option<(usize, usize, usize)>,
    /// Seconds spent filling the frozen-prefix cache (not part of any step's time).
    pub prefix_seconds: f64,
}

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    step: usize,
}

/// The student being trained: the parts of an [`Embedder`] with its encoder on the
/// autodiff device.
struct Student {
    /// The model's configuration; its `max_len` is the length the student encodes at once
    /// trained (its base model's maximum), not the training length.
    config: clir_models::EmbedderConfig,
    /// The tokenizer at the training length `model.max_len` (capped by the model's own).
    tokenizer: TextTokenizer,
    encoder: Encoder,
    /// The autodiff device the encoder trains on.
    device: Device,
    /// The plain device the run was started on.
    plain: Device,
    specials: HashSet<u32>,
    prefix: Vec<u32>,
    /// Whether any parameter is trained (not every layer and the embeddings frozen).
    trainable: bool,
}

impl Student {
    /// Takes over `e` for training. Its `tokenizer.json` is copied into the run directory
    /// first: checkpoints it may have been loaded from are replaced as training goes on.
    fn from_embedder(mut e: Embedder, cfg: &TrainConfig, run_dir: &Path) -> Result<Self> {
        let tok_path = run_dir.join("student-tokenizer.json");
        if e.tokenizer.path() != tok_path {
            std::fs::copy(e.tokenizer.path(), &tok_path)
                .map_err(|err| TrainError::io(&tok_path, err))?;
            e.tokenizer = e.tokenizer.relocated(&tok_path)?;
        }
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
    fn to_embedder(&self) -> Result<Embedder> {
        Ok(Embedder {
            config: self.config.clone(),
            encoder: self.encoder.valid(),
            tokenizer: self.tokenizer.clone().with_max_len(self.config.max_len)?,
            device: self.plain.clone(),
        })
    }

    /// The training length (tokens, specials included).
    fn train_len(&self) -> usize {
        self.tokenizer.max_len()
    }

    /// Pooled (and, if the model says so, L2-normalised) sentence embeddings `(B, d)` of the
    /// last layer's states `h`.
    fn sentence_embeddings(&self, h: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let e = pool(h, mask, self.config.pooling);
        if self.config.normalize {
            l2_normalize(e)
        } else {
            e
        }
    }

    /// `texts` read as `kind`: tokenised once, in the original vocabulary (what the
    /// frozen-prefix cache checks) and in the emitted, possibly trimmed, one (the batch).
    fn tokenize(&self, texts: &[&str], kind: TextKind) -> Result<Tokenized> {
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
    fn prefixed<S: AsRef<str>>(&self, texts: &[S], kind: TextKind) -> Vec<String> {
        let prefix = self.config.prefix(kind);
        texts
            .iter()
            .map(|t| format!("{prefix}{}", t.as_ref()))
            .collect()
    }

    /// Token states `hˡ` of tokenised texts: from the frozen-prefix cache when there is one
    /// below `l` (only layers `k+1 … l` run), else the whole forward pass.
    fn states(
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
    fn embed(
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
struct Tokenized {
    prefixed: Vec<String>,
    original: Vec<Vec<u32>>,
    batch: TokenBatch,
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

/// Per-token masses `log(1 + N / df)` from document frequencies over `corpus`.
fn idf_table<'a>(corpus: impl Iterator<Item = &'a [u32]>) -> HashMap<u32, f32> {
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

/// Builds the student [`Embedder`] a fresh run starts from: loads it, keeps its first
/// `student_depth` layers and trims its vocabulary to the bitext plus `vocab_texts`. It
/// keeps the pretrained length; training reads at most `model.max_len` tokens of a sentence.
pub fn initial_student(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    device: &Device,
) -> Result<Embedder> {
    // Loaded and trimmed on the CPU, then moved: the untrimmed table may not fit a GPU buffer.
    let mut student = inputs
        .models
        .load(&cfg.model.student, &staging_device(device))?;
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
    if &student.device != device {
        student.encoder = student.encoder.to_device(device);
        student.device = device.clone();
    }
    Ok(student)
}

/// Where models are loaded before they move to `device`: the CPU default backend when one
/// is compiled in, else `device` itself.
pub fn staging_device(device: &Device) -> Device {
    ot_core::backend::Backend::cpu_default()
        .device()
        .unwrap_or_else(|_| device.clone())
}

/// Runs (or resumes) training into `run_dir` on `device`.
pub fn train(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    run_dir: &Path,
    device: &Device,
) -> Result<TrainOutcome> {
    cfg.validate()
        .map_err(|m| TrainError::config(&run_dir.join(RUN_CONFIG), m))?;
    if inputs.pairs.is_empty() {
        return Err(TrainError::Invalid("the bitext holds no pairs".into()));
    }
    if let Some(&s) = inputs
        .snapshots
        .iter()
        .find(|&&s| s == 0 || s > cfg.optim.steps)
    {
        return Err(TrainError::Invalid(format!(
            "snapshot step {s} lies outside the run's steps 1..={}",
            cfg.optim.steps
        )));
    }
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    check_or_write_config(cfg, run_dir)?;

    // A finished run is read back, not trained again.
    if is_finished(run_dir) {
        if let Some(&s) = inputs
            .snapshots
            .iter()
            .find(|&&s| !snapshot_dir(run_dir, s).is_dir())
        {
            return Err(TrainError::Invalid(format!(
                "{}: the run is finished without a snapshot at step {s}; train it again in \
                 another folder (or delete this one) to save snapshots",
                run_dir.display()
            )));
        }
        // As trained (trimmed), like the student a fresh run returns.
        let student = Embedder::load_checkpoint_as_saved(&run_dir.join(RUN_STUDENT), device)?;
        let log_path = run_dir.join(RUN_LOG);
        let text = std::fs::read_to_string(&log_path).map_err(|e| TrainError::io(&log_path, e))?;
        let log = text
            .lines()
            .enumerate()
            .map(|(no, l)| {
                serde_json::from_str(l)
                    .map_err(|e| TrainError::checkpoint(&log_path, format!("line {}: {e}", no + 1)))
            })
            .collect::<Result<Vec<StepLog>>>()?;
        return Ok(TrainOutcome {
            student,
            run_dir: run_dir.to_path_buf(),
            steps_done: cfg.optim.steps,
            resumed_from: Some(cfg.optim.steps),
            log,
            teacher_reused: 0,
            prefix: None,
            prefix_seconds: 0.0,
        });
    }

    // Student: from the last checkpoint, or freshly initialised.
    let ckpt_dir = run_dir.join(RUN_CHECKPOINTS);
    let latest = read_latest(&ckpt_dir)?;
    let (student, mut optim, start) = match &latest {
        Some((step, dir)) => {
            let e = Embedder::load_checkpoint_as_saved(&dir.join(RUN_STUDENT), device)?;
            let student = Student::from_embedder(e, cfg, run_dir)?;
            let optim = adamw(cfg)
                .load(dir.join(CKPT_OPTIMIZER))
                .map_err(|e| TrainError::checkpoint(&dir.join(CKPT_OPTIMIZER), e.to_string()))?;
            (student, optim, *step)
        }
        None => {
            let e = initial_student(cfg, inputs, device)?;
            (Student::from_embedder(e, cfg, run_dir)?, adamw(cfg), 0)
        }
    };
    let mut student = student;

    // Teacher outputs of the English side (from the disk store when available).
    let side: TextKind = cfg.model.student_side.into();
    // The teacher only produces cached states: it runs on the CPU default backend, so that its
    // untrimmed vocabulary (250k × 384 for e5) never has to fit a GPU buffer.
    let teacher = inputs
        .models
        .load(&cfg.model.teacher, &staging_device(device))?;
    let teacher_max = teacher.config.max_len.min(cfg.model.max_len);
    let teacher = Embedder {
        tokenizer: teacher.tokenizer.clone().with_max_len(teacher_max)?,
        config: clir_models::EmbedderConfig {
            max_len: teacher_max,
            ..teacher.config
        },
        ..teacher
    };
    let (t_specials, t_prefix) = token_roles(&teacher.tokenizer, teacher.config.prefix(side))?;
    let english: Vec<String> = inputs.pairs.iter().map(|p| p.src.clone()).collect();
    let t_states = teacher_states(
        &teacher,
        &english,
        side,
        cfg.model.teacher_layer,
        inputs.teacher_store.as_deref(),
        32,
        cfg.run.progress,
    )?;
    if t_states.dim != student.config.encoder.hidden_size
        && matches!(cfg.loss.method, Method::Optical | Method::Joint)
        && cfg.loss.optical.cost == ot_core::tensor::CostKind::SquaredEuclidean
    {
        return Err(TrainError::Invalid(format!(
            "squared-Euclidean cost needs equal widths: teacher {} vs student {}",
            t_states.dim, student.config.encoder.hidden_size
        )));
    }
    if t_states.dim != student.config.encoder.hidden_size {
        return Err(TrainError::Invalid(format!(
            "teacher width {} differs from the student's {}",
            t_states.dim, student.config.encoder.hidden_size
        )));
    }
    let teacher_masks: Vec<Vec<bool>> = t_states
        .entries
        .iter()
        .map(|e| content_mask(&e.ids, &t_specials, &t_prefix))
        .collect();
    // The joint objective's queries, encoded once by the frozen teacher.
    let mono = if cfg.loss.method == Method::Joint {
        if inputs.monolingual.len() < 2 {
            return Err(TrainError::Invalid(format!(
                "the joint objective needs at least 2 monolingual queries (in-batch negatives), got {}",
                inputs.monolingual.len()
            )));
        }
        if let Some(q) = inputs.monolingual.iter().find(|q| q.docs.is_empty()) {
            return Err(TrainError::Invalid(format!(
                "monolingual query {} has no relevant document",
                q.id
            )));
        }
        let texts: Vec<&str> = inputs.monolingual.iter().map(|q| q.text.as_str()).collect();
        let queries = teacher.embed(&texts, TextKind::Query, 32)?;
        let batch = cfg
            .loss
            .joint_batch_size
            .unwrap_or(cfg.optim.batch_size)
            .min(queries.len());
        Some(MonoBatches {
            queries,
            order: BatchOrder::new(inputs.monolingual.len(), batch, cfg.run.seed ^ MONO_SEED),
            seed: cfg.run.seed,
        })
    } else {
        None
    };
    drop(teacher);

    // The student's frozen prefix, computed once per sentence by the pretrained student.
    let prefix_started = Instant::now();
    let prefix = match frozen_prefix_layers(cfg, &student) {
        Some(k) if inputs.prefix_cache => {
            let source = inputs
                .models
                .load(&cfg.model.student, &staging_device(device))?
                .with_max_len(student.train_len())?;
            student.to_embedder()?.check_shares_prefix(&source, k)?;
            let mut cache = PrefixCache::new(source, k, inputs.prefix_store.as_deref())?;
            let targets: Vec<&str> = inputs.pairs.iter().map(|p| p.tgt.as_str()).collect();
            let mut texts: Vec<String> = student.prefixed(&targets, side);
            let mse_steps = cfg.loss.method == Method::Mse || cfg.loss.warm_start_mse_steps > 0;
            if mse_steps && cfg.loss.mse_english_term {
                texts.extend(student.prefixed(&english, side));
            }
            if cfg.loss.method == Method::Joint {
                let docs: Vec<&str> = inputs
                    .monolingual
                    .iter()
                    .flat_map(|q| q.docs.iter().map(String::as_str))
                    .collect();
                texts.extend(student.prefixed(&docs, TextKind::Passage));
            }
            cache.fill(&texts, 32, cfg.run.progress)?;
            Some(cache)
        }
        _ => None,
    };
    let prefix_seconds = prefix_started.elapsed().as_secs_f64();

    let idf = match cfg.loss.marginal {
        Marginal::Uniform => None,
        Marginal::Idf => {
            let t = idf_table(t_states.entries.iter().map(|e| e.ids.as_slice()));
            let tgt: Vec<Vec<u32>> = inputs
                .pairs
                .iter()
                .map(|p| {
                    student
                        .tokenizer
                        .encode(&format!("{}{}", student.config.prefix(side), p.tgt))
                })
                .collect::<clir_models::Result<_>>()?;
            let s = idf_table(tgt.iter().map(Vec::as_slice));
            Some((t, s))
        }
    };

    // The log keeps the steps up to the checkpoint the run resumes from.
    let log_path = run_dir.join(RUN_LOG);
    let mut log_file = open_log(&log_path, start)?;

    let total = cfg.optim.steps;
    let end = match inputs.stop_after {
        Some(n) => (start + n).min(total),
        None => total,
    };
    // A bar on a terminal; elsewhere (Slurm, CI) a line every 5 % or 30 s with the loss,
    // steps/s and ETA.
    let bar = clir_eval::progress::Progress::task("train", total as u64)
        .unit("steps")
        .template("train {bar:30} {pos}/{len} steps [{elapsed}<{eta}] {msg}")
        .show(cfg.run.progress);
    bar.set_position(start as u64);
    let order = {
        let prefix = student.config.prefix(side);
        let lengths = inputs
            .pairs
            .iter()
            .map(|p| {
                Ok(student
                    .tokenizer
                    .encode(&format!("{prefix}{}", p.tgt))?
                    .len())
            })
            .collect::<Result<Vec<usize>>>()?;
        BatchOrder::bucketed(
            lengths,
            cfg.optim.batch_size,
            cfg.run.seed,
            cfg.optim.length_pool,
        )
    };
    let started = Instant::now();
    let mut log = Vec::new();
    for step in start..end {
        let t0 = Instant::now();
        let idx = order.batch(step);
        let ctx = StepInputs {
            cfg,
            pairs: &inputs.pairs,
            idx: &idx,
            teacher: &t_states,
            teacher_masks: &teacher_masks,
            idf: idf.as_ref(),
            side,
            mono: mono
                .as_ref()
                .map(|m| (m, inputs.monolingual.as_slice(), step)),
            prefix: prefix.as_ref(),
            method: cfg.method_at(step),
        };
        let StepLoss {
            loss,
            diag,
            sharpness,
            tokens,
            terms,
            hybrid,
        } = step_loss(&student, &ctx)?;
        let loss_value = scalar(loss.clone())?;
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged {
                step,
                msg: format!("loss is {loss_value}"),
            });
        }
        let lr = cfg.learning_rate(step);
        // With the embeddings and every layer frozen nothing is tracked: the step is logged and
        // the student stays as initialised (how evaluation parity with zero-shot is checked).
        if student.trainable {
            let grads = GradientsParams::from_grads(loss.backward(), &student.encoder);
            let squared_norm = grad_squared_norm(&student.encoder, &grads)?;
            if !squared_norm.is_finite() {
                return Err(TrainError::Diverged {
                    step,
                    msg: format!(
                        "the gradient is not finite (squared norm {squared_norm}) while the loss is {loss_value}"
                    ),
                });
            }
            student.encoder = optim.step(lr, student.encoder, grads);
        }
        let secs = t0.elapsed().as_secs_f64();
        let entry = StepLog {
            step: step + 1,
            loss: loss_value,
            lr,
            ot_iterations: diag.as_ref().map_or(0, |d| d.iterations),
            ot_iterations_needed: diag.as_ref().and_then(|d| d.iterations_needed()),
            ot_marginal_error: diag.as_ref().map_or(0.0, |d| d.max_marginal_error() as f64),
            ot_converged: diag.as_ref().is_none_or(|d| d.all_converged()),
            ot_epsilon: diag
                .as_ref()
                .map(|d| d.epsilon.iter().sum::<f64>() / d.epsilon.len().max(1) as f64),
            plan_entropy: sharpness.map(|s| s.entropy_ratio),
            plan_best_mass: sharpness.map(|s| s.best_match_mass),
            ot_transport_cost: sharpness.map(|s| s.transport_cost),
            ot_mean_cost: sharpness.map(|s| s.mean_cost),
            cross_loss: terms.or(hybrid).map(|t| t.0),
            mono_loss: terms.map(|t| t.1),
            sentence_loss: hybrid.map(|t| t.1),
            tokens,
            tokens_per_s: tokens as f64 / secs.max(1e-9),
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        writeln!(
            log_file,
            "{}",
            serde_json::to_string(&entry).expect("a log line serialises")
        )
        .map_err(|e| TrainError::io(&log_path, e))?;
        bar.set_message(format!(
            "loss {:.4}, {:.0} tok/s",
            entry.loss, entry.tokens_per_s
        ));
        bar.inc(1);
        log.push(entry);
        let done = step + 1;
        if inputs.snapshots.contains(&done) {
            save_atomically(&student.to_embedder()?, &snapshot_dir(run_dir, done))?;
        }
        if done % cfg.run.checkpoint_every == 0 || done == end {
            log_file.flush().map_err(|e| TrainError::io(&log_path, e))?;
            write_checkpoint(&ckpt_dir, done, &student, &optim)?;
        }
    }
    bar.finish_and_clear();
    log_file.flush().map_err(|e| TrainError::io(&log_path, e))?;
    let embedder = student.to_embedder()?;
    if end == total {
        save_atomically(&embedder, &run_dir.join(RUN_STUDENT))?;
        // The final student is written: the checkpoints (weights and optimiser state) are no
        // longer needed to resume.
        let _ = std::fs::remove_dir_all(&ckpt_dir);
    }
    Ok(TrainOutcome {
        student: embedder,
        run_dir: run_dir.to_path_buf(),
        steps_done: end,
        resumed_from: latest.map(|(s, _)| s),
        log,
        teacher_reused: t_states.reused,
        prefix: prefix.map(|c| (c.layers(), c.computed, c.reused)),
        prefix_seconds,
    })
}

/// The frozen prefix a run may cache: `k` = the frozen layers when the embeddings are frozen
/// too, capped at the layer the OT methods read; `None` when nothing is frozen below a
/// trained layer.
fn frozen_prefix_layers(cfg: &TrainConfig, student: &Student) -> Option<usize> {
    let n = student.encoder.num_layers();
    let mut k = cfg.model.freeze_layers.min(n);
    if matches!(cfg.loss.method, Method::Optical | Method::Joint) {
        k = k.min(cfg.model.student_layer.unwrap_or(n));
    }
    (cfg.model.freeze_embeddings && k > 0).then_some(k)
}

/// The folder of the student a run in `run_dir` saved after `step` ([`TrainInputs::snapshots`]).
pub fn snapshot_dir(run_dir: &Path, step: usize) -> PathBuf {
    run_dir.join(RUN_SNAPSHOTS).join(format!("step-{step:06}"))
}

/// Saves `embedder` as the model folder `out`, written aside and renamed into place.
fn save_atomically(embedder: &Embedder, out: &Path) -> Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    }
    let tmp = temp_path(out);
    embedder.save(&tmp)?;
    let _ = std::fs::remove_dir_all(out);
    std::fs::rename(&tmp, out).map_err(|e| TrainError::io(out, e))
}

/// The step of the checkpoint an unfinished run in `run_dir` would resume from (`None`: it
/// starts from scratch).
pub fn checkpoint_step(run_dir: &Path) -> Result<Option<usize>> {
    Ok(read_latest(&run_dir.join(RUN_CHECKPOINTS))?.map(|(step, _)| step))
}

/// Whether `run_dir` holds a finished run (its final student).
pub fn is_finished(run_dir: &Path) -> bool {
    run_dir
        .join(RUN_STUDENT)
        .join(clir_models::embedder::CHECKPOINT_CONFIG)
        .is_file()
}

fn adamw(cfg: &TrainConfig) -> ModuleOptimizer {
    let mut c = AdamWConfig::new()
        .with_weight_decay(cfg.optim.weight_decay as f32)
        .with_epsilon(1e-8);
    if let Some(clip) = cfg.optim.grad_clip {
        c = c.with_grad_clipping(Some(
            burn::optim::grad_clipping::GradientClippingConfig::Norm(clip as f32),
        ));
    }
    c.init()
}

/// Token masses by id: `(teacher vocabulary, student vocabulary)`.
type IdfTables = (HashMap<u32, f32>, HashMap<u32, f32>);

struct StepInputs<'a> {
    cfg: &'a TrainConfig,
    pairs: &'a [BitextPair],
    idx: &'a [usize],
    teacher: &'a TeacherStates,
    teacher_masks: &'a [Vec<bool>],
    idf: Option<&'a IdfTables>,
    side: TextKind,
    /// Joint objective: the query batches, the queries and the step.
    mono: Option<(&'a MonoBatches, &'a [MonoQuery], usize)>,
    /// The student's frozen-prefix states, when cached.
    prefix: Option<&'a PrefixCache>,
    /// The objective of this step (the method, or `Mse` during a warm start).
    method: Method,
}

/// Seed offset of the monolingual query order (independent of the bitext order).
const MONO_SEED: u64 = 0x4A4F_494E_545F_4D4F;

/// The joint objective's monolingual batches: teacher query embeddings, a seeded order of
/// the queries, and at each step one relevant document per query drawn with `(seed, step)`.
struct MonoBatches {
    queries: Vec<Vec<f32>>,
    order: BatchOrder,
    seed: u64,
}

impl MonoBatches {
    /// `(query index, document index)` pairs of step `step`.
    fn batch(&self, step: usize, queries: &[MonoQuery]) -> Vec<(usize, usize)> {
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
struct StepLoss {
    loss: Tensor<1>,
    /// OT diagnostics (OT methods).
    diag: Option<ot_core::tensor::Diagnostics>,
    /// Batch mean of the cross-lingual plan's sharpness (OT methods).
    sharpness: Option<PlanSharpness>,
    /// Student tokens processed.
    tokens: usize,
    /// Joint objective: `(cross-lingual, monolingual)` terms before weighting.
    terms: Option<(f64, f64)>,
    /// Hybrid objective: `(OT, sentence MSE)` terms before weighting.
    hybrid: Option<(f64, f64)>,
}

/// The batch loss, the OT diagnostics and plan sharpness (OT methods) and the student tokens
/// processed.
fn step_loss(student: &Student, x: &StepInputs<'_>) -> Result<StepLoss> {
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
fn sentence_mse(
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
fn ot_term(
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
fn teacher_tokens(
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

fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Invalid(format!("reading the loss: {e:?}")))?;
    Ok(v[0] as f64)
}

/// The pairs of each step: epoch `e` is a permutation seeded by `(seed, e)`, cut into full
/// batches (a trailing partial batch is left out of that epoch unless it is the only one).
/// With lengths and a pool of `p > 1` batches, each run of `p · batch` pairs of the permutation
/// is sorted by length (longest first, stable) before it is cut, and the epoch's batches are
/// then shuffled by a second seeded permutation: every epoch still uses the same pairs once.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    n: usize,
    batch: usize,
    seed: u64,
    lengths: Option<Vec<usize>>,
    pool: usize,
}

impl BatchOrder {
    /// Plain random batches of `n` pairs.
    pub fn new(n: usize, batch: usize, seed: u64) -> Self {
        BatchOrder {
            n,
            batch: batch.min(n).max(1),
            seed,
            lengths: None,
            pool: 1,
        }
    }

    /// Length-bucketed batches of the pairs with these token counts.
    pub fn bucketed(lengths: Vec<usize>, batch: usize, seed: u64, pool: usize) -> Self {
        BatchOrder {
            pool: pool.max(1),
            ..BatchOrder::new(lengths.len(), batch, seed)
        }
        .with_lengths(lengths)
    }

    fn with_lengths(mut self, lengths: Vec<usize>) -> Self {
        self.lengths = Some(lengths);
        self
    }

    pub fn batches_per_epoch(&self) -> usize {
        (self.n / self.batch).max(1)
    }

    fn epoch_seed(&self, epoch: usize) -> u64 {
        self.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(epoch as u64)
    }

    /// Pair indices of optimiser step `step` (0-based).
    pub fn batch(&self, step: usize) -> Vec<usize> {
        let per = self.batches_per_epoch();
        let (epoch, k) = (step / per, step % per);
        let mut idx: Vec<usize> = (0..self.n).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(self.epoch_seed(epoch)));
        let used = &mut idx[..per * self.batch];
        match &self.lengths {
            Some(len) if self.pool > 1 => {
                for window in used.chunks_mut(self.pool * self.batch) {
                    window.sort_by_key(|&i| std::cmp::Reverse(len[i]));
                }
                let mut batches: Vec<usize> = (0..per).collect();
                let seed = self.epoch_seed(epoch) ^ 0xB5AD_4ECE_DA1C_E2A9;
                batches.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                let b = batches[k];
                used[b * self.batch..(b + 1) * self.batch].to_vec()
            }
            _ => used[k * self.batch..(k + 1) * self.batch].to_vec(),
        }
    }
}

fn check_or_write_config(cfg: &TrainConfig, run_dir: &Path) -> Result<()> {
    let path = run_dir.join(RUN_CONFIG);
    if path.is_file() {
        let saved = TrainConfig::load(&path)?;
        if &saved != cfg {
            return Err(TrainError::config(
                &path,
                "the run directory holds a run with a different configuration; \
                 use another directory or delete this one",
            ));
        }
        return Ok(());
    }
    write_atomic(&path, cfg.to_toml().as_bytes())
}

/// A temporary name beside `path`, unique per process and call
/// (`.<name>.<pid>-<n>.tmp`), so that concurrent writers of one path never share a temporary
/// file: the last rename wins and every reader sees one whole version.
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `bytes` to `path` through a temporary file and a rename, the file and then its
/// directory fsynced, so that after a crash `path` holds the old bytes or the new, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let go = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    };
    go().map_err(|e| TrainError::io(path, e))
}

/// fsyncs a directory (its entries: names created, renamed or removed in it).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

/// fsyncs every file under `dir` and every directory, `dir` included.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        } else {
            std::fs::File::open(&p)?.sync_all()?;
        }
    }
    sync_dir(dir)
}

fn open_log(path: &Path, keep_until: usize) -> Result<std::io::BufWriter<std::fs::File>> {
    let mut kept = String::new();
    if keep_until > 0 && path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        for (no, line) in text.lines().enumerate() {
            let entry: StepLog = match serde_json::from_str(line) {
                Ok(e) => e,
                // A line cut off by a kill is the only acceptable damage: it must be the last.
                Err(_) if no + 1 == text.lines().count() => break,
                Err(e) => {
                    return Err(TrainError::checkpoint(
                        path,
                        format!("line {}: not a log record: {e}", no + 1),
                    ));
                }
            };
            if entry.step <= keep_until {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    write_atomic(path, kept.as_bytes())?;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    Ok(std::io::BufWriter::new(f))
}

fn read_latest(ckpt_dir: &Path) -> Result<Option<(usize, PathBuf)>> {
    let latest = ckpt_dir.join(LATEST);
    if !latest.is_file() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&latest).map_err(|e| TrainError::io(&latest, e))?;
    let dir = ckpt_dir.join(name.trim());
    let state_path = dir.join(CKPT_STATE);
    let text = std::fs::read_to_string(&state_path).map_err(|e| TrainError::io(&state_path, e))?;
    let state: CheckpointState = serde_json::from_str(&text)
        .map_err(|e| TrainError::checkpoint(&state_path, e.to_string()))?;
    Ok(Some((state.step, dir)))
}

/// Writes `checkpoints/step-NNNNNN/` through a temporary directory and a rename, points
/// `checkpoints/latest` at it (also atomically) and removes older checkpoints.
fn write_checkpoint(
    ckpt_dir: &Path,
    step: usize,
    student: &Student,
    optim: &ModuleOptimizer,
) -> Result<()> {
    std::fs::create_dir_all(ckpt_dir).map_err(|e| TrainError::io(ckpt_dir, e))?;
    let name = format!("step-{step:06}");
    let tmp = temp_path(&ckpt_dir.join(&name));
    student.to_embedder()?.save(&tmp.join(RUN_STUDENT))?;
    let opt_path = tmp.join(CKPT_OPTIMIZER);
    optim
        .save(&opt_path)
        .map_err(|e| TrainError::checkpoint(&opt_path, e.to_string()))?;
    write_atomic(
        &tmp.join(CKPT_STATE),
        serde_json::to_string(&CheckpointState { step })
            .expect("state serialises")
            .as_bytes(),
    )?;
    // Every file of the checkpoint is on disk before the directory gets its name, and the
    // name before `latest` points at it.
    sync_tree(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let dir = ckpt_dir.join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| TrainError::io(&dir, e))?;
    sync_dir(ckpt_dir).map_err(|e| TrainError::io(ckpt_dir, e))?;
    write_atomic(&ckpt_dir.join(LATEST), name.as_bytes())?;
    for e in std::fs::read_dir(ckpt_dir)
        .map_err(|e| TrainError::io(ckpt_dir, e))?
        .flatten()
    {
        let p = e.path();
        let n = e.file_name().to_string_lossy().to_string();
        if p.is_dir() && n.starts_with("step-") && n != name {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_finite_gradient_is_found_while_the_loss_is_finite() {
        use burn::nn::{Linear, LinearConfig};
        let dev = Device::flex().autodiff();
        let lin: Linear = LinearConfig::new(2, 2).with_bias(false).init(&dev);
        // L = Σ √(w ⊙ w): finite everywhere, its gradient w/|w| finite except at w = 0.
        let loss = |lin: &Linear| lin.weight.val().square().sqrt().sum();
        let grads = GradientsParams::from_grads(loss(&lin).backward(), &lin);
        let n = grad_squared_norm(&lin, &grads).unwrap();
        assert!((n - 4.0).abs() < 1e-4, "{n}");
        let zero = lin.clone().map(&mut ZeroWeights);
        let l = loss(&zero);
        assert_eq!(scalar(l.clone()).unwrap(), 0.0);
        let grads = GradientsParams::from_grads(l.backward(), &zero);
        let n = grad_squared_norm(&zero, &grads).unwrap();
        assert!(!n.is_finite(), "{n}");
    }

    /// Sets every float parameter to zero (keeping it tracked).
    struct ZeroWeights;
    impl burn::module::ModuleMapper for ZeroWeights {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            param.map(|t| t.zeros_like().require_grad())
        }
    }

    #[test]
    fn checkpoint_trees_are_synced_and_a_missing_one_is_an_error() {
        let d = std::env::temp_dir().join(format!("clir-train-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("student")).unwrap();
        std::fs::write(d.join("student/model.bpk"), b"w").unwrap();
        std::fs::write(d.join("state.json"), b"{}").unwrap();
        sync_tree(&d).unwrap();
        write_atomic(&d.join("latest"), b"step-000001").unwrap();
        assert_eq!(std::fs::read(d.join("latest")).unwrap(), b"step-000001");
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        // Two temporary names of one path differ (concurrent writers never share one).
        assert_ne!(temp_path(&d.join("latest")), temp_path(&d.join("latest")));
        std::fs::remove_dir_all(&d).unwrap();
        assert!(sync_tree(&d).is_err());
    }

    #[test]
    fn content_mask_drops_specials_and_the_prefix() {
        let specials: HashSet<u32> = [0, 2].into_iter().collect();
        assert_eq!(
            content_mask(&[0, 7, 8, 9, 10, 2], &specials, &[7, 8]),
            [false, false, false, true, true, false]
        );
        // No prefix match: only specials are dropped.
        assert_eq!(
            content_mask(&[0, 9, 10, 2], &specials, &[7, 8]),
            [false, true, true, false]
        );
        // Prefix only: the prefix keeps its mass rather than leaving none.
        assert_eq!(
            content_mask(&[0, 7, 8, 2], &specials, &[7, 8]),
            [false, true, true, false]
        );
    }

    #[test]
    fn batch_order_is_a_seeded_permutation_per_epoch() {
        let o = BatchOrder::new(10, 3, 5);
        assert_eq!(o.batches_per_epoch(), 3);
        let epoch: Vec<usize> = (0..3).flat_map(|s| o.batch(s)).collect();
        let mut sorted = epoch.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
        assert_eq!(o.batch(4), BatchOrder::new(10, 3, 5).batch(4));
        assert_ne!(o.batch(0), o.batch(3), "epochs reshuffle");
        assert_eq!(BatchOrder::new(2, 8, 1).batch(0).len(), 2);
    }

    #[test]
    fn bucketed_batches_use_every_pair_once_with_less_padding() {
        // 64 pairs of lengths 5..=68 in a scrambled order, batches of 8
        let lengths: Vec<usize> = (0..64).map(|i| 5 + (i * 37) % 64).collect();
        let padding = |o: &BatchOrder, steps: std::ops::Range<usize>| -> usize {
            steps
                .map(|s| {
                    let b = o.batch(s);
                    let max = b.iter().map(|&i| lengths[i]).max().unwrap();
                    b.iter().map(|&i| max - lengths[i]).sum::<usize>()
                })
                .sum()
        };
        let plain = BatchOrder::new(64, 8, 7);
        let bucketed = BatchOrder::bucketed(lengths.clone(), 8, 7, 50);
        for epoch in 0..2 {
            let steps = epoch * 8..(epoch + 1) * 8;
            let mut seen: Vec<usize> = steps.clone().flat_map(|s| bucketed.batch(s)).collect();
            seen.sort();
            assert_eq!(seen, (0..64).collect::<Vec<_>>(), "epoch {epoch}");
            assert!(
                padding(&bucketed, steps.clone()) * 4 < padding(&plain, steps.clone()),
                "bucketing should remove most padding"
            );
        }
        // deterministic, reshuffled per epoch, and a pool of 1 is the plain order
        let again = BatchOrder::bucketed(lengths.clone(), 8, 7, 50);
        assert_eq!(bucketed.batch(3), again.batch(3));
        assert_ne!(
            (0..8).map(|s| bucketed.batch(s)).collect::<Vec<_>>(),
            (8..16).map(|s| bucketed.batch(s)).collect::<Vec<_>>()
        );
        let one = BatchOrder::bucketed(lengths, 8, 7, 1);
        assert_eq!(
            (0..16).map(|s| one.batch(s)).collect::<Vec<_>>(),
            (0..16).map(|s| plain.batch(s)).collect::<Vec<_>>()
        );
    }
}
