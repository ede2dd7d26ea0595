"""Engine throughput: synaptic events per second on a random network over many Loihi 2 chips.

The network is one recurrent ``loihi_lif`` population of N neurons; each neuron projects to
100 random targets with small signed 8-bit weights. Every neuron has its own bias, so it
fires on its own with a period of 7 to 17 steps (about 10 % of the neurons per step); the
recurrent input jitters the periods, which spreads the firing phases over time. The network
is mapped on as many Loihi 2 chips as its synapses and fan-in need.

For each N the benchmark, in a subprocess of its own so that its peak memory is its own:

- maps the network and reports how long that took;
- runs two engines, one with per-message timing and one without, in alternating blocks of
  steps (so that both see the same load on the machine). A step is ``Engine.step`` plus the
  per-core cost accounting a run does (``step_cost``). It reports synaptic events (synaptic
  ops) per second of wall time, the median over the blocks;
- replays the same spikes through a bare numba accumulate loop over the graph's CSR
  synapses: the throughput of the functional update alone, with no cores, messages or
  timing, on this machine at this moment;
- reports the peak resident memory above the process's baseline (mapping included), and
  the bytes the mapping and both engines hold, per synapse.

Usage::

    python benchmarks/engine_throughput.py                  # N = 10k and 100k
    python benchmarks/engine_throughput.py --quick          # N = 10k, fewer steps
    python benchmarks/engine_throughput.py --neurons 30000 --steps 50

The target is >= 50 M synaptic events per second at N = 100k with per-message timing on.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numba as nb
import numpy as np

from neurosim.cores.neurocore import ChipLinks, step_cost, timing_costs
from neurosim.engine.engine import Engine
from neurosim.graph.graph import Csr, Graph, Population, Sparse
from neurosim.mapping.mapper import Mapping, map_graph
from neurosim.programs import KINDS
from neurosim.spec.chip import ChipFile, chip_from_dict
from neurosim.spec.scenario import apply_overrides
from neurosim.spec.yamlio import load_yaml

CHIP_FILE = Path(__file__).resolve().parent.parent / "chips" / "loihi2.yaml"
FAN_OUT = 100
THRESHOLD = 100                     # vth; a neuron spikes when v > THRESHOLD << 6
BIAS_RANGE = (400, 1000)            # bias_mant: firing periods of 7 to 17 steps, mean rate ~ 0.11
WEIGHT_RANGE = (-3, 3)              # recurrent weights: jitter, not drive
TARGET_EVENTS_PER_S = 50e6
TARGET_NEURONS = 100_000
WARMUP_STEPS = 40                   # JIT compilation, and the firing phases spread out
BLOCKS = 5                          # timed steps are run in this many blocks per engine


@dataclass
class Result:
    """What one N measured."""

    neurons: int
    synapses: int
    chips: int
    cores: int
    map_s: float
    activity: float
    activity_min: float
    activity_max: float
    steps: int
    timing_on_per_s: float
    timing_off_per_s: float
    bare_loop_per_s: float
    peak_bytes_per_synapse: float
    held_bytes_per_synapse: float


def random_network(n: int, seed: int) -> Graph:
    """One recurrent LIF population of ``n`` neurons, ``FAN_OUT`` random targets per neuron."""
    rng = np.random.default_rng(seed)
    indptr = np.arange(n + 1, dtype=np.int64) * FAN_OUT
    targets = rng.integers(0, n, n * FAN_OUT, dtype=np.int32)
    weights = rng.integers(WEIGHT_RANGE[0], WEIGHT_RANGE[1] + 1, n * FAN_OUT, dtype=np.int8)
    params = {"du": 4095, "dv": 0, "vth": THRESHOLD, "bias_exp": 0, "reset": "zero",
              "bias_mant": rng.integers(BIAS_RANGE[0], BIAS_RANGE[1] + 1, n)}
    pop = Population("net", "loihi_lif", n, params)
    proj = Sparse("recurrent", "net", "net", Csr(indptr, targets, weights), n, 0)
    return Graph("random_network", {"net": pop}, {"recurrent": proj}, input_population="net",
                 readout_population="net", readout_mode="spikes", dataset="none")


def loihi2_system(n: int) -> ChipFile:
    """Loihi 2 with enough chips, on a near-square grid, for ``n`` neurons of this network.

    A core holds at most as many neurons as its neuron count, its memories (state, sparse
    synapses), its fan-in (distinct sources, at most ``FAN_OUT`` per neuron here) and its
    fan-out (output axons, at most ``FAN_OUT`` per neuron) allow; a quarter is added for
    neurons with more than the mean fan-in.
    """
    data, _, _ = load_yaml(CHIP_FILE)
    one_chip = chip_from_dict(data, file=str(CHIP_FILE))
    core, lim = one_chip.core, one_chip.core.limits
    state_bytes = KINDS["loihi_lif"].state_bytes
    synapse_bytes = FAN_OUT * core.synapse_bytes(8, "sparse")
    per_core = min(lim.neurons, lim.neuron_state_bytes // state_bytes, int(lim.synapse_memory_bytes // synapse_bytes),
                   int(lim.memory_bytes // (state_bytes + synapse_bytes)), lim.fan_in // FAN_OUT,
                   lim.fan_out // FAN_OUT)
    chips = math.ceil(1.25 * n / per_core / one_chip.cores_per_chip)
    chips_x = math.ceil(math.sqrt(chips))
    chips_y = math.ceil(chips / chips_x)
    data = apply_overrides(data, {"system.chips_x": chips_x, "system.chips_y": chips_y},
                           file="benchmarks/engine_throughput.py", lines=None)
    return chip_from_dict(data, file=str(CHIP_FILE))


def held_bytes(mapping: Mapping, engines: list[Engine]) -> int:
    """Bytes of the arrays the mapping, the timing costs and the engines keep for a run."""
    arrays = [mapping.core_of, mapping.core_chip, mapping.core_x, mapping.core_y,
              mapping.core_neuron_lo, mapping.core_neuron_hi, *mapping.utilisation.values()]
    costs = engines[0].costs
    arrays += [costs.path_latency_ns, costs.path_energy_pj, costs.axon_path]
    for engine in engines:
        arrays += [a for a in vars(engine).values() if isinstance(a, np.ndarray)]
        arrays += [a for *_, state in engine.pops for a in state.state.values()]
    return mapping.routes.nbytes() + sum(a.nbytes for a in arrays)


class Stepper:
    """Runs an engine's timesteps with the cost accounting a run does, and times them."""

    def __init__(self, engine: Engine, chip: ChipFile, mapping: Mapping, links: ChipLinks):
        self.engine, self.chip, self.mapping, self.links = engine, chip, mapping, links
        used_chips, self.chip_index = np.unique(mapping.core_chip, return_inverse=True)
        self.n_chips = len(used_chips)
        self.neurons_per_core = (mapping.core_neuron_hi - mapping.core_neuron_lo).astype(np.float64)

    def run(self, steps: int, spikes: list[np.ndarray] | None = None) -> tuple[float, int, list[int]]:
        """(wall seconds, synaptic ops, events per step) of ``steps`` timesteps.

        When ``spikes`` is a list, each step's spiking neurons are appended to it (outside the timing).
        """
        wall, synops, events = 0.0, 0, []
        for _ in range(steps):
            start = time.perf_counter()
            counters = self.engine.step()
            step_cost(self.chip, self.mapping, self.links, counters, self.neurons_per_core, self.chip_index,
                      self.n_chips)
            wall += time.perf_counter() - start
            synops += int(counters.synops.sum())
            events.append(counters.events)
            if spikes is not None:
                spikes.append(np.flatnonzero(self.engine.payload))
        return wall, synops, events


