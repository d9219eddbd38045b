//! `experiments/expected/<preset>.toml`: a preset's table values with tolerances, checked by
//! `reproduce --verify` and written from a finished report by `--write-expected`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::fingerprint::Provenance;
use super::preset::Preset;
use super::report;

/// The default absolute tolerance of a written file: floating-point differences between CPUs
/// and backends, not changes of the method.
const TOLERANCE: f64 = 0.02;

/// Expected scores with tolerances (`experiments/expected/<preset>.toml`): the table values,
/// i.e. the mean over seeds of each method and pair.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// Default absolute tolerance.
    tolerance: f64,
    cell: Vec<ExpectedCell>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectedCell {
    pair: String,
    method: String,
    pub(super) map: f64,
    pub(super) ndcg_10: Option<f64>,
    pub(super) mrr_10: Option<f64>,
    tolerance: Option<f64>,
}

pub fn verify(path: &Path, results: &[report::Aggregate]) -> anyhow::Result<()> {
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
        check("map", e.map, r.map);
        if let Some(n) = e.ndcg_10 {
            check("ndcg_10", n, r.ndcg_10);
        }
        if let Some(m) = e.mrr_10 {
            check("mrr_10", m, r.mrr_10);
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

/// Writes `results`' table values to `path` (a new file: an existing one is never replaced),
/// with the run's provenance in its header.
pub fn write(
    path: &Path,
    preset: &Preset,
    results: &[report::Aggregate],
    provenance: &Provenance,
) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "--write-expected: {} exists; remove it to write it again",
            path.display()
        );
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Expected scores of `cargo xtask reproduce --preset {}` ({} backend, {}, {} threads):",
        preset.name, provenance.backend, provenance.cpu, provenance.threads
    );
    let _ = writeln!(
        t,
        "# the report's table values (means over the preset's seeds), written by --write-expected on\n\
         # {} at commit {}. `--verify` fails when a value drifts further than the tolerance\n\
         # (absolute); runs are deterministic on one machine.",
        provenance.date, provenance.commit
    );
    let _ = writeln!(t, "tolerance = {TOLERANCE}");
    for r in results {
        let _ = write!(
            t,
            "\n[[cell]]\npair = {}\nmethod = {}\nmap = {:.4}\nndcg_10 = {:.4}\nmrr_10 = {:.4}\n",
            toml_string(&r.pair),
            toml_string(&r.method),
            r.map,
            r.ndcg_10,
            r.mrr_10
        );
    }
    // What is written must read back and pass against the same results.
    let expected: Expected = toml::from_str(&t).context("the expected scores just formatted")?;
    debug_assert_eq!(expected.cell.len(), results.len());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    clir_train::trainer::write_atomic(path, t.as_bytes())?;
    println!("wrote {} ({} rows)", path.display(), results.len());
    verify(path, results)
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
