"""Golden values for ot-core from POT (Python Optimal Transport).

Regenerate with:  pip install pot numpy && python3 make_pot_golden.py
Writes ../fixtures/pot_golden.json: 24 fixed problems (seeded), each with POT's entropic
plan (log-domain Sinkhorn, or generalised Sinkhorn with KL-relaxed marginals when tau is
set, reg_type="kl" i.e. KL(P | a x b) as in ot-core), its transport cost <P, C>, and the
exact OT cost from ot.emd2 (balanced problems only).
"""
import json
import os

import numpy as np
import ot

rng = np.random.default_rng(20230301)
problems = []
shapes = [(3, 3), (4, 6), (5, 5), (7, 3), (8, 8), (10, 12), (13, 9), (16, 16), (20, 17), (32, 32)]
epsilons = [1.0, 0.5, 0.2, 0.1, 0.05]
for k in range(24):
    n, m = shapes[k % len(shapes)]
    eps = epsilons[k % len(epsilons)]
    if k % 3 == 0:
        # squared Euclidean between 2-D point clouds in the unit square
        x, y = rng.random((n, 2)), rng.random((m, 2))
        cost = ot.dist(x, y)
    elif k % 3 == 1:
        # cosine distance between random 8-D embeddings, as OPTICAL uses
        x, y = rng.standard_normal((n, 8)), rng.standard_normal((m, 8))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        cost = 1.0 - x @ y.T
    else:
        cost = rng.random((n, m))
    if k % 2 == 0:
        a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    else:
        a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
        a, b = a / a.sum(), b / b.sum()
    tau = None
    if k >= 18:
        tau = [0.1, 1.0, 10.0][k % 3]
        b = b * 1.5  # unequal masses are allowed when unbalanced
        plan = ot.unbalanced.sinkhorn_unbalanced(
            a, b, cost, eps, tau, method="sinkhorn", reg_type="kl",
            numItermax=200000, stopThr=1e-14)
        exact = None
    else:
        plan = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log",
                           numItermax=200000, stopThr=1e-14)
        exact = float(ot.emd2(a, b, cost))
    problems.append({
        "name": f"p{k:02d}_{n}x{m}_eps{eps}" + (f"_tau{tau}" if tau else ""),
        "cost": cost.tolist(), "a": a.tolist(), "b": b.tolist(),
        "epsilon": eps, "tau": tau,
        "plan": plan.tolist(),
        "transport_cost": float((plan * cost).sum()),
        "exact_cost": exact,
    })

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pot_golden.json")
with open(out, "w") as fh:
    json.dump({"generator": f"POT {ot.__version__}", "problems": problems}, fh)
print(f"wrote {len(problems)} problems to {out}")
