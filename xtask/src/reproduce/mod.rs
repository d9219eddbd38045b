//! `cargo xtask reproduce`: the experiment matrix of a preset (language pairs × methods ×
//! variants × seeds, plus the English→English reference), resumable cell by cell, with the
//! result tables, confidence intervals, paired tests (against zero-shot, and OPTICAL against
//! every other method), the low/high-resource gap and charts written to
//! `experiments/results/<preset>/`.
//!
//! Every cell shares one evaluation setting (split, sample, length, batch size). A finished
//! cell records a [`fingerprint::CellFingerprint`] and is reused only while it matches.

mod cost;
mod curve;
mod expected;
mod fingerprint;
mod lexical;
mod preset;
mod report;
mod reuse;
mod slurm;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clir_data::bible::{BibleDb, resolve_version};
use clir_eval::progress::Progress;
use clir_models::{Embedder, PrefixStates, TextKind};
use clir_train::bitext::load_bitext;
use clir_train::retrieval::{
    RUN_DEPTH, RetrievalScores, RetrievalSet, check_finite, collection_docs_file, collection_set,
    nave_set, score_embeddings, score_run,
};
use clir_train::trainer::{TrainInputs, TrainSummary, train, write_atomic};
use clir_train::{Method, TrainConfig};
use ot_core::backend::{Backend, select_device};
use serde::{Deserialize, Serialize};

use cost::estimate_seconds;
pub use fingerprint::CellFingerprint;
use fingerprint::{EvalFingerprint, ModelHashes, differences, train_fingerprint};
pub use preset::{Preset, Variant};

/// The method name of the untrained multilingual model, on both sides: the student's base
/// model encodes the queries and the documents (with a teacher of the same model, as in every
/// preset so far, that is the teacher's queries against the untrained student's documents).
pub const ZERO_SHOT: &str = "zero-shot";
/// The teacher reading the target-language documents directly (queries by the teacher too):
/// the floor a teacher other than the student's base gives without any distillation.
pub const TEACHER_DIRECT: &str = "teacher-direct";
/// The label of the English→English reference (teacher on English documents).
pub const ENGLISH: &str = "english";
/// Probabilistic structured queries (Darwish & Oard 2003): English queries translated into
/// weighted target-language terms by an IBM Model 1 table learned from the pair's Old
/// Testament bitext (all of it unless `[psq] max_pairs`), scored by PSQ-BM25 over the
/// target-language documents. One cell per pair (nothing in it is random).
pub const PSQ: &str = "psq";
/// BM25 of the English queries over the English documents: a lexical English→English
/// reference beside the dense one (one cell, in the English row).
pub const BM25_EN: &str = "bm25-en";

/// The `backend` of a lexical cell's fingerprint (it runs on the CPU, whatever `--backend`).
const LEXICAL_BACKEND: &str = "cpu (lexical)";

