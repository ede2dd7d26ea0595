"""One timestep, compiled: the neuron programs update, then their events are sent.

::

    step(net, table, sim, counts, updated, t):
        for each population p due a reset at t:  its state back to its initial values
        for each population p:  if updated[p]: its program reads slot t's input -> payloads
        events = the neurons with a nonzero payload, in order
        when each event's first message leaves its core             (kernels.emission_times)
        what each source sends, split over threads by source core   (kernels.count_sent)
        deliver into each range of cores, time each synapse unit    (kernels.deliver)
        when each core's neuron unit is done

Everything a step changes is in two records of arrays: `Sim`, the state carried from step to
step (payloads, accumulators, the threads' split of the work), and `Counts`, what the step did
(per core, zeroed at its start). `step` is called once per timestep by `neurosim.engine.Engine`
and, many steps per call, by the compiled loops of the runs (`neurosim.runs.spiking`).

numba's on-disk cache knows a compiled function by its own file only, and a caller keeps the
code of what it calls: after changing a kernel here or in `neurosim.engine.kernels`, clear the
callers' caches too (``neurosim/**/__pycache__/*.nbi``, ``*.nbc``).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from neurosim.engine.kernels import (SERIAL_MESSAGES, count_sent, count_sent_serial, deliver, deliver_serial,
                                     emission_times, find_events, split_events)
from neurosim.engine.programs import mark_active, run_program
from neurosim.mapping.routes import running_per_core


class Sim(NamedTuple):
    """A run's state and work arrays (see `neurosim.engine.kernels` for the split ones)."""

    payload: np.ndarray         # [n_neurons] this step's events' values (0: none)
    acc: np.ndarray             # [delay slots, n_dendrites] input waiting for a coming step
    events: np.ndarray          # int32 [n_neurons] this step's events' neurons
    t_emit: np.ndarray          # float64 [n_neurons] when each event's messages start to leave
    active: np.ndarray          # bool [n_neurons] an active update (chips that price them)
    active_upto: np.ndarray     # int32 [n_neurons] active updates of a neuron's core up to it (`running_per_core`)
    core_active: np.ndarray     # int64 [n_cores] active updates of each core
    chunk_bounds: np.ndarray    # int64 [n_parts + 1] events per thread, for counting
    core_bounds: np.ndarray     # int64 [n_parts + 1] cores per thread, for delivery
    axon_split: np.ndarray      # [n_parts + 1, n_neurons] int32 (int64 beyond 2^31 synapses)
    syn_split: np.ndarray       # [n_parts + 1, n_neurons] likewise
    reset_every: np.ndarray     # int64 [n_pops] a population's reset interval (0: never; `Graph.resets`)
    reset_phase: np.ndarray     # int64 [n_pops] the steps t of a sample with t % interval == phase reset it
    reset_state: np.ndarray     # int64 [len(table.state)] the program table's initial state, which a reset restores


class Counts(NamedTuple):
    """What one step did: per core (+1: the host, where noted), and scratch for its passes."""

    events: np.ndarray          # int64 [1]
    overflow: np.ndarray        # int64 [n_pops] saturated or wrapped values per population
    active: np.ndarray          # int64 [n_cores]
    synops: np.ndarray          # int64 [n_cores]
    reads: np.ndarray           # int64 [n_cores] synaptic-memory words
    msgs_in: np.ndarray         # int64 [n_cores]
    bits_in: np.ndarray         # int64 [n_cores]
    spikes: np.ndarray          # int64 [n_cores + 1]
    msgs_out: np.ndarray        # int64 [n_cores + 1]
    bits_out: np.ndarray        # int64 [n_cores + 1]
    hops: np.ndarray            # int64 [n_cores + 1]
    links: np.ndarray           # int64 [n_cores + 1]
    network_pj: np.ndarray      # float64 [n_cores + 1]
    path_msgs: np.ndarray       # int64 [n_paths]
    neuron_done_ns: np.ndarray  # float64 [n_cores]
    synapse_done_ns: np.ndarray  # float64 [n_cores]
    msgs_to: np.ndarray         # int64 [n_parts, n_cores] scratch
    path_parts: np.ndarray      # int64 [n_parts, n_paths] scratch
    msgs_before: np.ndarray     # int64 [n_cores + 1] scratch
    events_before: np.ndarray   # int64 [n_cores + 1] scratch
    last_event: np.ndarray      # int64 [n_cores + 1] scratch
    bucket_ptr: np.ndarray      # int64 [n_cores + 1] each core's messages in the message buffers


