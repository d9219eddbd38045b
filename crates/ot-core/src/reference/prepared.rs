//! What both forms of the `f64` Sinkhorn iteration share: the validated problem
//! ([`Prepared`]), the plain log-domain iteration (the cross-check form, and the stabilised
//! form's fallback), the soft-min of a row, and the plan from potentials. `sinkhorn.rs` (the
//! public solvers) and `stabilized.rs` (the scaling form) both import from here, and neither
//! from the other.

use rayon::prelude::*;

use super::{CostMatrix, validate_marginal};
use crate::{OtError, SinkhornConfig};

/// The result of an entropic solve: the plan with its potentials and diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkhornSolution {
    pub rows: usize,
    pub cols: usize,
    /// Row-major transport plan.
    pub plan: Vec<f64>,
    /// Dual potential on the rows (cost units).
    pub f: Vec<f64>,
    /// Dual potential on the columns (cost units).
    pub g: Vec<f64>,
    /// `⟨P, C⟩`.
    pub transport_cost: f64,
    /// The dual objective at `(f, g)`; at convergence this is the entropic OT value
    /// `OT_ε(a, b) = ⟨P, C⟩ + ε KL(P ‖ a⊗b) [+ τ terms]`.
    pub entropic_cost: f64,
    /// Iterations run (each updates `f` and `g`).
    pub iterations: usize,
    /// `‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁` of the returned plan.
    pub marginal_error: f64,
    /// Whether the stopping criterion was met within `max_iter`.
    pub converged: bool,
}

/// Below this many cost entries a problem is solved on one thread.
pub(super) const PARALLEL_THRESHOLD: usize = 1 << 14;

/// Validated inputs shared by both forms of the iteration.
pub(super) struct Prepared<'c> {
    pub cost: &'c CostMatrix,
    pub cost_t: CostMatrix,
    pub a: &'c [f64],
    pub b: &'c [f64],
    pub log_a: Vec<f64>,
    pub log_b: Vec<f64>,
    pub sum_a: f64,
    pub sum_b: f64,
    pub f0: Vec<f64>,
    pub g0: Vec<f64>,
    pub parallel: bool,
}

impl<'c> Prepared<'c> {
    pub(super) fn new(
        cost: &'c CostMatrix,
        a: &'c [f64],
        b: &'c [f64],
        config: &SinkhornConfig,
        init: Option<(&[f64], &[f64])>,
    ) -> Result<Self, OtError> {
        config.validate()?;
        let (n, m) = (cost.rows(), cost.cols());
        let sum_a = validate_marginal("a", a, n)?;
        let sum_b = validate_marginal("b", b, m)?;
        if config.tau.is_none() && (sum_a - sum_b).abs() > 1e-9 * sum_a.max(sum_b) {
            return Err(OtError::MassMismatch { sum_a, sum_b });
        }
        let (f0, g0) = match init {
            Some((f0, g0)) => {
                if f0.len() != n || g0.len() != m {
                    return Err(OtError::BadParameter(format!(
                        "warm-start potentials have lengths ({}, {}), expected ({n}, {m})",
                        f0.len(),
                        g0.len()
                    )));
                }
                if let Some(index) = f0.iter().chain(g0).position(|v| !v.is_finite()) {
                    return Err(OtError::NonFinite {
                        what: "warm-start potential",
                        index,
                    });
                }
                (f0.to_vec(), g0.to_vec())
            }
            None => (vec![0.0; n], vec![0.0; m]),
        };
        Ok(Self {
            cost,
            cost_t: cost.transposed(),
            a,
            b,
            log_a: a.iter().map(|w| w.ln()).collect(),
            log_b: b.iter().map(|w| w.ln()).collect(),
            sum_a,
            sum_b,
            f0,
            g0,
            parallel: n * m >= PARALLEL_THRESHOLD,
        })
    }

    /// Plan, costs and diagnostics from final potentials.
    pub(super) fn finish(
        &self,
        config: &SinkhornConfig,
        f: Vec<f64>,
        g: Vec<f64>,
        iterations: usize,
        converged: bool,
    ) -> Result<SinkhornSolution, OtError> {
        if f.iter().chain(&g).any(|v| !v.is_finite()) {
            return Err(OtError::NonFiniteResult {
                what: "dual potential",
            });
        }
        let (a, b, cost) = (self.a, self.b, self.cost);
        let eps = config.epsilon;
        let plan = plan_from_potentials(cost, &self.log_a, &self.log_b, &f, &g, 1.0 / eps);
        let transport_cost = cost.frobenius(&plan);
        let marginal_error = super::marginal_error(&plan, a, b);
        let mass: f64 = plan.iter().sum();
        let mass_term = eps * (mass - self.sum_a * self.sum_b);
        let entropic_cost = match config.tau {
            None => dot(a, &f) + dot(b, &g) - mass_term,
            Some(tau) => {
                let phi = |w: &[f64], p: &[f64]| -> f64 {
                    w.iter()
                        .zip(p)
                        .map(|(wi, pi)| wi * ((-pi / tau).exp() - 1.0))
                        .sum()
                };
                -tau * phi(a, &f) - tau * phi(b, &g) - mass_term
            }
        };
        if !transport_cost.is_finite() || !entropic_cost.is_finite() {
            return Err(OtError::NonFiniteResult {
                what: "transport cost",
            });
        }
        Ok(SinkhornSolution {
            rows: cost.rows(),
            cols: cost.cols(),
            plan,
            f,
            g,
            transport_cost,
            entropic_cost,
            iterations,
            marginal_error,
            converged,
        })
    }
}

