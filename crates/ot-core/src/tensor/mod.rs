//! Batched, masked, differentiable log-domain Sinkhorn on burn tensors (any [`Device`]).
//!
//! A batch holds `B` problems padded to a common shape: costs `C` are `(B, n, m)`, marginal
//! weights `a` are `(B, n)` and `b` are `(B, m)`. A zero weight marks a padding token: its
//! row/column carries no mass, its cost entries are ignored (they may hold anything, even
//! NaN), and its plan entries are exactly zero. The iteration is the same as the `f64`
//! [`reference`](crate::reference) solver, vectorised over the batch:
//!
//! ```text
//! f ← −λ ε LSE_j( log b_j + (g_j − C_ij)/ε ),   g ← −λ ε LSE_i( log a_i + (f_i − C_ij)/ε )
//! P_ij = a_i b_j exp((f_i + g_j − C_ij)/ε),      loss = ⟨P, C⟩_F per batch item
//! ```
//!
//! Everything stays in the log domain, so ε = 1e-3 on unit-scale costs neither overflows nor
//! produces NaN in f32.

use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::{GradientMode, OtError, SinkhornConfig};

mod host;
mod log_domain;

pub use host::sinkhorn_batched_host;
pub use log_domain::sinkhorn_batched_tensor;

/// Log-weight given to padding entries (finite, so that no `inf − inf` can arise).
const LOG_ZERO: f32 = -1e30;

/// Marginal weights of a padded batch; zero weight = padding.
#[derive(Debug, Clone)]
pub struct Marginals {
    /// `(B, n)` row weights.
    pub a: Tensor<2>,
    /// `(B, m)` column weights.
    pub b: Tensor<2>,
}

impl Marginals {
    /// Uniform weights over the valid tokens of each item: `a_i = 1/n_valid` on valid rows.
    /// Masks are `true` for real tokens, `false` for padding.
    pub fn uniform(row_mask: Tensor<2, Bool>, col_mask: Tensor<2, Bool>) -> Self {
        Self {
            a: normalise(row_mask.float()),
            b: normalise(col_mask.float()),
        }
    }

    /// Given non-negative weights, zeroed outside the masks and normalised to unit mass per
    /// item (e.g. IDF or attention weights of the tokens).
    pub fn weighted(
        a: Tensor<2>,
        b: Tensor<2>,
        row_mask: Tensor<2, Bool>,
        col_mask: Tensor<2, Bool>,
    ) -> Self {
        Self {
            a: normalise(a * row_mask.float()),
            b: normalise(b * col_mask.float()),
        }
    }

    /// Weights taken as they are (unnormalised masses are allowed for unbalanced OT).
    pub fn from_weights(a: Tensor<2>, b: Tensor<2>) -> Self {
        Self { a, b }
    }
}

fn normalise(w: Tensor<2>) -> Tensor<2> {
    let total = w.clone().sum_dim(1).clamp_min(f32::MIN_POSITIVE);
    w / total
}

/// Per-item diagnostics of a batched solve, read back to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// Iterations run (shared by the whole batch; the loop stops when every item has met the
    /// tolerance at a check, so this can exceed what an item needed).
    pub iterations: usize,
    /// Per item, the number of iterations after which it first met the tolerance (balanced:
    /// exact, the row error is evaluated after every iteration; unbalanced: the shared stop),
    /// `None` if it never did.
    pub converged_at: Vec<Option<usize>>,
    /// The ε each item was solved with, in cost units.
    pub epsilon: Vec<f64>,
    /// `‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁` per item.
    pub marginal_error: Vec<f32>,
    /// Balanced: `‖P1 − a‖₁ ≤ tol` per item at the last check. Unbalanced: the potential
    /// updates fell below `tol` (shared by the batch).
    pub converged: Vec<bool>,
}

impl Diagnostics {
    /// Whether every item converged.
    pub fn all_converged(&self) -> bool {
        self.converged.iter().all(|&c| c)
    }

