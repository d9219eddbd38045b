//! The JSON problem format of `cargo xtask ot solve`.
//!
//! Input:
//! ```json
//! {"cost": [[0, 1], [1, 0]], "a": [0.5, 0.5], "b": [0.5, 0.5],
//!  "epsilon": 0.05, "tau": null, "method": "sinkhorn"}
//! ```
//! `a`/`b` default to uniform, `method` to `"sinkhorn"` (or `"exact"`); optional
//! `max_iter`, `tol` and `epsilon_scaling` (bool) tune the entropic solver.
//! Output: `{"plan", "transport_cost", "iterations", "marginal_error", "converged"}`.

use serde::{Deserialize, Serialize};

use crate::reference::{self, CostMatrix, EpsilonScaling};
use crate::{OtError, SinkhornConfig};

/// Which solver a problem file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    #[default]
    Sinkhorn,
    Exact,
}

/// A problem as read from JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemSpec {
    pub cost: Vec<Vec<f64>>,
    #[serde(default)]
    pub a: Option<Vec<f64>>,
    #[serde(default)]
    pub b: Option<Vec<f64>>,
    #[serde(default)]
    pub epsilon: Option<f64>,
    #[serde(default)]
    pub tau: Option<f64>,
    #[serde(default)]
    pub method: Method,
    #[serde(default)]
    pub max_iter: Option<usize>,
    #[serde(default)]
    pub tol: Option<f64>,
    #[serde(default)]
    pub epsilon_scaling: bool,
}

/// The solver's answer, as written to stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveOutput {
    pub plan: Vec<Vec<f64>>,
    pub transport_cost: f64,
    pub iterations: usize,
    pub marginal_error: f64,
    pub converged: bool,
}

/// Why a problem file could not be solved.
#[derive(Debug, thiserror::Error)]
pub enum ProblemError {
    #[error("invalid problem JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ot(#[from] OtError),
}

impl ProblemSpec {
    /// Parse a problem from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ProblemError> {
        serde_json::from_str(text).map_err(|e| ProblemError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Solve it with the requested method.
    pub fn solve(&self) -> Result<SolveOutput, ProblemError> {
        let cost = CostMatrix::from_rows(&self.cost)?;
        let a = self
            .a
            .clone()
            .unwrap_or_else(|| reference::uniform(cost.rows()));
        let b = self
            .b
            .clone()
            .unwrap_or_else(|| reference::uniform(cost.cols()));
        let to_rows = |plan: &[f64]| plan.chunks(cost.cols()).map(<[f64]>::to_vec).collect();
        match self.method {
            Method::Exact => {
                if self.tau.is_some() {
                    return Err(ProblemError::Invalid(
                        "method \"exact\" solves balanced OT: remove \"tau\"".into(),
                    ));
                }
                let s = reference::exact_ot(&cost, &a, &b)?;
                Ok(SolveOutput {
                    plan: to_rows(&s.plan),
                    transport_cost: s.transport_cost,
                    iterations: 0,
                    marginal_error: s.marginal_error,
                    converged: true,
                })
            }
            Method::Sinkhorn => {
                let epsilon = self.epsilon.ok_or_else(|| {
                    ProblemError::Invalid(
                        "method \"sinkhorn\" needs \"epsilon\" (entropic regularisation > 0)"
                            .into(),
                    )
                })?;
                let mut config = SinkhornConfig::new()
                    .with_epsilon(epsilon)
                    .with_tau(self.tau);
                if let Some(max_iter) = self.max_iter {
                    config = config.with_max_iter(max_iter);
                }
                if let Some(tol) = self.tol {
                    config = config.with_tol(tol);
                }
                let s = if self.epsilon_scaling {
                    reference::sinkhorn_epsilon_scaling(
                        &cost,
                        &a,
                        &b,
                        &config,
                        &EpsilonScaling::default(),
                    )?
                } else {
                    reference::sinkhorn(&cost, &a, &b, &config)?
                };
                Ok(SolveOutput {
                    plan: to_rows(&s.plan),
                    transport_cost: s.transport_cost,
                    iterations: s.iterations,
                    marginal_error: s.marginal_error,
                    converged: s.converged,
                })
            }
        }
    }
}

/// Parse and solve a JSON problem in one call.
pub fn solve_json(text: &str) -> Result<SolveOutput, ProblemError> {
    ProblemSpec::from_json(text)?.solve()
}
