"""Recent Loihi 2 features: multi-port neuron programs, weight formats, synapse memory by
encoding, graded payloads, routing-table limits, spread placement, chip files with a base,
chip-to-chip links, the runtime model's bounds, active neuron updates, generated-weight
models, and the CLI's --override and plot --scaling."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import (LOIHI2, REPO, graph_of, loihi2_data, make_chip, mlp_graph, rand_csr, rand_int8, scenario_dict,
                     tiny_model_files, write_model)
from neurosim.cores.neurocore import (BOUNDS, chip_links, chip_route, binding_bound, message_bits, step_cost,
                                      timing_costs)
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.graph.graph import Conv2d, Csr, Dense, Population, Sparse
from neurosim.zoo.loader import load_model
from neurosim.mapping.mapper import HOST, map_graph
from neurosim.programs.reference import Reference
from neurosim.runs import run
from neurosim.spec.chip import chip_from_dict, load_chip
from neurosim.traces.trace import read_trace

CHIPS = REPO / "chips"


def _line_of(text: str, fragment: str) -> int:
    """1-based line of the first line of `text` containing `fragment`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def _chip(**changes) -> object:
    """The loihi2 chip with fields replaced by key path, keys joined by ``__``
    (``core_kinds__neurocore__time_ns__synop=1.0``)."""
    data = loihi2_data()
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        assert last in node, dotted
        node[last] = value
    return chip_from_dict(data, file="<test chip>")


def _spiker(name: str, size: int, **params) -> Population:
    """A LIF population whose every neuron spikes in the first step (a large bias)."""
    return Population(name, "loihi_lif", size, {"vth": 100, "bias_mant": 4095, "bias_exp": 7, **params})


def _run_cli(monkeypatch, *args: str) -> tuple[int, str, str]:
    """`neurosim ARGS` through `neurosim.cli.main.main` (which maps user errors to status 2), in process."""
    from neurosim.cli.main import main

    monkeypatch.setattr(sys, "argv", ["neurosim", *args])
    with CliRunner().isolation() as (out, err, _):
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue().decode(), err.getvalue().decode()


# ---------------------------------------------------------------------------------------------
# 1. multi-port neuron programs, end to end against the numpy reference

T = 6


def multiport_graph(seed: int):
    """graded inputs -> graded_relu and sigma_delta -> gate_product (ports a, b) -> gated_recurrence
    (ports f, c) -> readout; and graded inputs -> graded cuba_lif -> readout."""
    rng = np.random.default_rng(seed)
    pops = [
        Population("inp", "graded_source", 12),
        Population("r", "graded_relu", 10, {"bias": 3, "shift": 2, "payload_bits": 12}),
        Population("sd", "sigma_delta", 10, {"vth": 4, "activation": "identity", "payload_bits": 16}),
        Population("gp", "gate_product", 8, {"frac_bits": 8, "activation_a": "relu", "payload_bits": 16}),
        Population("gr", "gated_recurrence", 8, {"frac_bits": 6, "payload_bits": 16}),
        Population("cl", "cuba_lif", 8, {"vth": 20, "du": 1000, "dv": 200, "graded": True, "payload_bits": 12}),
        Population("out", "loihi_lif", 6, {"du": 4095, "dv": 0, "vth": None}),
    ]
    projs = [
        Dense("inp_r", "inp", "r", rand_int8(rng, (10, 12), -20, 40), 0),
        Sparse("inp_sd", "inp", "sd", rand_csr(rng, 12, 10, 0.5), 10, -1),
        Dense("r_gp", "r", "gp", rand_int8(rng, (8, 10), -8, 7), -1, port="a", weight_bits=4),
        Sparse("sd_gp", "sd", "gp", rand_csr(rng, 10, 8, 0.6), 8, -2, port="b"),
        Dense("gp_gr", "gp", "gr", rand_int8(rng, (8, 8), 0, 31), -2, port="f", weight_bits=5,
              sign_mode="excitatory"),
        Dense("r_gr", "r", "gr", rand_int8(rng, (8, 10), -32, 31), 0, port="c", weight_bits=6),
        Dense("inp_cl", "inp", "cl", rand_int8(rng, (8, 12), -10, 40), 2),
        Dense("cl_out", "cl", "out", rand_int8(rng, (6, 8)), 0),
        Sparse("gr_out", "gr", "out", rand_csr(rng, 8, 6, 0.7), 6, -3),
    ]
    return graph_of(pops, projs, input_pop="inp", readout_pop="out")


def _engine_vs_reference(graph, chip, inputs, steps=T):
    """Run the engine and the reference on every sample; assert every payload, state and
    accumulator is identical. Returns the reference's payloads [step][population][sample] and the mapping."""
    mapping = map_graph(graph, chip)
    engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0])
    ref = Reference(graph, len(inputs))
    has_input = "values" in engine.state_of(graph.input_population)
    if has_input:
        ref.set_input(graph.input_population, inputs)
    ref_payloads = [{k: v.copy() for k, v in ref.step().items()} for _ in range(steps)]
    for s, x in enumerate(inputs):
        engine.reset()
        if has_input:
            engine.set_input(graph.input_population, x)
        for t in range(steps):
            engine.step()
            for name, lo, hi, *_ in engine.pops:
                np.testing.assert_array_equal(engine.payload[lo:hi], ref_payloads[t][name][s],
                                              err_msg=f"payload of {name}, sample {s}, step {t}")
        for name in graph.populations:
            for key, value in engine.state_of(name).items():
                np.testing.assert_array_equal(value, ref.state_of(name)[key][s], err_msg=f"{name}.{key}")
            np.testing.assert_array_equal(engine.accumulators(name), ref.acc[name][s], err_msg=f"{name}.acc")
    return ref_payloads, mapping


MULTIPORT_CHIPS = {"one_loihi2_chip": {},
                   "sliced_2x2_chips": dict(neurons=4, routers_x=2, routers_y=1, cores_per_router=2,
                                            chips_x=2, chips_y=2)}


