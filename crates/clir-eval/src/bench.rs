//! `cargo xtask bench eval`: our metrics vs pytrec_eval and our exact dense top-k vs numpy, on
//! the same seeded synthetic files in the same run, printed side by side with the ratio
//! (reference seconds / our seconds; > 1 means we are faster).
//!
//! Needs `python3` with `numpy` and `pytrec_eval` (`pip install numpy pytrec_eval`, or the
//! `pytrec-eval-terrier` wheel which installs the same module) for the reference columns.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dense::{DenseConfig, Matrix, Similarity, dense_top_k};
use crate::metrics::{EvalOptions, MeasureSet, evaluate};
use crate::trec::{Qrels, Run};

/// Options of `cargo xtask bench eval` (its command-line defaults are [`Default`]'s).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchEvalOptions {
    /// Queries in the metrics benchmark.
    pub queries: usize,
    /// Retrieved documents per query in the metrics benchmark.
    pub docs_per_query: usize,
    /// Queries in the dense retrieval benchmark.
    pub dense_queries: usize,
    /// Documents in the dense retrieval benchmark.
    pub dense_docs: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Depth of the dense top-k.
    pub k: usize,
    /// Timed repetitions of each measurement (the best is reported).
    pub repeats: usize,
    /// Seed of the synthetic data.
    pub seed: u64,
    /// Where the synthetic files go.
    pub work_dir: PathBuf,
    /// Python interpreter for the references.
    pub python: String,
    /// Skip the metrics benchmark.
    pub skip_metrics: bool,
    /// Skip the dense retrieval benchmark.
    pub skip_dense: bool,
}

impl Default for BenchEvalOptions {
    fn default() -> Self {
        BenchEvalOptions {
            queries: 10_000,
            docs_per_query: 1_000,
            dense_queries: 10_000,
            dense_docs: 100_000,
            dim: 384,
            k: 100,
            repeats: 3,
            seed: 2023,
            work_dir: PathBuf::from("target/bench-eval"),
            python: "python3".into(),
            skip_metrics: false,
            skip_dense: false,
        }
    }
}

const REFERENCE_PY: &str = r#"
import json, sys, time
mode = sys.argv[1]
if mode == "metrics":
    import pytrec_eval
    qrels_path, run_path, repeats = sys.argv[2], sys.argv[3], int(sys.argv[4])
    measures = set(json.loads(sys.argv[5]))
    t0 = time.perf_counter()
    qrels, run = {}, {}
    with open(qrels_path) as f:
        for line in f:
            q, _, d, r = line.split()
            qrels.setdefault(q, {})[d] = int(r)
    with open(run_path) as f:
        for line in f:
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    parse = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
        best = min(best, time.perf_counter() - t0)
    names = sorted(next(iter(res.values())).keys())
    means = {m: sum(v[m] for v in res.values()) / len(res) for m in names}
    print(json.dumps({"parse_s": parse, "eval_s": best, "means": means, "queries": len(res)}))
