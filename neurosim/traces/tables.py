"""A trace's groups as tables for notebooks: pandas DataFrames and xarray Datasets with named
dimensions (pandas and xarray come with the ``notebook`` extra).

Each group's datasets run along the group's axes (see ``traces/README.md``): ``/steps`` along
``step``; ``/cores`` along ``step`` and ``core``; ``/layers`` along ``step`` and ``population``;
``/links`` along ``step`` and ``link``; ``/samples`` along ``sample``; ``/tokens`` along
``token``; ``/conversion`` along ``population``. A dataset with the second axis' length only
(a core's chip, a population's name) labels that axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim.errors import UserError

AXES = {"steps": ("step", None), "cores": ("step", "core"), "layers": ("step", "population"),
        "links": ("step", "link"), "samples": ("sample", None), "tokens": ("token", None),
        "conversion": ("population", None)}
LABELS = {"layers": "names", "links": "names", "conversion": "populations"}   # the dataset naming axis 2
# the columns of a dataset's own second axis, where the trace names them
COLUMN_NAMES = {("steps", "bound_ns"): "bound_codes"}


def _arrays(group: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in group.items() if k != "@attrs" and not isinstance(v, dict)}


def _lengths(name: str, arrays: dict[str, np.ndarray]) -> tuple[int, int | None]:
    first, second = AXES[name]
    two_d = [a for a in arrays.values() if a.ndim == 2]
    if second is not None and two_d:
        return two_d[0].shape[0], two_d[0].shape[1]
    one_d = [a.shape[0] for a in arrays.values() if a.ndim >= 1]
    return (max(one_d) if one_d else 0), None


def _attrs(trace, name: str) -> dict[str, Any]:
    """A group's attributes, as read (`Trace.attrs`) or as written (``"@attrs"``)."""
    return {**dict(getattr(trace, "attrs", {}).get(name, {})), **dict(trace.groups[name].get("@attrs", {}))}


def _group(trace, name: str) -> dict[str, Any]:
    if name not in AXES:
        raise UserError(f"group {name!r} has no table form, expected one of {', '.join(AXES)}", field="group")
    if name not in trace.groups:
        raise UserError(f"this trace has no /{name} group", file=str(getattr(trace, "path", "") or ""))
    return trace.groups[name]


def dims_of(name: str, key: str, array: np.ndarray, lengths: tuple[int, int | None]) -> tuple[str, ...]:
    """The dimension names of dataset ``key`` of group ``name``."""
    first, second = AXES[name]
    n, m = lengths
    if array.ndim == 0:
        return ()
    if array.ndim == 1:
        return (second,) if second is not None and array.shape[0] == m and array.shape[0] != n else (first,)
    if array.ndim == 2 and second is not None and array.shape == (n, m):
        return (first, second)
    return (first, *(f"{key}_{i}" for i in range(1, array.ndim)))


def to_xarray(trace, name: str):
    """Group ``name`` of a trace as an `xarray.Dataset` with named dimensions (and the labels of
    its second axis as a coordinate where the trace has them)."""
    import xarray as xr

    group = _group(trace, name)
    arrays = _arrays(group)
    lengths = _lengths(name, arrays)
    data = {k: (dims_of(name, k, a, lengths), a) for k, a in arrays.items()}
    coords = {}
    label = LABELS.get(name)
    second = AXES[name][1] or AXES[name][0]
    if label in data and data[label][0] == (second,):
        coords[second] = data.pop(label)[1].astype(str)
    return xr.Dataset(data, coords=coords, attrs=_attrs(trace, name))


def to_dataframe(trace, name: str):
    """Group ``name`` of a trace as a `pandas.DataFrame`: a row per step (sample, token...), or per
    step and core (population, link) for a group with two axes, its datasets as columns."""
    import pandas as pd

    group = _group(trace, name)
    arrays = _arrays(group)
    n, m = _lengths(name, arrays)
    first, second = AXES[name]
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
