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
    # the child takes Ctrl-C as a terminal's foreground job would, whatever this process ignores
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.cli", "run", long_scenario(tmp_path), "--out", str(out),
                             "--no-progress"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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
    from neurosim.runs import run

    scenario = {"name": "huge", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
                "input": {"dataset": "digits"}, "timesteps": 1_000_000}
    with pytest.raises(UserError, match="would need about .* GB of memory"):
        run(scenario, write=False)


def test_a_resumed_run_ends_with_the_trace_of_an_uninterrupted_one(tmp_path):
    """A run killed after a checkpoint and resumed writes the same trace as one that was not stopped."""
    for chip in ("loihi2.yaml", "spinnaker2.yaml"):
        data = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
        data |= {"name": f"resume-{chip[:-5]}", "chip": str(REPO / "chips" / chip),
                 "model": str(REPO / "models" / "digits_snn"), "timesteps": 60, "checkpoint_every": 300,
                 "input": {"dataset": "digits", "samples": 150}, "record": {"spikes": True, "spike_samples": 3}}
        path = tmp_path / f"{chip}.scenario.yaml"
        path.write_text(yaml.safe_dump(data))
        whole = tmp_path / f"{chip}-whole"
        subprocess.run([sys.executable, "-m", "neurosim.cli", "run", str(path), "--out", str(whole), "--no-progress"],
                       cwd=tmp_path, check=True, capture_output=True)
        cut = tmp_path / f"{chip}-cut"
        proc = subprocess.Popen([sys.executable, "-m", "neurosim.cli", "run", str(path), "--out", str(cut),
                                 "--no-progress"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoints = tmp_path / ".neurosim" / "checkpoints"
        deadline = time.time() + 120
        while time.time() < deadline and not any(checkpoints.glob("*.npz")) and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not cut.exists() or not any(cut.iterdir())
        saved = list(checkpoints.glob("*.npz"))
        assert saved, "the run saved a checkpoint before it was killed"
        with np.load(saved[0]) as ckpt:
            assert 0 < int(ckpt["_samples_done"]) < 150
        done = subprocess.run([sys.executable, "-m", "neurosim.cli", "run", str(path), "--out", str(cut), "--resume",
                               "--no-progress"], cwd=tmp_path, check=True, capture_output=True, text=True)
        assert not any(checkpoints.glob("*.npz"))               # removed when the run finishes
        a, b = read_trace(next(whole.glob("*.h5"))), read_trace(next(cut.glob("*.h5")))
        skip = {"wall_time_s"}
        assert {k: v for k, v in a.summary.items() if k not in skip} == \
            {k: v for k, v in b.summary.items() if k not in skip}, done.stdout

        def same(x, y):
            if isinstance(x, dict):
                return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
            return np.array_equal(np.asarray(x), np.asarray(y))

        for group in a.groups:
            assert same(a[group], b[group]), (chip, group)


@pytest.mark.parametrize("model", ["digits_snn", "egru_lm", "scnn_digits"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_weight_files_are_detected(model, damage, tmp_path):
    """A weights file cut short or with one byte changed fails its checksum in model.yaml."""
    import shutil

    from neurosim.errors import UserError
    from neurosim.zoo.loader import load_model

    folder = tmp_path / model
    shutil.copytree(REPO / "models" / model, folder)
    data = bytearray((folder / "weights.h5").read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    (folder / "weights.h5").write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupt") as err:
        load_model(folder)
    assert err.value.file.endswith("weights.h5")


def test_a_nir_file_with_wrong_shapes_is_a_clear_error(tmp_path):
    import nir

    from neurosim.errors import UserError
    from neurosim.interop.nir_import import load_nir

    n = 4
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                                "w": nir.Linear(weight=np.ones((n, 5))),
                                "if": nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
                                "output": nir.Output(output_type={"output": np.array([n])})},
                         edges=[("input", "w"), ("w", "if"), ("if", "output")], type_check=False)
    nir.write(str(tmp_path / "bad.nir"), graph)
    with pytest.raises(UserError) as err:
        load_nir(tmp_path / "bad.nir")
    assert err.value.file == str(tmp_path / "bad.nir") and ("5" in err.value.message or "mismatch" in err.value.message)


def test_a_resumed_language_run_ends_with_the_trace_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """A language run stopped after a checkpoint (here: by an interruption raised at a token)
    and resumed gives the trace of a run that was not stopped."""
    import neurosim.runs.recorder as lr
    from neurosim.errors import Interrupted
    from neurosim.runs import run

    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load((REPO / "scenarios" / "spinnaker2_egru_small.yaml").read_text())
    data |= {"chip": str(REPO / "chips" / "spinnaker2.yaml"), "model": str(REPO / "models" / "egru_lm"),
             "language": {"prompt_tokens": 10, "generate_tokens": 6}, "checkpoint_every": 4, "baselines": []}
    whole = read_trace(run(data, out_dir=tmp_path / "whole").trace_path)
    real = lr.PeRecord.add
    calls = {"n": 0}

    def stop_midway(self, cost):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        real(self, cost)

    monkeypatch.setattr(lr.PeRecord, "add", stop_midway)
    with pytest.raises(Interrupted):
        run(data, out_dir=tmp_path / "cut")
    saved = list((tmp_path / ".neurosim" / "checkpoints").glob("*.npz"))
    assert saved and not list((tmp_path / ".neurosim" / "checkpoints").glob("*.pkl"))
    with np.load(saved[0], allow_pickle=False) as arrays:          # arrays and plain values only
        assert "_layout" in arrays.files
    calls["n"] = -10**9                  # count the resumed run's steps, without stopping it

    resumed = read_trace(run(data, out_dir=tmp_path / "cut", resume=True).trace_path)
    assert 0 < calls["n"] + 10**9 < len(whole["steps"]["events"])     # it went on from the save
    plain = (lambda s: {k: ("nan" if v != v else v) for k, v in s.items() if k != "wall_time_s"})  # noqa: E731
    assert plain(whole.summary) == plain(resumed.summary)
    for group in whole.groups:
        for key, value in whole[group].items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, resumed[group][key]), (group, key)
    assert whole.meta["generated_text"] == resumed.meta["generated_text"]
