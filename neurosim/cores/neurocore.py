"""The `neurocore` kind (Loihi-style): its per-op costs and its barrier-synchronised step.

Energy per timestep, per core, by component:

- synapse: synaptic ops x ``synop`` + synaptic-memory words read x ``synmem_read``
- neuron:  neurons x ``neuron_update`` + active updates x ``neuron_active`` + events x ``spike_out``;
  with the core's ``program_ops``, each neuron's update costs its program's operations instead
  (`program_costs`: per class, its count per update x the class's energy), every step, as the
  core runs every neuron's program every step
- network: messages sent by cores x ``message_out`` + messages received x ``message_in``,
  and per message its on-chip hops (E-W and N-S
  priced apart), its link crossings (its bits x the link's pJ/bit), or ``noc.local_pj``
  within one router
- static:  added at the system level from the step's duration

Time per timestep follows the Loihi 2 runtime model (Timcheck, Pierro, Shrestha 2026): a
step takes at least as long as each of

- dendrite: the busiest core's neuron updates x ``time_ns.neuron_update`` (with
  ``program_ops``: its neurons' program times summed), and active ones x ``time_ns.neuron_active``
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

from dataclasses import dataclass
from typing import NamedTuple

import numba as nb
import numpy as np

from neurosim.engine.engine import StepCounters, TimingCosts
from neurosim.graph.graph import Graph
from neurosim.mapping.mapper import HOST, Mapping
from neurosim.mapping.routes import hop_counts, index_type
from neurosim.programs import KINDS, OP_CLASSES, ops_of, payload_bits_of
from neurosim.spec.chip import ChipFile, NeurocoreSpec

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
    hops: np.ndarray                # int64 [n_paths] on-chip hops
    crossings: np.ndarray           # int64 [n_paths] link crossings (the host link counts as one)
    axon_path: np.ndarray           # [n_axons] (uint16 when the paths are few enough)
    links: ChipLinks
    message_bits: np.ndarray        # int32 [n_neurons]
    host_bits: int                  # bits of the largest message the host sends


@nb.njit(cache=True, nogil=True, inline="always")
def path_key(n, a, axon_core, core_of, core_x, core_y, core_chip, bits_of_neuron, routers_x, routers_y, radix):
    """Axon ``a`` (of neuron ``n``)'s path: its on-chip E-W and N-S hops, link crossings, whether
    it leaves the host, the chips at its ends and its message's bits, as one mixed-radix key."""
    src = core_of[n]
    ew, ns, links = hop_counts(src, axon_core[a], core_x, core_y, routers_x, routers_y)
    host = 1 if src < 0 else 0
    key = np.int64(ew)
    key = key * radix[1] + ns
    key = key * radix[2] + links - host
    key = key * radix[3] + host
    key = key * radix[4] + (core_chip[src] if src >= 0 else 0)
    key = key * radix[5] + core_chip[axon_core[a]]
    return key * radix[6] + bits_of_neuron[n]


@nb.njit(cache=True)
def distinct_paths(axon_ptr, axon_core, core_of, core_x, core_y, core_chip, bits_of_neuron, routers_x, routers_y,
                   radix):
    """The distinct `path_key` values of the axons, ascending, and each one's index among them."""
    index = nb.typed.Dict.empty(nb.types.int64, nb.types.int64)
    for n in range(axon_ptr.shape[0] - 1):
        for a in range(axon_ptr[n], axon_ptr[n + 1]):
            index[path_key(n, a, axon_core, core_of, core_x, core_y, core_chip, bits_of_neuron, routers_x, routers_y,
                           radix)] = 0
    keys = np.empty(len(index), np.int64)
    for i, key in enumerate(index.keys()):
        keys[i] = key
    keys.sort()
    for i in range(keys.shape[0]):
        index[keys[i]] = i
    return keys, index