@pytest.mark.parametrize("chip_name", list(MULTIPORT_CHIPS))
@pytest.mark.parametrize("seed", [0, 1])
def test_multiport_programs_match_reference(seed, chip_name):
    """gate_product and gated_recurrence fed on two ports each, and a graded cuba_lif, are bit-exact."""
    graph = multiport_graph(seed)
    inputs = np.random.default_rng(100 + seed).integers(0, 17, (3, 12))
    payloads, mapping = _engine_vs_reference(graph, make_chip(**MULTIPORT_CHIPS[chip_name]), inputs)
    if chip_name == "sliced_2x2_chips":
        assert mapping.n_cores == 14 and mapping.chips_used == 4
    else:
        assert mapping.n_cores == 6 and mapping.chips_used == 1
    for name in ("r", "sd", "gp", "gr", "cl"):
        values = np.concatenate([p[name].ravel() for p in payloads])
        assert np.any(np.abs(values) > 1), f"{name} sends graded values"
    assert np.any(np.concatenate([p["gr"].ravel() for p in payloads]) < 0), "gated_recurrence goes negative"


def test_ports_feed_their_own_accumulators(loihi2):
    """A projection into port b adds to the second accumulator row only; swapping ports changes the output."""
    pops = [Population("inp", "graded_source", 2), Population("gp", "gate_product", 1, {"frac_bits": 0})]
    w_a, w_b = np.array([[3, 0]], np.int8), np.array([[0, 5]], np.int8)

    def product(port_a: str, port_b: str) -> tuple[int, np.ndarray]:
        graph = graph_of(pops, [Dense("pa", "inp", "gp", w_a, 0, port=port_a),
                                Dense("pb", "inp", "gp", w_b, 0, port=port_b)], input_pop="inp", readout_pop="gp")
        mapping = map_graph(graph, loihi2)
        engine = Engine(graph, mapping, timing_costs(loihi2, graph, mapping)[0])
        engine.set_input("inp", np.array([2, 7]))
        engine.step()
        acc = engine.accumulators("gp").copy()
        engine.step()
        return int(engine.payload[mapping.offsets["gp"]]), acc

    value, acc = product("a", "b")
    np.testing.assert_array_equal(acc, [[6], [35]])
    assert value == 6 * 35
    assert product("", "b")[0] == 6 * 35, "an empty port is the first"
    value, acc = product("a", "a")
    np.testing.assert_array_equal(acc, [[41], [0]])
    assert value == 0


# ---------------------------------------------------------------------------------------------
# 2. projection formats


def _one_projection(proj, target_kind: str = "loihi_lif", n_in: int = 2, n_out: int = 1):
    pops = [Population("inp", "graded_source", n_in),
            Population("hid", target_kind, n_out, {"vth": 10} if target_kind == "loihi_lif" else {})]
    return graph_of(pops, [proj], input_pop="inp", readout_pop="hid")


WEIGHT_CASES = [  # bits, sign mode, weights, accepted
    (4, "mixed", [-8, 7], True), (4, "mixed", [8, 0], False), (4, "mixed", [-9, 0], False),
    (1, "mixed", [-1, 0], True), (1, "mixed", [1, 0], False),
    (3, "excitatory", [0, 7], True), (3, "excitatory", [8, 0], False), (3, "excitatory", [-1, 0], False),
    (7, "inhibitory", [-127, 0], True), (7, "inhibitory", [1, 0], False), (7, "excitatory", [127, 0], True),
]


@pytest.mark.parametrize("bits, sign_mode, weights, accepted", WEIGHT_CASES)
def test_weights_outside_weight_bits_are_a_user_error(loihi2, bits, sign_mode, weights, accepted):
    """Weights must lie within their projection's weight_bits and sign mode."""
    graph = _one_projection(Dense("w", "inp", "hid", np.array([weights], np.int8), 0, weight_bits=bits,
                                  sign_mode=sign_mode))
    if accepted:
        assert map_graph(graph, loihi2).n_cores == 1
        return
    with pytest.raises(UserError) as err:
        map_graph(graph, loihi2)
    assert err.value.field == "projections.w.weight_bits"
    assert f"{bits}-bit {sign_mode}" in err.value.message


def test_sparse_and_conv_weights_are_checked_too(loihi2):
    """The weight range check covers sparse rows and conv kernels."""
    csr = Csr(np.array([0, 1, 2]), np.array([0, 0], np.int32), np.array([3, 9], np.int8))
    with pytest.raises(UserError, match=r"weights range over \[3, 9\]") as err:
        map_graph(_one_projection(Sparse("s", "inp", "hid", csr, 1, 0, weight_bits=4)), loihi2)
    assert err.value.field == "projections.s.weight_bits"
    kernel = np.zeros((1, 1, 2, 2), np.int8)
    kernel[0, 0, 1, 1] = -3
    conv = Conv2d("c", "inp", "hid", kernel, (1, 2, 2), 1, 0, 0, weight_bits=7, sign_mode="excitatory")
    with pytest.raises(UserError) as err:
        map_graph(_one_projection(conv, n_in=4, n_out=1), loihi2)
    assert err.value.field == "projections.c.weight_bits"


@pytest.mark.parametrize("sign_mode", ["excitatory", "inhibitory"])
def test_unsigned_weights_of_eight_bits_are_refused(loihi2, sign_mode):
    """Excitatory or inhibitory weights of 8 bits do not fit int8 and are refused."""
    graph = _one_projection(Dense("w", "inp", "hid", np.zeros((1, 2), np.int8), 0, weight_bits=8,
                                  sign_mode=sign_mode))
    with pytest.raises(UserError, match="at most 7 bits") as err:
        map_graph(graph, loihi2)
    assert err.value.field == "projections.w.weight_bits"


@pytest.mark.parametrize("kind, port", [("loihi_lif", "a"), ("gate_product", "c"), ("gated_recurrence", "b")])
def test_unknown_port_is_a_user_error(loihi2, kind, port):
    """A port the target's kind does not have names projections.<name>.port and the kind's ports."""
    graph = _one_projection(Dense("w", "inp", "hid", np.ones((1, 2), np.int8), 0, port=port), target_kind=kind)
    with pytest.raises(UserError) as err:
        map_graph(graph, loihi2)
    assert err.value.field == "projections.w.port"
    assert repr(port) in err.value.message and kind in err.value.message


@pytest.mark.parametrize("key, value, fragment", [("weight_bits", 4, "weight_bits: 4"),
                                                   ("port", "gate", "port: gate")])
def test_projection_format_error_in_a_model_names_file_and_line(tmp_path, loihi2, key, value, fragment):
    """Loaded from a model folder, the error has the model file, the field's line and the field."""
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(2))       # w_in weights span [-20, 40]
    spec["projections"]["w_in"][key] = value
    folder = write_model(tmp_path / "m", spec, arrays, attrs)
    graph, text = load_model(folder)
    with pytest.raises(UserError) as err:
        map_graph(graph, loihi2)
    assert err.value.file == str(folder / "model.yaml")
    assert err.value.field == f"projections.w_in.{key}"
    assert err.value.line == _line_of(text, fragment)


