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
//!
//! ## Which solver when
//!
//! | you have | use | why |
//! |---|---|---|
//! | one small problem, want the plan to check or inspect | [`reference::sinkhorn`] | `f64`, exact log-domain iterations, plan + potentials + diagnostics |
//! | a small ε that converges slowly | [`reference::sinkhorn_epsilon_scaling`] | solves a decreasing ε sequence, each warm-started from the last |
//! | mass that need not be conserved (noisy alignments) | [`reference::sinkhorn`] with `tau = Some(τ)` | unbalanced: KL penalties `τ` on the marginals instead of equalities |
//! | a distance between point clouds that is 0 on equal inputs | [`reference::sinkhorn_divergence`] | the debiased `S_ε` |
//! | the unregularised optimum, to test an entropic solver against | [`reference::exact_ot`] | network simplex LP, small problems |
//! | a training batch of padded token sequences on a burn device | [`tensor::ot_loss`] (plan from [`tensor::sinkhorn_batched`]) | masked, batched, differentiable (`Envelope`: plan constant, gradient through `C`; `Unroll`: through the iterations) |
//!
//! A 2 × 2 problem whose cheap diagonal carries all the mass, solved three ways:
//!
//! ```
//! use ot_core::reference::{CostMatrix, exact_ot, marginals, sinkhorn, uniform};
//! use ot_core::SinkhornConfig;
//!
//! let cost = CostMatrix::new(2, 2, vec![0.0, 1.0, 1.0, 0.0]).unwrap();
//! let (a, b) = (uniform(2), uniform(2));
//!
//! // Exact OT: the identity coupling, cost 0.
//! let exact = exact_ot(&cost, &a, &b).unwrap();
//! assert_eq!(exact.plan, vec![0.5, 0.0, 0.0, 0.5]);
//! assert_eq!(exact.transport_cost, 0.0);
//!
//! // Entropic OT with a small ε: nearly the same plan, with its diagnostics.
//! let config = SinkhornConfig::new().with_epsilon(0.05);
//! let sol = sinkhorn(&cost, &a, &b, &config).unwrap();
//! assert!(sol.converged && sol.marginal_error < 1e-5);
//! assert!(sol.plan[0] > 0.49 && sol.plan[1] < 0.01);
//! let (rows, cols) = marginals(&sol.plan, 2, 2);
//! assert!((rows[0] - 0.5).abs() < 1e-5 && (cols[1] - 0.5).abs() < 1e-5);
//!
//! // A large ε spreads the mass: the plan tends to the independent coupling a bᵀ.
//! let blurry = sinkhorn(&cost, &a, &b, &SinkhornConfig::new().with_epsilon(100.0)).unwrap();
//! assert!((blurry.plan[1] - 0.25).abs() < 0.01);
//! ```
//!
//! The same problem as a batch of one on the CPU backend, the way OPTICAL's loss solves it:
//!
//! ```
//! use burn::tensor::{Bool, Tensor, TensorData};
//! use ot_core::backend::Backend;
//! use ot_core::tensor::{Marginals, ot_loss, tensor3};
//! use ot_core::SinkhornConfig;
//!
//! let device = Backend::cpu_default().device().unwrap();
//! let cost = tensor3(vec![0.0, 1.0, 1.0, 0.0], [1, 2, 2], &device);
//! let mask = || Tensor::<2, Bool>::from_data(TensorData::new(vec![true, true], [1, 2]), &device);
//! let marginals = Marginals::uniform(mask(), mask());
//! let config = SinkhornConfig::new().with_epsilon(0.05);
//! let (loss, solution) = ot_loss(cost, &marginals, &config).unwrap();
//! let loss: Vec<f32> = loss.into_data().convert::<f32>().try_to_vec().unwrap();
//! assert!(loss[0] < 1e-3, "⟨P, C⟩ = {}", loss[0]);
//! assert!(solution.diagnostics.all_converged());
//! ```

pub mod backend;
mod config;
mod error;
pub mod problem;
pub mod reference;
pub mod sharpness;
pub mod tensor;

pub use config::{EpsilonScale, GradientMode, SinkhornConfig};
pub use error::OtError;
