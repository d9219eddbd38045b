#!/usr/bin/env python3
"""PyTorch reference for `cargo xtask bench train --synthetic`.

The same work as our synthetic benchmark, written plainly in PyTorch, eager and
`torch.compile`d:

* a random BERT-style post-LayerNorm encoder of e5-small's shape (12 layers, width 384, FFN
  1536, 12 heads, exact GELU, 512 positions, 250,002-token vocabulary by default), word +
  position + type embeddings, LayerNorm;
* made-up sentences whose token lengths (specials included) are drawn from the committed Bible
  histogram (`crates/clir-models/src/synthetic_lengths.tsv`, `--lengths`), words uniform over
  ids 4..V-1, `[CLS]` = 2 and `[SEP]` = 3 around them, cut to `--max-len` for training;
* batches as our length bucketing makes them for a run this short: the pairs sorted by the
  translation's length, cut into `--steps` batches, the batches shuffled (seeded); every
  batch runs once untimed (warm-up: each shape seen, compiled in compile mode), then all are
  timed (as ours without `--cold`);
* the embeddings and the lowest `--freeze-layers` layers frozen (run under `no_grad`, as our
  run with the prefix cache off), the layers above trained with AdamW (lr 2e-5, weight decay
  0.01, eps 1e-8) and per-tensor gradient clipping at L2 norm 1 (our `optim.grad_clip`);
* OPTICAL step: the teacher's (a frozen copy: same weights) last-layer token states of the
  English, computed once before the steps, without `[CLS]`/`[SEP]`; the cost
  C = 1 - cos(teacher token, student token); balanced entropic OT with uniform marginals over
  the content tokens, epsilon = 0.1 x each item's mean cost, log-domain Sinkhorn, at most 1000
  iterations, stopping when ||P1 - a||_1 <= 1e-5 (checked every 10 iterations), the plan held
  constant in the gradient (envelope); loss = batch mean of <P, C>;
* MSE step (make_multilingual, two terms): the teacher's mean-pooled, L2-normalised sentence
  embedding of the English, computed once; loss = MSE(teacher(en), student(translation)) +
  MSE(teacher(en), student(en));
* encoding: the model in inference mode on `--encode-sentences` sentences (up to 512 tokens),
  batches of similar length, mean pooling, L2 normalisation, vectors copied to the host.

It prints steps/s (sentences/s for encoding), tokens/s (padding excluded) and achieved FLOP/s
with the same analytic count as ours: per layer and sentence of n tokens
F(n) = 2n(4d^2 + 2d*ffn) + 4n^2 d; a training step = sum over the student's sentences of
[k F(n) + 3 (N - k) F(n)]; encoding = N F(n). With `--json FILE` the rows are also written
for `cargo xtask bench train --synthetic --torch-reference PYTHON`, which prints them beside
ours. Without torch it says so and exits with status 3.

    python3 torch_reference.py --device cuda --lengths crates/clir-models/src/synthetic_lengths.tsv
"""

import argparse
import json
import math
import random
import sys
import time

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:
    print(f"torch is not installed for {sys.executable}", file=sys.stderr)
    sys.exit(3)

