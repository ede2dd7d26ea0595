"""The event engine: one barrier-synchronised timestep over flat arrays.

A timestep is::

    for each population:  neurons update from last step's input  -> payloads (events)
    find the events (nonzero payloads)
    time their emission on each core, route their messages, apply the synapses

The functional result (integer state, events) does not depend on message order; the
timing does, and comes from the same events: per message its emission time on its core,
its path latency, and its place in its destination core's synapse queue. Per-op costs
are plain numbers handed in by the core kind (``neurosim.cores``), which also turns the
counters into energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from neurosim.engine.kernels import MIXED_EXP, READS_TABLE, Network
from neurosim.engine.programs import program_table
from neurosim.engine.step import new_counts, new_sim, send, step
from neurosim.graph.graph import Graph
from neurosim.mapping.mapper import Mapping
from neurosim.mapping.routes import running_per_core
from neurosim.programs import KINDS, NeuronState, active_neurons, build_state, run_step, value_dtype


@dataclass(frozen=True)
class TimingCosts:
    """Per-operation times (ns) and path costs, from the chip's core kind.

    Axons share a few distinct paths (hop and link counts, the chips at both ends, the bits
    of a message); each axon names its path.
    """

    t_update_ns: float
    t_active_ns: float
    t_spike_ns: float
    t_message_ns: float
    t_message_in_ns: float
    t_synop_ns: float
    host_message_ns: float
    count_active: bool              # whether the chip prices active neuron updates apart
    message_bits: np.ndarray        # int32 [n_neurons] bits of each message a neuron sends
    path_latency_ns: np.ndarray     # [n_paths]
    path_energy_pj: np.ndarray      # [n_paths]
    path_hops: np.ndarray           # int64 [n_paths] on-chip hops
    path_crossings: np.ndarray      # int64 [n_paths] link crossings
    axon_path: np.ndarray           # [n_axons]
    update_ns: np.ndarray | None = None   # float64 [n_neurons] each neuron's update (its program's), or
    #                                       None: ``t_update_ns`` each

    @property
    def axon_latency_ns(self) -> np.ndarray:
        return self.path_latency_ns[self.axon_path]

    @property
    def axon_energy_pj(self) -> np.ndarray:
        return self.path_energy_pj[self.axon_path]


@dataclass
class StepCounters:
    """What one timestep did, per core; arrays of size n_cores (+1 for the host where noted)."""

    events: int
    active: np.ndarray           # [n_cores] active neuron updates
    synops: np.ndarray           # [n_cores]
    synmem_reads: np.ndarray     # [n_cores] synaptic-memory words read
    msgs_in: np.ndarray          # [n_cores]
    bits_in: np.ndarray          # [n_cores]
    spikes: np.ndarray           # [n_cores + 1] events emitted; last entry: the host
    msgs_out: np.ndarray         # [n_cores + 1]
    bits_out: np.ndarray         # [n_cores + 1]
    path_msgs: np.ndarray        # [n_paths] messages sent along each path
    hops: np.ndarray             # [n_cores + 1] on-chip hops of messages sent
    links: np.ndarray            # [n_cores + 1] link crossings of messages sent
    network_pj: np.ndarray       # [n_cores + 1]
    neuron_done_ns: np.ndarray   # [n_cores] when the core's neuron unit finished
    synapse_done_ns: np.ndarray  # [n_cores] when the core's synapse unit finished
    overflow: int                # saturated or wrapped values in neuron updates
    updated: np.ndarray | None = None   # bool [n_populations] whose neurons updated (see `Engine.step`'s hold)


@nb.njit(cache=True)
def per_neuron(axon_ptr, axon_path, axon_proj, path_hops, path_crossings, proj_exp, proj_delay, hops, links, exp,
               delay):
    """Each neuron's hops and link crossings summed over its axons, and the weight exponent and
    delay all its axons share (`MIXED_EXP` when they do not)."""
    for n in range(axon_ptr.shape[0] - 1):
        a0, a1 = axon_ptr[n], axon_ptr[n + 1]
        exp[n] = proj_exp[axon_proj[a0]] if a1 > a0 else 0
        delay[n] = proj_delay[axon_proj[a0]] if a1 > a0 else 0
        for a in range(a0, a1):
            hops[n] += path_hops[axon_path[a]]
            links[n] += path_crossings[axon_path[a]]
            if proj_exp[axon_proj[a]] != proj_exp[axon_proj[a0]] or proj_delay[axon_proj[a]] != delay[n]:
                exp[n] = MIXED_EXP


def balanced_ranges(load: np.ndarray, n_ranges: int) -> np.ndarray:
    """Bounds of ``n_ranges`` consecutive ranges of cores with about equal sums of ``load``."""
    total = np.concatenate([[0], np.cumsum(load)])
    cuts = np.searchsorted(total, total[-1] * np.arange(1, n_ranges) / n_ranges)
    return np.concatenate([[0], cuts, [len(load)]]).astype(np.int64)


def reads_table(syn_bits: np.ndarray, word_bits: int) -> np.ndarray:
    """[projection, synapses] synaptic-memory words a message reads (`neurosim.mapping.routes.reads`)."""
    return np.ceil(np.arange(READS_TABLE)[None, :] * syn_bits[:, None] / word_bits).astype(np.int64)


def update_times(mapping: Mapping, costs: TimingCosts) -> tuple[np.ndarray, np.ndarray]:
    """float64 [n_neurons] when each neuron's update is done from its step's start, its core's
    neurons updated in order (0 on the host), and [n_cores] each core's updates together."""
    if costs.update_ns is None:
        done = (mapping.neuron_rank().astype(np.float64) + 1.0) * costs.t_update_ns
        done[mapping.core_of < 0] = 0.0
        return done, mapping.core_neurons.astype(np.float64) * costs.t_update_ns
    done, total = np.zeros(mapping.n_neurons), np.zeros(mapping.n_cores)
    running_per_core(mapping.core_of, np.asarray(costs.update_ns, np.float64), done, total)
    return done, total


