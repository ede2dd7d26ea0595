"""Compare runs: traces and sweep tables side by side, with their Pareto front of energy against
latency (``neurosim compare``).

Each run gives a row: its label (the scenario's name, or a sweep point's fields), chip, model,
accuracy, energy and time per inference (per token for a language model), throughput
(inferences or tokens per second) and sparsity. A run is on the Pareto front when no other run
takes less energy and less time, and strictly less of one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.analysis.plotting import plt, save
from neurosim.analysis.units import si
from neurosim.errors import UserError
from neurosim.traces.trace import read_summary


@dataclass
class Row:
    label: str
    chip: str
    model: str
    accuracy: float
    energy_j: float          # per inference, or per generated token
    time_s: float            # per inference, or per generated token
    sparsity: float
    per: str                 # "inference" or "token"

    @property
    def throughput(self) -> float:
        return 1.0 / self.time_s if self.time_s > 0 else float("nan")


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def from_summary(label: str, chip: str, model: str, s: dict) -> Row:
    """A run's row from its summary: per generated token for a language model, else per inference."""
    if "tokens_per_s" in s:
        return Row(label, chip, model, _float(s.get("accuracy")), _float(s["energy_per_token_j"]),
                   1.0 / _float(s["tokens_per_s"]), _float(s.get("mean_sparsity")), "token")
    return Row(label, chip, model, _float(s.get("accuracy")), _float(s.get("energy_per_inference_j")),
               _float(s.get("latency_per_inference_s")), _float(s.get("mean_sparsity")), "inference")


def load_rows(paths: list[str | Path]) -> list[Row]:
    """Rows of traces (``.h5`` traces) and sweep tables (``.csv``; the points that ran)."""
    rows = []
    for path in map(Path, paths):
        if path.suffix == ".csv":
            if not path.is_file():
                raise UserError("sweep table not found", file=str(path))
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                table = list(reader)
                names = reader.fieldnames or []
            if "point" not in names or "status" not in names:
                raise UserError("is not a sweep table (no point and status columns)", file=str(path))
            fields = names[names.index("point") + 1:names.index("status")]
            varying = [k for k in fields if len({r[k] for r in table}) > 1] or fields
            for r in table:
                if r.get("status") != "ok":
                    continue
                label = ", ".join(f"{k}={Path(r[k]).stem if '/' in str(r[k]) else r[k]}" for k in varying)
                chip = Path(r["chip"]).stem if "chip" in r else ""
                rows.append(from_summary(label or r["point"], chip, r.get("model", ""), r))
            continue
        t = read_summary(path)
        rows.append(from_summary(str(t.meta.get("scenario_name", path.stem)), str(t.meta.get("chip_name", "")),
                                  str(t.meta.get("model_name", "")), t.summary))
    if not rows:
        raise UserError("no finished runs to compare in the files given")
    return rows


def pareto(rows: list[Row]) -> np.ndarray:
    """Whether each row is on the front: no other row at most as costly in both and cheaper in one."""
    e = np.array([r.energy_j for r in rows])
    t = np.array([r.time_s for r in rows])
    front = np.ones(len(rows), bool)
    for i in range(len(rows)):
        dominated = (e <= e[i]) & (t <= t[i]) & ((e < e[i]) | (t < t[i]))
        front[i] = not dominated.any()
    return front


def table(rows: list[Row]) -> str:
    front = pareto(rows)
    width = max(12, min(48, max(len(r.label) for r in rows)))
    lines = [f"{'run':<{width}} {'chip':<18} {'accuracy':>9} {'energy':>10} {'time':>10} {'throughput':>12} "
             f"{'sparsity':>9}  pareto"]
    for r, f in zip(rows, front):
        acc = f"{r.accuracy:.2%}" if r.accuracy == r.accuracy else "n/a"
        sparsity = f"{r.sparsity:.1%}" if r.sparsity == r.sparsity else "n/a"
        lines.append(f"{r.label[:width]:<{width}} {r.chip[:18]:<18} {acc:>9} {si(r.energy_j, 'J'):>10} "
                     f"{si(r.time_s, 's'):>10} {r.throughput:>10.4g}/s {sparsity:>9}  {'*' if f else ''}")
    per = {r.per for r in rows}
    lines.append(f"energy and time per {' or '.join(sorted(per))}; * on the Pareto front of energy against time")
    return "\n".join(lines)


def plot(rows: list[Row], out_dir: str | Path) -> list[Path]:
    """``compare.png`` (energy, time and throughput per run) and ``pareto.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = [r.label for r in rows]
    x = np.arange(len(rows))
    per = rows[0].per
    fig, axes = plt.subplots(1, 3, figsize=(max(12, 0.5 * len(rows) + 6), 4.5))
    for ax, values, name in zip(axes, ([r.energy_j * 1e6 for r in rows], [r.time_s * 1e6 for r in rows],
                                       [r.throughput for r in rows]),
                                (f"energy per {per} (µJ)", f"time per {per} (µs)", f"{per}s per second")):
        ax.bar(x, values, color="#4477aa")
        ax.set_yscale("log")
        ax.set_ylabel(name)
        ax.set_xticks(x, labels, rotation=70, ha="right", fontsize=7)
    paths = [save(fig, out / "compare.png")]

    front = pareto(rows)
    fig, ax = plt.subplots(figsize=(7, 5))
    chips = sorted({r.chip for r in rows})
    colours = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"]
    for k, chip in enumerate(chips):
        pick = [i for i, r in enumerate(rows) if r.chip == chip]
        ax.scatter([rows[i].time_s * 1e6 for i in pick], [rows[i].energy_j * 1e6 for i in pick],
                   color=colours[k % len(colours)], label=chip or "?", s=30)
    order = sorted(np.flatnonzero(front), key=lambda i: rows[i].time_s)
    ax.plot([rows[i].time_s * 1e6 for i in order], [rows[i].energy_j * 1e6 for i in order], "k--", lw=1,
            label="Pareto front")
    for i in order:
        ax.annotate(rows[i].label[:24], (rows[i].time_s * 1e6, rows[i].energy_j * 1e6), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"time per {per} (µs)")
    ax.set_ylabel(f"energy per {per} (µJ)")
    ax.legend(fontsize=8)
    ax.set_title("Energy against time")
    paths.append(save(fig, out / "pareto.png"))
    return paths
