//! The lexical baselines, in one place: BM25 over words (an English→English reference and a
//! first stage), and probabilistic structured queries (PSQ, Darwish & Oard 2003), whose
//! translation table is an IBM Model 1 learned by EM from the bitext.

pub mod bm25;
pub mod psq;
