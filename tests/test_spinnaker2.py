"""SpiNNaker 2: the arm_pe core kind's cycles, ticks, overruns and DVFS; its chip files; the digits
and EGRU models on it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from helpers import REPO, graph_of, make_chip, rand_int8
from neurosim.cores import core_model
from neurosim.cores.arm_pe import ArmPeModel
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.graph.graph import Csr, Dense, Population, Sparse
from neurosim.mapping.mapper import map_graph
from neurosim.runs import prepare, run
from neurosim.spec.chip import ArmPeSpec, chip_from_dict, load_chip
from neurosim.traces.trace import read_trace

SPINNAKER2 = REPO / "chips" / "spinnaker2.yaml"


def spinnaker2(**timing) -> object:
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["core_kinds"]["pe"]["timing"].update(timing)
    return chip_from_dict(data, file="<spinnaker2>")


def two_projection_graph():
    """4 host inputs -> 3 LIF neurons that never spike, through two dense projections."""
    rng = np.random.default_rng(0)
    pops = [Population("inp", "graded_source", 4, {"payload_bits": 8}),
            Population("hid", "loihi_lif", 3, {"vth": 100000})]
    projs = [Dense("a", "inp", "hid", rand_int8(rng, (3, 4), 1, 5), 0),
             Dense("b", "inp", "hid", rand_int8(rng, (3, 4), 1, 5), 0)]
    return graph_of(pops, projs, input_pop="inp", readout_pop="hid")


def one_step(chip, graph, values):
    mapping = map_graph(graph, chip)
    model = core_model(chip, graph, mapping)
    engine = Engine(graph, mapping, model.costs, per_message=model.per_message)
    engine.set_input("inp", np.array(values))
    c = engine.step()
    return model, mapping, model.step_cost(c, engine.payload)


def test_the_chip_files_load():
    chip, _ = load_chip(SPINNAKER2)
    assert isinstance(chip.core, ArmPeSpec)
    assert chip.cores_per_chip == 152 and chip.n_chips == 1
    assert [lv.clock_hz for lv in chip.core.dvfs] == sorted(lv.clock_hz for lv in chip.core.dvfs)
    assert (chip.core.level("pl1").voltage_v, chip.core.level("pl1").clock_hz) == (0.5, 150e6)
    assert (chip.core.level("pl4").voltage_v, chip.core.level("pl4").clock_hz) == (0.8, 300e6)
    board, _ = load_chip(REPO / "chips" / "spinnaker2_48chip.yaml")
    assert board.n_chips == 48 and board.total_cores == 48 * 152


@pytest.mark.parametrize("timing, expected", [
    ({"dvfs": "pl9"}, "expected auto or a level: pl1, pl2, pl3, pl4"),
    ({"dvfs": "auto", "mode": "afap"}, "expected timing.mode: ticked"),
    ({"mode": "sometimes"}, "'ticked' or 'afap'"),
])
def test_bad_timing_is_a_clear_error(timing, expected):
    with pytest.raises(UserError) as err:
        spinnaker2(**timing)
    assert expected in err.value.message and err.value.field.startswith("core_kinds.pe")


def test_cycles_of_a_step_follow_the_per_operation_counts():
    """Two input events reach one PE as two packets (multicast: one per source and PE), each
    reading two rows (one per projection) of 3 synapses; the PE's cycles are the sum of the
    per-operation counts, and its time and energy follow from its DVFS level."""
    chip = spinnaker2(tick_ns=1.0e6, dvfs="auto")
    model, mapping, cost = one_step(chip, two_projection_graph(), [5, 0, 7, 0])
    cyc = chip.core.cycles
    assert mapping.n_cores == 1
    assert cost.packets_in[0] == 2 and cost.packets_out[0] == 0
    expected = (cyc.tick + 3 * cyc.neuron_update["loihi_lif"] + 2 * cyc.packet_in + 4 * cyc.row
                + 12 * cyc.synapse_int)
    assert cost.cycles[0] == expected
    level = chip.core.dvfs[cost.level[0]]
    assert level.name == "pl1"                  # far below a tick: the slowest level
    assert cost.busy_ns[0] == pytest.approx(expected / level.clock_hz * 1e9)
    assert cost.neuron_pj[0] + cost.synapse_pj[0] == pytest.approx(expected * level.cycle_pj)
    assert cost.static_pj[0] == pytest.approx(level.idle_w * (1e6 - cost.busy_ns[0]) * 1e3)
    assert cost.chip_busy_ns[0] == 1e6          # a ticked step lasts the tick


@pytest.mark.parametrize("tick_ns, level, overrun", [(2000.0, "pl3", False), (1000.0, "pl4", True)])
def test_auto_dvfs_takes_the_slowest_level_that_meets_the_tick(tick_ns, level, overrun):
    chip = spinnaker2(tick_ns=tick_ns, dvfs="auto")
    _, _, cost = one_step(chip, two_projection_graph(), [5, 0, 7, 0])
    clocks = {lv.name: lv.clock_hz for lv in chip.core.dvfs}
    assert chip.core.dvfs[cost.level[0]].name == level
    assert bool(cost.overrun[0]) == overrun
    assert (cost.busy_ns[0] > tick_ns) == overrun
    slower = [lv for lv in chip.core.dvfs if lv.clock_hz < clocks[level]]
    assert all(cost.cycles[0] / lv.clock_hz * 1e9 > tick_ns for lv in slower)


def test_as_fast_as_possible_steps_end_with_the_slowest_pe_and_the_barrier():
    chip = spinnaker2(mode="afap", dvfs="pl4", sync_ns=500.0)
    _, _, cost = one_step(chip, two_projection_graph(), [5, 1, 7, 2])
    assert cost.chip_busy_ns[0] == pytest.approx(cost.busy_ns.max() + 500.0)
    assert not cost.overrun.any()


def test_mac_array_runs_dense_projections_every_step():
    """With dense layers on the MAC array, a dense projection costs its whole matrix-vector
    product in MACs every step, and its rows and synapses are not read one by one."""
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["core_kinds"]["pe"]["mac_array"]["dense_layers"] = True
    chip = chip_from_dict(data, file="<spinnaker2>")
    model, _, cost = one_step(chip, two_projection_graph(), [5, 0, 7, 0])
    cyc = chip.core.cycles
    assert cost.macs[0] == 2 * 4 * 3
    mac_cycles = 2 * np.ceil(4 * 3 / chip.core.mac_array.macs)
    assert cost.cycles[0] == cyc.tick + 3 * cyc.neuron_update["loihi_lif"] + 2 * cyc.packet_in + mac_cycles


def test_synapses_in_dram_are_fetched_per_row():
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["core_kinds"]["pe"]["synapses_in"] = "dram"
    chip = chip_from_dict(data, file="<spinnaker2>")
    _, _, sram = one_step(spinnaker2(), two_projection_graph(), [5, 0, 7, 0])
    _, _, dram = one_step(chip, two_projection_graph(), [5, 0, 7, 0])
    rows = 4
    assert dram.cycles[0] - sram.cycles[0] == rows * chip.core.cycles.dma_setup
    words = rows * np.ceil(3 * 8 / chip.core.synapses.word_bits)
    extra_pj = words * chip.core.synapses.word_bits * chip.core.dram.energy_pj_per_bit
    level = chip.core.dvfs[dram.level[0]]
    assert dram.synapse_pj[0] - sram.synapse_pj[0] == pytest.approx(
        extra_pj + rows * chip.core.cycles.dma_setup * level.cycle_pj)


def test_float_programs_do_not_run_on_a_neurocore():
    """A float program is refused by a chip of fixed-point neurocores, naming its population."""
    rng = np.random.default_rng(1)
    csr = Csr(np.array([0, 2], np.int64), np.array([0, 1], np.int32), rng.standard_normal(2).astype(np.float32))
    pops = [Population("inp", "float_source", 1), Population("out", "float_readout", 2)]
    graph = graph_of(pops, [Sparse("w", "inp", "out", csr, 2, 0, weight_bits=32, sign_mode="float")],
                     input_pop="inp", readout_pop="out")
    with pytest.raises(UserError, match="float_readout is a float32 program") as err:
        map_graph(graph, make_chip())
    assert err.value.field == "populations.out.kind"
    map_graph(graph, spinnaker2())


def test_integer_and_float_kinds_do_not_mix():
    pops = [Population("inp", "graded_source", 2), Population("out", "float_readout", 2)]
    graph = graph_of(pops, [], input_pop="inp", readout_pop="out")
    with pytest.raises(UserError, match="expected all integer or all float kinds"):
        map_graph(graph, spinnaker2())


def test_float_weights_into_an_integer_kind_are_refused():
    csr = Csr(np.array([0, 1], np.int64), np.array([0], np.int32), np.ones(1, np.float32))
    pops = [Population("inp", "graded_source", 1), Population("out", "loihi_lif", 1, {"vth": 10})]
    graph = graph_of(pops, [Sparse("w", "inp", "out", csr, 1, 0, weight_bits=32, sign_mode="float")],
                     input_pop="inp", readout_pop="out")
    with pytest.raises(UserError, match="float32 weights"):
        map_graph(graph, spinnaker2())


def test_digits_on_spinnaker2_equal_the_reference_and_loihi2(tmp_path):
    """The same integer model on SpiNNaker 2's software neurons gives Loihi 2's predictions;
    every PE's cycles, level and overruns per tick are in the trace."""
    base = yaml.safe_load((REPO / "scenarios" / "spinnaker2_digits.yaml").read_text())
    base["input"]["samples"] = 20
    base["model"] = str(REPO / "models" / "digits_snn")
    s2 = run({**base, "chip": str(SPINNAKER2)}, out_dir=tmp_path)
    l2 = run({**base, "chip": str(REPO / "chips" / "loihi2.yaml"), "name": "l2"}, out_dir=tmp_path)
    assert s2.summary["matches_reference"]
    assert s2.summary["accuracy"] == l2.summary["accuracy"]
    trace = read_trace(s2.trace_path)
    n_steps, n_cores = 20 * base["timesteps"], s2.summary["cores_used"]
    for key in ("cycles", "dvfs_level", "overrun", "packets_in", "packets_out"):
        assert trace["cores"][key].shape == (n_steps, n_cores)
    assert np.all(trace["cores"]["cycles"] > 0)
    assert s2.summary["latency_per_inference_s"] >= base["timesteps"] * 1e-3      # 1 ms ticks
    assert trace["steps"]["overrun_pes"].sum() == s2.summary["pe_overruns"] == 0
    assert trace.meta["dvfs"] == "auto" and trace.meta["timing_mode"] == "ticked"


