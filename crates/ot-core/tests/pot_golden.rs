//! ot-core's f64 reference solvers against POT on 24 fixed problems
//! (`tests/reference/make_pot_golden.py` made `tests/fixtures/pot_golden.json`).
//!
//! Tolerances: the entropic plan is unique, and both sides iterate to 1e-12-level marginal
//! error, so plans agree to 1e-8 per entry and transport costs to 1e-8 relative; the exact
//! LP agrees with `ot.emd2` to 1e-9.

use ot_core::SinkhornConfig;
use ot_core::reference::{CostMatrix, exact_ot, sinkhorn};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    problems: Vec<Problem>,
}

#[derive(Deserialize)]
struct Problem {
    name: String,
    cost: Vec<Vec<f64>>,
    a: Vec<f64>,
    b: Vec<f64>,
    epsilon: f64,
    tau: Option<f64>,
    plan: Vec<Vec<f64>>,
    transport_cost: f64,
    exact_cost: Option<f64>,
}

fn golden() -> Golden {
    let text = include_str!("fixtures/pot_golden.json");
    serde_json::from_str(text).expect("fixture parses")
}

#[test]
fn at_least_twenty_problems_cover_balanced_and_unbalanced() {
    let g = golden();
    assert!(g.problems.len() >= 20);
    assert!(g.problems.iter().any(|p| p.tau.is_some()));
    assert!(g.problems.iter().filter(|p| p.tau.is_none()).count() >= 12);
}

#[test]
fn entropic_plans_match_pot() {
    for p in golden().problems {
        let cost = CostMatrix::from_rows(&p.cost).unwrap();
        let config = SinkhornConfig::new()
            .with_epsilon(p.epsilon)
            .with_tau(p.tau)
            .with_max_iter(200_000)
            .with_tol(1e-13);
        let s = sinkhorn(&cost, &p.a, &p.b, &config).unwrap();
        assert!(
            s.converged,
            "{}: not converged after {} iterations",
            p.name, s.iterations
        );
        let expected: Vec<f64> = p.plan.concat();
        let max_diff = s
            .plan
            .iter()
            .zip(&expected)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(
            max_diff < 1e-8,
            "{}: plan differs from POT by {max_diff:e}",
            p.name
        );
        let rel = (s.transport_cost - p.transport_cost).abs() / p.transport_cost.abs().max(1e-12);
        assert!(
            rel < 1e-8,
            "{}: cost {} vs POT {}",
            p.name,
            s.transport_cost,
            p.transport_cost
        );
    }
}

#[test]
fn exact_costs_match_pot_emd() {
    for p in golden().problems {
        let Some(exact) = p.exact_cost else { continue };
        let cost = CostMatrix::from_rows(&p.cost).unwrap();
        let s = exact_ot(&cost, &p.a, &p.b).unwrap();
        assert!(
            (s.transport_cost - exact).abs() < 1e-9,
            "{}: {} vs {exact}",
            p.name,
            s.transport_cost
        );
        assert!(
            s.marginal_error < 1e-9,
            "{}: marginal error {}",
            p.name,
            s.marginal_error
        );
        assert!(s.plan.iter().all(|&x| x >= 0.0));
        // The entropic plan is feasible, so its cost can only be higher.
        assert!(p.transport_cost >= exact - 1e-9, "{}", p.name);
    }
}
