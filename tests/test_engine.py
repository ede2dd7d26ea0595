"""The event engine against the plain-numpy Reference, and its timing model."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import graph_of, make_chip, mlp_graph, random_graph
from neurosim.cores.neurocore import timing_costs
from neurosim.engine.engine import Engine
from neurosim.graph.graph import Dense, Population
from neurosim.mapping.mapper import map_graph
from neurosim.programs.reference import Reference

T = 8


def run_engine(graph, chip, inputs, steps=T, per_message=True, placement=None):
    """Per sample and step, every population's payload; per sample, every population's final state
    (with ``acc``, the input delivered for the next step); and the per-step counters. ``placement``:
    a scenario's mapping section (`MappingSpec`), by default pack."""
    mapping = map_graph(graph, chip, placement or "pack")
    engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0], per_message=per_message)
    payloads, states, counters = [], [], []
    for x in inputs:
        engine.reset()
        engine.set_input(graph.input_population, x)
        per_step = []
        for _ in range(steps):
            counters.append(engine.step())
            per_step.append({name: engine.payload[lo:hi].copy() for name, lo, hi, *_ in engine.pops})
        payloads.append(per_step)
        states.append({name: {**{k: v.copy() for k, v in engine.state_of(name).items()},
                              "acc": engine.accumulators(name).copy()} for name, lo, hi, *_ in engine.pops})
    return payloads, states, counters, mapping


def run_reference(graph, inputs, steps=T):
    ref = Reference(graph, len(inputs))
    ref.set_input(graph.input_population, inputs)
    payloads = [{k: v.copy() for k, v in ref.step().items()} for _ in range(steps)]
    return payloads, {name: {**ref.state_of(name), "acc": ref.acc[name]} for name in graph.populations}


def assert_engine_matches_reference(graph, chip, inputs, per_message=True, placement=None):
    """Compare; returns the reference payloads, the engine's counters and its mapping."""
    payloads, states, counters, mapping = run_engine(graph, chip, inputs, per_message=per_message,
                                                     placement=placement)
    ref_payloads, ref_states = run_reference(graph, inputs)
    for s in range(len(inputs)):
        for t in range(T):
            for name in graph.populations:
                np.testing.assert_array_equal(payloads[s][t][name], ref_payloads[t][name][s],
                                              err_msg=f"payload of {name}, sample {s}, step {t}")
        for name in graph.populations:
            for key, value in states[s][name].items():
                np.testing.assert_array_equal(value, ref_states[name][key][s], err_msg=f"{name}.{key}, sample {s}")
    return ref_payloads, counters, mapping


# Chips: one loihi2 chip (each population fits on one core), and a 2 x 2 system of tiny chips
# with 7 neurons per core, so populations are sliced across cores, routers and chips.
CHIPS = {"loihi2": {}, "sliced_2x2_chips": dict(neurons=7, routers_x=2, routers_y=1, cores_per_router=2,
                                                chips_x=2, chips_y=2)}


@pytest.mark.parametrize("chip_name", list(CHIPS))
@pytest.mark.parametrize("seed", range(4))
def test_engine_matches_reference_on_random_graphs(seed, chip_name):
    """Payloads of every population at every step and the final state are bit-identical."""
    graph = random_graph(seed)
    inputs = np.random.default_rng(seed).integers(0, 17, (3, 32))
    inputs[0, :5] = 0
    ref_payloads, counters, mapping = assert_engine_matches_reference(graph, make_chip(**CHIPS[chip_name]), inputs)
    if chip_name == "sliced_2x2_chips":
        assert mapping.n_cores == 14 and mapping.chips_used == 4
        assert sum(c.links[:-1].sum() for c in counters) > 0, "messages crossed chip-to-chip links"
    # not vacuous: every on-chip population had events, and the sigma-delta ones were graded
    for name in ("a", "d", "b", "c"):
        assert sum(np.count_nonzero(p[name]) for p in ref_payloads) > 0, name
    graded = np.concatenate([p["b"].ravel() for p in ref_payloads])
    assert np.any(np.abs(graded) > 1)


