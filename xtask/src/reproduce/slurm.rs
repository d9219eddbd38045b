//! `reproduce --emit slurm DIR`: the unfinished cells of a matrix as Slurm job arrays.
//!
//! DIR gets one array script per kind of cell (trained, encode-only, lexical: each kind has its
//! own resources), a data-fetch job that runs once before them, a report job that depends on
//! every array (`afterok`) and runs `--report-only`, and `submit.sh`, which submits them in that
//! order. Array task `i` runs `reproduce … --cell i`, where `i` is the cell's number in
//! `--list`, so the array lists exactly the unfinished cells (`#SBATCH --array=3,5-9`).
//! `--partition`, `--account` and `--time` on the command line replace the preset's values,
//! and a path the jobs need that lies in a node-local folder (`/tmp`, `/var/tmp`, `/dev/shm`,
//! `$TMPDIR`) is warned about: the compute nodes would not see it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ot_core::backend::Backend;
use serde::{Deserialize, Serialize};

use super::preset::Preset;
use super::{Cell, CellKind, ENGLISH, ReproduceArgs};

/// `[slurm]` of a preset: where and with what the jobs run. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// `#SBATCH --partition` (`reproduce --partition` replaces it).
    pub partition: Option<String>,
    /// `#SBATCH --account` (`reproduce --account` replaces it).
    pub account: Option<String>,
    /// Shell lines run at the start of every job (module loads, a virtual environment).
    #[serde(default)]
    pub setup: Vec<String>,
    /// Resources of a trained cell (training, then encoding the documents).
    #[serde(default)]
    pub trained: Resources,
    /// Resources of an encode-only cell (zero-shot, English→English).
    #[serde(default)]
    pub encode: Resources,
    /// Resources of a lexical cell (PSQ, BM25).
    #[serde(default)]
    pub lexical: Resources,
}

impl SlurmSettings {
    pub fn is_default(&self) -> bool {
        self == &SlurmSettings::default()
    }
}

/// Resources of one kind of task; absent keys take the defaults of [`TaskKind::defaults`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--mem`, e.g. `16G`.
    pub mem: Option<String>,
    /// `--time`, in one of Slurm's forms (see [`parse_time`]); default: three times the
    /// longest estimate of the kind's unfinished cells (from `--list`, measured on a 2-core
    /// CPU) plus 10 minutes. `reproduce --time` replaces it.
    pub time: Option<String>,
    /// `--gres=gpu:N`; default 1 for trained and encode cells on the `wgpu` backend, else 0.
    pub gpus: Option<u32>,
}

/// The kind of a cell, as far as its resources go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskKind {
    Trained,
    Encode,
    Lexical,
}

impl TaskKind {
    pub fn of(c: &Cell) -> Self {
        match c.kind {
            CellKind::Trained(..) => TaskKind::Trained,
            CellKind::ZeroShot | CellKind::TeacherDirect(_) | CellKind::English(_) => {
                TaskKind::Encode
            }
            CellKind::Psq | CellKind::Bm25En => TaskKind::Lexical,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TaskKind::Trained => "trained",
            TaskKind::Encode => "encode",
            TaskKind::Lexical => "lexical",
        }
    }

    /// `(cpus, mem)` when the preset does not say.
    fn defaults(self) -> (u32, &'static str) {
        match self {
            TaskKind::Trained => (4, "16G"),
            TaskKind::Encode => (4, "8G"),
            TaskKind::Lexical => (2, "4G"),
        }
    }

    fn resources(self, s: &SlurmSettings) -> &Resources {
        match self {
            TaskKind::Trained => &s.trained,
            TaskKind::Encode => &s.encode,
            TaskKind::Lexical => &s.lexical,
        }
    }
}

/// One unfinished cell: its number in `--list`, its kind and estimated seconds.
#[derive(Debug, Clone)]
pub struct Task {
    pub index: usize,
    pub kind: TaskKind,
    pub seconds: f64,
}

/// What every job's command repeats: the preset, the subset and backend, the results folder.
pub struct Job<'a> {
    pub preset: &'a Preset,
    pub preset_path: &'a Path,
    pub args: &'a ReproduceArgs,
    pub out: &'a Path,
    pub backend: Backend,
}

