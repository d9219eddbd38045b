//! `cargo xtask train --config FILE` and `cargo xtask bench train`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clir_data::bible::BibleDb;
use clir_train::TrainConfig;
use clir_train::bitext::load_bitext;
use clir_train::retrieval::{SetSample, collection_set, evaluate_models, nave_set};
use clir_train::trainer::{
    RUN_STUDENT, TrainInputs, TrainOutcome, checkpoint_step, initial_student, is_finished, train,
};
use ot_core::backend::{Device, select_device};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run's TOML configuration (see experiments/train-swahili.toml).
    #[arg(long)]
    config: PathBuf,
    /// Compute backend (flex, ndarray, wgpu, tch); default: $OPTICAL_BACKEND or flex.
    #[arg(long)]
    backend: Option<String>,
    /// Run directory (config, log, checkpoints, final student). Default:
    /// experiments/runs/<config file stem>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Evaluate the untrained and the trained student on Nave's New Testament collection
    /// (English queries by the teacher, target-language verses by the student).
    #[arg(long)]
    eval: bool,
    /// Evaluate (implies --eval) on a collection directory of your own instead of Nave:
    /// `queries.tsv` (English), `docs.jsonl` or `docs.tsv` (target language), `qrels.txt`.
    #[arg(long)]
    eval_collection: Option<PathBuf>,
    /// Queries sampled for --eval (all when omitted).
    #[arg(long)]
    eval_queries: Option<usize>,
    /// Documents sampled for --eval (judged ones first; all when omitted).
    #[arg(long)]
    eval_docs: Option<usize>,
    /// Query split for --eval: dev (the default: a run being tuned), test or all.
    #[arg(long, default_value = "dev")]
    eval_split: clir_train::retrieval::Split,
    /// Token length for --eval, the same for the untrained and the trained student and the
    /// teacher (default: each encoder's position limit, 512 for e5); never the training length.
    #[arg(long)]
    eval_max_len: Option<usize>,
    /// A training curve from this one run: the student is also saved after each of these
    /// steps (comma separated, as `OUT/snapshots/step-NNNNNN/`) and, with --eval, each is
    /// evaluated like the final student (printed and kept in eval.json's `curve`).
    #[arg(long, value_delimiter = ',')]
    eval_at_steps: Option<Vec<usize>>,
}

/// Whether the TOML file at `path` sets `[data] language` itself (not by default).
fn language_given(path: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let value: toml::Table = toml::from_str(&text).with_context(|| path.display().to_string())?;
    Ok(value.get("data").and_then(|d| d.get("language")).is_some())
}

