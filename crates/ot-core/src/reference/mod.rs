//! Reference solvers on the CPU in `f64` for any `n × m` problem.
//!
//! All entropic solvers share one parametrisation (as in GeomLoss / OTT-JAX): the plan is
//!
//! ```text
//! P_ij = a_i b_j exp((f_i + g_j − C_ij) / ε)
//! ```
//!
//! with dual potentials `f`, `g` in cost units, so potentials can be carried across ε
//! (warm start, ε-scaling). The problem solved is
//!
//! ```text
//! min_P ⟨P, C⟩ + ε KL(P ‖ a⊗b) + τ KL(P1 ‖ a) + τ KL(Pᵀ1 ‖ b)
//! ```
//!
//! where the τ terms are hard constraints (`P1 = a`, `Pᵀ1 = b`) in the balanced case
//! (`tau = None`). For balanced problems the plan equals the one of the classic
//! `min ⟨P, C⟩ − ε H(P)` formulation (POT's `ot.sinkhorn`), since the two objectives
//! differ by a constant on the transport polytope.

mod exact;
mod prepared;
mod sinkhorn;
mod stabilized;

pub use exact::{ExactSolution, exact_ot};
pub use prepared::SinkhornSolution;
pub use sinkhorn::{
    EpsilonScaling, sinkhorn, sinkhorn_divergence, sinkhorn_epsilon_scaling, sinkhorn_log_domain,
    sinkhorn_warm,
};

use crate::OtError;

/// The cost entries between positive-weight rows and columns of a `rows × cols` problem, row
/// by row: the entries a relative ε is scaled by ([`crate::EpsilonScale`]). Every solver path
/// (reference, host, tensor) gathers them here, so they agree on ε.
pub(crate) fn valid_costs(
    (rows, cols): (usize, usize),
    row_ok: impl Fn(usize) -> bool,
    col_ok: impl Fn(usize) -> bool + Copy,
    cost: impl Fn(usize, usize) -> f64 + Copy,
) -> Vec<f64> {
    (0..rows)
        .filter(|&i| row_ok(i))
        .flat_map(|i| {
            (0..cols)
                .filter(move |&j| col_ok(j))
                .map(move |j| cost(i, j))
        })
        .collect()
}

/// A dense, row-major `rows × cols` cost matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct CostMatrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl CostMatrix {
    /// Build from row-major data, checking the shape and that every entry is finite.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self, OtError> {
        if rows == 0 || cols == 0 {
            return Err(OtError::Empty { rows, cols });
        }
        if data.len() != rows * cols {
            return Err(OtError::CostLength {
                got: data.len(),
                rows,
                cols,
            });
        }
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(OtError::NonFinite {
                what: "cost",
                index,
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// Build from nested rows (e.g. parsed JSON), rejecting ragged input.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, OtError> {
        let n = rows.len();
        let m = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(n * m);
        for (row, r) in rows.iter().enumerate() {
            if r.len() != m {
                return Err(OtError::RaggedCost {
                    row,
                    got: r.len(),
                    expected: m,
                });
            }
            data.extend_from_slice(r);
        }
        Self::new(n, m, data)
    }

    /// Squared Euclidean costs `C_ij = ‖x_i − y_j‖²` between two point clouds of dimension `d`.
    pub fn squared_euclidean(x: &[f64], y: &[f64], d: usize) -> Result<Self, OtError> {
        if d == 0 || !x.len().is_multiple_of(d) || !y.len().is_multiple_of(d) {
            return Err(OtError::BadParameter(format!(
                "point clouds of lengths {} and {} are not multiples of d = {d}",
                x.len(),
                y.len()
            )));
        }
        let (n, m) = (x.len() / d, y.len() / d);
        let mut data = Vec::with_capacity(n * m);
        for xi in x.chunks_exact(d) {
            for yj in y.chunks_exact(d) {
                data.push(xi.iter().zip(yj).map(|(p, q)| (p - q) * (p - q)).sum());
            }
        }
        Self::new(n, m, data)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major entries.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// `C_ij`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// The transposed matrix (`cols × rows`).
    pub fn transposed(&self) -> CostMatrix {
        let mut data = vec![0.0; self.data.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                data[j * self.rows + i] = self.data[i * self.cols + j];
            }
        }
        CostMatrix {
            rows: self.cols,
            cols: self.rows,
            data,
        }
    }

    /// Largest absolute entry.
    pub fn max_abs(&self) -> f64 {
        self.data.iter().fold(0.0_f64, |acc, v| acc.max(v.abs()))
    }

    /// Frobenius product `⟨P, C⟩` with a row-major plan of the same shape.
    pub fn frobenius(&self, plan: &[f64]) -> f64 {
        self.data.iter().zip(plan).map(|(c, p)| c * p).sum()
    }
}

/// The uniform histogram of length `n`.
pub fn uniform(n: usize) -> Vec<f64> {
    vec![1.0 / n as f64; n]
}

/// Check a marginal: right length, finite, non-negative, positive total mass.
pub(crate) fn validate_marginal(
    which: &'static str,
    w: &[f64],
    expected: usize,
) -> Result<f64, OtError> {
    if w.len() != expected {
        return Err(OtError::MarginalLength {
            which,
            got: w.len(),
            expected,
        });
    }
    let mut sum = 0.0;
    for (index, &value) in w.iter().enumerate() {
        check_weight(which, index, value)?;
        sum += value;
    }
    if sum <= 0.0 {
        return Err(OtError::ZeroMass { which });
    }
    Ok(sum)
}

/// One marginal weight must be finite and non-negative.
pub(crate) fn check_weight(which: &'static str, index: usize, value: f64) -> Result<(), OtError> {
    if !value.is_finite() {
        return Err(OtError::NonFinite { what: which, index });
    }
    if value < 0.0 {
        return Err(OtError::NegativeWeight {
            which,
            index,
            value,
        });
    }
    Ok(())
}

/// Row sums and column sums of a row-major plan.
pub fn marginals(plan: &[f64], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let mut r = vec![0.0; rows];
    let mut c = vec![0.0; cols];
    for i in 0..rows {
        for j in 0..cols {
            let p = plan[i * cols + j];
            r[i] += p;
            c[j] += p;
        }
    }
    (r, c)
}

/// `‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁`.
pub fn marginal_error(plan: &[f64], a: &[f64], b: &[f64]) -> f64 {
    let (r, c) = marginals(plan, a.len(), b.len());
    r.iter().zip(a).map(|(x, y)| (x - y).abs()).sum::<f64>()
        + c.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>()
}
