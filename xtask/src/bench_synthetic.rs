//! `cargo xtask bench train --synthetic`: the training and encoding benchmark on a random
//! e5-small-shaped model and made-up text, so it needs nothing downloaded.
//!
//! It runs the real code path: the model is written with `Embedder::save` and loaded by path
//! as both teacher and student, each row is a real `clir_train::trainer::train` run (real
//! step, OPTICAL / MSE loss, AdamW; an untimed epoch of the very batches timed next, or one
//! untimed step with `--cold`, then `--steps` timed ones), and encoding is the real
//! `Embedder::embed`. Sentence lengths follow the committed Bible length histogram
//! (`clir_models::synthetic`). Each backend also gets a large f32 matmul row, its
//! own peak to read the achieved FLOP/s against, and `--torch-reference PYTHON` runs the
//! same steps in PyTorch (`torch_reference.py`) and prints ours beside theirs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clir_data::formats::BitextPair;
use clir_models::TextKind;
use clir_models::embedder::ModelCache;
use clir_models::synthetic::{
    LengthHistogram, SyntheticSpec, synthetic_bitext, synthetic_embedder,
};
use clir_train::trainer::{TrainInputs, train};
use clir_train::{Method, TrainConfig};
use ot_core::backend::Device;

use crate::train::BenchTrainArgs;

/// The synthetic mode's own options of `bench train`.
#[derive(clap::Args, Clone, Debug)]
pub struct SyntheticArgs {
    /// Time a random e5-small-shaped model on made-up text (nothing downloaded): training
    /// steps per `--batch-sizes` and `--methods`, encoding per `--encode-batches`, and a
    /// matmul peak per backend.
    #[arg(long)]
    pub synthetic: bool,
    /// Synthetic: the student's vocabulary, `full` (every row of the table) and/or `trimmed`
    /// to the tokens of the run's pairs (`model.trim_vocab`), comma separated.
    #[arg(long, default_value = "full", value_delimiter = ',')]
    pub vocab: Vec<String>,
    /// Synthetic: pairs per step, one row each (comma separated).
    #[arg(long, default_value = "16,64,256", value_delimiter = ',')]
    pub batch_sizes: Vec<usize>,
    /// Synthetic: encoding batch sizes, one row each (comma separated; empty skips encoding).
    #[arg(long, default_value = "32,256", value_delimiter = ',')]
    pub encode_batches: Vec<usize>,
    /// Synthetic: sentences encoded per encoding row (after one untimed warm-up batch).
    #[arg(long, default_value_t = 1024)]
    pub encode_sentences: usize,
    /// Synthetic: training methods (comma separated; replaces --method).
    #[arg(long, default_value = "optical,mse", value_delimiter = ',')]
    pub methods: Vec<Method>,
    /// Synthetic: side of the square f32 matmul timed for each backend's peak (0 skips it).
    #[arg(long, default_value_t = 1024)]
    pub matmul_size: usize,
    /// Synthetic: run the PyTorch reference (torch_reference.py) with this Python and print
    /// our rows beside its eager and torch.compile rows.
    #[arg(long)]
    pub torch_reference: Option<String>,
    /// Synthetic: warm up with one untimed step only (as the real benchmark does), not with
    /// a whole untimed epoch of the very batches timed next. By default every batch shape is
    /// seen once before the clock starts, so a GPU backend's shader compilation and
    /// autotuning are not timed; the same holds for encoding (one untimed pass).
    #[arg(long)]
    pub cold: bool,
    /// Synthetic: the reference's torch device (`cpu`, `cuda`, or `auto` = cuda if present).
    #[arg(long, default_value = "auto")]
    pub torch_device: String,
    #[arg(long, default_value_t = 12, hide = true)]
    pub layers: usize,
    #[arg(long, default_value_t = 384, hide = true)]
    pub hidden: usize,
    #[arg(long, default_value_t = 1536, hide = true)]
    pub ffn: usize,
    #[arg(long, default_value_t = 12, hide = true)]
    pub heads: usize,
    #[arg(long, default_value_t = clir_models::synthetic::E5_SMALL_VOCAB, hide = true)]
    pub vocab_size: usize,
}

