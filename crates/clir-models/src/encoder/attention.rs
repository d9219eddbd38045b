//! Multi-head self-attention with a padding mask and the post-LN residual:
//!
//! ```text
//! Q, K, V = h W_Q + b_Q, h W_K + b_K, h W_V + b_V        (split into H heads of d/H)
//! A = softmax(Q Kᵀ / √(d/H) + bias(m))                     (bias = -1e9 on padding keys)
//! out = LN(h + concat_heads(A V) W_O + b_O)
//! ```

use burn::nn::{LayerNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::EncoderConfig;
use super::layer::token_wise;
use crate::error::Result;
use crate::weights::{WeightSource, layer_norm_from, layer_norm_init, linear_from};

/// Self-attention sub-layer (with its output projection, residual and LayerNorm).
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub norm: LayerNorm,
    pub num_heads: usize,
}

impl SelfAttention {
    pub(crate) fn init(c: &EncoderConfig, device: &Device) -> Self {
        let d = c.hidden_size;
        Self {
            query: LinearConfig::new(d, d).init(device),
            key: LinearConfig::new(d, d).init(device),
            value: LinearConfig::new(d, d).init(device),
            output: LinearConfig::new(d, d).init(device),
            norm: layer_norm_init(c, device),
            num_heads: c.num_heads,
        }
    }

    pub(crate) fn from_weights(
        c: &EncoderConfig,
        src: &mut dyn WeightSource,
        prefix: &str,
        device: &Device,
    ) -> Result<Self> {
        let d = c.hidden_size;
        Ok(Self {
            query: linear_from(src, &format!("{prefix}.self.query"), d, d, device)?,
            key: linear_from(src, &format!("{prefix}.self.key"), d, d, device)?,
            value: linear_from(src, &format!("{prefix}.self.value"), d, d, device)?,
            output: linear_from(src, &format!("{prefix}.output.dense"), d, d, device)?,
            norm: layer_norm_from(src, c, &format!("{prefix}.output.LayerNorm"), device)?,
            num_heads: c.num_heads,
        })
    }

    /// `h`: `[batch, len, d]`; `bias`: `[batch, 1, 1, len]` from [`super::attention_bias`].
    pub fn forward(&self, h: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [b, l, d] = h.dims();
        let heads = self.num_heads;
        let hd = d / heads;
        let split = |x: Tensor<3>| x.reshape([b, l, heads, hd]).swap_dims(1, 2);
        let q = split(token_wise(&self.query, h.clone()));
        let k = split(token_wise(&self.key, h.clone()));
        let v = split(token_wise(&self.value, h.clone()));
        let scores = q.matmul(k.transpose()) * (1.0 / (hd as f64).sqrt()) + bias;
        let attn = softmax(scores, 3);
        let context = attn.matmul(v).swap_dims(1, 2).reshape([b, l, d]);
        self.norm.forward(h + token_wise(&self.output, context))
    }
}
