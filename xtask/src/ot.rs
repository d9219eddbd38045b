//! `cargo xtask ot solve` and `cargo xtask bench ot`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use ot_core::SinkhornConfig;
use ot_core::backend::select_device;
use ot_core::reference::{self, CostMatrix};
use ot_core::tensor::{Marginals, sinkhorn_batched, tensor2, tensor3};
use rayon::prelude::*;

#[derive(clap::Args)]
pub struct OtArgs {
    #[command(subcommand)]
    command: OtCommand,
}

#[derive(clap::Subcommand)]
enum OtCommand {
    /// Solve one problem from a JSON file (`-` reads standard input); the answer is JSON on
    /// stdout: {"plan", "transport_cost", "iterations", "marginal_error", "converged"}.
    Solve {
        #[arg(long)]
        input: PathBuf,
    },
}

pub fn run(args: OtArgs) -> anyhow::Result<()> {
    match args.command {
        OtCommand::Solve { input } => {
            let text = if input == Path::new("-") {
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
            } else {
                std::fs::read_to_string(&input)
                    .with_context(|| format!("cannot read {}", input.display()))?
            };
            let output = ot_core::problem::solve_json(&text)
                .with_context(|| format!("{}", input.display()))?;
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer(&mut stdout, &output)?;
            writeln!(stdout)?;
            Ok(())
        }
    }
}

#[derive(clap::Args)]
pub struct BenchOtArgs {
    /// Backend for the tensor solver (flex, ndarray, wgpu, tch; default: the CPU default).
    #[arg(long)]
    backend: Option<String>,
    /// Timed repetitions per solver (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Entropic regularisation (costs are cosine distances in [0, 2]).
    #[arg(long, default_value_t = 0.05)]
    epsilon: f64,
    /// Stopping tolerance on the marginal error, for every solver (the f32 tensor solver
    /// cannot reach much below ~1e-6).
    #[arg(long, default_value_t = 1e-5)]
    tol: f64,
    /// Skip POT (only time ot-core).
    #[arg(long)]
    no_pot: bool,
    /// Python interpreter with POT installed (`pip install pot`).
    #[arg(long, default_value = "python3")]
    python: String,
}

/// One benchmark shape: `batch` problems of `n × n` cosine costs between random
/// `dim`-dimensional embeddings.
struct Shape {
    name: &'static str,
    batch: usize,
    n: usize,
    dim: usize,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "B=64, n=m=32, d=384",
        batch: 64,
        n: 32,
        dim: 384,
    },
    Shape {
        name: "B=1, n=m=1000, d=384",
        batch: 1,
        n: 1000,
        dim: 384,
    },
];

