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
    """Synapses into one population, grouped by target neuron (CSC)."""

    ptr: np.ndarray        # int64 [size + 1]
    src: np.ndarray        # int32 global source neuron (-1: an entry of a dense projection)
    cost: np.ndarray       # float32 bytes charged per entry (0 for shared kernels)
    key: np.ndarray        # int32 shared-kernel id (-1: none)
    key_cost: np.ndarray   # float64 bytes of each shared kernel
    fan_key: np.ndarray    # int32 source population of a dense entry (-1: none)
    fan_count: np.ndarray  # int64 sources of each fan key


def encoding_of(proj: Projection) -> str:
    return "dense" if isinstance(proj, Dense) else "conv" if isinstance(proj, Conv2d) else "sparse"


def incoming(graph: Graph, target: str, offsets: dict[str, int], core: NeurocoreSpec) -> Incoming:
    size = graph.populations[target].size
    srcs, tgts, costs, keys, key_costs, fan_keys = [], [], [], [], [], []
    pops = list(graph.populations)
    fan_count = np.array([graph.populations[p].size for p in pops], np.int64)
    n_keys = 0
    for proj in graph.projections.values():
        if proj.target != target:
            continue
        if isinstance(proj, Dense):
            n_target, n_source = proj.shape
            srcs.append(np.full(n_target, -1, np.int32))
            tgts.append(np.arange(n_target, dtype=np.int32))
            costs.append(np.full(n_target, n_source * core.synapse_bytes(proj.weight_bits, "dense"), np.float32))
            keys.append(np.full(n_target, -1, np.int32))
            fan_keys.append(np.full(n_target, pops.index(proj.source), np.int32))
            continue
        csr = proj.to_csr()
        srcs.append(np.repeat(np.arange(offsets[proj.source], offsets[proj.source] + len(csr.indptr) - 1,
                                        dtype=np.int32), np.diff(csr.indptr)))
        tgts.append(csr.indices.astype(np.int32))
        if isinstance(proj, Conv2d):
            oc, ic, kh, kw = proj.weight.shape
            per_channel = proj.out_shape[1] * proj.out_shape[2]
            costs.append(np.zeros(csr.n_synapses, np.float32))
            keys.append((csr.indices // per_channel + n_keys).astype(np.int32))
            key_costs.append(np.full(oc, ic * kh * kw * core.synapse_bytes(proj.weight_bits, "conv")))
            n_keys += oc
        else:
            costs.append(np.full(csr.n_synapses, core.synapse_bytes(proj.weight_bits, encoding_of(proj)), np.float32))
            keys.append(np.full(csr.n_synapses, -1, np.int32))
        fan_keys.append(np.full(csr.n_synapses, -1, np.int32))
    if not srcs:
        return Incoming(np.zeros(size + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32),
                        np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int32), fan_count)
    tgt = np.concatenate(tgts)
    order = np.argsort(tgt, kind="stable")
    ptr = np.zeros(size + 1, np.int64)
    np.cumsum(np.bincount(tgt, minlength=size), out=ptr[1:])
    return Incoming(ptr, np.concatenate(srcs)[order], np.concatenate(costs)[order],
                    np.concatenate(keys)[order], np.concatenate(key_costs) if key_costs else np.zeros(0),
                    np.concatenate(fan_keys)[order], fan_count)


@nb.njit(cache=True)
def _greedy(ptr, src, cost, key, key_cost, fan_key, fan_count, n_sources, max_neurons, state_bytes, max_state_bytes,
            max_syn_bytes, max_memory_bytes, max_fan_in):
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
            f = fan_key[k]
            if f >= 0 and fan_mark[f] != slice_id and fan_seen[f] != trial:
                fan_seen[f] = trial
                add_fan_in += fan_count[f]
            if key[k] >= 0:
                if key_mark[key[k]] != slice_id and key_seen[key[k]] != trial:
                    key_seen[key[k]] = trial
                    add_bytes += key_cost[key[k]]
            else:
                add_bytes += cost[k]
        if (n + 1 <= max_neurons and (n + 1) * state_bytes <= max_state_bytes
                and syn_bytes + add_bytes <= max_syn_bytes and fan_in + add_fan_in <= max_fan_in
                and (n + 1) * state_bytes + syn_bytes + add_bytes <= max_memory_bytes):
            n += 1
            syn_bytes += add_bytes
            fan_in += add_fan_in
            for k in range(ptr[j], ptr[j + 1]):
                if src[k] >= 0:
                    src_mark[src[k]] = slice_id
                if fan_key[k] >= 0:
                    fan_mark[fan_key[k]] = slice_id
                if key[k] >= 0:
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
    starts, syn, fan, err = _greedy(inc.ptr, inc.src, inc.cost, inc.key,
                                    inc.key_cost if inc.key_cost.size else np.zeros(1), inc.fan_key, inc.fan_count,
                                    n_sources, max_neurons, state_bytes, max_state_bytes,
                                    float(max_syn_bytes), float(max_memory_bytes), max_fan_in)
    return np.array(starts, np.int64), np.array(syn, np.float64), np.array(fan, np.int64), err
