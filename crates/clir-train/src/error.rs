//! Errors of training: each names the file (config, bitext, checkpoint) it concerns.

use std::path::{Path, PathBuf};

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    #[error(transparent)]
    Model(#[from] clir_models::ModelError),
    #[error(transparent)]
    Data(#[from] clir_data::DataError),
    #[error(transparent)]
    Eval(#[from] clir_eval::EvalError),
    #[error("optimal transport: {0}")]
    Ot(#[from] ot_core::OtError),
    #[error("step {step}: {msg}")]
    Diverged { step: usize, msg: String },
    #[error("{0}")]
    Invalid(String),
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn config(path: &Path, msg: impl Into<String>) -> Self {
        TrainError::Config {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    pub fn checkpoint(path: &Path, msg: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
