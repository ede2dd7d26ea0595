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

from dataclasses import dataclass

import numpy as np

from neurosim.engine.engine import StepCounters, TimingCosts
from neurosim.mapping.mapper import HOST, Mapping
from neurosim.spec.chip import ChipFile

COMPONENTS = ("synapse", "neuron", "network", "static")


def timing_costs(chip: ChipFile, mapping: Mapping) -> TimingCosts:
    """Per-op times and each axon's path latency and energy, from the spec."""
    noc, system, core = chip.chip.noc, chip.system, chip.core
    r = mapping.routes
    src = np.repeat(np.arange(mapping.n_neurons), np.diff(r.axon_ptr))
    from_host = mapping.core_of[src] == HOST
    chip_links = r.links - from_host
    bits = noc.message_bits
    latency = (r.hops_ew * noc.hop_ns_east_west + r.hops_ns * noc.hop_ns_north_south
               + chip_links * system.link.latency_ns + from_host * system.host.latency_ns)
    energy = (r.hops_ew * noc.hop_pj_east_west + r.hops_ns * noc.hop_pj_north_south
              + chip_links * system.link.energy_pj_per_bit * bits + from_host * system.host.energy_pj_per_bit * bits)
    local = (r.hops_ew + r.hops_ns + r.links) == 0
    latency = np.where(local, noc.local_ns, latency).astype(np.float64)
    energy = np.where(local, noc.local_pj, energy).astype(np.float64)
    return TimingCosts(t_update_ns=core.time_ns.neuron_update, t_message_ns=core.time_ns.spike_out,
                       t_synop_ns=core.time_ns.synop,
                       host_message_ns=bits / system.host.bandwidth_bits_per_s * 1e9,
                       axon_latency_ns=latency, axon_energy_pj=energy)


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
