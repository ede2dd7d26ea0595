"""Cores shared by several slices (a scenario's ``mapping.share_cores``), as a compiler packs small
processes onto one core.

Without sharing, a core holds one slice of one population, and a population of a few neurons
(a norm's square root, a gate) takes a core to itself; a population that sends to many cores
fills a core's output axons long before its memory. With sharing, slices of different
populations go on one core while their sums stay within every limit of the core
(`RESOURCES`):

1. Every on-chip population is sliced to at most ``SHARE`` of a core's memories (neuron state,
   synaptic memory, both together) and within its neurons, fan-in, output axons and destinations
   (`slice_within`), so that two slices bound by a memory leave room beside them. A population
   one neuron of which needs more, or whose program needs the whole population on one core, is
   sliced to whole cores as without sharing.
2. A slice's output axons and destination cores are counted as if every destination slice were
   on a core of its own (`slice_use`, with `neurosim.mapping.routes.core_outputs` over slices):
   an upper bound of what they take once placed, since slices sharing a core share the axons to
   it. A population whose slices exceed a limit is sliced more finely (`finer_caps`).
3. *Fillers*, the populations bound by their output axons or destinations that send to
   populations that are not (a norm's scaled outputs feeding a dense layer on dozens of cores),
   are sliced to ``FINE`` of a core's limits, unless that would make a source of theirs need
   finer slices too.
4. The others are placed first, in model order, first-fit onto the open cores of the chip being
   filled (of a plan's bin, within its places): a slice joins the first core where every sum
   stays within its limit, else opens the next place (`Cores.fill`). A population's slices on one
   core share the input axons of its dense inputs. Then the fillers' axons are counted again to
   the cores where their targets now are, and they fill, first-fit, the room left on all of the
   bin's cores.

A population's slices never go to an earlier core than its previous slice, so that each neuron's
targets still reach cores in ascending order (`neurosim.mapping.routes`). A core's neurons are no
longer one range of the model's neurons: a core updates its neurons in the model's order
(`neurosim.mapping.mapper.Mapping.neuron_rank`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from neurosim.graph.graph import Csr, Graph
from neurosim.mapping.partition import slice_population
from neurosim.mapping.routes import core_outputs
from neurosim.programs import KINDS, state_bytes_of
from neurosim.spec.chip import ChipFile

SHARE = 0.49       # of a core's memories a slice takes at most: two leave room for a small third
FINE = 0.125       # of a core's limits a filler's slice takes at most
RESOURCES = ("neurons", "neuron_state_bytes", "synapse_memory_bytes", "memory_bytes", "fan_in", "fan_out", "routes")
ROUTING = [RESOURCES.index("fan_out"), RESOURCES.index("routes")]
FAN_IN = RESOURCES.index("fan_in")


@dataclass
class Sliced:
    """The slices of the on-chip populations, in model order, and what each takes of a core."""

    population: list[str]
    lo: np.ndarray              # int64 [slices] first neuron within its population
    hi: np.ndarray
    use: np.ndarray             # float64 [slices, len(RESOURCES)]
    dense_fan_in: dict[str, int]   # per population, the fan-in of its dense inputs, which its slices on one core share


@dataclass
class Shared:
    """Slices on cores: each slice's core, and per core its place and its slices' sums."""

    core: np.ndarray            # int64 [slices]
    place: np.ndarray           # int64 [cores] ascending
    use: np.ndarray             # float64 [cores, len(RESOURCES)]


def slice_within(graph: Graph, chip: ChipFile, incs: dict, caps: dict[str, int], names: list[str],
                 n_neurons: int, share: dict[str, float]) -> tuple[dict[str, tuple], set[str]]:
    """Each population's slices (first neurons, synapse bytes, fan-in) within its ``share`` of
    the core's memories (neurons and fan-in within the whole limits), or within the whole
    memories (the populations returned as whole) where a neuron alone needs more or the program
    needs the whole population; ``None`` for a population one neuron of which exceeds a whole
    core (the caller reports it)."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    out, whole = {}, set()
    for name in names:
        pop = graph.populations[name]
        kind = KINDS[pop.kind]
        state = state_bytes_of(kind, pop.params)
        for part in ((1.0,) if kind.whole_population else (share[name], 1.0)):
            starts, sb, fi, err = slice_population(incs[name], n_neurons, caps[name], state,
                                                   int(lim.neuron_state_bytes * part), lim.synapse_memory_bytes * part,
                                                   lim.memory_bytes * part, lim.fan_in)
            if err[0] < 0:
                break
        if err[0] >= 0:
            out[name] = None
            continue
        if part == 1.0:
            whole.add(name)
        out[name] = (starts, sb, fi)
    return out, whole


