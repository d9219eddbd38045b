//! `cargo xtask reproduce`: the experiment matrix of a preset (language pairs × methods ×
//! variants, plus the English→English reference), resumable cell by cell, with the result
//! tables, per-query values, significance against zero-shot, the low/high-resource gap and
//! charts written to `experiments/results/<preset>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clir_data::bible::BibleDb;
use clir_eval::disparity::disparity;
use clir_eval::report::{PerQuery, ResultsTable, SigTest};
use clir_models::{Embedder, TextKind};
use clir_train::bitext::load_bitext;
use clir_train::retrieval::{
    MEASURES, RetrievalScores, RetrievalSet, SetSample, check_finite, nave_set, score_embeddings,
};
use clir_train::trainer::{TrainInputs, train};
use clir_train::{Method, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use ot_core::backend::select_device;
use serde::{Deserialize, Serialize};

/// The method name of the untrained multilingual model.
pub const ZERO_SHOT: &str = "zero-shot";
/// The label of the English→English reference (teacher on English documents).
pub const ENGLISH: &str = "english";

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// A preset name under experiments/ (quick, full, ot-vs-kl, …) or a TOML path.
    #[arg(long, default_value = "quick")]
    preset: String,
    /// Compute backend (flex, ndarray, wgpu, tch); default: $OPTICAL_BACKEND or flex.
    #[arg(long)]
    backend: Option<String>,
    /// Only these language pairs (comma separated; default: the preset's).
    #[arg(long, value_delimiter = ',')]
    pairs: Option<Vec<String>>,
    /// Only these methods (comma separated; default: the preset's).
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<String>>,
    /// Compare the results with experiments/expected/<preset>.toml and fail on drift.
    #[arg(long)]
    verify: bool,
    /// Expected scores for --verify (default experiments/expected/<preset>.toml).
    #[arg(long)]
    expected: Option<PathBuf>,
    /// Results directory (default experiments/results/<preset>).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Evaluation settings of a preset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Queries sampled per pair (all when absent).
    pub queries: Option<usize>,
    /// Documents per pair (judged first, then seeded distractors; all when absent).
    pub documents: Option<usize>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `t-test` or `randomization`.
    #[serde(default = "default_test")]
    pub test: String,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

fn default_seed() -> u64 {
    13
}
fn default_test() -> String {
    "t-test".into()
}
fn default_alpha() -> f64 {
    0.05
}
fn default_batch() -> usize {
    32
}

/// A named change to the training configuration (e.g. a bitext budget or a depth).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub train: toml::Table,
}

/// An experiment preset (`experiments/<name>.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    pub description: String,
    /// Target languages of the documents (English queries).
    pub pairs: Vec<String>,
    /// The low-resource group (the others are high-resource).
    pub low_resource: Vec<String>,
    /// `zero-shot`, `optical`, `mse`, `kl`, `joint`.
    pub methods: Vec<String>,
    /// Evaluate the teacher on English documents too (the upper bound).
    #[serde(default = "yes")]
    pub english_reference: bool,
    pub eval: EvalSection,
    /// Overrides of the training configuration for every trained cell (same keys as
    /// `cargo xtask train` files).
    #[serde(default)]
    pub train: toml::Table,
    /// Variants of every trained method (default: one, unnamed).
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// What a full run costs, in words (shown in results.md).
    #[serde(default)]
    pub cost: String,
}

fn yes() -> bool {
    true
}

