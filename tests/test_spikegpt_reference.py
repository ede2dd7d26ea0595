"""The trained SpikeGPT (models/spikegpt): its numpy float32 forward against the golden torch logits."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from helpers import REPO
from neurosim import datasets
from neurosim.zoo.spikegpt import model as spikegpt

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


def test_spikegpt_on_spinnaker2_equals_its_float_reference(tmp_path):
    """On SpiNNaker 2's fp32 software neurons the logits of every prompt and generated token equal
    the graph's numpy reference's bit for bit, and the scored text gives the model's bits per
    character."""
    import yaml

    from neurosim.runs import run
    from neurosim.traces.trace import read_trace

    data = yaml.safe_load((REPO / "scenarios" / "spinnaker2_spikegpt.yaml").read_text())
    data |= {"chip": str(REPO / "chips" / "spinnaker2.yaml"), "model": str(REPO / "models" / "spikegpt"),
             "language": {"prompt_tokens": 12, "generate_tokens": 4, "accuracy_chars": 1024}}
    result = run(data, out_dir=tmp_path)
    s = result.summary
    assert s["matches_reference"] and not s["reference_is_model"]
    assert abs(s["bits_per_char"] - s["float_bits_per_char"]) < 1e-3
    assert all(0 < s[f"spike_rate_{p}"] < 0.6 for p in ("att_0", "ffn_0", "att_1", "ffn_1"))
    assert s["depth_steps"] == 14 and s["tokens_per_s"] == pytest.approx(1e3 / 15, rel=0.02)
    trace = read_trace(result.trace_path)
    names = list(trace["layers"]["names"].astype(str))
    assert {"att_0", "ffn_0", "att_1", "ffn_1"} <= set(names)          # spikes per layer and step


def test_the_float_programs_agree_with_the_model_to_float32_rounding():
    """The float lowering's reference (sums synapse by synapse) against `spikegpt.step` (matrix
    products): the logits of 24 tokens within 1e-4."""
    from neurosim.zoo.loader import load_model
    from neurosim.zoo.spikegpt.float_lowering import LoweredSpikeGPT, lower

    lm, _ = load_model(REPO / "models" / "spikegpt")
    lowered = LoweredSpikeGPT(lm, *lower(lm.model, "spikegpt", "shakespeare"))
    codes = datasets.load_text("shakespeare", "test").codes[:24].astype(np.int64)
    state = spikegpt.initial_state(lm.model, 1)
    for token, chip in zip(codes, lowered.reference_outputs(list(codes))):
        logits, state, _ = spikegpt.step(lm.model, np.array([token]), state)
        np.testing.assert_allclose(chip, logits[0], rtol=1e-4, atol=1e-4)


def test_float_programs_are_refused_by_fixed_point_neurocores():
    """The EGRU lowers to float32 programs: on Loihi 2 that is one clear error naming the population."""
    from neurosim.errors import UserError
    from neurosim.runs import run

    data = {"name": "x", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "egru_lm"),
            "input": {"dataset": "shakespeare"}, "language": {"prompt_tokens": 4, "generate_tokens": 1}}
    with pytest.raises(UserError, match="float32 program") as err:
        run(data, write=False)
    assert err.value.field.startswith("populations.") and "arm_pe" in err.value.message


@pytest.fixture(scope="module")
def fixed():
    from neurosim.zoo.loader import load_model
    from neurosim.zoo.spikegpt.fixed_lowering import LoweredSpikeGPTFixed, lower

    lm, _ = load_model(REPO / "models" / "spikegpt")
    graph, stage = lower(lm.model, "spikegpt", "shakespeare")
    return LoweredSpikeGPTFixed(lm, graph, stage)


def test_the_fixed_point_graph_fits_loihi2_formats(fixed):
    """8-bit weights, payloads within 24 bits, delays within the core's slots; 24 steps deep."""
    from neurosim.programs import KINDS, check_populations, check_projections, payload_bits_of

    check_populations(fixed.graph)
    check_projections(fixed.graph)
    assert fixed.depth == 24
    assert all(p.weight_bits == 8 for p in fixed.graph.projections.values())
    assert max(p.delay for p in fixed.graph.projections.values()) <= 62
    assert all(payload_bits_of(KINDS[p.kind], p.params) <= 24 for p in fixed.graph.populations.values())


def test_the_fixed_point_layernorm_and_spikes_follow_the_float_model(fixed):
    """Token by token over 48 characters: the first LayerNorm's output within 0.002 of the float
    model's (its inputs, spike counts, are the same), and the LIF spikes agree on 95 % or more."""
    from neurosim.programs.reference import Reference

    model = fixed.lm.model
    codes = datasets.load_text("shakespeare", "test").codes[:48].astype(np.int64)
    reference, state = Reference(fixed.graph, 1), spikegpt.initial_state(model, 1)
    silent = np.zeros((1, model.d), np.int64)
    agree, total, step = 0, 0, 0
    for c in codes:
        x = (model.embedding[[c]] >= 0).astype(np.float32)
        expected_ln = model.blocks[0].ln1(x)
        _, state, spikes = spikegpt.step(model, np.array([c]), state)
        entry = step
        for t in range(fixed.depth + 1):
            reference.set_input("embed", fixed.embed(np.array([c])) if t == 0 else silent)
            payload = reference.step(fixed.hold(step, {entry}))
            if step - entry == fixed.stage["ln1_0"]:
                np.testing.assert_allclose(payload["ln1_0"][0] / 4096, expected_ln[0], atol=0.002)
            for name, s in zip(("att_0", "ffn_0", "att_1", "ffn_1"), spikes):
                if step - entry == fixed.stage[name]:
                    agree, total = agree + int(np.sum(payload[name][0] == s[0])), total + s.size
            step += 1
    assert agree / total > 0.95


def test_spikegpt_on_loihi2_equals_its_integer_reference(tmp_path):
    """On Loihi 2's fixed-point neurocores the logits of every prompt and generated token equal
    the integer reference's exactly, and the scored text is within 0.05 bits/char of the float
    model."""
    import yaml

    from neurosim.runs import run

    data = yaml.safe_load((REPO / "scenarios" / "loihi2_spikegpt.yaml").read_text())
    data |= {"chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "spikegpt"),
             "language": {"prompt_tokens": 12, "generate_tokens": 3, "accuracy_chars": 1024}}
    s = run(data, out_dir=tmp_path).summary
    assert s["matches_reference"] and not s["reference_is_model"]
    assert abs(s["bits_per_char"] - s["float_bits_per_char"]) < 0.05
    assert all(0 < s[f"spike_rate_{p}"] < 0.6 for p in ("att_0", "ffn_0", "att_1", "ffn_1"))
    assert s["depth_steps"] == 24 and s["overflows"] == 0
