//! `cargo xtask export`: a trained student as a Hugging Face / sentence-transformers folder
//! (see `clir_models::hf_export`), its trimmed vocabulary restored from the base model.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clir_models::Embedder;
use clir_models::embedder::{CHECKPOINT_CONFIG, load_named};
use clir_models::hf_export::export_hf;
use ot_core::backend::select_device;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A checkpoint directory (holding embedder.json), or a training run directory holding
    /// one as `student/` (what `cargo xtask train --out` and `reproduce` write).
    #[arg(long)]
    run: PathBuf,
    /// Output folder (created; must be empty or absent unless --force).
    #[arg(long)]
    out: PathBuf,
    /// The untrimmed model the student was initialised from, whose embedding table restores
    /// the rows vocabulary trimming dropped: `e5-small`, `minilm` or a path. Default: the base
    /// recorded in the checkpoint's embedder.json (what `Embedder::load_checkpoint`, `search`
    /// and `embed` restore from; for older checkpoints the model name: multilingual-e5-small
    /// → e5-small, all-MiniLM-L6-v2 → minilm). Only read when the vocabulary is trimmed.
    #[arg(long)]
    base: Option<String>,
    /// Write into a non-empty --out folder, overwriting the files of the same names.
    #[arg(long)]
    force: bool,
}

/// The checkpoint directory `run` names: itself, or its `student/`.
fn checkpoint_dir(run: &Path) -> anyhow::Result<PathBuf> {
    for dir in [run.to_path_buf(), run.join("student")] {
        if dir.join(CHECKPOINT_CONFIG).is_file() {
            return Ok(dir);
        }
    }
    bail!(
        "{}: neither it nor its student/ holds {CHECKPOINT_CONFIG} (a checkpoint of cargo xtask \
         train)",
        run.display()
    )
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let ckpt = checkpoint_dir(&a.run)?;
    if !a.force
        && let Ok(mut entries) = std::fs::read_dir(&a.out)
        && entries.next().is_some()
    {
        bail!(
            "{} is not empty: pass --force to write into it",
            a.out.display()
        );
    }
    crate::paths::check_writable_dir(&a.out, "--out")?;
    let (_, device) = select_device(Some("flex"))?;
    let saved = Embedder::load_checkpoint_as_saved(&ckpt, &device)
        .with_context(|| format!("loading the checkpoint {}", ckpt.display()))?;
    // A trimmed vocabulary is restored to the full one: from --base when given, else as
    // every loader restores it (Embedder::restored_from_base, from the recorded base; the
    // checkpoint is read once).
    let (student, base) = match (saved.tokenizer.vocab_map().map(|m| m.len()), &a.base) {
        (None, _) => (saved, None),
        (Some(kept), Some(name)) => {
            eprintln!("vocabulary trimmed to {kept} tokens: restoring the full table from {name}");
            let base = load_named(name, None, &device)
                .with_context(|| format!("loading the base model '{name}' (--base)"))?;
            (saved, Some(base))
        }
        (Some(kept), None) => {
            let name = saved
                .base_name()
                .unwrap_or_else(|| "(none recorded)".into());
            eprintln!("vocabulary trimmed to {kept} tokens: restoring the full table from {name}");
            let full = saved.restored_from_base(&ckpt).with_context(|| {
                format!(
                    "restoring the vocabulary of {} (choose the base with --base)",
                    ckpt.display()
                )
            })?;
            (full, None)
        }
    };
    let written = export_hf(&student, base.as_ref(), &a.out)
        .with_context(|| format!("exporting {} to {}", ckpt.display(), a.out.display()))?;
    for f in &written {
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        println!("{:>12}  {}", size, f.display());
    }
    eprintln!(
        "exported {} ({}, prefixes {:?} / {:?}) -> {}",
        ckpt.display(),
        student.config.name,
        student.config.query_prefix,
        student.config.passage_prefix,
        a.out.display()
    );
    Ok(())
}
