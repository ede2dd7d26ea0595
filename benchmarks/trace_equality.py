"""Run every scenario and compare its trace, dataset by dataset, with a trace recorded earlier.

A change that should not move any figure (a refactor, a speed-up) is checked by recording every
scenario's trace before it and comparing after it:

    python benchmarks/trace_equality.py record  before/      # on the old code
    python benchmarks/trace_equality.py compare before/      # on the new code

``compare`` runs each scenario again into a temporary folder and reports, per scenario, whether every
attribute and dataset is equal (NaNs equal to NaNs), apart from the host's wall time and the trace's
creation stamp. It exits 1 if any scenario differs. ``--only NAME`` limits it to some scenarios;
``--ignore KEY`` leaves out attributes that only echo an input (``scenario_yaml``, ``source``) when
the inputs themselves were changed on purpose.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# What may differ between two runs of the same scenario and seed.
VOLATILE = {"wall_time_s", "created", "neurosim_version"}
# HDF5's links between a dimension scale and its datasets: object references, which differ from file to
# file (the scales' names and the datasets they label are compared as attributes and datasets).
LINKS = {"DIMENSION_LIST", "REFERENCE_LIST"}


def scenarios(only: list[str]) -> list[Path]:
    paths = sorted((ROOT / "scenarios").glob("*.yaml"))
    paths = [p for p in paths if not p.stem.startswith("sweep_")]
    return [p for p in paths if not only or p.stem in only]


def run(scenario: Path, out: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from neurosim.cli import main; main()", "run",
                           str(scenario), "--out", str(out), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stderr.strip()[-300:]


def flatten(path: Path, ignore: set[str] = frozenset()) -> dict[str, object]:
    """Every attribute and dataset of the trace at ``path``, keyed by its HDF5 path."""
    items: dict[str, object] = {}

    def visit(name: str, obj) -> None:
        for key, value in obj.attrs.items():
            if key not in VOLATILE and key not in LINKS and key not in ignore:
                items[f"{name}@{key}"] = value
        if isinstance(obj, h5py.Dataset):
            items[name] = obj[()]

    with h5py.File(path, "r") as h5:
        visit("/", h5)
        h5.visititems(visit)
    return items


def equal(a: object, b: object) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f" or a.dtype.kind == "c":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def differences(before: Path, after: Path, ignore: set[str] = frozenset()) -> list[str]:
    old, new = flatten(before, ignore), flatten(after, ignore)
    out = [f"only before: {k}" for k in sorted(old.keys() - new.keys())]
    out += [f"only after: {k}" for k in sorted(new.keys() - old.keys())]
    out += [f"differs: {k}" for k in sorted(old.keys() & new.keys()) if not equal(old[k], new[k])]
    return out


def traces_in(folder: Path) -> dict[str, Path]:
    """The traces in ``folder``, keyed by their name less the creation stamp."""
    return {re.sub(r"-\d{8}-\d{6}-\d+$", "", p.stem): p for p in sorted(folder.glob("*.h5"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["record", "compare"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--ignore", nargs="*", default=[])
    args = parser.parse_args()
    failed = 0
    for scenario in scenarios(args.only):
        if args.action == "record":
            target = args.folder / scenario.stem
            target.mkdir(parents=True, exist_ok=True)
            seconds, code, err = run(scenario, target)
            print(f"{scenario.stem:32s} {seconds:7.1f} s  exit {code}  {err if code else ''}",
                  flush=True)
            continue
        recorded = traces_in(args.folder / scenario.stem)
        with tempfile.TemporaryDirectory() as tmp:
            seconds, code, err = run(scenario, Path(tmp))
            fresh = traces_in(Path(tmp))
            if recorded.keys() != fresh.keys():
                verdict = (f"traces differ: {sorted(recorded)} before, {sorted(fresh)} after "
                           f"(exit {code}) {err}")
                failed += 1
            elif not recorded:
                verdict = "no trace either way"
            else:
                diff = [f"{name}: {d}" for name in recorded
                        for d in differences(recorded[name], fresh[name], set(args.ignore))]
                verdict = (f"equal ({len(recorded)} traces)" if not diff
                           else f"{len(diff)} differ: " + "; ".join(diff[:5]))
                failed += bool(diff)
        print(f"{scenario.stem:32s} {seconds:7.1f} s  {verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
