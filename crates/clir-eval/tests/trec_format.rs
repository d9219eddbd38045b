//! The one TREC qrels/run reader and writer (`clir_eval::trec`, also used by clir-data):
//! examples of each rule, and properties — arbitrary bytes never panic and every error names
//! the source and a line of it; what the writers write reads back equal.

use clir_eval::trec::{Qrels, Run, ScoredDoc};
use clir_eval::{EvalError, EvalOptions, MeasureSet, evaluate};
use proptest::prelude::*;

#[test]
fn qrels_rules() {
    let q = Qrels::parse("q1 0 d1 1\n\n  \nq1 0 d2 2\n", "f.qrels").unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q.queries["q1"].judgments["d2"], 2);
    for (bad, want) in [
        ("q1 0 d1\n", "f.qrels:1: expected 4 fields"),
        ("q1 0 d1 x\n", "f.qrels:1: relevance 'x' is not an integer"),
        (
            "q1 0 d1 1\nq1 0 d1 0\n",
            "f.qrels:2: duplicate document 'd1'",
        ),
    ] {
        let e = Qrels::parse(bad, "f.qrels").unwrap_err().to_string();
        assert!(e.starts_with(want), "{bad:?}: {e}");
    }
    // A per-line id check (clir-data's collection loader checks ids against its files).
    let e = Qrels::parse_checked("q1 0 d1 1\nq1 0 d9 1\n", "f.qrels", |_, d| {
        if d == "d9" {
            Err(format!("unknown document id {d:?}"))
        } else {
            Ok(())
        }
    })
    .unwrap_err()
    .to_string();
    assert_eq!(e, "f.qrels:2: unknown document id \"d9\"");
}

#[test]
fn in_memory_qrels_get_the_file_checks_and_write_in_byte_order() {
    let q = Qrels::from_judgments([("q2", "b", 1), ("q1", "z", 0), ("q1", "a", 2)], "mem").unwrap();
    let mut out = Vec::new();
    q.write_trec(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, "q1 0 a 2\nq1 0 z 0\nq2 0 b 1\n");
    assert_eq!(Qrels::parse(&text, "back").unwrap(), q);
    let e = Qrels::from_judgments([("q", "d", 1), ("q", "d", 0)], "mem").unwrap_err();
    assert!(e.to_string().contains("judged twice"), "{e}");
    for (qid, docno) in [("q 1", "d"), ("q", ""), ("q", "d\t2")] {
        let e = Qrels::from_judgments([(qid, docno, 1)], "mem").unwrap_err();
        assert!(e.to_string().contains("whitespace"), "{e}");
    }
}

#[test]
fn runs_refuse_ids_and_tags_a_trec_file_cannot_hold() {
    let run = Run::from_triples([("q", "d 1", 1.0)]);
    assert!(run.unwrap_err().to_string().contains("whitespace"));
    let run = Run::from_triples([("q", "d", 1.0)]).unwrap();
    assert!(run.write_trec(Vec::new(), "my tag").is_err());
    assert!(run.write_trec(Vec::new(), "").is_err());
}

