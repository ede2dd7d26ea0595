"""Placement strategies of a scenario's mapping section: pack (the default, unchanged), spread,
group_per_chip and explicit maps; their place in the trace and in `neurosim inspect`; and the
mistakes in the section, each one clear error before the mapper's large arrays are made."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import REPO, graph_of, make_chip, rand_int8, random_graph, scenario_dict
from neurosim.errors import UserError
from neurosim.graph.graph import Dense, Population
from neurosim.mapping.mapper import map_graph
from neurosim.mapping.placement import apportion
from neurosim.mapping.routes import core_outputs, graph_csrs
from neurosim.runs import prepare, run
from neurosim.spec.scenario import MappingSpec
from neurosim.spec.validate import validate
from neurosim.sweep import apply_point, load_sweep
from neurosim.traces.trace import read_trace

LIF = {"du": 3000, "dv": 300, "vth": 40}


def blocks_graph(n_blocks: int = 3, width: int = 24, seed: int = 0, pinned: dict[str, int] | None = None):
    """inp (host) -> embedding_relay -> b<n>_a -> b<n>_b for each block -> head, dense int8 weights."""
    rng = np.random.default_rng(seed)
    names = ["embedding_relay"] + [f"b{n}_{part}" for n in range(n_blocks) for part in ("a", "b")] + ["head"]
    pops = [Population("inp", "graded_source", width)] + [
        Population(name, "loihi_lif", width, LIF, chip=(pinned or {}).get(name)) for name in names]
    chain = ["inp"] + names
    projs = [Dense(f"w{i}", a, b, rand_int8(rng, (width, width)), 0) for i, (a, b) in enumerate(zip(chain, chain[1:]))]
    return graph_of(pops, projs, input_pop="inp", readout_pop="head")


def four_chips(**limits):
    """4 chips of 8 cores (2 x 2 routers of 2 cores); a core holds at most 16 neurons."""
    return make_chip(routers_x=2, routers_y=2, cores_per_router=2, chips_x=2, chips_y=2, **{"neurons": 16, **limits})


def chips_of(mapping) -> dict[str, set[int]]:
    """The chips each on-chip population's cores are on."""
    out: dict[str, set[int]] = {}
    for s in mapping.slices:
        if s.core >= 0:
            out.setdefault(s.population, set()).add(int(mapping.core_chip[s.core]))
    return out


def same_mapping(a, b) -> bool:
    arrays = lambda m: [m.core_of, m.core_chip, m.core_x, m.core_y, m.core_neurons, m.neuron_rank(),
                        *[v for v in vars(m.routes).values() if isinstance(v, np.ndarray)], *m.utilisation.values()]
    return a.slices == b.slices and all(x.dtype == y.dtype and np.array_equal(x, y)
                                        for x, y in zip(arrays(a), arrays(b)))


# ---------------------------------------------------------------------------------------------
# pack


def test_pack_is_the_default_and_a_shipped_scenario_maps_as_before():
    """A shipped scenario's mapping equals that of the same scenario with strategy pack, or with
    the older name placement: pack, array for array."""
    scenario = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    default = prepare(REPO / "scenarios" / "quickstart.yaml").mapping
    for section in ({"strategy": "pack"}, {"placement": "pack"}):
        mapping = prepare({**scenario, "mapping": section}, base_dir=REPO / "scenarios").mapping
        assert same_mapping(default, mapping) and mapping.strategy == "pack"
    graph, chip = blocks_graph(), four_chips()
    assert same_mapping(map_graph(graph, chip), map_graph(graph, chip, MappingSpec()))


# ---------------------------------------------------------------------------------------------
# group_per_chip


