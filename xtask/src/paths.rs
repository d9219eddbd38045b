//! Output paths checked before any work: a command that would spend minutes loading models
//! and encoding text first makes sure it can write its result.

use std::path::Path;

use anyhow::bail;

/// Fails unless a file can be created at `path` (an existing file is kept as it was): its
/// folder exists, is a folder, and accepts a new file. `what` names the option (`--out`).
pub fn check_writable_file(path: &Path, what: &str) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!(
            "{what} {}: is a folder, expected a file path",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "{what} {}: the folder {} does not exist",
            path.display(),
            parent.display()
        );
    }
    probe(parent, path, what)
}

/// Fails unless `dir` is a folder that accepts new files, or can be created (its nearest
/// existing ancestor is a writable folder). Nothing is left behind.
pub fn check_writable_dir(dir: &Path, what: &str) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{what} {}: exists and is not a folder", dir.display());
    }
    let mut existing = dir;
    while !existing.exists() {
        existing = match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !existing.is_dir() {
        bail!(
            "{what} {}: {} is not a folder",
            dir.display(),
            existing.display()
        );
    }
    probe(existing, dir, what)
}

/// Creates and removes a uniquely named file in `folder`.
fn probe(folder: &Path, target: &Path, what: &str) -> anyhow::Result<()> {
    let name = format!(".optical-write-check-{}", std::process::id());
    let p = folder.join(name);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&p);
            Ok(())
        }
        Err(e) => bail!(
            "{what} {}: cannot write in {}: {e}",
            target.display(),
            folder.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_paths_pass_and_missing_or_read_only_folders_fail() {
        let tmp = tempfile::tempdir().unwrap();
        check_writable_file(&tmp.path().join("run.txt"), "--out").unwrap();
        check_writable_dir(&tmp.path().join("a/b/c"), "--out").unwrap();
        assert!(!tmp.path().join("a").exists(), "the check creates nothing");
        let e = check_writable_file(&tmp.path().join("nope/run.txt"), "--out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--out") && e.contains("does not exist"), "{e}");
        let e = check_writable_file(tmp.path(), "--out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a folder"), "{e}");
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = check_writable_dir(&file.join("sub"), "--out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a folder"), "{e}");
        // A folder nobody can create files in, root included.
        let e = check_writable_file(Path::new("/proc/run.txt"), "--out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot write in /proc"), "{e}");
    }
}
