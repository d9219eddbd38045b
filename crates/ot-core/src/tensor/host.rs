//! The batched solve with its iterations on the host, each item in the `f64` reference solver.

use burn::tensor::Tensor;

use super::{BatchSolution, Diagnostics, Marginals, checked_inputs, read_vec, tensor2, tensor3};
use crate::{OtError, SinkhornConfig};

/// [`sinkhorn_batched`](super::sinkhorn_batched) with the iterations on the host (see there); the plan is detached.
/// Padding rows and columns (zero weight) are left out of each item's problem; their plan
/// entries and potentials are zero.
pub fn sinkhorn_batched_host(
    cost: Tensor<3>,
    marginals: &Marginals,
    config: &SinkhornConfig,
) -> Result<BatchSolution, OtError> {
    use rayon::prelude::*;
    let ([batch, n, m], a, b) = checked_inputs(&cost, marginals, config)?;
    let device = cost.device();
    let av = read_vec(a.reshape([batch * n]))?;
    let bv = read_vec(b.reshape([batch * m]))?;
    let cv = read_vec(cost.detach().reshape([batch * n * m]))?;
    type Item = (Vec<f32>, Vec<f32>, Vec<f32>, usize, bool, f64, f64);
    let items: Vec<Item> = (0..batch)
        .into_par_iter()
        .map(|k| -> Result<Item, OtError> {
            let row_ok = |i: usize| av[k * n + i] > 0.0;
            let col_ok = |j: usize| bv[k * m + j] > 0.0;
            let rows: Vec<usize> = (0..n).filter(|&i| row_ok(i)).collect();
            let cols: Vec<usize> = (0..m).filter(|&j| col_ok(j)).collect();
            let data = crate::reference::valid_costs((n, m), row_ok, col_ok, |i, j| {
                f64::from(cv[(k * n + i) * m + j])
            });
            // ε in cost units once per item; the solver below takes it as it is.
            let item_config = match config.epsilon_scale {
                crate::EpsilonScale::Absolute => config.clone(),
                _ => config.absolute_for(data.clone()),
            };
            let eps = item_config.epsilon;
            let c = crate::reference::CostMatrix::new(rows.len(), cols.len(), data)?;
            let wa: Vec<f64> = rows.iter().map(|&i| f64::from(av[k * n + i])).collect();
            let mut wb: Vec<f64> = cols.iter().map(|&j| f64::from(bv[k * m + j])).collect();
            if config.tau.is_none() {
                // f32 masses agree to ~1e-7 (checked above to 1e-4); the f64 solver wants
                // them equal to 1e-9: b is rescaled to a's mass.
                let ratio = wa.iter().sum::<f64>() / wb.iter().sum::<f64>();
                wb.iter_mut().for_each(|w| *w *= ratio);
            }
            let sol = crate::reference::sinkhorn(&c, &wa, &wb, &item_config)?;
            let mut plan = vec![0f32; n * m];
            let mut f = vec![0f32; n];
            let mut g = vec![0f32; m];
            for (r, &i) in rows.iter().enumerate() {
                f[i] = sol.f[r] as f32;
                for (q, &j) in cols.iter().enumerate() {
                    plan[i * m + j] = sol.plan[r * cols.len() + q] as f32;
                }
            }
            for (q, &j) in cols.iter().enumerate() {
                g[j] = sol.g[q] as f32;
            }
            Ok((
                plan,
                f,
                g,
                sol.iterations,
                sol.converged,
                eps,
                sol.marginal_error,
            ))
        })
        .collect::<Result<_, _>>()?;
    let mut plan = Vec::with_capacity(batch * n * m);
    let mut f = Vec::with_capacity(batch * n);
    let mut g = Vec::with_capacity(batch * m);
    let mut diagnostics = Diagnostics {
        iterations: 0,
        converged_at: Vec::with_capacity(batch),
        epsilon: Vec::with_capacity(batch),
        marginal_error: Vec::with_capacity(batch),
        converged: Vec::with_capacity(batch),
    };
    for (p, fk, gk, iterations, converged, eps, error) in items {
        if !error.is_finite() {
            return Err(OtError::NonFiniteResult {
                what: "transport plan",
            });
        }
        plan.extend(p);
        f.extend(fk);
        g.extend(gk);
        diagnostics.iterations = diagnostics.iterations.max(iterations);
        diagnostics
            .converged_at
            .push(converged.then_some(iterations));
        diagnostics.epsilon.push(eps);
        diagnostics.marginal_error.push(error as f32);
        diagnostics.converged.push(converged);
    }
    Ok(BatchSolution {
        plan: tensor3(plan, [batch, n, m], &device),
        f: tensor2(f, [batch, n], &device),
        g: tensor2(g, [batch, m], &device),
        diagnostics,
    })
}
