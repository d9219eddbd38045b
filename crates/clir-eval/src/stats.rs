//! Paired significance tests between two runs over the same queries, and Holm–Bonferroni.
//!
//! With per-query differences `d_i = a_i − b_i`, `i = 1..n`:
//! * paired t-test: `t = d̄ / (s_d / √n)`, `s_d` the sample standard deviation (n − 1), two-sided
//!   `p = 2·P(T_{n−1} ≥ |t|)`;
//! * paired randomization (sign-flip permutation) test: under H0 each `d_i` is equally likely
//!   to have either sign; `p = (1 + #{perm : |mean(±d)| ≥ |d̄|}) / (1 + permutations)`;
//! * Holm–Bonferroni: sort the m p-values ascending, `p̃_(j) = max_{i≤j} min(1, (m − i + 1)·p_(i))`;
//! * confidence interval of a mean (Student t): `x̄ ± t_{(1+level)/2, n−1} · s/√n`, `s` the
//!   sample standard deviation (n − 1).

use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{EvalError, Result};
use crate::metrics::Evaluation;

/// Outcome of a paired two-sided t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    pub n: usize,
    pub mean_diff: f64,
    pub t: f64,
    pub df: f64,
    pub p_value: f64,
}

/// Outcome of a paired randomization test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomizationTest {
    pub n: usize,
    pub mean_diff: f64,
    pub permutations: usize,
    pub p_value: f64,
}

fn diffs(a: &[f64], b: &[f64]) -> Result<Vec<f64>> {
    if a.len() != b.len() {
        return Err(EvalError::Mismatch(format!(
            "paired samples of different sizes: {} and {}",
            a.len(),
            b.len()
        )));
    }
    if a.len() < 2 {
        return Err(EvalError::Invalid(format!(
            "a paired test needs at least 2 queries, got {}",
            a.len()
        )));
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.iter().any(|v| !v.is_finite()) {
        return Err(EvalError::Invalid("non-finite per-query value".into()));
    }
    Ok(d)
}

/// Two-sided Student-t tail: `2·P(T_df ≥ |t|)`.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) => (2.0 * dist.sf(t.abs())).min(1.0),
        Err(_) => f64::NAN,
    }
}

/// Paired two-sided t-test of `a` against `b` (same queries, same order).
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<TTest> {
    let d = diffs(a, b)?;
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    let (t, p) = if sd == 0.0 {
        if mean == 0.0 {
            (0.0, 1.0)
        } else {
            (mean.signum() * f64::INFINITY, 0.0)
        }
    } else {
        let t = mean / (sd / n.sqrt());
        (t, t_two_sided_p(t, n - 1.0))
    };
    Ok(TTest {
        n: d.len(),
        mean_diff: mean,
        t,
        df: n - 1.0,
        p_value: p,
    })
}

/// Paired randomization test with `permutations` random sign flips from a ChaCha8 stream
/// seeded with `seed` (reproducible).
pub fn paired_randomization_test(
    a: &[f64],
    b: &[f64],
    permutations: usize,
    seed: u64,
) -> Result<RandomizationTest> {
    let d = diffs(a, b)?;
    if permutations == 0 {
        return Err(EvalError::Invalid("permutations must be positive".into()));
    }
    let n = d.len() as f64;
    let observed = d.iter().sum::<f64>();
    // Compare sums (same ordering as means) with a relative tolerance for rounding.
    let thresh = observed.abs() * (1.0 - 1e-12) - 1e-15;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut extreme = 0usize;
    for _ in 0..permutations {
        let mut s = 0.0;
        let mut bits = 0u64;
        for (i, x) in d.iter().enumerate() {
            if i % 64 == 0 {
                bits = rng.random();
            }
            s += if bits & 1 == 1 { *x } else { -*x };
            bits >>= 1;
        }
        if s.abs() >= thresh {
            extreme += 1;
        }
    }
    Ok(RandomizationTest {
        n: d.len(),
        mean_diff: observed / n,
        permutations,
        p_value: (extreme + 1) as f64 / (permutations + 1) as f64,
    })
}

