"""Train the EGRU character LM on Shakespeare, prune it, and export ``weights.h5``.

    pip install -e '.[train]'                      # torch 2.13, CPU
    python models/egru_lm/train.py                  # 480 s of training on 2 threads
    python models/egru_lm/train.py --steps 3000     # a fixed number of steps instead (repeatable)
    python models/egru_lm/train.py --check-gradients  # the custom backward against autograd, then exit

The model is an event-based GRU (Subramoney et al., ICLR 2023; the EvNN code's ``EGRUScript``,
written out in neurosim/zoo/egru/model.py): embedding V -> E, ``N_LAYERS`` EGRU layers of ``H``
units, a linear readout H -> V. Per layer and character, gates z, r, g in that order along the
3H axis, ``W`` [n_in, 3H] and ``R`` [H, 3H]::

    a   = x_t W + b                       R_t = y_{t-1} R + b_R
    u_t = σ(a_z + R_z)                    r_t = σ(a_r + R_r)
    g_t = tanh(a_g + r_t ⊙ R_g)
    c̃_t = u_t ⊙ c_{t-1} + (1 - u_t) ⊙ g_t
    e_t = H(c̃_t - ϑ)                      event where c̃ > ϑ; ϑ [H] learnt, one per unit
    y_t = e_t ⊙ c̃_t                       the graded event: what the unit sends on
    c_t = c̃_t - e_t ⊙ ϑ                   reset by subtraction
    logits_t = y_t Wo + bo                (top layer; a layer's input x_t is the layer below's y_t)

The recurrent input is the *event output* ``y``, so a silent unit contributes nothing. In the
backward pass the step function H has the pseudo-derivative of EvNN,
``∂e/∂c̃ = γ · max(0, 1 - ε |c̃ - ϑ|)`` with γ = ``DAMPENING`` 0.7 and ε = ``SUPPORT`` 1.0, and
the gradient flows through y, the reset and ϑ. Thresholds start from Beta(α, 3) with mean
``THR_MEAN`` and are clamped to ``ϑ ≥ THR_MIN = 0`` after every step (EvNN leaves them free). The
bound keeps the neuron in range for fixed point: with ϑ ≥ 0, |c| < 1 at all times and an event
carries a value in (ϑ, 1). Left free, a threshold can go negative, and then the "reset"
``c - ϑ`` adds to c on every step: in a first 480 s run (2.152 bits/char) 184 of 256 thresholds
went negative (down to -1.98), the state reached 7.8, and some events were negative.

The recurrence runs in a custom autograd function (a loop over time without autograd and its
reverse by hand): 0.09 s per step on 2 threads, against 0.49 s for the autograd loop of
models.md §7. ``--check-gradients`` compares it with autograd on the equations above.

Loss: cross-entropy + ``λ · mean(e)`` (``RATE_PENALTY``, the mean over units, steps and batch),
an activity regulariser that trades bits per character for fewer events.

Training: random windows of ``T`` + 1 characters of the ``train`` split (seeded), ``B`` per
step, AdamW (betas 0.9/0.95, weight decay on W, R and Wo only), ``WARMUP_STEPS`` of linear
warm-up then a cosine to ``MIN_LR_RATIO`` of the peak, gradient clipping at 1. With a wall-clock
budget the cosine and the pruning rounds follow elapsed training time; with ``--steps`` they
follow the step count.

Pruning: W and R of every layer are each magnitude-pruned (the smallest |w| of that matrix set to
zero and kept there by a mask) in ``PRUNE_ROUNDS`` rounds between the fractions ``PRUNE_START``
and ``PRUNE_END`` of training, the sparsity rising on the cubic schedule of Zhu & Gupta (2017,
"To prune, or not to prune") to ``SPARSITY``; training goes on with the mask between rounds and
after the last (prune, fine-tune, prune harder, fine-tune). In 240 s trials on one thread, two
rounds (60 %, then 85 %) ended at 2.46 bits/char (the jump to 85 % cost 0.5 bits/char at once),
eight rounds at 2.33 (train split windows, test split scored). The readout, embedding, biases
and thresholds stay dense. The test split is evaluated (clock stopped) just before the first
round, to report what pruning cost.

Afterwards the script evaluates the ``test`` split exactly as ``reference.evaluate`` does (state
reset every ``reference.RESET_EVERY`` characters, all of the split), and writes the weights
(dense and CSR), the config, the vocabulary, training facts, metrics and a golden set (a few test
sequences, the float32 logits and per-step event counts of the trained torch model).
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
EMBED = 64
HIDDEN = 256
N_LAYERS = 1
DAMPENING = 0.7           # γ of the pseudo-derivative (EvNN's default)
SUPPORT = 1.0             # ε of the pseudo-derivative (EvNN's default)
THR_MEAN = 0.3            # mean of the Beta(α, 3) threshold initialisation (EvNN's default)
THR_MIN = 0.0             # thresholds are kept at or above this after every step (see the docstring)
RATE_PENALTY = 0.2        # λ of the activity regulariser
B, T = 32, 128
PEAK_LR = 8e-3            # of 5e-3 and 8e-3, the better in 240 s on 1 thread (2.330 vs 2.263 bits/char)
MIN_LR_RATIO = 0.1
WARMUP_STEPS = 100
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.95)
GRAD_CLIP = 1.0
SEED = 0
BUDGET_S = 480.0
THREADS = 2
LOG_EVERY = 100
SPARSITY = 0.85          # of every W and R at the end
PRUNE_START, PRUNE_END, PRUNE_ROUNDS = 0.25, 0.65, 8      # fractions of training; rounds between them
GOLDEN_STARTS = (0, 28_000, 57_000, 86_000)   # offsets in the test split
GOLDEN_CHARS = 64


# ---------------------------------------------------------------------------------------------
# the EGRU recurrence


def pseudo_derivative(v: torch.Tensor) -> torch.Tensor:
    """∂e/∂c̃ at ``v = c̃ - ϑ``."""
    return DAMPENING * (1 - SUPPORT * v.abs()).clamp(min=0)


class EgruScan(torch.autograd.Function):
    """The EGRU recurrence over time (axis 0) from the zero state.

    Inputs: ``wx = x W + b`` [T, B, 3H], ``R`` [H, 3H], ``b_R`` [3H], ``ϑ`` [H]. Outputs: the graded
    events ``y``, the events ``e`` and the state before the event rule ``c̃`` (no gradient), each
    [T, B, H].
    """

    @staticmethod
    def forward(ctx, wx: torch.Tensor, rec: torch.Tensor, rec_bias: torch.Tensor, thr: torch.Tensor):
        steps, batch, h3 = wx.shape
        h = h3 // 3
        y_all = wx.new_zeros(steps, batch, h)
        e_all = wx.new_zeros(steps, batch, h)
        saved = {k: wx.new_empty(steps, batch, h) for k in ("u", "r", "g", "rg", "ct", "c_prev")}
        y = c = wx.new_zeros(batch, h)
        for t in range(steps):
            rh = torch.addmm(rec_bias, y, rec)
            zr = torch.sigmoid(wx[t, :, :2 * h] + rh[:, :2 * h])
            u, r = zr[:, :h], zr[:, h:]
            rg = rh[:, 2 * h:]
            g = torch.tanh(wx[t, :, 2 * h:] + r * rg)
            ct = u * c + (1 - u) * g
            e = (ct > thr).to(wx.dtype)
            y = e * ct
            for k, v in (("u", u), ("r", r), ("g", g), ("rg", rg), ("ct", ct), ("c_prev", c)):
                saved[k][t] = v
            c = ct - e * thr
            y_all[t], e_all[t] = y, e
        ctx.save_for_backward(rec, thr, y_all, e_all, *saved.values())
        ctx.mark_non_differentiable(saved["ct"])
        return y_all, e_all, saved["ct"]

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, grad_e: torch.Tensor, _grad_ct: None):
        rec, thr, y_all, e_all, u_all, r_all, g_all, rg_all, ct_all, c_prev_all = ctx.saved_tensors
        steps, batch, h = y_all.shape
        grad_wx = grad_y.new_empty(steps, batch, 3 * h)
        grad_rh_all = grad_y.new_empty(steps, batch, 3 * h)
        grad_thr = grad_y.new_zeros(h)
        dy_rec = dc = grad_y.new_zeros(batch, h)       # from step t + 1: through R, and through c
        for t in range(steps - 1, -1, -1):
            u, r, g, rg, ct, e = u_all[t], r_all[t], g_all[t], rg_all[t], ct_all[t], e_all[t]
            dy = grad_y[t] + dy_rec
            de = dy * ct + grad_e[t] - dc * thr                 # y = e c̃, c = c̃ - e ϑ
            de_pd = de * pseudo_derivative(ct - thr)
            dct = dy * e + dc + de_pd
            grad_thr -= (dc * e + de_pd).sum(0)
            dc = dct * u                                        # c̃ = u c + (1 - u) g
            du = dct * (c_prev_all[t] - g) * u * (1 - u)
            dg = dct * (1 - u) * (1 - g * g)
            dr = dg * rg * r * (1 - r)
            grad_wx[t] = torch.cat([du, dr, dg], dim=1)
            grad_rh = torch.cat([du, dr, dg * r], dim=1)
            grad_rh_all[t] = grad_rh
            dy_rec = grad_rh @ rec.T
        y_prev = torch.cat([y_all.new_zeros(1, batch, h), y_all[:-1]])
        grad_rec = y_prev.reshape(-1, h).T @ grad_rh_all.reshape(-1, 3 * h)
        return grad_wx, grad_rec, grad_rh_all.sum((0, 1)), grad_thr


def egru_autograd(wx, rec, rec_bias, thr):
    """The same recurrence as `EgruScan` written with autograd (slow; for `check_gradients`)."""

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v > 0).to(v.dtype)

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            return grad * pseudo_derivative(v)

    h = rec.shape[0]
    y = c = wx.new_zeros(wx.shape[1], h)
    ys, es = [], []
    for t in range(wx.shape[0]):
        rh = y @ rec + rec_bias
        u = torch.sigmoid(wx[t, :, :h] + rh[:, :h])
        r = torch.sigmoid(wx[t, :, h:2 * h] + rh[:, h:2 * h])
        g = torch.tanh(wx[t, :, 2 * h:] + r * rh[:, 2 * h:])
        ct = u * c + (1 - u) * g
        e = Spike.apply(ct - thr)
        y, c = e * ct, ct - e * thr
        ys.append(y)
        es.append(e)
    return torch.stack(ys), torch.stack(es)


def check_gradients() -> None:
    """`EgruScan`'s gradients against autograd's, in float64 on a small random problem."""
    torch.manual_seed(1)
    steps, batch, h = 12, 3, 8
    args = [torch.randn(steps, batch, 3 * h, dtype=torch.float64), 0.5 * torch.randn(h, 3 * h, dtype=torch.float64),
            0.1 * torch.randn(3 * h, dtype=torch.float64), 0.1 + 0.3 * torch.rand(h, dtype=torch.float64)]
    weights = torch.randn(steps, batch, h, dtype=torch.float64), torch.randn(steps, batch, h, dtype=torch.float64)
    grads = []
    for fn in (EgruScan.apply, egru_autograd):
        leaves = [a.clone().requires_grad_() for a in args]
        y, e = fn(*leaves)[:2]
        ((y * weights[0]).sum() + (e * weights[1]).sum()).backward()
        grads.append([leaf.grad for leaf in leaves] + [y.detach(), e.detach()])
    print(f"event fraction {grads[0][-1].mean().item():.2f}")
    for name, a, b in zip(("wx", "R", "b_R", "thr", "y", "e"), *grads):
        print(f"{name:>4}: max |custom - autograd| = {(a - b).abs().max().item():.2e}")
        assert torch.allclose(a, b, atol=1e-10), name


# ---------------------------------------------------------------------------------------------
# the model


class EgruLayer(nn.Module):
    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_in, 3 * hidden)))
        self.bias = nn.Parameter(torch.zeros(3 * hidden))
        self.rec_weight = nn.Parameter(nn.init.xavier_normal_(torch.empty(hidden, 3 * hidden)))
        self.rec_bias = nn.Parameter(torch.zeros(3 * hidden))
        beta = 3.0
        alpha = beta * THR_MEAN / (1 - THR_MEAN)
        self.threshold = nn.Parameter(torch.distributions.Beta(alpha, beta).sample((hidden,)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [T, B, n_in]`` -> (``y``, ``e``, ``c̃``), each [T, B, H]."""
        return EgruScan.apply(x @ self.weight + self.bias, self.rec_weight, self.rec_bias, self.threshold)