/// The teachers of a preset's trained cells: the preset's own (`[train] model.teacher`)
/// first, then those its variants set, in variant order. Each teacher has its own `english`
/// reference (its ceiling) and, when it is not the student's base, its own `teacher-direct`
/// floor; a trained cell's queries are encoded by its own teacher.
pub fn teachers(preset: &Preset) -> anyhow::Result<Vec<String>> {
    let pair = preset.pairs.first().map_or("swahili", String::as_str);
    let base = preset.train_config(pair, Method::Optical, &preset.variant_list()[0], None)?;
    let mut out = vec![base.model.teacher];
    for m in preset
        .methods
        .iter()
        .filter_map(|m| m.parse::<Method>().ok())
    {
        for v in preset.variants_of(m) {
            let t = preset
                .train_config(preset.pair_of(&v), m, &v, None)?
                .model
                .teacher;
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// The label of a per-teacher cell (`english`, `teacher-direct`): the bare name for the
/// preset's own teacher, `NAME/TEACHER` for a variant's (a teacher given as a path is named
/// by its last component).
fn teacher_label(name: &str, teachers: &[String], teacher: &str) -> String {
    if teachers.first().map(String::as_str) == Some(teacher) {
        name.to_string()
    } else {
        format!("{name}/{}", teacher_short_name(teacher))
    }
}

fn teacher_short_name(teacher: &str) -> &str {
    Path::new(teacher)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(teacher)
}

/// The teacher whose space a report row's queries lie in: a trained row's own teacher, a
/// `teacher-direct[/T]` row's `T`, and the preset's teacher for every other row (zero-shot,
/// PSQ). `None` for a label that names no row of the preset.
pub fn teacher_of_row(preset: &Preset, teachers: &[String], label: &str) -> Option<String> {
    let label = label.split('@').next().unwrap_or(label);
    let m = label.split('/').next().unwrap_or(label);
    if m == TEACHER_DIRECT || m == ENGLISH {
        return teachers
            .iter()
            .find(|t| teacher_label(m, teachers, t) == label)
            .cloned();
    }
    if m.parse::<Method>().is_err() {
        return teachers.first().cloned();
    }
    Some(row_config(preset, label)?.model.teacher)
}

/// The training configuration of a trained row `METHOD[/VARIANT][@STEP]` (on the preset's
/// first pair, its own seed); `None` for a row that is not trained or names no variant.
pub fn row_config(preset: &Preset, label: &str) -> Option<TrainConfig> {
    let label = label.split('@').next().unwrap_or(label);
    let (m, v) = label.split_once('/').unwrap_or((label, ""));
    let method: Method = m.parse().ok()?;
    let variant = preset
        .variants_of(method)
        .into_iter()
        .find(|x| x.name == v)?;
    preset
        .train_config(preset.pair_of(&variant), method, &variant, None)
        .ok()
}

/// Teachers whose short names (the label suffix) collide cannot be told apart in the report,
/// and `teacher-direct` needs a teacher other than the student's base (with the student's
/// base it is the zero-shot cell again).
fn check_teacher(preset: &Preset, base: &TrainConfig) -> anyhow::Result<()> {
    let file = preset.source.0.display();
    let teachers = teachers(preset)?;
    for (i, a) in teachers.iter().enumerate() {
        if let Some(b) = teachers[..i]
            .iter()
            .find(|b| teacher_short_name(b) == teacher_short_name(a))
        {
            bail!(
                "{file}: teachers {b} and {a} would share the label suffix '{}'; give one a \
                 folder of another name",
                teacher_short_name(a)
            );
        }
    }
    let s = &base.model.student;
    if preset.methods.iter().any(|m| m == TEACHER_DIRECT) && teachers.iter().all(|t| t == s) {
        bail!(
            "{file}: {TEACHER_DIRECT} with teacher {s}, the student's base, is the {ZERO_SHOT} \
             cell again; it is for a teacher of another model (e.g. model.teacher = \"minilm\")"
        );
    }
    Ok(())
}

/// `--pairs`: no pair twice, by name or by the Bible version it resolves to (`tagalog,tl`).
fn check_pairs(pairs: &[String]) -> anyhow::Result<()> {
    if pairs.is_empty() {
        bail!("--pairs needs at least one pair");
    }
    for (i, a) in pairs.iter().enumerate() {
        for b in &pairs[..i] {
            if a.eq_ignore_ascii_case(b) {
                bail!("--pairs: {a} is listed twice");
            }
            let (va, vb) = (resolve_version(a), resolve_version(b));
            if let (Ok(va), Ok(vb)) = (&va, &vb)
                && va == vb
            {
                bail!(
                    "--pairs: {b} and {a} are the same language (Bible version {va}); name it once"
                );
            }
        }
    }
    Ok(())
}

/// The canonical (lower-case) name of a preset method given in any case: `Optical`,
/// `OPTICAL` and `optical` are one method, on the command line as in a preset.
pub fn canonical_method(name: &str) -> anyhow::Result<String> {
    let lower = name.to_ascii_lowercase();
    check_method_name(&lower)?;
    Ok(match lower.parse::<Method>() {
        Ok(m) => m.name().to_string(),
        Err(_) => lower,
    })
}

/// Checks a method name of a preset or of `--methods`: zero-shot, a lexical method, or a
/// trained one.
pub fn check_method_name(name: &str) -> anyhow::Result<()> {
    if [ZERO_SHOT, TEACHER_DIRECT, PSQ, BM25_EN].contains(&name) {
        return Ok(());
    }
    name.parse::<Method>()
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{e} (or {ZERO_SHOT}, {TEACHER_DIRECT}, {PSQ}, {BM25_EN})"))
}

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// A preset name under experiments/ (quick, full, ot-vs-kl, …) or a TOML path.
    #[arg(long, default_value = "quick")]
    preset: String,
    /// Compute backend (flex, ndarray, wgpu, tch); default: $OPTICAL_BACKEND or flex.
    #[arg(long)]
    backend: Option<String>,
    /// Only these language pairs (comma separated; default: the preset's).
    #[arg(long, value_delimiter = ',')]
    pairs: Option<Vec<String>>,
    /// Only these methods (comma separated; default: the preset's).
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<String>>,
    /// Training seeds (comma separated; default: the preset's `seeds`).
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Print every cell with its number, id, state (done / stale / missing) and estimated
    /// cost; run nothing.
    #[arg(long)]
    list: bool,
    /// Compute exactly one cell, named by its number in `--list` or its id
    /// (`pair/method[/variant][/seedN]`, e.g. `swahili/optical/seed42`), and write no report
    /// (`--report-only` builds it from the finished cells). For job arrays.
    #[arg(long, value_name = "N|ID")]
    cell: Option<String>,
    /// Write results.* from the finished cells without computing any (cells not finished are
    /// listed and left out).
    #[arg(long, conflicts_with_all = ["cell", "list"])]
    report_only: bool,
    /// Write scheduler scripts that run the unfinished cells as a job array, one task per
    /// cell, instead of running them: `--emit slurm DIR` (see docs/scale-out.md).
    #[arg(long, num_args = 2, value_names = ["SCHEDULER", "DIR"], conflicts_with_all = ["cell", "list", "report_only"])]
    emit: Option<Vec<String>>,
    /// With --emit slurm: the partition of every job (`#SBATCH --partition`), instead of the
    /// preset's `[slurm] partition`.
    #[arg(long, requires = "emit", conflicts_with_all = ["cell", "list", "report_only"], value_parser = slurm::parse_name)]
    partition: Option<String>,
    /// With --emit slurm: the account every job is charged to (`#SBATCH --account`), instead
    /// of the preset's `[slurm] account`.
    #[arg(long, requires = "emit", conflicts_with_all = ["cell", "list", "report_only"], value_parser = slurm::parse_name)]
    account: Option<String>,
    /// With --emit slurm: the time limit of every job (cells, data fetch, report), instead
    /// of the preset's `[slurm.*] time` and the estimates; Slurm's forms `MM`, `MM:SS`,
    /// `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
    #[arg(long, value_name = "TIME", requires = "emit", conflicts_with_all = ["cell", "list", "report_only"], value_parser = slurm::parse_time)]
    time: Option<String>,
    /// Reuse finished cells whose fingerprint no longer matches (default: recompute them).
    #[arg(long)]
    reuse_stale: bool,
    /// Take finished cells missing from `<out>/cells/` from `<out>/results.json` (the committed
    /// results of an earlier run), so that only missing or stale cells are computed; their
    /// fingerprints are checked as usual. Their `.run` files are not in results.json and stay
    /// absent.
    #[arg(long)]
    restore: bool,
    /// Take a missing cell from this other results directory (e.g. experiments/results/
    /// standard) when it is the same computation: same pair, seed and method, and an equal
    /// fingerprint (training settings, evaluation sample, models, backend, version). The
    /// copy keeps its own time and commit and the report names where it came from. Repeat
    /// for several directories (the first that has the cell wins).
    #[arg(long, value_name = "DIR")]
    reuse_from: Vec<PathBuf>,
    /// Compare the results with experiments/expected/<preset>.toml and fail on drift.
    #[arg(long)]
    verify: bool,
    /// Expected scores for --verify (default experiments/expected/<preset>.toml).
    #[arg(long)]
    expected: Option<PathBuf>,
    /// Write the report's table values (each row's mean over seeds) as the expected scores
    /// (the --expected path), with the run's provenance in its header; refused when that file
    /// exists (remove it to rewrite) or when cells are missing from the report.
    #[arg(long)]
    write_expected: bool,
    /// Results directory (default experiments/results/<preset>; a run restricted by --pairs,
    /// --methods or --seeds defaults to its own experiments/results/<preset>.partial/<subset>).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn workspace_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    clir_data::fetch::find_workspace_root(&here).unwrap_or(here)
}

/// One cell of the matrix.
#[derive(Debug, Clone)]
struct Cell {
    pair: String,
    /// Row label: method, or `method/variant`.
    label: String,
    kind: CellKind,
    /// The training seed (trained cells).
    seed: Option<u64>,
    /// A point of a training curve (preset `curve_steps`): the trained cell's student after
    /// this step of the same run (its label ends in `@STEP`).
    step: Option<usize>,
}

#[derive(Debug, Clone)]
enum CellKind {
    ZeroShot,
    /// A teacher (by name) reading the target-language documents.
    TeacherDirect(String),
    /// A teacher (by name) reading the English documents.
    English(String),
    Psq,
    Bm25En,
    Trained(Method, Variant),
}

impl Cell {
    /// `cells/<pair>/<label>[.seed<N>]` without extension.
    fn stem(&self, out: &Path) -> PathBuf {
        let mut name = self.label.replace('/', "__");
        if let Some(s) = self.seed {
            name.push_str(&format!(".seed{s}"));
        }
        out.join("cells").join(&self.pair).join(name)
    }

    fn json_path(&self, out: &Path) -> PathBuf {
        let stem = self.stem(out);
        let name = stem.file_name().expect("a file name").to_string_lossy();
        stem.with_file_name(format!("{name}.json"))
    }

    /// The training run's folder, shared by the points of its curve.
    fn run_dir(&self, out: &Path) -> PathBuf {
        let label = self.label.split('@').next().unwrap_or(&self.label);
        let mut d = out
            .join("runs")
            .join(&self.pair)
            .join(label.replace('/', "__"));
        if let Some(s) = self.seed {
            d = d.join(format!("seed{s}"));
        }
        d
    }

    /// `pair/label[/seedN]`: the id `--cell` takes (a label may hold `method/variant`).
    fn id(&self) -> String {
        match self.seed {
            Some(s) => format!("{}/{}/seed{s}", self.pair, self.label),
            None => format!("{}/{}", self.pair, self.label),
        }
    }

    /// The lock file held while a process computes the cell.
    fn lock_path(&self, out: &Path) -> PathBuf {
        let stem = self.stem(out);
        let name = stem.file_name().expect("a file name").to_string_lossy();
        stem.with_file_name(format!(".{name}.lock"))
    }

    fn is_lexical(&self) -> bool {
        matches!(self.kind, CellKind::Psq | CellKind::Bm25En)
    }

    fn name(&self) -> String {
        match self.seed {
            Some(s) => format!("{} / {} (seed {s})", self.pair, self.label),
            None => format!("{} / {}", self.pair, self.label),
        }
    }
}

/// What is stored per finished cell (`cells/<pair>/<label>[.seed<N>].json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub pair: String,
    pub method: String,
    /// Training seed (trained cells).
    #[serde(default)]
    pub seed: Option<u64>,
    pub scores: RetrievalScores,
    /// Wall time of the cell (training and evaluation).
    pub seconds: f64,
    pub collection: String,
    /// First and last training loss (trained cells).
    pub loss: Option<(f64, f64)>,
    /// The training log in a few numbers: losses, Sinkhorn convergence failures, plan
    /// sharpness (trained cells).
    #[serde(default)]
    pub training: Option<TrainSummary>,
    /// Evaluation length the documents were encoded with.
    #[serde(default)]
    pub eval_max_len: Option<usize>,
    /// `(tokens, lost)`: document tokens at evaluation, and how many of them the student's
    /// trimmed vocabulary turned into `<unk>` (must be 0).
    #[serde(default)]
    pub trimmed_away: Option<(usize, usize)>,
    /// Lexical cells (PSQ, BM25): queries left without results, bitext and table sizes.
    #[serde(default)]
    pub lexical: Option<lexical::LexicalNote>,
    /// Start time (UTC) of the invocation that computed the cell.
    #[serde(default)]
    pub computed_by: String,
    /// Commit the cell was computed at.
    #[serde(default)]
    pub commit: String,
    /// What the cell was computed from (absent in files of older versions: always stale).
    #[serde(default)]
    pub fingerprint: Option<CellFingerprint>,
    /// The results directory this cell was taken from by `--reuse-from` (the same
    /// computation, done for another preset); absent for a cell computed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
}

impl CellResult {
    /// The result of `cell` on `set` with `scores`, timed from `t0`, computed by the
    /// invocation started at `by.0` on commit `by.1`; no training, no lexical note.
    fn new(
        cell: &Cell,
        set: &RetrievalSet,
        scores: RetrievalScores,
        t0: Instant,
        by: (&str, &str),
        fingerprint: CellFingerprint,
    ) -> Self {
        CellResult {
            pair: cell.pair.clone(),
            method: cell.label.clone(),
            seed: cell.seed,
            scores,
            seconds: t0.elapsed().as_secs_f64(),
            collection: set.note.clone(),
            loss: None,
            training: None,
            eval_max_len: None,
            trimmed_away: None,
            lexical: None,
            computed_by: by.0.to_string(),
            commit: by.1.to_string(),
            fingerprint: Some(fingerprint),
            reused_from: None,
        }
    }
}

/// State of a cell on disk.
#[derive(Debug, Clone, PartialEq)]
enum CellState {
    Done,
    Stale(Vec<String>),
    Missing,
}

/// One invocation that computed cells (`cells/invocations.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    pub started: String,
    pub commit: String,
    pub backend: String,
    pub wall_s: f64,
    pub computed: usize,
}

impl Invocation {
    /// Adds this invocation to `cells/invocations.jsonl`.
    fn append_to(&self, out: &Path) -> anyhow::Result<()> {
        append_invocations(out, &format!("{}\n", serde_json::to_string(self)?))
    }
}

/// Every cell of a preset, in table order: English, then per pair its methods, variants and
/// seeds.
fn build_cells(preset: &Preset) -> anyhow::Result<Vec<Cell>> {
    let mut cells = Vec::new();
    let teachers = teachers(preset)?;
    if preset.english_reference {
        for t in &teachers {
            cells.push(Cell {
                pair: ENGLISH.into(),
                label: teacher_label(ENGLISH, &teachers, t),
                kind: CellKind::English(t.clone()),
                seed: None,
                step: None,
            });
        }
    }
    if preset.methods.iter().any(|m| m == BM25_EN) {
        cells.push(Cell {
            pair: ENGLISH.into(),
            label: BM25_EN.into(),
            kind: CellKind::Bm25En,
            seed: None,
            step: None,
        });
    }
    for pair in &preset.pairs {
        for m in &preset.methods {
            if m == BM25_EN {
                continue;
            }
            if m == PSQ {
                cells.push(Cell {
                    pair: pair.clone(),
                    label: PSQ.into(),
                    kind: CellKind::Psq,
                    seed: None,
                    step: None,
                });
                continue;
            }
            if m == ZERO_SHOT {
                cells.push(Cell {
                    pair: pair.clone(),
                    label: m.clone(),
                    kind: CellKind::ZeroShot,
                    seed: None,
                    step: None,
                });
                continue;
            }
            if m == TEACHER_DIRECT {
                let student = preset
                    .train_config(pair, Method::Optical, &preset.variant_list()[0], None)?
                    .model
                    .student;
                for t in teachers.iter().filter(|t| **t != student) {
                    cells.push(Cell {
                        pair: pair.clone(),
                        label: teacher_label(TEACHER_DIRECT, &teachers, t),
                        kind: CellKind::TeacherDirect(t.clone()),
                        seed: None,
                        step: None,
                    });
                }
                continue;
            }
            let method: Method = m.parse().map_err(anyhow::Error::msg)?;
            for v in preset.variants_of(method) {
                if !v.applies_to(pair) {
                    continue;
                }
                let label = if v.name.is_empty() {
                    method.name().to_string()
                } else {
                    format!("{}/{}", method.name(), v.name)
                };
                for &seed in &preset.seeds {
                    let steps = preset.curve_steps.iter().map(|&s| Some(s));
                    for step in steps.chain([None]) {
                        cells.push(Cell {
                            pair: pair.clone(),
                            label: match step {
                                Some(s) => format!("{label}@{s}"),
                                None => label.clone(),
                            },
                            kind: CellKind::Trained(method, v.clone()),
                            seed: Some(seed),
                            step,
                        });
                    }
                }
            }
        }
    }
    Ok(cells)
}

