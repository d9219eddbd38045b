//! `reproduce --reuse-from DIR`: take a missing cell from another preset's results when it is
//! the same computation.
//!
//! Two presets often share cells: the headline's OPTICAL, MSE and KL students are also
//! `ot-vs-kl`'s, its zero-shot and OPTICAL cells are `disparity`'s. A cell is taken from `DIR`
//! only when its pair and seed are this cell's, its method is this cell's method (the label
//! without variant or curve step), and its fingerprint is exactly this cell's (training
//! settings, evaluation sample, models, backend, code version): then the two are the same
//! computation, and recomputing it would only spend hours. The copy keeps its own time,
//! commit and invocation, and names where it came from (`reused_from`), which the report
//! says.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::fingerprint::{self, CellFingerprint, differences};
use super::{Cell, CellResult, CellState, read_cell, read_committed, strip_unread};
use clir_train::trainer::write_atomic;

/// A finished cell of a `--reuse-from` directory.
struct Found {
    result: CellResult,
    /// Its `cells/…json` file (none when it was read from `results.json`), beside which lie
    /// its `.run`, `.qrels` and `.per-query.csv`.
    json: Option<PathBuf>,
}

/// The finished cells of a results directory: `DIR/cells/**.json`, then `DIR/results.json`'s
/// (a committed run without its cells folder).
fn finished_in(dir: &Path) -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    let cells = dir.join("cells");
    if cells.is_dir() {
        for p in fingerprint::files_under(&cells)? {
            if p.extension().is_some_and(|x| x == "json")
                && let Some(result) = read_cell(&p)?
            {
                found.push(Found {
                    result,
                    json: Some(p),
                });
            }
        }
    }
    let results = dir.join("results.json");
    if results.is_file() {
        for mut r in read_committed(&results)?.cells {
            strip_unread(&mut r);
            found.push(Found {
                result: r,
                json: None,
            });
        }
    }
    if found.is_empty() {
        anyhow::bail!(
            "--reuse-from {}: no finished cells there (neither cells/ nor results.json)",
            dir.display()
        );
    }
    Ok(found)
}

/// The method of a row label: `optical/base@200` → `optical`.
fn method_of(label: &str) -> &str {
    label.split(['/', '@']).next().unwrap_or(label)
}

/// The finished cell of `found` that is `cell`'s computation, if any.
fn same_computation<'a>(
    cell: &Cell,
    want: &CellFingerprint,
    found: &'a [Found],
) -> Option<&'a Found> {
    found.iter().find(|f| {
        let r = &f.result;
        r.pair == cell.pair
            && r.seed == cell.seed
            && method_of(&r.method) == method_of(&cell.label)
            && r.fingerprint
                .as_ref()
                .is_some_and(|fp| differences(fp, want).is_empty())
    })
}

/// A cell of this preset found finished in a `--reuse-from` directory.
struct Reusable {
    /// Index of the cell.
    cell: usize,
    /// Index of the directory it was found in.
    dir: usize,
    /// Its result, relabelled as this preset's cell and naming its source.
    result: CellResult,
    /// The source cell's JSON file, when it has one (its run files are copied beside).
    source: Option<PathBuf>,
}

/// Every cell of `cells` that is not done in this results folder (`states`: no result, or a
/// stale one) and is the same computation as a finished cell of one of `dirs` (the first
/// directory that has it).
fn reusable(
    cells: &[Cell],
    fingerprints: &[CellFingerprint],
    states: &[CellState],
    dirs: &[PathBuf],
) -> anyhow::Result<Vec<Reusable>> {
    let found: Vec<Vec<Found>> = dirs
        .iter()
        .map(|d| finished_in(d))
        .collect::<anyhow::Result<_>>()?;
    let mut hits = Vec::new();
    for (i, (c, want)) in cells.iter().zip(fingerprints).enumerate() {
        if states[i] == CellState::Done {
            continue;
        }
        let hit = found
            .iter()
            .enumerate()
            .find_map(|(d, f)| same_computation(c, want, f).map(|r| (d, r)));
        if let Some((dir, f)) = hit {
            let mut result = f.result.clone();
            result.method = c.label.clone();
            result.reused_from = Some(dirs[dir].display().to_string());
            hits.push(Reusable {
                cell: i,
                dir,
                result,
                source: f.json.clone(),
            });
        }
    }
    Ok(hits)
}

/// Writes each reusable cell's `<out>/cells/…json`, after copying its source's `.run`,
/// `.qrels` and `.per-query.csv` where it has them (the run's tag stays the source's label);
/// returns how many came from each of the `n_dirs` directories.
fn write(
    cells: &[Cell],
    out: &Path,
    hits: &[Reusable],
    n_dirs: usize,
) -> anyhow::Result<Vec<usize>> {
    let mut counts = vec![0; n_dirs];
    for h in hits {
        let target = cells[h.cell].json_path(out);
        std::fs::create_dir_all(target.parent().expect("cells live in a directory"))?;
        if let Some(src) = &h.source {
            copy_run_files(src, &target)?;
        }
        write_atomic(&target, serde_json::to_string_pretty(&h.result)?.as_bytes())?;
        counts[h.dir] += 1;
    }
    Ok(counts)
}

/// Copies `<stem>.run`, `.qrels` and `.per-query.csv` from beside the cell file `from` to
/// beside `to`, those that exist.
fn copy_run_files(from: &Path, to: &Path) -> anyhow::Result<()> {
    for ext in ["run", "qrels", "per-query.csv"] {
        let src = from.with_extension(ext);
        if src.is_file() {
            let bytes = std::fs::read(&src).with_context(|| src.display().to_string())?;
            write_atomic(&to.with_extension(ext), &bytes)?;
        }
    }
    Ok(())
}

/// The `--reuse-from` step of a run, after the local cells were scanned: finds the
/// reusable cells of `dirs`, writes them to `out` (unless `list`) and marks them done in
/// `states` and `found` as the files just written hold them; says how many came from where
/// (or, with `list`, how many would be reused).
pub(super) fn take(
    dirs: &[PathBuf],
    list: bool,
    cells: &[Cell],
    (fingerprints, found, states): (
        &[CellFingerprint],
        &mut [Option<CellResult>],
        &mut [CellState],
    ),
    out: &Path,
) -> anyhow::Result<()> {
    if dirs.is_empty() {
        return Ok(());
    }
    let hits = reusable(cells, fingerprints, states, dirs)?;
    if list {
        if !hits.is_empty() {
            println!(
                "{} cells would be reused from --reuse-from (listed as done)",
                hits.len()
            );
        }
    } else {
        let counts = write(cells, out, &hits, dirs.len())?;
        for (dir, n) in dirs.iter().zip(counts) {
            eprintln!(
                "reused {n} cells from {} (the same computation)",
                dir.display()
            );
        }
    }
    for r in hits {
        states[r.cell] = CellState::Done;
        found[r.cell] = Some(r.result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::method_of;

    #[test]
    fn a_method_is_its_label_without_variant_or_step() {
        assert_eq!(method_of("optical/base@200"), "optical");
        assert_eq!(method_of("kl@600"), "kl");
        assert_eq!(method_of("zero-shot"), "zero-shot");
        assert_eq!(method_of("joint/lambda-0.5"), "joint");
    }
}