@pytest.mark.parametrize("weight_exp", [-6, -1, 0, 3, 7])
def test_engine_matches_reference_for_weight_exponents(weight_exp):
    """Every projection with the same exponent, large ones saturating the 16-bit input."""
    graph = random_graph(7, exps=(weight_exp,) * 6)
    inputs = np.random.default_rng(0).integers(-40, 40, (2, 32))
    _, counters, _ = assert_engine_matches_reference(graph, make_chip(neurons=16), inputs)
    if weight_exp >= 3:
        assert sum(c.overflow for c in counters) > 0, "large exponents saturate"


def test_engine_per_message_timing_does_not_change_results():
    """per_message on and off give the same events and state; queueing only adds time."""
    graph = random_graph(3)
    inputs = np.random.default_rng(3).integers(0, 17, (2, 32))
    chip = make_chip(**CHIPS["sliced_2x2_chips"])
    on = run_engine(graph, chip, inputs, per_message=True)
    off = run_engine(graph, chip, inputs, per_message=False)
    for s in range(len(inputs)):
        for t in range(T):
            for name in graph.populations:
                np.testing.assert_array_equal(on[0][s][t][name], off[0][s][t][name])
    for c_on, c_off in zip(on[2], off[2]):
        np.testing.assert_array_equal(c_on.synops, c_off.synops)
        assert np.all(c_on.synapse_done_ns >= c_off.synapse_done_ns - 1e-9)
    assert any(np.any(c_on.synapse_done_ns > c_off.synapse_done_ns) for c_on, c_off in zip(on[2], off[2]))


def test_engine_counters_match_an_independent_count():
    """Events, synaptic ops and messages per step agree with counts from the graph's CSR rows."""
    graph = random_graph(1)
    inputs = np.random.default_rng(1).integers(0, 17, (1, 32))
    payloads, _, counters, mapping = run_engine(graph, make_chip(**CHIPS["sliced_2x2_chips"]), inputs)
    for t, c in enumerate(counters):
        synops = 0
        for proj in graph.projections.values():
            fan = np.diff(proj.to_csr().indptr)
            synops += int(fan[payloads[0][t][proj.source] != 0].sum())
        events = sum(np.count_nonzero(p) for p in payloads[0][t].values())
        assert c.events == events
        assert c.synops.sum() == synops
        assert c.msgs_in.sum() == c.msgs_out.sum() == \
            sum(int(np.diff(mapping.routes.axon_ptr)[mapping.offsets[n]:mapping.offsets[n] + len(p)][p != 0].sum())
                for n, p in payloads[0][t].items())
        assert c.spikes.sum() == events


def test_engine_reset_makes_samples_independent():
    """After reset, a sample gives the same result whatever ran before it."""
    graph = mlp_graph(np.random.default_rng(5))
    rng = np.random.default_rng(6)
    x, other = rng.integers(0, 17, 16), rng.integers(0, 17, 16)
    chip = make_chip()
    alone = run_engine(graph, chip, [x])[1][0]
    after = run_engine(graph, chip, [other, x])[1][1]
    for name in graph.populations:
        for key in alone[name]:
            np.testing.assert_array_equal(alone[name][key], after[name][key])


# ---------------------------------------------------------------------------------------------
# timing


def _one_message_graph(n_pad: int):
    """A LIF neuron that spikes at step 1 (large bias) and one target neuron, with `n_pad`
    unconnected neurons placed between them, one per core, to push the target further away."""
    pops = [Population("src", "loihi_lif", 1, {"vth": 100, "bias_mant": 4095, "bias_exp": 7})]
    if n_pad:
        pops.append(Population("pad", "loihi_lif", n_pad, {"vth": 100}))
    pops.append(Population("dst", "loihi_lif", 1, {"vth": 100}))
    proj = Dense("w", "src", "dst", np.array([[3]], np.int8), 0)
    return graph_of(pops, [proj], input_pop="src", readout_pop="dst")


def _arrival_ns(graph, chip) -> float:
    """When the destination core's synapse unit has finished the first step's single message."""
    mapping = map_graph(graph, chip)
    engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0])
    c = engine.step()
    dst_core = mapping.core_of[mapping.offsets["dst"]]
    assert c.events == 1 and c.msgs_in[dst_core] == 1 and c.synops.sum() == 1
    return float(c.synapse_done_ns[dst_core])


