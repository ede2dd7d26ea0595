"""The `arm_pe` kind (SpiNNaker 2): neurons and synapses are software on ARM cores, so a step
costs clock cycles, and cycles cost time and energy at the PE's DVFS level.

Cycles per PE and step (``cycles`` in the chip file; the counts come from the engine):

- neuron: ``tick`` + per neuron updated its kind's ``neuron_update`` + ``packet_out`` per multicast
  packet sent (one per event of a neuron with targets; the router copies it to every
  destination PE)
- synapse: ``packet_in`` per packet received (a source's event reaching this PE) + ``row``
  per synaptic row read (one per projection the packet reaches here) + ``synapse`` per
  synapse in those rows + ``dma_setup`` per row fetched from DRAM (``synapses_in: dram``)

With ``mac_array.dense_layers``, a dense projection whose weights and payloads fit the
array's operands runs on the MAC array instead: every step it computes the whole
matrix-vector product for the PE's targets (``ceil(sources x targets / macs)`` cycles and as
many MACs per ``macs``), and its rows and synapses are not read one by one.

Time: a PE's cycles over its level's clock. ``timing.mode``:

- ``ticked``: a step is one timer tick (``tick_ns``, 1 ms on SpiNNaker 2). A PE whose work
  takes longer overruns: it is reported per step (``cores/overrun``, ``steps/late_ns``) and
  the step still lasts one tick (there is no barrier: the chip's timer does not wait).
- ``afap``: as fast as possible: a step ends when the slowest PE has finished and a
  barrier of ``sync_ns`` has run.

``timing.dvfs`` names the level every PE runs at, or ``auto``: per tick and per PE the
slowest level that finishes within the tick (the fastest if none does).

Energy per PE and step: cycles x the level's ``cycle_pj`` (neuron and synapse components),
MACs x ``mac_pj`` and DRAM bits x the DRAM's pJ/bit (synapse), packets over the NoC and
the links (network: per packet and destination PE, its hops and link crossings; the loads of
the chip-to-chip and host links count a packet once per destination chip), and the
level's ``idle_w`` over the rest of the step (static). PEs the mapping leaves unused are
powered off; the chip's ``static_power_w`` (its baseline with every PE off) is added at
the system level from the step's duration. `ArmPeModel.step_parts` also splits the energy:
the cycles that load or store memory (``cycles.memory``, a part of each operation's) at
``cycle_pj`` are the SRAM's share, the DRAM bits the DRAM's, and the host's packets' share of
the host link is given apart.

Work beside the graph's (`PeWork`): a table the PEs read as software, an embedding's row or a
head's rows for the events of the layer below and its argmax, in PE SRAM or by DMA from DRAM
(`ArmPeModel.place_tables` puts each where it fits), joins a step's cycles before its DVFS
level is picked. `transaction` prices a step of the host's per-token loop over the host link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.cores.neurocore import ChipLinks, Paths, StepCost, paths
from neurosim.engine.engine import StepCounters, TimingCosts
from neurosim.errors import UserError
from neurosim.graph.graph import Dense, Graph
from neurosim.mapping.mapper import HOST, Mapping
from neurosim.programs import KINDS, payload_bits_of
from neurosim.spec.chip import ArmPeHostLoop, ArmPeSpec, ChipFile, LinkSpec

FP32_BITS = 32              # a table's values, as the PEs' fp32 arithmetic reads them


@dataclass(frozen=True)
class PeWork:
    """Work a step adds on the PEs beside the graph's, per PE: cycles (of them ``memory_cycles``
    loads and stores), DRAM bits read by DMA, packets received and sent, and the NoC energy of the
    packets each PE sends."""

    neuron_cycles: np.ndarray
    synapse_cycles: np.ndarray
    memory_cycles: np.ndarray
    dram_bits: np.ndarray
    packets_in: np.ndarray
    packets_out: np.ndarray
    network_pj: np.ndarray

    @classmethod
    def nothing(cls, n: int) -> PeWork:
        return cls(*(np.zeros(n) for _ in range(7)))


@dataclass(frozen=True)
class PeSplit:
    """A step's energy beside `StepCost`'s components, per PE: the memory cycles' (SRAM) and the
    DRAM's (both inside its synapse and neuron energy), the DRAM bits read; and the host link's
    share of the energy of the host's packets (inside its network energy)."""

    memory_pj: np.ndarray
    dram_pj: np.ndarray
    dram_bits: np.ndarray
    host_link_pj: float