/// POT side of the benchmark: times, on the same costs, POT's per-problem solvers
/// `ot.sinkhorn` with `method="sinkhorn"` (kernel space), `"sinkhorn_stabilized"` and
/// `"sinkhorn_log"` in a loop over the batch, and `ot.batch.solve_batch` on the whole batch in
/// kernel space (`method="sinkhorn"`) and in the log domain (`"log_sinkhorn"`). A method that
/// fails (e.g. absent from the installed POT) is reported with its error, not timed.
const POT_SCRIPT: &str = r#"
import json, sys, time
import numpy as np
import ot
spec = json.load(open(sys.argv[1]))
out = {"pot_version": ot.__version__, "shapes": []}
for s in spec["shapes"]:
    B, n = s["batch"], s["n"]
    M = np.fromfile(s["cost_file"], dtype=np.float64).reshape(B, n, n)
    a = np.full(n, 1.0 / n)
    res = {"name": s["name"], "methods": {}, "errors": {}}
    def loop(method):
        def run():
            for k in range(B):
                ot.sinkhorn(a, a, M[k], spec["epsilon"], method=method,
                            numItermax=spec["max_iter"], stopThr=spec["tol"])
        return run
    def batch(method):
        def run():
            ot.batch.solve_batch(M, reg=spec["epsilon"], max_iter=spec["max_iter"],
                                 tol=spec["tol"], method=method, reg_type="kl")
        return run
    for key, fn in [("sinkhorn", loop("sinkhorn")),
                    ("sinkhorn_stabilized", loop("sinkhorn_stabilized")),
                    ("sinkhorn_log", loop("sinkhorn_log")),
                    ("batch kernel", batch("sinkhorn")),
                    ("batch log", batch("log_sinkhorn"))]:
        try:
            fn()  # warm-up
            times = []
            for _ in range(spec["repeats"]):
                t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
            res["methods"][key] = sorted(times)[len(times) // 2]
        except Exception as e:
            res["errors"][key] = repr(e)[:200]
    out["shapes"].append(res)
print(json.dumps(out))
"#;

pub fn bench(args: BenchOtArgs) -> anyhow::Result<()> {
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let (backend, device) = select_device(args.backend.as_deref())?;
    let config = SinkhornConfig::new()
        .with_epsilon(args.epsilon)
        .with_tol(args.tol)
        .with_max_iter(10_000)
        .with_check_every(10);
    let workdir = std::env::temp_dir().join(format!("optical-bench-ot-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    println!(
        "cargo xtask bench ot: epsilon {}, tol {}, {} repeats (median), {} rayon threads, tensor backend {backend}",
        args.epsilon,
        args.tol,
        args.repeats,
        rayon::current_num_threads()
    );

    let mut ours = Vec::new();
    let mut pot_shapes = Vec::new();
    for (index, shape) in SHAPES.iter().enumerate() {
        let costs = cosine_costs(shape, 2023 + index as u64);
        let cost_file = workdir.join(format!("cost{index}.f64"));
        let bytes: Vec<u8> = costs.iter().flat_map(|c| c.to_le_bytes()).collect();
        std::fs::write(&cost_file, bytes)?;
        pot_shapes.push(serde_json::json!({
            "name": shape.name, "batch": shape.batch, "n": shape.n,
            "cost_file": cost_file.to_string_lossy(),
        }));

        // f64 reference solver: problems in parallel (batch), rows in parallel (single).
        let n = shape.n;
        let a = reference::uniform(n);
        let matrices: Vec<CostMatrix> = costs
            .chunks(n * n)
            .map(|c| CostMatrix::new(n, n, c.to_vec()))
            .collect::<Result<_, _>>()?;
        let reference_time = median_time(args.repeats, || {
            let iterations: Vec<usize> = matrices
                .par_iter()
                .map(|c| reference::sinkhorn(c, &a, &a, &config).map(|s| s.iterations))
                .collect::<Result<_, _>>()?;
            Ok(iterations.iter().sum::<usize>() as f64 / iterations.len() as f64)
        })?;

        // Tensor solver on the selected burn backend, the whole batch at once.
        let costs32: Vec<f32> = costs.iter().map(|&c| c as f32).collect();
        let weights = vec![1.0 / n as f32; shape.batch * n];
        let tensor_time = median_time(args.repeats, || {
            let cost = tensor3(costs32.clone(), [shape.batch, n, n], &device);
            let marginals = Marginals::from_weights(
                tensor2(weights.clone(), [shape.batch, n], &device),
                tensor2(weights.clone(), [shape.batch, n], &device),
            );
            let s = sinkhorn_batched(cost, &marginals, &config)?;
            Ok(s.diagnostics.iterations as f64)
        })?;
        ours.push((shape, reference_time, tensor_time));
    }

    let pot = if args.no_pot {
        None
    } else {
        Some(run_pot(&args, &workdir, &pot_shapes)?)
    };
    let _ = std::fs::remove_dir_all(&workdir);

    print_table(&ours, pot.as_ref());
    Ok(())
}

/// A shape with our two solvers' `(median seconds, mean iterations)`: f64 reference, tensor.
type Timed<'a> = (&'a Shape, (f64, f64), (f64, f64));

/// The benchmark's table: per shape, our two solvers' median seconds and iterations beside
/// every POT method's time (and its failures), with the ratios best POT / ours.
fn print_table(ours: &[Timed<'_>], pot: Option<&serde_json::Value>) {
    println!(
        "\n{:<24} {:>14} {:>16} {:>30} {:>12} {:>12}",
        "shape", "ot-core f64", "ot-core tensor", "POT best (method)", "vs tensor", "vs f64"
    );
    for (k, (shape, (ref_s, ref_it), (ten_s, ten_it))) in ours.iter().enumerate() {
        let timed: Vec<(String, f64)> = pot
            .and_then(|p| p["shapes"][k]["methods"].as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .filter_map(|(name, t)| t.as_f64().map(|t| (name, t)))
                    .collect()
            })
            .unwrap_or_default();
        let best = timed
            .iter()
            .cloned()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(("none".into(), f64::NAN));
        println!(
            "{:<24} {:>13.4}s {:>15.4}s {:>21.4}s ({:<7}) {:>11.2}x {:>11.2}x",
            shape.name,
            ref_s,
            ten_s,
            best.1,
            best.0,
            best.1 / ten_s,
            best.1 / ref_s
        );
        println!(
            "{:<24} {:>13.0}it {:>15.0}it   (seconds per solve of the whole batch; vs = best POT time / ours)",
            "", ref_it, ten_it
        );
        for (name, t) in &timed {
            println!("{:<24}   POT {name:<20} {t:>10.4}s", "");
        }
        if let Some(errors) = pot.and_then(|p| p["shapes"][k]["errors"].as_object()) {
            for (name, e) in errors {
                println!(
                    "{:<24}   POT {name:<20} failed: {}",
                    "",
                    e.as_str().unwrap_or("?")
                );
            }
        }
    }
    if let Some(p) = pot {
        println!("POT {}", p["pot_version"].as_str().unwrap_or("?"));
    }
}

/// Cosine distances `1 − cos(x_i, y_j)` between seeded random embeddings drawn around 16
/// shared cluster centres (token embeddings cluster; independent random 384-d vectors would
/// be nearly orthogonal and make every cost ≈ 1, a trivial problem).
fn cosine_costs(shape: &Shape, seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (n, d) = (shape.n, shape.dim);
    let centres: Vec<f64> = (0..16 * d)
        .map(|_| rng.random::<f64>() * 2.0 - 1.0)
        .collect();
    let mut out = Vec::with_capacity(shape.batch * n * n);
    for _ in 0..shape.batch {
        let mut unit = || -> Vec<f64> {
            let mut v: Vec<f64> = Vec::with_capacity(n * d);
            for _ in 0..n {
                let c = rng.random_range(0..16usize);
                v.extend(
                    (0..d).map(|k| centres[c * d + k] + 0.6 * (rng.random::<f64>() * 2.0 - 1.0)),
                );
            }
            for row in v.chunks_mut(d) {
                let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
                row.iter_mut().for_each(|x| *x /= norm);
            }
            v
        };
        let (x, y) = (unit(), unit());
        for xi in x.chunks(d) {
            for yj in y.chunks(d) {
                out.push(1.0 - xi.iter().zip(yj).map(|(p, q)| p * q).sum::<f64>());
            }
        }
    }
    out
}

/// Median wall time of `repeats` runs (after one warm-up) and the value the last run returned.
fn median_time(
    repeats: usize,
    mut f: impl FnMut() -> anyhow::Result<f64>,
) -> anyhow::Result<(f64, f64)> {
    let mut value = f()?;
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        value = f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], value))
}

fn run_pot(
    args: &BenchOtArgs,
    workdir: &Path,
    shapes: &[serde_json::Value],
) -> anyhow::Result<serde_json::Value> {
    let spec = serde_json::json!({
        "shapes": shapes, "epsilon": args.epsilon, "tol": args.tol,
        "max_iter": 10_000, "repeats": args.repeats,
    });
    let spec_file = workdir.join("spec.json");
    std::fs::write(&spec_file, serde_json::to_vec(&spec)?)?;
    let script = workdir.join("pot_bench.py");
    std::fs::write(&script, POT_SCRIPT)?;
    let output = Command::new(&args.python)
        .arg(&script)
        .arg(&spec_file)
        .output()
        .with_context(|| {
            format!(
                "cannot run `{}`; install Python 3 or pass --no-pot",
                args.python
            )
        })?;
    if !output.status.success() {
        bail!(
            "the POT side failed (install it with `pip install pot numpy`, or pass --no-pot):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("POT script printed something other than JSON")
}
