"""The event kernels: send each event's messages, apply synapses, time the synapse units.

One timestep's traffic is handled in passes over flat arrays:

1. ``emission_times`` (serial, in event order): when each event's first message leaves
   its core.
2. ``count_sent`` (parallel over chunks of events, each holding all events of its sources,
   ``split_events``): every source's messages, bits, hops, link crossings and network
   energy, summed in event order as a serial pass would, and each chunk's messages per
   destination core and per path.
3. ``deliver`` (parallel over ranges of destination cores): every event's messages into
   the range are delivered. A message applies its axon's synapses to the accumulators of
   its core's dendrites in the delay slot its axon's delay names (each core's dendrites
   belong to one range, so no two threads touch one accumulator), counts its synaptic ops,
   synaptic-memory reads and bits and, with per-message timing, is put in its core's bucket
   with its arrival time (emission + path latency). Each core's synapse unit is then timed
   as a first-in first-out server: messages are served in arrival order, ties in the order
   they were sent, each taking ``t_message_in + synapses * t_synop``.

Integer sums do not depend on their order, so the split over threads changes no result; a
float graph's sums do, and each accumulator gets its contributions in ascending source
order whatever the split (a core's dendrites are summed by one thread, events in order).
Events are read in order, so each event's axons and synapses, stored per source neuron,
are read as one stretch of memory; the next events' stretches are prefetched meanwhile.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from neurosim.mapping.routes import reads as synmem_words

CACHE_LINE_BYTES = 64
PREFETCH_AHEAD = 2          # events: how far ahead their axons are asked for
MIXED_EXP = -(1 << 30)      # a neuron's weight exponent when its axons have different exponents or delays
MAX_INSERTION_MOVES = 8     # per message; beyond, a core's messages are merge-sorted instead
READS_TABLE = 256           # messages of fewer synapses look their memory reads up
SLOTS_PER_VALUE = 2         # arrival_order's time slots per message: few share one, even when bunched


class Network(NamedTuple):
    """What the kernels read of a mapped graph and its costs; fixed for a run.

    Neuron ``n``'s axons are ``axon_ptr[n]:axon_ptr[n+1]``, sorted by destination core, and its
    synapses ``syn_ptr[n]:syn_ptr[n+1]``, its axons' ``axon_synapses`` one after another, all
    of an axon on ``axon_core[a]``; a synapse's target counts from that core's first dendrite.
    """

    core_of: np.ndarray           # [n_neurons] its core, or -1 for the host
    core_update_ns: np.ndarray    # float64 [n_cores] a step's neuron updates on each core, together
    update_done_ns: np.ndarray    # float64 [n_neurons] when a neuron's update is done, its core's neurons
    #                               updated in order, each its program's time (`neurosim.engine.engine.update_times`)
    message_bits: np.ndarray      # [n_neurons] bits of each message it sends
    axon_ptr: np.ndarray          # [n_neurons + 1]
    neuron_exp: np.ndarray        # int32 [n_neurons] weight exponent of all its axons, or MIXED_EXP
    neuron_delay: np.ndarray      # [n_neurons] delay of all its axons (when neuron_exp is not MIXED_EXP)
    neuron_hops: np.ndarray       # [n_neurons] on-chip hops summed over its axons
    neuron_links: np.ndarray      # [n_neurons] link crossings summed over its axons
    axon_core: np.ndarray         # [n_axons] destination core
    axon_path: np.ndarray         # [n_axons] index into path_latency_ns and path_energy_pj
    axon_synapses: np.ndarray     # [n_axons] synapse count
    axon_proj: np.ndarray         # [n_axons] its projection
    proj_exp: np.ndarray          # [n_projections] weight exponent
    proj_delay: np.ndarray        # [n_projections] extra timesteps
    proj_syn_bits: np.ndarray     # [n_projections] synaptic-memory bits of a synapse
    word_bits: int                # of synaptic memory
    proj_reads: np.ndarray        # [n_projections, READS_TABLE] words a message of so many synapses reads
    axon_run: np.ndarray          # bool [n_axons] its synapses' targets are consecutive dendrites
    syn_ptr: np.ndarray           # [n_neurons + 1]
    syn_target: np.ndarray        # [n_synapses] dendrite, from its core's first (core_dendrite)
    syn_weight: np.ndarray        # [n_synapses] int8
    core_dendrite: np.ndarray     # [n_cores] first dendrite of each core
    path_latency_ns: np.ndarray   # [n_paths]
    path_energy_pj: np.ndarray    # [n_paths]
    t_active_ns: float            # more, for an active update
    t_spike_ns: float             # an event leaving the neuron unit
    t_message_ns: float           # one message generated (axon out)
    t_message_in_ns: float        # one message received (axon in)
    host_message_ns: float        # one message sent by the host
    t_synop_ns: float


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the processor to start loading ``array[index]`` into its caches, without waiting."""
    if not isinstance(array, types.Array) or array.ndim != 1 or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
        pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        llvm_prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch", [pointer.type], ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32]))
        builder.call(llvm_prefetch, [pointer, i32(0), i32(3), i32(1)])   # read, keep in all caches, data
        return context.get_dummy_value()

    return types.void(array, index), codegen


