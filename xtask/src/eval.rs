//! `cargo xtask eval` and `cargo xtask bench eval`: the command lines, parsed here into
//! `clir_eval`'s plain option structs ([`EvalRequest`], [`BenchEvalOptions`]), whose
//! library functions do the work.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clir_eval::bench::BenchEvalOptions;
use clir_eval::trec_eval::{EvalRequest, eval_to_string};

/// `cargo xtask eval [-q] [-c] [-M N] [-l L] [-m MEASURE]... QRELS RUN`, as trec_eval is
/// called (`--qrels FILE --run FILE` also work).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Qrels file (`qid iter docno rel`), instead of the first positional argument.
    #[arg(long, conflicts_with = "files")]
    qrels: Option<PathBuf>,
    /// Run file (`qid iter docno rank score tag`), instead of the second positional argument.
    #[arg(long, conflicts_with = "files")]
    run: Option<PathBuf>,
    /// `QRELS RUN`, in trec_eval's order.
    #[arg(value_name = "QRELS RUN", num_args = 0..=2)]
    files: Vec<PathBuf>,
    /// Print per-query values before the `all` lines (trec_eval -q).
    #[arg(short = 'q')]
    per_query: bool,
    /// Average over all qrels queries, missing ones counting 0 (trec_eval -c).
    #[arg(short = 'c')]
    complete: bool,
    /// Evaluate only the top N documents of each query (trec_eval -M).
    #[arg(short = 'M', value_name = "N")]
    max_docs: Option<usize>,
    /// Minimum relevance grade counted as relevant (trec_eval -l).
    #[arg(short = 'l', value_name = "LEVEL", default_value_t = 1)]
    relevance_level: i64,
    /// A measure, trec_eval syntax (`map`, `bpref`, `P.5,10`, `ndcg_cut.10`, `recall`,
    /// `num_q`...), `recip_rank_cut.k` / `judged.k`, or an ir_measures name (`AP`, `RR@10`,
    /// `nDCG@10`, `Judged@10`...); repeat `-m` for several, as with trec_eval. Each value is
    /// printed under the name asked for: `-m nDCG@10` prints `nDCG@10`, `-m ndcg_cut.10`
    /// prints trec_eval's `ndcg_cut_10`. Default: map Rprec recip_rank P.5,10,20,100
    /// recall.10,100,1000 ndcg_cut.5,10,20,100.
    #[arg(short = 'm', value_name = "MEASURE", action = clap::ArgAction::Append)]
    measures: Vec<String>,
    /// Write JSON on stdout instead of trec_eval's lines:
    /// `{"measures": [NAME, ...], "all": {NAME: VALUE, ...}, "per_query": {QID: {NAME: VALUE,
    /// ...}, ...}}`, names as printed (in trec_eval's order), values unrounded (counts as
    /// integers); `per_query` only with -q, queries in trec_eval's order, without `num_q`.
    #[arg(long)]
    json: bool,
    /// Show a progress bar on stderr.
    #[arg(long)]
    progress: bool,
}

impl EvalArgs {
    /// The request: the qrels and run files from `--qrels`/`--run` or the two positional
    /// arguments, and the options as given.
    fn request(&self) -> anyhow::Result<EvalRequest> {
        let mut pos = self.files.iter().cloned();
        let (Some(qrels), Some(run)) = (
            self.qrels.clone().or_else(|| pos.next()),
            self.run.clone().or_else(|| pos.next()),
        ) else {
            bail!("give the qrels and the run file: `eval QRELS RUN` (or --qrels and --run)");
        };
        Ok(EvalRequest {
            qrels,
            run,
            per_query: self.per_query,
            complete: self.complete,
            max_docs: self.max_docs,
            relevance_level: self.relevance_level,
            measures: self.measures.clone(),
            json: self.json,
            progress: self.progress,
        })
    }
}

/// Prints `measure<TAB>qid|all<TAB>value` lines (or, with `--json`, the JSON document).
pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let text = eval_to_string(&a.request()?)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Arguments of `cargo xtask bench eval` (defaults: [`BenchEvalOptions::default`]).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchEvalArgs {
    /// Queries in the metrics benchmark [default: 10000].
    #[arg(long)]
    queries: Option<usize>,
    /// Retrieved documents per query in the metrics benchmark [default: 1000].
    #[arg(long)]
    docs_per_query: Option<usize>,
    /// Queries in the dense retrieval benchmark [default: 10000].
    #[arg(long)]
    dense_queries: Option<usize>,
    /// Documents in the dense retrieval benchmark [default: 100000].
    #[arg(long)]
    dense_docs: Option<usize>,
    /// Embedding dimension [default: 384].
    #[arg(long)]
    dim: Option<usize>,
    /// Depth of the dense top-k [default: 100].
    #[arg(long)]
    k: Option<usize>,
    /// Timed repetitions of each measurement, the best reported [default: 3].
    #[arg(long)]
    repeats: Option<usize>,
    /// Seed of the synthetic data [default: 2023].
    #[arg(long)]
    seed: Option<u64>,
    /// Where the synthetic files go [default: target/bench-eval].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Python interpreter for the references [default: python3].
    #[arg(long)]
    python: Option<String>,
    /// Skip the metrics benchmark.
    #[arg(long)]
    skip_metrics: bool,
    /// Skip the dense retrieval benchmark.
    #[arg(long)]
    skip_dense: bool,
}

/// Metrics vs pytrec_eval and dense top-k vs numpy, side by side.
pub fn bench(a: BenchEvalArgs) -> anyhow::Result<()> {
    let d = BenchEvalOptions::default();
    clir_eval::bench::run(&BenchEvalOptions {
        queries: a.queries.unwrap_or(d.queries),
        docs_per_query: a.docs_per_query.unwrap_or(d.docs_per_query),
        dense_queries: a.dense_queries.unwrap_or(d.dense_queries),
        dense_docs: a.dense_docs.unwrap_or(d.dense_docs),
        dim: a.dim.unwrap_or(d.dim),
        k: a.k.unwrap_or(d.k),
        repeats: a.repeats.unwrap_or(d.repeats),
        seed: a.seed.unwrap_or(d.seed),
        work_dir: a.work_dir.unwrap_or(d.work_dir),
        python: a.python.unwrap_or(d.python),
        skip_metrics: a.skip_metrics,
        skip_dense: a.skip_dense,
    })
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

    fn parse(argv: &[&str]) -> Result<EvalArgs, clap::Error> {
        Cmd::try_parse_from(std::iter::once("eval").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn files_come_positionally_as_in_trec_eval_or_by_name() {
        let a = parse(&["-q", "-m", "map", "-m", "P.5,10", "q.txt", "r.txt"]).unwrap();
        let r = a.request().unwrap();
        assert_eq!((r.qrels, r.run), ("q.txt".into(), "r.txt".into()));
        assert_eq!(r.measures, ["map", "P.5,10"]);
        assert!(r.per_query && !r.complete && r.relevance_level == 1);
        let a = parse(&["--qrels", "q.txt", "--run", "r.txt", "-c"]).unwrap();
        let r = a.request().unwrap();
        assert_eq!((r.qrels, r.run), ("q.txt".into(), "r.txt".into()));
        assert!(r.complete);
        let e = parse(&["q.txt"])
            .unwrap()
            .request()
            .unwrap_err()
            .to_string();
        assert!(e.contains("eval QRELS RUN"), "{e}");
        assert!(parse(&["--qrels", "q.txt", "a", "b"]).is_err());
        assert!(parse(&["a", "b", "c"]).is_err());
    }
}
