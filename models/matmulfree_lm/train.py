"""Train the MatMul-free character LM on Shakespeare and export ``weights.h5``.

    pip install -e '.[train]'                      # torch 2.13, CPU
    python models/matmulfree_lm/train.py            # 480 s of training on 2 threads
    python models/matmulfree_lm/train.py --steps 2000   # a fixed number of steps instead

The model is the released MatMul-free LM (ridgerchu/matmulfreellm, ``HGRNBitForCausalLM``)
at character scale: float embedding -> ``N_LAYERS`` blocks of [RMSNorm -> MLGRU (BitLinear
i, f, g, o) -> residual; RMSNorm -> GLU (BitLinear gate d -> 2 I, down I -> d) -> residual]
-> RMSNorm -> BitLinear head. Every BitLinear normalises its input with its own gain,
quantises it per token to int8 (absmax) and its weights per tensor to {-1, 0, 1} (absmean),
with straight-through gradients: training is quantisation-aware throughout, and
``reference.py`` re-implements the same arithmetic in numpy.

Training: random windows of ``T`` + 1 characters of the ``train`` split (seeded), ``B`` per
step, cross-entropy, AdamW (betas 0.9/0.95, weight decay on the BitLinear weights only),
``WARMUP_STEPS`` of linear warm-up then a cosine to ``MIN_LR_RATIO`` of the peak, gradient
clipping at 1. With a wall-clock budget the cosine follows elapsed time and training stops
when the budget is spent; with ``--steps`` it follows the step count, which makes a run
repeatable. The MLGRU recurrence runs in a custom autograd function (a plain loop over time
without autograd, and its reverse in the backward pass), several times faster on 2 cores
than letting autograd record the loop.

Afterwards the script evaluates the ``test`` split exactly as ``reference.evaluate`` does
(state reset every ``reference.RESET_EVERY`` characters, all of the split), and writes the
weights, the config, the vocabulary, training facts, metrics and a golden set (a few test
sequences and the logits that the trained model, run in float64, gives for them).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
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
sys.path.insert(0, str(HERE))

import reference                                                 # noqa: E402
from neurosim import datasets                                    # noqa: E402

DATASET = "shakespeare"
D_MODEL = 128
N_LAYERS = 2
# the released code's I = 256 * ceil(int(d * 4 * 2/3) / 256) gives 512 at d = 128; we take the
# multiple of 32 nearest the unrounded int(d * 4 * 2/3) = 341 instead
INTERMEDIATE = 352
INIT_STD = 0.02
B, T = 32, 128
PEAK_LR = 6e-3            # of 3e-3 and 6e-3, the better after 400 steps (2.384 vs 2.366 bits/char)
MIN_LR_RATIO = 0.1
WARMUP_STEPS = 100
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.95)
GRAD_CLIP = 1.0
SEED = 0
BUDGET_S = 480.0
THREADS = 2
LOG_EVERY = 100
GOLDEN_STARTS = (0, 28_000, 57_000, 86_000)   # offsets in the test split
GOLDEN_CHARS = 64


# ---------------------------------------------------------------------------------------------
# BitLinear and its quantisers (formulas in reference.py)


def rms_norm(x: torch.Tensor, gain: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def fake_quantize_activations(x: torch.Tensor) -> torch.Tensor:
    """``codes / s_x`` of reference.quantize_activations, with a straight-through gradient."""
    s_x = reference.INT8_MAX / x.abs().amax(-1, keepdim=True).clamp(min=reference.ACT_MAX_MIN)
    q = (x * s_x).round().clamp(-reference.INT8_MAX - 1, reference.INT8_MAX) / s_x
    return x + (q - x).detach()


def weight_scale(w: torch.Tensor) -> torch.Tensor:
    # rounded to float32 as stored in weights.h5, so that a float64 copy of the model uses the same scale
    return w.abs().mean().clamp(min=reference.WEIGHT_MEAN_MIN).float().to(w.dtype)


def ternary(w: torch.Tensor) -> torch.Tensor:
    return (w / weight_scale(w)).round().clamp(-1, 1)


class BitLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int, std: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) * std)
        self.norm_gain = nn.Parameter(torch.ones(n_in))
        self.quantize_activations = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rms_norm(x, self.norm_gain, reference.BITLINEAR_EPS)
        if self.quantize_activations:
            x = fake_quantize_activations(x)
        w = self.weight
        w = w + (ternary(w) * weight_scale(w) - w).detach()
        return F.linear(x, w)


# ---------------------------------------------------------------------------------------------
# the model


class LinearScan(torch.autograd.Function):
    """``h_t = f_t h_{t-1} + i_t`` over the time axis 1, from ``h_0 = 0``."""

    @staticmethod
    def forward(ctx, i: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        h = torch.empty_like(i)
        state = torch.zeros_like(i[:, 0])
        for t in range(i.shape[1]):
            state = f[:, t] * state + i[:, t]
            h[:, t] = state
        ctx.save_for_backward(f, h)
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, h = ctx.saved_tensors
        grad_i = torch.empty_like(grad_h)
        carry = torch.zeros_like(grad_h[:, 0])
        for t in range(grad_h.shape[1] - 1, -1, -1):
            carry = grad_h[:, t] + carry
            grad_i[:, t] = carry
            carry = carry * f[:, t]
        grad_f = torch.zeros_like(grad_h)
        grad_f[:, 1:] = grad_i[:, 1:] * h[:, :-1]
        return grad_i, grad_f


class MLGRU(nn.Module):
    def __init__(self, d: int, out_std: float):
        super().__init__()
        self.i_proj, self.f_proj, self.g_proj = (BitLinear(d, d, INIT_STD) for _ in range(3))
        self.o_proj = BitLinear(d, d, out_std)
        self.g_norm = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor, lower_bound: torch.Tensor) -> torch.Tensor:
        f = lower_bound + (1 - lower_bound) * torch.sigmoid(self.f_proj(x))
        i = F.silu(self.i_proj(x)) * (1 - f)
        h = LinearScan.apply(i, f)
        return self.o_proj(rms_norm(self.g_proj(x), self.g_norm, reference.NORM_EPS) * F.silu(h))


class Block(nn.Module):
    def __init__(self, d: int, intermediate: int, out_std: float):
        super().__init__()
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.mlgru = MLGRU(d, out_std)
        self.mlp_norm = nn.Parameter(torch.ones(d))
        self.gate_proj = BitLinear(d, 2 * intermediate, INIT_STD)
        self.down_proj = BitLinear(intermediate, d, out_std)

    def forward(self, x: torch.Tensor, lower_bound: torch.Tensor) -> torch.Tensor:
        x = x + self.mlgru(rms_norm(x, self.attn_norm, reference.NORM_EPS), lower_bound)
        gate, up = self.gate_proj(rms_norm(x, self.mlp_norm, reference.NORM_EPS)).chunk(2, dim=-1)
        return x + self.down_proj(F.silu(gate) * up)


class MatMulFreeLM(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        out_std = INIT_STD / math.sqrt(2 * N_LAYERS)          # o_proj and down_proj, as released
        self.embedding = nn.Parameter(torch.randn(vocab_size, D_MODEL) * INIT_STD)
        self.blocks = nn.ModuleList(Block(D_MODEL, INTERMEDIATE, out_std) for _ in range(N_LAYERS))
        self.lower_bounds = nn.Parameter(torch.zeros(N_LAYERS, D_MODEL))
        self.final_norm = nn.Parameter(torch.ones(D_MODEL))
        self.head = BitLinear(D_MODEL, vocab_size, INIT_STD)

    def lower_bound(self) -> torch.Tensor:
        """HGRN's per-layer forget-gate floors, rising with depth; layer 0's is zero."""
        lb = self.lower_bounds.softmax(dim=0)
        lb = lb.cumsum(dim=0) - lb[0]
        return lb.float().to(lb.dtype)          # stored as float32, see weight_scale

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.embedding[codes]
        for block, lb in zip(self.blocks, self.lower_bound()):
            x = block(x, lb)
        return self.head(rms_norm(x, self.final_norm, reference.NORM_EPS))

    def set_activation_quantization(self, on: bool) -> None:
        for module in self.modules():
            if isinstance(module, BitLinear):
                module.quantize_activations = on


# ---------------------------------------------------------------------------------------------
# training and evaluation


def learning_rate(step: int, progress: float, peak: float) -> float:
    warmup = min(1.0, (step + 1) / WARMUP_STEPS)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return peak * warmup * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * cosine)


def optimizer_for(model: MatMulFreeLM, peak_lr: float) -> torch.optim.AdamW:
    decay = [m.weight for m in model.modules() if isinstance(m, BitLinear)]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
                             lr=peak_lr, betas=BETAS)


def train(model: MatMulFreeLM, codes: np.ndarray, budget_s: float, steps: int | None, peak_lr: float) -> dict:
    rng = np.random.default_rng(SEED)
    data = torch.from_numpy(codes.astype(np.int64))
    offsets = torch.arange(T + 1)
    opt = optimizer_for(model, peak_lr)
    start, step, running = time.perf_counter(), 0, 0.0
    while True:
        elapsed = time.perf_counter() - start
        progress = step / steps if steps else elapsed / budget_s
        if progress >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, progress, peak_lr)
        batch = data[torch.from_numpy(rng.integers(0, len(data) - T - 1, B))[:, None] + offsets]
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        step += 1
        running += loss.item()
        if step % LOG_EVERY == 0:
            print(f"step {step:5d}  {elapsed:6.0f} s  train {running / LOG_EVERY / math.log(2):.3f} bits/char  "
                  f"lr {opt.param_groups[0]['lr']:.2e}", flush=True)
            running = 0.0
    return {"steps": step, "train_wall_s": round(time.perf_counter() - start, 1)}


@torch.no_grad()
def evaluate(model: MatMulFreeLM, codes: np.ndarray, quantize_activations: bool) -> dict:
    """Bits per character and accuracy on the windows of reference.evaluate."""
    model.set_activation_quantization(quantize_activations)
    inputs, targets, valid = (torch.from_numpy(a) for a in reference.segments(codes))
    nll, correct = 0.0, 0
    for lo in range(0, len(inputs), 64):
        logits = model(inputs[lo:lo + 64])
        m = valid[lo:lo + 64]
        nll += F.cross_entropy(logits[m], targets[lo:lo + 64][m], reduction="sum").item()
        correct += (logits[m].argmax(-1) == targets[lo:lo + 64][m]).sum().item()
    model.set_activation_quantization(True)
    n = int(valid.sum())
    return {"bits_per_char": nll / n / math.log(2), "accuracy": correct / n, "chars": n}


# ---------------------------------------------------------------------------------------------
# export


def float64_copy(model: MatMulFreeLM) -> MatMulFreeLM:
    """The trained model in float64: what is exported, and what gives the golden logits.

    Its parameters equal the float32 ones; computing in float64 leaves the numpy reference
    (also float64) differing from it by summation order only, so no int8 code rounds the other
    way at a tie.
    """
    model64 = MatMulFreeLM(model.embedding.shape[0]).double()
    model64.load_state_dict(model.state_dict())
    return model64


def golden(model64: MatMulFreeLM, test_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A few test sequences and their logits (quantized, as trained)."""
    inputs = np.stack([test_codes[s:s + GOLDEN_CHARS] for s in GOLDEN_STARTS]).astype(np.uint8)
    with torch.no_grad():
        logits = model64(torch.from_numpy(inputs.astype(np.int64)))
    return inputs, logits.float().numpy()


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy()


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    group.create_dataset(name, data=data, compression="gzip", compression_opts=9, shuffle=True)