def new_sim(payload: np.ndarray, acc: np.ndarray, n_cores: int, n_parts: int, n_synapses: int,
            reset_every: np.ndarray | None = None, reset_phase: np.ndarray | None = None,
            reset_state: np.ndarray | None = None) -> Sim:
    n = len(payload)
    none = np.zeros(0, np.int64)
    index = np.int32 if n_synapses < np.iinfo(np.int32).max else np.int64      # of axons and synapses
    return Sim(payload, acc, np.zeros(n, np.int32), np.zeros(n, np.float64), np.zeros(n, np.bool_),
               np.zeros(n, np.int32), np.zeros(n_cores, np.int64), np.zeros(n_parts + 1, np.int64),
               np.zeros(n_parts + 1, np.int64),
               np.zeros((n_parts + 1, n), index), np.zeros((n_parts + 1, n), index),
               none if reset_every is None else reset_every, none if reset_phase is None else reset_phase,
               none if reset_state is None else reset_state)


def new_counts(n_cores: int, n_paths: int, n_pops: int, n_parts: int) -> Counts:
    ints = (lambda *shape: np.zeros(shape, np.int64))
    return Counts(ints(1), ints(n_pops), ints(n_cores), ints(n_cores), ints(n_cores), ints(n_cores), ints(n_cores),
                  ints(n_cores + 1), ints(n_cores + 1), ints(n_cores + 1), ints(n_cores + 1), ints(n_cores + 1),
                  np.zeros(n_cores + 1), ints(n_paths), np.zeros(n_cores), np.zeros(n_cores),
                  ints(n_parts, n_cores), ints(n_parts, n_paths), ints(n_cores + 1), ints(n_cores + 1),
                  ints(n_cores + 1), ints(n_cores + 1))


@nb.njit(cache=True, nogil=True)
def balance(load, bounds):
    """Cut the cores into ``len(bounds) - 1`` consecutive ranges of about equal sums of ``load``."""
    n_ranges, total = bounds.shape[0] - 1, load.sum()
    bounds[0], bounds[n_ranges] = 0, load.shape[0]
    running, c = 0, 0
    for k in range(1, n_ranges):
        share = total * k / n_ranges
        while c < load.shape[0] and running < share:      # the first core whose prefix reaches the share
            running += load[c]
            c += 1
        bounds[k] = c


@nb.njit(cache=True, nogil=True)
def update_neurons(net, table, sim, counts, updated, count_active, slot):
    """Every population's program on the input of delay slot ``slot``; those not ``updated`` send
    nothing and keep their state and input. With ``count_active``, which updates are active, per
    core (`running_per_core`)."""
    acc = sim.acc[slot]
    if count_active:
        for p in range(table.kind.shape[0]):
            d0, n = table.dendrite[p], table.hi[p] - table.lo[p]
            mark_active(table, p, acc[d0:d0 + n * table.ports[p]].reshape(table.ports[p], n), sim.active)
        running_per_core(net.core_of, sim.active, sim.active_upto, sim.core_active)
    for p in range(table.kind.shape[0]):
        lo, hi, d0 = table.lo[p], table.hi[p], table.dendrite[p]
        if updated[p]:
            dendrites = acc[d0:d0 + (hi - lo) * table.ports[p]].reshape(table.ports[p], hi - lo)
            counts.overflow[p] = run_program(table, p, dendrites, sim.payload[lo:hi])
        else:
            sim.payload[lo:hi] = 0
            counts.overflow[p] = 0


