//! The report of a matrix: cells averaged over seeds, tables with 95% confidence intervals,
//! paired tests against zero-shot and of OPTICAL against every other method, the gap to
//! English→English, charts, CSV and JSON, with the provenance of the run.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use clir_eval::disparity::{Disparity, disparity, gap_closed};
use clir_eval::report::{ComparisonTable, PerQuery, ResultsTable, SigTest, md_cell, md_cells};
use clir_train::retrieval::MEASURES;
use clir_train::trainer::write_atomic;
use serde::Serialize;

use super::fingerprint::Provenance;
use super::{CellResult, ENGLISH, Invocation, Preset, ZERO_SHOT};

/// The method OPTICAL is compared against every other method as.
pub const OPTICAL: &str = "optical";

/// Measure names in tables, in the order of `RetrievalScores::per_query`.
const METRICS: [&str; 3] = ["MAP", "nDCG@10", "MRR@10"];

/// One table cell: a method on a pair, over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub pair: String,
    pub method: String,
    /// Training seeds (empty for evaluation-only cells).
    pub seeds: Vec<u64>,
    /// Means over seeds.
    pub map: f64,
    pub ndcg_10: f64,
    pub mrr_10: f64,
    /// Sample standard deviation over seeds of `[map, ndcg_10, mrr_10]` (two seeds or more).
    pub seed_sd: Option<[f64; 3]>,
    /// Per-query values averaged over seeds, in qid order.
    pub per_query: Vec<(String, [f64; 3])>,
    pub collection: String,
}

/// Groups the cells by (pair, method), in order of first appearance.
pub fn aggregate(results: &[CellResult]) -> anyhow::Result<Vec<Aggregate>> {
    let mut groups: Vec<Vec<&CellResult>> = Vec::new();
    for r in results {
        match groups
            .iter_mut()
            .find(|g| g[0].pair == r.pair && g[0].method == r.method)
        {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let first = g[0];
            let qids: Vec<&String> = first.scores.per_query.iter().map(|q| &q.0).collect();
            for r in &g[1..] {
                if r.scores
                    .per_query
                    .iter()
                    .map(|q| &q.0)
                    .ne(qids.iter().copied())
                {
                    bail!(
                        "{} / {}: seeds {:?} and {:?} were evaluated on different queries",
                        r.pair,
                        r.method,
                        first.seed,
                        r.seed
                    );
                }
            }
            let n = g.len() as f64;
            let per_query = (0..qids.len())
                .map(|i| {
                    let mut v = [0.0; 3];
                    for r in &g {
                        for (k, x) in v.iter_mut().enumerate() {
                            *x += r.scores.per_query[i].1[k] / n;
                        }
                    }
                    (qids[i].clone(), v)
                })
                .collect();
            let per_seed: Vec<[f64; 3]> = g
                .iter()
                .map(|r| [r.scores.map, r.scores.ndcg_10, r.scores.mrr_10])
                .collect();
            let mean: [f64; 3] =
                std::array::from_fn(|k| per_seed.iter().map(|v| v[k]).sum::<f64>() / n);
            let seed_sd = (g.len() >= 2).then(|| {
                std::array::from_fn(|k| {
                    (per_seed
                        .iter()
                        .map(|v| (v[k] - mean[k]).powi(2))
                        .sum::<f64>()
                        / (n - 1.0))
                        .sqrt()
                })
            });
            Ok(Aggregate {
                pair: first.pair.clone(),
                method: first.method.clone(),
                seeds: g.iter().filter_map(|r| r.seed).collect(),
                map: mean[0],
                ndcg_10: mean[1],
                mrr_10: mean[2],
                seed_sd,
                per_query,
                collection: first.collection.clone(),
            })
        })
        .collect()
}

/// The variant part of a row label (`optical/100` → `100`; `` without one).
fn variant(label: &str) -> &str {
    label.split_once('/').map_or("", |(_, v)| v)
}

/// `(reference, other)` pairs: every OPTICAL row against every other row of its variant and
/// against the rows without variants (zero-shot); an OPTICAL row without a variant (a preset
/// whose variants sweep another method only) against every other row.
pub fn optical_pairs(methods: &[String]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for r in methods
        .iter()
        .filter(|m| m.split('/').next() == Some(OPTICAL))
    {
        for o in methods {
            let is_optical = o.split('/').next() == Some(OPTICAL);
            let comparable =
                variant(r).is_empty() || variant(o) == variant(r) || variant(o).is_empty();
            if o != r && !is_optical && comparable {
                pairs.push((r.clone(), o.clone()));
            }
        }
    }
    pairs
}

