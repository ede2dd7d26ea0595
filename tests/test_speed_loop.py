"""The compiled loops (many steps per call: programs, delivery, timing, cost and records) give
the traces of the step-by-step path (`Engine.step`, `step_cost` and `Recorder.add` from Python),
bit for bit; and the parts they are built from agree with their references."""

from __future__ import annotations

import numpy as np
import pytest

import neurosim.runs.spiking
from helpers import LOIHI2, REPO, scenario_dict
from neurosim.engine.programs import LAYOUTS, compilable
from neurosim.engine.sums import float_sum
from neurosim.programs import KINDS, build_state
from neurosim.runs import run
from neurosim.traces.trace import read_trace


def same(x, y) -> bool:
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    x, y = np.asarray(x), np.asarray(y)
    return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")


def both_ways(scenario: dict, tmp_path, monkeypatch):
    """The scenario's trace from the compiled loops and from the step-by-step path."""
    traces = []
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr(neurosim.runs.spiking.StepLoop, "compiles", staticmethod(lambda engine, model: False))
        path = run(scenario, out_dir=tmp_path / str(compiled)).trace_path
        traces.append(read_trace(path))
    return traces


def assert_same_traces(a, b) -> None:
    skip = {"wall_time_s"}
    assert a.summary.keys() == b.summary.keys()
    for key in a.summary.keys() - skip:
        assert same(a.summary[key], b.summary[key]), key
    assert set(a.groups) == set(b.groups)
    for group in a.groups:
        assert same(a[group], b[group]), group


CHIPS = {
    "loihi2": (LOIHI2, {}),
    "loihi2, 2 x 2 chips": (LOIHI2, {"system.chips_x": 2, "system.chips_y": 2, "chip.mesh.routers_x": 1,
                                     "chip.mesh.routers_y": 1, "chip.mesh.cores_per_router": 1}),
    "loihi1 (active updates priced)": (REPO / "chips" / "loihi1_sanafe.yaml", {"core.graded_payload_bits": 24}),
}


@pytest.mark.parametrize("chip", list(CHIPS))
@pytest.mark.parametrize("per_message", [True, False])
def test_a_spiking_run_compiled_equals_step_by_step(tiny_model, fake_dataset, tmp_path, monkeypatch, chip,
                                                    per_message):
    path, overrides = CHIPS[chip]
    scenario = scenario_dict(tiny_model, chip=str(path), overrides=overrides, timesteps=7,
                             timing={"per_message": per_message}, record={"spikes": True, "spike_samples": 2})
    compiled, stepwise = both_ways(scenario, tmp_path, monkeypatch)
    assert_same_traces(compiled, stepwise)
    assert compiled.summary["synaptic_ops"] > 0


def test_a_language_run_compiled_equals_step_by_step(tmp_path, monkeypatch):
    """The MatMul-free model's pipeline (delays, two-port gates, tables): prompt, generation, reads."""
    scenario = {"name": "lm", "chip": str(LOIHI2), "model": str(REPO / "models" / "matmulfree_lm"),
                "input": {"dataset": "shakespeare", "split": "test"}, "reference": True, "seed": 0,
                "language": {"prompt_tokens": 5, "generate_tokens": 3, "accuracy_chars": 0}}
    compiled, stepwise = both_ways(scenario, tmp_path, monkeypatch)
    assert_same_traces(compiled, stepwise)
    assert compiled.summary["matches_reference"]


REQUIRED = {"loihi_lif": {"vth": 10}, "cuba_lif": {"vth": 10}, "sigma_delta": {"vth": 1}, "rsqrt": {"count": 4}}


@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_every_compiled_program_takes_its_kinds_state(kind):
    """The table's layout of each compiled kind is what its builder makes (else the kind would
    silently run from Python)."""
    assert compilable(KINDS[kind], build_state(KINDS[kind], REQUIRED.get(kind, {}), 5))


def test_float_sum_adds_as_numpy_does():
    rng = np.random.default_rng(0)
    for n in [0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 1000, 4099, 70_001]:
        values = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 9, n)
        assert float_sum(values) == values.sum(), n
