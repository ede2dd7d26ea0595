"""Routes: each source neuron's output axons, one per (destination core, projection).

A spike of neuron ``s`` sends one message per axon in ``axon_ptr[s]:axon_ptr[s+1]`` (sorted by
destination core, then projection); the message carries the spike's payload to ``axon_core``,
where the axon's ``axon_synapses`` synapses (target dendrites and weights) are applied with its
projection's weight exponent and delay. A neuron's synapses are ``syn_ptr[s]:syn_ptr[s+1]``, its
axons' one after another. A target is a dendrite, a neuron's accumulator on one input port,
counted from the first dendrite of the target's core (``core_dendrite``).

Every array is held in narrow integers that hold its values (`index_type`): a route is kept
for every synapse of a model, so its bytes per synapse are what a large model's memory is.
The hops of an axon follow from its two cores (`hop_counts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numba as nb
import numpy as np

from neurosim.graph.graph import Csr, Graph
from neurosim.mapping.partition import encoding_of
from neurosim.programs import KINDS, port_index
from neurosim.spec.chip import ChipFile



def index_type(largest: int) -> type:
    """uint16 for indices and counts up to 65,535, else int32 (two kinds keep the kernels'
    compiled variants few)."""
    return np.uint16 if largest <= np.iinfo(np.uint16).max else np.int32


def count_type(largest: int) -> type:
    """uint8 for an axon's synapse count up to 255, else `index_type`."""
    return np.uint8 if largest <= np.iinfo(np.uint8).max else index_type(largest)


def projection_type(n_projections: int) -> type:
    return np.uint8 if n_projections <= 256 else np.uint16


@dataclass
class Routes:
    axon_ptr: np.ndarray       # int64 [n_neurons + 1]
    axon_core: np.ndarray      # [n_axons] destination core
    axon_proj: np.ndarray      # [n_axons] index of its projection
    axon_synapses: np.ndarray  # [n_axons] synapses it reaches
    syn_ptr: np.ndarray        # int64 [n_neurons + 1] each neuron's synapses
    syn_target: np.ndarray     # [n_synapses] dendrite, counted from its core's first
    syn_weight: np.ndarray     # int8 [n_synapses] (float32 in a float graph)
    core_dendrite: np.ndarray  # int64 [n_cores] first dendrite of each core
    proj_exp: np.ndarray       # int64 [n_projections] weight exponent
    proj_delay: np.ndarray     # uint8 [n_projections] extra timesteps its input is held back
    proj_syn_bits: np.ndarray  # float64 [n_projections] synaptic-memory bits a synapse takes
    word_bits: int             # of synaptic memory: a message reads the words its synapses fill (`reads`)

    @property
    def n_axons(self) -> int:
        return len(self.axon_core)

    @property
    def axon_exp(self) -> np.ndarray:
        return self.proj_exp[self.axon_proj]

    @property
    def axon_delay(self) -> np.ndarray:
        return self.proj_delay[self.axon_proj]

    @property
    def synmem_reads(self) -> np.ndarray:
        """[n_axons] synaptic-memory words a message on each axon reads (`reads`)."""
        return np.ceil(self.axon_synapses.astype(np.int64) * self.proj_syn_bits[self.axon_proj]
                       / self.word_bits).astype(np.int64)

    @property
    def axon_syn_ptr(self) -> np.ndarray:
        """int64 [n_axons + 1] each axon's synapses."""
        return np.concatenate([[0], np.cumsum(self.axon_synapses, dtype=np.int64)])

    @cached_property
    def axon_run(self) -> np.ndarray:
        """bool [n_axons] whether an axon's synapses target consecutive dendrites (a row of a dense
        matrix, delivered without looking its targets up); made once, shared by every engine."""
        out = np.zeros(self.n_axons, np.bool_)
        axon_runs(self.axon_ptr, self.axon_synapses, self.syn_ptr, self.syn_target, out)
        return out

    def nbytes(self) -> int:
        return sum(a.nbytes for a in vars(self).values() if isinstance(a, np.ndarray))


@nb.njit(cache=True, nogil=True)
def axon_runs(axon_ptr, axon_synapses, syn_ptr, syn_target, out):
    """Which axons' synapses target consecutive dendrites (``out``, per axon)."""
    for n in range(axon_ptr.shape[0] - 1):
        s = syn_ptr[n]
        for a in range(axon_ptr[n], axon_ptr[n + 1]):
            k = axon_synapses[a]
            run = True
            for i in range(1, k):
                if syn_target[s + i] != syn_target[s] + i:
                    run = False
                    break
            out[a] = run
            s += k


@nb.njit(cache=True, nogil=True, inline="always")
def reads(synapses, syn_bits, word_bits):
    """Synaptic-memory words a message reads: those its synapses fill."""
    return math.ceil(synapses * syn_bits / word_bits)


