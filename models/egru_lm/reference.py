"""The trained EGRU character LM (``weights.h5``) in plain numpy float32, no torch: the model of
`neurosim.zoo.egru.model` (equations there and in README.md), checked against the golden torch logits
and scored here.

    python models/egru_lm/reference.py        # golden check, then the test split
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neurosim import datasets
from neurosim.zoo.egru import model as egru
from neurosim.zoo.egru.model import (RESET_EVERY, Csr, EgruLayer, LayerState, Metrics, Model, StepStats,  # noqa: F401
                                 egru_step, evaluate, event_matvec, forward, initial_state, read_csr, segments,
                                 sigmoid, step)

WEIGHTS = Path(__file__).with_name("weights.h5")
# numpy float32 against torch float32 on the same weights: summation order differs (torch sums a
# dense matrix product, numpy scatters events in unit order), ~1e-6 per operation
GOLDEN_TOLERANCE = 1e-4


def load(path: Path = WEIGHTS) -> Model:
    """The model from ``weights.h5``, its pruned matrices from their CSR groups."""
    return egru.load(path)


def golden_check(model: Model, path: Path = WEIGHTS) -> tuple[float, int]:
    """(largest |numpy - torch| logit difference, steps whose event counts differ) over ``/golden``."""
    with h5py.File(path, "r") as h5:
        inputs, expected, counts = h5["golden/inputs"][()], h5["golden/logits"][()], h5["golden/event_counts"][()]
    logits, got = forward(model, inputs.astype(np.int64))
    return float(np.abs(logits - expected).max()), int(np.count_nonzero((got != counts).any(axis=-1)))


def main() -> None:

    model = load()
    diff, mismatched = golden_check(model)
    print(f"golden: max |numpy - torch| logit difference {diff:.2e} (tolerance {GOLDEN_TOLERANCE:g}), "
          f"{mismatched} steps with other event counts")
    for n, layer in enumerate(model.layers):
        print(f"layer {n}: W {layer.input_weight.sparsity:.1%} sparse ({layer.input_weight.nnz} synapses), "
              f"R {layer.recurrent_weight.sparsity:.1%} sparse ({layer.recurrent_weight.nnz} synapses), "
              f"thresholds {layer.threshold.min():.3f}..{layer.threshold.max():.3f}")
    test = datasets.load_text(model.config["dataset"], "test")
    m = evaluate(model, test.codes)
    rates = ", ".join(f"{r:.1%}" for r in m.event_rate)
    print(f"test: {m.bits_per_char:.4f} bits/char, accuracy {m.accuracy:.2%} over {m.chars} chars; "
          f"event rate {rates}; {m.synops_per_char:.0f} synaptic operations per char")


if __name__ == "__main__":
    main()
