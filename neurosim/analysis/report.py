"""One self-contained HTML page for a trace (``neurosim report``): the run's summary, its figures
(embedded as PNG data), and the scenario, chip and model files that made it."""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from neurosim.analysis.figures import plot_trace
from neurosim.analysis.units import si
from neurosim.traces.trace import read_summary

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 2px 10px; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; } td.v { text-align: right; font-family: monospace; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.82em; }
img { max-width: 100%; margin: 0.5em 0; border: 1px solid #eee; }
"""


UNITS = {"_j": "J", "_s": "s", "_w": "W", "_ns": "ns"}      # a summary key's suffix names its unit


def _value(key: str, v) -> str:
    if isinstance(v, float):
        unit = next((u for suffix, u in UNITS.items() if key.endswith(suffix)), None)
        if unit == "ns":
            return si(v * 1e-9, "s", digits=6)
        return si(v, unit, digits=6) if unit else f"{v:.6g}"
    return html.escape(str(v))


def build_report(trace_path: str | Path, out: str | Path | None = None) -> Path:
    """Write ``<trace>.html`` (or ``out``) and return its path."""
    trace_path = Path(trace_path)
    trace = read_summary(trace_path)
    meta, summary = trace.meta, trace.summary
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        for png in plot_trace(trace_path, tmp):
            data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
            images.append((Path(png).stem.replace("_", " "), data))
    title = f"{meta.get('scenario_name', trace_path.stem)}: {meta.get('model_name', '?')} on {meta.get('chip_name', '?')}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             "<p>" + html.escape(f"neurosim {meta.get('neurosim_version', '')}, created {meta.get('created', '')}, "
                                 f"seed {meta.get('seed', '')}, weights {meta.get('weights_sha256', '')}") + "</p>",
             "<h2>Summary</h2><table>"]
    parts += [f"<tr><th>{html.escape(k)}</th><td class='v'>{_value(k, v)}</td></tr>" for k, v in sorted(summary.items())]
    parts.append("</table>")
    if images:
        parts.append("<h2>Figures</h2>")
        parts += [f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                  for name, data in images]
    for key, heading in (("scenario_yaml", "Scenario"), ("chip_yaml", "Chip"), ("model_yaml", "Model")):
        if meta.get(key):
            parts.append(f"<h2>{heading}</h2><pre>{html.escape(str(meta[key]))}</pre>")
    if meta.get("overrides") and meta["overrides"] != "{}":
        parts.append(f"<p>Overrides: <code>{html.escape(str(meta['overrides']))}</code></p>")
    parts.append("</body></html>")
    target = Path(out) if out else trace_path.with_suffix(".html")
    tmp_target = target.with_name(f".{target.name}.partial")
    tmp_target.write_text("\n".join(parts), encoding="utf-8")
    tmp_target.replace(target)
    return target
