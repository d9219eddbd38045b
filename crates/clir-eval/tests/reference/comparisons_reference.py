#!/usr/bin/env python3
"""Reference values for clir-eval's confidence intervals and comparison tables.

Offline tool (CI never runs it; its printed numbers are hard-coded in
tests/comparisons.rs):

    pip install scipy
    python3 crates/clir-eval/tests/reference/comparisons_reference.py

The fixture below is the same made-up one as `fixture()` in tests/comparisons.rs:
3 methods x 2 languages x 6 queries. It prints

1. for every (method, language) cell: the mean and the 95% Student-t confidence interval of the
   mean (`scipy.stats.t.interval`), as in `ResultsTable::ci`;
2. for every (reference, other) pair of PAIRS and language: the mean of the per-query
   differences reference - other, their 95% confidence interval, the two-sided paired t-test
   p-value (`scipy.stats.ttest_rel`) and the Holm-Bonferroni adjusted p-value over all
   pairs x languages (computed by hand below), as in `ComparisonTable`.

Numbers are printed with repr() (shortest round-trip), ready to paste into Rust.
"""
import numpy as np
from scipy import stats

LEVEL = 0.95
LANGS = ["sw", "so"]
# FIXTURE[method][language] = per-query values for q1..q6 (made up, distinct, non-degenerate).
FIXTURE = {
    "optical": {
        "sw": [0.61, 0.48, 0.735, 0.52, 0.66, 0.405],
        "so": [0.33, 0.41, 0.285, 0.47, 0.39, 0.355],
    },
    "mse": {
        "sw": [0.52, 0.43, 0.6, 0.455, 0.58, 0.35],
        "so": [0.35, 0.385, 0.31, 0.44, 0.42, 0.36],
    },
    "zeroshot": {
        "sw": [0.62, 0.515, 0.79, 0.58, 0.71, 0.49],
        "so": [0.21, 0.3, 0.18, 0.33, 0.27, 0.26],
    },
}
PAIRS = [("optical", "mse"), ("optical", "zeroshot")]


def ci(values):
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = x.mean()
    lo, hi = stats.t.interval(LEVEL, n - 1, loc=mean, scale=stats.sem(x))
    return n, mean, lo, hi


def holm(p):
    """Holm-Bonferroni step-down adjusted p-values, in input order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adj = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def main():
    print("# cells: method language n mean lower upper")
    for method, per_lang in FIXTURE.items():
        for lang in LANGS:
            n, mean, lo, hi = ci(per_lang[lang])
            print(method, lang, n, repr(float(mean)), repr(float(lo)), repr(float(hi)))

    rows = []
    for ref, other in PAIRS:
        for lang in LANGS:
            a = np.asarray(FIXTURE[ref][lang])
            b = np.asarray(FIXTURE[other][lang])
            n, mean, lo, hi = ci(a - b)
            p = float(stats.ttest_rel(a, b).pvalue)
            rows.append([ref, other, lang, n, float(mean), float(lo), float(hi), p])
    adj = holm([r[-1] for r in rows])
    print("# comparisons: reference other language n mean_diff lower upper p_value p_holm")
    for r, ph in zip(rows, adj):
        print(*r[:4], *(repr(v) for v in r[4:]), repr(ph))


if __name__ == "__main__":
    main()
