//! clir-eval: trec_eval-exact retrieval metrics, exact dense top-k retrieval, the lexical
//! baselines (BM25, PSQ with IBM Model 1), significance tests, disparity analysis and report
//! writers for the OPTICAL reproduction.
//!
//! * [`trec`]: strict qrels/run parsers and writers.
//! * [`metrics`]: `map`, `ndcg_cut`, `recip_rank`, `P`, `recall`, `Rprec`, `bpref` with
//!   trec_eval 9.0.8 semantics (tie order, `-c`, `-M`, `-q`), plus ir_measures' `RR@k` and
//!   `Judged@k` on the same ranking.
//! * [`dense`]: blocked, parallel, memory-bounded exact top-k (cosine or dot).
//! * [`lexical`]: the lexical baselines: [`lexical::bm25`] (an English→English reference
//!   and a first stage) and [`lexical::psq`] (probabilistic structured queries over an IBM
//!   Model 1 translation table learned from the bitext).
//! * [`stats`]: paired t-test, paired randomization test, Holm–Bonferroni, Student-t
//!   confidence intervals of a mean.
//! * [`disparity`], [`report`]: language-gap analysis, Markdown/CSV/JSON/SVG result tables and
//!   pairwise comparison tables.
//! * [`cli`], [`bench`]: the `cargo xtask eval` / `cargo xtask bench eval` commands.

pub mod bench;
pub mod cli;
pub mod dense;
pub mod disparity;
pub mod error;
pub mod lexical;
pub mod metrics;
pub mod progress;
pub mod report;
pub mod stats;
pub mod topk;
pub mod trec;

pub use error::{EvalError, Result};
pub use metrics::{EvalOptions, Evaluation, MeasureSet, evaluate};
pub use trec::{Qrels, Run, ScoredDoc};