/// Writes the scripts for `scheduler` (only `slurm`) into `dir`.
pub fn emit(scheduler: &str, dir: &Path, job: &Job, tasks: &[Task]) -> anyhow::Result<()> {
    if scheduler != "slurm" {
        bail!("--emit {scheduler}: the only scheduler is slurm");
    }
    let settings = &job.preset.slurm;
    check_settings(settings).map_err(|e| anyhow!("{}: {e}", job.preset_path.display()))?;
    std::fs::create_dir_all(dir.join("logs")).with_context(|| dir.display().to_string())?;
    std::fs::create_dir_all(job.out).with_context(|| job.out.display().to_string())?;
    let dir = absolute(dir)?;
    let exe = std::env::current_exe().context("the path of this xtask binary")?;
    let command = reproduce_command(&exe, job)?;
    let fetch = needs_fetch(job.preset, tasks);
    let cache = clir_data::fetch::cache_dir();
    warn_node_local(job, &exe, &dir, fetch.then_some(cache.as_path()))?;
    let scripts = Scripts {
        job,
        settings,
        root: super::workspace_root(),
        dir: dir.clone(),
        cache: shell_quote(&path_str(&cache)?),
    };

    let mut files = Vec::new();
    // Data: fetched once, before any cell (the cache is shared by every task).
    if fetch {
        let mut f = scripts.header("fetch", false, "01:00:00");
        f.push_str("#SBATCH --cpus-per-task=1\n#SBATCH --mem=2G\n");
        scripts.body(
            &mut f,
            &format!("exec {} data fetch", shell_quote(&path_str(&exe)?)),
        );
        files.push(("fetch.sbatch".to_string(), f));
    }
    let mut arrays = Vec::new();
    for kind in [TaskKind::Trained, TaskKind::Encode, TaskKind::Lexical] {
        let mine: Vec<&Task> = tasks.iter().filter(|t| t.kind == kind).collect();
        if mine.is_empty() {
            continue;
        }
        let name = format!("cells-{}.sbatch", kind.name());
        arrays.push((name.clone(), mine.len()));
        files.push((name, scripts.array(kind, &mine, &command)));
    }
    let mut r = scripts.header("report", false, "00:30:00");
    r.push_str("#SBATCH --cpus-per-task=1\n#SBATCH --mem=4G\n");
    scripts.body(&mut r, &format!("exec {command} --report-only"));
    files.push(("report.sbatch".to_string(), r));
    files.push(("submit.sh".to_string(), submit_script(fetch, &arrays)));

    for (name, text) in &files {
        let path = dir.join(name);
        clir_train::trainer::write_atomic(&path, text.as_bytes())?;
        set_executable(&path)?;
    }
    println!(
        "wrote {} for {} unfinished cells ({}) of preset {} -> results in {}",
        dir.display(),
        tasks.len(),
        arrays
            .iter()
            .map(|(n, k)| format!("{n}: {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        job.preset.name,
        job.out.display()
    );
    println!("submit with: bash {}", dir.join("submit.sh").display());
    Ok(())
}

/// Warns about each path the jobs need that lies in a folder local to each machine.
fn warn_node_local(job: &Job, exe: &Path, dir: &Path, cache: Option<&Path>) -> anyhow::Result<()> {
    let mut shared = vec![
        ("the xtask binary", exe.to_path_buf()),
        ("the working directory", super::workspace_root()),
        ("the preset", absolute(job.preset_path)?),
        ("the results folder", absolute(job.out)?),
        ("the scripts folder", dir.to_path_buf()),
    ];
    if let Some(cache) = cache {
        shared.push(("the data cache", absolute(cache)?));
    }
    for (what, path) in &shared {
        if let Some(local) = node_local(path) {
            eprintln!(
                "warning: {what} {} lies in {}, a folder local to each machine: the compute \
                 nodes will not see it; put it on a file system they share",
                path.display(),
                local.display()
            );
        }
    }
    Ok(())
}

/// What every script shares: its `#SBATCH` header and its environment.
struct Scripts<'a> {
    job: &'a Job<'a>,
    settings: &'a SlurmSettings,
    root: PathBuf,
    dir: PathBuf,
    /// `OPTICAL_CACHE`, quoted for the shell.
    cache: String,
}

impl Scripts<'_> {
    /// The header of job `name` (an array's log names carry the array and task ids).
    fn header(&self, name: &str, array: bool, time: &str) -> String {
        let args = self.job.args;
        let mut h = String::from("#!/usr/bin/env bash\n");
        let _ = writeln!(
            h,
            "#SBATCH --job-name=optical-{}-{name}",
            self.job.preset.name
        );
        let _ = writeln!(h, "#SBATCH --chdir={}", self.root.display());
        let log = if array { "%x-%A_%a" } else { "%x-%j" };
        let _ = writeln!(h, "#SBATCH --output={}/logs/{log}.out", self.dir.display());
        let _ = writeln!(h, "#SBATCH --time={}", args.time.as_deref().unwrap_or(time));
        if let Some(p) = args.partition.as_ref().or(self.settings.partition.as_ref()) {
            let _ = writeln!(h, "#SBATCH --partition={p}");
        }
        if let Some(a) = args.account.as_ref().or(self.settings.account.as_ref()) {
            let _ = writeln!(h, "#SBATCH --account={a}");
        }
        h
    }

    /// The strict shell options, the preset's setup lines, the environment, then `line`.
    fn body(&self, h: &mut String, line: &str) {
        h.push_str("set -euo pipefail\n");
        for l in &self.settings.setup {
            h.push_str(l);
            h.push('\n');
        }
        let _ = writeln!(h, "export OPTICAL_CACHE={}", self.cache);
        h.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
        h.push_str("export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
        h.push_str(line);
        h.push('\n');
    }

    /// The job array of one kind's unfinished cells.
    fn array(&self, kind: TaskKind, mine: &[&Task], command: &str) -> String {
        let res = kind.resources(self.settings);
        let (cpus, mem) = kind.defaults();
        let longest = mine.iter().map(|t| t.seconds).fold(0.0, f64::max);
        let time = match &res.time {
            Some(t) => t.clone(),
            None => slurm_time(3.0 * longest + 600.0),
        };
        let mut f = self.header(kind.name(), true, &time);
        let indices: Vec<usize> = mine.iter().map(|t| t.index).collect();
        let _ = writeln!(f, "#SBATCH --array={}", array_ranges(&indices));
        let _ = writeln!(f, "#SBATCH --cpus-per-task={}", res.cpus.unwrap_or(cpus));
        let _ = writeln!(f, "#SBATCH --mem={}", res.mem.as_deref().unwrap_or(mem));
        let gpu_default = u32::from(self.job.backend == Backend::Wgpu && kind != TaskKind::Lexical);
        let gpus = res.gpus.unwrap_or(gpu_default);
        if gpus > 0 {
            let _ = writeln!(f, "#SBATCH --gres=gpu:{gpus}");
        }
        self.body(
            &mut f,
            &format!("exec {command} --cell \"$SLURM_ARRAY_TASK_ID\""),
        );
        f
    }
}

/// `submit.sh`: the fetch job, then every array after it, then the report after them all.
fn submit_script(fetch: bool, arrays: &[(String, usize)]) -> String {
    let mut submit = String::from(
        "#!/usr/bin/env bash\n\
         # Submits the matrix: data fetch, then one job array per kind of cell, then the report\n\
         # once every array has finished without error (afterok).\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")\"\n",
    );
    let mut dep = "";
    if fetch {
        submit.push_str("fetch=$(sbatch --parsable fetch.sbatch)\necho \"fetch: $fetch\"\n");
        dep = "--dependency=afterok:$fetch ";
    }
    submit.push_str("cells=()\n");
    for (name, _) in arrays {
        let _ = writeln!(
            submit,
            "cells+=(\"$(sbatch --parsable {dep}{name})\")\necho \"{name}: ${{cells[-1]}}\""
        );
    }
    if arrays.is_empty() {
        submit.push_str(&format!("report=$(sbatch --parsable {dep}report.sbatch)\n"));
    } else {
        submit.push_str(
            "after=$(IFS=:; echo \"${cells[*]}\")\n\
             report=$(sbatch --parsable --dependency=afterok:\"$after\" report.sbatch)\n",
        );
    }
    submit.push_str("echo \"report: $report\"\n");
    submit
}

