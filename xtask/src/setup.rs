//! `cargo xtask setup libtorch`: obtain libtorch for the `tch` backend from PyPI's torch
//! wheel (no other site is reachable here), and lay it out the way `tch` expects.
//!
//! tch 0.22 (used by burn-tch 0.22) needs libtorch 2.9.0. PyPI's `torch==2.9.0` wheel for
//! Linux carries the full libtorch; installed with `--no-deps` plus the two small CUDA
//! runtime wheels its CPU library links against, it is ~0.9 GB instead of ~4 GB. We then
//! build `<dir>/libtorch/{include,lib}` with links into the wheel, leaving `libtorch_cuda.so`
//! out so the CPU build of tch links without the CUDA toolkit.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct SetupArgs {
    #[command(subcommand)]
    what: SetupWhat,
}

#[derive(clap::Subcommand)]
enum SetupWhat {
    /// Install libtorch 2.9.0 from PyPI into DIR and print the environment for `--features tch`.
    Libtorch {
        /// Target folder (default: `<cache>/libtorch-2.9.0`, the cache being `$OPTICAL_CACHE`
        /// or `.cache/optical` under the workspace).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Python interpreter whose pip downloads the wheels.
        #[arg(long, default_value = "python3")]
        python: String,
        /// Print the commands instead of running them.
        #[arg(long)]
        dry_run: bool,
    },
}

const PACKAGES: [&str; 3] = [
    "torch==2.9.0",
    "nvidia-cuda-runtime-cu12==12.8.90",
    "nvidia-cuda-cupti-cu12==12.8.90",
];

/// Libraries tch links against; `libtorch_cuda.so` is deliberately absent.
const LIBS: [&str; 5] = [
    "libc10.so",
    "libtorch_cpu.so",
    "libtorch.so",
    "libshm.so",
    "libgomp",
];

pub fn run(args: SetupArgs) -> anyhow::Result<()> {
    let SetupWhat::Libtorch {
        dir,
        python,
        dry_run,
    } = args.what;
    let dir = dir.unwrap_or_else(|| clir_data::fetch::cache_dir().join("libtorch-2.9.0"));
    let site = dir.join("site-packages");
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--no-deps", "--target"])
        .arg(&site)
        .args(PACKAGES);
    if dry_run {
        println!("{pip:?}");
    } else if site.join("torch/lib/libtorch_cpu.so").exists() {
        println!("reusing {}", site.display());
    } else {
        println!(
            "installing {} into {} (about 0.9 GB)",
            PACKAGES.join(" "),
            site.display()
        );
        let status = pip
            .status()
            .with_context(|| format!("cannot run `{python} -m pip`"))?;
        if !status.success() {
            bail!(
                "pip failed; run it by hand:\n  {python} -m pip install --no-deps --target {} {}",
                site.display(),
                PACKAGES.join(" ")
            );
        }
    }
    let torch = site.join("torch");
    let libtorch = dir.join("libtorch");
    if !dry_run {
        lay_out(&torch, &libtorch)?;
    }
    let mut library_path = vec![torch.join("lib")];
    for sub in ["nvidia/cuda_runtime/lib", "nvidia/cuda_cupti/lib"] {
        library_path.push(site.join(sub));
    }
    let library_path: Vec<String> = library_path
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!("\nlibtorch is ready. Build and run with:");
    println!("  export LIBTORCH={}", libtorch.display());
    println!(
        "  export LD_LIBRARY_PATH={}:$LD_LIBRARY_PATH",
        library_path.join(":")
    );
    println!("  cargo test -p ot-core --features tch");
    println!("  cargo run --release -p xtask --features tch -- reproduce --backend tch ...");
    Ok(())
}

/// `libtorch/include -> torch/include`, `libtorch/lib/<lib> -> torch/lib/<lib>`.
fn lay_out(torch: &Path, libtorch: &Path) -> anyhow::Result<()> {
    let lib_src = torch.join("lib");
    if !lib_src.join("libtorch_cpu.so").exists() {
        bail!(
            "{} has no libtorch_cpu.so: the torch wheel did not install",
            lib_src.display()
        );
    }
    let lib_dst = libtorch.join("lib");
    std::fs::create_dir_all(&lib_dst)?;
    replace_link(&torch.join("include"), &libtorch.join("include"))?;
    for entry in std::fs::read_dir(&lib_src)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let Some(wanted) = LIBS.iter().find(|l| name.starts_with(*l)) else {
            continue;
        };
        // torch bundles a hashed libgomp (libgomp-<hash>.so.1); tch links `libgomp.so.1`.
        let link_name = if *wanted == "libgomp" {
            "libgomp.so.1".to_string()
        } else {
            name.to_string()
        };
        if *wanted != "libgomp" && name != *wanted {
            continue;
        }
        replace_link(&lib_src.join(name.as_ref()), &lib_dst.join(link_name))?;
    }
    Ok(())
}

fn replace_link(target: &Path, link: &Path) -> anyhow::Result<()> {
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(link).with_context(|| format!("cannot replace {}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("cannot link {} -> {}", link.display(), target.display()))
}