@nb.njit(cache=True, nogil=True)
def bare_accumulate(indptr, indices, weight, spike_ptr, spikes, acc):
    """For each step, add every spiking neuron's weights to its targets; returns synaptic ops."""
    ops = 0
    for step in range(spike_ptr.shape[0] - 1):
        for e in range(spike_ptr[step], spike_ptr[step + 1]):
            n = spikes[e]
            for k in range(indptr[n], indptr[n + 1]):
                acc[indices[k]] += weight[k]
            ops += indptr[n + 1] - indptr[n]
        acc[:] = 0
    return ops


def bare_loop_rate(csr: Csr, spikes: list[np.ndarray], n: int) -> float:
    """Synaptic events per second of `bare_accumulate` over the recorded spikes (best of three)."""
    spike_ptr = np.concatenate([[0], np.cumsum([len(s) for s in spikes])]).astype(np.int64)
    flat = np.concatenate(spikes).astype(np.int64)
    acc = np.zeros(n, np.int64)
    bare_accumulate(csr.indptr, csr.indices, csr.weight, spike_ptr[:2], flat, acc)   # compile
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        ops = bare_accumulate(csr.indptr, csr.indices, csr.weight, spike_ptr, flat, acc)
        best = min(best, time.perf_counter() - start)
    return ops / best


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux reports KiB


