"""Figures from trace files: per trace, energy by component, latency per step, core activity
and a spike raster; across traces of one model on systems of different sizes, energy and
latency against chip count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurosim.analysis.compare import from_summary
from neurosim.analysis.plotting import plt, save
from neurosim.analysis.units import si
from neurosim.errors import UserError
from neurosim.traces.trace import Trace, read_summary, read_trace

COMPONENTS = ("synapse", "neuron", "network", "static")
COLOURS = {"synapse": "#4477aa", "neuron": "#66ccee", "network": "#228833", "static": "#bbbbbb"}


def _title(trace: Trace) -> str:
    return f"{trace.meta.get('model_name', '?')} on {trace.meta.get('chip_name', '?')}"


def energy_by_component(trace: Trace, ax) -> None:
    """Bars of the summary's energy per inference by component, on a log axis so the
    small dynamic parts stay visible next to static power."""
    per_inf = [float(trace.summary[f"energy_{c}_per_inference_j"]) * 1e6 for c in COMPONENTS]   # J -> uJ
    total = float(trace.summary["energy_per_inference_j"]) * 1e6
    bars = ax.bar(COMPONENTS, per_inf, color=[COLOURS[c] for c in COMPONENTS])
    for bar, value in zip(bars, per_inf):
        ax.annotate(f"{si(value * 1e-6, 'J')}\n({value / total:.1%})" if total else "0",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    if min(per_inf) > 0:
        ax.set_yscale("log")
        ax.set_ylim(min(per_inf) / 3, max(per_inf) * 10)
    ax.set_ylabel("energy per inference (µJ)")
    ax.set_title(f"Energy per inference by component\n{_title(trace)}: total {si(total * 1e-6, 'J')}")


def latency_per_timestep(trace: Trace, ax, max_samples: int = 5) -> None:
    steps = trace["steps"]
    T = int(trace.summary["timesteps"])
    n = min(max_samples, int(trace.summary["samples"]))
    lat = steps["latency_ns"][: n * T].reshape(n, T) * 1e-3
    for s in range(n):
        ax.plot(np.arange(T), lat[s], marker=".", label=f"sample {s}")
    ax.set_xlabel("timestep")
    ax.set_ylabel("latency (µs)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Latency per timestep\n{_title(trace)}: mean {si(steps['latency_ns'].mean() * 1e-9, 's')} per step")
    ax.legend(fontsize=8)


def core_activity(trace: Trace, ax, fig) -> None:
    """Synaptic ops per inference of every core, drawn where the core sits: each router of
    the mesh is a block of its cores, outlined; unused cores are zero."""
    cores = trace["cores"]
    attrs = trace.attrs["cores"]
    mesh_x, mesh_y, per_router = int(attrs["mesh_x"]), int(attrs["mesh_y"]), int(attrs["cores_per_router"])
    side = int(np.ceil(np.sqrt(per_router)))
    grid = np.zeros((mesh_y * side, mesh_x * side))
    slot = np.arange(len(cores["x"])) % per_router
    col = cores["x"] * side + slot % side
    row = cores["y"] * side + slot // side
    if len(cores["synops"]):
        grid[row, col] = cores["synops"].sum(axis=0) / int(trace.summary["samples"])
    image = ax.imshow(grid, cmap="viridis", origin="upper", aspect="equal",
                      extent=(-0.5, mesh_x - 0.5, mesh_y - 0.5, -0.5))
    fig.colorbar(image, ax=ax, label="synaptic ops per inference", shrink=0.8)
    for k in range(mesh_x + 1):
        ax.axvline(k - 0.5, color="white", lw=0.4)
    for k in range(mesh_y + 1):
        ax.axhline(k - 0.5, color="white", lw=0.4)
    pops = list(dict.fromkeys(str(p) for p in cores["population"]))
    if len(pops) <= 12:
        for (x, y, s, pop) in zip(cores["x"], cores["y"], slot, cores["population"]):
            cx = x - 0.5 + (s % side + 0.5) / side
            cy = y - 0.5 + (s // side + 0.5) / side
            ax.text(cx, cy, str(pops.index(str(pop))), ha="center", va="center", fontsize=6, color="white")
        ax.text(1.0, -0.12, "  ".join(f"{i}: {p}" for i, p in enumerate(pops)), transform=ax.transAxes,
                ha="right", va="top", fontsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("router x")
    ax.set_ylabel("router y")
    ax.set_title(f"Per-core activity over the mesh ({per_router} cores per router)\n{_title(trace)}")


def spike_raster(trace: Trace, ax) -> None:
    T = int(trace.summary["timesteps"])
    if "spikes" in trace.groups and trace["spikes"]:
        offset = 0
        for name in trace["layers"]["names"]:
            size = int(trace["layers"]["sizes"][list(trace["layers"]["names"]).index(name)])
            rec = trace["spikes"].get(str(name))
            if rec is not None:
                keep = rec["timestamps"] < T            # sample 0 only
                ax.scatter(rec["timestamps"][keep], rec["node_ids"][keep] + offset, s=2, marker="|")
            ax.axhline(offset, color="#cccccc", lw=0.5)
            ax.text(T - 0.5, offset + size / 2, str(name), fontsize=7, ha="right", va="center")
            offset += size
        ax.set_ylabel("neuron (populations stacked)")
        ax.set_title(f"Spike raster of sample 0\n{_title(trace)}")
    else:
        events = trace["layers"]["events"][:T].T
        image = ax.imshow(events, aspect="auto", cmap="Greys", interpolation="nearest")
        ax.set_yticks(range(len(trace["layers"]["names"])), [str(n) for n in trace["layers"]["names"]])
        ax.figure.colorbar(image, ax=ax, label="events")
        ax.set_title(f"Events per population per step, sample 0 (no spikes recorded)\n{_title(trace)}")
    ax.set_xlabel("timestep")
    ax.set_xlim(-0.5, T - 0.5)


def token_timeline(trace: Trace, ax) -> None:
    """A language model's tokens: when each one's output left the chip, prompt and generated apart."""
    tokens = trace["tokens"]
    phase = tokens["phase"]
    times = tokens["output_time_ns"] * 1e-6
    for code, label, colour in ((0, "prompt (prefill)", "#4477aa"), (1, "generated", "#aa3377")):
        ax.plot(np.flatnonzero(phase == code), times[phase == code], ".", color=colour, label=label)
    ax.set_xlabel("token")
    ax.set_ylabel("output time (ms)")
    s = trace.summary
    ax.set_title(f"Tokens\n{_title(trace)}: {s['tokens_per_s']:,.1f} tokens/s generated, "
                 f"{s['prefill_tokens_per_s']:,.0f} tokens/s prefill")
    ax.legend(fontsize=8)


def layer_sparsity(trace: Trace, ax) -> None:
    """Mean fraction of each population's neurons silent per step: the activation sparsity per stage."""
    layers = trace["layers"]
    sparsity = layers["sparsity"].mean(axis=0)
    ax.bar(np.arange(len(sparsity)), sparsity, color="#228833")
    ax.set_xticks(np.arange(len(sparsity)), layers["names"], rotation=90, fontsize=5)
    ax.set_ylabel("silent fraction per step")
    ax.set_ylim(0, 1)
    ax.set_title(f"Activation sparsity per population\n{_title(trace)}")


