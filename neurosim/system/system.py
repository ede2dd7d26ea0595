"""The system level in SimPy: chips stepping in parallel, chip-to-chip and host links,
barriers across chips, host reads.

Few events happen here (a handful per chip and link per timestep), so each is a SimPy
process. In a timestep every chip works for its busy time, every loaded link (chip to
chip, and the host link carrying the step's inputs) transfers its bits at its bandwidth,
and the barrier runs; the step ends when all of them have, as the Loihi 2 runtime model
bounds a step by each of them. The barrier costs the chip's own barrier time plus a round
trip of barrier messages across the used chips' grid (its diameter in link crossings,
twice, at the link latency). At the end of a sample the host reads the readout
population's state over the host link.

A step's duration is then the longest of its chips', links' and barrier's times, so a run's
timeline is also a sum of maxima: `bulk_timeline` computes it with numpy for all steps at
once, equal to the SimPy run's to the last bit (the same additions of the same durations, in
the same order); the runs use it, and `sample_timeline` holds it to that.
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
    link_bits_per_ns: float
    host_bits_per_ns: float


def system_timing(chip: ChipFile, chips_used: np.ndarray, readout_neurons: int, barrier: bool = True) -> SystemTiming:
    """Barrier, readout and link rates for the chips a mapping uses; ``barrier`` False for
    chips whose steps are paced by a timer tick instead (no barrier runs)."""
    xs = chips_used % chip.system.chips_x
    ys = chips_used // chip.system.chips_x
    diameter = int((xs.max() - xs.min()) + (ys.max() - ys.min())) if len(chips_used) else 0
    barrier = chip.chip.barrier_ns + 2 * diameter * chip.system.link.latency_ns if barrier else 0.0
    host = chip.system.host
    # The host reads one 24-bit state value per readout neuron.
    readout = host.latency_ns + readout_neurons * 24 / host.bandwidth_bits_per_s * 1e9
    return SystemTiming(barrier, readout, chip.system.link.bandwidth_bits_per_s * 1e-9, host.bandwidth_bits_per_s * 1e-9)


def sample_timeline(chip_busy_ns: np.ndarray, link_bits: np.ndarray, host_bits: np.ndarray,
                    timing: SystemTiming) -> tuple[np.ndarray, float]:
    """Run one sample's steps through SimPy.

    ``chip_busy_ns`` is [timesteps, chips], ``link_bits`` [timesteps, links] and ``host_bits``
    [timesteps]. Returns each step's latency (ns) and the sample's latency including the
    host's readout.
    """
    env = simpy.Environment()
    n_steps = chip_busy_ns.shape[0]
    step_end = np.zeros(n_steps)

    def busy(duration: float):
        yield env.timeout(duration)

    def run():
        for t in range(n_steps):
            start = env.now
            work = [env.process(busy(b)) for b in chip_busy_ns[t]]
            work += [env.process(busy(bits / timing.link_bits_per_ns)) for bits in link_bits[t] if bits]
            if host_bits[t]:
                work.append(env.process(busy(host_bits[t] / timing.host_bits_per_ns)))
            work.append(env.process(busy(timing.barrier_ns)))
            yield simpy.AllOf(env, work)
            step_end[t] = env.now - start
        yield env.timeout(timing.readout_ns)

    env.process(run())
    env.run()
    return step_end, float(env.now)


def step_durations(chip_busy_ns: np.ndarray, link_bits: np.ndarray, host_bits: np.ndarray,
                   timing: SystemTiming) -> np.ndarray:
    """Each step's duration on `sample_timeline`: the longest of its chips' busy times, its links'
    and the host link's transfers and the barrier (arrays as there)."""
    duration = np.full(chip_busy_ns.shape[0], timing.barrier_ns, np.float64)
    if chip_busy_ns.shape[1]:
        duration = np.maximum(duration, chip_busy_ns.max(axis=1))
    if link_bits.shape[1]:
        duration = np.maximum(duration, (link_bits / timing.link_bits_per_ns).max(axis=1))
    return np.maximum(duration, host_bits / timing.host_bits_per_ns)


def bulk_timeline(chip_busy_ns: np.ndarray, link_bits: np.ndarray, host_bits: np.ndarray,
                  timing: SystemTiming) -> tuple[np.ndarray, float]:
    """`sample_timeline`'s result in closed form: the simulated clock after each step is the one
    before plus the step's duration (`step_durations`), a step's latency the difference."""
    end = np.cumsum(step_durations(chip_busy_ns, link_bits, host_bits, timing))
    return np.diff(end, prepend=0.0), float((end[-1] if len(end) else 0) + timing.readout_ns)
