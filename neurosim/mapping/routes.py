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
    axon_delay: np.ndarray     # uint8 [n_axons] extra timesteps its input is held back
    axon_syn_ptr: np.ndarray   # int64 [n_axons + 1]
    syn_target: np.ndarray     # int32 [n_synapses], global dendrite index
    syn_weight: np.ndarray     # int8  [n_synapses]
    hops_ew: np.ndarray        # int32 [n_axons] on-chip east-west hops
    hops_ns: np.ndarray        # int32 [n_axons] on-chip north-south hops
    links: np.ndarray          # int32 [n_axons] chip-to-chip link crossings (the host link counts as one)
    synmem_reads: np.ndarray   # int32 [n_axons] synaptic-memory words a message on it reads

    @property
    def n_axons(self) -> int:
        return len(self.axon_core)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in vars(self).values())


@nb.njit(cache=True)
def split_rows(indptr, indices, target_offset, core_of):
    """The axons of one projection: each row (source) split where its targets' core changes.

    Targets are ascending within a row and a population's slices sit on ascending cores, so
    a row's cores never decrease. Returns (row, core, first synapse, end) per axon.
    """
    n_rows = indptr.shape[0] - 1
    count = 0
    for r in range(n_rows):
        prev = -1
        for k in range(indptr[r], indptr[r + 1]):
            c = core_of[target_offset + indices[k]]
            if c != prev:
                count += 1
                prev = c
    row = np.empty(count, np.int64)
    core = np.empty(count, np.int32)
    lo = np.empty(count, np.int64)
    hi = np.empty(count, np.int64)
    a = 0
    for r in range(n_rows):
        prev = -1
        for k in range(indptr[r], indptr[r + 1]):
            c = core_of[target_offset + indices[k]]
            if c != prev:
                if prev != -1:
                    hi[a - 1] = k
                row[a], core[a], lo[a] = r, c, k
                a += 1
                prev = c
        if indptr[r + 1] > indptr[r]:
            hi[a - 1] = indptr[r + 1]
    return row, core, lo, hi


@nb.njit(cache=True)
def copy_synapses(indices, weight, lo, hi, out_ptr, dendrite_offset, syn_target, syn_weight):
    """Copy each axon's synapses (``lo:hi`` of one projection) to ``out_ptr`` in the routes'
    arrays, targets as global dendrites."""
    for a in range(lo.shape[0]):
        o = out_ptr[a]
        for k in range(lo[a], hi[a]):
            syn_target[o] = dendrite_offset + indices[k]
            syn_weight[o] = weight[k]
            o += 1


@nb.njit(cache=True)
def sort_rows(indptr, indices, weight):
    """Sort each row's synapses by target, in place (rows already sorted are left as they are)."""
    for r in range(indptr.shape[0] - 1):
        lo, hi = indptr[r], indptr[r + 1]
        ordered = True
        for k in range(lo + 1, hi):
            if indices[k] < indices[k - 1]:
                ordered = False
                break
        if not ordered:
            order = np.argsort(indices[lo:hi], kind="mergesort")
            indices[lo:hi] = indices[lo:hi][order]
            weight[lo:hi] = weight[lo:hi][order]


@nb.njit(cache=True)
def destinations_per_core(axon_ptr, axon_core, core_lo, core_hi, n_cores):
    """Per core: the distinct cores its neurons' axons go to (routing-table entries)."""
    seen = np.full(max(n_cores, 1), -1, np.int64)
    out = np.zeros(n_cores, np.int64)
    for c in range(n_cores):
        for a in range(axon_ptr[core_lo[c]], axon_ptr[core_hi[c]]):
            d = axon_core[a]
            if seen[d] != c:
                seen[d] = c
                out[c] += 1
    return out
