//! One post-LN transformer layer: `h' = FFN(Attn(h))` with
//! `FFN(x) = LN(x + GELU(x W_1 + b_1) W_2 + b_2)` (exact, erf-based GELU; fused on
//! the CPU default backend, see [`super::gelu`]).

use burn::nn::{LayerNorm, Linear, LinearConfig};
use burn::prelude::*;

use super::gelu::gelu;
use super::{EncoderConfig, SelfAttention};
use crate::error::Result;
use crate::weights::{WeightSource, layer_norm_from, layer_norm_init, linear_from};

/// Position-wise GELU feed-forward block with residual and LayerNorm.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub intermediate: Linear,
    pub output: Linear,
    pub norm: LayerNorm,
}

impl FeedForward {
    /// `x`: `[batch, len, d]` → `LN(x + GELU(x W_1 + b_1) W_2 + b_2)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let inner = gelu(token_wise(&self.intermediate, x.clone()));
        self.norm.forward(x + token_wise(&self.output, inner))
    }
}

/// `linear` applied to every token of `x` (`[batch, len, d_in]` → `[batch, len, d_out]`) as
/// one `[batch·len, d_in] × [d_in, d_out]` product: mathematically `linear.forward(x)` (and bit
/// for bit on flex in the checks of docs/training.md), but burn no longer keeps a per-sequence
/// batched product when `len` is a multiple of 32, so flex packs the weight once per product
/// instead of once per sequence, forward and backward.
pub(crate) fn token_wise(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, l, d_in] = x.dims();
    let y = linear.forward(x.reshape([b * l, d_in]));
    let d_out = y.dims()[1];
    y.reshape([b, l, d_out])
}

/// Self-attention followed by the feed-forward block.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub attention: SelfAttention,
    pub feed_forward: FeedForward,
}

impl EncoderLayer {
    pub(crate) fn init(c: &EncoderConfig, device: &Device) -> Self {
        Self {
            attention: SelfAttention::init(c, device),
            feed_forward: FeedForward {
                intermediate: LinearConfig::new(c.hidden_size, c.intermediate_size).init(device),
                output: LinearConfig::new(c.intermediate_size, c.hidden_size).init(device),
                norm: layer_norm_init(c, device),
            },
        }
    }

    pub(crate) fn from_weights(
        c: &EncoderConfig,
        src: &mut dyn WeightSource,
        prefix: &str,
        device: &Device,
    ) -> Result<Self> {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        Ok(Self {
            attention: SelfAttention::from_weights(c, src, &format!("{prefix}.attention"), device)?,
            feed_forward: FeedForward {
                intermediate: linear_from(
                    src,
                    &format!("{prefix}.intermediate.dense"),
                    d,
                    f,
                    device,
                )?,
                output: linear_from(src, &format!("{prefix}.output.dense"), f, d, device)?,
                norm: layer_norm_from(src, c, &format!("{prefix}.output.LayerNorm"), device)?,
            },
        })
    }

    /// `h`: `[batch, len, d]`, `bias`: `[batch, 1, 1, len]`.
    pub fn forward(&self, h: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        self.feed_forward.forward(self.attention.forward(h, bias))
    }
}
