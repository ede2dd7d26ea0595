"""The ternary pipeline as the FPGA card was run (chips/fpga_d5005.yaml): what bounds a layer as the
core's memory port widens, the core count the device's resources allow, the card's power as the
sum of its parts, and the chip file's mistakes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from helpers import REPO
from neurosim import datasets
from neurosim.cores.ternary_pipeline import BOUNDS, block_costs, token_cost
from neurosim.errors import UserError
from neurosim.runs import run
from neurosim.spec.chip import chip_from_dict, load_chip
from neurosim.traces.trace import read_trace
from neurosim.zoo.matmulfree import model as matmulfree

D5005 = REPO / "chips" / "fpga_d5005.yaml"
VOCAB = datasets.load_text("shakespeare", "test").vocab


def d5005_data() -> dict:
    return yaml.safe_load(D5005.read_text())


def chip_with(**core_fields):
    data = d5005_data()
    data["core_kinds"]["ternary"].update(copy.deepcopy(core_fields))
    return chip_from_dict(data, file="test.yaml")


def one_block(d: int = 64, glu: int = 192) -> matmulfree.Model:
    return matmulfree.generate(1, d, glu, len(VOCAB), seed=0)


def test_a_layer_by_hand_on_one_core():
    """One core: the i_proj (d x d) takes d*d*2/8 cycles at the 8-bit port, its vector moves
    d in and d out at one value a cycle, and 24 cycles of overhead."""
    chip = chip_with(cores=1)
    layer = block_costs(chip.core, one_block(d=64))[0].layers[0]
    cycle_ns = 1e9 / 60e6
    assert layer.port_ns == pytest.approx(64 * 64 * 2 / 8 * cycle_ns)
    assert layer.adds_ns == pytest.approx(64 * 64 / 4 * cycle_ns)
    assert layer.vector_ns == pytest.approx(128 * cycle_ns) and layer.overhead_ns == pytest.approx(24 * cycle_ns)
    assert layer.ddr_ns == pytest.approx(64 * 64 * 2 / (4 * 64 * 2.4e9 * 0.8) * 1e9)
    assert layer.time_ns == pytest.approx(layer.port_ns + layer.vector_ns + layer.overhead_ns)


def test_the_bound_moves_from_the_memory_port_to_the_adds_as_the_port_widens():
    model = one_block()
    bounds = {}
    for port in (4, 8, 16, 64):
        chip = chip_with(cores=1, port_bits_per_cycle=port)
        bounds[port] = {BOUNDS[layer.bound] for block in block_costs(chip.core, model) for layer in block.layers}
    # 4 adds a cycle; at 2 bits a weight the port carries 2, 4 (a tie: the port is named), 8, 32 weights
    assert bounds == {4: {"port"}, 8: {"port"}, 16: {"adds"}, 64: {"adds"}}
    narrow = chip_with(cores=1, ddr={"channels": 1, "width_bits": 1, "transfers_per_s": 1.0e8, "efficiency": 0.5})
    assert {BOUNDS[l.bound] for l in block_costs(narrow.core, model)[0].layers} == {"ddr"}


def test_the_core_count_is_the_floor_of_the_alms_beside_the_shell_over_a_core():
    raw = d5005_data()["core_kinds"]["ternary"]["resources"]
    chip, _ = load_chip(D5005)
    expected = (raw["device"]["alms"] - raw["shell"]["alms"]) // raw["core"]["alms"]
    assert chip.core.cores == expected == 158
    assert chip.core.elementwise_units == expected            # one lane per core
    assert chip.core.resources.fitting_cores() == (expected, "alms")
    # memory blocks bind when a core needs more of them than the ALMs allow
    heavy = chip_with(resources={**raw, "core": {"alms": 5000, "m20k": 1000}})
    assert heavy.core.cores == (raw["device"]["m20k"] - raw["shell"]["m20k"]) // 1000 == 10
    assert heavy.core.resources.fitting_cores()[1] == "m20k"


def test_cores_share_a_layer_by_rows():
    """Twice the cores: each core's share of every layer's weights halves (rows split evenly)."""
    model = one_block()
    one = block_costs(chip_with(cores=4).core, model)[0]
    two = block_costs(chip_with(cores=8).core, model)[0]
    for a, b in zip(one.layers, two.layers):
        assert b.port_ns == pytest.approx(a.port_ns / 2)


@pytest.fixture(scope="module")
def block_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("traces")
    scenario = yaml.safe_load((REPO / "scenarios" / "fpga_matmulfree_block.yaml").read_text())
    scenario["chip"] = str(D5005)
    scenario["model"] = str(REPO / "models" / "matmulfree_block512")
    scenario["language"] = {"prompt_tokens": 2, "generate_tokens": 1}
    return run(scenario, out_dir=out)


def test_the_card_power_is_the_sum_of_its_parts(block_run):
    s = block_run.summary
    parts = {k: v for k, v in s.items() if k.startswith("power_") and k.endswith("_w") and k != "power_w"}
    assert set(parts) == {f"power_{k}_w" for k in ("dynamic", "static", "ddr", "shell", "board", "regulators")}
    assert s["power_w"] == pytest.approx(sum(parts.values()), rel=1e-12)
    card = d5005_data()
    c = card["core_kinds"]["ternary"]["card"]
    assert parts["power_static_w"] == pytest.approx(card["chip"]["static_power_w"])
    assert parts["power_ddr_w"] == pytest.approx(c["ddr_w"]) and parts["power_shell_w"] == pytest.approx(c["shell_w"])
    delivered = sum(v for k, v in parts.items() if k != "power_regulators_w")
    assert parts["power_regulators_w"] == pytest.approx(delivered * (1 / c["regulator_efficiency"] - 1))
    energy = [v for k, v in s.items() if k.startswith("energy_") and k.endswith("_per_token_j") and k != "energy_per_token_j"]
    assert s["energy_per_token_j"] == pytest.approx(sum(energy), rel=1e-12)
    assert s["energy_per_token_j"] == pytest.approx(s["power_w"] / s["tokens_per_s"], rel=1e-12)


def test_the_block_run_reports_its_bounds_and_time(block_run):
    s = block_run.summary
    assert s["cores_used"] == 1 and s["cores_fit"] == 158 and s["cores_limited_by"] == "alms"
    assert s["layers_bound_by_port"] == 1.0 and s["layers_bound_by_adds"] == s["layers_bound_by_ddr"] == 0.0
    shares = [v for k, v in s.items() if k.startswith("time_share_")]
    assert sum(shares) == pytest.approx(1.0)
    chip = chip_with(cores=1)
    model = matmulfree.generate(*matmulfree.SHAPES["block512"], len(VOCAB), seed=0)
    blocks = block_costs(chip.core, model)
    assert s["block_time_s"] == pytest.approx(blocks[0].time_ns * 1e-9)
    token = token_cost(chip.core, 6.0, blocks, prefill=False)
    assert 1 / s["tokens_per_s"] > token.time_ns * 1e-9          # plus the host's transfers
    trace = read_trace(block_run.trace_path)
    layers = trace["layers"]
    assert list(layers["bound"]) == [1] and np.all(np.asarray(layers["layer_bound"]) == 1)
    assert np.asarray(layers["layer_bound"]).shape == (1, 6)
    assert "1: the memory port" in trace.attrs["layers"]["bound_codes"]


def test_prompt_tokens_store_no_output():
    """A prompt token skips its output's store: d values at one a cycle fewer than a generated one."""
    chip = chip_with(cores=1)
    blocks = block_costs(chip.core, one_block(d=64))
    gen = token_cost(chip.core, 6.0, blocks, prefill=False)
    pre = token_cost(chip.core, 6.0, blocks, prefill=True)
    assert gen.time_ns - pre.time_ns == pytest.approx(64 / 60e6 * 1e9)