# ---------------------------------------------------------------------------------------------
# 3. synapse memory by weight width and encoding


def test_synapse_memory_by_weight_bits_and_encoding(loihi2):
    """Dense 4-bit synapses take 4/8 byte each, sparse ones (4 + 13 index bits)/8, 8-bit dense 1 byte."""
    rng = np.random.default_rng(3)
    csr = rand_csr(rng, 10, 6, 0.5)
    csr = Csr(csr.indptr, csr.indices, np.clip(csr.weight, -8, 7).astype(np.int8))
    pops = [Population("inp", "graded_source", 10)] + [Population(n, "loihi_lif", 6, {"vth": 10})
                                                      for n in ("d4", "s4", "d8")]
    projs = [Dense("w_d4", "inp", "d4", rand_int8(rng, (6, 10), -8, 7), 0, weight_bits=4),
             Sparse("w_s4", "inp", "s4", csr, 6, 0, weight_bits=4),
             Dense("w_d8", "inp", "d8", rand_int8(rng, (6, 10)), 0)]
    graph = graph_of(pops, projs, input_pop="inp", readout_pop="d8")
    mapping = map_graph(graph, loihi2)
    assert loihi2.core.synapses.sparse_index_bits == 13
    used = {s.population: mapping.utilisation["synapse_memory_bytes"][s.core] for s in mapping.slices if s.core >= 0}
    assert csr.n_synapses > 0
    assert used == {"d4": 60 * 4 / 8, "s4": pytest.approx(csr.n_synapses * 17 / 8), "d8": 60.0}


def test_fewer_weight_bits_fit_more_neurons_per_core():
    """With synapse memory binding, 4-bit weights fit twice the neurons of 8-bit ones on a core."""
    chip = make_chip(synapse_memory_bytes=500)
    rng = np.random.default_rng(4)
    per_core = {}
    for bits in (8, 4):
        graph = graph_of([Population("inp", "graded_source", 50), Population("hid", "loihi_lif", 40, {"vth": 9})],
                         [Dense("w", "inp", "hid", rand_int8(rng, (40, 50), -8, 7), 0, weight_bits=bits)],
                         input_pop="inp", readout_pop="hid")
        mapping = map_graph(graph, chip)
        assert np.all(mapping.utilisation["synapse_memory_bytes"] <= 500)
        per_core[bits] = (int(mapping.utilisation["neurons"].max()), mapping.n_cores)
    assert per_core == {8: (10, 4), 4: (20, 2)}


# ---------------------------------------------------------------------------------------------
# 4. graded payloads


def test_payload_bits_above_the_chip_are_refused():
    """A payload wider than the core's graded_payload_bits names populations.<pop>.params.payload_bits."""
    chip = _chip(core_kinds__neurocore__graded_payload_bits=16)

    def graph(bits):
        return graph_of([Population("inp", "graded_source", 4, {"payload_bits": 8}),
                         Population("r", "graded_relu", 3, {"payload_bits": bits})],
                        [Dense("w", "inp", "r", np.ones((3, 4), np.int8), 0)], input_pop="inp", readout_pop="r")

    assert map_graph(graph(16), chip).n_cores == 1
    with pytest.raises(UserError, match="17-bit graded payloads.*at most 16 bits") as err:
        map_graph(graph(17), chip)
    assert err.value.field == "populations.r.params.payload_bits"
    with pytest.raises(UserError) as err:     # the default 24-bit source payload is over 16 too
        map_graph(graph_of([Population("inp", "graded_source", 4), Population("h", "loihi_lif", 2, {"vth": 1})],
                           [Dense("w", "inp", "h", np.ones((2, 4), np.int8), 0)], input_pop="inp", readout_pop="h"),
                  chip)
    assert err.value.field == "populations.inp.params.payload_bits"


def test_loihi1_refuses_graded_populations():
    """On Loihi 1 (graded_payload_bits 0) graded populations are refused; binary ones map."""
    chip, _ = load_chip(CHIPS / "loihi1.yaml")
    assert chip.core.graded_payload_bits == 0
    binary = graph_of([Population("inp", "spike_source", 4), Population("h", "cuba_lif", 2, {"vth": 1})],
                      [Dense("w", "inp", "h", np.ones((2, 4), np.int8), 0)], input_pop="inp", readout_pop="h")
    assert map_graph(binary, chip).n_cores == 1
    graded = [graph_of([Population("inp", "graded_source", 4), Population("h", "loihi_lif", 2, {"vth": 1})],
                       [Dense("w", "inp", "h", np.ones((2, 4), np.int8), 0)], input_pop="inp", readout_pop="h"),
              graph_of([Population("inp", "spike_source", 4),
                        Population("h", "cuba_lif", 2, {"vth": 1, "graded": True})],
                       [Dense("w", "inp", "h", np.ones((2, 4), np.int8), 0)], input_pop="inp", readout_pop="h")]
    for graph, pop in zip(graded, ("inp", "h")):
        with pytest.raises(UserError, match="binary spikes only") as err:
            map_graph(graph, chip)
        assert err.value.field == f"populations.{pop}.params.payload_bits"


def test_message_bits_add_the_payload(loihi2):
    """A graded message has noc.message_bits + payload_bits; a binary spike noc.message_bits."""
    pops = [Population("inp", "graded_source", 3), Population("sd", "sigma_delta", 2, {"vth": 1, "payload_bits": 10}),
            Population("lif", "loihi_lif", 2, {"vth": 1}), Population("cb", "cuba_lif", 2, {"vth": 1}),
            Population("cg", "cuba_lif", 2, {"vth": 1, "graded": True, "payload_bits": 12})]
    projs = [Dense(f"w_{p.name}", "inp", p.name, np.ones((2, 3), np.int8), 0) for p in pops[1:]]
    graph = graph_of(pops, projs, input_pop="inp", readout_pop="lif")
    mapping = map_graph(graph, loihi2)
    assert loihi2.chip.noc.message_bits == 64
    np.testing.assert_array_equal(message_bits(loihi2, graph, mapping),
                                  [88] * 3 + [74] * 2 + [64] * 2 + [64] * 2 + [76] * 2)


