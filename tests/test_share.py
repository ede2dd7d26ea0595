"""Cores shared by several populations' slices (a scenario's ``mapping.share_cores``): fewer cores,
every core within its limits, the same arithmetic as the reference, a core's neurons updated in
the model's order, a block of the MatMul-free model on a chip of its own, and the mistakes."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import make_chip, random_graph, scenario_dict
from neurosim.cores.neurocore import timing_costs
from neurosim.engine.engine import Engine, update_times
from neurosim.errors import UserError
from neurosim.mapping.mapper import map_graph
from neurosim.mapping.placement import PlacementOverflow
from neurosim.programs import KINDS
from neurosim.runs import prepare, run
from neurosim.spec.scenario import MappingSpec
from neurosim.traces.trace import read_trace

from test_engine import assert_engine_matches_reference
from test_placement import blocks_graph, chips_of, four_chips

SHARED = MappingSpec(share_cores=True)


def assert_within_limits(mapping) -> None:
    for name, used in mapping.utilisation.items():
        assert used.max() <= mapping.limits[name], name


def cores_of(mapping) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in sorted((s for s in mapping.slices if s.core >= 0), key=lambda s: (s.population, s.lo)):
        out.setdefault(s.population, []).append(s.core)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_cores_hold_several_populations_within_every_limit(seed):
    graph, chip = random_graph(seed), make_chip(neurons=32, routers_x=4, routers_y=2)
    alone, shared = map_graph(graph, chip), map_graph(graph, chip, SHARED)
    assert shared.n_cores < alone.n_cores
    assert any("+" in names for names in shared.core_populations())
    assert_within_limits(shared)
    # every neuron on one core, the cores' neurons adding up, a population's slices in core order
    assert np.array_equal(np.bincount(shared.core_of[shared.core_of >= 0], minlength=shared.n_cores),
                          shared.core_neurons)
    assert all(cores == sorted(cores) for cores in cores_of(shared).values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_chip_computes_what_the_reference_does_on_shared_cores(seed):
    """Sharing moves neurons between cores, never what they compute: the engine's payloads equal
    the reference's, step by step."""
    graph, chip = random_graph(seed), make_chip(neurons=32, routers_x=4, routers_y=2)
    inputs = np.random.default_rng(seed).integers(-60, 60, (2, graph.populations["inp"].size))
    *_, mapping = assert_engine_matches_reference(graph, chip, inputs, placement=SHARED)
    assert any("+" in names for names in mapping.core_populations())


def test_a_shared_core_updates_its_neurons_in_the_models_order():
    graph, chip = blocks_graph(3, width=6), four_chips()
    mapping = map_graph(graph, chip, SHARED)
    rank, core_of = mapping.neuron_rank(), mapping.core_of
    several = [c for c, names in enumerate(mapping.core_populations()) if "+" in names]
    assert several
    for c in several:
        mine = np.flatnonzero(core_of == c)
        assert np.array_equal(rank[mine], np.arange(len(mine)))      # ascending neurons, counted from 0
    # a step's neuron unit works through all the core's neurons, whichever population they are of
    costs = timing_costs(chip, graph, mapping)[0]
    done, per_core = update_times(mapping, costs)
    for c in several:
        mine = np.flatnonzero(core_of == c)
        assert np.allclose(done[mine], np.cumsum(costs.update_ns[mine]) if costs.update_ns is not None
                           else (np.arange(len(mine)) + 1) * costs.t_update_ns)
        assert per_core[c] == pytest.approx(done[mine][-1])
    counters = Engine(graph, mapping, costs).step()
    assert np.all(counters.neuron_done_ns >= per_core - 1e-9)