/// The `reproduce` command line every task repeats (absolute paths: jobs start elsewhere).
fn reproduce_command(exe: &Path, job: &Job) -> anyhow::Result<String> {
    let a = job.args;
    let mut c = format!(
        "{} reproduce --preset {} --out {} --backend {}",
        shell_quote(&path_str(exe)?),
        shell_quote(&path_str(&absolute(job.preset_path)?)?),
        shell_quote(&path_str(&absolute(job.out)?)?),
        job.backend
    );
    let list = |v: &[String]| shell_quote(&v.join(","));
    if let Some(p) = &a.pairs {
        let _ = write!(c, " --pairs {}", list(p));
    }
    if let Some(m) = &a.methods {
        let _ = write!(c, " --methods {}", list(m));
    }
    if let Some(s) = &a.seeds {
        let seeds: Vec<String> = s.iter().map(u64::to_string).collect();
        let _ = write!(c, " --seeds {}", list(&seeds));
    }
    if a.reuse_stale {
        c.push_str(" --reuse-stale");
    }
    Ok(c)
}

/// Whether the jobs read the data cache: any cell that is not lexical (models), or any pair
/// without its own collection and bitext (the Bible, Nave).
fn needs_fetch(preset: &Preset, tasks: &[Task]) -> bool {
    tasks.iter().any(|t| t.kind != TaskKind::Lexical)
        || preset.pairs.iter().any(|p| {
            preset
                .pair
                .get(p)
                .is_none_or(|d| d.collection.is_none() || d.bitext.is_none())
        })
        || preset.collection_of(ENGLISH).is_none()
}

