"""Compare runs: traces and sweep tables side by side, with their Pareto front of energy, time and
accuracy (``neurosim compare``).

Each run gives a row: its label (the scenario's name, or a sweep point's fields), chip, model,
accuracy, energy and time per inference (per token for a language model), throughput
(inferences or tokens per second) and sparsity. A run is on the Pareto front unless another run
is at least as good in all three (no more energy, no more time, no less accuracy) and better in
one; runs without an accuracy (unlabelled inputs) are compared on energy and time alone.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from neurosim.analysis.plotting import PALETTE, check_format, plt, save, si_axis
from neurosim.analysis.units import number, si
from neurosim.datasets import check_allocation
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


def _per(rate) -> float:
    rate = _float(rate)
    return 1.0 / rate if rate else float("nan")


def from_summary(label: str, chip: str, model: str, s: dict) -> Row:
    """A run's row from its summary: per generated token for a language model, else per inference."""
    if "tokens_per_s" in s:
        return Row(label, chip, model, _float(s.get("accuracy")), _float(s.get("energy_per_token_j")),
                   _per(s["tokens_per_s"]), _float(s.get("mean_sparsity")), "token")
    return Row(label, chip, model, _float(s.get("accuracy")), _float(s.get("energy_per_inference_j")),
               _float(s.get("latency_per_inference_s")), _float(s.get("mean_sparsity")), "inference")


def load_rows(paths: list[str | Path]) -> list[Row]:
    """Rows of traces (``.h5`` traces) and sweep tables (``.csv``; the points that ran)."""
    rows = []
    for path in map(Path, paths):
        if path.suffix == ".csv":
            table, names = read_table(path)
            if "point" not in names or "status" not in names or names.index("point") > names.index("status"):
                raise UserError("is not a sweep table (no point and status columns)", file=str(path))
            fields = names[names.index("point") + 1:names.index("status")]
            varying = [k for k in fields if len({r[k] for r in table}) > 1] or fields
            for r in table:
                if r.get("status") != "ok":
                    continue
                label = ", ".join(f"{k}={Path(r[k]).stem if '/' in str(r[k]) else r[k]}" for k in varying)
                chip = Path(r["chip"]).stem if "chip" in r else ""
                row = from_summary(label or r["point"], chip, r.get("model", ""), r)
                if comparable(row):             # a row without its figures cannot be compared or drawn
                    rows.append(row)
            continue
        t = read_summary(path)
        row = from_summary(str(t.meta.get("scenario_name", path.stem)), str(t.meta.get("chip_name", "")),
                           str(t.meta.get("model_name", "")), t.summary)
        if not comparable(row):
            raise UserError(f"is not a complete neurosim trace (no energy and time per {row.per} in its summary)",
                            file=str(path))
        rows.append(row)
    if not rows:
        raise UserError("holds no finished runs to compare (rows of status ok with energy and time figures)",
                        file=", ".join(map(str, paths)))
    return rows


def comparable(row: Row) -> bool:
    """Whether a row has the figures a comparison needs: positive, finite energy and time."""
    return all(math.isfinite(v) and v > 0 for v in (row.energy_j, row.time_s))


def read_table(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """A sweep table's rows and columns; a missing, unreadable or malformed file is a `UserError`
    (a row's missing cells read as empty, cells beyond the header are dropped)."""
    if not path.is_file():
        raise UserError("sweep table not found", file=str(path))
    check_allocation(20 * path.stat().st_size, "reading it", file=str(path))
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            table = [{k: v if isinstance(v, str) else "" for k, v in r.items() if isinstance(k, str)} for r in reader]
            names = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"is not a readable sweep table ({err}), expected a CSV file neurosim sweep wrote",
                        file=str(path)) from None
    if len(set(names)) != len(names):
        raise UserError("is not a sweep table (a column name repeats)", file=str(path))
    return table, names


def pareto(rows: list[Row]) -> np.ndarray:
    """Whether each row is on the front of energy, time and accuracy: no other row takes no more
    energy and no more time with no less accuracy, and is better in one of the three. An accuracy
    that is NaN (on either side) does not count either way."""
    e = np.array([r.energy_j for r in rows], float)
    t = np.array([r.time_s for r in rows], float)
    a = np.array([r.accuracy for r in rows], float)
    front = np.ones(len(rows), bool)
    for i in range(len(rows)):
        known = np.isfinite(a) & np.isfinite(a[i])
        no_worse = (e <= e[i]) & (t <= t[i]) & (~known | (a >= a[i]))
        better = (e < e[i]) | (t < t[i]) | (known & (a > a[i]))
        front[i] = not (no_worse & better).any()
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
                     f"{si(r.time_s, 's'):>10} {number(r.throughput):>10}/s {sparsity:>9}  {'*' if f else ''}")
    per = {r.per for r in rows}
    lines.append(f"energy and time per {' or '.join(sorted(per))}; * on the Pareto front of energy, time and "
                 f"accuracy (no other run is as good in all three and better in one)")
    return "\n".join(lines)


def plot(rows: list[Row], out_dir: str | Path, fmt: str = "png") -> list[Path]:
    """``compare.<fmt>`` (accuracy, energy and time per run) and ``pareto.<fmt>`` (energy against
    time, and accuracy against energy, the Pareto front ringed); PNG, PDF or SVG."""
    fmt = check_format(fmt)
    out = Path(out_dir)
    front = pareto(rows)
    return [save(runs_figure(rows, front), out / f"compare.{fmt}"),
            save(pareto_figure(rows, front), out / f"pareto.{fmt}")]


def chip_colours(rows: list[Row]) -> dict[str, str]:
    return {chip: PALETTE[k % len(PALETTE)] for k, chip in enumerate(dict.fromkeys(r.chip for r in rows))}


