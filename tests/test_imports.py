"""Bring your own model: NIR and lava-dl netx files imported onto the chips, their float
references, NIR export and the round trip, input files and event digits."""

from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest

from helpers import REPO
from neurosim import datasets
from neurosim.errors import UserError
from neurosim.graph.graph import Graph
from neurosim.zoo.loader import load_model
from neurosim.interop.nir_export import export_nir, to_nir
from neurosim.interop.linear_maps import Coo, compose, conv_map, m_apply
from neurosim.interop.nir_import import load_nir
from neurosim.interop.nir_reference import conv
from neurosim.runs import run
from neurosim.traces.trace import read_trace

SHIPPED = REPO / "models"          # the shipped NIR and netx files: models/nir, models/netx
NIR_FILES = {"braille_noDelay_bias_zero.nir": (1e-4, "zero"), "braille_noDelay_noBias_subtract.nir": (1e-4, "subtract"),
             "cnn_sinabs.nir": (1.0, "zero")}
LOIHI2 = str(REPO / "chips" / "loihi2.yaml")


def scenario(model, **extra) -> dict:
    return {"name": "imported", "chip": LOIHI2, "model": model,
            "input": {"dataset": "random_spikes", "samples": 4, "rate": 0.1}, "timesteps": 32} | extra


# ---------------------------------------------------------------------------------------------
# the reference files


@pytest.mark.parametrize("name", sorted(NIR_FILES))
def test_reference_nir_graphs_run_on_loihi2_and_agree_with_their_float_model(name, tmp_path):
    dt, reset = NIR_FILES[name]
    extra = ({"input": {"dataset": "digits_events", "samples": 12}, "timesteps": 40} if name.startswith("cnn")
             else {})
    result = run(scenario({"nir": str(SHIPPED / "nir" / name), "dt": dt, "reset": reset}, **extra), out_dir=tmp_path)
    s = result.summary
    assert s["matches_reference"]                        # the engine equals the integer reference
    trace = read_trace(result.trace_path)
    conversion = trace["conversion"]
    # spike counts per population, chip against float (a recurrent graph drifts further apart)
    assert s["float_spike_agreement"] >= (0.95 if trace.attrs["conversion"]["feed_forward"] else 0.85)
    assert s["float_decisions_equal"] >= 0.5
    assert len(conversion["populations"]) >= 2
    assert set(conversion["errors"]["quantity"].astype(str)) >= {"weights", "threshold", "du", "dv"}
    assert np.all(conversion["errors"]["max_rel_error"] >= conversion["errors"]["mean_rel_error"])
    assert trace.meta["weights_sha256"] != ""


@pytest.mark.parametrize("name, chip", [("tiny.net", "loihi2.yaml"), ("oxford_network.net", "loihi2.yaml"),
                                        ("pilotnet_sdnn_network.net", "loihi2_32chip.yaml")])
def test_reference_netx_networks_run_on_loihi2_and_agree_with_their_float_model(name, chip, tmp_path):
    inputs = {"dataset": "random_spikes", "samples": 2, "rate": 0.1} if name.startswith("oxford") else \
        {"dataset": "random", "samples": 2}
    result = run(scenario({"netx": str(SHIPPED / "netx" / name)}, chip=str(REPO / "chips" / chip), input=inputs,
                          timesteps=12), out_dir=tmp_path)
    s = result.summary
    assert s["matches_reference"]
    assert s["float_spike_agreement"] >= 0.99
    assert s["weights_max_rel_error"] == 0.0              # netx weights are integers the chip holds exactly
    if "float_readout_rel_error" in s:
        assert s["float_readout_rel_error"] < 0.05


def test_netx_register_semantics():
    from neurosim.interop.netx_import import load_netx

    tiny = load_netx(SHIPPED / "netx" / "tiny.net").graph
    layer = tiny.populations["layer1"]
    with h5py.File(SHIPPED / "netx" / "tiny.net") as h5:
        neuron = h5["layer/1/neuron"]
        assert layer.kind == "loihi_lif"
        assert layer.params["du"] == neuron["iDecay"][()] - 1 and layer.params["dv"] == neuron["vDecay"][()]
        assert layer.params["vth"] == neuron["vThMant"][()] and layer.params["bias_exp"] == 6
        bias = h5["layer/1/bias"][()]
    assert np.array_equal(layer.params["bias_mant"], np.repeat(bias, 36).astype(np.int64))   # per channel
    pilot = load_netx(SHIPPED / "netx" / "pilotnet_sdnn_network.net").graph
    assert pilot.populations["input"].kind == "delta_source"
    hidden = pilot.populations["layer1"].params
    assert hidden["vth"] == 6 << 12 and hidden["state_exp"] == 6 and hidden["payload_bits"] == 16
    assert pilot.populations["layer10"].params["activation"] == "identity"     # sigma_output
    assert pilot.readout_mode == "membrane"


