//! Confidence intervals (`stats::mean_confidence_interval`, `ResultsTable::ci`) and pairwise
//! comparison tables (`report::ComparisonTable`) against scipy.
//!
//! The expected numbers are the printed output of
//! `python3 crates/clir-eval/tests/reference/comparisons_reference.py` (scipy 1.17.1:
//! `scipy.stats.t.interval`, `scipy.stats.ttest_rel`, Holm–Bonferroni by hand), pasted below;
//! the fixture here is the script's `FIXTURE`. Tolerance: 1e-10 relative (`close`; the values
//! agreed to 1e-14 when this was written).

use clir_eval::EvalError;
use clir_eval::report::{ComparisonTable, PerQuery, ResultsTable, SigTest};
use clir_eval::stats::{mean_confidence_interval, paired_randomization_test};

const LANGS: [&str; 2] = ["sw", "so"];

/// `FIXTURE` of comparisons_reference.py: per-query values for q1..q6.
const FIXTURE: [(&str, [[f64; 6]; 2]); 3] = [
    (
        "optical",
        [
            [0.61, 0.48, 0.735, 0.52, 0.66, 0.405],
            [0.33, 0.41, 0.285, 0.47, 0.39, 0.355],
        ],
    ),
    (
        "mse",
        [
            [0.52, 0.43, 0.6, 0.455, 0.58, 0.35],
            [0.35, 0.385, 0.31, 0.44, 0.42, 0.36],
        ],
    ),
    (
        "zeroshot",
        [
            [0.62, 0.515, 0.79, 0.58, 0.71, 0.49],
            [0.21, 0.3, 0.18, 0.33, 0.27, 0.26],
        ],
    ),
];

/// Script output, "# cells": method, language, n, mean, lower, upper.
const REF_CELLS: [(&str, &str, usize, f64, f64, f64); 6] = [
    (
        "optical",
        "sw",
        6,
        0.5683333333333334,
        0.4400329411842706,
        0.6966337254823961,
    ),
    (
        "optical",
        "so",
        6,
        0.3733333333333333,
        0.3053491246444664,
        0.4413175420222002,
    ),
    (
        "mse",
        "sw",
        6,
        0.4891666666666667,
        0.3890339707578896,
        0.5892993625754438,
    ),
    (
        "mse",
        "so",
        6,
        0.37749999999999995,
        0.3274176150517812,
        0.4275823849482187,
    ),
    (
        "zeroshot",
        "sw",
        6,
        0.6175,
        0.4964845531741089,
        0.7385154468258912,
    ),
    (
        "zeroshot",
        "so",
        6,
        0.25833333333333336,
        0.19993465224772042,
        0.3167320144189463,
    ),
];

/// Script output, "# comparisons": reference, other, language, n, mean_diff, lower, upper,
/// p_value, p_holm.
#[allow(clippy::type_complexity)]
const REF_COMPARISONS: [(&str, &str, &str, usize, f64, f64, f64, f64, f64); 4] = [
    (
        "optical",
        "mse",
        "sw",
        6,
        0.07916666666666668,
        0.04641205598982363,
        0.11192127734350972,
        0.001578427552578156,
        0.004735282657734468,
    ),
    (
        "optical",
        "mse",
        "so",
        6,
        -0.00416666666666667,
        -0.031414968850589815,
        0.023081635517256477,
        0.7104609329306552,
        0.7104609329306552,
    ),
    (
        "optical",
        "zeroshot",
        "sw",
        6,
        -0.04916666666666666,
        -0.07559425387047766,
        -0.022739079462855652,
        0.0049601627513553665,
        0.009920325502710733,
    ),
    (
        "optical",
        "zeroshot",
        "so",
        6,
        0.11499999999999999,
        0.0987422129750653,
        0.13125778702493468,
        9.246829487058688e-06,
        3.6987317948234754e-05,
    ),
];

const TOL: f64 = 1e-10;

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= TOL * want.abs().max(1e-300)
}

#[track_caller]
fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        close(got, want),
        "{what}: got {got:e}, want {want:e} (rel {:e})",
        ((got - want) / want).abs()
    );
}

fn s(x: &str) -> String {
    x.to_string()
}

fn fixture() -> PerQuery {
    let mut pq = PerQuery::new();
    for (m, per_lang) in FIXTURE {
        for (l, vals) in LANGS.iter().zip(per_lang) {
            let v = vals
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("q{}", i + 1), *x))
                .collect();
            pq.insert((s(m), s(l)), v);
        }
    }
    pq
}

fn methods() -> Vec<String> {
    FIXTURE.iter().map(|(m, _)| s(m)).collect()
}

