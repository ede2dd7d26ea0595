"""Synaptic delays: a projection's input held back whole timesteps, on the engine and in the reference."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import graph_of, make_chip, random_graph
from neurosim.cores.neurocore import timing_costs
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.graph.graph import Dense, Population
from neurosim.mapping.mapper import map_graph
from neurosim.programs.reference import Reference


def _relay_graph(delay: int):
    """A graded source sends its value once; an identity neuron passes it on after ``delay`` more steps."""
    pops = [Population("src", "graded_source", 1), Population("out", "graded_relu", 1, {"activation": "identity"})]
    proj = Dense("w", "src", "out", np.array([[1]], np.int8), 0, delay=delay)
    return graph_of(pops, [proj], input_pop="src", readout_pop="out")


@pytest.mark.parametrize("delay", [0, 1, 3, 7])
def test_delayed_input_arrives_delay_steps_later(delay):
    """An event of step 0 reaches its target's update in step 1 + delay, on the engine and in the reference."""
    graph = _relay_graph(delay)
    chip = make_chip()
    mapping = map_graph(graph, chip)
    engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0])
    ref = Reference(graph, 1)
    out_engine, out_ref = [], []
    for t in range(delay + 4):
        value = 5 if t == 0 else 0
        engine.set_input("src", np.array([value]))
        ref.set_input("src", np.array([[value]]))
        engine.step()
        out_engine.append(int(engine.payload[1]))
        out_ref.append(int(ref.step()["out"][0, 0]))
    expected = [5 if t == 1 + delay else 0 for t in range(delay + 4)]
    assert out_engine == expected and out_ref == expected


@pytest.mark.parametrize("seed", range(3))
def test_engine_matches_reference_with_mixed_delays(seed):
    """Every projection of the random graph gets its own delay; the engine equals the reference step by step."""
    rng = np.random.default_rng(seed)
    graph = random_graph(seed)
    for name, proj in list(graph.projections.items()):
        graph.projections[name] = type(proj)(**{**vars(proj), "delay": int(rng.integers(0, 5))})
    for chip in (make_chip(), make_chip(neurons=7, cores_per_router=2, routers_x=2, routers_y=2, chips_x=2,
                                        chips_y=2)):
        mapping = map_graph(graph, chip)
        engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0])
        ref = Reference(graph, 1)
        x = rng.integers(0, 16, graph.populations["inp"].size)
        engine.set_input("inp", x)
        ref.set_input("inp", x[None, :])
        for t in range(10):
            engine.step()
            expected = ref.step()
            for name, lo, hi, *_ in engine.pops:
                np.testing.assert_array_equal(engine.payload[lo:hi], expected[name][0], err_msg=f"{name}, step {t}")


def test_delay_beyond_the_core_is_refused():
    """A delay longer than the core's delay slots is a UserError naming the projection's delay."""
    with pytest.raises(UserError) as err:
        map_graph(_relay_graph(9), make_chip(synaptic_delay_steps=8))
    assert err.value.field == "projections.w.delay" and "at most 8" in err.value.message
