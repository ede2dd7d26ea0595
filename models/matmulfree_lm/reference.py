"""The trained MatMul-free character LM (``weights.h5``) in plain numpy, no torch: the model of
`neurosim.zoo.matmulfree.model`, checked against the golden torch logits and scored here.

    python models/matmulfree_lm/reference.py        # golden check, then both modes on the test split

The model (Zhu et al. 2024, "Scalable MatMul-free Language Modeling", as the released code
ridgerchu/matmulfreellm defines it; see README.md) runs token by token with its recurrent
state, in one of two `MODES`:

``quantized``
    exactly as trained: every BitLinear normalises its input, quantises it per token to int8
    codes with an absmax scale, accumulates the codes through the ternary weights in integers
    and rescales once::

        x̂   = x / sqrt(mean(x²) + 1e-8) * g
        s_x = 127 / max(max|x̂|, 1e-5)                 x_q = clip(round(x̂ · s_x), -128, 127)
        y   = (x_q @ W_tᵀ) · w_scale / s_x             W_t ∈ {-1, 0, 1}, w_scale = mean|W|

``float``
    the same ternary weights with their scale, but float activations (no activation
    quantisation): ``y = x̂ @ (W_t · w_scale)ᵀ``.

Everything else (embedding, RMSNorms, sigmoid, SiLU, the MLGRU state) is float64.

Evaluation streams over a text with the state reset to zero every `RESET_EVERY` characters
(training's validation uses the same windows): the text is cut into segments of
`RESET_EVERY` inputs, each predicting the character after it, and the segments run side by
side as a batch. `evaluate` returns bits per character and next-character accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from neurosim import datasets

from neurosim.zoo.matmulfree import model as matmulfree
from neurosim.zoo.matmulfree.model import (ACT_MAX_MIN, BITLINEAR_EPS, BLOCK_LAYERS, INT8_MAX, MODES, NORM_EPS,  # noqa: F401
                                       WEIGHT_MEAN_MIN, BitLinear, Block, Model, bitlinear, initial_state,
                                       quantize_activations, quantize_weights, rms_norm, sigmoid, silu, step)

WEIGHTS = Path(__file__).with_name("weights.h5")
RESET_EVERY = datasets.RESET_EVERY      # characters between state resets in evaluation
# numpy float64 against torch float64 on the same weights: only summation order differs
GOLDEN_TOLERANCE = 1e-4


# ---------------------------------------------------------------------------------------------
# the model (neurosim.zoo.matmulfree.model holds it; what follows is this folder's evaluation)


@dataclass
class CodeStats:
    """Counts of int8 activation codes per BitLinear name: ``{name: [zeros, total]}``.

    ``rows`` (bool per batch row, or None for all) says which rows of the current step count.
    """

    counts: dict[str, list[int]] = field(default_factory=dict)
    rows: np.ndarray | None = None

    def add(self, name: str, codes: np.ndarray) -> None:
        if self.rows is not None:
            codes = codes[self.rows]
        zeros_total = self.counts.setdefault(name, [0, 0])
        zeros_total[0] += int(np.count_nonzero(codes == 0))
        zeros_total[1] += codes.size

    def zero_fraction(self, kind: str = "") -> float:
        """The zero fraction over the BitLinears whose name ends with ``kind`` (all by default)."""
        zeros = sum(z for name, (z, _) in self.counts.items() if name.endswith(kind))
        total = sum(t for name, (_, t) in self.counts.items() if name.endswith(kind))
        return zeros / total


def forward(model: Model, codes: np.ndarray, mode: str = "quantized") -> np.ndarray:
    """Logits ``[batch, T, V]`` of sequences ``codes[batch, T]``, each starting from the zero state."""
    state = initial_state(model, len(codes))
    logits = []
    for t in range(codes.shape[1]):
        out, state = step(model, codes[:, t], state, mode)
        logits.append(out)
    return np.stack(logits, axis=1)


# ---------------------------------------------------------------------------------------------
# evaluation


segments = datasets.text_segments      # the evaluation windows, shared with neurosim


@dataclass(frozen=True)
class Metrics:
    bits_per_char: float
    accuracy: float              # next-character argmax accuracy
    chars: int                   # characters predicted
    codes: CodeStats | None      # int8 activation codes seen (quantized mode only)


def evaluate(model: Model, codes: np.ndarray, mode: str = "quantized", reset_every: int = RESET_EVERY) -> Metrics:
    """Bits per character and accuracy over ``codes``, streaming with the state reset every ``reset_every``."""
    inputs, targets, valid = segments(np.asarray(codes), reset_every)
    stats = CodeStats() if mode == "quantized" else None
    state = initial_state(model, len(inputs))
    nll, correct = 0.0, 0
    for t in range(reset_every):
        rows = valid[:, t]
        if stats is not None:
            stats.rows = rows
        logits, state = step(model, inputs[:, t], state, mode, stats.add if stats is not None else None)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        nll -= log_prob[rows, targets[rows, t]].sum()
        correct += int(np.count_nonzero(logits[rows].argmax(axis=1) == targets[rows, t]))
    n = int(valid.sum())
    return Metrics(nll / n / np.log(2.0), correct / n, n, stats)


def weight_zero_fraction(model: Model) -> float:
    weights = [layer.weight_ternary for layer in model.bitlinears().values()]
    return sum(int(np.count_nonzero(w == 0)) for w in weights) / sum(w.size for w in weights)


# ---------------------------------------------------------------------------------------------
# the weights file (format in README.md)


def load(path: Path = WEIGHTS) -> Model:
    return matmulfree.load(path)


def golden_max_abs_diff(model: Model, path: Path = WEIGHTS) -> float:
    """Largest difference between the quantized forward and the torch logits stored in ``/golden``."""
    with h5py.File(path, "r") as h5:
        inputs, expected = h5["golden/inputs"][()], h5["golden/logits"][()]
    return float(np.abs(forward(model, inputs, "quantized") - expected).max())


def main() -> None:

    model = load()
    diff = golden_max_abs_diff(model)
    print(f"golden: max |numpy - torch| logit difference {diff:.2e} (tolerance {GOLDEN_TOLERANCE:g})")
    test = datasets.load_text(model.config["dataset"], "test")
    print(f"ternary weights: {weight_zero_fraction(model):.1%} zero")
    for mode in MODES:
        m = evaluate(model, test.codes, mode)
        line = f"{mode:>9}: {m.bits_per_char:.4f} bits/char, accuracy {m.accuracy:.2%} over {m.chars} chars"
        if m.codes is not None:
            kinds = ", ".join(f"{k} {m.codes.zero_fraction(k):.1%}" for k in BLOCK_LAYERS + ("head",))
            line += f"; int8 codes {m.codes.zero_fraction():.1%} zero ({kinds})"
        print(line)


if __name__ == "__main__":
    main()