/// The source name and the 1-based line an error names, if it names one.
fn source_and_line(e: &EvalError) -> Option<(&str, usize)> {
    match e {
        EvalError::Parse {
            source_name, line, ..
        }
        | EvalError::Duplicate {
            source_name, line, ..
        } => Some((source_name.as_str(), *line)),
        _ => None,
    }
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,6}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary text never panics either reader, and an error names the source and a line
    /// that exists.
    #[test]
    fn arbitrary_text_gives_records_or_a_located_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let lines = text.lines().count().max(1);
        for e in [Qrels::parse(&text, "src.txt").err(), Run::parse(&text, "src.txt").err()].into_iter().flatten() {
            let (src, line) = source_and_line(&e).unwrap_or_else(|| panic!("unlocated error: {e}"));
            prop_assert_eq!(src, "src.txt");
            prop_assert!((1..=lines).contains(&line), "line {} of {}: {}", line, lines, e);
            let prefix = format!("src.txt:{}: ", line);
            prop_assert!(e.to_string().starts_with(&prefix));
        }
    }

    /// Near-miss lines (one field broken or missing) are errors on exactly that line.
    #[test]
    fn a_broken_line_is_named(
        good in proptest::collection::vec((id(), id(), 0i64..3), 1..8),
        at in 0usize..8,
        how in 0usize..3,
    ) {
        let at = at % good.len();
        let mut seen = std::collections::HashSet::new();
        let good: Vec<_> = good.into_iter().filter(|(q, d, _)| seen.insert((q.clone(), d.clone()))).collect();
        let at = at.min(good.len() - 1);
        let line = |i: usize, (q, d, r): &(String, String, i64)| match (i == at, how) {
            (false, _) => format!("{q} 0 {d} {r}"),
            (true, 0) => format!("{q} 0 {d}"),
            (true, 1) => format!("{q} 0 {d} {r}.5"),
            (true, _) => format!("{q} 0 {d} {r} extra"),
        };
        let text: Vec<String> = good.iter().enumerate().map(|(i, g)| line(i, g)).collect();
        let e = Qrels::parse(&text.join("\n"), "q.txt").unwrap_err();
        prop_assert_eq!(source_and_line(&e), Some(("q.txt", at + 1)));
    }

    /// What the writers write reads back equal, and a written run evaluates like the
    /// in-memory one.
    #[test]
    fn writers_round_trip(
        judged in proptest::collection::btree_map((id(), id()), -1i64..4, 0..20),
        scores in proptest::collection::btree_map((id(), id()), -1e6f64..1e6, 1..20),
    ) {
        let qrels = Qrels::from_judgments(judged.iter().map(|((q, d), r)| (q.as_str(), d.as_str(), *r)), "mem").unwrap();
        let mut buf = Vec::new();
        qrels.write_trec(&mut buf).unwrap();
        prop_assert_eq!(&Qrels::parse(std::str::from_utf8(&buf).unwrap(), "w").unwrap(), &qrels);

        let run = Run::from_triples(scores.iter().map(|((q, d), s)| (q.as_str(), d.as_str(), *s))).unwrap();
        let mut buf = Vec::new();
        run.write_trec(&mut buf, "tag").unwrap();
        let back = Run::parse(std::str::from_utf8(&buf).unwrap(), "w").unwrap();
        for (qid, docs) in &run.queries {
            let mut a: Vec<&ScoredDoc> = docs.iter().collect();
            let mut b: Vec<&ScoredDoc> = back.queries[qid].iter().collect();
            a.sort_by(|x, y| x.docno.cmp(&y.docno));
            b.sort_by(|x, y| x.docno.cmp(&y.docno));
            prop_assert_eq!(a, b);
        }
        if !qrels.is_empty() {
            let ms = MeasureSet::standard();
            let opts = EvalOptions::default();
            let a = evaluate(&qrels, &run, &ms, &opts).ok();
            let b = evaluate(&qrels, &back, &ms, &opts).ok();
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn ir_measures_names_map_to_the_same_trec_eval_measures() {
    let names = |specs: &[&str]| -> Vec<String> {
        MeasureSet::parse(specs)
            .unwrap()
            .measures()
            .iter()
            .map(|m| m.name())
            .collect()
    };
    assert_eq!(
        names(&[
            "AP",
            "RR",
            "Bpref",
            "nDCG@10",
            "P@5",
            "R@100",
            "RR@10",
            "Judged@10"
        ]),
        names(&[
            "map",
            "recip_rank",
            "bpref",
            "ndcg_cut.10",
            "P.5",
            "recall.100",
            "recip_rank_cut.10",
            "judged.10"
        ])
    );
    // Output names, in trec_eval's order, the two non-trec_eval families placed after their kin.
    assert_eq!(
        names(&["Judged@10", "RR@10", "RR", "Bpref", "AP"]),
        [
            "map",
            "bpref",
            "recip_rank",
            "recip_rank_cut_10",
            "judged_10"
        ]
    );
    for bad in [
        "nDCG", "Judged", "nDCG@0", "RR@0", "Judged@x", "P@x", "ERR@10", "bpref.5",
    ] {
        let e = MeasureSet::parse(&[bad]).unwrap_err().to_string();
        assert!(e.contains(bad), "{bad}: {e}");
    }
}
