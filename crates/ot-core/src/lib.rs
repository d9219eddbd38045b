//! # ot-core
//!
//! Optimal-transport solvers for OPTICAL-style distillation:
//!
//! - [`reference`]: `f64` CPU solvers for any `n × m` problem — log-domain Sinkhorn
//!   (balanced and unbalanced), ε-scaling with warm starts, the debiased Sinkhorn divergence
//!   and an exact LP solver for checking.
//! - [`tensor`]: a batched, masked, log-domain Sinkhorn on burn tensors that runs on any
//!   burn [`Device`](burn::tensor::Device) and is differentiable
//!   ([`GradientMode::Unroll`] or [`GradientMode::Envelope`]).
//! - [`backend`]: run-time selection of the compiled-in burn backends.
//! - [`problem`]: the JSON problem format of `cargo xtask ot solve`.
//!
//! Every solver returns its plan together with diagnostics (iterations, marginal error,
//! converged) and reports non-finite results as errors instead of returning NaN.

pub mod backend;
mod config;
mod error;
pub mod problem;
pub mod reference;
pub mod sharpness;
pub mod tensor;

pub use config::{EpsilonScale, GradientMode, SinkhornConfig};
pub use error::OtError;