/// `(row, reference)` pairs of a settings study: every trained row `METHOD/VARIANT[@STEP]`
/// against `METHOD/REFERENCE` (its final student), where both rows exist; the reference row
/// itself is left out. Rows without a variant (zero-shot, lexical) are not compared.
pub fn variant_pairs(methods: &[String], reference: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for row in methods {
        let Some((method, _)) = row.split_once('/') else {
            continue;
        };
        let reference = format!("{method}/{reference}");
        if *row != reference && methods.contains(&reference) {
            pairs.push((row.clone(), reference));
        }
    }
    pairs
}

fn sig_test(preset: &Preset) -> SigTest {
    match preset.eval.test.as_str() {
        "randomization" => SigTest::Randomization {
            permutations: 10_000,
            seed: preset.eval.seed,
        },
        _ => SigTest::TTest,
    }
}

fn test_name(t: SigTest) -> String {
    match t {
        SigTest::TTest => "paired two-sided t-test".into(),
        SigTest::Randomization { permutations, .. } => {
            format!("paired randomization test ({permutations} sign flips)")
        }
    }
}

/// Columns of results.csv (the measures named as everywhere else: [`MEASURES`]).
const CSV_HEADER: [&str; 12] = [
    "pair",
    "method",
    "seed",
    MEASURES[0],
    MEASURES[1],
    MEASURES[2],
    "p_holm_map_vs_zero_shot",
    "p_holm_map_optical_vs_this",
    "seconds",
    "first_loss",
    "last_loss",
    "eval_max_len",
];

/// CSV text through the `csv` crate, so a field holding a comma, quote or line break (a
/// method or variant name, say) is quoted and never breaks its row.
fn csv_text(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    Ok(String::from_utf8(
        w.into_inner().map_err(|e| e.into_error())?,
    )?)
}

/// Writes results.md, results.csv, results.json and the charts; returns the Markdown.
pub fn write_report(
    preset: &Preset,
    results: &[CellResult],
    out: &Path,
    provenance: &Provenance,
    invocations: &[Invocation],
) -> anyhow::Result<String> {
    let aggs = aggregate(results)?;
    let rows: Vec<&Aggregate> = aggs.iter().filter(|a| a.pair != ENGLISH).collect();
    let mut methods: Vec<String> = Vec::new();
    for a in &rows {
        if !methods.contains(&a.method) {
            methods.push(a.method.clone());
        }
    }
    let pairs: Vec<String> = preset
        .pairs
        .iter()
        .filter(|p| rows.iter().any(|a| &a.pair == *p))
        .cloned()
        .collect();
    let test = sig_test(preset);

    let mut md = header_section(preset, results, &aggs, provenance, invocations)?;
    md.push_str(&curve_section(preset, &aggs, out)?);
    let comparison_pairs = optical_pairs(&methods);
    let tables = metric_tables(preset, &rows, &methods, &pairs, &comparison_pairs, out)?;
    md.push_str(&tables.markdown);
    md.push_str(&format!(
        "Statistics: {} over the same queries of each pair (per-query values averaged over seeds); † marks a difference from zero-shot, Holm–Bonferroni adjusted over all cells of the table; ▲/▼ mark OPTICAL significantly above/below the other method, Holm–Bonferroni adjusted over all comparisons of its table; α = {}. Intervals are Student-t 95% intervals of the mean over queries. A difference without a mark is not distinguishable from noise at this sample size.\n\n",
        test_name(test),
        preset.eval.alpha
    ));
    let (gap_md, gaps) = gap_section(preset, &aggs, &pairs, &tables.tables[0])?;
    md.push_str(&gap_md);
    md.push_str(&plan_table(results));
    if !preset.cost.is_empty() {
        md.push_str(&format!("Cost: {}\n", preset.cost));
    }
    write_atomic(&out.join("results.md"), md.as_bytes())?;
    write_csv(results, &tables, &comparison_pairs, out)?;
    let mut json = serde_json::json!({
        "preset": preset,
        "provenance": provenance,
        "invocations": invocations,
        "statistics": {
            "test": test_name(test),
            "alpha": preset.eval.alpha,
            "correction": "Holm–Bonferroni over each table (vs zero-shot) and over each comparison table (OPTICAL vs others)",
            "confidence_intervals": "Student-t 95% over queries of the seed-averaged per-query values",
        },
        "cells": results,
        "aggregates": aggs,
        "tables": tables.tables,
        "comparisons": tables.comparisons,
        "gaps": gaps,
    });
    if !tables.variant_comparisons.is_empty() {
        json["variant_comparisons"] = serde_json::to_value(&tables.variant_comparisons)?;
    }
    write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(md)
}

