//! Errors for malformed OT problems. A solver never returns NaN silently: bad input is
//! rejected here, and numerical failure is reported through [`OtError::NonFiniteResult`].

/// Why a problem could not be solved.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum OtError {
    #[error("cost matrix is empty ({rows}x{cols})")]
    Empty { rows: usize, cols: usize },
    #[error("cost matrix row {row} has {got} entries, expected {expected}")]
    RaggedCost {
        row: usize,
        got: usize,
        expected: usize,
    },
    #[error("cost data has {got} entries, expected {rows}x{cols} = {}", rows * cols)]
    CostLength {
        got: usize,
        rows: usize,
        cols: usize,
    },
    #[error("marginal `{which}` has length {got}, expected {expected}")]
    MarginalLength {
        which: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("{what} has a non-finite value at index {index}")]
    NonFinite { what: &'static str, index: usize },
    #[error("marginal `{which}` has a negative weight {value} at index {index}")]
    NegativeWeight {
        which: &'static str,
        index: usize,
        value: f64,
    },
    #[error("marginal `{which}` has zero total mass")]
    ZeroMass { which: &'static str },
    #[error(
        "balanced OT needs equal masses, got sum(a) = {sum_a} and sum(b) = {sum_b}; \
         normalise them or use the unbalanced solver (tau)"
    )]
    MassMismatch { sum_a: f64, sum_b: f64 },
    #[error("epsilon must be finite and > 0, got {0}")]
    BadEpsilon(f64),
    #[error("tau must be finite and > 0 (or absent for balanced OT), got {0}")]
    BadTau(f64),
    #[error("{0}")]
    BadParameter(String),
    #[error("exact solver failed: {0}")]
    ExactSolver(String),
    #[error("solver produced a non-finite {what}; try a larger epsilon")]
    NonFiniteResult { what: &'static str },
}