# ---------------------------------------------------------------------------------------------
# export and the round trip


def spike_steps(trace, population: str) -> np.ndarray:
    """The row of /steps each of a population's recorded spikes is stamped with (its step's start)."""
    start_ms = (trace["steps"]["time_ns"] - trace["steps"]["latency_ns"]) * 1e-6
    steps = np.searchsorted(start_ms, trace["spikes"][population]["timestamps"])
    assert np.array_equal(start_ms[steps], trace["spikes"][population]["timestamps"])
    return steps


def test_a_model_exported_to_nir_and_imported_again_gives_the_same_spikes(tmp_path):
    graph, _ = load_model(REPO / "models" / "digits_snn")
    path = export_nir(graph, tmp_path / "digits.nir")
    back = nir.read(str(path))
    assert {type(n).__name__ for n in back.nodes.values()} >= {"Input", "Affine", "IF", "I", "Output"}
    base = {"name": "a", "chip": LOIHI2, "input": {"dataset": "digits", "samples": 24}, "timesteps": 16,
            "record": {"spikes": True, "spike_samples": 24}}
    original = read_trace(run(base | {"model": str(REPO / "models" / "digits_snn")}, out_dir=tmp_path).trace_path)
    imported = read_trace(run(base | {"name": "b", "model": {"nir": str(path)}}, out_dir=tmp_path).trace_path)
    assert np.array_equal(original["layers"]["events"], imported["layers"]["events"])
    # the same spikes in the same steps; the steps' times may differ, as the imported neurons run
    # another program (their operations priced as such)
    for pop in original["spikes"]:
        assert np.array_equal(original["spikes"][pop]["node_ids"], imported["spikes"][pop]["node_ids"])
        assert np.array_equal(spike_steps(original, pop), spike_steps(imported, pop))
    assert np.array_equal(original["samples"]["prediction"], imported["samples"]["prediction"])


def test_a_convolutional_model_keeps_its_shapes_through_nir_and_its_spikes(tmp_path):
    """Populations that convolutions read or write are (C, H, W) nodes in NIR, and a dense layer
    after them reads through a Flatten node, so NIR's shape checks pass along every edge."""
    graph, _ = load_model(REPO / "models" / "scnn_digits")
    path = export_nir(graph, tmp_path / "scnn.nir")
    back = nir.read(str(path))
    kinds = {type(n).__name__ for n in back.nodes.values()}
    assert {"Input", "Conv2d", "Flatten", "Output"} <= kinds
    conv_in = next(n for n in back.nodes.values() if isinstance(n, nir.Input))
    assert len(conv_in.input_type["input"]) == 3
    base = {"name": "a", "chip": LOIHI2, "input": {"dataset": "digits", "samples": 6}, "timesteps": 8}
    original = read_trace(run(base | {"model": str(REPO / "models" / "scnn_digits")}, out_dir=tmp_path).trace_path)
    imported = read_trace(run(base | {"name": "b", "model": {"nir": str(path)}}, out_dir=tmp_path).trace_path)
    assert np.array_equal(original["samples"]["prediction"], imported["samples"]["prediction"])
    assert original["layers"]["events"].sum() == imported["layers"]["events"].sum()


def test_export_refuses_what_nir_cannot_express(tmp_path):
    lm, _ = load_model(REPO / "models" / "topographic_1m")
    with pytest.raises(UserError, match="dense"):
        to_nir(lm)


def test_cli_export(tmp_path):
    from click.testing import CliRunner

    from neurosim.cli import cli

    out = tmp_path / "d.nir"
    result = CliRunner().invoke(cli, ["export", str(REPO / "models" / "digits_snn"), str(out)])
    assert result.exit_code == 0, result.output
    assert isinstance(nir.read(str(out)), nir.NIRGraph)


# ---------------------------------------------------------------------------------------------
# the import's parts