def test_overruns_are_reported_per_tick(tmp_path):
    base = yaml.safe_load((REPO / "scenarios" / "spinnaker2_digits.yaml").read_text())
    base |= {"model": str(REPO / "models" / "digits_snn"), "chip": str(SPINNAKER2), "reference": False}
    base["input"]["samples"] = 3
    result = run(base, out_dir=tmp_path, overrides={"core.timing.tick_ns": 20_000.0})
    trace = read_trace(result.trace_path)
    assert result.summary["pe_overruns"] == int(trace["cores"]["overrun"].sum()) > 0
    late = trace["cores"]["cycles"] / 300e6 * 1e9 > 20_000.0
    assert np.array_equal(trace["cores"]["overrun"], late)      # overran at the fastest level
    assert result.summary["max_late_s"] > 0


def egru_scenario(**language) -> dict:
    data = yaml.safe_load((REPO / "scenarios" / "spinnaker2_egru_small.yaml").read_text())
    data |= {"chip": str(SPINNAKER2), "model": str(REPO / "models" / "egru_lm")}
    data["language"] = {"prompt_tokens": 12, "generate_tokens": 4, "accuracy_chars": 0} | language
    return data


def test_egru_on_spinnaker2_equals_the_model_token_by_token(tmp_path):
    """The chip's float32 logits for every prompt and generated token equal the model's own step
    (`neurosim.zoo.egru.model.step`), bit for bit, and its scored text gives the model's bits per char."""
    result = run(egru_scenario(accuracy_chars=600), out_dir=tmp_path)
    s = result.summary
    assert s["matches_reference"]
    assert s["bits_per_char"] == s["float_bits_per_char"] and s["accuracy"] == s["float_accuracy"]
    assert 0 < s["event_rate_egru0"] < 1
    assert s["tokens_per_s"] > 0 and s["energy_per_token_j"] > 0 and s["power_w"] > 0
    trace = read_trace(result.trace_path)
    assert trace["cores"]["cycles"].shape[1] == s["cores_used"]
    assert len(trace.meta["generated_text"]) == 4


