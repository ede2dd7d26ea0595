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

import numpy as np

from neurosim.engine.kernels import apply_messages, emission_times, find_events, route_messages
from neurosim.graph.graph import Graph
from neurosim.mapping.mapper import Mapping
from neurosim.numerics.neurons import KINDS, NeuronState, build_state, run_step


@dataclass(frozen=True)
class TimingCosts:
    """Per-operation times (ns) and per-axon path costs, from the chip's core kind."""

    t_update_ns: float
    t_message_ns: float
    t_synop_ns: float
    host_message_ns: float
    axon_latency_ns: np.ndarray
    axon_energy_pj: np.ndarray


@dataclass
class StepCounters:
    """What one timestep did, per core; arrays of size n_cores (+1 for the host where noted)."""

    events: int
    synops: np.ndarray           # [n_cores]
    msgs_in: np.ndarray          # [n_cores]
    spikes: np.ndarray           # [n_cores + 1] events emitted; last entry: the host
    msgs_out: np.ndarray         # [n_cores + 1]
    hops: np.ndarray             # [n_cores + 1] on-chip hops of messages sent
    links: np.ndarray            # [n_cores + 1] link crossings of messages sent
    network_pj: np.ndarray       # [n_cores + 1]
    neuron_done_ns: np.ndarray   # [n_cores] when the core's neuron unit finished
    synapse_done_ns: np.ndarray  # [n_cores] when the core's synapse unit finished
    overflow: int                # saturated or wrapped values in neuron updates


class Engine:
    """Owns the state arrays of a mapped graph and advances them one timestep at a time."""

    def __init__(self, graph: Graph, mapping: Mapping, costs: TimingCosts, per_message: bool = True):
        self.graph = graph
        self.mapping = mapping
        self.costs = costs
        self.per_message = per_message
        n = mapping.n_neurons
        self.acc = np.zeros(n, np.int64)
        self.payload = np.zeros(n, np.int64)
        self._events = np.zeros(n, np.int64)
        self._t_emit = np.zeros(n, np.float64)
        self.pops: list[tuple[str, int, int, object, NeuronState]] = []
        for name, pop in graph.populations.items():
            lo = mapping.offsets[name]
            kind = KINDS[pop.kind]
            state = build_state(kind, pop.params, pop.size, file=graph.source_file,
                                prefix=("populations", name, "params"), lines=graph.lines)
            self.pops.append((name, lo, lo + pop.size, kind, state))
        n_cores = mapping.n_cores
        self.n_cores = n_cores
        self._bucket_ptr = np.zeros(n_cores + 1, np.int64)
        cap = 1024
        self._msg_axon = np.zeros(cap, np.int64)
        self._msg_payload = np.zeros(cap, np.int64)
        self._msg_arrival = np.zeros(cap, np.float64)
        self._neurons_per_core = (mapping.core_neuron_hi - mapping.core_neuron_lo).astype(np.float64)
        r = mapping.routes
        self._axon_hops = (r.hops_ew + r.hops_ns).astype(np.int64)
        self._axon_links = r.links.astype(np.int64)

    def reset(self) -> None:
        """Every neuron back to its initial state; no input pending."""
        self.acc[:] = 0
        self.payload[:] = 0
        for *_, state in self.pops:
            state.reset()

    def state_of(self, population: str) -> dict[str, np.ndarray]:
        for name, *_, state in self.pops:
            if name == population:
                return state.state
        raise KeyError(population)

    def set_input(self, population: str, values: np.ndarray) -> None:
        self.state_of(population)["values"][:] = values

    def _ensure_capacity(self, n_messages: int) -> None:
        if n_messages > len(self._msg_axon):
            cap = max(n_messages, 2 * len(self._msg_axon))
            self._msg_axon = np.zeros(cap, np.int64)
            self._msg_payload = np.zeros(cap, np.int64)
            self._msg_arrival = np.zeros(cap, np.float64)

    def step(self) -> StepCounters:
        overflow = 0
        for _name, lo, hi, kind, state in self.pops:
            overflow += run_step(kind, self.acc[lo:hi], self.payload[lo:hi], state)
        return self._deliver(overflow)

    def _deliver(self, overflow: int) -> StepCounters:
        m, r, c = self.mapping, self.mapping.routes, self.costs
        n_cores = self.n_cores
        n_events = find_events(self.payload, self._events)
        events = self._events
        msgs_before = np.zeros(n_cores + 1, np.int64)
        emission_times(events, n_events, m.core_of, m.core_neuron_lo, c.t_update_ns, c.t_message_ns,
                       c.host_message_ns, r.axon_ptr, self._t_emit, msgs_before)
        self._ensure_capacity(int(msgs_before.sum()))
        spikes = np.bincount(np.where(m.core_of[events[:n_events]] < 0, n_cores, m.core_of[events[:n_events]]),
                             minlength=n_cores + 1).astype(np.int64)
        msgs_out = np.zeros(n_cores + 1, np.int64)
        hops = np.zeros(n_cores + 1, np.int64)
        links = np.zeros(n_cores + 1, np.int64)
        network_pj = np.zeros(n_cores + 1, np.float64)
        route_messages(events, n_events, self._t_emit, self.payload, m.core_of, r.axon_ptr, r.axon_core,
                       c.axon_latency_ns, c.axon_energy_pj, self._axon_hops, self._axon_links, c.t_message_ns,
                       c.host_message_ns, msgs_out, hops, links, network_pj, self._bucket_ptr, self._msg_axon,
                       self._msg_payload, self._msg_arrival)
        synops = np.zeros(n_cores, np.int64)
        msgs_in = np.zeros(n_cores, np.int64)
        synapse_done = np.zeros(n_cores, np.float64)
        apply_messages(self._bucket_ptr, self._msg_axon, self._msg_payload, self._msg_arrival, r.axon_exp,
                       r.axon_syn_ptr, r.syn_target, r.syn_weight, self.acc, c.t_synop_ns, self.per_message,
                       synops, msgs_in, synapse_done)
        neuron_done = self._neurons_per_core * c.t_update_ns + msgs_out[:n_cores] * c.t_message_ns
        return StepCounters(n_events, synops, msgs_in, spikes, msgs_out, hops, links, network_pj,
                            neuron_done, synapse_done, overflow)
