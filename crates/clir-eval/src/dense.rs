//! Exact top-k dense retrieval over row-major `f32` embedding matrices.
//!
//! score(q, d) = ⟨q, d⟩ (dot) or ⟨q, d⟩ / (‖q‖·‖d‖) (cosine). The document matrix is streamed in
//! blocks: each task multiplies a block of queries by a block of documents (an sgemm tile of
//! `query_block × doc_block` floats) and feeds the tile into per-query bounded top-k buffers, so
//! the extra memory is `threads × (tile + query_block × 2k hits)` plus one inverse norm per
//! document for cosine — independent of the collection size apart from those norms (4 MB for 1M
//! documents). Results are exact and deterministic: ties are broken by document index ascending,
//! whatever the blocking.

use std::io::Write;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::progress;
use crate::topk::{Hit, TopK};
use crate::trec::{Run, ScoredDoc};

/// Similarity function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Similarity {
    /// Inner product.
    Dot,
    /// Cosine of the angle (inner product of L2-normalised rows).
    Cosine,
}

impl std::fmt::Display for Similarity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Similarity::Dot => "dot",
            Similarity::Cosine => "cosine",
        })
    }
}

impl std::str::FromStr for Similarity {
    type Err = EvalError;

    /// `dot` or `cosine`, in any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "dot" => Ok(Similarity::Dot),
            "cosine" => Ok(Similarity::Cosine),
            _ => Err(EvalError::Invalid(format!(
                "unknown similarity '{s}' (dot or cosine)"
            ))),
        }
    }
}

/// A borrowed row-major matrix: `rows × dim` values.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub dim: usize,
}

impl<'a> Matrix<'a> {
    /// Checks the shape (`data.len() == rows·dim`, `dim > 0`) and that all values are finite.
    pub fn new(data: &'a [f32], rows: usize, dim: usize, what: &str) -> Result<Self> {
        if dim == 0 {
            return Err(EvalError::Invalid(format!("{what}: dimension is 0")));
        }
        if rows.checked_mul(dim) != Some(data.len()) {
            return Err(EvalError::Invalid(format!(
                "{what}: {} values do not form {rows} rows of dimension {dim}",
                data.len()
            )));
        }
        if let Some(pos) = data.par_iter().position_first(|v| !v.is_finite()) {
            return Err(EvalError::Invalid(format!(
                "{what}: non-finite value {} at row {}, column {}",
                data[pos],
                pos / dim,
                pos % dim
            )));
        }
        Ok(Matrix { data, rows, dim })
    }

    fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Settings of [`dense_top_k`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DenseConfig {
    pub k: usize,
    pub similarity: Similarity,
    /// Queries per sgemm tile.
    pub query_block: usize,
    /// Documents per sgemm tile.
    pub doc_block: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl DenseConfig {
    /// Defaults: 128 × 2048 tiles (1 MiB of scores per task), no progress bar.
    pub fn new(k: usize, similarity: Similarity) -> Self {
        DenseConfig {
            k,
            similarity,
            query_block: 128,
            doc_block: 2048,
            progress: false,
        }
    }
}

fn inverse_norms(m: &Matrix<'_>, what: &str) -> Result<Vec<f32>> {
    let norms: Vec<f32> = (0..m.rows)
        .into_par_iter()
        .map(|i| {
            let r = m.row(i);
            let s: f32 = r.iter().map(|v| v * v).sum();
            s.sqrt()
        })
        .collect();
    if let Some(i) = norms.iter().position(|&n| n == 0.0) {
        return Err(EvalError::Invalid(format!(
            "{what}: row {i} has zero norm, cosine similarity is undefined"
        )));
    }
    Ok(norms.into_iter().map(|n| 1.0 / n).collect())
}

/// `c (m×n) = a (m×dim, row-major) · b(n×dim, row-major)ᵀ`.
fn gemm_abt(a: &[f32], m: usize, b: &[f32], n: usize, dim: usize, c: &mut [f32]) {
    debug_assert!(a.len() >= m * dim && b.len() >= n * dim && c.len() >= m * n);
    // SAFETY: the slices hold at least m·dim, n·dim and m·n elements (checked above in debug,
    // guaranteed by the callers), and the strides describe exactly those layouts.
    unsafe {
        matrixmultiply::sgemm(
            m,
            dim,
            n,
            1.0,
            a.as_ptr(),
            dim as isize,
            1,
            b.as_ptr(),
            1,
            dim as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Exact top-k documents for every query, best first (score descending, ties by index).
pub fn dense_top_k(
    queries: Matrix<'_>,
    docs: Matrix<'_>,
    cfg: &DenseConfig,
) -> Result<Vec<Vec<Hit>>> {
    if queries.dim != docs.dim {
        return Err(EvalError::Invalid(format!(
            "query dimension {} differs from document dimension {}",
            queries.dim, docs.dim
        )));
    }
    if cfg.k == 0 || cfg.query_block == 0 || cfg.doc_block == 0 {
        return Err(EvalError::Invalid(
            "k, query_block and doc_block must be positive".into(),
        ));
    }
    if queries.rows == 0 {
        return Ok(Vec::new());
    }
    let (q_inv, d_inv) = match cfg.similarity {
        Similarity::Cosine => (
            Some(inverse_norms(&queries, "queries")?),
            Some(inverse_norms(&docs, "documents")?),
        ),
        Similarity::Dot => (None, None),
    };
    let dim = docs.dim;
    let n_qblocks = queries.rows.div_ceil(cfg.query_block);
    // With few query blocks, also split the documents into shards so every thread has work.
    let threads = rayon::current_num_threads().max(1);
    let n_shards = (2 * threads).div_ceil(n_qblocks).clamp(1, docs.rows.max(1));
    let shard_len = docs.rows.div_ceil(n_shards).max(1);
    let tasks: Vec<(usize, usize)> = (0..n_qblocks)
        .flat_map(|qb| (0..n_shards).map(move |s| (qb, s)))
        .collect();
    let bar = progress::bar(tasks.len() as u64, "dense top-k", cfg.progress);
    let partial: Vec<Vec<TopK>> = tasks
        .par_iter()
        .map(|&(qb, s)| {
            let q0 = qb * cfg.query_block;
            let q1 = (q0 + cfg.query_block).min(queries.rows);
            let mq = q1 - q0;
            let d_start = (s * shard_len).min(docs.rows);
            let d_end = ((s + 1) * shard_len).min(docs.rows);
            let mut tops: Vec<TopK> = (0..mq).map(|_| TopK::new(cfg.k)).collect();
            let mut tile = vec![0f32; mq * cfg.doc_block];
            let qa = &queries.data[q0 * dim..q1 * dim];
            let mut d0 = d_start;
            while d0 < d_end {
                let d1 = (d0 + cfg.doc_block).min(d_end);
                let nd = d1 - d0;
                gemm_abt(qa, mq, &docs.data[d0 * dim..d1 * dim], nd, dim, &mut tile);
                for (qi, top) in tops.iter_mut().enumerate() {
                    let row = &tile[qi * nd..(qi + 1) * nd];
                    match (&q_inv, &d_inv) {
                        (Some(qn), Some(dn)) => {
                            let qs = qn[q0 + qi];
                            for (j, (&v, &dj)) in row.iter().zip(&dn[d0..d1]).enumerate() {
                                let sc = v * qs * dj;
                                if top.admits(sc) {
                                    top.push(d0 + j, sc);
                                }
                            }
                        }
                        _ => {
                            for (j, &v) in row.iter().enumerate() {
                                if top.admits(v) {
                                    top.push(d0 + j, v);
                                }
                            }
                        }
                    }
                }
                d0 = d1;
            }
            bar.inc(1);
            tops
        })
        .collect();
    bar.finish_and_clear();
    // Merge shards per query block (tasks are ordered qb-major, shard-minor).
    let mut out: Vec<Vec<Hit>> = Vec::with_capacity(queries.rows);
    let mut it = partial.into_iter();
    for _ in 0..n_qblocks {
        let mut acc: Vec<TopK> = it.next().unwrap_or_default();
        for _ in 1..n_shards {
            for (a, b) in acc.iter_mut().zip(it.next().unwrap_or_default()) {
                a.merge(b);
            }
        }
        out.extend(acc.into_iter().map(TopK::into_sorted));
    }
    Ok(out)
}

/// Brute-force reference (one score at a time, full sort); for tests and small inputs.
pub fn dense_top_k_naive(
    queries: Matrix<'_>,
    docs: Matrix<'_>,
    k: usize,
    similarity: Similarity,
) -> Vec<Vec<Hit>> {
    (0..queries.rows)
        .map(|qi| {
            let q = queries.row(qi);
            let mut hits: Vec<Hit> = (0..docs.rows)
                .map(|di| {
                    let d = docs.row(di);
                    let dot: f64 = q.iter().zip(d).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let score = match similarity {
                        Similarity::Dot => dot,
                        Similarity::Cosine => {
                            let nq: f64 = q.iter().map(|a| (*a as f64).powi(2)).sum::<f64>();
                            let nd: f64 = d.iter().map(|a| (*a as f64).powi(2)).sum::<f64>();
                            dot / (nq.sqrt() * nd.sqrt())
                        }
                    };
                    Hit {
                        doc: di,
                        score: score as f32,
                    }
                })
                .collect();
            hits.sort_by(crate::topk::hit_order);
            hits.truncate(k);
            hits
        })
        .collect()
}

fn check_ids(hits: &[Vec<Hit>], qids: &[String], docids: &[String]) -> Result<()> {
    if hits.len() != qids.len() {
        return Err(EvalError::Mismatch(format!(
            "{} result lists for {} query ids",
            hits.len(),
            qids.len()
        )));
    }
    for h in hits.iter().flatten() {
        if h.doc >= docids.len() {
            return Err(EvalError::UnknownId(format!(
                "document index {} but only {} document ids",
                h.doc,
                docids.len()
            )));
        }
    }
    Ok(())
}

/// Converts hits to a [`Run`] with the given query and document ids.
pub fn hits_to_run(hits: &[Vec<Hit>], qids: &[String], docids: &[String]) -> Result<Run> {
    check_ids(hits, qids, docids)?;
    let mut run = Run::default();
    for (qid, hs) in qids.iter().zip(hits) {
        let entry = run.queries.entry(qid.clone()).or_default();
        if !entry.is_empty() {
            return Err(EvalError::Invalid(format!(
                "query id '{qid}' appears twice"
            )));
        }
        entry.extend(hs.iter().map(|h| ScoredDoc {
            docno: docids[h.doc].clone(),
            score: h.score as f64,
        }));
    }
    Ok(run)
}

/// Writes hits as a TREC run (`qid Q0 docid rank score tag`) through [`Run::write_trec`], the
/// one TREC run writer: queries in byte order, documents in trec_eval's order, ranks from 1.
pub fn write_trec_run<W: Write>(
    mut w: W,
    hits: &[Vec<Hit>],
    qids: &[String],
    docids: &[String],
    tag: &str,
) -> Result<()> {
    let run = hits_to_run(hits, qids, docids)?;
    run.validate("dense run")?;
    let io = |e| EvalError::io("<trec run output>", e);
    run.write_trec(&mut w, tag).map_err(io)?;
    w.flush().map_err(io)
}