def slice_use(graph: Graph, offsets: dict[str, int], sliced: dict[str, tuple], core_of: np.ndarray, n_cores: int,
              csrs: list[Csr], dense_fan_in: dict[str, int]) -> Sliced:
    """What each slice takes of a core. Its output axons and destinations are counted to the
    cores of the neurons ``core_of`` places (``n_cores`` of them), and to every other slice as if
    on a core of its own: an upper bound of what they take once slices share cores."""
    pops, lo, hi, parts = [], [], [], []
    slice_of = core_of.astype(np.int64)
    k = n_cores
    for name, (starts, sb, fi) in sliced.items():
        pop = graph.populations[name]
        ends = np.append(starts[1:], pop.size)
        state = state_bytes_of(KINDS[pop.kind], pop.params)
        n = ends - starts
        parts.append(np.column_stack([n, n * state, sb, n * state + sb, fi, np.zeros_like(sb), np.zeros_like(sb)]))
        for a, b in zip(starts.tolist(), ends.tolist()):
            slice_of[offsets[name] + a: offsets[name] + b] = k
            k += 1
        pops += [name] * len(starts)
        lo.append(starts)
        hi.append(ends)
    use = np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, len(RESOURCES)))
    fan_out, routes = core_outputs(graph, offsets, slice_of, k, csrs)
    use[:, ROUTING[0]], use[:, ROUTING[1]] = fan_out[n_cores:], routes[n_cores:]
    empty = np.zeros(0, np.int64)
    return Sliced(pops, np.concatenate(lo) if lo else empty, np.concatenate(hi) if hi else empty, use,
                  {name: dense_fan_in[name] for name in sliced})