/// What the run knows before computing anything: the sets, the models' hashes, backends.
struct Matrix<'a> {
    preset: &'a Preset,
    base: TrainConfig,
    /// The run's backend (students) and its device.
    backend: String,
    device: ot_core::backend::Device,
    /// `model → backend` it is placed on (`clir_models::placement`), decided once.
    pretrained_backends: BTreeMap<String, String>,
    sets: BTreeMap<String, RetrievalSet>,
    /// `pair → sha256:…` of the pairs evaluated on a collection directory of the user's.
    collection_hashes: BTreeMap<String, String>,
    hashes: ModelHashes,
}

impl Matrix<'_> {
    fn set(&self, pair: &str) -> &RetrievalSet {
        &self.sets[pair]
    }

    /// The backend the untrimmed pretrained model `name` runs on: the run's, unless the
    /// device's limits keep it on the host (decided as the model is placed when computed).
    fn pretrained_backend(&mut self, name: &str) -> anyhow::Result<String> {
        use clir_models::placement::{Decision, host_for};
        let Some(limits) = ot_core::backend::device_limits(&self.device) else {
            return Ok(self.backend.clone());
        };
        if let Some(b) = self.pretrained_backends.get(name) {
            return Ok(b.clone());
        }
        let host = Backend::cpu_default().to_string();
        let m = clir_models::embedder::load_named(name, None, &host_for(&self.device))?;
        let b = match m.placement("teacher", &self.device, Some(limits)).decision {
            Decision::Device => self.backend.clone(),
            Decision::Host => host,
        };
        self.pretrained_backends.insert(name.into(), b.clone());
        Ok(b)
    }

    fn fingerprint(&mut self, cell: &Cell) -> anyhow::Result<CellFingerprint> {
        let e = &self.preset.eval;
        let eval = EvalFingerprint::new(
            self.set(&cell.pair),
            e.split,
            e.max_len,
            e.batch_size,
            self.collection_hashes.get(&cell.pair).cloned(),
        );
        let mut models = BTreeMap::new();
        let (train, backend) = match &cell.kind {
            CellKind::English(t) | CellKind::TeacherDirect(t) => {
                models.insert("teacher".into(), self.hashes.get(t)?);
                (None, self.pretrained_backend(t)?)
            }
            CellKind::ZeroShot => {
                let student = self.base.model.student.clone();
                models.insert("student".into(), self.hashes.get(&student)?);
                if student != self.base.model.teacher {
                    // Queries by the student's base too (not by the teacher).
                    models.insert("queries".into(), self.hashes.get(&student)?);
                }
                (None, self.pretrained_backend(&student)?)
            }
            // Lexical cells read no model and no compute backend; PSQ is fingerprinted by its
            // bitext sample's settings and its own.
            CellKind::Bm25En => (None, LEXICAL_BACKEND.into()),
            CellKind::Psq => {
                let (data, seed) = lexical::psq_data(self.preset, &cell.pair)?;
                let mut psq = serde_json::json!({
                    "method": PSQ,
                    "data": data,
                    "seed": seed,
                    "psq": format!("{:?} {:?}", self.preset.psq.model1(), self.preset.psq.prune()),
                });
                fingerprint::strip_unread(&mut psq);
                let psq = fingerprint::with_bitext_content(psq)?;
                (Some(psq), LEXICAL_BACKEND.into())
            }
            CellKind::Trained(m, v) => {
                let cfg = self.preset.train_config(&cell.pair, *m, v, cell.seed)?;
                models.insert("teacher".into(), self.hashes.get(&cfg.model.teacher)?);
                models.insert("student".into(), self.hashes.get(&cfg.model.student)?);
                let mut train = train_fingerprint(&cfg);
                if let (Some(step), Some(obj)) = (cell.step, train.as_object_mut()) {
                    obj.insert("curve_step".into(), step.into());
                }
                (
                    Some(fingerprint::with_bitext_content(train)?),
                    self.backend.clone(),
                )
            }
        };
        Ok(CellFingerprint {
            train,
            eval,
            backend,
            models,
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }
}

/// Appends `lines` (whole JSON lines) to `<out>/cells/invocations.jsonl` in one write, so
/// that appends of concurrent processes do not interleave.
fn append_invocations(out: &Path, lines: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let log = out.join("cells").join("invocations.jsonl");
    std::fs::create_dir_all(out.join("cells"))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(lines.as_bytes()))
        .with_context(|| log.display().to_string())
}

fn read_cell(path: &Path) -> anyhow::Result<Option<CellResult>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut r: CellResult = serde_json::from_str(&text)
        .with_context(|| format!("{} (delete it to recompute the cell)", path.display()))?;
    strip_unread(&mut r);
    Ok(Some(r))
}

/// Drops the keys of a finished cell's training fingerprint that the method never reads, so
/// it compares as the current code fingerprints.
fn strip_unread(r: &mut CellResult) {
    if let Some(train) = r.fingerprint.as_mut().and_then(|f| f.train.as_mut()) {
        fingerprint::strip_unread(train);
    }
}

/// A committed `results.json`: its cells as written and the invocations that computed them.
#[derive(Deserialize)]
struct Committed {
    cells: Vec<CellResult>,
    #[serde(default)]
    invocations: Vec<Invocation>,
}

fn read_committed(path: &Path) -> anyhow::Result<Committed> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

/// Writes `<out>/cells/…json` for every cell of `cells` that has none but is in
/// `<out>/results.json`; returns how many.
fn restore_cells(cells: &[Cell], out: &Path) -> anyhow::Result<usize> {
    let committed = read_committed(&out.join("results.json")).context("--restore")?;
    let mut restored = 0;
    for c in cells {
        let target = c.json_path(out);
        if target.is_file() {
            continue;
        }
        let Some(r) = committed
            .cells
            .iter()
            .find(|r| r.pair == c.pair && r.method == c.label && r.seed == c.seed)
        else {
            continue;
        };
        std::fs::create_dir_all(target.parent().expect("cells live in a directory"))?;
        let json = serde_json::to_string_pretty(r)?;
        clir_train::trainer::write_atomic(&target, json.as_bytes())?;
        restored += 1;
    }
    // The invocations that computed them, for the report's provenance.
    let log = out.join("cells").join("invocations.jsonl");
    let known = if log.is_file() {
        std::fs::read_to_string(&log).with_context(|| log.display().to_string())?
    } else {
        String::new()
    };
    let mut add = String::new();
    for inv in &committed.invocations {
        if !known.contains(&format!("\"started\":\"{}\"", inv.started)) {
            add.push_str(&serde_json::to_string(inv)?);
            add.push('\n');
        }
    }
    if !add.is_empty() {
        append_invocations(out, &add)?;
    }
    Ok(restored)
}

fn state_of(found: &Option<CellResult>, want: &CellFingerprint) -> CellState {
    match found {
        None => CellState::Missing,
        Some(r) => match &r.fingerprint {
            None => CellState::Stale(vec!["no fingerprint (written by an older version)".into()]),
            Some(old) => {
                let why = differences(old, want);
                if why.is_empty() {
                    CellState::Done
                } else {
                    CellState::Stale(why)
                }
            }
        },
    }
}

fn print_list(cells: &[Cell], states: &[CellState], estimates: &[f64]) {
    println!("{:>4}  {:<44} {:<8} cost", "#", "cell", "state");
    let (mut done, mut stale, mut missing, mut todo) = (0, 0, 0, 0.0);
    for (i, ((c, s), e)) in cells.iter().zip(states).zip(estimates).enumerate() {
        let (state, cost, why) = match s {
            CellState::Done => {
                done += 1;
                ("done", format!("{e:.0} s (measured)"), String::new())
            }
            CellState::Stale(w) => {
                stale += 1;
                todo += e;
                (
                    "stale",
                    format!("~{e:.0} s"),
                    format!("  [{}]", w.join("; ")),
                )
            }
            CellState::Missing => {
                missing += 1;
                todo += e;
                ("missing", format!("~{e:.0} s"), String::new())
            }
        };
        println!("{i:>4}  {:<44} {state:<8} {cost}{why}", c.id());
    }
    println!(
        "{} cells: {done} done, {stale} stale, {missing} missing; about {:.0} min to compute the rest",
        cells.len(),
        todo / 60.0
    );
}

/// The faster CPU backend, measured: on this project's 2-core CPU libtorch ran the quick
/// training step 1.1–1.4× and evaluation encoding 1.3–1.4× faster than flex (docs/training.md,
/// "flex against libtorch", re-measured after flex's token-wise linear layers), so a run on a
/// CPU backend other than `tch` says so.
fn cpu_backend_advice(backend: Backend) -> Option<String> {
    let cpu = matches!(backend, Backend::Flex | Backend::Ndarray);
    cpu.then(|| {
        let how = if Backend::Tch.is_compiled() {
            "add `--backend tch`"
        } else {
            "build with `--features tch` after `cargo xtask setup libtorch`, then add `--backend tch`"
        };
        format!(
            "note: on a CPU, libtorch trains 1.1–1.4× and encodes 1.3–1.4× faster than {backend} \
             (measured, docs/training.md); for long presets {how}"
        )
    })
}

