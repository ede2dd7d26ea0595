"""The MatMul-free language model (Zhu et al. 2024, as the released code ridgerchu/matmulfreellm
defines it): its weights, and its forward pass as trained, token by token.

Every linear layer is a BitLinear: its own RMSNorm with a gain, ternary weights with one
absmean scale, and (as trained) int8 activations with a per-token absmax scale::

    x̂   = x / sqrt(mean(x²) + 1e-8) * g
    s_x = 127 / max(max|x̂|, 1e-5)                 x_q = clip(round(x̂ · s_x), -128, 127)
    y   = (x_q @ W_tᵀ) · w_scale / s_x             W_t ∈ {-1, 0, 1}

A block is ``x += MLGRU(RMSNorm(x)); x += GLU(RMSNorm(x))`` with the MLGRU token mixer::

    f = lb + (1 - lb) σ(f_proj x);   h = f h + (1 - f) SiLU(i_proj x)
    out = o_proj(RMSNorm(g_proj x) · SiLU(h))

and the GLU channel mixer ``down_proj(SiLU(gate) · up)``, ``[gate, up] = gate_proj x``. The
embedding and the head (a BitLinear after a final RMSNorm) make the logits.

`step` runs one token in one of two `MODES`: ``quantized`` (as trained) or ``float`` (the
ternary weights with their scale and float activations, no activation quantisation).
Weights come from a trained file (`load`) or are drawn from a seed for a shape (`generate`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

MODES = ("float", "quantized")
NORM_EPS = 1e-6            # block, final and output-gate RMSNorms
BITLINEAR_EPS = 1e-8       # a BitLinear's own RMSNorm
ACT_MAX_MIN = 1e-5         # floor of a token's absmax before its int8 scale is taken
WEIGHT_MEAN_MIN = 1e-5     # floor of a matrix's absmean before its ternary scale is taken
INT8_MAX = 127
BLOCK_LAYERS = ("i_proj", "f_proj", "g_proj", "o_proj", "gate_proj", "down_proj")

# The published shapes (Zhu et al. 2024, the released configurations): layers, width, GLU width; and
# the block its FPGA core ran (d = 512, one block; the GLU width by the released code's rule: 8 d / 3
# rounded up to a multiple of 256).
SHAPES = {"370m": (24, 1024, 2816), "1.3b": (24, 2048, 5632), "2.7b": (32, 2560, 6912),
          "block512": (1, 512, 1536)}


@dataclass(frozen=True)
class BitLinear:
    """A ternary linear layer with its own RMSNorm gain: ``[..., n_in] -> [..., n_out]``."""

    norm_gain: np.ndarray        # float [n_in]
    weight_ternary: np.ndarray   # int8 [n_out, n_in], values in {-1, 0, 1}
    weight_scale: float          # absmean of the trained weights

    def __post_init__(self):
        n_out, n_in = self.weight_ternary.shape
        if self.norm_gain.shape != (n_in,):
            raise ValueError(f"norm_gain has shape {self.norm_gain.shape}, expected ({n_in},)")


@dataclass(frozen=True)
class Block:
    attn_norm: np.ndarray        # [d]
    i_proj: BitLinear            # d -> d
    f_proj: BitLinear            # d -> d
    g_proj: BitLinear            # d -> d
    o_proj: BitLinear            # d -> d
    g_norm: np.ndarray           # [d], the output gate's RMSNorm
    lower_bound: np.ndarray      # [d], the forget gate's floor (zero in layer 0)
    mlp_norm: np.ndarray         # [d]
    gate_proj: BitLinear         # d -> 2 I
    down_proj: BitLinear         # I -> d


@dataclass(frozen=True)
class Model:
    vocab: str
    embedding: np.ndarray        # float [V, d]
    blocks: tuple[Block, ...]
    final_norm: np.ndarray       # [d]
    head: BitLinear              # d -> V
    config: dict

    @property
    def d(self) -> int:
        return self.embedding.shape[1]

    def bitlinears(self) -> dict[str, BitLinear]:
        layers = {f"blocks/{n}/{name}": getattr(b, name) for n, b in enumerate(self.blocks) for name in BLOCK_LAYERS}
        return layers | {"head": self.head}


# ---------------------------------------------------------------------------------------------
# the forward pass as trained


def rms_norm(x: np.ndarray, gain: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * gain


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-token (last axis) absmax int8 codes and their scale ``s_x``: ``x ≈ codes / s_x``."""
    s_x = INT8_MAX / np.maximum(np.abs(x).max(axis=-1, keepdims=True), ACT_MAX_MIN)
    return np.clip(np.round(x * s_x), -INT8_MAX - 1, INT8_MAX).astype(np.int8), s_x


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Per-tensor absmean ternary weights and their scale: ``w ≈ ternary * scale``."""
    scale = np.float32(max(np.abs(w).mean(), WEIGHT_MEAN_MIN))
    return np.clip(np.round(w / scale), -1, 1).astype(np.int8), scale


# Called with a BitLinear's name and its int8 input codes (quantized mode), e.g. to count zeros.
Observer = Callable[[str, np.ndarray], None] | None


def bitlinear(layer: BitLinear, x: np.ndarray, mode: str, observe: Observer = None, name: str = "") -> np.ndarray:
    x_hat = rms_norm(x, layer.norm_gain, BITLINEAR_EPS)
    if mode == "float":
        return x_hat @ (layer.weight_ternary.T * np.float64(layer.weight_scale))
    codes, s_x = quantize_activations(x_hat)
    if observe is not None:
        observe(name, codes)
    acc = codes.astype(np.int32) @ layer.weight_ternary.T.astype(np.int32)     # integer accumulate
    return acc * (np.float64(layer.weight_scale) / s_x)


def step(model: Model, tokens: np.ndarray, state: list[np.ndarray], mode: str,
         observe: Observer = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """One token per batch row: ``tokens[batch]`` -> (next-token logits ``[batch, V]``, new state)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}, expected one of {', '.join(MODES)}")
    x = model.embedding[tokens].astype(np.float64)
    new_state = []
    for n, (block, h) in enumerate(zip(model.blocks, state)):
        def linear(layer: str, value: np.ndarray) -> np.ndarray:
            return bitlinear(getattr(block, layer), value, mode, observe, f"blocks/{n}/{layer}")

        u = rms_norm(x, block.attn_norm, NORM_EPS)
        f = block.lower_bound + (1.0 - block.lower_bound) * sigmoid(linear("f_proj", u))
        h = f * h + (1.0 - f) * silu(linear("i_proj", u))
        gate = rms_norm(linear("g_proj", u), block.g_norm, NORM_EPS)
        x = x + linear("o_proj", gate * silu(h))
        g, up = np.split(linear("gate_proj", rms_norm(x, block.mlp_norm, NORM_EPS)), 2, axis=-1)
        x = x + linear("down_proj", silu(g) * up)
        new_state.append(h)
    return head_logits(model, x, mode, observe), new_state


