"""A sweep file and its points: the fields it varies, their values (a grid and/or random draws
from a seed), and the scenario each point makes from the base (see `neurosim.sweep`)."""

from __future__ import annotations

import builtins
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, model_validator

from neurosim.errors import UserError
from neurosim.spec.scenario import drop_synonym
from neurosim.spec.validate import Spec, validate
from neurosim.spec.yamlio import load_yaml

MAX_POINTS = 100_000
FIXED_COLUMNS = ("point", "status", "error", "trace")


class RandomField(Spec):
    int: tuple[builtins.int, builtins.int] | None = None
    uniform: tuple[float, float] | None = None
    log_uniform: tuple[float, float] | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> "RandomField":
        given = [k for k in ("int", "uniform", "log_uniform", "choices") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of int, uniform, log_uniform or choices")
        if self.log_uniform is not None and min(self.log_uniform) <= 0:
            raise ValueError("log_uniform bounds must be positive")
        return self


class RandomSpec(Spec):
    samples: Annotated[int, Field(ge=1, le=MAX_POINTS)]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    fields: dict[str, RandomField] = Field(min_length=1)


class SweepFile(Spec):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)]
    description: str = ""
    base: str
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    random: RandomSpec | None = None
    out: str | None = None
    traces: bool = True

    @model_validator(mode="after")
    def _check(self) -> "SweepFile":
        if not self.grid and self.random is None:
            raise ValueError("expected grid or random (the fields to sweep)")
        size = int(np.prod([len(v) for v in self.grid.values()])) if self.grid else 1
        if size * (self.random.samples if self.random else 1) > MAX_POINTS:
            raise ValueError(f"the sweep has more than {MAX_POINTS:,} points")
        return self


@dataclass
class Sweep:
    spec: SweepFile
    file: str
    base: dict                      # the base scenario, its file paths made absolute
    points: list[dict[str, Any]]    # field -> value per point
    out: Path

    @property
    def table_csv(self) -> Path:
        return self.out / f"{self.spec.name}.csv"

    @property
    def table_h5(self) -> Path:
        return self.out / f"{self.spec.name}.h5"


def point_id(values: dict[str, Any], context: str = "") -> str:
    """A point's name: a hash of its fields' values and of ``context`` (`point_context`: everything
    else that determines its result), stable across runs."""
    return hashlib.sha256((json.dumps(values, sort_keys=True, default=str) + context).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest(kind: str, name: Any, cache: dict[tuple[str, str], str]) -> str:
    """What a chip (its data with its ``base`` chain), a model folder (its model.yaml, which holds its
    weights' sha256) or a file (its bytes) named in a point's scenario holds, as a hash; a name
    that cannot be read yet hashes as such (the point then fails and says why)."""
    from neurosim.spec.chip import load_chip_data
    from neurosim.spec.places import find

    key = (kind, str(name))
    if key not in cache:
        try:
            path = find(kind, str(name))
            if kind == "chip":
                cache[key] = json.dumps(load_chip_data(path)[0], sort_keys=True, default=str)
            else:
                cache[key] = _file_digest(path / "model.yaml" if kind == "model" else path)
        except (UserError, OSError):
            cache[key] = f"{kind} {name!r} unreadable"
    return cache[key]


def point_context(scenario: dict, cache: dict[tuple[str, str], str]) -> str:
    """Everything beyond its fields that determines a point's result, as one string for
    `point_id`: neurosim's version, the point's whole scenario (the base with the point's fields)
    and the contents of the chips, model and files it names. A change to any of them makes
    another point (run again), never an old result reported for a new setup."""
    from neurosim import __version__

    chips = scenario.get("chip")
    model = scenario.get("model")
    inputs = scenario.get("input") if isinstance(scenario.get("input"), dict) else {}
    parts = [__version__, json.dumps({k: v for k, v in scenario.items() if k != "name"}, sort_keys=True, default=str)]
    for chip in (chips if isinstance(chips, list) else [chips]) + list(scenario.get("baselines") or []):
        parts.append(_digest("chip", chip, cache))
    if isinstance(model, str):
        parts.append(_digest("model", model, cache))
    elif isinstance(model, dict):
        parts += [_digest("file", model[k], cache) for k in ("nir", "netx") if isinstance(model.get(k), str)]
    parts += [_digest("file", inputs[k], cache) for k in ("file", "labels") if isinstance(inputs.get(k), str)]
    return "\n".join(parts)


def _draw(field: RandomField, rng: np.random.Generator) -> Any:
    if field.int is not None:
        return int(rng.integers(field.int[0], field.int[1] + 1))
    if field.uniform is not None:
        return float(rng.uniform(*field.uniform))
    if field.log_uniform is not None:
        lo, hi = np.log(field.log_uniform)
        return float(np.exp(rng.uniform(lo, hi)))
    return field.choices[int(rng.integers(len(field.choices)))]


def expand(spec: SweepFile) -> list[dict[str, Any]]:
    """The sweep's points: the grid's combinations, each with the random draws (if any)."""
    keys = list(spec.grid)
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*(spec.grid[k] for k in keys))] or [{}]
    if spec.random is None:
        return grid
    rng = np.random.default_rng(spec.random.seed)
    draws = [{k: _draw(f, rng) for k, f in spec.random.fields.items()} for _ in range(spec.random.samples)]
    return [{**g, **d} for g in grid for d in draws]