def measure(n: int, steps: int, seed: int) -> Result:
    """Build, map and run the network of ``n`` neurons; every figure of one table row."""
    # Compile the kernels on a small network first, so that the baseline holds the JIT's memory.
    small, small_chip = random_network(1000, seed), loihi2_system(1000)
    small_mapping = map_graph(small, small_chip)
    for per_message in (True, False):
        small_costs, small_links = timing_costs(small_chip, small, small_mapping)
        engine = Engine(small, small_mapping, small_costs, per_message=per_message)
        Stepper(engine, small_chip, small_mapping, small_links).run(2)
    del small, small_mapping, engine
    baseline = max_rss_bytes()

    graph, chip = random_network(n, seed), loihi2_system(n)
    start = time.perf_counter()
    mapping = map_graph(graph, chip)
    map_s = time.perf_counter() - start
    costs, links = timing_costs(chip, graph, mapping)
    engines = {on: Engine(graph, mapping, costs, per_message=on) for on in (True, False)}
    steppers = {on: Stepper(engine, chip, mapping, links) for on, engine in engines.items()}
    for stepper in steppers.values():
        stepper.run(WARMUP_STEPS)

    rates: dict[bool, list[float]] = {True: [], False: []}
    spikes: list[np.ndarray] = []
    events: list[int] = []
    for _ in range(BLOCKS):
        for on, stepper in steppers.items():
            wall, synops, block_events = stepper.run(max(steps // BLOCKS, 1), spikes if on else None)
            rates[on].append(synops / wall)
            events += block_events if on else []

    n_synapses = graph.n_synapses
    held = held_bytes(mapping, list(engines.values()))
    peak = max_rss_bytes() - baseline
    activity = np.array(events) / n
    return Result(n, n_synapses, mapping.chips_used, mapping.n_cores, map_s, float(activity.mean()),
                  float(activity.min()), float(activity.max()), len(events), float(np.median(rates[True])),
                  float(np.median(rates[False])), bare_loop_rate(graph.projections["recurrent"].to_csr(), spikes, n),
                  peak / n_synapses, held / n_synapses)


def print_table(results: list[Result]) -> None:
    header = (f"{'neurons':>8} {'synapses':>11} {'chips':>5} {'cores':>6} {'map s':>6} {'activity':>16} "
              f"{'timing on':>10} {'timing off':>10} {'bare loop':>10} {'peak B/syn':>10} {'held B/syn':>10}")
    print(header)
    print("-" * len(header))
    for r in results:
        activity = f"{r.activity:.3f} ({r.activity_min:.3f}-{r.activity_max:.3f})"
        print(f"{r.neurons:>8,} {r.synapses:>11,} {r.chips:>5} {r.cores:>6} {r.map_s:>6.1f} {activity:>16} "
              f"{r.timing_on_per_s / 1e6:>8.1f} M {r.timing_off_per_s / 1e6:>8.1f} M "
              f"{r.bare_loop_per_s / 1e6:>8.1f} M {r.peak_bytes_per_synapse:>10.1f} {r.held_bytes_per_synapse:>10.1f}")
    steps = results[0].steps if results else 0
    print(f"Synaptic events per second of wall time, median of {BLOCKS} blocks ({steps} steps in all) per engine;\n"
          f"timing on/off: with/without per-message timing of the synapse units; bare loop: the functional\n"
          f"update alone (no cores, messages or timing). Activity: mean (min-max) fraction of neurons spiking\n"
          f"per step. Peak: resident memory above the baseline, mapping included; held: arrays the mapping\n"
          f"and both engines keep. Numba threads: {nb.get_num_threads()}.")
    target = next((r for r in results if r.neurons == TARGET_NEURONS), None)
    if target is None:
        print(f"Target not checked: N = {TARGET_NEURONS:,} was not run.")
    else:
        met = target.timing_on_per_s >= TARGET_EVENTS_PER_S
        print(f"Target >= {TARGET_EVENTS_PER_S / 1e6:.0f} M/s at N = {TARGET_NEURONS:,} with timing on: "
              f"{'met' if met else 'NOT met'} ({target.timing_on_per_s / 1e6:.1f} M/s).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[10_000, TARGET_NEURONS],
                        help="network sizes to run (default: 10000 100000)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per engine (default: 100)")
    parser.add_argument("--quick", action="store_true", help="N = 10000 only, 30 timed steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)   # measure one N, print it as JSON
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asdict(measure(args.one, args.steps, args.seed))))
        return
    sizes, steps = ([10_000], 30) if args.quick else (args.neurons, args.steps)
    results = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--steps", str(steps),
                              "--seed", str(args.seed)], check=True, capture_output=True, text=True)
        results.append(Result(**json.loads(out.stdout.strip().splitlines()[-1])))
        print(f"N = {n:,} done", file=sys.stderr)
    print_table(results)


if __name__ == "__main__":
    main()