@nb.njit(cache=True)
def number_paths(axon_ptr, axon_core, core_of, core_x, core_y, core_chip, bits_of_neuron, routers_x, routers_y, radix,
                 index, axon_path):
    """Each axon's path, its key's index (`distinct_paths`)."""
    for n in range(axon_ptr.shape[0] - 1):
        for a in range(axon_ptr[n], axon_ptr[n + 1]):
            axon_path[a] = index[path_key(n, a, axon_core, core_of, core_x, core_y, core_chip, bits_of_neuron,
                                          routers_x, routers_y, radix)]


def paths(chip: ChipFile, graph: Graph, mapping: Mapping) -> Paths:
    """Each axon's path over the mesh, the chip-to-chip links and the host link, and what a message costs on it."""
    noc, system, mesh = chip.chip.noc, chip.system, chip.chip.mesh
    r = mapping.routes
    bits_of_neuron = message_bits(chip, graph, mapping)
    grid_x, grid_y = mesh.routers_x * system.chips_x, mesh.routers_y * system.chips_y
    radix = (grid_x, grid_y, system.chips_x + system.chips_y + 1, 2, chip.n_chips, chip.n_chips,
             int(bits_of_neuron.max(initial=0)) + 1)
    where = (r.axon_ptr, r.axon_core, mapping.core_of, mapping.core_x, mapping.core_y, mapping.core_chip, bits_of_neuron,
             mesh.routers_x, mesh.routers_y, radix)
    keys, index = distinct_paths(*where)
    axon_path = np.empty(r.n_axons, index_type(max(len(keys) - 1, 0)))
    number_paths(*where, index, axon_path)
    del index
    columns = []
    for base in reversed(radix):
        columns.append(keys % base)
        keys = keys // base
    hops_ew, hops_ns, chip_hops, from_host, p_src, p_dst, bits = reversed(columns)
    latency = (hops_ew * noc.hop_ns_east_west + hops_ns * noc.hop_ns_north_south
               + chip_hops * system.link.latency_ns + from_host * system.host.latency_ns)
    energy = (hops_ew * noc.hop_pj_east_west + hops_ns * noc.hop_pj_north_south
              + chip_hops * system.link.energy_pj_per_bit * bits + from_host * system.host.energy_pj_per_bit * bits)
    local = (hops_ew + hops_ns + chip_hops + from_host) == 0
    latency = np.where(local, noc.local_ns, latency).astype(np.float64)
    energy = np.where(local, noc.local_pj, energy).astype(np.float64)
    links = chip_links(chip, p_src, p_dst, bits, from_host.astype(bool))
    host_bits = int(bits_of_neuron[mapping.core_of == HOST].max(initial=noc.message_bits))
    return Paths(latency, energy, from_host.astype(bool), hops_ew + hops_ns, chip_hops + from_host, axon_path, links,
                 bits_of_neuron, host_bits)


def timing_costs(chip: ChipFile, graph: Graph, mapping: Mapping) -> tuple[TimingCosts, ChipLinks]:
    """Per-op times (each neuron's update its program's, with ``program_ops``), the latency and
    energy of each distinct path an axon takes, and the chip-to-chip links each path crosses."""
    p = paths(chip, graph, mapping)
    t, e = chip.core.time_ns, chip.core.energy_pj
    # A core's axon-out stage sends every message but the host's.
    energy = p.energy_pj + np.where(p.from_host, 0.0, e.message_out)
    per_neuron = neuron_update_costs(chip, graph, mapping)
    costs = TimingCosts(t_update_ns=t.neuron_update, t_active_ns=t.neuron_active, t_spike_ns=t.spike_out,
                        t_message_ns=t.message_out, t_message_in_ns=t.message_in, t_synop_ns=t.synop,
                        host_message_ns=p.host_bits / chip.system.host.bandwidth_bits_per_s * 1e9,
                        count_active=bool(t.neuron_active or e.neuron_active),
                        message_bits=p.message_bits, path_latency_ns=p.latency_ns, path_energy_pj=energy,
                        path_hops=p.hops, path_crossings=p.crossings, axon_path=p.axon_path,
                        update_ns=None if per_neuron is None else per_neuron[0])
    return costs, p.links


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


