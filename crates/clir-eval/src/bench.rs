//! `cargo xtask bench eval` (being written).

/// Arguments of `cargo xtask bench eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchEvalArgs {}

/// Runs the benchmark.
pub fn run(_a: &BenchEvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench eval` is not implemented yet")
}
