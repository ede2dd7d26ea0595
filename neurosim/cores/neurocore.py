"""The `neurocore` kind (Loihi-style): its per-op costs and its barrier-synchronised step.

Energy per timestep, per core, by component:

- synapse: synaptic ops x ``synop`` + synaptic-memory words read x ``synmem_read``
- neuron:  neurons x ``neuron_update`` + active updates x ``neuron_active`` + events x ``spike_out``
- network: messages sent by cores x ``message_out`` + messages received x ``message_in``,
  and per message its on-chip hops (E-W and N-S
  priced apart), its link crossings (its bits x the link's pJ/bit), or ``noc.local_pj``
  within one router
- static:  added at the system level from the step's duration

Time per timestep follows the Loihi 2 runtime model (Timcheck, Pierro, Shrestha 2026): a
step takes at least as long as each of

- dendrite: the busiest core's neuron updates x ``time_ns.neuron_update`` (and active ones
  x ``time_ns.neuron_active``)
- synapse:  the busiest core's synaptic ops x ``time_ns.synop``
- synmem:   the busiest core's synaptic-memory reads x ``time_ns.synmem_read``
- link:     the busiest link's bits / its bandwidth: a core's link to its router (bits in
  or out), a chip-to-chip link, or the host link
- barrier:  the barrier across the chips used

and, with the engine's per-message model, as the busiest core's own timeline:

- messages: its neuron unit (updates, events, messages generated) and its synapse unit
  serving messages as they arrive over their paths (`neurosim.engine.kernels`).

The step takes the largest of these; the trace names which (``BOUNDS``; ``tick`` is for
kinds with a timer tick, `neurosim.cores.arm_pe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurosim.engine.engine import StepCounters, TimingCosts
from neurosim.graph.graph import Graph
from neurosim.mapping.mapper import HOST, Mapping
from neurosim.programs import KINDS, payload_bits_of
from neurosim.spec.chip import ChipFile

COMPONENTS = ("synapse", "neuron", "network", "static")
BOUNDS = ("dendrite", "synapse", "synmem", "link", "barrier", "messages", "tick")


@dataclass(frozen=True)
class ChipLinks:
    """The system's chip-to-chip links (one per direction between grid neighbours) and the
    links each path crosses, in XY order."""

    names: list[str]               # "c0>c1" per link
    path_ptr: np.ndarray           # int64 [n_paths + 1] into path_links
    path_links: np.ndarray         # int64 link ids crossed, per path
    path_bits: np.ndarray          # int64 [n_paths] bits of a message on the path
    host_paths: np.ndarray         # bool [n_paths] the path starts at the host

    def loads_bits(self, path_msgs: np.ndarray) -> tuple[np.ndarray, int]:
        """Bits carried by each chip-to-chip link, and by the host link, for messages per path."""
        bits = path_msgs * self.path_bits
        per_link = np.bincount(self.path_links, weights=np.repeat(bits, np.diff(self.path_ptr)),
                               minlength=len(self.names))
        return per_link, int(bits[self.host_paths].sum())


def message_bits(chip: ChipFile, graph: Graph, mapping: Mapping) -> np.ndarray:
    """Bits of each neuron's messages: the chip's spike message plus its graded payload."""
    bits = np.full(mapping.n_neurons, chip.chip.noc.message_bits, np.int32)
    for name, pop in graph.populations.items():
        lo = mapping.offsets[name]
        bits[lo:lo + pop.size] += payload_bits_of(KINDS[pop.kind], pop.params)
    return bits


def chip_links(chip: ChipFile, src: np.ndarray, dst: np.ndarray, bits: np.ndarray,
                host: np.ndarray) -> ChipLinks:
    """The links between neighbouring chips, and those each path (from chip ``src`` to ``dst``) crosses."""
    cx, cy = chip.system.chips_x, chip.system.chips_y
    step = {0: 1, 1: -1, 2: -cx, 3: cx}
    exists = [(c, d) for c in range(chip.n_chips) for d in range(4)
              if (d == 0 and c % cx < cx - 1) or (d == 1 and c % cx > 0)
              or (d == 2 and c // cx > 0) or (d == 3 and c // cx < cy - 1)]
    compact = {c * 4 + d: i for i, (c, d) in enumerate(exists)}
    routes = [[compact[i] for i in chip_route(chip, int(s), int(d))] for s, d in zip(src, dst)]
    return ChipLinks([f"c{c}>c{c + step[d]}" for c, d in exists],
                     np.concatenate([[0], np.cumsum([len(x) for x in routes])]).astype(np.int64),
                     np.array([i for x in routes for i in x], np.int64), bits.astype(np.int64), host)


def chip_route(chip: ChipFile, src: int, dst: int) -> list[int]:
    """Link ids (chip * 4 + direction: east, west, north, south) an XY route from chip ``src``
    to chip ``dst`` crosses."""
    cx = chip.system.chips_x
    x, y, tx, ty = src % cx, src // cx, dst % cx, dst // cx
    links = []
    while x != tx:
        step = 1 if tx > x else -1
        links.append((y * cx + x) * 4 + (0 if step > 0 else 1))
        x += step
    while y != ty:
        step = 1 if ty > y else -1
        links.append((y * cx + x) * 4 + (3 if step > 0 else 2))
        y += step
    return links


@dataclass(frozen=True)
class Paths:
    """The distinct paths axons take, with their NoC and link latency and energy (no core's own
    cost), each axon's path, the chip-to-chip links each path crosses, and message sizes."""

    latency_ns: np.ndarray          # [n_paths]
    energy_pj: np.ndarray           # [n_paths]
    from_host: np.ndarray           # bool [n_paths]
    axon_path: np.ndarray           # int32 [n_axons]
    links: ChipLinks
    message_bits: np.ndarray        # int32 [n_neurons]
    host_bits: int                  # bits of the largest message the host sends


