"""A run keeps its readout's values per sample and step (the trace's ``/readout``): a regression
output such as PilotNet's steering value, checked against lava-dl's semantics (`netx_lava`)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from helpers import REPO
from netx_lava import chain_layers, lava_run, write_netx
from neurosim import datasets
from neurosim.errors import Interrupted, UserError
from neurosim.runs import run
from neurosim.runs.recorder import READOUT_AUTO_BYTES

R = 8
DEPTH = 4                  # the readout layer's: input from the host reaches it at step 4
PILOTNET_LIF = REPO / "models" / "netx" / "pilotnet_lif_network.net"


def scenario(tmp_path, layers, images, timesteps, **extra) -> dict:
    path = write_netx(tmp_path / "chain.net", layers)
    inputs = np.repeat(images[:, None, :], timesteps, axis=1).astype(np.int64)     # held for the sample
    np.save(tmp_path / "inputs.npy", inputs)
    return {"name": "readout", "chip": str(REPO / "chips" / "loihi2.yaml"),
            "model": {"netx": str(path), "reset_interval": R}, "input": {"file": str(tmp_path / "inputs.npy")},
            "timesteps": timesteps} | extra


def test_the_readout_values_per_step_are_lava_dl_outputs_in_the_trace(tmp_path):
    layers = chain_layers(1)
    images = np.random.default_rng(5).integers(0, 41, (3, 6))
    T = R + DEPTH
    result = run(scenario(tmp_path, layers, images, T), out_dir=tmp_path)
    assert result.summary["matches_reference"]           # the engine equals the integer reference, resets and all
    with h5py.File(result.trace_path) as h5:
        values = h5["readout/values"][()]
        attrs = dict(h5["readout"].attrs)
    assert values.shape == (3, T, 1) and values.dtype == np.int64
    assert attrs["population"] == "layer3" and attrs["variable"] == "v" and attrs["scale"] == 2.0 ** -6
    lava = lava_run(layers, images, len(images) * R + DEPTH, R)
    for s in range(len(images)):     # the readout's window: its steps DEPTH .. DEPTH + R - 1 are lava-dl's
        np.testing.assert_array_equal(values[s, DEPTH:, 0], lava["v3"][s * R + DEPTH - 1 + np.arange(R), 0])
    assert len(np.unique(values[:, -1, 0])) > 1
    np.testing.assert_array_equal(result.trace["readout"]["values"], values)       # the trace's reader reads it


def test_record_readout_false_keeps_none_and_true_checks_the_memory(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 41, (2, 6))
    off = run(scenario(tmp_path, chain_layers(0), images, 6, record={"readout": False}), out_dir=tmp_path / "a")
    with h5py.File(off.trace_path) as h5:
        assert "readout" not in h5
    monkeypatch.setattr(datasets, "memory_limit_bytes", lambda: (1000, "the process may use"))
    with pytest.raises(UserError, match="record.readout"):
        run(scenario(tmp_path, chain_layers(0), images, 6, record={"readout": True}), out_dir=tmp_path / "b")


def test_an_unset_record_readout_keeps_them_only_when_small(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 41, (2, 6))
    monkeypatch.setattr("neurosim.runs.recorder.READOUT_AUTO_BYTES", 2 * 6 * 8 - 1)   # one value short
    big = run(scenario(tmp_path, chain_layers(0), images, 6), out_dir=tmp_path / "a")
    with h5py.File(big.trace_path) as h5:
        assert "readout" not in h5
    assert READOUT_AUTO_BYTES >= 1 << 20


def test_a_run_stopped_after_a_checkpoint_resumes_with_its_readout_values(tmp_path, monkeypatch):
    import neurosim.runs.recorder as recorder

    monkeypatch.chdir(tmp_path)
    images = np.random.default_rng(7).integers(0, 41, (3, 6))
    spec = scenario(tmp_path, chain_layers(1), images, R + DEPTH) | {"checkpoint_every": R + DEPTH}
    whole = run(spec, out_dir=tmp_path / "whole")
    real = recorder.Recorder.end_sample

    def stop_at_the_third(self, sample, prediction, readout_v):
        if sample == 2:
            raise KeyboardInterrupt
        real(self, sample, prediction, readout_v)

    monkeypatch.setattr(recorder.Recorder, "end_sample", stop_at_the_third)
    with pytest.raises(Interrupted):
        run(spec, out_dir=tmp_path / "cut")
    monkeypatch.setattr(recorder.Recorder, "end_sample", real)
    resumed = run(spec, out_dir=tmp_path / "cut", resume=True)
    np.testing.assert_array_equal(whole.trace["readout"]["values"], resumed.trace["readout"]["values"])
    assert np.any(resumed.trace["readout"]["values"][0] != 0)


def test_lava_dl_pilotnet_lif_runs_with_its_steering_value_per_step(tmp_path):
    """lava-dl's PilotNet LIF (its pilotnet_snn tutorial's network.net, whose last dense weight is
    1-D) with the tutorial's reset interval of 16: the readout integrates its 16 steps from step 10."""
    result = run({"name": "pilotnet_lif", "chip": "loihi2_32chip",
                  "model": {"netx": str(PILOTNET_LIF), "reset_interval": 16},
                  "input": {"dataset": "random", "samples": 1}, "timesteps": 26}, out_dir=tmp_path)
    assert result.summary["matches_reference"]
    values = result.trace["readout"]["values"]
    assert values.shape == (1, 26, 1) and np.any(values[0, 10:] != 0)
