//! The error type shared by the readers, writers and sources.

use std::io;
use std::path::{Path, PathBuf};

/// Something went wrong reading or writing data; every variant names the file and, where it
/// applies, the 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Input/output error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// A malformed record.
    #[error("{path}:{line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// A problem with a whole file or source (not tied to one line).
    #[error("{path}: {msg}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A database error.
    #[error("{path}: sqlite: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Underlying error.
        source: rusqlite::Error,
    },
    /// Invalid arguments (unknown language, bad range, …).
    #[error("{0}")]
    Usage(String),
    /// A TREC qrels or run problem, from the one TREC reader (`clir_eval::trec`); its message
    /// names the file and line.
    #[error("{0}")]
    Trec(#[from] clir_eval::EvalError),
    /// Fetching a package failed (its message names the package).
    #[error("{0}")]
    Fetch(#[from] crate::fetch::FetchError),
}

impl DataError {
    /// A malformed-record error.
    pub fn malformed(path: &Path, line: u64, msg: impl Into<String>) -> Self {
        DataError::Malformed {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }
    /// A whole-file error.
    pub fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
