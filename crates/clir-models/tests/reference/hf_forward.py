#!/usr/bin/env python3
"""Independent float64 forward of an exported Hugging Face folder (clir-models' tests/export.rs).

Reads DIR/model.safetensors with the `safetensors` package (`safetensors.numpy.load_file`),
DIR/config.json, DIR/1_Pooling/config.json and DIR/modules.json; runs `bert_forward` of
make_fixtures.py on every token-id sequence of IDS_JSON (a JSON list of unpadded id lists),
with XLM-R's position offset (pad_token_id + 1) when model_type is xlm-roberta; pools (mean or
the first token) and L2-normalises when modules.json lists a Normalize module. Prints a JSON
list of the embeddings. Exits with status 3 when numpy or safetensors is not installed.

Usage: python3 hf_forward.py DIR IDS_JSON
"""
import json
import os
import sys

try:
    import numpy as np
    from safetensors.numpy import load_file
except ImportError as e:  # pragma: no cover
    print("missing Python package: %s" % e, file=sys.stderr)
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import bert_forward  # noqa: E402


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main():
    folder, ids_path = sys.argv[1], sys.argv[2]
    cfg = read_json(os.path.join(folder, "config.json"))
    W = {k: v.astype(np.float64) for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    offset = cfg["pad_token_id"] + 1 if cfg["model_type"] == "xlm-roberta" else 0
    pooling = read_json(os.path.join(folder, "1_Pooling", "config.json"))
    modules = read_json(os.path.join(folder, "modules.json"))
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    out = []
    for ids in read_json(ids_path):
        h = bert_forward(W, cfg, ids, position_offset=offset)
        if pooling["pooling_mode_cls_token"]:
            e = h[0]
        elif pooling["pooling_mode_mean_tokens"]:
            e = h.mean(0)
        else:
            sys.exit("unsupported pooling in %s" % folder)
        if normalize:
            e = e / max(np.linalg.norm(e), 1e-12)
        out.append([float(x) for x in e])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