def test_composed_maps_equal_the_product_of_their_matrices():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 7)) * (rng.random((5, 7)) < 0.5), rng.standard_normal((3, 5))
    c = compose(Coo.dense(b), Coo.dense(a))
    dense = np.zeros((3, 7))
    np.add.at(dense, (c.rows, c.cols), c.vals)
    assert np.allclose(dense, b @ a)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 1), ((2, 1), (1, 0), 1, 1),
                                                               (1, "same", 2, 1), (1, 1, 1, 2)])
def test_conv_maps_equal_a_direct_convolution(stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((4, 4 // groups, 3, 3))
    x = rng.standard_normal((1, 4, 9, 8))
    coo, bias, shape = conv_map(weight, (4, 9, 8), stride, padding, dilation, groups, np.arange(4.0))
    direct = conv(x, weight, stride, padding, dilation, groups) + np.arange(4.0)[None, :, None, None]
    assert direct.shape[1:] == shape
    assert np.allclose(m_apply(coo, x.ravel()) + bias, direct.ravel())


def small_graph(path, *, nested: bool = False, delay: float = 0.0, neuron: str = "LIF") -> None:
    """Input(6) -> Affine -> [Delay] -> neuron(5) -> Linear -> LI(3) -> Output, optionally nested."""
    rng = np.random.default_rng(2)
    n = 5
    cells = {"LIF": nir.LIF(tau=np.full(n, 4.0), r=np.full(n, 4.0), v_leak=np.zeros(n), v_threshold=np.full(n, 1.0),
                            v_reset=np.zeros(n)),
             "IF": nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
             "CubaLIF": nir.CubaLIF(tau_syn=np.full(n, 2.0), tau_mem=np.full(n, 4.0), r=np.full(n, 4.0),
                                    v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n),
                                    w_in=np.full(n, 2.0)),
             "Threshold": nir.Threshold(threshold=np.full(n, 0.5))}
    inner_nodes = {"fc": nir.Affine(weight=rng.uniform(-0.2, 1.0, (n, 6)), bias=np.full(n, 0.05)),
                   "cell": cells[neuron]}
    inner_edges = [("fc", "cell")]
    if delay:
        inner_nodes["delay"] = nir.Delay(delay=np.full(n, delay))
        inner_edges = [("fc", "delay"), ("delay", "cell")]
    readout = {"w2": nir.Linear(weight=rng.uniform(-0.5, 1.0, (3, n))),
               "li": nir.LI(tau=np.full(3, 8.0), r=np.full(3, 8.0), v_leak=np.zeros(3))}
    if nested:
        sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([6])}), **inner_nodes,
                                  "output": nir.Output(output_type={"output": np.array([n])})},
                           edges=[("input", "fc"), *inner_edges, ("cell", "output")])
        nodes = {"input": nir.Input(input_type={"input": np.array([6])}), "block": sub, **readout,
                 "output": nir.Output(output_type={"output": np.array([3])})}
        edges = [("input", "block"), ("block", "w2"), ("w2", "li"), ("li", "output")]
    else:
        nodes = {"input": nir.Input(input_type={"input": np.array([6])}), **inner_nodes, **readout,
                 "output": nir.Output(output_type={"output": np.array([3])})}
        edges = [("input", "fc"), *inner_edges, ("cell", "w2"), ("w2", "li"), ("li", "output")]
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges))


@pytest.mark.parametrize("neuron", ["LIF", "IF", "CubaLIF", "Threshold"])
def test_each_neuron_primitive_imports_and_agrees(neuron, tmp_path):
    small_graph(tmp_path / "g.nir", neuron=neuron)
    result = run(scenario({"nir": str(tmp_path / "g.nir")}, input={"dataset": "random_spikes", "samples": 8,
                                                                   "rate": 0.4}), write=False)
    assert result.summary["matches_reference"]
    assert result.summary["float_spike_agreement"] >= 0.9
    assert result.summary["float_decisions_equal"] >= 0.75


def test_nested_graphs_import_as_their_flat_equivalent(tmp_path):
    small_graph(tmp_path / "flat.nir")
    small_graph(tmp_path / "nested.nir", nested=True)
    flat, nested = load_nir(tmp_path / "flat.nir").graph, load_nir(tmp_path / "nested.nir").graph
    assert [p.size for p in flat.populations.values()] == [p.size for p in nested.populations.values()]
    for (a, pa), (b, pb) in zip(flat.projections.items(), nested.projections.items()):
        assert np.array_equal(pa.to_csr().weight, pb.to_csr().weight) and pa.weight_exp == pb.weight_exp