@nb.njit(cache=True)
def rows_sorted(indptr, indices):
    """Whether every row's targets ascend."""
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r] + 1, indptr[r + 1]):
            if indices[k] < indices[k - 1]:
                return False
    return True


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


@nb.njit(cache=True, nogil=True, inline="always")
def next_axon(at, end, indices, target_offset, core_of):
    """Of a neuron's rows (one per projection from its population, synapse ``at[j]`` next of
    ``end[j]``), the one whose next target's core comes first (the lower projection on a tie),
    and that core; (-1, -1) when none is left."""
    best, best_core = -1, -1
    for j in range(at.shape[0]):
        if at[j] < end[j]:
            c = core_of[target_offset[j] + indices[at[j]]]
            if best < 0 or c < best_core:
                best, best_core = j, c
    return best, best_core


@nb.njit(cache=True, nogil=True)
def count_axons(indptr, indices, target_offset, dendrite_offset, core_of, core_dendrite, axons, synapses):
    """The axons and synapses of each neuron of one population (into ``axons`` and ``synapses``,
    from its first neuron on): its projections' rows are ``indptr[j]`` into the projections'
    synapses laid one after another in ``indices``. Returns the most synapses an axon has and
    the largest target counted from its core's first dendrite."""
    most, widest = 0, 0
    at, end = np.zeros(indptr.shape[0], np.int64), np.zeros(indptr.shape[0], np.int64)
    for n in range(indptr.shape[1] - 1):
        for j in range(indptr.shape[0]):
            at[j], end[j] = indptr[j, n], indptr[j, n + 1]
            synapses[n] += end[j] - at[j]
        while True:
            j, c = next_axon(at, end, indices, target_offset, core_of)
            if j < 0:
                break
            first = at[j]
            while at[j] < end[j] and core_of[target_offset[j] + indices[at[j]]] == c:
                widest = max(widest, dendrite_offset[j] + indices[at[j]] - core_dendrite[c])
                at[j] += 1
            axons[n] += 1
            most = max(most, at[j] - first)
    return most, widest


@nb.njit(cache=True, nogil=True)
def fill_axons(indptr, indices, weights, projection, target_offset, dendrite_offset, core_of, core_dendrite, axon_ptr,
               syn_ptr, axon_core, axon_proj, axon_synapses, syn_target, syn_weight):
    """Lay out the axons (in core order, then projection) and synapses of each neuron of one
    population, as `count_axons` counted them (``axon_ptr`` and ``syn_ptr`` from its first
    neuron on; ``projection[j]``: the graph's index of its ``j``-th projection)."""
    at, end = np.zeros(indptr.shape[0], np.int64), np.zeros(indptr.shape[0], np.int64)
    for n in range(indptr.shape[1] - 1):
        for j in range(indptr.shape[0]):
            at[j], end[j] = indptr[j, n], indptr[j, n + 1]
        a, s = axon_ptr[n], syn_ptr[n]
        while True:
            j, c = next_axon(at, end, indices, target_offset, core_of)
            if j < 0:
                break
            first = at[j]
            while at[j] < end[j] and core_of[target_offset[j] + indices[at[j]]] == c:
                syn_target[s] = dendrite_offset[j] + indices[at[j]] - core_dendrite[c]
                syn_weight[s] = weights[at[j]]
                s += 1
                at[j] += 1
            axon_core[a], axon_proj[a], axon_synapses[a] = c, projection[j], at[j] - first
            a += 1


