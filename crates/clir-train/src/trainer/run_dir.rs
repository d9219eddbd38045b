//! The run directory: its files, the configuration check, the step log, checkpoints (the
//! student, the optimiser state and the step) and the saved students (`student/`, snapshots).

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use clir_models::Embedder;
use serde::{Deserialize, Serialize};

use burn::prelude::Device;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

use super::student::Student;
use super::{StepLog, TrainInputs, TrainOutcome};
use crate::atomic::{sync_dir, sync_tree, temp_path, write_atomic};

/// Files of a run directory.
/// Files of a run directory.
pub const RUN_CONFIG: &str = "config.toml";
pub const RUN_LOG: &str = "log.jsonl";
pub const RUN_STUDENT: &str = "student";
pub const RUN_CHECKPOINTS: &str = "checkpoints";
pub const RUN_SNAPSHOTS: &str = "snapshots";
pub(crate) const LATEST: &str = "latest";
pub(crate) const CKPT_STATE: &str = "state.json";
pub(crate) const CKPT_OPTIMIZER: &str = "optimizer.bpk";

#[derive(Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    pub(crate) step: usize,
}

/// The folder of the student a run in `run_dir` saved after `step` ([`TrainInputs::snapshots`]).
pub fn snapshot_dir(run_dir: &Path, step: usize) -> PathBuf {
    run_dir.join(RUN_SNAPSHOTS).join(format!("step-{step:06}"))
}

/// Saves `embedder` as the model folder `out`, written aside and renamed into place.
pub(crate) fn save_atomically(embedder: &Embedder, out: &Path) -> Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    }
    let tmp = temp_path(out);
    embedder.save(&tmp)?;
    let _ = std::fs::remove_dir_all(out);
    std::fs::rename(&tmp, out).map_err(|e| TrainError::io(out, e))
}

/// The step of the checkpoint an unfinished run in `run_dir` would resume from (`None`: it
/// starts from scratch).
pub fn checkpoint_step(run_dir: &Path) -> Result<Option<usize>> {
    Ok(read_latest(&run_dir.join(RUN_CHECKPOINTS))?.map(|(step, _)| step))
}

/// Whether `run_dir` holds a finished run (its final student).
pub fn is_finished(run_dir: &Path) -> bool {
    run_dir
        .join(RUN_STUDENT)
        .join(clir_models::embedder::CHECKPOINT_CONFIG)
        .is_file()
}

pub(crate) fn check_or_write_config(cfg: &TrainConfig, run_dir: &Path) -> Result<()> {
    let path = run_dir.join(RUN_CONFIG);
    if path.is_file() {
        let saved = TrainConfig::load(&path)?;
        if &saved != cfg {
            return Err(TrainError::config(
                &path,
                "the run directory holds a run with a different configuration; \
                 use another directory or delete this one",
            ));
        }
        return Ok(());
    }
    write_atomic(&path, cfg.to_toml().as_bytes())
}

pub(crate) fn open_log(
    path: &Path,
    keep_until: usize,
) -> Result<std::io::BufWriter<std::fs::File>> {
    let mut kept = String::new();
    if keep_until > 0 && path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        for (no, line) in text.lines().enumerate() {
            let entry: StepLog = match serde_json::from_str(line) {
                Ok(e) => e,
                // A line cut off by a kill is the only acceptable damage: it must be the last.
                Err(_) if no + 1 == text.lines().count() => break,
                Err(e) => {
                    return Err(TrainError::checkpoint(
                        path,
                        format!("line {}: not a log record: {e}", no + 1),
                    ));
                }
            };
            if entry.step <= keep_until {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    write_atomic(path, kept.as_bytes())?;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    Ok(std::io::BufWriter::new(f))
}

pub(crate) fn read_latest(ckpt_dir: &Path) -> Result<Option<(usize, PathBuf)>> {
    let latest = ckpt_dir.join(LATEST);
    if !latest.is_file() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&latest).map_err(|e| TrainError::io(&latest, e))?;
    let dir = ckpt_dir.join(name.trim());
    let state_path = dir.join(CKPT_STATE);
    let text = std::fs::read_to_string(&state_path).map_err(|e| TrainError::io(&state_path, e))?;
    let state: CheckpointState = serde_json::from_str(&text)
        .map_err(|e| TrainError::checkpoint(&state_path, e.to_string()))?;
    Ok(Some((state.step, dir)))
}

/// Writes `checkpoints/step-NNNNNN/` through a temporary directory and a rename, points
/// `checkpoints/latest` at it (also atomically) and removes older checkpoints.
pub(crate) fn write_checkpoint(
    ckpt_dir: &Path,
    step: usize,
    student: &Student,
    optim: &ModuleOptimizer,
) -> Result<()> {
    std::fs::create_dir_all(ckpt_dir).map_err(|e| TrainError::io(ckpt_dir, e))?;
    let name = format!("step-{step:06}");
    let tmp = temp_path(&ckpt_dir.join(&name));
    student.to_embedder()?.save(&tmp.join(RUN_STUDENT))?;
    let opt_path = tmp.join(CKPT_OPTIMIZER);
    optim
        .save(&opt_path)
        .map_err(|e| TrainError::checkpoint(&opt_path, e.to_string()))?;
    write_atomic(
        &tmp.join(CKPT_STATE),
        serde_json::to_string(&CheckpointState { step })
            .expect("state serialises")
            .as_bytes(),
    )?;
    // Every file of the checkpoint is on disk before the directory gets its name, and the
    // name before `latest` points at it.
    sync_tree(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let dir = ckpt_dir.join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| TrainError::io(&dir, e))?;
    sync_dir(ckpt_dir).map_err(|e| TrainError::io(ckpt_dir, e))?;
    write_atomic(&ckpt_dir.join(LATEST), name.as_bytes())?;
    for e in std::fs::read_dir(ckpt_dir)
        .map_err(|e| TrainError::io(ckpt_dir, e))?
        .flatten()
    {
        let p = e.path();
        let n = e.file_name().to_string_lossy().to_string();
        if p.is_dir() && n.starts_with("step-") && n != name {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
    Ok(())
}

/// A finished run read back (its student as trained, trimmed, like the one a fresh run
/// returns, and its log); an error when a snapshot `inputs` asks for was never saved.
pub(crate) fn finished_run(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    run_dir: &Path,
    device: &Device,
) -> Result<TrainOutcome> {
    if let Some(&s) = inputs
        .snapshots
        .iter()
        .find(|&&s| !snapshot_dir(run_dir, s).is_dir())
    {
        return Err(TrainError::Invalid(format!(
            "{}: the run is finished without a snapshot at step {s}; train it again in \
             another folder (or delete this one) to save snapshots",
            run_dir.display()
        )));
    }
    let student = Embedder::load_checkpoint_as_saved(&run_dir.join(RUN_STUDENT), device)?;
    let log_path = run_dir.join(RUN_LOG);
    let text = std::fs::read_to_string(&log_path).map_err(|e| TrainError::io(&log_path, e))?;
    let log = text
        .lines()
        .enumerate()
        .map(|(no, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::checkpoint(&log_path, format!("line {}: {e}", no + 1)))
        })
        .collect::<Result<Vec<StepLog>>>()?;
    Ok(TrainOutcome {
        student,
        run_dir: run_dir.to_path_buf(),
        steps_done: cfg.optim.steps,
        resumed_from: Some(cfg.optim.steps),
        log,
        teacher_reused: 0,
        prefix: None,
        prefix_seconds: 0.0,
    })
}
