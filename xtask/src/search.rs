//! `cargo xtask search`: ranks a user's collection (queries TSV, documents JSONL or TSV) for
//! every query, densely with two encoders or with BM25, and writes a TREC run.
//!
//! Both methods go through the functions `cargo xtask reproduce` ranks its cells with
//! (`clir_train::retrieval::dense_run` / `rank_embeddings`, `clir_eval::lexical::bm25::bm25_run`), so
//! the same model and texts give the same ranking: the same similarity, BM25 parameters and
//! tokenisation, ties by document order inside the top k and trec_eval's order in the file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clir_data::formats::{Document, Query, read_docs, read_queries};
use clir_eval::dense::Similarity;
use clir_eval::lexical::bm25::{Bm25Params, bm25_run};
use clir_eval::trec::{Run, id_problem};
use clir_models::Prefixes;
use clir_models::placement::load_placed;
use clir_train::config::ModelConfig;
use clir_train::retrieval::{DenseRunOptions, EVAL_SIMILARITY, RUN_DEPTH, dense_run};
use ot_core::backend::select_device;

/// How documents are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchMethod {
    /// Embeddings: queries by `--query-model`, documents by `--model`.
    Dense,
    /// BM25 over lower-cased Unicode words (`clir_eval::lexical::bm25`).
    Bm25,
}

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Queries: TSV, `qid<TAB>text` per line.
    #[arg(long)]
    queries: PathBuf,
    /// Documents: JSONL (`id` or `doc_id`, `text`, optional `title`) or TSV `id<TAB>text`,
    /// by extension (.jsonl/.json or .tsv/.txt).
    #[arg(long)]
    docs: PathBuf,
    /// The TREC run to write (`qid Q0 docid rank score tag`).
    #[arg(long)]
    out: PathBuf,
    /// Documents kept per query.
    #[arg(long, default_value_t = RUN_DEPTH)]
    k: usize,
    /// Run tag, the file's last column: no whitespace. Default: `bm25`, or
    /// `dense:QUERY_MODEL:MODEL` (whitespace in a model path becomes `_`).
    #[arg(long)]
    tag: Option<String>,
    #[arg(long, value_enum, default_value_t = SearchMethod::Dense)]
    method: SearchMethod,
    /// Dense: the model encoding the documents (with E5's `passage: ` prefix): `e5-small`
    /// (the zero-shot multilingual student), `minilm`, or a path: a trained student (the
    /// `student/` directory of a `cargo xtask train` run), a checkpoint directory, a Hugging
    /// Face directory or an E5S1 file.
    #[arg(long)]
    model: Option<String>,
    /// Dense: the model encoding the queries (with E5's `query: ` prefix). Default: the
    /// frozen teacher students are distilled from (`[model] teacher` of `cargo xtask train`,
    /// `e5-small`), as OPTICAL retrieves: English queries by the teacher, documents by the
    /// student. Pass the document model's name to encode both sides with one model.
    #[arg(long)]
    query_model: Option<String>,
    /// Dense: query / passage prefixes for both models instead of their own: `e5`
    /// ("query: " / "passage: "), `none`, or `"QUERY|PASSAGE"`.
    #[arg(long)]
    prefix: Option<Prefixes>,
    /// Dense: similarity of query and document embeddings, `dot` or `cosine`. `dot` is what reproduce and
    /// train evaluate with; for the L2-normalised e5 and MiniLM embeddings it is the cosine.
    #[arg(long, default_value_t = EVAL_SIMILARITY)]
    similarity: Similarity,
    /// Dense: compute backend (flex, ndarray, wgpu, tch); default: $OPTICAL_BACKEND or flex.
    #[arg(long)]
    backend: Option<String>,
    /// Dense: texts per encoder batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Dense: read at most this many tokens of each query and document (specials included).
    /// Default: each model's own maximum (512 for e5-small and its trained students; the
    /// training length of a student is never used).
    #[arg(long)]
    max_len: Option<usize>,
    /// BM25: term-frequency saturation k1 (default 0.9, as reproduce's BM25 and PSQ cells).
    #[arg(long)]
    k1: Option<f32>,
    /// BM25: length normalisation b (default 0.4, as reproduce's BM25 and PSQ cells).
    #[arg(long)]
    b: Option<f32>,
}

/// The queries and documents files read with clir-data's strict readers; a file with no
/// record is an error naming it (a run over nothing would be empty, never wrong-looking).
fn read_collection(queries: &Path, docs: &Path) -> anyhow::Result<(Vec<Query>, Vec<Document>)> {
    let q = read_queries(queries)?;
    if q.is_empty() {
        bail!("{}: no queries in the file", queries.display());
    }
    let d = read_docs(docs)?;
    if d.is_empty() {
        bail!("{}: no documents in the file", docs.display());
    }
    Ok((q, d))
}

/// `--tag`, checked by the run-tag rule, or the default of the method (see [`SearchArgs`]).
fn run_tag(a: &SearchArgs, query_model: &str) -> anyhow::Result<String> {
    let tag = match (&a.tag, a.method) {
        (Some(t), _) => t.clone(),
        (None, SearchMethod::Bm25) => "bm25".to_string(),
        (None, SearchMethod::Dense) => format!(
            "dense:{query_model}:{}",
            a.model.as_deref().unwrap_or_default()
        )
        .replace(char::is_whitespace, "_"),
    };
    if let Some(m) = id_problem(&tag, "run tag") {
        bail!("--tag: {m}");
    }
    Ok(tag)
}

