"""Encode texts with the real sentence-transformers package from an exported folder.

Usage: st_encode.py FOLDER KIND TEXTS_FILE
Prints JSON: {"prompt": the prompt used for KIND ("" when the folder has none),
"embeddings": one list of floats per line of TEXTS_FILE}. Used by xtask/tests/train_cli.rs
when OPTICAL_ST_PYTHON names a Python with sentence-transformers.
"""

import json
import sys

from sentence_transformers import SentenceTransformer

folder, kind, texts_file = sys.argv[1:4]
model = SentenceTransformer(folder, device="cpu")
with open(texts_file, encoding="utf-8") as f:
    texts = [line.rstrip("\n") for line in f]
prompt = model.prompts.get(kind) or ""
vectors = model.encode(texts, prompt=prompt, convert_to_numpy=True)
json.dump({"prompt": prompt, "embeddings": vectors.astype("float64").tolist()}, sys.stdout)
