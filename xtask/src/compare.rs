//! `cargo xtask compare A B`: a paired test between two rows of `reproduce` reports, which
//! may come from different presets (the e5-small and the MiniLM teacher of the settings
//! study, say), provided both were evaluated on the same sample of the same queries.
//!
//! A row is `RESULTS:PAIR/METHOD`: `RESULTS` a results folder or its `results.json`,
//! `METHOD` the row label of the report (`optical/base`, `optical/base@200`, `zero-shot`).
//! Each row's per-query values are its seed-averaged ones (as in the report); the two rows'
//! evaluation fingerprints (split, sample hash, lengths) must be equal, and so must their
//! queries.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clir_eval::stats::{mean_confidence_interval, paired_randomization_test, paired_t_test};
use serde::Serialize;
use serde_json::Value;

/// Measure names of the report's per-query triples, in their order.
const MEASURES: [&str; 3] = ["MAP", "nDCG@10", "MRR@10"];
/// Sign flips of the randomization test (seeded, so the p-value is reproducible).
const PERMUTATIONS: usize = 10_000;
const PERMUTATION_SEED: u64 = 13;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The first row, `RESULTS:PAIR/METHOD` (e.g.
    /// `experiments/results/settings-minilm:swahili/optical/base`); differences are A − B.
    a: String,
    /// The second row, same form.
    b: String,
    /// Write JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// One row of a report: its label, evaluation fingerprint and seed-averaged per-query values.
#[derive(Debug)]
struct Row {
    name: String,
    eval: Value,
    seeds: Vec<u64>,
    qids: Vec<String>,
    values: Vec<[f64; 3]>,
}

/// The test of one measure.
#[derive(Debug, Serialize)]
pub struct MeasureComparison {
    pub measure: &'static str,
    pub mean_a: f64,
    pub mean_b: f64,
    pub mean_diff: f64,
    /// Student-t 95% interval of the mean per-query difference.
    pub diff_ci: [f64; 2],
    pub p_t_test: f64,
    pub p_randomization: f64,
}

pub fn run(a: CompareArgs) -> anyhow::Result<()> {
    let (ra, rb) = (read_row(&a.a)?, read_row(&a.b)?);
    let result = compare(&ra, &rb)?;
    if a.json {
        let json = serde_json::json!({
            "a": ra.name, "b": rb.name,
            "seeds_a": ra.seeds, "seeds_b": rb.seeds,
            "queries": ra.qids.len(),
            "test": format!("paired two-sided t-test; paired randomization test ({PERMUTATIONS} sign flips, seed {PERMUTATION_SEED}); p not adjusted for multiple comparisons"),
            "measures": result,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!("A = {} (seeds {:?})", ra.name, ra.seeds);
    println!("B = {} (seeds {:?})", rb.name, rb.seeds);
    println!("{} queries, the same evaluation sample\n", ra.qids.len());
    println!("| measure | A | B | A − B | 95% CI | p (t) | p (randomization) |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    for m in &result {
        println!(
            "| {} | {:.4} | {:.4} | {:+.4} | [{:+.4}, {:+.4}] | {:.4} | {:.4} |",
            m.measure,
            m.mean_a,
            m.mean_b,
            m.mean_diff + 0.0,
            m.diff_ci[0],
            m.diff_ci[1],
            m.p_t_test,
            m.p_randomization
        );
    }
    println!(
        "\nPaired two-sided t-test and paired randomization test ({PERMUTATIONS} sign flips, \
         seed {PERMUTATION_SEED}) over the queries; p is not adjusted for multiple comparisons \
         (adjust it when you make several)."
    );
    Ok(())
}

/// The paired tests of A against B on every measure; the rows must share their evaluation.
fn compare(a: &Row, b: &Row) -> anyhow::Result<Vec<MeasureComparison>> {
    if a.eval != b.eval {
        bail!(
            "{} and {} were not evaluated on the same sample (evaluation fingerprints {} and {}); \
             a paired test needs the same queries and documents",
            a.name,
            b.name,
            a.eval,
            b.eval
        );
    }
    if a.qids != b.qids {
        bail!(
            "{} and {} cover different queries ({} and {})",
            a.name,
            b.name,
            a.qids.len(),
            b.qids.len()
        );
    }
    MEASURES
        .iter()
        .enumerate()
        .map(|(i, &measure)| {
            let va: Vec<f64> = a.values.iter().map(|v| v[i]).collect();
            let vb: Vec<f64> = b.values.iter().map(|v| v[i]).collect();
            let d: Vec<f64> = va.iter().zip(&vb).map(|(x, y)| x - y).collect();
            let ci = mean_confidence_interval(&d, 0.95)?;
            let n = va.len() as f64;
            Ok(MeasureComparison {
                measure,
                mean_a: va.iter().sum::<f64>() / n,
                mean_b: vb.iter().sum::<f64>() / n,
                mean_diff: ci.mean,
                diff_ci: [ci.lower, ci.upper],
                p_t_test: paired_t_test(&va, &vb)?.p_value,
                p_randomization: paired_randomization_test(
                    &va,
                    &vb,
                    PERMUTATIONS,
                    PERMUTATION_SEED,
                )?
                .p_value,
            })
        })
        .collect()
}

/// Reads `RESULTS:PAIR/METHOD` (split at the last `:`).
fn read_row(spec: &str) -> anyhow::Result<Row> {
    let Some((path, label)) = spec.rsplit_once(':') else {
        bail!(
            "{spec}: expected RESULTS:PAIR/METHOD, e.g. experiments/results/settings:swahili/optical/base"
        );
    };
    let Some((pair, method)) = label.split_once('/') else {
        bail!("{spec}: the row '{label}' needs PAIR/METHOD, e.g. swahili/optical/base");
    };
    let mut file = PathBuf::from(path);
    if file.is_dir() {
        file = file.join("results.json");
    }
    let json = read_json(&file)?;
    let find = |key: &str| -> anyhow::Result<Vec<&Value>> {
        Ok(json
            .get(key)
            .and_then(Value::as_array)
            .with_context(|| {
                format!(
                    "{}: no '{key}' list (not a reproduce results.json)",
                    file.display()
                )
            })?
            .iter()
            .filter(|x| x["pair"] == pair && x["method"] == method)
            .collect())
    };
    let agg = find("aggregates")?;
    let Some(agg) = agg.first() else {
        let rows: Vec<String> = json["aggregates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| format!("{}/{}", str_of(&x["pair"]), str_of(&x["method"])))
            .collect();
        bail!(
            "{}: no row {pair}/{method}; its rows are: {}",
            file.display(),
            rows.join(", ")
        );
    };
    let cells = find("cells")?;
    let evals: Vec<&Value> = cells.iter().map(|c| &c["fingerprint"]["eval"]).collect();
    let Some(eval) = evals.first() else {
        bail!("{}: row {pair}/{method} has no cells", file.display());
    };
    if evals.iter().any(|e| e != eval) {
        bail!(
            "{}: the cells of {pair}/{method} were evaluated differently",
            file.display()
        );
    }
    let mut qids = Vec::new();
    let mut values = Vec::new();
    for q in agg["per_query"].as_array().into_iter().flatten() {
        let parsed: Option<(String, [f64; 3])> = serde_json::from_value(q.clone()).ok();
        let Some((qid, v)) = parsed else {
            bail!(
                "{}: {pair}/{method}: a per-query value is not [QID, [MAP, nDCG@10, MRR@10]]: {q}",
                file.display()
            );
        };
        qids.push(qid);
        values.push(v);
    }
    if qids.len() < 2 {
        bail!(
            "{}: {pair}/{method} has {} per-query values; a paired test needs at least 2",
            file.display(),
            qids.len()
        );
    }
    Ok(Row {
        name: format!(
            "{}:{label}",
            file.parent().unwrap_or(Path::new(".")).display()
        ),
        eval: (*eval).clone(),
        seeds: serde_json::from_value(agg["seeds"].clone()).unwrap_or_default(),
        qids,
        values,
    })
}

fn read_json(file: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, sample: &str, values: &[[f64; 3]]) -> Row {
        Row {
            name: name.into(),
            eval: serde_json::json!({ "sample_sha256": sample, "split": "dev" }),
            seeds: vec![42],
            qids: (0..values.len()).map(|i| format!("q{i}")).collect(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn the_comparison_is_the_paired_tests_of_the_per_query_values() {
        let a = row(
            "a",
            "s",
            &[
                [0.5, 0.4, 1.0],
                [0.2, 0.3, 0.5],
                [0.9, 0.8, 1.0],
                [0.1, 0.0, 0.0],
            ],
        );
        let b = row(
            "b",
            "s",
            &[
                [0.4, 0.4, 1.0],
                [0.1, 0.2, 0.5],
                [0.7, 0.9, 0.5],
                [0.1, 0.1, 0.0],
            ],
        );
        let c = compare(&a, &b).unwrap();
        let (va, vb) = ([0.5, 0.2, 0.9, 0.1], [0.4, 0.1, 0.7, 0.1]);
        let t = paired_t_test(&va, &vb).unwrap();
        assert_eq!(c[0].measure, "MAP");
        assert!((c[0].mean_diff - 0.1).abs() < 1e-12);
        assert!((c[0].mean_a - 0.425).abs() < 1e-12 && (c[0].mean_b - 0.325).abs() < 1e-12);
        assert_eq!(c[0].p_t_test, t.p_value);
        assert!(c[0].diff_ci[0] < 0.1 && 0.1 < c[0].diff_ci[1]);
        // t = 0.1 / (s_d / 2) = √6, df = 3: p = 2·(1 − F₃(√6)) with the closed-form
        // Student-t CDF for three degrees of freedom, F₃(t) = ½ + (x/(1+x²) + atan x)/π, x = t/√3.
        assert!(
            (c[0].p_t_test - 0.091_721_113_311_571_84).abs() < 1e-9,
            "{}",
            c[0].p_t_test
        );
    }

    #[test]
    fn a_row_is_read_from_a_results_folder_with_its_seed_averaged_values() {
        let dir = tempfile::tempdir().unwrap();
        let eval = serde_json::json!({ "sample_sha256": "s", "split": "dev" });
        let json = serde_json::json!({
            "aggregates": [{
                "pair": "swahili", "method": "optical/base", "seeds": [42, 43],
                "per_query": [["q1", [0.5, 0.4, 1.0]], ["q2", [0.25, 0.3, 0.5]]],
            }],
            "cells": [
                { "pair": "swahili", "method": "optical/base", "fingerprint": { "eval": eval } },
                { "pair": "swahili", "method": "optical/base", "fingerprint": { "eval": eval } },
            ],
        });
        std::fs::write(dir.path().join("results.json"), json.to_string()).unwrap();
        let spec = format!("{}:swahili/optical/base", dir.path().display());
        let r = read_row(&spec).unwrap();
        assert_eq!(r.qids, ["q1", "q2"]);
        assert_eq!(r.values[1], [0.25, 0.3, 0.5]);
        assert_eq!(r.seeds, [42, 43]);
        assert_eq!(r.eval, eval);
        let e = read_row(&format!("{}:swahili/mse", dir.path().display()))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("no row swahili/mse; its rows are: swahili/optical/base"),
            "{e}"
        );
        let e = read_row(&dir.path().display().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected RESULTS:PAIR/METHOD"), "{e}");
    }

    #[test]
    fn rows_of_different_samples_or_queries_are_refused() {
        let v = [[0.5, 0.4, 1.0], [0.2, 0.3, 0.5]];
        let e = compare(&row("a", "s1", &v), &row("b", "s2", &v))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a and b were not evaluated on the same sample"),
            "{e}"
        );
        let mut b = row("b", "s1", &v);
        b.qids[1] = "q9".into();
        let e = compare(&row("a", "s1", &v), &b).unwrap_err().to_string();
        assert!(e.contains("a and b cover different queries"), "{e}");
    }
}
