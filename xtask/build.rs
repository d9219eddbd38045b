//! Records, for the provenance of experiment reports and `cargo xtask --version`: the compiler
//! version (`OPTICAL_RUSTC_VERSION`) and the git commit the binary is built from
//! (`OPTICAL_GIT_COMMIT`: `git rev-parse --short=7 HEAD`, or `unknown` without git or outside
//! a repository). The script re-runs when HEAD moves (a commit, a checkout), so the commit
//! stays current; uncommitted edits of the tree are not tracked here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OPTICAL_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");

    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()));
    let commit = git(&dir, &["rev-parse", "--short=7", "HEAD"])
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OPTICAL_GIT_COMMIT={commit}");
    // HEAD changes on a checkout, the branch's ref on a commit (its own file, or packed-refs
    // when git has packed it; a ref with no file of its own yet appears in its folder).
    let path = |name: &str| git(&dir, &["rev-parse", "--git-path", name]).map(|p| dir.join(p));
    let mut watched: Vec<PathBuf> = ["HEAD", "packed-refs"]
        .into_iter()
        .filter_map(path)
        .collect();
    if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]).and_then(|r| path(&r)) {
        match r.parent() {
            Some(folder) if !r.exists() => watched.push(folder.to_path_buf()),
            _ => watched.push(r),
        }
    }
    for p in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

/// Trimmed stdout of `git ARGS` run in `dir`, if git runs and succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    String::from_utf8(o.stdout)
        .ok()
        .map(|s| s.trim().to_string())
}
