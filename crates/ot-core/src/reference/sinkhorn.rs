//! Log-domain Sinkhorn (balanced and unbalanced), ε-scaling and the debiased Sinkhorn
//! divergence, in `f64`.
//!
//! One iteration is, with `λ = τ/(τ+ε)` (`λ = 1` when balanced):
//!
//! ```text
//! f_i ← −λ ε LSE_j( log b_j + (g_j − C_ij)/ε )
//! g_j ← −λ ε LSE_i( log a_i + (f_i − C_ij)/ε )
//! ```
//!
//! After the `g` step the column marginals are exact (balanced case), so the row error
//! `‖P1 − a‖₁` measures convergence; it falls out of the next `f` step's log-sum-exp for free.

use super::CostMatrix;
use super::prepared::{Prepared, SinkhornSolution, log_domain_iterate};
use crate::{OtError, SinkhornConfig};

/// Balanced or unbalanced log-domain Sinkhorn from zero potentials.
pub fn sinkhorn(
    cost: &CostMatrix,
    a: &[f64],
    b: &[f64],
    config: &SinkhornConfig,
) -> Result<SinkhornSolution, OtError> {
    sinkhorn_warm(cost, a, b, config, None)
}

/// Sinkhorn started from given potentials `(f, g)` (e.g. from a larger ε).
///
/// Runs the stabilised scaling form ([`sinkhorn_log_domain`] is the plain log-domain form of
/// the same iterations, kept as a cross-check).
pub fn sinkhorn_warm(
    cost: &CostMatrix,
    a: &[f64],
    b: &[f64],
    config: &SinkhornConfig,
    init: Option<(&[f64], &[f64])>,
) -> Result<SinkhornSolution, OtError> {
    let config = &absolute(cost, a, b, config);
    let problem = Prepared::new(cost, a, b, config, init)?;
    let (f, g, iterations, converged) = super::stabilized::iterate(&problem, config)?;
    problem.finish(config, f, g, iterations, converged)
}

/// `config` with ε in cost units for this problem (a relative ε times the scale of the
/// costs between positive-weight rows and columns).
fn absolute(cost: &CostMatrix, a: &[f64], b: &[f64], config: &SinkhornConfig) -> SinkhornConfig {
    if config.epsilon_scale == crate::EpsilonScale::Absolute {
        return config.clone();
    }
    let valid = super::valid_costs(
        (cost.rows(), cost.cols()),
        |i| a.get(i).is_some_and(|&w| w > 0.0),
        |j| b.get(j).is_some_and(|&w| w > 0.0),
        |i, j| cost.get(i, j),
    );
    config.absolute_for(valid)
}

/// The plain log-domain form: every iteration evaluates `n·m` exponentials.
pub fn sinkhorn_log_domain(
    cost: &CostMatrix,
    a: &[f64],
    b: &[f64],
    config: &SinkhornConfig,
    init: Option<(&[f64], &[f64])>,
) -> Result<SinkhornSolution, OtError> {
    let config = &absolute(cost, a, b, config);
    let problem = Prepared::new(cost, a, b, config, init)?;
    let start = (problem.f0.clone(), problem.g0.clone());
    let (f, g, iterations, converged) =
        log_domain_iterate(&problem, config, start, config.max_iter)?;
    problem.finish(config, f, g, iterations, converged)
}

/// ε-scaling (annealing): solve at `ε_0 > ε_1 > … > ε`, each stage warm-started from the
/// previous stage's potentials. Converges in far fewer total iterations for small ε.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpsilonScaling {
    /// First ε; `None` uses `max |C|` (never below the target ε).
    pub epsilon_start: Option<f64>,
    /// Geometric decay per stage, in `(0, 1)`.
    pub factor: f64,
    /// Stopping tolerance of the intermediate stages (the last uses the config's `tol`).
    pub stage_tol: f64,
}

impl Default for EpsilonScaling {
    fn default() -> Self {
        Self {
            epsilon_start: None,
            factor: 0.5,
            stage_tol: 1e-3,
        }
    }
}

/// Sinkhorn with ε-scaling; `iterations` in the result counts every stage.
pub fn sinkhorn_epsilon_scaling(
    cost: &CostMatrix,
    a: &[f64],
    b: &[f64],
    config: &SinkhornConfig,
    scaling: &EpsilonScaling,
) -> Result<SinkhornSolution, OtError> {
    config.validate()?;
    if !(scaling.factor > 0.0 && scaling.factor < 1.0) {
        return Err(OtError::BadParameter(format!(
            "epsilon-scaling factor must be in (0, 1), got {}",
            scaling.factor
        )));
    }
    let target = config.epsilon;
    let mut eps = scaling
        .epsilon_start
        .unwrap_or_else(|| cost.max_abs())
        .max(target);
    let mut potentials: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut total_iterations = 0;
    loop {
        let last = eps <= target;
        let stage = SinkhornConfig {
            epsilon: if last { target } else { eps },
            tol: if last {
                config.tol
            } else {
                scaling.stage_tol.max(config.tol)
            },
            ..config.clone()
        };
        let init = potentials
            .as_ref()
            .map(|(f, g)| (f.as_slice(), g.as_slice()));
        let mut solution = sinkhorn_warm(cost, a, b, &stage, init)?;
        total_iterations += solution.iterations;
        if last {
            solution.iterations = total_iterations;
            return Ok(solution);
        }
        potentials = Some((
            std::mem::take(&mut solution.f),
            std::mem::take(&mut solution.g),
        ));
        eps = (eps * scaling.factor).max(target);
    }
}

/// Debiased Sinkhorn divergence (Feydy et al. 2019), balanced case:
///
/// ```text
/// S_ε(a, b) = OT_ε(a, b) − ½ OT_ε(a, a) − ½ OT_ε(b, b)
/// ```
///
/// `cost_xy` is `n × m`, `cost_xx` is `n × n`, `cost_yy` is `m × m`. `S_ε ≥ 0` for costs
/// from a positive-definite kernel (e.g. squared Euclidean), and `S_ε(a, a) = 0`.
pub fn sinkhorn_divergence(
    cost_xy: &CostMatrix,
    cost_xx: &CostMatrix,
    cost_yy: &CostMatrix,
    a: &[f64],
    b: &[f64],
    config: &SinkhornConfig,
) -> Result<f64, OtError> {
    if config.tau.is_some() {
        return Err(OtError::BadParameter(
            "the debiased Sinkhorn divergence is implemented for balanced OT only (tau = None)"
                .into(),
        ));
    }
    let (n, m) = (cost_xy.rows(), cost_xy.cols());
    if (cost_xx.rows(), cost_xx.cols()) != (n, n) || (cost_yy.rows(), cost_yy.cols()) != (m, m) {
        return Err(OtError::BadParameter(format!(
            "divergence needs cost_xx {n}x{n} and cost_yy {m}x{m}, got {}x{} and {}x{}",
            cost_xx.rows(),
            cost_xx.cols(),
            cost_yy.rows(),
            cost_yy.cols()
        )));
    }
    // One ε for the three terms (a relative ε takes the scale of the cross costs), so that
    // the self terms debias the cross term.
    let config = &absolute(cost_xy, a, b, config);
    let xy = sinkhorn(cost_xy, a, b, config)?.entropic_cost;
    let xx = sinkhorn(cost_xx, a, a, config)?.entropic_cost;
    let yy = sinkhorn(cost_yy, b, b, config)?.entropic_cost;
    Ok(xy - 0.5 * (xx + yy))
}