def test_each_update_takes_its_programs_time_in_the_message_timeline():
    """With per-program costs, a neuron's messages leave after the updates before it on its core,
    each its program's time; without them, each ``neuron_update``."""
    from neurosim.cores.neurocore import neuron_update_costs, update_costs

    graph, chip = blocks_graph(2, width=6), four_chips()
    mapping = map_graph(graph, chip, SHARED)
    costs = timing_costs(chip, graph, mapping)[0]
    per_neuron = neuron_update_costs(chip, graph, mapping)
    assert per_neuron is not None and np.array_equal(costs.update_ns, per_neuron[0])
    done, per_core = update_times(mapping, costs)
    assert np.allclose(per_core, update_costs(chip, graph, mapping)[0])
    flat = dataclasses.replace(costs, update_ns=None)             # a chip without program_ops
    flat_done, _ = update_times(mapping, flat)
    on_core = mapping.core_of >= 0
    assert np.array_equal(flat_done[on_core], (mapping.neuron_rank()[on_core] + 1.0) * flat.t_update_ns)


@pytest.mark.parametrize("chunks", [2, 3, 5])
def test_the_counting_threads_never_share_a_source(chunks):
    """The step's counters are summed by chunks of events, one thread each; a chunk must hold all
    the events of each of its sources, or two threads would add to one core's counters at once.
    A shared core's neurons need not be one range (a norm's slices fill cores of a dense layer,
    as in the 370M model's mapping), so its events may lie apart: here every neuron is put on a
    random core or the host."""
    from neurosim.engine.kernels import split_events

    graph, chip = random_graph(0), make_chip(neurons=32, routers_x=4, routers_y=2)
    mapping = map_graph(graph, chip, SHARED)
    rng = np.random.default_rng(chunks)
    n, n_cores = len(mapping.core_of), mapping.n_cores
    net = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0]).net
    for _ in range(50):
        core_of = rng.integers(-1, n_cores, n).astype(net.core_of.dtype)           # -1: the host
        axon_ptr = np.concatenate([[0], np.cumsum(rng.integers(0, 9, n))]).astype(net.axon_ptr.dtype)
        events = np.flatnonzero(rng.random(n) < rng.uniform(0.05, 1)).astype(np.int32)
        bounds, last_event = np.zeros(chunks + 1, np.int64), np.zeros(n_cores + 1, np.int64)
        split_events(net._replace(core_of=core_of, axon_ptr=axon_ptr), events, len(events), bounds, last_event)
        assert bounds[0] == 0 and bounds[-1] == len(events) and np.all(np.diff(bounds) >= 0)
        chunk_of = np.searchsorted(bounds, np.arange(len(events)), side="right") - 1
        source = np.where(core_of[events] >= 0, core_of[events], n_cores)
        for s in np.unique(source):
            assert len(np.unique(chunk_of[source == s])) == 1, f"source {s} in several chunks"
    # with few sources of many events each, the events are still cut into more than one chunk
    core_of = (np.arange(n) * chunks // n).astype(net.core_of.dtype)
    bounds = np.zeros(chunks + 1, np.int64)
    split_events(net._replace(core_of=core_of), np.arange(n, dtype=np.int32), n, bounds, last_event)
    assert len(np.unique(bounds)) > 2


def test_one_block_per_chip_packed_onto_its_chips_cores():
    """group_per_chip with shared cores: each block on its own chip, on fewer cores than spread over
    it and no more than packed alone; the placement table counts a population's cores once each."""
    from neurosim.mapping.table import placement_group

    graph, chip = blocks_graph(3, width=6), four_chips()
    spread = map_graph(graph, chip, MappingSpec(strategy="group_per_chip"))
    shared = map_graph(graph, chip, MappingSpec(strategy="group_per_chip", share_cores=True))
    assert all(on == {int(name[1])} for name, on in chips_of(shared).items() if name.startswith("b"))
    assert shared.n_cores < spread.n_cores and shared.chips_used == 3
    assert_within_limits(shared)
    # bound by synaptic memory, two slices of a population share a core: counted as one of its cores
    shared = map_graph(blocks_graph(3, width=24), four_chips(synapse_memory_bytes=300),
                       MappingSpec(strategy="group_per_chip", share_cores=True))
    assert cores_of(shared)["b0_a"] == [2, 2, 3, 3]
    table = placement_group(shared)["populations"]
    assert table["cores"][list(table["name"]).index("b0_a")] == 2


def test_the_trace_names_each_cores_populations(tmp_path, tiny_model, fake_dataset):
    scenario = scenario_dict(tiny_model, mapping={"share_cores": True})
    result = run(scenario, out_dir=tmp_path)
    trace = read_trace(result.trace_path)
    names = [str(n) for n in trace["cores"]["population"]]
    assert len(names) == result.summary["cores_used"] and any("+" in n for n in names)
    graph = prepare(scenario).graph
    assert sum(trace["cores"]["neurons"]) == sum(p.size for p in graph.populations.values()
                                                 if not KINDS[p.kind].on_host)
    from neurosim.cli.main import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = CliRunner().invoke(cli, ["inspect", str(path)])
    assert out.exit_code == 0 and re.search(r"\n\s+0\s+0\s+\(0, 0\)\s+\w+ \+\d+\s+\d+ slices", out.output), out.output


# ---------------------------------------------------------------------------------------------
# mistakes


def test_spread_with_shared_cores_is_one_clear_error(tmp_path, tiny_model):
    from neurosim.cli.main import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict(tiny_model, mapping={"strategy": "spread", "share_cores": True})))
    out = CliRunner().invoke(cli, ["validate", str(path)])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert re.search(r"mapping: .*share_cores", out.output), out.output


