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

from neurosim.engine.kernels import (MIXED_EXP, SERIAL_MESSAGES, Network, count_sent, count_sent_serial, deliver,
                                     deliver_serial, emission_times, find_events, split_events)
from neurosim.graph.graph import Graph
from neurosim.mapping.mapper import Mapping
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
    axon_path: np.ndarray           # int32 [n_axons]

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


def per_neuron_sum(axon_ptr: np.ndarray, per_axon: np.ndarray) -> np.ndarray:
    """Each source neuron's sum of an integer per-axon quantity."""
    total = np.concatenate([[0], np.cumsum(per_axon, dtype=np.int64)])
    return total[axon_ptr[1:]] - total[axon_ptr[:-1]]


def holds_within_neurons(axon_ptr: np.ndarray, pair_ok: np.ndarray) -> np.ndarray:
    """Per source neuron, whether ``pair_ok`` (one entry per two consecutive axons) holds for
    every two consecutive axons of its own."""
    bad = np.concatenate([[0], np.cumsum(~pair_ok, dtype=np.int64), [np.count_nonzero(~pair_ok)]])
    first, last = axon_ptr[:-1], np.maximum(axon_ptr[1:] - 1, axon_ptr[:-1])
    return bad[last] - bad[first] == 0


def narrow_int(values: np.ndarray) -> type:
    """The narrowest of uint16 and int32 that holds ``values``."""
    fits = values.size == 0 or (values.min() >= 0 and values.max() <= np.iinfo(np.uint16).max)
    return np.uint16 if fits else np.int32


def balanced_ranges(load: np.ndarray, n_ranges: int) -> np.ndarray:
    """Bounds of ``n_ranges`` consecutive ranges of cores with about equal sums of ``load``."""
    total = np.concatenate([[0], np.cumsum(load)])
    cuts = np.searchsorted(total, total[-1] * np.arange(1, n_ranges) / n_ranges)
    return np.concatenate([[0], cuts, [len(load)]]).astype(np.int64)


def network_of(mapping: Mapping, costs: TimingCosts) -> tuple[Network, np.ndarray]:
    """The kernels' view of a mapping: its routes, per-neuron sums over axons, and costs.

    What delivery reads of each axon (destination core, path, synapse count) is laid side by
    side in one record array, in the narrowest integers that hold it: one stretch of memory
    per neuron instead of three, and fewer bytes to fetch. Returns the network and that array.
    """
    r = mapping.routes
    assert np.all(holds_within_neurons(r.axon_ptr, np.diff(r.axon_core) >= 0)), \
        "each neuron's axons are sorted by destination core"
    columns = {"core": r.axon_core, "path": costs.axon_path, "synapses": np.diff(r.axon_syn_ptr),
               "reads": r.synmem_reads}
    axons = np.zeros(r.n_axons, np.dtype([(k, narrow_int(v)) for k, v in columns.items()]))
    for k, v in columns.items():
        axons[k] = v
    first = np.minimum(r.axon_ptr[:-1], max(r.n_axons - 1, 0))
    first_exp = r.axon_exp[first] if r.n_axons else 0
    first_delay = r.axon_delay[first] if r.n_axons else np.zeros(mapping.n_neurons, np.uint8)
    one_exp = holds_within_neurons(r.axon_ptr, (np.diff(r.axon_exp) == 0) & (np.diff(r.axon_delay) == 0))
    net = Network(
        core_of=mapping.core_of, core_lo=mapping.core_neuron_lo, message_bits=costs.message_bits, axon_ptr=r.axon_ptr,
        neuron_exp=np.where(one_exp, first_exp, MIXED_EXP).astype(np.int64),
        neuron_delay=np.asarray(first_delay, np.int64), axon_delay=r.axon_delay,
        neuron_hops=per_neuron_sum(r.axon_ptr, r.hops_ew + r.hops_ns), neuron_links=per_neuron_sum(r.axon_ptr, r.links),
        axon_core=axons["core"], axon_path=axons["path"], axon_synapses=axons["synapses"], axon_reads=axons["reads"],
        axon_exp=r.axon_exp, axon_syn_ptr=r.axon_syn_ptr, syn_target=r.syn_target, syn_weight=r.syn_weight,
        path_latency_ns=costs.path_latency_ns, path_energy_pj=costs.path_energy_pj, t_update_ns=costs.t_update_ns,
        t_active_ns=costs.t_active_ns, t_spike_ns=costs.t_spike_ns, t_message_ns=costs.t_message_ns, t_message_in_ns=costs.t_message_in_ns,
        host_message_ns=costs.host_message_ns, t_synop_ns=costs.t_synop_ns)
    return net, axons


