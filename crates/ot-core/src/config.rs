//! Hyperparameters shared by the reference and the tensor Sinkhorn solvers.

use burn::config::Config;

/// How gradients flow from `⟨P, C⟩` back into the cost matrix (tensor solver only).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum GradientMode {
    /// Autodiff through every Sinkhorn iteration (exact gradient of the computed loss;
    /// memory grows with the number of iterations).
    Unroll,
    /// The plan is treated as a constant: `∂⟨P, C⟩/∂C = P` (Danskin / envelope theorem for the
    /// entropic objective). Constant memory, no graph through the iterations.
    Envelope,
}

/// What ε is measured in.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum EpsilonScale {
    /// Cost units: the ε used is `epsilon`.
    Absolute,
    /// Relative to each problem's mean cost over its valid pairs (`aᵢ > 0`, `bⱼ > 0`): the
    /// ε used is `epsilon · mean(C)`, as OTT-JAX's `relative_epsilon="mean"`.
    MeanCost,
    /// Relative to each problem's median valid cost: `epsilon · median(C)`.
    MedianCost,
}

impl EpsilonScale {
    /// The scale of a problem's valid cost entries (1 for [`EpsilonScale::Absolute`]). A
    /// problem whose scale is not positive (every cost zero) is solved at ε in cost units.
    pub fn scale_of(self, mut valid_costs: Vec<f64>) -> f64 {
        let s = match self {
            EpsilonScale::Absolute => return 1.0,
            EpsilonScale::MeanCost => {
                valid_costs.iter().sum::<f64>() / valid_costs.len().max(1) as f64
            }
            EpsilonScale::MedianCost => {
                if valid_costs.is_empty() {
                    return 1.0;
                }
                valid_costs.sort_by(f64::total_cmp);
                let k = valid_costs.len();
                if k % 2 == 1 {
                    valid_costs[k / 2]
                } else {
                    0.5 * (valid_costs[k / 2 - 1] + valid_costs[k / 2])
                }
            }
        };
        if s.is_finite() && s > 0.0 { s } else { 1.0 }
    }
}

/// Entropic optimal-transport hyperparameters.
///
/// The plan `P_ij = a_i b_j exp((f_i + g_j − C_ij)/ε)` minimises
/// `⟨P, C⟩ + ε KL(P ‖ a⊗b) [+ τ KL(P1 ‖ a) + τ KL(Pᵀ1 ‖ b)]`.
#[derive(Config, Debug, PartialEq)]
pub struct SinkhornConfig {
    /// Entropic regularisation ε (in cost units, or relative: see `epsilon_scale`).
    #[config(default = 0.05)]
    pub epsilon: f64,
    /// Whether `epsilon` is in cost units or relative to each problem's cost scale.
    #[config(default = "EpsilonScale::Absolute")]
    pub epsilon_scale: EpsilonScale,
    /// Marginal relaxation τ for unbalanced OT; `None` enforces the marginals exactly.
    #[config(default = "None")]
    pub tau: Option<f64>,
    /// Maximum number of Sinkhorn iterations (one iteration updates `f` then `g`).
    #[config(default = 1000)]
    pub max_iter: usize,
    /// Stopping tolerance. Balanced: `‖P1 − a‖₁ ≤ tol` (columns are exact after each
    /// iteration). Unbalanced: the largest potential update `max(|Δf|, |Δg|) ≤ tol`.
    /// The f32 tensor solver cannot go much below ~1e-6 (rounding of `f/ε`), hence 1e-5.
    #[config(default = 1e-5)]
    pub tol: f64,
    /// Tensor solver: check convergence every this many iterations (each check reads back a
    /// small tensor from the device).
    #[config(default = 10)]
    pub check_every: usize,
    /// Tensor solver: how gradients reach the cost matrix.
    #[config(default = "GradientMode::Envelope")]
    pub gradient: GradientMode,
}

impl SinkhornConfig {
    /// Check ε, τ and the iteration settings.
    pub fn validate(&self) -> Result<(), crate::OtError> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(crate::OtError::BadEpsilon(self.epsilon));
        }
        if let Some(tau) = self.tau
            && !(tau.is_finite() && tau > 0.0)
        {
            return Err(crate::OtError::BadTau(tau));
        }
        if self.max_iter == 0 {
            return Err(crate::OtError::BadParameter("max_iter must be ≥ 1".into()));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(crate::OtError::BadParameter(format!(
                "tol must be finite and ≥ 0, got {}",
                self.tol
            )));
        }
        if self.check_every == 0 {
            return Err(crate::OtError::BadParameter(
                "check_every must be ≥ 1".into(),
            ));
        }
        Ok(())
    }

    /// The exponent `λ = τ / (τ + ε)` applied to each potential update (1 when balanced).
    pub fn damping(&self) -> f64 {
        self.tau.map_or(1.0, |tau| tau / (tau + self.epsilon))
    }

    /// This configuration with ε in cost units for one problem whose valid cost entries are
    /// `valid_costs` (unchanged when ε is already absolute).
    pub fn absolute_for(&self, valid_costs: Vec<f64>) -> SinkhornConfig {
        SinkhornConfig {
            epsilon: self.epsilon * self.epsilon_scale.scale_of(valid_costs),
            epsilon_scale: EpsilonScale::Absolute,
            ..self.clone()
        }
    }
}
