//! trec_eval's behaviour as a library function: an [`EvalRequest`] evaluated and printed as
//! trec_eval prints it or as JSON, each measure named as it was asked for. `cargo xtask eval`
//! parses its command line into the request and prints [`eval_to_string`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::ser::{Serialize, Serializer};

use crate::error::{EvalError, Result};
use crate::metrics::{
    EvalOptions, Evaluation, Family, Measure, MeasureSet, evaluate_with_progress, trec_spec,
};
use crate::trec::{Qrels, Run};

/// One evaluation as trec_eval is asked for it (`trec_eval [-q] [-c] [-M N] [-l L]
/// [-m MEASURE]... QRELS RUN`); `cargo xtask eval` parses its command line into this.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// Qrels file (`qid iter docno rel`).
    pub qrels: PathBuf,
    /// Run file (`qid iter docno rank score tag`).
    pub run: PathBuf,
    /// Per-query values before the `all` lines (`-q`).
    pub per_query: bool,
    /// Average over all qrels queries, missing ones counting 0 (`-c`).
    pub complete: bool,
    /// Evaluate only the top N documents of each query (`-M`).
    pub max_docs: Option<usize>,
    /// Minimum relevance grade counted as relevant (`-l`, 1 by default).
    pub relevance_level: i64,
    /// Measures in trec_eval syntax or ir_measures names, each printed under the name asked
    /// for ([`named_measures`]); empty: trec_eval's standard set.
    pub measures: Vec<String>,
    /// The JSON document of [`format_json`] instead of trec_eval's lines.
    pub json: bool,
    /// A progress bar on stderr.
    pub progress: bool,
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
pub fn eval_to_string(a: &EvalRequest) -> Result<String> {
    let (measures, names) = named_measures(&a.measures)?;
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

/// The JSON document (see [`EvalRequest::json`]), pretty-printed, with a final newline.
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
