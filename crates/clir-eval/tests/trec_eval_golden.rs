//! Metric values checked against trec_eval 9.0.8: per-query values from pytrec_eval and full
//! `trec_eval -q/-c/-M` outputs, generated offline by tests/reference/make_golden.py.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clir_eval::metrics::{EvalOptions, MeasureSet, evaluate};
use clir_eval::trec::{Qrels, Run};

const FIXTURES: [&str; 3] = ["basic", "ties", "random"];

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

fn load(name: &str) -> (Qrels, Run) {
    let dir = reference_dir().join("fixtures");
    let qrels = Qrels::from_path(dir.join(format!("{name}.qrels"))).unwrap();
    let run = Run::from_path(dir.join(format!("{name}.run"))).unwrap();
    (qrels, run)
}

fn golden_measures() -> MeasureSet {
    MeasureSet::parse(&[
        "num_q",
        "num_ret",
        "num_rel",
        "num_rel_ret",
        "map",
        "Rprec",
        "recip_rank",
        "P.5,10,20,100",
        "recall.10,100,1000",
        "ndcg_cut.5,10,20,100",
    ])
    .unwrap()
}

#[test]
fn per_query_values_match_pytrec_eval() {
    for name in FIXTURES {
        let (qrels, run) = load(name);
        let path = reference_dir().join(format!("golden/{name}.pytrec_eval.json"));
        let golden: BTreeMap<String, BTreeMap<String, f64>> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let ev = evaluate(&qrels, &run, &golden_measures(), &EvalOptions::default()).unwrap();
        let ours: Vec<&str> = ev.per_query.iter().map(|q| q.qid.as_str()).collect();
        let theirs: Vec<&str> = golden.keys().map(String::as_str).collect();
        assert_eq!(ours, theirs, "{name}: evaluated query sets differ");
        let mut checked = 0;
        for (qid, values) in &golden {
            for (measure, want) in values {
                let got = ev
                    .value(qid, measure)
                    .unwrap_or_else(|| panic!("{measure} missing"));
                assert!(
                    (got - want).abs() < 1e-9,
                    "{name} {qid} {measure}: ours {got}, pytrec_eval {want}"
                );
                checked += 1;
            }
        }
        assert!(checked > 30, "{name}: only {checked} values checked");
    }
}

#[test]
fn full_output_matches_trec_eval_binary() {
    let flag_sets: [(&str, bool, EvalOptions); 5] = [
        ("plain", false, EvalOptions::default()),
        ("q", true, EvalOptions::default()),
        (
            "qc",
            true,
            EvalOptions {
                average_complete: true,
                ..Default::default()
            },
        ),
        (
            "qM3",
            true,
            EvalOptions {
                max_docs_per_query: Some(3),
                ..Default::default()
            },
        ),
        (
            "cM5",
            false,
            EvalOptions {
                average_complete: true,
                max_docs_per_query: Some(5),
                ..Default::default()
            },
        ),
    ];
    for name in FIXTURES {
        let (qrels, run) = load(name);
        for (tag, per_query, opts) in &flag_sets {
            let path = reference_dir().join(format!("golden/{name}.{tag}.trec_eval.txt"));
            let want = std::fs::read_to_string(path).unwrap();
            let ev = evaluate(&qrels, &run, &golden_measures(), opts).unwrap();
            let got = ev.format_trec(*per_query);
            for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
                assert_eq!(g, w, "{name} -{tag}: line {} differs", i + 1);
            }
            assert_eq!(
                got.lines().count(),
                want.lines().count(),
                "{name} -{tag}: line count"
            );
        }
    }
}

#[test]
fn cli_prints_trec_eval_lines() {
    let dir = reference_dir().join("fixtures");
    let args = clir_eval::cli::EvalArgs {
        qrels: None,
        run: None,
        files: vec![dir.join("basic.qrels"), dir.join("basic.run")],
        per_query: true,
        complete: true,
        max_docs: None,
        relevance_level: 1,
        measures: vec![
            "num_q".into(),
            "num_ret".into(),
            "num_rel".into(),
            "num_rel_ret".into(),
            "map".into(),
            "Rprec".into(),
            "recip_rank".into(),
            "P.5,10,20,100".into(),
            "recall.10,100,1000".into(),
            "ndcg_cut.5,10,20,100".into(),
        ],
        progress: false,
    };
    let got = clir_eval::cli::eval_to_string(&args).unwrap();
    let want =
        std::fs::read_to_string(reference_dir().join("golden/basic.qc.trec_eval.txt")).unwrap();
    assert_eq!(got, want);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The file order of run lines never matters (trec_eval re-sorts by score, then docno
        /// descending), and every rate measure stays in [0, 1].
        #[test]
        fn line_order_is_irrelevant_and_values_are_rates(
            docs in proptest::collection::vec((0u8..30, 0u8..4, -2i8..4), 1..60),
            rotate in 0usize..60,
        ) {
            let mut seen = std::collections::HashSet::new();
            let docs: Vec<_> = docs.into_iter().filter(|d| seen.insert(d.0)).collect();
            let run_lines: Vec<String> = docs.iter().map(|(d, s, _)| format!("q Q0 d{d} 0 {s} r")).collect();
            let qrels_text: String = docs.iter().map(|(d, _, g)| format!("q 0 d{d} {g}\n")).collect();
            let qrels = Qrels::parse(&qrels_text, "q").unwrap();
            let mut rotated = run_lines.clone();
            rotated.rotate_left(rotate % run_lines.len());
            let ms = MeasureSet::standard();
            let a = evaluate(&qrels, &Run::parse(&run_lines.join("\n"), "a").unwrap(), &ms, &EvalOptions::default()).unwrap();
            let b = evaluate(&qrels, &Run::parse(&rotated.join("\n"), "b").unwrap(), &ms, &EvalOptions::default()).unwrap();
            prop_assert_eq!(&a, &b);
            for v in &a.all {
                prop_assert!((0.0..=1.0).contains(v));
            }
        }
    }
}
