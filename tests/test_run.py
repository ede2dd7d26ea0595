"""End to end: a scenario on a tiny model, its trace, its figures, and the CLI around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import LOIHI2, scenario_dict, tiny_model_files, write_model
from neurosim.cores.neurocore import BOUNDS
from neurosim.errors import UserError
from neurosim.runs import run
from neurosim.traces.trace import read_trace

SUMMARY_KEYS = {"accuracy", "reference_accuracy", "matches_reference", "energy_per_inference_j",
                "latency_per_inference_s", "energy_synapse_per_inference_j", "energy_neuron_per_inference_j",
                "energy_network_per_inference_j", "energy_static_per_inference_j", "mean_sparsity", "cores_used",
                "chips_used", "timesteps", "samples", "synaptic_ops", "overflows", "wall_time_s",
                "inter_chip_bits_per_inference", "host_bits_per_inference", "steps_bound_by_dendrite",
                "steps_bound_by_synapse", "steps_bound_by_synmem", "steps_bound_by_link", "steps_bound_by_barrier",
                "steps_bound_by_messages", "steps_bound_by_tick"}


@pytest.fixture
def traced(tmp_path, tiny_model, fake_dataset):
    """A run of the tiny model with spike recording, and its trace read back."""
    result = run(scenario_dict(tiny_model, record={"spikes": True, "spike_samples": 2}), out_dir=tmp_path / "traces")
    return result, read_trace(result.trace_path)


def test_run_summary_and_trace_groups(traced, tiny_model, fake_dataset):
    """The summary has every documented key; the trace has every group, spikes included."""
    result, trace = traced
    assert set(result.summary) == SUMMARY_KEYS
    s = result.summary
    assert s["matches_reference"] is True
    assert s["samples"] == len(fake_dataset.labels) and s["timesteps"] == 5
    assert result.trace_path.is_file() and result.trace_path.suffix == ".h5"
    assert result.trace_path.name.startswith("test-")
    assert set(trace.groups) == {"steps", "cores", "layers", "samples", "spikes", "links", "mapping", "programs",
                                 "readout"}
    assert set(trace["spikes"]) == {"inp", "hid", "out"}
    n_steps = 6 * 5
    assert all(len(v) == n_steps for v in trace["steps"].values())
    assert trace["steps"]["bound_ns"].shape == (n_steps, len(BOUNDS))
    assert trace["layers"]["overflow"].shape == (n_steps, 3)
    assert trace["cores"]["synops"].shape == (n_steps, 2)
    assert trace["layers"]["events"].shape == (n_steps, 3)
    np.testing.assert_array_equal(trace["samples"]["label"], fake_dataset.labels)
    np.testing.assert_array_equal(trace["samples"]["prediction"], trace["samples"]["reference_prediction"])
    assert s["accuracy"] == pytest.approx(np.mean(trace["samples"]["prediction"] == fake_dataset.labels))
    assert trace.meta["model_name"] == "tiny" and trace.meta["chip_name"] == "loihi2"
    assert trace.meta["model_yaml"] == (tiny_model / "model.yaml").read_text()
    assert trace.meta["weights_sha256"] in trace.meta["model_yaml"]
    assert trace.meta["chip_yaml"] == LOIHI2.read_text()


def test_run_is_active_and_counts_add_up(traced):
    """The tiny model is not silent, and the per-core and per-layer counts add up to the step totals."""
    _, trace = traced
    steps, cores, layers = trace["steps"], trace["cores"], trace["layers"]
    assert layers["events"][:, 1].sum() > 0, "the hidden layer spikes"
    np.testing.assert_array_equal(cores["synops"].sum(axis=1), steps["synops"])
    np.testing.assert_array_equal(layers["events"].sum(axis=1), steps["events"])
    assert steps["synops"].sum() == trace.summary["synaptic_ops"]
    # spikes recorded for the first two samples only, one entry per event
    spikes = trace["spikes"]["hid"]
    assert len(spikes["timestamps"]) == layers["events"][:10, 1].sum()
    assert spikes["timestep"].max() < 10 and np.all(np.diff(spikes["timestamps"]) >= 0)
    assert spikes["node_ids"].max() < 20


def test_energy_is_the_sum_of_its_priced_operations(traced, loihi2):
    """Per step: synapse energy = synops x 6.7 pJ; neuron energy = 30 neurons x 10.8 pJ +
    events x 19.7 pJ; network energy = messages x 31.5 pJ + hops and links; static energy = 1 W x
    latency; the summary adds them up per inference."""
    _, trace = traced
    steps, cores, s = trace["steps"], trace["cores"], trace.summary
    e = loihi2.core.energy_pj
    np.testing.assert_allclose(steps["energy_synapse_pj"], steps["synops"] * e.synop)
    np.testing.assert_allclose(steps["energy_neuron_pj"],
                               30 * e.neuron_update + cores["spikes"].sum(axis=1) * e.spike_out)
    assert np.all(steps["energy_network_pj"] >= steps["messages"] * e.message_out - 1e-6)
    np.testing.assert_allclose(steps["energy_static_pj"], steps["latency_ns"] * loihi2.chip.static_power_w * 1e3)
    n = s["samples"]
    assert s["energy_synapse_per_inference_j"] == pytest.approx(steps["energy_synapse_pj"].sum() / n * 1e-12)
    parts = sum(s[f"energy_{k}_per_inference_j"] for k in ("synapse", "neuron", "network", "static"))
    assert s["energy_per_inference_j"] == pytest.approx(parts)
    assert s["energy_per_inference_j"] == pytest.approx(trace["samples"]["energy_j"].mean())


def test_step_latency_is_the_largest_runtime_bound(traced, loihi2):
    """Every step lasts as long as the largest of its bounds (busiest core's ops and messages,
    busiest link, barrier), which the trace names; never less than the busiest core or the barrier."""
    _, trace = traced
    steps = trace["steps"]
    busiest = trace["cores"]["busy_ns"].max(axis=1)
    latency = steps["latency_ns"]
    np.testing.assert_allclose(latency, steps["bound_ns"].max(axis=1))
    assert np.all(latency >= busiest - 1e-9) and np.all(latency >= loihi2.chip.barrier_ns)
    np.testing.assert_array_equal(steps["bound_ns"][:, 4], loihi2.chip.barrier_ns)
    chosen = steps["bound_ns"][np.arange(len(latency)), steps["bound"]]
    np.testing.assert_allclose(chosen, latency)
    per_sample = latency.reshape(6, 5).sum(axis=1)
    assert np.all(trace["samples"]["latency_s"] * 1e9 > per_sample)           # plus the host's readout
    assert np.all(np.diff(trace["steps"]["time_ns"]) > 0)


def test_runs_are_deterministic(tmp_path, tiny_model, fake_dataset):
    """Two runs with the same seed write identical traces, but for wall time and creation stamp."""
    a = read_trace(run(scenario_dict(tiny_model, seed=3), out_dir=tmp_path / "a").trace_path)
    b = read_trace(run(scenario_dict(tiny_model, seed=3), out_dir=tmp_path / "b").trace_path)
    assert {k: v for k, v in a.meta.items() if k != "created"} == {k: v for k, v in b.meta.items() if k != "created"}
    assert a.meta["seed"] == 3
    assert {k: v for k, v in a.summary.items() if k != "wall_time_s"} == \
        {k: v for k, v in b.summary.items() if k != "wall_time_s"}
    assert a.attrs == b.attrs and a.groups.keys() == b.groups.keys()
    assert "spikes" not in a.groups, "spike trains only when record.spikes is set"

    def flat(tree, prefix=""):
        for k, v in tree.items():
            yield from flat(v, f"{prefix}{k}/") if isinstance(v, dict) else [(prefix + k, v)]
    fa, fb = dict(flat(a.groups)), dict(flat(b.groups))
    assert fa.keys() == fb.keys()
    for key in fa:
        np.testing.assert_array_equal(fa[key], fb[key], err_msg=key)


def test_seed_argument_overrides_the_scenario(tmp_path, tiny_model, fake_dataset):
    result = run(scenario_dict(tiny_model, seed=1), out_dir=tmp_path, seed=9)
    assert read_trace(result.trace_path).meta["seed"] == 9


def test_per_message_timing_off_changes_time_not_results(tmp_path, tiny_model, fake_dataset):
    on = run(scenario_dict(tiny_model), write=False).summary
    off = run(scenario_dict(tiny_model, timing={"per_message": False}), write=False).summary
    for key in ("accuracy", "synaptic_ops", "mean_sparsity", "energy_synapse_per_inference_j"):
        assert on[key] == off[key]
    assert off["latency_per_inference_s"] <= on["latency_per_inference_s"]


def test_write_false_and_samples_limit(tmp_path, tiny_model, fake_dataset, monkeypatch):
    """write=False writes nothing; input.samples runs only the first N samples."""
    monkeypatch.chdir(tmp_path)
    result = run(scenario_dict(tiny_model, input={"dataset": "digits", "split": "test", "samples": 2}), write=False)
    assert result.trace_path is None and result.summary["samples"] == 2
    assert not (tmp_path / "traces").exists()


def test_spike_count_readout_and_no_core_records(tmp_path, fake_dataset):
    """A spiking readout (spike_count), with per-core records off, still matches the reference."""
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(4), readout_mode="spike_count")
    folder = write_model(tmp_path / "spiky", spec, arrays, attrs)
    result = run(scenario_dict(folder, record={"cores": False}, timesteps=8), out_dir=tmp_path / "traces")
    trace = read_trace(result.trace_path)
    assert result.summary["matches_reference"] is True
    assert trace["cores"]["synops"].shape == (0, 2)
    assert trace["layers"]["events"][:, 2].sum() > 0, "the readout spikes"
    from neurosim.analysis.figures import plot_trace
    assert len(plot_trace(result.trace_path, tmp_path / "png")) == 4


def test_dataset_that_does_not_fit_the_model(tmp_path, tiny_model, fake_dataset, monkeypatch):
    import neurosim.datasets

    with pytest.raises(UserError, match="does not match the model's dataset 'digits'"):
        run(scenario_dict(tiny_model, input={"dataset": "mnist"}), write=False)
    short = type(fake_dataset)("digits", "test", fake_dataset.inputs[:, :10], fake_dataset.labels)
    monkeypatch.setattr(neurosim.datasets, "load", lambda name, split: short)
    with pytest.raises(UserError, match="has 10 inputs per sample, the model's input population 'inp' has 64"):
        run(scenario_dict(tiny_model), write=False)


# ---------------------------------------------------------------------------------------------
# figures and the CLI


def test_plot_trace_writes_four_pngs(traced, tmp_path):
    from neurosim.analysis.figures import plot_trace

    result, _ = traced
    paths = plot_trace(result.trace_path, tmp_path / "figures")
    assert sorted(p.name for p in paths) == sorted(["energy_by_component.png", "latency_per_timestep.png",
                                                   "core_activity.png", "spike_raster.png"])
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    default = plot_trace(result.trace_path)                  # beside the trace, in a folder of its name
    assert all(p.parent == result.trace_path.with_suffix("") for p in default)


def test_cli_run_and_plot_in_process(tmp_path, tiny_model, fake_dataset):
    """`neurosim run` prints the summary and the trace path; `neurosim plot` the four PNGs."""
    import yaml

    from neurosim.cli import cli

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(scenario_dict(tiny_model)))
    out = CliRunner().invoke(cli, ["run", str(scenario), "--out", str(tmp_path / "traces"), "--no-progress"])
    assert out.exit_code == 0, out.output
    assert "equals the numpy reference" in out.output
    trace_path = Path(out.output.strip().splitlines()[-1].split()[-1])
    assert trace_path.is_file() and trace_path.parent == tmp_path / "traces"
    plotted = CliRunner().invoke(cli, ["plot", str(trace_path), "--out", str(tmp_path / "png")])
    assert plotted.exit_code == 0 and len(plotted.output.splitlines()) == 4


def test_cli_inspect_chip_prints_capacity():
    """`neurosim inspect chips/loihi2.yaml` shows the capacity per core, per chip and per system."""
    from neurosim.cli import cli

    out = CliRunner().invoke(cli, ["inspect", str(LOIHI2)])
    assert out.exit_code == 0, out.output
    assert "128 cores in all" in out.output
    neurons = next(line for line in out.output.splitlines() if line.strip().startswith("neurons"))
    assert neurons.split()[1:] == ["8,192", "1,048,576", "1,048,576"]
    assert "synop" in out.output and "6.7" in out.output


def test_cli_inspect_scenario_and_listings(tmp_path, tiny_model, fake_dataset):
    """inspect on a scenario shows per-core utilisation; chips and models list the folders."""
    import yaml

    from neurosim.cli import cli

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(scenario_dict(tiny_model)))
    out = CliRunner().invoke(cli, ["inspect", str(scenario)])
    assert out.exit_code == 0, out.output
    assert "2 cores on 1 chip(s)" in out.output and "on the host: inp (64 neurons)" in out.output
    assert "hid" in out.output and "out" in out.output
    models = CliRunner().invoke(cli, ["models", "--dir", str(tiny_model.parent)])
    assert models.exit_code == 0 and "tiny" in models.output and "invalid" not in models.output
    chips = CliRunner().invoke(cli, ["chips", "--dir", str(LOIHI2.parent)])
    assert chips.exit_code == 0 and "loihi2" in chips.output and "128" in chips.output
    validated = CliRunner().invoke(cli, ["validate", str(scenario), str(tiny_model)])
    assert validated.exit_code == 0 and validated.output.splitlines() == [f"{scenario}: ok (scenario)",
                                                                          f"{tiny_model}: ok (model)"]


# ---------------------------------------------------------------------------------------------
# the system level


def test_sample_timeline_adds_barriers_and_readout():
    """Each step lasts its slowest chip plus the barrier; the sample adds the host's readout."""
    from neurosim.system.system import SystemTiming, sample_timeline

    busy = np.array([[10.0, 300.0], [5.0, 5.0], [0.0, 0.0]])
    link_bits = np.array([[0.0], [500.0], [0.0]])          # 500 bits at 2 bits/ns: 250 ns
    host_bits = np.array([0.0, 0.0, 1000.0])               # 1000 bits at 4 bits/ns: 250 ns
    steps, total = sample_timeline(busy, link_bits, host_bits, SystemTiming(100.0, 50.0, 2.0, 4.0))
    np.testing.assert_allclose(steps, [300.0, 250.0, 250.0])
    assert total == pytest.approx(850.0)


