"""Interrupted runs leave nothing behind and say where they stopped; the same scenario and seed
give the same trace in separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from helpers import REPO
from neurosim.traces.trace import read_trace


def long_scenario(tmp_path) -> str:
    data = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    data |= {"name": "long", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
             "timesteps": 400, "record": {"spikes": False}}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM),
                                       (signal.SIGKILL, -signal.SIGKILL)])
def test_a_killed_run_leaves_no_trace(sig, code, tmp_path):
    out = tmp_path / "traces"
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.cli", "run", long_scenario(tmp_path), "--out", str(out),
                             "--no-progress"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)                            # past loading and compiling: in the middle of the samples
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert not out.exists() or not any(out.iterdir())        # not even a hidden partial file
    assert "Traceback" not in err
    if sig == signal.SIGINT:
        assert "interrupted at sample" in err and "timestep" in err and "no trace written" in err


def test_the_same_scenario_and_seed_give_the_same_trace_in_separate_processes(tmp_path):
    data = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    data |= {"name": "det", "chip": str(REPO / "chips" / "spinnaker2.yaml"), "model": str(REPO / "models" / "digits_snn"),
             "input": {"dataset": "digits", "samples": 20}}
    path = tmp_path / "det.yaml"
    path.write_text(yaml.safe_dump(data))
    traces = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        subprocess.run([sys.executable, "-m", "neurosim.cli", "run", str(path), "--out", str(out), "--no-progress"],
                       cwd=REPO, check=True, capture_output=True, env=os.environ | {"NUMBA_NUM_THREADS": str(k + 1)})
        traces.append(read_trace(next(out.glob("*.h5"))))
    a, b = traces
    skip = {"wall_time_s"}
    assert {k: v for k, v in a.summary.items() if k not in skip} == {k: v for k, v in b.summary.items() if k not in skip}
    assert set(a.groups) == set(b.groups)

    def same(x, y):
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        return np.array_equal(np.asarray(x), np.asarray(y))

    for group in a.groups:
        assert same(a[group], b[group]), group


def test_a_run_too_big_for_memory_is_refused_up_front():
    from neurosim.errors import UserError
    from neurosim.runner import run

    scenario = {"name": "huge", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
                "input": {"dataset": "digits"}, "timesteps": 1_000_000}
    with pytest.raises(UserError, match="would need about .* GB of memory"):
        run(scenario, write=False)