/// The language the evaluation reads: never one the configuration did not name. With a
/// bitext file, Nave's Bible collection needs `[data] language`; a collection of one's own
/// (`--eval-collection`) is in whatever language it is.
fn eval_language(cfg: &TrainConfig, a: &TrainArgs) -> anyhow::Result<Option<String>> {
    let given = language_given(&a.config)?;
    match (&cfg.data.bitext_file, &a.eval_collection) {
        (None, _) => Ok(Some(cfg.data.language.clone())),
        (Some(_), Some(_)) => Ok(given.then(|| cfg.data.language.clone())),
        (Some(file), None) if a.eval && !given => bail!(
            "{}: data.language is not set: the run trains on bitext_file {file}, and --eval \
             evaluates on Nave's Bible collection in the language [data] language names; set \
             it (e.g. language = \"tagalog\") or evaluate on a collection of your own with \
             --eval-collection DIR",
            a.config.display()
        ),
        (Some(_), None) => Ok(given.then(|| cfg.data.language.clone())),
    }
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let cfg = TrainConfig::load(&a.config)?;
    let language = eval_language(&cfg, &a)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = a
            .config
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "run".into());
        PathBuf::from("experiments/runs").join(stem)
    });
    crate::paths::check_writable_dir(&out, "--out")?;
    let (backend, device) = select_device(a.backend.as_deref())?;
    let pairs = load_bitext(&cfg.data, cfg.run.seed)?;
    eprintln!(
        "train: {} on {} bitext pairs ({}), {} steps of {} on {backend} -> {}",
        cfg.loss.method.name(),
        pairs.len(),
        cfg.data.bitext_name(),
        cfg.optim.steps,
        cfg.optim.batch_size,
        out.display()
    );
    let sample = SetSample {
        queries: a.eval_queries,
        documents: a.eval_docs,
        seed: cfg.run.seed,
        split: a.eval_split,
    };
    let set = match &a.eval_collection {
        Some(dir) => Some(collection_set(dir, sample)?),
        None if a.eval => {
            let db = BibleDb::open(&clir_data::fetch::bible_db()?)?;
            let naves = clir_data::fetch::naves_module_dir()?;
            Some(nave_set(&db, &naves, &cfg.data.language, sample)?)
        }
        None => None,
    };
    let inputs = TrainInputs {
        monolingual: clir_train::monolingual::load_monolingual(&cfg)?,
        // The whole target-language collection, not the evaluation sample.
        vocab_texts: set
            .as_ref()
            .map(|s| s.collection.clone())
            .unwrap_or_default(),
        snapshots: a.eval_at_steps.clone().unwrap_or_default(),
        ..TrainInputs::cached(pairs, Default::default())
    };
    let before = match &set {
        Some(set) => {
            eprintln!("eval set: {}", set.note);
            let cpu = clir_models::placement::host_for(&device);
            let teacher = inputs
                .models
                .load(&cfg.model.teacher, &cpu)?
                .placed("teacher", &device);
            let len = a.eval_max_len.unwrap_or(teacher.config.max_len);
            let teacher = teacher.with_max_len(len)?;
            let untrained = initial_student(&cfg, &inputs, &device)?;
            let len = a.eval_max_len.unwrap_or(untrained.config.max_len);
            let s = evaluate_models(&teacher, &untrained.with_max_len(len)?, set, 32)?;
            Some((teacher, s))
        }
        None => None,
    };
    eprintln!("{}", start_line(&out, &cfg)?);
    let started = std::time::Instant::now();
    let outcome = train(&cfg, &inputs, &out, &device).with_context(|| {
        format!(
            "training into {}: checkpoints are kept every {} steps; run the same command again \
             to resume from the last one",
            out.display(),
            cfg.run.checkpoint_every
        )
    })?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{}", outcome_line(&outcome, secs, &out));
    if let (Some(set), Some((teacher, s0))) = (&set, before) {
        let eval = Evaluated {
            set,
            teacher: &teacher,
            untrained: s0,
            language: language.as_deref(),
        };
        report_eval(
            &a,
            &eval,
            outcome,
            (&out, &device),
            secs,
            &backend.to_string(),
        )?;
    }
    Ok(())
}

/// What `train --eval` knows before training: the evaluation set, the teacher that encodes
/// its queries, the untrained student's scores and the target language.
struct Evaluated<'a> {
    set: &'a clir_train::retrieval::RetrievalSet,
    teacher: &'a clir_models::Embedder,
    untrained: clir_train::retrieval::RetrievalScores,
    language: Option<&'a str>,
}

