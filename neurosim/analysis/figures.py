"""Figures from trace files: per trace (`plot_trace`), the figures of `trace_figures`; across
traces, one model on systems of different sizes (`plot_scaling`), at DVFS settings (`plot_dvfs`)
and on several chips (`plot_chip_comparison`). Each is written as PNG, PDF or SVG."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from matplotlib.patches import Patch

from neurosim.analysis.compare import from_summary
from neurosim.analysis.plotting import PALETTE, check_format, image_bytes, plt, save, si_axis
from neurosim.analysis.summary import main_bound
from neurosim.analysis.trace_figures import (COLOURS, COMPONENTS, block_times, core_activity, energy_by_component,
                                             label_bars, latency_per_step, layer_sparsity, samples_of,
                                             spike_raster, token_timeline)
from neurosim.analysis.units import percent, si
from neurosim.errors import UserError
from neurosim.traces.trace import Trace, read_summary, read_trace, write_atomically

# What drawing a damaged trace raises (a group, a dataset or an attribute missing, of the wrong
# shape or type, or absurd): reported as the trace's fault, in one line.
DAMAGE = (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError, AttributeError, OverflowError, MemoryError)


def damaged(err: BaseException) -> str:
    """What a damaged trace lacks or holds, from the error drawing it raised."""
    if isinstance(err, KeyError):
        return f"it lacks {err.args[0]!r}" if err.args else "it lacks a field"
    if isinstance(err, MemoryError):
        return "it asks for more memory than the machine has"
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'malformed data'}"


def _traces(function):
    """Errors from damaged traces, raised while ``function`` reads or draws them, as one `UserError`
    naming the trace (or the traces) instead of a traceback."""
    @functools.wraps(function)
    def wrapper(paths, *args, **kwargs):
        try:
            return function(paths, *args, **kwargs)
        except DAMAGE as err:
            listed = [paths] if isinstance(paths, (str, Path)) else list(paths)
            raise UserError(f"{'is' if len(listed) == 1 else 'are'} not complete neurosim traces "
                            f"({damaged(err)}); expected traces neurosim run wrote",
                            file=", ".join(map(str, listed))) from None
    return wrapper


def figures_of(trace: Trace, sample: int = 0) -> list[tuple[str, object]]:
    """The figures a trace has data for, by name, as functions of no argument that draw them:
    a classification run's, or a language model's."""
    if "tokens" not in trace.groups:
        found = [("energy_by_component", lambda: energy_by_component(trace)),
                 ("latency_per_timestep", lambda: latency_per_step(trace, sample))]
        if "cores" in trace.groups:
            found.append(("core_activity", lambda: core_activity(trace)))
        return found + [("spike_raster", lambda: spike_raster(trace, sample))]
    if "output_time_ns" in trace["tokens"]:
        return [("tokens", lambda: token_timeline(trace)), ("layer_sparsity", lambda: layer_sparsity(trace))]
    return [("block_times", lambda: block_times(trace))]


def check_sample(trace: Trace, sample: int) -> int:
    """A sample asked for by number: one of the trace's."""
    if "tokens" in trace.groups:
        return 0
    n = samples_of(trace)
    if not 0 <= sample < n:
        raise UserError(f"--sample {sample}: the trace has {n} samples, expected 0 to {n - 1}", file=str(trace.path))
    return sample


@_traces
def draw_trace(path: str | Path, fmt: str = "png", sample: int = 0) -> list[tuple[str, bytes]]:
    """The figures of a trace, drawn, as (name, file bytes in ``fmt``)."""
    fmt = check_format(fmt)
    trace = read_trace(path)
    sample = check_sample(trace, sample)
    images = []
    for name, draw in figures_of(trace, sample):
        fig = draw()
        if fig is not None:
            images.append((name, image_bytes(fig, fmt)))
    return images


