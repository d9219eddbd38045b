//! Helpers shared by the xtask integration tests (each test binary declares `mod common;`).

use std::path::Path;

/// The evaluation sample (6 test queries, 40 verses) and the two-step training run of a
/// mostly frozen student that the tiny two-pair matrices share.
#[allow(dead_code)]
pub const TINY_MATRIX: &str = r#"[eval]
split = "test"
queries = 6
documents = 40
seed = 3

[train.model]
max_len = 32
freeze_layers = 10

[train.data]
max_pairs = 16

[train.optim]
steps = 2
warmup_steps = 1
batch_size = 8

[train.run]
checkpoint_every = 2
progress = false
"#;

/// `[(qid, docid, rank, score)]` of a TREC run file.
#[allow(dead_code)]
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

/// Cells computed by all the invocations logged in `<out>/cells/invocations.jsonl`, and the
/// log's text.
#[allow(dead_code)]
pub fn cells_computed(out: &Path) -> (u64, String) {
    let invocations = std::fs::read_to_string(out.join("cells/invocations.jsonl")).unwrap();
    let total = invocations
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["computed"]
                .as_u64()
                .unwrap()
        })
        .sum();
    (total, invocations)
}