def test_graded_messages_carry_their_payload_over_chip_links(tmp_path, fake_dataset):
    """Across two chips, a 16-bit sigma-delta layer's messages load the link with 64 + 16 bits each,
    and host messages of the graded input 64 + 24 bits each."""
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(1))
    spec["populations"]["hid"] = {"kind": "sigma_delta", "size": 20, "params": {"vth": 5, "payload_bits": 16}}
    folder = write_model(tmp_path / "sd", spec, arrays, attrs)
    overrides = {"chip.mesh.routers_x": 1, "chip.mesh.routers_y": 1, "chip.mesh.cores_per_router": 1,
                 "system.chips_x": 2}
    result = run(scenario_dict(folder, overrides=overrides), out_dir=tmp_path / "traces")
    trace = read_trace(result.trace_path)
    assert result.summary["chips_used"] == 2 and result.summary["matches_reference"] is True
    sent = trace["cores"]["messages_out"][:, 0]
    assert sent.sum() > 0
    np.testing.assert_array_equal(trace["links"]["bits"][:, 0], sent * (64 + 16))
    host_messages = trace["steps"]["messages"] - trace["cores"]["messages_out"].sum(axis=1)
    np.testing.assert_array_equal(trace["links"]["host_bits"], host_messages * (64 + 24))
    assert result.summary["inter_chip_bits_per_inference"] == pytest.approx(sent.sum() * 80 / 6)


# ---------------------------------------------------------------------------------------------
# 5. routing-table limit