@nb.njit(cache=True, nogil=True)
def prefetch_range(array, lo, hi):
    """`prefetch` every cache line of ``array[lo:hi]``."""
    step = max(1, CACHE_LINE_BYTES // max(abs(array.strides[0]), 1))    # numpy gives empty arrays stride 0
    for i in range(lo, hi, step):
        prefetch(array, i)


@nb.njit(cache=True, nogil=True)
def find_events(payload, out):
    """Indices of nonzero payloads, in order; returns how many."""
    n = 0
    for i in range(payload.shape[0]):
        if payload[i] != 0:
            out[n] = i
            n += 1
    return n


@nb.njit(cache=True, nogil=True)
def emission_times(net, events, n_events, t_emit, msgs_before, events_before, active_upto):
    """When each event's first message leaves its core (less one message's time).

    A core updates its neurons in order, each taking its program's time (``update_done_ns``: when
    ``n``'s is done) and ``t_active_ns`` more for each active one (``active_upto[n]``: active
    neurons of ``n``'s core up to and including ``n``); an event then leaves the neuron unit
    (``t_spike_ns``) and its messages are generated, ``t_message_ns`` each. The
    host sends its messages one after another, ``host_message_ns`` each. ``msgs_before`` and
    ``events_before`` count what each core (index ``n_cores``: the host) already sent, and
    are updated.
    """
    host = msgs_before.shape[0] - 1
    for e in range(n_events):
        n = events[e]
        c = net.core_of[n]
        n_msgs = net.axon_ptr[n + 1] - net.axon_ptr[n]
        if c < 0:
            t_emit[e] = msgs_before[host] * net.host_message_ns
            msgs_before[host] += n_msgs
        else:
            events_before[c] += 1
            t_emit[e] = (net.update_done_ns[n] + active_upto[n] * net.t_active_ns
                         + events_before[c] * net.t_spike_ns + msgs_before[c] * net.t_message_ns)
            msgs_before[c] += n_msgs


@nb.njit(cache=True, nogil=True)
def split_events(net, events, n_events, bounds, last_event):
    """Cut the events into ``len(bounds) - 1`` chunks of about equal message counts.

    Chunk ``k`` is ``events[bounds[k]:bounds[k+1]]``; a cut is placed only where every source (a
    core, or the host) has all its events on one side of it, so that one chunk holds all events
    of a source, in order. (A core's events need not be next to each other: the neurons of a
    core shared by several populations are not one range.) ``last_event`` is scratch of
    ``n_cores + 1`` integers. Chunks may be empty.
    """
    core_of, axon_ptr = net.core_of, net.axon_ptr
    host = last_event.shape[0] - 1
    n_chunks = bounds.shape[0] - 1
    total = 0
    for e in range(n_events):
        total += axon_ptr[events[e] + 1] - axon_ptr[events[e]]
        source = core_of[events[e]]
        last_event[source if source >= 0 else host] = e
    bounds[:] = n_events
    bounds[0] = 0
    k, sent, reach = 1, 0, -1           # reach: the last event of any source seen so far
    for e in range(n_events):
        if k < n_chunks and sent * n_chunks >= total * k and reach < e:
            bounds[k] = e
            k += 1
        source = core_of[events[e]]
        reach = max(reach, last_event[source if source >= 0 else host])
        sent += axon_ptr[events[e] + 1] - axon_ptr[events[e]]


@nb.njit(cache=True, nogil=True)
def count_chunk(net, k, events, bounds, core_bounds, msgs_out, bits_out, hops_out, links_out, net_pj, msgs_to,
                path_msgs, axon_split, syn_split):
    """`count_sent` for chunk ``k`` of the events."""
    axon_ptr, axon_core = net.axon_ptr, net.axon_core
    host = msgs_out.shape[0] - 1
    n_ranges = core_bounds.shape[0] - 1
    for e in range(bounds[k], bounds[k + 1]):
        if e + PREFETCH_AHEAD < bounds[k + 1]:
            ahead = events[e + PREFETCH_AHEAD]
            prefetch_range(axon_core, axon_ptr[ahead], axon_ptr[ahead + 1])
        n = events[e]
        src = net.core_of[n] if net.core_of[n] >= 0 else host
        a0, a1 = axon_ptr[n], axon_ptr[n + 1]
        msgs_out[src] += a1 - a0
        bits_out[src] += (a1 - a0) * net.message_bits[n]
        hops_out[src] += net.neuron_hops[n]
        links_out[src] += net.neuron_links[n]
        syn = net.syn_ptr[n]
        axon_split[0, e] = a0
        syn_split[0, e] = syn
        j = 1
        energy_pj = net_pj[src]          # the source's running sum, added to axon by axon
        for a in range(a0, a1):
            dst = axon_core[a]
            while j < n_ranges and dst >= core_bounds[j]:
                axon_split[j, e] = a
                syn_split[j, e] = syn
                j += 1
            path = net.axon_path[a]
            energy_pj += net.path_energy_pj[path]
            msgs_to[k, dst] += 1
            path_msgs[k, path] += 1
            syn += net.axon_synapses[a]
        net_pj[src] = energy_pj
        for i in range(j, n_ranges + 1):
            axon_split[i, e] = a1
            syn_split[i, e] = syn


@nb.njit(cache=True, nogil=True, parallel=True)
def count_sent(net, events, bounds, core_bounds, msgs_out, bits_out, hops_out, links_out, net_pj, msgs_to, path_msgs,
               axon_split, syn_split):
    """Count every chunk's messages at their source, in ``msgs_to[k, core]`` at their destination
    and in ``path_msgs[k, path]`` by path.

    A neuron's hops and link crossings are summed over its axons beforehand; its network
    energy is added axon by axon. As each event's axons go by, ``axon_split[j, e]`` is set
    to the first of them into core ``core_bounds[j]`` or later, and ``syn_split[j, e]`` to
    that axon's first synapse, for `deliver`.
    """
    for k in nb.prange(bounds.shape[0] - 1):
        count_chunk(net, k, events, bounds, core_bounds, msgs_out, bits_out, hops_out, links_out, net_pj, msgs_to,
                    path_msgs, axon_split, syn_split)


@nb.njit(cache=True, nogil=True)
def count_sent_serial(net, events, bounds, core_bounds, msgs_out, bits_out, hops_out, links_out, net_pj, msgs_to,
                      path_msgs, axon_split, syn_split):
    """`count_sent` on one thread."""
    for k in range(bounds.shape[0] - 1):
        count_chunk(net, k, events, bounds, core_bounds, msgs_out, bits_out, hops_out, links_out, net_pj, msgs_to,
                    path_msgs, axon_split, syn_split)


def weighted(weight, payload, exp):
    """A synapse's contribution: ``shift(weight * payload, exp)`` in integers; in a float
    graph ``weight * payload`` in float32 (its exponent is 0)."""


@overload(weighted, inline="always")
def _weighted(weight, payload, exp):
    if isinstance(payload, types.Float):
        return lambda weight, payload, exp: weight * payload

    def integer(weight, payload, exp):
        x = np.int64(weight) * payload
        return (x << exp) if exp >= 0 else (x >> -exp)
    return integer


def apply_run(row, base, weight, lo, n, payload, exp):
    """``row[base + i] += weighted(weight[lo + i], payload, exp)`` for ``i < n``: the synapses of
    a message whose targets are consecutive, in a loop the compiler can vectorise."""


@overload(apply_run, inline="always")
def _apply_run(row, base, weight, lo, n, payload, exp):
    if isinstance(payload, types.Float):
        def floats(row, base, weight, lo, n, payload, exp):
            for i in range(n):
                row[base + i] += weight[lo + i] * payload
        return floats

    def integer(row, base, weight, lo, n, payload, exp):
        if exp >= 0:                     # (w p) << e == w (p << e) in two's complement
            scaled = np.int64(payload) << exp
            for i in range(n):
                row[base + i] += np.int64(weight[lo + i]) * scaled
        else:
            for i in range(n):
                row[base + i] += (np.int64(weight[lo + i]) * payload) >> -exp
    return integer


@nb.njit(cache=True, nogil=True)
def apply_synapses(net, lo, hi, payload, exp, acc, first):
    """``acc[first + target] += weighted(weight, payload, exp)`` over the synapses ``lo:hi``."""
    for s in range(lo, hi):
        acc[first + net.syn_target[s]] += weighted(net.syn_weight[s], payload, exp)


@nb.njit(cache=True, nogil=True, inline="always")
def message_reads(net, proj, synapses):
    """Synaptic-memory words a message of ``synapses`` synapses of projection ``proj`` reads
    (`neurosim.mapping.routes.reads`; from a table for the common small counts)."""
    if synapses < READS_TABLE:
        return net.proj_reads[proj, synapses]
    return synmem_words(synapses, net.proj_syn_bits[proj], net.word_bits)


@nb.njit(cache=True, nogil=True, inline="never")
def apply_row(row, base, weight, lo, n, payload, exp):
    """`apply_run` as a call of its own: kept out of the per-message loop, whose messages mostly
    carry one synapse, so that the loop stays small."""
    apply_run(row, base, weight, lo, n, payload, exp)


@nb.njit(cache=True, nogil=True)
def deliver_to_range(net, k, events, n_events, core_bounds, axon_split, syn_split, t_emit, payload, per_message,
                     bucket_ptr, acc, slot_of_delay, synops, reads, bits_in, msg_arrival, msg_synapses):
    """Every event's messages into range ``k`` of cores: apply their synapses, count their
    synaptic ops, memory reads and bits and, with ``per_message``, put them in their cores'
    buckets in sending order."""
    c0 = core_bounds[k]
    fill = bucket_ptr[c0:core_bounds[k + 1]].copy()
    for e in range(n_events):
        if e + PREFETCH_AHEAD < n_events:
            prefetch_range(net.axon_core, axon_split[k, e + PREFETCH_AHEAD], axon_split[k + 1, e + PREFETCH_AHEAD])
        if e + 1 < n_events:
            prefetch_range(net.syn_target, syn_split[k, e + 1], syn_split[k + 1, e + 1])
            prefetch_range(net.syn_weight, syn_split[k, e + 1], syn_split[k + 1, e + 1])
        n = events[e]
        a0, a1 = axon_split[k, e], axon_split[k + 1, e]
        if a0 == a1:
            continue
        p, exp, bits = payload[n], net.neuron_exp[n], net.message_bits[n]
        row = acc[slot_of_delay[net.neuron_delay[n]]]
        step_ns = net.host_message_ns if net.core_of[n] < 0 else net.t_message_ns
        before = net.axon_ptr[n] - 1            # axon a is message a - before of its event
        syn = syn_split[k, e]
        for a in range(a0, a1):
            dst, synapses = net.axon_core[a], net.axon_synapses[a]
            first = net.core_dendrite[dst]
            if exp == MIXED_EXP:
                j = net.axon_proj[a]
                apply_synapses(net, syn, syn + synapses, p, net.proj_exp[j], acc[slot_of_delay[net.proj_delay[j]]],
                               first)
            elif synapses > 1 and net.axon_run[a]:      # a row of a dense matrix: no target to look up
                apply_row(row, first + net.syn_target[syn], net.syn_weight, syn, synapses, p, exp)
            else:                           # `apply_synapses`, written out: a call per message costs
                for s in range(syn, syn + synapses):
                    row[first + net.syn_target[s]] += weighted(net.syn_weight[s], p, exp)
            syn += synapses
            synops[dst] += synapses
            reads[dst] += message_reads(net, net.axon_proj[a], synapses)
            bits_in[dst] += bits
            if per_message:
                m = fill[dst - c0]
                fill[dst - c0] += 1
                msg_arrival[m] = t_emit[e] + (a - before) * step_ns + net.path_latency_ns[net.axon_path[a]]
                msg_synapses[m] = synapses


@nb.njit(cache=True, nogil=True)
def arrival_order(arrival, synapses, ordered, ordered_synapses, scratch):
    """Write to ``ordered`` the arrivals in ascending order, ties in the order they came (a stable
    sort), and to ``ordered_synapses`` the synapse counts in the same order, in linear time.

    The span from first to last is cut into `SLOTS_PER_VALUE` times as many equal slots as
    there are values; one counting pass puts the messages in slot order (stable), and an
    insertion sort orders those that share a slot (few). Should that take too many moves
    (values bunched in a few slots), a merge sort does it instead. ``scratch`` holds at least
    ``(2 SLOTS_PER_VALUE + 1) n + 2`` integers.
    """
    n = arrival.shape[0]
    first, last = arrival[0], arrival[0]
    for i in range(1, n):
        first, last = min(first, arrival[i]), max(last, arrival[i])
    if not last > first:          # one value, or all equal
        ordered[:n] = arrival
        ordered_synapses[:n] = synapses
        return
    slots = 1
    while slots < SLOTS_PER_VALUE * n:
        slots *= 2
    counts, slot_of = scratch[:slots + 1], scratch[slots + 1:slots + 1 + n]
    counts[:] = 0
    scale = slots / (last - first)
    for i in range(n):
        x = (arrival[i] - first) * scale            # monotonic in arrival
        slot = int(x) if x < slots - 1 else slots - 1
        slot_of[i] = slot
        counts[slot + 1] += 1
    for b in range(1, slots + 1):
        counts[b] += counts[b - 1]
    for i in range(n):
        at = counts[slot_of[i]]
        counts[slot_of[i]] += 1
        ordered[at] = arrival[i]
        ordered_synapses[at] = synapses[i]
    moves, max_moves = 0, MAX_INSERTION_MOVES * n
    for i in range(1, n):
        a, k = ordered[i], ordered_synapses[i]
        j = i
        while j > 0 and ordered[j - 1] > a:
            ordered[j], ordered_synapses[j] = ordered[j - 1], ordered_synapses[j - 1]
            j -= 1
        ordered[j], ordered_synapses[j] = a, k
        moves += i - j
        if moves > max_moves:
            order = np.argsort(arrival, kind="mergesort")
            for r in range(n):
                ordered[r], ordered_synapses[r] = arrival[order[r]], synapses[order[r]]
            return


@nb.njit(cache=True, nogil=True)
def synapse_unit_done_ns(msg_arrival, msg_synapses, t_message_in_ns, t_synop_ns, ordered, ordered_synapses, scratch):
    """When a synapse unit serving these messages first-in first-out is done: each takes
    ``t_message_in_ns`` and ``t_synop_ns`` per synapse."""
    t = 0.0
    n = msg_arrival.shape[0]
    if n:
        arrival_order(msg_arrival, msg_synapses, ordered, ordered_synapses, scratch)
        for r in range(n):
            start = ordered[r] if ordered[r] > t else t
            t = start + t_message_in_ns + ordered_synapses[r] * t_synop_ns
    return t


@nb.njit(cache=True, nogil=True)
def deliver_range(net, k, events, n_events, core_bounds, axon_split, syn_split, t_emit, payload, per_message,
                  bucket_ptr, acc, slot_of_delay, synops, reads, bits_in, msgs_in, synapse_done_ns, msg_arrival,
                  msg_synapses):
    """`deliver` for range ``k`` of the cores: its messages, then its synapse units' timing."""
    c0, c1 = core_bounds[k], core_bounds[k + 1]
    deliver_to_range(net, k, events, n_events, core_bounds, axon_split, syn_split, t_emit, payload, per_message,
                     bucket_ptr, acc, slot_of_delay, synops, reads, bits_in, msg_arrival, msg_synapses)
    if not per_message:
        for c in range(c0, c1):
            synapse_done_ns[c] = msgs_in[c] * net.t_message_in_ns + synops[c] * net.t_synop_ns
        return
    longest = 0
    for c in range(c0, c1):
        longest = max(longest, bucket_ptr[c + 1] - bucket_ptr[c])
    ordered, ordered_synapses = np.empty(longest), np.empty(longest, msg_synapses.dtype)
    scratch = np.empty((2 * SLOTS_PER_VALUE + 1) * longest + 2, np.int32)
    for c in range(c0, c1):
        lo, hi = bucket_ptr[c], bucket_ptr[c + 1]
        synapse_done_ns[c] = synapse_unit_done_ns(msg_arrival[lo:hi], msg_synapses[lo:hi], net.t_message_in_ns,
                                                  net.t_synop_ns, ordered, ordered_synapses, scratch)


@nb.njit(cache=True, nogil=True, parallel=True)
def deliver(net, events, n_events, core_bounds, axon_split, syn_split, t_emit, payload, per_message, bucket_ptr, acc,
            slot_of_delay, synops, reads, bits_in, msgs_in, synapse_done_ns, msg_arrival, msg_synapses):
    """Deliver every event's messages to each range of cores and time their synapse units (see module doc).

    Range ``k`` is the cores ``core_bounds[k]:core_bounds[k+1]``; event ``e``'s axons into it
    are ``axon_split[k, e]:axon_split[k+1, e]`` and their synapses ``syn_split[k, e]:syn_split[k+1, e]``
    (from `count_sent`). Core ``c``'s messages, their arrival times and synapse counts, go to
    ``bucket_ptr[c]:bucket_ptr[c+1]``. ``acc`` holds the dendrites' accumulators per delay
    slot; an axon of delay ``d`` adds to slot ``slot_of_delay[d]``. A neuron whose axons share
    one weight exponent and one delay has its synapses into a range applied in one sweep.
    """
    for k in nb.prange(core_bounds.shape[0] - 1):
        deliver_range(net, k, events, n_events, core_bounds, axon_split, syn_split, t_emit, payload, per_message,
                      bucket_ptr, acc, slot_of_delay, synops, reads, bits_in, msgs_in, synapse_done_ns, msg_arrival,
                      msg_synapses)


@nb.njit(cache=True, nogil=True)
def deliver_serial(net, events, n_events, core_bounds, axon_split, syn_split, t_emit, payload, per_message, bucket_ptr,
                   acc, slot_of_delay, synops, reads, bits_in, msgs_in, synapse_done_ns, msg_arrival, msg_synapses):
    """`deliver` on one thread, for steps with few messages, where waking the other threads
    would cost more than the work."""
    for k in range(core_bounds.shape[0] - 1):
        deliver_range(net, k, events, n_events, core_bounds, axon_split, syn_split, t_emit, payload, per_message,
                      bucket_ptr, acc, slot_of_delay, synops, reads, bits_in, msgs_in, synapse_done_ns, msg_arrival,
                      msg_synapses)


SERIAL_MESSAGES = 4096      # steps sending fewer messages than this run on one thread
