"""Spike trains in the SONATA layout: the reference reader (libsonata) opens every population of
a trace with spikes, and reads the spikes the run made: the neurons the numpy reference fires in
each step, at the times the run's own step records give, in milliseconds."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from helpers import REPO
from neurosim.programs.reference import Reference
from neurosim.runs import run
from neurosim.runs.scoring import step_input
from neurosim.runs.setup import load_inputs, prepare
from neurosim.traces.trace import read_trace

libsonata = pytest.importorskip("libsonata")

SCENARIO = {"name": "sonata", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
            "input": {"dataset": "digits", "samples": 3}, "timesteps": 6,
            "record": {"spikes": True, "spike_samples": 2}}


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory):
    return run(SCENARIO, out_dir=tmp_path_factory.mktemp("traces")).trace_path


def reference_spikes(samples: int) -> dict[str, list[tuple[int, int]]]:
    """(step of the run, neuron) of every event the numpy reference computes, per population."""
    setup = prepare(SCENARIO)
    data, graph, T = load_inputs(setup), setup.graph, SCENARIO["timesteps"]
    spikes: dict[str, list[tuple[int, int]]] = {name: [] for name in graph.populations}
    for s in range(samples):
        reference = Reference(graph, 1)
        for t in range(T):
            reference.set_input(graph.input_population, step_input(data.inputs[s:s + 1], t, data.inputs.ndim == 3))
            for name, payload in reference.step().items():
                spikes[name] += [(s * T + t, int(i)) for i in np.flatnonzero(payload[0])]
    return spikes


def test_libsonata_reads_every_population_with_the_spikes_the_run_made(trace_path):
    trace = read_trace(trace_path)
    steps = trace["steps"]
    start_ms = (steps["time_ns"] - steps["latency_ns"]) * 1e-6
    expected = reference_spikes(samples=2)
    reader = libsonata.SpikeReader(str(trace_path))
    assert set(reader.get_population_names()) == set(expected)
    fired = 0
    for name, want in expected.items():
        population = reader[name]
        assert population.sorting == "by_time" and population.time_units == "ms"
        got = population.get_dict()
        assert got["node_ids"].dtype == np.uint64 and got["timestamps"].dtype == np.float64
        want_steps = np.array([step for step, _ in want], np.int64)
        assert np.array_equal(got["node_ids"], np.array([i for _, i in want], np.uint64))
        assert np.array_equal(got["timestamps"], start_ms[want_steps])          # each step's start on the chip
        assert np.array_equal(trace["spikes"][name]["timestep"], want_steps)
        assert np.all(np.diff(got["timestamps"]) >= 0)
        fired += len(want)
    assert fired > 100                                               # the trains are not empty
    assert start_ms[2 * SCENARIO["timesteps"] - 1] < trace["samples"]["latency_s"][:2].sum() * 1e3


def test_the_population_records_its_step_and_the_sorting_as_an_enum(trace_path):
    trace = read_trace(trace_path)
    with h5py.File(trace_path) as h5:
        group = h5["spikes/hidden1"]
        assert h5py.check_enum_dtype(group.attrs.get_id("sorting").dtype) == {"none": 0, "by_id": 1, "by_time": 2}
        assert group.attrs["sorting"] == 2 and group["timestamps"].attrs["units"] == "ms"
        assert group.attrs["timestep_ms"] == pytest.approx(trace["steps"]["latency_ns"].mean() * 1e-6)


def test_a_run_held_in_memory_has_the_same_trains(trace_path):
    written = read_trace(trace_path)["spikes"]
    memory = run(SCENARIO, write=False).trace["spikes"]
    for name, population in written.items():
        for key in ("timestamps", "node_ids", "timestep"):
            assert np.array_equal(memory[name][key], population[key])
