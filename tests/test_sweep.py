"""Sweeps on Dask, run comparisons with their Pareto front, GPU baselines and HTML reports."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml

from helpers import REPO
from neurosim.analysis.compare import Row, load_rows, pareto, plot
from neurosim.cores.gpu_roofline import token_cost
from neurosim.errors import UserError
from neurosim.runs import run
from neurosim.spec.chip import load_chip
from neurosim.sweep import apply_point, load_sweep, point_id, run_sweep


def sweep_file(tmp_path, grid: dict, **extra) -> str:
    spec = {"name": "s", "base": str(REPO / "scenarios" / "quickstart.yaml"), "grid": grid,
            "out": str(tmp_path / "out")} | extra
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def rows_of(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_points_are_the_grid_times_the_draws(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path, {"timesteps": [2, 4], "chip": ["chips/loihi2.yaml"]},
                                  random={"samples": 3, "seed": 1, "fields": {"input.samples": {"int": [2, 9]},
                                                                              "overrides.core.energy_pj.synop":
                                                                                  {"log_uniform": [1.0, 10.0]}}}))
    assert len(sweep.points) == 6
    assert all(2 <= p["input.samples"] <= 9 and 1.0 <= p["overrides.core.energy_pj.synop"] <= 10.0
               for p in sweep.points)
    assert len({point_id(p) for p in sweep.points}) == 6
    again = load_sweep(sweep_file(tmp_path, {"timesteps": [2, 4], "chip": ["chips/loihi2.yaml"]},
                                  random={"samples": 3, "seed": 1, "fields": {"input.samples": {"int": [2, 9]},
                                                                              "overrides.core.energy_pj.synop":
                                                                                  {"log_uniform": [1.0, 10.0]}}}))
    assert [point_id(p) for p in again.points] == [point_id(p) for p in sweep.points]
    scenario = apply_point(sweep.base, sweep.points[0], [REPO])
    assert scenario["overrides"]["core.energy_pj.synop"] == sweep.points[0]["overrides.core.energy_pj.synop"]
    assert scenario["input"]["samples"] == sweep.points[0]["input.samples"]
    assert os.path.isabs(scenario["chip"])


def test_a_bad_sweep_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="grid or random"):
        load_sweep(sweep_file(tmp_path, {}))
    with pytest.raises(UserError, match="not found"):
        load_sweep(sweep_file(tmp_path, {"timesteps": [1]}, base="nowhere.yaml"))


def test_a_sweep_on_a_local_dask_cluster_records_failures_and_resumes(tmp_path):
    grid = {"chip": [str(REPO / "chips" / "loihi2.yaml"), str(REPO / "chips" / "spinnaker2.yaml")],
            "timesteps": [2, 0], "input.samples": [3], "record.spikes": [False]}    # timesteps 0 is invalid
    path = sweep_file(tmp_path, grid)
    result = run_sweep(path, workers=2)
    assert (result.done, result.failed, result.skipped) == (2, 2, 0)
    rows = rows_of(result.table_csv)
    assert len(rows) == 4
    bad = [r for r in rows if r["status"] == "error"]
    assert len(bad) == 2 and all("timesteps" in r["error"] for r in bad)
    good = [r for r in rows if r["status"] == "ok"]
    assert all(float(r["energy_per_inference_j"]) > 0 and os.path.isfile(r["trace"]) for r in good)
    with h5py.File(result.table_h5) as h5:
        assert len(h5["point"]) == 4 and np.isfinite(h5["energy_per_inference_j"][()]).sum() == 2
    again = run_sweep(path, workers=1)
    assert (again.done, again.skipped) == (0, 2)          # the finished points are skipped, failures retried


def test_an_interrupted_sweep_finishes_on_a_rerun(tmp_path):
    grid = {"chip": [str(REPO / "chips" / "loihi2.yaml")], "timesteps": [1, 2, 3, 4, 5, 6],
            "input.samples": [20], "record.spikes": [False]}
    path = sweep_file(tmp_path, grid)
    table = tmp_path / "out" / "s.csv"
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.cli", "sweep", path, "--workers", "1", "--no-progress"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not table.is_file() or len(rows_of(table)) < 1) and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(rows_of(table)) if table.is_file() else 0
    assert finished >= 1
    result = run_sweep(path, workers=1)
    assert result.skipped == finished and result.done == 6 - finished
    assert len(rows_of(table)) == 6 and {r["status"] for r in rows_of(table)} == {"ok"}


def test_pareto_front():
    rows = [Row(str(k), "c", "m", 1.0, e, t, 0.5, "inference") for k, (e, t) in
            enumerate([(1, 5), (2, 2), (5, 1), (3, 3), (2, 6)])]
    assert list(pareto(rows)) == [True, True, True, False, False]


def test_compare_traces_and_a_sweep_table(tmp_path):
    traces = [run({"name": f"r{t}", "chip": str(REPO / "chips" / chip), "model": str(REPO / "models" / "digits_snn"),
                   "input": {"dataset": "digits", "samples": 4}, "timesteps": t}, out_dir=tmp_path).trace_path
              for chip, t in (("loihi2.yaml", 4), ("spinnaker2.yaml", 4))]
    rows = load_rows(traces)
    assert [r.chip for r in rows] == ["loihi2", "spinnaker2"] and all(r.per == "inference" for r in rows)
    assert all(p.is_file() for p in plot(rows, tmp_path / "cmp"))
    from click.testing import CliRunner

    from neurosim.cli import cli

    out = CliRunner().invoke(cli, ["compare", *map(str, traces), "--out", str(tmp_path / "cli")])
    assert out.exit_code == 0, out.output
    assert "pareto" in out.output and (tmp_path / "cli" / "pareto.png").is_file()


def test_gpu_roofline_token_cost():
    chip, _ = load_chip(REPO / "chips" / "gpu_a100.yaml")
    gpu = chip.core
    one = token_cost(gpu, 1_000_000_000)
    assert one.memory_bound and one.time_s == pytest.approx(2e9 / gpu.memory_bandwidth_bytes_per_s)
    assert one.energy_j == pytest.approx(one.time_s * gpu.board_power_w)
    assert token_cost(gpu, 1_000_000_000, 24, 2048, 4096).time_s > one.time_s


def test_language_scenarios_report_gpu_ratios_and_gpus_are_not_chips(tmp_path):
    data = yaml.safe_load((REPO / "scenarios" / "spinnaker2_egru_small.yaml").read_text())
    data |= {"chip": str(REPO / "chips" / "spinnaker2.yaml"), "model": str(REPO / "models" / "egru_lm"),
             "baselines": [str(REPO / "chips" / "gpu_a100.yaml")], "reference": False,
             "language": {"prompt_tokens": 4, "generate_tokens": 2}}
    s = run(data, write=False).summary
    assert s["gpu_a100_energy_ratio"] == pytest.approx(s["gpu_a100_energy_per_token_j"] / s["energy_per_token_j"])
    assert s["gpu_a100_transformer_energy_per_token_j"] >= s["gpu_a100_energy_per_token_j"]
    with pytest.raises(UserError, match="GPU roofline"):
        run(data | {"chip": str(REPO / "chips" / "gpu_a100.yaml")}, write=False)
    with pytest.raises(UserError, match="expected a gpu_roofline chip"):
        run(data | {"baselines": [str(REPO / "chips" / "loihi2.yaml")]}, write=False)


def test_report_is_one_self_contained_html_page(tmp_path):
    from neurosim.analysis.report import build_report

    trace = run({"name": "r", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
                 "input": {"dataset": "digits", "samples": 2}, "timesteps": 4}, out_dir=tmp_path).trace_path
    page = build_report(trace).read_text()
    assert page.startswith("<!DOCTYPE html>") and "energy_per_inference_j" in page
    assert page.count("data:image/png;base64,") >= 3 and "<h2>Chip</h2>" in page and "src='http" not in page
