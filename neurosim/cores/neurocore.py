"""The `neurocore` kind (Loihi-style): its per-op costs and its barrier-synchronised step.

Costs per timestep, per core:

- synapse energy: synaptic ops x ``energy_pj.synop``
- neuron energy:  neurons x ``energy_pj.neuron_update`` + messages generated x ``energy_pj.spike_out``
- network energy: per message, its on-chip hops (E-W and N-S priced apart), its link crossings
  (``message_bits`` x the link's pJ/bit), or ``noc.local_pj`` within one router
- static energy:  added at the system level from the step's duration

A core's busy time is the later of its neuron unit (neurons x ``time_ns.neuron_update`` +
messages x ``time_ns.spike_out``) and its synapse unit (its message queue, see
`neurosim.engine.kernels`). A chip's step ends when its busiest core does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurosim.engine.engine import StepCounters, TimingCosts
from neurosim.mapping.mapper import HOST, Mapping
from neurosim.spec.chip import ChipFile

COMPONENTS = ("synapse", "neuron", "network", "static")


def timing_costs(chip: ChipFile, mapping: Mapping) -> TimingCosts:
    """Per-op times, and the latency and energy of each distinct path an axon takes."""
    noc, system, core = chip.chip.noc, chip.system, chip.core
    r = mapping.routes
    src = np.repeat(np.arange(mapping.n_neurons), np.diff(r.axon_ptr))
    from_host = (mapping.core_of[src] == HOST).astype(np.int64)
    paths, axon_path = _distinct_rows((r.hops_ew, r.hops_ns, r.links - from_host, from_host))
    hops_ew, hops_ns, chip_links, from_host = paths
    bits = noc.message_bits
    latency = (hops_ew * noc.hop_ns_east_west + hops_ns * noc.hop_ns_north_south
               + chip_links * system.link.latency_ns + from_host * system.host.latency_ns)
    energy = (hops_ew * noc.hop_pj_east_west + hops_ns * noc.hop_pj_north_south
              + chip_links * system.link.energy_pj_per_bit * bits + from_host * system.host.energy_pj_per_bit * bits)
    local = (hops_ew + hops_ns + chip_links + from_host) == 0
    latency = np.where(local, noc.local_ns, latency).astype(np.float64)
    energy = np.where(local, noc.local_pj, energy).astype(np.float64)
    return TimingCosts(t_update_ns=core.time_ns.neuron_update, t_message_ns=core.time_ns.spike_out,
                       t_synop_ns=core.time_ns.synop,
                       host_message_ns=bits / system.host.bandwidth_bits_per_s * 1e9,
                       path_latency_ns=latency, path_energy_pj=energy, axon_path=axon_path)


def _distinct_rows(columns: tuple[np.ndarray, ...]) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The distinct rows of non-negative integer columns, and each row's index among them.

    Rows are numbered in mixed radix; a table over all numbers up to the largest marks those
    present, which for the few hop and link counts of a system is far quicker than sorting.
    """
    columns = tuple(np.asarray(col, np.int64) for col in columns)
    radix = [int(col.max(initial=0)) + 1 for col in columns]
    key = np.zeros(len(columns[0]), np.int64)
    for col, base in zip(columns, radix):
        key = key * base + col
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
    """One step's dynamic energy per core (pJ) by component, and per-core busy time (ns)."""

    synapse_pj: np.ndarray      # [n_cores]
    neuron_pj: np.ndarray       # [n_cores]
    network_pj: np.ndarray      # [n_cores + 1], last entry: the host's messages
    busy_ns: np.ndarray         # [n_cores]
    chip_busy_ns: np.ndarray    # [n_chips used]
    bound: int                  # 0: a neuron unit set the step, 1: a synapse unit (with message arrival)


def step_cost(chip: ChipFile, mapping: Mapping, c: StepCounters, neurons_per_core: np.ndarray,
              chip_index: np.ndarray, n_chips: int) -> StepCost:
    e = chip.core.energy_pj
    n = mapping.n_cores
    synapse = c.synops * e.synop
    neuron = neurons_per_core * e.neuron_update + c.msgs_out[:n] * e.spike_out
    busy = np.maximum(c.neuron_done_ns, c.synapse_done_ns)
    chip_busy = np.zeros(n_chips)
    np.maximum.at(chip_busy, chip_index, busy)
    bound = int(c.synapse_done_ns.max(initial=0.0) > c.neuron_done_ns.max(initial=0.0))
    return StepCost(synapse, neuron, c.network_pj, busy, chip_busy, bound)