fn langs() -> Vec<String> {
    LANGS.iter().map(|l| s(l)).collect()
}

fn pairs() -> Vec<(String, String)> {
    vec![(s("optical"), s("mse")), (s("optical"), s("zeroshot"))]
}

fn comparisons(test: SigTest) -> ComparisonTable {
    ComparisonTable::from_per_query("nDCG@10", &pairs(), langs(), &fixture(), test, 0.05).unwrap()
}

#[test]
fn results_table_ci_matches_scipy() {
    for baseline in [None, Some("mse")] {
        let t = ResultsTable::from_per_query(
            "nDCG@10",
            methods(),
            langs(),
            &fixture(),
            baseline,
            SigTest::TTest,
            0.05,
        )
        .unwrap();
        for (m, l, n, mean, lower, upper) in REF_CELLS {
            let mi = t.methods.iter().position(|x| x == m).unwrap();
            let li = t.languages.iter().position(|x| x == l).unwrap();
            let ci = t.ci[mi][li].expect("ci filled");
            assert_eq!(ci.n, n);
            assert_eq!(ci.level, 0.95);
            assert_close(ci.mean, mean, &format!("{m}/{l} mean"));
            assert_close(ci.lower, lower, &format!("{m}/{l} lower"));
            assert_close(ci.upper, upper, &format!("{m}/{l} upper"));
            assert_close(t.values[mi][li], mean, &format!("{m}/{l} value"));
        }
        let md = t.ci_markdown();
        assert!(md.starts_with("| nDCG@10 (95% CI) | sw | so |\n|---|---:|---:|\n"));
        assert!(
            md.contains("| optical | [0.4400, 0.6966] | [0.3053, 0.4413] |\n"),
            "{md}"
        );
        assert_eq!(md.lines().count(), 2 + 3, "{md}");
    }
}

#[test]
fn results_table_ci_none_without_per_query_or_with_one_query() {
    let t = ResultsTable::from_values("m", vec![s("a")], vec![s("x")], vec![vec![0.5]]).unwrap();
    assert_eq!(t.ci, vec![vec![None]]);
    assert_eq!(
        t.ci_markdown(),
        "| m (95% CI) | x |\n|---|---:|\n| a | – |\n"
    );
    let mut pq = PerQuery::new();
    pq.insert((s("a"), s("x")), vec![(s("q1"), 0.25)]);
    pq.insert((s("a"), s("y")), vec![(s("q1"), 0.25), (s("q2"), 0.75)]);
    let t = ResultsTable::from_per_query(
        "m",
        vec![s("a")],
        vec![s("x"), s("y")],
        &pq,
        None,
        SigTest::TTest,
        0.05,
    )
    .unwrap();
    assert!(t.ci[0][0].is_none(), "one query: no interval");
    let ci = t.ci[0][1].unwrap();
    // n = 2: 0.5 ± t_{0.975,1}·(0.25·√2)/√2 = 0.5 ± 12.7062047361747·0.25.
    assert_eq!(ci.n, 2);
    assert!((ci.upper - ci.lower - 2.0 * 12.706_204_736_174_7 * 0.25).abs() < 1e-9);
    assert!(t.ci_markdown().contains("| a | – | [-2.6766, 3.6766] |"));
}

#[test]
fn comparisons_match_scipy() {
    let t = comparisons(SigTest::TTest);
    assert_eq!(t.comparisons.len(), 4);
    assert_eq!(t.languages, langs());
    for (i, (r, o, l, n, mean, lower, upper, p, ph)) in REF_COMPARISONS.into_iter().enumerate() {
        let c = t.get(r, o, l).expect("comparison present");
        assert_eq!(c, &t.comparisons[i], "pair-major order");
        assert_eq!(c.n, n);
        assert_eq!(c.diff_ci.n, n);
        assert_eq!(c.diff_ci.level, 0.95);
        assert_eq!(c.mean_diff, c.diff_ci.mean);
        let what = format!("{r} vs {o} on {l}");
        assert_close(c.mean_diff, mean, &format!("{what}: mean_diff"));
        assert_close(c.diff_ci.lower, lower, &format!("{what}: lower"));
        assert_close(c.diff_ci.upper, upper, &format!("{what}: upper"));
        assert_close(c.p_value, p, &format!("{what}: p"));
        assert_close(c.p_holm, ph, &format!("{what}: p_holm"));
        assert_eq!(c.significant, ph < 0.05, "{what}");
    }
    assert!(t.get("mse", "optical", "sw").is_none(), "pairs are ordered");
    assert!(t.get("optical", "mse", "xx").is_none());
}