impl Preset {
    pub fn load(name_or_path: &str) -> anyhow::Result<(Self, PathBuf)> {
        let p = Path::new(name_or_path);
        let path = if p.extension().is_some_and(|e| e == "toml") {
            p.to_path_buf()
        } else {
            workspace_root()
                .join("experiments")
                .join(format!("{name_or_path}.toml"))
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading preset {}", path.display()))?;
        let preset: Preset =
            toml::from_str(&text).with_context(|| format!("parsing preset {}", path.display()))?;
        for m in &preset.methods {
            if m != ZERO_SHOT {
                m.parse::<Method>()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
        for l in &preset.low_resource {
            if !preset.pairs.contains(l) {
                bail!(
                    "{}: low-resource pair '{l}' is not among the pairs",
                    path.display()
                );
            }
        }
        // Every cell's configuration must parse before hours are spent on the first ones.
        for v in preset.variant_list() {
            preset
                .train_config("swahili", Method::Optical, &v)
                .with_context(|| format!("{}: variant '{}'", path.display(), v.name))?;
        }
        Ok((preset, path))
    }

    fn variant_list(&self) -> Vec<Variant> {
        if self.variants.is_empty() {
            vec![Variant {
                name: String::new(),
                train: toml::Table::new(),
            }]
        } else {
            self.variants.clone()
        }
    }

    /// The training configuration of one cell: defaults ← preset ← variant ← cell.
    pub fn train_config(
        &self,
        pair: &str,
        method: Method,
        v: &Variant,
    ) -> anyhow::Result<TrainConfig> {
        let mut t = toml::Table::new();
        overlay(&mut t, &self.train);
        overlay(&mut t, &v.train);
        let mut data = toml::Table::new();
        data.insert("language".into(), toml::Value::String(pair.into()));
        let mut loss = toml::Table::new();
        loss.insert("method".into(), toml::Value::String(format!("{method:?}")));
        let mut cell = toml::Table::new();
        cell.insert("data".into(), toml::Value::Table(data));
        cell.insert("loss".into(), toml::Value::Table(loss));
        overlay(&mut t, &cell);
        let text = toml::to_string(&t)?;
        Ok(TrainConfig::from_toml(
            &text,
            Path::new(&format!("preset {}", self.name)),
        )?)
    }
}

fn overlay(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn workspace_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    clir_data::fetch::find_workspace_root(&here).unwrap_or(here)
}

/// One cell of the matrix.
#[derive(Debug, Clone)]
struct Cell {
    pair: String,
    /// Row label: method, or `method/variant`.
    label: String,
    kind: CellKind,
}

#[derive(Debug, Clone)]
enum CellKind {
    ZeroShot,
    English,
    Trained(Method, Variant),
}

/// What is stored per finished cell (`cells/<pair>/<label>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub pair: String,
    pub method: String,
    pub scores: RetrievalScores,
    pub seconds: f64,
    pub collection: String,
    /// First and last training loss (trained cells).
    pub loss: Option<(f64, f64)>,
}

fn file_label(label: &str) -> String {
    label.replace('/', "__")
}

pub fn run(a: ReproduceArgs) -> anyhow::Result<()> {
    let (mut preset, preset_path) = Preset::load(&a.preset)?;
    if let Some(p) = a.pairs {
        preset.low_resource.retain(|l| p.contains(l));
        preset.pairs = p;
    }
    if let Some(m) = a.methods {
        preset.methods = m;
    }
    let (backend, device) = select_device(a.backend.as_deref())?;
    let out = a.out.unwrap_or_else(|| {
        workspace_root()
            .join("experiments/results")
            .join(&preset.name)
    });
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    eprintln!(
        "reproduce: preset {} ({}) on {backend}: {} pairs × {} methods -> {}",
        preset.name,
        preset_path.display(),
        preset.pairs.len(),
        preset.methods.len(),
        out.display()
    );

    let db = BibleDb::open(&clir_data::fetch::bible_db()?)?;
    let naves = clir_data::fetch::naves_module_dir()?;
    let sample = SetSample {
        queries: preset.eval.queries,
        documents: preset.eval.documents,
        seed: preset.eval.seed,
    };

    let mut cells = Vec::new();
    if preset.english_reference {
        cells.push(Cell {
            pair: ENGLISH.into(),
            label: ENGLISH.into(),
            kind: CellKind::English,
        });
    }
    for pair in &preset.pairs {
        for m in &preset.methods {
            if m == ZERO_SHOT {
                cells.push(Cell {
                    pair: pair.clone(),
                    label: ZERO_SHOT.into(),
                    kind: CellKind::ZeroShot,
                });
                continue;
            }
            let method: Method = m.parse().map_err(anyhow::Error::msg)?;
            for v in preset.variant_list() {
                let label = if v.name.is_empty() {
                    method.name().to_string()
                } else {
                    format!("{}/{}", method.name(), v.name)
                };
                cells.push(Cell {
                    pair: pair.clone(),
                    label,
                    kind: CellKind::Trained(method, v),
                });
            }
        }
    }

    let bar = ProgressBar::new(cells.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("cells {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}")
            .expect("valid template"),
    );
    let started = Instant::now();
    let base = preset.train_config(
        preset.pairs.first().map_or("swahili", String::as_str),
        Method::Optical,
        &preset.variant_list()[0],
    )?;
    // Queries, English documents and zero-shot documents are encoded by the untrimmed
    // pretrained models on the CPU default backend (their 250k-row vocabulary tables need not
    // fit a GPU buffer); training and the trained students run on the chosen backend.
    let cpu = clir_train::trainer::staging_device(&device);
    let teacher = clir_models::embedder::load_named(&base.model.teacher, None, &cpu)?;
    let zero_shot = if base.model.student == base.model.teacher {
        None
    } else {
        Some(clir_models::embedder::load_named(
            &base.model.student,
            None,
            &device,
        )?)
    };
    let mut sets: BTreeMap<String, RetrievalSet> = BTreeMap::new();
    let mut query_cache: BTreeMap<String, Vec<Vec<f32>>> = BTreeMap::new();
    let mut results = Vec::new();
    for cell in &cells {
        bar.set_message(format!("{} / {}", cell.pair, cell.label));
        let path = out
            .join("cells")
            .join(&cell.pair)
            .join(format!("{}.json", file_label(&cell.label)));
        if path.is_file() {
            let r: CellResult = serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("{} (delete it to recompute the cell)", path.display()))?;
            results.push(r);
            bar.inc(1);
            continue;
        }
        if !sets.contains_key(&cell.pair) {
            sets.insert(
                cell.pair.clone(),
                nave_set(&db, &naves, &cell.pair, sample)?,
            );
        }
        let set = &sets[&cell.pair];
        if !query_cache.contains_key(&cell.pair) {
            let q = teacher.embed(&set.queries, TextKind::Query, preset.eval.batch_size)?;
            query_cache.insert(cell.pair.clone(), q);
        }
        let queries = &query_cache[&cell.pair];
        let t0 = Instant::now();
        let (docs, loss) = match &cell.kind {
            CellKind::English => (
                teacher.embed(&set.docs, TextKind::Passage, preset.eval.batch_size)?,
                None,
            ),
            CellKind::ZeroShot => (
                zero_shot.as_ref().unwrap_or(&teacher).embed(
                    &set.docs,
                    TextKind::Passage,
                    preset.eval.batch_size,
                )?,
                None,
            ),
            CellKind::Trained(method, v) => {
                let cfg = preset.train_config(&cell.pair, *method, v)?;
                let run_dir = out
                    .join("runs")
                    .join(&cell.pair)
                    .join(file_label(&cell.label));
                let inputs = TrainInputs {
                    pairs: load_bitext(&cfg.data, cfg.run.seed)?,
                    vocab_texts: set.docs.clone(),
                    teacher_store: Some(clir_data::fetch::cache_dir().join("teacher-states")),
                    stop_after: None,
                };
                bar.suspend(|| {
                    eprintln!(
                        "{} / {}: {} pairs, {} steps",
                        cell.pair,
                        cell.label,
                        inputs.pairs.len(),
                        cfg.optim.steps
                    )
                });
                let outcome = train(&cfg, &inputs, &run_dir, &device)
                    .with_context(|| format!("training {} / {}", cell.pair, cell.label))?;
                let loss = read_losses(&run_dir)?;
                let student: &Embedder = &outcome.student;
                (
                    student.embed(&set.docs, TextKind::Passage, preset.eval.batch_size)?,
                    loss,
                )
            }
        };
        check_finite(
            &format!("{} / {} document embeddings", cell.pair, cell.label),
            &docs,
        )?;
        let (scores, run) = score_embeddings(queries, &docs, set, 1000)?;
        let result = CellResult {
            pair: cell.pair.clone(),
            method: cell.label.clone(),
            scores,
            seconds: t0.elapsed().as_secs_f64(),
            collection: set.note.clone(),
            loss,
        };
        write_cell(&path, &result, &run)?;
        bar.suspend(|| {
            eprintln!(
                "{} / {}: MAP {:.4} nDCG@10 {:.4} MRR@10 {:.4} ({:.0}s)",
                result.pair,
                result.method,
                result.scores.map,
                result.scores.ndcg_10,
                result.scores.mrr_10,
                result.seconds
            )
        });
        results.push(result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = write_report(
        &preset,
        &results,
        &out,
        &backend.to_string(),
        started.elapsed().as_secs_f64(),
    )?;
    println!("{report}");
    println!("results in {}", out.display());
    if a.verify {
        let path = a.expected.unwrap_or_else(|| {
            workspace_root()
                .join("experiments/expected")
                .join(format!("{}.toml", preset.name))
        });
        verify(&path, &results)?;
    }
    Ok(())
}

fn read_losses(run_dir: &Path) -> anyhow::Result<Option<(f64, f64)>> {
    let path = run_dir.join(clir_train::trainer::RUN_LOG);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let losses: Vec<f64> = text
        .lines()
        .map(|l| serde_json::from_str::<clir_train::trainer::StepLog>(l).map(|e| e.loss))
        .collect::<Result<_, _>>()
        .with_context(|| path.display().to_string())?;
    Ok(losses.first().zip(losses.last()).map(|(a, b)| (*a, *b)))
}

fn write_cell(path: &Path, r: &CellResult, run: &clir_eval::Run) -> anyhow::Result<()> {
    let dir = path.parent().expect("cells live in a directory");
    std::fs::create_dir_all(dir)?;
    let stem = path.file_stem().expect("a file name").to_string_lossy();
    let mut csv = String::from("qid,map,ndcg_cut_10,recip_rank_10\n");
    for (q, v) in &r.scores.per_query {
        csv.push_str(&format!("{q},{:.6},{:.6},{:.6}\n", v[0], v[1], v[2]));
    }
    std::fs::write(dir.join(format!("{stem}.per-query.csv")), csv)?;
    let mut trec = Vec::new();
    run.write_trec(&mut trec, &r.method)?;
    std::fs::write(dir.join(format!("{stem}.run")), trec)?;
    // The JSON is written last, atomically: its presence marks the cell as finished.
    clir_train::trainer::write_atomic(path, serde_json::to_string_pretty(r)?.as_bytes())?;
    Ok(())
}

fn write_report(
    preset: &Preset,
    results: &[CellResult],
    out: &Path,
    backend: &str,
    seconds: f64,
) -> anyhow::Result<String> {
    let methods: Vec<String> = {
        let mut m: Vec<String> = Vec::new();
        for r in results.iter().filter(|r| r.pair != ENGLISH) {
            if !m.contains(&r.method) {
                m.push(r.method.clone());
            }
        }
        m
    };
    let pairs = preset.pairs.clone();
    let test = match preset.eval.test.as_str() {
        "randomization" => SigTest::Randomization {
            permutations: 10_000,
            seed: preset.eval.seed,
        },
        _ => SigTest::TTest,
    };
    let baseline = methods.iter().any(|m| m == ZERO_SHOT).then_some(ZERO_SHOT);
    let mut md = String::new();
    md.push_str(&format!("# {} — {}\n\n", preset.name, preset.description));
    md.push_str(&format!(
        "English queries against target-language New Testament verses (Nave's Topical Bible judgments). Backend: {backend}; wall time of this invocation: {seconds:.0}s.\n\n"
    ));
    md.push_str("Evaluation samples (seeded, the same for every method of a pair):\n\n");
    let mut seen = std::collections::BTreeSet::new();
    for r in results {
        if seen.insert(r.pair.clone()) {
            md.push_str(&format!("- {}: {}\n", r.pair, r.collection));
        }
    }
    md.push('\n');
    if !preset.train.is_empty() {
        md.push_str(&format!(
            "Training settings of every trained cell (on top of the defaults of `cargo xtask train`):\n\n```toml\n{}```\n\n",
            toml::to_string(&preset.train)?
        ));
    }
    let mut tables = Vec::new();
    for (mi, metric) in ["MAP", "nDCG@10", "MRR@10"].iter().enumerate() {
        let mut per_query: PerQuery = BTreeMap::new();
        for r in results.iter().filter(|r| r.pair != ENGLISH) {
            per_query.insert(
                (r.method.clone(), r.pair.clone()),
                r.scores
                    .per_query
                    .iter()
                    .map(|(q, v)| (q.clone(), v[mi]))
                    .collect(),
            );
        }
        let table = ResultsTable::from_per_query(
            metric,
            methods.clone(),
            pairs.clone(),
            &per_query,
            baseline,
            test,
            preset.eval.alpha,
        )
        .with_context(|| format!("building the {metric} table"))?;
        md.push_str(&format!("## {metric}\n\n{}\n", table.to_markdown()));
        let svg = out.join(format!("{}.svg", MEASURES[mi].replace('@', "_at_")));
        std::fs::write(&svg, table.to_svg())?;
        tables.push(table);
    }
    if baseline.is_some() {
        md.push_str(&format!(
            "Significance test: {} on the same queries, Holm–Bonferroni over each table, α = {}.\n\n",
            if matches!(test, SigTest::TTest) { "paired t-test" } else { "paired randomization test" },
            preset.eval.alpha
        ));
    }
    // The gap to English→English, per method, for the MAP table.
    let english = results.iter().find(|r| r.pair == ENGLISH);
    let mut gaps = serde_json::Map::new();
    if let Some(en) = english {
        md.push_str(&format!(
            "## Gap to English→English\n\nTeacher on English (WEB) documents: MAP {:.4}, nDCG@10 {:.4}, MRR@10 {:.4}. Gap = (English − pair) / English, MAP.\n\n",
            en.scores.map, en.scores.ndcg_10, en.scores.mrr_10
        ));
        let high: Vec<String> = pairs
            .iter()
            .filter(|p| !preset.low_resource.contains(p))
            .cloned()
            .collect();
        md.push_str("| method | low-resource mean MAP | high-resource mean MAP | low gap | high gap |\n|---|---|---|---|---|\n");
        let map = &tables[0];
        for (mi, m) in map.methods.iter().enumerate() {
            let mut scores: BTreeMap<String, f64> = map
                .languages
                .iter()
                .zip(&map.values[mi])
                .map(|(l, v)| (l.clone(), *v))
                .collect();
            scores.insert(ENGLISH.into(), en.scores.map);
            let d = disparity(&scores, ENGLISH, &preset.low_resource, &high)?;
            let mean = |g: &[String]| {
                (!g.is_empty()).then(|| g.iter().map(|p| scores[p]).sum::<f64>() / g.len() as f64)
            };
            let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.4}"));
            md.push_str(&format!(
                "| {m} | {} | {} | {} | {} |\n",
                f(mean(&preset.low_resource)),
                f(mean(&high)),
                f(d.low_resource_mean),
                f(d.high_resource_mean)
            ));
            gaps.insert(m.clone(), serde_json::to_value(&d)?);
        }
        md.push('\n');
    }
    if !preset.cost.is_empty() {
        md.push_str(&format!("Cost: {}\n", preset.cost));
    }
    std::fs::write(out.join("results.md"), &md)?;
    let mut csv = String::from(
        "pair,method,map,ndcg_cut_10,recip_rank_10,p_holm_map_vs_zero_shot,seconds,first_loss,last_loss\n",
    );
    for r in results {
        let p = tables[0]
            .methods
            .iter()
            .position(|m| m == &r.method)
            .zip(tables[0].languages.iter().position(|l| l == &r.pair))
            .and_then(|(mi, li)| tables[0].significance[mi][li])
            .map_or(String::new(), |s| format!("{:.6}", s.p_holm));
        let (l0, l1) = r.loss.map_or((String::new(), String::new()), |(a, b)| {
            (format!("{a:.6}"), format!("{b:.6}"))
        });
        csv.push_str(&format!(
            "{},{},{:.6},{:.6},{:.6},{p},{:.1},{l0},{l1}\n",
            r.pair, r.method, r.scores.map, r.scores.ndcg_10, r.scores.mrr_10, r.seconds
        ));
    }
    std::fs::write(out.join("results.csv"), csv)?;
    let json = serde_json::json!({
        "preset": preset,
        "backend": backend,
        "cells": results,
        "tables": tables,
        "gaps": gaps,
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(md)
}

/// Expected scores with tolerances (`experiments/expected/<preset>.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// Default absolute tolerance.
    tolerance: f64,
    cell: Vec<ExpectedCell>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedCell {
    pair: String,
    method: String,
    map: f64,
    ndcg_10: Option<f64>,
    tolerance: Option<f64>,
}

fn verify(path: &Path, results: &[CellResult]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let expected: Expected = toml::from_str(&text).with_context(|| path.display().to_string())?;
    let mut drift = Vec::new();
    let mut checked = 0;
    for e in &expected.cell {
        let Some(r) = results
            .iter()
            .find(|r| r.pair == e.pair && r.method == e.method)
        else {
            drift.push(format!("{} / {}: not in the results", e.pair, e.method));
            continue;
        };
        let tol = e.tolerance.unwrap_or(expected.tolerance);
        let mut check = |name: &str, want: f64, got: f64| {
            checked += 1;
            if (want - got).abs() > tol {
                drift.push(format!(
                    "{} / {} {name}: {got:.4}, expected {want:.4} ± {tol}",
                    e.pair, e.method
                ));
            }
        };
        check("MAP", e.map, r.scores.map);
        if let Some(n) = e.ndcg_10 {
            check("nDCG@10", n, r.scores.ndcg_10);
        }
    }
    if drift.is_empty() {
        println!(
            "verify: {checked} values within tolerance of {}",
            path.display()
        );
        Ok(())
    } else {
        bail!(
            "verify: {} of {} values drifted ({}):\n  {}",
            drift.len(),
            checked.max(drift.len()),
            path.display(),
            drift.join("\n  ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every preset under experiments/ parses, names known methods, and yields a valid
    /// training configuration for every variant.
    #[test]
    fn every_shipped_preset_loads() {
        let dir = workspace_root().join("experiments");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let Some(stem) = p.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                continue;
            };
            if p.extension().is_none_or(|x| x != "toml") || stem.starts_with("train-") {
                continue;
            }
            let (preset, _) = Preset::load(&stem).unwrap_or_else(|e| panic!("{stem}: {e:#}"));
            assert_eq!(preset.name, stem, "{}", p.display());
            for pair in &preset.pairs {
                clir_data::bible::resolve_version(pair).unwrap();
            }
            n += 1;
        }
        assert!(n >= 7, "only {n} presets found in {}", dir.display());
    }
}
