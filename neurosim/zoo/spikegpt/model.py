"""A small SpikeGPT as trained (``models/spikegpt``), in plain numpy float32, token by token.

SpikeGPT (Zhu, Zhao, Li, Eshraghian, TMLR 2024) is an RWKV language model whose sub-layers send
binary spikes: each sub-layer's output goes through LIF neurons (one token is one timestep) and
the residual stream is the running count of those spikes. Per token, with ``LN`` a LayerNorm::

    x   = H(E[token])                                  binary embedding
    per block:
      a = LN1(x);   a' = the previous token's a        token shift
      k = Wk (a mk + a' (1-mk)), v = Wv (...mv), r = Wr (...mr)
      wkv = (A + e^(u+k) v) / (B + e^(u+k));   A = e^w' A + e^k v,  B = e^w' B + e^k   (w' = -e^w)
      x = x + LIF(Wo (sigmoid(r) * wkv))
      b = LN2(x);   b' = the previous token's b
      x = x + LIF(sigmoid(Wr2 (b mr2 + b' (1-mr2))) * Wv2 relu(Wk2 (b mk2 + b' (1-mk2)))^2)
    logits = Wh LN_out(x)
    LIF:  V = V + (X - V)/2;  spike where V >= 1, then V = 0

WKV keeps ``(A, B)`` scaled by a running maximum ``p`` of the exponents, as RWKV-4 does. Every
state starts at zero (``p`` at -1e38). ``models/spikegpt/train.py`` trains it in torch; the
weights file holds golden logits this module reproduces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from neurosim import datasets

RESET_EVERY = datasets.RESET_EVERY
FLOAT = np.float32
LN_EPS = 1e-5


@dataclass(frozen=True)
class LayerNorm:
    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + FLOAT(LN_EPS)) * self.weight + self.bias


@dataclass(frozen=True)
class Block:
    ln1: LayerNorm
    ln2: LayerNorm
    mix_k: np.ndarray
    mix_v: np.ndarray
    mix_r: np.ndarray
    decay: np.ndarray            # w' = -exp(time_decay), the log of the per-step decay
    first: np.ndarray            # u
    key: np.ndarray              # [d, d], y = x @ W.T
    value: np.ndarray
    receptance: np.ndarray
    output: np.ndarray
    ffn_mix_k: np.ndarray
    ffn_mix_r: np.ndarray
    ffn_key: np.ndarray          # [ffn, d]
    ffn_value: np.ndarray        # [d, ffn]
    ffn_receptance: np.ndarray


@dataclass(frozen=True)
class Model:
    embedding: np.ndarray        # [V, d]
    blocks: list[Block]
    ln_out: LayerNorm
    head: np.ndarray             # [V, d]
    vocab: str
    config: dict

    @property
    def d(self) -> int:
        return self.embedding.shape[1]


@dataclass
class BlockState:
    a_prev: np.ndarray
    b_prev: np.ndarray
    num: np.ndarray              # A
    den: np.ndarray              # B
    top: np.ndarray              # p
    v_att: np.ndarray            # LIF voltages
    v_ffn: np.ndarray


def sigmoid(x: np.ndarray) -> np.ndarray:
    return FLOAT(1) / (FLOAT(1) + np.exp(-x))


def initial_state(model: Model, batch: int) -> list[BlockState]:
    z = (lambda: np.zeros((batch, model.d), FLOAT))      # noqa: E731
    return [BlockState(z(), z(), z(), z(), np.full((batch, model.d), -1e38, FLOAT), z(), z()) for _ in model.blocks]


def lif(v: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = v + (x - v) / FLOAT(2)
    spike = (v >= FLOAT(1)).astype(FLOAT)
    return spike, v * (FLOAT(1) - spike)


def block_step(block: Block, x: np.ndarray, s: BlockState) -> tuple[np.ndarray, BlockState, np.ndarray, np.ndarray]:
    """One token through one block: (x, state, attention spikes, FFN spikes)."""
    one = FLOAT(1)
    a = block.ln1(x)
    k = (a * block.mix_k + s.a_prev * (one - block.mix_k)) @ block.key.T
    v = (a * block.mix_v + s.a_prev * (one - block.mix_v)) @ block.value.T
    r = (a * block.mix_r + s.a_prev * (one - block.mix_r)) @ block.receptance.T
    q = np.maximum(s.top, block.first + k)
    e1, e2 = np.exp(s.top - q), np.exp(block.first + k - q)
    wkv = (e1 * s.num + e2 * v) / (e1 * s.den + e2)
    q = np.maximum(s.top + block.decay, k)
    e1, e2 = np.exp(s.top + block.decay - q), np.exp(k - q)
    num, den, top = e1 * s.num + e2 * v, e1 * s.den + e2, q
    att, v_att = lif(s.v_att, (sigmoid(r) * wkv) @ block.output.T)
    x = x + att
    b = block.ln2(x)
    kk = np.square(np.maximum((b * block.ffn_mix_k + s.b_prev * (one - block.ffn_mix_k)) @ block.ffn_key.T, 0))
    rr = sigmoid((b * block.ffn_mix_r + s.b_prev * (one - block.ffn_mix_r)) @ block.ffn_receptance.T)
    ffn, v_ffn = lif(s.v_ffn, rr * (kk @ block.ffn_value.T))
    return x + ffn, BlockState(a, b, num, den, top, v_att, v_ffn), att, ffn


def step(model: Model, codes_t: np.ndarray, state: list[BlockState]) -> tuple[np.ndarray, list[BlockState], list]:
    """Logits ``[batch, V]`` for the tokens ``codes_t [batch]``, the new state, and the spikes of
    each sub-layer (attention and FFN per block, ``[batch, d]`` each)."""
    x = (model.embedding[codes_t] >= 0).astype(FLOAT)
    new_state, spikes = [], []
    for block, s in zip(model.blocks, state):
        x, s, att, ffn = block_step(block, x, s)
        new_state.append(s)
        spikes += [att, ffn]
    return model.ln_out(x) @ model.head.T, new_state, spikes


def forward(model: Model, codes: np.ndarray) -> np.ndarray:
    state = initial_state(model, len(codes))
    out = []
    for t in range(codes.shape[1]):
        logits, state, _ = step(model, codes[:, t], state)
        out.append(logits)
    return np.stack(out, axis=1)


@dataclass(frozen=True)
class Metrics:
    bits_per_char: float
    accuracy: float
    spike_rate: list[float]      # per sub-layer: the fraction of its neurons spiking per token
    chars: int


def evaluate(model: Model, codes: np.ndarray, reset_every: int = RESET_EVERY) -> Metrics:
    inputs, targets, valid = datasets.text_segments(np.asarray(codes), reset_every)
    state = initial_state(model, len(inputs))
    nll, correct = 0.0, 0
    rates = np.zeros(2 * len(model.blocks))
    for t in range(reset_every):
        rows = valid[:, t]
        logits, state, spikes = step(model, inputs[:, t], state)
        loss, right = datasets.prediction_scores(logits[rows], targets[rows, t])
        nll, correct = nll + loss, correct + right
        rates += [s[rows].sum() for s in spikes]
    n = int(valid.sum())
    return Metrics(float(nll / n / np.log(2.0)), correct / n, [float(r / (n * model.d)) for r in rates], n)


def load(path: str | Path) -> Model:
    with h5py.File(path, "r") as h5:
        get = (lambda name: np.asarray(h5[name][()], FLOAT))      # noqa: E731
        config = json.loads(h5.attrs["config"])
        blocks = []
        for n in range(config["layers"]):
            p = f"blocks/{n}/"
            blocks.append(Block(
                LayerNorm(get(p + "ln1/weight"), get(p + "ln1/bias")), LayerNorm(get(p + "ln2/weight"), get(p + "ln2/bias")),
                get(p + "mix_k"), get(p + "mix_v"), get(p + "mix_r"), -np.exp(get(p + "time_decay")), get(p + "time_first"),
                get(p + "key/weight"), get(p + "value/weight"), get(p + "receptance/weight"), get(p + "output/weight"),
                get(p + "ffn_mix_k"), get(p + "ffn_mix_r"), get(p + "ffn_key/weight"), get(p + "ffn_value/weight"),
                get(p + "ffn_receptance/weight")))
        return Model(get("embedding/weight"), blocks, LayerNorm(get("ln_out/weight"), get("ln_out/bias")),
                     get("head/weight"), json.loads(h5.attrs["vocab"]), config)


def golden_check(model: Model, path: str | Path) -> float:
    """The largest |numpy - torch| logit over the golden windows."""
    with h5py.File(path, "r") as h5:
        inputs, expected = h5["golden/inputs"][()], h5["golden/logits"][()]
    return float(np.abs(forward(model, inputs.astype(np.int64)) - expected).max())
