"""Running a sweep's points as Dask tasks and keeping its table (CSV and HDF5) as they finish."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.errors import UserError
from neurosim.sweep.points import FIXED_COLUMNS, Sweep, apply_point, load_sweep, point_id


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
