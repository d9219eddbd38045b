//! The feed-forward GELU of one e5-small batch (32 sentences × 48 tokens × 1536 units) on the
//! CPU default backend: burn's own `gelu` next to the fused kernel in
//! `clir_models::encoder::gelu` (which the encoder uses). Each iteration gets a fresh tensor,
//! as the encoder's intermediate activations are.

use burn::prelude::*;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn activations(device: &Device) -> Tensor<3> {
    let values: Vec<f32> = (0..32 * 48 * 1536)
        .map(|i| ((i * 7919 % 10007) as f32 / 10007.0 - 0.5) * 8.0)
        .collect();
    Tensor::from_data(TensorData::new(values, [32, 48, 1536]), device)
}

fn gelu(c: &mut Criterion) {
    let device = Device::flex();
    let x = activations(&device);
    let mut group = c.benchmark_group("gelu_32x48x1536");
    group.bench_function("burn", |b| {
        b.iter_batched(
            || x.clone().add_scalar(0.0),
            burn::tensor::activation::gelu,
            BatchSize::LargeInput,
        )
    });
    group.bench_function("fused", |b| {
        b.iter_batched(
            || x.clone().add_scalar(0.0),
            clir_models::encoder::gelu::gelu,
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, gelu);
criterion_main!(benches);
