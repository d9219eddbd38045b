//! `cargo xtask setup libtorch`.
#[derive(clap::Args)]
pub struct SetupArgs {}
pub fn run(_a: SetupArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
