//! `bench train --synthetic --torch-reference PYTHON`: the same training steps and encodings
//! in PyTorch (`torch_reference.py`, eager and `torch.compile`), run as a subprocess, and our
//! rows printed beside its rows. A missing Python or torch is one line, never an error.

use std::path::Path;
use std::process::Command;

use crate::bench_synthetic::{EncodeRow, TrainRow, write_lengths};
use crate::train::BenchTrainArgs;

/// One row the reference reported.
#[derive(serde::Deserialize, Debug)]
struct TorchRow {
    mode: String,
    kind: String,
    #[serde(default)]
    method: String,
    batch: usize,
    per_s: f64,
    flops_per_s: f64,
}

/// What the reference wrote.
#[derive(serde::Deserialize, Debug)]
struct TorchReport {
    device: String,
    #[serde(default)]
    matmul_gflops: Option<f64>,
    #[serde(default)]
    notes: Vec<String>,
    rows: Vec<TorchRow>,
}

/// Runs the reference and prints the comparison; problems are printed, not returned.
pub fn compare(
    python: &str,
    a: &BenchTrainArgs,
    work: &Path,
    train: &[TrainRow],
    encode: &[EncodeRow],
) {
    match run_reference(python, a, work) {
        Ok(report) => print_comparison(&report, train, encode),
        Err(e) => println!("torch reference: not run ({e:#})"),
    }
}

fn run_reference(python: &str, a: &BenchTrainArgs, work: &Path) -> anyhow::Result<TorchReport> {
    let s = &a.synthetic;
    let script = work.join("torch_reference.py");
    std::fs::create_dir_all(work)?;
    std::fs::write(&script, clir_models::bench::TORCH_REFERENCE_PY)?;
    let lengths = write_lengths(work)?;
    let json = work.join("torch_reference.json");
    let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let methods: Vec<&str> = s.methods.iter().map(|m| m.name()).collect();
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .args(["--device", &s.torch_device])
        .args(["--layers", &s.layers.to_string()])
        .args(["--hidden", &s.hidden.to_string()])
        .args(["--ffn", &s.ffn.to_string()])
        .args(["--heads", &s.heads.to_string()])
        .args(["--vocab-size", &s.vocab_size.to_string()])
        .args(["--freeze-layers", &a.freeze_layers.to_string()])
        .args(["--max-len", &a.max_len.to_string()])
        .args(["--steps", &a.steps.to_string()])
        .args(["--batch-sizes", &list(&s.batch_sizes)])
        .args(["--encode-batches", &list(&s.encode_batches)])
        .args(["--encode-sentences", &s.encode_sentences.to_string()])
        .args(["--matmul-size", &s.matmul_size.to_string()])
        .args(["--methods", &methods.join(",")])
        .arg("--lengths")
        .arg(&lengths)
        .arg("--json")
        .arg(&json);
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run `{python}`: {e}"))?;
    if !status.success() {
        anyhow::bail!("`{python} torch_reference.py` exited with {status}; see its output above");
    }
    let text = std::fs::read_to_string(&json)?;
    Ok(serde_json::from_str(&text)?)
}

fn print_comparison(r: &TorchReport, train: &[TrainRow], encode: &[EncodeRow]) {
    println!("torch reference on {}:", r.device);
    for note in &r.notes {
        println!("  {note}");
    }
    if let Some(g) = r.matmul_gflops {
        println!("  torch matmul peak: {g:.1} GFLOP/s");
    }
    let find = |kind: &str, mode: &str, method: &str, batch: usize| {
        r.rows
            .iter()
            .find(|t| t.kind == kind && t.mode == mode && t.method == method && t.batch == batch)
    };
    let ratio = |ours: f64, t: Option<&TorchRow>| match t {
        Some(t) => format!("{:>10.3} {:>7.2}x", t.per_s, ours / t.per_s),
        None => format!("{:>10} {:>8}", "-", "-"),
    };
    println!(
        "{:<8} {:<8} {:<6} {:>6} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10}",
        "backend",
        "method",
        "cache",
        "batch",
        "ours/s",
        "eager/s",
        "ours/eag",
        "compile/s",
        "ours/cmp",
        "eager GF/s"
    );
    for o in train {
        let m = o.method.name();
        let eager = find("train", "eager", m, o.batch);
        println!(
            "{:<8} {:<8} {:<6} {:>6} {:>10.3} {} {} {:>10.2}",
            o.backend,
            m,
            if o.cache { "on" } else { "off" },
            o.batch,
            o.steps_per_s,
            ratio(o.steps_per_s, eager),
            ratio(o.steps_per_s, find("train", "compile", m, o.batch)),
            eager.map_or(f64::NAN, |t| t.flops_per_s / 1e9)
        );
    }
    for o in encode {
        let eager = find("encode", "eager", "", o.batch);
        println!(
            "{:<8} {:<8} {:<6} {:>6} {:>10.1} {} {} {:>10.2}",
            o.backend,
            "encode",
            "-",
            o.batch,
            o.sentences_per_s,
            ratio(o.sentences_per_s, eager),
            ratio(o.sentences_per_s, find("encode", "compile", "", o.batch)),
            eager.map_or(f64::NAN, |t| t.flops_per_s / 1e9)
        );
    }
}
