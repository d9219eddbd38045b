//! `cargo xtask ot …` and `cargo xtask bench ot`.
#[derive(clap::Args)]
pub struct OtArgs {}
#[derive(clap::Args)]
pub struct BenchOtArgs {}
pub fn run(_a: OtArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn bench(_a: BenchOtArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