/// `train --eval` after training: the snapshots (`--eval-at-steps`) and the trained student
/// on the evaluation set, printed beside the untrained student, and `eval.json`.
fn report_eval(
    a: &TrainArgs,
    e: &Evaluated<'_>,
    outcome: TrainOutcome,
    (out, device): (&Path, &ot_core::backend::Device),
    secs: f64,
    backend: &str,
) -> anyhow::Result<()> {
    let (set, teacher, s0, language) = (e.set, e.teacher, &e.untrained, e.language);
    let len = a.eval_max_len.unwrap_or(outcome.student.config.max_len);
    let mut curve = Vec::new();
    for &step in a.eval_at_steps.as_deref().unwrap_or_default() {
        let dir = clir_train::trainer::snapshot_dir(out, step);
        let snap = clir_models::Embedder::load_checkpoint_as_saved(&dir, device)?;
        let len = a.eval_max_len.unwrap_or(snap.config.max_len);
        let s = evaluate_models(teacher, &snap.with_max_len(len)?, set, 32)?;
        curve.push((step, s));
    }
    let s1 = evaluate_models(teacher, &outcome.student.with_max_len(len)?, set, 32)?;
    let on = match &a.eval_collection {
        Some(dir) => dir.display().to_string(),
        None => "Nave NT".into(),
    };
    let target = language.unwrap_or("the bitext's language");
    println!("English→{target} on {on} ({}):", set.note);
    println!(
        "  untrained student: MAP {:.4}  nDCG@10 {:.4}  MRR@10 {:.4}",
        s0.map, s0.ndcg_10, s0.mrr_10
    );
    for (step, s) in &curve {
        println!(
            "  after step {step:<6}  MAP {:.4}  nDCG@10 {:.4}  MRR@10 {:.4}",
            s.map, s.ndcg_10, s.mrr_10
        );
    }
    println!(
        "  trained student:   MAP {:.4}  nDCG@10 {:.4}  MRR@10 {:.4}",
        s1.map, s1.ndcg_10, s1.mrr_10
    );
    let report = serde_json::json!({
        "collection": set.note,
        "untrained": s0,
        "trained": s1,
        "curve": curve
            .iter()
            .map(|(step, s)| serde_json::json!({"step": step, "scores": s}))
            .collect::<Vec<_>>(),
        "train_seconds": secs,
        "backend": backend.to_string(),
    });
    let path = out.join("eval.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| path.display().to_string())?;
    Ok(())
}

/// What `train` is about to do with `out`: nothing (finished), resume, or start.
fn start_line(out: &Path, cfg: &TrainConfig) -> anyhow::Result<String> {
    let total = cfg.optim.steps;
    if is_finished(out) {
        return Ok(format!(
            "{}: this run is already finished ({total} steps); nothing is trained. Its student \
             is {}; train again with another --out or after deleting the folder",
            out.display(),
            out.join(RUN_STUDENT).display()
        ));
    }
    let every = cfg.run.checkpoint_every;
    Ok(match checkpoint_step(out)? {
        Some(step) => format!(
            "{}: resuming from the checkpoint at step {step} of {total}",
            out.display()
        ),
        None => format!(
            "{}: training {total} steps, a checkpoint every {every}; if interrupted, run the \
             same command again to resume from the last one",
            out.display()
        ),
    })
}

/// What `train` did, for people.
fn outcome_line(o: &TrainOutcome, secs: f64, out: &Path) -> String {
    let student = out.join(RUN_STUDENT);
    if o.resumed_from == Some(o.steps_done) {
        return format!("nothing trained; the student is {}", student.display());
    }
    let from = o.resumed_from.unwrap_or(0);
    let loss = match (o.log.first(), o.log.last()) {
        (Some(f), Some(l)) => format!("; loss {:.4} → {:.4}", f.loss, l.loss),
        _ => String::new(),
    };
    let resumed = if from > 0 {
        format!(" (resumed at step {from})")
    } else {
        String::new()
    };
    format!(
        "trained steps {}–{} in {secs:.0}s{resumed}{loss}; student in {}",
        from + 1,
        o.steps_done,
        student.display()
    )
}

#[derive(clap::Args)]
pub struct BenchTrainArgs {
    /// Backends to compare, side by side (comma separated).
    #[arg(long, default_value = "flex,wgpu", value_delimiter = ',')]
    pub(crate) backends: Vec<String>,
    /// Frozen-prefix cache settings to compare on each backend, on the same batches: `off`,
    /// `on` (states computed before the first step, in memory; the time to compute them is
    /// printed apart from the steps).
    #[arg(long, default_value = "off,on", value_delimiter = ',')]
    pub(crate) prefix_cache: Vec<String>,
    /// Timed optimiser steps per run (after one untimed warm-up step; with --synthetic, after
    /// an untimed epoch of the same batches unless --cold).
    #[arg(long, default_value_t = 5)]
    pub(crate) steps: usize,
    /// Pairs per step (the quick preset's 16; with --synthetic: --batch-sizes).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Lowest student layers frozen, with the embeddings (the quick preset's 8).
    #[arg(long, default_value_t = 8)]
    pub(crate) freeze_layers: usize,
    /// Training length in tokens (the quick preset's 64).
    #[arg(long, default_value_t = 64)]
    pub(crate) max_len: usize,
    /// Length bucketing pool in batches (`1` = plain random batches; default as in training).
    #[arg(long, default_value_t = 50)]
    pub(crate) length_pool: usize,
    /// Training method (with --synthetic: --methods).
    #[arg(long, default_value = "optical")]
    method: clir_train::Method,
    /// Target language of the bitext.
    #[arg(long, default_value = "swahili")]
    language: String,
    /// Evaluation encoding: this many New Testament verses of `language` (all 7,957 by
    /// default; 0 skips it), encoded per backend by the zero-shot student, by the trained
    /// student in full, and by the trained student from the zero-shot model's shared frozen
    /// prefix (as `reproduce` does), at the pretrained evaluation length.
    #[arg(long, default_value_t = usize::MAX)]
    encode_verses: usize,
    /// Evaluation batch size (the presets' default).
    #[arg(long, default_value_t = 32)]
    encode_batch: usize,
    #[command(flatten)]
    pub(crate) synthetic: crate::bench_synthetic::SyntheticArgs,
}

/// One row of the evaluation-encoding table.
struct EncodeRow {
    backend: String,
    model: &'static str,
    verses: usize,
    seconds: f64,
}

/// One row of the training-step table.
struct StepRow {
    backend: String,
    cache: String,
    steps_per_s: f64,
    tokens_per_s: f64,
    fill_seconds: f64,
    losses: Vec<f64>,
}

pub fn bench(a: BenchTrainArgs) -> anyhow::Result<()> {
    if a.synthetic.synthetic {
        return crate::bench_synthetic::run(&a);
    }
    let cfg = bench_config(&a);
    let pairs = load_bitext(&cfg.data, cfg.run.seed)?;
    let monolingual = clir_train::monolingual::load_monolingual(&cfg)?;
    let models = clir_models::embedder::ModelCache::default();
    let docs = bench_docs(&a)?;
    let mut rows = Vec::new();
    let mut encode_rows = Vec::new();
    for name in &a.backends {
        let Some((backend, device)) = crate::train::device_or_skip(name) else {
            continue;
        };
        for cache in &a.prefix_cache {
            let on = match cache.as_str() {
                "on" => true,
                "off" => false,
                other => anyhow::bail!("--prefix-cache takes off and on, not '{other}'"),
            };
            let dir = std::env::temp_dir().join(format!(
                "optical-bench-train-{}-{name}-{cache}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let inputs = TrainInputs {
                monolingual: monolingual.clone(),
                // The student's trimmed vocabulary covers the verses it encodes below.
                vocab_texts: docs.clone(),
                prefix_cache: on,
                // Prefix states in memory: each run measures computing them.
                prefix_store: None,
                ..TrainInputs::cached(pairs.clone(), models.clone())
            };
            let out = train(&cfg, &inputs, &dir, &device)?;
            let _ = std::fs::remove_dir_all(&dir);
            rows.push(StepRow::new(backend.to_string(), &out, on));
            if on && !docs.is_empty() {
                encode_rows.extend(bench_encode(&cfg, &models, &out.student, &docs, &a, name)?);
            }
        }
    }
    println!(
        "bench train: {} on e5-small (trimmed vocabulary), {} {} pairs, batch {}, {} timed steps, \
         embeddings + {} layers frozen, max_len {}, length pool {}",
        a.method.name(),
        pairs.len(),
        a.language,
        a.batch_size,
        a.steps,
        a.freeze_layers,
        a.max_len,
        a.length_pool
    );
    print_step_table(&rows);
    if !encode_rows.is_empty() {
        println!(
            "evaluation encoding: {} {} New Testament verses, batch {}, pretrained length",
            docs.len(),
            a.language,
            a.encode_batch
        );
        print_encode_table(&encode_rows);
    }
    Ok(())
}

/// The device of backend `name`, or `None` after a line saying why it is skipped (not
/// compiled in, unknown).
pub(crate) fn device_or_skip(name: &str) -> Option<(ot_core::backend::Backend, Device)> {
    match select_device(Some(name)) {
        Ok(x) => Some(x),
        Err(e) => {
            println!("{name}: skipped ({e})");
            None
        }
    }
}

/// The training run each backend and cache setting repeats: one untimed warm-up step, then
/// `steps` timed ones on as many pairs as they need.
fn bench_config(a: &BenchTrainArgs) -> TrainConfig {
    let mut cfg = TrainConfig::new();
    cfg.loss.method = a.method;
    cfg.model.freeze_layers = a.freeze_layers;
    cfg.model.max_len = a.max_len;
    cfg.optim.batch_size = a.batch_size;
    cfg.optim.length_pool = a.length_pool;
    cfg.optim.steps = a.steps + 1;
    cfg.optim.warmup_steps = 1;
    cfg.data.language = a.language.clone();
    cfg.data.max_pairs = Some(a.batch_size * (a.steps + 1));
    cfg.data.monolingual_queries = Some(a.batch_size * (a.steps + 1));
    cfg.run.progress = false;
    cfg
}

/// The first `encode_verses` New Testament verses of the language (none for 0).
fn bench_docs(a: &BenchTrainArgs) -> anyhow::Result<Vec<String>> {
    if a.encode_verses == 0 {
        return Ok(Vec::new());
    }
    let db = BibleDb::open(&clir_data::fetch::bible_db()?)?;
    let naves = clir_data::fetch::naves_module_dir()?;
    let set = nave_set(
        &db,
        &naves,
        &a.language,
        SetSample {
            queries: None,
            documents: None,
            seed: 13,
            split: Default::default(),
        },
    )?;
    Ok(set.docs.into_iter().take(a.encode_verses).collect())
}

impl StepRow {
    /// The timed steps of a run (all but the warm-up).
    fn new(backend: String, out: &clir_train::TrainOutcome, cache_on: bool) -> Self {
        let timed = &out.log[1..];
        let secs: f64 = timed.iter().map(|l| l.tokens as f64 / l.tokens_per_s).sum();
        let tokens: usize = timed.iter().map(|l| l.tokens).sum();
        let cache = match out.prefix {
            Some((k, _, _)) => format!("prefix h{k}"),
            None if cache_on => "none (nothing frozen)".to_string(),
            None => "off".to_string(),
        };
        StepRow {
            backend,
            cache,
            steps_per_s: timed.len() as f64 / secs,
            tokens_per_s: tokens as f64 / secs,
            fill_seconds: out.prefix_seconds,
            losses: out.log.iter().map(|l| l.loss).collect(),
        }
    }
}

/// Steps per second against the first row, and each row's largest loss difference from it.
fn print_step_table(rows: &[StepRow]) {
    println!(
        "{:<8} {:<14} {:>10} {:>12} {:>16} {:>9} {:>16}",
        "backend", "cache", "steps/s", "tokens/s", "cache fill (s)", "vs first", "max |Δ loss|"
    );
    let base = rows.first();
    for r in rows {
        let drift = base.map_or(0.0, |b| {
            b.losses
                .iter()
                .zip(&r.losses)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        });
        println!(
            "{:<8} {:<14} {:>10.3} {:>12.1} {:>16.2} {:>8.2}x {drift:>16.2e}",
            r.backend,
            r.cache,
            r.steps_per_s,
            r.tokens_per_s,
            r.fill_seconds,
            base.map_or(1.0, |b| r.steps_per_s / b.steps_per_s)
        );
    }
}

/// Verses per second against the first row.
fn print_encode_table(rows: &[EncodeRow]) {
    println!(
        "{:<8} {:<34} {:>10} {:>10} {:>9}",
        "backend", "model", "seconds", "verses/s", "vs first"
    );
    let first = rows[0].verses as f64 / rows[0].seconds;
    for r in rows {
        let vps = r.verses as f64 / r.seconds;
        println!(
            "{:<8} {:<34} {:>10.1} {:>10.1} {:>8.2}x",
            r.backend,
            r.model,
            r.seconds,
            vps,
            vps / first
        );
    }
}

/// Times the evaluation encodings `reproduce` runs for one pair on `backend`: the zero-shot
/// student in full, the trained student in full, and the trained student's layers above its
/// frozen prefix on the zero-shot model's `hᵏ` (computed once per pair, timed apart).
fn bench_encode(
    cfg: &TrainConfig,
    models: &clir_models::embedder::ModelCache,
    student: &clir_models::embedder::Embedder,
    docs: &[String],
    a: &BenchTrainArgs,
    backend: &str,
) -> anyhow::Result<Vec<EncodeRow>> {
    use clir_models::embedder::TextKind;
    use std::time::Instant;
    let (_, device) = select_device(Some(backend))?;
    let host = clir_models::placement::host_for(&device);
    let zero_shot = models
        .load(&cfg.model.student, &host)?
        .placed("zero-shot model", &device);
    let len = zero_shot.config.max_len;
    let student = student.clone().with_max_len(len)?;
    let mut rows = Vec::new();
    let mut time = |model: &'static str, f: &mut dyn FnMut() -> anyhow::Result<()>| {
        let t0 = Instant::now();
        f()?;
        rows.push(EncodeRow {
            backend: backend.to_string(),
            model,
            verses: docs.len(),
            seconds: t0.elapsed().as_secs_f64(),
        });
        anyhow::Ok(())
    };
    time("zero-shot (all layers)", &mut || {
        zero_shot.embed(docs, TextKind::Passage, a.encode_batch)?;
        Ok(())
    })?;
    time("trained (all layers)", &mut || {
        student.embed(docs, TextKind::Passage, a.encode_batch)?;
        Ok(())
    })?;
    let k = a.freeze_layers.min(zero_shot.encoder.num_layers());
    if k > 0 {
        let mut states = None;
        time("zero-shot prefix h_k (once a pair)", &mut || {
            states = Some(zero_shot.prefix_states(docs, TextKind::Passage, a.encode_batch, k)?);
            Ok(())
        })?;
        let states = states.expect("computed above");
        time("trained from the shared prefix", &mut || {
            student.embed_from_prefix(docs, TextKind::Passage, &states, &zero_shot)?;
            Ok(())
        })?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `train` announces for a fresh, an interrupted and a finished run directory.
    #[test]
    fn the_start_line_says_fresh_resume_or_finished() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let mut cfg = TrainConfig::new();
        cfg.optim.steps = 20;
        cfg.run.checkpoint_every = 5;
        let fresh = start_line(&run, &cfg).unwrap();
        assert!(
            fresh.ends_with(
                "training 20 steps, a checkpoint every 5; if interrupted, run the same command \
                 again to resume from the last one"
            ),
            "{fresh}"
        );
        let ckpt = run.join("checkpoints");
        std::fs::create_dir_all(ckpt.join("step-000010")).unwrap();
        std::fs::write(ckpt.join("latest"), "step-000010\n").unwrap();
        std::fs::write(ckpt.join("step-000010/state.json"), r#"{"step": 10}"#).unwrap();
        let resumed = start_line(&run, &cfg).unwrap();
        assert!(
            resumed.ends_with("resuming from the checkpoint at step 10 of 20"),
            "{resumed}"
        );
        std::fs::create_dir_all(run.join("student")).unwrap();
        std::fs::write(run.join("student/embedder.json"), "{}").unwrap();
        let done = start_line(&run, &cfg).unwrap();
        assert!(
            done.contains("this run is already finished (20 steps); nothing is trained"),
            "{done}"
        );
    }
}
