//! What a finished cell was computed from, so that a cell is reused only when nothing that
//! shapes its numbers has changed; and the provenance of a report (commit, machine, time).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clir_train::TrainConfig;
use clir_train::retrieval::{RetrievalSet, Split};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Everything a cell's scores depend on. Two cells with equal fingerprints are the same
/// computation (up to floating-point differences between machines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellFingerprint {
    /// The effective training configuration (bookkeeping keys such as `run.progress` and
    /// `run.checkpoint_every` left out); `None` for evaluation-only cells.
    pub train: Option<serde_json::Value>,
    pub eval: EvalFingerprint,
    /// The compute backend the cell's documents were encoded (and its student trained) on.
    pub backend: String,
    /// `role → name sha256:…` of every model the cell reads (weights and tokenizer files).
    pub models: BTreeMap<String, String>,
    /// The workspace version of the code.
    pub version: String,
}

/// The evaluation sample and settings of a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalFingerprint {
    pub split: Split,
    /// `None`: every model at its own maximum length.
    pub max_len: Option<usize>,
    pub batch_size: usize,
    pub queries: usize,
    pub documents: usize,
    /// SHA-256 of the query ids, document ids and judgments.
    pub sample_sha256: String,
    /// `sha256:…` of the files of a collection directory of the user's (`[pair.NAME]
    /// collection`), whose texts can change under the same ids; absent for the built-in
    /// sets, whose texts are pinned by the package hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_sha256: Option<String>,
}

impl EvalFingerprint {
    pub fn new(
        set: &RetrievalSet,
        split: Split,
        max_len: Option<usize>,
        batch: usize,
        collection_sha256: Option<String>,
    ) -> Self {
        let mut h = Sha256::new();
        for q in &set.qids {
            h.update(q.as_bytes());
            h.update(b"\n");
        }
        h.update(b"\0");
        for d in &set.docids {
            h.update(d.as_bytes());
            h.update(b"\n");
        }
        h.update(b"\0");
        for (q, qq) in &set.qrels.queries {
            for (d, g) in &qq.judgments {
                h.update(format!("{q} {d} {g}\n").as_bytes());
            }
        }
        EvalFingerprint {
            split,
            max_len,
            batch_size: batch,
            queries: set.qids.len(),
            documents: set.docids.len(),
            sample_sha256: hex(&h.finalize()),
            collection_sha256,
        }
    }
}

/// The training configuration as fingerprinted: every key that can change the trained weights.
pub fn train_fingerprint(cfg: &TrainConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(cfg).expect("a config serialises");
    if let Some(run) = v.get_mut("run").and_then(|r| r.as_object_mut()) {
        run.remove("progress");
        run.remove("checkpoint_every");
    }
    strip_unread(&mut v);
    v
}