# ---------------------------------------------------------------------------------------------
# mistakes in the chip file


@pytest.mark.parametrize("change, field, words", [
    ({"cores": 200}, "core_kinds.ternary", "cores is 200, expected at most 158"),
    ({"resources": None}, "core_kinds.ternary", "cores: max needs resources"),
    ({"ddr": {"channels": 4, "width_bits": 64, "transfers_per_s": 2.4e9, "efficiency": 1.5}},
     "core_kinds.ternary.ddr.efficiency", "expected a number <= 1"),
    ({"port_bits_per_cycle": 0}, "core_kinds.ternary.port_bits_per_cycle", "expected a number >= 1"),
    ({"elementwise_units": 16}, "core_kinds.ternary", "expected one of elementwise_units"),
    ({"overhead_cycles": {"per_layer": 24, "per_token": 100}}, "core_kinds.ternary.overhead_cycles.per_vector_value",
     "missing"),
])
def test_a_bad_value_in_the_chip_file_is_one_clear_error(change, field, words):
    data = d5005_data()
    core = data["core_kinds"]["ternary"]
    for key, value in change.items():
        if value is None:
            del core[key]
        else:
            core[key] = value
    with pytest.raises(UserError) as err:
        chip_from_dict(data, file="bad.yaml")
    assert err.value.file == "bad.yaml" and err.value.field == field and words in err.value.message