def block_times(trace: Trace, ax) -> None:
    """A ternary pipeline's blocks: the matrix cores' time and the weight stream's, per token."""
    layers = trace["layers"]
    x = np.arange(len(layers["names"]))
    ax.bar(x - 0.2, layers["compute_ns"] * 1e-3, 0.4, label="matrix cores", color="#4477aa")
    ax.bar(x + 0.2, layers["stream_ns"] * 1e-3, 0.4, label="weight stream", color="#bbbbbb")
    ax.set_xlabel("block")
    ax.set_ylabel("time per token (µs)")
    ax.set_title(f"Time per token by block\n{_title(trace)}")
    ax.legend(fontsize=8)


def _figures(trace: Trace) -> list[tuple[str, object]]:
    """The figures a trace has data for: a classification run's, or a language model's."""
    if "tokens" not in trace.groups:
        return [("energy_by_component", energy_by_component), ("latency_per_timestep", latency_per_timestep),
                ("core_activity", None), ("spike_raster", spike_raster)]
    if "output_time_ns" in trace["tokens"]:
        return [("tokens", token_timeline), ("layer_sparsity", layer_sparsity)]
    return [("block_times", block_times)]


def plot_trace(path: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the figures of a trace as PNGs; returns their paths."""
    trace = read_trace(path)
    out = Path(out_dir) if out_dir else Path(path).with_suffix("")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in _figures(trace):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        if draw is None:
            core_activity(trace, ax, fig)
        else:
            draw(trace, ax)
        written.append(save(fig, out / f"{name}.png"))
    return written


def plot_scaling(paths: list[str | Path], out_dir: str | Path) -> Path:
    """Energy per inference (by component) and latency per inference against the number of
    chips used, one point per trace; all traces must be of one model. Returns the PNG's path."""
    traces = sorted((read_summary(p) for p in paths), key=lambda t: int(t.summary["chips_used"]))
    models = {t.meta.get("model_name") for t in traces}
    if len(models) > 1:
        raise UserError(f"the traces are of different models ({', '.join(sorted(map(str, models)))}), "
                        f"expected one model on systems of different sizes", file=str(paths[0]))
    chips = [int(t.summary["chips_used"]) for t in traces]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    x = np.arange(len(traces))
    bottom = np.zeros(len(traces))
    for c in COMPONENTS:
        values = np.array([float(t.summary[f"energy_{c}_per_inference_j"]) * 1e3 for t in traces])   # J -> mJ
        left.bar(x, values, bottom=bottom, color=COLOURS[c], label=c)
        bottom += values
    left.set_xticks(x, [str(c) for c in chips])
    left.set_xlabel("chips used")
    left.set_ylabel("energy per inference (mJ)")
    left.set_title("Energy per inference by component")
    left.legend(fontsize=8)
    latency = [float(t.summary["latency_per_inference_s"]) * 1e6 for t in traces]
    right.plot(x, latency, marker="o", color="#aa3377")
    for xi, t, lat in zip(x, traces, latency):
        bound = max((k for k in t.summary if k.startswith("steps_bound_by_")), key=lambda k: t.summary[k])
        right.annotate(bound.removeprefix("steps_bound_by_"), (xi, lat), textcoords="offset points", xytext=(0, 6),
                       ha="center", fontsize=8)
    right.set_xticks(x, [str(c) for c in chips])
    right.set_xlabel("chips used")
    right.set_ylabel("latency per inference (µs)")
    right.set_ylim(bottom=0)
    right.set_title("Latency per inference (label: the bound that sets most steps)")
    fig.suptitle(f"{traces[0].meta.get('model_name', '?')}: energy and latency against chip count")
    return save(fig, Path(out_dir) / "scaling.png")


def plot_dvfs(paths: list[str | Path], out_dir: str | Path) -> Path:
    """Energy and time per token (a language model) or per inference against the DVFS setting,
    one bar per trace of one model on a chip of ARM PEs (each run at a level, or ``auto``, ticked
    or as fast as possible). Returns the PNG's path."""
    traces = [read_summary(p) for p in paths]
    for path, t in zip(paths, traces):
        if "dvfs" not in t.meta:
            raise UserError("is not a run on a chip with DVFS levels (no dvfs in its meta)", file=str(path))
    models = {t.meta.get("model_name") for t in traces}
    if len(models) > 1:
        raise UserError(f"the traces are of different models ({', '.join(sorted(map(str, models)))}), "
                        f"expected one model at different DVFS settings", file=str(paths[0]))
    per_token = "tokens_per_s" in traces[0].summary
    unit = "token" if per_token else "inference"

    def figures(t: Trace) -> tuple[float, float]:
        s = t.summary
        if per_token:
            return float(s["energy_per_token_j"]), 1.0 / float(s["tokens_per_s"])
        return float(s["energy_per_inference_j"]), float(s["latency_per_inference_s"])

    order = {"ticked": 0, "afap": 1}
    traces.sort(key=lambda t: (order.get(str(t.meta["timing_mode"]), 2), str(t.meta["dvfs"])))
    labels = [f"{t.meta['dvfs']}\n{t.meta['timing_mode']}" for t in traces]
    energy, seconds = zip(*(figures(t) for t in traces))
    colours = ["#4477aa" if t.meta["timing_mode"] == "ticked" else "#ee6677" for t in traces]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    x = np.arange(len(traces))
    left.bar(x, np.array(energy) * 1e6, color=colours)
    left.set_ylabel(f"energy per {unit} (µJ)")
    left.set_title(f"Energy per {unit}")
    right.bar(x, np.array(seconds) * 1e3, color=colours)
    right.set_ylabel(f"time per {unit} (ms)")
    right.set_title(f"Time per {unit} (blue: 1 ms ticks, red: as fast as possible)")
    for ax in (left, right):
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlabel("DVFS level (auto: per tick and PE)")
    fig.suptitle(f"{traces[0].meta.get('model_name', '?')} on {traces[0].meta.get('chip_name', '?')}: DVFS sweep")
    return save(fig, Path(out_dir) / "dvfs.png")


def plot_chip_comparison(paths: list[str | Path], target: str | Path) -> Path:
    """Accuracy, energy and latency per inference (per generated token for a language model) of
    one model on several chips, a bar per chip."""
    traces = [read_summary(p) for p in paths]
    names = [str(t.meta.get("chip_name", "?")) for t in traces]
    rows = [from_summary("", name, "", t.summary) for name, t in zip(names, traces)]
    per = rows[0].per
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    x = np.arange(len(traces))
    colours = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"]
    panels = [("accuracy", 100.0, "", "accuracy (%)", False), ("energy_j", 1e6, "J", f"energy per {per} (µJ)", True),
              ("time_s", 1e6, "s", f"latency per {per} (µs)", True)]
    for ax, (key, scale, unit, label, log) in zip(axes, panels):
        values = [getattr(row, key) * scale for row in rows]
        ax.bar(x, values, color=[colours[i % len(colours)] for i in range(len(traces))])
        for xi, v in zip(x, values):
            text = si(v / scale, unit) if unit else f"{v:.3g} %"
            ax.annotate(text, (xi, v), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
    axes[0].set_ylim(0, 105)
    fig.suptitle(f"{traces[0].meta.get('model_name', '?')} on {len(traces)} chips")
    return save(fig, target)