/// A two-sided confidence interval of a mean: `lower ≤ mean ≤ upper` at confidence `level`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// Sample size.
    pub n: usize,
    /// Sample mean `x̄`.
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
}

/// Student-t confidence interval of the mean of `values`:
/// `x̄ ± t_{(1+level)/2, n−1} · s/√n`, with `s² = Σ(x_i − x̄)²/(n − 1)` and `t_{q, n−1}` the
/// q-quantile of Student's t with n − 1 degrees of freedom (statrs).
///
/// The mean is computed shifted by the first value (`x̄ = x_1 + Σ(x_i − x_1)/n`), so equal
/// values give exactly that value and a zero-width interval. Errors for fewer than 2 values,
/// a `level` outside (0, 1) and non-finite values.
pub fn mean_confidence_interval(values: &[f64], level: f64) -> Result<ConfidenceInterval> {
    if values.len() < 2 {
        return Err(EvalError::Invalid(format!(
            "a confidence interval needs at least 2 values, got {}",
            values.len()
        )));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(EvalError::Invalid(format!(
            "confidence level must be in (0, 1), got {level}"
        )));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::Invalid(format!(
            "non-finite value {} at index {i} in a confidence interval",
            values[i]
        )));
    }
    let n = values.len() as f64;
    let x0 = values[0];
    let mean = x0 + values.iter().map(|x| x - x0).sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let half = if var == 0.0 {
        0.0
    } else {
        let dist = StudentsT::new(0.0, 1.0, n - 1.0)
            .map_err(|e| EvalError::Invalid(format!("Student t with {} df: {e}", n - 1.0)))?;
        dist.inverse_cdf((1.0 + level) / 2.0) * (var / n).sqrt()
    };
    Ok(ConfidenceInterval {
        n: values.len(),
        mean,
        lower: mean - half,
        upper: mean + half,
        level,
    })
}

/// Holm–Bonferroni adjusted p-values, in the input order. A p-value that is NaN or outside
/// [0, 1] is an error naming its position (it never silently becomes 1).
pub fn holm_bonferroni(p: &[f64]) -> Result<Vec<f64>> {
    if let Some((i, v)) = p
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        return Err(EvalError::Invalid(format!(
            "Holm–Bonferroni: p-value {v} of comparison {} (of {}) is not in [0, 1]",
            i + 1,
            p.len()
        )));
    }
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adj = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        let v = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(v);
        adj[i] = running;
    }
    Ok(adj)
}

/// Per-query values of `measure` for two evaluations over exactly the same queries:
/// `(qids, a, b)`. Errors when the query sets differ.
pub fn paired_values(
    a: &Evaluation,
    b: &Evaluation,
    measure: &str,
) -> Result<(Vec<String>, Vec<f64>, Vec<f64>)> {
    let va = a.per_query_values(measure)?;
    let vb = b.per_query_values(measure)?;
    let qa: Vec<&String> = va.iter().map(|x| &x.0).collect();
    let qb: Vec<&String> = vb.iter().map(|x| &x.0).collect();
    if qa != qb {
        let only_a = qa.iter().find(|q| !qb.contains(q));
        let only_b = qb.iter().find(|q| !qa.contains(q));
        return Err(EvalError::Mismatch(format!(
            "runs cover different queries ({} vs {}; e.g. only in first: {:?}, only in second: {:?})",
            qa.len(),
            qb.len(),
            only_a,
            only_b
        )));
    }
    Ok((
        va.iter().map(|x| x.0.clone()).collect(),
        va.iter().map(|x| x.1).collect(),
        vb.iter().map(|x| x.1).collect(),
    ))
}

