"""Routes: each source neuron's output axons, one per (destination core, projection).

A spike of neuron ``s`` sends one message per axon in ``axon_ptr[s]:axon_ptr[s+1]``; the
message carries the spike's payload to ``axon_core``, where the synapses
``axon_syn_ptr[a]:axon_syn_ptr[a+1]`` (target dendrites and weights) are applied with the
axon's weight exponent. A target is a dendrite: a neuron's accumulator on one input port.
The hop counts come from XY routing over the system's router grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np


@dataclass
class Routes:
    axon_ptr: np.ndarray       # int64 [n_neurons + 1]
    axon_core: np.ndarray      # int32 [n_axons]
    axon_exp: np.ndarray       # int64 [n_axons]
    axon_proj: np.ndarray      # int32 [n_axons] index of its projection
    axon_syn_ptr: np.ndarray   # int64 [n_axons + 1]
    syn_target: np.ndarray     # int32 [n_synapses], global dendrite index
    syn_weight: np.ndarray     # int8  [n_synapses]
    hops_ew: np.ndarray        # int32 [n_axons] on-chip east-west hops
    hops_ns: np.ndarray        # int32 [n_axons] on-chip north-south hops
    links: np.ndarray          # int32 [n_axons] chip-to-chip link crossings (the host link counts as one)
    synmem_reads: np.ndarray   # int64 [n_axons] synaptic-memory words a message on it reads

    @property
    def n_axons(self) -> int:
        return len(self.axon_core)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in vars(self).values())


@nb.njit(cache=True)
def build_axons(src, tgt, dend, weight, proj, proj_exp, n_proj, core_of, n_neurons):
    """Group synapses (given in any order) into axons per (source, destination core, projection).

    ``tgt`` is each synapse's target neuron (for its core), ``dend`` its target dendrite.
    """
    n_syn = src.shape[0]
    counts = np.zeros(n_neurons + 1, np.int64)
    for k in range(n_syn):
        counts[src[k] + 1] += 1
    row_ptr = np.cumsum(counts)
    fill = row_ptr[:-1].copy()
    order = np.empty(n_syn, np.int64)
    for k in range(n_syn):
        order[fill[src[k]]] = k
        fill[src[k]] += 1

    axon_ptr = np.zeros(n_neurons + 1, np.int64)
    n_axons_max = n_syn
    axon_core = np.empty(n_axons_max, np.int32)
    axon_exp = np.empty(n_axons_max, np.int64)
    axon_proj = np.empty(n_axons_max, np.int32)
    axon_syn_ptr = np.empty(n_axons_max + 1, np.int64)
    syn_target = np.empty(n_syn, np.int32)
    syn_weight = np.empty(n_syn, np.int8)
    a = 0
    axon_syn_ptr[0] = 0
    for s in range(n_neurons):
        lo, hi = row_ptr[s], row_ptr[s + 1]
        keys = np.empty(hi - lo, np.int64)
        for k in range(lo, hi):
            i = order[k]
            keys[k - lo] = (np.int64(core_of[tgt[i]]) * n_proj + proj[i]) * n_neurons + tgt[i]
        row = np.argsort(keys, kind="mergesort")
        prev = -1
        for r in range(hi - lo):
            i = order[lo + row[r]]
            key = np.int64(core_of[tgt[i]]) * n_proj + proj[i]
            if key != prev:
                if prev != -1:
                    a += 1
                    axon_syn_ptr[a] = lo + r
                axon_core[a] = core_of[tgt[i]]
                axon_exp[a] = proj_exp[proj[i]]
                axon_proj[a] = proj[i]
                prev = key
            syn_target[lo + r] = dend[i]
            syn_weight[lo + r] = weight[i]
        if hi > lo:
            a += 1
            axon_syn_ptr[a] = hi
        axon_ptr[s + 1] = a
    return (axon_ptr, axon_core[:a].copy(), axon_exp[:a].copy(), axon_proj[:a].copy(), axon_syn_ptr[:a + 1].copy(),
            syn_target, syn_weight)