def network_of(mapping: Mapping, costs: TimingCosts) -> Network:
    """The kernels' view of a mapping: its routes (held by the mapping, not copied), per-neuron
    sums over axons, and costs."""
    r, n = mapping.routes, mapping.n_neurons
    hops, links, exp, delay = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.uint8)
    per_neuron(r.axon_ptr, costs.axon_path, r.axon_proj, costs.path_hops, costs.path_crossings, r.proj_exp,
               r.proj_delay, hops, links, exp, delay)
    update_done, core_update = update_times(mapping, costs)
    return Network(
        core_of=mapping.core_of, core_update_ns=core_update, update_done_ns=update_done,
        message_bits=costs.message_bits, axon_ptr=r.axon_ptr, neuron_exp=exp, neuron_delay=delay, neuron_hops=hops,
        neuron_links=links, axon_core=r.axon_core, axon_path=costs.axon_path, axon_synapses=r.axon_synapses,
        axon_proj=r.axon_proj, proj_exp=r.proj_exp, proj_delay=r.proj_delay, proj_syn_bits=r.proj_syn_bits,
        word_bits=r.word_bits, proj_reads=reads_table(r.proj_syn_bits, r.word_bits), axon_run=r.axon_run,
        syn_ptr=r.syn_ptr, syn_target=r.syn_target, syn_weight=r.syn_weight, core_dendrite=r.core_dendrite,
        path_latency_ns=costs.path_latency_ns, path_energy_pj=costs.path_energy_pj,
        t_active_ns=costs.t_active_ns, t_spike_ns=costs.t_spike_ns, t_message_ns=costs.t_message_ns,
        t_message_in_ns=costs.t_message_in_ns, host_message_ns=costs.host_message_ns, t_synop_ns=costs.t_synop_ns)


