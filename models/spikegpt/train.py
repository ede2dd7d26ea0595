"""Train a small SpikeGPT on the Shakespeare text and export ``weights.h5``.

    pip install -e '.[train]'                   # torch 2.13, CPU
    python models/spikegpt/train.py             # 420 s of training on 2 threads (--budget-s, --steps)

SpikeGPT (Zhu, Zhao, Li, Eshraghian, "SpikeGPT: Generative Pre-trained Language Model with
Spiking Neural Networks", TMLR 2024; the ridgerchu/SpikeGPT code) at d = 128 and 2 layers,
character level. Per token (one token is one timestep of the LIF neurons)::

    x   = H(E[token])                              binary embedding (ATan surrogate gradient)
    per block:
      a = LN1(x); a' = a of the previous token     token shift
      k = Wk (a mk + a' (1-mk)); v = Wv (a mv + a' (1-mv)); r = Wr (a mr + a' (1-mr))
      wkv = WKV(k, v)                              RWKV-4 with per-channel decay w and bonus u
      x = x + LIF(Wo (sigmoid(r) * wkv))           spiking RWKV token mixer
      b = LN2(x); b' of the previous token
      k = relu(Wk2 (b mk2 + b' (1-mk2)))^2;  r = sigmoid(Wr2 (b mr2 + b' (1-mr2)))
      x = x + LIF(r * (Wv2 k))                     spiking receptance FFN
    logits = Wh LN_out(x)

    WKV:   wkv_t = (A + e^(u + k_t) v_t) / (B + e^(u + k_t));  A = e^(-e^w) A + e^(k_t) v_t,
           B = e^(-e^w) B + e^(k_t)                (kept in the stable form with a running max)
    LIF:   V = V + (X - V) / 2;  spike where V >= 1, then V = 0        (spikingjelly, tau = 2)

Unlike the released code there is no LayerNorm on the embedding (LN0), so the residual stream
is a count of spikes, an integer per channel. Training: random windows of 129 characters of the
`train` split, B = 32, T = 128, AdamW (0.9, 0.99), peak lr 3e-3, warm-up then cosine, gradient
clipping at 1, seed 0. The script writes ``weights.h5`` with golden logits of a few test windows,
and prints the bits per character of the `test` split.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from neurosim import datasets                        # noqa: E402
from neurosim.zoo.spikegpt import model as reference       # noqa: E402

D, LAYERS, FFN = 128, 2, 512
B, T = 32, 128
SEED = 0
PEAK_LR = 3e-3
WARMUP = 100
GRAD_CLIP = 1.0
LOG_EVERY = 50
GOLDEN_STARTS = (0, 5000, 20000)
GOLDEN_CHARS = 48


class Spike(torch.autograd.Function):
    """Heaviside forward (x >= 0), ATan surrogate backward (alpha = 2), as spikingjelly's."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        alpha = 2.0
        return grad * alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2)


def lif(x: torch.Tensor) -> torch.Tensor:
    """x [batch, time, d] -> spikes, the LIF run along time (tau 2, threshold 1, hard reset to 0)."""
    v = torch.zeros_like(x[:, 0])
    out = []
    for t in range(x.shape[1]):
        v = v + (x[:, t] - v) / 2
        s = Spike.apply(v - 1.0)
        out.append(s)
        v = v * (1 - s)
    return torch.stack(out, dim=1)


def wkv(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """RWKV-4's WKV over time in the stable form (running max p); w is the log decay (negative)."""
    batch, steps, d = k.shape
    a = torch.zeros(batch, d, dtype=k.dtype)
    b = torch.zeros(batch, d, dtype=k.dtype)
    p = torch.full((batch, d), -1e38, dtype=k.dtype)
    out = []
    for t in range(steps):
        kt, vt = k[:, t], v[:, t]
        q = torch.maximum(p, u + kt)
        e1, e2 = torch.exp(p - q), torch.exp(u + kt - q)
        out.append((e1 * a + e2 * vt) / (e1 * b + e2))
        q = torch.maximum(p + w, kt)
        e1, e2 = torch.exp(p + w - q), torch.exp(kt - q)
        a, b, p = e1 * a + e2 * vt, e1 * b + e2, q
    return torch.stack(out, dim=1)


def shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, -1))


