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
