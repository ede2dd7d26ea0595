"""neurosim against SANA-FE 2.2.9 on the same network: wall time per simulated timestep.

The network: N = 10,000 LIF neurons, each projecting to 100 random targets (weights -3 to 3),
in nine groups whose biases (6 to 14, threshold 100, no leak) make them fire every 8 to 17 steps
on their own, about 10 % of the neurons per step once they have started; the recurrent input
jitters them. Both simulators run the same arithmetic (neurosim's ``loihi_lif`` with ``du =
4095``, ``dv = 0``, bias and weights x 64 is SANA-FE's ``leaky_integrate_fire``), so their spikes
agree step by step, which is checked.

- SANA-FE (``pip install sanafe==2.2.9``, the project's ``sanafe`` extra) runs it on its Loihi
  architecture (``loihi.yaml``: 32 tiles of 4 cores), the neurons in blocks over the 128 cores,
  with each of its timing models, ``simple`` and ``detailed``, built through
  ``benchmarks/sanafe_side.py``; its time is its ``chip.sim`` call.
- neurosim runs it on ``chips/loihi1_sanafe.yaml`` (Loihi 1 with SANA-FE's figures) over as
  many chips as its limits need, per-message timing on, on one numba thread as SANA-FE runs on
  one: its time is a run's compiled loop (programs, messages, per-message timing, cost
  accounting, records) and its system timeline, the best of a few runs from rest.

It prints each simulator's set-up and run time, synaptic events and spikes per step, and the
ratio of SANA-FE's time to neurosim's for each timing model, measured side by side in one
process; and the time of the least work a per-message timeline needs on the same spikes
(``least_work`` of ``benchmarks/engine_throughput.py``), which bounds that ratio. The targets: neurosim at least 100 times faster than SANA-FE's simple timing and
1,000 times faster than its detailed timing.

Usage::

    pip install -e '.[sanafe]'
    python benchmarks/vs_sanafe.py [--timesteps 30] [--neurons 10000]

Exit status 2 if SANA-FE is not installed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np

from neurosim.cores.neurocore import NeurocoreModel
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.graph.graph import Csr, Graph, Population, Sparse
from neurosim.mapping.mapper import map_graph
from neurosim.runs.recorder import Recorder
from neurosim.runs.spiking import StepLoop
from neurosim.spec.chip import ChipFile, chip_from_dict, load_chip_data, merge
from neurosim.spec.scenario import RecordSpec
from neurosim.system.system import system_timing

from engine_throughput import least_work_rate

CHIP_FILE = Path(__file__).resolve().parent.parent / "chips" / "loihi1_sanafe.yaml"
FAN_OUT = 100
THRESHOLD = 100                  # SANA-FE's threshold; neurosim's vth
BIASES = np.arange(6, 15)        # one per group: firing periods of 8 to 17 steps
WEIGHTS = (-3, 3)
SANAFE_CORES = [(tile, core) for tile in range(32) for core in range(4)]
REPEATS = 5                      # neurosim runs, the best counts
TARGETS = {"simple": 100, "detailed": 1000}


def network(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each neuron's bias; the synapses as (source, target, weight), sorted by source then target."""
    rng = np.random.default_rng(seed)
    group = np.arange(n) * len(BIASES) // n
    source = np.repeat(np.arange(n), FAN_OUT)
    target = rng.integers(0, n, n * FAN_OUT)
    weight = rng.integers(WEIGHTS[0], WEIGHTS[1] + 1, n * FAN_OUT)
    order = np.lexsort((target, source))
    return BIASES[group], source[order], target[order], weight[order]


# ---------------------------------------------------------------------------------------------
# neurosim


def neurosim_graph(bias: np.ndarray, source: np.ndarray, target: np.ndarray, weight: np.ndarray) -> Graph:
    n = len(bias)
    params = {"du": 4095, "dv": 0, "vth": THRESHOLD, "bias_exp": 0, "reset": "zero", "bias_mant": 64 * bias}
    indptr = np.concatenate([[0], np.cumsum(np.bincount(source, minlength=n))]).astype(np.int64)
    csr = Csr(indptr, target.astype(np.int32), weight.astype(np.int8))
    return Graph("vs_sanafe", {"net": Population("net", "loihi_lif", n, params)},
                 {"recurrent": Sparse("recurrent", "net", "net", csr, n, 0)}, input_population="net",
                 readout_population="net", readout_mode="spikes", dataset="none")


def neurosim_chip(graph: Graph) -> ChipFile:
    """loihi1_sanafe over enough chips (a grid as square as may be) for the network."""
    data, _, _ = load_chip_data(CHIP_FILE)
    chips = 1
    while True:
        side = math.ceil(math.sqrt(chips))
        chip = chip_from_dict(merge(data, {"system": {"chips_x": side, "chips_y": math.ceil(chips / side)}}),
                              file=str(CHIP_FILE))
        try:
            map_graph(graph, chip)
            return chip
        except UserError:
            chips *= 2


