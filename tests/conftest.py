"""Fixtures: the loihi2 chip, a tiny model folder in tmp_path, and a fake digits dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import FakeDataset, fake_digits, make_chip, tiny_model_files, write_model
from neurosim.spec.chip import ChipFile


@pytest.fixture(scope="session")
def loihi2() -> ChipFile:
    return make_chip()


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A model folder (model.yaml + weights.h5): 64 graded inputs -> dense -> LIF -> sparse -> readout."""
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(1))
    return write_model(tmp_path / "models" / "tiny", spec, arrays, attrs)


@pytest.fixture
def fake_dataset(monkeypatch) -> FakeDataset:
    """Replace `neurosim.datasets.load` by one returning 6 random digits-shaped samples."""
    import neurosim.datasets

    data = fake_digits()

    def load(name: str, split: str) -> FakeDataset:
        if name != "digits":
            raise ValueError(f"unknown dataset {name!r}")
        return FakeDataset(name, split, data.inputs, data.labels)

    monkeypatch.setattr(neurosim.datasets, "load", load)
    return data
