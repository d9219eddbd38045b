//! `cargo xtask ot solve`: real process, real files; errors are one clear line, never a panic.

use std::path::PathBuf;
use std::process::Command;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optical-ot-solve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn solve(path: &PathBuf) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["ot", "solve", "--input"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn solves_a_problem_file_and_prints_json() {
    let path = write(
        "ok.json",
        r#"{"cost": [[0, 1], [1, 0]], "epsilon": 0.05, "tau": null, "method": "sinkhorn"}"#,
    );
    let (ok, stdout, stderr) = solve(&path);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["converged"], true);
    let plan = v["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 2);
    // ε = 0.05 on a unit swap cost: almost all mass on the diagonal.
    assert!(plan[0][0].as_f64().unwrap() > 0.49);
    assert!(v["transport_cost"].as_f64().unwrap() < 1e-6);
    assert!(v["marginal_error"].as_f64().unwrap() < 1e-5);
    assert!(v["iterations"].as_u64().unwrap() >= 1);
}

#[test]
fn exact_method_gives_the_lp_optimum() {
    let path = write(
        "exact.json",
        r#"{"cost": [[0, 2, 1], [2, 0, 3]], "a": [0.5, 0.5], "b": [0.25, 0.25, 0.5], "method": "exact"}"#,
    );
    let (ok, stdout, stderr) = solve(&path);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // Row 0 sends 0.25 to column 0 (cost 0) and 0.25 to column 2 (cost 1); row 1 sends 0.25
    // to column 1 (cost 0) and 0.25 to column 2 (cost 3): 0.25 + 0.75 = 1.0.
    assert!(
        (v["transport_cost"].as_f64().unwrap() - 1.0).abs() < 1e-12,
        "{stdout}"
    );
}

#[test]
fn malformed_input_is_a_clear_error_not_a_panic() {
    for (name, text, expected) in [
        ("syntax.json", "{\"cost\": [[0, 1],\n [1, 0]", "line 2"),
        (
            "ragged.json",
            r#"{"cost": [[0, 1], [1]], "epsilon": 0.1}"#,
            "row 1 has 1 entries",
        ),
        (
            "noeps.json",
            r#"{"cost": [[0, 1], [1, 0]]}"#,
            "needs \"epsilon\"",
        ),
        (
            "mass.json",
            r#"{"cost": [[0]], "a": [1], "b": [2], "epsilon": 0.1}"#,
            "equal masses",
        ),
        (
            "unknown.json",
            r#"{"cost": [[0]], "epsilon": 0.1, "eps": 1}"#,
            "unknown field",
        ),
        (
            "negative.json",
            r#"{"cost": [[0, 1]], "b": [1.5, -0.5], "epsilon": 0.1}"#,
            "negative weight",
        ),
    ] {
        let (ok, _, stderr) = solve(&write(name, text));
        assert!(!ok, "{name} should fail");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}: error should name the file: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    let (ok, _, stderr) = solve(&PathBuf::from("/nonexistent/problem.json"));
    assert!(
        !ok && stderr.contains("cannot read /nonexistent/problem.json"),
        "{stderr}"
    );
}
