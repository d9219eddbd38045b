//! `cargo xtask embed` and `cargo xtask bench encode` (owned by the clir-models work).
#[derive(clap::Args)]
pub struct EmbedArgs {}
#[derive(clap::Args)]
pub struct BenchEncodeArgs {}
pub fn run_embed(_a: EmbedArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask embed` is not implemented yet (issue: clir-models)")
}
pub fn bench_encode(_a: BenchEncodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench encode` is not implemented yet (issue: clir-models)")
}