def test_run_across_two_chips(tmp_path, tiny_model, fake_dataset, loihi2):
    """One core per chip: the model spans two chips, its messages cross a link (in the trace's
    link loads), and the barrier grows by a round trip over the link (200 ns + 2 x 27 ns);
    results still match the reference."""
    overrides = {"chip.mesh.routers_x": 1, "chip.mesh.routers_y": 1, "chip.mesh.cores_per_router": 1,
                 "system.chips_x": 2}
    result = run(scenario_dict(tiny_model, overrides=overrides), out_dir=tmp_path)
    trace = read_trace(result.trace_path)
    assert (result.summary["chips_used"], result.summary["cores_used"]) == (2, 2)
    assert result.summary["matches_reference"] is True
    # every host message crosses the host link, every message of core 0 (hid, chip 0) the chip link to core 1
    steps, cores = trace["steps"], trace["cores"]
    host_messages = steps["messages"].sum() - cores["messages_out"].sum()
    assert cores["messages_out"][:, 0].sum() > 0
    assert steps["links"].sum() == host_messages + cores["messages_out"][:, 0].sum()
    barrier = loihi2.chip.barrier_ns + 2 * loihi2.system.link.latency_ns
    np.testing.assert_allclose(steps["bound_ns"][:, 4], barrier)
    assert list(trace["links"]["names"]) == ["c0>c1", "c1>c0"]
    bits_per_message = loihi2.chip.noc.message_bits        # hid sends binary spikes to out on chip 1
    np.testing.assert_array_equal(trace["links"]["bits"][:, 0], cores["messages_out"][:, 0] * bits_per_message)
    assert trace["links"]["bits"][:, 1].sum() == 0
    assert result.summary["inter_chip_bits_per_inference"] == trace["links"]["bits"].sum() / 6
    # two chips burn twice one chip's static power
    np.testing.assert_allclose(trace["steps"]["energy_static_pj"],
                               trace["steps"]["latency_ns"] * 2 * loihi2.chip.static_power_w * 1e3)


def test_sigma_delta_membrane_readout(tmp_path, fake_dataset):
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(0))
    spec["populations"]["out"] = {"kind": "sigma_delta", "size": 10, "params": {"vth": 5}}
    folder = write_model(tmp_path / "sd", spec, arrays, attrs)
    assert run(scenario_dict(folder), write=False).summary["matches_reference"] is True


@pytest.mark.slow
def test_quickstart_matches_reference(tmp_path, monkeypatch):
    """The shipped quickstart (digits_snn on Loihi 2, 360 test images): bit-exact and accurate."""
    from helpers import REPO

    monkeypatch.chdir(REPO)
    result = run("scenarios/quickstart.yaml", out_dir=tmp_path)
    s = result.summary
    assert s["matches_reference"] is True and s["accuracy"] == s["reference_accuracy"]
    assert s["samples"] == 360 and s["accuracy"] > 0.9
    assert "spikes" in read_trace(result.trace_path).groups
