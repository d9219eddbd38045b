//! The batched solve as log-domain tensor operations on the cost's device (either gradient
//! mode): the problem in log space ([`LogDomain`]), the iterations with their stopping rule
//! ([`iterate`]) and the plan with its diagnostics ([`finish`]).

use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::{
    BatchSolution, Diagnostics, LOG_ZERO, Marginals, checked_inputs, logsumexp, padding_pairs,
    read_vec,
};
use crate::{GradientMode, OtError, SinkhornConfig};

/// [`sinkhorn_batched`](super::sinkhorn_batched) with the iterations as tensor operations on
/// the cost's device (log domain, f32), in either gradient mode.
pub fn sinkhorn_batched_tensor(
    cost: Tensor<3>,
    marginals: &Marginals,
    config: &SinkhornConfig,
) -> Result<BatchSolution, OtError> {
    let ([batch, n, m], a, b) = checked_inputs(&cost, marginals, config)?;
    let pair_invalid = padding_pairs(&a, &b);
    // Padding entries may hold garbage (NaN for zero-norm padding vectors): replace them.
    let cost = cost.mask_fill(pair_invalid.clone(), 0.0);
    let solve_cost = match config.gradient {
        GradientMode::Unroll => cost,
        GradientMode::Envelope => cost.detach(),
    };
    let eps = item_epsilons(&solve_cost, &a, &b, config)?;
    let problem = LogDomain::new([batch, n, m], a, b, solve_cost, &eps, config.tau);
    let (f, g, progress) = iterate(&problem, config)?;
    finish(problem, pair_invalid, f, g, progress, eps, config)
}

/// ε per item: `epsilon` in cost units, or times the item's cost scale (relative ε, over
/// the valid entries only).
fn item_epsilons(
    cost: &Tensor<3>,
    a: &Tensor<2>,
    b: &Tensor<2>,
    config: &SinkhornConfig,
) -> Result<Vec<f64>, OtError> {
    let [batch, n, m] = cost.dims();
    if config.epsilon_scale == crate::EpsilonScale::Absolute {
        return Ok(vec![config.epsilon; batch]);
    }
    let c = read_vec(cost.clone().reshape([batch * n * m]))?;
    let av = read_vec(a.clone().reshape([batch * n]))?;
    let bv = read_vec(b.clone().reshape([batch * m]))?;
    Ok((0..batch)
        .map(|k| {
            let valid = crate::reference::valid_costs(
                (n, m),
                |i| av[k * n + i] > 0.0,
                |j| bv[k * m + j] > 0.0,
                |i, j| f64::from(c[(k * n + i) * m + j]),
            );
            config.absolute_for(valid).epsilon
        })
        .collect())
}

/// The batch in log space, with each item's `1/ε` and potential step `−λ ε` as tensors.
struct LogDomain {
    shape: [usize; 3],
    a: Tensor<2>,
    b: Tensor<2>,
    log_a: Tensor<2>,
    log_b: Tensor<2>,
    padding_a: Tensor<2, Bool>,
    cost: Tensor<3>,
    /// `1/ε` per item, shaped `(B, 1)` and `(B, 1, 1)`.
    inv_eps2: Tensor<2>,
    inv_eps3: Tensor<3>,
    /// The potential update `−λ ε LSE`, with `λ = τ/(τ + ε)` per item (1 when balanced),
    /// `(B, 1)`.
    step: Tensor<2>,
}

impl LogDomain {
    fn new(
        shape: [usize; 3],
        a: Tensor<2>,
        b: Tensor<2>,
        cost: Tensor<3>,
        eps: &[f64],
        tau: Option<f64>,
    ) -> Self {
        let batch = shape[0];
        let device = cost.device();
        let padding_a = a.clone().lower_equal_elem(0.0);
        let log_a = log_weights(&a, padding_a.clone());
        let log_b = log_weights(&b, b.clone().lower_equal_elem(0.0));
        let per_item = |v: Vec<f32>| per_item(v, &device);
        let inv_eps = per_item(eps.iter().map(|&e| (1.0 / e) as f32).collect());
        let step = per_item(
            eps.iter()
                .map(|&e| (-tau.map_or(1.0, |tau| tau / (tau + e)) * e) as f32)
                .collect(),
        );
        Self {
            shape,
            a,
            b,
            log_a,
            log_b,
            padding_a,
            cost,
            inv_eps2: inv_eps.clone().reshape([batch, 1]),
            inv_eps3: inv_eps.reshape([batch, 1, 1]),
            step: step.reshape([batch, 1]),
        }
    }

