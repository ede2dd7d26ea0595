"""Spike trains in the SONATA layout, as `libsonata.SpikeReader` (the format's reference reader)
and other SONATA tools read them: ``/spikes/<population>`` holds ``timestamps`` (float64, in the
unit its attribute ``units`` names, here ``ms``) and ``node_ids`` (uint64), and the group's
attribute ``sorting`` is an HDF5 enum of uint8 (``none``, ``by_id``, ``by_time``).

A run's spike happens in a step; its time is when that step starts on the run's simulated clock
(`/steps/time_ns` less `/steps/latency_ns`: the chip's own step times, samples back to back with
the host's readout after each), so that the trains line up with every other record of the
trace. ``timestep`` keeps the step's index (a row of ``/steps``), and the attribute
``timestep_ms`` the run's mean step.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

SORTING = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype=np.uint8)
BY_TIME = 2
TIME_REFERENCE = ("the start of the spike's step on the run's simulated clock (/steps/time_ns - /steps/latency_ns), "
                  "samples back to back with the host's readout after each")


def spike_population(steps: np.ndarray, node_ids: np.ndarray, step_start_ms: np.ndarray,
                     timestep_ms: float) -> dict[str, Any]:
    """A population's spikes as ``/spikes/<population>`` holds them (the trace writer's form:
    datasets, ``@attrs`` of the group, ``@attrs/<dataset>`` of a dataset): spikes in the run's
    steps ``steps`` of its neurons ``node_ids``, sorted by time; ``step_start_ms`` is when each
    step of the run starts, ``timestep_ms`` its mean step."""
    steps, node_ids = np.asarray(steps, np.int64), np.asarray(node_ids, np.int64)
    order = np.lexsort((node_ids, steps))
    steps, node_ids = steps[order], node_ids[order]
    return {"timestamps": np.asarray(step_start_ms, np.float64)[steps], "node_ids": node_ids.astype(np.uint64),
            "timestep": steps,
            "@attrs": {"sorting": np.array(BY_TIME, SORTING), "timestep_ms": float(timestep_ms)},
            "@attrs/timestamps": {"units": "ms", "time_reference": TIME_REFERENCE},
            "@attrs/timestep": {"units": "step", "meaning": "the spike's step: its row of /steps"}}