#[test]
fn comparison_markdown_marks_and_footnote() {
    let md = comparisons(SigTest::TTest).to_markdown();
    let want = "\
| nDCG@10 | sw | so |
|---|---:|---:|
| optical vs mse | +0.0792▲ (p=0.00474) | -0.0042 (p=0.710) |
| optical vs zeroshot | -0.0492▼ (p=0.00992) | +0.1150▲ (p<0.001) |

Differences are reference − other, mean over queries. Paired two-sided t-test; p is \
Holm–Bonferroni adjusted over all 4 comparisons of the table; ▲/▼: significantly higher/lower \
(adjusted p < 0.05).
";
    assert_eq!(md, want);
    assert_eq!(md.matches('▲').count(), 2 + 1, "two marks and the footnote");
    assert_eq!(md.matches('▼').count(), 1 + 1, "one mark and the footnote");
}

#[test]
fn randomization_comparisons_use_the_same_test() {
    let test = SigTest::Randomization {
        permutations: 4000,
        seed: 11,
    };
    let t = comparisons(test);
    let pq = fixture();
    let vals = |m: &str, l: &str| -> Vec<f64> { pq[&(s(m), s(l))].iter().map(|x| x.1).collect() };
    for c in &t.comparisons {
        let r = paired_randomization_test(
            &vals(&c.reference, &c.language),
            &vals(&c.other, &c.language),
            4000,
            11,
        )
        .unwrap();
        assert_eq!(c.p_value, r.p_value);
    }
    let md = t.to_markdown();
    assert!(
        md.contains(
            "Paired randomization test (4000 random sign flips, seed 11); p is Holm–Bonferroni \
             adjusted over all 4 comparisons of the table"
        ),
        "{md}"
    );
    let back: ComparisonTable = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back.test, test);
    assert_eq!(back.comparisons.len(), 4);
}

#[test]
fn missing_language_is_an_error_naming_both_methods() {
    let mut pq = fixture();
    pq.remove(&(s("zeroshot"), s("so")));
    let e = ComparisonTable::from_per_query("m", &pairs(), langs(), &pq, SigTest::TTest, 0.05)
        .unwrap_err();
    assert!(matches!(e, EvalError::UnknownId(_)), "{e}");
    let msg = e.to_string();
    for word in ["optical", "zeroshot", "so"] {
        assert!(msg.contains(word), "{msg}");
    }
    let mut l = langs();
    l.push(s("ha"));
    let e = ComparisonTable::from_per_query("m", &pairs(), l, &fixture(), SigTest::TTest, 0.05)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown id: no per-query values for optical / ha (comparing optical with mse on ha)"
    );
}

#[test]
fn partial_results_leave_out_only_the_missing_comparisons() {
    let mut pq = fixture();
    pq.remove(&(s("zeroshot"), s("so")));
    let all = comparisons(SigTest::TTest);
    let t = ComparisonTable::from_available_per_query(
        "nDCG@10",
        &pairs(),
        langs(),
        &pq,
        SigTest::TTest,
        0.05,
    )
    .unwrap();
    assert_eq!(t.comparisons.len(), all.comparisons.len() - 1);
    assert!(t.get("optical", "zeroshot", "so").is_none());
    assert!(t.to_markdown().contains("–"), "{}", t.to_markdown());
    // The tests made are the same; only the Holm adjustment runs over fewer of them.
    let raw: Vec<f64> = t.comparisons.iter().map(|c| c.p_value).collect();
    for c in &t.comparisons {
        let full = all.get(&c.reference, &c.other, &c.language).unwrap();
        assert_eq!(c.p_value, full.p_value);
        assert_eq!(c.mean_diff, full.mean_diff);
    }
    let holm = clir_eval::stats::holm_bonferroni(&raw).unwrap();
    for (c, h) in t.comparisons.iter().zip(holm) {
        assert_eq!(c.p_holm, h);
    }
    // Complete results: the same table as the strict constructor.
    let same = ComparisonTable::from_available_per_query(
        "nDCG@10",
        &pairs(),
        langs(),
        &fixture(),
        SigTest::TTest,
        0.05,
    )
    .unwrap();
    assert_eq!(same, all);
    // Different queries of two present methods stay an error.
    let mut bad = fixture();
    bad.get_mut(&(s("mse"), s("sw"))).unwrap()[2].0 = s("q99");
    assert!(
        ComparisonTable::from_available_per_query(
            "m",
            &pairs(),
            langs(),
            &bad,
            SigTest::TTest,
            0.05
        )
        .is_err()
    );
}

