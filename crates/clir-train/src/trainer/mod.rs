//! The distillation loop: a frozen teacher reads the English side of each bitext pair, the
//! student reads the translation, and only the student is updated (AdamW, linear warm-up and
//! decay, gradient clipping, optional layer freezing).
//!
//! A run directory holds `config.toml`, `log.jsonl` (one line per step), `checkpoints/` and,
//! at the end, `student/` (a checkpoint [`Embedder::save`] wrote). Checkpoints hold the
//! student, the optimiser state and the step; the batch order is a pure function of the seed
//! and the step, so a resumed run ends with the same weights as an uninterrupted one.
//!
//! Its parts: [`student`] (the model being trained), `targets` (what it is trained towards:
//! the teacher's token states and masks, the joint objective's queries, IDF masses, and the
//! student's cached frozen prefix), [`step`] (each method's loss), [`batches`] (the batch
//! order), [`run_dir`] (files, checkpoints, resume) and `crate::atomic` (atomic writes).

mod batches;
mod run_dir;
mod step;
mod student;
mod targets;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use clir_data::formats::BitextPair;
use clir_models::{Embedder, TextKind};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::monolingual::MonoQuery;

pub use crate::atomic::{temp_path, write_atomic};
pub use batches::BatchOrder;
use run_dir::{
    CKPT_OPTIMIZER, check_or_write_config, finished_run, open_log, read_latest, save_atomically,
    write_checkpoint,
};
pub use run_dir::{
    RUN_CHECKPOINTS, RUN_CONFIG, RUN_LOG, RUN_SNAPSHOTS, RUN_STUDENT, checkpoint_step, is_finished,
    snapshot_dir,
};
pub use step::grad_squared_norm;
use step::{StepInputs, StepLoss, scalar, step_loss};
use student::Student;
pub use student::{content_mask, initial_student, token_roles};
use targets::{TeacherTargets, idf_tables, student_prefix};

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

impl TrainInputs {
    /// A run on `pairs` with the data cache's disk stores (`<cache>/teacher-states`,
    /// `<cache>/prefix-states`), the frozen-prefix cache on and `models` shared: the inputs
    /// `cargo xtask train`, `reproduce` and `bench train` start from (one place for the paths).
    pub fn cached(pairs: Vec<BitextPair>, models: clir_models::embedder::ModelCache) -> Self {
        let cache = clir_data::fetch::cache_dir();
        TrainInputs {
            pairs,
            teacher_store: Some(cache.join("teacher-states")),
            prefix_store: Some(cache.join("prefix-states")),
            models,
            ..Default::default()
        }
    }
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

/// Runs (or resumes) training into `run_dir` on `device`.
pub fn train(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    run_dir: &Path,
    device: &Device,
) -> Result<TrainOutcome> {
    check_inputs(cfg, inputs, run_dir)?;
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    check_or_write_config(cfg, run_dir)?;
    // A finished run is read back, not trained again.
    if is_finished(run_dir) {
        return finished_run(cfg, inputs, run_dir, device);
    }
    // Student: from the last checkpoint, or freshly initialised.
    let ckpt_dir = run_dir.join(RUN_CHECKPOINTS);
    let latest = read_latest(&ckpt_dir)?;
    let (mut student, mut optim, start) = start_student(cfg, inputs, latest.as_ref(), device)?;

    // What the student is trained towards, and what it reads once.
    let side: TextKind = cfg.model.student_side.into();
    let english: Vec<String> = inputs.pairs.iter().map(|p| p.src.clone()).collect();
    let targets = TeacherTargets::new(cfg, inputs, &student, side, &english, device)?;
    let prefix_started = Instant::now();
    let prefix = student_prefix(cfg, inputs, &student, side, &english, device)?;
    let prefix_seconds = prefix_started.elapsed().as_secs_f64();
    let idf = idf_tables(cfg, inputs, &targets.states, &student, side)?;
    let order = BatchOrder::by_length(cfg, &inputs.pairs, &student, side)?;

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
    let started = Instant::now();
    let mut log = Vec::new();
    for step in start..end {
        let idx = order.batch(step);
        let ctx = StepInputs {
            cfg,
            pairs: &inputs.pairs,
            idx: &idx,
            teacher: &targets.states,
            teacher_masks: &targets.masks,
            idf: idf.as_ref(),
            side,
            mono: targets
                .mono
                .as_ref()
                .map(|m| (m, inputs.monolingual.as_slice(), step)),
            prefix: prefix.as_ref(),
            method: cfg.method_at(step),
        };
        let entry;
        (student, entry) = optimizer_step(student, &mut optim, &ctx, step, started)?;
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
        teacher_reused: targets.states.reused,
        prefix: prefix.map(|c| (c.layers(), c.computed, c.reused)),
        prefix_seconds,
    })
}

/// The settings and inputs a run refuses before it touches its folder.
fn check_inputs(cfg: &TrainConfig, inputs: &TrainInputs, run_dir: &Path) -> Result<()> {
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
    Ok(())
}

/// The student and optimiser to train from: the latest checkpoint's, or fresh ones; and the
/// step they start at.
fn start_student(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    latest: Option<&(usize, PathBuf)>,
    device: &Device,
) -> Result<(Student, ModuleOptimizer, usize)> {
    Ok(match latest {
        Some((step, dir)) => {
            let e = Embedder::load_checkpoint_as_saved(&dir.join(RUN_STUDENT), device)?;
            let student = Student::from_embedder(e, cfg)?;
            // Read whole: `load` would read the file lazily by path (see
            // `Embedder::load_checkpoint_as_saved`).
            let path = dir.join(CKPT_OPTIMIZER);
            let bytes =
                std::fs::read(&path).map_err(|e| TrainError::checkpoint(&path, e.to_string()))?;
            let optim = adamw(cfg)
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
                .map_err(|e| TrainError::checkpoint(&path, e.to_string()))?;
            (student, optim, *step)
        }
        None => {
            let e = initial_student(cfg, inputs, device)?;
            (Student::from_embedder(e, cfg)?, adamw(cfg), 0)
        }
    })
}

/// One optimisation step at `step` (0-based): the loss of the batch, its gradient (unless
/// nothing is trainable), the AdamW update, and the step's log line.
fn optimizer_step(
    mut student: Student,
    optim: &mut ModuleOptimizer,
    ctx: &StepInputs<'_>,
    step: usize,
    started: Instant,
) -> Result<(Student, StepLog)> {
    let t0 = Instant::now();
    let StepLoss {
        loss,
        diag,
        sharpness,
        tokens,
        terms,
        hybrid,
    } = step_loss(&student, ctx)?;
    let loss_value = scalar(loss.clone())?;
    if !loss_value.is_finite() {
        return Err(TrainError::Diverged {
            step,
            msg: format!("loss is {loss_value}"),
        });
    }
    let lr = ctx.cfg.learning_rate(step);
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
    Ok((student, entry))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic::sync_tree;
    use std::collections::HashSet;

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
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("student")).unwrap();
        std::fs::write(d.join("student/model.bpk"), b"w").unwrap();
        std::fs::write(d.join("state.json"), b"{}").unwrap();
        sync_tree(d).unwrap();
        write_atomic(&d.join("latest"), b"step-000001").unwrap();
        assert_eq!(std::fs::read(d.join("latest")).unwrap(), b"step-000001");
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        // Two temporary names of one path differ (concurrent writers never share one).
        assert_ne!(temp_path(&d.join("latest")), temp_path(&d.join("latest")));
        std::fs::remove_dir_all(d).unwrap();
        assert!(sync_tree(d).is_err());
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