def test_group_per_chip_puts_every_population_of_block_n_on_chip_n():
    graph, chip = blocks_graph(3), four_chips()
    mapping = map_graph(graph, chip, MappingSpec(strategy="group_per_chip"))
    chips = chips_of(mapping)
    for name, on in chips.items():
        block = re.match(r"^b(\d+)_", name)
        if block:
            assert on == {int(block.group(1))}, name
    assert chips["embedding_relay"] == {0} and chips["head"] == {2}          # nearest: with their neighbours
    assert mapping.group_of["b2_a"] == "2" and "head" not in mapping.group_of
    packed = map_graph(graph, chip)
    assert packed.chips_used == 2 and mapping.chips_used == 3
    # each group spread over its chip: more cores than packed, none beyond the chip's 8
    per_chip = np.bincount(mapping.core_chip)
    assert mapping.n_cores > packed.n_cores and per_chip.max() <= 8 and per_chip.min() >= 7


def test_group_per_chip_on_a_lowered_matmulfree_model():
    """The MatMul-free lowering's blocks, by their b<n>_ prefix alone, one per chip."""
    from neurosim import datasets
    from neurosim.zoo.matmulfree import model as matmulfree
    from neurosim.zoo.matmulfree.lowering import calibrate, lower

    vocab = datasets.load_text("shakespeare", "test").vocab
    model = matmulfree.generate(2, 32, 64, len(vocab), 0)
    model = matmulfree.Model(vocab, model.embedding, model.blocks, model.final_norm, model.head, model.config)
    graph, _ = lower(model, calibrate(model, np.random.default_rng(0).integers(0, len(vocab), 64)))
    mapping = map_graph(graph, make_chip(chips_x=4, chips_y=1), MappingSpec(strategy="group_per_chip"))
    blocks = {name: int(m.group(1)) for name in graph.populations if (m := re.match(r"^b(\d+)_", name))}
    assert set(blocks.values()) == {0, 1}
    chips = chips_of(mapping)
    assert all(chips[name] == {n} for name, n in blocks.items())
    assert set().union(*chips.values()) == {0, 1}


@pytest.mark.parametrize("limits", [{"routes": 3}, {"fan_out": 40}])
def test_group_per_chip_keeps_within_the_fan_out_and_routes_limits(limits):
    """Spread over a chip, a neuron reaches more cores; slices are made finer (sharing the chip's
    cores anew) until every core is within its limits, and the blocks stay on their chips."""
    chip = four_chips(**limits)
    mapping = map_graph(blocks_graph(3), chip, MappingSpec(strategy="group_per_chip"))
    for name, limit in limits.items():
        assert 0 < mapping.utilisation[name].max() <= limit
    assert all(on == {int(name[1])} for name, on in chips_of(mapping).items() if name.startswith("b"))


@pytest.mark.parametrize("ungrouped, relay, head", [("first", 0, 0), ("last", 2, 2), ("own_chip", 3, 3)])
def test_populations_outside_the_groups_go_where_the_option_says(ungrouped, relay, head):
    spec = MappingSpec(strategy="group_per_chip", ungrouped=ungrouped)
    chips = chips_of(map_graph(blocks_graph(3), four_chips(), spec))
    assert chips["embedding_relay"] == {relay} and chips["head"] == {head}
    assert chips["b1_a"] == {1}


# ---------------------------------------------------------------------------------------------
# spread and explicit


def test_spread_uses_more_cores_than_pack_over_every_chip():
    graph, chip = blocks_graph(3), four_chips()
    packed, spread = map_graph(graph, chip), map_graph(graph, chip, MappingSpec(strategy="spread"))
    assert packed.n_cores < spread.n_cores <= chip.total_cores
    assert spread.chips_used == 4 and packed.chips_used == 2
    assert spread.utilisation["neurons"].max() < packed.utilisation["neurons"].max()
    about = map_graph(graph, chip, MappingSpec(strategy="spread", cores=20))
    assert packed.n_cores < about.n_cores <= 20


def test_spread_keeps_the_models_pins():
    graph = blocks_graph(2, pinned={"b1_a": 3, "b1_b": 3})
    chips = chips_of(map_graph(graph, four_chips(), MappingSpec(strategy="spread")))
    assert chips["b1_a"] == chips["b1_b"] == {3}
    assert all(3 not in on for name, on in chips.items() if not name.startswith("b1_"))