class Block(nn.Module):
    def __init__(self, layer: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        ratio = layer / max(LAYERS - 1, 1)
        ramp = torch.arange(D) / D
        self.mix_k = nn.Parameter(ramp ** (1 - 0.5 * ratio))
        self.mix_v = nn.Parameter(ramp ** (1 - 0.5 * ratio) + 0.3 * ratio)
        self.mix_r = nn.Parameter(ramp ** (0.5 * (1 - 0.5 * ratio)))
        self.time_decay = nn.Parameter(-5 + 8 * (torch.arange(D) / (D - 1)) ** (0.7 + 1.3 * ratio))
        self.time_first = nn.Parameter(torch.full((D,), math.log(0.3)) + 0.5 * ((torch.arange(D) + 1) % 3 - 1))
        self.key, self.value, self.receptance, self.output = (nn.Linear(D, D, bias=False) for _ in range(4))
        self.ffn_mix_k = nn.Parameter(ramp ** (1 - ratio))
        self.ffn_mix_r = nn.Parameter(ramp ** (1 - ratio))
        self.ffn_key, self.ffn_value = nn.Linear(D, FFN, bias=False), nn.Linear(FFN, D, bias=False)
        self.ffn_receptance = nn.Linear(D, D, bias=False)

    def forward(self, x):
        a = self.ln1(x)
        prev = shift(a)
        k = self.key(a * self.mix_k + prev * (1 - self.mix_k))
        v = self.value(a * self.mix_v + prev * (1 - self.mix_v))
        r = self.receptance(a * self.mix_r + prev * (1 - self.mix_r))
        w = -torch.exp(self.time_decay)
        att = lif(self.output(torch.sigmoid(r) * wkv(w, self.time_first, k, v)))
        x = x + att
        b = self.ln2(x)
        prev = shift(b)
        k = torch.square(torch.relu(self.ffn_key(b * self.ffn_mix_k + prev * (1 - self.ffn_mix_k))))
        r = torch.sigmoid(self.ffn_receptance(b * self.ffn_mix_r + prev * (1 - self.ffn_mix_r)))
        ffn = lif(r * self.ffn_value(k))
        return x + ffn, (att, ffn)


class SpikeGPT(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, D)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.3)
        self.blocks = nn.ModuleList(Block(n) for n in range(LAYERS))
        self.ln_out = nn.LayerNorm(D)
        self.head = nn.Linear(D, vocab, bias=False)

    def forward(self, idx):
        x = Spike.apply(self.embedding(idx))
        spikes = []
        for block in self.blocks:
            x, s = block(x)
            spikes += list(s)
        return self.head(self.ln_out(x)), spikes


def learning_rate(step: int, progress: float) -> float:
    if step < WARMUP:
        return PEAK_LR * (step + 1) / WARMUP
    return PEAK_LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


@torch.no_grad()
def evaluate(model: SpikeGPT, codes: np.ndarray) -> dict:
    inputs, targets, valid = (torch.from_numpy(a) for a in datasets.text_segments(codes, reference.RESET_EVERY))
    nll, correct, rates = 0.0, 0, torch.zeros(2 * LAYERS, dtype=torch.float64)
    for lo in range(0, len(inputs), 64):
        logits, spikes = model(inputs[lo:lo + 64])
        m = valid[lo:lo + 64]
        nll += F.cross_entropy(logits[m], targets[lo:lo + 64][m], reduction="sum").item()
        correct += (logits[m].argmax(-1) == targets[lo:lo + 64][m]).sum().item()
        rates += torch.stack([s[m].sum() for s in spikes]).double()
    n = int(valid.sum())
    return {"bits_per_char": nll / n / math.log(2), "accuracy": correct / n,
            "spike_rate": [float(r) / (n * D) for r in rates], "chars": n}


def export(model: SpikeGPT, vocab: str, facts: dict, metrics: dict, test_codes: np.ndarray) -> Path:
    path = HERE / "weights.h5"
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    with h5py.File(path, "w") as h5:
        h5.attrs["format_version"] = 1
        h5.attrs["model"] = "spikegpt"
        h5.attrs["vocab"] = json.dumps(vocab)
        h5.attrs["config"] = json.dumps({"dataset": "shakespeare", "d": D, "layers": LAYERS, "ffn": FFN,
                                         "reset_every": reference.RESET_EVERY})
        h5.attrs["train"] = json.dumps(facts)
        h5.attrs["metrics"] = json.dumps(metrics)
        for name, value in sd.items():
            h5.create_dataset(name.replace(".", "/"), data=value, compression="gzip", shuffle=True)
        inputs = np.stack([test_codes[s:s + GOLDEN_CHARS] for s in GOLDEN_STARTS]).astype(np.uint8)
        with torch.no_grad():
            logits, _ = model(torch.from_numpy(inputs.astype(np.int64)))
        h5.create_dataset("golden/inputs", data=inputs)
        h5.create_dataset("golden/logits", data=logits.numpy().astype(np.float32))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    train_text, test_text = datasets.load_text("shakespeare", "train"), datasets.load_text("shakespeare", "test")
    model = SpikeGPT(len(train_text.vocab))
    decay = [p for n, p in model.named_parameters() if p.ndim == 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim == 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=PEAK_LR, betas=(0.9, 0.99))
    rng = np.random.default_rng(SEED)
    data = torch.from_numpy(train_text.codes.astype(np.int64))
    offsets = torch.arange(T + 1)
    step, trained, running = 0, 0.0, 0.0
    wall = time.time()
    while True:
        progress = step / args.steps if args.steps else trained / args.budget_s
        if progress >= 1:
            break
        start = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, progress)
        batch = data[torch.from_numpy(rng.integers(0, len(data) - T - 1, B))[:, None] + offsets]
        logits, _ = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        trained += time.perf_counter() - start
        step += 1
        running += loss.item()
        if step % LOG_EVERY == 0:
            print(f"step {step:5d}  {trained:6.0f} s  train {running / LOG_EVERY / math.log(2):.3f} bits/char",
                  flush=True)
            running = 0.0
    metrics = {"test": evaluate(model, test_text.codes)}
    facts = {"steps": step, "train_wall_s": round(trained, 1), "total_wall_s": round(time.time() - wall, 1),
             "seed": SEED, "batch": B, "seq_len": T, "peak_lr": PEAK_LR, "threads": args.threads,
             "parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__}
    path = export(model, train_text.vocab, facts, metrics, test_text.codes)
    print(json.dumps(metrics), flush=True)
    print(f"wrote {path}: {facts['parameters']} parameters, {step} steps")


if __name__ == "__main__":
    main()
