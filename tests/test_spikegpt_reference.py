"""The trained SpikeGPT (models/spikegpt): its numpy float32 forward against the golden torch logits."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from helpers import REPO
from neurosim import datasets
from neurosim.graph import spikegpt

WEIGHTS = REPO / "models" / "spikegpt" / "weights.h5"


@pytest.fixture(scope="module")
def model():
    return spikegpt.load(WEIGHTS)


def test_the_numpy_forward_reproduces_the_golden_torch_logits(model):
    assert spikegpt.golden_check(model, WEIGHTS) < 1e-3


def test_shapes_and_vocab(model):
    assert model.d == 128 and len(model.blocks) == 2 and model.head.shape == (len(model.vocab), 128)
    assert model.vocab == datasets.load_text("shakespeare", "test").vocab


def test_spikes_are_binary_and_the_residual_counts_them(model):
    codes = datasets.load_text("shakespeare", "test").codes[:40].astype(np.int64)
    state = spikegpt.initial_state(model, 1)
    for c in codes:
        _, state, spikes = spikegpt.step(model, np.array([c]), state)
        assert all(set(np.unique(s)) <= {0.0, 1.0} for s in spikes)


def test_the_stated_metrics_hold_on_part_of_the_test_split(model):
    with h5py.File(WEIGHTS) as h5:
        stated = json.loads(h5.attrs["metrics"])["test"]
    assert 1.5 < stated["bits_per_char"] < 3.0
    m = spikegpt.evaluate(model, datasets.load_text("shakespeare", "test").codes[:4097])
    assert abs(m.bits_per_char - stated["bits_per_char"]) < 0.3
    assert all(0.0 < r < 0.6 for r in m.spike_rate)


def test_spikegpt_on_spinnaker2_agrees_with_the_model(tmp_path):
    """On SpiNNaker 2's fp32 software neurons the logits of every prompt and generated token agree
    with the model's to float32 rounding, and the scored text gives its bits per character."""
    import yaml

    from neurosim.runner import run
    from neurosim.traces.trace import read_trace

    data = yaml.safe_load((REPO / "scenarios" / "spinnaker2_spikegpt.yaml").read_text())
    data |= {"chip": str(REPO / "chips" / "spinnaker2.yaml"), "model": str(REPO / "models" / "spikegpt"),
             "language": {"prompt_tokens": 12, "generate_tokens": 4, "accuracy_chars": 1024}}
    result = run(data, out_dir=tmp_path)
    s = result.summary
    assert s["matches_reference"]
    assert abs(s["bits_per_char"] - s["float_bits_per_char"]) < 1e-3
    assert all(0 < s[f"spike_rate_{p}"] < 0.6 for p in ("att_0", "ffn_0", "att_1", "ffn_1"))
    assert s["depth_steps"] == 14 and s["tokens_per_s"] == pytest.approx(1e3 / 15, rel=0.02)
    trace = read_trace(result.trace_path)
    names = list(trace["layers"]["names"].astype(str))
    assert {"att_0", "ffn_0", "att_1", "ffn_1"} <= set(names)          # spikes per layer and step


def test_spikegpt_refuses_a_chip_of_fixed_point_neurocores():
    from neurosim.errors import UserError
    from neurosim.runner import run

    data = {"name": "x", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "spikegpt"),
            "input": {"dataset": "shakespeare"}, "language": {"prompt_tokens": 4, "generate_tokens": 1}}
    with pytest.raises(UserError, match="32-bit"):
        run(data, write=False)
