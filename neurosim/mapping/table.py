"""A mapping's placement as tables: per chip used (cores, neurons, synapses, memory, groups and
populations) and per population (its group, cores and chips), with the strategy's settings. The
trace keeps them as its ``/mapping`` group (`traces/README.md`); ``neurosim inspect`` prints them."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim.mapping.mapper import Mapping
from neurosim.mapping.routes import synapses_per_core


def _joined(names: list[str]) -> str:
    return ",".join(dict.fromkeys(names))


def placement_group(mapping: Mapping) -> dict[str, Any]:
    """The ``/mapping`` group of a trace: ``chips/`` (one row per chip used), ``populations/`` (one
    row per population, in model order; a host population has no cores and chip -1) and the
    strategy's settings as attributes."""
    r = mapping.routes
    n = mapping.n_cores
    synapses = synapses_per_core(r.axon_core, r.axon_synapses, n) if n else np.zeros(0, np.int64)
    used, chip_of_core = np.unique(mapping.core_chip, return_inverse=True)
    per_chip = {"cores": np.bincount(chip_of_core, minlength=len(used)).astype(np.int64),
                "neurons": np.bincount(chip_of_core, weights=mapping.utilisation["neurons"],
                                       minlength=len(used)).astype(np.int64),
                "synapses": np.bincount(chip_of_core, weights=synapses, minlength=len(used)).astype(np.int64),
                "memory_bytes": np.bincount(chip_of_core, weights=mapping.utilisation["memory_bytes"],
                                            minlength=len(used)).astype(np.float64)}
    on_core = [s for s in mapping.slices if s.core >= 0]
    pops_of_chip: list[list[str]] = [[] for _ in used]
    cores_of: dict[str, list[int]] = {name: [] for name in mapping.offsets}
    for s in on_core:
        pops_of_chip[chip_of_core[s.core]].append(s.population)
        cores_of[s.population].append(s.core)
    groups = mapping.group_of
    chips = {"chip": used.astype(np.int64), **per_chip,
             "groups": np.array([_joined([groups[p] for p in pops if p in groups]) for pops in pops_of_chip], str),
             "populations": np.array([_joined(pops) for pops in pops_of_chip], str)}
    names = list(mapping.offsets)
    first = [int(mapping.core_chip[min(cores_of[p])]) if cores_of[p] else -1 for p in names]
    last = [int(mapping.core_chip[max(cores_of[p])]) if cores_of[p] else -1 for p in names]
    populations = {"name": np.array(names, str), "group": np.array([groups.get(p, "") for p in names], str),
                   "cores": np.array([len(set(cores_of[p])) for p in names], np.int64),
                   "first_chip": np.array(first, np.int64), "last_chip": np.array(last, np.int64)}
    attrs = {"strategy": mapping.strategy, "cores_used": int(n), "chips_used": int(len(used)),
             **{k: v for k, v in mapping.placement.items()}}
    return {"chips": chips, "populations": populations, "@attrs": attrs}