@nb.njit(cache=True, nogil=True)
def send(net, sim, counts, arrival, synapses, per_message, t):
    """Step ``t``'s events: their messages counted, delivered and timed (see the module's docstring).
    Returns the message buffers, grown if this step needed more room."""
    n_cores = counts.synops.shape[0]
    for a in (counts.active, counts.synops, counts.reads, counts.msgs_in, counts.bits_in, counts.spikes,
              counts.msgs_out, counts.bits_out, counts.hops, counts.links, counts.path_msgs, counts.msgs_before,
              counts.events_before):
        a[:] = 0
    counts.network_pj[:] = 0.0
    counts.msgs_to[:] = 0
    counts.path_parts[:] = 0
    n_events = find_events(sim.payload, sim.events)
    counts.events[0] = n_events
    emission_times(net, sim.events, n_events, sim.t_emit, counts.msgs_before, counts.events_before,
                   sim.active_upto)
    counts.active[:] = sim.core_active
    for e in range(n_events):
        source = net.core_of[sim.events[e]]
        counts.spikes[source if source >= 0 else n_cores] += 1
    split_events(net, sim.events, n_events, sim.chunk_bounds, counts.last_event)
    few = counts.msgs_before.sum() < SERIAL_MESSAGES
    args = (net, sim.events, sim.chunk_bounds, sim.core_bounds, counts.msgs_out, counts.bits_out, counts.hops,
            counts.links, counts.network_pj, counts.msgs_to, counts.path_parts, sim.axon_split, sim.syn_split)
    if few:
        count_sent_serial(*args)
    else:
        count_sent(*args)
    for k in range(counts.msgs_to.shape[0]):
        for c in range(n_cores):
            counts.msgs_in[c] += counts.msgs_to[k, c]
        for path in range(counts.path_msgs.shape[0]):
            counts.path_msgs[path] += counts.path_parts[k, path]
    for c in range(n_cores):
        counts.bucket_ptr[c + 1] = counts.bucket_ptr[c] + counts.msgs_in[c]
    needed = counts.bucket_ptr[n_cores] if per_message else 0       # without timing, no message is kept
    if needed > arrival.shape[0]:
        room = max(needed + needed // 4, 1024)          # some room for the next steps' few more
        arrival, synapses = np.zeros(room, arrival.dtype), np.zeros(room, synapses.dtype)
    slots = sim.acc.shape[0]
    slot_of_delay = (t + 1 + np.arange(slots)) % slots       # an input of delay d is read d + 1 steps on
    args2 = (net, sim.events, n_events, sim.core_bounds, sim.axon_split, sim.syn_split, sim.t_emit, sim.payload,
             per_message, counts.bucket_ptr, sim.acc, slot_of_delay, counts.synops, counts.reads, counts.bits_in,
             counts.msgs_in, counts.synapse_done_ns, arrival, synapses)
    if few:
        deliver_serial(*args2)
    else:
        deliver(*args2)
    balance(counts.msgs_in, sim.core_bounds)                 # the next step's split; only speed depends on it
    for c in range(n_cores):
        counts.neuron_done_ns[c] = (net.core_update_ns[c]
                                    + counts.active[c] * net.t_active_ns + counts.spikes[c] * net.t_spike_ns
                                    + counts.msgs_out[c] * net.t_message_ns)
    return arrival, synapses


@nb.njit(cache=True, nogil=True)
def reset_due(table, sim, t):
    """The populations due a reset at step ``t`` of a sample back to their initial state (their
    accumulators, which hold input already sent, stay)."""
    for p in range(sim.reset_every.shape[0]):
        every = sim.reset_every[p]
        if every > 0 and t % every == sim.reset_phase[p]:
            for s in range(table.state_lo[p], table.state_hi[p]):
                table.state[s] = sim.reset_state[s]


@nb.njit(cache=True, nogil=True)
def step(net, table, sim, counts, arrival, synapses, updated, count_active, per_message, t):
    """Timestep ``t``: the populations due a reset reset (`reset_due`), the programs update
    (`update_neurons`), then their events are sent (`send`)."""
    reset_due(table, sim, t)
    update_neurons(net, table, sim, counts, updated, count_active, t % sim.acc.shape[0])
    return send(net, sim, counts, arrival, synapses, per_message, t)