def plot_trace(path: str | Path, out_dir: str | Path | None = None, *, fmt: str = "png",
               sample: int = 0) -> list[Path]:
    """Write the figures of a trace (PNG, PDF or SVG; ``sample``: the sample whose steps and
    spikes are drawn); returns their paths. Every figure is drawn before any is written (a
    damaged trace leaves none), and each is written whole or not at all."""
    out = Path(out_dir) if out_dir else Path(path).with_suffix("")
    return [write_atomically(out / f"{name}.{check_format(fmt)}", data, "a figure")
            for name, data in draw_trace(path, fmt, sample)]


@_traces
def plot_scaling(paths: list[str | Path], out_dir: str | Path, fmt: str = "png") -> Path:
    """Energy per inference (by component) and latency per inference against the number of
    chips used, one point per trace; all traces must be of one model. Returns the figure's path
    (``scaling.<fmt>``)."""
    fmt = check_format(fmt)
    traces = sorted((read_summary(p) for p in paths), key=lambda t: int(t.summary["chips_used"]))
    models = {t.meta.get("model_name") for t in traces}
    if len(models) > 1:
        raise UserError(f"the traces are of different models ({', '.join(sorted(map(str, models)))}), "
                        f"expected one model on systems of different sizes", file=str(paths[0]))
    chips = [str(int(t.summary["chips_used"])) for t in traces]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    x = np.arange(len(traces))
    bottom = np.zeros(len(traces))
    for c in COMPONENTS:
        values = np.array([float(t.summary[f"energy_{c}_per_inference_j"]) for t in traces])
        left.bar(x, values, bottom=bottom, color=COLOURS[c], label=c)
        bottom += values
    for xi, total in zip(x, bottom):
        left.annotate(si(total, "J"), (xi, total), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    left.set_ylim(0, bottom.max(initial=0) * 1.12 or 1)
    si_axis(left.yaxis, "J")
    left.set_ylabel("energy per inference")
    left.set_title("Energy per inference by component", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    latency = [float(t.summary["latency_per_inference_s"]) for t in traces]
    right.plot(x, latency, marker="o", color="#aa3377")
    for xi, t, lat in zip(x, traces, latency):
        bound = main_bound(t.summary)
        text = si(lat, "s") + (f"\n{bound} {t.summary['steps_bound_by_' + bound]:.0%}" if bound else "")
        right.annotate(text, (xi, lat), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    right.set_ylim(0, max(latency) * 1.25 or 1)
    si_axis(right.yaxis, "s")
    right.set_ylabel("latency per inference")
    right.set_title("Latency per inference (and the bound that sets most steps)", fontsize=10)
    for ax in (left, right):
        ax.set_xticks(x, chips)
        ax.set_xlabel("chips used")
    fig.suptitle(f"{traces[0].meta.get('model_name', '?')}: energy and latency against chip count")
    return save(fig, Path(out_dir) / f"scaling.{fmt}")


@_traces
def plot_dvfs(paths: list[str | Path], out_dir: str | Path, fmt: str = "png") -> Path:
    """Energy and time per token (a language model) or per inference against the DVFS setting,
    one bar per trace of one model on a chip of ARM PEs (each run at a level, or ``auto``, ticked
    or as fast as possible). Returns the figure's path (``dvfs.<fmt>``)."""
    fmt = check_format(fmt)
    traces = [read_summary(p) for p in paths]
    for path, t in zip(paths, traces):
        if "dvfs" not in t.meta:
            raise UserError("is not a run on a chip with DVFS levels (no dvfs in its meta)", file=str(path))
    models = {t.meta.get("model_name") for t in traces}
    if len(models) > 1:
        raise UserError(f"the traces are of different models ({', '.join(sorted(map(str, models)))}), "
                        f"expected one model at different DVFS settings", file=str(paths[0]))
    order = {"ticked": 0, "afap": 1}
    traces.sort(key=lambda t: (order.get(str(t.meta["timing_mode"]), 2), str(t.meta["dvfs"])))
    rows = [from_summary("", "", "", t.summary) for t in traces]
    unit = rows[0].per
    labels = [f"{t.meta['dvfs']}\n{t.meta['timing_mode']}" for t in traces]
    modes = {"ticked": ("#4477aa", "ticked"), "afap": ("#ee6677", "as fast as possible")}
    colours = [modes.get(str(t.meta["timing_mode"]), ("#bbbbbb", ""))[0] for t in traces]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    x = np.arange(len(traces))
    for ax, values, what, symbol in ((left, [r.energy_j for r in rows], "energy", "J"),
                                     (right, [r.time_s for r in rows], "time", "s")):
        label_bars(ax, ax.bar(x, values, color=colours), [si(v, symbol) for v in values])
        ax.set_ylim(0, max(values) * 1.12 or 1)
        si_axis(ax.yaxis, symbol)
        ax.set_ylabel(f"{what} per {unit}")
        ax.set_title(f"{what.capitalize()} per {unit}", fontsize=10)
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlabel("DVFS level (auto: chosen per tick and PE)")
    used = dict.fromkeys(str(t.meta["timing_mode"]) for t in traces)
    left.legend(handles=[Patch(color=modes[m][0], label=modes[m][1]) for m in used if m in modes], fontsize=8)
    fig.suptitle(f"{traces[0].meta.get('model_name', '?')} on {traces[0].meta.get('chip_name', '?')}: DVFS settings")
    return save(fig, Path(out_dir) / f"dvfs.{fmt}")


@_traces
def plot_chip_comparison(paths: list[str | Path], target: str | Path) -> Path:
    """Accuracy, energy (static and dynamic, stacked) and latency per inference (per generated
    token for a language model) of one model on several chips, a bar per chip, each labelled;
    written in the format ``target``'s suffix names."""
    return save(chip_comparison([read_summary(p) for p in paths]), target)


def chip_comparison(traces: list[Trace]):
    """The figure of `plot_chip_comparison`, from the traces' summaries."""
    names = [str(t.meta.get("chip_name", "?")) for t in traces]
    rows = [from_summary("", name, "", t.summary) for name, t in zip(names, traces)]
    per = rows[0].per
    static = np.array([float(t.summary.get(f"energy_static_per_{per}_j", np.nan)) for t in traces])
    fig, (acc, energy, latency) = plt.subplots(1, 3, figsize=(13, 4.6))
    x = np.arange(len(traces))
    accuracy = np.array([r.accuracy * 100 for r in rows])
    label_bars(acc, acc.bar(x, np.nan_to_num(accuracy), color=PALETTE[0]),
               [f"{v:.2f}%" if v == v else "n/a" for v in accuracy])
    acc.set_ylim(0, 109)
    acc.set_ylabel("accuracy (%)")
    acc.set_title("Accuracy", fontsize=10)
    total = np.array([r.energy_j for r in rows])
    split = np.isfinite(static)
    energy.bar(x, np.where(split, static, 0), color=COLOURS["static"], label="static")
    energy.bar(x, np.where(split, total - static, total), bottom=np.where(split, static, 0), color=COLOURS["dynamic"],
               label="dynamic" if split.all() else "dynamic (all, where the split is not recorded)")
    for xi, t, st, ok in zip(x, total, static, split):
        text = si(t, "J") + (f"\nstatic {percent(st / t)}" if ok and t > 0 else "")
        energy.annotate(text, (xi, t), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    energy.set_ylim(0, total.max(initial=0) * 1.25 or 1)
    si_axis(energy.yaxis, "J")
    energy.set_ylabel(f"energy per {per}")
    energy.set_title(f"Energy per {per}: static and dynamic", fontsize=10)
    energy.legend(fontsize=8, loc="upper left")
    times = [r.time_s for r in rows]
    label_bars(latency, latency.bar(x, times, color=PALETTE[5]), [si(v, "s") for v in times])
    latency.set_ylim(0, max(times) * 1.15 or 1)
    si_axis(latency.yaxis, "s")
    latency.set_ylabel(f"latency per {per}")
    latency.set_title(f"Latency per {per}", fontsize=10)
    for ax in (acc, energy, latency):
        ax.set_xticks(x, names, fontsize=8)
    fig.suptitle(f"{traces[0].meta.get('model_name', '?')} on {len(traces)} chips "
                 f"(mean per {per} over each run)")
    return fig
