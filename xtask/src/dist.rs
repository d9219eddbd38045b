//! `cargo xtask dist`: a stripped release binary of this command line for a machine without
//! a Rust toolchain or network (a GPU node), and a note of what it needs at run time.
//!
//! It builds `xtask` in release mode with the chosen backends into `target/dist` (its own
//! target folder, so the stripped build does not replace the usual release build; abort on
//! panic, fat LTO and one codegen unit, which make it slow to build and small), copies the
//! binary to `<out>/optical-xtask`, refuses one larger than `--max-mb`, and writes
//! `<out>/RUNTIME.md`. The binary reads the same data cache as here (`$OPTICAL_CACHE`; copy
//! `.cache/optical` along for `reproduce`), and `bench train --synthetic` needs no data.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::reproduce::workspace_root;

#[derive(clap::Args)]
pub struct DistArgs {
    /// Backends compiled in besides flex (comma separated: wgpu, ndarray, tch).
    #[arg(long, default_value = "wgpu", value_delimiter = ',')]
    backends: Vec<String>,
    /// Output folder (relative paths are taken from the workspace root).
    #[arg(long, default_value = "dist")]
    out: PathBuf,
    /// Refuse a binary larger than this many MB (10^6 bytes).
    #[arg(long, default_value_t = 60)]
    max_mb: u64,
    /// Print the build command and the runtime note, build nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The cargo invocation that builds the stripped binary with `backends` compiled in.
fn build_command(root: &Path, backends: &[String]) -> anyhow::Result<Command> {
    for b in backends {
        if !["wgpu", "ndarray", "tch"].contains(&b.as_str()) {
            bail!("--backends: unknown backend '{b}' (wgpu, ndarray, tch; flex is always in)");
        }
    }
    let mut features = vec!["flex".to_string()];
    features.extend(backends.iter().cloned());
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["build", "--release", "--package", "xtask", "--features"])
        .arg(features.join(","))
        .arg("--target-dir")
        .arg(root.join("target/dist"))
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        // The stripped flex + wgpu binary measured 70.8 MB without the settings below, over
        // the 60 MB a node copy should take: 50.5 MB of code, 9.5 MB of unwind tables
        // (.eh_frame, .gcc_except_table). Abort on panic drops the tables (nothing here
        // catches a panic); fat LTO and one codegen unit shrink the code.
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    Ok(cmd)
}

/// What the binary needs on the machine it runs on, by backend.
pub fn runtime_note(backends: &[String], version: &str) -> String {
    let mut note = format!(
        "# optical-xtask {version}\n\n\
         A stripped release build of `cargo xtask` (backends: flex{}). It needs no Rust \
         toolchain and no network; run it as `./optical-xtask …` in place of `cargo xtask …`.\n\n\
         Needs at run time:\n\
         - Linux x86-64 with a glibc at least as new as the build machine's;\n\
         - for `reproduce`, `train`, `search` and `embed` on the real data: the data cache \
         (copy `.cache/optical` and point `OPTICAL_CACHE` at it); `bench train --synthetic` \
         needs no data;\n",
        backends
            .iter()
            .map(|b| format!(", {b}"))
            .collect::<String>()
    );
    for b in backends {
        note.push_str(match b.as_str() {
            "wgpu" => {
                "- `--backend wgpu`: the Vulkan loader (`libvulkan.so.1`, Debian package \
                 `libvulkan1`) and a Vulkan driver: on NVIDIA machines the driver's ICD \
                 (`VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json` or wherever the \
                 driver installs it); without a GPU, Mesa's lavapipe (`mesa-vulkan-drivers`);\n"
            }
            "tch" => {
                "- `--backend tch`: libtorch's shared libraries on `LD_LIBRARY_PATH` (the \
                 version it was built against, see docs/backends.md); a CUDA libtorch for GPUs;\n"
            }
            _ => "",
        });
    }
    note
}

pub fn run(a: DistArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let out = if a.out.is_absolute() {
        a.out.clone()
    } else {
        root.join(&a.out)
    };
    let mut cmd = build_command(&root, &a.backends)?;
    let note = runtime_note(&a.backends, env!("CARGO_PKG_VERSION"));
    if a.dry_run {
        println!("{cmd:?}\n\n{note}");
        return Ok(());
    }
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("the release build failed ({status})");
    }
    let built = root.join("target/dist/release/xtask");
    let bytes = std::fs::metadata(&built)
        .with_context(|| built.display().to_string())?
        .len();
    check_size(bytes, a.max_mb)?;
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let dest = out.join("optical-xtask");
    std::fs::copy(&built, &dest).with_context(|| dest.display().to_string())?;
    std::fs::write(out.join("RUNTIME.md"), &note)?;
    println!(
        "{} ({:.1} MB) and {}",
        dest.display(),
        bytes as f64 / 1e6,
        out.join("RUNTIME.md").display()
    );
    Ok(())
}

/// Refuses a binary over `max_mb` MB.
fn check_size(bytes: u64, max_mb: u64) -> anyhow::Result<()> {
    if bytes > max_mb * 1_000_000 {
        bail!(
            "the stripped binary is {:.1} MB, over --max-mb {max_mb}",
            bytes as f64 / 1e6
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_stripped_and_names_its_backends() {
        let root = Path::new("/w");
        let cmd = build_command(root, &["wgpu".into()]).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.windows(2).any(|w| w == ["--features", "flex,wgpu"]),
            "{args:?}"
        );
        assert!(args.contains(&"/w/target/dist".to_string()), "{args:?}");
        let envs: Vec<(String, String)> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.unwrap_or_default().to_string_lossy().into_owned(),
                )
            })
            .collect();
        assert!(envs.contains(&("CARGO_PROFILE_RELEASE_STRIP".into(), "symbols".into())));
        assert!(envs.contains(&("CARGO_PROFILE_RELEASE_PANIC".into(), "abort".into())));
        let e = build_command(root, &["cuda9".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown backend 'cuda9'"), "{e}");
    }

    #[test]
    fn the_note_names_what_each_backend_needs_and_the_size_is_checked() {
        let note = runtime_note(&["wgpu".into()], "0.1.0");
        assert!(note.contains("backends: flex, wgpu") && note.contains("libvulkan.so.1"));
        assert!(!note.contains("libtorch"), "{note}");
        assert!(check_size(59_000_000, 60).is_ok());
        let e = check_size(61_000_000, 60).unwrap_err().to_string();
        assert!(e.contains("61.0 MB, over --max-mb 60"), "{e}");
    }
}