@dataclass(frozen=True)
class ProgramCost:
    """One population's neuron program as a neurocore prices it: its operations per update by
    class (`neurosim.programs.ops`; None for a kind that does not count them) and one update's
    time and energy (the flat ``neuron_update`` without the core's ``program_ops``)."""

    population: str
    kind: str
    ops: dict[str, int] | None
    time_ns: float
    energy_pj: float


def program_costs(chip: ChipFile, graph: Graph) -> list[ProgramCost]:
    """Each population's `ProgramCost` on the chip's neurocores."""
    core = chip.core
    priced = core.program_ops if isinstance(core, NeurocoreSpec) else None
    out = []
    for name, pop in graph.populations.items():
        ops = ops_of(KINDS[pop.kind], pop.params)
        if priced is None or ops is None:
            time_ns, energy_pj = core.time_ns.neuron_update, core.energy_pj.neuron_update
        else:
            time_ns = sum(ops[c] * getattr(priced.time_ns, c) for c in OP_CLASSES)
            energy_pj = sum(ops[c] * getattr(priced.energy_pj, c) for c in OP_CLASSES)
        out.append(ProgramCost(name, pop.kind, ops, float(time_ns), float(energy_pj)))
    return out


def neuron_update_costs(chip: ChipFile, graph: Graph, mapping: Mapping) -> tuple[np.ndarray, np.ndarray] | None:
    """Per neuron the time (ns) and energy (pJ) of its program's update (``program_ops``), or None
    where the chip prices every update as ``neuron_update``."""
    if chip.core.program_ops is None:
        return None
    time_ns, energy_pj = np.zeros(mapping.n_neurons), np.zeros(mapping.n_neurons)
    for cost in program_costs(chip, graph):
        lo = mapping.offsets[cost.population]
        hi = lo + graph.populations[cost.population].size
        time_ns[lo:hi], energy_pj[lo:hi] = cost.time_ns, cost.energy_pj
    return time_ns, energy_pj