def test_an_explicit_map_is_honoured():
    spec = validate(MappingSpec, {"map": {"b1_*": {"chip": 2, "cores": [2, 5]}, "head": 3, "b2_*": 0, "*": 1}},
                    file="t")
    assert spec.strategy == "explicit"
    chip = four_chips()
    mapping = map_graph(blocks_graph(3), chip, spec)
    chips = chips_of(mapping)
    assert chips["b1_a"] == chips["b1_b"] == {2} and chips["head"] == {3} and chips["b2_a"] == chips["b2_b"] == {0}
    assert chips["embedding_relay"] == chips["b0_a"] == chips["b0_b"] == {1}
    mesh = chip.chip.mesh
    for s in mapping.slices:                 # cores 2 to 5 of chip 2: its routers 1 and 2
        if s.population.startswith("b1_"):
            router = (mapping.core_y[s.core] % mesh.routers_y) * mesh.routers_x + mapping.core_x[s.core] % mesh.routers_x
            assert 1 <= router <= 2
    assert mapping.group_of["b1_a"] == "b1_*" and mapping.group_of["b0_a"] == "*"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("strategy", ["pack", "spread"])
def test_counted_fan_out_and_routes_equal_the_laid_out_routes(seed, strategy):
    """What the spreading strategies count before routing is what the routes then hold."""
    graph = random_graph(seed)
    mapping = map_graph(graph, make_chip(neurons=4, routers_x=4, routers_y=2), MappingSpec(strategy=strategy))
    fan_out, routes = core_outputs(graph, mapping.offsets, mapping.core_of, mapping.n_cores, graph_csrs(graph))
    assert np.array_equal(fan_out, mapping.utilisation["fan_out"]) and fan_out.sum() > 0
    assert np.array_equal(routes, mapping.utilisation["routes"])


def test_apportion_shares_the_cores_in_proportion_and_within_the_sizes():
    count = apportion({"a": 1, "b": 3, "c": 1, "w": 1}, {"a": 100, "b": 100, "c": 2, "w": 50}, {"w"}, 14)
    assert count == {"a": 3, "b": 8, "c": 2, "w": 1}
    assert apportion({"a": 2}, {"a": 100}, set(), 1) == {"a": 2}


# ---------------------------------------------------------------------------------------------
# the trace, inspect and sweeps


def test_the_trace_and_inspect_show_the_placement_per_chip(tmp_path, tiny_model, fake_dataset):
    scenario = scenario_dict(tiny_model, overrides={"system.chips_x": 2},
                             mapping={"strategy": "group_per_chip", "groups": "^(hid|out)$"})
    result = run(scenario, out_dir=tmp_path)
    group, attrs = read_trace(result.trace_path)["mapping"], read_trace(result.trace_path).attrs["mapping"]
    assert attrs["strategy"] == "group_per_chip" and attrs["groups"] == "^(hid|out)$"
    assert list(group["chips"]["chip"]) == [0, 1] and list(group["chips"]["groups"]) == ["hid", "out"]
    assert group["chips"]["cores"].sum() == result.summary["cores_used"] > 2
    setup = prepare(scenario)
    assert group["chips"]["synapses"].sum() == setup.graph.n_synapses
    names = list(group["populations"]["name"])
    assert group["populations"]["first_chip"][names.index("out")] == 1
    assert group["populations"]["first_chip"][names.index("inp")] == -1
    from neurosim.cli.main import cli

    out = CliRunner().invoke(cli, ["inspect", str(result.trace_path)])
    assert out.exit_code == 0, out.output
    assert "placement group_per_chip" in out.output and re.search(r"\n\s+1\s+\d+\s.*group\(s\) out", out.output)


def test_the_shipped_sweep_compares_three_placements():
    sweep = load_sweep(REPO / "scenarios" / "sweep_placement_small.yaml")
    assert [p["mapping.strategy"] for p in sweep.points] == ["pack", "spread", "group_per_chip"]
    scenario = apply_point(sweep.base, sweep.points[2], [REPO])
    spec = validate(MappingSpec, scenario["mapping"], file="point")
    assert spec.strategy == "group_per_chip" and spec.groups == r"^b(\d+)_"