def test_message_timing_by_path():
    """Arrival = update + spike out + message out + path latency + message in + one synop, with the
    path priced per direction (loihi2: local 2.1 ns, E-W hop 4.1 ns, N-S hop 6.5 ns, chip link 27 ns)."""
    base = 4.2 + 3.0 + 0.51 + 3.2 + 0.7   # first neuron's update, its event, its message, axon in, one synop
    one_core_each = dict(neurons=1)
    cases = {
        "same router": (make_chip(**one_core_each), 0, 2.1),
        "one hop east": (make_chip(**one_core_each, cores_per_router=1), 0, 4.1),
        "three hops east": (make_chip(**one_core_each, cores_per_router=1), 2, 3 * 4.1),
        "one hop north-south": (make_chip(**one_core_each, cores_per_router=1, routers_x=1, routers_y=4), 0, 6.5),
        "next chip": (make_chip(**one_core_each, cores_per_router=1, routers_x=1, routers_y=1, chips_x=3), 0, 27.0),
    }
    for what, (chip, n_pad, path_ns) in cases.items():
        assert _arrival_ns(_one_message_graph(n_pad), chip) == pytest.approx(base + path_ns), what


def test_more_hops_arrive_later():
    """Moving the target further along the mesh row makes its message arrive later, hop by hop."""
    chip = make_chip(neurons=1, cores_per_router=1)
    arrivals = [_arrival_ns(_one_message_graph(n), chip) for n in range(6)]
    assert np.all(np.diff(arrivals) == pytest.approx(4.1))


def test_synapse_unit_queues_messages():
    """Messages reaching one core are served one after another: with many sources spiking into
    one core, its synapse unit finishes no earlier than the sum of their synop times."""
    n = 30
    pops = [Population("src", "loihi_lif", n, {"vth": 100, "bias_mant": 4095, "bias_exp": 7}),
            Population("dst", "loihi_lif", 50, {"vth": 100})]
    graph = graph_of(pops, [Dense("w", "src", "dst", np.ones((50, n), np.int8), 0)],
                     input_pop="src", readout_pop="dst")
    chip = make_chip(neurons=50, cores_per_router=1)
    mapping = map_graph(graph, chip)
    costs = timing_costs(chip, graph, mapping)[0]
    c = Engine(graph, mapping, costs).step()
    dst = mapping.core_of[mapping.offsets["dst"]]
    assert c.events == n and c.synops[dst] == n * 50
    last_emit = n * (costs.t_update_ns + costs.t_spike_ns + costs.t_message_ns)
    assert c.synapse_done_ns[dst] >= n * (50 * costs.t_synop_ns + costs.t_message_in_ns)
    assert c.synapse_done_ns[dst] >= last_emit + costs.axon_latency_ns.min() + 50 * costs.t_synop_ns


@pytest.mark.parametrize("case", ["random", "ties", "bunched", "sorted", "reversed", "one"])
def test_arrival_order_is_a_stable_argsort(case):
    """The synapse unit's linear-time ordering equals a stable argsort, ties in order sent."""
    from neurosim.engine.kernels import arrival_order

    rng = np.random.default_rng(7)
    n = 3000
    arrival = {
        "random": rng.uniform(0, 1e4, n),
        "ties": rng.integers(0, 20, n).astype(np.float64) * 2.1,
        "bunched": np.concatenate([rng.uniform(0, 1e-9, n - 2), [0.0, 1e6]]),
        "sorted": np.sort(rng.uniform(0, 50, n)),
        "reversed": np.sort(rng.uniform(0, 50, n))[::-1].copy(),
        "one": np.array([3.0]),
    }[case]
    tags = np.arange(len(arrival), dtype=np.int64)           # each message's place in the order sent
    ordered, ordered_tags = np.zeros(len(arrival)), np.zeros(len(arrival), np.int64)
    arrival_order(arrival, tags, ordered, ordered_tags, np.zeros(5 * len(arrival) + 2, np.int32))
    order = np.argsort(arrival, kind="stable")
    np.testing.assert_array_equal(ordered_tags, order)
    np.testing.assert_array_equal(ordered, arrival[order])
