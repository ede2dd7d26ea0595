"""Figures say what their titles say: a sample's latency per step adds up to its latency, the
mesh is drawn where cores are used, ARM PEs show cycles against their tick, many populations
become a heat map, the chip comparison splits static from dynamic energy, the Pareto front
counts accuracy, and every figure can be written as PNG, PDF or SVG."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import REPO
from neurosim.analysis.compare import Row, pareto, pareto_figure, runs_figure
from neurosim.analysis.figures import chip_comparison, plot_trace
from neurosim.analysis.plotting import plt
from neurosim.analysis.summary import summary_lines
from neurosim.analysis.trace_figures import core_activity, latency_per_step, layer_sparsity
from neurosim.analysis.units import percent, si
from neurosim.errors import UserError
from neurosim.runs import run
from neurosim.traces.trace import read_trace


def digits_on(chip: str, samples: int = 3, timesteps: int = 4) -> dict:
    return {"name": f"fig-{chip}", "chip": str(REPO / "chips" / f"{chip}.yaml"),
            "model": str(REPO / "models" / "digits_snn"), "input": {"dataset": "digits", "samples": samples},
            "timesteps": timesteps, "record": {"spikes": True, "spike_samples": 2}}


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    out = tmp_path_factory.mktemp("traces")
    return {chip: run(digits_on(chip), out_dir=out).trace_path for chip in ("loihi2", "spinnaker2")}


def test_si_rounds_into_the_next_prefix_and_percent_keeps_small_parts():
    assert si(999.5e-6, "s") in ("1 ms", "0.999 ms") and "e+" not in si(999.5e-6, "s")
    assert si(999.96e-6, "s") == "1 ms" and si(1300e-6, "J") == "1.3 mJ" and si(68.6e-6, "J") == "68.6 µJ"
    assert percent(0.979) == "97.9%" and percent(0.00025) == "0.025%" and percent(0) == "0%"


def test_latency_per_step_adds_up_to_the_samples_latency(traces):
    trace = read_trace(traces["loihi2"])
    T, sample = 4, 1
    steps_ns = trace["steps"]["latency_ns"][sample * T:(sample + 1) * T]
    total = trace["samples"]["latency_s"][sample]
    fig = latency_per_step(trace, sample)
    ax = fig.axes[0]
    heights = sorted(p.get_height() for p in ax.patches)
    readout = total - steps_ns.sum() * 1e-9
    assert len(ax.patches) == T + 1
    assert sum(heights) == pytest.approx(total) and min(heights) == pytest.approx(readout)
    assert f"= {si(total, 's')} for this sample" in ax.get_title()
    codes = dict(item.split(": ") for item in trace.attrs["steps"]["bound_codes"].split(", "))
    bound = trace["steps"]["bound"][sample * T:(sample + 1) * T]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for code in set(bound.tolist()):
        assert f"set by {codes[str(code)]} ({int(np.sum(bound == code))} of {T} steps)" in labels
    plt.close(fig)


def test_plot_trace_writes_each_format_for_the_sample_asked(traces, tmp_path):
    magic = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}
    for fmt, start in magic.items():
        paths = plot_trace(traces["loihi2"], tmp_path / fmt, fmt=fmt, sample=2)
        assert len(paths) == 4 and all(p.suffix == f".{fmt}" and p.read_bytes().startswith(start) for p in paths)
    with pytest.raises(UserError, match="3 samples"):
        plot_trace(traces["loihi2"], tmp_path / "x", sample=3)
    with pytest.raises(UserError, match="expected one of png, pdf, svg"):
        plot_trace(traces["loihi2"], tmp_path / "x", fmt="jpg")
    from neurosim.cli import cli

    out = CliRunner().invoke(cli, ["plot", str(traces["spinnaker2"]), "--format", "svg", "--sample", "1",
                                   "--out", str(tmp_path / "cli")])
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(
        ["energy_by_component.svg", "latency_per_timestep.svg", "core_activity.svg", "spike_raster.svg"])


def test_core_activity_is_drawn_over_the_used_routers_only(traces):
    trace = read_trace(traces["loihi2"])
    cores = trace["cores"]
    side = int(np.ceil(np.sqrt(trace.attrs["cores"]["cores_per_router"])))
    fig = core_activity(trace)
    grid = fig.axes[0].images[0].get_array()
    used_x = cores["x"].max() - cores["x"].min() + 1
    used_y = cores["y"].max() - cores["y"].min() + 1
    assert grid.shape == (used_y * side, used_x * side)
    per_inference = cores["synops"].sum(axis=0) / 3
    assert sorted(np.asarray(grid.compressed())) == pytest.approx(sorted(per_inference))
    plt.close(fig)


def test_core_activity_on_arm_pes_is_cycles_against_the_tick(traces):
    trace = read_trace(traces["spinnaker2"])
    cores = trace["cores"]
    fig = core_activity(trace)
    ax = fig.axes[0]
    share = 100 * (cores["busy_ns"] / trace["steps"]["latency_ns"][:, None]).mean(axis=0)
    assert sorted(ax.images[0].get_array().compressed()) == pytest.approx(sorted(share))
    assert "against the tick (1 ms)" in ax.get_title()
    texts = " ".join(t.get_text() for t in ax.texts)
    for mean in cores["cycles"].mean(axis=0):
        assert f"{si(mean, '', 3)} cycles" in texts
    plt.close(fig)


def test_layer_sparsity_is_a_heat_map_of_populations_by_step(traces):
    trace = read_trace(traces["loihi2"])
    fig = layer_sparsity(trace)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == trace["layers"]["sparsity"].T.shape
    assert np.allclose(image, 1 - trace["layers"]["sparsity"].T)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(trace["layers"]["names"])
    plt.close(fig)


def test_chip_comparison_stacks_static_and_dynamic_energy(traces):
    from neurosim.traces.trace import read_summary

    summaries = [read_summary(traces[c]) for c in ("loihi2", "spinnaker2")]
    fig = chip_comparison(summaries)
    energy = fig.axes[1]
    static, dynamic = energy.patches[:2], energy.patches[2:4]
    for t, s, d in zip(summaries, static, dynamic):
        assert s.get_height() == pytest.approx(t.summary["energy_static_per_inference_j"])
        assert s.get_height() + d.get_height() == pytest.approx(t.summary["energy_per_inference_j"])
    assert energy.get_yscale() == "linear" and energy.get_ylim()[0] == 0
    labels = [t.get_text() for t in energy.texts]
    assert all("static" in text and "e+" not in text for text in labels)
    plt.close(fig)


def test_pareto_front_counts_accuracy():
    rows = [Row(name, "c", "m", acc, e, t, 0.5, "inference") for name, acc, e, t in
            [("cheap95", 0.95, 1.0, 1.0), ("dear99", 0.99, 2.0, 2.0), ("dear95", 0.95, 2.0, 2.0),
             ("same", 0.95, 1.0, 1.0), ("fast90", 0.90, 3.0, 0.5)]]
    assert list(pareto(rows)) == [True, True, False, True, True]
    unlabelled = [Row("a", "c", "m", float("nan"), 1.0, 2.0, 0.5, "inference"),
                  Row("b", "c", "m", 0.9, 2.0, 3.0, 0.5, "inference")]
    assert list(pareto(unlabelled)) == [True, False]          # without an accuracy: energy and time alone


def test_compare_figures_label_every_point_and_list_only_what_is_drawn():
    rows = [Row(f"chip=c{k % 2}, timesteps={k}", f"c{k % 2}", "m", 0.5 + k / 20, 1e-6 * (k + 1), 1e-5 * (k + 1),
                0.5, "inference") for k in range(6)]
    front = pareto(rows)
    fig = pareto_figure(rows, front)
    left, right = fig.axes[:2]
    assert len(left.texts) == len(rows)
    assert all("chip=" not in t.get_text() for t in left.texts)              # the colour says the chip
    assert not left.lines                                                     # no front line drawn
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert legend == ["c0", "c1", "on the Pareto front"]
    assert "Pareto front of energy, time and accuracy" in fig._suptitle.get_text()
    plt.close(fig)
    fig = runs_figure(rows, front)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [r.label for r in rows]
    assert fig._suptitle.get_text().startswith("6 runs: accuracy, energy and time per inference")
    plt.close(fig)


def test_summary_lines_are_what_neurosim_run_prints(tmp_path):
    import yaml

    from neurosim.cli import cli

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(digits_on("loihi2")))
    out = CliRunner().invoke(cli, ["run", str(scenario), "--out", str(tmp_path / "t"), "--no-progress"])
    assert out.exit_code == 0, out.output
    printed = out.output.strip().splitlines()
    trace = printed[-1].split()[-1]
    summary = read_trace(trace).summary
    expected = summary_lines(summary, scenario=scenario, trace=trace)
    wall = next(i for i, line in enumerate(expected) if line.startswith("wall time"))
    assert printed[:wall] == expected[:wall] and printed[wall + 1:] == expected[wall + 1:]
