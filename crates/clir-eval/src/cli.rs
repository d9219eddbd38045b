//! The `cargo xtask eval` command: trec_eval-compatible evaluation of a run file.

use std::io::Write;
use std::path::PathBuf;

use crate::error::{EvalError, Result};
use crate::metrics::{EvalOptions, MeasureSet, evaluate_with_progress};
use crate::trec::{Qrels, Run};

/// `cargo xtask eval --qrels FILE --run FILE [-q] [-c] [-M N] [-l L] [-m MEASURE ...]`
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Qrels file (`qid iter docno rel`).
    #[arg(long)]
    pub qrels: PathBuf,
    /// Run file (`qid iter docno rank score tag`).
    #[arg(long)]
    pub run: PathBuf,
    /// Print per-query values before the `all` lines (trec_eval -q).
    #[arg(short = 'q')]
    pub per_query: bool,
    /// Average over all qrels queries, missing ones counting 0 (trec_eval -c).
    #[arg(short = 'c')]
    pub complete: bool,
    /// Evaluate only the top N documents of each query (trec_eval -M).
    #[arg(short = 'M', value_name = "N")]
    pub max_docs: Option<usize>,
    /// Minimum relevance grade counted as relevant (trec_eval -l).
    #[arg(short = 'l', value_name = "LEVEL", default_value_t = 1)]
    pub relevance_level: i64,
    /// Measures, trec_eval syntax (`map`, `P.5,10`, `ndcg_cut.10`, `recall`, `num_q`...);
    /// default: map Rprec recip_rank P.5,10,20,100 recall.10,100,1000 ndcg_cut.5,10,20,100.
    #[arg(short = 'm', value_name = "MEASURE", num_args = 1..)]
    pub measures: Vec<String>,
    /// Show a progress bar on stderr.
    #[arg(long)]
    pub progress: bool,
}

/// Runs the evaluation and returns the trec_eval-formatted text.
pub fn eval_to_string(a: &EvalArgs) -> Result<String> {
    let measures = if a.measures.is_empty() {
        MeasureSet::standard()
    } else {
        MeasureSet::parse(&a.measures)?
    };
    if a.max_docs == Some(0) {
        return Err(EvalError::Invalid("-M must be positive".into()));
    }
    let qrels = Qrels::from_path(&a.qrels)?;
    let run = Run::from_path(&a.run)?;
    let opts = EvalOptions {
        average_complete: a.complete,
        max_docs_per_query: a.max_docs,
        relevance_level: a.relevance_level,
    };
    let ev = evaluate_with_progress(&qrels, &run, &measures, &opts, a.progress)?;
    Ok(ev.format_trec(a.per_query))
}

/// Entry point of `cargo xtask eval`: prints `measure<TAB>qid|all<TAB>value` lines on stdout.
pub fn run(a: &EvalArgs) -> anyhow::Result<()> {
    let text = eval_to_string(a)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