    /// Largest marginal error in the batch.
    pub fn max_marginal_error(&self) -> f32 {
        self.marginal_error.iter().copied().fold(0.0, f32::max)
    }

    /// Iterations the slowest item needed to meet the tolerance (`None` if one never did).
    pub fn iterations_needed(&self) -> Option<usize> {
        self.converged_at
            .iter()
            .try_fold(0, |m, at| at.map(|a| m.max(a)))
    }
}

/// A solved batch: the plan, the dual potentials and diagnostics.
#[derive(Debug, Clone)]
pub struct BatchSolution {
    /// `(B, n, m)` transport plans; attached to the autodiff graph in
    /// [`GradientMode::Unroll`], constant in [`GradientMode::Envelope`].
    pub plan: Tensor<3>,
    /// `(B, n)` row potentials.
    pub f: Tensor<2>,
    /// `(B, m)` column potentials.
    pub g: Tensor<2>,
    pub diagnostics: Diagnostics,
}

/// Solve a batch of entropic OT problems.
///
/// Gradients (on an autodiff device) flow to `cost` only; marginals are treated as data.
///
/// In [`GradientMode::Envelope`] the iterations need no gradient: they run on the host, each
/// item in the `f64` kernel-space [`reference`](crate::reference) solver (with absorption), in
/// parallel over the batch, and only the plan returns to the device as a constant. In
/// [`GradientMode::Unroll`] they run as tensor operations ([`sinkhorn_batched_tensor`]), so
/// that the gradient can follow them.
pub fn sinkhorn_batched(
    cost: Tensor<3>,
    marginals: &Marginals,
    config: &SinkhornConfig,
) -> Result<BatchSolution, OtError> {
    match config.gradient {
        GradientMode::Envelope => sinkhorn_batched_host(cost, marginals, config),
        GradientMode::Unroll => sinkhorn_batched_tensor(cost, marginals, config),
    }
}

/// The batch shape and the detached marginals, after checking the configuration and the
/// marginals against the cost's shape.
fn checked_inputs(
    cost: &Tensor<3>,
    marginals: &Marginals,
    config: &SinkhornConfig,
) -> Result<([usize; 3], Tensor<2>, Tensor<2>), OtError> {
    config.validate()?;
    let dims = cost.dims();
    let a = marginals.a.clone().detach();
    let b = marginals.b.clone().detach();
    check_marginals(&a, &b, dims, config.tau.is_none())?;
    Ok((dims, a, b))
}

/// `(B, n, m)` mask, `true` where row `i` or column `j` is padding (zero weight).
fn padding_pairs(a: &Tensor<2>, b: &Tensor<2>) -> Tensor<3, Bool> {
    let valid = a.clone().greater_elem(0.0).float().unsqueeze_dim::<3>(2)
        * b.clone().greater_elem(0.0).float().unsqueeze_dim::<3>(1);
    valid.lower_elem(0.5)
}

/// The OT loss `⟨P, C⟩_F` per batch item, `(B,)`, with the solve's diagnostics.
///
/// In [`GradientMode::Envelope`] the plan is a constant, so `∂loss/∂C = P`; in
/// [`GradientMode::Unroll`] the gradient also flows through the Sinkhorn iterations.
pub fn ot_loss(
    cost: Tensor<3>,
    marginals: &Marginals,
    config: &SinkhornConfig,
) -> Result<(Tensor<1>, BatchSolution), OtError> {
    let [batch, _, _] = cost.dims();
    let solution = sinkhorn_batched(cost.clone(), marginals, config)?;
    // Zero the cost outside the valid pairs so padding garbage (even NaN) cannot leak into
    // ⟨P, C⟩ through 0 · NaN.
    let padding = padding_pairs(&marginals.a.clone().detach(), &marginals.b.clone().detach());
    let safe_cost = cost.mask_fill(padding, 0.0);
    let loss = (solution.plan.clone() * safe_cost)
        .sum_dim(2)
        .sum_dim(1)
        .reshape([batch]);
    Ok((loss, solution))
}