def finer_caps(sliced: Sliced, caps: dict[str, int], whole: set[str], limits: np.ndarray,
               share: dict[str, float]) -> dict[str, int]:
    """Caps that slice the populations whose slices take more than their ``share`` (the whole
    limit for ``whole`` ones) of the output axons or destinations more finely; empty if none do."""
    out = {}
    for which in ROUTING:
        for k in np.flatnonzero(sliced.use[:, which] > limits[which] * min(share.values(), default=1.0)):
            name = sliced.population[k]
            allowed = limits[which] * (1.0 if name in whole else share[name])
            if sliced.use[k, which] <= allowed:
                continue
            per_neuron = sliced.use[k, which] / (sliced.hi[k] - sliced.lo[k])
            cap = min(out.get(name, caps[name]), int(sliced.hi[k] - sliced.lo[k]) - 1, int(allowed // per_neuron))
            out[name] = max(cap, 1)
    return {name: cap for name, cap in out.items() if cap < caps[name]}


def routing_bound(sliced: Sliced, limits: np.ndarray) -> set[str]:
    """The populations whose slices take more of a core's output axons or destinations than of
    anything else."""
    index = {name: i for i, name in enumerate(dict.fromkeys(sliced.population))}
    share = np.zeros((len(index), len(RESOURCES)))
    np.add.at(share, np.array([index[p] for p in sliced.population], np.int64), sliced.use / limits)
    return {name for name, row in zip(index, share) if row[ROUTING].max() >= row.max()}


class Cores:
    """Cores being filled, bin by bin (each some places, in order): their places and sums."""

    def __init__(self, bins: list[np.ndarray], limits: np.ndarray, cores_per_chip: int, overflow) -> None:
        self.bins, self.limits, self.cores_per_chip, self.overflow = bins, limits, cores_per_chip, overflow
        self.places: list[int] = []
        self.sums = np.zeros((sum(len(p) for p in bins), len(RESOURCES)))
        self.of_bin: list[list[int]] = [[] for _ in bins]       # each bin's cores, in the order of its places

    def fill(self, b: int, sliced: Sliced, names: list[str], close_chips: bool) -> np.ndarray:
        """Bin ``b``'s populations ``names`` of ``sliced``, in order, each slice onto the first of
        the bin's cores where it fits (with ``close_chips``, of the chip being filled), not
        before its population's previous slice, else onto the bin's next place. Returns each
        slice's core (-1 for the slices of other populations)."""
        core = np.full(len(sliced.population), -1, np.int64)
        mine, at = self.of_bin[b], len(self.of_bin[b])
        # the first core open to slices: with close_chips, the first on the chip of the bin's last core
        open_from = 0
        while close_chips and open_from < len(mine) - 1 and self._chip(mine[open_from]) != self._chip(mine[-1]):
            open_from += 1
        wanted = set(names)
        floor, last, previous = 0, None, -1
        for k, name in enumerate(sliced.population):
            if name not in wanted:
                continue
            if name != last:
                floor, last, previous = 0, name, -1
            lo = max(floor, open_from)
            need = np.repeat(sliced.use[k][None, :], max(len(mine) - lo, 0), axis=0)
            if lo == floor and previous >= 0 and need.shape[0]:       # beside its previous slice: the same
                need[0, FAN_IN] -= sliced.dense_fan_in.get(name, 0)    # input axons of its dense inputs
            fits = np.flatnonzero(np.all(self.sums[mine[lo:]] + need <= self.limits, axis=1))
            if fits.size:
                i = lo + int(fits[0])
            else:
                if at >= len(self.bins[b]):
                    raise self.overflow(b)
                place = int(self.bins[b][at])
                if close_chips and mine and self._chip(mine[-1]) != place // self.cores_per_chip:
                    open_from = len(mine)                # a new chip: the last one's cores are closed
                self.places.append(place)
                mine.append(len(self.places) - 1)
                at += 1
                i = len(mine) - 1
            self.sums[mine[i]] += need[i - lo] if i - lo < need.shape[0] else sliced.use[k]
            core[k] = previous = mine[i]
            floor = i
        return core

    def _chip(self, core: int) -> int:
        return self.places[core] // self.cores_per_chip

    def done(self, cores: np.ndarray) -> Shared:
        """The cores numbered in the order of their places, with ``cores`` (of slices) renumbered."""
        place = np.array(self.places, np.int64)
        order = np.argsort(place, kind="stable")
        renumber = np.empty(len(order), np.int64)
        renumber[order] = np.arange(len(order))
        return Shared(renumber[cores], place[order], self.sums[:len(order)][order])


def share_cores(graph: Graph, chip: ChipFile, incs: dict, caps: dict[str, int], offsets: dict[str, int],
                bins: list[tuple[np.ndarray, list[str]]], csrs: list[Csr], overflow, refuse) -> tuple[Sliced, Shared]:
    """The on-chip populations of ``bins`` sliced and placed (see the module's docstring);
    ``refuse(name, cap)`` raises the error of a population that does not fit a core,
    ``overflow(b)`` returns that of a bin whose places run out."""
    n_neurons = sum(p.size for p in graph.populations.values())
    limits = limits_of(chip)
    dense_fan_in = {name: int(inc.fan_count[np.unique(inc.proj_fan[inc.proj_fan >= 0])].sum())
                    for name, inc in incs.items()}
    names = [n for _, pops in bins for n in pops]
    none = np.full(n_neurons, -1, np.int64)

    def sliced_use(memory: dict[str, float], outputs: dict[str, float]) -> tuple[dict, Sliced]:
        trial = dict(caps)
        for _attempt in range(12):
            sliced, whole = slice_within(graph, chip, incs, trial, names, n_neurons, memory)
            for name, got in sliced.items():
                if got is None:
                    refuse(name, trial[name])
            use = slice_use(graph, offsets, sliced, none, 0, csrs, dense_fan_in)
            finer = finer_caps(use, trial, whole, limits, outputs)
            if not finer:
                break
            trial |= finer
        return sliced, use

    # Fillers: populations bound by their output axons or destinations, sending to populations
    # that are not; none whose finer slices would make a source's slices finer too.
    _, coarse = sliced_use(dict.fromkeys(names, SHARE), dict.fromkeys(names, 1.0))
    bound = routing_bound(coarse, limits)
    targets = {n: {p.target for p in graph.projections.values() if p.source == n} for n in names}
    fillers = {n for n in bound if targets[n] and not targets[n] & bound}
    coarse_count = Counter(coarse.population)
    while True:
        sliced, use = sliced_use({n: FINE if n in fillers else SHARE for n in names},
                                 {n: FINE if n in fillers else 1.0 for n in names})
        fine_count = Counter(use.population)
        grown = [n for n in names if n not in fillers and fine_count[n] > coarse_count[n]]
        drop = {t for n in grown for t in targets[n]} & fillers
        if not drop:
            break
        fillers -= drop
    cores = Cores([p for p, _ in bins], limits, chip.cores_per_chip, overflow)
    placed = np.full(len(use.population), -1, np.int64)
    for b, (_, pops) in enumerate(bins):
        got = cores.fill(b, use, [n for n in pops if n not in fillers], close_chips=True)
        placed = np.where(got >= 0, got, placed)
    # the fillers' axons counted again, to the cores of their targets, now placed
    core_of = none.copy()
    for name, lo, hi, c in zip(use.population, use.lo.tolist(), use.hi.tolist(), placed.tolist()):
        if c >= 0:
            core_of[offsets[name] + lo: offsets[name] + hi] = c
    mine = [k for k, name in enumerate(use.population) if name in fillers]
    recount = slice_use(graph, offsets, {n: sliced[n] for n in names if n in fillers}, core_of, len(cores.places),
                        csrs, dense_fan_in)
    use.use[mine] = recount.use
    for b, (_, pops) in enumerate(bins):
        got = cores.fill(b, use, [n for n in pops if n in fillers], close_chips=False)
        placed = np.where(got >= 0, got, placed)
    return use, cores.done(placed)


def limits_of(chip: ChipFile) -> np.ndarray:
    """A core's limits, in the order of ``RESOURCES``."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    return np.array([float(getattr(lim, r)) for r in RESOURCES])