/// Removes a training run directory whose saved configuration is not `cfg` (a run of an
/// earlier preset), so that the cell trains afresh instead of failing or resuming it.
fn clear_mismatched_run(run_dir: &Path, cfg: &TrainConfig, why: &str) -> anyhow::Result<()> {
    let saved = run_dir.join(clir_train::trainer::RUN_CONFIG);
    let mismatched = saved.is_file() && TrainConfig::load(&saved).map_or(true, |s| &s != cfg);
    if mismatched || (!why.is_empty() && run_dir.exists()) {
        eprintln!(
            "  removing the earlier training run {} ({})",
            run_dir.display(),
            if why.is_empty() {
                "another configuration"
            } else {
                why
            }
        );
        std::fs::remove_dir_all(run_dir).with_context(|| run_dir.display().to_string())?;
    }
    Ok(())
}

/// Narrows `preset` to `--pairs`, `--methods` and `--seeds` (each checked); returns the
/// parts of the partial results folder's name (empty: the whole preset).
fn narrow(a: &ReproduceArgs, preset: &mut Preset) -> anyhow::Result<Vec<String>> {
    let mut subset = Vec::new();
    if let Some(p) = a.pairs.clone() {
        check_pairs(&p)?;
        preset.low_resource.retain(|l| p.contains(l));
        subset.push(p.join("-"));
        preset.pairs = p;
    }
    if let Some(m) = a.methods.clone() {
        let m = m
            .iter()
            .map(|name| canonical_method(name).with_context(|| "--methods".to_string()))
            .collect::<anyhow::Result<Vec<String>>>()?;
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = m.iter().find(|x| !seen.insert(x.as_str())) {
            bail!("--methods: {twice} is listed twice");
        }
        subset.push(m.join("-"));
        preset.methods = m;
    }
    if let Some(s) = a.seeds.clone() {
        if s.is_empty() {
            bail!("--seeds needs at least one seed");
        }
        subset.push(format!(
            "seeds-{}",
            s.iter().map(u64::to_string).collect::<Vec<_>>().join("-")
        ));
        preset.seeds = s;
    }
    Ok(subset)
}

/// The results folder: `--out`, the preset's own, or (narrowed) a partial one beside it.
fn results_dir(a: &ReproduceArgs, preset: &Preset, subset: &[String]) -> PathBuf {
    a.out.clone().unwrap_or_else(|| {
        let root = workspace_root().join("experiments/results");
        if subset.is_empty() {
            root.join(&preset.name)
        } else {
            // Never a partial report over the committed results of the whole preset.
            root.join(format!("{}.partial", preset.name))
                .join(subset.join("_"))
        }
    })
}

/// The evaluation set of every pair of `cells` (and, for collections of one's own, the hash
/// of their files), into `ctx`. The Bible and Nave are opened only when a pair evaluates on
/// the built-in set.
fn load_sets(cells: &[Cell], ctx: &mut Matrix<'_>) -> anyhow::Result<()> {
    let preset = ctx.preset;
    let mut bible: Option<(BibleDb, PathBuf)> = None;
    for c in cells {
        if ctx.sets.contains_key(&c.pair) {
            continue;
        }
        let set = match preset.collection_of(&c.pair) {
            Some(dir) => {
                let docs = collection_docs_file(dir)?;
                let files: Vec<PathBuf> = ["queries.tsv", docs, "qrels.txt"]
                    .iter()
                    .map(|f| dir.join(f))
                    .collect();
                ctx.collection_hashes
                    .insert(c.pair.clone(), fingerprint::files_sha256(&files)?);
                collection_set(dir, preset.eval.sample())
                    .with_context(|| format!("the collection of pair {}", c.pair))?
            }
            None => {
                if bible.is_none() {
                    bible = Some((
                        BibleDb::open(&clir_data::fetch::bible_db()?)?,
                        clir_data::fetch::naves_module_dir()?,
                    ));
                }
                let (db, naves) = bible.as_ref().expect("opened above");
                nave_set(db, naves, &c.pair, preset.eval.sample())?
            }
        };
        ctx.sets.insert(c.pair.clone(), set);
    }
    Ok(())
}

/// The pretrained models the cells read, each at the evaluation length (default: its own).
struct Pretrained {
    /// Every teacher of the preset by name, placed (`clir_models::placement`), with its length.
    teachers: BTreeMap<String, (Embedder, usize)>,
    /// The preset's own teacher (the first of [`teachers`]).
    main: String,
    /// The student's base on the run's device, when it is not the preset's teacher.
    zero_shot: Option<Embedder>,
    student_len: usize,
}

impl Pretrained {
    fn teacher(&self, name: &str) -> (&Embedder, usize) {
        let (e, len) = &self.teachers[name];
        (e, *len)
    }

    /// The untrained student: the student's base (the preset's teacher when they coincide).
    fn zero_shot(&self) -> &Embedder {
        self.zero_shot
            .as_ref()
            .unwrap_or_else(|| self.teacher(&self.main).0)
    }
}

/// Loads `teachers`, and the student's base when it is not the first teacher, on `cpu` and
/// places each on `device` as its limits allow (`clir_models::placement`), at the evaluation
/// length `eval_len` (default: each model's own).
fn load_pretrained(
    models: &clir_models::embedder::ModelCache,
    base: &TrainConfig,
    teachers: &[String],
    eval_len: Option<usize>,
    cpu: &ot_core::backend::Device,
    device: &ot_core::backend::Device,
) -> anyhow::Result<Pretrained> {
    let mut loaded = BTreeMap::new();
    for t in teachers {
        let teacher = models.load(t, cpu)?.placed("teacher", device);
        let len = eval_len.unwrap_or(teacher.config.max_len);
        loaded.insert(t.clone(), (teacher.with_max_len(len)?, len));
    }
    let main = teachers[0].clone();
    let zero_shot = if base.model.student == main {
        None
    } else {
        Some(
            models
                .load(&base.model.student, cpu)?
                .placed("zero-shot model", device),
        )
    };
    let student_len = eval_len.unwrap_or(
        zero_shot
            .as_ref()
            .unwrap_or(&loaded[&main].0)
            .config
            .max_len,
    );
    let zero_shot = zero_shot.map(|z| z.with_max_len(student_len)).transpose()?;
    Ok(Pretrained {
        teachers: loaded,
        main,
        zero_shot,
        student_len,
    })
}

pub fn run(a: ReproduceArgs) -> anyhow::Result<()> {
    let (mut preset, preset_path) = Preset::load(&a.preset)?;
    let subset = narrow(&a, &mut preset)?;
    let (backend, device) = select_device(a.backend.as_deref())?;
    let out = results_dir(&a, &preset, &subset);
    crate::paths::check_writable_dir(&out, "--out")?;
    // Everything that can be refused is checked before the banner.
    let cells = build_cells(&preset)?;
    let base = preset.train_config(
        preset.pairs.first().map_or("swahili", String::as_str),
        Method::Optical,
        &preset.variant_list()[0],
        None,
    )?;
    check_teacher(&preset, &base)?;
    eprintln!(
        "reproduce: preset {} ({}) on {backend}: {} pairs × {} methods × {} seeds, {} split -> {}",
        preset.name,
        preset_path.display(),
        preset.pairs.len(),
        preset.methods.len(),
        preset.seeds.len(),
        preset.eval.split,
        out.display()
    );
    if let Some(advice) = cpu_backend_advice(backend) {
        eprintln!("{advice}");
    }
    let cpu = clir_models::placement::host_for(&device);
    let mut ctx = Matrix {
        preset: &preset,
        base,
        backend: backend.to_string(),
        device: device.clone(),
        pretrained_backends: BTreeMap::new(),
        sets: BTreeMap::new(),
        collection_hashes: BTreeMap::new(),
        hashes: ModelHashes::new(),
    };
    load_sets(&cells, &mut ctx)?;
    if a.restore {
        let restored = restore_cells(&cells, &out)?;
        eprintln!(
            "restored {restored} cells from {}",
            out.join("results.json").display()
        );
    }
    let (fingerprints, mut found, mut states) = scan_cells(&cells, &mut ctx, &out)?;
    reuse::take(
        &a.reuse_from,
        a.list,
        &cells,
        (&fingerprints, &mut found, &mut states),
        &out,
    )?;
    if a.list {
        print_list(&cells, &states, &estimates(&cells, &states, &found, &ctx));
        return Ok(());
    }
    let estimates = || estimates(&cells, &states, &found, &ctx);
    if let Some(emit) = &a.emit {
        let todo: Vec<slurm::Task> = cells
            .iter()
            .enumerate()
            .zip(estimates())
            .filter(|((i, _), _)| states[*i] != CellState::Done)
            .map(|((i, c), seconds)| slurm::Task {
                index: i,
                kind: slurm::TaskKind::of(c),
                seconds,
            })
            .collect();
        let job = slurm::Job {
            preset: &preset,
            preset_path: &preset_path,
            args: &a,
            out: &out,
            backend,
        };
        return slurm::emit(&emit[0], Path::new(&emit[1]), &job, &todo);
    }
    let selected: Vec<usize> = match &a.cell {
        Some(spec) => vec![select_cell(&cells, spec)?],
        None => (0..cells.len()).collect(),
    };
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let provenance = fingerprint::Provenance::collect(&backend.to_string());
    if a.report_only {
        let (results, left_out) = finished_cells(&cells, &fingerprints, &out, a.reuse_stale)?;
        if !left_out.is_empty() {
            eprintln!(
                "--report-only: {} of {} cells are not finished and are left out of the report: {}",
                left_out.len(),
                cells.len(),
                left_out.join(", ")
            );
        }
        return write_results(&preset, (&results, &left_out), &out, &provenance, &a);
    }

    let scan = Scan {
        cells,
        fingerprints,
        found,
        states,
        selected,
    };
    compute_cells(
        &a,
        &ctx,
        scan,
        &out,
        (&cpu, &device),
        &backend.to_string(),
        &provenance,
    )
}

/// The cells of a run with what is known of them before any is computed.
struct Scan {
    cells: Vec<Cell>,
    fingerprints: Vec<CellFingerprint>,
    /// Finished results on disk (fresh or stale).
    found: Vec<Option<CellResult>>,
    states: Vec<CellState>,
    /// Indices of the cells this invocation computes (all, or `--cell`'s).
    selected: Vec<usize>,
}

