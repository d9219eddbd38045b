//! The `cargo xtask eval` command: trec_eval-compatible evaluation of a run file.

use std::io::Write;
use std::path::PathBuf;

use crate::error::{EvalError, Result};
use crate::metrics::{EvalOptions, MeasureSet, evaluate_with_progress};
use crate::trec::{Qrels, Run};

/// `cargo xtask eval [-q] [-c] [-M N] [-l L] [-m MEASURE]... QRELS RUN`, as trec_eval is
/// called (`--qrels FILE --run FILE` also work).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Qrels file (`qid iter docno rel`), instead of the first positional argument.
    #[arg(long, conflicts_with = "files")]
    pub qrels: Option<PathBuf>,
    /// Run file (`qid iter docno rank score tag`), instead of the second positional argument.
    #[arg(long, conflicts_with = "files")]
    pub run: Option<PathBuf>,
    /// `QRELS RUN`, in trec_eval's order.
    #[arg(value_name = "QRELS RUN", num_args = 0..=2)]
    pub files: Vec<PathBuf>,
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
    /// A measure, trec_eval syntax (`map`, `bpref`, `P.5,10`, `ndcg_cut.10`, `recall`,
    /// `num_q`...), `recip_rank_cut.k` / `judged.k`, or an ir_measures name (`AP`, `RR@10`,
    /// `nDCG@10`, `Judged@10`...); repeat `-m` for several, as with trec_eval. Default: map
    /// Rprec recip_rank P.5,10,20,100 recall.10,100,1000 ndcg_cut.5,10,20,100.
    #[arg(short = 'm', value_name = "MEASURE", action = clap::ArgAction::Append)]
    pub measures: Vec<String>,
    /// Show a progress bar on stderr.
    #[arg(long)]
    pub progress: bool,
}

impl EvalArgs {
    /// The qrels and run files, from `--qrels`/`--run` or the two positional arguments.
    pub fn files(&self) -> Result<(PathBuf, PathBuf)> {
        let mut pos = self.files.iter().cloned();
        match (
            self.qrels.clone().or_else(|| pos.next()),
            self.run.clone().or_else(|| pos.next()),
        ) {
            (Some(q), Some(r)) => Ok((q, r)),
            _ => Err(EvalError::Invalid(
                "give the qrels and the run file: `eval QRELS RUN` (or --qrels and --run)".into(),
            )),
        }
    }
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
    let (qrels, run) = a.files()?;
    let qrels = Qrels::from_path(&qrels)?;
    let run = Run::from_path(&run)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: EvalArgs,
    }

    fn parse(argv: &[&str]) -> std::result::Result<EvalArgs, clap::Error> {
        Cmd::try_parse_from(std::iter::once("eval").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn files_come_positionally_as_in_trec_eval_or_by_name() {
        let a = parse(&["-q", "-m", "map", "-m", "P.5,10", "q.txt", "r.txt"]).unwrap();
        assert_eq!(a.files().unwrap(), ("q.txt".into(), "r.txt".into()));
        assert_eq!(a.measures, ["map", "P.5,10"]);
        assert!(a.per_query);
        let a = parse(&["--qrels", "q.txt", "--run", "r.txt", "-c"]).unwrap();
        assert_eq!(a.files().unwrap(), ("q.txt".into(), "r.txt".into()));
        let e = parse(&["q.txt"]).unwrap().files().unwrap_err().to_string();
        assert!(e.contains("eval QRELS RUN"), "{e}");
        assert!(parse(&["--qrels", "q.txt", "a", "b"]).is_err());
        assert!(parse(&["a", "b", "c"]).is_err());
    }
}