class EgruLM(nn.Module):
    def __init__(self, vocab_size: int, n_layers: int = N_LAYERS):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(vocab_size, EMBED))
        sizes = [EMBED] + [HIDDEN] * n_layers
        self.layers = nn.ModuleList(EgruLayer(n_in, h) for n_in, h in zip(sizes[:-1], sizes[1:]))
        self.readout = nn.Linear(HIDDEN, vocab_size)

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``codes [B, T]`` -> (logits [B, T, V], per layer events ``e`` and margins ``c̃ - ϑ`` [T, B, H])."""
        x = self.embedding[codes.T]
        events, margins = [], []
        for layer in self.layers:
            x, e, c_tilde = layer(x)
            events.append(e)
            margins.append(c_tilde - layer.threshold)
        return self.readout(x).transpose(0, 1), events, margins

    def prunable(self) -> dict[str, nn.Parameter]:
        """The matrices that are pruned, by their name in weights.h5."""
        named = {}
        for n, layer in enumerate(self.layers):
            named[f"layers/{n}/input_weight"] = layer.weight
            named[f"layers/{n}/recurrent_weight"] = layer.rec_weight
        return named


# ---------------------------------------------------------------------------------------------
# training, pruning and evaluation


def learning_rate(step: int, progress: float, peak: float) -> float:
    warmup = min(1.0, (step + 1) / WARMUP_STEPS)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return peak * warmup * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * cosine)


def optimizer_for(model: EgruLM, peak_lr: float) -> torch.optim.AdamW:
    decay = list(model.prunable().values()) + [model.readout.weight]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
                             lr=peak_lr, betas=BETAS)


def prune_schedule(final: float) -> list[tuple[float, float]]:
    """(fraction of training, sparsity from then on) per round: the cubic schedule of Zhu & Gupta (2017),
    which prunes fast while many small weights remain and slowly near the end."""
    rounds = []
    for k in range(1, PRUNE_ROUNDS + 1):
        fraction = PRUNE_START + (PRUNE_END - PRUNE_START) * (k - 1) / (PRUNE_ROUNDS - 1)
        rounds.append((fraction, final * (1 - (1 - k / PRUNE_ROUNDS) ** 3)))
    return rounds


def magnitude_masks(model: EgruLM, sparsity: float) -> dict[str, torch.Tensor]:
    """Per prunable matrix, a mask keeping its ``1 - sparsity`` largest |w| (already pruned ones stay pruned)."""
    masks = {}
    for name, w in model.prunable().items():
        n_pruned = round(sparsity * w.numel())
        order = w.detach().abs().flatten().argsort(stable=True)
        mask = torch.ones(w.numel())
        mask[order[:n_pruned]] = 0.0
        masks[name] = mask.reshape(w.shape)
    return masks


@torch.no_grad()
def apply_masks(model: EgruLM, masks: dict[str, torch.Tensor]) -> None:
    for name, w in model.prunable().items():
        if name in masks:
            w.mul_(masks[name])


@torch.no_grad()
def clamp_thresholds(model: EgruLM) -> None:
    for layer in model.layers:
        layer.threshold.clamp_(min=THR_MIN)


def train(model: EgruLM, codes: np.ndarray, test_codes: np.ndarray, budget_s: float, steps: int | None,
          peak_lr: float, rate_penalty: float, sparsity: float) -> tuple[dict, dict]:
    """Train with the pruning rounds; (training facts, test metrics of the dense model before pruning)."""
    rng = np.random.default_rng(SEED)
    data = torch.from_numpy(codes.astype(np.int64))
    offsets = torch.arange(T + 1)
    opt = optimizer_for(model, peak_lr)
    schedule = prune_schedule(sparsity)
    rounds, masks, dense_metrics, prune_steps = list(schedule), {}, {}, []
    trained_s, step, running, running_rate = 0.0, 0, 0.0, 0.0
    while True:
        progress = step / steps if steps else trained_s / budget_s
        if progress >= 1.0:
            break
        if rounds and progress >= rounds[0][0]:
            _, round_sparsity = rounds.pop(0)
            if not masks:
                dense_metrics = evaluate(model, test_codes)
                print(f"dense model before pruning: {json.dumps(dense_metrics)}", flush=True)
            masks = magnitude_masks(model, round_sparsity)
            apply_masks(model, masks)
            prune_steps.append(step)
            print(f"step {step}: pruned W and R to {round_sparsity:.1%}", flush=True)
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, progress, peak_lr)
        batch = data[torch.from_numpy(rng.integers(0, len(data) - T - 1, B))[:, None] + offsets]
        logits, events, _ = model(batch[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        rate = torch.stack([e.mean() for e in events]).mean()
        loss = ce + rate_penalty * rate
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        apply_masks(model, masks)
        clamp_thresholds(model)
        trained_s += time.perf_counter() - start
        step += 1
        running += ce.item()
        running_rate += rate.item()
        if step % LOG_EVERY == 0:
            print(f"step {step:5d}  {trained_s:6.0f} s  train {running / LOG_EVERY / math.log(2):.3f} bits/char  "
                  f"event rate {running_rate / LOG_EVERY:.3f}  lr {opt.param_groups[0]['lr']:.2e}", flush=True)
            running = running_rate = 0.0
    facts = {"steps": step, "train_wall_s": round(trained_s, 1), "prune_rounds": [
        {"step": s, "fraction": round(f, 4), "sparsity": round(p, 4)} for s, (f, p) in zip(prune_steps, schedule)]}
    return facts, dense_metrics


@torch.no_grad()
def evaluate(model: EgruLM, codes: np.ndarray) -> dict:
    """Bits per character, accuracy and event rate on the windows of reference.evaluate."""
    inputs, targets, valid = (torch.from_numpy(a) for a in reference.segments(codes))
    nll, correct, events = 0.0, 0, torch.zeros(len(model.layers), dtype=torch.float64)
    for lo in range(0, len(inputs), 64):
        logits, e, _ = model(inputs[lo:lo + 64])
        m = valid[lo:lo + 64]
        nll += F.cross_entropy(logits[m], targets[lo:lo + 64][m], reduction="sum").item()
        correct += (logits[m].argmax(-1) == targets[lo:lo + 64][m]).sum().item()
        events += torch.stack([layer_e.transpose(0, 1)[m].sum() for layer_e in e]).double()
    n = int(valid.sum())
    return {"bits_per_char": nll / n / math.log(2), "accuracy": correct / n,
            "event_rate": [float(k) / (n * HIDDEN) for k in events], "chars": n}


# ---------------------------------------------------------------------------------------------
# export


@torch.no_grad()
def golden(model: EgruLM, test_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A few test sequences; their float32 logits, events per step and layer, and the smallest |c̃ - ϑ| met.

    The margin says how far the closest event decision was from the threshold: float32 rounding
    differences of ~1e-6 cannot flip an event when it is larger than that.
    """
    inputs = np.stack([test_codes[s:s + GOLDEN_CHARS] for s in GOLDEN_STARTS]).astype(np.uint8)
    codes = torch.from_numpy(inputs.astype(np.int64))
    logits, events, margins = model(codes)
    counts = torch.stack([e.sum(-1).T for e in events], dim=-1).to(torch.int16)
    margin = min(m.abs().min().item() for m in margins)
    return inputs, logits.numpy(), counts.numpy(), margin


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    group.create_dataset(name, data=data, compression="gzip", compression_opts=9, shuffle=True)