@dataclass(frozen=True)
class Transaction:
    """One step of the host's loop over the host link: its time and the bits and energy on the wire."""

    time_ns: float
    bits: float
    energy_pj: float


def transaction(host: LinkSpec, loop: ArmPeHostLoop, sent_bytes: int, received_bytes: int) -> Transaction:
    """A request carrying ``sent_bytes`` and a reply carrying ``received_bytes``, each in datagrams
    with a command and headers: two latencies of the host link and the bits at its bandwidth."""
    room = loop.datagram_payload_bytes - loop.command_bytes

    def wire(payload: int) -> int:
        datagrams = max(1, -(-payload // room))
        return payload + datagrams * (loop.command_bytes + loop.header_bytes)

    bits = 8.0 * (wire(sent_bytes) + wire(received_bytes))
    return Transaction(2 * host.latency_ns + bits / host.bandwidth_bits_per_s * 1e9, bits,
                       bits * host.energy_pj_per_bit)


@dataclass(frozen=True)
class DenseOnArray:
    """Dense projections that run on the MAC array: per projection its source population's
    neuron range and its targets on each PE."""

    sources: list[tuple[int, int]]      # [projection] (lo, hi) of the source population
    targets: np.ndarray                 # int64 [projection, n_cores] targets on each PE
    macs: np.ndarray                    # float64 [n_cores] MACs per step
    cycles: np.ndarray                  # float64 [n_cores] array cycles per step
    weight_bits: np.ndarray             # float64 [n_cores] weight bits read per step
    reads: np.ndarray                   # float64 [projection, n_cores] memory words a row of it reads per PE


class ArmPeModel:
    """Costs of a mapped graph on a chip of ARM PEs; `step_cost` turns one step's counters into
    cycles, time and energy (see the module's docstring)."""

    barrier = False         # set for afap timing: the system adds the barrier across chips
    per_message = False     # no per-message timeline: a PE's time is its cycles

    def __init__(self, chip: ChipFile, graph: Graph, mapping: Mapping):
        core: ArmPeSpec = chip.core
        self.chip, self.graph, self.mapping, self.core = chip, graph, mapping, core
        n = mapping.n_cores
        self.n_cores = n
        self.levels = core.dvfs
        self.clock_hz = np.array([level.clock_hz for level in core.dvfs])
        self.cycle_pj = np.array([level.cycle_pj for level in core.dvfs])
        self.mac_pj = np.array([level.mac_pj for level in core.dvfs])
        self.idle_w = np.array([level.idle_w for level in core.dvfs])
        self.fixed_level = None if core.timing.dvfs == "auto" else [lv.name for lv in core.dvfs].index(core.timing.dvfs)
        self.ticked = core.timing.mode == "ticked"
        self.barrier = not self.ticked

        p = paths(chip, graph, mapping)
        self.links: ChipLinks = p.links
        self.costs = TimingCosts(t_update_ns=0.0, t_active_ns=0.0, t_spike_ns=0.0, t_message_ns=0.0,
                                 t_message_in_ns=0.0, t_synop_ns=0.0, host_message_ns=0.0, count_active=False,
                                 message_bits=p.message_bits, path_latency_ns=p.latency_ns,
                                 path_energy_pj=p.energy_pj, path_hops=p.hops, path_crossings=p.crossings,
                                 axon_path=p.axon_path)
        self._packets(mapping, p)

        # per population and PE: its neurons' update cycles in a step in which it updates
        names = list(graph.populations)
        self.update_cycles = np.zeros((len(names), n), np.float64)
        self.update_memory = np.zeros((len(names), n), np.float64)       # of those, loads and stores
        for s in mapping.slices:
            if s.core >= 0:
                kind = graph.populations[s.population].kind
                self.update_cycles[names.index(s.population), s.core] += (s.hi - s.lo) * core.cycles.update(kind)
                self.update_memory[names.index(s.population), s.core] += (s.hi - s.lo) * core.cycles.memory.update(kind)
        self.dense = self._dense_on_array()
        self.chip_index = np.unique(mapping.core_chip, return_inverse=True)[1]
        self.n_chips = int(self.chip_index.max(initial=-1)) + 1
        self.pops = [(mapping.offsets[name], mapping.offsets[name] + pop.size) for name, pop in graph.populations.items()]
        word = core.synapses.word_bits
        floats = mapping.routes.syn_weight.dtype.kind == "f"
        self.synapse_cycles = core.cycles.synapse_float if floats else core.cycles.synapse_int
        self.synapse_memory = core.cycles.memory.synapse_float if floats else core.cycles.memory.synapse_int
        self.dram = core.synapses_in == "dram"
        self.dram_ns_per_bit = 1e9 / core.dram.bandwidth_bits_per_s
        self.word_bits = word

    # ------------------------------------------------------------------------------------------
    # what the mapping fixes

    def _packets(self, mapping: Mapping, p: Paths) -> None:
        """Each neuron's packets: one per distinct destination PE of its axons (a multicast
        packet reaches a PE once, whatever number of projections it serves there); the host
        link's share of a host neuron's; what a packet's delivery to a PE costs on average."""
        r, path_energy_pj, axon_path = mapping.routes, p.energy_pj, p.axon_path
        n_axons = r.n_axons
        first = np.ones(n_axons, bool)
        if n_axons:
            first[1:] = r.axon_core[1:] != r.axon_core[:-1]
            first[r.axon_ptr[:-1][np.diff(r.axon_ptr) > 0]] = True
        self.pair_core = r.axon_core[first].astype(np.int64)
        self.pair_path = axon_path[first].astype(np.int64)
        count = np.concatenate([[0], np.cumsum(first, dtype=np.int64)])
        self.pair_ptr = count[r.axon_ptr]
        pair_pj = path_energy_pj[self.pair_path]
        total = np.concatenate([[0.0], np.cumsum(pair_pj)])
        self.packet_pj = total[self.pair_ptr[1:]] - total[self.pair_ptr[:-1]]     # per neuron, all its packets
        self.sends = np.diff(self.pair_ptr) > 0                                     # a neuron with targets
        # Between chips a packet travels once per destination chip (the routers copy it on the
        # chip it reaches), on the path of its first destination PE there.
        pair_chip = mapping.core_chip[self.pair_core]
        owner = np.repeat(np.arange(len(self.pair_ptr) - 1), np.diff(self.pair_ptr))
        first_on_chip = np.ones(len(pair_chip), bool)
        first_on_chip[1:] = (pair_chip[1:] != pair_chip[:-1]) | (owner[1:] != owner[:-1])
        self.chip_path = self.pair_path[first_on_chip]
        self.chip_ptr = np.concatenate([[0], np.cumsum(first_on_chip, dtype=np.int64)])[self.pair_ptr]
        host_bits = p.from_host[self.pair_path] * p.message_bits[owner].astype(np.float64)
        self.host_link_pj = np.bincount(owner, weights=host_bits * self.chip.system.host.energy_pj_per_bit,
                                        minlength=len(self.pair_ptr) - 1)
        on_chip = mapping.core_of[owner] != HOST
        self.delivery_pj = (float(pair_pj[on_chip].mean()) if on_chip.any() else self.chip.chip.noc.local_pj)

    def _dense_on_array(self) -> DenseOnArray | None:
        core, graph, mapping = self.core, self.graph, self.mapping
        if not core.mac_array.dense_layers:
            return None
        chosen = [proj for proj in graph.projections.values()
                  if isinstance(proj, Dense) and proj.weight_bits <= core.mac_array.operand_bits
                  and payload_bits_of(KINDS[graph.populations[proj.source].kind],
                                      graph.populations[proj.source].params) <= core.mac_array.operand_bits]
        targets = np.zeros((len(chosen), self.n_cores), np.int64)
        sources = []
        for i, proj in enumerate(chosen):
            lo = mapping.offsets[proj.target]
            cores = mapping.core_of[lo:lo + graph.populations[proj.target].size]
            targets[i] = np.bincount(cores, minlength=self.n_cores)[:self.n_cores]
            s0 = mapping.offsets[proj.source]
            sources.append((s0, s0 + graph.populations[proj.source].size))
        n_src = np.array([hi - lo for lo, hi in sources], np.float64).reshape(-1, 1)
        macs = (n_src * targets).sum(axis=0)
        cycles = np.ceil(n_src * targets / core.mac_array.macs).sum(axis=0)
        bits = np.array([[p.weight_bits] for p in chosen] or np.zeros((0, 1)), np.float64)
        weight_bits = (n_src * targets * bits).sum(axis=0)
        reads = np.ceil(targets * bits / core.synapses.word_bits)
        return DenseOnArray(sources, targets, macs.astype(np.float64), cycles, weight_bits, reads)

    # ------------------------------------------------------------------------------------------
    # one step

    def step_cost(self, c: StepCounters, payload: np.ndarray, extra: PeWork | None = None) -> StepCost:
        """The step's cost from the engine's counters ``c`` and its ``payload`` (with ``extra``
        work beside the graph's)."""
        return self.step_parts(c, payload, extra)[0]

    def step_parts(self, c: StepCounters, payload: np.ndarray,
                   extra: PeWork | None = None) -> tuple[StepCost, PeSplit]:
        """`step_cost` and the split of its energy (`PeSplit`)."""
        core, cyc, mem, n = self.core, self.core.cycles, self.core.cycles.memory, self.n_cores
        events = np.flatnonzero(payload)
        ptr = self.pair_ptr
        counts = ptr[events + 1] - ptr[events]
        pairs = np.repeat(ptr[events] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        packets_in = np.bincount(self.pair_core[pairs], minlength=n)[:n].astype(np.float64)
        cptr = self.chip_ptr
        chip_counts = cptr[events + 1] - cptr[events]
        chip_pairs = (np.repeat(cptr[events] - np.concatenate([[0], np.cumsum(chip_counts)[:-1]]), chip_counts)
                      + np.arange(chip_counts.sum()))
        path_msgs = np.bincount(self.chip_path[chip_pairs], minlength=len(self.costs.path_latency_ns))
        src_core = self.mapping.core_of[events]
        src_index = np.where(src_core == HOST, n, src_core)
        packets_out = np.bincount(src_index[self.sends[events]], minlength=n + 1).astype(np.float64)
        network = np.bincount(src_index, weights=self.packet_pj[events], minlength=n + 1)

        rows, synapses, reads = c.msgs_in.astype(np.float64), c.synops.astype(np.float64), c.synmem_reads.astype(np.float64)
        macs = mac_cycles = np.zeros(n)
        dram_bits = np.zeros(n)
        if self.dense is not None and len(self.dense.sources):
            fired = np.array([np.count_nonzero(payload[lo:hi]) for lo, hi in self.dense.sources], np.float64)
            on_array = self.dense.targets
            synapses = synapses - fired @ on_array
            rows = rows - fired @ (on_array > 0)
            reads = reads - fired @ self.dense.reads
            macs, mac_cycles = self.dense.macs, self.dense.cycles
            if self.dram:
                dram_bits = dram_bits + self.dense.weight_bits
        dma = rows if self.dram else np.zeros(n)
        if self.dram:
            dram_bits = dram_bits + reads * self.word_bits

        updated = c.updated if c.updated is not None else np.ones(len(self.update_cycles), bool)
        neuron_cycles = cyc.tick + updated @ self.update_cycles + packets_out[:n] * cyc.packet_out
        synapse_cycles = (packets_in * cyc.packet_in + rows * cyc.row + synapses * self.synapse_cycles
                          + dma * cyc.dma_setup + mac_cycles)
        memory_cycles = (mem.tick + updated @ self.update_memory + packets_out[:n] * mem.packet_out
                         + packets_in * mem.packet_in + rows * mem.row + synapses * self.synapse_memory
                         + dma * mem.dma_setup)
        if extra is not None:
            neuron_cycles = neuron_cycles + extra.neuron_cycles
            synapse_cycles = synapse_cycles + extra.synapse_cycles
            memory_cycles = memory_cycles + extra.memory_cycles
            dram_bits = dram_bits + extra.dram_bits
            packets_in = packets_in + extra.packets_in
            packets_out[:n] += extra.packets_out
            network = network + np.append(extra.network_pj, 0.0)
        cycles = neuron_cycles + synapse_cycles
        dram_ns = np.zeros(n)
        if dram_bits.any():
            per_chip = np.bincount(self.chip_index, weights=dram_bits, minlength=self.n_chips)
            dram_ns = (per_chip * self.dram_ns_per_bit)[self.chip_index] * (dram_bits > 0)

        tick = core.timing.tick_ns
        if self.fixed_level is not None:
            level = np.full(n, self.fixed_level, np.int64)
        else:      # the slowest level that finishes in the tick, else the fastest
            fits = np.maximum(cycles[:, None] / self.clock_hz[None, :] * 1e9, dram_ns[:, None]) <= tick
            level = np.where(fits.any(axis=1), fits.argmax(axis=1), len(self.levels) - 1)
        ns_per_cycle = 1e9 / self.clock_hz[level]
        busy = np.maximum(cycles * ns_per_cycle, dram_ns)
        chip_busy = np.zeros(self.n_chips)
        np.maximum.at(chip_busy, self.chip_index, busy)
        if self.ticked:
            step_ns = np.full(self.n_chips, tick)
        else:
            step_ns = chip_busy + core.timing.sync_ns
        overrun = busy > tick if self.ticked else np.zeros(n, bool)

        cycle_pj = self.cycle_pj[level]
        neuron = neuron_cycles * cycle_pj
        dram_pj = dram_bits * core.dram.energy_pj_per_bit
        synapse = (synapse_cycles - mac_cycles) * cycle_pj + macs * self.mac_pj[level] + dram_pj
        idle = self.idle_w[level] * np.maximum(step_ns[self.chip_index] - busy, 0.0) * 1e3

        link_bits, host_bits = self.links.loads_bits(path_msgs)
        link_ns = max(link_bits.max(initial=0.0) / self.chip.system.link.bandwidth_bits_per_s * 1e9,
                      host_bits / self.chip.system.host.bandwidth_bits_per_s * 1e9)
        bounds = np.array([(neuron_cycles * ns_per_cycle).max(initial=0.0), (synapse_cycles * ns_per_cycle).max(initial=0.0),
                           dram_ns.max(initial=0.0), link_ns, 0.0, busy.max(initial=0.0),
                           tick if self.ticked else 0.0])
        cost = StepCost(synapse, neuron, network, busy, step_ns, link_bits, host_bits, bounds,
                        static_pj=idle, cycles=cycles, level=level, overrun=overrun,
                        packets_in=packets_in, packets_out=packets_out[:n], macs=np.broadcast_to(macs, (n,)))
        return cost, PeSplit(memory_cycles * cycle_pj, dram_pj, dram_bits, float(self.host_link_pj[events].sum()))

    # ------------------------------------------------------------------------------------------
    # tables the PEs read as software: an embedding, a head

    def shares(self, size: int) -> np.ndarray:
        """``size`` items (a vocabulary's logits, a table's rows) spread over the PEs, as evenly as may be."""
        return np.diff(np.arange(self.n_cores + 1) * size // self.n_cores).astype(np.float64)

    def place_tables(self, tables: dict[str, tuple[int, int]]) -> dict[str, str]:
        """Where each table (name: its bytes in the PEs' SRAM, its bytes that may go to DRAM instead)
        is kept, in order: spread over the PEs' SRAM where their free data memory holds it, else in
        the chip's DRAM (with the part that stays in SRAM). A `UserError` when neither holds it."""
        used = self.mapping.utilisation["neuron_state_bytes" if self.dram else "memory_bytes"]
        free = float(self.core.limits.memory_bytes) - used.astype(np.float64)
        dram_free = self.core.dram.bytes * self.n_chips - (self.mapping.utilisation["synapse_memory_bytes"].sum()
                                                            if self.dram else 0.0)
        places = {}
        for name, (sram_bytes, dram_bytes) in tables.items():
            whole = self.shares(sram_bytes + dram_bytes)
            if np.all(whole <= free):
                places[name], free = "sram", free - whole
            elif np.all(self.shares(sram_bytes) <= free) and dram_bytes <= dram_free:
                places[name], free, dram_free = "dram", free - self.shares(sram_bytes), dram_free - dram_bytes
            else:
                raise UserError(f"the {name}'s {(sram_bytes + dram_bytes) / 1e6:,.1f} MB fit neither the free data "
                                f"memory of the {self.n_cores} PEs ({free.min() / 1e3:,.1f} KB on the fullest, "
                                f"{self.shares(sram_bytes + dram_bytes).max() / 1e3:,.1f} KB needed on each) nor the "
                                f"chip's DRAM ({dram_free / 1e6:,.1f} MB free)")
        return places

    def embedding_work(self, owner: int, width: int, at: str) -> PeWork:
        """PE ``owner`` reads the token's row of an embedding (``width`` fp32 values, by a DMA when
        ``at`` is dram) and sends each value on as a packet (forming it loads the value)."""
        work, cyc, mem = PeWork.nothing(self.n_cores), self.core.cycles, self.core.cycles.memory
        dma = float(at == "dram")
        work.synapse_cycles[owner] = cyc.row + dma * cyc.dma_setup
        work.neuron_cycles[owner] = width * cyc.packet_out
        work.memory_cycles[owner] = mem.row + dma * mem.dma_setup + width * mem.packet_out
        work.dram_bits[owner] = dma * width * FP32_BITS
        work.packets_out[owner] = width
        return work

    def head_rows_work(self, sources: np.ndarray, vocab: int, at: str) -> PeWork:
        """A head's rows for the events of the layer below, sent from the PEs ``sources`` (one per
        event): each event's packet reaches every PE, and each PE reads its share of the event's
        row of logits' weights (by a DMA when ``at`` is dram) and multiply-accumulates it."""
        n, cyc, mem = self.n_cores, self.core.cycles, self.core.cycles.memory
        k, share, dma = float(len(sources)), self.shares(vocab), float(at == "dram")
        work = PeWork.nothing(n)
        work.packets_in[:] = k
        work.synapse_cycles[:] = k * (cyc.packet_in + cyc.row + dma * cyc.dma_setup + share * cyc.synapse_float)
        work.memory_cycles[:] = k * (mem.packet_in + mem.row + dma * mem.dma_setup + share * mem.synapse_float)
        work.dram_bits[:] = dma * k * share * FP32_BITS
        work.network_pj[:] = np.bincount(sources, minlength=n)[:n] * n * self.delivery_pj
        return work

    def head_select_work(self, vocab: int) -> PeWork:
        """Each PE adds its logits' biases and keeps the largest (`float_readout`'s update and a
        compare per logit) and sends it to PE 0, which keeps the largest of them: the token."""
        n, cyc, mem = self.n_cores, self.core.cycles, self.core.cycles.memory
        share = self.shares(vocab)
        work = PeWork.nothing(n)
        work.neuron_cycles[:] = share * (cyc.update("float_readout") + cyc.max_compare) + cyc.packet_out
        work.memory_cycles[:] = share * (mem.update("float_readout") + mem.max_compare) + mem.packet_out
        work.neuron_cycles[0] += n * (cyc.packet_in + cyc.max_compare)
        work.memory_cycles[0] += n * (mem.packet_in + mem.max_compare)
        work.packets_out[:] = 1
        work.packets_in[0] = n
        work.network_pj[:] = self.delivery_pj
        return work


class PeRecord:
    """What a run keeps of each step's PE costs: per PE cycles, DVFS level and overruns (kept
    when ``per_core``), per step the PEs that overran and by how much; and their summary."""

    def __init__(self, model: ArmPeModel, per_core: bool = True):
        self.model, self.per_core = model, per_core
        self.cycles, self.level, self.overrun, self.packets_in, self.packets_out = [], [], [], [], []
        self.overrun_pes, self.late_ns, self.level_counts, self.total_cycles = [], [], np.zeros(len(model.levels)), []

    def add(self, cost: StepCost) -> None:
        if self.per_core:
            self.cycles.append(cost.cycles)
            self.level.append(cost.level.astype(np.int8))
            self.overrun.append(cost.overrun)
            self.packets_in.append(cost.packets_in.astype(np.int64))
            self.packets_out.append(cost.packets_out.astype(np.int64))
        self.overrun_pes.append(int(cost.overrun.sum()))
        self.late_ns.append(float(np.maximum(cost.busy_ns - self.model.core.timing.tick_ns, 0).max(initial=0.0))
                            if self.model.ticked else 0.0)
        self.level_counts += np.bincount(cost.level, minlength=len(self.model.levels))
        self.total_cycles.append(float(cost.cycles.sum()))

    def state(self) -> dict[str, np.ndarray]:
        """What it has recorded, as arrays (for a checkpoint)."""
        n = self.model.n_cores
        lists = {"cycles": (self.cycles, np.float64), "level": (self.level, np.int8), "overrun": (self.overrun, bool),
                 "packets_in": (self.packets_in, np.int64), "packets_out": (self.packets_out, np.int64)}
        out = {f"pe/{k}": (np.array(v, dt) if v else np.zeros((0, n), dt)) for k, (v, dt) in lists.items()}
        return out | {"pe/overrun_pes": np.array(self.overrun_pes, np.int64), "pe/late_ns": np.array(self.late_ns),
                      "pe/level_counts": self.level_counts.copy(), "pe/total_cycles": np.array(self.total_cycles)}

    def restore(self, saved: dict[str, np.ndarray]) -> None:
        for k in ("cycles", "level", "overrun", "packets_in", "packets_out"):
            setattr(self, k, list(saved[f"pe/{k}"]))
        self.overrun_pes = [int(x) for x in saved["pe/overrun_pes"]]
        self.late_ns = [float(x) for x in saved["pe/late_ns"]]
        self.level_counts = saved["pe/level_counts"].astype(np.float64)
        self.total_cycles = [float(x) for x in saved["pe/total_cycles"]]

    def step_groups(self) -> dict[str, np.ndarray]:
        return {"overrun_pes": np.array(self.overrun_pes, np.int64), "late_ns": np.array(self.late_ns),
                "pe_cycles": np.array(self.total_cycles)}

    def core_groups(self) -> dict[str, np.ndarray]:
        n = self.model.n_cores
        stack = (lambda rows, dt: np.array(rows, dt) if rows else np.zeros((0, n), dt))
        return {"cycles": stack(self.cycles, np.float64), "dvfs_level": stack(self.level, np.int8),
                "overrun": stack(self.overrun, bool), "packets_in": stack(self.packets_in, np.int64),
                "packets_out": stack(self.packets_out, np.int64)}

    def core_attrs(self) -> dict[str, object]:
        return {"dvfs_levels": ", ".join(f"{k}: {lv.name}" for k, lv in enumerate(self.model.levels)),
                "timing_mode": self.model.core.timing.mode, "tick_ns": self.model.core.timing.tick_ns,
                "dvfs": self.model.core.timing.dvfs}

    def summary(self) -> dict[str, float]:
        steps = max(len(self.overrun_pes), 1)
        pe_steps = max(self.level_counts.sum(), 1)
        return {"pe_overruns": int(sum(self.overrun_pes)),
                "steps_overrun": float(np.count_nonzero(self.overrun_pes) / steps),
                "max_late_s": float(max(self.late_ns, default=0.0) * 1e-9),
                "mean_pe_cycles_per_step": float(sum(self.total_cycles) / steps / max(self.model.n_cores, 1)),
                **{f"dvfs_share_{lv.name}": float(self.level_counts[k] / pe_steps)
                   for k, lv in enumerate(self.model.levels)}}