def test_egru_layers_wait_for_their_tokens():
    """A layer updates only in steps that bring it a token: held layers keep their state and
    their PEs do not run their neurons' updates."""
    setup = prepare(egru_scenario())
    lowered = setup.language
    assert lowered.hold(0, {0}) == frozenset({"egru0", "readout"})
    assert lowered.hold(1, {0}) == frozenset({"readout"})
    assert lowered.hold(2, {0}) == frozenset({"egru0"})
    model = core_model(setup.chip, setup.graph, setup.mapping)
    engine = Engine(setup.graph, setup.mapping, model.costs, per_message=False)
    engine.set_input("embed", lowered.embed(np.array([3])))
    held = model.step_cost(engine.step(lowered.hold(0, {0})), engine.payload)
    assert np.all(engine.state_of("egru0")["c"] == 0)
    engine.set_input("embed", np.zeros_like(lowered.embed(np.array([3]))))
    active = model.step_cost(engine.step(lowered.hold(1, {0})), engine.payload)
    assert np.any(engine.state_of("egru0")["c"] != 0)
    assert active.cycles.sum() > held.cycles.sum()


def test_the_w5_egru_maps_over_150_pes_and_runs():
    """The word-level model of Nazeer et al. 2024 at its size, token by token from the host."""
    data = yaml.safe_load((REPO / "scenarios" / "spinnaker2_egru_lm.yaml").read_text())
    data |= {"chip": str(SPINNAKER2), "model": str(REPO / "models" / "egru_wt2_w5"), "baselines": []}
    data["language"] |= {"prompt_tokens": 4, "generate_tokens": 2}
    result = run(data, write=False)
    s = result.summary
    assert 130 <= s["cores_used"] <= 150
    assert s["matches_reference"] and s["vocab_size"] == 33278
    assert s["time_chip_per_token_s"] == pytest.approx(4e-3)          # 3 layers deep + 1: four 1 ms ticks
    assert s["embedding_at"] == s["head_at"] == "host" and s["weights_generated"]
    # the three layers' CSR weights in the PEs' SRAM, as the paper kept them (88.3 KB on a PE of 96 KB)
    assert result.trace.groups["steps"]["energy_sram_pj"].sum() > 0 and s["energy_dram_per_token_j"] == 0


