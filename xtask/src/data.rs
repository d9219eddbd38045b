//! `cargo xtask data …` (owned by the clir-data work).
#[derive(clap::Args)]
pub struct DataArgs {}
pub fn run(_a: DataArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask data` is not implemented yet (issue: clir-data)")
}