class Engine:
    """Owns the state arrays of a mapped graph and advances them one timestep at a time."""

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
        self._net, self._axons = network_of(mapping, costs)
        self._neurons_per_core = (mapping.core_neuron_hi - mapping.core_neuron_lo).astype(np.float64)
        self.overflow_per_population = [0] * len(self.pops)
        # Active updates (counted only if the chip prices them): a flag per neuron and their running count.
        self._active = np.zeros(n, np.int64)
        self._active_prefix = np.zeros(n + 1, np.int64)
        self._events = np.zeros(n, np.int64)
        self._t_emit = np.zeros(n, np.float64)
        # One part of the work per thread: events split by source for the counters, cores for
        # delivery. A step's cores are split by the previous step's messages (only speed depends on it).
        self._n_parts = nb.get_num_threads()
        self._chunk_bounds = np.zeros(self._n_parts + 1, np.int64)
        self._core_bounds = balanced_ranges(np.bincount(mapping.routes.axon_core, minlength=self.n_cores),
                                            self._n_parts)
        self._axon_split = np.zeros((self._n_parts + 1, n), np.int64)
        self._syn_split = np.zeros((self._n_parts + 1, n), np.int64)
        # Each step's messages, bucketed by destination core: arrival time and synapse count.
        self._messages = np.zeros(0, np.dtype([("arrival", np.float64), ("synapses", self._axons.dtype["synapses"])]))

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

    def _ensure_capacity(self, n_messages: int) -> None:
        if n_messages > len(self._messages):
            cap = max(n_messages, 2 * len(self._messages), 1024)
            self._messages = np.zeros(cap, self._messages.dtype)

    def step(self, hold: frozenset[str] = frozenset()) -> StepCounters:
        """One timestep. Populations in ``hold`` do not update: their state stays, they send
        nothing and their accumulators keep what has arrived for their next update (a layer of
        a pipelined model between two tokens)."""
        slots = self.mapping.delay_slots
        dendrites = self._dendrites[self.steps_done % slots]
        if self.costs.count_active:
            for (_name, lo, hi, kind, state), acc in zip(self.pops, dendrites):
                self._active[lo:hi] = active_neurons(kind, acc, state)
            np.cumsum(self._active, out=self._active_prefix[1:])
        updated = np.array([name not in hold for name, *_ in self.pops], bool)
        self.overflow_per_population = []
        for (name, lo, hi, kind, state), acc, go in zip(self.pops, dendrites, updated):
            if go:
                self.overflow_per_population.append(run_step(kind, acc, self.payload[lo:hi], state))
            else:
                self.payload[lo:hi] = 0
                self.overflow_per_population.append(0)
        # An input of delay d is read d + 1 steps from now.
        slot_of_delay = (self.steps_done + 1 + np.arange(slots)) % slots
        self.steps_done += 1
        counters = self._deliver(sum(self.overflow_per_population), slot_of_delay)
        counters.updated = updated
        return counters

    def _deliver(self, overflow: int, slot_of_delay: np.ndarray) -> StepCounters:
        net, n_cores = self._net, self.n_cores
        n_events = find_events(self.payload, self._events)
        events = self._events
        msgs_before = np.zeros(n_cores + 1, np.int64)
        emission_times(net, events, n_events, self._t_emit, msgs_before, np.zeros(n_cores + 1, np.int64),
                       self._active_prefix)
        prefix, lo = self._active_prefix, self.mapping.core_neuron_lo
        active = (prefix[self.mapping.core_neuron_hi] - prefix[lo]).astype(np.int64)
        source = net.core_of[events[:n_events]]
        spikes = np.bincount(np.where(source < 0, n_cores, source), minlength=n_cores + 1).astype(np.int64)

        msgs_out = np.zeros(n_cores + 1, np.int64)
        bits_out = np.zeros(n_cores + 1, np.int64)
        hops = np.zeros(n_cores + 1, np.int64)
        links = np.zeros(n_cores + 1, np.int64)
        network_pj = np.zeros(n_cores + 1, np.float64)
        msgs_to = np.zeros((self._n_parts, n_cores), np.int64)
        path_msgs = np.zeros((self._n_parts, len(net.path_latency_ns)), np.int64)
        split_events(net, events, n_events, self._chunk_bounds)
        few = int(msgs_before.sum()) < SERIAL_MESSAGES
        (count_sent_serial if few else count_sent)(
            net, events, self._chunk_bounds, self._core_bounds, msgs_out, bits_out, hops, links, network_pj, msgs_to,
            path_msgs, self._axon_split, self._syn_split)

        msgs_in = msgs_to.sum(axis=0)
        bucket_ptr = np.zeros(n_cores + 1, np.int64)
        np.cumsum(msgs_in, out=bucket_ptr[1:])
        self._ensure_capacity(int(bucket_ptr[-1]))
        synops = np.zeros(n_cores, np.int64)
        reads = np.zeros(n_cores, np.int64)
        bits_in = np.zeros(n_cores, np.int64)
        synapse_done = np.zeros(n_cores, np.float64)
        (deliver_serial if few else deliver)(
            net, events, n_events, self._core_bounds, self._axon_split, self._syn_split, self._t_emit, self.payload,
            self.per_message, bucket_ptr, self.acc, slot_of_delay, synops, reads, bits_in, msgs_in, synapse_done,
            self._messages["arrival"], self._messages["synapses"])
        self._core_bounds = balanced_ranges(msgs_in, self._n_parts)
        neuron_done = (self._neurons_per_core * net.t_update_ns + active * net.t_active_ns
                       + spikes[:n_cores] * net.t_spike_ns + msgs_out[:n_cores] * net.t_message_ns)
        return StepCounters(n_events, active, synops, reads, msgs_in, bits_in, spikes, msgs_out, bits_out,
                            path_msgs.sum(axis=0), hops, links, network_pj, neuron_done, synapse_done, overflow)
