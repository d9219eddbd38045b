//! Sentence embeddings from token states.
//!
//! Mean pooling: `e = Σ_t m_t h_t / Σ_t m_t` (padding excluded); CLS pooling: `e = h_0`;
//! optional L2 normalisation `e / max(‖e‖₂, 1e-12)`.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How token states become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over non-padding tokens (E5, sentence-transformers MiniLM).
    Mean,
    /// The first token's state (`[CLS]` / `<s>`).
    Cls,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            other => Err(format!("unknown pooling '{other}': expected mean or cls")),
        }
    }
}

/// `hidden`: `[batch, len, d]`, `mask`: `[batch, len]` (1 = token) → `[batch, d]`.
pub fn pool(hidden: Tensor<3>, mask: Tensor<2>, pooling: Pooling) -> Tensor<2> {
    let [b, l, d] = hidden.dims();
    match pooling {
        Pooling::Mean => {
            let m = mask.reshape([b, l, 1]);
            let summed = (hidden * m.clone()).sum_dim(1).reshape([b, d]);
            let count = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
            summed / count
        }
        Pooling::Cls => hidden.narrow(1, 0, 1).reshape([b, d]),
    }
}

/// Row-wise L2 normalisation `x / max(‖x‖₂, 1e-12)`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}

/// L2 normalisation of the last axis of token states `[batch, len, d]`.
pub fn l2_normalize_tokens(x: Tensor<3>) -> Tensor<3> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(2)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}