#[test]
fn mismatched_qids_are_an_error() {
    let mut pq = fixture();
    pq.get_mut(&(s("mse"), s("sw"))).unwrap()[2].0 = s("q99");
    let e = ComparisonTable::from_per_query("m", &pairs(), langs(), &pq, SigTest::TTest, 0.05)
        .unwrap_err();
    assert!(matches!(e, EvalError::Mismatch(_)), "{e}");
    assert!(
        e.to_string()
            .contains("optical and mse cover different queries on sw"),
        "{e}"
    );
    let mut pq = fixture();
    pq.get_mut(&(s("mse"), s("so"))).unwrap().pop();
    assert!(
        ComparisonTable::from_per_query("m", &pairs(), langs(), &pq, SigTest::TTest, 0.05).is_err()
    );
}

#[test]
fn bad_pairs_alpha_and_small_samples_are_errors() {
    let pq = fixture();
    let run = |pairs: &[(String, String)], alpha: f64| {
        ComparisonTable::from_per_query("m", pairs, langs(), &pq, SigTest::TTest, alpha)
    };
    assert!(run(&[(s("mse"), s("mse"))], 0.05).is_err());
    let twice = [(s("optical"), s("mse")), (s("optical"), s("mse"))];
    assert!(run(&twice, 0.05).is_err());
    for alpha in [0.0, 1.0, -0.1, f64::NAN] {
        assert!(run(&pairs(), alpha).is_err(), "alpha {alpha}");
    }
    let empty = run(&[], 0.05).unwrap();
    assert!(empty.comparisons.is_empty());
    // One query: no paired test and no interval.
    let mut one = PerQuery::new();
    one.insert((s("a"), s("x")), vec![(s("q1"), 0.5)]);
    one.insert((s("b"), s("x")), vec![(s("q1"), 0.25)]);
    let e = ComparisonTable::from_per_query(
        "m",
        &[(s("a"), s("b"))],
        vec![s("x")],
        &one,
        SigTest::TTest,
        0.05,
    );
    assert!(e.is_err());
}

#[test]
fn ci_of_equal_values_has_zero_width() {
    for v in [0.1, 0.3, 1.0 / 3.0, 0.0] {
        let ci = mean_confidence_interval(&[v; 7], 0.95).unwrap();
        assert_eq!((ci.n, ci.mean, ci.lower, ci.upper), (7, v, v, v));
    }
    // Equal per-query differences: zero-width diff_ci, p = 0 from the t-test.
    let mut pq = PerQuery::new();
    let q = |vals: &[f64]| -> Vec<(String, f64)> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| (format!("q{i}"), *v))
            .collect()
    };
    pq.insert((s("a"), s("x")), q(&[0.5, 0.75, 0.25]));
    pq.insert((s("b"), s("x")), q(&[0.25, 0.5, 0.0]));
    let t = ComparisonTable::from_per_query(
        "m",
        &[(s("a"), s("b"))],
        vec![s("x")],
        &pq,
        SigTest::TTest,
        0.05,
    )
    .unwrap();
    let c = &t.comparisons[0];
    assert_eq!(c.diff_ci.lower, c.diff_ci.upper);
    assert_eq!(c.mean_diff, 0.25);
    assert_eq!(c.p_value, 0.0);
    assert!(t.to_markdown().contains("| a vs b | +0.2500▲ (p<0.001) |"));
}

#[test]
fn ci_input_errors() {
    for values in [&[][..], &[0.5][..]] {
        let e = mean_confidence_interval(values, 0.95).unwrap_err();
        assert!(matches!(e, EvalError::Invalid(_)));
        assert!(e.to_string().contains("at least 2 values"), "{e}");
    }
    for level in [0.0, 1.0, 1.5, -0.5, f64::NAN] {
        let e = mean_confidence_interval(&[0.1, 0.2], level).unwrap_err();
        assert!(e.to_string().contains("confidence level"), "{e}");
    }
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = mean_confidence_interval(&[0.1, bad, 0.2], 0.95).unwrap_err();
        assert!(e.to_string().contains("non-finite"), "{e}");
    }
    // Against the closed form for df = 1 (Cauchy): t_{0.975,1} = tan(0.475π).
    let ci = mean_confidence_interval(&[1.0, 3.0], 0.95).unwrap();
    let t975 = (0.475 * std::f64::consts::PI).tan();
    assert_close(ci.upper, 2.0 + t975, "df=1 upper");
    assert_close(ci.lower, 2.0 - t975, "df=1 lower");
    // A 50% interval is narrower than a 99% one.
    let v = [0.1, 0.4, 0.35, 0.2];
    let (a, b) = (
        mean_confidence_interval(&v, 0.5).unwrap(),
        mean_confidence_interval(&v, 0.99).unwrap(),
    );
    assert!(a.upper - a.lower < b.upper - b.lower);
}