/// Writes a per-query CSV: `qid,<name_a>,<name_b>,diff`.
pub fn write_paired_csv<W: Write>(
    w: W,
    qids: &[String],
    a: &[f64],
    b: &[f64],
    name_a: &str,
    name_b: &str,
) -> Result<()> {
    if qids.len() != a.len() || a.len() != b.len() {
        return Err(EvalError::Mismatch(
            "qids and values differ in length".into(),
        ));
    }
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record(["qid", name_a, name_b, "diff"])?;
    for ((q, x), y) in qids.iter().zip(a).zip(b) {
        wr.write_record([
            q.clone(),
            format!("{x:.6}"),
            format!("{y:.6}"),
            format!("{:.6}", x - y),
        ])?;
    }
    wr.flush().map_err(|e| EvalError::io("<csv output>", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_tail_matches_closed_forms() {
        // df = 1 is Cauchy: P(|T| > 1) = 0.5; df = 2: p = 1 − t/√(t² + 2).
        assert!((t_two_sided_p(1.0, 1.0) - 0.5).abs() < 1e-12);
        for t in [0.3f64, 1.0, 2.5, 7.0] {
            let want = 1.0 - t / (t * t + 2.0).sqrt();
            assert!((t_two_sided_p(t, 2.0) - want).abs() < 1e-10, "t={t}");
        }
        // Table value: t_{0.975, 10} = 2.228139.
        assert!((t_two_sided_p(2.228139, 10.0) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn t_test_by_hand() {
        // d = [1, 2, 3]: mean 2, sd 1, t = 2·√3, df 2.
        let r = paired_t_test(&[2.0, 4.0, 6.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((r.t - 2.0 * 3f64.sqrt()).abs() < 1e-12);
        let want = 1.0 - r.t / (r.t * r.t + 2.0).sqrt();
        assert!((r.p_value - want).abs() < 1e-10);
        let same = paired_t_test(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert_eq!(same.p_value, 1.0);
        let shift = paired_t_test(&[2.0, 3.0], &[1.0, 2.0]).unwrap();
        assert_eq!(shift.p_value, 0.0);
        assert!(paired_t_test(&[1.0], &[1.0]).is_err());
        assert!(paired_t_test(&[1.0, 2.0], &[1.0]).is_err());
    }

    #[test]
    fn randomization_agrees_with_exact_enumeration() {
        let a = [0.9, 0.7, 0.8, 0.4, 0.65, 0.3, 0.75];
        let b = [0.5, 0.6, 0.3, 0.45, 0.2, 0.1, 0.7];
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let obs: f64 = d.iter().sum::<f64>().abs();
        let n = d.len();
        let extreme = (0..1u32 << n)
            .filter(|mask| {
                let s: f64 = (0..n)
                    .map(|i| if mask >> i & 1 == 1 { d[i] } else { -d[i] })
                    .sum();
                s.abs() >= obs - 1e-12
            })
            .count();
        let exact = extreme as f64 / (1u32 << n) as f64;
        let r = paired_randomization_test(&a, &b, 20_000, 7).unwrap();
        assert!((r.p_value - exact).abs() < 0.01, "{} vs {exact}", r.p_value);
        // Reproducible for a seed.
        assert_eq!(r, paired_randomization_test(&a, &b, 20_000, 7).unwrap());
    }

    #[test]
    fn holm_by_hand() {
        let adj = holm_bonferroni(&[0.01, 0.04, 0.03, 0.5]).unwrap();
        // sorted: 0.01·4 = 0.04, 0.03·3 = 0.09, 0.04·2 = 0.08 → 0.09 (monotone), 0.5·1 = 0.5
        let want = [0.04, 0.09, 0.09, 0.5];
        for (g, w) in adj.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{adj:?}");
        }
        assert!(holm_bonferroni(&[]).unwrap().is_empty());
        assert_eq!(holm_bonferroni(&[0.6, 0.7]).unwrap(), vec![1.0, 1.0]);
        // A NaN p-value (a t-test over one query) is an error, never an adjusted 1.
        let err = holm_bonferroni(&[0.01, f64::NAN]).unwrap_err().to_string();
        assert!(err.contains("comparison 2 (of 2)"), "{err}");
        assert!(holm_bonferroni(&[1.5]).is_err());
    }

    #[test]
    fn paired_csv() {
        let mut out = Vec::new();
        write_paired_csv(
            &mut out,
            &["q1".into(), "q2".into()],
            &[0.5, 1.0],
            &[0.25, 1.0],
            "a",
            "b",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "qid,a,b,diff\nq1,0.500000,0.250000,0.250000\nq2,1.000000,1.000000,0.000000\n"
        );
    }
}