def test_a_delay_node_delays_the_events(tmp_path):
    small_graph(tmp_path / "d0.nir", neuron="IF")
    small_graph(tmp_path / "d3.nir", neuron="IF", delay=3.0)
    plain, delayed = load_nir(tmp_path / "d0.nir").graph, load_nir(tmp_path / "d3.nir").graph
    assert {p.delay for p in plain.projections.values() if p.target == "cell"} == {0}
    assert {p.delay for p in delayed.projections.values() if p.target == "cell"} == {3}
    base = scenario(None, input={"dataset": "random_spikes", "samples": 2, "rate": 0.4}, timesteps=20,
                    record={"spikes": True, "spike_samples": 1})
    a = read_trace(run(base | {"model": {"nir": str(tmp_path / "d0.nir")}}, out_dir=tmp_path).trace_path)
    b = read_trace(run(base | {"name": "d3", "model": {"nir": str(tmp_path / "d3.nir")}}, out_dir=tmp_path).trace_path)
    names = list(a["layers"]["names"].astype(str))
    cell = names.index("cell")
    assert np.array_equal(a["layers"]["events"][:17, cell], b["layers"]["events"][3:20, cell])


def test_bad_nir_files_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_nir(tmp_path / "missing.nir")
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="not a readable NIR graph") as err:
        load_nir(tmp_path / "junk.nir")
    assert err.value.file == str(tmp_path / "junk.nir")
    with pytest.raises(UserError, match="not found"):
        run(scenario({"nir": "nowhere.nir"}), write=False)


def test_a_silent_integrator_cannot_feed_a_neuron(tmp_path):
    n = 3
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n])}),
                                "li": nir.LI(tau=np.ones(n), r=np.ones(n), v_leak=np.zeros(n)),
                                "w": nir.Linear(weight=np.eye(n)),
                                "if": nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
                                "output": nir.Output(output_type={"output": np.array([n])})},
                         edges=[("input", "li"), ("li", "w"), ("w", "if"), ("if", "output")])
    nir.write(str(tmp_path / "bad.nir"), graph)
    with pytest.raises(UserError, match="sends nothing on the chip"):
        load_nir(tmp_path / "bad.nir")


# ---------------------------------------------------------------------------------------------
# inputs


def test_input_files_drive_a_run(tmp_path):
    small_graph(tmp_path / "g.nir", neuron="IF")
    spikes = (np.random.default_rng(3).random((3, 10, 6)) < 0.3).astype(np.int8)
    np.save(tmp_path / "in.npy", spikes)
    np.save(tmp_path / "labels.npy", np.array([0, 1, 2]))
    a = run(scenario({"nir": str(tmp_path / "g.nir")}, input={"file": str(tmp_path / "in.npy"),
                                                              "labels": str(tmp_path / "labels.npy")},
                     timesteps=None), write=False)
    assert a.summary["samples"] == 3 and a.summary["timesteps"] == 10
    assert a.summary["accuracy"] == a.summary["accuracy"]            # labelled: a number
    with h5py.File(tmp_path / "in.h5", "w") as h5:
        h5["inputs"] = spikes
        h5["labels"] = np.array([0, 1, 2])
    b = run(scenario({"nir": str(tmp_path / "g.nir")}, input={"file": str(tmp_path / "in.h5")}, timesteps=None),
            write=False)
    assert b.summary["accuracy"] == a.summary["accuracy"] and b.summary["synaptic_ops"] == a.summary["synaptic_ops"]


@pytest.mark.parametrize("content, expected", [(np.zeros((2, 3, 5)), "5 inputs per step"),
                                               (np.zeros(4), "expected numbers shaped"),
                                               (np.array([[np.nan] * 6]), "not finite")])
def test_bad_input_files_are_clear_errors(content, expected, tmp_path):
    small_graph(tmp_path / "g.nir", neuron="IF")
    np.save(tmp_path / "in.npy", content)
    with pytest.raises(UserError, match=expected):
        run(scenario({"nir": str(tmp_path / "g.nir")}, input={"file": str(tmp_path / "in.npy")}), write=False)


