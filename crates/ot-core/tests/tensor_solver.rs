//! The batched burn solver against the f64 reference, on the CPU default backend (and on
//! wgpu / tch when those features are built).
//!
//! Tolerances: f32 on the device vs f64 reference: plan entries within 2e-5 (ε ≥ 0.05,
//! unit-scale costs), transport costs within 1e-4 relative.

use burn::tensor::{Bool, Device, Tensor, TensorData};
use ot_core::backend::Backend;
use ot_core::reference::{self, CostMatrix};
use ot_core::tensor::{
    CostKind, Marginals, ot_loss, pairwise_cost, sinkhorn_batched, tensor2, tensor3,
};
use ot_core::{GradientMode, SinkhornConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cpu() -> Device {
    Backend::cpu_default().device().unwrap()
}

/// A batch of `batch` random problems of shape n × m with costs in [0, 1) and positive
/// normalised weights.
struct RandomBatch {
    batch: usize,
    n: usize,
    m: usize,
    cost: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
}

fn random_batch(seed: u64, batch: usize, n: usize, m: usize) -> RandomBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cost = (0..batch * n * m).map(|_| rng.random::<f32>()).collect();
    let mut weights = |len: usize| -> Vec<f32> {
        let mut w: Vec<f32> = (0..batch * len)
            .map(|_| rng.random::<f32>() + 0.1)
            .collect();
        for chunk in w.chunks_mut(len) {
            let s: f32 = chunk.iter().sum();
            chunk.iter_mut().for_each(|x| *x /= s);
        }
        w
    };
    let a = weights(n);
    let b = weights(m);
    RandomBatch {
        batch,
        n,
        m,
        cost,
        a,
        b,
    }
}

impl RandomBatch {
    fn tensors(&self, device: &Device) -> (Tensor<3>, Marginals) {
        (
            tensor3(self.cost.clone(), [self.batch, self.n, self.m], device),
            Marginals::from_weights(
                tensor2(self.a.clone(), [self.batch, self.n], device),
                tensor2(self.b.clone(), [self.batch, self.m], device),
            ),
        )
    }