/// BM25 parameters from `--k1`/`--b` over the defaults, each finite and in its range
/// (`k1 ≥ 0`, `0 ≤ b ≤ 1`).
fn bm25_params(a: &SearchArgs) -> anyhow::Result<Bm25Params> {
    let d = Bm25Params::default();
    let p = Bm25Params {
        k1: a.k1.unwrap_or(d.k1),
        b: a.b.unwrap_or(d.b),
    };
    if !(p.k1.is_finite() && p.k1 >= 0.0) {
        bail!("--k1 {} must be a finite number ≥ 0", p.k1);
    }
    if !(0.0..=1.0).contains(&p.b) {
        bail!("--b {} must lie in [0, 1]", p.b);
    }
    Ok(p)
}

/// Options given that the chosen method does not read: an error, never silently ignored.
fn check_method_options(a: &SearchArgs) -> anyhow::Result<()> {
    let foreign: Vec<&str> = match a.method {
        SearchMethod::Dense => [("--k1", a.k1.is_some()), ("--b", a.b.is_some())]
            .into_iter()
            .filter_map(|(name, given)| given.then_some(name))
            .collect(),
        SearchMethod::Bm25 => [
            ("--model", a.model.is_some()),
            ("--max-len", a.max_len.is_some()),
            ("--query-model", a.query_model.is_some()),
            ("--prefix", a.prefix.is_some()),
            ("--backend", a.backend.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect(),
    };
    if !foreign.is_empty() {
        let method = if a.method == SearchMethod::Dense {
            "dense"
        } else {
            "bm25"
        };
        bail!(
            "options that --method {method} does not read: {}",
            foreign.join(", ")
        );
    }
    if a.method == SearchMethod::Dense && a.model.is_none() {
        bail!("--method dense needs --model (the document encoder)");
    }
    if a.k == 0 {
        bail!("--k must be positive");
    }
    Ok(())
}

pub fn run(a: SearchArgs) -> anyhow::Result<()> {
    check_method_options(&a)?;
    crate::paths::check_writable_file(&a.out, "--out")?;
    let query_model = a
        .query_model
        .clone()
        .unwrap_or_else(|| ModelConfig::new().teacher);
    let tag = run_tag(&a, &query_model)?;
    let params = bm25_params(&a)?;
    let (queries, docs) = read_collection(&a.queries, &a.docs)?;
    let qids: Vec<String> = queries.iter().map(|q| q.id.clone()).collect();
    let qtexts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let docids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
    let dtexts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    let inputs = || format!("{} over {}", a.queries.display(), a.docs.display());
    let (run, how) = match a.method {
        SearchMethod::Bm25 => {
            let (run, empty) = bm25_run(&qtexts, &qids, &dtexts, &docids, params, a.k, true)
                .with_context(|| format!("BM25 of {}", inputs()))?;
            let how = format!(
                "BM25 (k1 = {}, b = {}); {empty} queries retrieved nothing",
                params.k1, params.b
            );
            (run, how)
        }
        SearchMethod::Dense => {
            let doc_model = a.model.as_deref().expect("checked above");
            let (_, device) = select_device(a.backend.as_deref())?;
            let load = |name: &str| -> anyhow::Result<clir_models::Embedder> {
                let e = load_placed(name, None, "model", &device)
                    .with_context(|| format!("loading model {name}"))?;
                let e = match a.max_len {
                    Some(n) => e
                        .with_max_len(n)
                        .with_context(|| format!("--max-len {n}"))?,
                    None => e,
                };
                Ok(crate::models::with_prefix(e, a.prefix.as_ref()))
            };
            let query_encoder = load(&query_model)?;
            let doc_encoder = if doc_model == query_model {
                query_encoder.clone()
            } else {
                load(doc_model)?
            };
            let opts = DenseRunOptions {
                depth: a.k,
                similarity: a.similarity,
                batch_size: a.batch_size,
                progress: true,
            };
            let run = dense_run(
                &query_encoder,
                &doc_encoder,
                (&qtexts, &qids),
                (&dtexts, &docids),
                &opts,
            )
            .with_context(|| format!("dense retrieval of {}", inputs()))?;
            let similarity = a.similarity;
            let on = |e: &clir_models::Embedder| clir_models::placement::backend_of(&e.device);
            let how = format!(
                "queries by {query_model} ({} tokens, on {}), documents by {doc_model} ({} \
                 tokens, on {}), {similarity} similarity",
                query_encoder.config.max_len,
                on(&query_encoder),
                doc_encoder.config.max_len,
                on(&doc_encoder)
            );
            (run, how)
        }
    };
    write_run(&run, &a.out, &tag)?;
    eprintln!(
        "{} queries × top {} of {} documents -> {} (tag {tag}); {how}",
        qids.len(),
        a.k,
        docids.len(),
        a.out.display()
    );
    Ok(())
}

/// Writes `run` to `path` with `tag` (clir-eval's one TREC run writer), after the checks a
/// read run gets.
fn write_run(run: &Run, path: &Path, tag: &str) -> anyhow::Result<()> {
    run.validate(&path.display().to_string())?;
    let file = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let mut w = BufWriter::new(file);
    run.write_trec(&mut w, tag)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing {}", path.display()))
}