/// Computes the selected cells that are not finished (models loaded once, cells claimed one
/// at a time), logs the invocation, and writes the report from the finished cells (no report
/// with `--cell`).
fn compute_cells(
    a: &ReproduceArgs,
    ctx: &Matrix<'_>,
    scan: Scan,
    out: &Path,
    (cpu, device): (&ot_core::backend::Device, &ot_core::backend::Device),
    backend: &str,
    provenance: &fingerprint::Provenance,
) -> anyhow::Result<()> {
    let preset = ctx.preset;
    let Scan {
        cells,
        fingerprints,
        found,
        states,
        selected,
    } = scan;
    let models = clir_models::embedder::ModelCache::default();
    let pretrained = pretrained_for(ctx, &models, (&cells, &states, &selected), cpu, device)?;
    // A bar on a terminal; in a Slurm or CI log a line every 5 % or 30 s naming the cell.
    let bar = Progress::task("cells", cells.len() as u64)
        .template("cells {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}")
        .show(true);
    let started = Instant::now();
    let invocation = fingerprint::utc_now();
    let mut dense: Option<Dense> = None;
    let mut computed = 0usize;
    let mut elsewhere = Vec::new();
    // Held until the cell it locks is written.
    let mut _lock: Option<std::fs::File> = None;
    if a.cell.is_some() {
        bar.set_length(1);
    }
    for (i, ((cell, state), (fp, old))) in cells
        .iter()
        .zip(&states)
        .zip(fingerprints.clone().into_iter().zip(found))
        .enumerate()
    {
        if !selected.contains(&i) {
            continue;
        }
        bar.set_message(cell.name());
        let retrain_why = retrain_reason(old.as_ref().map(|r| r.fingerprint.as_ref()), &fp);
        match claim_cell(cell, state, old, &fp, out, a.reuse_stale, &bar)? {
            Claim::Reuse => {
                bar.inc(1);
                continue;
            }
            Claim::Elsewhere => {
                elsewhere.push(cell.id());
                bar.inc(1);
                continue;
            }
            Claim::Compute(lock) => _lock = Some(lock),
        }
        let set = ctx.set(&cell.pair);
        let t0 = Instant::now();
        let by = (invocation.as_str(), provenance.commit.as_str());
        let (result, run) = match lexical::run_of(preset, cell, set)? {
            Some((run, note)) => {
                let scores = score_run(&run, set)?;
                let result = CellResult {
                    lexical: Some(note),
                    ..CellResult::new(cell, set, scores, t0, by, fp)
                };
                (result, run)
            }
            None => {
                let Some(pre) = &pretrained else {
                    unreachable!("models are loaded unless every cell is lexical")
                };
                let dense = dense.get_or_insert_with(|| Dense::new(ctx, pre, &models, device, out));
                dense.result(cell, set, (retrain_why, &bar), (t0, by), fp)?
            }
        };
        finish_cell(&bar, cell, set, out, &result, &run)?;
        computed += 1;
        _lock = None;
    }
    bar.finish_and_clear();
    if computed > 0 {
        let inv = Invocation {
            started: invocation,
            commit: provenance.commit.clone(),
            backend: backend.to_string(),
            wall_s: started.elapsed().as_secs_f64(),
            computed,
        };
        inv.append_to(out)?;
    }
    if let Some(spec) = &a.cell {
        let what = match (computed, elsewhere.len()) {
            (1.., _) => "computed",
            (0, 0) => "already finished",
            (0, _) => "being computed by another process",
        };
        let id = cells[selected[0]].id();
        eprintln!("cell {spec} ({id}): {what}; no report written (--report-only builds it)");
        return Ok(());
    }
    report_finished(
        a,
        preset,
        &cells,
        &fingerprints,
        out,
        provenance,
        elsewhere.len(),
    )
}

/// The pretrained models the cells to compute read, or `None` when they are all lexical
/// (no model is loaded or fetched then).
///
/// Queries, English documents and zero-shot documents are encoded by the untrimmed
/// pretrained models on the chosen backend where its limits hold their 250k-row vocabulary
/// tables, else on the CPU default backend (lavapipe); training and the trained students run
/// on the chosen backend. Every model
/// reads at most the preset's evaluation length (default: the pretrained maximum).
fn pretrained_for(
    ctx: &Matrix<'_>,
    models: &clir_models::embedder::ModelCache,
    (cells, states, selected): (&[Cell], &[CellState], &[usize]),
    cpu: &ot_core::backend::Device,
    device: &ot_core::backend::Device,
) -> anyhow::Result<Option<Pretrained>> {
    let lexical_only = selected
        .iter()
        .all(|&i| cells[i].is_lexical() || states[i] == CellState::Done);
    if lexical_only {
        return Ok(None);
    }
    let preset = ctx.preset;
    Ok(Some(load_pretrained(
        models,
        &ctx.base,
        &teachers(preset)?,
        preset.eval.max_len,
        cpu,
        device,
    )?))
}

/// Writes the report from the cell files, as --report-only builds it: the same numbers
/// whichever process computed a cell, and cells that other processes (`elsewhere` of them
/// still running) finished meanwhile are in it.
fn report_finished(
    a: &ReproduceArgs,
    preset: &Preset,
    cells: &[Cell],
    fingerprints: &[CellFingerprint],
    out: &Path,
    provenance: &fingerprint::Provenance,
    elsewhere: usize,
) -> anyhow::Result<()> {
    let (results, left_out) = finished_cells(cells, fingerprints, out, a.reuse_stale)?;
    if !left_out.is_empty() {
        eprintln!(
            "{} cells are not finished and are not in this report: {}{}",
            left_out.len(),
            left_out.join(", "),
            if elsewhere == 0 {
                String::new()
            } else {
                format!(
                    "; {elsewhere} of them were being computed by other processes: run --report-only when they finish"
                )
            }
        );
    }
    write_results(preset, (&results, &left_out), out, provenance, a)
}

/// Every cell's fingerprint, its finished result on disk (if any) and its state.
#[allow(clippy::type_complexity)]
fn scan_cells(
    cells: &[Cell],
    ctx: &mut Matrix<'_>,
    out: &Path,
) -> anyhow::Result<(
    Vec<CellFingerprint>,
    Vec<Option<CellResult>>,
    Vec<CellState>,
)> {
    let mut fingerprints = Vec::new();
    let mut found = Vec::new();
    let mut states = Vec::new();
    for c in cells {
        let fp = ctx.fingerprint(c)?;
        let r = read_cell(&c.json_path(out))?;
        states.push(state_of(&r, &fp));
        found.push(r);
        fingerprints.push(fp);
    }
    Ok((fingerprints, found, states))
}

/// Seconds per cell: a finished cell's measured time, the cost model's estimate otherwise.
fn estimates(
    cells: &[Cell],
    states: &[CellState],
    found: &[Option<CellResult>],
    ctx: &Matrix<'_>,
) -> Vec<f64> {
    // Only cells done at the current settings price the others: a stale cell's time was
    // measured under other settings (150 steps where there are now 600).
    let finished: Vec<CellResult> = found
        .iter()
        .zip(states)
        .filter(|(_, s)| **s == CellState::Done)
        .filter_map(|(r, _)| r.clone())
        .collect();
    let mut fills = BTreeSet::new();
    cells
        .iter()
        .enumerate()
        .map(|(i, c)| match (&states[i], &found[i]) {
            (CellState::Done, Some(r)) => r.seconds,
            _ => estimate_seconds(c, ctx.set(&c.pair), ctx.preset, &finished, &mut fills),
        })
        .collect()
}

/// Why a cell's training run may not be resumed: a run made under other weights, code or
/// backend is trained again (empty: it may be resumed). A cell stale only by its training
/// configuration says nothing about its run folder, which may hold checkpoints of the
/// current configuration (a curve point's cell computed since): `clear_mismatched_run`
/// compares the run's own saved configuration instead.
fn retrain_reason(old: Option<Option<&CellFingerprint>>, fp: &CellFingerprint) -> &'static str {
    match old {
        Some(Some(o))
            if o.backend != fp.backend || o.models != fp.models || o.version != fp.version =>
        {
            "its cell is stale"
        }
        Some(None) => "its cell is stale",
        _ => "",
    }
}

/// What an invocation does with a cell it reaches.
enum Claim {
    /// A finished cell (or a stale one under `--reuse-stale`, or one another process finished
    /// meanwhile): its result file is left as it is (the report reads it).
    Reuse,
    /// Another process holds its lock: skipped.
    Elsewhere,
    /// This process computes it, holding the lock until the cell is written.
    Compute(std::fs::File),
}

/// One process computes a cell: the others skip it while its lock is held, and reuse it if it
/// was finished while they waited. The kernel drops the lock of a process that dies, so a
/// crashed run leaves no lock behind.
fn claim_cell(
    cell: &Cell,
    state: &CellState,
    old: Option<CellResult>,
    fp: &CellFingerprint,
    out: &Path,
    reuse_stale: bool,
    bar: &Progress,
) -> anyhow::Result<Claim> {
    match (state, old) {
        (CellState::Done, Some(_)) => return Ok(Claim::Reuse),
        (CellState::Stale(why), Some(_)) if reuse_stale => {
            let why = why.join("; ");
            bar.suspend(|| eprintln!("{}: stale ({why}), reused (--reuse-stale)", cell.name()));
            return Ok(Claim::Reuse);
        }
        (CellState::Stale(why), _) => {
            bar.suspend(|| eprintln!("{}: stale ({}), recomputing", cell.name(), why.join("; ")))
        }
        _ => {}
    }
    let Some(lock) = lock_cell(&cell.lock_path(out))? else {
        bar.suspend(|| {
            eprintln!(
                "{}: being computed by another process (lock {}), skipped",
                cell.name(),
                cell.lock_path(out).display()
            )
        });
        return Ok(Claim::Elsewhere);
    };
    if let Some(r) = read_cell(&cell.json_path(out))?
        && state_of(&Some(r), fp) == CellState::Done
    {
        bar.suspend(|| eprintln!("{}: finished by another process", cell.name()));
        return Ok(Claim::Reuse);
    }
    Ok(Claim::Compute(lock))
}

