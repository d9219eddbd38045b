#!/usr/bin/env python3
"""Golden reference values for clir-eval's metric tests.

Offline tool (CI never runs it; its outputs are committed):

    pip install pytrec_eval ir-measures   # or pytrec-eval-terrier (same module, prebuilt wheels)
    python3 make_golden.py             # per-query values from pytrec_eval and ir_measures
    TREC_EVAL=/path/to/trec_eval python3 make_golden.py   # plus full trec_eval 9.0.8 outputs

1. Writes a seeded, made-up random fixture (`random.qrels` / `random.run`) with many score
   ties, graded and negative judgments, unjudged documents and short rankings.
2. For every fixture in fixtures/, writes golden/<name>.pytrec_eval.json: per-query values of
   the measures below computed by pytrec_eval (which bundles trec_eval's C code).
3. Writes golden/<name>.ir_measures.json: per-query Judged@k (ir_measures' own judged provider)
   and RR@k (its msmarco provider), the two measures trec_eval lacks. ir_measures breaks score
   ties by docno ascending on full-precision scores, trec_eval by docno descending on C floats;
   to score the ranking every other measure sees, the run is first re-scored by its trec_eval
   rank, and that re-scoring is checked to leave every pytrec_eval value unchanged.
4. If $TREC_EVAL names a trec_eval binary, also writes golden/<name>.<flags>.trec_eval.txt with
   the exact stdout of `trec_eval <flags> -m ... qrels run` for the flag sets in FLAGS, which
   pins -q, -c, -M and the "all" averages byte for byte.
"""
import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import ir_measures
import pytrec_eval
from ir_measures import RR, Judged

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"
GOLD = HERE / "golden"

MEASURES = {
    "map",
    "Rprec",
    "bpref",
    "recip_rank",
    "P.5,10,20,100",
    "recall.10,100,1000",
    "ndcg_cut.5,10,20,100",
    "num_ret",
    "num_rel",
    "num_rel_ret",
}
TREC_M = [
    "-m", "num_q", "-m", "num_ret", "-m", "num_rel", "-m", "num_rel_ret",
    "-m", "map", "-m", "Rprec", "-m", "bpref", "-m", "recip_rank", "-m", "P.5,10,20,100",
    "-m", "recall.10,100,1000", "-m", "ndcg_cut.5,10,20,100",
]
JUDGED = [Judged @ k for k in (1, 3, 5, 10, 20, 100)]
RR_CUT = [RR @ k for k in (1, 3, 10, 100)]
FLAGS = {"plain": [], "q": ["-q"], "qc": ["-q", "-c"], "qM3": ["-q", "-M", "3"], "cM5": ["-c", "-M", "5"],
         "ql2": ["-q", "-l", "2"]}


def make_random(seed=20230227):
    rng = random.Random(seed)
    qrels, run = [], []
    for q in range(1, 31):
        qid = f"r{q}"
        pool = [f"D{rng.randrange(400)}" for _ in range(200)]
        pool = sorted(set(pool))
        judged = rng.sample(pool, min(len(pool), rng.randrange(5, 60)))
        for d in sorted(judged):
            grade = rng.choice([0, 0, 0, 1, 1, 2, 3, -1])
            qrels.append(f"{qid} 0 {d} {grade}")
        if q % 10 == 0:
            continue  # in qrels, not in run
        n = rng.choice([0, 3, 8, 25, 150, 150])
        if n == 0:
            n = 1
        docs = rng.sample(pool, min(n, len(pool)))
        for rank, d in enumerate(docs):
            score = round(rng.uniform(-1, 1), 1)  # coarse: many ties
            run.append(f"{qid} Q0 {d} {rank + 1} {score} rnd")
    run.append("zz Q0 D1 1 1.0 rnd")  # query without qrels
    (FIX / "random.qrels").write_text("\n".join(qrels) + "\n")
    (FIX / "random.run").write_text("\n".join(run) + "\n")


def read_qrels(path):
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            q, _, d, r = line.split()
            out.setdefault(q, {})[d] = int(r)
    return out


def read_run(path):
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            q, _, d, _, s, _ = line.split()
            out.setdefault(q, {})[d] = float(s)
    return out


def c_float(x):
    """The score as trec_eval 9.0.8 stores it (a C float)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def trec_ranked(run):
    """The run re-scored n, n-1, ..., 1 in trec_eval's order: score as a C float descending,
    ties by docno descending."""
    out = {}
    for q, docs in run.items():
        order = sorted(docs.items(), key=lambda x: (c_float(x[1]), x[0].encode()), reverse=True)
        out[q] = {d: float(len(order) - i) for i, (d, _) in enumerate(order)}
    return out


def ir_measures_values(qrels, run, name):
    ranked = trec_ranked(run)
    ev = pytrec_eval.RelevanceEvaluator(qrels, MEASURES)
    if ev.evaluate(ranked) != ev.evaluate(run):
        sys.exit(f"{name}: re-scoring by trec_eval rank changed pytrec_eval values")
    out = {}
    for provider, measures in ((ir_measures.judged, JUDGED), (ir_measures.msmarco, RR_CUT)):
        for m in provider.evaluator(measures, qrels).iter_calc(ranked):
            out.setdefault(m.query_id, {})[str(m.measure)] = m.value
        raw = {(m.query_id, str(m.measure)): m.value
               for m in provider.evaluator(measures, qrels).iter_calc(run)}
        moved = sum(raw[k] != out[k[0]][k[1]] for k in raw)
        print(f"{name}: {moved} {provider.NAME} values differ in ir_measures' own tie order",
              file=sys.stderr)
    return out


def main():
    make_random()
    GOLD.mkdir(exist_ok=True)
    trec_eval = os.environ.get("TREC_EVAL")
    for qrels_path in sorted(FIX.glob("*.qrels")):
        name = qrels_path.stem
        run_path = FIX / f"{name}.run"
        ev = pytrec_eval.RelevanceEvaluator(read_qrels(qrels_path), MEASURES)
        res = ev.evaluate(read_run(run_path))
        (GOLD / f"{name}.pytrec_eval.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        irm = ir_measures_values(read_qrels(qrels_path), read_run(run_path), name)
        (GOLD / f"{name}.ir_measures.json").write_text(json.dumps(irm, indent=1, sort_keys=True) + "\n")
        if trec_eval:
            for tag, flags in FLAGS.items():
                out = subprocess.run(
                    [trec_eval, *flags, *TREC_M, str(qrels_path), str(run_path)],
                    check=True, capture_output=True, text=True,
                ).stdout
                (GOLD / f"{name}.{tag}.trec_eval.txt").write_text(out)
        print(f"{name}: {len(res)} queries", file=sys.stderr)


if __name__ == "__main__":
    main()
