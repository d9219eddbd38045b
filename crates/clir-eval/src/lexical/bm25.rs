//! BM25 lexical retrieval: a baseline and an optional first stage for dense re-ranking.
//!
//! Tokens are the Unicode words of the text (UAX #29 word boundaries), lower-cased. For a query
//! `Q` and a document `D` of length `|D|` (tokens) in a collection of `N` documents with mean
//! length `avgdl`:
//!
//! `score(Q, D) = Σ_{t ∈ Q} idf(t) · tf(t, D)·(k1 + 1) / (tf(t, D) + k1·(1 − b + b·|D|/avgdl))`,
//! `idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))` (Lucene's non-negative idf).
//!
//! A query term repeated `n` times counts `n` times. Defaults `k1 = 0.9, b = 0.4` (Anserini's).

use std::collections::HashMap;

use rayon::prelude::*;
use unicode_segmentation::UnicodeSegmentation;

use crate::dense::{Matrix, Similarity, hits_to_run};
use crate::error::{EvalError, Result};
use crate::progress;
use crate::topk::{Hit, TopK};
use crate::trec::Run;

/// Lower-cased Unicode words of `text`.
pub fn tokenize(text: &str) -> Vec<String> {
    text.unicode_words().map(str::to_lowercase).collect()
}

/// The words of each query, after the checks every lexical search makes: as many ids as
/// queries, `k > 0`, and no query without a word (an error naming its id).
pub(crate) fn tokenize_queries<S: AsRef<str> + Sync>(
    queries: &[S],
    qids: &[String],
    k: usize,
) -> Result<Vec<Vec<String>>> {
    if queries.len() != qids.len() {
        return Err(EvalError::Mismatch(format!(
            "{} queries but {} ids",
            queries.len(),
            qids.len()
        )));
    }
    if k == 0 {
        return Err(EvalError::Invalid("k must be positive".into()));
    }
    let toks: Vec<Vec<String>> = queries.par_iter().map(|q| tokenize(q.as_ref())).collect();
    if let Some(i) = toks.iter().position(Vec::is_empty) {
        return Err(EvalError::Invalid(format!(
            "query '{}' has no words",
            qids[i]
        )));
    }
    Ok(toks)
}

/// BM25 parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    pub k1: f32,
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 0.9, b: 0.4 }
    }
}

/// An inverted index with BM25 scoring.
#[derive(Debug, Clone)]
pub struct Bm25Index {
    params: Bm25Params,
    vocab: HashMap<String, u32>,
    /// postings[term] = (doc, tf), doc ascending.
    postings: Vec<Vec<(u32, u32)>>,
    doc_len: Vec<u32>,
    avgdl: f32,
}

impl Bm25Index {
    /// Indexes `docs`; `ids` name them in errors. A document without any word is an error.
    pub fn build<S: AsRef<str> + Sync>(
        docs: &[S],
        ids: &[String],
        params: Bm25Params,
    ) -> Result<Self> {
        if docs.len() != ids.len() {
            return Err(EvalError::Mismatch(format!(
                "{} documents but {} ids",
                docs.len(),
                ids.len()
            )));
        }
        if u32::try_from(docs.len()).is_err() {
            return Err(EvalError::Invalid("more than 2^32 documents".into()));
        }
        let tokenized: Vec<Vec<String>> = docs.par_iter().map(|d| tokenize(d.as_ref())).collect();
        if let Some(i) = tokenized.iter().position(Vec::is_empty) {
            return Err(EvalError::Invalid(format!(
                "document '{}' (index {i}) has no words",
                ids[i]
            )));
        }
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut doc_len = Vec::with_capacity(docs.len());
        let mut tf: HashMap<u32, u32> = HashMap::new();
        for (d, toks) in tokenized.into_iter().enumerate() {
            doc_len.push(toks.len() as u32);
            tf.clear();
            for t in toks {
                let next = vocab.len() as u32;
                let id = *vocab.entry(t).or_insert(next);
                if id as usize == postings.len() {
                    postings.push(Vec::new());
                }
                *tf.entry(id).or_insert(0) += 1;
            }
            for (&t, &c) in &tf {
                postings[t as usize].push((d as u32, c));
            }
        }
        let avgdl = doc_len.iter().map(|&l| l as f64).sum::<f64>() / doc_len.len().max(1) as f64;
        Ok(Bm25Index {
            params,
            vocab,
            postings,
            doc_len,
            avgdl: avgdl as f32,
        })
    }

    /// Number of indexed documents.
    pub fn num_docs(&self) -> usize {
        self.doc_len.len()
    }