impl SyntheticArgs {
    fn spec(&self) -> SyntheticSpec {
        SyntheticSpec {
            layers: self.layers,
            hidden: self.hidden,
            ffn: self.ffn,
            heads: self.heads,
            vocab_size: self.vocab_size,
            ..SyntheticSpec::default()
        }
    }
}

/// One training row.
pub(crate) struct TrainRow {
    pub(crate) backend: String,
    pub(crate) method: Method,
    pub(crate) vocab: String,
    pub(crate) cache: bool,
    pub(crate) batch: usize,
    pub(crate) steps_per_s: f64,
    pub(crate) tokens_per_s: f64,
    pub(crate) flops_per_s: f64,
}

/// One encoding row.
pub(crate) struct EncodeRow {
    pub(crate) backend: String,
    pub(crate) batch: usize,
    pub(crate) sentences_per_s: f64,
    pub(crate) tokens_per_s: f64,
    pub(crate) flops_per_s: f64,
}

/// Analytic forward FLOPs of one encoder layer on a sentence of `n` tokens:
/// `2n(4d² + 2d·ffn) + 4n²d` (projections and FFN, then `QKᵀ` and `PV`).
pub(crate) fn layer_flops(spec: &SyntheticSpec, n: usize) -> f64 {
    let (n, d, f) = (n as f64, spec.hidden as f64, spec.ffn as f64);
    2.0 * n * (4.0 * d * d + 2.0 * d * f) + 4.0 * n * n * d
}

/// Token count of a synthetic sentence read at `max_len` (words + `[CLS]` + `[SEP]`).
fn tokens_of(text: &str, max_len: usize) -> usize {
    (text.split(' ').count() + 2).min(max_len)
}

/// Mean FLOPs of one training pair: the student sentences it reads (the translation; MSE
/// also the English side), each through the frozen layers once (none with the prefix cache,
/// which computes them before the steps) and through the trained layers at 3× the forward
/// cost (forward + backward).
fn train_flops_per_pair(
    spec: &SyntheticSpec,
    pairs: &[BitextPair],
    method: Method,
    frozen: usize,
    cache: bool,
    max_len: usize,
) -> f64 {
    let k = frozen.min(spec.layers);
    let per_layer = if cache { 0.0 } else { k as f64 } + 3.0 * (spec.layers - k) as f64;
    let sum: f64 = pairs
        .iter()
        .map(|p| {
            let mut f = layer_flops(spec, tokens_of(&p.tgt, max_len));
            if method == Method::Mse {
                f += layer_flops(spec, tokens_of(&p.src, max_len));
            }
            f * per_layer
        })
        .sum();
    sum / pairs.len().max(1) as f64
}

/// The output header's account of the numbers.
fn header(a: &BenchTrainArgs, spec: &SyntheticSpec) -> String {
    format!(
        "bench train --synthetic: random {} (d={}, ffn={}, heads={}, {} positions, vocabulary \
         {}), no prefixes; made-up sentences with the Bible bitext's token lengths; {} timed \
         steps after {}, embeddings + {} layers frozen, max_len {}, length pool {}\n\
         FLOPs (analytic): per layer and sentence of n tokens F(n) = 2n(4d² + 2d·ffn) + 4n²d; \
         training step = Σ over the student's sentences (the translation; MSE also the \
         English) of [k·F(n) + 3·(N−k)·F(n)], k frozen layers (k = 0 with the prefix cache on: \
         its states are computed before the steps), N layers; encoding = N·F(n); embeddings, \
         pooling, OT, losses and AdamW not counted; tokens exclude padding",
        spec.name(),
        spec.hidden,
        spec.ffn,
        spec.heads,
        spec.max_position,
        spec.vocab_size,
        a.steps,
        if a.synthetic.cold {
            "1 untimed step"
        } else {
            "an untimed epoch of the same batches"
        },
        a.freeze_layers,
        a.max_len,
        a.length_pool,
    )
}