/// What the dense cells of one invocation share: the pretrained models, the query
/// embeddings (per pair and query encoder) and one pair's zero-shot prefix states.
struct Dense<'a> {
    preset: &'a Preset,
    base: &'a TrainConfig,
    pre: &'a Pretrained,
    models: &'a clir_models::embedder::ModelCache,
    device: &'a ot_core::backend::Device,
    out: &'a Path,
    queries: BTreeMap<String, Vec<Vec<f32>>>,
    /// hᵏ of one pair's evaluation documents under the zero-shot model: shared by that pair's
    /// zero-shot cell and every student whose embeddings and lowest k layers stayed frozen
    /// (each reuse first checks that they did, bit for bit). One pair is held at a time.
    prefix: Option<(String, PrefixStates)>,
    base_prefix: Option<usize>,
}

/// A dense cell scored: its retrieval scores and run, the training summary of a trained cell,
/// the documents' evaluation length and (trained cells) the tokens its trimmed vocabulary
/// lost.
struct DenseCell {
    scores: RetrievalScores,
    run: clir_eval::Run,
    training: Option<TrainSummary>,
    doc_len: usize,
    trimmed_away: Option<(usize, usize)>,
}

impl<'a> Dense<'a> {
    /// The shared state of a run's dense cells, before any is scored.
    fn new(
        ctx: &'a Matrix<'a>,
        pre: &'a Pretrained,
        models: &'a clir_models::embedder::ModelCache,
        device: &'a ot_core::backend::Device,
        out: &'a Path,
    ) -> Self {
        Dense {
            preset: ctx.preset,
            base: &ctx.base,
            pre,
            models,
            device,
            out,
            queries: BTreeMap::new(),
            prefix: None,
            base_prefix: frozen_prefix(&ctx.base, &ctx.base.model.student),
        }
    }

    /// [`score`](Self::score) as the cell's result (timed from `t0`, computed by the
    /// invocation and commit `by`) and run.
    fn result(
        &mut self,
        cell: &Cell,
        set: &RetrievalSet,
        (retrain_why, bar): (&str, &Progress),
        (t0, by): (Instant, (&str, &str)),
        fp: CellFingerprint,
    ) -> anyhow::Result<(CellResult, clir_eval::Run)> {
        let DenseCell {
            scores,
            run,
            training,
            doc_len,
            trimmed_away,
        } = self.score(cell, set, retrain_why, bar)?;
        let result = CellResult {
            loss: training.as_ref().map(|t| (t.first_loss, t.last_loss)),
            training,
            eval_max_len: Some(doc_len),
            trimmed_away,
            ..CellResult::new(cell, set, scores, t0, by, fp)
        };
        Ok((result, run))
    }

    /// Encodes the cell's queries (once per pair and encoder) and documents, training its
    /// student first when it is a trained cell, and scores them.
    fn score(
        &mut self,
        cell: &Cell,
        set: &RetrievalSet,
        retrain_why: &str,
        bar: &Progress,
    ) -> anyhow::Result<DenseCell> {
        let pre = self.pre;
        let student_len = pre.student_len;
        let zs = pre.zero_shot();
        // Queries by the cell's teacher (a trained cell's own), but for zero-shot: by the
        // student's base (the same model when the teacher is the student's base).
        let cell_teacher = match &cell.kind {
            CellKind::English(t) | CellKind::TeacherDirect(t) => t.clone(),
            CellKind::Trained(method, v) => {
                self.preset
                    .train_config(&cell.pair, *method, v, cell.seed)?
                    .model
                    .teacher
            }
            _ => pre.main.clone(),
        };
        let (teacher, teacher_len) = pre.teacher(&cell_teacher);
        let (query_model, query_key) = match (&cell.kind, &pre.zero_shot) {
            (CellKind::ZeroShot, Some(zs)) => (zs, format!("{}#zero-shot", cell.pair)),
            _ => (teacher, format!("{}#{cell_teacher}", cell.pair)),
        };
        if !self.queries.contains_key(&query_key) {
            let q =
                query_model.embed(&set.queries, TextKind::Query, self.preset.eval.batch_size)?;
            self.queries.insert(query_key.clone(), q);
        }
        let queries = &self.queries[&query_key];
        let (docs, training, doc_len, trimmed_away) = match &cell.kind {
            CellKind::English(_) | CellKind::TeacherDirect(_) => (
                teacher.embed(&set.docs, TextKind::Passage, self.preset.eval.batch_size)?,
                None,
                teacher_len,
                None,
            ),
            CellKind::ZeroShot => {
                let docs = match self.base_prefix {
                    Some(k) => {
                        let states =
                            shared_prefix(&mut self.prefix, zs, set, cell, k, &self.preset.eval)?;
                        zs.embed_from_prefix(&set.docs, TextKind::Passage, states, zs)?
                    }
                    None => zs.embed(&set.docs, TextKind::Passage, self.preset.eval.batch_size)?,
                };
                (docs, None, student_len, None)
            }
            CellKind::Bm25En | CellKind::Psq => unreachable!("lexical cells are done above"),
            CellKind::Trained(method, v) => {
                let cfg = self
                    .preset
                    .train_config(&cell.pair, *method, v, cell.seed)?;
                let (student, training) = trained_student(
                    &cfg,
                    cell,
                    self.out,
                    retrain_why,
                    set,
                    self.models,
                    bar,
                    self.device,
                    &self.preset.curve_steps,
                )?;
                // Evaluated at the preset's evaluation length, not the training length.
                let student: Embedder = student.with_max_len(student_len)?;
                let (tokens, lost) = student.trimmed_away_tokens(&set.docs, TextKind::Passage)?;
                bar.suspend(|| {
                eprintln!(
                    "{}: {lost} of {tokens} evaluation tokens fall outside the trimmed vocabulary",
                    cell.name()
                )
            });
                if lost > 0 {
                    bail!(
                        "{}: {lost} of {tokens} evaluation tokens would become <unk> under the trimmed vocabulary",
                        cell.name()
                    );
                }
                let docs = match (zs, frozen_prefix(&cfg, &self.base.model.student)) {
                    (zs, Some(k)) => {
                        let states =
                            shared_prefix(&mut self.prefix, zs, set, cell, k, &self.preset.eval)?;
                        student
                            .embed_from_prefix(&set.docs, TextKind::Passage, states, zs)
                            .with_context(|| {
                                format!(
                                    "{}: the student's frozen prefix of {k} layers",
                                    cell.name()
                                )
                            })?
                    }
                    (_, None) => {
                        student.embed(&set.docs, TextKind::Passage, self.preset.eval.batch_size)?
                    }
                };
                (docs, training, student_len, Some((tokens, lost)))
            }
        };
        check_finite(&format!("{} document embeddings", cell.name()), &docs)?;
        let (scores, run) = score_embeddings(queries, &docs, set, RUN_DEPTH)?;
        Ok(DenseCell {
            scores,
            run,
            training,
            doc_len,
            trimmed_away,
        })
    }
}

/// The finished cells on disk, in table order (those whose fingerprint matches, or any with
/// `reuse_stale`), and the ids of the others with their state.
fn finished_cells(
    cells: &[Cell],
    fingerprints: &[CellFingerprint],
    out: &Path,
    reuse_stale: bool,
) -> anyhow::Result<(Vec<CellResult>, Vec<String>)> {
    let mut results = Vec::new();
    let mut left_out = Vec::new();
    for (c, fp) in cells.iter().zip(fingerprints) {
        let found = read_cell(&c.json_path(out))?;
        match (state_of(&found, fp), found) {
            (CellState::Done, Some(r)) => results.push(r),
            (CellState::Stale(_), Some(r)) if reuse_stale => results.push(r),
            (CellState::Stale(_), _) => left_out.push(format!("{} (stale)", c.id())),
            _ => left_out.push(format!("{} (missing)", c.id())),
        }
    }
    Ok((results, left_out))
}

/// Writes results.* from `results` (with the invocations that computed them; `left_out`: the
/// cells not finished), prints the report and, with `--write-expected` and `--verify`, writes
/// or checks the expected scores.
fn write_results(
    preset: &Preset,
    (results, left_out): (&[CellResult], &[String]),
    out: &Path,
    provenance: &fingerprint::Provenance,
    a: &ReproduceArgs,
) -> anyhow::Result<()> {
    let log = out.join("cells").join("invocations.jsonl");
    let invocations = read_invocations(&log, results)?;
    let md = report::write_report(preset, results, out, provenance, &invocations)?;
    println!("{md}");
    println!("results in {}", out.display());
    let path = a.expected.clone().unwrap_or_else(|| {
        workspace_root()
            .join("experiments/expected")
            .join(format!("{}.toml", preset.name))
    });
    if a.write_expected {
        if a.pairs.is_some() || a.methods.is_some() || a.seeds.is_some() || !left_out.is_empty() {
            bail!(
                "--write-expected needs the whole matrix: {}",
                match left_out.len() {
                    0 => "this run is narrowed by --pairs, --methods or --seeds".to_string(),
                    n => format!("{n} cells are not finished"),
                }
            );
        }
        expected::write(&path, preset, &report::aggregate(results)?, provenance)?;
    }
    if a.verify {
        expected::verify(&path, &report::aggregate(results)?)?;
    }
    Ok(())
}

/// The cell `spec` names: its number in `--list`, or its id (`pair/label[/seedN]`; the seed
/// may also be given as a bare number).
fn select_cell(cells: &[Cell], spec: &str) -> anyhow::Result<usize> {
    if let Ok(n) = spec.parse::<usize>() {
        return if n < cells.len() {
            Ok(n)
        } else {
            bail!(
                "--cell {n}: the matrix has {} cells (0–{}); `--list` numbers them",
                cells.len(),
                cells.len().saturating_sub(1)
            )
        };
    }
    let bare_seed = |c: &Cell| c.seed.map(|s| format!("{}/{}/{s}", c.pair, c.label));
    cells
        .iter()
        .position(|c| c.id() == spec || bare_seed(c).as_deref() == Some(spec))
        .with_context(|| {
            format!(
                "--cell {spec}: no such cell; ids look like {} (`--list` prints them all)",
                cells
                    .iter()
                    .take(3)
                    .map(Cell::id)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Takes the lock of a cell without waiting: `Some(file)` (hold it while computing) or `None`
/// when another process holds it. An advisory `flock`, which the kernel releases when its
/// holder exits, however it exits.
fn lock_cell(path: &Path) -> anyhow::Result<Option<std::fs::File>> {
    std::fs::create_dir_all(path.parent().expect("a lock lives in a directory"))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| path.display().to_string())?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("locking {}", path.display())))
        }
    }
}

