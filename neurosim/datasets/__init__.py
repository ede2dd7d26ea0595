"""Datasets that ship with neurosim, loaded by name and split.

``digits``
    The 8x8 handwritten digits of scikit-learn (1,797 images, 10 classes; see
    ``make_digits_snapshot.py`` for the source and the fixed split). Inputs are the 64
    pixel values 0..16 per image, labels 0..9. Splits: ``train`` (1,437) and ``test`` (360).
``random``
    Unlabelled inputs drawn from the scenario's seed, for performance studies of models
    with generated weights: each input is 0 with probability 1/2, else uniform in 1..15
    (`random_inputs`). Its labels are -1 and a run reports no accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

_HERE = Path(__file__).parent
_FILES = {"digits": _HERE / "digits.npz"}
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    """Samples of one split: ``inputs[sample, input]`` (integers) and ``labels[sample]``."""

    name: str
    split: str
    inputs: np.ndarray
    labels: np.ndarray


GENERATED = ("random",)
RANDOM_SAMPLES = 8       # samples of `random` when a scenario does not say


def names() -> list[str]:
    """The names `load` accepts, and the generated datasets."""
    return sorted(_FILES) + list(GENERATED)


def random_inputs(size: int, samples: int, seed: int) -> Dataset:
    """``samples`` unlabelled inputs of ``size`` values, as the module docstring says."""
    rng = np.random.default_rng([seed, size])
    values = rng.integers(1, 16, (samples, size))
    values[rng.random((samples, size)) < 0.5] = 0
    return Dataset("random", "generated", values.astype(np.int64), np.full(samples, -1, np.int64))


@lru_cache(maxsize=None)
def _arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(_FILES[name]) as npz:
        return {key: npz[key] for key in npz.files}


def load(name: str, split: str) -> Dataset:
    """One split of a shipped dataset; raises ValueError for an unknown name or split."""
    if name not in _FILES:
        raise ValueError(f"unknown dataset {name!r}, expected one of {', '.join(names())}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} of dataset {name!r}, expected one of {', '.join(SPLITS)}")
    arrays = _arrays(name)
    idx = arrays[f"{split}_idx"]
    inputs = arrays["images"][idx].astype(np.int64)
    labels = arrays["labels"][idx].astype(np.int64)
    inputs.setflags(write=False)
    labels.setflags(write=False)
    return Dataset(name, split, inputs, labels)