/// The report's head: title, split, provenance, evaluation settings, seeds, the evaluation
/// samples and the training overrides.
fn header_section(
    preset: &Preset,
    results: &[CellResult],
    aggs: &[Aggregate],
    provenance: &Provenance,
    invocations: &[Invocation],
) -> anyhow::Result<String> {
    let seeded = aggs.iter().map(|a| a.seeds.len()).max().unwrap_or(0);
    let mut md = String::new();
    md.push_str(&format!("# {} — {}\n\n", preset.name, preset.description));
    md.push_str(&format!(
        "English queries against target-language New Testament verses (Nave's Topical Bible judgments), **{} split** of the queries.\n\n",
        preset.eval.split
    ));
    let computed_wall: f64 = invocations.iter().map(|i| i.wall_s).sum();
    let cell_seconds: f64 = results.iter().map(|r| r.seconds).sum();
    md.push_str(&format!(
        "Provenance: commit `{}`, report made {}, backend {}, {} threads, {}, CPU {}. The cells were computed by {} invocation(s) of `cargo xtask reproduce` taking {:.0} s of wall time in all (the cells' own wall times sum to {:.0} s); see `results.json` for each cell's time and commit.\n\n",
        provenance.commit,
        provenance.date,
        provenance.backend,
        provenance.threads,
        provenance.rustc,
        provenance.cpu,
        invocations.len(),
        computed_wall,
        cell_seconds
    ));
    let mut reused: BTreeMap<&str, usize> = BTreeMap::new();
    for r in results {
        if let Some(dir) = &r.reused_from {
            *reused.entry(dir.as_str()).or_default() += 1;
        }
    }
    for (dir, n) in &reused {
        md.push_str(&format!(
            "{n} cell(s) were taken from `{dir}` by `--reuse-from`: the same computation (pair, seed, method and fingerprint equal), done for that preset; their times and commits are their own.\n\n"
        ));
    }
    md.push_str(&format!(
        "Every cell encodes queries and documents with the same settings: at most {} tokens, batches of {}. ",
        preset
            .eval
            .max_len
            .map_or("the pretrained model's maximum number of".to_string(), |n| n.to_string()),
        preset.eval.batch_size
    ));
    if seeded > 1 {
        md.push_str(&format!(
            "Trained cells ran with seeds {:?} (bitext sample and batch order); a table value is the mean over seeds, and the tests use per-query values averaged over seeds.\n\n",
            preset.seeds
        ));
    } else {
        md.push_str(&format!(
            "Trained cells ran with one seed ({:?}).\n\n",
            preset.seeds
        ));
    }
    md.push_str("Evaluation samples (seeded, the same for every method and seed of a pair):\n\n");
    let mut seen = std::collections::BTreeSet::new();
    for a in aggs {
        if seen.insert(a.pair.clone()) {
            md.push_str(&format!("- {}: {}\n", a.pair, a.collection));
        }
    }
    md.push('\n');
    if !preset.train.is_empty() {
        md.push_str(&format!(
            "Training settings of every trained cell (on top of the defaults of `cargo xtask train`):\n\n```toml\n{}```\n\n",
            toml::to_string(&preset.train)?
        ));
    }
    Ok(md)
}

/// "Training curves" (a preset with `curve_steps`): the table, and `curve.svg` written.
fn curve_section(preset: &Preset, aggs: &[Aggregate], out: &Path) -> anyhow::Result<String> {
    if preset.curve_steps.is_empty() {
        return Ok(String::new());
    }
    let last_step = |label: &str| Some(super::row_config(preset, label)?.optim.steps);
    let points = super::curve::points(aggs, last_step);
    if points.is_empty() {
        return Ok(String::new());
    }
    write_atomic(
        &out.join("curve.svg"),
        super::curve::svg(&points).as_bytes(),
    )?;
    Ok(format!(
        "## Training curves\n\nMAP / nDCG@10 (means over seeds) of each trained run's student \
         after the preset's `curve_steps` and at its last step, from one run per cell (chart: \
         `curve.svg`).\n\n{}\n",
        super::curve::markdown(&points)
    ))
}