else:
    import numpy as np
    q_path, d_path, nq, nd, dim, k, repeats = sys.argv[2:9]
    nq, nd, dim, k, repeats = int(nq), int(nd), int(dim), int(k), int(repeats)
    Q = np.fromfile(q_path, dtype=np.float32).reshape(nq, dim)
    D = np.fromfile(d_path, dtype=np.float32).reshape(nd, dim)
    block = max(1, min(nq, (400 << 20) // (4 * nd)))  # ~400 MB of scores per block
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = np.empty((nq, k), dtype=np.int64)
        for s in range(0, nq, block):
            S = Q[s:s + block] @ D.T
            part = np.argpartition(-S, k - 1, axis=1)[:, :k]
            top = np.take_along_axis(S, part, axis=1)
            order = np.argsort(-top, axis=1, kind="stable")
            ids[s:s + block] = np.take_along_axis(part, order, axis=1)
        best = min(best, time.perf_counter() - t0)
    np.save(q_path + ".numpy_ids.npy", ids)
    print(json.dumps({"search_s": best, "block": block}))
"#;

/// The measures timed and cross-checked against pytrec_eval: the standard set plus `bpref`
/// (passed to the reference script, so both sides compute the same list).
const BENCH_MEASURES: [&str; 7] = [
    "map",
    "Rprec",
    "bpref",
    "recip_rank",
    "P.5,10,20,100",
    "recall.10,100,1000",
    "ndcg_cut.5,10,20,100",
];

fn python_available(python: &str, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run_python(python: &str, script: &Path, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("running {python}"))?;
    if !out.status.success() {
        bail!(
            "reference script failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Writes seeded synthetic qrels and run files: every query retrieves `docs` documents with
/// 4-decimal scores (so ties occur) and has ~60 judged documents (grades 0–3), some of them not
/// retrieved.
pub fn write_metric_files(
    dir: &Path,
    queries: usize,
    docs: usize,
    seed: u64,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let qrels_path = dir.join("bench.qrels");
    let run_path = dir.join("bench.run");
    let mut qw = BufWriter::new(std::fs::File::create(&qrels_path)?);
    let mut rw = BufWriter::new(std::fs::File::create(&run_path)?);
    let pool = docs * 3;
    for q in 0..queries {
        // A random subset of the pool, in a random order, as the ranking.
        let start = rng.random_range(0..pool);
        let step = [1usize, 2, 3][rng.random_range(0..3)];
        let retrieved: Vec<usize> = (0..docs).map(|i| (start + i * step) % pool).collect();
        for (rank, d) in retrieved.iter().enumerate() {
            let score: f64 = rng.random_range(0.0..1.0);
            writeln!(rw, "q{q} Q0 D{d} {} {score:.4} bench", rank + 1)?;
        }
        let mut judged = std::collections::BTreeSet::new();
        for _ in 0..60 {
            let d = if rng.random_bool(0.8) {
                retrieved[rng.random_range(0..docs)]
            } else {
                rng.random_range(0..pool)
            };
            judged.insert(d);
        }
        for d in judged {
            let grade = [0, 0, 1, 1, 2, 3][rng.random_range(0..6)];
            writeln!(qw, "q{q} 0 D{d} {grade}")?;
        }
    }
    qw.flush()?;
    rw.flush()?;
    Ok((qrels_path, run_path))
}

fn write_f32(path: &Path, data: &[f32]) -> anyhow::Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for v in data {
        w.write_all(&v.to_le_bytes())?;
    }
    w.flush()?;
    Ok(())
}

fn best_of<T>(
    repeats: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        let v = f()?;
        best = best.min(t0.elapsed().as_secs_f64());
        last = Some(v);
    }
    Ok((best, last.expect("at least one repetition")))
}

fn bench_metrics(a: &BenchEvalOptions, script: &Path, report: &mut String) -> anyhow::Result<()> {
    let (qrels_path, run_path) =
        write_metric_files(&a.work_dir, a.queries, a.docs_per_query, a.seed)?;
    let measures = MeasureSet::parse(&BENCH_MEASURES)?;
    let (parse_s, (qrels, run)) = best_of(a.repeats, || {
        Ok((Qrels::from_path(&qrels_path)?, Run::from_path(&run_path)?))
    })?;
    let (eval_s, ev) = best_of(a.repeats, || {
        Ok(evaluate(&qrels, &run, &measures, &EvalOptions::default())?)
    })?;
    let _ = writeln!(
        report,
        "metrics: {} queries x {} docs ({} run lines), {} measures, {} threads, best of {}",
        a.queries,
        a.docs_per_query,
        a.queries * a.docs_per_query,
        measures.measures().len(),
        rayon::current_num_threads(),
        a.repeats
    );
    let _ = writeln!(
        report,
        "  {:<12} {:>12} {:>14}",
        "", "evaluate (s)", "parse+eval (s)"
    );
    let _ = writeln!(
        report,
        "  {:<12} {:>12.3} {:>14.3}",
        "clir-eval",
        eval_s,
        parse_s + eval_s
    );
    if !python_available(&a.python, "pytrec_eval") {
        let _ = writeln!(
            report,
            "  pytrec_eval: not available ({} -c 'import pytrec_eval' failed; pip install pytrec_eval)",
            a.python
        );
        return Ok(());
    }
    let r = run_python(
        &a.python,
        script,
        &[
            "metrics".into(),
            qrels_path.display().to_string(),
            run_path.display().to_string(),
            a.repeats.to_string(),
            serde_json::to_string(&BENCH_MEASURES)?,
        ],
    )?;
    let ref_eval = r["eval_s"].as_f64().context("eval_s")?;
    let ref_parse = r["parse_s"].as_f64().context("parse_s")?;
    let _ = writeln!(
        report,
        "  {:<12} {:>12.3} {:>14.3}",
        "pytrec_eval",
        ref_eval,
        ref_parse + ref_eval
    );
    let _ = writeln!(
        report,
        "  {:<12} {:>11.1}x {:>13.1}x",
        "ratio",
        ref_eval / eval_s,
        (ref_parse + ref_eval) / (parse_s + eval_s)
    );
    // Cross-check: the means must agree.
    let mut max_diff = 0.0f64;
    let means = r["means"].as_object().context("means")?;
    for (name, v) in means {
        let ours = ev
            .all_value(name)
            .with_context(|| format!("measure {name}"))?;
        let theirs = v
            .as_f64()
            .with_context(|| format!("pytrec_eval mean of {name}"))?;
        max_diff = max_diff.max((ours - theirs).abs());
    }
    let _ = writeln!(
        report,
        "  check: {} means compared with pytrec_eval, max |diff| = {max_diff:.2e}",
        means.len()
    );
    if max_diff >= 1e-9 {
        bail!("metric means disagree with pytrec_eval (max diff {max_diff})");
    }
    Ok(())
}

fn bench_dense(a: &BenchEvalOptions, script: &Path, report: &mut String) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ 0x5eed);
    let q: Vec<f32> = (0..a.dense_queries * a.dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let d: Vec<f32> = (0..a.dense_docs * a.dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let qm = Matrix::new(&q, a.dense_queries, a.dim, "queries")?;
    let dm = Matrix::new(&d, a.dense_docs, a.dim, "documents")?;
    let cfg = DenseConfig::new(a.k, Similarity::Dot);
    let dense_repeats = a.repeats.min(2);
    let (ours_s, hits) = best_of(dense_repeats, || Ok(dense_top_k(qm, dm, &cfg)?))?;
    let _ = writeln!(
        report,
        "dense: exact top-{} (dot), {} queries x {} docs x {} dims, {} threads, best of {}",
        a.k,
        a.dense_queries,
        a.dense_docs,
        a.dim,
        rayon::current_num_threads(),
        dense_repeats
    );
    let _ = writeln!(
        report,
        "  {:<22} {:>10.3} s",
        "clir-eval dense_top_k", ours_s
    );
    if !python_available(&a.python, "numpy") {
        let _ = writeln!(report, "  numpy: not available (pip install numpy)");
        return Ok(());
    }
    let qp = a.work_dir.join("bench_q.f32");
    let dp = a.work_dir.join("bench_d.f32");
    write_f32(&qp, &q)?;
    write_f32(&dp, &d)?;
    let r = run_python(
        &a.python,
        script,
        &[
            "dense".into(),
            qp.display().to_string(),
            dp.display().to_string(),
            a.dense_queries.to_string(),
            a.dense_docs.to_string(),
            a.dim.to_string(),
            a.k.to_string(),
            dense_repeats.to_string(),
        ],
    )?;
    let np_s = r["search_s"].as_f64().context("search_s")?;
    let _ = writeln!(
        report,
        "  {:<22} {:>10.3} s  (matmul + argpartition + sort of the top {}, query blocks of {})",
        "numpy", np_s, a.k, r["block"]
    );
    let _ = writeln!(
        report,
        "  {:<22} {:>9.2}x",
        "ratio (numpy / ours)",
        np_s / ours_s
    );
    // Agreement: fraction of numpy's top-k ids that we also return (fp rounding may swap
    // near-ties at the boundary).
    let ids = read_npy_i64(&PathBuf::from(format!("{}.numpy_ids.npy", qp.display())))?;
    let mut same = 0usize;
    for (qi, h) in hits.iter().enumerate() {
        let ours: std::collections::HashSet<usize> = h.iter().map(|x| x.doc).collect();
        same += ids[qi * a.k..(qi + 1) * a.k]
            .iter()
            .filter(|&&i| ours.contains(&(i as usize)))
            .count();
    }
    let overlap = same as f64 / (a.dense_queries * a.k) as f64;
    let _ = writeln!(
        report,
        "  check: top-{} overlap with numpy = {:.6}",
        a.k, overlap
    );
    if overlap < 0.999 {
        bail!("dense top-k disagrees with numpy (overlap {overlap})");
    }
    Ok(())
}

/// Reads a C-order int64 `.npy` array (as written by `np.save`).
fn read_npy_i64(path: &Path) -> anyhow::Result<Vec<i64>> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("{}: not a .npy file", path.display());
    }
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = String::from_utf8_lossy(&bytes[start..start + hlen]);
    if !header.contains("'<i8'") || header.contains("'fortran_order': True") {
        bail!(
            "{}: expected little-endian int64 C-order, header {header}",
            path.display()
        );
    }
    Ok(bytes[start + hlen..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// Runs the benchmark and prints the report.
pub fn run(a: &BenchEvalOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.work_dir)
        .with_context(|| format!("creating {}", a.work_dir.display()))?;
    let script = a.work_dir.join("reference.py");
    std::fs::write(&script, REFERENCE_PY)?;
    let mut report = String::new();
    if !a.skip_metrics {
        bench_metrics(a, &script, &mut report)?;
        print!("{report}");
        report.clear();
    }
    if !a.skip_dense {
        bench_dense(a, &script, &mut report)?;
        print!("{report}");
    }
    Ok(())
}
