"""Running a sweep's points as Dask tasks and keeping its table (CSV and HDF5) as they finish.

A point is known by a hash of its fields and of everything else that determines it
(`neurosim.sweep.points.point_context`), and its trace is named after it: a point that runs twice
(its worker was lost, and Dask ran it again) writes the same file twice, whole each time, and
leaves no copy the table does not name.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.errors import UserError
from neurosim.sweep.points import FIXED_COLUMNS, Sweep, apply_point, load_sweep, point_context, point_id
from neurosim.traces.trace import hdf5_image, partial_path, remove_stale_partials, write_atomically


def run_point(scenario: dict, out_dir: str | None) -> dict[str, Any]:
    """Run one point; its summary, or its error. Never raises (a Dask task's result). Its trace is
    ``<out_dir>/<scenario name>.h5``, moved there whole from a folder of this process."""
    from neurosim.runs import run

    staging = None
    try:
        if out_dir is None:
            result, trace = run(scenario, write=False), ""
        else:
            final = Path(out_dir) / f"{scenario['name']}.h5"
            staging = partial_path(final)
            result = run(scenario, out_dir=staging, write=True)
            os.replace(result.trace_path, final)
            trace = str(final)
        summary = {k: v for k, v in result.summary.items() if isinstance(v, (bool, int, float, np.number, np.bool_))}
        return {"status": "ok", "error": "", "trace": trace, **summary}
    except UserError as err:
        return {"status": "error", "error": str(err), "trace": ""}
    except Exception as err:                # a point's failure is recorded, not raised
        return {"status": "error", "error": f"{type(err).__name__}: {err}", "trace": ""}
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the table


def read_table(path: Path) -> list[dict[str, str]]:
    """A sweep table's rows (none when there is no table yet); a damaged table is a `UserError`."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"is not a readable sweep table ({err}); remove it to run every point again",
                        file=str(path)) from None
    if rows and not {"point", "status"} <= set(rows[0]):
        raise UserError("is not a sweep table (no point and status columns); remove it to run every point again",
                        file=str(path))
    return rows


def write_table(sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    """The table as CSV and HDF5, each written whole and renamed into place
    (`neurosim.traces.trace.write_atomically`: a full disk leaves the last table as it was)."""
    fields = list(dict.fromkeys(k for p in sweep.points for k in p))
    summary_cols = sorted({k for r in rows for k in r} - set(FIXED_COLUMNS) - set(fields))
    columns = ["point", *fields, "status", "error", "trace", *summary_cols]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in columns})
    write_atomically(sweep.table_csv, text.getvalue().encode(), "the sweep table")

    def fill(h5) -> None:
        import h5py

        h5.attrs["sweep"] = sweep.spec.name
        h5.attrs["columns"] = json.dumps(columns)
        for col in columns:
            values = [r.get(col, "") for r in rows]
            try:
                data = np.array([float(v) if v != "" else np.nan for v in values], np.float64)
            except (TypeError, ValueError):
                data = np.array([str(v) for v in values], dtype=h5py.string_dtype())
            h5.create_dataset(col.replace("/", "_"), data=data)

    write_atomically(sweep.table_h5, hdf5_image(fill), "the sweep table")


@dataclass
class SweepResult:
    done: int
    failed: int
    skipped: int
    table_csv: Path
    table_h5: Path


def dask_client(scheduler: str | None, workers: int, dashboard: str | None):
    """A Dask client of a local cluster, or of the scheduler at ``scheduler``; (client, the local
    cluster or None). The local cluster's scheduler and workers listen on 127.0.0.1 only; unless a
    ``dashboard`` address is given, their HTTP servers (which Dask always starts) serve nothing, on
    a free port."""
    import logging

    import dask
    from dask.distributed import Client, LocalCluster

    if logging.getLogger().level > logging.DEBUG:           # Dask's own progress notes, unless debugging
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler is None:
        quiet = {} if dashboard else {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
        with dask.config.set(quiet):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=dashboard, silence_logs=logging.ERROR,
                                   scheduler_kwargs={} if dashboard else {"dashboard_address": "127.0.0.1:0"},
                                   env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise UserError(f"cannot reach the Dask scheduler {scheduler!r} ({err})", field="--scheduler") from None


def run_sweep(path: str | Path, *, scheduler: str | None = None, workers: int = 2,
              progress: bool = False, dashboard: str | None = None) -> SweepResult:
    """Run a sweep file's points on Dask (see `neurosim.sweep`); ``dashboard`` (an address such as
    ``:8787``) starts the local cluster's dashboard, which is off by default."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    sweep = load_sweep(path)
    for folder in (sweep.out, sweep.out / "traces"):
        remove_stale_partials(folder)
    previous = {r["point"]: r for r in read_table(sweep.table_csv)}
    bases = [Path(sweep.file).parent, Path.cwd()]
    cache: dict[tuple[str, str], str] = {}
    keys, todo, rows = [], [], {}
    for values in sweep.points:
        scenario = apply_point(sweep.base, values, bases)
        key = point_id(values, point_context(scenario, cache))
        scenario["name"] = f"{str(sweep.base.get('name', 'point'))[:80]}-{key}"
        keys.append(key)
        if previous.get(key, {}).get("status") == "ok":
            rows[key] = previous[key]
        elif key not in {k for k, _, _ in todo}:
            todo.append((key, values, scenario))
    skipped = len(rows)
    out_dir = str((sweep.out / "traces").resolve()) if sweep.spec.traces else None
    ordered = (lambda: [rows[k] for k in dict.fromkeys(keys) if k in rows])        # noqa: E731
    client, cluster = dask_client(scheduler, workers, dashboard)
    done = failed = 0
    try:
        futures = {client.submit(run_point, scenario, out_dir, key=f"point-{key}", pure=False): (key, values)
                   for key, values, scenario in todo}
        bar = tqdm(total=len(futures), desc=sweep.spec.name, unit="point", disable=not progress)
        for future in as_completed(futures):
            key, values = futures.pop(future)
            try:
                result = future.result()
            except Exception as err:        # the point's workers died (Dask's KilledWorker) or it was cancelled
                result = {"status": "error", "error": f"{type(err).__name__}: {err}", "trace": ""}
            future.release()                # done: the scheduler forgets it and never runs it again
            rows[key] = {"point": key, **values, **result}
            done += result["status"] == "ok"
            failed += result["status"] != "ok"
            write_table(sweep, ordered())
            bar.update()
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if not todo:
        write_table(sweep, ordered())
    return SweepResult(done, failed, skipped, sweep.table_csv, sweep.table_h5)
