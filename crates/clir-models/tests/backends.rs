//! The same input gives the same token states and sentence embeddings on every compiled
//! backend (flex is the reference). Tiny random model so lavapipe stays fast; the weights are
//! moved between devices through a burn record.
#![cfg(any(feature = "wgpu", feature = "tch", feature = "ndarray"))]

mod common;

use burn::prelude::*;
use burn::store::ModuleRecord;
use clir_models::pooling::{Pooling, l2_normalize, pool};
use clir_models::{Encoder, TokenBatch};
use common::*;

fn run(enc: &Encoder, batch: &TokenBatch, device: &Device) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mask = batch.mask_tensor(device);
    let out = enc.forward(batch.ids_tensor(device), mask.clone());
    let first = to_vec(out.layer(1).unwrap());
    let last = out.last();
    let pooled = to_vec(l2_normalize(pool(last.clone(), mask, Pooling::Mean)));
    (first, to_vec(last), pooled)
}

fn compare_with_flex(other: Device, name: &str) {
    let cfg = clir_models::EncoderConfig {
        vocab_size: 64,
        max_position: 40,
        ..tiny_config()
    };
    let flex_dev = flex();
    let enc = cfg.init(&flex_dev);
    let bytes = enc.clone().into_record().into_bytes().unwrap();
    let moved = cfg
        .init(&other)
        .load_record(ModuleRecord::from_bytes(bytes).unwrap());
    let seqs = vec![
        vec![2u32, 10, 11, 12, 13, 3],
        vec![2, 40, 3],
        (0..30).map(|i| (i * 7 % 60) as u32 + 2).collect(),
    ];
    let batch = TokenBatch::from_sequences(&seqs, 1);
    let (f1, fl, fp) = run(&enc, &batch, &flex_dev);
    let (o1, ol, op) = run(&moved, &batch, &other);
    // compare only real (non-padding) token states
    let d = cfg.hidden_size;
    let real = |v: &[f32]| -> Vec<f32> {
        let mut out = Vec::new();
        for (r, s) in seqs.iter().enumerate() {
            out.extend_from_slice(&v[r * batch.len * d..(r * batch.len + s.len()) * d]);
        }
        out
    };
    let d1 = max_abs_diff(&real(&f1), &real(&o1));
    let dl = max_abs_diff(&real(&fl), &real(&ol));
    let dp = max_abs_diff(&fp, &op);
    eprintln!("flex vs {name}: layer-1 max |Δ| {d1:.2e}, last {dl:.2e}, pooled {dp:.2e}");
    assert!(d1 < 1e-4 && dl < 1e-4 && dp < 1e-4, "{d1} {dl} {dp}");
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_flex() {
    compare_with_flex(
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        "wgpu",
    );
}

#[cfg(feature = "tch")]
#[test]
fn tch_matches_flex() {
    compare_with_flex(Device::libtorch(), "tch");
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_matches_flex() {
    compare_with_flex(Device::ndarray(), "ndarray");
}

/// Placement on the real wgpu adapter (lavapipe on CI): a model that fits moves and embeds
/// as on flex; under a buffer limit smaller than its table it stays on the host, unchanged;
/// a table over the adapter's own buffer limit stays on the host.
#[cfg(feature = "wgpu")]
#[test]
fn models_go_to_wgpu_only_when_the_adapters_limits_hold_them() {
    use clir_models::TextKind;
    use clir_models::synthetic::{SyntheticSpec, synthetic_embedder};
    let spec = SyntheticSpec {
        layers: 2,
        hidden: 16,
        ffn: 32,
        heads: 4,
        max_position: 40,
        vocab_size: 7,
    };
    let model = synthetic_embedder(spec, 1, &flex()).unwrap();
    let texts = ["w4 w5", "w6", "w5 w4 w6"];
    let on_host = model.embed(&texts, TextKind::Passage, 8).unwrap();
    let wgpu = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);

    let moved = model.clone().placed("teacher", &wgpu);
    assert_eq!(moved.device, wgpu);
    let on_gpu = moved.embed(&texts, TextKind::Passage, 8).unwrap();
    for (a, b) in on_host.iter().zip(&on_gpu) {
        assert!(max_abs_diff(a, b) < 1e-4, "{a:?} {b:?}");
    }

    let (_, rows, cols) = clir_models::placement::largest_tensor(&model.config.encoder);
    let table = (rows * cols * 4) as u64;
    let small = ot_core::backend::DeviceLimits {
        max_buffer: table - 1,
        max_memory: None,
    };
    let kept = model.clone().placed_within("teacher", &wgpu, Some(small));
    assert_eq!(kept.device, flex());
    assert_eq!(kept.embed(&texts, TextKind::Passage, 8).unwrap(), on_host);

    // 40,000 × 1,024 f32 = 164 MB: over lavapipe's 128 MiB buffers, within a real GPU's.
    let limits = ot_core::backend::device_limits(&wgpu).unwrap();
    let big = SyntheticSpec {
        layers: 1,
        hidden: 1024,
        ffn: 8,
        heads: 2,
        vocab_size: 40_000,
        ..spec
    };
    let placed = synthetic_embedder(big, 1, &flex())
        .unwrap()
        .placed("teacher", &wgpu);
    let fits = 40_000 * 1024 * 4 <= limits.max_buffer;
    assert_eq!(placed.device == wgpu, fits, "{limits:?}");
}
