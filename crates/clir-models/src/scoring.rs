//! Relevance scores between queries and documents.
//!
//! - bi-encoder: `s(q, d) = ⟨e_q, e_d⟩` (dot) or `⟨e_q, e_d⟩ / (‖e_q‖ ‖e_d‖)` (cosine);
//! - ColBERT late interaction: `s(q, d) = Σ_{i ∈ q} max_{j ∈ d} ⟨q_i, d_j⟩`, summing over the
//!   query's real tokens and maximising over the document's real tokens.

use burn::prelude::*;

use crate::pooling::{l2_normalize, l2_normalize_tokens};

const NEG: f32 = -1e9;

/// All-pairs dot products: `q` `[n_q, d]`, `docs` `[n_d, d]` → `[n_q, n_d]`.
pub fn dot_scores(q: Tensor<2>, docs: Tensor<2>) -> Tensor<2> {
    q.matmul(docs.transpose())
}

/// All-pairs cosine similarities `[n_q, n_d]`.
pub fn cosine_scores(q: Tensor<2>, docs: Tensor<2>) -> Tensor<2> {
    dot_scores(l2_normalize(q), l2_normalize(docs))
}

/// Row-aligned dot products: `q[i] · d[i]` → `[n]`.
pub fn paired_dot(q: Tensor<2>, docs: Tensor<2>) -> Tensor<1> {
    let [n, _] = q.dims();
    (q * docs).sum_dim(1).reshape([n])
}

/// Row-aligned late interaction: `q` `[n, l_q, d]` with mask `[n, l_q]`, `docs` `[n, l_d, d]`
/// with mask `[n, l_d]` → `[n]`.
pub fn late_interaction(
    q: Tensor<3>,
    q_mask: Tensor<2>,
    docs: Tensor<3>,
    d_mask: Tensor<2>,
) -> Tensor<1> {
    let [n, lq, _] = q.dims();
    let [_, ld] = d_mask.dims();
    let sim = q.matmul(docs.transpose()); // [n, lq, ld]
    let pad = d_mask
        .reshape([n, 1, ld])
        .equal_elem(0.0)
        .expand([n, lq, ld]);
    let best = sim.mask_fill(pad, NEG).max_dim(2).reshape([n, lq]);
    (best * q_mask).sum_dim(1).reshape([n])
}

/// All-pairs late interaction: `[n_q, l_q, d]` × `[n_d, l_d, d]` → `[n_q, n_d]`.
pub fn late_interaction_matrix(
    q: Tensor<3>,
    q_mask: Tensor<2>,
    docs: Tensor<3>,
    d_mask: Tensor<2>,
) -> Tensor<2> {
    let [nq, lq, d] = q.dims();
    let [nd, ld, _] = docs.dims();
    let sim = q
        .reshape([nq * lq, d])
        .matmul(docs.reshape([nd * ld, d]).transpose())
        .reshape([nq, lq, nd, ld]);
    let pad = d_mask
        .reshape([1, 1, nd, ld])
        .equal_elem(0.0)
        .expand([nq, lq, nd, ld]);
    let best = sim.mask_fill(pad, NEG).max_dim(3).reshape([nq, lq, nd]);
    (best * q_mask.reshape([nq, lq, 1]))
        .sum_dim(1)
        .reshape([nq, nd])
}

/// Late interaction on L2-normalised token vectors (ColBERT's cosine variant).
pub fn late_interaction_cosine(
    q: Tensor<3>,
    q_mask: Tensor<2>,
    docs: Tensor<3>,
    d_mask: Tensor<2>,
) -> Tensor<1> {
    late_interaction(
        l2_normalize_tokens(q),
        q_mask,
        l2_normalize_tokens(docs),
        d_mask,
    )
}
