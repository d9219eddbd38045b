//! Bad input is rejected with an error naming the source and line; nothing is dropped silently.

use clir_eval::EvalError;
use clir_eval::metrics::{EvalOptions, MeasureSet, evaluate};
use clir_eval::trec::{Qrels, Run};

fn run_err(text: &str) -> String {
    Run::parse(text, "my.run").unwrap_err().to_string()
}

fn qrels_err(text: &str) -> String {
    Qrels::parse(text, "my.qrels").unwrap_err().to_string()
}

#[test]
fn duplicate_run_entries_are_rejected_with_both_lines() {
    let e = run_err("q1 Q0 a 1 1.0 r\nq1 Q0 b 2 0.5 r\nq2 Q0 a 1 1 r\nq1 Q0 a 3 0.1 r\n");
    assert_eq!(
        e,
        "my.run:4: duplicate document 'a' for query 'q1' (first seen on line 1)"
    );
}

#[test]
fn duplicate_qrels_entries_are_rejected() {
    let e = qrels_err("q1 0 a 1\n\nq1 0 a 0\n");
    assert_eq!(
        e,
        "my.qrels:3: duplicate document 'a' for query 'q1' (first seen on line 1)"
    );
}

#[test]
fn malformed_run_lines_name_file_and_line() {
    assert!(run_err("q1 Q0 a 1 1.0 r\nq1 Q0 b 2 0.5\n").starts_with("my.run:2: expected 6 fields"));
    assert!(run_err("q1 Q0 a 1 1.0 r extra\n").starts_with("my.run:1: expected 6 fields"));
    assert_eq!(
        run_err("q1 Q0 a 1 high r\n"),
        "my.run:1: score 'high' is not a number"
    );
    assert_eq!(
        run_err("q1 Q0 a 1 NaN r\n"),
        "my.run:1: score 'NaN' is not finite"
    );
    assert_eq!(
        run_err("\nq1 Q0 a 1 inf r\n"),
        "my.run:2: score 'inf' is not finite"
    );
}

#[test]
fn malformed_qrels_lines_name_file_and_line() {
    assert!(qrels_err("q1 0 a\n").starts_with("my.qrels:1: expected 4 fields"));
    assert_eq!(
        qrels_err("q1 0 a 1\nq1 0 b 1.5\n"),
        "my.qrels:2: relevance '1.5' is not an integer"
    );
}

#[test]
fn missing_files_are_named() {
    let e = Run::from_path("/nonexistent/dir/x.run")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/dir/x.run:"), "{e}");
}

#[test]
fn empty_run_or_no_overlap_is_an_error_like_trec_eval() {
    let qrels = Qrels::parse("q1 0 a 1\n", "q").unwrap();
    let ms = MeasureSet::standard();
    let empty = Run::parse("", "r").unwrap();
    assert!(matches!(
        evaluate(&qrels, &empty, &ms, &EvalOptions::default()),
        Err(EvalError::NoQueries)
    ));
    let other = Run::parse("q9 Q0 a 1 1 r\n", "r").unwrap();
    let c = EvalOptions {
        average_complete: true,
        ..Default::default()
    };
    assert!(matches!(
        evaluate(&qrels, &other, &ms, &c),
        Err(EvalError::NoQueries)
    ));
}

#[test]
fn a_negative_relevance_level_is_refused() {
    // trec_eval 9.0.8 takes `-l -1` and then counts documents without a judgment as relevant
    // (map 2.52 on the random fixture); we refuse it.
    let qrels = Qrels::parse("q1 0 a 1\n", "q").unwrap();
    let run = Run::parse("q1 Q0 a 1 1 r\nq1 Q0 b 2 0 r\n", "r").unwrap();
    let l = EvalOptions {
        relevance_level: -1,
        ..Default::default()
    };
    let e = evaluate(&qrels, &run, &MeasureSet::standard(), &l)
        .unwrap_err()
        .to_string();
    assert!(e.contains("relevance level -1"), "{e}");
    let zero = EvalOptions {
        relevance_level: 0,
        ..Default::default()
    };
    assert!(evaluate(&qrels, &run, &MeasureSet::standard(), &zero).is_ok());
}