/// Removes from a fingerprinted training configuration the keys its method never reads, so
/// that a setting of one method (λ of `joint`, the OT solver, KL's temperature) does not make
/// the cells of the others stale. Applied to every fingerprint, old ones read back included.
pub fn strip_unread(v: &mut serde_json::Value) {
    // The out-of-domain source, of every cell that reads bitext (PSQ's table too): absent
    // (null) is the Bible, as before the key existed.
    if let Some(data) = v.get_mut("data").and_then(|d| d.as_object_mut())
        && data.get("bitext_source").is_some_and(|s| s.is_null())
    {
        data.remove("bitext_source");
    }
    let Some(method) = v
        .pointer("/loss/method")
        .and_then(|m| m.as_str())
        .map(str::to_string)
    else {
        return;
    };
    let mut unread: Vec<(&str, &str)> = Vec::new();
    if method != "Joint" {
        unread.extend([
            ("loss", "joint_lambda"),
            ("loss", "joint_temperature"),
            ("loss", "joint_batch_size"),
            ("data", "monolingual_queries"),
        ]);
    }
    if method != "Kl" {
        unread.push(("loss", "kl_temperature"));
    }
    // The warm start (optical only; 0 is plain OPTICAL) trains its first steps with MSE.
    let warm = v
        .pointer("/loss/warm_start_mse_steps")
        .and_then(|w| w.as_u64())
        .unwrap_or(0);
    if method != "Mse" && !(method == "Optical" && warm > 0) {
        unread.push(("loss", "mse_english_term"));
    }
    if method != "Optical" || warm == 0 {
        unread.push(("loss", "warm_start_mse_steps"));
    }
    if method == "Mse" || method == "Kl" {
        unread.extend([("loss", "optical"), ("loss", "marginal")]);
    }
    // μ of the hybrid objective: read by `optical` only, and at 0 it is plain OPTICAL (the
    // cells computed before the key existed stay fresh).
    let mu = v
        .pointer("/loss/hybrid_mse_weight")
        .and_then(|m| m.as_f64());
    if method != "Optical" || mu == Some(0.0) {
        unread.push(("loss", "hybrid_mse_weight"));
    }
    // The out-of-domain source: absent (null) is the Bible, as before the key existed.
    if v.pointer("/data/bitext_source")
        .is_some_and(|s| s.is_null())
    {
        unread.push(("data", "bitext_source"));
    }
    for (section, key) in unread {
        if let Some(s) = v.get_mut(section).and_then(|s| s.as_object_mut()) {
            s.remove(key);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `name sha256:…` of the files behind a model name (`e5-small`, `minilm` or a path), hashed
/// once per process.
pub struct ModelHashes {
    known: BTreeMap<String, String>,
}

impl ModelHashes {
    pub fn new() -> Self {
        ModelHashes {
            known: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, name: &str) -> anyhow::Result<String> {
        if let Some(h) = self.known.get(name) {
            return Ok(h.clone());
        }
        let s = format!("{name} {}", files_sha256(&model_files(name)?)?);
        self.known.insert(name.to_string(), s.clone());
        Ok(s)
    }
}

/// `sha256:` and the first 16 hex digits of the SHA-256 over `files` (each one's name,
/// length and bytes, in the order given).
pub fn files_sha256(files: &[PathBuf]) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("hashing {}", f.display()))?;
        h.update(
            f.file_name()
                .map_or(Vec::new(), |n| n.as_encoded_bytes().to_vec()),
        );
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!("sha256:{}", &hex(&h.finalize())[..16]))
}

/// The training configuration's fingerprint with a user-supplied bitext named by its
/// content (`sha256:…`) instead of its path, so that moving the file keeps the cell and
/// changing it makes the cell stale.
pub fn with_bitext_content(mut v: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    if let Some(slot) = v.pointer_mut("/data/bitext_file")
        && let Some(path) = slot.as_str()
    {
        *slot = serde_json::Value::String(files_sha256(&[PathBuf::from(path)])?);
    }
    Ok(v)
}

fn model_files(name: &str) -> anyhow::Result<Vec<PathBuf>> {
    let files = match name {
        "e5-small" | "multilingual-e5-small" => vec![
            clir_data::fetch::e5_small_weights()?,
            clir_data::fetch::e5_small_tokenizer()?,
        ],
        "minilm" | "all-MiniLM-L6-v2" => files_under(&clir_data::fetch::minilm_dir()?)?,
        path => {
            let p = Path::new(path);
            if p.is_dir() {
                files_under(p)?
            } else {
                vec![p.to_path_buf(), clir_data::fetch::e5_small_tokenizer()?]
            }
        }
    };
    Ok(files)
}

/// Every file under `dir` (at any depth), sorted by path.
pub(super) fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).follow_links(true) {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        if e.file_type().is_file() {
            out.push(e.into_path());
        }
    }
    out.sort();
    Ok(out)
}

/// Why `old` (a finished cell's fingerprint) differs from `new`, in short phrases; empty when
/// equal.
pub fn differences(old: &CellFingerprint, new: &CellFingerprint) -> Vec<String> {
    let mut why = Vec::new();
    match (&old.train, &new.train) {
        (Some(a), Some(b)) if a != b => {
            let mut paths = Vec::new();
            json_diff(a, b, "", &mut paths);
            why.push(format!("training config ({})", paths.join(", ")));
        }
        (None, Some(_)) | (Some(_), None) => why.push("cell kind".into()),
        _ => {}
    }
    let (a, b) = (&old.eval, &new.eval);
    if a.split != b.split {
        why.push(format!("split {} → {}", a.split, b.split));
    }
    if a.max_len != b.max_len {
        let len = |l: Option<usize>| l.map_or("the model's own".to_string(), |n| n.to_string());
        why.push(format!(
            "eval.max_len {} → {}",
            len(a.max_len),
            len(b.max_len)
        ));
    }
    if a.batch_size != b.batch_size {
        why.push(format!(
            "eval.batch_size {} → {}",
            a.batch_size, b.batch_size
        ));
    }
    if a.sample_sha256 != b.sample_sha256 {
        why.push(format!(
            "evaluation sample ({}×{} → {}×{} queries×documents, or other ids)",
            a.queries, a.documents, b.queries, b.documents
        ));
    }
    if a.collection_sha256 != b.collection_sha256 {
        why.push("collection files".into());
    }
    if old.backend != new.backend {
        why.push(format!("backend {} → {}", old.backend, new.backend));
    }
    if old.models != new.models {
        why.push("model weights".into());
    }
    if old.version != new.version {
        why.push(format!("code version {} → {}", old.version, new.version));
    }
    why
}