def _write_bitlinear(group: h5py.Group, layer: BitLinear) -> None:
    w = layer.weight.detach()
    _dataset(group, "weight_ternary", ternary(w).to(torch.int8).numpy())
    group.create_dataset("weight_scale", data=np.float32(weight_scale(w).item()))
    _dataset(group, "norm_gain", _array(layer.norm_gain))


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True)
    return result.stdout.strip()


def write_weights(path: Path, model: MatMulFreeLM, vocab: str, train_facts: dict, metrics: dict,
                  golden_set: tuple[np.ndarray, np.ndarray]) -> None:
    config = {"dataset": DATASET, "vocab_size": len(vocab), "d_model": D_MODEL, "n_layers": N_LAYERS,
              "intermediate": INTERMEDIATE, "norm_eps": reference.NORM_EPS,
              "bitlinear_eps": reference.BITLINEAR_EPS, "reset_every": reference.RESET_EVERY}
    with torch.no_grad(), h5py.File(path, "w") as h5:
        h5.attrs["format_version"] = 1
        h5.attrs["model"] = "matmulfree_lm"
        h5.attrs["config"] = json.dumps(config)
        h5.attrs["vocab"] = json.dumps(vocab)
        h5.attrs["train"] = json.dumps(train_facts)
        h5.attrs["metrics"] = json.dumps(metrics)
        _dataset(h5, "embedding", _array(model.embedding))
        lower_bound = _array(model.lower_bound())
        for n, block in enumerate(model.blocks):
            g = h5.create_group(f"blocks/{n}")
            _dataset(g, "attn_norm", _array(block.attn_norm))
            _dataset(g, "g_norm", _array(block.mlgru.g_norm))
            _dataset(g, "lower_bound", lower_bound[n])
            _dataset(g, "mlp_norm", _array(block.mlp_norm))
            for name in ("i_proj", "f_proj", "g_proj", "o_proj"):
                _write_bitlinear(g.create_group(name), getattr(block.mlgru, name))
            _write_bitlinear(g.create_group("gate_proj"), block.gate_proj)
            _write_bitlinear(g.create_group("down_proj"), block.down_proj)
        _dataset(h5, "final_norm", _array(model.final_norm))
        _write_bitlinear(h5.create_group("head"), model.head)
        inputs, logits = golden_set
        _dataset(h5, "golden/inputs", inputs)
        _dataset(h5, "golden/logits", logits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="wall-clock training budget (s)")
    parser.add_argument("--steps", type=int, default=None, help="train this many steps instead of a budget")
    parser.add_argument("--lr", type=float, default=PEAK_LR, help="peak learning rate")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--out", type=Path, default=reference.WEIGHTS)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    train_set, test_set = datasets.load_text(DATASET, "train"), datasets.load_text(DATASET, "test")
    model = MatMulFreeLM(len(train_set.vocab))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters, vocabulary {len(train_set.vocab)}, train {len(train_set.codes)} chars", flush=True)

    facts = train(model, train_set.codes, args.budget_s, args.steps, args.lr)
    facts |= {"dataset": DATASET, "split": "train", "seed": SEED, "batch": B, "seq_len": T, "peak_lr": args.lr,
              "budget_s": None if args.steps else args.budget_s, "threads": args.threads,
              "parameters": n_params, "torch": torch.__version__, "git_commit": git_commit()}
    metrics = {"test_quantized": evaluate(model, test_set.codes, True),
               "test_float_activations": evaluate(model, test_set.codes, False),
               "reset_every": reference.RESET_EVERY}
    print(json.dumps(facts), json.dumps(metrics), sep="\n", flush=True)
    model64 = float64_copy(model)
    write_weights(args.out, model64, train_set.vocab, facts, metrics, golden(model64, test_set.codes))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
