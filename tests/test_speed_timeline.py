"""The system timeline in closed form (`bulk_timeline`, numpy over all steps) equals the SimPy
run of the same records (`sample_timeline`) to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

import neurosim.runs.recorder
from helpers import LOIHI2, REPO, scenario_dict
from neurosim.runs import run
from neurosim.system.system import SystemTiming, bulk_timeline, sample_timeline


def assert_same_timeline(chip_busy, link_bits, host_bits, timing) -> None:
    steps, total = sample_timeline(chip_busy, link_bits, host_bits, timing)
    bulk_steps, bulk_total = bulk_timeline(chip_busy, link_bits, host_bits, timing)
    assert bulk_steps.dtype == steps.dtype and np.array_equal(bulk_steps, steps)
    assert bulk_total == total


@pytest.mark.parametrize("seed", range(6))
def test_bulk_timeline_equals_simpy_on_random_records(seed):
    """Busy times and link loads over many magnitudes, idle links, steps set by each kind of bound."""
    rng = np.random.default_rng(seed)
    steps, chips, links = int(rng.integers(1, 300)), int(rng.integers(1, 9)), int(rng.integers(0, 12))
    scale = 10.0 ** rng.integers(-3, 7, (steps, 1))
    chip_busy = rng.uniform(0, 1, (steps, chips)) * scale
    link_bits = np.where(rng.random((steps, links)) < 0.4, 0.0, rng.integers(0, 10**6, (steps, links)).astype(float))
    host_bits = np.where(rng.random(steps) < 0.5, 0.0, rng.integers(0, 10**5, steps).astype(float))
    timing = SystemTiming(float(rng.uniform(0, 2e3)), float(rng.uniform(0, 1e4)), float(rng.uniform(0.1, 400)),
                          float(rng.uniform(0.01, 40)))
    assert_same_timeline(chip_busy, link_bits, host_bits, timing)


def test_bulk_timeline_of_no_steps_is_the_readout():
    timing = SystemTiming(100.0, 50.0, 2.0, 4.0)
    assert_same_timeline(np.zeros((0, 2)), np.zeros((0, 3)), np.zeros(0), timing)


@pytest.fixture
def both_timelines(monkeypatch):
    """Make every run put its records through both timelines and check they agree; counts the checks."""
    checked = []

    def checking(chip_busy, link_bits, host_bits, timing):
        assert_same_timeline(chip_busy, link_bits, host_bits, timing)
        checked.append(len(chip_busy))
        return bulk_timeline(chip_busy, link_bits, host_bits, timing)

    monkeypatch.setattr(neurosim.runs.recorder, "bulk_timeline", checking)
    return checked


@pytest.mark.parametrize("chip, overrides", [
    (LOIHI2, {}),                                                                 # one chip, host link
    (LOIHI2, {"system.chips_x": 2, "system.chips_y": 2, "chip.mesh.routers_x": 1, "chip.mesh.routers_y": 1,
              "chip.mesh.cores_per_router": 1}),                                  # across chips and links
    (REPO / "chips" / "spinnaker2.yaml", {}),                                     # ticks, no barrier
])
def test_bulk_timeline_equals_simpy_on_a_runs_records(tiny_model, fake_dataset, both_timelines, chip, overrides):
    scenario = scenario_dict(tiny_model, chip=str(chip), timesteps=12, overrides=overrides)
    result = run(scenario, write=False)
    assert len(both_timelines) == result.summary["samples"] and sum(both_timelines) == 12 * len(both_timelines)
    if overrides:
        assert result.summary["chips_used"] > 1 and result.summary["inter_chip_bits_per_inference"] > 0


def test_bulk_timeline_equals_simpy_on_a_language_runs_records(both_timelines):
    scenario = {"name": "lm", "chip": str(LOIHI2), "model": str(REPO / "models" / "matmulfree_lm"),
                "input": {"dataset": "shakespeare", "split": "test"}, "reference": False, "seed": 0,
                "language": {"prompt_tokens": 3, "generate_tokens": 2, "accuracy_chars": 0}}
    run(scenario, write=False)
    assert len(both_timelines) == 1 and both_timelines[0] > 0