/// The metric tables (method × pair, significance against zero-shot), their intervals and
/// OPTICAL-against-others comparisons, as Markdown; one SVG chart per metric written.
struct MetricTables {
    markdown: String,
    tables: Vec<ResultsTable>,
    comparisons: Vec<ComparisonTable>,
    /// Every variant against the preset's `reference_variant` (empty without one).
    variant_comparisons: Vec<ComparisonTable>,
}

fn metric_tables(
    preset: &Preset,
    rows: &[&Aggregate],
    methods: &[String],
    pairs: &[String],
    comparison_pairs: &[(String, String)],
    out: &Path,
) -> anyhow::Result<MetricTables> {
    let test = sig_test(preset);
    let baseline = methods.iter().any(|m| m == ZERO_SHOT).then_some(ZERO_SHOT);
    let seeded = rows.iter().map(|a| a.seeds.len()).max().unwrap_or(0);
    let mut md = String::new();
    let mut tables = Vec::new();
    let mut comparisons = Vec::new();
    let mut variant_comparisons = Vec::new();
    // A partial report (cells still to compute) tables the rows every pair has; the others
    // are named here and kept in results.csv and results.json.
    let (complete, partial): (Vec<String>, Vec<String>) = methods.iter().cloned().partition(|m| {
        pairs
            .iter()
            .all(|p| rows.iter().any(|a| &a.method == m && &a.pair == p))
    });
    if !partial.is_empty() {
        md.push_str(&format!(
            "Not yet computed for every pair, so left out of the tables below (their values are \
             in results.csv and results.json, and in the comparisons where both rows exist): {}.\n\n",
            partial.join(", ")
        ));
    }
    for (mi, metric) in METRICS.iter().enumerate() {
        let mut per_query: PerQuery = BTreeMap::new();
        for a in rows {
            per_query.insert(
                (a.method.clone(), a.pair.clone()),
                a.per_query
                    .iter()
                    .map(|(q, v)| (q.clone(), v[mi]))
                    .collect(),
            );
        }
        let table = ResultsTable::from_per_query(
            metric,
            complete.clone(),
            pairs.to_vec(),
            &per_query,
            baseline,
            test,
            preset.eval.alpha,
        )
        .with_context(|| format!("building the {metric} table"))?;
        md.push_str(&format!("## {metric}\n\n{}\n", table.to_markdown()));
        let svg = out.join(format!("{}.svg", MEASURES[mi]));
        write_atomic(&svg, table.to_svg().as_bytes())?;
        if mi < 2 {
            md.push_str(&format!(
                "### {metric}: 95% confidence intervals over queries{}\n\n{}\n",
                if seeded > 1 {
                    ", ± standard deviation over seeds"
                } else {
                    ""
                },
                interval_table(&table, rows, mi)
            ));
            if !comparison_pairs.is_empty() {
                let c = ComparisonTable::from_available_per_query(
                    metric,
                    comparison_pairs,
                    pairs.to_vec(),
                    &per_query,
                    test,
                    preset.eval.alpha,
                )
                .with_context(|| format!("comparing OPTICAL on {metric}"))?;
                md.push_str(&format!(
                    "### {metric}: OPTICAL against every other method (OPTICAL − other)\n\n{}\n",
                    c.to_markdown()
                ));
                comparisons.push(c);
            }
            if let Some(reference) = &preset.reference_variant {
                let c = ComparisonTable::from_available_per_query(
                    metric,
                    &variant_pairs(methods, reference),
                    pairs.to_vec(),
                    &per_query,
                    test,
                    preset.eval.alpha,
                )
                .with_context(|| format!("comparing the variants with {reference} on {metric}"))?;
                if !c.comparisons.is_empty() {
                    md.push_str(&format!(
                        "### {metric}: every variant and curve step against the same method's \
                         `{reference}` (row − {reference})\n\n{}\n",
                        c.to_markdown()
                    ));
                    variant_comparisons.push(c);
                }
            }
        }
        tables.push(table);
    }
    Ok(MetricTables {
        markdown: md,
        tables,
        comparisons,
        variant_comparisons,
    })
}