def paths(chip: ChipFile, graph: Graph, mapping: Mapping) -> Paths:
    """Each axon's path over the mesh, the chip-to-chip links and the host link, and what a message costs on it."""
    noc, system = chip.chip.noc, chip.system
    r = mapping.routes
    src = np.repeat(np.arange(mapping.n_neurons, dtype=np.int32), np.diff(r.axon_ptr))
    src_core = mapping.core_of[src]
    from_host = (src_core == HOST).astype(np.int8)
    cores_per_chip = chip.cores_per_chip
    src_chip = (np.maximum(src_core, 0) // cores_per_chip).astype(np.int32)     # the host's messages enter chip 0
    dst_chip = (r.axon_core // cores_per_chip).astype(np.int32)
    bits_of_neuron = message_bits(chip, graph, mapping)
    distinct, axon_path = _distinct_rows((r.hops_ew, r.hops_ns, r.links - from_host, from_host, src_chip, dst_chip,
                                          bits_of_neuron[src]))
    del src, src_core, src_chip, dst_chip
    hops_ew, hops_ns, chip_hops, from_host, p_src, p_dst, bits = distinct
    latency = (hops_ew * noc.hop_ns_east_west + hops_ns * noc.hop_ns_north_south
               + chip_hops * system.link.latency_ns + from_host * system.host.latency_ns)
    energy = (hops_ew * noc.hop_pj_east_west + hops_ns * noc.hop_pj_north_south
              + chip_hops * system.link.energy_pj_per_bit * bits + from_host * system.host.energy_pj_per_bit * bits)
    local = (hops_ew + hops_ns + chip_hops + from_host) == 0
    latency = np.where(local, noc.local_ns, latency).astype(np.float64)
    energy = np.where(local, noc.local_pj, energy).astype(np.float64)
    links = chip_links(chip, p_src, p_dst, bits, from_host.astype(bool))
    host_bits = int(bits_of_neuron[mapping.core_of == HOST].max(initial=noc.message_bits))
    return Paths(latency, energy, from_host.astype(bool), axon_path, links, bits_of_neuron, host_bits)


def timing_costs(chip: ChipFile, graph: Graph, mapping: Mapping) -> tuple[TimingCosts, ChipLinks]:
    """Per-op times, the latency and energy of each distinct path an axon takes, and the
    chip-to-chip links each path crosses."""
    p = paths(chip, graph, mapping)
    t, e = chip.core.time_ns, chip.core.energy_pj
    # A core's axon-out stage sends every message but the host's.
    energy = p.energy_pj + np.where(p.from_host, 0.0, e.message_out)
    costs = TimingCosts(t_update_ns=t.neuron_update, t_active_ns=t.neuron_active, t_spike_ns=t.spike_out,
                        t_message_ns=t.message_out, t_message_in_ns=t.message_in, t_synop_ns=t.synop,
                        host_message_ns=p.host_bits / chip.system.host.bandwidth_bits_per_s * 1e9,
                        count_active=bool(t.neuron_active or e.neuron_active),
                        message_bits=p.message_bits, path_latency_ns=p.latency_ns, path_energy_pj=energy,
                        axon_path=p.axon_path)
    return costs, p.links


def _distinct_rows(columns: tuple[np.ndarray, ...]) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The distinct rows of non-negative integer columns, and each row's index among them.

    Rows are numbered in mixed radix; a table over all numbers up to the largest marks those
    present, which for the few hop and link counts of a system is far quicker than sorting.
    """
    radix = [int(col.max(initial=0)) + 1 for col in columns]
    key = np.zeros(len(columns[0]), np.int64)
    for col, base in zip(columns, radix):
        key *= base
        key += col
    if math.prod(radix) <= max(4 * len(key), 1 << 20):
        present = np.zeros(math.prod(radix), bool)
        present[key] = True
        values = np.flatnonzero(present)
        index = (np.cumsum(present) - 1)[key]
    else:
        values, index = np.unique(key, return_inverse=True)
    rows = []
    for base in reversed(radix):
        rows.append(values % base)
        values = values // base
    return tuple(reversed(rows)), index.astype(np.int32)


@dataclass
class StepCost:
    """One step's dynamic energy per core (pJ) by component, each chip's busy time, the
    links' loads and the runtime model's bounds (ns)."""

    synapse_pj: np.ndarray      # [n_cores]
    neuron_pj: np.ndarray       # [n_cores]
    network_pj: np.ndarray      # [n_cores + 1], last entry: the host's messages
    busy_ns: np.ndarray         # [n_cores] the latest of each core's own bounds
    chip_busy_ns: np.ndarray    # [n_chips used]
    link_bits: np.ndarray       # [n_links] bits over each chip-to-chip link
    host_bits: int              # bits over the host link
    bounds_ns: np.ndarray       # [len(BOUNDS)] the step's lower bounds; the barrier's is set by the system
    # kinds that price PEs apart (`neurosim.cores.arm_pe`) add, per core:
    static_pj: np.ndarray | None = None     # energy of the core idling through the rest of the step
    cycles: np.ndarray | None = None        # clock cycles worked
    level: np.ndarray | None = None         # DVFS level index
    overrun: np.ndarray | None = None       # whether its work took longer than the tick
    packets_in: np.ndarray | None = None    # multicast packets received
    packets_out: np.ndarray | None = None   # multicast packets sent
    macs: np.ndarray | None = None          # MAC-array multiply-accumulates


def step_cost(chip: ChipFile, mapping: Mapping, links: ChipLinks, c: StepCounters, neurons_per_core: np.ndarray,
              chip_index: np.ndarray, n_chips: int) -> StepCost:
    e, t = chip.core.energy_pj, chip.core.time_ns
    n = mapping.n_cores
    synapse = c.synops * e.synop + c.synmem_reads * e.synmem_read
    neuron = neurons_per_core * e.neuron_update + c.active * e.neuron_active + c.spikes[:n] * e.spike_out
    network = c.network_pj.copy()
    network[:n] += c.msgs_in * e.message_in
    dendrite_ns = neurons_per_core * t.neuron_update + c.active * t.neuron_active
    synop_ns = c.synops * t.synop
    synmem_ns = c.synmem_reads * t.synmem_read
    core_link_ns = np.maximum(c.bits_in, c.bits_out[:n]) / chip.chip.noc.core_link_bits_per_s * 1e9
    messages_ns = np.maximum(c.neuron_done_ns, c.synapse_done_ns)
    busy = np.maximum.reduce([dendrite_ns, synop_ns, synmem_ns, core_link_ns, messages_ns])
    chip_busy = np.zeros(n_chips)
    np.maximum.at(chip_busy, chip_index, busy)
    link_bits, host_bits = links.loads_bits(c.path_msgs)
    link_ns = max(link_bits.max(initial=0.0) / chip.system.link.bandwidth_bits_per_s * 1e9,
                  host_bits / chip.system.host.bandwidth_bits_per_s * 1e9, core_link_ns.max(initial=0.0))
    bounds = np.array([dendrite_ns.max(initial=0.0), synop_ns.max(initial=0.0), synmem_ns.max(initial=0.0),
                       link_ns, 0.0, messages_ns.max(initial=0.0), 0.0])
    return StepCost(synapse, neuron, network, busy, chip_busy, link_bits, host_bits, bounds)


def binding_bound(bounds_ns: np.ndarray) -> int:
    """Which bound sets a step: the largest, the earlier in `BOUNDS` on a tie (the per-message
    timeline is never shorter than a core's own op counts, so ties name the op)."""
    best = bounds_ns.max()
    return int(np.flatnonzero(bounds_ns >= best * (1 - 1e-9))[0])


class NeurocoreModel:
    """Costs of a mapped graph on a chip of neurocores: the paths' costs for the engine, and
    `step_cost` for each step's counters."""

    barrier = True          # the system adds the barrier across the chips used
    per_message = True      # the engine's per-message timeline is one of the step's bounds

    def __init__(self, chip: ChipFile, graph: Graph, mapping: Mapping):
        self.chip, self.mapping = chip, mapping
        self.costs, self.links = timing_costs(chip, graph, mapping)
        used, self.chip_index = np.unique(mapping.core_chip, return_inverse=True)
        self.n_chips = len(used)
        self.neurons_per_core = (mapping.core_neuron_hi - mapping.core_neuron_lo).astype(np.float64)

    def step_cost(self, c: StepCounters, payload: np.ndarray) -> StepCost:
        return step_cost(self.chip, self.mapping, self.links, c, self.neurons_per_core, self.chip_index, self.n_chips)