/// Writes a computed cell and prints its scores.
fn finish_cell(
    bar: &Progress,
    cell: &Cell,
    set: &RetrievalSet,
    out: &Path,
    result: &CellResult,
    run: &clir_eval::Run,
) -> anyhow::Result<()> {
    write_cell(&cell.stem(out), result, run, &set.qrels)?;
    bar.suspend(|| {
        eprintln!(
            "{}: MAP {:.4} nDCG@10 {:.4} MRR@10 {:.4} ({:.0}s){}",
            cell.name(),
            result.scores.map,
            result.scores.ndcg_10,
            result.scores.mrr_10,
            result.seconds,
            result.lexical.as_ref().map_or(String::new(), |n| format!(
                "; {} queries retrieved nothing",
                n.empty_queries
            ))
        )
    });
    bar.inc(1);
    Ok(())
}

/// Layers `k ≥ 1` of the zero-shot model that a student trained under `cfg` keeps unchanged
/// (its embeddings and lowest `k` layers frozen, started from `zero_shot_model`), if any.
fn frozen_prefix(cfg: &TrainConfig, zero_shot_model: &str) -> Option<usize> {
    let m = &cfg.model;
    let k = match m.student_depth {
        Some(depth) => m.freeze_layers.min(depth),
        None => m.freeze_layers,
    };
    (m.student == zero_shot_model && m.freeze_embeddings && k > 0).then_some(k)
}

/// The zero-shot model's `hᵏ` of `set`'s documents, computed on first use per pair and `k`.
/// `k` beyond the model's depth is cut to it (every layer frozen).
fn shared_prefix<'p>(
    slot: &'p mut Option<(String, PrefixStates)>,
    zero_shot: &Embedder,
    set: &RetrievalSet,
    cell: &Cell,
    k: usize,
    eval: &preset::EvalSection,
) -> anyhow::Result<&'p PrefixStates> {
    let k = k.min(zero_shot.encoder.num_layers());
    let fresh = !matches!(slot, Some((pair, s)) if *pair == cell.pair && s.layers() == k);
    if fresh {
        *slot = None; // the previous pair's states are freed before the next are computed
        let states = zero_shot.prefix_states(&set.docs, TextKind::Passage, eval.batch_size, k)?;
        *slot = Some((cell.pair.clone(), states));
    }
    Ok(&slot.as_ref().expect("just filled").1)
}

/// The invocations that computed the reported cells.
fn read_invocations(log: &Path, results: &[CellResult]) -> anyhow::Result<Vec<Invocation>> {
    if !log.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(log).with_context(|| log.display().to_string())?;
    let used: std::collections::BTreeSet<&str> =
        results.iter().map(|r| r.computed_by.as_str()).collect();
    let mut out = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let inv: Invocation = serde_json::from_str(line)
            .with_context(|| format!("{}: line {}", log.display(), no + 1))?;
        if used.contains(inv.started.as_str()) {
            out.push(inv);
        }
    }
    Ok(out)
}