    fn idf(&self, df: usize) -> f32 {
        let n = self.num_docs() as f32;
        (1.0 + (n - df as f32 + 0.5) / (df as f32 + 0.5)).ln()
    }

    /// Adds the BM25 contributions of `query` into `acc` (one slot per document).
    fn accumulate(&self, query: &[String], acc: &mut [f32]) {
        let Bm25Params { k1, b } = self.params;
        for t in query {
            let Some(&id) = self.vocab.get(t) else {
                continue;
            };
            let plist = &self.postings[id as usize];
            let idf = self.idf(plist.len());
            for &(d, tf) in plist {
                let tf = tf as f32;
                let norm = k1 * (1.0 - b + b * self.doc_len[d as usize] as f32 / self.avgdl);
                acc[d as usize] += idf * tf * (k1 + 1.0) / (tf + norm);
            }
        }
    }

    /// The BM25 parameters.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// Id of an indexed term.
    pub(crate) fn term_id(&self, term: &str) -> Option<u32> {
        self.vocab.get(term).copied()
    }

    /// Postings `(doc, tf)` of a term id, doc ascending; `df` is their number.
    pub(crate) fn postings(&self, term: u32) -> &[(u32, u32)] {
        &self.postings[term as usize]
    }

    /// `idf` of a possibly fractional document frequency (the same expression as `idf`).
    pub(crate) fn idf_weight(&self, df: f32) -> f32 {
        let n = self.num_docs() as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// One term's contribution `idf · tf·(k1 + 1) / (tf + k1·(1 − b + b·|D|/avgdl))` to
    /// document `doc` (the same expression as `accumulate`).
    pub(crate) fn term_score(&self, idf: f32, tf: f32, doc: usize) -> f32 {
        let Bm25Params { k1, b } = self.params;
        let norm = k1 * (1.0 - b + b * self.doc_len[doc] as f32 / self.avgdl);
        idf * tf * (k1 + 1.0) / (tf + norm)
    }

    /// BM25 score of one document for a query text.
    pub fn score(&self, query: &str, doc: usize) -> f32 {
        let mut acc = vec![0f32; self.num_docs()];
        self.accumulate(&tokenize(query), &mut acc);
        acc[doc]
    }

    /// Top-k documents per query (score descending, ties by index); documents sharing no term
    /// with the query are not returned. `qids` name queries in errors; an empty query is an error.
    pub fn search<S: AsRef<str> + Sync>(
        &self,
        queries: &[S],
        qids: &[String],
        k: usize,
        show_progress: bool,
    ) -> Result<Vec<Vec<Hit>>> {
        let toks = tokenize_queries(queries, qids, k)?;
        let bar = progress::bar(queries.len() as u64, "bm25", show_progress);
        let out = toks
            .par_iter()
            .map_init(
                || vec![0f32; self.num_docs()],
                |acc, q| {
                    acc.iter_mut().for_each(|v| *v = 0.0);
                    self.accumulate(q, acc);
                    let mut top = TopK::new(k);
                    for (d, &s) in acc.iter().enumerate() {
                        if s > 0.0 {
                            top.push(d, s);
                        }
                    }
                    bar.inc(1);
                    top.into_sorted()
                },
            )
            .collect();
        bar.finish_and_clear();
        Ok(out)
    }
}

/// A BM25 ranking as a [`Run`]: the top `k` of `docs` for every query of `queries` (named
/// `qids`; documents named `docids`), scored by [`Bm25Index::search`] with `params` (ties by
/// document order; the run is written in trec_eval's order). Also returns how many queries
/// retrieved nothing (no word of theirs in any document): they stay in the run without
/// documents, and score 0 under trec_eval `-c`.
pub fn bm25_run<S: AsRef<str> + Sync>(
    queries: &[S],
    qids: &[String],
    docs: &[S],
    docids: &[String],
    params: Bm25Params,
    k: usize,
    show_progress: bool,
) -> Result<(Run, usize)> {
    let index = Bm25Index::build(docs, docids, params)?;
    let hits = index.search(queries, qids, k, show_progress)?;
    let empty_queries = hits.iter().filter(|h| h.is_empty()).count();
    Ok((hits_to_run(&hits, qids, docids)?, empty_queries))
}

/// Re-ranks first-stage candidates by dense similarity: for query `i`, every candidate document
/// of `candidates[i]` gets `sim(query_i, doc)`, and the best `k` are returned (score descending,
/// ties by index).
pub fn rerank_dense(
    candidates: &[Vec<Hit>],
    queries: Matrix<'_>,
    docs: Matrix<'_>,
    similarity: Similarity,
    k: usize,
) -> Result<Vec<Vec<Hit>>> {
    if candidates.len() != queries.rows || queries.dim != docs.dim {
        return Err(EvalError::Mismatch(format!(
            "{} candidate lists for {} queries (dims {} / {})",
            candidates.len(),
            queries.rows,
            queries.dim,
            docs.dim
        )));
    }
    if k == 0 {
        return Err(EvalError::Invalid("k must be positive".into()));
    }
    let dim = queries.dim;
    candidates
        .par_iter()
        .enumerate()
        .map(|(qi, cands)| {
            let q = &queries.data[qi * dim..(qi + 1) * dim];
            let qn = q.iter().map(|v| v * v).sum::<f32>().sqrt();
            let mut sorted: Vec<usize> = cands.iter().map(|h| h.doc).collect();
            sorted.sort_unstable();
            let mut top = TopK::new(k);
            for d in sorted {
                if d >= docs.rows {
                    return Err(EvalError::UnknownId(format!("document index {d}")));
                }
                let row = &docs.data[d * dim..(d + 1) * dim];
                let dot: f32 = q.iter().zip(row).map(|(a, b)| a * b).sum();
                let s = match similarity {
                    Similarity::Dot => dot,
                    Similarity::Cosine => {
                        let dn = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                        if qn == 0.0 || dn == 0.0 {
                            return Err(EvalError::Invalid(format!(
                                "zero-norm vector (query {qi} or document {d})"
                            )));
                        }
                        dot / (qn * dn)
                    }
                };
                top.push(d, s);
            }
            Ok(top.into_sorted())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, p: &str) -> Vec<String> {
        (0..n).map(|i| format!("{p}{i}")).collect()
    }

    #[test]
    fn tokenizer_is_unicode_aware() {
        assert_eq!(
            tokenize("Habari, ya DUNIA! Straße’s naïve-test 42"),
            ["habari", "ya", "dunia", "straße’s", "naïve", "test", "42"]
        );
    }

    #[test]
    fn scores_match_the_formula_by_hand() {
        let docs = ["the cat sat", "the dog", "cat cat cat dog bird"];
        let idx = Bm25Index::build(&docs, &ids(3, "d"), Bm25Params { k1: 1.2, b: 0.75 }).unwrap();
        // "cat": df = 2, N = 3 → idf = ln(1 + 1.5/2.5); doc 2: tf 3, |D| = 5, avgdl = 10/3.
        let idf = (1.0f32 + 1.5 / 2.5).ln();
        let norm = 1.2 * (1.0 - 0.75 + 0.75 * 5.0 / (10.0 / 3.0));
        let want = idf * 3.0 * 2.2 / (3.0 + norm);
        assert!((idx.score("CAT", 2) - want).abs() < 1e-5);
        let hits = idx
            .search(&["cat", "bird dog"], &ids(2, "q"), 10, false)
            .unwrap();
        assert_eq!(hits[0].iter().map(|h| h.doc).collect::<Vec<_>>(), [2, 0]);
        assert_eq!(hits[1][0].doc, 2);
        assert_eq!(hits[1].len(), 2, "doc 0 shares no term with 'bird dog'");
    }

    #[test]
    fn empty_texts_are_errors() {
        let e = Bm25Index::build(&["ok text", " ,; "], &ids(2, "d"), Bm25Params::default())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: document 'd1' (index 1) has no words"
        );
        let idx = Bm25Index::build(&["a b"], &ids(1, "d"), Bm25Params::default()).unwrap();
        let e = idx.search(&["", "a"], &ids(2, "q"), 3, false).unwrap_err();
        assert_eq!(e.to_string(), "invalid input: query 'q0' has no words");
    }

    #[test]
    fn rerank_orders_candidates_by_similarity() {
        let docs = [1.0f32, 0.0, 0.0, 1.0, 0.7, 0.7];
        let q = [0.0f32, 1.0];
        let cands = vec![vec![
            Hit { doc: 0, score: 9.0 },
            Hit { doc: 2, score: 5.0 },
            Hit { doc: 1, score: 1.0 },
        ]];
        let r = rerank_dense(
            &cands,
            Matrix::new(&q, 1, 2, "q").unwrap(),
            Matrix::new(&docs, 3, 2, "d").unwrap(),
            Similarity::Dot,
            2,
        )
        .unwrap();
        assert_eq!(r[0].iter().map(|h| h.doc).collect::<Vec<_>>(), [1, 2]);
    }
}