def run_neurosim(graph: Graph, timesteps: int) -> dict:
    start = time.perf_counter()
    chip = neurosim_chip(graph)
    mapping = map_graph(graph, chip)
    model = NeurocoreModel(chip, graph, mapping)
    engine = Engine(graph, mapping, model.costs)
    timing = system_timing(chip, np.unique(mapping.core_chip), graph.populations["net"].size, model.barrier)
    setup_s = time.perf_counter() - start
    best, rec = math.inf, None
    for _ in range(REPEATS):
        engine.reset()
        rec = Recorder.for_samples(model, engine, mapping, RecordSpec(), 1, timesteps, 0)
        loop = StepLoop(engine, model, rec, "net")
        start = time.perf_counter()
        loop.run(timesteps)
        rec.advance(timesteps)
        rec.run_timeline(timing, 0, timesteps)
        best = min(best, time.perf_counter() - start)
    # The same spikes through the least work of a per-message timeline (engine_throughput.least_work).
    engine.reset()
    fired = np.zeros((timesteps, graph.populations["net"].size), bool)
    StepLoop(engine, model, Recorder.for_samples(model, engine, mapping, RecordSpec(), 1, timesteps, 0), "net").run(
        timesteps, fired=fired)
    events = rec["steps/synops"].copy()
    least_s = events.sum() / least_work_rate(engine, [np.flatnonzero(f) for f in fired])
    return {"setup_s": setup_s, "run_s": best, "chips": mapping.chips_used, "cores": mapping.n_cores,
            "events": events, "spikes": rec["layer_events"][:, 0].copy(), "least_s": least_s}


# ---------------------------------------------------------------------------------------------
# SANA-FE


def run_sanafe_model(sanafe_side, bias: np.ndarray, source: np.ndarray, target: np.ndarray, weight: np.ndarray,
                     timesteps: int, timing_model: str) -> dict:
    """The network on SANA-FE's Loihi: a layer per group (its bias), the neurons in blocks over
    its cores; one spike generator that never fires, as its runs need an input."""
    n = len(bias)
    first = np.concatenate([[0], np.cumsum(np.bincount(np.searchsorted(np.unique(bias), bias)))])
    groups = len(first) - 1
    names = [f"g{g}" for g in range(groups)]
    layers = [("in", 1, "input")] + [(names[g], int(first[g + 1] - first[g]), "lif",
                                      {"threshold": float(THRESHOLD), "bias": float(bias[first[g]])})
                                     for g in range(groups)]
    group_of = np.searchsorted(first, np.arange(n), side="right") - 1
    edges = []
    for a in range(groups):
        for b in range(groups):
            mine = (group_of[source] == a) & (group_of[target] == b)
            edges.append((names[a], names[b], (source[mine] - first[a], target[mine] - first[b], weight[mine])))
    blocks = sanafe_side.block_placement(n, SANAFE_CORES, -(-n // len(SANAFE_CORES)))
    placement = {"in": [SANAFE_CORES[0]], **{names[g]: blocks[first[g]:first[g + 1]] for g in range(groups)}}
    result = sanafe_side.run_sanafe(sanafe_side.default_arch_path(), layers, edges, np.zeros((timesteps, 1), int),
                                    placement, timesteps, timing_model=timing_model)
    spikes = sum(result["spikes"][name] for name in names)
    return {"setup_s": result["build_time_s"], "run_s": result["wall_time_s"], "events": result["synaptic_events"],
            "spikes": spikes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=30)
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import sanafe_side
    except ImportError:
        print("SANA-FE is not installed: pip install -e '.[sanafe]'", file=sys.stderr)
        return 2
    numba.set_num_threads(1)
    T = args.timesteps
    bias, source, target, weight = network(args.neurons, args.seed)
    ours = run_neurosim(neurosim_graph(bias, source, target, weight), T)
    theirs = {model: run_sanafe_model(sanafe_side, bias, source, target, weight, T, model)
              for model in ("simple", "detailed")}

    print(f"{args.neurons:,} LIF neurons, fan-out {FAN_OUT} ({args.neurons * FAN_OUT:,} synapses), {T} timesteps; "
          f"{ours['spikes'].sum() / (args.neurons * T):.1%} of the neurons fire per step on average "
          f"({ours['spikes'][T // 2:].sum() / (args.neurons * (T - T // 2)):.1%} over the second half)")
    header = f"{'simulator':<28}{'set-up s':>10}{'run s':>10}{'ms/step':>10}{'events/step':>13}{'spikes':>9}"
    print(header)
    print("-" * len(header))
    rows = [(f"neurosim ({ours['chips']} chips, {ours['cores']} cores)", ours)]
    rows += [(f"SANA-FE {model} timing", result) for model, result in theirs.items()]
    for name, r in rows:
        print(f"{name:<28}{r['setup_s']:>10.2f}{r['run_s']:>10.4f}{r['run_s'] / T * 1e3:>10.3f}"
              f"{r['events'].mean():>13,.0f}{int(r['spikes'].sum()):>9,}")
    same = all(np.array_equal(ours["spikes"], r["spikes"]) for r in theirs.values())
    print(f"spikes per step equal in both simulators: {'yes' if same else 'NO'}")
    print(f"run: neurosim's compiled loop and system timeline (best of {REPEATS}, one thread); SANA-FE's chip.sim "
          f"call. Set-up: mapping and engine; SANA-FE's arch, network and load.")
    for model, r in theirs.items():
        ratio = r["run_s"] / ours["run_s"]
        met = "met" if ratio >= TARGETS[model] else "NOT met"
        print(f"neurosim is {ratio:,.0f} x faster than SANA-FE's {model} timing "
              f"(target >= {TARGETS[model]:,} x: {met}; at most {r['run_s'] / ours['least_s']:,.0f} x with the least "
              f"per-message work)")
    print(f"least per-message work: {ours['least_s'] / T * 1e3:.3f} ms/step on one thread (the synapses, each message "
          f"bucketed by core with its arrival time, each core's synapse unit served in arrival order, nothing more; "
          f"benchmarks/engine_throughput.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
