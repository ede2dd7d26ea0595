"""Map a graph onto a chip system: slice populations, place slices on cores, build routes.

Cores are filled in order: a slice takes the next place of the system, place ``g`` being on
chip ``g // cores_per_chip``, and within the chip, router by router in row-major order. A
population pinned to a chip (`Population.chip`) starts at that chip's first place unless the
populations before it already reached into the chip, and all its slices must fit there; pinned
populations come in the order of their chips, so that places grow with the cores' indices. A
core's index counts the cores used; its place, chip and router are ``Mapping.core_chip``,
``core_x`` and ``core_y``. Host-side populations (inputs) are not placed on cores; their
messages enter chip 0 at router (0, 0) over the host link.

That is the ``pack`` strategy of a scenario's mapping section; ``spread``, ``group_per_chip`` and
``explicit`` place slices as `neurosim.mapping.placement` plans them, cores again counted in the
order of their places. Either way a core holds one slice, or with ``share_cores`` slices of
several populations (`neurosim.mapping.share`); `Mapping.slices` lists them in core order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurosim.errors import UserError
from neurosim.graph.graph import Graph
from neurosim.mapping.partition import LIMIT_NAMES, incoming, slice_population
from neurosim.mapping.placement import (Layout, PlacementOverflow, Plan, Where, check_capacity, lay_out,
                                        plan_placement, spread_caps)
from neurosim.mapping.share import RESOURCES, share_cores
from neurosim.mapping.routes import (Routes, core_outputs, destinations_per_core, fill_hops, graph_csrs, ranks_within,
                                     route_graph)
from neurosim.programs import (KINDS, check_populations, check_projections, payload_bits_of, state_bytes_of)
from neurosim.spec.chip import ArmPeSpec, ChipFile
from neurosim.spec.scenario import MappingSpec
from neurosim.spec.yamlio import LineMap

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
    dend_offsets: dict[str, int] = field(default_factory=dict)   # first global dendrite of each population
    n_dendrites: int = 0                                         # neurons x their kinds' input ports
    delay_slots: int = 1                                         # 1 + the longest synaptic delay
    strategy: str = "pack"                                       # the placement (`neurosim.mapping.placement`)
    group_of: dict[str, str] = field(default_factory=dict)      # on-chip population -> its group or map entry
    placement: dict[str, Any] = field(default_factory=dict)     # the strategy's settings

    @property
    def n_neurons(self) -> int:
        return len(self.core_of)

    @property
    def core_neurons(self) -> np.ndarray:
        """int64 [n_cores] neurons on each core."""
        return self.utilisation["neurons"]

    def core_populations(self) -> list[str]:
        """Per core, the populations of its slices ("a+b" where cores are shared)."""
        names: list[list[str]] = [[] for _ in range(self.n_cores)]
        for s in self.slices:
            if s.core >= 0 and s.population not in names[s.core]:
                names[s.core].append(s.population)
        return ["+".join(n) for n in names]

    def neuron_rank(self) -> np.ndarray:
        """[n_neurons] each neuron's place in its core's update order, which is the neurons' order
        (0 for the host's); in the narrowest `index_type` that holds it."""
        return ranks_within(self.core_of, self.n_cores)

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
    place: np.ndarray        # int64 [n_cores] each core's place in the system (see the module's docstring)


def _first_place(graph: Graph, chip: ChipFile, name: str, cursor: int, n_slices: int) -> int:
    """Where a population's ``n_slices`` slices start: the next place ``cursor``, or for a population
    pinned to a chip that chip's next free place (a `UserError` if they do not fit the chip)."""
    pin = graph.populations[name].chip
    if pin is None:
        return cursor
    if pin >= chip.n_chips:
        raise _fail(graph, name, f"is pinned to chip {pin}, and the system has {chip.n_chips} chip(s), 0 to "
                                 f"{chip.n_chips - 1}")
    first, end = pin * chip.cores_per_chip, (pin + 1) * chip.cores_per_chip
    if cursor > end:
        raise _fail(graph, name, f"is pinned to chip {pin}, and the populations before it already fill the system "
                                 f"into chip {(cursor - 1) // chip.cores_per_chip}; expected pinned populations in "
                                 f"the order of their chips")
    start = max(cursor, first)
    if start + n_slices > end:
        raise _fail(graph, name, f"is pinned to chip {pin}, whose {end - start} free cores (of "
                                 f"{chip.cores_per_chip}) cannot hold its {n_slices} slices (exceeded by "
                                 f"{start + n_slices - end})")
    return start


def _partition(graph: Graph, chip: ChipFile, incs: dict, caps: dict[str, int], offsets: dict[str, int]) -> _Placed:
    """Slice every on-chip population under its neuron cap and the core's limits; cores in order."""
    n_neurons = sum(p.size for p in graph.populations.values())
    slices, syn_bytes, fan_in = [], [], []
    core_of = np.full(n_neurons, HOST, np.int32)
    next_core, cursor, place = 0, 0, []
    for name, pop in graph.populations.items():
        kind = KINDS[pop.kind]
        if kind.on_host:
            slices.append(CoreSlice(name, 0, pop.size, HOST))
            continue
        starts, sb, fi = _slice(graph, chip, incs[name], name, caps[name], n_neurons)
        bounds = list(starts) + [pop.size]
        cursor = _first_place(graph, chip, name, cursor, len(starts))
        if cursor + len(starts) > chip.total_cores:
            needed = cursor + _cores_of_the_rest(graph, chip, incs, caps, list(graph.populations).index(name))
            chips = -(-needed // chip.cores_per_chip)
            raise _fail(graph, name, f"does not fit: the model needs at least {needed:,} cores ({chips:,} chips of "
                                     f"{chip.cores_per_chip:,}), the system has {chip.total_cores:,} "
                                     f"(exceeded by {needed - chip.total_cores:,}); this population is the first "
                                     f"that does not fit")
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            slices.append(CoreSlice(name, int(lo), int(hi), next_core))
            core_of[offsets[name] + lo: offsets[name] + hi] = next_core
            place.append(cursor)
            next_core += 1
            cursor += 1
        syn_bytes.extend(sb)
        fan_in.extend(fi)
    return _Placed(slices, syn_bytes, fan_in, core_of, next_core, offsets, np.array(place, np.int64))


def _slice(graph: Graph, chip: ChipFile, inc, name: str, cap: int, n_neurons: int):
    """One population's slices under ``cap`` and the core's limits: first neurons, synapse bytes
    and fan-in; a `UserError` if one neuron alone exceeds a limit."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    pop = graph.populations[name]
    starts, sb, fi, err = slice_population(inc, n_neurons, cap, state_bytes_of(KINDS[pop.kind], pop.params),
                                           lim.neuron_state_bytes, lim.synapse_memory_bytes, lim.memory_bytes,
                                           lim.fan_in)
    if err[0] >= 0:
        neuron, which, amount = err
        limit_name = LIMIT_NAMES[which]
        limit = getattr(lim, limit_name)
        raise _fail(graph, name, f"neuron {neuron} alone needs {amount:,} of {limit_name}, a core has "
                                 f"{limit:,} (exceeded by {amount - limit:,})")
    return starts, sb, fi


def _slicer(graph: Graph, chip: ChipFile, incs: dict, n_neurons: int):
    """`_slice` of several populations under their caps, each (population, cap) sliced once."""
    done: dict[tuple[str, int], tuple] = {}

    def slice_all(caps: dict[str, int], names: list[str]) -> dict[str, tuple]:
        for name in names:
            if (name, caps[name]) not in done:
                done[(name, caps[name])] = _slice(graph, chip, incs[name], name, caps[name], n_neurons)
        return {name: done[(name, caps[name])] for name in names}
    return slice_all


def _placed_from(graph: Graph, layout: Layout, offsets: dict[str, int], n_neurons: int) -> _Placed:
    """A plan's layout as the mapper's placement: the host's populations first, then a core per
    slice in the order of the places."""
    slices = [CoreSlice(name, 0, pop.size, HOST) for name, pop in graph.populations.items()
              if KINDS[pop.kind].on_host]
    core_of = np.full(n_neurons, HOST, np.int32)
    for core, (name, lo, hi) in enumerate(zip(layout.population, layout.lo.tolist(), layout.hi.tolist())):
        slices.append(CoreSlice(name, lo, hi, core))
        core_of[offsets[name] + lo: offsets[name] + hi] = core
    return _Placed(slices, list(layout.syn_bytes), list(layout.fan_in), core_of, len(layout.place), offsets,
                   layout.place)


def _place_in_plan(graph: Graph, chip: ChipFile, plan: Plan, incs: dict, caps: dict[str, int],
                   offsets: dict[str, int], dend_offsets: dict[str, int], where: Where):
    """`_place_and_route` over a plan's bins, their populations sliced to fill them (fewer of
    their places, down to packed, where the fan_out and routes limits make them not fit)."""
    n_neurons = sum(p.size for p in graph.populations.values())
    slice_all = _slicer(graph, chip, incs, n_neurons)
    on_chip = [name for bin_ in plan.bins for name in bin_.populations]

    def partition(trial: dict[str, int]) -> _Placed:
        return _placed_from(graph, lay_out(graph, plan, slice_all(trial, on_chip), where), offsets, n_neurons)

    # Spreading raises a source's destinations: count each core's fan_out and routes (no routes
    # are laid out) and slice the populations over a limit finely enough, sharing their bin's
    # places anew, before routing once; where that cannot fit, spread over fewer places.
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    csrs = graph_csrs(graph)
    share, bounds = 1.0, dict(caps)
    for _attempt in range(24):
        try:
            trial = spread_caps(graph, plan, slice_all, bounds, where, share)
            placed = partition(trial)
        except PlacementOverflow:
            if share == 0.0:
                raise
            share, bounds = (share * 0.8 if share > 0.3 else 0.0), dict(caps)
            continue
        over = _over_limits(placed, *core_outputs(graph, offsets, placed.core_of, placed.n_cores, csrs), lim)
        if not over:
            break
        bounds |= {name: cap for name, cap in _tightened(graph, over, trial, lim).items() if name in over}
    return _place_and_route(graph, chip, incs, trial, offsets, dend_offsets, partition, csrs)


def _place_shared(graph: Graph, chip: ChipFile, plan: Plan | None, incs: dict, caps: dict[str, int],
                  offsets: dict[str, int], dend_offsets: dict[str, int], where: Where):
    """`_place_and_route` with cores shared by several slices (`neurosim.mapping.share`): the
    whole system in model order (``plan`` None), or each of a plan's bins onto its places."""
    n_neurons, csrs = sum(p.size for p in graph.populations.values()), graph_csrs(graph)
    on_chip = [name for name, pop in graph.populations.items() if not KINDS[pop.kind].on_host]
    bins = ([(np.arange(chip.total_cores, dtype=np.int64), on_chip)] if plan is None
            else [(b.places, b.populations) for b in plan.bins])

    def overflow(b: int) -> UserError:
        if plan is None:
            return where.error(("mapping", "share_cores"), f"the model does not fit the system's {chip.total_cores:,} "
                                                          f"cores even with cores shared; expected more chips")
        bin_ = plan.bins[b]
        return bin_.error(where, f"{bin_.label} does not fit the {len(bin_.places):,} cores of {bin_.where} even "
                                 f"with cores shared; expected it to fit {bin_.where}", overflow=True)

    def partition(trial: dict[str, int]) -> _Placed:
        refuse = lambda name, cap: _slice(graph, chip, incs[name], name, cap, n_neurons)   # raises the excess
        use, shared = share_cores(graph, chip, incs, trial, offsets, bins, csrs, overflow, refuse)
        core_of = np.full(n_neurons, HOST, np.int32)
        on_core = sorted(map(CoreSlice, use.population, use.lo.tolist(), use.hi.tolist(), shared.core.tolist()),
                         key=lambda s: s.core)
        for s in on_core:
            core_of[offsets[s.population] + s.lo: offsets[s.population] + s.hi] = s.core
        slices = [CoreSlice(n, 0, p.size, HOST) for n, p in graph.populations.items() if KINDS[p.kind].on_host]
        syn, fan = (shared.use[:, RESOURCES.index(r)] for r in ("synapse_memory_bytes", "fan_in"))
        return _Placed(slices + on_core, list(syn), list(fan.astype(np.int64)), core_of, len(shared.place), offsets,
                       shared.place)

    return _place_and_route(graph, chip, incs, caps, offsets, dend_offsets, partition, csrs)


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
    axons = np.diff(routes.axon_ptr)
    on_core = placed.core_of >= 0
    fan_out = np.bincount(placed.core_of[on_core], weights=axons[on_core], minlength=placed.n_cores)
    return (fan_out[:placed.n_cores].astype(np.int64),
            destinations_per_core(routes.axon_ptr, routes.axon_core, placed.core_of, placed.n_cores))


def _place_and_route(graph: Graph, chip: ChipFile, incs: dict, caps: dict[str, int], offsets: dict[str, int],
                     dend_offsets: dict[str, int], partition=None, csrs=None):
    """Partition under ``caps`` (with `_partition`, or ``partition(caps)``), route (over ``csrs``,
    `graph_csrs`, where given), and slice more finely where a core exceeds its fan_out or routes
    limit, until every core fits; returns the placement, routes, per-core fan-out and
    routing-table entries, and the caps used. Raises a `UserError` if it cannot fit."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    caps = dict(caps)
    n_neurons = sum(p.size for p in graph.populations.values())
    partition = partition or (lambda trial: _partition(graph, chip, incs, trial, offsets))
    placed = partition(caps)
    for _attempt in range(12):
        routes = route_graph(graph, offsets, dend_offsets, placed.slices, placed.core_of, placed.n_cores, n_neurons,
                             chip, csrs)
        fan_out, routes_used = _outputs_per_core(routes, placed)
        over = _over_limits(placed, fan_out, routes_used, lim)
        if not over:
            return placed, routes, fan_out, routes_used, caps
        caps = _tightened(graph, over, caps, lim)
        routes = None                   # freed before the next partition routes anew
        placed = partition(caps)
    raise _fail(graph, next(iter(over)), "could not be sliced within the core's fan_out and routes limits")


def _over_limits(placed: _Placed, fan_out: np.ndarray, routes_used: np.ndarray, lim) -> dict[str, tuple[str, float]]:
    """The populations with a core over its fan_out or routes limit: the limit most exceeded,
    and the axons or destinations per neuron on that core."""
    over: dict[str, tuple[str, float]] = {}
    for s in placed.slices:
        if s.core < 0:
            continue
        for limit_name, used in (("fan_out", fan_out), ("routes", routes_used)):
            if used[s.core] > getattr(lim, limit_name):
                per_neuron = used[s.core] / (s.hi - s.lo)
                worst = over.get(s.population)
                if worst is None or per_neuron / getattr(lim, limit_name) > worst[1] / getattr(lim, worst[0]):
                    over[s.population] = (limit_name, per_neuron)
    return over


def _tightened(graph: Graph, over: dict[str, tuple[str, float]], caps: dict[str, int], lim) -> dict[str, int]:
    """Caps that slice the populations ``over`` a limit finely enough to meet it at that many
    per neuron; a `UserError` if one neuron alone exceeds it."""
    caps = dict(caps)
    for name, (limit_name, per_neuron) in over.items():
        limit = getattr(lim, limit_name)
        new_cap = int(limit // per_neuron)
        if new_cap < 1 or new_cap >= caps[name]:
            need = int(np.ceil(per_neuron))
            what = "output axons (fan_out)" if limit_name == "fan_out" else "destination cores (routes)"
            raise _fail(graph, name, f"a single neuron needs {need:,} {what}, a core has {limit:,} "
                                     f"(exceeded by {need - limit:,})")
        caps[name] = new_cap
    return caps


def map_graph(graph: Graph, chip: ChipFile, placement: str | MappingSpec = "pack", cores: int | None = None, *,
              scenario_file: str = "<scenario>", lines: LineMap | None = None) -> Mapping:
    """Partition, place and route; raises a `UserError` naming the population and limit if it does not fit.

    ``placement`` is a scenario's mapping section, or a strategy's name (with ``cores``): ``pack``
    uses as few cores as the limits allow; ``spread``, ``group_per_chip`` and ``explicit`` place
    as `neurosim.mapping.placement` says. Mistakes in the section are reported at its fields in
    ``scenario_file``, before the large arrays are made where they can be.
    """
    spec = placement if isinstance(placement, MappingSpec) else MappingSpec(strategy=placement, cores=cores)
    where = Where(scenario_file, lines)
    check_populations(graph)
    check_projections(graph)
    _check_targets(graph)
    _check_arithmetic(graph, chip)
    _check_payloads(graph, chip)
    _check_weights(graph, chip)
    _check_delays(graph, chip)
    plan = plan_placement(graph, chip, spec, where)
    if plan is not None:
        check_capacity(graph, chip, plan, where, shared=spec.share_cores)
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

    if spec.share_cores:
        placed, routes, fan_out, routes_used, caps = _place_shared(graph, chip, plan, incs, caps, offsets,
                                                                   dend_offsets, where)
    elif plan is None:
        placed, routes, fan_out, routes_used, caps = _place_and_route(graph, chip, incs, caps, offsets, dend_offsets)
    else:
        placed, routes, fan_out, routes_used, caps = _place_in_plan(graph, chip, plan, incs, caps, offsets,
                                                                    dend_offsets, where)

    next_core, slices = placed.n_cores, placed.slices
    for name, pop in graph.populations.items():
        if KINDS[pop.kind].whole_population and sum(s.population == name and s.core >= 0 for s in slices) > 1:
            raise _fail(graph, name, f"a {pop.kind} population needs all its neurons on one core, and it does not "
                                     f"fit one (its {pop.size} neurons and their synapses)")
    chip_idx, x, y = core_coordinates(chip, placed.place)
    state = np.zeros(next_core, np.int64)
    neurons = np.zeros(next_core, np.int64)
    for s in slices:
        if s.core < 0:
            continue
        pop = graph.populations[s.population]
        neurons[s.core] += s.hi - s.lo
        state[s.core] += (s.hi - s.lo) * state_bytes_of(KINDS[pop.kind], pop.params)
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
    return Mapping(offsets, placed.core_of, slices, next_core, chip_idx, x, y, utilisation, limits, routes,
                   dend_offsets, dpos, slots, spec.strategy, plan.group_of if plan else {},
                   plan.attrs if plan else {})


def utilisation_table(mapping: Mapping) -> list[dict[str, object]]:
    """One row per used core: its population and slice (the populations and the number of slices
    of a shared core), chip, router and the fraction of each limit used."""
    held: list[list[CoreSlice]] = [[] for _ in range(mapping.n_cores)]
    for s in mapping.slices:
        if s.core >= 0:
            held[s.core].append(s)
    rows = []
    for c, (mine, names) in enumerate(zip(held, mapping.core_populations())):
        row: dict[str, object] = {"core": c, "chip": int(mapping.core_chip[c]),
                                  "router": (int(mapping.core_x[c]), int(mapping.core_y[c])), "population": names,
                                  "slice": f"{mine[0].lo}:{mine[0].hi}" if len(mine) == 1 else f"{len(mine)} slices"}
        for name, used in mapping.utilisation.items():
            row[name] = float(used[c]) / mapping.limits[name]
        rows.append(row)
    return rows
