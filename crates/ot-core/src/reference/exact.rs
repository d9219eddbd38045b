//! Exact (unregularised) optimal transport, for checking the entropic solvers.
//!
//! `min_P ⟨P, C⟩  s.t.  P ≥ 0, P1 = a, Pᵀ1 = b` solved as a linear program with a sparse
//! simplex solver (microlp). One column constraint is redundant and dropped, which keeps the
//! basis non-singular. Intended for problems up to a few hundred points per side.

use super::{CostMatrix, validate_marginal};
use crate::OtError;

/// The optimal plan and its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactSolution {
    pub rows: usize,
    pub cols: usize,
    /// Row-major optimal plan.
    pub plan: Vec<f64>,
    /// `min ⟨P, C⟩`.
    pub transport_cost: f64,
    /// `‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁` of the returned plan (round-off only).
    pub marginal_error: f64,
}

/// Solve the balanced transport problem exactly.
pub fn exact_ot(cost: &CostMatrix, a: &[f64], b: &[f64]) -> Result<ExactSolution, OtError> {
    let (n, m) = (cost.rows(), cost.cols());
    let sum_a = validate_marginal("a", a, n)?;
    let sum_b = validate_marginal("b", b, m)?;
    if (sum_a - sum_b).abs() > 1e-9 * sum_a.max(sum_b) {
        return Err(OtError::MassMismatch { sum_a, sum_b });
    }
    let mut problem = microlp::Problem::new(microlp::OptimizationDirection::Minimize);
    let vars: Vec<microlp::Variable> = cost
        .data()
        .iter()
        .map(|&c| problem.add_var(c, (0.0, f64::INFINITY)))
        .collect();
    for i in 0..n {
        let row: Vec<(microlp::Variable, f64)> = (0..m).map(|j| (vars[i * m + j], 1.0)).collect();
        problem.add_constraint(row.as_slice(), microlp::ComparisonOp::Eq, a[i]);
    }
    for j in 0..m.saturating_sub(1) {
        let col: Vec<(microlp::Variable, f64)> = (0..n).map(|i| (vars[i * m + j], 1.0)).collect();
        problem.add_constraint(col.as_slice(), microlp::ComparisonOp::Eq, b[j]);
    }
    let solution = match problem
        .solve()
        .map_err(|e| OtError::ExactSolver(e.to_string()))?
    {
        microlp::SolveOutcome::Solution(solution) => solution,
        microlp::SolveOutcome::Interrupted(_) => {
            return Err(OtError::ExactSolver(
                "the simplex solver was interrupted".into(),
            ));
        }
    };
    let plan: Vec<f64> = vars.iter().map(|&v| solution[v].max(0.0)).collect();
    let transport_cost = cost.frobenius(&plan);
    let marginal_error = super::marginal_error(&plan, a, b);
    Ok(ExactSolution {
        rows: n,
        cols: m,
        plan,
        transport_cost,
        marginal_error,
    })
}