#[test]
fn a_query_with_an_empty_ranking_is_absent_and_scores_zero_under_c() {
    let qrels = Qrels::parse("q1 0 a 1\nq2 0 b 1\n", "q").unwrap();
    let mut run = Run::parse("q1 Q0 a 1 1 r\n", "r").unwrap();
    run.queries.insert("q2".into(), Vec::new());
    let ms = MeasureSet::standard();
    let ev = evaluate(&qrels, &run, &ms, &EvalOptions::default()).unwrap();
    // Not evaluated, as a query with no line in a run file (trec_eval without -c).
    assert_eq!(ev.value("q2", "map"), None);
    assert_eq!(ev.all_value("map"), Some(1.0));
    // With -c it counts as 0 in the mean over every qrels query.
    let c = EvalOptions {
        average_complete: true,
        ..EvalOptions::default()
    };
    let ev = evaluate(&qrels, &run, &ms, &c).unwrap();
    assert_eq!(ev.all_value("map"), Some(0.5));
}

#[test]
fn measure_specs_are_validated() {
    for bad in ["mapp", "P.0", "P.x", "map.5", "ndcg_cut.5,,10", ""] {
        assert!(MeasureSet::parse(&[bad]).is_err(), "{bad} accepted");
    }
    let m = MeasureSet::parse(&["P.10,5", "P.5", "map"]).unwrap();
    let names: Vec<String> = m.measures().iter().map(|m| m.name()).collect();
    assert_eq!(names, ["map", "P_5", "P_10"]);
    let p = MeasureSet::parse(&["P"]).unwrap();
    assert_eq!(p.measures().len(), 9, "trec_eval's default P cutoffs");
}

#[test]
fn triples_reject_duplicates_and_nan() {
    assert!(Run::from_triples([("q", "a", 1.0), ("q", "a", 2.0)]).is_err());
    assert!(Run::from_triples([("q", "a", f64::NAN)]).is_err());
    let r = Run::from_triples([("q", "a", 1.0), ("q", "b", 2.0)]).unwrap();
    let mut out = Vec::new();
    r.write_trec(&mut out, "t").unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "q Q0 b 1 2 t\nq Q0 a 2 1 t\n"
    );
}

/// The run parser works on ~1 MiB chunks in parallel: line numbers and duplicate detection
/// must hold across chunk boundaries.
#[test]
fn large_runs_keep_exact_line_numbers_across_chunks() {
    let mut text = String::new();
    for i in 0..60_000 {
        text.push_str(&format!("q{} Q0 doc{} 1 {}.5 tag\n", i % 7, i, i % 13));
    }
    let run = Run::parse(&text, "big.run").unwrap();
    assert_eq!(run.queries.len(), 7);
    assert_eq!(run.queries.values().map(Vec::len).sum::<usize>(), 60_000);
    let mut bad = text.clone();
    bad.push_str("q1 Q0 x 1 NaN tag\n");
    assert_eq!(
        Run::parse(&bad, "big.run").unwrap_err().to_string(),
        "big.run:60001: score 'NaN' is not finite"
    );
    let mut dup = text.clone();
    dup.push_str("\nq3 Q0 doc3 1 0.5 tag\n"); // doc3 belongs to q3 on line 4
    assert_eq!(
        Run::parse(&dup, "big.run").unwrap_err().to_string(),
        "big.run:60002: duplicate document 'doc3' for query 'q3' (first seen on line 4)"
    );
}

fn map_and_rr(qrels: &Qrels, run: &Run) -> (f64, f64) {
    let ms = MeasureSet::parse(&["map", "recip_rank"]).unwrap();
    let ev = evaluate(qrels, run, &ms, &EvalOptions::default()).unwrap();
    (
        ev.all_value("map").unwrap(),
        ev.all_value("recip_rank").unwrap(),
    )
}

