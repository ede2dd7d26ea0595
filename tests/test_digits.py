"""The shipped digits dataset and model: the split, and the engine against the model's golden set."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from helpers import REPO
from neurosim import datasets
from neurosim.cores.neurocore import timing_costs
from neurosim.engine.engine import Engine
from neurosim.zoo.loader import load_model
from neurosim.mapping.mapper import map_graph

MODEL = REPO / "models" / "digits_snn"


def test_digits_split_is_fixed_and_disjoint():
    train, test = datasets.load("digits", "train"), datasets.load("digits", "test")
    assert train.inputs.shape == (1437, 64) and test.inputs.shape == (360, 64)
    assert train.inputs.min() == 0 and train.inputs.max() == 16
    assert set(np.unique(test.labels)) == set(range(10))
    rows = {r.tobytes() for r in train.inputs}
    # the UCI digits hold a few duplicate images; the split is by index, so nearly all test images are unseen
    assert sum(r.tobytes() in rows for r in test.inputs) < 5
    assert np.array_equal(datasets.load("digits", "test").inputs, test.inputs)


def test_unknown_dataset_or_split_is_a_value_error():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("mnist", "test")
    with pytest.raises(ValueError, match="unknown split"):
        datasets.load("digits", "validation")


def test_engine_reproduces_the_golden_readout(loihi2):
    """The engine on Loihi 2 gives the readout voltages the training script recorded."""
    graph, _ = load_model(MODEL)
    with h5py.File(MODEL / "weights.h5") as h5:
        inputs = h5["golden/inputs"][()]
        expected = h5["golden/readout_v"][()]
        timesteps = int(h5.attrs["golden_timesteps"])
    mapping = map_graph(graph, loihi2)
    engine = Engine(graph, mapping, timing_costs(loihi2, graph, mapping)[0])
    for x, v in zip(inputs, expected):
        engine.reset()
        engine.set_input(graph.input_population, x)
        overflow = sum(engine.step().overflow for _ in range(timesteps))
        assert overflow == 0
        np.testing.assert_array_equal(engine.state_of(graph.readout_population)["v"], v)


def test_golden_predictions_are_mostly_right():
    """The golden readouts classify the first test images (the model reaches 99 % on the split)."""
    with h5py.File(MODEL / "weights.h5") as h5:
        predicted = h5["golden/readout_v"][()].argmax(axis=1)
    labels = datasets.load("digits", "test").labels[:len(predicted)]
    assert np.mean(predicted == labels) >= 0.75