/// "Gap to English→English" from the MAP table (nothing without an English reference), and
/// the gaps per method for results.json.
fn gap_section(
    preset: &Preset,
    aggs: &[Aggregate],
    pairs: &[String],
    map: &ResultsTable,
) -> anyhow::Result<(String, serde_json::Map<String, serde_json::Value>)> {
    let mut md = String::new();
    let mut gaps = serde_json::Map::new();
    // Each teacher's English reference; a row's gap is to its own teacher's.
    let teachers = super::teachers(preset)?;
    let ens: Vec<(&String, &Aggregate)> = teachers
        .iter()
        .filter_map(|t| {
            let label = super::teacher_label(ENGLISH, &teachers, t);
            let en = aggs
                .iter()
                .find(|a| a.pair == ENGLISH && a.method == label)?;
            Some((t, en))
        })
        .collect();
    let Some(&(main, en)) = ens.first().filter(|(t, _)| **t == teachers[0]) else {
        return Ok((md, gaps));
    };
    let english_of = |row: &str| {
        let t = super::teacher_of_row(preset, &teachers, row).unwrap_or_else(|| main.clone());
        ens.iter().find(|(x, _)| **x == t).map_or(en, |(_, a)| *a)
    };
    let bm25_en = aggs
        .iter()
        .find(|a| a.pair == ENGLISH && a.method == super::BM25_EN);
    if ens.len() == 1 {
        md.push_str(&format!(
            "## Gap to English→English\n\nTeacher on English (WEB) documents: MAP {:.4}, nDCG@10 {:.4}, MRR@10 {:.4}. Gap = (English − pair) / English, MAP.\n\n",
            en.map, en.ndcg_10, en.mrr_10
        ));
    } else {
        md.push_str("## Gap to English→English\n\nEach teacher on English (WEB) documents:");
        for (t, a) in &ens {
            md.push_str(&format!(
                " `{}` ({t}) MAP {:.4}, nDCG@10 {:.4}, MRR@10 {:.4};",
                a.method, a.map, a.ndcg_10, a.mrr_10
            ));
        }
        md.push_str(
            " a row's gap is to its own teacher's (the one that encodes its queries; zero-shot \
             and PSQ rows: the preset's teacher's). Gap = (English − pair) / English, MAP.\n\n",
        );
    }
    if let Some(b) = bm25_en {
        md.push_str(&format!(
            "Lexical English→English reference (BM25 of the queries over the English documents, `{}`): MAP {:.4}, nDCG@10 {:.4}, MRR@10 {:.4}.\n\n",
            super::BM25_EN,
            b.map,
            b.ndcg_10,
            b.mrr_10
        ));
    }
    let (low, high): (Vec<String>, Vec<String>) = pairs
        .iter()
        .cloned()
        .partition(|p| preset.low_resource.contains(p));
    md.push_str("| method | low-resource mean MAP | high-resource mean MAP | low gap | high gap | low − high |\n|---|---|---|---|---|---|\n");
    let mut ds = Vec::new();
    for (mi, m) in map.methods.iter().enumerate() {
        let mut scores: BTreeMap<String, f64> = map
            .languages
            .iter()
            .zip(&map.values[mi])
            .map(|(l, v)| (l.clone(), *v))
            .collect();
        scores.insert(ENGLISH.into(), english_of(m).map);
        let d = disparity(&scores, ENGLISH, &low, &high)?;
        let mean = |g: &[String]| {
            (!g.is_empty()).then(|| g.iter().map(|p| scores[p]).sum::<f64>() / g.len() as f64)
        };
        let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.4}"));
        let spread = d
            .low_resource_mean
            .zip(d.high_resource_mean)
            .map(|(l, h)| l - h);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            md_cell(m),
            f(mean(&low)),
            f(mean(&high)),
            f(d.low_resource_mean),
            f(d.high_resource_mean),
            f(spread)
        ));
        gaps.insert(m.clone(), serde_json::to_value(&d)?);
        ds.push((m.clone(), d));
    }
    md.push('\n');
    md.push_str(&closed_table(&ds, pairs));
    Ok((md, gaps))
}