fn check_settings(s: &SlurmSettings) -> anyhow::Result<()> {
    for (key, v) in [("partition", &s.partition), ("account", &s.account)] {
        if let Some(v) = v
            && let Err(e) = parse_name(v)
        {
            bail!("[slurm] {key}: {e}");
        }
    }
    for (kind, r) in [
        ("trained", &s.trained),
        ("encode", &s.encode),
        ("lexical", &s.lexical),
    ] {
        if let Some(m) = &r.mem {
            let digits = m.trim_end_matches(['K', 'M', 'G', 'T']);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                bail!("[slurm.{kind}] mem = {m:?}: expected a number with K, M, G or T");
            }
        }
        if let Some(t) = &r.time
            && let Err(e) = parse_time(t)
        {
            bail!("[slurm.{kind}] time: {e}");
        }
        if r.cpus == Some(0) {
            bail!("[slurm.{kind}] cpus must be at least 1");
        }
    }
    Ok(())
}

/// A Slurm time limit as `--time` takes it (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
/// `D-HH:MM:SS`): every field digits, minutes and seconds below 60 after the first field,
/// hours below 24 after a day count. The value parser of `reproduce --time`.
pub fn parse_time(t: &str) -> Result<String, String> {
    let forms = "Slurm's MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS";
    let bad = || format!("'{t}' is not a time limit: expected {forms}");
    let number = |f: &str| {
        (!f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
            .then(|| f.parse::<u64>().ok())
            .flatten()
    };
    let (days, rest) = match t.split_once('-') {
        Some((d, rest)) => (Some(number(d).ok_or_else(bad)?), rest),
        None => (None, t),
    };
    let fields = rest
        .split(':')
        .map(number)
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(bad)?;
    // The bound of each field: the first is free without a day count (`90` minutes,
    // `48:00:00`), hours after a day count are below 24, minutes and seconds below 60.
    let bounds: &[Option<u64>] = match (days.is_some(), fields.len()) {
        (false, 1) => &[None],
        (false, 2) => &[None, Some(60)],
        (false, 3) => &[None, Some(60), Some(60)],
        (true, 1) => &[Some(24)],
        (true, 2) => &[Some(24), Some(60)],
        (true, 3) => &[Some(24), Some(60), Some(60)],
        _ => return Err(bad()),
    };
    for (v, bound) in fields.iter().zip(bounds) {
        if let Some(b) = bound
            && v >= b
        {
            return Err(format!(
                "'{t}' is not a time limit: {v} is out of range (hours after a day count \
                 are below 24, minutes and seconds below 60); expected {forms}"
            ));
        }
    }
    Ok(t.to_string())
}

/// A partition or account name for an `#SBATCH` line: not empty, no whitespace or control
/// character. The value parser of `reproduce --partition` and `--account`.
pub fn parse_name(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err("empty name".into());
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("'{v}' has whitespace or a control character"));
    }
    Ok(v.to_string())
}