CLS, SEP, PAD, FIRST_WORD = 2, 3, 0, 4


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda if present)")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--ffn", type=int, default=1536)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--positions", type=int, default=512)
    p.add_argument("--vocab-size", type=int, default=250002)
    p.add_argument("--freeze-layers", type=int, default=8)
    p.add_argument("--max-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=5, help="timed steps (after warm-up)")
    p.add_argument("--batch-sizes", default="16,64,256")
    p.add_argument("--encode-batches", default="32,256")
    p.add_argument("--encode-sentences", type=int, default=1024)
    p.add_argument("--methods", default="optical,mse")
    p.add_argument("--matmul-size", type=int, default=1024)
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--lengths", required=True, help="synthetic_lengths.tsv")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args()


def ints(text):
    return [int(x) for x in text.split(",") if x.strip()]


def load_lengths(path):
    sides = {"target": ([], []), "english": ([], [])}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            side, length, count = line.split("\t")
            sides[side][0].append(int(length))
            sides[side][1].append(int(count))
    return sides


def sentence(rng, hist, vocab):
    n = rng.choices(hist[0], weights=hist[1])[0]
    return [CLS] + [rng.randrange(FIRST_WORD, vocab) for _ in range(max(n - 2, 1))] + [SEP]


def make_pairs(n, lengths, vocab, seed):
    rng = random.Random(seed)
    return [
        (sentence(rng, lengths["english"], vocab), sentence(rng, lengths["target"], vocab))
        for _ in range(n)
    ]


def cut(ids, max_len):
    return ids if len(ids) <= max_len else ids[: max_len - 1] + [SEP]


def pad(seqs, device):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    mask = torch.zeros(len(seqs), width)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def content(mask, seqs):
    """The mask without [CLS] and [SEP] (the OT marginals' support)."""
    m = mask.clone()
    m[:, 0] = 0
    for i, s in enumerate(seqs):
        m[i, len(s) - 1] = 0
    return m


class Layer(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
        self.f1, self.f2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def forward(self, x, bias):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)
        a = F.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=bias
        )
        x = self.ln1(x + self.o(a.transpose(1, 2).reshape(b, n, d)))
        return self.ln2(x + self.f2(F.gelu(self.f1(x))))


class Encoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        d = a.hidden
        self.word = nn.Embedding(a.vocab_size, d)
        self.pos = nn.Embedding(a.positions, d)
        self.typ = nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=1e-5)
        self.layers = nn.ModuleList(Layer(d, a.heads, a.ffn) for _ in range(a.layers))

    def embed(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.ln(self.word(ids) + self.pos(pos)[None] + self.typ.weight[0])

    def run(self, h, mask, lo, hi):
        bias = ((mask - 1.0) * 1e9)[:, None, None, :]
        for layer in self.layers[lo:hi]:
            h = layer(h, bias)
        return h


def functions(model, mode, frozen):
    """`(embed, low, high)`: the embeddings, the layers below `frozen` and those above,
    each compiled (dynamic shapes) in mode `compile`."""
    fns = (
        model.embed,
        lambda h, mask: model.run(h, mask, 0, frozen),
        lambda h, mask: model.run(h, mask, frozen, len(model.layers)),
    )
    if mode == "compile":
        fns = tuple(torch.compile(f, dynamic=True) for f in fns)
    return fns


def states(fns, ids, mask):
    """Last-layer states; the embeddings and the frozen layers without gradient."""
    embed, low, high = fns
    with torch.no_grad():
        h = low(embed(ids), mask)
    return high(h, mask)


def pooled(h, mask):
    e = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return F.normalize(e, dim=-1)


def sinkhorn_plan(cost, a, b):
    """Balanced log-domain Sinkhorn, eps = 0.1 x mean valid cost per item; no gradient."""
    with torch.no_grad():
        valid = (a[:, :, None] > 0) & (b[:, None, :] > 0)
        mean = (cost * valid).sum((1, 2)) / valid.sum((1, 2))
        eps = (0.1 * mean).clamp_min(1e-12)[:, None, None]
        big = torch.finfo(cost.dtype).max / 4
        c = torch.where(valid, cost, torch.full_like(cost, big))
        log_a = torch.where(a > 0, a.log(), torch.full_like(a, -big))
        log_b = torch.where(b > 0, b.log(), torch.full_like(b, -big))
        f, g = torch.zeros_like(a), torch.zeros_like(b)
        for it in range(1, 1001):
            f = -eps[..., 0] * torch.logsumexp(log_b[:, None, :] + (g[:, None, :] - c) / eps, 2)
            f = torch.where(a > 0, f, torch.zeros_like(f))
            g = -eps[:, 0] * torch.logsumexp(log_a[:, :, None] + (f[:, :, None] - c) / eps, 1)
            g = torch.where(b > 0, g, torch.zeros_like(g))
            if it % 10 == 0:
                p = torch.exp(log_a[:, :, None] + log_b[:, None, :] + (f[:, :, None] + g[:, None, :] - c) / eps)
                if float((p.sum(2) - a).abs().sum(1).max()) <= 1e-5:
                    break
        return torch.exp(log_a[:, :, None] + log_b[:, None, :] + (f[:, :, None] + g[:, None, :] - c) / eps)


class Trainer:
    """One method at one batch size: the batches, the teacher targets and the steps."""

    def __init__(self, a, method, batch, device, teacher):
        self.a, self.method, self.device = a, method, device
        pairs = make_pairs(batch * a.steps, a.lengths, a.vocab_size, batch)
        pairs = [(cut(en, a.max_len), cut(tgt, a.max_len)) for en, tgt in pairs]
        pairs.sort(key=lambda p: len(p[1]))
        self.batches = [pairs[i : i + batch] for i in range(0, len(pairs), batch)]
        random.Random(a.seed).shuffle(self.batches)
        self.targets = [self.teacher_targets(teacher, b) for b in self.batches]

    def teacher_targets(self, teacher, batch):
        en = [p[0] for p in batch]
        ids, mask = pad(en, self.device)
        with torch.no_grad():
            h = teacher.run(teacher.embed(ids), mask, 0, len(teacher.layers))
        if self.method == "mse":
            return pooled(h, mask)
        t_mask = content(mask, en)
        return F.normalize(h, dim=-1), t_mask / t_mask.sum(1, keepdim=True)

    def loss(self, fns, i):
        batch, target = self.batches[i], self.targets[i]
        tgt = [p[1] for p in batch]
        ids, mask = pad(tgt, self.device)
        h = states(fns, ids, mask)
        tokens = int(mask.sum())
        if self.method == "mse":
            en = [p[0] for p in batch]
            e_ids, e_mask = pad(en, self.device)
            s_en = pooled(states(fns, e_ids, e_mask), e_mask)
            loss = F.mse_loss(pooled(h, mask), target) + F.mse_loss(s_en, target)
            return loss, tokens + int(e_mask.sum())
        t_states, a_mass = target
        s_mask = content(mask, tgt)
        cost = 1 - t_states @ F.normalize(h, dim=-1).transpose(1, 2)
        plan = sinkhorn_plan(cost.detach(), a_mass, s_mask / s_mask.sum(1, keepdim=True))
        return (plan * cost).sum((1, 2)).mean(), tokens


def clip_per_tensor(params, max_norm=1.0):
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch._foreach_norm(grads)
    scales = [torch.clamp(max_norm / (n + 1e-6), max=1.0) for n in norms]
    torch._foreach_mul_(grads, scales)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(a, model, teacher, method, batch, mode, device):
    """(steps/s, tokens/s, FLOP/s) of `a.steps` timed steps after warm-up."""
    t = Trainer(a, method, batch, device, teacher)
    params = [p for l in model.layers[a.freeze_layers :] for p in l.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01, eps=1e-8)
    fns = functions(model, mode, a.freeze_layers)

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss, tokens = t.loss(fns, i)
        loss.backward()
        clip_per_tensor(params)
        opt.step()
        return tokens

    # Warm-up: every batch once (each shape seen; compiled in compile mode).
    for i in range(len(t.batches)):
        step(i)
    sync(device)
    t0 = time.perf_counter()
    tokens = sum(step(i) for i in range(len(t.batches)))
    sync(device)
    secs = time.perf_counter() - t0
    steps = len(t.batches)
    sentences = [s for b in t.batches for p in b for s in (p if method == "mse" else p[1:])]
    flops = sum(train_flops(a, len(s)) for s in sentences)
    return steps / secs, tokens / secs, flops / secs


def layer_flops(a, n):
    d, f = a.hidden, a.ffn
    return 2 * n * (4 * d * d + 2 * d * f) + 4 * n * n * d


def train_flops(a, n):
    k = min(a.freeze_layers, a.layers)
    return layer_flops(a, n) * (k + 3 * (a.layers - k))


def bench_encode(a, model, batch, mode, device):
    """(sentences/s, tokens/s, FLOP/s) of encoding, batches of similar length."""
    rng = random.Random(7)
    docs = [cut(sentence(rng, a.lengths["target"], a.vocab_size), a.positions) for _ in range(a.encode_sentences)]
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
    chunks = [[docs[i] for i in order[j : j + batch]] for j in range(0, len(docs), batch)]
    embed, low, high = functions(model, mode, a.freeze_layers)

    def encode(chunk):
        ids, mask = pad(chunk, device)
        with torch.inference_mode():
            h = high(low(embed(ids), mask), mask)
            return pooled(h, mask).cpu()

    for chunk in chunks:  # warm-up: every shape once
        encode(chunk)
    sync(device)
    t0 = time.perf_counter()
    for chunk in chunks:
        encode(chunk)
    secs = time.perf_counter() - t0
    tokens = sum(len(d) for d in docs)
    flops = sum(layer_flops(a, len(d)) * a.layers for d in docs)
    return len(docs) / secs, tokens / secs, flops / secs


def matmul_gflops(n, device):
    x, y = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    (x @ y).sum().item()
    reps, t0 = 0, time.perf_counter()
    while reps < 4 or (time.perf_counter() - t0 < 1.0 and reps < 1000):
        acc = x @ y
        for _ in range(3):
            acc = acc + x @ y
        acc[0, 0].item()
        reps += 4
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main():
    a = parse_args()
    a.lengths = load_lengths(a.lengths)
    want = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(want)
    torch.manual_seed(a.seed)
    model = Encoder(a).to(device)
    # The teacher: a frozen copy (the same weights, as ours reads the same model twice).
    teacher = Encoder(a).to(device)
    teacher.load_state_dict(model.state_dict())
    teacher.requires_grad_(False)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    report = {"device": f"torch {torch.__version__} on {name}", "notes": [], "rows": []}
    if a.matmul_size > 0:
        report["matmul_gflops"] = matmul_gflops(a.matmul_size, device)
    modes = [m for m in a.modes.split(",") if m]
    for mode in modes:
        try:
            for method in a.methods.split(","):
                for batch in ints(a.batch_sizes):
                    r = bench_train(a, model, teacher, method, batch, mode, device)
                    report["rows"].append(row(mode, "train", method, batch, r))
            for batch in ints(a.encode_batches):
                r = bench_encode(a, model, batch, mode, device)
                report["rows"].append(row(mode, "encode", "", batch, r))
        except Exception as e:  # torch.compile may be unavailable (no compiler, old torch)
            if mode != "compile":
                raise
            report["notes"].append(f"torch.compile skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    print_report(report, a)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(report, f)


def row(mode, kind, method, batch, r):
    return {"mode": mode, "kind": kind, "method": method, "batch": batch,
            "per_s": r[0], "tokens_per_s": r[1], "flops_per_s": r[2]}


def print_report(report, a):
    print(f"torch reference: {report['device']}; {a.steps} timed steps, embeddings + "
          f"{a.freeze_layers} layers frozen, max_len {a.max_len}")
    for note in report["notes"]:
        print(f"  {note}")
    if "matmul_gflops" in report:
        n = a.matmul_size
        print(f"  matmul peak: {report['matmul_gflops']:.1f} GFLOP/s (f32 {n}x{n} @ {n}x{n})")
    print(f"{'mode':<8} {'kind':<7} {'method':<8} {'batch':>6} {'per s':>10} {'tokens/s':>12} {'GFLOP/s':>10}")
    for r in report["rows"]:
        print(f"{r['mode']:<8} {r['kind']:<7} {r['method'] or '-':<8} {r['batch']:>6} "
              f"{r['per_s']:>10.3f} {r['tokens_per_s']:>12.1f} {r['flops_per_s'] / 1e9:>10.2f}")


if __name__ == "__main__":
    main()