@nb.njit(cache=True, nogil=True, inline="always")
def hop_counts(src, dst, core_x, core_y, routers_x, routers_y):
    """XY-routing hops of a message from core ``src`` (-1: the host, whose messages enter at
    router (0, 0) over one link) to core ``dst``: (on-chip E-W hops, on-chip N-S hops, link
    crossings), from the cores' router columns and rows on the system's grid."""
    sx, sy = (0, 0) if src < 0 else (core_x[src], core_y[src])
    dx, dy = core_x[dst], core_y[dst]
    cross_x, cross_y = abs(dx // routers_x - sx // routers_x), abs(dy // routers_y - sy // routers_y)
    return abs(dx - sx) - cross_x, abs(dy - sy) - cross_y, cross_x + cross_y + (1 if src < 0 else 0)


@nb.njit(cache=True)
def fill_hops(axon_ptr, axon_core, core_of, core_x, core_y, routers_x, routers_y, ew, ns, links):
    """`hop_counts` of every axon."""
    for n in range(axon_ptr.shape[0] - 1):
        for a in range(axon_ptr[n], axon_ptr[n + 1]):
            ew[a], ns[a], links[a] = hop_counts(core_of[n], axon_core[a], core_x, core_y, routers_x, routers_y)


@nb.njit(cache=True)
def destinations_per_core(axon_ptr, axon_core, core_of, n_cores):
    """Per core: the distinct cores its neurons' axons go to (routing-table entries). A core's
    neurons need not be one range: each destination is marked with the last core that counted it."""
    seen = np.full(max(n_cores, 1), -1, np.int64)
    out = np.zeros(n_cores, np.int64)
    order = np.argsort(core_of, kind="mergesort")
    for n in order:
        c = core_of[n]
        if c < 0:
            continue
        for a in range(axon_ptr[n], axon_ptr[n + 1]):
            d = axon_core[a]
            if seen[d] != c:
                seen[d] = c
                out[c] += 1
    return out


@nb.njit(cache=True, nogil=True)
def running_per_core(core_of, values, upto, totals):
    """Per core, the running sum of ``values`` over its neurons in the neurons' order (a core's
    neurons need not be one range): ``upto[n]`` the sum of ``n``'s core up to and including
    ``n``, ``totals[c]`` core ``c``'s whole sum. The host's neurons (``core_of`` < 0) are skipped,
    their ``upto`` left as it is."""
    totals[:] = 0
    for n in range(core_of.shape[0]):
        c = core_of[n]
        if c >= 0:
            totals[c] += values[n]
            upto[n] = totals[c]


def ranks_within(core_of: np.ndarray, n_cores: int) -> np.ndarray:
    """[n_neurons] each neuron's place among its core's neurons in the neurons' order (0 for the
    host.s), in the narrowest `index_type` that holds its core's neuron count."""
    on_core = core_of >= 0
    counts = np.bincount(core_of[on_core], minlength=1) if on_core.any() else np.zeros(1, np.int64)
    rank = np.zeros(len(core_of), index_type(int(counts.max())))
    running_per_core(core_of, np.ones(len(core_of), np.int8), rank, np.zeros(max(n_cores, 1), np.int64))
    rank[on_core] -= 1
    return rank


@nb.njit(cache=True)
def synapses_per_core(axon_core, axon_synapses, n_cores):
    """Per core: the synapses its axons reach, that is those stored on it."""
    out = np.zeros(n_cores, np.int64)
    for a in range(axon_core.shape[0]):
        out[axon_core[a]] += axon_synapses[a]
    return out


def sorted_rows(csr: Csr) -> Csr:
    """The same synapses with targets ascending within each row (a copy only if some row is not)."""
    if rows_sorted(csr.indptr, csr.indices):
        return csr
    indices, weight = csr.indices.copy(), csr.weight.copy()
    sort_rows(csr.indptr, indices, weight)
    return Csr(csr.indptr, indices, weight)


def outgoing_rows(graph: Graph, source: str, csrs: list[Csr]) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """A population's outgoing projections (their indices in the graph) and their rows side by
    side: ``indptr[j]`` into the synapses laid one after another (copied only when several)."""
    mine = [k for k, p in enumerate(graph.projections.values()) if p.source == source]
    parts = [csrs[k] for k in mine]
    starts = np.cumsum([0] + [len(c.indices) for c in parts])
    indptr = np.stack([np.asarray(c.indptr, np.int64) + start for c, start in zip(parts, starts)])
    if len(parts) == 1:
        return mine, indptr, np.asarray(parts[0].indices, np.int32), parts[0].weight
    return (mine, indptr, np.concatenate([np.asarray(c.indices, np.int32) for c in parts]),
            np.concatenate([c.weight for c in parts]))


def graph_csrs(graph: Graph) -> list[Csr]:
    """Every projection's synapses by source (CSR), targets ascending within each row."""
    return [sorted_rows(proj.to_csr()) for proj in graph.projections.values()]


def route_graph(graph: Graph, offsets: dict[str, int], dend_offsets: dict[str, int], slices: list, core_of: np.ndarray,
                n_cores: int, n_neurons: int, chip: ChipFile, csrs: list[Csr] | None = None) -> Routes:
    """Axons per (source neuron, destination core, projection), each neuron's sorted by core
    then projection, with their synapses laid out in that order; ``slices`` (each a population's
    neurons ``lo:hi`` on a ``core``, or on the host) and ``core_of`` say where neurons are, and
    ``csrs`` (`graph_csrs`) are made here unless given.

    Two passes per source population over its projections' rows (targets ascending, so a row's
    cores never decrease): one counts each neuron's axons and synapses, the other writes them
    in place.
    """
    projections = list(graph.projections.values())
    csrs = graph_csrs(graph) if csrs is None else csrs
    weight_dtype = np.result_type(*[c.weight.dtype for c in csrs] or [np.int8])
    target_offset = np.array([offsets[p.target] for p in projections] or [0], np.int64)
    dendrite_offset = np.array([dend_offsets[p.target] + port_index(KINDS[graph.populations[p.target].kind], p.port)
                                * graph.populations[p.target].size for p in projections] or [0], np.int64)
    syn_bits = np.array([8 * chip.core.synapse_bytes(p.weight_bits, encoding_of(p)) for p in projections] or [0.0])
    word_bits = chip.core.synapses.word_bits
    sources = [name for name in graph.populations if any(p.source == name for p in projections)]
    core_dendrite = np.full(n_cores, np.iinfo(np.int64).max, np.int64)     # the least of its slices'
    for sl in slices:
        if sl.core >= 0:
            core_dendrite[sl.core] = min(core_dendrite[sl.core], dend_offsets[sl.population] + sl.lo)
    axons, synapses = np.zeros(n_neurons, np.int64), np.zeros(n_neurons, np.int64)
    most, widest = 0, 0
    for name in sources:
        mine, indptr, indices, _ = outgoing_rows(graph, name, csrs)
        lo, hi = offsets[name], offsets[name] + graph.populations[name].size
        m, w = count_axons(indptr, indices, target_offset[mine], dendrite_offset[mine], core_of, core_dendrite,
                           axons[lo:hi], synapses[lo:hi])
        most, widest = max(most, m), max(widest, w)
    axon_ptr, syn_ptr = np.zeros(n_neurons + 1, np.int64), np.zeros(n_neurons + 1, np.int64)
    np.cumsum(axons, out=axon_ptr[1:])
    np.cumsum(synapses, out=syn_ptr[1:])
    del axons, synapses
    axon_core = np.empty(axon_ptr[-1], index_type(max(n_cores - 1, 0)))
    axon_proj = np.empty(axon_ptr[-1], projection_type(len(projections)))
    axon_synapses = np.empty(axon_ptr[-1], count_type(most))
    syn_target = np.empty(syn_ptr[-1], index_type(widest))
    syn_weight = np.empty(syn_ptr[-1], weight_dtype)
    for name in sources:
        mine, indptr, indices, weights = outgoing_rows(graph, name, csrs)
        lo, hi = offsets[name], offsets[name] + graph.populations[name].size
        fill_axons(indptr, indices, np.asarray(weights, weight_dtype), np.array(mine, np.int64), target_offset[mine],
                   dendrite_offset[mine], core_of, core_dendrite, axon_ptr[lo:hi + 1], syn_ptr[lo:hi + 1], axon_core,
                   axon_proj, axon_synapses, syn_target, syn_weight)
    exps = np.array([p.weight_exp for p in projections] or [0], np.int64)
    delays = np.array([p.delay for p in projections] or [0], np.uint8)
    return Routes(axon_ptr, axon_core, axon_proj, axon_synapses, syn_ptr, syn_target, syn_weight, core_dendrite, exps,
                  delays, syn_bits, word_bits)


@nb.njit(cache=True, nogil=True)
def count_outputs(indptr, indices, target_offset, core_of, first, fan_out, routes, seen):
    """The axons (``fan_out``) and distinct destination cores (``routes``) of each core, from the
    neurons of one population (its rows as in `count_axons`; ``first``: its first neuron) as
    `fill_axons` would lay them out. ``seen[d]`` is the last core that counted destination ``d``:
    a core's neurons come one after another."""
    at, end = np.zeros(indptr.shape[0], np.int64), np.zeros(indptr.shape[0], np.int64)
    for n in range(indptr.shape[1] - 1):
        c = core_of[first + n]
        if c < 0:
            continue
        for j in range(indptr.shape[0]):
            at[j], end[j] = indptr[j, n], indptr[j, n + 1]
        while True:
            j, d = next_axon(at, end, indices, target_offset, core_of)
            if j < 0:
                break
            while at[j] < end[j] and core_of[target_offset[j] + indices[at[j]]] == d:
                at[j] += 1
            fan_out[c] += 1
            if seen[d] != c:
                seen[d] = c
                routes[c] += 1


def core_outputs(graph: Graph, offsets: dict[str, int], core_of: np.ndarray, n_cores: int,
                 csrs: list[Csr]) -> tuple[np.ndarray, np.ndarray]:
    """Per core: its output axons and its distinct destination cores, as `route_graph`'s routes
    would have them, counted without laying the routes out."""
    projections = list(graph.projections.values())
    target_offset = np.array([offsets[p.target] for p in projections] or [0], np.int64)
    fan_out, routes, seen = np.zeros(n_cores, np.int64), np.zeros(n_cores, np.int64), np.full(n_cores, -1, np.int64)
    for name in dict.fromkeys(p.source for p in projections):
        mine, indptr, indices, _ = outgoing_rows(graph, name, csrs)
        count_outputs(indptr, indices, target_offset[mine], core_of, offsets[name], fan_out, routes, seen)
    return fan_out, routes