def test_shared_cores_refuse_the_models_pins():
    with pytest.raises(UserError, match="pins populations to chips.*share_cores false"):
        map_graph(blocks_graph(2, pinned={"b1_a": 3}), four_chips(), SHARED)


def test_a_group_too_large_for_its_chip_even_shared_is_an_overflow():
    spec = MappingSpec(strategy="group_per_chip", ungrouped="own_chip", share_cores=True)
    with pytest.raises(PlacementOverflow, match="group '0' does not fit the 8 cores of chip 0 even with cores shared"):
        map_graph(blocks_graph(3, width=16), four_chips(neurons=4, fan_out=12), spec)


@pytest.mark.parametrize("width, limits", [(10, {"neurons": 4, "fan_out": 12}), (12, {"neurons": 16, "fan_out": 20}),
                                           (16, {"neurons": 16, "fan_out": 20}), (6, {})])
def test_sharing_never_takes_more_cores_than_packing_alone(width, limits):
    graph, chip = blocks_graph(3, width=width), four_chips(**limits)
    alone, shared = map_graph(graph, chip), map_graph(graph, chip, SHARED)
    assert shared.n_cores <= alone.n_cores
    assert_within_limits(shared)


def test_an_explicit_map_with_shared_cores_keeps_each_entry_on_its_cores():
    from neurosim.spec.validate import validate

    spec = validate(MappingSpec, {"map": {"b1_*": {"chip": 2, "cores": [2, 5]}, "head": 3, "*": 1},
                                  "share_cores": True}, file="t")
    chip = four_chips()
    mapping = map_graph(blocks_graph(3, width=6), chip, spec)
    chips = chips_of(mapping)
    assert chips["b1_a"] == chips["b1_b"] == {2} and chips["head"] == {3} and chips["b0_a"] == {1}
    mesh = chip.chip.mesh
    router = (mapping.core_y % mesh.routers_y) * mesh.routers_x + mapping.core_x % mesh.routers_x
    b1_cores = {s.core for s in mapping.slices if s.population.startswith("b1_")}
    assert all(1 <= router[c] <= 2 for c in b1_cores)           # cores 2 to 5 of chip 2: its routers 1 and 2
    assert len({mapping.core_chip[c] for c in range(mapping.n_cores)}) == 3
    assert mapping.n_cores < map_graph(blocks_graph(3, width=6), chip, spec.model_copy(
        update={"share_cores": False})).n_cores
    assert_within_limits(mapping)