def test_event_digits_are_deterministic_events():
    a = datasets.digits_events("test", 12)
    b = datasets.digits_events("test", 12)
    assert a.inputs.shape == (360, 12, 2 * 34 * 34) and a.inputs.dtype == np.uint8
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.labels, datasets.load("digits", "test").labels)
    assert set(np.unique(a.inputs)) <= {0, 1}
    assert 0.001 < a.inputs.mean() < 0.2
    assert a.inputs[:, :, :34 * 34].sum() > 0 and a.inputs[:, :, 34 * 34:].sum() > 0   # ON and OFF


def test_imported_graphs_are_graphs():
    assert isinstance(load_nir(SHIPPED / "nir" / "braille_noDelay_bias_zero.nir", dt=1e-4).graph, Graph)


def _shaped(*shape):
    return {"input": np.array(shape)}


def conv2d_graph(path) -> None:
    """Input (2, 6, 6) -> Conv2d -> Scale -> CubaLIF -> AvgPool2d -> IF -> Flatten -> Linear -> CubaLI."""
    rng = np.random.default_rng(4)
    shape = (3, 6, 6)
    cells = nir.CubaLIF(tau_syn=np.full(shape, 2.0), tau_mem=np.full(shape, 4.0), r=np.full(shape, 4.0),
                        v_leak=np.zeros(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape),
                        w_in=np.full(shape, 2.0))
    pooled = (3, 3, 3)
    nodes = {"input": nir.Input(input_type=_shaped(2, 6, 6)),
             "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.uniform(-0.3, 1.0, (3, 2, 3, 3)), stride=1, padding=1,
                                dilation=1, groups=1, bias=np.full(3, 0.02)),
             "scale": nir.Scale(scale=np.full(shape, 0.8)), "cells": cells,
             "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "if2": nir.IF(r=np.full(pooled, 2.0), v_threshold=np.ones(pooled), v_reset=np.zeros(pooled)),
             "flat": nir.Flatten(input_type=_shaped(*pooled), start_dim=0, end_dim=-1),
             "w": nir.Linear(weight=rng.uniform(-0.5, 1.0, (4, 27))),
             "readout": nir.CubaLI(tau_syn=np.full(4, 2.0), tau_mem=np.full(4, 8.0), r=np.full(4, 8.0),
                                   v_leak=np.zeros(4), w_in=np.full(4, 2.0)),
             "output": nir.Output(output_type={"output": np.array([4])})}
    edges = [("input", "conv"), ("conv", "scale"), ("scale", "cells"), ("cells", "pool"), ("pool", "if2"),
             ("if2", "flat"), ("flat", "w"), ("w", "readout"), ("readout", "output")]
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges))


def conv1d_graph(path) -> None:
    """Input (2, 12) -> Conv1d -> IF (3, 12) -> Flatten -> Linear -> I."""
    rng = np.random.default_rng(5)
    shape = (3, 12)
    nodes = {"input": nir.Input(input_type=_shaped(2, 12)),
             "conv": nir.Conv1d(input_shape=12, weight=rng.uniform(-0.3, 1.0, (3, 2, 3)), stride=1, padding=1,
                                dilation=1, groups=1, bias=np.zeros(3)),
             "cells": nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape)),
             "flat": nir.Flatten(input_type=_shaped(*shape), start_dim=0, end_dim=-1),
             "w": nir.Linear(weight=rng.uniform(-0.5, 1.0, (4, 36))),
             "readout": nir.I(r=np.ones(4)),
             "output": nir.Output(output_type={"output": np.array([4])})}
    edges = [("input", "conv"), ("conv", "cells"), ("cells", "flat"), ("flat", "w"), ("w", "readout"),
             ("readout", "output")]
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges))


@pytest.mark.parametrize("builder", [conv2d_graph, conv1d_graph])
def test_conv_pool_scale_flatten_and_integrator_primitives_import_and_agree(builder, tmp_path):
    builder(tmp_path / "g.nir")
    model = load_nir(tmp_path / "g.nir")
    assert {p.kind for p in model.graph.populations.values()} <= {"spike_source", "cuba_lif"}
    result = run(scenario({"nir": str(tmp_path / "g.nir")}, input={"dataset": "random_spikes", "samples": 8,
                                                                   "rate": 0.5}), write=False)
    assert result.summary["matches_reference"]
    assert result.summary["float_spike_agreement"] >= 0.9
    assert result.summary["float_decisions_equal"] >= 0.75
