"""Partition populations into core-sized slices under every capacity limit of a core.

Slices are contiguous ranges of a population's neurons. A slice grows neuron by neuron
while it stays within the core's neuron count, neuron-state memory, synapse memory, their
shared total memory and fan-in (distinct source neurons). A synapse takes the bytes its
projection's weight width and encoding give (``NeurocoreSpec.synapse_bytes``); shared conv
kernels are charged once per slice. A dense projection is not listed synapse by synapse:
each target neuron has one entry with its whole row's bytes, and its source population
counts once per slice towards fan-in (as a fan-in key). Fan-out and routing-table entries depend on where the
targets land, so the mapper checks them after placing (``neurosim.mapping.mapper``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from neurosim.graph.graph import Conv2d, Dense, Graph, Projection
from neurosim.spec.chip import NeurocoreSpec

LIMIT_NAMES = ("neurons", "memory_bytes", "neuron_state_bytes", "synapse_memory_bytes", "fan_in", "fan_out",
               "routes")
# indices into LIMIT_NAMES of the errors `_greedy` reports
_STATE, _SYNAPSES, _FAN_IN, _MEMORY = (LIMIT_NAMES.index(n) for n in
                                       ("neuron_state_bytes", "synapse_memory_bytes", "fan_in", "memory_bytes"))


@dataclass
class Incoming:
    """Synapses into one population, grouped by target neuron (CSC), each entry with its
    projection (among those into the population), whose bytes and fan-in key it takes."""

    ptr: np.ndarray        # int64 [size + 1]
    src: np.ndarray        # int32 global source neuron (-1: an entry of a dense projection)
    proj: np.ndarray       # uint8 (uint16 when more) its projection
    key: np.ndarray        # int32 shared-kernel id (-1: none); empty when no projection shares kernels
    proj_cost: np.ndarray  # float32 [projections] bytes charged per entry (0 for shared kernels)
    proj_fan: np.ndarray   # int64 [projections] fan-in key of a dense projection's entries (its source
    #                        population), -1 for the others
    key_cost: np.ndarray   # float64 bytes of each shared kernel
    fan_count: np.ndarray  # int64 sources of each fan key


def encoding_of(proj: Projection) -> str:
    return "dense" if isinstance(proj, Dense) else "conv" if isinstance(proj, Conv2d) else "sparse"


@nb.njit(cache=True)
def count_entries(indices, counts):
    for k in range(indices.shape[0]):
        counts[indices[k] + 1] += 1


@nb.njit(cache=True)
def place_entries(indptr, indices, source_lo, j, per_channel, first_key, fill, src, proj, key):
    """A sparse or conv projection's synapses into their targets' entries (``fill``: each
    target's next free entry); with ``per_channel`` > 0 a conv one's shared-kernel keys."""
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r], indptr[r + 1]):
            e = fill[indices[k]]
            fill[indices[k]] += 1
            src[e], proj[e] = source_lo + r, j
            if per_channel > 0:
                key[e] = indices[k] // per_channel + first_key


def incoming(graph: Graph, target: str, offsets: dict[str, int], core: NeurocoreSpec) -> Incoming:
    """A population's incoming entries, laid out by target neuron in one counting pass (a
    target's entries in the order of its projections, then of their sources)."""
    size = graph.populations[target].size
    pops = list(graph.populations)
    fan_count = np.array([graph.populations[p].size for p in pops], np.int64)
    mine = [proj for proj in graph.projections.values() if proj.target == target]
    csrs = [None if isinstance(proj, Dense) else proj.to_csr() for proj in mine]
    ptr = np.zeros(size + 1, np.int64)
    for proj, csr in zip(mine, csrs):
        if csr is None:
            ptr[1:proj.shape[0] + 1] += 1
        else:
            count_entries(csr.indices, ptr)
    np.cumsum(ptr, out=ptr)
    n_entries = int(ptr[-1])
    src = np.empty(n_entries, np.int32)
    proj_of = np.empty(n_entries, np.uint8 if len(mine) <= 256 else np.uint16)
    conv = any(isinstance(proj, Conv2d) for proj in mine)
    key = np.full(n_entries if conv else 0, -1, np.int32)
    proj_cost, proj_fan, key_costs = np.zeros(len(mine), np.float32), np.full(len(mine), -1, np.int64), []
    fill, n_keys = ptr[:-1].copy(), 0
    for j, (proj, csr) in enumerate(zip(mine, csrs)):
        if isinstance(proj, Dense):
            n_target, n_source = proj.shape
            at = fill[:n_target]
            src[at], proj_of[at] = -1, j
            fill[:n_target] += 1
            proj_cost[j] = n_source * core.synapse_bytes(proj.weight_bits, "dense")
            proj_fan[j] = pops.index(proj.source)
            continue
        per_channel = 0
        if isinstance(proj, Conv2d):
            oc, ic, kh, kw = proj.weight.shape
            per_channel = proj.out_shape[1] * proj.out_shape[2]
            key_costs.append(np.full(oc, ic * kh * kw * core.synapse_bytes(proj.weight_bits, "conv")))
        else:
            proj_cost[j] = core.synapse_bytes(proj.weight_bits, encoding_of(proj))
        place_entries(csr.indptr, csr.indices, offsets[proj.source], j, per_channel, n_keys, fill, src, proj_of, key)
        n_keys += proj.weight.shape[0] if per_channel else 0
    return Incoming(ptr, src, proj_of, key, proj_cost, proj_fan,
                    np.concatenate(key_costs) if key_costs else np.zeros(0), fan_count)


@nb.njit(cache=True)
def _greedy(ptr, src, proj, key, proj_cost, proj_fan, key_cost, fan_count, n_sources, max_neurons, state_bytes,
            max_state_bytes, max_syn_bytes, max_memory_bytes, max_fan_in):
    """Slice one population; returns (starts, synapse bytes, fan-in) per slice and an error.

    The error is (neuron, index in LIMIT_NAMES, amount) when one neuron alone exceeds a
    core's limit, else (-1, 0, 0).
    """
    size = ptr.shape[0] - 1
    src_mark = np.full(n_sources, -1, np.int64)    # the slice that already counts this source
    src_seen = np.full(n_sources, -1, np.int64)    # dedupe within one neuron's trial
    n_keys = max(key_cost.shape[0], 1)
    key_mark = np.full(n_keys, -1, np.int64)
    key_seen = np.full(n_keys, -1, np.int64)
    fan_mark = np.full(fan_count.shape[0], -1, np.int64)
    fan_seen = np.full(fan_count.shape[0], -1, np.int64)
    starts = [0]
    syn_out = [0.0]
    fan_out = [0]
    syn_out.pop()
    fan_out.pop()
    slice_id, n, syn_bytes, fan_in, trial, j = 0, 0, 0.0, 0, 0, 0
    while j < size:
        trial += 1
        add_bytes, add_fan_in = 0.0, 0
        for k in range(ptr[j], ptr[j + 1]):
            s = src[k]
            if s >= 0 and src_mark[s] != slice_id and src_seen[s] != trial:
                src_seen[s] = trial
                add_fan_in += 1
            f = proj_fan[proj[k]]
            if f >= 0 and fan_mark[f] != slice_id and fan_seen[f] != trial:
                fan_seen[f] = trial
                add_fan_in += fan_count[f]
            kk = key[k] if key.shape[0] else -1
            if kk >= 0:
                if key_mark[kk] != slice_id and key_seen[kk] != trial:
                    key_seen[kk] = trial
                    add_bytes += key_cost[kk]
            else:
                add_bytes += proj_cost[proj[k]]
        if (n + 1 <= max_neurons and (n + 1) * state_bytes <= max_state_bytes
                and syn_bytes + add_bytes <= max_syn_bytes and fan_in + add_fan_in <= max_fan_in
                and (n + 1) * state_bytes + syn_bytes + add_bytes <= max_memory_bytes):
            n += 1
            syn_bytes += add_bytes
            fan_in += add_fan_in
            for k in range(ptr[j], ptr[j + 1]):
                if src[k] >= 0:
                    src_mark[src[k]] = slice_id
                if proj_fan[proj[k]] >= 0:
                    fan_mark[proj_fan[proj[k]]] = slice_id
                if key.shape[0] and key[k] >= 0:
                    key_mark[key[k]] = slice_id
            j += 1
        elif n == 0:
            if state_bytes > max_state_bytes:
                return starts, syn_out, fan_out, (j, _STATE, state_bytes)
            if add_bytes > max_syn_bytes:
                return starts, syn_out, fan_out, (j, _SYNAPSES, int(np.ceil(add_bytes)))
            if add_fan_in > max_fan_in:
                return starts, syn_out, fan_out, (j, _FAN_IN, add_fan_in)
            return starts, syn_out, fan_out, (j, _MEMORY, int(np.ceil(state_bytes + add_bytes)))
        else:
            syn_out.append(syn_bytes)
            fan_out.append(fan_in)
            slice_id += 1
            starts.append(j)
            n, syn_bytes, fan_in = 0, 0.0, 0
    syn_out.append(syn_bytes)
    fan_out.append(fan_in)
    return starts, syn_out, fan_out, (-1, 0, 0)


def slice_population(inc: Incoming, n_sources: int, max_neurons: int, state_bytes: int, max_state_bytes: int,
                     max_syn_bytes: float, max_memory_bytes: float, max_fan_in: int):
    """Numba greedy slicing; returns (starts, synapse bytes, fan-in) arrays and an error tuple."""
    starts, syn, fan, err = _greedy(inc.ptr, inc.src, inc.proj, inc.key, inc.proj_cost if inc.proj_cost.size else
                                    np.zeros(1, np.float32), inc.proj_fan if inc.proj_fan.size else np.zeros(1, np.int64),
                                    inc.key_cost if inc.key_cost.size else np.zeros(1), inc.fan_count,
                                    n_sources, max_neurons, state_bytes, max_state_bytes,
                                    float(max_syn_bytes), float(max_memory_bytes), max_fan_in)
    return np.array(starts, np.int64), np.array(syn, np.float64), np.array(fan, np.int64), err
