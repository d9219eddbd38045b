//! Named weights → burn modules. Every loader (safetensors, E5S1) implements
//! [`WeightSource`] under Hugging Face BERT parameter names; matrices come in PyTorch's
//! `[out, in]` layout and are transposed here into burn's `[in, out]`.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;

use crate::encoder::EncoderConfig;
use crate::error::Result;

/// A store of f32 tensors addressed by Hugging Face BERT names
/// (`embeddings.word_embeddings.weight`, `encoder.layer.3.attention.self.query.bias`, ...).
pub trait WeightSource {
    /// The file the weights come from (for error messages).
    fn path(&self) -> &Path;
    /// The tensor `name` as row-major f32, checked to have exactly `shape`.
    /// A missing tensor or a different shape is an error naming both.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
}

pub(crate) fn tensor_from(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

pub(crate) fn vector_from(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Transpose a row-major `[rows, cols]` matrix.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; values.len()];
    const T: usize = 32;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}

/// `Linear` from `{prefix}.weight` (`[d_out, d_in]`) and `{prefix}.bias` (`[d_out]`).
pub(crate) fn linear_from(
    src: &mut dyn WeightSource,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear> {
    let w = src.tensor(&format!("{prefix}.weight"), &[d_out, d_in])?;
    let b = src.tensor(&format!("{prefix}.bias"), &[d_out])?;
    Ok(Linear {
        weight: Param::from_tensor(tensor_from(
            transpose(&w, d_out, d_in),
            [d_in, d_out],
            device,
        )),
        bias: Some(Param::from_tensor(vector_from(b, device))),
    })
}

/// `Embedding` from a `[rows, d]` table.
pub(crate) fn embedding_from(
    src: &mut dyn WeightSource,
    name: &str,
    shape: [usize; 2],
    device: &Device,
) -> Result<Embedding> {
    let w = src.tensor(name, &shape)?;
    Ok(Embedding {
        weight: Param::from_tensor(tensor_from(w, shape, device)),
    })
}

pub(crate) fn layer_norm_init(c: &EncoderConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(c.hidden_size)
        .with_epsilon(c.layer_norm_eps)
        .init(device)
}

/// `LayerNorm` from `{prefix}.weight` / `{prefix}.bias`.
pub(crate) fn layer_norm_from(
    src: &mut dyn WeightSource,
    c: &EncoderConfig,
    prefix: &str,
    device: &Device,
) -> Result<LayerNorm> {
    let d = c.hidden_size;
    let gamma = src.tensor(&format!("{prefix}.weight"), &[d])?;
    let beta = src.tensor(&format!("{prefix}.bias"), &[d])?;
    let mut ln = layer_norm_init(c, device);
    ln.gamma = Param::from_tensor(vector_from(gamma, device));
    ln.beta = Some(Param::from_tensor(vector_from(beta, device)));
    Ok(ln)
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_is_exact() {
        let (r, c) = (37, 45);
        let m: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
        let t = super::transpose(&m, r, c);
        for i in 0..r {
            for j in 0..c {
                assert_eq!(t[j * r + i], m[i * c + j]);
            }
        }
        assert_eq!(super::transpose(&t, c, r), m);
    }
}
