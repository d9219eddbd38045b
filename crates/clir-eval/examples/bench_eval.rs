//! Same as `cargo xtask bench eval`, without building xtask:
//! `cargo run --release -p clir-eval --example bench_eval -- [ARGS]`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: clir_eval::bench::BenchEvalArgs,
}

fn main() -> anyhow::Result<()> {
    clir_eval::bench::run(&Cli::parse().args)
}