    /// `LSE_j(log b_j + (g_j − C_ij)/ε)`, `(B, n)`: the f step before its factor `−λ ε`.
    fn lse_rows(&self, g: &Tensor<2>) -> Tensor<2> {
        let [batch, n, _] = self.shape;
        let x = self.log_b.clone().unsqueeze_dim::<3>(1)
            + (g.clone().unsqueeze_dim::<3>(1) - self.cost.clone()) * self.inv_eps3.clone();
        logsumexp(x, 2).reshape([batch, n])
    }

    /// The g step given the new f, `(B, m)`.
    fn g_step(&self, f: &Tensor<2>) -> Tensor<2> {
        let [batch, _, m] = self.shape;
        let y = self.log_a.clone().unsqueeze_dim::<3>(2)
            + (f.clone().unsqueeze_dim::<3>(2) - self.cost.clone()) * self.inv_eps3.clone();
        logsumexp(y, 1).reshape([batch, m]) * self.step.clone()
    }

    /// `‖P1 − a‖₁` per item of the plan with potentials `f` and the `g` whose
    /// [`lse_rows`](Self::lse_rows) is given: `P1_i = a_i exp(f_i/ε + lse_i)`.
    fn row_error(&self, f: &Tensor<2>, lse_rows: &Tensor<2>) -> Tensor<1> {
        let rows = (self.log_a.clone() + f.clone() * self.inv_eps2.clone() + lse_rows.clone())
            .exp()
            .mask_fill(self.padding_a.clone(), 0.0);
        (rows - self.a.clone())
            .abs()
            .sum_dim(1)
            .reshape([self.shape[0]])
    }

    /// `log P`, `(B, n, m)`.
    fn log_plan(&self, f: &Tensor<2>, g: &Tensor<2>) -> Tensor<3> {
        self.log_a.clone().unsqueeze_dim::<3>(2)
            + self.log_b.clone().unsqueeze_dim::<3>(1)
            + (f.clone().unsqueeze_dim::<3>(2) + g.clone().unsqueeze_dim::<3>(1)
                - self.cost.clone())
                * self.inv_eps3.clone()
    }
}

/// `log w`, with padding (zero weight) at [`LOG_ZERO`].
fn log_weights(w: &Tensor<2>, padding: Tensor<2, Bool>) -> Tensor<2> {
    w.clone()
        .clamp_min(f32::MIN_POSITIVE)
        .log()
        .mask_fill(padding, LOG_ZERO)
}

fn per_item(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let batch = values.len();
    Tensor::<1>::from_data(TensorData::new(values, [batch]), device)
}

/// Where the iterations stopped.
struct Progress {
    iterations: usize,
    converged: Vec<bool>,
    /// Balanced: the iteration after which each item first met the tolerance. The row error
    /// is computed at every iteration but read back only at checks, so the count is exact.
    converged_at: Vec<Option<usize>>,
    /// Row errors computed since the last check, with the iteration each one follows.
    pending: Vec<(usize, Tensor<1>)>,
}

impl Progress {
    /// Reads the pending row errors back (balanced runs, at a check): records when each item
    /// first met the tolerance and returns whether all meet it now.
    fn settle(&mut self, tol: f64) -> Result<bool, OtError> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        let batch = self.converged.len();
        let k = self.pending.len();
        let (done, errors): (Vec<usize>, Vec<Tensor<1>>) = self.pending.drain(..).unzip();
        let error = read_vec(Tensor::cat(errors, 0))?;
        if error.iter().any(|e| !e.is_finite()) {
            return Err(OtError::NonFiniteResult {
                what: "marginal error",
            });
        }
        for (t, &after) in done.iter().enumerate() {
            for (item, at) in self.converged_at.iter_mut().enumerate() {
                if at.is_none() && f64::from(error[t * batch + item]) <= tol {
                    *at = Some(after);
                }
            }
        }
        let last = &error[(k - 1) * batch..];
        self.converged = last.iter().map(|&e| f64::from(e) <= tol).collect();
        Ok(self.converged.iter().all(|&c| c))
    }
}