fn json_diff(a: &serde_json::Value, b: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value::Object;
    match (a, b) {
        (Object(x), Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => json_diff(u, v, &path, out),
                    (u, v) => out.push(format!("{path} {} → {}", show(u), show(v))),
                }
            }
        }
        _ if a != b => out.push(format!("{at} {a} → {b}")),
        _ => {}
    }
}

fn show(v: Option<&serde_json::Value>) -> String {
    v.map_or("absent".into(), |v| v.to_string())
}

/// Where and from what a report was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    /// `git describe`-like commit (`-dirty` with uncommitted changes), or the crate version
    /// outside a git checkout.
    pub commit: String,
    /// UTC date and time of the report.
    pub date: String,
    pub backend: String,
    /// Rayon threads (the CPU parallelism of the run).
    pub threads: usize,
    pub rustc: String,
    pub cpu: String,
    pub version: String,
}

impl Provenance {
    pub fn collect(backend: &str) -> Self {
        Provenance {
            commit: git_commit().unwrap_or_else(|| format!("v{}", env!("CARGO_PKG_VERSION"))),
            date: utc_now(),
            backend: backend.to_string(),
            threads: rayon::current_num_threads(),
            rustc: env!("OPTICAL_RUSTC_VERSION").to_string(),
            cpu: cpu_model(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

fn git_commit() -> Option<String> {
    let root = super::workspace_root();
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "--short=12", "HEAD"])?;
    // Untracked result files do not make the code dirty.
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys added after cells were committed are left out of a fingerprint at their default,
    /// so those cells stay fresh; set, they count (and a warm start makes OPTICAL read
    /// `mse_english_term`).
    #[test]
    fn later_keys_are_stripped_at_their_defaults() {
        let cfg = TrainConfig::new();
        let v = train_fingerprint(&cfg);
        for key in [
            "hybrid_mse_weight",
            "warm_start_mse_steps",
            "mse_english_term",
        ] {
            assert!(v.pointer(&format!("/loss/{key}")).is_none(), "{key}: {v}");
        }
        let mut c = cfg.clone();
        c.loss.hybrid_mse_weight = 10.0;
        c.loss.warm_start_mse_steps = 5;
        let v = train_fingerprint(&c);
        assert_eq!(
            v.pointer("/loss/hybrid_mse_weight"),
            Some(&serde_json::json!(10.0))
        );
        assert_eq!(
            v.pointer("/loss/warm_start_mse_steps"),
            Some(&serde_json::json!(5))
        );
        assert_eq!(
            v.pointer("/loss/mse_english_term"),
            Some(&serde_json::json!(true))
        );
    }

    fn fp() -> CellFingerprint {
        CellFingerprint {
            train: Some(
                serde_json::json!({"optim": {"lr": 1e-4, "steps": 12}, "run": {"seed": 42}}),
            ),
            eval: EvalFingerprint {
                split: Split::Test,
                max_len: None,
                batch_size: 32,
                queries: 50,
                documents: 600,
                sample_sha256: "ab".into(),
                collection_sha256: None,
            },
            backend: "flex".into(),
            models: BTreeMap::from([("student".into(), "e5-small sha256:00".into())]),
            version: "0.1.0".into(),
        }
    }

    /// A cell stale only by its training configuration keeps a run folder of the current
    /// configuration (its checkpoints resume) and loses one of another; a cell stale by
    /// backend, weights or code version loses its run folder whatever it holds.
    #[test]
    fn a_run_folder_is_kept_only_when_its_own_configuration_is_the_current_one() {
        use super::super::{clear_mismatched_run, retrain_reason};
        let current = fp();
        let mut by_train = current.clone();
        by_train.train = Some(serde_json::json!({"optim": {"steps": 150}}));
        let mut by_backend = current.clone();
        by_backend.backend = "wgpu".into();
        assert_eq!(retrain_reason(None, &current), "");
        assert_eq!(retrain_reason(Some(Some(&by_train)), &current), "");
        assert_ne!(retrain_reason(Some(Some(&by_backend)), &current), "");
        assert_ne!(retrain_reason(Some(None), &current), "");

        let cfg = TrainConfig::new();
        let mut other = cfg.clone();
        other.optim.steps += 1;
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let write = |c: &TrainConfig| {
            std::fs::create_dir_all(&run).unwrap();
            std::fs::write(run.join(clir_train::trainer::RUN_CONFIG), c.to_toml()).unwrap();
        };
        write(&cfg);
        clear_mismatched_run(&run, &cfg, retrain_reason(Some(Some(&by_train)), &current)).unwrap();
        assert!(
            run.is_dir(),
            "a run of the current configuration was removed"
        );
        write(&other);
        clear_mismatched_run(&run, &cfg, "").unwrap();
        assert!(!run.exists(), "a run of another configuration was kept");
        write(&cfg);
        clear_mismatched_run(
            &run,
            &cfg,
            retrain_reason(Some(Some(&by_backend)), &current),
        )
        .unwrap();
        assert!(!run.exists(), "a run on another backend was kept");
    }

    #[test]
    fn the_bible_default_of_bitext_source_keeps_old_fingerprints() {
        let mut cfg = TrainConfig::new();
        let new = train_fingerprint(&cfg);
        assert!(new.pointer("/data/bitext_source").is_none(), "{new}");
        let mut old = new.clone();
        old["data"].as_object_mut().unwrap().remove("bitext_source");
        assert_eq!(old, new);
        cfg.data.bitext_source = Some("freedict".into());
        assert_eq!(train_fingerprint(&cfg)["data"]["bitext_source"], "freedict");
    }

    #[test]
    fn differences_name_what_changed() {
        let a = fp();
        assert!(differences(&a, &a.clone()).is_empty());
        let mut b = a.clone();
        b.train =
            Some(serde_json::json!({"optim": {"lr": 2e-4, "steps": 12}, "run": {"seed": 42}}));
        b.backend = "wgpu".into();
        let why = differences(&a, &b);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("optim.lr 0.0001 → 0.0002"), "{why:?}");
        assert!(why[1].contains("backend flex → wgpu"), "{why:?}");
        let mut c = a.clone();
        c.eval.sample_sha256 = "cd".into();
        c.eval.split = Split::Dev;
        let why = differences(&a, &c);
        assert!(
            why.iter().any(|w| w.contains("split test → dev")),
            "{why:?}"
        );
        assert!(
            why.iter().any(|w| w.contains("evaluation sample")),
            "{why:?}"
        );
    }

    /// A key a method never reads does not enter its fingerprint: λ or the OT solver change
    /// joint's or OPTICAL's fingerprint, not KL's; KL's temperature changes KL's only.
    #[test]
    fn settings_of_other_methods_leave_a_fingerprint_alone() {
        let mut a = TrainConfig::new();
        a.loss.method = clir_train::Method::Kl;
        let mut b = a.clone();
        b.loss.joint_lambda = 0.9;
        b.loss.optical.sinkhorn.epsilon = 0.3;
        b.loss.mse_english_term = false;
        assert_eq!(train_fingerprint(&a), train_fingerprint(&b));
        b.loss.kl_temperature = 0.1;
        assert_ne!(train_fingerprint(&a), train_fingerprint(&b));
        for m in [clir_train::Method::Joint, clir_train::Method::Optical] {
            let (mut x, mut y) = (a.clone(), a.clone());
            x.loss.method = m;
            y.loss.method = m;
            y.loss.optical.sinkhorn.epsilon = 0.3;
            assert_ne!(train_fingerprint(&x), train_fingerprint(&y), "{m:?}");
            y = x.clone();
            y.loss.joint_lambda = 0.9;
            assert_eq!(
                train_fingerprint(&x) != train_fingerprint(&y),
                m == clir_train::Method::Joint
            );
        }
        // A fingerprint written with the unread keys compares equal once read back.
        let mut old = train_fingerprint(&a);
        old["loss"]["joint_lambda"] = serde_json::json!(0.5);
        old["loss"]["optical"] = serde_json::json!({"sinkhorn": {"epsilon": 0.05}});
        assert_ne!(old, train_fingerprint(&a));
        strip_unread(&mut old);
        assert_eq!(old, train_fingerprint(&a));
    }

    #[test]
    fn the_date_is_civil_utc() {
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}
