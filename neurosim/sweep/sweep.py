"""Parameter sweeps: one base scenario, many points, run on Dask, gathered into one table.

A sweep file (``neurosim sweep sweep.yaml``)::

    name: digits_chips
    base: scenarios/quickstart.yaml          # the scenario every point starts from
    grid:                                    # every combination of these values
      chip: [chips/loihi2.yaml, chips/spinnaker2.yaml]
      timesteps: [4, 8, 12, 16]
      overrides.core.energy_pj.synop: [5.0, 6.7]     # a chip field, as a scenario's overrides
    random:                                  # and/or points drawn from the seed
      samples: 10
      seed: 0
      fields:
        input.samples: {int: [10, 50]}                # int | uniform | log_uniform: [lo, hi]; or choices: [...]
    out: traces/sweeps/digits_chips          # default: traces/sweeps/<name>
    traces: true                             # write each point's trace (false: the table only)

A field is a dotted path into the scenario (``chip``, ``timesteps``, ``input.samples``,
``mapping.placement``, ``model``...) or ``overrides.<chip field>``. Points run as Dask tasks on a
``LocalCluster`` (or an existing cluster's scheduler); each finished point is added to the table
at once (``<out>/<name>.csv`` and ``<out>/<name>.h5``: a row per point, its fields, ``status``
``ok`` or ``error`` with the error, the trace, and every summary attribute as a column), so an
interrupted sweep keeps what it finished, and running it again skips the points already done
(a point is known by its fields' values). A point that fails is recorded and the others go on.
"""

from __future__ import annotations

import builtins
import csv
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, model_validator

from neurosim.errors import UserError
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


def point_id(values: dict[str, Any]) -> str:
    """A point's name: a hash of its fields' values, stable across runs."""
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


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
    scenario["name"] = f"{base['name']}-{point_id(values)}"
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
    if isinstance(base.get("model"), dict):
        for key in ("nir", "netx"):
            if key in base["model"]:
                base["model"][key] = _absolute(base["model"][key], scenario_bases)
    out = Path(spec.out) if spec.out else Path("traces") / "sweeps" / spec.name
    return Sweep(spec, str(path), base, expand(spec), out)


# ---------------------------------------------------------------------------------------------
# a point, in a worker


def run_point(scenario: dict, out_dir: str | None) -> dict[str, Any]:
    """Run one point; its summary, or its error. Never raises (a Dask task's result)."""
    from neurosim.runs import run

    try:
        result = run(scenario, out_dir=out_dir, write=out_dir is not None)
        summary = {k: v for k, v in result.summary.items() if isinstance(v, (bool, int, float, np.number, np.bool_))}
        return {"status": "ok", "error": "", "trace": str(result.trace_path or ""), **summary}
    except UserError as err:
        return {"status": "error", "error": str(err), "trace": ""}
    except Exception as err:                # a point's failure is recorded, not raised
        return {"status": "error", "error": f"{type(err).__name__}: {err}", "trace": ""}


# ---------------------------------------------------------------------------------------------
# the table


def read_table(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_table(sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    """The table as CSV and HDF5, each written whole and renamed into place."""
    import h5py

    fields = list(dict.fromkeys(k for p in sweep.points for k in p))
    summary_cols = sorted({k for r in rows for k in r} - set(FIXED_COLUMNS) - set(fields))
    columns = ["point", *fields, "status", "error", "trace", *summary_cols]
    sweep.out.mkdir(parents=True, exist_ok=True)
    tmp = sweep.table_csv.with_name(f".{sweep.table_csv.name}.partial")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in columns})
    tmp.replace(sweep.table_csv)
    tmp = sweep.table_h5.with_name(f".{sweep.table_h5.name}.partial")
    with h5py.File(tmp, "w") as h5:
        h5.attrs["sweep"] = sweep.spec.name
        h5.attrs["columns"] = json.dumps(columns)
        for col in columns:
            values = [r.get(col, "") for r in rows]
            try:
                data = np.array([float(v) if v != "" else np.nan for v in values], np.float64)
            except (TypeError, ValueError):
                data = np.array([str(v) for v in values], dtype=h5py.string_dtype())
            h5.create_dataset(col.replace("/", "_"), data=data)
    tmp.replace(sweep.table_h5)


@dataclass
class SweepResult:
    done: int
    failed: int
    skipped: int
    table_csv: Path
    table_h5: Path


def run_sweep(path: str | Path, *, scheduler: str | None = None, workers: int = 2,
              progress: bool = False) -> SweepResult:
    """Run a sweep file's points on Dask (see the module's docstring)."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    sweep = load_sweep(path)
    previous = {r["point"]: r for r in read_table(sweep.table_csv)}
    bases = [Path(sweep.file).parent, Path.cwd()]
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for values in sweep.points:
        pid = point_id(values)
        if previous.get(pid, {}).get("status") == "ok":
            rows[pid] = previous[pid]
            continue
        todo.append((pid, values, apply_point(sweep.base, values, bases)))
    skipped = len(rows)
    out_dir = str((sweep.out / "traces").resolve()) if sweep.spec.traces else None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
        client = Client(cluster)
    else:
        client = Client(scheduler)
    done = failed = 0
    try:
        futures = {client.submit(run_point, scenario, out_dir, key=f"point-{pid}", pure=False): (pid, values)
                   for pid, values, scenario in todo}
        bar = tqdm(total=len(futures), desc=sweep.spec.name, unit="point", disable=not progress)
        for future in as_completed(futures):
            pid, values = futures[future]
            result = future.result()
            rows[pid] = {"point": pid, **values, **result}
            done += result["status"] == "ok"
            failed += result["status"] != "ok"
            write_table(sweep, [rows[point_id(v)] for v in sweep.points if point_id(v) in rows])
            bar.update()
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if not todo:
        write_table(sweep, [rows[point_id(v)] for v in sweep.points if point_id(v) in rows])
    return SweepResult(done, failed, skipped, sweep.table_csv, sweep.table_h5)
