"""Map a graph onto a chip system: slice populations, place slices on cores, build routes.

Cores are filled in order: global core ``g`` is on chip ``g // cores_per_chip``; within the
chip, cores fill router by router in row-major order. Host-side populations (inputs) are
not placed on cores; their messages enter chip 0 at router (0, 0) over the host link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim.errors import UserError
from neurosim.graph.graph import Dense, Graph
from neurosim.mapping.partition import LIMIT_NAMES, incoming, slice_population
from neurosim.mapping.routes import Routes, build_axons
from neurosim.numerics.neurons import KINDS, check_populations
from neurosim.spec.chip import ChipFile

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


def _hops(chip: ChipFile, src_core: np.ndarray, dst_core: np.ndarray):
    """XY-routing hop counts: on-chip E-W, on-chip N-S, and link crossings."""
    mesh = chip.chip.mesh
    _, dx_, dy_ = core_coordinates(chip, dst_core)
    host = src_core == HOST
    _, sx, sy = core_coordinates(chip, np.where(host, 0, src_core))
    sx, sy = np.where(host, 0, sx), np.where(host, 0, sy)
    cross_x = np.abs(dx_ // mesh.routers_x - sx // mesh.routers_x)
    cross_y = np.abs(dy_ // mesh.routers_y - sy // mesh.routers_y)
    ew = np.abs(dx_ - sx) - cross_x
    ns = np.abs(dy_ - sy) - cross_y
    links = cross_x + cross_y + host.astype(np.int64)
    return ew.astype(np.int32), ns.astype(np.int32), links.astype(np.int32)


def _fail(graph: Graph, pop: str, message: str) -> UserError:
    lines = graph.lines
    return UserError(message, file=graph.source_file, field=f"populations.{pop}",
                     line=lines.find(("populations", pop)) if lines is not None else None)


def _check_targets(graph: Graph) -> None:
    """Synapses live on cores: a projection into a host-side population (an input) is a mistake."""
    for name, proj in graph.projections.items():
        target = graph.populations[proj.target]
        if KINDS[target.kind].on_host:
            where = ("projections", name, "target")
            raise UserError(f"{proj.target!r} is a {target.kind} population on the host, which takes no synaptic "
                            f"input; expected an on-chip population", file=graph.source_file,
                            field=".".join(where), line=graph.lines.find(where) if graph.lines is not None else None)


def map_graph(graph: Graph, chip: ChipFile) -> Mapping:
    """Partition, place and route; raises a `UserError` naming the population and limit if it does not fit."""
    check_populations(graph)
    _check_targets(graph)
    core = chip.core
    lim = core.limits
    offsets, pos = {}, 0
    for name, pop in graph.populations.items():
        offsets[name] = pos
        pos += pop.size
    n_neurons = pos
    caps = {name: lim.neurons for name in graph.populations}
    incs = {name: incoming(graph, name, offsets, core.bytes_per_synapse_dense, core.bytes_per_synapse_sparse)
            for name, pop in graph.populations.items() if not KINDS[pop.kind].on_host}

    for _attempt in range(12):
        slices, syn_bytes, fan_in = [], [], []
        core_of = np.full(n_neurons, HOST, np.int32)
        next_core = 0
        for name, pop in graph.populations.items():
            kind = KINDS[pop.kind]
            if kind.on_host:
                slices.append(CoreSlice(name, 0, pop.size, HOST))
                continue
            starts, sb, fi, err = slice_population(incs[name], n_neurons, caps[name], kind.state_bytes,
                                                   lim.neuron_state_bytes, lim.synapse_memory_bytes,
                                                   lim.memory_bytes, lim.fan_in)
            if err[0] >= 0:
                neuron, which, amount = err
                limit_name = LIMIT_NAMES[which]
                limit = getattr(lim, limit_name)
                raise _fail(graph, name, f"neuron {neuron} alone needs {amount:,} of {limit_name}, a core has "
                                         f"{limit:,} (exceeded by {amount - limit:,})")
            bounds = list(starts) + [pop.size]
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                if next_core >= chip.total_cores:
                    needed = next_core + (len(bounds) - 1 - len([s for s in slices if s.population == name]))
                    raise _fail(graph, name, f"does not fit: the model needs at least {needed:,} cores, the system "
                                             f"has {chip.total_cores:,} (exceeded by {needed - chip.total_cores:,})")
                slices.append(CoreSlice(name, int(lo), int(hi), next_core))
                core_of[offsets[name] + lo: offsets[name] + hi] = next_core
                next_core += 1
            syn_bytes.extend(sb)
            fan_in.extend(fi)

        routes = _route(graph, offsets, core_of, n_neurons, chip)
        src_of_axon = np.repeat(np.arange(n_neurons), np.diff(routes.axon_ptr))
        src_core = core_of[src_of_axon]
        fan_out = np.bincount(src_core[src_core >= 0], minlength=next_core)[:next_core]
        over = [s for s in slices if s.core >= 0 and fan_out[s.core] > lim.fan_out]
        if not over:
            break
        for name in {s.population for s in over}:
            worst = max(fan_out[s.core] / (s.hi - s.lo) for s in over if s.population == name)
            new_cap = int(lim.fan_out // worst)
            if new_cap < 1 or new_cap >= caps[name]:
                raise _fail(graph, name, f"a single neuron needs {int(np.ceil(worst)):,} output axons (fan_out), "
                                         f"a core has {lim.fan_out:,} (exceeded by {int(np.ceil(worst)) - lim.fan_out:,})")
            caps[name] = new_cap
    else:
        raise _fail(graph, over[0].population, "could not be sliced within the core's fan_out limit")

    chip_idx, x, y = core_coordinates(chip, np.arange(next_core))
    on_core = [s for s in slices if s.core >= 0]
    state = np.zeros(next_core, np.int64)
    neurons = np.zeros(next_core, np.int64)
    lo_arr = np.zeros(next_core, np.int64)
    hi_arr = np.zeros(next_core, np.int64)
    for s in on_core:
        neurons[s.core] = s.hi - s.lo
        state[s.core] = (s.hi - s.lo) * KINDS[graph.populations[s.population].kind].state_bytes
        lo_arr[s.core] = offsets[s.population] + s.lo
        hi_arr[s.core] = offsets[s.population] + s.hi
    utilisation = {
        "neurons": neurons,
        "memory_bytes": state + np.array(syn_bytes, np.float64),
        "neuron_state_bytes": state,
        "synapse_memory_bytes": np.array(syn_bytes, np.float64),
        "fan_in": np.array(fan_in, np.int64),
        "fan_out": fan_out.astype(np.int64),
    }
    limits = {k: float(getattr(lim, k)) for k in LIMIT_NAMES}
    return Mapping(offsets, core_of, slices, next_core, chip_idx, x, y, utilisation, limits, routes, lo_arr, hi_arr)


def _route(graph: Graph, offsets: dict[str, int], core_of: np.ndarray, n_neurons: int, chip: ChipFile) -> Routes:
    srcs, tgts, weights, projs, exps = [], [], [], [], []
    for p_idx, proj in enumerate(graph.projections.values()):
        csr = proj.to_csr()
        rows = np.repeat(np.arange(len(csr.indptr) - 1, dtype=np.int64), np.diff(csr.indptr))
        srcs.append(rows + offsets[proj.source])
        tgts.append(csr.indices.astype(np.int64) + offsets[proj.target])
        weights.append(csr.weight)
        projs.append(np.full(csr.n_synapses, p_idx, np.int64))
        exps.append(proj.weight_exp)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    axon_ptr, axon_core, axon_exp, axon_syn_ptr, syn_target, syn_weight = build_axons(
        cat(srcs, np.int64), cat(tgts, np.int64), cat(weights, np.int8), cat(projs, np.int64),
        np.array(exps, np.int64) if exps else np.zeros(1, np.int64), max(len(exps), 1), core_of, n_neurons)
    src_of_axon = np.repeat(np.arange(n_neurons), np.diff(axon_ptr))
    ew, ns, links = _hops(chip, core_of[src_of_axon], axon_core)
    return Routes(axon_ptr, axon_core, axon_exp, axon_syn_ptr, syn_target, syn_weight, ew, ns, links)


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
