"""lava-dl netx networks reset as lava-dl resets them (``reset_interval``), their 1-D dense weights
read as lava-dl reads them, against a plain-numpy model of lava-dl's semantics (`netx_lava`)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_chip
from netx_lava import chain_layers, lava_run, write_netx
from neurosim.cores.neurocore import timing_costs
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.interop.netx_import import load_netx
from neurosim.mapping.mapper import map_graph
from neurosim.spec.scenario import scenario_from_dict

R = 8                      # steps per sample
LIF = ["layer0", "layer1", "layer2", "layer3"]      # lava-dl's layers 0..3; the input comes from the host


def engine_states(path, images, steps, python=False, **reset):
    """Each sample from rest for ``steps`` steps: per layer u, v and spikes [sample, step, neuron]."""
    graph = load_netx(path, **reset).graph
    chip = make_chip()
    mapping = map_graph(graph, chip)
    engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0])
    if python:                    # the programs stepped from Python (kinds without a compiled kernel)
        engine.table = None
    out = {f"{x}{j}": np.zeros((len(images), steps, graph.populations[name].size), np.int64)
           for j, name in enumerate(LIF) for x in "uvs"}
    for s, image in enumerate(images):
        engine.reset()
        engine.set_input("input", image)
        for t in range(steps):
            engine.step()
            for j, name in enumerate(LIF):
                _name, lo, hi, *_ = next(p for p in engine.pops if p[0] == name)
                state = engine.state_of(name)
                out[f"u{j}"][s, t], out[f"v{j}"][s, t] = state["u"], state["v"]
                out[f"s{j}"][s, t] = engine.payload[lo:hi] != 0
    return out


@pytest.mark.parametrize("offset, python", [(0, False), (3, False), (0, True)])
def test_each_layer_window_equals_lava_dl_run_sample_after_sample(tmp_path, offset, python):
    """lava-dl runs the samples back to back, R steps each, and resets layer j at its steps
    j + offset (mod R); here each sample starts from rest and layer j resets at j + 1 + offset, when
    the host's input first reaches it. Within every layer's window of R steps the two agree bit
    for bit: u, v and spikes (the input layer's u aside: lava-dl feeds it the input as a bias)."""
    layers = chain_layers(1)
    path = write_netx(tmp_path / "chain.net", layers)
    images = np.random.default_rng(5).integers(0, 41, (4, 6))
    depth = len(LIF)
    ours = engine_states(path, images, R + depth + offset, python, reset_interval=R, reset_offset=offset)
    lava = lava_run(layers, images, len(images) * R + depth + offset, R, offset)
    for j in range(depth):
        for key in ("v", "s") if j == 0 else ("u", "v", "s"):
            for s in range(len(images)):
                window = np.arange(R)
                np.testing.assert_array_equal(ours[f"{key}{j}"][s, j + 1 + offset + window],
                                              lava[f"{key}{j}"][s * R + j + offset + window],
                                              err_msg=f"layer {j} {key}, sample {s}")
        assert lava[f"s{j}"].any() or j == depth - 1, f"layer {j} never spiked: the test would be vacuous"
    readout = lava["v3"][[s * R + depth - 1 + offset + R - 1 for s in range(len(images))], 0]
    assert len(set(readout.tolist())) > 1                     # the samples' readouts differ
    # without the staggered reset the windows do not agree: each layer starts at step 0
    plain = engine_states(path, images, R + depth + offset, python)
    assert not np.array_equal(plain["v3"][:, -1], ours["v3"][:, -1])


def test_without_reset_interval_each_sample_runs_as_lava_dl_runs_one_from_its_start(tmp_path):
    """lava-dl's default is no reset: one sample is the network's run from rest, which the host's
    input reaches a step later here (layers without a bias agree step for step, one step on)."""
    layers = chain_layers(2, hidden_bias=False)
    path = write_netx(tmp_path / "chain.net", layers)
    images = np.random.default_rng(3).integers(0, 41, (2, 6))
    assert load_netx(path).graph.resets == {}
    ours = engine_states(path, images, 20)
    for s, image in enumerate(images):
        lava = lava_run(layers, image[None], 19)
        for j in range(len(LIF)):
            for key in ("v", "s") if j == 0 else ("u", "v", "s"):
                np.testing.assert_array_equal(ours[f"{key}{j}"][s, 1:], lava[f"{key}{j}"], err_msg=f"{key}{j}")
    assert ours["s2"].any()


def test_the_schedule_is_each_lif_layer_at_its_depth_and_the_float_model_follows(tmp_path):
    path = write_netx(tmp_path / "chain.net", chain_layers(0))
    model = load_netx(path, reset_interval=6, reset_offset=4)
    assert model.graph.resets == {"layer0": (6, 5), "layer1": (6, 0), "layer2": (6, 1), "layer3": (6, 2)}
    images = np.random.default_rng(0).integers(0, 41, (3, 6)).astype(float)
    with_reset = model.float_reference(images, 14)
    without = load_netx(path).float_reference(images, 14)
    assert not np.array_equal(with_reset.events["layer1"], without.events["layer1"])
    # up to layer 1's first reset (step 0 of the next period: 6) its events are the same
    np.testing.assert_array_equal(with_reset.events["layer1"][:, :6], without.events["layer1"][:, :6])


def test_a_one_dimensional_dense_weight_is_one_row_as_lava_dl_reshapes_it(tmp_path):
    """lava-dl reshapes a 1-D dense weight of n values to (out, n / out): PilotNet's last layer
    (10 values, one output) is one neuron reading ten."""
    layers = chain_layers(0)
    model = load_netx(write_netx(tmp_path / "chain.net", layers))
    proj = model.graph.projections["layer2_to_layer3"]
    assert model.graph.populations["layer3"].size == 1
    assert proj.weight.shape == (1, 5)
    np.testing.assert_array_equal(proj.weight.astype(np.int64) << proj.weight_exp, layers[3]["weight"])
    # a first layer stored 1-D: its inputs are the weight's values over its outputs
    first = [dict(layers[3], weight=np.arange(1, 7)[None] * 3)]
    graph = load_netx(write_netx(tmp_path / "first.net", first)).graph
    assert graph.populations["input"].size == 6 and graph.populations["layer0"].size == 1


def test_reset_interval_is_refused_where_lava_dl_would_not_reset(tmp_path):
    sdnn = {"type": "SDNN", "vThMant": 4}
    layers = [{"type": "input", "shape": [4], "weight": None, "bias": np.zeros(4), "neuron": sdnn},
              {"type": "dense", "shape": [3], "weight": np.ones((3, 4)), "bias": np.zeros(3), "neuron": sdnn}]
    path = write_netx(tmp_path / "sdnn.net", layers)
    with pytest.raises(UserError, match="SDNN"):
        load_netx(path, reset_interval=4)
    for bad in (0, -2, 1.5):
        with pytest.raises(UserError, match="reset_interval"):
            scenario_from_dict({"name": "x", "chip": "loihi2", "model": {"netx": str(path), "reset_interval": bad},
                                "input": {"dataset": "random"}, "timesteps": 4}, file="s.yaml")


def test_dense_delays_lava_dl_would_apply_are_refused_and_zero_ones_are_not(tmp_path):
    layers = chain_layers(0)
    layers[1]["delay"] = np.zeros(8, np.int64)
    assert load_netx(write_netx(tmp_path / "zero.net", layers)).graph.populations["layer1"].size == 8
    layers[1]["delay"] = np.arange(8)
    with pytest.raises(UserError, match="layer 1 .*delay"):
        load_netx(write_netx(tmp_path / "delays.net", layers))
