//! The BERT / XLM-R transformer encoder (post-LN), returning every layer's token states.
//!
//! With token ids `w`, positions `p` and a padding mask `m ∈ {0,1}^L`:
//!
//! ```text
//! h⁰ = LN(E_word[w] + E_pos[p + offset] + E_type[0])
//! hˡ = Layerˡ(hˡ⁻¹, m),   l = 1..N
//! ```
//!
//! `hidden_states[l]` is `hˡ` (index 0: the embedding output), so OPTICAL can distil the
//! token embeddings of any chosen layer.

mod attention;
mod embeddings;
pub mod gelu;
mod layer;

pub use attention::SelfAttention;
pub use embeddings::Embeddings;
pub use layer::{EncoderLayer, FeedForward};

use burn::prelude::*;

use crate::error::{ModelError, Result};
use crate::weights::WeightSource;

/// Shape of a BERT-family encoder (the fields of a Hugging Face `config.json`).
#[derive(Config, Debug, PartialEq)]
pub struct EncoderConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Model width `d`.
    pub hidden_size: usize,
    /// Number of transformer layers `N`.
    pub num_layers: usize,
    /// Attention heads per layer (`d` must be a multiple).
    pub num_heads: usize,
    /// Width of the GELU feed-forward block.
    pub intermediate_size: usize,
    /// Rows of the position-embedding table.
    pub max_position: usize,
    /// Rows of the token-type table (segment embeddings; only type 0 is used).
    #[config(default = 2)]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// First position row used (XLM-R checkpoints on the Hub start at `padding_idx + 1 = 2`).
    #[config(default = 0)]
    pub position_offset: usize,
}

impl EncoderConfig {
    /// Longest input (in tokens, specials included) the position table allows.
    pub fn max_tokens(&self) -> usize {
        self.max_position.saturating_sub(self.position_offset)
    }

    /// Checks that the shape is buildable (non-zero sizes, heads divide the width).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let fields = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("intermediate_size", self.intermediate_size),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (name, v) in fields {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_heads {}",
                self.hidden_size, self.num_heads
            ));
        }
        if self.max_tokens() < 2 {
            return Err(format!(
                "max_position {} with position_offset {} leaves fewer than 2 positions",
                self.max_position, self.position_offset
            ));
        }
        Ok(())
    }

    /// A randomly initialised encoder of this shape (burn's default initialisers).
    pub fn init(&self, device: &Device) -> Encoder {
        if let Err(e) = self.validate() {
            panic!("invalid EncoderConfig: {e}");
        }
        Encoder {
            embeddings: Embeddings::init(self, device),
            layers: (0..self.num_layers)
                .map(|_| EncoderLayer::init(self, device))
                .collect(),
        }
    }

    /// Builds the encoder from named weights (Hugging Face BERT names, `[out, in]` matrices).
    pub fn init_from_weights(
        &self,
        src: &mut dyn WeightSource,
        device: &Device,
    ) -> Result<Encoder> {
        self.validate()
            .map_err(|msg| ModelError::config(src.path(), msg))?;
        let embeddings = Embeddings::from_weights(self, src, device)?;
        let layers = (0..self.num_layers)
            .map(|i| EncoderLayer::from_weights(self, src, &format!("encoder.layer.{i}"), device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder { embeddings, layers })
    }
}

/// A stack of post-LN transformer layers over word + position + type embeddings.
#[derive(Module, Debug)]
pub struct Encoder {
    pub embeddings: Embeddings,
    pub layers: Vec<EncoderLayer>,
}

/// Token states of every layer, with the padding mask they were computed under.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `hidden_states[l]`: `[batch, len, d]` states after layer `l` (0 = embedding output).
    pub hidden_states: Vec<Tensor<3>>,
    /// `[batch, len]`: 1 for real tokens, 0 for padding.
    pub mask: Tensor<2>,
}

impl EncoderOutput {
    /// The last layer's token states `hᴺ`.
    pub fn last(&self) -> Tensor<3> {
        self.hidden_states
            .last()
            .cloned()
            .expect("an encoder output always holds the embedding layer")
    }

    /// Token states after layer `l` (0 = embeddings, `num_layers` = last).
    pub fn layer(&self, l: usize) -> Result<Tensor<3>> {
        self.hidden_states.get(l).cloned().ok_or_else(|| {
            ModelError::Invalid(format!(
                "layer {l} requested but the encoder has {} layers (0 = embeddings)",
                self.hidden_states.len() - 1
            ))
        })
    }
}

/// Additive attention bias from a padding mask: `0` for real keys, `-1e9` for padding,
/// shaped `[batch, 1, 1, len]` to broadcast over heads and queries.
pub fn attention_bias(mask: Tensor<2>) -> Tensor<4> {
    let [b, l] = mask.dims();
    ((mask - 1.0) * 1e9).reshape([b, 1, 1, l])
}

impl Encoder {
    /// Number of transformer layers `N`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// `ids`: `[batch, len]` token ids; `mask`: `[batch, len]` with 1 for real tokens.
    /// Returns `h⁰ … hᴺ`.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> EncoderOutput {
        let bias = attention_bias(mask.clone());
        let mut h = self.embeddings.forward(ids);
        let mut hidden_states = Vec::with_capacity(self.layers.len() + 1);
        hidden_states.push(h.clone());
        for layer in &self.layers {
            h = layer.forward(h, bias.clone());
            hidden_states.push(h.clone());
        }
        EncoderOutput {
            hidden_states,
            mask,
        }
    }

    /// Token states `hˡ` after layer `l` only, skipping the layers above it.
    pub fn forward_layer(
        &self,
        ids: Tensor<2, Int>,
        mask: Tensor<2>,
        l: usize,
    ) -> Result<Tensor<3>> {
        if l > self.layers.len() {
            return Err(ModelError::Invalid(format!(
                "layer {l} requested but the encoder has {} layers (0 = embeddings)",
                self.layers.len()
            )));
        }
        let bias = attention_bias(mask);
        let mut h = self.embeddings.forward(ids);
        for layer in &self.layers[..l] {
            h = layer.forward(h, bias.clone());
        }
        Ok(h)
    }

    /// Runs layers `from+1 ..= to` on token states `h` = `hᶠʳᵒᵐ` computed under `mask`:
    /// returns `hᵗᵒ`. `forward_layer(ids, mask, k)` followed by
    /// `forward_layers(h, mask, k, N)` performs exactly the operations of `forward_last`.
    pub fn forward_layers(
        &self,
        h: Tensor<3>,
        mask: Tensor<2>,
        from: usize,
        to: usize,
    ) -> Result<Tensor<3>> {
        if from > to || to > self.layers.len() {
            return Err(ModelError::Invalid(format!(
                "layers {from}..{to} requested but the encoder has {} layers",
                self.layers.len()
            )));
        }
        let bias = attention_bias(mask);
        let mut h = h;
        for layer in &self.layers[from..to] {
            h = layer.forward(h, bias.clone());
        }
        Ok(h)
    }

    /// The last layer's token states `hᴺ` (no intermediate states kept alive).
    pub fn forward_last(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let n = self.layers.len();
        self.forward_layer(ids, mask, n)
            .expect("the last layer always exists")
    }
}
