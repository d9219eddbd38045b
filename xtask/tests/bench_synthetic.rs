//! `bench train --synthetic` end to end through the built binary, on a tiny random model on
//! flex, and on wgpu (lavapipe on CI): 2 layers, width 32, 2 heads, 200 tokens, batch 4, 2
//! timed steps. A training row per method with a finite positive rate, an encoding row, the
//! backend's matmul peak, and a PyTorch reference that cannot run is one line, not a
//! failure. Speed is never asserted.

use std::process::Command;

/// The rows of `backend`'s training table: `(method, steps/s, GFLOP/s)`.
fn train_rows(out: &str, backend: &str) -> Vec<(String, f64, f64)> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 8 && f[0] == backend && f[2] != "vocab")
        .map(|f| {
            (
                f[1].to_string(),
                f[5].parse().unwrap(),
                f[7].parse().unwrap(),
            )
        })
        .collect()
}

/// `bench train --synthetic` on the tiny model with `backends` and `extra` arguments.
fn tiny_bench(backends: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "train", "--synthetic", "--backends", backends])
        .args([
            "--batch-sizes",
            "4",
            "--steps",
            "2",
            "--prefix-cache",
            "off",
        ])
        .args(["--encode-batches", "4", "--encode-sentences", "8"])
        .args([
            "--layers", "2", "--hidden", "32", "--ffn", "64", "--heads", "2",
        ])
        .args([
            "--vocab-size",
            "200",
            "--freeze-layers",
            "1",
            "--max-len",
            "32",
        ])
        .args(["--matmul-size", "64"])
        .args(extra)
        .output()
        .unwrap()
}

/// Runs the tiny bench and checks what every backend row shows: success, an OPTICAL and an
/// MSE training row of `backend` with finite positive steps/s and GFLOP/s, its matmul peak
/// and its first encoding row; returns stdout.
fn bench_rows_of(backend: &str, backends: &str, extra: &[&str]) -> String {
    let o = tiny_bench(backends, extra);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}\n{err}");
    let rows = train_rows(&out, backend);
    let methods: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(methods, ["optical", "mse"], "{out}\n{err}");
    for (method, steps, gflops) in &rows {
        assert!(steps.is_finite() && *steps > 0.0, "{method}: {out}");
        assert!(gflops.is_finite() && *gflops > 0.0, "{method}: {out}");
    }
    assert!(
        out.contains(&format!("{backend:<8} matmul peak: ")),
        "{out}"
    );
    let encode = out
        .lines()
        .skip_while(|l| !l.starts_with("encoding:"))
        .nth(2)
        .unwrap_or_else(|| panic!("no encoding row: {out}"));
    assert!(encode.starts_with(&format!("{backend} ")), "{out}");
    out
}

#[test]
fn a_tiny_synthetic_bench_prints_optical_and_mse_rows() {
    let out = bench_rows_of(
        "flex",
        "flex,nonesuch",
        &["--torch-reference", "/nonexistent/python3"],
    );
    assert!(out.contains("nonesuch: skipped"), "{out}");
    assert!(out.contains("F(n) = 2n(4d² + 2d·ffn) + 4n²d"), "{out}");
    assert!(out.contains("torch reference: not run"), "{out}");
}

/// The same tiny bench on wgpu (lavapipe on CI): the real training step and encoding run on
/// the GPU backend end to end.
#[cfg(feature = "wgpu")]
#[test]
fn the_tiny_synthetic_bench_runs_on_wgpu() {
    bench_rows_of("wgpu", "wgpu", &[]);
}