def head_logits(model: Model, x: np.ndarray, mode: str = "quantized", observe: Observer = None) -> np.ndarray:
    """The logits of the last block's output ``x`` (the final RMSNorm and the head)."""
    return bitlinear(model.head, rms_norm(x, model.final_norm, NORM_EPS), mode, observe, "head")


def initial_state(model: Model, batch: int) -> list[np.ndarray]:
    """The MLGRU state of every layer, zero: ``[layer][batch, d]``."""
    return [np.zeros((batch, model.d)) for _ in model.blocks]


# ---------------------------------------------------------------------------------------------
# weights: a trained file, or drawn from a seed


def _bitlinear_from(group: h5py.Group) -> BitLinear:
    return BitLinear(group["norm_gain"][()], group["weight_ternary"][()], float(group["weight_scale"][()]))


def load(path: str | Path) -> Model:
    """A trained model's weights file (the format of models/matmulfree_lm/README.md)."""
    with h5py.File(path, "r") as h5:
        config = json.loads(h5.attrs["config"])
        blocks = []
        for n in range(config["n_layers"]):
            g = h5[f"blocks/{n}"]
            blocks.append(Block(attn_norm=g["attn_norm"][()], g_norm=g["g_norm"][()],
                                lower_bound=g["lower_bound"][()], mlp_norm=g["mlp_norm"][()],
                                **{name: _bitlinear_from(g[name]) for name in BLOCK_LAYERS}))
        return Model(vocab=json.loads(h5.attrs["vocab"]), embedding=h5["embedding"][()], blocks=tuple(blocks),
                     final_norm=h5["final_norm"][()], head=_bitlinear_from(h5["head"]), config=config)


def generate(n_layers: int, d: int, glu: int, vocab: int, seed: int) -> Model:
    """A model of a given shape with weights drawn from ``seed``, for performance runs.

    Ternary weights are drawn with a third each of -1, 0 and +1; gains are 1, lower bounds
    rise with depth as HGRN's do at initialisation; the embedding is normal(0, 1). Its
    predictions mean nothing; its activity and costs are those of a model of its shape.
    """
    rng = np.random.default_rng(seed)

    def layer(n_out: int, n_in: int) -> BitLinear:
        return BitLinear(np.ones(n_in), rng.integers(-1, 2, (n_out, n_in)).astype(np.int8), 0.02)

    blocks = tuple(Block(attn_norm=np.ones(d), i_proj=layer(d, d), f_proj=layer(d, d), g_proj=layer(d, d),
                         o_proj=layer(d, d), g_norm=np.ones(d), lower_bound=np.full(d, n / n_layers),
                         mlp_norm=np.ones(d), gate_proj=layer(2 * glu, d), down_proj=layer(d, glu))
                   for n in range(n_layers))
    symbols = "".join(chr(32 + k % 95) for k in range(vocab))
    return Model(symbols, rng.standard_normal((vocab, d)), blocks, np.ones(d), layer(vocab, d),
                 {"n_layers": n_layers, "d": d, "glu": glu, "seed": seed})


def save(model: Model, path: str | Path) -> None:
    """Write a model's weights in the format `load` reads."""
    def bitlinear_group(group: h5py.Group, layer: BitLinear) -> None:
        group["norm_gain"] = np.asarray(layer.norm_gain, np.float32)
        group["weight_ternary"] = np.asarray(layer.weight_ternary, np.int8)
        group["weight_scale"] = np.float32(layer.weight_scale)

    with h5py.File(path, "w") as h5:
        h5.attrs["config"] = json.dumps({**model.config, "n_layers": len(model.blocks)})
        h5.attrs["vocab"] = json.dumps(model.vocab)
        h5["embedding"] = np.asarray(model.embedding, np.float32)
        h5["final_norm"] = np.asarray(model.final_norm, np.float32)
        bitlinear_group(h5.create_group("head"), model.head)
        for n, block in enumerate(model.blocks):
            g = h5.create_group(f"blocks/{n}")
            for name in ("attn_norm", "g_norm", "lower_bound", "mlp_norm"):
                g[name] = np.asarray(getattr(block, name), np.float32)
            for name in BLOCK_LAYERS:
                bitlinear_group(g.create_group(name), getattr(block, name))