/// The share of zero-shot's gap to English→English each other row closes, per pair and per
/// group (`(gap_zero-shot − gap_row) / gap_zero-shot`); empty without a zero-shot row.
fn closed_table(ds: &[(String, Disparity)], pairs: &[String]) -> String {
    let Some((_, base)) = ds.iter().find(|(m, _)| m == ZERO_SHOT) else {
        return String::new();
    };
    let pct = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{:.0}%", v * 100.0));
    let mut md = format!(
        "Share of zero-shot's gap each row closes, `(gap_zero-shot − gap_row) / gap_zero-shot` \
         (= `(row − zero-shot) / (English − zero-shot)` under the same teacher; negative: the gap \
         widened):\n\n| method | {} | low-resource | high-resource |\n|---|{}---:|---:|\n",
        md_cells(pairs),
        "---:|".repeat(pairs.len())
    );
    for (m, d) in ds.iter().filter(|(m, _)| m != ZERO_SHOT) {
        let c = gap_closed(base, d);
        let cells: Vec<String> = pairs.iter().map(|p| pct(c.pairs.get(p).copied())).collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            md_cell(m),
            cells.join(" | "),
            pct(c.low_resource),
            pct(c.high_resource)
        ));
    }
    md.push('\n');
    md
}

/// results.csv: one row per computed cell (per seed); the p-values are those of its table
/// cell (MAP against zero-shot) and of its OPTICAL comparison.
fn write_csv(
    results: &[CellResult],
    tables: &MetricTables,
    comparison_pairs: &[(String, String)],
    out: &Path,
) -> anyhow::Result<()> {
    let map = &tables.tables[0];
    let mut rows = Vec::new();
    for r in results {
        let p = map
            .methods
            .iter()
            .position(|m| m == &r.method)
            .zip(map.languages.iter().position(|l| l == &r.pair))
            .and_then(|(mi, li)| map.significance[mi][li])
            .map_or(String::new(), |s| format!("{:.6}", s.p_holm));
        let po = tables
            .comparisons
            .first()
            .and_then(|c| {
                comparison_pairs
                    .iter()
                    .find(|(_, o)| o == &r.method)
                    .and_then(|(rf, o)| c.get(rf, o, &r.pair))
            })
            .map_or(String::new(), |c| format!("{:.6}", c.p_holm));
        let (l0, l1) = r.loss.map_or((String::new(), String::new()), |(a, b)| {
            (format!("{a:.6}"), format!("{b:.6}"))
        });
        rows.push(vec![
            r.pair.clone(),
            r.method.clone(),
            r.seed.map_or(String::new(), |s| s.to_string()),
            format!("{:.6}", r.scores.map),
            format!("{:.6}", r.scores.ndcg_10),
            format!("{:.6}", r.scores.mrr_10),
            p,
            po,
            format!("{:.1}", r.seconds),
            l0,
            l1,
            r.eval_max_len.map_or(String::new(), |n| n.to_string()),
        ]);
    }
    write_atomic(
        &out.join("results.csv"),
        csv_text(&CSV_HEADER, &rows)?.as_bytes(),
    )?;
    Ok(())
}

/// `[lower, upper] ±sd` per cell of `table` (its CI over queries, the seed spread of `rows`).
/// The transport plans of the OT cells (means over training steps, then over seeds): how
/// far each is from the uniform coupling, whose entropy ratio is 1, best-match mass 1/m and
/// `⟨P, C⟩` the mean cost.
fn plan_table(results: &[CellResult]) -> String {
    let mut rows: BTreeMap<(String, String), Vec<&clir_train::trainer::TrainSummary>> =
        BTreeMap::new();
    for r in results {
        if let Some(t) = &r.training
            && t.plan_entropy.is_some()
        {
            rows.entry((r.pair.clone(), r.method.clone()))
                .or_default()
                .push(t);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "## Transport plans (OT cells)\n\nMeans over training steps and seeds: `H(P)/log(n·m)` (1 = uniform coupling), the share of each teacher token's mass on its best student token, `⟨P, C⟩` over the mean cost of the same matrices (1 = no better than uniform), the ε used (cost units), Sinkhorn iterations needed (exact), and steps whose solve missed its tolerance (all seeds).\n\n| pair | method | entropy ratio | best-match mass | ⟨P, C⟩ / mean C | ε | iterations | unconverged steps |\n|---|---|---|---|---|---|---|---|\n",
    );
    for ((pair, method), ts) in rows {
        let mean = |f: fn(&clir_train::trainer::TrainSummary) -> Option<f64>| {
            let v: Vec<f64> = ts.iter().filter_map(|t| f(t)).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let f = |x: Option<f64>, d: usize| x.map_or("–".to_string(), |v| format!("{v:.d$}"));
        let ratio = mean(|t| Some(t.ot_transport_cost? / t.ot_mean_cost?));
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md_cell(&pair),
            md_cell(&method),
            f(mean(|t| t.plan_entropy), 3),
            f(mean(|t| t.plan_best_mass), 3),
            f(ratio, 3),
            f(mean(|t| t.ot_epsilon), 4),
            f(mean(|t| t.ot_iterations_needed), 1),
            ts.iter().map(|t| t.ot_unconverged_steps).sum::<usize>()
        ));
    }
    md.push('\n');
    md
}