/// `bench train --synthetic`.
pub fn run(a: &BenchTrainArgs) -> anyhow::Result<()> {
    let s = &a.synthetic;
    let spec = s.spec();
    let lengths = LengthHistogram::bible();
    let work = std::env::temp_dir().join(format!("optical-bench-synthetic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let result = run_in(a, &spec, &lengths, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(
    a: &BenchTrainArgs,
    spec: &SyntheticSpec,
    lengths: &LengthHistogram,
    work: &Path,
) -> anyhow::Result<()> {
    let s = &a.synthetic;
    let model_dir = work.join("model");
    let t0 = Instant::now();
    let cpu = ot_core::backend::Backend::cpu_default().device()?;
    synthetic_embedder(*spec, 42, &cpu)?.save(&model_dir)?;
    eprintln!(
        "synthetic model {} written in {:.1}s",
        spec.name(),
        t0.elapsed().as_secs_f64()
    );
    let model = model_dir.to_string_lossy().into_owned();
    let models = ModelCache::default();
    let docs: Vec<String> = synthetic_bitext(s.encode_sentences, lengths, spec.vocab_size, 7)
        .into_iter()
        .map(|p| p.tgt)
        .collect();
    let (mut train_rows, mut encode_rows, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for name in &a.backends {
        let Some((backend, device)) = crate::train::device_or_skip(name) else {
            continue;
        };
        let backend = backend.to_string();
        if s.matmul_size > 0 {
            match clir_models::bench::matmul_gflops(&device, s.matmul_size) {
                Ok(g) => peaks.push((backend.clone(), g)),
                Err(e) => println!("{backend}: matmul failed: {e:#}"),
            }
        }
        let ctx = Ctx {
            a,
            spec,
            lengths,
            work,
            model: &model,
            models: &models,
        };
        train_rows.extend(ctx.train_rows(&backend, &device)?);
        encode_rows.extend(ctx.encode_rows(&backend, &device, &docs));
    }
    println!("{}", header(a, spec));
    print_peaks(&peaks, s.matmul_size);
    print_train_table(&train_rows);
    print_encode_table(&encode_rows, docs.len());
    if let Some(python) = &s.torch_reference {
        crate::bench_torch::compare(python, a, work, &train_rows, &encode_rows);
    }
    Ok(())
}

/// What every row of one benchmark shares.
struct Ctx<'a> {
    a: &'a BenchTrainArgs,
    spec: &'a SyntheticSpec,
    lengths: &'a LengthHistogram,
    work: &'a Path,
    model: &'a str,
    models: &'a ModelCache,
}

impl Ctx<'_> {
    /// Every training row of one backend; a failed run prints its error and the others go on.
    fn train_rows(&self, backend: &str, device: &Device) -> anyhow::Result<Vec<TrainRow>> {
        let a = self.a;
        let mut rows = Vec::new();
        for vocab in &a.synthetic.vocab {
            let trim = match vocab.as_str() {
                "full" => false,
                "trimmed" => true,
                other => anyhow::bail!("--vocab takes full and trimmed, not '{other}'"),
            };
            for &method in &a.synthetic.methods {
                for cache in &a.prefix_cache {
                    let on = match cache.as_str() {
                        "on" => true,
                        "off" => false,
                        other => anyhow::bail!("--prefix-cache takes off and on, not '{other}'"),
                    };
                    for &batch in &a.synthetic.batch_sizes {
                        let row = RowSpec {
                            method,
                            vocab,
                            trim,
                            cache: on,
                            batch,
                        };
                        match self.train_row(backend, device, &row) {
                            Ok(r) => rows.push(r),
                            Err(e) => println!(
                                "{backend} {} {vocab} cache {cache} batch {batch}: failed: {e:#}",
                                method.name()
                            ),
                        }
                    }
                }
            }
        }
        Ok(rows)
    }

    /// One `train` run: the untimed warm-up (an epoch of `steps` batches, or with `--cold`
    /// one step), then `steps` timed steps (the same batches again, or the next ones).
    fn train_row(&self, backend: &str, device: &Device, r: &RowSpec) -> anyhow::Result<TrainRow> {
        let a = self.a;
        if r.batch == 0 || a.steps == 0 {
            anyhow::bail!("batch sizes and --steps must be positive");
        }
        let (warm, batches) = if a.synthetic.cold {
            (1, a.steps + 1)
        } else {
            (a.steps, a.steps)
        };
        let pairs = synthetic_bitext(
            r.batch * batches,
            self.lengths,
            self.spec.vocab_size,
            r.batch as u64,
        );
        let cfg = synthetic_config(a, self.model, r, warm + a.steps);
        let dir = self.work.join(format!(
            "run-{backend}-{}-{}-{}-{}",
            r.method.name(),
            r.vocab,
            r.cache,
            r.batch
        ));
        let inputs = TrainInputs {
            pairs: pairs.clone(),
            teacher_store: Some(self.work.join("teacher-states")),
            prefix_cache: r.cache,
            prefix_store: None,
            models: self.models.clone(),
            ..Default::default()
        };
        let out = train(&cfg, &inputs, &dir, device).context("training")?;
        let _ = std::fs::remove_dir_all(&dir);
        let timed = &out.log[warm..];
        let secs: f64 = timed.iter().map(|l| l.tokens as f64 / l.tokens_per_s).sum();
        let tokens: usize = timed.iter().map(|l| l.tokens).sum();
        let steps_per_s = timed.len() as f64 / secs;
        let cache = r.cache && out.prefix.is_some();
        let per_pair = train_flops_per_pair(
            self.spec,
            &pairs,
            r.method,
            a.freeze_layers,
            cache,
            a.max_len,
        );
        Ok(TrainRow {
            backend: backend.to_string(),
            method: r.method,
            vocab: r.vocab.to_string(),
            cache,
            batch: r.batch,
            steps_per_s,
            tokens_per_s: tokens as f64 / secs,
            flops_per_s: per_pair * r.batch as f64 * steps_per_s,
        })
    }

    /// Encoding rows of one backend (the untrained model, all layers, at its 512 positions).
    fn encode_rows(&self, backend: &str, device: &Device, docs: &[String]) -> Vec<EncodeRow> {
        let mut rows = Vec::new();
        for &batch in &self.a.synthetic.encode_batches {
            match self.encode_row(backend, device, docs, batch) {
                Ok(r) => rows.push(r),
                Err(e) => println!("{backend} encode batch {batch}: failed: {e:#}"),
            }
        }
        rows
    }

    fn encode_row(
        &self,
        backend: &str,
        device: &Device,
        docs: &[String],
        batch: usize,
    ) -> anyhow::Result<EncodeRow> {
        let model = self.models.load(self.model, device)?;
        let warm = match self.a.synthetic.cold {
            true => &docs[..docs.len().min(batch)],
            false => docs,
        };
        model.embed(warm, TextKind::Passage, batch)?;
        let t0 = Instant::now();
        model.embed(docs, TextKind::Passage, batch)?;
        let secs = t0.elapsed().as_secs_f64();
        let max_len = model.config.max_len;
        let tokens: usize = docs.iter().map(|d| tokens_of(d, max_len)).sum();
        let flops: f64 = docs
            .iter()
            .map(|d| layer_flops(self.spec, tokens_of(d, max_len)) * self.spec.layers as f64)
            .sum();
        Ok(EncodeRow {
            backend: backend.to_string(),
            batch,
            sentences_per_s: docs.len() as f64 / secs,
            tokens_per_s: tokens as f64 / secs,
            flops_per_s: flops / secs,
        })
    }
}

/// What varies between the training rows of one backend.
struct RowSpec<'a> {
    method: Method,
    vocab: &'a str,
    trim: bool,
    cache: bool,
    batch: usize,
}

