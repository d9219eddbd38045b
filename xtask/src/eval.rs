//! `cargo xtask eval` and `cargo xtask bench eval`: thin wrappers over `clir_eval::cli` and
//! `clir_eval::bench`, where the arguments and logic live.

pub use clir_eval::bench::BenchEvalArgs;
pub use clir_eval::cli::EvalArgs;

/// `cargo xtask eval [-q] [-c] [-M N] [-m MEASURE]... [--json] QRELS RUN` (or `--qrels`, `--run`).
pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    clir_eval::cli::run(&a)
}

/// `cargo xtask bench eval`: metrics vs pytrec_eval and dense top-k vs numpy.
pub fn bench(a: BenchEvalArgs) -> anyhow::Result<()> {
    clir_eval::bench::run(&a)
}
