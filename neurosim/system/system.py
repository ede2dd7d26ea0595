"""The system level in SimPy: chips stepping in parallel, barriers across chips, host reads.

Few events happen here (one per chip per timestep), so each is a SimPy process: every
chip works for its busy time, then all chips meet at a barrier. The barrier costs the
chip's own barrier time plus a round trip of barrier messages across the used chips'
grid (its diameter in link crossings, twice, at the link latency). At the end of a
sample the host reads the readout population's state over the host link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from neurosim.spec.chip import ChipFile


@dataclass(frozen=True)
class SystemTiming:
    barrier_ns: float
    readout_ns: float


def system_timing(chip: ChipFile, chips_used: np.ndarray, readout_neurons: int) -> SystemTiming:
    """Barrier and readout times for the chips a mapping uses."""
    xs = chips_used % chip.system.chips_x
    ys = chips_used // chip.system.chips_x
    diameter = int((xs.max() - xs.min()) + (ys.max() - ys.min())) if len(chips_used) else 0
    barrier = chip.chip.barrier_ns + 2 * diameter * chip.system.link.latency_ns
    host = chip.system.host
    # The host reads one 24-bit state value per readout neuron.
    readout = host.latency_ns + readout_neurons * 24 / host.bandwidth_bits_per_s * 1e9
    return SystemTiming(barrier, readout)


def sample_timeline(chip_busy_ns: np.ndarray, timing: SystemTiming) -> tuple[np.ndarray, float]:
    """Run one sample's steps through SimPy.

    ``chip_busy_ns`` is [timesteps, chips]. Returns each step's latency (ns) and the
    sample's latency including the host's readout.
    """
    env = simpy.Environment()
    n_steps, n_chips = chip_busy_ns.shape
    step_end = np.zeros(n_steps)

    def chip_step(busy: float):
        yield env.timeout(busy)

    def run():
        for t in range(n_steps):
            start = env.now
            yield simpy.AllOf(env, [env.process(chip_step(b)) for b in chip_busy_ns[t]])
            yield env.timeout(timing.barrier_ns)
            step_end[t] = env.now - start
        yield env.timeout(timing.readout_ns)

    env.process(run())
    env.run()
    return step_end, float(env.now)
