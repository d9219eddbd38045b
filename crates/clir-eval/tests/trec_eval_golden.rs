//! Metric values checked against trec_eval 9.0.8: per-query values from pytrec_eval and full
//! `trec_eval -q/-c/-M` outputs; and the two measures trec_eval lacks (`Judged@k`, `RR@k`)
//! against ir_measures. All generated offline by tests/reference/make_golden.py.

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

/// golden/<name>.<tool>.json: `{qid: {measure: value}}`.
fn per_query_golden(name: &str, tool: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    let path = reference_dir().join(format!("golden/{name}.{tool}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn golden_measures() -> MeasureSet {
    MeasureSet::parse(&[
        "num_q",
        "num_ret",
        "num_rel",
        "num_rel_ret",
        "map",
        "Rprec",
        "bpref",
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
        let golden = per_query_golden(name, "pytrec_eval");
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

/// `Judged@k` against ir_measures' judged provider and `RR@k` against its msmarco provider, on
/// the run re-scored in trec_eval's order (see make_golden.py). ir_measures reports every qrels
/// query, those the run misses as 0, so its mean is our `-c` "all" line.
#[test]
fn judged_and_cut_reciprocal_rank_match_ir_measures() {
    for name in FIXTURES {
        let (qrels, run) = load(name);
        let golden = per_query_golden(name, "ir_measures");
        let ir_names: std::collections::BTreeSet<&String> =
            golden.values().flat_map(|v| v.keys()).collect();
        assert!(ir_names.len() >= 8, "{name}: {ir_names:?}");
        let ms = MeasureSet::parse(&ir_names.iter().collect::<Vec<_>>()).unwrap();
        let ev = evaluate(&qrels, &run, &ms, &EvalOptions::default()).unwrap();
        let complete = EvalOptions {
            average_complete: true,
            ..Default::default()
        };
        let ev_c = evaluate(&qrels, &run, &ms, &complete).unwrap();
        assert!(
            golden.keys().eq(qrels.queries.keys()),
            "{name}: ir_measures reports the qrels queries"
        );
        let mut checked = 0;
        for ir_name in &ir_names {
            // The output name of the ir_measures name, e.g. `Judged@10` → `judged_10`.
            let ours = MeasureSet::parse(&[ir_name]).unwrap().measures()[0].name();
            let mut sum = 0.0;
            for (qid, theirs) in &golden {
                let want = theirs[*ir_name];
                let got = ev.value(qid, &ours).unwrap_or(0.0); // not evaluated: 0, as under -c
                assert!(
                    (got - want).abs() < 1e-12,
                    "{name} {qid} {ir_name}: ours {got}, ir_measures {want}"
                );
                sum += want;
                checked += 1;
            }
            let mean = sum / golden.len() as f64;
            let all = ev_c.all_value(&ours).unwrap();
            assert!(
                (all - mean).abs() < 1e-12,
                "{name} {ir_name}: -c all {all}, ir_measures mean {mean}"
            );
        }
        assert!(checked >= 3 * ir_names.len(), "{name}: only {checked}");
    }
}

#[test]
fn full_output_matches_trec_eval_binary() {
    let flag_sets: [(&str, bool, EvalOptions); 6] = [
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
        (
            "ql2",
            true,
            EvalOptions {
                relevance_level: 2,
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
    let args = clir_eval::trec_eval::EvalRequest {
        qrels: dir.join("basic.qrels"),
        run: dir.join("basic.run"),
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
            "bpref".into(),
            "recip_rank".into(),
            "P.5,10,20,100".into(),
            "recall.10,100,1000".into(),
            "ndcg_cut.5,10,20,100".into(),
        ],
        json: false,
        progress: false,
    };
    let got = clir_eval::trec_eval::eval_to_string(&args).unwrap();
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

        /// bpref, judged_k and recip_rank_cut_k are rates; bpref looks only at judged
        /// documents, so retrieved documents without a qrels line never change it; judged_k is
        /// 1 / 0 when every / no retrieved document is judged; recip_rank_cut_k is trec_eval's
        /// recip_rank under `-M k`.
        #[test]
        fn bpref_judged_and_cut_rr_laws(
            docs in proptest::collection::vec((0u8..40, 0u8..6, -1i8..4, proptest::bool::ANY), 1..60),
            extra in proptest::collection::vec((0u8..6, 40u8..80), 0..20),
            level in 0i64..3,
            k in 1usize..12,
        ) {
            let mut seen = std::collections::HashSet::new();
            let docs: Vec<_> = docs.into_iter().filter(|d| seen.insert(d.0)).collect();
            // Judged documents: the retrieved ones marked so, plus some never retrieved.
            let qrels_text: String = docs.iter().filter(|d| d.3).map(|(d, _, g, _)| format!("q 0 d{d} {g}\n"))
                .chain(std::iter::once("q 0 never 1\nq 0 never0 0\n".to_string())).collect();
            let qrels = Qrels::parse(&qrels_text, "q").unwrap();
            let lines: Vec<String> = docs.iter().map(|(d, s, _, _)| format!("q Q0 d{d} 0 {s} r")).collect();
            let run = Run::parse(&lines.join("\n"), "r").unwrap();
            let mut seen_extra = std::collections::HashSet::new();
            let with_unjudged: Vec<String> = lines.iter().cloned().chain(
                extra.iter().filter(|e| seen_extra.insert(e.1)).map(|(s, d)| format!("q Q0 u{d} 0 {s}.5 r"))).collect();
            let run_unjudged = Run::parse(&with_unjudged.join("\n"), "u").unwrap();
            let opts = EvalOptions { relevance_level: level, ..Default::default() };
            let rr = format!("RR@{k}");
            let ms = MeasureSet::parse(&["bpref", "recip_rank", rr.as_str(), "Judged@1", "judged.3,10"]).unwrap();
            let a = evaluate(&qrels, &run, &ms, &opts).unwrap();
            let b = evaluate(&qrels, &run_unjudged, &ms, &opts).unwrap();
            for v in &a.all {
                prop_assert!((0.0..=1.0).contains(v), "{:?}", a);
            }
            prop_assert_eq!(a.all_value("bpref"), b.all_value("bpref"));
            let all_judged = docs.iter().all(|d| d.3);
            let none_judged = docs.iter().all(|d| !d.3);
            for m in ["judged_1", "judged_3", "judged_10"] {
                let v = a.all_value(m).unwrap();
                if all_judged { prop_assert_eq!(v, 1.0); }
                if none_judged { prop_assert_eq!(v, 0.0); }
            }
            let cut = EvalOptions { max_docs_per_query: Some(k), ..opts };
            let m = evaluate(&qrels, &run_unjudged, &ms, &cut).unwrap();
            prop_assert_eq!(b.all_value(&format!("recip_rank_cut_{k}")), m.all_value("recip_rank"));
        }

        /// bpref is 1 when every relevant document is retrieved above every judged
        /// non-relevant one (non-pool documents anywhere), 0 when no relevant one is retrieved.
        #[test]
        fn bpref_is_one_for_a_perfect_ranking(
            grades in proptest::collection::vec(-1i8..4, 1..40),
            unjudged in proptest::collection::vec(0u8..3, 0..10),
        ) {
            let qrels_text: String = grades.iter().enumerate().map(|(i, g)| format!("q 0 d{i} {g}\n")).collect();
            let qrels = Qrels::parse(&qrels_text, "q").unwrap();
            // Score = grade (relevant first), unjudged documents at arbitrary scores.
            let mut lines: Vec<String> = grades.iter().enumerate().map(|(i, g)| format!("q Q0 d{i} 0 {g} r")).collect();
            lines.extend(unjudged.iter().enumerate().map(|(i, s)| format!("q Q0 u{i} 0 {s} r")));
            let run = Run::parse(&lines.join("\n"), "r").unwrap();
            let ev = evaluate(&qrels, &run, &MeasureSet::parse(&["bpref"]).unwrap(), &EvalOptions::default()).unwrap();
            let want = if grades.iter().any(|&g| g >= 1) { 1.0 } else { 0.0 };
            prop_assert_eq!(ev.all_value("bpref"), Some(want));
            // Relevant documents removed from the run: bpref 0.
            let worst: Vec<String> = lines.into_iter().filter(|l| {
                let d = l.split_whitespace().nth(2).unwrap();
                d.starts_with('u') || grades[d[1..].parse::<usize>().unwrap()] < 1
            }).collect();
            if !worst.is_empty() {
                let run = Run::parse(&worst.join("\n"), "w").unwrap();
                let ev = evaluate(&qrels, &run, &MeasureSet::parse(&["bpref"]).unwrap(), &EvalOptions::default()).unwrap();
                prop_assert_eq!(ev.all_value("bpref"), Some(0.0));
            }
        }
    }
}