/// The training log of `run_dir` in a few numbers, up to `step` when given (a curve point).
fn read_training(run_dir: &Path, step: Option<usize>) -> anyhow::Result<Option<TrainSummary>> {
    let path = run_dir.join(clir_train::trainer::RUN_LOG);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let log: Vec<clir_train::trainer::StepLog> = text
        .lines()
        .enumerate()
        .map(|(no, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), no + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    let upto = step.map_or(log.len(), |s| s.min(log.len()));
    Ok(TrainSummary::from_log(&log[..upto]))
}

/// Trains (or reads back) the run of a trained cell and returns the student it evaluates
/// (the final one, or the snapshot of its curve step) with the run's training summary (up
/// to that step). `retrain_why` non-empty: the run is removed and trained again; `curve`: the
/// preset's `curve_steps`, saved as snapshots.
#[allow(clippy::too_many_arguments)]
fn trained_student(
    cfg: &TrainConfig,
    cell: &Cell,
    out: &Path,
    retrain_why: &str,
    set: &RetrievalSet,
    models: &clir_models::embedder::ModelCache,
    bar: &Progress,
    device: &ot_core::backend::Device,
    curve: &[usize],
) -> anyhow::Result<(Embedder, Option<TrainSummary>)> {
    let run_dir = cell.run_dir(out);
    // The cells of one run (its curve points and the full cell) train it once:
    // the first takes this lock and trains, the others wait and read it back.
    let _run_lock = lock_run(&run_dir)?;
    clear_mismatched_run(&run_dir, cfg, retrain_why)?;
    clear_run_without_snapshots(&run_dir, curve)?;
    let inputs = TrainInputs {
        monolingual: clir_train::monolingual::load_monolingual(cfg)?,
        // The whole target-language collection, never the evaluation sample: the
        // trimmed vocabulary is the same whatever is sampled.
        vocab_texts: set.collection.clone(),
        snapshots: curve.to_vec(),
        ..TrainInputs::cached(load_bitext(&cfg.data, cfg.run.seed)?, models.clone())
    };
    bar.suspend(|| {
        eprintln!(
            "{}: {} pairs, {} steps",
            cell.name(),
            inputs.pairs.len(),
            cfg.optim.steps
        )
    });
    let outcome = train(cfg, &inputs, &run_dir, device)
        .with_context(|| format!("training {}", cell.name()))?;
    let training = read_training(&run_dir, cell.step)?;
    let student = match cell.step {
        Some(step) => Embedder::load_checkpoint_as_saved(
            &clir_train::trainer::snapshot_dir(&run_dir, step),
            device,
        )?,
        None => outcome.student,
    };
    Ok((student, training))
}

/// Takes (waiting for it) the lock of a training run folder, held while a cell trains or
/// reads it, so two processes never train one run at once.
fn lock_run(run_dir: &Path) -> anyhow::Result<std::fs::File> {
    let parent = run_dir.parent().expect("a run lives in a folder");
    std::fs::create_dir_all(parent)?;
    let name = run_dir
        .file_name()
        .expect("a run folder name")
        .to_string_lossy();
    let path = parent.join(format!(".{name}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| path.display().to_string())?;
    f.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(f)
}

/// Removes a finished training run that lacks a snapshot the preset's curve now asks for,
/// so that it trains again with them.
fn clear_run_without_snapshots(run_dir: &Path, steps: &[usize]) -> anyhow::Result<()> {
    let missing = steps
        .iter()
        .find(|&&s| !clir_train::trainer::snapshot_dir(run_dir, s).is_dir());
    if let Some(s) = missing
        && clir_train::trainer::is_finished(run_dir)
    {
        eprintln!(
            "  removing the training run {} (no snapshot at step {s} for the curve)",
            run_dir.display()
        );
        std::fs::remove_dir_all(run_dir).with_context(|| run_dir.display().to_string())?;
    }
    Ok(())
}

/// Writes `<stem>.per-query.csv`, `<stem>.run`, `<stem>.qrels` (the judgments of the cell's
/// evaluation sample, so `cargo xtask eval -c QRELS RUN` or trec_eval re-scores the cell) and,
/// last and atomically, `<stem>.json`, whose presence marks the cell as finished.
fn write_cell(
    stem: &Path,
    r: &CellResult,
    run: &clir_eval::Run,
    qrels: &clir_eval::Qrels,
) -> anyhow::Result<()> {
    let dir = stem.parent().expect("cells live in a directory");
    std::fs::create_dir_all(dir)?;
    let name = stem.file_name().expect("a file name").to_string_lossy();
    let mut csv = format!("qid,{}\n", clir_train::retrieval::MEASURES.join(","));
    for (q, v) in &r.scores.per_query {
        csv.push_str(&format!("{q},{:.6},{:.6},{:.6}\n", v[0], v[1], v[2]));
    }
    // Every file by its own temporary name and a rename; the cell's JSON, written last,
    // publishes it.
    write_atomic(&dir.join(format!("{name}.per-query.csv")), csv.as_bytes())?;
    let mut trec = Vec::new();
    run.write_trec(&mut trec, &r.method)?;
    write_atomic(&dir.join(format!("{name}.run")), &trec)?;
    let mut judgments = Vec::new();
    qrels.write_trec(&mut judgments)?;
    write_atomic(&dir.join(format!("{name}.qrels")), &judgments)?;
    write_atomic(
        &dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed preset loads, builds its cells and passes the teacher check, and a
    /// preset that says it reuses the headline's cells shares its evaluation and training.
    #[test]
    fn every_committed_preset_loads_and_builds_its_cells() {
        let names = preset::preset_names();
        assert!(names.len() >= 10, "{names:?}");
        let (standard, _) = Preset::load("standard").unwrap();
        for name in names {
            let (p, path) = Preset::load(&name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let cells = build_cells(&p).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!cells.is_empty(), "{name}");
            let first = p.pairs.first().map_or("swahili", String::as_str);
            let base = p
                .train_config(first, Method::Optical, &p.variant_list()[0], None)
                .unwrap();
            check_teacher(&p, &base).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("--reuse-from experiments/results/standard") {
                assert_eq!(p.eval.split, standard.eval.split, "{name}");
                assert_eq!(p.eval.queries, standard.eval.queries, "{name}");
                assert_eq!(p.eval.documents, standard.eval.documents, "{name}");
                assert_eq!(p.eval.seed, standard.eval.seed, "{name}");
                let theirs = standard
                    .train_config(
                        first,
                        Method::Optical,
                        &standard.variant_list()[0],
                        Some(42),
                    )
                    .unwrap();
                let ours = p
                    .train_config(first, Method::Optical, &p.variant_list()[0], Some(42))
                    .unwrap();
                assert_eq!(
                    serde_json::to_value(&ours).unwrap(),
                    serde_json::to_value(&theirs).unwrap(),
                    "{name}: its first variant trains unlike the headline's OPTICAL"
                );
            }
        }
    }

    /// A preset in a temporary file with `methods` and `extra` appended, loaded, and the
    /// verdict of [`check_teacher`] on it.
    fn teacher_check(methods: &str, extra: &str) -> anyhow::Result<()> {
        let preset = small_preset(methods, extra)?;
        let base =
            preset.train_config("swahili", Method::Optical, &preset.variant_list()[0], None)?;
        check_teacher(&preset, &base)
    }

    /// A swahili dev preset with `methods` and `extra` appended, loaded from a temporary file.
    fn small_preset(methods: &str, extra: &str) -> anyhow::Result<Preset> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(
            &p,
            format!(
                "name = \"t\"\ndescription = \"d\"\npairs = [\"swahili\"]\nlow_resource = []\n\
                 methods = [{methods}]\n[eval]\nsplit = \"dev\"\n{extra}"
            ),
        )
        .unwrap();
        Ok(Preset::load(p.to_str().unwrap())?.0)
    }

    /// The cells of [`small_preset`] that are not trained: their ids and kinds.
    fn cells_of(methods: &str, extra: &str) -> Vec<(String, String)> {
        let preset = small_preset(methods, extra).unwrap();
        build_cells(&preset)
            .unwrap()
            .into_iter()
            .filter(|c| c.seed.is_none())
            .map(|c| (c.id(), format!("{:?}", c.kind)))
            .collect()
    }

    #[test]
    fn teachers_per_variant_and_teacher_direct_only_for_another_teacher() {
        let all = "\"zero-shot\", \"teacher-direct\", \"optical\"";
        let minilm = "[train.model]\nteacher = \"minilm\"\n";
        teacher_check(all, minilm).unwrap();
        teacher_check("\"zero-shot\", \"optical\"", "").unwrap();
        let e = teacher_check(all, "").unwrap_err().to_string();
        assert!(
            e.contains("teacher-direct with teacher e5-small, the student's base"),
            "{e}"
        );
        // A variant's own teacher: its English ceiling and its floor, labelled by it.
        let variants = "[[variants]]\nname = \"e5\"\n\n\
                        [[variants]]\nname = \"mini\"\ntrain.model.teacher = \"minilm\"\n";
        teacher_check(all, variants).unwrap();
        let cells = cells_of(all, variants);
        let ids: Vec<&str> = cells.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            ids,
            [
                "english/english",
                "english/english/minilm",
                "swahili/zero-shot",
                "swahili/teacher-direct/minilm"
            ]
        );
        assert_eq!(cells[1].1, "English(\"minilm\")");
        assert_eq!(cells[3].1, "TeacherDirect(\"minilm\")");
        let preset = small_preset(all, variants).unwrap();
        let t = teachers(&preset).unwrap();
        assert_eq!(t, ["e5-small", "minilm"]);
        for (row, want) in [
            ("optical/mini", "minilm"),
            ("optical/mini@200", "minilm"),
            ("optical/e5", "e5-small"),
            ("teacher-direct/minilm", "minilm"),
            ("english/minilm", "minilm"),
            ("english", "e5-small"),
            ("zero-shot", "e5-small"),
        ] {
            assert_eq!(
                teacher_of_row(&preset, &t, row).as_deref(),
                Some(want),
                "{row}"
            );
        }
        assert_eq!(teacher_of_row(&preset, &t, "optical/nope"), None);
    }

    #[test]
    fn pairs_naming_one_language_twice_are_refused() {
        check_pairs(&["swahili".into(), "tagalog".into()]).unwrap();
        let e = check_pairs(&["tagalog".into(), "tl".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tagalog and tl are the same language"), "{e}");
        let e = check_pairs(&["german".into(), "German".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
        // Pairs of one's own (not Bible languages) are compared by name only.
        check_pairs(&["mine".into(), "yours".into()]).unwrap();
    }

    #[test]
    fn method_names_on_the_command_line_are_read_in_any_case() {
        for (given, name) in [
            ("Optical", "optical"),
            ("OT", "optical"),
            ("MSE", "mse"),
            ("Zero-Shot", "zero-shot"),
            ("BM25-EN", "bm25-en"),
            ("psq", "psq"),
        ] {
            assert_eq!(canonical_method(given).unwrap(), name);
        }
        assert!(canonical_method("sgd").is_err());
    }

    /// One set of measure names: the cell JSON fields, the expected-file keys and
    /// `MEASURES` (which names the CSV columns and the charts) agree.
    #[test]
    fn measure_names_are_the_same_in_every_output() {
        use clir_train::retrieval::{MEASURES, RetrievalScores};
        let scores = RetrievalScores {
            map: 0.1,
            ndcg_10: 0.2,
            mrr_10: 0.3,
            per_query: Vec::new(),
        };
        let json = serde_json::to_value(&scores).unwrap();
        for (name, want) in MEASURES.iter().zip([0.1, 0.2, 0.3]) {
            assert_eq!(json[*name], want, "{name} in the cell JSON");
        }
        let toml = format!(
            "pair = \"p\"\nmethod = \"m\"\n{} = 0.1\n{} = 0.2\n{} = 0.3\n",
            MEASURES[0], MEASURES[1], MEASURES[2]
        );
        let e: expected::ExpectedCell = toml::from_str(&toml).unwrap();
        assert_eq!((e.map, e.ndcg_10, e.mrr_10), (0.1, Some(0.2), Some(0.3)));
    }

    #[test]
    fn cpu_runs_are_pointed_at_libtorch_and_others_are_not() {
        let flex = cpu_backend_advice(Backend::Flex).expect("flex is a CPU backend");
        assert!(flex.contains("--backend tch"), "{flex}");
        assert!(cpu_backend_advice(Backend::Ndarray).is_some());
        assert_eq!(cpu_backend_advice(Backend::Tch), None);
        assert_eq!(cpu_backend_advice(Backend::Wgpu), None);
    }

    #[test]
    fn every_shipped_preset_loads() {
        let dir = workspace_root().join("experiments");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let Some(stem) = p.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                continue;
            };
            if p.extension().is_none_or(|x| x != "toml") || stem.starts_with("train-") {
                continue;
            }
            let (preset, _) = Preset::load(&stem).unwrap_or_else(|e| panic!("{stem}: {e:#}"));
            assert_eq!(preset.name, stem, "{}", p.display());
            for pair in &preset.pairs {
                clir_data::bible::resolve_version(pair).unwrap();
            }
            n += 1;
        }
        assert!(n >= 7, "only {n} presets found in {}", dir.display());
    }

    /// A variant restricted to some pairs has cells there only, and a source a pair lacks is
    /// refused at load, naming the pair.
    #[test]
    fn variants_apply_to_the_pairs_they_name() {
        let load = |variants: &str| -> anyhow::Result<Preset> {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("b.toml");
            let text = format!(
                "name = \"b\"\ndescription = \"d\"\npairs = [\"swahili\", \"hindi\"]\n\
                 low_resource = []\nmethods = [\"optical\"]\n[eval]\nsplit = \"dev\"\n\n\
                 [[variants]]\nname = \"bible\"\n\n{variants}"
            );
            std::fs::write(&p, text).unwrap();
            Ok(Preset::load(p.to_str().unwrap())?.0)
        };
        let help =
            "[[variants]]\nname = \"help\"\ntrain.data.bitext_source = \"libreoffice-help\"\n";
        let preset = load(&format!("{help}pairs = [\"hindi\"]\n")).unwrap();
        let cells = build_cells(&preset).unwrap();
        let labels = |pair: &str| -> Vec<&str> {
            let mut v: Vec<&str> = cells
                .iter()
                .filter(|c| c.pair == pair)
                .map(|c| c.label.as_str())
                .collect();
            v.dedup();
            v
        };
        assert_eq!(labels("swahili"), ["optical/bible"]);
        assert_eq!(labels("hindi"), ["optical/bible", "optical/help"]);
        let v = &preset.variants[1];
        let cfg = preset
            .train_config("hindi", Method::Optical, v, None)
            .unwrap();
        assert_eq!(cfg.data.bitext_source.as_deref(), Some("libreoffice-help"));
        assert_eq!(
            row_config(&preset, "optical/help").unwrap().data.language,
            "hindi"
        );
        let e = format!("{:#}", load(help).unwrap_err());
        assert!(e.contains("has no \"swahili\" bitext"), "{e}");
        let e = format!(
            "{:#}",
            load(&format!("{help}pairs = [\"german\"]\n")).unwrap_err()
        );
        assert!(
            e.contains(":15: variant 'help' names pair 'german', not one of the preset's"),
            "{e}"
        );
    }

    /// The joint-objective preset sweeps λ on joint only: OPTICAL runs once per seed, joint
    /// once per λ and seed, and each cell's configuration carries its own λ.
    #[test]
    fn variants_apply_to_the_methods_they_name() {
        let (preset, _) = Preset::load("joint-objective").unwrap();
        let cells = build_cells(&preset).unwrap();
        let labels = |pair: &str| -> Vec<String> {
            let mut v: Vec<String> = cells
                .iter()
                .filter(|c| c.pair == pair)
                .map(|c| c.label.clone())
                .collect();
            v.dedup();
            v
        };
        let lambdas: Vec<&Variant> = preset.variants.iter().collect();
        let mut want = vec![ZERO_SHOT.to_string(), "optical".into()];
        want.extend(lambdas.iter().map(|v| format!("joint/{}", v.name)));
        assert_eq!(labels("swahili"), want);
        for c in &cells {
            if let CellKind::Trained(m, v) = &c.kind {
                let cfg = preset.train_config(&c.pair, *m, v, c.seed).unwrap();
                assert_eq!(cfg.loss.method, *m);
                if *m == Method::Joint {
                    let want: f64 = v.name.trim_start_matches("lambda-").parse().unwrap();
                    assert_eq!(cfg.loss.joint_lambda, want, "{}", c.name());
                } else {
                    assert!(v.name.is_empty(), "{}", c.name());
                }
            }
        }
    }
}