def _write_csr(group: h5py.Group, dense: np.ndarray) -> None:
    csr = reference.Csr.from_dense(dense)
    group.attrs["shape"] = np.array(csr.shape, dtype=np.int64)
    _dataset(group, "indptr", csr.indptr)
    _dataset(group, "indices", csr.indices)
    _dataset(group, "values", csr.values)


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True)
    return result.stdout.strip()


def sparsity_of(model: EgruLM) -> dict[str, float]:
    return {name: float((w == 0).float().mean()) for name, w in model.prunable().items()}


def write_weights(path: Path, model: EgruLM, vocab: str, train_facts: dict, metrics: dict, golden_set: tuple) -> None:
    config = {"dataset": DATASET, "vocab_size": len(vocab), "embed": EMBED, "hidden": HIDDEN,
              "n_layers": len(model.layers),
              "gates": "".join(reference.GATES), "event_rule": "e = c_tilde > threshold; y = e * c_tilde; "
              "c = c_tilde - e * threshold", "pseudo_derivative": {"dampening": DAMPENING, "support": SUPPORT},
              "threshold_init_mean": THR_MEAN, "reset_every": reference.RESET_EVERY}
    inputs, logits, counts, margin = golden_set

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().numpy()

    with torch.no_grad(), h5py.File(path, "w") as h5:
        h5.attrs["format_version"] = 1
        h5.attrs["model"] = "egru_lm"
        h5.attrs["config"] = json.dumps(config)
        h5.attrs["vocab"] = json.dumps(vocab)
        h5.attrs["train"] = json.dumps(train_facts)
        h5.attrs["metrics"] = json.dumps(metrics)
        _dataset(h5, "embedding", arr(model.embedding))
        for n, layer in enumerate(model.layers):
            g = h5.create_group(f"layers/{n}")
            for name, w in (("input_weight", layer.weight), ("recurrent_weight", layer.rec_weight)):
                _dataset(g, name, arr(w))
                _write_csr(g.create_group(f"{name}_csr"), arr(w))
            _dataset(g, "input_bias", arr(layer.bias))
            _dataset(g, "recurrent_bias", arr(layer.rec_bias))
            _dataset(g, "threshold", arr(layer.threshold))
        _dataset(h5, "readout/weight", arr(model.readout.weight.T))
        _dataset(h5, "readout/bias", arr(model.readout.bias))
        _dataset(h5, "golden/inputs", inputs)
        _dataset(h5, "golden/logits", logits)
        _dataset(h5, "golden/event_counts", counts)
        h5["golden"].attrs["min_threshold_margin"] = margin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="wall-clock training budget (s)")
    parser.add_argument("--steps", type=int, default=None, help="train this many steps instead of a budget")
    parser.add_argument("--lr", type=float, default=PEAK_LR, help="peak learning rate")
    parser.add_argument("--rate-penalty", type=float, default=RATE_PENALTY, help="λ of the event-rate regulariser")
    parser.add_argument("--sparsity", type=float, default=SPARSITY, help="final sparsity of every W and R")
    parser.add_argument("--layers", type=int, default=N_LAYERS, help="EGRU layers")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--out", type=Path, default=reference.WEIGHTS)
    parser.add_argument("--check-gradients", action="store_true", help="check the custom backward and exit")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.check_gradients:
        check_gradients()
        return
    torch.manual_seed(SEED)
    wall_start = time.perf_counter()
    train_set, test_set = datasets.load_text(DATASET, "train"), datasets.load_text(DATASET, "test")
    model = EgruLM(len(train_set.vocab), args.layers)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters, vocabulary {len(train_set.vocab)}, train {len(train_set.codes)} chars", flush=True)

    facts, dense_metrics = train(model, train_set.codes, test_set.codes, args.budget_s, args.steps, args.lr,
                                 args.rate_penalty, args.sparsity)
    facts |= {"dataset": DATASET, "split": "train", "seed": SEED, "batch": B, "seq_len": T, "peak_lr": args.lr,
              "rate_penalty": args.rate_penalty, "weight_decay": WEIGHT_DECAY,
              "budget_s": None if args.steps else args.budget_s, "threads": args.threads, "parameters": n_params,
              "torch": torch.__version__, "git_commit": git_commit()}
    model.eval()
    metrics = {"test": evaluate(model, test_set.codes), "test_dense_before_pruning": dense_metrics,
               "weight_sparsity": sparsity_of(model), "reset_every": reference.RESET_EVERY}
    golden_set = golden(model, test_set.codes)
    facts["total_wall_s"] = round(time.perf_counter() - wall_start, 1)
    print(json.dumps(facts), json.dumps(metrics), f"golden margin {golden_set[3]:.2e}", sep="\n", flush=True)
    write_weights(args.out, model, train_set.vocab, facts, metrics, golden_set)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