def test_a_strategy_set_on_the_command_line_or_in_a_sweep_replaces_the_older_name():
    from neurosim.spec.scenario import set_fields

    scenario = {"name": "s", "mapping": {"placement": "spread", "cores": 50}}
    assert set_fields(scenario, {"mapping.strategy": "pack"})["mapping"] == {"cores": 50, "strategy": "pack"}
    assert apply_point(scenario, {"mapping.strategy": "group_per_chip"}, [REPO])["mapping"] == {
        "cores": 50, "strategy": "group_per_chip"}


# ---------------------------------------------------------------------------------------------
# mistakes


def _cli_error(tmp_path, tiny_model, mapping: dict, **extra) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict(tiny_model, mapping=mapping, **extra), sort_keys=False))
    from neurosim.cli.main import cli

    out = CliRunner().invoke(cli, ["validate", str(path)])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and str(path) in out.output
    return out.output


@pytest.mark.parametrize("mapping, extra, field, words", [
    ({"map": {"nosuch_*": 0}}, {}, "mapping.map.nosuch_*", "matches none of the model's populations"),
    ({"map": {"*": 3}}, {}, "mapping.map.*", "chip 3 is beyond the system's 1 chip"),
    ({"map": {"*": {"chip": 0, "cores": [0, 200]}}}, {}, "mapping.map.*", "beyond a chip's 128 cores"),
    ({"map": {"hid": 0}}, {}, "mapping.map", "match no entry"),
    ({"strategy": "group_per_chip", "groups": "^(hid|out)$"}, {}, "mapping.groups", "need 2 chips"),
    ({"strategy": "group_per_chip"}, {}, "mapping.groups", "matches none of the model's on-chip populations"),
    ({"strategy": "group_per_chip", "groups": "^(hid|out)$"},
     {"overrides": {"system.chips_x": 2, "core.limits.neurons": 4, "chip.mesh.routers_x": 1,
                    "chip.mesh.routers_y": 1}}, "mapping.groups", "holds 20 neurons"),
    ({"strategy": "spreadd"}, {}, "mapping.strategy", "one of"),
])
def test_a_bad_mapping_section_is_one_clear_error(tmp_path, tiny_model, mapping, extra, field, words):
    output = _cli_error(tmp_path, tiny_model, mapping, **extra)
    assert f"{field}: " in output and words in output, output


def test_a_chip_beyond_the_system_is_refused_before_the_model_is_loaded(monkeypatch, tiny_model):
    import neurosim.runs.setup as setup

    monkeypatch.setattr(setup, "load_model", lambda *a: pytest.fail("the model was loaded"))
    with pytest.raises(UserError, match="beyond the system"):
        prepare(scenario_dict(tiny_model, mapping={"map": {"*": 5}}))


@pytest.mark.parametrize("spec", [{"map": {"b9_*": 0}}, {"strategy": "group_per_chip", "groups": "^b(\\d+)_",
                                                         "ungrouped": "own_chip"}])
def test_placement_mistakes_are_found_before_the_mappers_large_arrays(monkeypatch, spec):
    import neurosim.mapping.mapper as mapper

    monkeypatch.setattr(mapper, "incoming", lambda *a: pytest.fail("incoming synapses were laid out"))
    with pytest.raises(UserError) as err:
        map_graph(blocks_graph(4), four_chips(), validate(MappingSpec, spec, file="s.yaml"), scenario_file="s.yaml")
    assert err.value.file == "s.yaml" and err.value.field.startswith("mapping.")


def test_group_per_chip_refuses_the_models_pins():
    graph = blocks_graph(2, pinned={"b1_a": 3})
    with pytest.raises(UserError, match="pins populations to chips"):
        map_graph(graph, four_chips(), MappingSpec(strategy="group_per_chip"))
