"""A trace's groups as tables for notebooks: pandas DataFrames and xarray Datasets with named
dimensions (pandas and xarray come with the ``notebook`` extra), and a run's summary as an HTML
table (`summary_html`).

Each group's datasets run along the group's axes, as `neurosim.traces.layout` names them and the
trace file's dimension scales do (see ``traces/README.md``): ``/steps`` along ``step``; ``/cores``
along ``step`` and ``core``; ``/layers`` along ``step`` and ``population``; ``/links`` along
``step`` and ``link``; ``/samples`` along ``sample``; ``/tokens`` along ``token``;
``/conversion`` along ``sample`` and ``population``. A dataset with the second axis' length only
(a core's chip, a population's name) labels that axis.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.errors import UserError
from neurosim.traces.layout import AXES, LABELS, arrays_of, axes, dims_of, lengths
from neurosim.traces.units import summary_value

__all__ = ["dims_of", "summary_html", "to_dataframe", "to_xarray"]
# the columns of a dataset's own second axis, where the trace names them
COLUMN_NAMES = {("steps", "bound_ns"): "bound_codes"}


def _attrs(trace, name: str) -> dict[str, Any]:
    """A group's attributes, as read (`Trace.attrs`) or as written (``"@attrs"``)."""
    return {**dict(getattr(trace, "attrs", {}).get(name, {})), **dict(trace.groups[name].get("@attrs", {}))}


def _group(trace, name: str) -> dict[str, Any]:
    if name not in AXES:
        raise UserError(f"group {name!r} has no table form, expected one of {', '.join(AXES)}", field="group")
    if name not in trace.groups:
        raise UserError(f"this trace has no /{name} group", file=str(getattr(trace, "path", "") or ""))
    return trace.groups[name]


def to_xarray(trace, name: str):
    """Group ``name`` of a trace as an `xarray.Dataset` with named dimensions (and the labels of
    its second axis as a coordinate where the trace has them)."""
    import xarray as xr

    group = _group(trace, name)
    arrays = arrays_of(group)
    sizes, group_axes = lengths(name, arrays), axes(name, arrays)
    data = {k: (dims_of(name, k, a, sizes, group_axes), a) for k, a in arrays.items()}
    coords = {}
    label = LABELS.get(name)
    second = group_axes[1] or group_axes[0]
    if label in data and data[label][0] == (second,):
        coords[second] = data.pop(label)[1].astype(str)
    return xr.Dataset(data, coords=coords, attrs=_attrs(trace, name))


def to_dataframe(trace, name: str):
    """Group ``name`` of a trace as a `pandas.DataFrame`: a row per step (sample, token...), or per
    step and core (population, link) for a group with two axes, its datasets as columns."""
    import pandas as pd

    group = _group(trace, name)
    arrays = arrays_of(group)
    n, m = lengths(name, arrays)
    first, second = axes(name, arrays)
    columns: dict[str, np.ndarray] = {}
    if second is not None and m is not None:
        index = pd.MultiIndex.from_product([np.arange(n), np.arange(m)], names=[first, second])
        labels = arrays.get(LABELS.get(name, ""))
        for key, a in arrays.items():
            if a.shape == (n, m):
                columns[key] = a.reshape(-1)
            elif a.ndim == 1 and a.shape[0] == n:
                columns[key] = np.repeat(a, m)
            elif a.ndim == 1 and a.shape[0] == m and key != LABELS.get(name):
                columns[key] = np.tile(a, n)
        if labels is not None and labels.shape == (m,):
            columns[f"{second}_name"] = np.tile(labels.astype(str), n)
        return pd.DataFrame(columns, index=index)
    for key, a in arrays.items():
        if a.ndim == 1 and a.shape[0] == n:
            columns[key] = a
        elif a.ndim == 2 and a.shape[0] == n:
            names = _column_names(_attrs(trace, name), name, key, a.shape[1])
            columns.update({f"{key}[{c}]": a[:, i] for i, c in enumerate(names)})
    return pd.DataFrame(columns, index=pd.RangeIndex(n, name=first))


def _column_names(attrs: dict[str, Any], name: str, key: str, width: int) -> list[str]:
    attr = COLUMN_NAMES.get((name, key))
    codes = str(attrs.get(attr, "")) if attr else ""
    names = [part.split(":", 1)[1].strip() for part in codes.split(",") if ":" in part]
    return names if len(names) == width else [str(i) for i in range(width)]


def summary_html(summary: dict[str, Any], trace_path: str | Path | None = None) -> str:
    """A run's summary as a small HTML table, each value in its unit (`summary_value`): what a
    notebook shows for a `neurosim.runs.RunResult`."""
    rows = "".join(f"<tr><th style=\"text-align:left\">{html.escape(str(key))}</th>"
                   f"<td style=\"text-align:right\">{html.escape(summary_value(key, value))}</td></tr>"
                   for key, value in summary.items())
    caption = html.escape(f"trace {trace_path}" if trace_path is not None else "trace not written")
    return f"<table><caption>{caption}</caption><tbody>{rows}</tbody></table>"
