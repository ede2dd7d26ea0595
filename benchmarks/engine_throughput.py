"""Engine throughput: synaptic events per second on a random network over many Loihi 2 chips.

The network is one recurrent ``loihi_lif`` population of N neurons; each neuron projects to
100 random targets with small signed 8-bit weights. Every neuron has its own bias, so it
fires on its own with a period of 7 to 17 steps (about 10 % of the neurons per step); the
recurrent input jitters the periods, which spreads the firing phases over time. The network
is mapped on as many Loihi 2 chips as its synapses and fan-in need.

For each N the benchmark, in a subprocess of its own so that its peak memory is its own:

- maps the network and reports how long that took;
- runs two engines, one with per-message timing and one without, in alternating blocks of
  steps (so that both see the same load on the machine). A block is one call of a run's
  compiled loop (``neurosim.runs.spiking.run_steps``): each step's programs and messages,
  the per-core cost accounting (``cost_kernel``) and the step's records, as a run does. It
  reports synaptic events (synaptic ops) per second of wall time, the median over the blocks;
- replays the same spikes through a bare numba accumulate loop over the graph's CSR
  synapses: the throughput of the functional update alone, with no cores, messages or
  timing, on this machine at this moment; and the ratio of each engine's throughput to it,
  measured side by side in the same process;
- replays them, on one thread as the bare loop, through the least work a per-message
  timeline needs (``least_work``): each message applies its synapses and is put, with its
  arrival time, in its destination core's bucket, and each core's synapse unit serves its
  bucket in arrival order, with none of the engine's counters, energies or emission order. Its
  ratio to the bare loop bounds what the engine can reach with per-message timing: at most
  that ratio times the number of threads;
- reports the peak resident memory above the process's baseline (mapping included), and
  the bytes the mapping and both engines hold, per synapse.

Usage::

    python benchmarks/engine_throughput.py                  # N = 10k and 100k
    python benchmarks/engine_throughput.py --quick          # N = 10k, fewer steps
    python benchmarks/engine_throughput.py --neurons 30000 --steps 50
    python benchmarks/engine_throughput.py --threads 1      # the engine on one numba thread, as the bare loop

The targets, with per-message timing on: at least half the bare loop's throughput at N = 100k
and 0.3 of it at N = 10k; at most 16 bytes per synapse held and 32 at the peak at N = 100k.
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

from neurosim.cores.neurocore import NeurocoreModel
from neurosim.engine.engine import Engine
from neurosim.engine.kernels import SLOTS_PER_VALUE, synapse_unit_done_ns
from neurosim.graph.graph import Csr, Graph, Population, Sparse
from neurosim.mapping.mapper import Mapping, map_graph
from neurosim.programs import KINDS
from neurosim.runs.recorder import Recorder
from neurosim.runs.spiking import StepLoop
from neurosim.spec.chip import ChipFile, chip_from_dict
from neurosim.spec.scenario import RecordSpec, apply_overrides
from neurosim.spec.yamlio import load_yaml

CHIP_FILE = Path(__file__).resolve().parent.parent / "chips" / "loihi2.yaml"
FAN_OUT = 100
THRESHOLD = 100                     # vth; a neuron spikes when v > THRESHOLD << 6
BIAS_RANGE = (400, 1000)            # bias_mant: firing periods of 7 to 17 steps, mean rate ~ 0.11
WEIGHT_RANGE = (-3, 3)              # recurrent weights: jitter, not drive
TARGET_RATIO = {10_000: 0.3, 100_000: 0.5}     # timing on / bare loop
TARGET_HELD_BYTES, TARGET_PEAK_BYTES = 16, 32   # per synapse at N = 100k
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
    least_work_per_s: float
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


def arrays_in(value: object, seen: set[int]) -> list[np.ndarray]:
    """The numpy arrays ``value`` holds (in records, tuples, lists, dicts and objects' fields),
    not counting the graph they were built from."""
    if id(value) in seen or isinstance(value, Graph):
        return []
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (tuple, list)):
        items = list(value)
    elif hasattr(value, "__dict__") and type(value).__module__.startswith("neurosim"):
        items = list(vars(value).values())
    else:
        return []
    return [a for item in items for a in arrays_in(item, seen)]


def held_bytes(*holders: object) -> int:
    """Bytes of the memory the arrays of ``holders`` (the mapping, the cost model, the engines)
    keep beyond the graph; an array seen twice, or a view of another's memory, counts once."""
    owners = {}
    for a in arrays_in(holders, set()):
        while isinstance(a.base, np.ndarray):
            a = a.base
        owners[id(a)] = a.nbytes
    return sum(owners.values())


class Stepper:
    """Runs an engine's timesteps with the cost accounting and records a run has (each step's
    totals; per-core records are a run's option, left off), and times them."""

    def __init__(self, engine: Engine, model: NeurocoreModel, mapping: Mapping, steps: int):
        self.engine = engine
        self.rec = Recorder.for_samples(model, engine, mapping, RecordSpec(cores=False), 1, steps, 0)
        self.loop = StepLoop(engine, model, self.rec, "net")

    def run(self, steps: int, spikes: list[np.ndarray] | None = None) -> tuple[float, int, list[int]]:
        """(wall seconds, synaptic ops, events per step) of ``steps`` timesteps in one compiled call.

        When ``spikes`` is a list, each step's spiking neurons are appended to it.
        """
        fired = np.zeros((steps, len(self.engine.payload)), bool) if spikes is not None else None
        start = time.perf_counter()
        self.loop.run(steps, fired=fired)
        wall = time.perf_counter() - start
        first = self.rec.n
        self.rec.advance(steps)
        if spikes is not None:
            spikes += [np.flatnonzero(f) for f in fired]
        return (wall, int(self.rec["steps/synops"][first:].sum()),
                [int(e) for e in self.rec["steps/events"][first:]])


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


@nb.njit(cache=True, nogil=True)
def least_work(net, spike_ptr, spikes, acc, arrival, synapses, fill, msgs_before, done):
    """For each step, each spike's messages apply their synapses to the accumulators of their
    destination cores' dendrites and are put in their cores' buckets with their arrival time
    (each core's messages leave ``t_message_ns`` apart, then take their path's latency); each
    core's synapse unit then serves its bucket in arrival order (`synapse_unit_done_ns`).
    Returns synaptic ops."""
    n_cores = fill.shape[0] - 1
    ops = 0
    for step in range(spike_ptr.shape[0] - 1):
        fill[:] = 0
        msgs_before[:] = 0
        for e in range(spike_ptr[step], spike_ptr[step + 1]):
            n = spikes[e]
            for a in range(net.axon_ptr[n], net.axon_ptr[n + 1]):
                fill[net.axon_core[a] + 1] += 1
        for c in range(n_cores):
            fill[c + 1] += fill[c]
        bucket_ptr = fill.copy()
        for e in range(spike_ptr[step], spike_ptr[step + 1]):
            n = spikes[e]
            source = net.core_of[n] if net.core_of[n] >= 0 else n_cores      # n_cores: the host
            syn = net.syn_ptr[n]
            for a in range(net.axon_ptr[n], net.axon_ptr[n + 1]):
                dst, k = net.axon_core[a], net.axon_synapses[a]
                first = net.core_dendrite[dst]
                for s in range(syn, syn + k):
                    acc[first + net.syn_target[s]] += net.syn_weight[s]
                syn += k
                ops += k
                msgs_before[source] += 1
                m = fill[dst]
                fill[dst] += 1
                arrival[m] = msgs_before[source] * net.t_message_ns + net.path_latency_ns[net.axon_path[a]]
                synapses[m] = k
        longest = 0
        for c in range(n_cores):
            longest = max(longest, bucket_ptr[c + 1] - bucket_ptr[c])
        ordered, ordered_synapses = np.empty(longest), np.empty(longest, synapses.dtype)
        scratch = np.empty((2 * SLOTS_PER_VALUE + 1) * longest + 2, np.int32)
        for c in range(n_cores):
            lo, hi = bucket_ptr[c], bucket_ptr[c + 1]
            done[c] = synapse_unit_done_ns(arrival[lo:hi], synapses[lo:hi], net.t_message_in_ns, net.t_synop_ns,
                                           ordered, ordered_synapses, scratch)
        acc[:] = 0
    return ops


def least_work_rate(engine: Engine, spikes: list[np.ndarray]) -> float:
    """Synaptic events per second of `least_work` over the recorded spikes (best of three)."""
    net = engine.net
    spike_ptr = np.concatenate([[0], np.cumsum([len(s) for s in spikes])]).astype(np.int64)
    flat = np.concatenate(spikes).astype(np.int64)
    messages = max(int(np.diff(net.axon_ptr)[s].sum()) for s in spikes)
    acc = np.zeros(engine.sim.acc.shape[1], np.int64)
    arrival, synapses = np.zeros(messages), np.zeros(messages, np.int64)
    fill, msgs_before, done = np.zeros(engine.n_cores + 1, np.int64), np.zeros(engine.n_cores + 1, np.int64), \
        np.zeros(engine.n_cores)
    args = (acc, arrival, synapses, fill, msgs_before, done)
    least_work(net, spike_ptr[:2], flat, *args)      # compile
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        ops = least_work(net, spike_ptr, flat, *args)
        best = min(best, time.perf_counter() - start)
    return ops / best


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
    block = max(steps // BLOCKS, 1)
    total = WARMUP_STEPS + BLOCKS * block
    # Compile the kernels on a small network first, so that the baseline holds the JIT's memory.
    small, small_chip = random_network(1000, seed), loihi2_system(1000)
    small_mapping = map_graph(small, small_chip)
    small_model = NeurocoreModel(small_chip, small, small_mapping)
    for per_message in (True, False):
        engine = Engine(small, small_mapping, small_model.costs, per_message=per_message)
        Stepper(engine, small_model, small_mapping, 4).run(2, [])
    del small, small_mapping, small_model, engine
    baseline = max_rss_bytes()

    graph, chip = random_network(n, seed), loihi2_system(n)
    start = time.perf_counter()
    mapping = map_graph(graph, chip)
    map_s = time.perf_counter() - start
    model = NeurocoreModel(chip, graph, mapping)
    engines = {on: Engine(graph, mapping, model.costs, per_message=on) for on in (True, False)}
    steppers = {on: Stepper(engine, model, mapping, total) for on, engine in engines.items()}
    for stepper in steppers.values():
        stepper.run(WARMUP_STEPS)

    rates: dict[bool, list[float]] = {True: [], False: []}
    events: list[int] = []
    for _ in range(BLOCKS):
        for on, stepper in steppers.items():
            wall, synops, block_events = stepper.run(block)
            rates[on].append(synops / wall)
            events += block_events if on else []

    n_synapses = graph.n_synapses
    held = held_bytes(mapping, model, *engines.values())
    peak = max_rss_bytes() - baseline
    # The same spikes again for the bare loop (per-message timing changes no event), outside the timing.
    replay_engine = Engine(graph, mapping, model.costs, per_message=False)
    replay = Stepper(replay_engine, model, mapping, total)
    replay.run(WARMUP_STEPS)
    spikes: list[np.ndarray] = []
    for _ in range(BLOCKS):
        replay.run(block, spikes)
    activity = np.array(events) / n
    return Result(n, n_synapses, mapping.chips_used, mapping.n_cores, map_s, float(activity.mean()),
                  float(activity.min()), float(activity.max()), len(events), float(np.median(rates[True])),
                  float(np.median(rates[False])), bare_loop_rate(graph.projections["recurrent"].to_csr(), spikes, n),
                  least_work_rate(replay_engine, spikes), peak / n_synapses, held / n_synapses)


def print_table(results: list[Result]) -> None:
    header = (f"{'neurons':>8} {'synapses':>11} {'chips':>5} {'cores':>6} {'map s':>6} {'activity':>16} "
              f"{'timing on':>10} {'timing off':>10} {'bare loop':>10} {'on/bare':>7} {'off/bare':>8} "
              f"{'least/bare':>10} {'peak B/syn':>10} {'held B/syn':>10}")
    print(header)
    print("-" * len(header))
    for r in results:
        activity = f"{r.activity:.3f} ({r.activity_min:.3f}-{r.activity_max:.3f})"
        print(f"{r.neurons:>8,} {r.synapses:>11,} {r.chips:>5} {r.cores:>6} {r.map_s:>6.1f} {activity:>16} "
              f"{r.timing_on_per_s / 1e6:>8.1f} M {r.timing_off_per_s / 1e6:>8.1f} M "
              f"{r.bare_loop_per_s / 1e6:>8.1f} M {r.timing_on_per_s / r.bare_loop_per_s:>7.2f} "
              f"{r.timing_off_per_s / r.bare_loop_per_s:>8.2f} {r.least_work_per_s / r.bare_loop_per_s:>10.2f} "
              f"{r.peak_bytes_per_synapse:>10.1f} "
              f"{r.held_bytes_per_synapse:>10.1f}")
    steps = results[0].steps if results else 0
    print(f"Synaptic events per second of wall time, median of {BLOCKS} blocks ({steps} steps in all) per engine;\n"
          f"timing on/off: with/without per-message timing of the synapse units, with the cost accounting and\n"
          f"records of a run; bare loop: the functional update alone (no cores, messages or timing), on the same\n"
          f"spikes in the same process; least: the least work of a per-message timeline (messages bucketed by\n"
          f"core with their arrival times, each core's synapse unit served in arrival order, no counters), on\n"
          f"one thread as the bare loop. Activity: mean (min-max) fraction of neurons spiking per step. Peak:\n"
          f"resident memory above the baseline, mapping included; held: arrays the mapping, the cost model and\n"
          f"both engines keep. Numba threads: {nb.get_num_threads()}.")
    for r in results:
        if r.neurons in TARGET_RATIO:
            ratio = r.timing_on_per_s / r.bare_loop_per_s
            least = r.least_work_per_s / r.bare_loop_per_s
            print(f"Target timing on >= {TARGET_RATIO[r.neurons]} x bare loop at N = {r.neurons:,}: "
                  f"{'met' if ratio >= TARGET_RATIO[r.neurons] else 'NOT met'} ({ratio:.2f}; the least per-message "
                  f"work is {least:.2f} of it on one thread, so at most {least * nb.get_num_threads():.2f} on "
                  f"{nb.get_num_threads()}).")
        if r.neurons == TARGET_NEURONS:
            met = r.held_bytes_per_synapse <= TARGET_HELD_BYTES and r.peak_bytes_per_synapse <= TARGET_PEAK_BYTES
            print(f"Target held <= {TARGET_HELD_BYTES} and peak <= {TARGET_PEAK_BYTES} B/synapse at N = "
                  f"{r.neurons:,}: {'met' if met else 'NOT met'} ({r.held_bytes_per_synapse:.1f}, "
                  f"{r.peak_bytes_per_synapse:.1f}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[10_000, TARGET_NEURONS],
                        help="network sizes to run (default: 10000 100000)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per engine (default: 100)")
    parser.add_argument("--quick", action="store_true", help="N = 10000 only, 30 timed steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="numba threads of the engine (default: numba's)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)   # measure one N, print it as JSON
    args = parser.parse_args()
    if args.threads:
        nb.set_num_threads(args.threads)
    if args.one is not None:
        print(json.dumps(asdict(measure(args.one, args.steps, args.seed))))
        return
    sizes, steps = ([10_000], 30) if args.quick else (args.neurons, args.steps)
    results = []
    for n in sizes:
        threads = ["--threads", str(args.threads)] if args.threads else []
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--steps", str(steps),
                              "--seed", str(args.seed), *threads], check=True, capture_output=True, text=True)
        results.append(Result(**json.loads(out.stdout.strip().splitlines()[-1])))
        print(f"N = {n:,} done", file=sys.stderr)
    print_table(results)


if __name__ == "__main__":
    main()
