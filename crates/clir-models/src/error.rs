//! Errors of this crate: every failure names the file and what is wrong with it.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading, saving or running an encoder.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the expected magic bytes.
    #[error("{path}: bad magic {found:?}: not a {format} file (expected {expected:?})")]
    BadMagic {
        path: PathBuf,
        format: &'static str,
        found: String,
        expected: &'static str,
    },
    /// The file ends before a structure it declares.
    #[error("{path}: truncated: {what} needs bytes {start}..{end} but the file has {len} bytes")]
    Truncated {
        path: PathBuf,
        what: String,
        start: u64,
        end: u64,
        len: u64,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: missing tensor '{name}'")]
    MissingTensor { path: PathBuf, name: String },
    /// A tensor is present with a shape that does not fit the configuration.
    #[error("{path}: tensor '{name}' has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A tensor is stored in a data type this loader does not handle.
    #[error("{path}: tensor '{name}' has dtype {found}, expected {expected}")]
    DType {
        path: PathBuf,
        name: String,
        found: String,
        expected: String,
    },
    /// The header / config.json describes a model this crate cannot build.
    #[error("{path}: invalid config: {msg}")]
    Config { path: PathBuf, msg: String },
    /// A format-level error (safetensors header, JSON, record file, ...).
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer {path}: {msg}")]
    Tokenizer { path: PathBuf, msg: String },
    /// A caller passed an argument that cannot work (empty input, bad layer index, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn format(path: &Path, msg: impl Into<String>) -> Self {
        ModelError::Format {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    pub(crate) fn config(path: &Path, msg: impl Into<String>) -> Self {
        ModelError::Config {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}
