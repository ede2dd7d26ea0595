"""One self-contained HTML page for a trace (``neurosim report``), in this order: the run's summary
in the words `neurosim run` prints, the verdicts (reference match, conversion agreement,
overflows, overruns, the trace's own sums), the mapping and each limit's utilisation, the
per-sample distributions of latency and energy, a language model's prompt and generated text,
the figures (embedded as PNG or SVG data), the scenario, chip and model files, and every summary
attribute. Everything taken from the trace is escaped."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.analysis.figures import DAMAGE, check_sample, damaged, figures_of
from neurosim.analysis.plotting import check_format, distinct_digits, image_bytes
from neurosim.analysis.summary import readout_error, summary_rows
from neurosim.analysis.trace_figures import sample_distributions
from neurosim.analysis.units import number, percent, si
from neurosim.errors import UserError
from neurosim.traces.trace import Trace, read_trace, write_atomically

STYLE = """
body { font-family: sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; } p.meta { color: #666; font-size: 0.85em; margin-top: 0; }
nav { font-size: 0.9em; } nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.5em 0; }
td, th { padding: 3px 10px; text-align: left; vertical-align: top; border-bottom: 1px solid #eee; }
thead th { background: #f0f0f0; } td.n { text-align: right; font-family: monospace; white-space: nowrap; }
table.summary th { white-space: nowrap; font-weight: normal; color: #555; }
table.summary td { font-family: monospace; white-space: pre-wrap; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
.note { color: #b26a00; font-weight: bold; } .na { color: #888; }
td.top { font-weight: bold; background: #fff4d6; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.82em; }
pre.text { white-space: pre-wrap; font-size: 0.95em; } span.prompt { color: #666; } span.generated { background: #e6f0ff; }
img { max-width: 100%; margin: 0.3em 0; border: 1px solid #eee; } details { margin: 0.4em 0; } summary { cursor: pointer; }
"""
EMBED = {"png": "image/png", "svg": "image/svg+xml"}
HEADINGS = {"energy_by_component": "Energy per inference by component", "latency_per_timestep": "Latency per timestep",
            "core_activity": "Activity over the mesh", "spike_raster": "Spike raster",
            "tokens": "Tokens' output times", "layer_sparsity": "Activation sparsity per population",
            "block_times": "Time per token by block"}
UNITS = {"_j": "J", "_s": "s", "_w": "W", "_ns": "ns"}      # a summary key's suffix names its unit
PER_CORE_ROWS = 256          # the per-core table is given up to this many cores
LIMITS = ("neurons", "memory_bytes", "neuron_state_bytes", "synapse_memory_bytes", "fan_in", "fan_out", "routes")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    """An HTML table of already escaped cells; every row has the header's number of cells."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a table row of {len(row)} cells under {len(header)} headings")
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table class='{css}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def value_text(key: str, v: Any) -> str:
    """A summary attribute for people: with its unit and an SI prefix when its name gives one."""
    if isinstance(v, float):
        unit = next((u for suffix, u in UNITS.items() if key.endswith(suffix)), None)
        if unit == "ns":
            return si(v * 1e-9, "s", digits=6)
        return si(v, unit, digits=6) if unit else f"{v:.6g}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# sections


def summary_section(trace: Trace) -> str:
    rows = [("scenario", str(trace.meta.get("scenario_name", "?")))] + summary_rows(trace.summary)
    rows.append(("trace", trace.path.name))
    body = "".join(f"<tr><th>{esc(label)}</th><td>{esc(text)}</td></tr>" for label, text in rows)
    return f"<h2 id='summary'>Summary</h2><table class='summary'><tbody>{body}</tbody></table>"


def verdict(state: str, check: str, detail: str) -> list[str]:
    words = {"pass": "yes", "fail": "NO", "note": "no", "na": "not checked"}
    return [esc(check), f"<td class='{state}'>{words[state]}</td>", esc(detail)]


def verdicts(trace: Trace) -> list[list[str]]:
    """Each check the trace carries, with its outcome and the figures behind it."""
    s, rows = trace.summary, []
    lm = "tokens_per_s" in s
    if "matches_reference" in s:
        what = ("the model's own float32 step" if s.get("reference_is_model") else "the numpy reference") if lm \
            else "the numpy integer reference"
        unit = "for every token's output" if lm else "in every population's events per step and the readout"
        detail = f"the chip's execution equals {what} {unit}" if s["matches_reference"] else \
            f"the chip's execution DIFFERS from {what}"
        if "reference_accuracy" in s and s.get("accuracy") == s.get("accuracy"):
            detail += f"; accuracy {percent(s['accuracy'], 4)} on the chip, {percent(s['reference_accuracy'], 4)} " \
                      f"in the reference"
        samples = trace.groups.get("samples", {})
        if "reference_prediction" in samples and np.all(samples["reference_prediction"] >= 0):
            same = int(np.sum(samples["reference_prediction"] == samples["prediction"]))
            detail += f"; {same} of {len(samples['prediction'])} decisions equal"
        rows.append(verdict("pass" if s["matches_reference"] else "fail", "the chip equals its reference", detail))
    else:
        rows.append(verdict("na", "the chip equals its reference", "the scenario did not run the reference (reference: false)"
                            if "mean_sparsity" in s else "this kind of run has no reference to compare with"))
    if "float_decisions_equal" in s:
        detail = (f"{percent(s['float_decisions_equal'], 4)} of decisions equal the float model's; spike counts agree "
                  f"{percent(s['float_spike_agreement'], 4)}; converted weights off by {percent(s['weights_mean_rel_error'])} "
                  f"on average, {percent(s['weights_max_rel_error'])} at most")
        detail += readout_error(s)
        rows.append(verdict("pass" if s["float_decisions_equal"] >= 1 else "note",
                            "the converted model decides as the float model", detail))
    if "overflows" in s:
        detail = "no value saturated or wrapped in the chip's fixed point"
        if s["overflows"]:
            layers = trace.groups.get("layers", {})
            per = np.asarray(layers.get("overflow", np.zeros((0, 0)))).sum(axis=0) if "overflow" in layers else []
            worst = sorted(zip(per, map(str, layers.get("names", []))), reverse=True)[:5]
            detail = f"{s['overflows']:,} values saturated or wrapped" + (
                " (" + ", ".join(f"{name} {int(n):,}" for n, name in worst if n) + ")" if len(worst) else "")
        rows.append(verdict("pass" if not s["overflows"] else "note", "no overflows", detail))
    if "pe_overruns" in s:
        detail = "every PE finished its work within its tick" if not s["pe_overruns"] else (
            f"{s['pe_overruns']:,} PE-steps overran the tick, in {percent(s['steps_overrun'])} of steps, "
            f"up to {si(s['max_late_s'], 's')} late")
        rows.append(verdict("pass" if not s["pe_overruns"] else "note", "no PE overruns its tick", detail))
    rows += consistency(trace)
    return rows


def consistency(trace: Trace) -> list[list[str]]:
    """The trace's own sums: its energy components add up to the total, and its samples' mean
    latency and energy are the summary's."""
    s, rows = trace.summary, []
    parts = [f"energy_{c}_per_inference_j" for c in ("synapse", "neuron", "network", "static")]
    if all(k in s for k in parts + ["energy_per_inference_j"]):
        total, added = float(s["energy_per_inference_j"]), sum(float(s[k]) for k in parts)
        ok = abs(total - added) <= 1e-6 * abs(total)
        rows.append(verdict("pass" if ok else "fail", "the energy components add up",
                            f"synapse + neuron + network + static = {si(added, 'J', 6)}; total {si(total, 'J', 6)}"))
    samples = trace.groups.get("samples", {})
    if "latency_s" in samples and len(samples["latency_s"]) and "latency_per_inference_s" in s:
        mean_t, mean_e = float(np.mean(samples["latency_s"])), float(np.mean(samples["energy_j"]))
        ok = np.isclose(mean_t, s["latency_per_inference_s"], rtol=1e-6) and \
            np.isclose(mean_e, s["energy_per_inference_j"], rtol=1e-6)
        rows.append(verdict("pass" if ok else "fail", "the samples add up to the summary",
                            f"mean over {len(samples['latency_s'])} samples: {si(mean_t, 's', 6)} and "
                            f"{si(mean_e, 'J', 6)} per inference, as the summary's"))
    return rows


def verdict_section(trace: Trace) -> str:
    return ("<h2 id='verdicts'>Verdicts</h2>" + table(["check", "outcome", "details"], verdicts(trace), "verdicts")
            + conversion_details(trace))


def conversion_details(trace: Trace) -> str:
    """An imported model's agreement with its float reference per population, and the relative
    error of each converted quantity (``/conversion``)."""
    conv = trace.groups.get("conversion", {})
    if "populations" not in conv:
        return ""
    rows = [[esc(p), f"<td class='n'>{int(np.sum(c)):,}</td>", f"<td class='n'>{int(np.sum(f)):,}</td>",
             f"<td class='n'>{esc(percent(a, 4))}</td>"]
            for p, c, f, a in zip(conv["populations"], np.asarray(conv["chip_events"]).T,
                                  np.asarray(conv["float_events"]).T, conv["spike_agreement"])]
    parts = ["<details><summary>The conversion per population</summary>",
             table(["population", "events on the chip", "events in the float model", "spike counts agree"], rows,
                   "conversion")]
    errors = conv.get("errors", {})
    if "name" in errors:
        rows = [[esc(n), esc(q), f"<td class='n'>{esc(percent(mx))}</td>", f"<td class='n'>{esc(percent(mean))}</td>"]
                for n, q, mx, mean in zip(errors["name"], errors["quantity"], errors["max_rel_error"],
                                          errors["mean_rel_error"])]
        parts.append(table(["population or projection", "quantity", "largest relative error",
                            "mean relative error"], rows, "conversion-errors"))
    return "".join(parts) + "</details>"


def limit_headings(limits: list[str]) -> list[str]:
    return [esc(k.removesuffix("_bytes").replace("_", " ") + " used") for k in limits]


def utilisation_cells(values: dict[str, np.ndarray], pick, limits: list[str]) -> list[str]:
    """The used share of each limit (the largest over the cores picked), the tightest highlighted."""
    shares = [float(np.max(values[k][pick])) if np.any(pick) else 0.0 for k in limits]
    top = int(np.argmax(shares)) if shares else -1
    return [f"<td class='n{' top' if i == top and v > 0 else ''}'>{v:.1%}</td>" for i, v in enumerate(shares)]


def mapping_section(trace: Trace) -> str:
    """Per population: its cores, chips, neurons and each limit's largest used share; per core
    the same (up to `PER_CORE_ROWS` cores)."""
    out = ["<h2 id='mapping'>Mapping and utilisation</h2>"]
    cores = trace.groups.get("cores", {})
    if "x" not in cores:
        return out[0] + "<p>This trace does not record its cores (no <code>/cores</code> group).</p>"
    n = len(cores["x"])
    if "utilisation" not in cores:
        return out[0] + pe_table(trace)
    used = cores["utilisation"]
    limits = [k for k in LIMITS if k in used] + sorted(k for k in used if k not in LIMITS)
    pops = np.array([str(p) for p in cores.get("population", ["?"] * n)])
    neurons = np.asarray(cores.get("neurons", np.zeros(n)), int)
    chip = np.asarray(cores.get("chip", np.zeros(n)), int)
    attrs = trace.attrs.get("cores", {})
    out.append(f"<p>{n} cores used on {len(set(chip.tolist()))} chip(s), on the {esc(attrs.get('mesh_x', '?'))} x "
               f"{esc(attrs.get('mesh_y', '?'))} mesh of routers with {esc(attrs.get('cores_per_router', '?'))} cores "
               f"per router. A limit's column gives the largest share of that limit one of the population's cores "
               f"uses; the tightest limit of each row is highlighted.</p>")
    header = ["population", "cores", "chips", "neurons"] + limit_headings(limits)
    rows = []
    for pop in dict.fromkeys(pops.tolist()):
        pick = pops == pop
        rows.append([esc(pop), f"<td class='n'>{int(pick.sum()):,}</td>",
                     esc(", ".join(map(str, sorted(set(chip[pick].tolist()))))),
                     f"<td class='n'>{int(neurons[pick].sum()):,}</td>"] + utilisation_cells(used, pick, limits))
    out.append(table(header, rows, "mapping"))
    if n <= PER_CORE_ROWS:
        slots = np.arange(n) % max(int(attrs.get("cores_per_router", 1)), 1)
        header = ["core", "chip", "router (x, y)", "population", "neurons"] + limit_headings(limits)
        rows = [[f"<td class='n'>{i}</td>", f"<td class='n'>{chip[i]}</td>",
                 esc(f"({cores['x'][i]}, {cores['y'][i]}) slot {slots[i]}"), esc(pops[i]),
                 f"<td class='n'>{neurons[i]:,}</td>"] + utilisation_cells(used, np.arange(n) == i, limits)
                for i in range(n)]
        out.append(f"<details><summary>Per core ({n})</summary>{table(header, rows, 'cores')}</details>")
    return "".join(out)


def pe_table(trace: Trace) -> str:
    """Cores without a utilisation record (a language model on ARM PEs): where each is and, on
    ARM PEs, its cycles per step and overruns."""
    cores = trace["cores"]
    n = len(cores["x"])
    chip = np.asarray(cores.get("chip", np.zeros(n)), int)
    header, rows = ["core", "chip", "router (x, y)"], [[f"<td class='n'>{i}</td>", f"<td class='n'>{chip[i]}</td>",
                                                       esc(f"({cores['x'][i]}, {cores['y'][i]})")] for i in range(n)]
    if "cycles" in cores and len(cores["cycles"]):
        cycles, over = np.asarray(cores["cycles"], float), np.asarray(cores.get("overrun", np.zeros((1, n))), bool)
        header += ["mean cycles per step", "most cycles in a step", "overruns"]
        for i, row in enumerate(rows):
            row += [f"<td class='n'>{number(cycles[:, i].mean())}</td>", f"<td class='n'>{number(cycles[:, i].max())}</td>",
                    f"<td class='n'>{int(over[:, i].sum()):,}</td>"]
    return (f"<p>{n} cores used on {len(set(chip.tolist()))} chip(s); this trace records no per-core "
            f"utilisation of the limits.</p>" + (table(header, rows, "cores") if n <= PER_CORE_ROWS else ""))


def embed(data: bytes, fmt: str, alt: str) -> str:
    return (f"<img alt='{esc(alt)}' title='{esc(alt)}' "
            f"src='data:{EMBED[fmt]};base64,{base64.b64encode(data).decode('ascii')}'>")


def samples_section(trace: Trace, fmt: str) -> str:
    fig = sample_distributions(trace)
    if fig is None:
        return ""
    samples = trace["samples"]
    rows = []
    for key, unit, name in (("latency_s", "s", "latency"), ("energy_j", "J", "energy")):
        v = np.asarray(samples[key], float)
        digits = distinct_digits(v)
        rows.append([esc(name)] + [f"<td class='n'>{esc(si(x, unit, digits))}</td>" for x in
                                   (v.mean(), np.median(v), np.percentile(v, 5), np.percentile(v, 95), v.min(), v.max())])
    return ("<h2 id='samples'>Per-sample distributions</h2>"
            + table(["per sample", "mean", "median", "5th percentile", "95th percentile", "min", "max"], rows, "samples")
            + embed(image_bytes(fig, fmt), fmt, "per-sample latency and energy"))


def text_section(trace: Trace) -> str:
    """A language model's prompt (as simulated) and the text it generated."""
    generated = trace.meta.get("generated_text")
    if generated is None:
        return ""
    prompt = ""
    tokens, vocab = trace.groups.get("tokens", {}), str(trace.attrs.get("tokens", {}).get("vocab", ""))
    if "input" in tokens and vocab:
        codes_in = np.asarray(tokens["input"])[np.asarray(tokens["phase"]) == 0]
        prompt = "".join(vocab[c] if 0 <= c < len(vocab) else "?" for c in codes_in.tolist())
    return ("<h2 id='text'>Generated text</h2><p>The prompt (grey) as the chip read it, then the characters it "
            "generated (shaded).</p>"
            f"<pre class='text'><span class='prompt'>{esc(prompt)}</span><span class='generated'>{esc(generated)}"
            "</span></pre>")


def figures_section(trace: Trace, fmt: str, sample: int) -> str:
    parts = []
    for name, draw in figures_of(trace, sample):
        fig = draw()
        if fig is not None:
            heading = HEADINGS.get(name, name.replace("_", " "))
            parts.append(f"<h3>{esc(heading)}</h3>" + embed(image_bytes(fig, fmt), fmt, heading))
    return "<h2 id='figures'>Figures</h2>" + "".join(parts) if parts else ""


def inputs_section(trace: Trace) -> str:
    """The scenario, chip and model files the run read (the chip's before overrides), each under
    its own heading, folded but the scenario's."""
    meta = trace.meta
    parts = []
    for key, heading in (("scenario_yaml", "Scenario"), ("chip_yaml", "Chip"), ("model_yaml", "Model")):
        if meta.get(key):
            text = str(meta[key])
            anchor = " id='inputs'" if not parts else ""
            parts.append(f"<h2{anchor}>{heading}</h2><details{' open' if key == 'scenario_yaml' else ''}><summary>"
                         f"the {heading.lower()} file ({text.count(chr(10)) + 1} lines)</summary><pre>{esc(text)}</pre>"
                         "</details>")
    if meta.get("overrides") and meta["overrides"] != "{}":
        parts.append(f"<p>Overrides: <code>{esc(meta['overrides'])}</code></p>")
    return "".join(parts)


def attributes_section(trace: Trace) -> str:
    rows = [[esc(k), f"<td class='n'>{esc(value_text(k, v))}</td>"] for k, v in sorted(trace.summary.items())]
    return (f"<h2 id='attributes'>All summary attributes</h2><details><summary>{len(rows)} attributes of "
            f"<code>/summary</code>, as stored</summary>{table(['attribute', 'value'], rows, 'attributes')}</details>")


# ---------------------------------------------------------------------------------------------


def report_html(trace: Trace, fmt: str = "png", sample: int = 0) -> str:
    """The report page of a trace read whole, figures in ``fmt`` (``png`` or ``svg``)."""
    meta = trace.meta
    title = f"{meta.get('scenario_name', trace.path.stem)}: {meta.get('model_name', '?')} on {meta.get('chip_name', '?')}"
    sections = [summary_section(trace), verdict_section(trace), mapping_section(trace), samples_section(trace, fmt),
                text_section(trace), figures_section(trace, fmt, sample), inputs_section(trace),
                attributes_section(trace)]
    links = [(sid, name) for sid, name in (("summary", "Summary"), ("verdicts", "Verdicts"), ("mapping", "Mapping"),
                                           ("samples", "Samples"), ("text", "Text"), ("figures", "Figures"),
                                           ("inputs", "Input files"), ("attributes", "Attributes"))
             if any(f"id='{sid}'" in part for part in sections)]
    return "\n".join([
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
        f"<style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
        "<p class='meta'>" + esc(f"neurosim {meta.get('neurosim_version', '')}, run finished {meta.get('created', '')}, "
                                 f"seed {meta.get('seed', '')}, weights {meta.get('weights_sha256', '')}") + "</p>",
        "<nav>" + "".join(f"<a href='#{sid}'>{name}</a>" for sid, name in links) + "</nav>",
        *[part for part in sections if part], "</body></html>"])


def build_report(trace_path: str | Path, out: str | Path | None = None, *, fmt: str = "png", sample: int = 0) -> Path:
    """Write ``<trace>.html`` (or ``out``), its figures embedded as PNG or SVG, and return its path."""
    fmt = check_format(fmt)
    if fmt not in EMBED:
        raise UserError(f"figure format {fmt!r} cannot be embedded in a page, expected png or svg")
    trace_path = Path(trace_path)
    trace = read_trace(trace_path)
    try:
        page = report_html(trace, fmt, check_sample(trace, sample))
    except DAMAGE as err:
        raise UserError(f"is not a complete neurosim trace ({damaged(err)}); expected a trace neurosim run wrote",
                        file=str(trace_path)) from None
    target = Path(out) if out else trace_path.with_suffix(".html")
    return write_atomically(target, page.encode("utf-8"), "the report")
