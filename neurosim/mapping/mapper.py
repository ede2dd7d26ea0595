"""Map a graph onto a chip system: slice populations, place slices on cores, build routes.

Cores are filled in order: global core ``g`` is on chip ``g // cores_per_chip``; within the
chip, cores fill router by router in row-major order. Host-side populations (inputs) are
not placed on cores; their messages enter chip 0 at router (0, 0) over the host link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim.errors import UserError
from neurosim.graph.graph import Csr, Graph
from neurosim.mapping.partition import LIMIT_NAMES, encoding_of, incoming, slice_population
from neurosim.mapping.routes import (Routes, count_axons, count_type, destinations_per_core, fill_axons, fill_hops,
                                     index_type, projection_type, rows_sorted, sort_rows)
from neurosim.programs import (KINDS, check_populations, check_projections, payload_bits_of, port_index,
                               state_bytes_of)
from neurosim.spec.chip import ArmPeSpec, ChipFile

HOST = -1


@dataclass(frozen=True)
class CoreSlice:
    population: str
    lo: int          # first neuron within the population
    hi: int          # one past the last
    core: int        # global core index, or HOST


@dataclass
class Mapping:
    offsets: dict[str, int]            # first global neuron index of each population
    core_of: np.ndarray                # int32 [n_neurons], HOST for host-side neurons
    slices: list[CoreSlice]
    n_cores: int                       # cores used
    core_chip: np.ndarray              # int32 [n_cores]
    core_x: np.ndarray                 # int32 [n_cores] router column on the system grid
    core_y: np.ndarray                 # int32 [n_cores] router row on the system grid
    utilisation: dict[str, np.ndarray]  # per core, per limit name
    limits: dict[str, float]
    routes: Routes
    core_neuron_lo: np.ndarray = field(default=None)   # int64 [n_cores] first global neuron on each core
    core_neuron_hi: np.ndarray = field(default=None)
    dend_offsets: dict[str, int] = field(default_factory=dict)   # first global dendrite of each population
    n_dendrites: int = 0                                         # neurons x their kinds' input ports
    delay_slots: int = 1                                         # 1 + the longest synaptic delay

    @property
    def n_neurons(self) -> int:
        return len(self.core_of)

    @property
    def chips_used(self) -> int:
        return int(len(np.unique(self.core_chip))) if self.n_cores else 0


def core_coordinates(chip: ChipFile, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chip index, router column, router row) on the system's grid of routers."""
    mesh = chip.chip.mesh
    cores = np.asarray(cores, dtype=np.int64)
    chip_idx = cores // chip.cores_per_chip
    router = (cores % chip.cores_per_chip) // mesh.cores_per_router
    x = (chip_idx % chip.system.chips_x) * mesh.routers_x + router % mesh.routers_x
    y = (chip_idx // chip.system.chips_x) * mesh.routers_y + router // mesh.routers_x
    return chip_idx.astype(np.int32), x.astype(np.int32), y.astype(np.int32)


def axon_hops(chip: ChipFile, mapping: "Mapping") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """XY-routing hop counts of every axon: on-chip E-W, on-chip N-S, and link crossings (the
    host's messages enter at router (0, 0) over one link)."""
    r, mesh = mapping.routes, chip.chip.mesh
    ew, ns, links = (np.zeros(r.n_axons, np.int32) for _ in range(3))
    fill_hops(r.axon_ptr, r.axon_core, mapping.core_of, mapping.core_x, mapping.core_y, mesh.routers_x, mesh.routers_y,
              ew, ns, links)
    return ew, ns, links


def _model_error(graph: Graph, where: tuple, message: str) -> UserError:
    """A mistake in the model file at the key path ``where`` (its line where known)."""
    return UserError(message, file=graph.source_file, field=".".join(where),
                     line=graph.lines.find(where) if graph.lines is not None else None)


def _fail(graph: Graph, pop: str, message: str) -> UserError:
    return _model_error(graph, ("populations", pop), message)


def _check_targets(graph: Graph) -> None:
    """Synapses live on cores: a projection into a host-side population (an input) is a mistake."""
    for name, proj in graph.projections.items():
        target = graph.populations[proj.target]
        if KINDS[target.kind].on_host:
            where = ("projections", name, "target")
            raise _model_error(graph, where, f"{proj.target!r} is a {target.kind} population on the host, which "
                                             f"takes no synaptic input; expected an on-chip population")


def _check_delays(graph: Graph, chip: ChipFile) -> None:
    """A projection's delay must fit the core's delay slots."""
    most = chip.core.limits.synaptic_delay_steps
    for name, proj in graph.projections.items():
        if proj.delay > most:
            where = ("projections", name, "delay")
            raise _model_error(graph, where, f"a delay of {proj.delay} steps, a core holds at most {most} "
                                             f"(core_kinds.{chip.chip.core_kind}.limits.synaptic_delay_steps)")


def _check_arithmetic(graph: Graph, chip: ChipFile) -> None:
    """Float neuron programs are software: they run on programmable cores (ARM PEs), not neurocores."""
    if isinstance(chip.core, ArmPeSpec):
        return
    for name, pop in graph.populations.items():
        if KINDS[pop.kind].float_valued and not KINDS[pop.kind].on_host:
            raise _model_error(graph, ("populations", name, "kind"),
                               f"{pop.kind} is a float32 program; a {chip.chip.core_kind} core runs fixed-point "
                               f"programs (expected a chip of arm_pe cores for float programs)")


def _check_weights(graph: Graph, chip: ChipFile) -> None:
    """A projection's weights must fit the core's synapse format."""
    most = chip.core.synapses.max_weight_bits
    for name, proj in graph.projections.items():
        if proj.weight_bits > most:
            where = ("projections", name, "weight_bits")
            raise _model_error(graph, where, f"{proj.weight_bits}-bit weights, the chip's synapses hold at most "
                                             f"{most} bits (core_kinds.{chip.chip.core_kind}.synapses.max_weight_bits)")


def _check_payloads(graph: Graph, chip: ChipFile) -> None:
    """A graded population's payload must fit the chip's graded messages."""
    most = chip.core.graded_payload_bits
    for name, pop in graph.populations.items():
        bits = payload_bits_of(KINDS[pop.kind], pop.params)
        if bits > most:
            where = ("populations", name, "params", "payload_bits")
            carries = f"carry at most {most} bits" if most else "carry no payload (binary spikes only)"
            raise _model_error(graph, where, f"{bits}-bit graded payloads, the chip's messages {carries} "
                                             f"(core_kinds.{chip.chip.core_kind}.graded_payload_bits)")


@dataclass
class _Placed:
    slices: list[CoreSlice]
    syn_bytes: list[float]
    fan_in: list[int]
    core_of: np.ndarray
    n_cores: int
    offsets: dict[str, int]


def _partition(graph: Graph, chip: ChipFile, incs: dict, caps: dict[str, int], offsets: dict[str, int]) -> _Placed:
    """Slice every on-chip population under its neuron cap and the core's limits; cores in order."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    n_neurons = sum(p.size for p in graph.populations.values())
    slices, syn_bytes, fan_in = [], [], []
    core_of = np.full(n_neurons, HOST, np.int32)
    next_core = 0
    for name, pop in graph.populations.items():
        kind = KINDS[pop.kind]
        if kind.on_host:
            slices.append(CoreSlice(name, 0, pop.size, HOST))
            continue
        starts, sb, fi, err = slice_population(incs[name], n_neurons, caps[name], state_bytes_of(kind, pop.params),
                                               lim.neuron_state_bytes, lim.synapse_memory_bytes, lim.memory_bytes,
                                               lim.fan_in)
        if err[0] >= 0:
            neuron, which, amount = err
            limit_name = LIMIT_NAMES[which]
            limit = getattr(lim, limit_name)
            raise _fail(graph, name, f"neuron {neuron} alone needs {amount:,} of {limit_name}, a core has "
                                     f"{limit:,} (exceeded by {amount - limit:,})")
        bounds = list(starts) + [pop.size]
        if next_core + len(starts) > chip.total_cores:
            needed = next_core + _cores_of_the_rest(graph, chip, incs, caps, list(graph.populations).index(name))
            chips = -(-needed // chip.cores_per_chip)
            raise _fail(graph, name, f"does not fit: the model needs at least {needed:,} cores ({chips:,} chips of "
                                     f"{chip.cores_per_chip:,}), the system has {chip.total_cores:,} "
                                     f"(exceeded by {needed - chip.total_cores:,}); this population is the first "
                                     f"that does not fit")
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            slices.append(CoreSlice(name, int(lo), int(hi), next_core))
            core_of[offsets[name] + lo: offsets[name] + hi] = next_core
            next_core += 1
        syn_bytes.extend(sb)
        fan_in.extend(fi)
    return _Placed(slices, syn_bytes, fan_in, core_of, next_core, offsets)


def _cores_of_the_rest(graph: Graph, chip: ChipFile, incs: dict, caps: dict[str, int], first: int) -> int:
    """The cores the on-chip populations from the ``first``-th on take, sliced as `_partition` does."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    n_neurons = sum(p.size for p in graph.populations.values())
    total = 0
    for name in list(graph.populations)[first:]:
        pop = graph.populations[name]
        kind = KINDS[pop.kind]
        if not kind.on_host:
            starts, *_ = slice_population(incs[name], n_neurons, caps[name], state_bytes_of(kind, pop.params),
                                          lim.neuron_state_bytes, lim.synapse_memory_bytes, lim.memory_bytes,
                                          lim.fan_in)
            total += len(starts)
    return total


def _outputs_per_core(routes: Routes, placed: "_Placed") -> tuple[np.ndarray, np.ndarray]:
    """Per core: its output axons (fan_out) and its distinct destination cores (routing-table entries)."""
    on_core = [s for s in placed.slices if s.core >= 0]
    lo = np.zeros(placed.n_cores, np.int64)
    hi = np.zeros(placed.n_cores, np.int64)
    for s in on_core:
        first = placed.offsets[s.population] + s.lo
        lo[s.core], hi[s.core] = first, first + (s.hi - s.lo)
    fan_out = routes.axon_ptr[hi] - routes.axon_ptr[lo]
    return fan_out.astype(np.int64), destinations_per_core(routes.axon_ptr, routes.axon_core, lo, hi, placed.n_cores)


def _place_and_route(graph: Graph, chip: ChipFile, incs: dict, caps: dict[str, int], offsets: dict[str, int],
                     dend_offsets: dict[str, int]):
    """Partition under ``caps``, route, and slice more finely where a core exceeds its fan_out
    or routes limit, until every core fits; returns the placement, routes, per-core fan-out
    and routing-table entries, and the caps used. Raises a `UserError` if it cannot fit."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    caps = dict(caps)
    n_neurons = sum(p.size for p in graph.populations.values())
    placed = _partition(graph, chip, incs, caps, offsets)
    for _attempt in range(12):
        routes = _route(graph, offsets, dend_offsets, placed, n_neurons, chip)
        fan_out, routes_used = _outputs_per_core(routes, placed)
        over = {}
        for s in placed.slices:
            if s.core < 0:
                continue
            for limit_name, used in (("fan_out", fan_out), ("routes", routes_used)):
                if used[s.core] > getattr(lim, limit_name):
                    per_neuron = used[s.core] / (s.hi - s.lo)
                    worst = over.get(s.population)
                    if worst is None or per_neuron / getattr(lim, limit_name) > worst[1] / getattr(lim, worst[0]):
                        over[s.population] = (limit_name, per_neuron)
        if not over:
            return placed, routes, fan_out, routes_used, caps
        for name, (limit_name, per_neuron) in over.items():
            limit = getattr(lim, limit_name)
            new_cap = int(limit // per_neuron)
            if new_cap < 1 or new_cap >= caps[name]:
                need = int(np.ceil(per_neuron))
                what = "output axons (fan_out)" if limit_name == "fan_out" else "destination cores (routes)"
                raise _fail(graph, name, f"a single neuron needs {need:,} {what}, a core has {limit:,} "
                                         f"(exceeded by {need - limit:,})")
            caps[name] = new_cap
        routes = None                   # freed before the next partition routes anew
        placed = _partition(graph, chip, incs, caps, offsets)
    raise _fail(graph, next(iter(over)), "could not be sliced within the core's fan_out and routes limits")


def _spread_caps(graph: Graph, placed: _Placed, caps: dict[str, int], share: float) -> dict[str, int]:
    """Neuron caps that give each population about ``share`` times its packed number of cores."""
    counts: dict[str, int] = {}
    for s in placed.slices:
        if s.core >= 0:
            counts[s.population] = counts.get(s.population, 0) + 1
    whole = {name for name, pop in graph.populations.items() if KINDS[pop.kind].whole_population}
    return {name: (max(1, -(-graph.populations[name].size // max(1, int(counts[name] * share))))
                   if name in counts and name not in whole else cap) for name, cap in caps.items()}


def map_graph(graph: Graph, chip: ChipFile, placement: str = "pack", cores: int | None = None) -> Mapping:
    """Partition, place and route; raises a `UserError` naming the population and limit if it does not fit.

    ``placement: pack`` uses as few cores as the limits allow; ``spread`` gives every population
    more, smaller slices so that the model fills about all of the system's cores (or about
    ``cores`` of them).
    """
    check_populations(graph)
    check_projections(graph)
    _check_targets(graph)
    _check_arithmetic(graph, chip)
    _check_payloads(graph, chip)
    _check_weights(graph, chip)
    _check_delays(graph, chip)
    core = chip.core
    lim = core.mapping_limits(chip.cores_per_chip)
    offsets, dend_offsets, pos, dpos = {}, {}, 0, 0
    for name, pop in graph.populations.items():
        offsets[name], dend_offsets[name] = pos, dpos
        pos += pop.size
        dpos += pop.size * len(KINDS[pop.kind].ports)
    caps = {name: lim.neurons for name in graph.populations}
    incs = {name: incoming(graph, name, offsets, core)
            for name, pop in graph.populations.items() if not KINDS[pop.kind].on_host}

    placed, routes, fan_out, routes_used, caps = _place_and_route(graph, chip, incs, caps, offsets, dend_offsets)
    if placement == "spread" and placed.n_cores:
        share = min(chip.total_cores, cores or chip.total_cores) / placed.n_cores
        while share > 1:
            try:
                trial = _place_and_route(graph, chip, incs, _spread_caps(graph, placed, caps, share), offsets,
                                         dend_offsets)
            except UserError:
                share *= 0.9
                continue
            placed, routes, fan_out, routes_used, caps = trial
            break

    next_core, slices = placed.n_cores, placed.slices
    for name, pop in graph.populations.items():
        if KINDS[pop.kind].whole_population and sum(s.population == name and s.core >= 0 for s in slices) > 1:
            raise _fail(graph, name, f"a {pop.kind} population needs all its neurons on one core, and it does not "
                                     f"fit one (its {pop.size} neurons and their synapses)")
    chip_idx, x, y = core_coordinates(chip, np.arange(next_core))
    state = np.zeros(next_core, np.int64)
    neurons = np.zeros(next_core, np.int64)
    lo_arr = np.zeros(next_core, np.int64)
    hi_arr = np.zeros(next_core, np.int64)
    for s in slices:
        if s.core < 0:
            continue
        pop = graph.populations[s.population]
        neurons[s.core] = s.hi - s.lo
        state[s.core] = (s.hi - s.lo) * state_bytes_of(KINDS[pop.kind], pop.params)
        lo_arr[s.core] = offsets[s.population] + s.lo
        hi_arr[s.core] = offsets[s.population] + s.hi
    syn_bytes = np.array(placed.syn_bytes, np.float64)
    utilisation = {
        "neurons": neurons,
        "memory_bytes": state + syn_bytes,
        "neuron_state_bytes": state,
        "synapse_memory_bytes": syn_bytes,
        "fan_in": np.array(placed.fan_in, np.int64),
        "fan_out": fan_out,
        "routes": routes_used,
    }
    limits = {k: float(getattr(lim, k)) for k in LIMIT_NAMES}
    slots = 1 + max((p.delay for p in graph.projections.values()), default=0)
    return Mapping(offsets, placed.core_of, slices, next_core, chip_idx, x, y, utilisation, limits, routes, lo_arr,
                   hi_arr, dend_offsets, dpos, slots)


def _sorted_rows(csr: Csr) -> Csr:
    """The same synapses with targets ascending within each row (a copy only if some row is not)."""
    if rows_sorted(csr.indptr, csr.indices):
        return csr
    indices, weight = csr.indices.copy(), csr.weight.copy()
    sort_rows(csr.indptr, indices, weight)
    return Csr(csr.indptr, indices, weight)


def _outgoing(graph: Graph, source: str, csrs: list[Csr]) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """A population's outgoing projections (their indices in the graph) and their rows side by
    side: ``indptr[j]`` into the synapses laid one after another (copied only when several)."""
    mine = [k for k, p in enumerate(graph.projections.values()) if p.source == source]
    parts = [csrs[k] for k in mine]
    starts = np.cumsum([0] + [len(c.indices) for c in parts])
    indptr = np.stack([np.asarray(c.indptr, np.int64) + start for c, start in zip(parts, starts)])
    if len(parts) == 1:
        return mine, indptr, np.asarray(parts[0].indices, np.int32), parts[0].weight
    return (mine, indptr, np.concatenate([np.asarray(c.indices, np.int32) for c in parts]),
            np.concatenate([c.weight for c in parts]))


def _route(graph: Graph, offsets: dict[str, int], dend_offsets: dict[str, int], placed: _Placed,
           n_neurons: int, chip: ChipFile) -> Routes:
    """Axons per (source neuron, destination core, projection), each neuron's sorted by core
    then projection, with their synapses laid out in that order.

    Two passes per source population over its projections' rows (targets ascending, so a row's
    cores never decrease): one counts each neuron's axons and synapses, the other writes them
    in place.
    """
    projections = list(graph.projections.values())
    csrs = [_sorted_rows(proj.to_csr()) for proj in projections]
    weight_dtype = np.result_type(*[c.weight.dtype for c in csrs] or [np.int8])
    target_offset = np.array([offsets[p.target] for p in projections] or [0], np.int64)
    dendrite_offset = np.array([dend_offsets[p.target] + port_index(KINDS[graph.populations[p.target].kind], p.port)
                                * graph.populations[p.target].size for p in projections] or [0], np.int64)
    syn_bits = np.array([8 * chip.core.synapse_bytes(p.weight_bits, encoding_of(p)) for p in projections] or [0.0])
    word_bits = chip.core.synapses.word_bits
    sources = [name for name in graph.populations if any(p.source == name for p in projections)]
    core_dendrite = np.zeros(placed.n_cores, np.int64)
    for sl in placed.slices:
        if sl.core >= 0:
            core_dendrite[sl.core] = dend_offsets[sl.population] + sl.lo
    core_of = placed.core_of
    axons, synapses = np.zeros(n_neurons, np.int64), np.zeros(n_neurons, np.int64)
    most, widest = 0, 0
    for name in sources:
        mine, indptr, indices, _ = _outgoing(graph, name, csrs)
        lo, hi = offsets[name], offsets[name] + graph.populations[name].size
        m, w = count_axons(indptr, indices, target_offset[mine], dendrite_offset[mine], core_of, core_dendrite,
                           axons[lo:hi], synapses[lo:hi])
        most, widest = max(most, m), max(widest, w)
    axon_ptr, syn_ptr = np.zeros(n_neurons + 1, np.int64), np.zeros(n_neurons + 1, np.int64)
    np.cumsum(axons, out=axon_ptr[1:])
    np.cumsum(synapses, out=syn_ptr[1:])
    del axons, synapses
    axon_core = np.empty(axon_ptr[-1], index_type(max(placed.n_cores - 1, 0)))
    axon_proj = np.empty(axon_ptr[-1], projection_type(len(projections)))
    axon_synapses = np.empty(axon_ptr[-1], count_type(most))
    syn_target = np.empty(syn_ptr[-1], index_type(widest))
    syn_weight = np.empty(syn_ptr[-1], weight_dtype)
    for name in sources:
        mine, indptr, indices, weights = _outgoing(graph, name, csrs)
        lo, hi = offsets[name], offsets[name] + graph.populations[name].size
        fill_axons(indptr, indices, np.asarray(weights, weight_dtype), np.array(mine, np.int64), target_offset[mine],
                   dendrite_offset[mine], core_of, core_dendrite, axon_ptr[lo:hi + 1], syn_ptr[lo:hi + 1], axon_core,
                   axon_proj, axon_synapses, syn_target, syn_weight)
    exps = np.array([p.weight_exp for p in projections] or [0], np.int64)
    delays = np.array([p.delay for p in projections] or [0], np.uint8)
    return Routes(axon_ptr, axon_core, axon_proj, axon_synapses, syn_ptr, syn_target, syn_weight, core_dendrite, exps,
                  delays, syn_bits, word_bits)


def utilisation_table(mapping: Mapping) -> list[dict[str, object]]:
    """One row per used core: population slice, chip, router and the fraction of each limit used."""
    rows = []
    for s in mapping.slices:
        if s.core < 0:
            continue
        row: dict[str, object] = {"core": s.core, "chip": int(mapping.core_chip[s.core]),
                                  "router": (int(mapping.core_x[s.core]), int(mapping.core_y[s.core])),
                                  "population": s.population, "slice": f"{s.lo}:{s.hi}"}
        for name, used in mapping.utilisation.items():
            row[name] = float(used[s.core]) / mapping.limits[name]
        rows.append(row)
    return rows