/// The run each training row makes: the synthetic model as teacher and student.
fn synthetic_config(a: &BenchTrainArgs, model: &str, r: &RowSpec<'_>, steps: usize) -> TrainConfig {
    let mut cfg = TrainConfig::new();
    cfg.model.student = model.to_string();
    cfg.model.teacher = model.to_string();
    cfg.model.trim_vocab = r.trim;
    cfg.model.freeze_layers = a.freeze_layers;
    cfg.model.max_len = a.max_len;
    cfg.loss.method = r.method;
    cfg.optim.batch_size = r.batch;
    cfg.optim.length_pool = a.length_pool;
    cfg.optim.steps = steps;
    cfg.optim.warmup_steps = 1;
    cfg.run.checkpoint_every = steps;
    cfg.run.progress = false;
    cfg
}

fn print_peaks(peaks: &[(String, f64)], n: usize) {
    for (backend, g) in peaks {
        println!("{backend:<8} matmul peak: {g:.1} GFLOP/s (f32 {n}×{n} @ {n}×{n})");
    }
}

fn print_train_table(rows: &[TrainRow]) {
    println!(
        "{:<8} {:<8} {:<8} {:<6} {:>6} {:>10} {:>12} {:>12}",
        "backend", "method", "vocab", "cache", "batch", "steps/s", "tokens/s", "GFLOP/s"
    );
    for r in rows {
        println!(
            "{:<8} {:<8} {:<8} {:<6} {:>6} {:>10.3} {:>12.1} {:>12.2}",
            r.backend,
            r.method.name(),
            r.vocab,
            if r.cache { "on" } else { "off" },
            r.batch,
            r.steps_per_s,
            r.tokens_per_s,
            r.flops_per_s / 1e9
        );
    }
}

