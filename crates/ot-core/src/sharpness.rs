//! How sharp a transport plan is: whether it aligns tokens or spreads mass evenly.
//!
//! For one problem with `n` valid rows, `m` valid columns, plan `P` (total mass 1 in the
//! balanced case) and cost `C`:
//!
//! ```text
//! entropy ratio   H(P̂) / log(n·m),  P̂ = P / ΣP,  H(P̂) = −Σ P̂ᵢⱼ log P̂ᵢⱼ       (1 = uniform)
//! best-match mass (1/n) Σᵢ maxⱼ Pᵢⱼ / Σⱼ Pᵢⱼ                                  (1/m = uniform)
//! transport cost  ⟨P, C⟩ / ΣP      vs   mean cost (1/(n·m)) Σᵢⱼ Cᵢⱼ
//! ```
//!
//! A plan close to the independent coupling `a bᵀ` has an entropy ratio near 1, a best-match
//! mass near `1/m` and a transport cost near the mean cost: its loss is then a sentence-level
//! average, not a token alignment.

use crate::OtError;

/// Sharpness of one plan (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanSharpness {
    /// `H(P̂) / log(n·m)` in `[0, 1]`; 0 when `n·m = 1`.
    pub entropy_ratio: f64,
    /// Mean over valid rows of the share of the row's mass on its best column.
    pub best_match_mass: f64,
    /// `⟨P, C⟩ / ΣP` over valid entries.
    pub transport_cost: f64,
    /// Mean of `C` over valid entries.
    pub mean_cost: f64,
}

/// Sharpness of each plan of a padded batch read back to the host: `plan` and `cost` are
/// row-major `(B, n, m)`, `a` is `(B, n)` and `b` is `(B, m)`; zero weights mark padding.
pub fn batch_sharpness(
    plan: &[f32],
    cost: &[f32],
    a: &[f32],
    b: &[f32],
    [batch, n, m]: [usize; 3],
) -> Result<Vec<PlanSharpness>, OtError> {
    let want = batch * n * m;
    if plan.len() != want || cost.len() != want || a.len() != batch * n || b.len() != batch * m {
        return Err(OtError::BadParameter(format!(
            "plan sharpness of a ({batch}, {n}, {m}) batch got buffers of {}, {}, {} and {} values",
            plan.len(),
            cost.len(),
            a.len(),
            b.len()
        )));
    }
    (0..batch)
        .map(|k| {
            let rows: Vec<usize> = (0..n).filter(|&i| a[k * n + i] > 0.0).collect();
            let cols: Vec<usize> = (0..m).filter(|&j| b[k * m + j] > 0.0).collect();
            let at = |i: usize, j: usize| k * n * m + i * m + j;
            let total: f64 = rows
                .iter()
                .flat_map(|&i| cols.iter().map(move |&j| f64::from(plan[at(i, j)])))
                .sum();
            if rows.is_empty() || cols.is_empty() || !(total.is_finite() && total > 0.0) {
                return Err(OtError::BadParameter(format!(
                    "batch item {k}: a plan without valid mass has no sharpness"
                )));
            }
            let (mut entropy, mut transported, mut cost_sum, mut best) = (0.0, 0.0, 0.0, 0.0);
            for &i in &rows {
                let (mut row_mass, mut row_max) = (0.0f64, 0.0f64);
                for &j in &cols {
                    let p = f64::from(plan[at(i, j)]);
                    let c = f64::from(cost[at(i, j)]);
                    let q = p / total;
                    if q > 0.0 {
                        entropy -= q * q.ln();
                    }
                    transported += p * c;
                    cost_sum += c;
                    row_mass += p;
                    row_max = row_max.max(p);
                }
                if row_mass > 0.0 {
                    best += row_max / row_mass;
                }
            }
            let cells = (rows.len() * cols.len()) as f64;
            Ok(PlanSharpness {
                entropy_ratio: if cells > 1.0 {
                    entropy / cells.ln()
                } else {
                    0.0
                },
                best_match_mass: best / rows.len() as f64,
                transport_cost: transported / total,
                mean_cost: cost_sum / cells,
            })
        })
        .collect()
}

/// Mean of each field over a batch (empty batch: `None`).
pub fn mean_sharpness(items: &[PlanSharpness]) -> Option<PlanSharpness> {
    if items.is_empty() {
        return None;
    }
    let k = items.len() as f64;
    let sum = |f: fn(&PlanSharpness) -> f64| items.iter().map(f).sum::<f64>() / k;
    Some(PlanSharpness {
        entropy_ratio: sum(|s| s.entropy_ratio),
        best_match_mass: sum(|s| s.best_match_mass),
        transport_cost: sum(|s| s.transport_cost),
        mean_cost: sum(|s| s.mean_cost),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_and_permutation_plans_are_the_two_extremes() {
        // uniform coupling of 2 × 3
        let uniform = vec![1.0 / 6.0; 6];
        let cost = vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let a = [0.5, 0.5];
        let b = [1.0 / 3.0; 3];
        let s = batch_sharpness(&uniform, &cost, &a, &b, [1, 2, 3]).unwrap()[0];
        assert!((s.entropy_ratio - 1.0).abs() < 1e-6, "{s:?}");
        assert!((s.best_match_mass - 1.0 / 3.0).abs() < 1e-6);
        assert!((s.transport_cost - s.mean_cost).abs() < 1e-6);
        assert!((s.mean_cost - 2.5).abs() < 1e-12);
        // a permutation of 2 × 2 with a padded third column: entropy log 2 of log 4
        let perm = [0.5, 0.0, 0.0, 0.0, 0.5, 0.0];
        let b = [0.5, 0.5, 0.0];
        let cost = [0.1, 0.9, f32::NAN, 0.8, 0.2, f32::NAN];
        let s = batch_sharpness(&perm, &cost, &a, &b, [1, 2, 3]).unwrap()[0];
        assert!((s.entropy_ratio - 0.5).abs() < 1e-6, "{s:?}");
        assert!((s.best_match_mass - 1.0).abs() < 1e-12);
        assert!((s.transport_cost - 0.15).abs() < 1e-6);
        assert!((s.mean_cost - 0.5).abs() < 1e-6);
        // wrong buffer sizes and massless items are errors, not NaN
        assert!(batch_sharpness(&perm, &cost, &a, &b, [1, 2, 2]).is_err());
        let zero = [0.0f32; 6];
        assert!(batch_sharpness(&zero, &cost, &a, &b, [1, 2, 3]).is_err());
        let m = mean_sharpness(&[s, s]).unwrap();
        assert_eq!(m, s);
        assert!(mean_sharpness(&[]).is_none());
    }
}