def test_plot_dvfs_needs_traces_with_dvfs(tmp_path):
    from neurosim.analysis.figures import plot_dvfs

    traces = [run(egru_scenario(), out_dir=tmp_path, overrides={"core.timing.dvfs": level,
                                                                 "core.timing.mode": "afap"}).trace_path
              for level in ("pl1", "pl4")]
    assert plot_dvfs(traces, tmp_path / "dvfs").is_file()
    loihi = run({"name": "l", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
                 "input": {"dataset": "digits", "samples": 1}, "timesteps": 2}, out_dir=tmp_path)
    with pytest.raises(UserError, match="no dvfs"):
        plot_dvfs([loihi.trace_path], tmp_path / "x")


def test_arm_pe_model_is_chosen_for_arm_pe_chips():
    chip = spinnaker2()
    graph = two_projection_graph()
    assert isinstance(core_model(chip, graph, map_graph(graph, chip)), ArmPeModel)


def test_synapses_in_dram_take_the_chips_dram_instead_of_pe_memory():
    """120 KB of dense synapses do not fit one PE's 96 KB of data memory, but fit its share of DRAM."""
    rng = np.random.default_rng(2)
    pops = [Population("inp", "graded_source", 400, {"payload_bits": 8}),
            Population("hid", "loihi_lif", 300, {"vth": 100})]
    graph = graph_of(pops, [Dense("w", "inp", "hid", rand_int8(rng, (300, 400)), 0)], input_pop="inp",
                     readout_pop="hid")
    assert map_graph(graph, spinnaker2()).n_cores == 2
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["core_kinds"]["pe"]["synapses_in"] = "dram"
    chip = chip_from_dict(data, file="<spinnaker2>")
    mapping = map_graph(graph, chip)
    assert mapping.n_cores == 1
    assert mapping.limits["synapse_memory_bytes"] == chip.core.dram.bytes // 152