def update_costs(chip: ChipFile, graph: Graph, mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Per core the time (ns) and energy (pJ) of one step's neuron updates: its neurons x
    ``neuron_update``, or with ``program_ops`` its neurons' program costs summed."""
    neurons = mapping.core_neurons.astype(np.float64)
    t, e = chip.core.time_ns, chip.core.energy_pj
    per_neuron = neuron_update_costs(chip, graph, mapping)
    if per_neuron is None:
        return neurons * t.neuron_update, neurons * e.neuron_update
    time_ns, energy_pj = per_neuron
    on_core = mapping.core_of >= 0
    cores = mapping.core_of[on_core]
    return (np.bincount(cores, weights=time_ns[on_core], minlength=mapping.n_cores)[:mapping.n_cores],
            np.bincount(cores, weights=energy_pj[on_core], minlength=mapping.n_cores)[:mapping.n_cores])


def programs_group(chip: ChipFile, graph: Graph) -> dict:
    """The trace's ``programs`` group: per population its kind, operations per update by class,
    and one update's time and energy."""
    costs = program_costs(chip, graph)
    counts = np.array([[c.ops[k] if c.ops is not None else -1 for k in OP_CLASSES] for c in costs], np.int64)
    return {"names": np.array([c.population for c in costs]), "kinds": np.array([c.kind for c in costs]),
            "ops": counts.reshape(len(costs), len(OP_CLASSES)),
            "update_ns": np.array([c.time_ns for c in costs]), "update_pj": np.array([c.energy_pj for c in costs]),
            "@attrs": {"op_classes": ", ".join(OP_CLASSES),
                       "priced_by": "program_ops" if chip.core.program_ops is not None else "neuron_update"}}


class CostTable(NamedTuple):
    """What `cost_kernel` reads: a neurocore's per-op figures, and what the mapping fixes."""

    energy_pj: tuple[float, ...]     # synop, synmem_read, neuron_update, neuron_active, spike_out, message_in
    time_ns: tuple[float, ...]       # neuron_update, neuron_active, synop, synmem_read
    bits_per_s: tuple[float, ...]    # a core's link to its router, a chip-to-chip link, the host link
    neurons: np.ndarray              # float64 [n_cores]
    update_ns: np.ndarray            # float64 [n_cores] a step's neuron updates (`update_costs`)
    update_pj: np.ndarray            # float64 [n_cores]
    chip_index: np.ndarray           # int64 [n_cores] among the chips used
    path_bits: np.ndarray            # int64 [n_paths] bits of a message on each path
    path_ptr: np.ndarray             # int64 [n_paths + 1] into path_links
    path_links: np.ndarray           # int64 chip-to-chip links each path crosses
    host_paths: np.ndarray           # bool [n_paths]


class CostArrays(NamedTuple):
    """One step's cost, as `StepCost` has it (``host_bits``: one entry)."""

    synapse_pj: np.ndarray
    neuron_pj: np.ndarray
    network_pj: np.ndarray
    busy_ns: np.ndarray
    chip_busy_ns: np.ndarray
    link_bits: np.ndarray
    host_bits: np.ndarray
    bounds_ns: np.ndarray


def cost_table(chip: ChipFile, links: ChipLinks, neurons_per_core: np.ndarray, chip_index: np.ndarray,
               updates: tuple[np.ndarray, np.ndarray] | None = None) -> CostTable:
    """The table of a mapping's costs; ``updates``: per core a step's neuron updates' time and
    energy (`update_costs`), else neurons x ``neuron_update``."""
    e, t = chip.core.energy_pj, chip.core.time_ns
    neurons = np.asarray(neurons_per_core, np.float64)
    update_ns, update_pj = updates if updates is not None else (neurons * t.neuron_update, neurons * e.neuron_update)
    return CostTable((e.synop, e.synmem_read, e.neuron_update, e.neuron_active, e.spike_out, e.message_in),
                     (t.neuron_update, t.neuron_active, t.synop, t.synmem_read),
                     (chip.chip.noc.core_link_bits_per_s, chip.system.link.bandwidth_bits_per_s,
                      chip.system.host.bandwidth_bits_per_s),
                     neurons, np.asarray(update_ns, np.float64), np.asarray(update_pj, np.float64),
                     np.asarray(chip_index, np.int64),
                     links.path_bits.astype(np.int64), links.path_ptr.astype(np.int64),
                     links.path_links.astype(np.int64), links.host_paths.astype(bool))


def cost_arrays(n_cores: int, n_chips: int, n_links: int) -> CostArrays:
    return CostArrays(np.zeros(n_cores), np.zeros(n_cores), np.zeros(n_cores + 1), np.zeros(n_cores), np.zeros(n_chips),
                      np.zeros(n_links), np.zeros(1, np.int64), np.zeros(len(BOUNDS)))


@nb.njit(cache=True, nogil=True)
def cost_kernel(k, synops, reads, active, spikes, msgs_in, bits_in, bits_out, network_pj, path_msgs, neuron_done_ns,
                synapse_done_ns, out):
    """One step's energy per core by component, busy time per core and chip, link loads and the
    runtime model's bounds (see the module's docstring), from the engine's counters, into ``out``."""
    e_synop, e_read, _e_update, e_active, e_spike, e_message_in = k.energy_pj
    _t_update, t_active, t_synop, t_read = k.time_ns
    core_bps, link_bps, host_bps = k.bits_per_s
    n = synops.shape[0]
    dendrite_max = synop_max = read_max = core_link_max = messages_max = 0.0
    out.chip_busy_ns[:] = 0.0
    for c in range(n):
        out.synapse_pj[c] = synops[c] * e_synop + reads[c] * e_read
        out.neuron_pj[c] = k.update_pj[c] + active[c] * e_active + spikes[c] * e_spike
        out.network_pj[c] = network_pj[c] + msgs_in[c] * e_message_in
        dendrite_ns = k.update_ns[c] + active[c] * t_active
        synop_ns = synops[c] * t_synop
        read_ns = reads[c] * t_read
        core_link_ns = max(bits_in[c], bits_out[c]) / core_bps * 1e9
        messages_ns = max(neuron_done_ns[c], synapse_done_ns[c])
        busy = max(dendrite_ns, synop_ns, read_ns, core_link_ns, messages_ns)
        out.busy_ns[c] = busy
        out.chip_busy_ns[k.chip_index[c]] = max(out.chip_busy_ns[k.chip_index[c]], busy)
        dendrite_max, synop_max = max(dendrite_max, dendrite_ns), max(synop_max, synop_ns)
        read_max, core_link_max = max(read_max, read_ns), max(core_link_max, core_link_ns)
        messages_max = max(messages_max, messages_ns)
    out.network_pj[n] = network_pj[n]
    out.link_bits[:] = 0.0
    host_bits = 0
    for path in range(path_msgs.shape[0]):
        bits = path_msgs[path] * k.path_bits[path]
        for i in range(k.path_ptr[path], k.path_ptr[path + 1]):
            out.link_bits[k.path_links[i]] += bits
        if k.host_paths[path]:
            host_bits += bits
    out.host_bits[0] = host_bits
    link_max = 0.0
    for i in range(out.link_bits.shape[0]):
        link_max = max(link_max, out.link_bits[i])
    link_ns = max(link_max / link_bps * 1e9, host_bits / host_bps * 1e9, core_link_max)
    bounds = (dendrite_max, synop_max, read_max, link_ns, 0.0, messages_max, 0.0)
    for i in range(len(bounds)):
        out.bounds_ns[i] = bounds[i]


def step_cost(chip: ChipFile, mapping: Mapping, links: ChipLinks, c: StepCounters, neurons_per_core: np.ndarray,
              chip_index: np.ndarray, n_chips: int, table: CostTable | None = None) -> StepCost:
    """One step's `StepCost` from the engine's counters ``c`` (`cost_kernel`; ``table`` saves
    making its `CostTable` anew; without one, neuron updates cost ``neuron_update`` each)."""
    n = mapping.n_cores
    table = table if table is not None else cost_table(chip, links, neurons_per_core, chip_index)
    out = cost_arrays(n, n_chips, len(links.names))
    cost_kernel(table, c.synops, c.synmem_reads, c.active, c.spikes, c.msgs_in, c.bits_in, c.bits_out, c.network_pj,
                c.path_msgs, c.neuron_done_ns, c.synapse_done_ns, out)
    # as `ChipLinks.loads_bits` has them: integers when no path crosses a link
    link_bits = out.link_bits if len(links.path_links) else np.zeros(len(links.names), np.int64)
    return StepCost(out.synapse_pj, out.neuron_pj, out.network_pj, out.busy_ns, out.chip_busy_ns, link_bits,
                    int(out.host_bits[0]), out.bounds_ns)


def binding_bound(bounds_ns: np.ndarray) -> int:
    """Which bound sets a step: the largest, the earlier in `BOUNDS` on a tie (the per-message
    timeline is never shorter than a core's own op counts, so ties name the op)."""
    return int(binding_bounds(bounds_ns[None, :])[0])


def binding_bounds(bounds_ns: np.ndarray) -> np.ndarray:
    """`binding_bound` of each row of ``bounds_ns`` ([steps, len(BOUNDS)])."""
    best = bounds_ns.max(axis=1, keepdims=True)
    return np.argmax(bounds_ns >= best * (1 - 1e-9), axis=1).astype(np.int64)


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
        self.neurons_per_core = mapping.core_neurons.astype(np.float64)
        self.table = cost_table(chip, self.links, self.neurons_per_core, self.chip_index,
                                update_costs(chip, graph, mapping))

    def step_cost(self, c: StepCounters, payload: np.ndarray) -> StepCost:
        return step_cost(self.chip, self.mapping, self.links, c, self.neurons_per_core, self.chip_index, self.n_chips,
                         self.table)