/// Numerically stable `log Σ exp` along `dim`, keeping the reduced dimension (size 1).
/// The shift by the maximum is detached: the gradient of LSE does not depend on it.
pub fn logsumexp(x: Tensor<3>, dim: usize) -> Tensor<3> {
    let max = x.clone().max_dim(dim).detach();
    (x - max.clone()).exp().sum_dim(dim).log() + max
}

/// Pairwise cost matrices between token embeddings: `(B, n, d)` × `(B, m, d)` → `(B, n, m)`.
#[derive(burn::config::Config, Debug, Copy, PartialEq, Eq)]
pub enum CostKind {
    /// `1 − cos(x_i, y_j)` in `[0, 2]`.
    Cosine,
    /// `‖x_i − y_j‖²`.
    SquaredEuclidean,
}

/// Build the cost matrix between two batches of token embeddings.
pub fn pairwise_cost(x: Tensor<3>, y: Tensor<3>, kind: CostKind) -> Tensor<3> {
    match kind {
        CostKind::Cosine => {
            let xn = x.clone() / norm_last(x);
            let yn = y.clone() / norm_last(y);
            xn.matmul(yn.swap_dims(1, 2)).neg().add_scalar(1.0)
        }
        CostKind::SquaredEuclidean => {
            let x2 = (x.clone() * x.clone()).sum_dim(2); // (B, n, 1)
            let y2 = (y.clone() * y.clone()).sum_dim(2).swap_dims(1, 2); // (B, 1, m)
            let xy = x.matmul(y.swap_dims(1, 2));
            (x2 + y2 - xy.mul_scalar(2.0)).clamp_min(0.0)
        }
    }
}

/// `‖x‖` along the last dimension, floored at 1e-12 so zero padding vectors give cost 1.
fn norm_last(x: Tensor<3>) -> Tensor<3> {
    (x.clone() * x).sum_dim(2).clamp_min(1e-24).sqrt()
}

/// Validate the marginals on the host (they are `B × n` and `B × m`, cheap to read).
fn check_marginals(
    a: &Tensor<2>,
    b: &Tensor<2>,
    [batch, n, m]: [usize; 3],
    balanced: bool,
) -> Result<(), OtError> {
    if a.dims() != [batch, n] {
        return Err(OtError::MarginalLength {
            which: "a",
            got: a.dims()[1],
            expected: n,
        });
    }
    if b.dims() != [batch, m] {
        return Err(OtError::MarginalLength {
            which: "b",
            got: b.dims()[1],
            expected: m,
        });
    }
    let av = read_vec(a.clone().reshape([batch * n]))?;
    let bv = read_vec(b.clone().reshape([batch * m]))?;
    for (which, w, len) in [("a", &av, n), ("b", &bv, m)] {
        for (index, &value) in w.iter().enumerate() {
            crate::reference::check_weight(which, index, f64::from(value))?;
        }
        for (item, chunk) in w.chunks(len).enumerate() {
            if chunk.iter().all(|&v| v == 0.0) {
                return Err(OtError::BadParameter(format!(
                    "batch item {item}: marginal `{which}` has no valid (positive-weight) token"
                )));
            }
        }
    }
    if balanced {
        for (item, (ra, rb)) in av.chunks(n).zip(bv.chunks(m)).enumerate() {
            let (sa, sb): (f32, f32) = (ra.iter().sum(), rb.iter().sum());
            if (sa - sb).abs() > 1e-4 * sa.max(sb) {
                return Err(OtError::BadParameter(format!(
                    "batch item {item}: balanced OT needs equal masses, got {sa} and {sb}"
                )));
            }
        }
    }
    Ok(())
}

fn read_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, OtError> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| OtError::BadParameter(format!("could not read tensor back: {e:?}")))
}

/// Upload a row-major `f32` buffer as a `(B, n, m)` tensor.
pub fn tensor3(data: Vec<f32>, shape: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// Upload a row-major `f32` buffer as a `(B, n)` tensor.
pub fn tensor2(data: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, shape), device)
}