    /// Item `k` in f64, weights renormalised in f64 (f32 sums are off by ~1e-8).
    fn item(&self, k: usize) -> (CostMatrix, Vec<f64>, Vec<f64>) {
        let (n, m) = (self.n, self.m);
        let c = self.cost[k * n * m..(k + 1) * n * m]
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let normalised = |w: &[f32]| -> Vec<f64> {
            let total: f64 = w.iter().map(|&x| f64::from(x)).sum();
            w.iter().map(|&x| f64::from(x) / total).collect()
        };
        (
            CostMatrix::new(n, m, c).unwrap(),
            normalised(&self.a[k * n..(k + 1) * n]),
            normalised(&self.b[k * m..(k + 1) * m]),
        )
    }
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    x.iter()
        .zip(y)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

#[test]
fn f32_tensor_solver_agrees_with_f64_reference() {
    let device = cpu();
    for (seed, eps, tau) in [
        (1, 0.05, None),
        (2, 0.2, None),
        (3, 0.1, Some(1.0)),
        (4, 1.0, None),
    ] {
        let rb = random_batch(seed, 6, 7, 9);
        let (cost, marginals) = rb.tensors(&device);
        let config = SinkhornConfig::new()
            .with_epsilon(eps)
            .with_tau(tau)
            .with_tol(1e-6)
            .with_max_iter(5_000)
            .with_check_every(5);
        let solution = sinkhorn_batched(cost, &marginals, &config).unwrap();
        assert!(
            solution.diagnostics.all_converged(),
            "seed {seed}: {:?}",
            solution.diagnostics
        );
        let plan = to_vec(solution.plan);
        let ref_config = config.clone().with_tol(1e-12).with_max_iter(1_000_000);
        for k in 0..rb.batch {
            let (c, a, b) = rb.item(k);
            let r = reference::sinkhorn(&c, &a, &b, &ref_config).unwrap();
            let expected: Vec<f32> = r.plan.iter().map(|&x| x as f32).collect();
            let got = &plan[k * rb.n * rb.m..(k + 1) * rb.n * rb.m];
            let diff = max_abs_diff(got, &expected);
            assert!(
                diff < 2e-5,
                "seed {seed} item {k}: plan differs by {diff:e}"
            );
        }
    }
}

#[test]
fn batched_solve_equals_a_loop_over_single_problems() {
    let device = cpu();
    let rb = random_batch(7, 5, 6, 4);
    let config = SinkhornConfig::new()
        .with_epsilon(0.1)
        .with_tol(1e-7)
        .with_max_iter(2_000);
    let (cost, marginals) = rb.tensors(&device);
    let batched = to_vec(sinkhorn_batched(cost, &marginals, &config).unwrap().plan);
    for k in 0..rb.batch {
        let (n, m) = (rb.n, rb.m);
        let single = sinkhorn_batched(
            tensor3(
                rb.cost[k * n * m..(k + 1) * n * m].to_vec(),
                [1, n, m],
                &device,
            ),
            &Marginals::from_weights(
                tensor2(rb.a[k * n..(k + 1) * n].to_vec(), [1, n], &device),
                tensor2(rb.b[k * m..(k + 1) * m].to_vec(), [1, m], &device),
            ),
            &config,
        )
        .unwrap();
        let diff = max_abs_diff(&to_vec(single.plan), &batched[k * n * m..(k + 1) * n * m]);
        assert!(diff < 1e-6, "item {k}: {diff:e}");
    }
}

#[test]
fn padded_and_masked_problem_equals_the_unpadded_one() {
    let device = cpu();
    let (n, m, pn, pm) = (4, 3, 7, 5);
    let rb = random_batch(11, 1, n, m);
    let config = SinkhornConfig::new()
        .with_epsilon(0.05)
        .with_tol(1e-7)
        .with_max_iter(5_000);
    let (cost, marginals) = rb.tensors(&device);
    let plain = to_vec(sinkhorn_batched(cost, &marginals, &config).unwrap().plan);

    // Embed in a 7 × 5 problem whose padding costs are NaN and padding weights are zero.
    let mut padded_cost = vec![f32::NAN; pn * pm];
    for i in 0..n {
        for j in 0..m {
            padded_cost[i * pm + j] = rb.cost[i * m + j];
        }
    }
    let mut a = rb.a.clone();
    a.resize(pn, 0.0);
    let mut b = rb.b.clone();
    b.resize(pm, 0.0);
    let solution = sinkhorn_batched(
        tensor3(padded_cost, [1, pn, pm], &device),
        &Marginals::from_weights(tensor2(a, [1, pn], &device), tensor2(b, [1, pm], &device)),
        &config,
    )
    .unwrap();
    let padded = to_vec(solution.plan);
    for i in 0..pn {
        for j in 0..pm {
            let p = padded[i * pm + j];
            if i < n && j < m {
                assert!(
                    (p - plain[i * m + j]).abs() < 1e-6,
                    "({i},{j}): {p} vs {}",
                    plain[i * m + j]
                );
            } else {
                assert_eq!(p, 0.0, "padding entry ({i},{j}) carries mass");
            }
        }
    }
    assert!(solution.diagnostics.marginal_error[0] < 1e-5);
}

#[test]
fn uniform_marginals_from_masks_normalise_over_valid_tokens() {
    let device = cpu();
    let rows = Tensor::<2, Bool>::from_data(
        TensorData::new(vec![true, true, false, true, true, true], [2, 3]),
        &device,
    );
    let cols = Tensor::<2, Bool>::from_data(
        TensorData::new(vec![true, false, true, true], [2, 2]),
        &device,
    );
    let m = Marginals::uniform(rows, cols);
    let a = to_vec(m.a);
    let b = to_vec(m.b);
    assert_eq!(a, vec![0.5, 0.5, 0.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
    assert_eq!(b, vec![1.0, 0.0, 0.5, 0.5]);
}

#[test]
fn tiny_epsilon_on_unit_costs_stays_finite() {
    let device = cpu();
    let rb = random_batch(5, 4, 16, 16);
    let config = SinkhornConfig::new()
        .with_epsilon(1e-3)
        .with_tol(1e-4)
        .with_max_iter(3_000);
    let (cost, marginals) = rb.tensors(&device);
    let (loss, solution) = ot_loss(cost, &marginals, &config).unwrap();
    let loss = to_vec(loss);
    assert!(loss.iter().all(|l| l.is_finite()), "{loss:?}");
    assert!(
        to_vec(solution.plan)
            .iter()
            .all(|p| p.is_finite() && *p >= 0.0)
    );
    assert!(
        solution.diagnostics.max_marginal_error() < 1e-2,
        "{:?}",
        solution.diagnostics
    );
    // At ε = 1e-3 the entropic cost is close to the exact one.
    for (k, &l) in loss.iter().enumerate() {
        let (c, a, b) = rb.item(k);
        let exact = reference::exact_ot(&c, &a, &b).unwrap().transport_cost as f32;
        assert!(
            l >= exact - 1e-3 && l < exact + 0.02,
            "item {k}: {l} vs exact {exact}"
        );
    }
}

#[test]
fn diagnostics_report_non_convergence() {
    let device = cpu();
    let rb = random_batch(9, 2, 5, 5);
    let config = SinkhornConfig::new()
        .with_epsilon(0.01)
        .with_tol(1e-9)
        .with_max_iter(3);
    let (cost, marginals) = rb.tensors(&device);
    let s = sinkhorn_batched(cost, &marginals, &config).unwrap();
    assert_eq!(s.diagnostics.iterations, 3);
    assert!(!s.diagnostics.all_converged());
}

#[test]
fn bad_marginals_are_rejected() {
    let device = cpu();
    let cost = tensor3(vec![0.0; 8], [2, 2, 2], &device);
    let zero_item = Marginals::from_weights(
        tensor2(vec![0.5, 0.5, 0.0, 0.0], [2, 2], &device),
        tensor2(vec![0.5, 0.5, 0.5, 0.5], [2, 2], &device),
    );
    let err = sinkhorn_batched(cost.clone(), &zero_item, &SinkhornConfig::new()).unwrap_err();
    assert!(err.to_string().contains("batch item 1"), "{err}");
    let unequal = Marginals::from_weights(
        tensor2(vec![0.5, 0.5, 0.5, 0.5], [2, 2], &device),
        tensor2(vec![0.5, 0.5, 0.2, 0.2], [2, 2], &device),
    );
    assert!(sinkhorn_batched(cost, &unequal, &SinkhornConfig::new()).is_err());
}

/// ∂OT_ε/∂C = P (envelope theorem). The envelope-mode gradient of ⟨P, C⟩ from burn's autodiff
/// must match central finite differences of the f64 reference's entropic cost.
#[test]
fn envelope_gradient_matches_finite_differences() {
    let device = cpu().autodiff();
    let rb = random_batch(13, 1, 4, 5);
    let eps = 0.1;
    let config = SinkhornConfig::new()
        .with_epsilon(eps)
        .with_tol(1e-7)
        .with_max_iter(5_000)
        .with_gradient(GradientMode::Envelope);
    let cost = tensor3(rb.cost.clone(), [1, 4, 5], &device).require_grad();
    let marginals = Marginals::from_weights(
        tensor2(rb.a.clone(), [1, 4], &device),
        tensor2(rb.b.clone(), [1, 5], &device),
    );
    let (loss, _) = ot_loss(cost.clone(), &marginals, &config).unwrap();
    let grads = loss.sum().backward();
    let grad = to_vec(cost.grad(&grads).expect("cost has a gradient"));

    let (c, a, b) = rb.item(0);
    let ref_config = config.clone().with_tol(1e-13).with_max_iter(1_000_000);
    let h = 1e-5;
    for idx in 0..20 {
        let mut plus = c.data().to_vec();
        plus[idx] += h;
        let mut minus = c.data().to_vec();
        minus[idx] -= h;
        let f = |d: Vec<f64>| {
            reference::sinkhorn(&CostMatrix::new(4, 5, d).unwrap(), &a, &b, &ref_config)
                .unwrap()
                .entropic_cost
        };
        let fd = (f(plus) - f(minus)) / (2.0 * h);
        assert!(
            (fd as f32 - grad[idx]).abs() < 2e-5,
            "entry {idx}: fd {fd} vs envelope {}",
            grad[idx]
        );
    }
}

/// In unroll mode the gradient is that of ⟨P(C), C⟩ itself (plan included).
#[test]
fn unrolled_gradient_matches_finite_differences_of_the_transport_cost() {
    let device = cpu().autodiff();
    let rb = random_batch(17, 1, 3, 4);
    let config = SinkhornConfig::new()
        .with_epsilon(0.2)
        .with_tol(1e-7)
        .with_max_iter(300)
        .with_gradient(GradientMode::Unroll);
    let cost = tensor3(rb.cost.clone(), [1, 3, 4], &device).require_grad();
    let marginals = Marginals::from_weights(
        tensor2(rb.a.clone(), [1, 3], &device),
        tensor2(rb.b.clone(), [1, 4], &device),
    );
    let (loss, solution) = ot_loss(cost.clone(), &marginals, &config).unwrap();
    assert!(solution.diagnostics.all_converged());
    let grad = to_vec(cost.grad(&loss.sum().backward()).unwrap());
    let plan = to_vec(solution.plan);

    let (c, a, b) = rb.item(0);
    let ref_config = config.clone().with_tol(1e-13).with_max_iter(1_000_000);
    let h = 1e-5;
    let mut differs_from_plan = false;
    for idx in 0..12 {
        let eval = |delta: f64| {
            let mut d = c.data().to_vec();
            d[idx] += delta;
            reference::sinkhorn(&CostMatrix::new(3, 4, d).unwrap(), &a, &b, &ref_config)
                .unwrap()
                .transport_cost
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h);
        assert!(
            (fd as f32 - grad[idx]).abs() < 1e-3,
            "entry {idx}: fd {fd} vs unrolled {}",
            grad[idx]
        );
        differs_from_plan |= (grad[idx] - plan[idx]).abs() > 1e-3;
    }
    assert!(
        differs_from_plan,
        "unrolled gradient should include ∂P/∂C, not just P"
    );
}

#[test]
fn cosine_cost_matches_a_direct_computation() {
    let device = cpu();
    let x = tensor3(vec![1.0, 0.0, 0.0, 2.0, 3.0, 4.0], [1, 3, 2], &device);
    let y = tensor3(vec![0.0, 1.0, 1.0, 1.0], [1, 2, 2], &device);
    let c = to_vec(pairwise_cost(x.clone(), y.clone(), CostKind::Cosine));
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let expected = [1.0, 1.0 - s, 0.0, 1.0 - s, 1.0 - 0.8, 1.0 - 7.0 / 5.0 * s];
    assert!(max_abs_diff(&c, &expected) < 1e-6, "{c:?}");
    let e = to_vec(pairwise_cost(x, y, CostKind::SquaredEuclidean));
    assert!(
        max_abs_diff(&e, &[2.0, 1.0, 1.0, 2.0, 18.0, 13.0]) < 1e-5,
        "{e:?}"
    );
}

/// The same problem gives the same plan on every compiled-in backend.
#[test]
fn every_compiled_backend_agrees_with_the_cpu_default() {
    let rb = random_batch(21, 3, 8, 6);
    let config = SinkhornConfig::new()
        .with_epsilon(0.05)
        .with_tol(1e-6)
        .with_max_iter(3_000);
    let (cost, marginals) = rb.tensors(&cpu());
    let baseline = to_vec(sinkhorn_batched(cost, &marginals, &config).unwrap().plan);
    let compiled = Backend::compiled();
    assert!(!compiled.is_empty());
    for backend in compiled {
        let device = backend.device().unwrap();
        let (cost, marginals) = rb.tensors(&device);
        let solution = sinkhorn_batched(cost, &marginals, &config).unwrap();
        let diff = max_abs_diff(&to_vec(solution.plan), &baseline);
        assert!(
            diff < 1e-5,
            "{backend}: plan differs from the CPU default by {diff:e}"
        );
        eprintln!("{backend}: max |Δplan| = {diff:e}");
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_backend_is_built_and_solves() {
    // Runs on lavapipe on GPU-less CI machines (`apt-get install mesa-vulkan-drivers libvulkan1`).
    let device = Backend::Wgpu.device().unwrap();
    let rb = random_batch(23, 2, 5, 5);
    let (cost, marginals) = rb.tensors(&device);
    let (loss, s) = ot_loss(cost, &marginals, &SinkhornConfig::new().with_epsilon(0.1)).unwrap();
    assert!(s.diagnostics.all_converged());
    assert!(to_vec(loss).iter().all(|l| l.is_finite() && *l > 0.0));
}

#[cfg(feature = "tch")]
#[test]
fn tch_backend_is_built_and_solves() {
    let device = Backend::Tch.device().unwrap();
    let rb = random_batch(29, 2, 5, 5);
    let (cost, marginals) = rb.tensors(&device);
    let (loss, s) = ot_loss(cost, &marginals, &SinkhornConfig::new().with_epsilon(0.1)).unwrap();
    assert!(s.diagnostics.all_converged());
    assert!(to_vec(loss).iter().all(|l| l.is_finite() && *l > 0.0));
}

#[test]
fn relative_epsilon_agrees_with_the_reference_and_scales_with_the_cost() {
    let device = cpu();
    for scale in [
        ot_core::EpsilonScale::MeanCost,
        ot_core::EpsilonScale::MedianCost,
    ] {
        let rb = random_batch(11, 4, 6, 8);
        let (cost, marginals) = rb.tensors(&device);
        let config = SinkhornConfig::new()
            .with_epsilon(0.2)
            .with_epsilon_scale(scale)
            .with_tol(1e-6)
            .with_max_iter(5_000);
        let solution = sinkhorn_batched(cost.clone(), &marginals, &config).unwrap();
        assert!(solution.diagnostics.all_converged());
        let plan = to_vec(solution.plan);
        let ref_config = config.clone().with_tol(1e-12).with_max_iter(1_000_000);
        for k in 0..rb.batch {
            let (c, a, b) = rb.item(k);
            // the ε used is ε × the item's mean / median cost
            let mut v = c.data().to_vec();
            v.sort_by(f64::total_cmp);
            let s = match scale {
                ot_core::EpsilonScale::MeanCost => v.iter().sum::<f64>() / v.len() as f64,
                _ => 0.5 * (v[v.len() / 2 - 1] + v[v.len() / 2]),
            };
            let used = solution.diagnostics.epsilon[k];
            assert!(
                (used - 0.2 * s).abs() < 1e-6,
                "{scale:?} item {k}: ε {used}"
            );
            let r = reference::sinkhorn(&c, &a, &b, &ref_config).unwrap();
            let expected: Vec<f32> = r.plan.iter().map(|&x| x as f32).collect();
            let got = &plan[k * rb.n * rb.m..(k + 1) * rb.n * rb.m];
            let diff = max_abs_diff(got, &expected);
            assert!(diff < 2e-5, "{scale:?} item {k}: plan differs by {diff:e}");
            // an absolute solve at that ε gives the same plan
            let abs = reference::sinkhorn(
                &c,
                &a,
                &b,
                &ref_config
                    .clone()
                    .with_epsilon(used)
                    .with_epsilon_scale(ot_core::EpsilonScale::Absolute),
            )
            .unwrap();
            let d: f64 = abs
                .plan
                .iter()
                .zip(&r.plan)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(d < 1e-9, "{scale:?} item {k}: {d:e}");
        }
        // doubling every cost doubles the relative ε and leaves the plan unchanged
        let doubled = sinkhorn_batched(cost.mul_scalar(2.0), &marginals, &config).unwrap();
        assert!(max_abs_diff(&to_vec(doubled.plan), &plan) < 2e-5);
    }
}

#[test]
fn iteration_counts_are_exact_whatever_the_check_interval() {
    let device = cpu();
    let rb = random_batch(12, 5, 6, 7);
    let (cost, marginals) = rb.tensors(&device);
    let solve = |every: usize| {
        let config = SinkhornConfig::new()
            .with_epsilon(0.05)
            .with_tol(1e-5)
            .with_max_iter(2_000)
            .with_check_every(every);
        // The check interval is a setting of the tensor iterations.
        ot_core::tensor::sinkhorn_batched_tensor(cost.clone(), &marginals, &config)
            .unwrap()
            .diagnostics
    };
    let every_one = solve(1);
    let every_ten = solve(10);
    assert!(every_one.all_converged() && every_ten.all_converged());
    assert_eq!(every_one.converged_at, every_ten.converged_at);
    // checking every iteration stops exactly when the slowest item meets the tolerance
    assert_eq!(every_one.iterations_needed(), Some(every_one.iterations));
    assert!(every_ten.iterations >= every_one.iterations);
    assert!(every_ten.iterations % 10 == 9 || every_ten.iterations == 2_000);
    // items differ in what they need, so the counts are per item
    let needed: Vec<usize> = every_one.converged_at.iter().map(|c| c.unwrap()).collect();
    assert!(
        needed.iter().any(|&k| k < every_one.iterations),
        "{needed:?}"
    );
}

/// The envelope-mode solver iterates on the host (f64 kernel space, per item); it must give
/// the plans of the tensor iterations within the solver's tolerance, with padding, absolute
/// and relative ε, and the same exact iteration counts up to rounding.
#[test]
fn host_iterations_give_the_tensor_solvers_plans() {
    use ot_core::tensor::{sinkhorn_batched_host, sinkhorn_batched_tensor};
    let d = cpu();
    let rb = random_batch(21, 6, 9, 7);
    let (cost, _) = rb.tensors(&d);
    // Padding: item k keeps its first 9 − k % 3 rows and 7 − k % 2 columns.
    let mask = |len: usize, drop: &dyn Fn(usize) -> usize| -> Tensor<2, Bool> {
        let v: Vec<bool> = (0..rb.batch)
            .flat_map(|k| (0..len).map(move |i| i < len - drop(k)))
            .collect();
        Tensor::from_data(TensorData::new(v, [rb.batch, len]), &d)
    };
    let marginals = Marginals::uniform(mask(rb.n, &|k| k % 3), mask(rb.m, &|k| k % 2));
    for config in [
        SinkhornConfig::new().with_epsilon(0.05).with_tol(1e-6),
        SinkhornConfig::new()
            .with_epsilon(0.1)
            .with_epsilon_scale(ot_core::EpsilonScale::MeanCost)
            .with_max_iter(2_000)
            .with_tol(1e-6),
    ] {
        let host = sinkhorn_batched_host(cost.clone(), &marginals, &config).unwrap();
        let tensor = sinkhorn_batched_tensor(cost.clone(), &marginals, &config).unwrap();
        let (p, q) = (to_vec(host.plan), to_vec(tensor.plan));
        let worst = p
            .iter()
            .zip(&q)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 2e-5, "{config:?}: plans differ by {worst}");
        let (hd, td) = (&host.diagnostics, &tensor.diagnostics);
        assert!(hd.all_converged() && td.all_converged(), "{hd:?} {td:?}");
        assert!(hd.max_marginal_error() <= 1e-6, "{hd:?}");
        for k in 0..rb.batch {
            assert!((hd.epsilon[k] - td.epsilon[k]).abs() < 1e-6 * td.epsilon[k].max(1.0));
            let (h, t) = (hd.converged_at[k].unwrap(), td.converged_at[k].unwrap());
            assert!(
                h.abs_diff(t) <= 2 + t / 10,
                "item {k}: {h} vs {t} iterations"
            );
        }
        // Padding entries of the plan are exactly zero.
        for k in 0..rb.batch {
            for i in 0..rb.n {
                for j in 0..rb.m {
                    if i >= rb.n - k % 3 || j >= rb.m - k % 2 {
                        assert_eq!(p[(k * rb.n + i) * rb.m + j], 0.0);
                    }
                }
            }
        }
    }
}
