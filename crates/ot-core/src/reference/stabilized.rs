//! The stabilised scaling form of Sinkhorn (Schmitzer 2016), used by
//! [`sinkhorn`](super::sinkhorn).
//!
//! The log-domain iteration evaluates `n·m` exponentials twice per iteration. Writing the
//! potentials as `f = f̄ + ε ln u`, `g = ḡ + ε ln v` with a kernel
//! `K_ij = exp((f̄_i + ḡ_j − C_ij)/ε)` built once, the same iteration becomes two
//! matrix-vector products:
//!
//! ```text
//! u_i ← (Σ_j K_ij b_j v_j)^(−λ) e^(−(1−λ) f̄_i/ε),   v_j ← (Σ_i K_ij a_i u_i)^(−λ) e^(−(1−λ) ḡ_j/ε)
//! ```
//!
//! (the exponential factors, 1 when balanced, make `f̄ + ε ln u` equal the log-domain update
//! `−λ ε LSE(…)` in the unbalanced case).
//!
//! When a scaling leaves `[e^−50, e^50]` (or a sum under/overflows) the step is discarded,
//! the scalings are absorbed into `(f̄, ḡ)`, one exact log-domain iteration re-centres the
//! kernel, and scaling resumes. The iterates are the log-domain iterates, so results and
//! iteration counts agree with [`sinkhorn_log_domain`](super::sinkhorn_log_domain).

use rayon::prelude::*;

use super::prepared::{Prepared, log_domain_iterate};
use crate::{OtError, SinkhornConfig};

/// Absorb the scalings once `|ln u|` or `|ln v|` exceeds this.
const ABSORB_LOG: f64 = 50.0;

pub(super) fn iterate(
    p: &Prepared<'_>,
    config: &SinkhornConfig,
) -> Result<(Vec<f64>, Vec<f64>, usize, bool), OtError> {
    let (n, m) = (p.cost.rows(), p.cost.cols());
    let eps = config.epsilon;
    let inv_eps = 1.0 / eps;
    let lambda = config.damping();
    let balanced = config.tau.is_none();
    let mut potentials = (p.f0.clone(), p.g0.clone());
    let mut total = 0;
    let mut kb = vec![0.0; n * m]; // K_ij b_j, row-major n × m
    let mut ka = vec![0.0; m * n]; // K_ij a_i, transposed: row j holds column j
    let mut s = vec![0.0; n];
    let mut t = vec![0.0; m];

    'phase: while total < config.max_iter {
        // One exact log-domain iteration re-centres the kernel around the current potentials.
        let (f, g, done, converged) = log_domain_iterate(p, config, potentials, 1)?;
        total += done;
        if converged || total >= config.max_iter {
            return Ok((f, g, total, converged));
        }
        build_kernels(p, &f, &g, inv_eps, &mut kb, &mut ka);
        let centre = |pot: &[f64]| -> Vec<f64> {
            pot.iter()
                .map(|&x| (-(1.0 - lambda) * x * inv_eps).exp())
                .collect()
        };
        let (cu, cv) = (centre(&f), centre(&g));
        let mut u = vec![1.0; n];
        let mut v = vec![1.0; m];
        loop {
            if total >= config.max_iter {
                return Ok((absorb(&f, &u, eps), absorb(&g, &v, eps), total, false));
            }
            matvec(&kb, m, &v, &mut s, p.parallel);
            if balanced {
                // Row sums of the current plan: a_i u_i (K b v)_i.
                let error: f64 = (0..n).map(|i| (p.a[i] * u[i] * s[i] - p.a[i]).abs()).sum();
                if error.is_finite() && error <= config.tol {
                    return Ok((absorb(&f, &u, eps), absorb(&g, &v, eps), total, true));
                }
            }
            let u_next: Vec<f64> = s
                .iter()
                .zip(&cu)
                .map(|(&x, c)| scale(x, lambda) * c)
                .collect();
            matvec(&ka, n, &u_next, &mut t, p.parallel);
            let v_next: Vec<f64> = t
                .iter()
                .zip(&cv)
                .map(|(&x, c)| scale(x, lambda) * c)
                .collect();
            if !(stable(&u_next) && stable(&v_next)) {
                // Discard this step: absorb the last good scalings and re-centre.
                potentials = (absorb(&f, &u, eps), absorb(&g, &v, eps));
                continue 'phase;
            }
            total += 1;
            let change = if balanced {
                0.0
            } else {
                eps * max_log_ratio(&u, &u_next).max(max_log_ratio(&v, &v_next))
            };
            u = u_next;
            v = v_next;
            if !balanced && change <= config.tol {
                return Ok((absorb(&f, &u, eps), absorb(&g, &v, eps), total, true));
            }
        }
    }
    Ok((potentials.0, potentials.1, total, false))
}

/// `x^(−λ)`.
fn scale(x: f64, lambda: f64) -> f64 {
    if lambda == 1.0 {
        1.0 / x
    } else {
        x.powf(-lambda)
    }
}

fn stable(x: &[f64]) -> bool {
    x.iter()
        .all(|&v| v.is_finite() && v > 0.0 && v.ln().abs() < ABSORB_LOG)
}

fn absorb(potential: &[f64], scaling: &[f64], eps: f64) -> Vec<f64> {
    potential
        .iter()
        .zip(scaling)
        .map(|(p, s)| p + eps * s.ln())
        .collect()
}

fn max_log_ratio(x: &[f64], y: &[f64]) -> f64 {
    x.iter()
        .zip(y)
        .fold(0.0_f64, |acc, (p, q)| acc.max((q / p).ln().abs()))
}

fn build_kernels(
    p: &Prepared<'_>,
    f: &[f64],
    g: &[f64],
    inv_eps: f64,
    kb: &mut [f64],
    ka: &mut [f64],
) {
    let (n, m) = (p.cost.rows(), p.cost.cols());
    let fill = |(i, (row, crow)): (usize, (&mut [f64], &[f64]))| {
        for j in 0..m {
            row[j] = ((f[i] + g[j] - crow[j]) * inv_eps).exp() * p.b[j];
        }
    };
    let fill_t = |(j, (row, crow)): (usize, (&mut [f64], &[f64]))| {
        for i in 0..n {
            row[i] = ((f[i] + g[j] - crow[i]) * inv_eps).exp() * p.a[i];
        }
    };
    if p.parallel {
        kb.par_chunks_exact_mut(m)
            .zip(p.cost.data().par_chunks_exact(m))
            .enumerate()
            .for_each(fill);
        ka.par_chunks_exact_mut(n)
            .zip(p.cost_t.data().par_chunks_exact(n))
            .enumerate()
            .for_each(fill_t);
    } else {
        kb.chunks_exact_mut(m)
            .zip(p.cost.data().chunks_exact(m))
            .enumerate()
            .for_each(fill);
        ka.chunks_exact_mut(n)
            .zip(p.cost_t.data().chunks_exact(n))
            .enumerate()
            .for_each(fill_t);
    }
}

/// `out = K x` for a row-major matrix with `cols` columns.
fn matvec(k: &[f64], cols: usize, x: &[f64], out: &mut [f64], parallel: bool) {
    if parallel {
        k.par_chunks_exact(cols)
            .zip(out.par_iter_mut())
            .for_each(|(row, o)| *o = dot(row, x));
    } else {
        k.chunks_exact(cols)
            .zip(out.iter_mut())
            .for_each(|(row, o)| *o = dot(row, x));
    }
}

/// Dot product with eight independent accumulators, so the compiler can vectorise it.
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(p, q)| p * q)
        .sum();
    for (xs, ys) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += xs[l] * ys[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}