/// Up to `max_iter` log-domain iterations from the potentials `(f, g)`.
pub(super) fn log_domain_iterate(
    problem: &Prepared<'_>,
    config: &SinkhornConfig,
    (mut f, mut g): (Vec<f64>, Vec<f64>),
    max_iter: usize,
) -> Result<(Vec<f64>, Vec<f64>, usize, bool), OtError> {
    let (cost, a) = (problem.cost, problem.a);
    let (n, m) = (cost.rows(), cost.cols());
    let eps = config.epsilon;
    let inv_eps = 1.0 / eps;
    let lambda = config.damping();
    let balanced = config.tau.is_none();
    let (log_a, log_b) = (&problem.log_a, &problem.log_b);
    let (cost_t, parallel) = (&problem.cost_t, problem.parallel);

    let mut f_next = vec![0.0; n];
    let mut g_next = vec![0.0; m];
    let mut lse = vec![0.0; n];
    let mut iterations = 0;
    let mut converged = false;

    for it in 1..=max_iter {
        // f step: lse_i = LSE_j(log b_j + (g_j − C_ij)/ε).
        soft_min_rows(cost, log_b, &g, inv_eps, &mut lse, parallel);
        if balanced && it > 1 {
            // Row sums of the current plan: P1_i = a_i exp(f_i/ε + lse_i).
            let row_error: f64 = (0..n)
                .map(|i| ((log_a[i] + f[i] * inv_eps + lse[i]).exp() - a[i]).abs())
                .sum();
            if !row_error.is_finite() {
                return Err(OtError::NonFiniteResult {
                    what: "marginal error",
                });
            }
            if row_error <= config.tol {
                converged = true;
                break;
            }
        }
        for i in 0..n {
            f_next[i] = -lambda * eps * lse[i];
        }
        // g step against the new f.
        let mut lse_cols = std::mem::take(&mut g_next);
        soft_min_rows(cost_t, log_a, &f_next, inv_eps, &mut lse_cols, parallel);
        for v in lse_cols.iter_mut() {
            *v *= -lambda * eps;
        }
        g_next = lse_cols;
        iterations = it;
        let change = if balanced {
            0.0
        } else {
            max_abs_diff(&f, &f_next).max(max_abs_diff(&g, &g_next))
        };
        std::mem::swap(&mut f, &mut f_next);
        std::mem::swap(&mut g, &mut g_next);
        if !balanced && change <= config.tol {
            converged = true;
            break;
        }
    }
    Ok((f, g, iterations, converged))
}

/// For every row `i` of `cost`: `out_i = LSE_j(log_w_j + (pot_j − C_ij) · inv_eps)`.
pub(super) fn soft_min_rows(
    cost: &CostMatrix,
    log_w: &[f64],
    pot: &[f64],
    inv_eps: f64,
    out: &mut [f64],
    parallel: bool,
) {
    let m = cost.cols();
    // Fold the column terms once: s_j = log w_j + pot_j/ε, then x_ij = s_j − C_ij/ε.
    let shift: Vec<f64> = log_w
        .iter()
        .zip(pot)
        .map(|(lw, p)| lw + p * inv_eps)
        .collect();
    let row = |(crow, o): (&[f64], &mut f64)| {
        let mut max = f64::NEG_INFINITY;
        for (s, c) in shift.iter().zip(crow) {
            let x = s - c * inv_eps;
            if x > max {
                max = x;
            }
        }
        let sum: f64 = shift
            .iter()
            .zip(crow)
            .map(|(s, c)| (s - c * inv_eps - max).exp())
            .sum();
        *o = max + sum.ln();
    };
    if parallel {
        cost.data()
            .par_chunks_exact(m)
            .zip(out.par_iter_mut())
            .for_each(row);
    } else {
        cost.data()
            .chunks_exact(m)
            .zip(out.iter_mut())
            .for_each(row);
    }
}

pub(super) fn plan_from_potentials(
    cost: &CostMatrix,
    log_a: &[f64],
    log_b: &[f64],
    f: &[f64],
    g: &[f64],
    inv_eps: f64,
) -> Vec<f64> {
    let m = cost.cols();
    let mut plan = vec![0.0; cost.data().len()];
    plan.par_chunks_exact_mut(m)
        .zip(cost.data().par_chunks_exact(m))
        .enumerate()
        .for_each(|(i, (prow, crow))| {
            let ri = log_a[i] + f[i] * inv_eps;
            for j in 0..m {
                prow[j] = (ri + log_b[j] + (g[j] - crow[j]) * inv_eps).exp();
            }
        });
    plan
}

pub(super) fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(p, q)| p * q).sum()
}

pub(super) fn max_abs_diff(x: &[f64], y: &[f64]) -> f64 {
    x.iter()
        .zip(y)
        .fold(0.0_f64, |acc, (p, q)| acc.max((p - q).abs()))
}
