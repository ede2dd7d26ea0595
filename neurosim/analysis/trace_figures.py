"""The figures of one trace, each a matplotlib figure: energy per inference (static and dynamic,
then the dynamic components), a sample's latency per step with the bound that set each step,
activity over the used part of the mesh (synaptic ops per core, or an ARM PE's cycles against
its tick), a sample's spike raster, the per-sample distributions of latency and energy, and for
a language model its tokens' output times and the activation sparsity per population and step.

Drawing reads the trace's datasets as ``traces/README.md`` documents them; a dataset of the wrong
shape raises (``ValueError``, ``KeyError``, ...) and the caller reports the trace as damaged.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from neurosim.analysis.plotting import PALETTE, distinct_digits, plt, si_axis
from neurosim.analysis.units import number, percent, si
from neurosim.traces.trace import Trace

MAX_CELLS = 10**8            # of a figure's image of the mesh, or of its timesteps
COMPONENTS = ("synapse", "neuron", "network", "static")
COLOURS = {"synapse": "#4477aa", "neuron": "#66ccee", "network": "#228833", "static": "#bbbbbb",
           "dynamic": "#332288"}
# one colour per bound of the runtime model, the same in every figure
BOUND_COLOURS = {"dendrite": "#66ccee", "synapse": "#4477aa", "synmem": "#228833", "link": "#ccbb44",
                 "barrier": "#aa3377", "messages": "#ee6677", "tick": "#999999",
                 "matrix cores": "#4477aa", "weight stream": "#ccbb44", "host link": "#ee6677"}
PIPELINE_BOUNDS = ("matrix cores", "weight stream", "host link")
READOUT_COLOUR = "#dddddd"
# the ternary pipeline's parts, written in the components' places (see `neurosim.runs.pipeline`)
PIPELINE_COMPONENTS = ("matrix cores (synapses)", "element-wise (neurons)", "memory and weight stream")


def title_of(trace: Trace) -> str:
    return f"{trace.meta.get('model_name', '?')} on {trace.meta.get('chip_name', '?')}"


def timesteps_of(trace: Trace) -> int:
    """The trace's timesteps per sample, within what its datasets hold."""
    T = int(trace.summary["timesteps"])
    if not 0 < T <= MAX_CELLS:
        raise ValueError(f"timesteps {T} out of range")
    return T


def sample_rows(trace: Trace, sample: int) -> tuple[int, int]:
    """The rows of /steps that hold ``sample``'s timesteps: by the trace's per-step sample
    numbers where it has them (a search ends its queries early), else ``timesteps`` per sample."""
    T = timesteps_of(trace)                 # at most this many steps a sample
    steps = trace["steps"] if "steps" in trace.groups else {}
    if "sample" in steps:
        rows = np.flatnonzero(np.asarray(steps["sample"]) == sample)
        if len(rows) == 0 or rows[-1] + 1 - rows[0] > T:
            raise ValueError(f"steps of sample {sample} not as recorded ({len(rows)} rows, at most {T} expected)")
        return int(rows[0]), int(rows[-1]) + 1
    return sample * T, (sample + 1) * T


def samples_of(trace: Trace) -> int:
    return int(trace.summary["samples"])


def codes(text: str) -> dict[int, str]:
    """An attribute naming codes, ``"0: dendrite, 1: synapse"``, as a dict."""
    pairs = (item.split(":", 1) for item in str(text).split(",") if ":" in item)
    return {int(code): name.strip() for code, name in pairs}


