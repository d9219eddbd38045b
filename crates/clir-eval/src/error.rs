//! Errors of the crate: every input problem names its source (file or label) and line.

use std::path::PathBuf;

/// Everything that can go wrong while reading, evaluating, retrieving or reporting.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An I/O failure on a named file.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// A malformed line in a qrels or run file.
    #[error("{source_name}:{line}: {message}")]
    Parse {
        source_name: String,
        line: usize,
        message: String,
    },
    /// The same document twice for one query (run or qrels).
    #[error(
        "{source_name}:{line}: duplicate document '{docno}' for query '{qid}' (first seen on line {first_line})"
    )]
    Duplicate {
        source_name: String,
        line: usize,
        first_line: usize,
        qid: String,
        docno: String,
    },
    /// A measure name or parameter list that is not supported.
    #[error("unknown or malformed measure '{0}'")]
    BadMeasure(String),
    /// trec_eval's exit 7: nothing to evaluate.
    #[error("no queries with both results and relevance info")]
    NoQueries,
    /// Two runs compared over different query sets, or other shape mismatches.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// Invalid numeric input (NaN, infinity, wrong dimensions, empty text, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An unknown id (query, document, language, method).
    #[error("unknown id: {0}")]
    UnknownId(String),
    /// CSV writer failure.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// JSON failure.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl EvalError {
    /// Wraps an I/O error with the file it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            err: source,
        }
    }

    pub(crate) fn parse(source_name: &str, line: usize, message: impl Into<String>) -> Self {
        EvalError::Parse {
            source_name: source_name.to_string(),
            line,
            message: message.into(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, EvalError>;
