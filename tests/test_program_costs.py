"""Neuron programs priced by their operations (a neurocore's ``program_ops``): each kind's counts,
a step's neuron cost as the hand sum of its programs' operations, the same figures as before on
chips without ``program_ops``, and the counts in the trace and in ``neurosim inspect``."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import LOIHI2, REPO, graph_of, loihi2_data, scenario_dict
from neurosim.cores.neurocore import BOUNDS, NeurocoreModel
from neurosim.engine.engine import Engine
from neurosim.graph.graph import Dense, Population
from neurosim.mapping.mapper import map_graph
from neurosim.programs import KINDS, OP_CLASSES, ops_of
from neurosim.runs import run
from neurosim.spec.chip import ProgramOpCosts, chip_from_dict, load_chip
from neurosim.traces.trace import read_trace

REQUIRED = {"loihi_lif": {"vth": 10}, "cuba_lif": {"vth": 10}, "sigma_delta": {"vth": 1}, "rsqrt": {"count": 64}}


def test_the_chip_spec_prices_every_operation_class():
    assert tuple(ProgramOpCosts.model_fields) == OP_CLASSES


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_integer_program_counts_its_operations(name):
    """An integer program on a core counts some work of every update (it reads its input and more);
    a host population executes none; a float program (never on a neurocore) counts none."""
    kind = KINDS[name]
    counts = ops_of(kind, REQUIRED.get(name, {}))
    if kind.float_valued and not kind.on_host:
        assert counts is None
    elif kind.on_host:
        assert counts == dict.fromkeys(OP_CLASSES, 0)
    else:
        assert set(counts) == set(OP_CLASSES) and min(counts.values()) >= 0
        assert counts["read"] >= 1 and counts["write"] >= 1 and sum(counts.values()) > 2


def _diff(a: dict, b: dict) -> dict:
    return {k: a[k] - b[k] for k in OP_CLASSES if a[k] != b[k]}


def test_counts_follow_the_parameters():
    """What a parameter adds, by hand: a refractory counter (its word, a test, a count down); a
    table function (its index, range test, look-up) over identity; a per-neuron multiplier; an
    inverse root's bits (count 128 << (12 + 2 x 12) is 44 bits: 44 quotient steps and 22 root steps);
    a fused scaled product's gate (its port, the gate's clip, the product, its shift and clip)."""
    cuba, lut = KINDS["cuba_lif"], KINDS["lut_activation"]
    assert _diff(ops_of(cuba, {"vth": 9, "refractory": 3}), ops_of(cuba, {"vth": 9})) == \
        {"read": 1, "write": 1, "add": 1, "compare": 1}
    assert _diff(ops_of(lut, {"function": "silu"}), ops_of(lut, {})) == {"add": 1, "compare": 2, "lookup": 1}
    assert _diff(ops_of(lut, {"mult": np.arange(4)}), ops_of(lut, {"mult": 1})) == {"multiply": 1}
    rsqrt = ops_of(KINDS["rsqrt"], {"count": 128, "in_frac": 12, "out_frac": 12})
    assert rsqrt["divide_step"] == 44 + 22
    fused = ops_of(KINDS["scaled_product"], {"gate_frac_bits": 12, "mult": np.ones(3, np.int64)})
    assert _diff(fused, ops_of(KINDS["scaled_product"], {"mult": np.ones(3, np.int64)})) == \
        {"read": 1, "write": 1, "compare": 2 + 2, "multiply": 1, "shift": 1}       # the gate's clip, the product's


def test_loihi2_prices_the_lif_at_its_flat_update():
    """The chip file's units are derived so that Lava's LIF costs neuron_update (4.2 ns, 10.8 pJ)."""
    core = load_chip(LOIHI2)[0].core
    lif = ops_of(KINDS["loihi_lif"], {"vth": 5})
    assert sum(lif[k] * getattr(core.program_ops.time_ns, k) for k in OP_CLASSES) == pytest.approx(4.2, rel=1e-12)
    assert sum(lif[k] * getattr(core.program_ops.energy_pj, k) for k in OP_CLASSES) == pytest.approx(10.8, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# a step's cost

PRIMES_NS = dict(zip(OP_CLASSES, (1.0, 2.0, 3.0, 5.0, 7.0, 11.0, 13.0, 17.0)))
PRIMES_PJ = dict(zip(OP_CLASSES, (19.0, 23.0, 29.0, 31.0, 37.0, 41.0, 43.0, 47.0)))
HAND = {   # by hand from the programs' arithmetic (neurosim.programs.ops's rules)
    "graded_relu": {"read": 1, "write": 1, "compare": 1 + 2},                      # relu, the payload's clip
    "lut_activation": {"read": 1, "write": 1, "compare": 1 + 2 + 2 + 2,           # idle, clip32, table range, clip
                       "multiply": 1, "shift": 1, "add": 1, "lookup": 1},         # mult, >> shift, index, silu
}


def _two_program_graph(rng: np.random.Generator):
    pops = [Population("inp", "spike_source", 12), Population("relu", "graded_relu", 10, {"activation": "relu"}),
            Population("act", "lut_activation", 6, {"function": "silu", "mult": rng.integers(1, 50, 6), "shift": 4,
                                                     "in_frac": 4, "out_frac": 8})]
    projections = [Dense("w1", "inp", "relu", rng.integers(-20, 60, (10, 12)).astype(np.int8), 0),
                   Dense("w2", "inp", "act", rng.integers(-20, 60, (6, 12)).astype(np.int8), 0)]
    return graph_of(pops, projections, input_pop="inp", readout_pop="act")


@pytest.mark.parametrize("neurons_per_core", [8, 64])
def test_a_steps_neuron_cost_is_the_hand_sum_of_its_programs_operations(neurons_per_core):
    """Per core: neuron energy = sum over its neurons of their program's counts x each class's pJ,
    plus its events x spike_out; the dendrite bound is the busiest core's counts x ns summed; a
    core a population, or with 8 neurons a core a population over two."""
    data = loihi2_data()
    core = data["core_kinds"]["neurocore"]
    core["program_ops"] = {"time_ns": PRIMES_NS, "energy_pj": PRIMES_PJ}
    core["limits"]["neurons"] = neurons_per_core
    chip = chip_from_dict(data, file="<test chip>")
    graph = _two_program_graph(np.random.default_rng(3))
    for name, hand in HAND.items():
        pop = next(p for p in graph.populations.values() if p.kind == name)
        assert ops_of(KINDS[name], pop.params) == {k: hand.get(k, 0) for k in OP_CLASSES}
    mapping = map_graph(graph, chip)
    model = NeurocoreModel(chip, graph, mapping)
    engine = Engine(graph, mapping, model.costs)
    engine.set_input("inp", np.ones(12, np.int64))
    for _ in range(3):
        c = engine.step()
        cost = model.step_cost(c, engine.payload)
        per_update = {name: (sum(n * PRIMES_NS[k] for k, n in hand.items()),
                             sum(n * PRIMES_PJ[k] for k, n in hand.items())) for name, hand in HAND.items()}
        ns, pj = np.zeros(mapping.n_cores), np.zeros(mapping.n_cores)
        for pop in ("relu", "act"):
            lo = mapping.offsets[pop]
            cores = np.bincount(mapping.core_of[lo:lo + graph.populations[pop].size], minlength=mapping.n_cores)
            t, e = per_update[graph.populations[pop].kind]
            ns, pj = ns + cores * t, pj + cores * e
        np.testing.assert_allclose(cost.neuron_pj, pj + c.spikes[:-1] * chip.core.energy_pj.spike_out, rtol=1e-12)
        assert cost.bounds_ns[BOUNDS.index("dendrite")] == pytest.approx(ns.max(), rel=1e-12)
    assert c.events > 0 and mapping.n_cores == (2 if neurons_per_core == 64 else 3)


def test_chips_without_program_ops_price_every_update_at_neuron_update_bit_for_bit():
    """On loihi1 (no program_ops, active updates priced apart) a step's neuron energy and dendrite
    bound are exactly, not nearly, neurons x neuron_update + active x neuron_active (+ events x
    spike_out): the figures the flat model gave."""
    chip, _ = load_chip(REPO / "chips" / "loihi1.yaml")
    assert chip.core.program_ops is None
    rng = np.random.default_rng(4)
    pops = [Population("inp", "spike_source", 12),
            Population("hid", "loihi_lif", 10, {"vth": 30, "bias_mant": np.where(rng.random(10) < 0.3, 3, 0)}),
            Population("out", "loihi_lif", 6, {"vth": None, "dv": 100})]
    graph = graph_of(pops, [Dense("w1", "inp", "hid", rng.integers(-20, 60, (10, 12)).astype(np.int8), 0),
                            Dense("w2", "hid", "out", rng.integers(-20, 60, (6, 10)).astype(np.int8), 0)],
                     input_pop="inp", readout_pop="out")
    mapping = map_graph(graph, chip)
    model = NeurocoreModel(chip, graph, mapping)
    neurons = mapping.core_neurons.astype(np.float64)
    e, t = chip.core.energy_pj, chip.core.time_ns
    np.testing.assert_array_equal(model.table.update_pj, neurons * e.neuron_update)
    engine = Engine(graph, mapping, model.costs)
    engine.set_input("inp", np.ones(12, np.int64))
    for _ in range(3):
        c = engine.step()
        cost = model.step_cost(c, engine.payload)
        flat = [neurons[i] * e.neuron_update + c.active[i] * e.neuron_active + c.spikes[i] * e.spike_out
                for i in range(mapping.n_cores)]
        assert list(cost.neuron_pj) == flat
        assert cost.bounds_ns[BOUNDS.index("dendrite")] == max(neurons[i] * t.neuron_update
                                                               + c.active[i] * t.neuron_active
                                                               for i in range(mapping.n_cores))
    assert c.active.sum() > 0


# ---------------------------------------------------------------------------------------------
# the trace and inspect


def test_the_trace_and_inspect_give_each_programs_operations_and_cost(tmp_path, tiny_model, fake_dataset):
    result = run(scenario_dict(tiny_model), out_dir=tmp_path / "traces")
    trace = read_trace(result.trace_path)
    group, attrs = trace["programs"], trace.attrs["programs"]
    assert list(group["names"]) == ["inp", "hid", "out"] and attrs["priced_by"] == "program_ops"
    assert attrs["op_classes"] == ", ".join(OP_CLASSES) and group["ops"].shape == (3, len(OP_CLASSES))
    lif = ops_of(KINDS["loihi_lif"], {"vth": 1})
    assert list(group["ops"][1]) == [lif[k] for k in OP_CLASSES] and not group["ops"][0].any()
    assert group["update_pj"][1] == pytest.approx(10.8) and group["update_ns"][0] == 0
    from neurosim.cli import cli

    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario_dict(tiny_model)))
    out = CliRunner().invoke(cli, ["inspect", str(path)])
    assert out.exit_code == 0, out.output
    section = out.output[out.output.index("neuron programs:"):].splitlines()
    assert section[1].split()[:4] == ["population", "kind", "read", "write"]
    assert section[3].split()[:4] == ["hid", "loihi_lif", str(lif["read"]), str(lif["write"])]
    assert section[3].split()[-2:] == ["4.200", "10.800"]
    chip = CliRunner().invoke(cli, ["inspect", str(LOIHI2)])
    assert "neuron programs by operation" in chip.output and "divide_step" in chip.output
