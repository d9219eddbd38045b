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
//! * [`trec_eval`], [`bench`]: what `cargo xtask eval` and `cargo xtask bench eval` run, as
//!   library functions of plain option structs (xtask parses the command lines).
//!
//! Scoring a run, as `trec_eval -m map -m ndcg_cut.10` would (run and qrels in TREC format;
//! `Qrels::parse` / `Run::parse` take the text and a name for error messages):
//!
//! ```
//! use clir_eval::{EvalOptions, MeasureSet, Qrels, Run, evaluate};
//!
//! let qrels = Qrels::parse("q1 0 d1 1\nq1 0 d3 1\nq2 0 d2 1\n", "qrels.txt")?;
//! let run = Run::parse(
//!     "q1 Q0 d1 1 0.9 x\nq1 Q0 d2 2 0.8 x\nq1 Q0 d3 3 0.7 x\nq2 Q0 d1 1 0.5 x\nq2 Q0 d2 2 0.4 x\n",
//!     "run.txt",
//! )?;
//! let measures = MeasureSet::parse(&["map", "ndcg_cut.10"])?;
//! let e = evaluate(&qrels, &run, &measures, &EvalOptions::default())?;
//! // q1: relevant at ranks 1 and 3, AP = (1/1 + 2/3) / 2; q2: relevant at rank 2, AP = 1/2.
//! assert!((e.value("q1", "map").unwrap() - 5.0 / 6.0).abs() < 1e-12);
//! assert!((e.all_value("map").unwrap() - (5.0 / 6.0 + 0.5) / 2.0).abs() < 1e-12);
//! assert!(e.all_value("ndcg_cut_10").unwrap() < 1.0);
//! # Ok::<(), clir_eval::EvalError>(())
//! ```

pub mod bench;
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
pub mod trec_eval;

pub use error::{EvalError, Result};
pub use metrics::{EvalOptions, Evaluation, MeasureSet, evaluate};
pub use trec::{Qrels, Run, ScoredDoc};
