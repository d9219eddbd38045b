//! The `cargo xtask eval` command: trec_eval-compatible evaluation of a run file, printed as
//! trec_eval prints it or, with `--json`, as JSON; each measure is named as it was asked for.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use serde::ser::{Serialize, Serializer};

use crate::error::{EvalError, Result};
use crate::metrics::{
    EvalOptions, Evaluation, Family, Measure, MeasureSet, evaluate_with_progress, trec_spec,
};
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
    /// `nDCG@10`, `Judged@10`...); repeat `-m` for several, as with trec_eval. Each value is
    /// printed under the name asked for: `-m nDCG@10` prints `nDCG@10`, `-m ndcg_cut.10`
    /// prints trec_eval's `ndcg_cut_10`. Default: map Rprec recip_rank P.5,10,20,100
    /// recall.10,100,1000 ndcg_cut.5,10,20,100.
    #[arg(short = 'm', value_name = "MEASURE", action = clap::ArgAction::Append)]
    pub measures: Vec<String>,
    /// Write JSON on stdout instead of trec_eval's lines:
    /// `{"measures": [NAME, ...], "all": {NAME: VALUE, ...}, "per_query": {QID: {NAME: VALUE,
    /// ...}, ...}}`, names as printed (in trec_eval's order), values unrounded (counts as
    /// integers); `per_query` only with -q, queries in trec_eval's order, without `num_q`.
    #[arg(long)]
    pub json: bool,
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

/// The measures of `-m` (the standard set without any) and, for each in output order, the
/// names it was asked for: the spec itself for an ir_measures name (`nDCG@10`), trec_eval's
/// output name otherwise (`ndcg_cut.5,10` gives `ndcg_cut_5` and `ndcg_cut_10`). A measure
/// asked for under two names (`-m P@10 -m P.10`) is printed under both.
pub fn named_measures(specs: &[String]) -> Result<(MeasureSet, Vec<Vec<String>>)> {
    if specs.is_empty() {
        let set = MeasureSet::standard();
        let names = set.measures().iter().map(|m| vec![m.name()]).collect();
        return Ok((set, names));
    }
    let set = MeasureSet::parse(specs)?;
    let mut names: BTreeMap<Measure, Vec<String>> = BTreeMap::new();
    for spec in specs {
        let spec = spec.trim();
        let ir_name = trec_spec(spec)? != spec;
        for m in MeasureSet::parse(&[spec])?.measures() {
            let name = if ir_name { spec.to_string() } else { m.name() };
            let have = names.entry(*m).or_default();
            if !have.contains(&name) {
                have.push(name);
            }
        }
    }
    let names = set
        .measures()
        .iter()
        .map(|m| {
            names
                .remove(m)
                .expect("every measure of the set comes from a spec")
        })
        .collect();
    Ok((set, names))
}

/// Runs the evaluation and returns what `cargo xtask eval` prints: trec_eval's lines, or the
/// JSON document of `--json`.
pub fn eval_to_string(a: &EvalArgs) -> Result<String> {
    let (measures, names) = named_measures(&a.measures)?;
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
    if a.json {
        format_json(&ev, &names, a.per_query)
    } else {
        Ok(format_named(&ev, &names, a.per_query))
    }
}

/// trec_eval's lines ([`Evaluation::format_trec`]) with each measure under its `names`.
pub fn format_named(ev: &Evaluation, names: &[Vec<String>], per_query: bool) -> String {
    let mut out = String::new();
    let ms = ev.measures.measures();
    let mut line = |m: &Measure, name: &str, qid: &str, v: f64| {
        let v = v + 0.0; // never print "-0.0000"
        let value = if m.is_count() {
            (v.round() as i64).to_string()
        } else {
            format!("{v:.4}")
        };
        let _ = writeln!(out, "{name:<22}\t{qid}\t{value}");
    };
    if per_query {
        for q in &ev.per_query {
            for ((m, v), names) in ms.iter().zip(&q.values).zip(names) {
                if m.family == Family::NumQ {
                    continue; // trec_eval prints num_q only for "all"
                }
                for name in names {
                    line(m, name, &q.qid, *v);
                }
            }
        }
    }
    for ((m, v), names) in ms.iter().zip(&ev.all).zip(names) {
        for name in names {
            line(m, name, "all", *v);
        }
    }
    out
}

/// A JSON object whose keys keep the order given.
struct Ordered<V>(Vec<(String, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The `--json` document; its fields in this order.
#[derive(serde::Serialize)]
struct JsonEvaluation {
    measures: Vec<String>,
    all: Ordered<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_query: Option<Ordered<Ordered<serde_json::Value>>>,
}

/// The `--json` document (see [`EvalArgs::json`]), pretty-printed, with a final newline.
pub fn format_json(ev: &Evaluation, names: &[Vec<String>], per_query: bool) -> Result<String> {
    let ms = ev.measures.measures();
    let values = |values: &[f64], all: bool| {
        let mut o = Vec::new();
        for ((m, v), names) in ms.iter().zip(values).zip(names) {
            if !all && m.family == Family::NumQ {
                continue;
            }
            let v = v + 0.0;
            let value = if m.is_count() {
                serde_json::Value::from(v.round() as i64)
            } else {
                serde_json::Value::from(v)
            };
            for name in names {
                o.push((name.clone(), value.clone()));
            }
        }
        Ordered(o)
    };
    let doc = JsonEvaluation {
        measures: names.iter().flatten().cloned().collect(),
        all: values(&ev.all, true),
        per_query: per_query.then(|| {
            Ordered(
                ev.per_query
                    .iter()
                    .map(|q| (q.qid.clone(), values(&q.values, false)))
                    .collect(),
            )
        }),
    };
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    Ok(text)
}

/// Entry point of `cargo xtask eval`: prints `measure<TAB>qid|all<TAB>value` lines (or, with
/// `--json`, the JSON document) on stdout.
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