def _routes_graph():
    """16 source neurons on one core; source i targets one neuron on destination core i // 4."""
    indptr = np.arange(17, dtype=np.int64)
    indices = np.array([(i // 4) * 16 + i % 4 for i in range(16)], np.int32)
    csr = Csr(indptr, indices, np.ones(16, np.int8))
    pops = [_spiker("src", 16), Population("dst", "loihi_lif", 64, {"vth": 100})]
    return graph_of(pops, [Sparse("w", "src", "dst", csr, 64, 0)], input_pop="src", readout_pop="dst")


def _independent_routes(graph, mapping) -> dict[int, int]:
    """Per source core, its distinct destination cores, from the CSR rows and core_of alone."""
    pairs = set()
    for proj in graph.projections.values():
        csr = proj.to_csr()
        src = np.repeat(np.arange(len(csr.indptr) - 1), np.diff(csr.indptr)) + mapping.offsets[proj.source]
        dst = mapping.core_of[csr.indices.astype(np.int64) + mapping.offsets[proj.target]]
        pairs |= {(int(a), int(b)) for a, b in zip(mapping.core_of[src], dst) if a != HOST}
    out: dict[int, int] = {}
    for a, _ in pairs:
        out[a] = out.get(a, 0) + 1
    return out


@pytest.mark.parametrize("routes, src_cores", [(4096, 1), (2, 2), (1, 4)])
def test_routes_limit_slices_sources_more_finely(routes, src_cores):
    """With a small routes limit the source is split until every core has at most `routes` destination cores."""
    graph = _routes_graph()
    mapping = map_graph(graph, make_chip(neurons=16, routes=routes))
    assert sum(1 for s in mapping.slices if s.population == "src") == src_cores
    assert mapping.utilisation["routes"].max() <= routes
    independent = _independent_routes(graph, mapping)
    for core, n in enumerate(mapping.utilisation["routes"]):
        assert n == independent.get(core, 0)
    assert mapping.limits["routes"] == routes


def test_routes_limit_keeps_results_exact():
    """A source sliced for the routes limit still gives the reference's results."""
    graph = _routes_graph()
    payloads, mapping = _engine_vs_reference(graph, make_chip(neurons=16, routes=1), np.zeros((1, 16)), steps=3)
    assert mapping.n_cores == 8
    assert np.count_nonzero(payloads[0]["src"]) == 16, "every source spiked into its destination core"


def test_single_neuron_over_the_routes_limit_names_population():
    """One neuron with more destination cores than `routes` is a UserError naming it and 'routes'."""
    graph = graph_of([_spiker("src", 1), Population("dst", "loihi_lif", 64, {"vth": 100})],
                     [Dense("w", "src", "dst", np.ones((64, 1), np.int8), 0)], input_pop="src", readout_pop="dst")
    with pytest.raises(UserError) as err:
        map_graph(graph, make_chip(neurons=16, routes=3))
    assert err.value.field == "populations.src"
    assert "routes" in err.value.message and "4 destination cores" in err.value.message
    assert "exceeded by 1" in err.value.message


# ---------------------------------------------------------------------------------------------
# 6. spread placement


def test_spread_uses_more_cores_with_the_same_results(tiny_model, fake_dataset):
    """placement: spread uses more of loihi2's cores than pack, never more than it has, same results."""
    pack = run(scenario_dict(tiny_model), write=False).summary
    spread = run(scenario_dict(tiny_model, mapping={"placement": "spread"}), write=False).summary
    assert pack["cores_used"] == 2
    assert pack["cores_used"] < spread["cores_used"] <= 128
    assert spread["matches_reference"] is True and pack["matches_reference"] is True
    for key in ("accuracy", "reference_accuracy", "synaptic_ops", "mean_sparsity", "overflows"):
        assert spread[key] == pack[key], key


@pytest.mark.parametrize("routers_x", [1, 2, 3, 5, 9, 40])
def test_spread_never_uses_more_cores_than_the_system(routers_x):
    """map_graph(..., 'spread') stays within the system's cores, and uses at least as many as pack."""
    graph = mlp_graph(np.random.default_rng(8))
    chip = make_chip(routers_x=routers_x, routers_y=1, cores_per_router=2)
    pack = map_graph(graph, chip).n_cores
    spread = map_graph(graph, chip, "spread")
    assert pack <= spread.n_cores <= chip.total_cores
    assert len({s.core for s in spread.slices if s.core >= 0}) == spread.n_cores
    if chip.total_cores >= 2 * pack:
        assert spread.n_cores > pack


def test_spread_fits_wherever_pack_fits_under_a_routes_limit():
    """Where pack fits within the routes limit, spread does too (at worst with pack's cores)."""
    graph = _routes_graph()
    chip = make_chip(neurons=16, routes=2, routers_x=4, routers_y=1, cores_per_router=2)
    pack = map_graph(graph, chip)
    assert (pack.n_cores, chip.total_cores) == (6, 8)
    spread = map_graph(graph, chip, "spread")
    assert pack.n_cores <= spread.n_cores <= chip.total_cores
    assert spread.utilisation["routes"].max() <= 2


# ---------------------------------------------------------------------------------------------
# 7. chip files with base


@pytest.mark.parametrize("file, chips_x, chips_y", [("loihi2_kapoho_point.yaml", 4, 2), ("loihi2_32chip.yaml", 8, 4)])
def test_board_chip_files_take_loihi2_figures(monkeypatch, file, chips_x, chips_y):
    """The board files have their chip count and every other figure of loihi2."""
    monkeypatch.chdir(REPO)
    board, text = load_chip(CHIPS / file)
    base, _ = load_chip(LOIHI2)
    assert board.n_chips == chips_x * chips_y and (board.system.chips_x, board.system.chips_y) == (chips_x, chips_y)
    assert board.total_cores == 128 * chips_x * chips_y
    assert board.name == file.removesuffix(".yaml") and "base: loihi2" in text
    assert board.chip == base.chip and board.core_kinds == base.core_kinds
    assert board.system.link == base.system.link and board.system.host == base.system.host


def test_sanafe_chip_has_sanafe_figures_over_loihi1(monkeypatch):
    """loihi1_sanafe: SANA-FE's per-op figures, loihi1's limits, mesh and unchanged costs."""
    monkeypatch.chdir(REPO)
    sanafe, _ = load_chip(CHIPS / "loihi1_sanafe.yaml")
    loihi1, _ = load_chip(CHIPS / "loihi1.yaml")
    core, base = sanafe.core, loihi1.core
    assert core.limits == base.limits and core.synapses == base.synapses and core.graded_payload_bits == 0
    assert sanafe.chip.mesh == loihi1.chip.mesh and sanafe.system == loihi1.system
    assert (core.energy_pj.synop, core.energy_pj.neuron_update, core.energy_pj.neuron_active,
            core.energy_pj.spike_out, core.energy_pj.message_out) == (35.5, 51.2, 21.6, 69.3, 111.0)
    assert (core.time_ns.synop, core.time_ns.message_in, core.time_ns.neuron_active, core.time_ns.synmem_read) == \
        (3.8, 16.0, 3.7, 0.0)
    assert core.energy_pj.synmem_read == base.energy_pj.synmem_read
    assert (sanafe.chip.noc.hop_pj_north_south, sanafe.chip.noc.local_pj) == (4.2, 0.0)
    assert sanafe.chip.noc.hop_pj_east_west == loihi1.chip.noc.hop_pj_east_west == 3.0
    assert (sanafe.chip.barrier_ns, sanafe.chip.static_power_w) == (1400.0, 0.0)


def test_base_resolves_beside_the_chip_file_from_any_directory(tmp_path, monkeypatch):
    """A shipped board file loads by its absolute path whatever the working directory."""
    monkeypatch.chdir(tmp_path)
    assert load_chip(CHIPS / "loihi2_kapoho_point.yaml")[0].n_chips == 8


def test_missing_base_names_file_and_field(tmp_path):
    """A base that does not exist is a UserError at the file's `base` line."""
    path = tmp_path / "board.yaml"
    path.write_text("name: board\nbase: no_such_chip\nsystem: {chips_x: 2}\n")
    with pytest.raises(UserError, match="no_such_chip") as err:
        load_chip(path)
    assert (err.value.file, err.value.field, err.value.line) == (str(path), "base", 2)


def test_base_cycle_names_file_and_field(tmp_path):
    """Two chip files naming each other as base, or one naming itself, are a UserError at `base`."""
    a, b, c = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    a.write_text("base: b.yaml\nname: a\n")
    b.write_text("name: b\nbase: a.yaml\n")
    c.write_text("base: c.yaml\nname: c\n")
    with pytest.raises(UserError, match="leads back") as err:
        load_chip(a)
    assert err.value.field == "base" and err.value.file in (str(a), str(b))
    assert err.value.line == (1 if err.value.file == str(a) else 2)
    with pytest.raises(UserError, match="leads back") as err:
        load_chip(c)
    assert (err.value.file, err.value.field, err.value.line) == (str(c), "base", 1)


def test_base_chain_overrides_nested_fields(tmp_path):
    """A chip over a chip over loihi2: each level replaces only the fields it gives."""
    (tmp_path / "mid.yaml").write_text(f"base: {LOIHI2}\nname: mid\nchip: {{noc: {{local_ns: 9.0}}}}\n")
    top = tmp_path / "top.yaml"
    top.write_text("base: mid.yaml\nname: top\ncore_kinds: {neurocore: {energy_pj: {synop: 1.5}}}\n")
    chip, _ = load_chip(top)
    base, _ = load_chip(LOIHI2)
    assert chip.name == "top" and chip.chip.noc.local_ns == 9.0 and chip.core.energy_pj.synop == 1.5
    assert chip.core.energy_pj.neuron_update == base.core.energy_pj.neuron_update
    assert chip.chip.noc.hop_ns_east_west == base.chip.noc.hop_ns_east_west


# ---------------------------------------------------------------------------------------------
# 8. chip-to-chip links


def _route_names(chip, pairs):
    links = chip_links(chip, np.array([s for s, _ in pairs]), np.array([d for _, d in pairs]),
                        np.full(len(pairs), 64), np.zeros(len(pairs), bool))
    return [[links.names[i] for i in links.path_links[links.path_ptr[k]:links.path_ptr[k + 1]]]
            for k in range(len(pairs))], links


def test_chip_routes_go_x_then_y():
    """XY chip routes: on a 2 x 2 grid 0 -> 3 crosses c0>c1 then c1>c3; on 3 x 2, 5 -> 0 goes west then north."""
    names, links = _route_names(make_chip(chips_x=2, chips_y=2), [(0, 3), (3, 0), (1, 2), (2, 2), (0, 1)])
    assert names == [["c0>c1", "c1>c3"], ["c3>c2", "c2>c0"], ["c1>c0", "c0>c2"], [], ["c0>c1"]]
    assert sorted(links.names) == sorted(["c0>c1", "c0>c2", "c1>c0", "c1>c3", "c2>c3", "c2>c0", "c3>c2", "c3>c1"])
    names, links = _route_names(make_chip(chips_x=3, chips_y=2), [(5, 0), (0, 5)])
    assert names == [["c5>c4", "c4>c3", "c3>c0"], ["c0>c1", "c1>c2", "c2>c5"]]
    assert len(links.names) == 14
    assert len(chip_route(make_chip(chips_x=3, chips_y=2), 0, 5)) == 3


def test_message_from_chip_0_to_chip_3_loads_both_links():
    """One spike from a core on chip 0 to one on chip 3 puts its bits on c0>c1 and c1>c3 only."""
    chip = make_chip(neurons=1, routers_x=1, routers_y=1, cores_per_router=1, chips_x=2, chips_y=2)
    pops = [_spiker("src", 1)] + [Population(n, "loihi_lif", 1, {"vth": 100}) for n in ("pad1", "pad2", "dst")]
    graph = graph_of(pops, [Dense("w", "src", "dst", np.array([[3]], np.int8), 0)], input_pop="src",
                     readout_pop="dst")
    mapping = map_graph(graph, chip)
    assert list(mapping.core_chip) == [0, 1, 2, 3]
    costs, links = timing_costs(chip, graph, mapping)
    c = Engine(graph, mapping, costs).step()
    assert c.events == 1 and c.links.sum() == 2
    per_link, host_bits = links.loads_bits(c.path_msgs)
    assert dict(zip(links.names, per_link)) == {n: (64 if n in ("c0>c1", "c1>c3") else 0) for n in links.names}
    assert host_bits == 0
    assert costs.path_latency_ns[costs.axon_path[0]] == pytest.approx(2 * chip.system.link.latency_ns)


def test_model_too_large_for_one_chip_runs_across_chips(tmp_path, tiny_model, fake_dataset):
    """Small chips: the tiny model maps onto several chips, bits cross links, results stay exact."""
    overrides = {"core.limits.neurons": 4, "chip.mesh.routers_x": 1, "chip.mesh.routers_y": 1,
                 "chip.mesh.cores_per_router": 2, "system.chips_x": 2, "system.chips_y": 2}
    result = run(scenario_dict(tiny_model, overrides=overrides), out_dir=tmp_path)
    s = result.summary
    assert s["cores_used"] == 8 and s["chips_used"] == 4 and s["matches_reference"] is True
    trace = read_trace(result.trace_path)
    bits = trace["links"]["bits"]
    assert bits.sum() > 0 and s["inter_chip_bits_per_inference"] > 0
    assert s["inter_chip_bits_per_inference"] == pytest.approx(bits.sum() / s["samples"])
    assert len(trace["links"]["names"]) == 8


# ---------------------------------------------------------------------------------------------
# 9. runtime-model bounds


@pytest.mark.parametrize("encoding, bits, per_message, reads", [("dense", 8, 20, 3), ("dense", 4, 20, 2),
                                                                  ("sparse", 4, 13, 4), ("sparse", 8, 13, 5)])
def test_step_cost_bounds_by_hand(encoding, bits, per_message, reads):
    """k messages of s synapses into a core of n neurons: dendrite n x t_update, synapse k s x t_synop,
    synmem k ceil(s bits / word) x t_read; the step is bound by the largest."""
    chip = _chip(core_kinds__neurocore__time_ns__synmem_read=3.0)
    k, n = 3, 20
    if encoding == "dense":
        proj = Dense("w", "src", "dst", np.ones((n, k), np.int8), 0, weight_bits=bits)
    else:
        row = np.arange(per_message, dtype=np.int32)
        proj = Sparse("w", "src", "dst", Csr(np.arange(k + 1, dtype=np.int64) * per_message, np.tile(row, k),
                                             np.ones(k * per_message, np.int8)), n, 0, weight_bits=bits)
    graph = graph_of([_spiker("src", k), Population("dst", "loihi_lif", n, {"vth": 100})], [proj],
                     input_pop="src", readout_pop="dst")
    mapping = map_graph(graph, chip)
    syn_bits = bits + (chip.core.synapses.sparse_index_bits if encoding == "sparse" else 0)
    assert reads == math.ceil(per_message * syn_bits / chip.core.synapses.word_bits)
    np.testing.assert_array_equal(mapping.routes.synmem_reads, [reads] * k)
    costs, links = timing_costs(chip, graph, mapping)
    c = Engine(graph, mapping, costs).step()
    dst = mapping.core_of[mapping.offsets["dst"]]
    assert c.events == k and c.msgs_in[dst] == k
    assert c.synops[dst] == k * per_message and c.synmem_reads[dst] == k * reads
    chips_used, chip_index = np.unique(mapping.core_chip, return_inverse=True)
    neurons = mapping.core_neurons.astype(np.float64)
    cost = step_cost(chip, mapping, links, c, neurons, chip_index, len(chips_used))
    t = chip.core.time_ns
    assert cost.bounds_ns[BOUNDS.index("dendrite")] == pytest.approx(n * t.neuron_update)
    assert cost.bounds_ns[BOUNDS.index("synapse")] == pytest.approx(k * per_message * t.synop)
    assert cost.bounds_ns[BOUNDS.index("synmem")] == pytest.approx(k * reads * 3.0)
    assert cost.bounds_ns[BOUNDS.index("barrier")] == 0.0
    # the binding bound is the largest (the dendrite bound and the neuron unit's timeline tie here)
    assert cost.bounds_ns[binding_bound(cost.bounds_ns)] == pytest.approx(cost.bounds_ns.max(), rel=1e-9)
    assert cost.busy_ns[dst] >= cost.bounds_ns[:3].max() - 1e-9


@pytest.mark.parametrize("bounds, expected", [
    ([1.0, 3.0, 2.0, 0.0, 0.5, 2.9], 1),
    ([5.0, 5.0, 5.0, 5.0, 5.0, 5.0], 0),
    ([0.0, 0.0, 7.0, 0.0, 7.0, 7.0], 2),
    ([0.0, 0.0, 0.0, 0.0, 10.0, 10.0 * (1 + 1e-12)], 4),
    ([0.0, 0.0, 0.0, 0.0, 1.0, 2.0], 5),
])
def test_binding_bound_is_the_largest_preferring_the_earlier(bounds, expected):
    """The binding bound is the largest, the earliest in BOUNDS on a tie (up to rounding)."""
    assert binding_bound(np.array(bounds)) == expected


# ---------------------------------------------------------------------------------------------
# 10. active neuron updates


def test_active_updates_and_neuron_energy_on_loihi1():
    """On loihi1 a core's active updates are its neurons with input, nonzero v or nonzero bias, and its
    neuron energy is neurons x 52 + active x 29 + events x 0 pJ."""
    data = yaml.safe_load((CHIPS / "loihi1.yaml").read_text())
    data["core_kinds"]["neurocore"]["limits"]["neurons"] = 8
    chip = chip_from_dict(data, file="loihi1")
    e, t = chip.core.energy_pj, chip.core.time_ns
    assert (e.neuron_update, e.neuron_active, e.spike_out, t.neuron_update, t.neuron_active) == (52, 29, 0, 5.3, 3.1)
    rng = np.random.default_rng(11)
    bias_mant = np.where(rng.random(20) < 0.3, 2, 0).astype(np.int64)
    pops = [Population("inp", "spike_source", 16),
            Population("hid", "loihi_lif", 20, {"du": 3000, "dv": 500, "vth": 8, "bias_mant": bias_mant}),
            Population("out", "loihi_lif", 10, {"du": 2000, "dv": 100, "vth": 15})]
    graph = graph_of(pops, [Dense("w1", "inp", "hid", rand_int8(rng, (20, 16), -10, 30, density=0.3), 0),
                            Dense("w2", "hid", "out", rand_int8(rng, (10, 20), -10, 30, density=0.5), 0)],
                     input_pop="inp", readout_pop="out")
    mapping = map_graph(graph, chip)
    costs, links = timing_costs(chip, graph, mapping)
    assert costs.count_active
    engine = Engine(graph, mapping, costs)
    x = np.where(rng.random(16) < 0.4, 1, 0)
    engine.set_input("inp", x)
    ref = Reference(graph, 1)
    ref.set_input("inp", x[None])
    bias = {"hid": bias_mant != 0, "out": np.zeros(10, bool)}
    chips_used, chip_index = np.unique(mapping.core_chip, return_inverse=True)
    neurons = mapping.core_neurons.astype(np.float64)
    partial = 0
    for step in range(8):
        active = {name: (ref.acc[name][0] != 0).any(axis=0) | (ref.state_of(name)["v"][0] != 0) | bias[name]
                  for name in ("hid", "out")}
        c = engine.step()
        payload = ref.step()
        expected_active = np.zeros(mapping.n_cores, np.int64)
        events = np.zeros(mapping.n_cores, np.int64)
        for s in mapping.slices:
            if s.core >= 0:
                expected_active[s.core] = active[s.population][s.lo:s.hi].sum()
                events[s.core] = np.count_nonzero(payload[s.population][0, s.lo:s.hi])
        np.testing.assert_array_equal(c.active, expected_active, err_msg=f"step {step}")
        np.testing.assert_array_equal(c.spikes[:mapping.n_cores], events)
        cost = step_cost(chip, mapping, links, c, neurons, chip_index, len(chips_used))
        np.testing.assert_allclose(cost.neuron_pj, neurons * 52 + expected_active * 29 + events * 0)
        assert cost.bounds_ns[0] == pytest.approx((neurons * 5.3 + expected_active * 3.1).max())
        partial += int(np.any((expected_active > 0) & (expected_active < neurons)))
    assert partial > 0, "some core had some but not all of its neurons active"


# ---------------------------------------------------------------------------------------------
# 11. generated-weight models


def generated_spec(seed: int = 5) -> dict:
    return {
        "name": "gen",
        "weights": {"generated": {"seed": seed}},
        "dataset": "random",
        "input": {"population": "inp", "encoding": "spike_constant"},
        "readout": {"population": "out", "mode": "spike_count"},
        "populations": {"inp": {"kind": "spike_source", "size": 32},
                        "hid": {"kind": "loihi_lif", "size": 48, "params": {"du": 4095, "dv": 300, "vth": 10}},
                        "out": {"kind": "loihi_lif", "size": 10, "params": {"vth": 15}}},
        "projections": {
            "w1": {"kind": "sparse", "source": "inp", "target": "hid", "weight_bits": 6,
                   "generate": {"fan_in": 4, "window": 9, "weight_low": 1, "weight_high": 20}},
            "w2": {"kind": "sparse", "source": "hid", "target": "out",
                   "generate": {"fan_in": 6, "window": None, "weight_low": -5, "weight_high": 30}},
        },
    }


def write_generated(folder: Path, spec: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def test_generated_weights_depend_only_on_the_seed(tmp_path):
    """The same seed gives identical synapses; another seed different ones."""
    a, _ = load_model(write_generated(tmp_path / "a", generated_spec(5)))
    b, _ = load_model(write_generated(tmp_path / "b", generated_spec(5)))
    c, _ = load_model(write_generated(tmp_path / "c", generated_spec(6)))
    assert a.weights_sha256 == "generated, seed 5"
    for name in ("w1", "w2"):
        pa, pb, pc = a.projections[name], b.projections[name], c.projections[name]
        for key in ("indptr", "indices", "weight"):
            np.testing.assert_array_equal(getattr(pa.csr, key), getattr(pb.csr, key))
        assert not (np.array_equal(pa.csr.indices, pc.csr.indices) and np.array_equal(pa.csr.weight, pc.csr.weight))
    assert a.projections["w1"].weight_bits == 6


def test_generated_targets_get_fan_in_distinct_sources_in_their_window(tmp_path):
    """Every target has exactly fan_in distinct sources, all in the window centred on its place."""
    spec = generated_spec()
    graph, _ = load_model(write_generated(tmp_path / "g", spec))
    for name, proj in graph.projections.items():
        g = spec["projections"][name]["generate"]
        n_src, n_tgt = graph.populations[proj.source].size, proj.n_target
        width = min(g["window"] or n_src, n_src)
        csr = proj.csr
        src = np.repeat(np.arange(n_src), np.diff(csr.indptr))
        assert csr.n_synapses == n_tgt * g["fan_in"]
        assert g["weight_low"] <= csr.weight.min() and csr.weight.max() <= g["weight_high"]
        for j in range(n_tgt):
            sources = src[csr.indices == j]
            centre = j * n_src // n_tgt
            window = {(centre - width // 2 + o) % n_src for o in range(width)}
            assert len(sources) == len(set(sources.tolist())) == g["fan_in"], (name, j)
            assert set(sources.tolist()) <= window, (name, j)


@pytest.mark.parametrize("change, field, words", [
    (lambda s: s["populations"]["hid"]["params"].update(dv={"h5": "params/dv"}), "populations.hid.params.dv",
     "expected a number"),
    (lambda s: s["projections"]["w2"].pop("generate"), None, "generate block"),
    (lambda s: s["projections"]["w2"].update(kind="dense"), None, "expected kind: sparse"),
])
def test_generated_model_mistakes(tmp_path, change, field, words):
    """A {h5: ...} parameter, a projection without generate, or a dense generated projection is refused."""
    spec = generated_spec()
    change(spec)
    folder = write_generated(tmp_path / "bad", spec)
    with pytest.raises(UserError) as err:
        load_model(folder)
    assert words in err.value.message and err.value.file == str(folder / "model.yaml")
    if field:
        assert err.value.field == field
        assert err.value.line == _line_of((folder / "model.yaml").read_text(), "h5: params/dv") - 1


def test_generated_weights_outside_weight_bits_are_refused(tmp_path, loihi2):
    """Generated weights beyond the projection's weight_bits are refused when mapped, at its weight_bits line."""
    spec = generated_spec()
    spec["projections"]["w1"]["weight_bits"] = 4            # weights drawn up to 20, 4 bits hold at most 7
    folder = write_generated(tmp_path / "g", spec)
    graph, text = load_model(folder)
    with pytest.raises(UserError) as err:
        map_graph(graph, loihi2)
    assert err.value.field == "projections.w1.weight_bits" and err.value.file == str(folder / "model.yaml")
    assert err.value.line == _line_of(text, "weight_bits: 4")


def test_random_dataset_run_has_no_accuracy(tmp_path):
    """A generated model on the random dataset runs, matches the reference, and reports accuracy NaN."""
    folder = write_generated(tmp_path / "gen", generated_spec())
    s = run(scenario_dict(folder, input={"dataset": "random", "samples": 3}, timesteps=4), write=False).summary
    assert s["samples"] == 3 and s["matches_reference"] is True
    assert math.isnan(s["accuracy"]) and math.isnan(s["reference_accuracy"])
    assert s["synaptic_ops"] > 0


def test_cli_prints_na_for_unlabelled_inputs(tmp_path):
    """`neurosim run` on the random dataset prints accuracy n/a."""
    from neurosim.cli import cli

    folder = write_generated(tmp_path / "gen", generated_spec())
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(scenario_dict(folder, input={"dataset": "random", "samples": 2},
                                                     timesteps=3)))
    out = CliRunner().invoke(cli, ["run", str(scenario), "--out", str(tmp_path / "t"), "--no-progress"])
    assert out.exit_code == 0, out.output
    line = next(l for l in out.output.splitlines() if l.startswith("accuracy"))
    assert "n/a" in line and "%" not in line and "equals the numpy reference" in line


# ---------------------------------------------------------------------------------------------
# 12. the CLI: --override and plot --scaling

TWO_CHIPS = ["system.chips_x=2", "chip.mesh.routers_x=1", "chip.mesh.routers_y=1", "chip.mesh.cores_per_router=1"]


def test_cli_override_changes_the_run(tmp_path, tiny_model, fake_dataset):
    """--override FIELD=VALUE replaces chip fields: one core per chip puts the model on two chips."""
    from neurosim.cli import cli

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(scenario_dict(tiny_model)))
    args = ["run", str(scenario), "--out", str(tmp_path / "t"), "--no-progress"]
    plain = CliRunner().invoke(cli, args)
    assert plain.exit_code == 0, plain.output
    assert "1 chip(s)" in plain.output
    out = CliRunner().invoke(cli, args + [a for o in TWO_CHIPS for a in ("--override", o)])
    assert out.exit_code == 0, out.output
    assert "on 2 cores, 2 chip(s)" in out.output and "between chips per inference" in out.output
    trace = read_trace(Path(out.output.strip().splitlines()[-1].split()[-1]))
    assert trace.summary["chips_used"] == 2
    assert ast.literal_eval(trace.meta["overrides"]) == {"system.chips_x": 2, "chip.mesh.routers_x": 1,
                                             "chip.mesh.routers_y": 1, "chip.mesh.cores_per_router": 1}


def test_run_overrides_win_over_the_scenario_overrides(tiny_model, fake_dataset):
    """Overrides given to a run add to the scenario's own, and win where both name a field."""
    from neurosim.runs import prepare

    scenario = scenario_dict(tiny_model, overrides={"system.chips_x": 3, "core.energy_pj.synop": 1.5})
    setup = prepare(scenario, overrides={"system.chips_x": 2})
    assert setup.chip.system.chips_x == 2 and setup.chip.core.energy_pj.synop == 1.5
    assert dict(setup.scenario.overrides) == {"system.chips_x": 2, "core.energy_pj.synop": 1.5}


@pytest.mark.parametrize("override, words", [("nonsense", "expected FIELD=VALUE"), ("=3", "expected FIELD=VALUE"),
                                             ("system.no_such=1", "overrides.system.no_such")])
def test_cli_bad_override_exits_2_with_one_line(tmp_path, tiny_model, fake_dataset, monkeypatch, override, words):
    """A malformed or unknown --override is one error line and exit status 2, and no trace."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(scenario_dict(tiny_model)))
    code, out, err = _run_cli(monkeypatch, "run", str(scenario), "--out", str(tmp_path / "t"), "--no-progress",
                              "--override", override)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert "Traceback" not in out + err
    assert not (tmp_path / "t").exists()


def test_cli_plot_scaling(tmp_path, tiny_model, fake_dataset, monkeypatch):
    """plot --scaling writes DIR/scaling.png from one model on 1 and 2 chips; traces of two models exit 2."""
    from neurosim.cli import cli

    one = run(scenario_dict(tiny_model), out_dir=tmp_path / "t").trace_path
    two = run(scenario_dict(tiny_model), out_dir=tmp_path / "t",
              overrides={k: int(v) for k, v in (o.split("=") for o in TWO_CHIPS)}).trace_path
    assert read_trace(two).summary["chips_used"] == 2
    out = CliRunner().invoke(cli, ["plot", "--scaling", str(two), str(one), "--out", str(tmp_path / "png")])
    assert out.exit_code == 0, out.output
    target = tmp_path / "png" / "scaling.png"
    assert out.output.strip() == str(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 5000

    spec, arrays, attrs = tiny_model_files(np.random.default_rng(1))
    spec["name"] = "other"
    other = run(scenario_dict(write_model(tmp_path / "other", spec, arrays, attrs)), out_dir=tmp_path / "t").trace_path
    code, _, err = _run_cli(monkeypatch, "plot", "--scaling", str(one), str(other), "--out", str(tmp_path / "bad"))
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "different models" in lines[0], err
    assert not (tmp_path / "bad" / "scaling.png").exists()
