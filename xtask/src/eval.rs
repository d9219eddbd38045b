//! `cargo xtask eval` and `cargo xtask bench eval` (owned by the clir-eval work).
#[derive(clap::Args)]
pub struct EvalArgs {}
#[derive(clap::Args)]
pub struct BenchEvalArgs {}
pub fn run(_a: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask eval` is not implemented yet (issue: clir-eval)")
}
pub fn bench(_a: BenchEvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench eval` is not implemented yet (issue: clir-eval)")
}
