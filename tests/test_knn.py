"""Nearest-neighbour search as on Pohoiki Springs: the time-coded input, the generated patterns, the
relay groups pinned to their chips, the first-k-spikes readout that stops a query, its scoring
against numpy's exact neighbours and the integer reference, and the summary's lines."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

import neurosim
from helpers import make_chip
from neurosim.analysis.summary import summary_lines
from neurosim.errors import UserError
from neurosim.graph.graph import Csr, Dense, Graph, Population, Sparse
from neurosim.mapping.mapper import map_graph
from neurosim.programs import KINDS, build_state, run_step
from neurosim.programs.reference import dense_product
from neurosim.runs.first_spikes import FirstSpikes, answer_of, recall_at_k
from neurosim.spec.model import KnnModelFile
from neurosim.zoo.knn import draw_vectors, exact_neighbours, knn_graph, quantised, time_code
from neurosim.zoo.loader import load_model

REPO = Path(__file__).resolve().parents[1]
SMALL_MODEL = REPO / "models" / "knn_small"
SMALL_SCENARIO = REPO / "scenarios" / "loihi1_knn_small.yaml"


# ---------------------------------------------------------------------------------------------
# the time-coded input


@pytest.mark.parametrize("reference", [False, True])
def test_a_time_source_spikes_once_earlier_for_larger_values(reference):
    kind = KINDS["time_source"]
    ns = build_state(kind, {"window": 10, "value_max": 10, "value_min": 2}, 6)
    values = np.array([10, 2, 6, 1, 0, 13])            # top, bottom, middle, below, none, clipped
    ns.state["values"][:] = values
    acc = np.zeros((1, 6), np.int64)
    spikes, overflow = [], 0
    for _ in range(12):
        payload = np.zeros(6, np.int64)
        overflow += run_step(kind, acc, payload, ns, reference=reference)
        spikes.append(payload.copy())
    spikes = np.array(spikes)
    # t(v) = (10 - v) * 9 // 8: 10 -> 0, 2 -> 9, 6 -> 4; 13 clipped to 10 -> 0
    assert spikes.sum(axis=0).tolist() == [1, 1, 1, 0, 0, 1]
    assert np.flatnonzero(spikes[:, 0]).tolist() == [0]
    assert np.flatnonzero(spikes[:, 1]).tolist() == [9]
    assert np.flatnonzero(spikes[:, 2]).tolist() == [4]
    assert np.flatnonzero(spikes[:, 5]).tolist() == [0]
    assert overflow == 1                                # the clipped value, once


def test_the_time_source_kernel_equals_its_reference_over_random_values():
    kind = KINDS["time_source"]
    rng = np.random.default_rng(3)
    values = rng.integers(-5, 80, 200)
    states = [build_state(kind, {"window": 60, "value_max": 60, "value_min": 3}, 200) for _ in range(2)]
    for ns in states:
        ns.state["values"][:] = values
    for _ in range(70):
        out = []
        for ns, reference in zip(states, (False, True)):
            payload = np.zeros(200, np.int64)
            overflow = run_step(kind, np.zeros((1, 200), np.int64), payload, ns, reference=reference)
            out.append((payload.tolist(), overflow))
        assert out[0] == out[1]


def test_a_time_source_refuses_value_min_above_value_max():
    with pytest.raises(UserError, match="value_min"):
        build_state(KINDS["time_source"], {"window": 10, "value_max": 4, "value_min": 5}, 3)


def test_the_query_code_sends_two_spikes_per_component_apart_by_its_value():
    x = np.array([[0.1, -0.05, 0.001, 0.2]])
    values = time_code(x, window=60, gain=5.0, theta_e=0.1)      # components 0.5, -0.25, 0.005, 1.0
    plus, minus = values[0, :4], values[0, 4:]
    assert plus[2] == minus[2] == 0                              # below theta_e: not sent
    assert plus[3] == 60 and minus[3] == 1                      # +1: first and last step of the window
    t_plus, t_minus = 60 - plus, 60 - minus                      # each line's spike step (window - value)
    gap = (t_minus - t_plus)[[0, 1, 3]]
    assert np.allclose(gap, np.array([0.5, -0.25, 1.0]) * 59, atol=1.0)


# ---------------------------------------------------------------------------------------------
# the generated patterns


def small_spec(**changes) -> KnnModelFile:
    data = yaml.safe_load((SMALL_MODEL / "model.yaml").read_text())
    data.update(changes)
    return KnnModelFile.model_validate(data)


def test_patterns_are_unit_vectors_drawn_the_same_from_the_same_seed():
    spec = small_spec().generated
    a, b = draw_vectors(spec, 300, (spec.seed, 1)), draw_vectors(spec, 300, (spec.seed, 1))
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    other = draw_vectors(spec.model_copy(update={"seed": spec.seed + 1}), 300, (spec.seed + 1, 1))
    assert not np.array_equal(a, other)
    weights = quantised(a, 40)
    assert weights.dtype == np.int8 and np.abs(weights).max() == 40


def test_exact_neighbours_are_the_most_similar_patterns():
    rng = np.random.default_rng(0)
    patterns = rng.standard_normal((50, 8)).astype(np.float32)
    patterns /= np.linalg.norm(patterns, axis=1, keepdims=True)
    queries = patterns[[3, 7]] + 0.01
    found = exact_neighbours(patterns, queries, 3)
    brute = np.argsort(-(queries @ patterns.T), axis=1, kind="stable")[:, :3]
    assert found.tolist() == brute.tolist()
    assert found[:, 0].tolist() == [3, 7]


def test_the_model_stores_w_e_minus_e_on_each_chip_with_its_relays():
    graph, _ = load_model(SMALL_MODEL)
    spec = graph.spec
    assert graph.k == spec.k and len(graph.readout_populations) == spec.chips
    weights = quantised(graph.patterns, spec.weight_max)
    stored = []
    for c in range(spec.chips):
        assert graph.populations[f"relay_{c}"].chip == c and graph.populations[f"patterns_{c}"].chip == c
        w = graph.projections[f"match_{c}"].weight
        half = w.shape[1] // 2
        assert np.array_equal(w[:, half:], -w[:, :half])
        stored.append(w[:, :half])
    assert np.array_equal(np.concatenate(stored), weights)


def test_a_model_too_big_for_memory_is_refused_before_drawing(tmp_path):
    data = yaml.safe_load((SMALL_MODEL / "model.yaml").read_text())
    data["generated"] |= {"patterns": 100_000_000, "dimensions": 8192}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="memory") as err:
        load_model(tmp_path)
    assert err.value.field == "generated"


def test_a_ramp_no_bias_can_hold_is_refused(tmp_path):
    data = yaml.safe_load((SMALL_MODEL / "model.yaml").read_text()) | {"ramp": 4097}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="ramp"):
        load_model(tmp_path)


# ---------------------------------------------------------------------------------------------
# populations pinned to chips


def pinned_graph(chips: list[int | None], size: int = 6) -> Graph:
    """Host spikes -> a relay and a store per entry of ``chips`` (pinned there, or not)."""
    pops = {"in": Population("in", "spike_source", size)}
    projections = {}
    eye = Csr(np.arange(size + 1, dtype=np.int64), np.arange(size, dtype=np.int32), np.ones(size, np.int8))
    for c, chip in enumerate(chips):
        pops[f"relay_{c}"] = Population(f"relay_{c}", "loihi_lif", size, {"vth": 0}, chip=chip)
        pops[f"store_{c}"] = Population(f"store_{c}", "loihi_lif", 10, {"vth": 100}, chip=chip)
        projections[f"b_{c}"] = Sparse(f"b_{c}", "in", f"relay_{c}", eye, size, 0, weight_bits=2)
        projections[f"m_{c}"] = Dense(f"m_{c}", f"relay_{c}", f"store_{c}", np.ones((10, size), np.int8), 0)
    return Graph("pinned", pops, projections, "in", "store_0", "spike_count", "any")


def test_pinned_populations_land_on_their_chips_and_others_fill_in_order():
    chip = make_chip(chips_x=4, chips_y=1, routers_x=2, routers_y=2, cores_per_router=2, neurons=4)
    graph = pinned_graph([0, 2, 3])
    mapping = map_graph(graph, chip)
    for s in mapping.slices:
        if s.core >= 0:
            assert mapping.core_chip[s.core] == graph.populations[s.population].chip, s
    assert sorted(set(mapping.core_chip.tolist())) == [0, 2, 3]
    unpinned = map_graph(pinned_graph([None, None]), chip)
    assert unpinned.core_chip.tolist() == (np.arange(unpinned.n_cores) // chip.cores_per_chip).tolist()


@pytest.mark.parametrize("chips, message", [([0, 9], "the system has 4 chip"), ([2, 1], "order of their chips")])
def test_pins_the_system_cannot_honour_are_errors(chips, message):
    chip = make_chip(chips_x=4, chips_y=1, routers_x=2, routers_y=2, cores_per_router=2, neurons=4)
    with pytest.raises(UserError, match=message) as err:
        map_graph(pinned_graph(chips), chip)
    assert err.value.field.startswith("populations.")


def test_a_pinned_population_that_overflows_its_chip_is_an_error():
    chip = make_chip(chips_x=2, chips_y=1, routers_x=1, routers_y=1, cores_per_router=2, neurons=4)
    with pytest.raises(UserError, match="cannot hold"):
        map_graph(pinned_graph([0]), chip)


# ---------------------------------------------------------------------------------------------
# the readout and the reference's product


def test_the_answer_is_the_earliest_spikes_lowest_number_first():
    first = np.array([-1, 5, 3, 5, -1, 3])
    assert answer_of(first, 3).tolist() == [2, 5, 1]
    assert answer_of(np.array([-1, 4, -1]), 3).tolist() == [1, -1, -1]
    readout = FirstSpikes([(10, 13), (20, 22)], 2)     # two populations, a relay between them
    counts = np.zeros(12, np.int64)
    readout.start()
    counts[11] = 1                                      # the second population's second neuron
    assert not readout.update(counts, 0)
    counts[5] = 1                                       # a neuron between them: not the readout's
    counts[1] = 1
    assert readout.update(counts, 1)
    assert readout.answer().tolist() == [4, 1]
    assert recall_at_k(np.array([[4, 1], [0, -1]]), np.array([[1, 2], [0, 3]])) == 0.5


def test_the_references_row_product_equals_the_matrix_product():
    rng = np.random.default_rng(5)
    matrix = rng.integers(-128, 128, (300, 40)).astype(np.int64)
    for density in (0.0, 0.01, 0.5):
        payload = (rng.random((7, 300)) < density) * rng.integers(1, 4, (7, 300))
        assert np.array_equal(dense_product(payload, matrix), payload @ matrix)


# ---------------------------------------------------------------------------------------------
# runs


@pytest.fixture(scope="module")
def small_run():
    """The small scenario on 6 queries, in memory."""
    scenario = yaml.safe_load(SMALL_SCENARIO.read_text()) | {"input": {"dataset": "knn_queries", "samples": 6}}
    return neurosim.run(scenario, write=False, base_dir=REPO / "scenarios")


def test_the_small_search_equals_the_reference_and_finds_neighbours(small_run):
    s, trace = small_run.summary, small_run.trace
    assert s["matches_reference"] and s["reference_recall_at_k"] == s["recall_at_k"]
    assert s["recall_at_k"] >= 0.6
    samples = trace.groups["samples"]
    assert np.array_equal(samples["neighbours"], samples["reference_neighbours"])
    assert samples["neighbours"].shape == (6, 4) and samples["exact_neighbours"].shape == (6, 4)
    assert s["overflows"] == 0


def test_a_query_stops_when_its_k_th_neighbour_spikes(small_run):
    s, trace = small_run.summary, small_run.trace
    steps = trace.groups["samples"]["steps"]
    assert np.all(steps < s["timesteps"]) and s["steps_per_query"] == pytest.approx(steps.mean())
    rows = trace.groups["steps"]
    assert len(rows["sample"]) == steps.sum()
    assert np.bincount(rows["sample"]).tolist() == steps.tolist()
    pops = [str(n) for n in trace.groups["layers"]["names"]]
    store = [p for p, n in enumerate(pops) if n.startswith("patterns_")]
    spiked = trace.groups["layers"]["events"][:, store].sum(axis=1)
    ends = np.cumsum(steps) - 1
    before = np.concatenate([[0], np.cumsum(steps)[:-1]])
    for lo, end in zip(before, ends):                  # the k-th first spike comes in a query's last step
        assert spiked[lo:end].sum() < 4 <= spiked[lo:end + 1].sum()


def test_a_querys_time_and_energy_are_those_of_the_steps_it_ran(small_run):
    s, trace = small_run.summary, small_run.trace
    samples, rows = trace.groups["samples"], trace.groups["steps"]
    energy_pj = sum(rows[f"energy_{k}_pj"] for k in ("synapse", "neuron", "network", "static"))
    starts = np.concatenate([[0], np.cumsum(samples["steps"])])
    readout_pj, readout_ns = [], []                    # beyond its steps, a query pays the host's readout
    for q in range(len(samples["steps"])):
        lo, hi = starts[q], starts[q + 1]
        readout_pj.append(samples["energy_j"][q] * 1e12 - energy_pj[lo:hi].sum())
        readout_ns.append(samples["latency_s"][q] * 1e9 - rows["latency_ns"][lo:hi].sum())
    assert min(readout_pj) > 0 and np.allclose(readout_pj, readout_pj[0], rtol=1e-6)
    assert min(readout_ns) > 0 and np.allclose(readout_ns, readout_ns[0], rtol=1e-6)
    assert readout_pj[0] == pytest.approx(0.104 * 4 * readout_ns[0] * 1e3)       # 4 chips' static power
    dynamic = sum(s[f"energy_{k}_per_inference_j"] for k in ("synapse", "neuron", "network"))
    assert s["energy_dynamic_per_inference_j"] == pytest.approx(dynamic)
    assert s["time_per_step_s"] == pytest.approx(rows["latency_ns"].mean() * 1e-9)
    sent = trace.groups["layers"]["events"][:, 0].sum() / len(samples["steps"])
    assert s["input_spikes_per_query"] == pytest.approx(sent) and 0 < sent <= 1000


def test_the_summary_prints_recall_dynamic_and_static_energy_and_time_per_step(small_run):
    text = "\n".join(summary_lines(small_run.summary))
    assert "recall@4" in text and "equals the numpy reference" in text
    assert "dynamic per query" in text and "static" in text and "per step" in text


def test_relays_and_patterns_of_each_chip_are_placed_on_it():
    setup = neurosim.runs.prepare(yaml.safe_load(SMALL_SCENARIO.read_text()), base_dir=REPO / "scenarios")
    mapping, graph = setup.mapping, setup.graph
    for s in mapping.slices:
        if s.core >= 0:
            assert mapping.core_chip[s.core] == graph.populations[s.population].chip
    assert mapping.chips_used == graph.spec.chips


def test_a_search_refuses_other_inputs_and_checkpoints():
    base = yaml.safe_load(SMALL_SCENARIO.read_text())
    with pytest.raises(UserError, match="knn_queries"):
        neurosim.run(base | {"input": {"dataset": "random", "samples": 2}}, write=False,
                     base_dir=REPO / "scenarios")
    with pytest.raises(UserError, match="checkpoint") as err:
        neurosim.run(base | {"input": {"dataset": "knn_queries", "samples": 1}, "checkpoint_every": 10},
                     write=False, base_dir=REPO / "scenarios")
    assert err.value.field == "checkpoint_every"


def test_the_same_seed_gives_the_same_queries_and_answers():
    graph, _ = load_model(SMALL_MODEL)
    a, b = graph.queries(5, 1), graph.queries(5, 1)
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.neighbours, b.neighbours)
    assert not np.array_equal(graph.queries(5, 2).inputs, a.inputs)
    assert a.labels.tolist() == a.neighbours[:, 0].tolist()
    spec = copy.deepcopy(graph.spec)
    again = knn_graph(spec, SMALL_MODEL / "model.yaml", None)
    assert np.array_equal(again.projections["match_1"].weight, graph.projections["match_1"].weight)


def test_a_query_ended_early_is_plotted_and_its_spikes_stamped_by_its_own_rows(tmp_path):
    """Queries end at different steps, so a query's rows of /steps are found by their sample
    numbers: its latency figure and raster cover exactly its steps, and each spike names its row."""
    from neurosim.analysis.trace_figures import latency_per_step, sample_rows, spike_raster
    from neurosim.traces.trace import read_trace

    scenario = yaml.safe_load(SMALL_SCENARIO.read_text()) | {
        "input": {"dataset": "knn_queries", "samples": 3}, "record": {"spikes": True, "spike_samples": 3}}
    result = neurosim.run(scenario, out_dir=tmp_path, base_dir=REPO / "scenarios")
    trace = read_trace(result.trace_path)
    sample_of_row = np.asarray(trace["steps"]["sample"])
    lo, hi = sample_rows(trace, 1)
    assert hi - lo < int(trace.summary["timesteps"]) and np.all(sample_of_row[lo:hi] == 1)
    for name, spikes in trace.groups["spikes"].items():
        rows = np.asarray(spikes["timestep"])
        assert rows.max(initial=0) < len(sample_of_row), name
    fig = latency_per_step(trace, 1)
    assert len(fig.axes[0].patches) >= hi - lo
    raster = spike_raster(trace, 1)
    assert raster.axes[0].get_xlim() == (-0.5, hi - lo - 0.5)
