"""Where populations go, beyond packing: the plans of a scenario's ``mapping`` section.

``pack`` (`neurosim.mapping.mapper`) fills the system's places in model order. The other
strategies make a plan of *bins*, each some of the system's places (cores; place ``g`` is on
chip ``g // cores_per_chip``) and the on-chip populations that go there:

- ``spread``: one bin of all the system's places (or the first ``cores``), with one bin per
  chip for the populations the model pins to a chip (`Population.chip`);
- ``group_per_chip``: the populations whose names match ``groups`` (a regular expression; its
  first capture group, else the whole match, names the group) one group per chip, the ``n``-th
  group to appear in model order on chip ``n``, the ungrouped ones as ``ungrouped`` says;
- ``explicit``: a bin per chip, or range of a chip's cores, that ``map`` names; a population
  goes where the first entry (a name or a glob) that matches it says.

Within a bin, the populations are sliced as finely as fills its places (`apportion`: cores in
proportion to those each needs packed, never fewer) and laid in model order onto its places in
order (`lay_out`). Every mistake is a `UserError` at the scenario's field, found before the
mapper allocates its large arrays where it can be (`plan_placement`, `check_capacity`).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from neurosim.errors import UserError
from neurosim.graph.graph import Graph
from neurosim.mapping.partition import encoding_of
from neurosim.programs import KINDS, state_bytes_of
from neurosim.spec.chip import ChipFile, GpuRooflineSpec, TernaryPipelineSpec
from neurosim.spec.scenario import MappingSpec
from neurosim.spec.yamlio import LineMap

UNGROUPED = "(ungrouped)"        # the group of the populations on a chip of their own (``ungrouped: own_chip``)

# a population's slices: their first neurons, synapse bytes and fan-in (`neurosim.mapping.partition`)
Sliced = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Where:
    """The scenario file and its lines, for errors at its mapping fields."""

    file: str = "<scenario>"
    lines: LineMap | None = None

    def error(self, key: tuple[str, ...], message: str, kind: type[UserError] = UserError) -> UserError:
        return kind(message, file=self.file, field=".".join(key),
                    line=self.lines.find(key) if self.lines is not None else None)


class PlacementOverflow(UserError):
    """A bin's populations, sliced, take more cores than it has."""


@dataclass
class Bin:
    name: str                   # the group, "chip 3", "chip 3 cores 0-63", "system"
    key: tuple[str, ...]        # the scenario field that made it
    places: np.ndarray          # int64, ascending: the system's places it may use
    populations: list[str]      # on-chip populations, in model order
    where: str                  # where it is, for messages: "chip 3", "the system"
    label: str                  # what it holds, for messages: "group '3'", "the model"
    target: int | None = None   # spread over about this many of its places (None: all)

    def error(self, where: Where, message: str, overflow: bool = False) -> UserError:
        return where.error(self.key, message, PlacementOverflow if overflow else UserError)


@dataclass
class Plan:
    strategy: str
    bins: list[Bin]
    group_of: dict[str, str] = field(default_factory=dict)   # on-chip population -> its group or map entry
    attrs: dict[str, Any] = field(default_factory=dict)      # the strategy's settings, for the trace


def _on_chip(graph: Graph) -> list[str]:
    return [name for name, pop in graph.populations.items() if not KINDS[pop.kind].on_host]


