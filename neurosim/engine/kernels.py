"""The event kernels: send each event's messages, apply synapses, time the synapse units.

One timestep's traffic is handled in two passes:

1. ``route_messages`` (serial, in event order): every event sends one message per output
   axon; the message is counted at its source (messages, hops, network energy), given an
   arrival time (emission + path latency) and put in its destination core's bucket.
2. ``apply_messages`` (parallel over destination cores): each core applies its messages'
   synapses to its own neurons' accumulators (no two cores touch the same neuron), counts
   synaptic ops, and times its synapse unit as a first-in first-out server: messages are
   served in arrival order, each taking ``synapses * t_synop``.
"""

from __future__ import annotations

import numba as nb
import numpy as np


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
def emission_times(events, n_events, core_of, core_lo, t_update_ns, t_message_ns, host_message_ns,
                   axon_ptr, t_emit, msgs_before):
    """When each event's first message leaves its core.

    A core updates its neurons in order, ``t_update_ns`` each, and a spiking neuron then
    generates its messages, ``t_message_ns`` each. The host sends its messages one after
    another, ``host_message_ns`` each. ``msgs_before`` counts messages already generated on
    each core (index ``n_cores`` is the host) and is updated.
    """
    host = msgs_before.shape[0] - 1
    for e in range(n_events):
        n = events[e]
        c = core_of[n]
        n_msgs = axon_ptr[n + 1] - axon_ptr[n]
        if c < 0:
            t_emit[e] = msgs_before[host] * host_message_ns
            msgs_before[host] += n_msgs
        else:
            t_emit[e] = (n - core_lo[c] + 1) * t_update_ns + msgs_before[c] * t_message_ns
            msgs_before[c] += n_msgs


@nb.njit(cache=True, nogil=True)
def route_messages(events, n_events, t_emit, payload, core_of, axon_ptr, axon_core, axon_latency_ns,
                   axon_energy_pj, axon_hops, axon_links, t_message_ns, host_message_ns,
                   msgs_out, hops_out, links_out, net_pj, bucket_ptr, msg_axon, msg_payload, msg_arrival):
    """Count every message at its source and bucket it by destination core (see module doc)."""
    n_cores = bucket_ptr.shape[0] - 1
    host = msgs_out.shape[0] - 1
    counts = np.zeros(n_cores + 1, np.int64)
    for e in range(n_events):
        n = events[e]
        for a in range(axon_ptr[n], axon_ptr[n + 1]):
            counts[axon_core[a] + 1] += 1
    for c in range(n_cores):
        counts[c + 1] += counts[c]
    bucket_ptr[:] = counts
    fill = counts[:-1].copy()
    for e in range(n_events):
        n = events[e]
        src = core_of[n]
        if src < 0:
            src = host
        step_ns = host_message_ns if src == host else t_message_ns
        p = payload[n]
        k = 0
        for a in range(axon_ptr[n], axon_ptr[n + 1]):
            k += 1
            msgs_out[src] += 1
            hops_out[src] += axon_hops[a]
            links_out[src] += axon_links[a]
            net_pj[src] += axon_energy_pj[a]
            m = fill[axon_core[a]]
            fill[axon_core[a]] += 1
            msg_axon[m] = a
            msg_payload[m] = p
            msg_arrival[m] = t_emit[e] + k * step_ns + axon_latency_ns[a]
    return counts[n_cores]


@nb.njit(cache=True, nogil=True, parallel=True)
def apply_messages(bucket_ptr, msg_axon, msg_payload, msg_arrival, axon_exp, axon_syn_ptr, syn_target,
                   syn_weight, acc, t_synop_ns, per_message, synops, msgs_in, synapse_done_ns):
    """Apply each core's messages to its accumulators and time its synapse unit (see module doc)."""
    n_cores = bucket_ptr.shape[0] - 1
    for c in nb.prange(n_cores):
        lo, hi = bucket_ptr[c], bucket_ptr[c + 1]
        ops = 0
        for m in range(lo, hi):
            a = msg_axon[m]
            p = msg_payload[m]
            e = axon_exp[a]
            for k in range(axon_syn_ptr[a], axon_syn_ptr[a + 1]):
                x = np.int64(syn_weight[k]) * p
                acc[syn_target[k]] += (x << e) if e >= 0 else (x >> -e)
            ops += axon_syn_ptr[a + 1] - axon_syn_ptr[a]
        synops[c] = ops
        msgs_in[c] = hi - lo
        if not per_message or hi == lo:
            synapse_done_ns[c] = ops * t_synop_ns
            continue
        order = np.argsort(msg_arrival[lo:hi])
        t = 0.0
        for r in range(hi - lo):
            m = lo + order[r]
            a = msg_axon[m]
            start = msg_arrival[m] if msg_arrival[m] > t else t
            t = start + (axon_syn_ptr[a + 1] - axon_syn_ptr[a]) * t_synop_ns
        synapse_done_ns[c] = t