def short_label(row: Row) -> str:
    """A row's label without the chip its colour already shows."""
    parts = [p for p in row.label.split(", ") if p != f"chip={row.chip}"]
    return ", ".join(parts) or row.label


def per_of(rows: list[Row]) -> str:
    return " or ".join(dict.fromkeys(r.per for r in rows))


def value_axis(axis, values, unit: str) -> None:
    """A positive quantity's axis: logarithmic when the values span more than 20x, else linear from
    zero; ticks written with `si`."""
    finite = [v for v in values if v > 0 and np.isfinite(v)]
    if finite and max(finite) > 20 * min(finite):
        getattr(axis.axes, f"set_{axis.axis_name}scale")("log")
    else:
        getattr(axis.axes, f"set_{axis.axis_name}lim")(0, max(finite, default=1) * 1.1)
        axis.set_major_locator(MaxNLocator(4))
    si_axis(axis, unit)


def legend_handles(rows: list[Row], front: np.ndarray) -> list:
    colours = chip_colours(rows)
    handles = [Line2D([], [], ls="", marker="o", color=c, label=chip or "chip not named") for chip, c in colours.items()]
    if front.any():
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="black", markersize=10, mew=1.5,
                              label="on the Pareto front"))
    return handles


def scatter(ax, x, y, rows: list[Row], front: np.ndarray) -> None:
    colours = chip_colours(rows)
    ax.scatter(x, y, c=[colours[r.chip] for r in rows], s=28, zorder=3)
    if front.any():
        ax.scatter(np.asarray(x)[front], np.asarray(y)[front], s=110, facecolors="none", edgecolors="black",
                   linewidths=1.5, zorder=4)


def annotate(ax, text: str, x: float, y: float, weight: str) -> None:
    """Label a point beside it: on its right, or on its left in the right third of the axes."""
    ax.autoscale_view()
    right_side = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))[0] > 0.66
    ax.annotate(text, (x, y), xytext=(-6 if right_side else 6, -3), textcoords="offset points", fontsize=6.5,
                ha="right" if right_side else "left", fontweight=weight, color="#333333")


def runs_figure(rows: list[Row], front: np.ndarray):
    """Accuracy, energy and time per run, a row per run (dots; ringed: on the Pareto front)."""
    n = len(rows)
    per = per_of(rows)
    fig, axes = plt.subplots(1, 3, figsize=(13, max(3.5, 1.9 + 0.26 * n)), sharey=True)
    y = np.arange(n)
    panels = ((np.array([r.accuracy for r in rows]) * 100, "accuracy (%)", None),
              (np.array([r.energy_j for r in rows]), f"energy per {per}", "J"),
              (np.array([r.time_s for r in rows]), f"time per {per}", "s"))
    for ax, (values, name, unit) in zip(axes, panels):
        scatter(ax, np.nan_to_num(values, nan=-1.0) if unit is None else values, y, rows, front)
        if unit is None:
            ax.set_xlim(-2, 102)
            if not np.isfinite(values).any():
                ax.text(50, (n - 1) / 2, "no accuracy (unlabelled inputs)", ha="center", fontsize=8)
        else:
            value_axis(ax.xaxis, values, unit)
        ax.set_xlabel(name)
        ax.grid(axis="x", color="#eeeeee")
        ax.grid(axis="y", color="#f4f4f4")
    axes[0].set_yticks(y, [r.label for r in rows], fontsize=7 if n > 12 else 8)
    axes[0].set_ylim(n - 0.5, -0.5)
    axes[-1].legend(handles=legend_handles(rows, front), fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    frameon=False)
    fig.suptitle(f"{n} runs: accuracy, energy and time per {per} (ringed: on the Pareto front of the three)")
    return fig


def pareto_figure(rows: list[Row], front: np.ndarray):
    """Energy against time, and accuracy against energy, every run a labelled dot, the Pareto
    front of the three ringed."""
    per = per_of(rows)
    energy = np.array([r.energy_j for r in rows])
    time = np.array([r.time_s for r in rows])
    accuracy = np.array([r.accuracy for r in rows]) * 100
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    scatter(left, time, energy, rows, front)
    value_axis(left.xaxis, time, "s")
    value_axis(left.yaxis, energy, "J")
    left.set_xlabel(f"time per {per}")
    left.set_ylabel(f"energy per {per}")
    left.set_title("Energy against time (lower left is better)", fontsize=10)
    labelled = np.isfinite(accuracy)
    scatter(right, energy[labelled], accuracy[labelled], [r for r, k in zip(rows, labelled) if k], front[labelled])
    value_axis(right.xaxis, energy, "J")
    right.set_xlabel(f"energy per {per}")
    right.set_ylabel("accuracy (%)")
    right.set_title("Accuracy against energy (upper left is better)", fontsize=10)
    many = len(rows) > 30
    for i, r in enumerate(rows):
        if many and not front[i]:
            continue                   # labels of a crowd would hide it: the front's only
        text = short_label(r) + (f", {r.accuracy:.1%}" if labelled[i] else "")
        weight = "bold" if front[i] else "normal"
        annotate(left, text, time[i], energy[i], weight)
        if labelled[i] and front[i]:
            annotate(right, short_label(r), energy[i], accuracy[i], weight)
    for ax in (left, right):
        ax.grid(color="#eeeeee")
    right.legend(handles=legend_handles(rows, front), fontsize=8, loc="lower right")
    fig.suptitle(f"Pareto front of energy, time and accuracy: {int(front.sum())} of {len(rows)} runs (ringed); "
                 f"a run is on it unless another is as good in all three and better in one", fontsize=10)
    return fig