def _examples(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _chip_places(chip: ChipFile, c: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    first = c * chip.cores_per_chip
    return np.arange(first + lo, first + (chip.cores_per_chip if hi is None else hi + 1), dtype=np.int64)


def check_against_chip(spec: MappingSpec, chip: ChipFile, where: Where) -> None:
    """What the mapping section can be checked for with the chip alone (before the model is
    loaded): the chips and cores an explicit map names exist."""
    if isinstance(chip.core, (TernaryPipelineSpec, GpuRooflineSpec)) or spec.strategy != "explicit":
        return
    for key, target in spec.map.items():
        if target.chip >= chip.n_chips:
            raise where.error(("mapping", "map", key), f"chip {target.chip} is beyond the system's {chip.n_chips} "
                                                       f"chip(s) of {chip.name}: expected 0 to {chip.n_chips - 1}")
        if target.cores is not None and target.cores[1] >= chip.cores_per_chip:
            raise where.error(("mapping", "map", key), f"cores {list(target.cores)} reach beyond a chip's "
                                                       f"{chip.cores_per_chip} cores: expected cores 0 to "
                                                       f"{chip.cores_per_chip - 1}")


def plan_placement(graph: Graph, chip: ChipFile, spec: MappingSpec, where: Where) -> Plan | None:
    """The bins of a strategy (None for ``pack``), checked against the model's populations and
    the system's chips."""
    pinned = {name: pop.chip for name, pop in graph.populations.items() if pop.chip is not None}
    if spec.share_cores and pinned:
        raise where.error(("mapping", "share_cores"), f"the model pins populations to chips ({_examples(list(pinned))}), "
                                                      f"and pinned populations take cores of their own: expected "
                                                      f"share_cores false")
    if spec.strategy == "pack":
        return None
    if spec.strategy == "spread":
        return _spread_plan(graph, chip, spec, pinned, where)
    if pinned:
        raise where.error(("mapping", "strategy"), f"the model pins populations to chips ({_examples(list(pinned))}); "
                                                   f"expected strategy pack or spread, which keep the pins")
    if spec.strategy == "group_per_chip":
        return _group_plan(graph, chip, spec, where)
    check_against_chip(spec, chip, where)
    return _explicit_plan(graph, chip, spec, where)


def _spread_plan(graph: Graph, chip: ChipFile, spec: MappingSpec, pinned: dict[str, int], where: Where) -> Plan:
    bins = []
    for c in sorted(set(pinned.values())):
        if c >= chip.n_chips:
            name = next(n for n, p in pinned.items() if p == c)
            raise UserError(f"is pinned to chip {c}, and the system has {chip.n_chips} chip(s), 0 to "
                            f"{chip.n_chips - 1}", file=graph.source_file, field=f"populations.{name}")
        bins.append(Bin(f"chip {c}", ("mapping", "strategy"), _chip_places(chip, c),
                        [n for n in _on_chip(graph) if pinned.get(n) == c], f"chip {c}",
                        f"the populations pinned to chip {c}"))
    taken = np.zeros(chip.total_cores, bool)
    for b in bins:
        taken[b.places] = True
    free = np.flatnonzero(~taken).astype(np.int64)
    rest = [n for n in _on_chip(graph) if n not in pinned]
    if rest:
        where_ = "the system" if not pinned else "the chips no population is pinned to"
        bins.append(Bin("system", ("mapping", "strategy"), free, rest, where_,
                        "the model" if not pinned else "the unpinned populations", spec.cores))
    return Plan("spread", bins, {}, {"cores": spec.cores or chip.total_cores})


def _group_plan(graph: Graph, chip: ChipFile, spec: MappingSpec, where: Where) -> Plan:
    key = ("mapping", "groups")
    pattern = re.compile(spec.groups)
    on_chip = _on_chip(graph)
    group_of: dict[str, str] = {}
    for name in on_chip:
        m = pattern.search(name)
        if m:
            group_of[name] = m.group(1) if pattern.groups and m.group(1) is not None else m.group(0)
    order = list(dict.fromkeys(group_of.values()))
    if not order:
        raise where.error(key, f"{spec.groups!r} matches none of the model's on-chip populations "
                               f"({_examples(on_chip)}); expected a pattern whose first capture group names "
                               f"each population's group, such as '^b(\\d+)_' for blocks b0_..., b1_...")
    rest = [n for n in on_chip if n not in group_of]
    own = spec.ungrouped == "own_chip" and bool(rest)
    if len(order) + own > chip.n_chips:
        extra = " and a chip for the populations outside them" if own else ""
        raise where.error(key, f"{len(order)} groups ({_examples(order)}){extra} need {len(order) + own} chips, "
                               f"one each, and the system ({chip.name}) has {chip.n_chips}: expected at most "
                               f"{chip.n_chips - own} groups, or a system of more chips")
    placed_with = dict(group_of)
    last = order[0]
    for name in on_chip:
        if name in group_of:
            last = group_of[name]
        elif spec.ungrouped == "nearest":
            placed_with[name] = last
        else:
            placed_with[name] = {"first": order[0], "last": order[-1], "own_chip": UNGROUPED}[spec.ungrouped]
    bins = [Bin(g, key, _chip_places(chip, c), [n for n in on_chip if placed_with[n] == g], f"chip {c}",
                f"group {g!r}" if g != UNGROUPED else "the populations outside the groups")
            for c, g in enumerate(order + ([UNGROUPED] if own else []))]
    return Plan("group_per_chip", bins, group_of, {"groups": spec.groups, "ungrouped": spec.ungrouped})


def _explicit_plan(graph: Graph, chip: ChipFile, spec: MappingSpec, where: Where) -> Plan:
    on_chip = set(_on_chip(graph))
    names = list(graph.populations)
    entry_of: dict[str, str] = {}
    for key, target in spec.map.items():
        matches = [n for n in names if fnmatch.fnmatchcase(n, key)]
        if not matches:
            raise where.error(("mapping", "map", key), f"matches none of the model's populations "
                                                       f"({_examples(names)}); expected a population's name or a "
                                                       f"glob such as 'b0_*'")
        if not any(n in on_chip for n in matches):
            raise where.error(("mapping", "map", key), f"matches only populations on the host "
                                                       f"({_examples(matches)}), which take no core; expected "
                                                       f"on-chip populations")
        for n in matches:
            if n in on_chip:
                entry_of.setdefault(n, key)
    missing = [n for n in names if n in on_chip and n not in entry_of]
    if missing:
        raise where.error(("mapping", "map"), f"{len(missing)} on-chip population(s) match no entry "
                                              f"({_examples(missing)}); expected every on-chip population to "
                                              f"match one ('*': CHIP last takes the rest)")
    bins: dict[tuple[int, int, int], Bin] = {}
    for key, target in spec.map.items():
        lo, hi = target.cores if target.cores is not None else (0, chip.cores_per_chip - 1)
        span = (target.chip, lo, hi)
        if span in bins:
            continue
        for (c, a, b), other in bins.items():
            if c == target.chip and lo <= b and a <= hi:
                raise where.error(("mapping", "map", key), f"cores {lo}-{hi} of chip {c} overlap those of "
                                                           f"{other.key[-1]!r} ({a}-{b}); expected the entries of "
                                                           f"a chip to name the same cores or disjoint ones")
        whole = target.cores is None
        name = f"chip {target.chip}" + ("" if whole else f" cores {lo}-{hi}")
        bins[span] = Bin(name, ("mapping", "map", key), _chip_places(chip, target.chip, lo, hi), [], name,
                         f"what the map sends to {name}")
    for n in names:
        if n in entry_of:
            t = spec.map[entry_of[n]]
            lo, hi = t.cores if t.cores is not None else (0, chip.cores_per_chip - 1)
            bins[(t.chip, lo, hi)].populations.append(n)
    used = [b for b in bins.values() if b.populations]
    text = ", ".join(f"{k}: {t.chip}" + (f" cores {t.cores[0]}-{t.cores[1]}" if t.cores else "")
                     for k, t in spec.map.items())
    return Plan("explicit", used, entry_of, {"map": text})


def _synapse_bytes_into(graph: Graph, chip: ChipFile) -> dict[str, float]:
    """Per population, the synaptic memory its incoming projections take at the least (a conv
    kernel once)."""
    into = dict.fromkeys(graph.populations, 0.0)
    for proj in graph.projections.values():
        encoding = encoding_of(proj)
        count = proj.csr.indptr[-1] if encoding == "sparse" else proj.weight.size
        into[proj.target] += float(count) * chip.core.synapse_bytes(proj.weight_bits, encoding)
    return into


def check_capacity(graph: Graph, chip: ChipFile, plan: Plan, where: Where, shared: bool = False) -> None:
    """Refuse a bin whose populations cannot fit its cores whatever the slicing: a core each
    (unless cores are ``shared``), and their neurons, neuron state and synapses against its
    cores' limits together."""
    lim = chip.core.mapping_limits(chip.cores_per_chip)
    into = _synapse_bytes_into(graph, chip)
    for b in plan.bins:
        cores, pops = len(b.places), [graph.populations[n] for n in b.populations]
        if len(pops) > cores and not shared:
            raise _overflow(where, b, f"its {len(pops)} populations, each on cores of its own", len(pops))
        state = sum(p.size * state_bytes_of(KINDS[p.kind], p.params) for p in pops)
        synapses = sum(into[n] for n in b.populations)
        for what, need, per_core in (("neurons", sum(p.size for p in pops), lim.neurons),
                                     ("bytes of neuron state", state, lim.neuron_state_bytes),
                                     ("bytes of synapses", synapses, lim.synapse_memory_bytes),
                                     ("bytes of memory", state + synapses, lim.memory_bytes)):
            if need > cores * per_core:
                raise b.error(where, f"{b.label} holds {need:,.0f} {what}, the {cores:,} cores of {b.where} hold "
                                     f"{cores * per_core:,.0f} (exceeded by {need - cores * per_core:,.0f}); "
                                     f"expected it to fit {b.where}")


def _overflow(where: Where, b: Bin, what: str, need: int) -> UserError:
    have = len(b.places)
    return b.error(where, f"{b.label} needs {need:,} cores ({what}), {b.where} has {have:,} (exceeded by "
                          f"{need - have:,}); expected it to fit {b.where}", overflow=True)


def apportion(packed: dict[str, int], sizes: dict[str, int], fixed: set[str], target: int) -> dict[str, int]:
    """Cores per population: each at least its ``packed`` count, the rest of ``target`` shared in
    proportion to it (largest remainders first), never more than its neurons; ``fixed`` ones
    keep their count."""
    names = list(packed)
    count = dict(packed)
    flexible = [n for n in names if n not in fixed]
    free = target - sum(count.values())
    if free <= 0 or not flexible:
        return count
    weight = np.array([packed[n] for n in flexible], np.float64)
    room = np.array([max(sizes[n] - packed[n], 0) for n in flexible], np.int64)
    quota = weight / weight.sum() * free
    extra = np.minimum(np.floor(quota).astype(np.int64), room)
    left = free - int(extra.sum())
    while left > 0 and (extra < room).any():
        open_ = extra < room
        remainder = np.where(open_, quota - extra, -np.inf)
        chosen = np.argsort(-remainder, kind="stable")[:min(left, int(open_.sum()))]
        extra[chosen] += 1
        left -= len(chosen)
    for n, e in zip(flexible, extra):
        count[n] += int(e)
    return count


SliceAll = Callable[[dict[str, int], list[str]], dict[str, Sliced]]


def spread_caps(graph: Graph, plan: Plan, slice_all: SliceAll, caps: dict[str, int], where: Where,
                share: float = 1.0) -> dict[str, int]:
    """Neuron caps that slice each bin's populations into about ``share`` of its places (at
    least as many slices as packed); a bin that does not fit packed is a `PlacementOverflow`."""
    sizes = {n: p.size for n, p in graph.populations.items()}
    fixed = {n for n, p in graph.populations.items() if KINDS[p.kind].whole_population}
    out = dict(caps)
    for b in plan.bins:
        packed = {n: len(s[0]) for n, s in slice_all(caps, b.populations).items()}
        need, have = sum(packed.values()), len(b.places)
        if need > have:
            raise _overflow(where, b, "its populations packed as tightly as the core's limits allow", need)
        goal = max(need, int(min(b.target or have, have) * share))
        target, tried, best = goal, set(), (need, {})
        while need < target <= 2 * have and target not in tried and len(tried) < 8:
            tried.add(target)
            count = apportion(packed, sizes, fixed, target)
            trial = {n: min(caps[n], -(-sizes[n] // count[n])) for n in b.populations}
            used = sum(len(s[0]) for s in slice_all(trial, b.populations).values())
            if used <= have and (abs(used - goal), -used) < (abs(best[0] - goal), -best[0]):
                best = (used, trial)
            # whole neurons per slice round the slices down, other limits may add some: aim again
            target += goal - used if used < goal else -(used - have) if used > have else 0
        out.update(best[1])
    return out


@dataclass
class Layout:
    """Slices on their places, in the order of their places (which is the cores' order)."""

    place: np.ndarray           # int64 [cores]
    population: list[str]
    lo: np.ndarray              # int64 [cores] first neuron within the population
    hi: np.ndarray
    syn_bytes: np.ndarray       # float64 [cores]
    fan_in: np.ndarray          # int64 [cores]


def lay_out(graph: Graph, plan: Plan, sliced: dict[str, Sliced], where: Where) -> Layout:
    """Each bin's populations, in model order, onto its places in order; a `PlacementOverflow`
    if their slices are more than its places."""
    place, population, lo, hi, syn, fan = [], [], [], [], [], []
    for b in plan.bins:
        need = sum(len(sliced[n][0]) for n in b.populations)
        if need > len(b.places):
            raise _overflow(where, b, "its populations sliced within the core's limits", need)
        at = 0
        for n in b.populations:
            starts, sb, fi = sliced[n]
            k = len(starts)
            place.append(b.places[at:at + k])
            population += [n] * k
            lo.append(starts)
            hi.append(np.append(starts[1:], graph.populations[n].size))
            syn.append(sb)
            fan.append(fi)
            at += k
    if not place:
        return Layout(np.zeros(0, np.int64), [], *(np.zeros(0, np.int64) for _ in range(2)), np.zeros(0),
                      np.zeros(0, np.int64))
    place_arr = np.concatenate(place)
    order = np.argsort(place_arr, kind="stable")
    return Layout(place_arr[order], [population[i] for i in order], np.concatenate(lo)[order].astype(np.int64),
                  np.concatenate(hi)[order].astype(np.int64), np.concatenate(syn)[order].astype(np.float64),
                  np.concatenate(fan)[order].astype(np.int64))
