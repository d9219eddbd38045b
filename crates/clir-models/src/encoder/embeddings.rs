//! Input embeddings: `h⁰ = LN(E_word[w] + E_pos[p + offset] + E_type[0])`.

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::prelude::*;

use super::EncoderConfig;
use crate::error::Result;
use crate::weights::{WeightSource, embedding_from, layer_norm_from, layer_norm_init};

/// Word, position and token-type embeddings followed by LayerNorm.
#[derive(Module, Debug)]
pub struct Embeddings {
    pub word: Embedding,
    pub position: Embedding,
    pub token_type: Embedding,
    pub norm: LayerNorm,
    /// First position row used (2 for Hub XLM-R checkpoints, 0 otherwise).
    pub position_offset: usize,
}

impl Embeddings {
    pub(crate) fn init(c: &EncoderConfig, device: &Device) -> Self {
        Self {
            word: EmbeddingConfig::new(c.vocab_size, c.hidden_size).init(device),
            position: EmbeddingConfig::new(c.max_position, c.hidden_size).init(device),
            token_type: EmbeddingConfig::new(c.type_vocab_size, c.hidden_size).init(device),
            norm: layer_norm_init(c, device),
            position_offset: c.position_offset,
        }
    }

    pub(crate) fn from_weights(
        c: &EncoderConfig,
        src: &mut dyn WeightSource,
        device: &Device,
    ) -> Result<Self> {
        let (v, p, t, d) = (
            c.vocab_size,
            c.max_position,
            c.type_vocab_size,
            c.hidden_size,
        );
        Ok(Self {
            word: embedding_from(src, "embeddings.word_embeddings.weight", [v, d], device)?,
            position: embedding_from(src, "embeddings.position_embeddings.weight", [p, d], device)?,
            token_type: embedding_from(
                src,
                "embeddings.token_type_embeddings.weight",
                [t, d],
                device,
            )?,
            norm: layer_norm_from(src, c, "embeddings.LayerNorm", device)?,
            position_offset: c.position_offset,
        })
    }

    /// `ids`: `[batch, len]` → `[batch, len, d]`.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, len] = ids.dims();
        let word = self.word.forward(ids);
        let [_, d] = self.position.weight.dims();
        let position = self
            .position
            .weight
            .val()
            .narrow(0, self.position_offset, len)
            .reshape([1, len, d]);
        let token_type = self
            .token_type
            .weight
            .val()
            .narrow(0, 0, 1)
            .reshape([1, 1, d]);
        self.norm.forward(word + position + token_type)
    }
}
