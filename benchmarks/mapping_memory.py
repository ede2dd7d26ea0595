"""Mapping cost of large dense layers: time and peak memory per synapse.

Ternary language models are stacks of large dense matrices (a 370M-parameter MatMul-free
model has about 300 M synapses on chip), so what the mapper holds per synapse decides which
models fit in memory. The benchmark builds ``L`` dense ternary layers of ``d`` x ``d``
(graded ReLU neurons between them, 2-bit weights), maps them onto a 32-chip Loihi 2 system,
and prints, in a subprocess of its own per size so that each peak is its own:

- the mapping's wall time;
- the peak resident memory above the process's baseline (the weights already built), per synapse;
- the bytes the routes keep per synapse (a 32-bit target and an 8-bit weight: 5 B).

Usage::

    python benchmarks/mapping_memory.py                     # d = 1024, 2048, 4096 with L = 8
    python benchmarks/mapping_memory.py --d 2048 --layers 24
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from neurosim.graph.graph import Dense, Graph, Population
from neurosim.mapping.mapper import map_graph
from neurosim.spec.chip import chip_from_dict

CHIP_FILE = Path(__file__).resolve().parent.parent / "chips" / "loihi2.yaml"


def dense_stack(d: int, layers: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    pops = {"x0": Population("x0", "graded_source", d)}
    projs = {}
    for layer in range(layers):
        name = f"x{layer + 1}"
        pops[name] = Population(name, "graded_relu", d)
        weight = rng.integers(-1, 2, (d, d)).astype(np.int8)
        projs[f"w{layer}"] = Dense(f"w{layer}", f"x{layer}", name, weight, 0, weight_bits=2)
    return Graph("dense_stack", pops, projs, "x0", f"x{layers}", "membrane", "none")


def measure(d: int, layers: int) -> dict:
    data = yaml.safe_load(CHIP_FILE.read_text())
    data["system"].update(chips_x=8, chips_y=4)
    chip = chip_from_dict(data, file=str(CHIP_FILE))
    graph = dense_stack(d, layers)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    mapping = map_graph(graph, chip)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    synapses = layers * d * d
    return {"d": d, "layers": layers, "synapses": synapses, "cores": mapping.n_cores, "map_s": seconds,
            "peak_bytes_per_synapse": (peak - baseline) * 1024 / synapses,      # Linux reports KiB
            "routes_bytes_per_synapse": mapping.routes.nbytes() / synapses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)      # measure one d, print it as JSON
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.layers)))
        return
    print(f"{'d':>6} {'layers':>6} {'synapses':>12} {'cores':>6} {'map s':>7} {'peak B/syn':>11} {'routes B/syn':>13}")
    for d in args.d:
        out = subprocess.run([sys.executable, __file__, "--one", str(d), "--layers", str(args.layers)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['d']:>6} {r['layers']:>6} {r['synapses']:>12,} {r['cores']:>6} {r['map_s']:>7.1f} "
              f"{r['peak_bytes_per_synapse']:>11.1f} {r['routes_bytes_per_synapse']:>13.1f}")


if __name__ == "__main__":
    main()
