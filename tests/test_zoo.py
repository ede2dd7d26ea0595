"""The model zoo's vision models: golden readouts, every chip, the chip comparison, and a spiking
graph on the ternary pipeline; and the synapses a generated model draws from its seed."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from helpers import REPO
from neurosim import run_chips
from neurosim.cores.ternary_pipeline import NEURON_OPS, graph_step_cost
from neurosim.zoo.loader import load_model
from neurosim.runs import run, run_reference
from neurosim.spec.chip import load_chip

CHIPS = ["loihi2", "spinnaker2", "ternary_fpga"]


@pytest.mark.parametrize("model", ["scnn_digits", "scnn_digits_events"])
def test_golden_readouts_of_the_shipped_weights(model):
    graph, _ = load_model(REPO / "models" / model)
    with h5py.File(REPO / "models" / model / "weights.h5") as h5:
        inputs, expected, steps = h5["golden/inputs"][()], h5["golden/readout_v"][()], int(h5.attrs["golden_timesteps"])
    _, readout, _ = run_reference(graph, inputs, steps)
    assert np.array_equal(readout, expected)


@pytest.mark.parametrize("model, dataset, steps", [("scnn_digits", "digits", 16),
                                                    ("scnn_digits_events", "digits_events", 30)])
def test_vision_models_run_on_every_chip_with_the_reference_accuracy(model, dataset, steps, tmp_path):
    scenario = {"name": model, "chip": [str(REPO / "chips" / f"{c}.yaml") for c in CHIPS],
                "model": str(REPO / "models" / model), "input": {"dataset": dataset, "samples": 24},
                "timesteps": steps}
    results, plot = run_chips(scenario, out_dir=tmp_path)
    assert plot.is_file()
    accuracies = {r.summary["accuracy"] for r in results}
    assert len(accuracies) == 1                           # the same integer arithmetic on every chip
    for r in results[:2]:
        assert r.summary["matches_reference"]
    latency = [r.summary["latency_per_inference_s"] for r in results]
    assert latency[1] == pytest.approx(steps * 1e-3, rel=0.01)     # SpiNNaker 2: one 1 ms tick per step
    assert all(r.summary["energy_per_inference_j"] > 0 for r in results)


def test_compare_chips_from_the_cli(tmp_path):
    from click.testing import CliRunner

    from neurosim.cli import cli

    result = CliRunner().invoke(cli, ["run", str(REPO / "scenarios" / "compare_chips_digits.yaml"), "--out",
                                      str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.split()[:1] and line.split()[0] in CHIPS]
    assert [r.split()[0] for r in rows] == CHIPS
    assert (tmp_path / "compare_chips_digits-compare.png").is_file()


def test_pipeline_step_cost_counts_adds_and_neuron_updates():
    chip, _ = load_chip(REPO / "chips" / "ternary_fpga.yaml")
    core = chip.core
    c = graph_step_cost(core, synapse_adds=1000, neurons=50, events_bytes=20, weight_bits=8.0)
    per_ns = core.cores * core.ternary_units * core.clock_hz * 1e-9
    assert c.compute_ns == pytest.approx(1000 / per_ns + 50 * NEURON_OPS / (core.elementwise_units * core.clock_hz * 1e-9))
    assert c.stream_ns == 0 and c.energy_pj["matrix"] == pytest.approx(1000 * core.energy_pj.ternary_add)
    big = graph_step_cost(core, 0, 0, 0, weight_bits=core.on_chip_buffer_bytes * 8 + 8)
    assert big.stream_ns > 0 and big.energy_pj["stream"] > 0


def test_pipeline_adds_are_events_times_fan_out():
    """On the pipeline a binary spike's synapse is one add; a graded input's is weight_bits."""
    graph, _ = load_model(REPO / "models" / "scnn_digits")
    result = run({"name": "p", "chip": str(REPO / "chips" / "ternary_fpga.yaml"),
                  "model": str(REPO / "models" / "scnn_digits"), "input": {"dataset": "digits", "samples": 3},
                  "timesteps": 4}, write=False)
    from neurosim.datasets import load
    from neurosim.programs.reference import Reference

    ref = Reference(graph, 3)
    ref.set_input("pixels", load("digits", "test").inputs[:3])
    expected = 0
    for _ in range(4):
        payload = ref.step()
        for proj in graph.projections.values():
            fan_out = np.diff(proj.to_csr().indptr)
            bits = proj.weight_bits if graph.populations[proj.source].kind == "graded_source" else 1
            expected += int(((payload[proj.source] != 0) @ fan_out).sum()) * bits
    assert result.summary["synaptic_ops"] == expected


def test_a_language_model_compared_across_chips_is_per_token(tmp_path):
    """SpikeGPT on Loihi 2 (fixed point) and SpiNNaker 2 (float): a row per chip, per generated token."""
    import yaml
    from click.testing import CliRunner

    from neurosim.cli import cli

    data = yaml.safe_load((REPO / "scenarios" / "compare_chips_spikegpt.yaml").read_text())
    data |= {"chip": [str(REPO / "chips" / f"{c}.yaml") for c in ("loihi2", "spinnaker2")],
             "model": str(REPO / "models" / "spikegpt"),
             "language": {"prompt_tokens": 4, "generate_tokens": 2, "accuracy_chars": 0}}
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["run", str(scenario), "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "energy/token" in result.output
    rows = [line.split()[0] for line in result.output.splitlines() if line.split()[:1] in (["loihi2"], ["spinnaker2"])]
    assert rows == ["loihi2", "spinnaker2"]
    assert (tmp_path / "compare_chips_spikegpt-compare.png").is_file()


@pytest.mark.parametrize("n_source, n_target, fan_in, window", [(1000, 300, 7, None), (50, 200, 5, 20),
                                                                 (64, 64, 64, None), (300, 1000, 4, 37)])
def test_generated_synapses_are_the_documented_draw(n_source, n_target, fan_in, window):
    """`local_sparse` as its module describes it: one source from each stratum of a window centred
    on the target's relative place (wrapping), weights in range, rows by source with targets
    ascending, the same for the same seed."""
    from neurosim.graph.generate import local_sparse

    csr = local_sparse(n_source, n_target, fan_in, window, -3, 3, seed=5, index=2)
    rng = np.random.default_rng([5, 2])
    width = n_source if window is None else min(window, n_source)
    stratum = width // fan_in
    centre = np.arange(n_target) * n_source // n_target
    offsets = np.arange(fan_in) * stratum + rng.integers(0, stratum, (n_target, fan_in))
    sources = (centre[:, None] - width // 2 + offsets) % n_source
    weights = rng.integers(-3, 4, n_target * fan_in).reshape(n_target, fan_in)
    rows = np.repeat(np.arange(n_source), np.diff(csr.indptr))
    assert csr.indptr[-1] == n_target * fan_in
    assert np.all(np.diff(rows * n_target + csr.indices) > 0)          # by source, targets ascending, no repeat
    drawn = {(int(s), t): int(w) for t in range(n_target) for s, w in zip(sources[t], weights[t])}
    assert {(int(s), int(t)): int(w) for s, t, w in zip(rows, csr.indices, csr.weight)} == drawn
    again = local_sparse(n_source, n_target, fan_in, window, -3, 3, seed=5, index=2)
    assert np.array_equal(again.indices, csr.indices) and np.array_equal(again.weight, csr.weight)
