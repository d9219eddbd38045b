//! bm25 (in progress)