def _absolute(value: str, bases: list[Path]) -> str:
    for base in bases:
        if (base / value).exists():
            return str((base / value).resolve())
    return value


def apply_point(base: dict, values: dict[str, Any], bases: list[Path]) -> dict:
    """The base scenario with a point's fields set (``overrides.<field>`` into its overrides)."""
    import copy

    scenario = copy.deepcopy(base)
    for path, value in values.items():
        if path.startswith("overrides."):
            scenario.setdefault("overrides", {})[path.removeprefix("overrides.")] = value
            continue
        node, parts = scenario, path.split(".")
        for key in parts[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise UserError(f"field {path!r}: {key!r} of the scenario is not a mapping")
        if parts[-1] in ("chip", "model") and isinstance(value, str) and len(parts) == 1:
            value = _absolute(value, bases)
        node[parts[-1]] = value
        drop_synonym(parts, node)
    scenario["name"] = f"{str(base.get('name', 'point'))[:80]}-{point_id(values)}"
    return scenario


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    data, lines, _ = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping with name, base and grid or random", file=str(path))
    spec = validate(SweepFile, data, file=str(path), lines=lines)
    bases = [Path.cwd(), path.parent, path.parent.parent]
    base_path = next((b / spec.base for b in bases if (b / spec.base).is_file()), None)
    if base_path is None:
        raise UserError(f"base scenario {spec.base!r} not found", file=str(path), field="base",
                        line=lines.find(("base",)))
    base, _, _ = load_yaml(base_path)
    if not isinstance(base, dict):
        raise UserError("expected a scenario mapping", file=str(base_path))
    scenario_bases = [base_path.parent, base_path.parent.parent, Path.cwd()]
    for key in ("chip", "model"):
        if isinstance(base.get(key), str):
            base[key] = _absolute(base[key], scenario_bases)
        elif isinstance(base.get(key), list):
            base[key] = [_absolute(v, scenario_bases) for v in base[key]]
    for section, keys in (("model", ("nir", "netx")), ("input", ("file", "labels"))):
        for key in keys if isinstance(base.get(section), dict) else ():
            if isinstance(base[section].get(key), str):
                base[section][key] = _absolute(base[section][key], scenario_bases)
    out = Path(spec.out) if spec.out else Path("traces") / "sweeps" / spec.name
    return Sweep(spec, str(path), base, expand(spec), out)


# ---------------------------------------------------------------------------------------------
# a point, in a worker
