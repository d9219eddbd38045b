//! Helpers shared by the xtask integration tests (each test binary declares `mod common;`).

use std::path::Path;

/// `[(qid, docid, rank, score)]` of a TREC run file.
pub fn run_rows(path: &Path) -> Vec<(String, String, usize, f64)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].into(),
                f[2].into(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}