fn interval_table(table: &ResultsTable, rows: &[&Aggregate], metric: usize) -> String {
    let mut s = format!(
        "| {} (95% CI) | {} |\n|---|{}\n",
        md_cell(&table.metric),
        md_cells(&table.languages),
        "---:|".repeat(table.languages.len())
    );
    for (mi, m) in table.methods.iter().enumerate() {
        let cells: Vec<String> = table
            .languages
            .iter()
            .enumerate()
            .map(|(li, l)| {
                let ci = table
                    .ci
                    .get(mi)
                    .and_then(|r| r.get(li))
                    .copied()
                    .flatten()
                    .map_or("–".to_string(), |c| {
                        format!("[{:.4}, {:.4}]", c.lower, c.upper)
                    });
                let sd = rows
                    .iter()
                    .find(|a| &a.method == m && &a.pair == l)
                    .and_then(|a| a.seed_sd)
                    .map_or(String::new(), |sd| format!(" ±{:.4}", sd[metric]));
                format!("{ci}{sd}")
            })
            .collect();
        s.push_str(&format!("| {} | {} |\n", md_cell(m), cells.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_and_quotes_keep_their_row() {
        let rows = vec![
            vec![
                "swahili".to_string(),
                "joint/lambda=0.5,tau=0.05".to_string(),
            ],
            vec!["tagalog".to_string(), "say \"hi\"\nthere".to_string()],
        ];
        let text = csv_text(&["pair", "method"], &rows).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<Vec<String>> = r
            .records()
            .map(|x| x.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(back, rows);
        // Plain fields are written as before (no quoting).
        let plain = csv_text(&["a", "b"], &[vec!["x".into(), "0.5".into()]]).unwrap();
        assert_eq!(plain, "a,b\nx,0.5\n");
    }

    #[test]
    fn every_variant_and_curve_step_meets_its_methods_reference() {
        let m: Vec<String> = [
            "zero-shot",
            "optical/base@200",
            "optical/base",
            "optical/idf@200",
            "optical/idf",
            "mse/base",
            "mse/freeze4",
            "kl/freeze4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = variant_pairs(&m, "base");
        let want = [
            ("optical/base@200", "optical/base"),
            ("optical/idf@200", "optical/base"),
            ("optical/idf", "optical/base"),
            ("mse/freeze4", "mse/base"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        // kl has no base row: nothing to compare it with.
        assert_eq!(p, want);
        assert!(variant_pairs(&["zero-shot".into(), "optical".into()], "base").is_empty());
    }

    #[test]
    fn optical_is_compared_with_every_other_method_of_its_variant() {
        let m: Vec<String> = ["zero-shot", "optical", "mse", "kl"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = optical_pairs(&m);
        let others: Vec<&str> = p.iter().map(|(_, o)| o.as_str()).collect();
        assert_eq!(others, ["zero-shot", "mse", "kl"]);
        let m: Vec<String> = [
            "zero-shot",
            "optical/100",
            "optical/1000",
            "mse/100",
            "mse/1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = optical_pairs(&m);
        assert_eq!(
            p,
            [
                ("optical/100".to_string(), "zero-shot".to_string()),
                ("optical/100".to_string(), "mse/100".to_string()),
                ("optical/1000".to_string(), "zero-shot".to_string()),
                ("optical/1000".to_string(), "mse/1000".to_string()),
            ]
        );
        assert!(optical_pairs(&["zero-shot".to_string(), "mse".to_string()]).is_empty());
        // A sweep of another method only (joint-objective): plain OPTICAL meets every λ.
        let m: Vec<String> = [
            "zero-shot",
            "optical",
            "joint/lambda-0.5",
            "joint/lambda-0.8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let others: Vec<String> = optical_pairs(&m).into_iter().map(|(_, o)| o).collect();
        assert_eq!(
            others,
            ["zero-shot", "joint/lambda-0.5", "joint/lambda-0.8"]
        );
    }
}
