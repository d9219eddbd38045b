//! Criterion benches of the Sinkhorn solvers. For the side-by-side comparison with POT run
//! `cargo xtask bench ot`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ot_core::SinkhornConfig;
use ot_core::backend::Backend;
use ot_core::reference::{self, CostMatrix};
use ot_core::tensor::{Marginals, sinkhorn_batched, tensor2, tensor3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn costs(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random::<f64>() * 2.0).collect()
}

fn reference_solver(c: &mut Criterion) {
    let config = SinkhornConfig::new()
        .with_epsilon(0.05)
        .with_tol(1e-6)
        .with_max_iter(10_000);
    let mut group = c.benchmark_group("reference_sinkhorn");
    for n in [32usize, 256] {
        let cost = CostMatrix::new(n, n, costs(n * n, n as u64)).unwrap();
        let a = reference::uniform(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| reference::sinkhorn(&cost, &a, &a, &config).unwrap())
        });
    }
    group.finish();
}

fn tensor_solver(c: &mut Criterion) {
    let device = Backend::cpu_default().device().unwrap();
    let config = SinkhornConfig::new()
        .with_epsilon(0.05)
        .with_tol(1e-6)
        .with_max_iter(10_000);
    let (batch, n) = (64usize, 32usize);
    let cost: Vec<f32> = costs(batch * n * n, 7)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    let w = vec![1.0 / n as f32; batch * n];
    c.bench_function("tensor_sinkhorn_b64_n32", |bench| {
        bench.iter(|| {
            let marginals = Marginals::from_weights(
                tensor2(w.clone(), [batch, n], &device),
                tensor2(w.clone(), [batch, n], &device),
            );
            sinkhorn_batched(
                tensor3(cost.clone(), [batch, n, n], &device),
                &marginals,
                &config,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, reference_solver, tensor_solver);
criterion_main!(benches);