#[test]
fn scores_tie_at_f32_precision_as_in_trec_eval_9_0_8() {
    // pytrec_eval 0.5 (trec_eval 9.0.8) on these runs, 2026-12-02:
    //   {'a': 1.0000000001, 'b': 1.0} -> map 0.5, recip_rank 0.5 (an f32 tie; docno 'b' first)
    //   {'a': 1.0001, 'b': 1.0}       -> map 1.0, recip_rank 1.0
    let qrels = Qrels::parse("q1 0 a 1\nq1 0 b 0\n", "q").unwrap();
    let near = Run::parse("q1 Q0 a 1 1.0000000001 r\nq1 Q0 b 2 1.0 r\n", "r").unwrap();
    assert_eq!(map_and_rr(&qrels, &near), (0.5, 0.5));
    let apart = Run::parse("q1 Q0 a 1 1.0001 r\nq1 Q0 b 2 1.0 r\n", "r").unwrap();
    assert_eq!(map_and_rr(&qrels, &apart), (1.0, 1.0));
    // The written run ranks them the same way.
    let mut out = Vec::new();
    near.write_trec(&mut out, "t").unwrap();
    assert!(String::from_utf8(out).unwrap().starts_with("q1 Q0 b 1 "));
    // -0 and 0 tie too.
    let zeros = Run::parse("q1 Q0 a 1 -0.0 r\nq1 Q0 b 2 0.0 r\n", "r").unwrap();
    assert_eq!(map_and_rr(&qrels, &zeros), (0.5, 0.5));
}

#[test]
fn a_byte_order_mark_is_stripped_from_qrels_and_runs() {
    let qrels = Qrels::parse("\u{feff}q1 0 a 1\n", "q").unwrap();
    assert!(qrels.queries.contains_key("q1"));
    let run = Run::parse("\u{feff}q1 Q0 a 1 1.0 r\n", "r").unwrap();
    assert!(run.queries.contains_key("q1"));
    assert_eq!(map_and_rr(&qrels, &run), (1.0, 1.0));
}

#[test]
fn non_utf8_files_are_rejected_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.run");
    std::fs::write(&path, b"q1 Q0 a 1 1.0 r\nq1 Q0 b\xff 2 0.5 r\n").unwrap();
    let e = Run::from_path(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:2: ", path.display())), "{e}");
    assert!(e.contains("not UTF-8"), "{e}");
    let path = dir.path().join("bad.qrels");
    std::fs::write(&path, b"\xfeq1 0 a 1\n").unwrap();
    let e = Qrels::from_path(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:1: ", path.display())), "{e}");
}

#[test]
fn in_memory_runs_are_validated_like_files() {
    use clir_eval::trec::ScoredDoc;
    let qrels = Qrels::parse("q1 0 a 1\nq2 0 b 1\n", "q").unwrap();
    let ms = MeasureSet::standard();
    let mut run = Run::default();
    run.queries.insert(
        "q1".into(),
        vec![ScoredDoc {
            docno: "a".into(),
            score: f64::NAN,
        }],
    );
    let e = evaluate(&qrels, &run, &ms, &EvalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not finite") && e.contains("'q1'"), "{e}");
    let doc = |d: &str, s: f64| ScoredDoc {
        docno: d.into(),
        score: s,
    };
    run.queries
        .insert("q1".into(), vec![doc("a", 1.0), doc("a", 0.5)]);
    let e = evaluate(&qrels, &run, &ms, &EvalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("duplicate document 'a'"), "{e}");
}

#[test]
fn an_empty_ranking_counts_as_a_query_absent_from_the_run() {
    use clir_eval::trec::ScoredDoc;
    let qrels = Qrels::parse("q1 0 a 1\nq2 0 b 1\n", "q").unwrap();
    let mut run = Run::default();
    run.queries.insert(
        "q1".into(),
        vec![ScoredDoc {
            docno: "a".into(),
            score: 1.0,
        }],
    );
    run.queries.insert("q2".into(), Vec::new());
    // Written out, q2 has no line, so trec_eval averages over q1 alone.
    let mut out = Vec::new();
    run.write_trec(&mut out, "t").unwrap();
    let reread = Run::parse(std::str::from_utf8(&out).unwrap(), "written").unwrap();
    assert_eq!(map_and_rr(&qrels, &run), map_and_rr(&qrels, &reread));
    assert_eq!(map_and_rr(&qrels, &run), (1.0, 1.0));
}