/// The node-local folder `path` lies in, if any: `/tmp`, `/var/tmp`, `/dev/shm` or `$TMPDIR`
/// (compared as given and with links resolved).
fn node_local(path: &Path) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = ["/tmp", "/var/tmp", "/dev/shm"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(t) = std::env::var_os("TMPDIR").filter(|t| !t.is_empty()) {
        roots.push(PathBuf::from(t));
    }
    let resolved = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    roots
        .into_iter()
        .filter(|r| r.is_absolute() && r.parent().is_some())
        .find(|r| path.starts_with(r) || resolved(path).starts_with(resolved(r)))
}

/// `1,3-5,9` from sorted distinct indices.
pub fn array_ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            indices[i].to_string()
        } else {
            format!("{}-{}", indices[i], indices[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Slurm's `[D-]HH:MM:SS` for `seconds`, rounded up to a whole minute.
pub fn slurm_time(seconds: f64) -> String {
    let minutes = (seconds.max(60.0) / 60.0).ceil() as u64;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:00")
    } else {
        format!("{h:02}:{m:02}:00")
    }
}

/// `s` in single quotes for the shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-,=+:".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| p.display().to_string())
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_string)
        .with_context(|| format!("{}: not valid UTF-8", p.display()))
}

fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path)?.permissions();
    perm.set_mode(perm.mode() | 0o755);
    std::fs::set_permissions(path, perm).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges_join_runs() {
        assert_eq!(array_ranges(&[]), "");
        assert_eq!(array_ranges(&[4]), "4");
        assert_eq!(array_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn times_round_up_to_minutes_and_days() {
        assert_eq!(slurm_time(0.0), "00:01:00");
        assert_eq!(slurm_time(61.0), "00:02:00");
        assert_eq!(slurm_time(3600.0), "01:00:00");
        assert_eq!(slurm_time(90_000.0), "1-01:00:00");
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("/a/b-c.toml"), "/a/b-c.toml");
        assert_eq!(shell_quote("it's a dir"), r"'it'\''s a dir'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn slurm_time_forms_are_accepted_and_others_refused() {
        for t in [
            "30",
            "90",
            "30:00",
            "01:30:00",
            "48:00:00",
            "2-00",
            "2-12",
            "1-12:30",
            "1-00:00:00",
            "0",
        ] {
            assert_eq!(parse_time(t).as_deref(), Ok(t), "{t}");
        }
        for t in [
            "",
            "1 hour",
            "1h",
            "1:2:3:4",
            "1-2-3",
            "-1",
            "1-",
            "1-:00",
            "01::00",
            "00:60",
            "1:60:00",
            "1-24",
            "1-23:60",
            "1-00:00:60",
            "+5",
            "1.5",
        ] {
            let e = parse_time(t).unwrap_err();
            assert!(
                e.contains(&format!("'{t}'")) && e.contains("D-HH:MM:SS"),
                "{t}: {e}"
            );
        }
    }

    #[test]
    fn names_and_node_local_paths() {
        assert!(parse_name("gpu,debug").is_ok());
        assert!(parse_name("").is_err());
        assert!(parse_name("my part").unwrap_err().contains("whitespace"));
        assert_eq!(
            node_local(Path::new("/tmp/x/xtask")),
            Some(PathBuf::from("/tmp"))
        );
        assert_eq!(
            node_local(Path::new("/dev/shm/run")),
            Some(PathBuf::from("/dev/shm"))
        );
        assert_eq!(node_local(Path::new("/tmpfoo/x")), None);
        assert_eq!(node_local(Path::new("/home/u/optical")), None);
    }

    #[test]
    fn bad_resources_are_refused() {
        let mut s = SlurmSettings::default();
        s.trained.mem = Some("lots".into());
        assert!(check_settings(&s).unwrap_err().to_string().contains("mem"));
        s.trained.mem = Some("16G".into());
        s.lexical.time = Some("1 hour".into());
        let e = check_settings(&s).unwrap_err().to_string();
        assert!(
            e.contains("[slurm.lexical] time") && e.contains("'1 hour'"),
            "{e}"
        );
        s.lexical.time = Some("1-12:00:00".into());
        s.partition = Some("a b".into());
        let e = check_settings(&s).unwrap_err().to_string();
        assert!(e.contains("[slurm] partition"), "{e}");
    }
}