def step_bounds(trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Per step: its duration (ns), which bound set it, every bound's time (ns, ``[N, K]``), and the
    bounds' names. A spiking graph on the ternary pipeline has three: its matrix cores, its weight
    stream and the host link (a step lasts as long as the longest)."""
    steps = trace["steps"]
    if "latency_ns" in steps:
        names = codes(trace.attrs.get("steps", {}).get("bound_codes", ""))
        bounds = np.asarray(steps["bound_ns"], float)
        return (np.asarray(steps["latency_ns"], float), np.asarray(steps["bound"], int), bounds,
                [names.get(k, f"bound {k}") for k in range(bounds.shape[1])])
    bounds = np.stack([steps["compute_ns"], steps["stream_ns"], steps["host_ns"]], axis=1).astype(float)
    return np.asarray(steps["time_ns"], float), bounds.argmax(axis=1), bounds, list(PIPELINE_BOUNDS)


def label_bars(ax, bars, texts: list[str]) -> None:
    """Write each text above its bar."""
    for bar, text in zip(bars, texts):
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)


# ---------------------------------------------------------------------------------------------
# a classification run


def energy_by_component(trace: Trace):
    """Energy per inference: static against dynamic (one stacked bar), then the dynamic part by
    component on its own axis, each labelled with its value and its share of the total."""
    s = trace.summary
    per = {c: float(s[f"energy_{c}_per_inference_j"]) for c in COMPONENTS}
    total = float(s["energy_per_inference_j"])
    dynamic = sum(per[c] for c in COMPONENTS[:3])
    share = (lambda v: f" ({percent(v / total, 2)} of the total)") if total > 0 else (lambda v: "")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.5), gridspec_kw={"width_ratios": (1, 2.2)})
    bottom = 0.0
    for part, value in (("static", per["static"]), ("dynamic", dynamic)):
        left.bar([0], [value], 0.6, bottom=bottom, color=COLOURS[part], label=f"{part} {si(value, 'J')}{share(value)}")
        bottom += value
    left.set_xticks([0], ["all components"])
    left.set_xlim(-0.8, 0.8)
    left.set_ylim(0, bottom * 1.08 if bottom > 0 else 1)
    si_axis(left.yaxis, "J")
    left.set_ylabel("energy per inference")
    left.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    names = list(COMPONENTS[:3])
    labels = PIPELINE_COMPONENTS if "compute_ns" in trace.groups.get("steps", {}) else names
    bars = right.bar(labels, [per[c] for c in names], color=[COLOURS[c] for c in names])
    label_bars(right, bars, [f"{si(per[c], 'J')}{share(per[c])}" for c in names])
    right.set_ylim(0, max(per[c] for c in names) * 1.15 or 1)
    si_axis(right.yaxis, "J")
    right.set_title(f"The dynamic part by component: {si(dynamic, 'J')}{share(dynamic)}", fontsize=10)
    right.set_ylabel("energy per inference")
    fig.suptitle(f"Energy per inference: {si(total, 'J')}, of it static {si(per['static'], 'J')}{share(per['static'])}"
                 f"\n{title_of(trace)}, mean over {samples_of(trace)} samples")
    return fig


def latency_per_step(trace: Trace, sample: int = 0):
    """One sample's timesteps, each bar coloured by the bound that set it and the other bounds
    marked, then the host's readout; the title adds them up to the sample's latency."""
    latency, bound, bounds, names = step_bounds(trace)
    lo, hi = sample_rows(trace, sample)
    T = hi - lo
    if lo + T > len(latency):
        raise ValueError(f"steps of sample {sample} beyond the {len(latency)} steps recorded")
    lat, which, all_bounds = latency[lo:lo + T] * 1e-9, bound[lo:lo + T], bounds[lo:lo + T] * 1e-9
    steps_s = float(lat.sum())
    total = float(trace["samples"]["latency_s"][sample]) if "samples" in trace.groups else steps_s
    readout = max(total - steps_s, 0.0)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = np.arange(T)
    handles = []
    for k in sorted(set(which.tolist())):
        pick = which == k
        colour = BOUND_COLOURS.get(names[k], PALETTE[k % len(PALETTE)])
        ax.bar(x[pick], lat[pick], 0.8, color=colour)
        handles.append(Patch(color=colour, label=f"set by {names[k]} ({pick.sum()} of {T} steps)"))
    width = 12 if T <= 40 else 4
    for k, name in enumerate(names):
        other = (which != k) & (all_bounds[:, k] > 0)
        if other.any():
            colour = BOUND_COLOURS.get(name, PALETTE[k % len(PALETTE)])
            ax.plot(x[other], all_bounds[other, k], "_", color=colour, markersize=width, markeredgewidth=2)
            handles.append(Line2D([], [], ls="", marker="_", color=colour, markersize=10, markeredgewidth=2,
                                  label=f"{name} bound"))
    if readout > 0:
        ax.bar([T], [readout], 0.8, color=READOUT_COLOUR, hatch="//", edgecolor="#888888")
        handles.append(Patch(facecolor=READOUT_COLOUR, hatch="//", edgecolor="#888888", label="host's readout"))
    if T <= 40:
        ax.set_xticks(list(x) + ([T] if readout > 0 else []), [str(t) for t in x] + (["readout"] if readout > 0 else []),
                      fontsize=8 if T <= 20 else 6, rotation=0 if T <= 20 else 90)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("timestep")
    ax.set_ylabel("time")
    ax.set_ylim(0, max(lat.max(initial=0), readout, all_bounds.max(initial=0)) * 1.1 or 1)
    si_axis(ax.yaxis, "s")
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    mean = float(trace.summary["latency_per_inference_s"])
    ax.set_title(f"Latency per timestep of sample {sample} (of {samples_of(trace)}), {title_of(trace)}\n"
                 f"{T} steps {si(steps_s, 's')} + readout {si(readout, 's')} = {si(total, 's')} for this sample; "
                 f"mean per inference {si(mean, 's')}", fontsize=10)
    return fig


def with_gaps(cmap):
    """A colour map (a name or a map) whose NaN cells, the mesh's unused cores, are light grey."""
    return (plt.get_cmap(cmap) if isinstance(cmap, str) else cmap).with_extremes(bad="#f2f2f2")


def ink_on(image, value: float) -> str:
    """Black or white, whichever reads on the colour ``image`` gives ``value``."""
    r, g, b, _ = image.cmap(image.norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def step_name(trace: Trace) -> str:
    """What a step is on the trace's chip: a ``tick`` of a ticked chip of ARM PEs, else a ``step``."""
    return "tick" if trace.attrs.get("cores", {}).get("timing_mode") == "ticked" else "step"


def core_grid(trace: Trace) -> tuple[np.ndarray, np.ndarray, int, int, int, tuple[int, int, int, int]]:
    """Where each used core is drawn on the used part of the mesh: its column and row (a router is
    a ``side`` x ``side`` block of its cores), the side, the mesh's size, and the used routers'
    x0, x1, y0, y1."""
    cores, attrs = trace["cores"], trace.attrs["cores"]
    mesh_x, mesh_y, per_router = int(attrs["mesh_x"]), int(attrs["mesh_y"]), int(attrs["cores_per_router"])
    side = int(np.ceil(np.sqrt(per_router)))
    if not (0 < mesh_x and 0 < mesh_y and 0 < per_router and mesh_y * side * mesh_x * side <= MAX_CELLS):
        raise ValueError(f"a mesh of {mesh_x} x {mesh_y} routers of {per_router} cores")
    x, y = np.asarray(cores["x"], int), np.asarray(cores["y"], int)
    x0, x1, y0, y1 = int(x.min()), int(x.max()), int(y.min()), int(y.max())
    slot = np.arange(len(x)) % per_router
    col = (x - x0) * side + slot % side
    row = (y - y0) * side + slot // side
    return col, row, side, mesh_x, mesh_y, (x0, x1, y0, y1)


def core_activity(trace: Trace):
    """The used part of the mesh, a cell per core: synaptic ops per inference on neurocores; on
    ARM PEs the cycles per step (a tick) against the step's length at the PE's clock. Without
    per-core records (``record.cores: false``), which population each core holds."""
    cores = trace["cores"]
    if not len(cores.get("x", ())):
        return None
    col, row, side, mesh_x, mesh_y, (x0, x1, y0, y1) = core_grid(trace)
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    grid = np.full((ny * side, nx * side), np.nan)
    pops = list(dict.fromkeys(str(p) for p in cores.get("population", ())))
    index = [pops.index(str(p)) for p in cores.get("population", ())]
    per_router = int(trace.attrs["cores"]["cores_per_router"])
    cell = min(0.9, 9 / (nx * side), 6 / (ny * side))       # inches per core's cell
    fig, ax = plt.subplots(figsize=(max(5.5, nx * side * cell + 2.8), ny * side * cell + 2.4))
    recorded = "synops" in cores and len(cores["synops"]) > 0
    arm = recorded and "cycles" in cores
    texts = [str(p) for p in cores["population"]] if index else [""] * len(col)
    if arm:
        latency = np.asarray(trace["steps"]["latency_ns"], float)[:, None]
        share = np.divide(cores["busy_ns"], latency, out=np.zeros_like(cores["busy_ns"], float), where=latency > 0)
        cycles = cores["cycles"].mean(axis=0)
        grid[row, col] = 100 * share.mean(axis=0)
        texts = [f"{t}\n{si(c, '', 3)} cycles\n{100 * m:.0f} % of the {step_name(trace)}\n(at most {100 * p:.0f} %)"
                 for t, c, m, p in zip(texts, cycles, share.mean(axis=0), share.max(axis=0))]
        step = step_name(trace)
        image = ax.imshow(grid, cmap=with_gaps("viridis"), vmin=0, vmax=max(100, np.nanmax(grid)), origin="upper")
        fig.colorbar(image, ax=ax, label=f"mean share of each {step} the PE works (%)", shrink=0.9)
        what = (f"Cycles per {step} on each PE, against the {step}"
                + (f" ({si(float(trace.attrs['cores']['tick_ns']) * 1e-9, 's')})" if step == "tick" else ""))
    elif recorded:
        grid[row, col] = cores["synops"].sum(axis=0) / samples_of(trace)
        texts = [f"{t}\n{si(v, '', 3)}" for t, v in zip(texts, grid[row, col])]
        image = ax.imshow(grid, cmap=with_gaps("viridis"), vmin=0, origin="upper")
        si_axis(fig.colorbar(image, ax=ax, label="synaptic ops per inference", shrink=0.8).ax.yaxis, "")
        what = "Synaptic ops per inference on each core"
    else:
        grid[row, col] = index or 0
        colours = with_gaps(ListedColormap([PALETTE[i % len(PALETTE)] for i in range(max(len(pops), 1))]))
        ax.imshow(grid, cmap=colours, vmin=-0.5, vmax=max(len(pops), 1) - 0.5, origin="upper")
        if len(pops) <= 12:
            ax.legend(handles=[Patch(color=PALETTE[i % len(PALETTE)], label=p) for i, p in enumerate(pops)],
                      fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        what = "Populations over the mesh (per-core records off)"
    key = ""
    if cell >= 0.2 and (cell < 0.6 or arm and cell < 0.8) and index and len(pops) <= 10:
        texts = [str(i) for i in index]                        # too small for words: the population's number
        key = "\npopulations: " + ", ".join(f"{i} {p}" for i, p in enumerate(pops))
    if cell >= 0.2 and any(texts):
        size = 8 if cell >= 0.8 else 6
        for c, r, text in zip(col, row, texts):
            ax.text(c, r, text, ha="center", va="center", fontsize=size, color=ink_on(ax.images[0], grid[r, c]))
    if nx <= 40 and ny <= 40:
        for k in range(nx + 1):
            ax.axvline(k * side - 0.5, color="white", lw=1.5)
        for k in range(ny + 1):
            ax.axhline(k * side - 0.5, color="white", lw=1.5)
    ax.set_xticks([k * side + (side - 1) / 2 for k in range(nx)], [str(x0 + k) for k in range(nx)])
    ax.set_yticks([k * side + (side - 1) / 2 for k in range(ny)], [str(y0 + k) for k in range(ny)])
    if nx > 24:
        ax.xaxis.set_major_locator(MaxNLocator(12, integer=True))
    if ny > 24:
        ax.yaxis.set_major_locator(MaxNLocator(12, integer=True))
    ax.set_xlabel("router x")
    ax.set_ylabel("router y")
    if (nx, ny) == (mesh_x, mesh_y):
        shown = f"the whole {mesh_x} x {mesh_y} mesh"
    elif (nx, ny) == (1, 1):
        shown = f"router ({x0}, {y0}) of the {mesh_x} x {mesh_y} mesh, the only one used"
    else:
        shown = f"routers x {x0} to {x1}, y {y0} to {y1} of the {mesh_x} x {mesh_y} mesh, the ones used"
    ax.set_title(f"{what}\n{title_of(trace)}: {len(col)} cores used, {per_router} per router (grey: no neurons)\n"
                 f"{shown}{key}", fontsize=10)
    return fig


def spike_raster(trace: Trace, sample: int = 0):
    """A sample's spikes, populations stacked and named on the left; without recorded spikes (or
    beyond the samples recorded), its events per population and step."""
    lo, hi = sample_rows(trace, sample)
    T = hi - lo
    layers = trace["layers"]
    names = [str(n) for n in layers["names"]]
    spikes = trace.groups.get("spikes") or {}
    within = (lambda ts: (ts >= lo) & (ts < hi))
    step_of = (lambda rec: np.asarray(rec["timestep"] if "timestep" in rec else rec["timestamps"]))   # older: in steps
    recorded = [n for n in names if n in spikes and np.any(within(step_of(spikes[n])))]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    if spikes and recorded:
        offset, ticks = 0, []
        for p, name in enumerate(names):
            size = int(layers["sizes"][p])
            rec = spikes.get(name)
            if rec is not None:
                keep = within(step_of(rec))
                ax.scatter(step_of(rec)[keep] - lo, rec["node_ids"][keep] + offset, s=4, marker="|",
                           color=PALETTE[p % len(PALETTE)], linewidths=0.8)
                events = int(keep.sum())
            else:
                events = 0
            ax.axhline(offset - 0.5, color="#cccccc", lw=0.5)
            ticks.append((offset + size / 2, f"{name}\n{size} neurons, {events} spikes"))
            offset += size
        ax.set_yticks([t for t, _ in ticks], [label for _, label in ticks], fontsize=7)
        ax.set_ylim(-0.5, offset - 0.5)
        ax.set_title(f"Spike raster of sample {sample}\n{title_of(trace)}", fontsize=10)
    else:
        events = np.asarray(layers["events"][lo:hi], float).T
        if events.shape[1] != T:
            raise ValueError(f"events of sample {sample} beyond the steps recorded")
        image = ax.imshow(events, aspect="auto", cmap="Greys", interpolation="nearest")
        ax.set_yticks(range(len(names)), names, fontsize=7 if len(names) <= 30 else 5)
        fig.colorbar(image, ax=ax, label="events per step")
        ax.set_title(f"Events per population and step of sample {sample} (spikes not recorded for it)\n"
                     f"{title_of(trace)}", fontsize=10)
    ax.set_xlabel("timestep")
    ax.set_xlim(-0.5, T - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def sample_distributions(trace: Trace):
    """Histograms of the samples' latency and energy (``/samples``), mean and median marked."""
    samples = trace.groups.get("samples") or {}
    if "latency_s" not in samples or not len(samples["latency_s"]):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, unit, name, colour in zip(axes, ("latency_s", "energy_j"), ("s", "J"),
                                           ("latency per sample", "energy per sample"), PALETTE):
        values = np.asarray(samples[key], float)
        lo, hi = float(values.min()), float(values.max())
        digits = distinct_digits(values)
        mean, median = float(values.mean()), float(np.median(values))
        if hi > lo:
            ax.hist(values, bins=min(40, max(5, len(values) // 8)), color=colour, alpha=0.85)
            ax.axvline(mean, color="k", lw=1.2, label=f"mean {si(mean, unit, digits)}")
            ax.axvline(median, color="k", lw=1.2, ls="--", label=f"median {si(median, unit, digits)}")
            ax.legend(fontsize=8)
            ax.set_title(f"{name.capitalize()}: {si(lo, unit, digits)} to {si(hi, unit, digits)}", fontsize=10)
        else:
            width = abs(lo) * 0.01 or 1.0
            ax.bar([lo], [len(values)], width, color=colour, alpha=0.85)
            ax.set_xlim(lo - 10 * width, lo + 10 * width)
            ax.set_title(f"{name.capitalize()}: {si(lo, unit, 6)}, the same for every sample", fontsize=10)
        si_axis(ax.xaxis, unit)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(name)
        ax.set_ylabel("samples")
    fig.suptitle(f"Per-sample distributions over {len(samples['latency_s'])} samples, {title_of(trace)}", fontsize=11)
    return fig


# ---------------------------------------------------------------------------------------------
# a language model


def token_timeline(trace: Trace):
    """A language model's tokens: when each one's output left the chip, prompt and generated apart."""
    tokens = trace["tokens"]
    phase = np.asarray(tokens["phase"])
    times = np.asarray(tokens["output_time_ns"], float) * 1e-9
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for code, label, colour in ((0, "prompt (prefill)", "#4477aa"), (1, "generated", "#aa3377")):
        if np.any(phase == code):
            ax.plot(np.flatnonzero(phase == code), times[phase == code], ".", color=colour,
                    label=f"{label}: {int(np.sum(phase == code))} tokens")
    ax.set_xlabel("token")
    ax.set_ylabel("output time")
    ax.set_ylim(bottom=0)
    si_axis(ax.yaxis, "s")
    s = trace.summary
    ax.set_title(f"When each token's output left the chip\n{title_of(trace)}: {number(s['tokens_per_s'])} tokens/s "
                 f"generated, {number(s['prefill_tokens_per_s'])} tokens/s prefill", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def layer_sparsity(trace: Trace):
    """The share of each population's neurons active in each step (a heat map, populations in
    model order, the first generated token's entry marked) beside each population's sparsity:
    over all steps, and over the steps in which it sent any event."""
    layers = trace["layers"]
    names = [str(n) for n in layers["names"]]
    active = 1.0 - np.asarray(layers["sparsity"], float).T            # [P, N]
    P, N = active.shape
    if P * N > MAX_CELLS:
        raise ValueError(f"{P} populations x {N} steps")
    fig, (heat, dots) = plt.subplots(1, 2, figsize=(12, max(4.5, 2.4 + 0.13 * P)), sharey=True,
                                     gridspec_kw={"width_ratios": (3.2, 1)})
    image = heat.imshow(active, aspect="auto", cmap="magma_r", vmin=0, vmax=1, interpolation="antialiased",
                        extent=(-0.5, N - 0.5, P - 0.5, -0.5))
    bar = fig.colorbar(image, ax=heat, orientation="horizontal", location="top", fraction=0.04, pad=0.02,
                       aspect=50)
    bar.set_label("share of the population's neurons active in the step", fontsize=8)
    heat.set_yticks(range(P), names, fontsize=7 if P <= 30 else 5.5)
    heat.set_xlabel("step")
    tokens = trace.groups.get("tokens") or {}
    if "entry_step" in tokens and np.any(np.asarray(tokens["phase"]) == 1):
        first = int(np.asarray(tokens["entry_step"])[np.asarray(tokens["phase"]) == 1][0])
        heat.axvline(first - 0.5, color="#228833", lw=1.5, ls="--")
        heat.annotate("generation starts", (first, P - 0.5), xytext=(4, 4), textcoords="offset points",
                      color="#228833", fontsize=8, fontweight="bold")
    busy = active > 0
    overall = 1.0 - active.mean(axis=1)
    when_busy = 1.0 - np.divide((active * busy).sum(axis=1), busy.sum(axis=1), out=np.full(P, np.nan),
                                where=busy.sum(axis=1) > 0)
    dots.plot(overall, range(P), "o", color="#228833", markersize=3.5, label="over all steps")
    dots.plot(when_busy, range(P), "o", mfc="none", color="#aa3377", markersize=3.5,
              label="over the steps it sent events in")
    dots.grid(axis="x", color="#eeeeee")
    dots.xaxis.set_major_formatter(FuncFormatter(lambda v, _: percent(v, 3)))
    dots.xaxis.set_major_locator(MaxNLocator(4))
    dots.set_xlabel("sparsity (silent share of neurons)")
    dots.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
    fig.suptitle(f"Activation sparsity per population and step\n{title_of(trace)}: {P} populations, {N} steps, "
                 f"mean sparsity {percent(float(trace.summary.get('mean_sparsity', np.nan)))}", fontsize=11)
    return fig


def block_times(trace: Trace):
    """A ternary pipeline's blocks: the matrix cores' time and the weight stream's, per token."""
    layers = trace["layers"]
    x = np.arange(len(layers["names"]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(x - 0.2, np.asarray(layers["compute_ns"], float) * 1e-9, 0.4, label="matrix cores", color="#4477aa")
    ax.bar(x + 0.2, np.asarray(layers["stream_ns"], float) * 1e-9, 0.4, label="weight stream", color="#bbbbbb")
    ax.set_xticks(x, [str(n) for n in layers["names"]], fontsize=8 if len(x) <= 24 else 6,
                  rotation=0 if len(x) <= 12 else 90)
    ax.set_xlabel("block")
    ax.set_ylabel("time per token")
    si_axis(ax.yaxis, "s")
    ax.set_title(f"Time per token by block (the longer of the two sets a block's time)\n{title_of(trace)}",
                 fontsize=10)
    ax.legend(fontsize=8)
    return fig