class Engine:
    """Owns the state arrays of a mapped graph and advances them one timestep at a time (`step`,
    compiled in `neurosim.engine.step`); the runs' compiled loops advance many steps per call
    over the same arrays (``table``, ``sim``, ``counts``, `messages`)."""

    def __init__(self, graph: Graph, mapping: Mapping, costs: TimingCosts, per_message: bool = True):
        self.graph = graph
        self.mapping = mapping
        self.costs = costs
        self.per_message = per_message
        n = mapping.n_neurons
        # Dendritic accumulators, one row per delay slot: step t reads slot t mod slots.
        dtype = value_dtype(graph)
        self.acc = np.zeros((mapping.delay_slots, mapping.n_dendrites), dtype)
        self.steps_done = 0
        self.payload = np.zeros(n, dtype)
        self.pops: list[tuple[str, int, int, object, NeuronState]] = []
        self._dendrites: list[list[np.ndarray]] = []   # per slot, each population's accumulators as [ports, size]
        for name, pop in graph.populations.items():
            lo = mapping.offsets[name]
            kind = KINDS[pop.kind]
            state = build_state(kind, pop.params, pop.size, file=graph.source_file,
                                prefix=("populations", name, "params"), lines=graph.lines)
            self.pops.append((name, lo, lo + pop.size, kind, state))
        for slot in range(mapping.delay_slots):
            views = []
            for name, *_, kind, _state in self.pops:
                d0, size, ports = mapping.dend_offsets[name], graph.populations[name].size, len(kind.ports)
                views.append(self.acc[slot, d0:d0 + size * ports].reshape(ports, size))
            self._dendrites.append(views)
        self.n_cores = mapping.n_cores
        self.net = network_of(mapping, costs)
        # The programs as one compiled table, or None: run one by one from Python (numpy kernels).
        self.table = program_table(self.pops, [mapping.dend_offsets[name] for name, *_ in self.pops], n)
        self.count_active = costs.count_active
        self.overflow_per_population = [0] * len(self.pops)
        # One part of the work per thread: events split by source for the counters, cores for
        # delivery. A step's cores are split by the previous step's messages (only speed depends on it).
        n_parts = nb.get_num_threads()
        # Populations reset every so many steps of a sample (`Graph.resets`), to the initial state.
        self.resets = [graph.resets.get(name, (0, 0)) for name, *_ in self.pops] if graph.resets else []
        every, phase = (np.array([r[k] for r in self.resets], np.int64) for k in (0, 1))
        self.sim = new_sim(self.payload, self.acc, mapping.n_cores, n_parts, int(mapping.routes.syn_ptr[-1]), every,
                           phase, self.table.state.copy() if self.table is not None and self.resets else None)
        self.sim.core_bounds[:] = balanced_ranges(np.ones(self.n_cores), n_parts)
        self.counts = new_counts(self.n_cores, len(costs.path_latency_ns), len(self.pops), n_parts)
        # Each step's messages, bucketed by destination core: arrival time and synapse count.
        self.messages = (np.zeros(0, np.float64), np.zeros(0, self.net.axon_synapses.dtype))

    def reset(self) -> None:
        """Every neuron back to its initial state; no input pending."""
        self.acc[:] = 0
        self.steps_done = 0
        self.payload[:] = 0
        for *_, state in self.pops:
            state.reset()

    def state_of(self, population: str) -> dict[str, np.ndarray]:
        for name, *_, state in self.pops:
            if name == population:
                return state.state
        raise KeyError(population)

    def accumulators(self, population: str) -> np.ndarray:
        """A population's dendritic accumulators, [ports, size]: the input its next step reads."""
        slot = self.steps_done % self.mapping.delay_slots
        return self._dendrites[slot][[name for name, *_ in self.pops].index(population)]

    def set_input(self, population: str, values: np.ndarray) -> None:
        self.state_of(population)["values"][:] = values

    def step(self, hold: frozenset[str] = frozenset()) -> StepCounters:
        """One timestep. Populations in ``hold`` do not update: their state stays, they send
        nothing and their accumulators keep what has arrived for their next update (a layer of
        a pipelined model between two tokens)."""
        updated = np.array([name not in hold for name, *_ in self.pops], bool)
        t = self.steps_done
        if self.table is not None:
            self.messages = step(self.net, self.table, self.sim, self.counts, *self.messages, updated,
                                 self.count_active, self.per_message, t)
        else:
            for (every, phase), (*_, state) in zip(self.resets, self.pops):
                if every and t % every == phase:
                    state.reset()
            self._update_in_python(updated)
            self.messages = send(self.net, self.sim, self.counts, *self.messages, self.per_message, t)
        self.steps_done += 1
        self.overflow_per_population = [int(x) for x in self.counts.overflow]
        return self.counters(updated)

    def _update_in_python(self, updated: np.ndarray) -> None:
        """`neurosim.engine.step.update_neurons` for programs with numpy kernels."""
        dendrites = self._dendrites[self.steps_done % self.mapping.delay_slots]
        if self.count_active:
            for (_name, lo, hi, kind, state), acc in zip(self.pops, dendrites):
                self.sim.active[lo:hi] = active_neurons(kind, acc, state)
            running_per_core(self.net.core_of, self.sim.active, self.sim.active_upto, self.sim.core_active)
        for p, ((_name, lo, hi, kind, state), acc, go) in enumerate(zip(self.pops, dendrites, updated)):
            if go:
                self.counts.overflow[p] = run_step(kind, acc, self.payload[lo:hi], state)
            else:
                self.payload[lo:hi] = 0
                self.counts.overflow[p] = 0

    def counters(self, updated: np.ndarray | None = None) -> StepCounters:
        """A copy of what the last step did."""
        c = self.counts
        return StepCounters(int(c.events[0]), c.active.copy(), c.synops.copy(), c.reads.copy(), c.msgs_in.copy(),
                            c.bits_in.copy(), c.spikes.copy(), c.msgs_out.copy(), c.bits_out.copy(),
                            c.path_msgs.copy(), c.hops.copy(), c.links.copy(), c.network_pj.copy(),
                            c.neuron_done_ns.copy(), c.synapse_done_ns.copy(), int(c.overflow.sum()), updated)