/// The Sinkhorn iterations from zero potentials. Balanced runs stop when every item's row
/// error meets the tolerance at a check; unbalanced runs when the potentials' largest change
/// does.
fn iterate(
    problem: &LogDomain,
    config: &SinkhornConfig,
) -> Result<(Tensor<2>, Tensor<2>, Progress), OtError> {
    let [batch, n, m] = problem.shape;
    let device = problem.cost.device();
    let balanced = config.tau.is_none();
    let mut f = Tensor::<2>::zeros([batch, n], &device);
    let mut g = Tensor::<2>::zeros([batch, m], &device);
    let mut progress = Progress {
        iterations: 0,
        converged: vec![false; batch],
        converged_at: vec![None; batch],
        pending: Vec::new(),
    };
    for it in 1..=config.max_iter {
        let check = it % config.check_every == 0 || it == config.max_iter;
        let lse_rows = problem.lse_rows(&g);
        if balanced {
            if it > 1 {
                // The row error of the plan after `it − 1` iterations.
                let error = problem.row_error(&f, &lse_rows);
                progress.pending.push((it - 1, error));
            }
            if check && progress.settle(config.tol)? {
                break;
            }
        }
        let f_next = lse_rows * problem.step.clone();
        let g_next = problem.g_step(&f_next);
        progress.iterations = it;
        let change = match !balanced && check {
            true => Some(largest_change(&f, &f_next, &g, &g_next)?),
            false => None,
        };
        f = f_next;
        g = g_next;
        if change.is_some_and(|c| f64::from(c) <= config.tol) {
            progress.converged = vec![true; batch];
            break;
        }
    }
    Ok((f, g, progress))
}

/// The largest change of either potential over the batch.
fn largest_change(
    f: &Tensor<2>,
    f_next: &Tensor<2>,
    g: &Tensor<2>,
    g_next: &Tensor<2>,
) -> Result<f32, OtError> {
    let change = read_vec(
        (f_next.clone() - f.clone())
            .abs()
            .max()
            .reshape([1])
            .max_pair((g_next.clone() - g.clone()).abs().max().reshape([1])),
    )?[0];
    if !change.is_finite() {
        return Err(OtError::NonFiniteResult {
            what: "dual potential",
        });
    }
    Ok(change)
}

/// The plan from the final potentials, its marginal errors and the per-item convergence.
fn finish(
    problem: LogDomain,
    pair_invalid: Tensor<3, Bool>,
    f: Tensor<2>,
    g: Tensor<2>,
    progress: Progress,
    eps: Vec<f64>,
    config: &SinkhornConfig,
) -> Result<BatchSolution, OtError> {
    let [batch, n, m] = problem.shape;
    let mut plan = problem.log_plan(&f, &g).exp().mask_fill(pair_invalid, 0.0);
    if config.gradient == GradientMode::Envelope {
        plan = plan.detach();
    }
    let row_err = (plan.clone().sum_dim(2).reshape([batch, n]) - problem.a)
        .abs()
        .sum_dim(1);
    let col_err = (plan.clone().sum_dim(1).reshape([batch, m]) - problem.b)
        .abs()
        .sum_dim(1);
    let marginal_error = read_vec((row_err + col_err).reshape([batch]))?;
    if marginal_error.iter().any(|e| !e.is_finite()) {
        return Err(OtError::NonFiniteResult {
            what: "transport plan",
        });
    }
    let Progress {
        iterations,
        mut converged,
        mut converged_at,
        ..
    } = progress;
    if config.tau.is_none() && iterations == config.max_iter {
        // The loop ran out without a final check on the returned plan: judge it directly.
        converged = marginal_error
            .iter()
            .map(|&e| f64::from(e) <= 2.0 * config.tol)
            .collect();
        for (at, &c) in converged_at.iter_mut().zip(&converged) {
            if at.is_none() && c {
                *at = Some(iterations);
            }
        }
    }
    if config.tau.is_some() {
        // Unbalanced runs stop on the potentials' change, shared by the batch.
        converged_at = converged.iter().map(|&c| c.then_some(iterations)).collect();
    }
    Ok(BatchSolution {
        plan,
        f,
        g,
        diagnostics: Diagnostics {
            iterations,
            converged_at,
            epsilon: eps,
            marginal_error,
            converged,
        },
    })
}