fn print_encode_table(rows: &[EncodeRow], sentences: usize) {
    if rows.is_empty() {
        return;
    }
    println!("encoding: {sentences} synthetic sentences, all layers, up to 512 tokens");
    println!(
        "{:<8} {:>6} {:>12} {:>12} {:>12}",
        "backend", "batch", "sentences/s", "tokens/s", "GFLOP/s"
    );
    for r in rows {
        println!(
            "{:<8} {:>6} {:>12.1} {:>12.1} {:>12.2}",
            r.backend,
            r.batch,
            r.sentences_per_s,
            r.tokens_per_s,
            r.flops_per_s / 1e9
        );
    }
}

/// Where the histogram file is written for the reference script.
pub(crate) fn write_lengths(work: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(work)?;
    let path = work.join("synthetic_lengths.tsv");
    std::fs::write(&path, clir_models::synthetic::LENGTHS_TSV)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_flops_follow_the_formula() {
        let spec = SyntheticSpec::default();
        // 2·10·(4·384² + 2·384·1536) + 4·100·384
        assert_eq!(layer_flops(&spec, 10), 35_543_040.0);
        let pairs = [BitextPair {
            src: "w4 w5".into(),
            tgt: "w6 w7 w8 w9 w10 w11 w12 w13".into(),
        }];
        let f = |m, cache| train_flops_per_pair(&spec, &pairs, m, 8, cache, 64);
        assert_eq!(f(Method::Optical, false), 20.0 * layer_flops(&spec, 10));
        assert_eq!(f(Method::Optical, true), 12.0 * layer_flops(&spec, 10));
        assert_eq!(
            f(Method::Mse, false),
            20.0 * (layer_flops(&spec, 10) + layer_flops(&spec, 4))
        );
    }

    /// Prints the rows of `crates/clir-models/src/synthetic_lengths.tsv`: token lengths
    /// (e5 tokenizer, specials included, no prefix, at most 512) of the English WEB ↔
    /// Swahili Old Testament bitext. Needs the data cache; numbers only, never verse text.
    #[test]
    #[ignore = "reads the data cache; prints the committed length histogram"]
    fn print_bible_length_histogram() {
        let db = clir_data::bible::BibleDb::open(&clir_data::fetch::bible_db().unwrap()).unwrap();
        let pairs = clir_train::bitext::bible_bitext(&db, "swahili", "1-39").unwrap();
        let tok = clir_models::TextTokenizer::from_file(
            &clir_data::fetch::e5_small_tokenizer().unwrap(),
            512,
        )
        .unwrap();
        println!("# {} pairs", pairs.len());
        for (side, texts) in [
            ("target", pairs.iter().map(|p| &p.tgt).collect::<Vec<_>>()),
            ("english", pairs.iter().map(|p| &p.src).collect()),
        ] {
            let mut counts = std::collections::BTreeMap::<usize, u64>::new();
            for t in texts {
                *counts.entry(tok.encode(t).unwrap().len()).or_default() += 1;
            }
            for (len, c) in counts {
                println!("{side}\t{len}\t{c}");
            }
        }
    }
}
