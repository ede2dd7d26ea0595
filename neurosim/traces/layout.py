"""The axes of a trace's groups (`traces/README.md`): which dimension each dataset runs along.

One table serves the writer, which stores the dimensions as HDF5 dimension scales so that netCDF
readers name them (``xarray.open_dataset(path, group="layers", engine="h5netcdf")`` has ``step``
and ``population``), and the tables of `neurosim.traces.tables`, which give the same names.

A group has a first axis (``step``, ``sample``, ``token``) and may have a second (``core``,
``population``, ``link``); a ternary pipeline's ``/layers``, per block and not per step, has
``population`` only (`axes`). A 2-D dataset runs along both; a 1-D one along the first, or along the
second when its length is the second's only (or, where both lengths are equal, when it is one of
the group's per-core or per-population datasets, `SECOND`). A further axis of a dataset is named
for it (`COLUMNS`, else ``<dataset>_<axis>``). Datasets of a nested group run along its own axis
(`SUBGROUPS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

AXES: dict[str, tuple[str, str | None]] = {
    "steps": ("step", None), "cores": ("step", "core"), "layers": ("step", "population"), "links": ("step", "link"),
    "samples": ("sample", None), "tokens": ("token", None), "conversion": ("sample", "population")}
LABELS = {"layers": "names", "links": "names", "conversion": "populations"}     # the dataset naming axis 2
# datasets along the second axis (what decides where the two axes are as long)
SECOND = {"cores": {"chip", "x", "y", "neurons", "population"},
          "layers": {"names", "sizes", "stage", "active_steps", "occupancy", "sparsity_active"},
          "links": {"names"}, "conversion": {"populations", "spike_agreement"}}
COLUMNS = {("steps", "bound_ns"): "bound_code"}                # a dataset's own further axis (codes: bound_codes)
SUBGROUPS = {("cores", "utilisation"): "core", ("conversion", "errors"): "error"}


def arrays_of(group: dict[str, Any]) -> dict[str, np.ndarray]:
    """A group's datasets (not its attributes or subgroups) as arrays."""
    return {k: np.asarray(v) for k, v in group.items() if not k.startswith("@") and not isinstance(v, dict)}


def axes(name: str, arrays: dict[str, np.ndarray]) -> tuple[str, str | None]:
    """Group ``name``'s axes (`AXES`), given its datasets: a ``/layers`` without events per step (a
    ternary pipeline's, per block) runs along ``population`` only."""
    if name == "layers" and arrays and "events" not in arrays:
        return ("population", None)
    return AXES[name]


def lengths(name: str, arrays: dict[str, np.ndarray]) -> tuple[int, int | None]:
    """The lengths of group ``name``'s first and second axes (None: it has no second axis)."""
    _first, second = axes(name, arrays)
    two_d = [a for a in arrays.values() if a.ndim == 2]
    if second is not None and two_d:
        return two_d[0].shape[0], two_d[0].shape[1]
    one_d = [a.shape[0] for a in arrays.values() if a.ndim >= 1]
    return (max(one_d) if one_d else 0), None


def dims_of(name: str, key: str, array: np.ndarray, sizes: tuple[int, int | None],
            group_axes: tuple[str, str | None] | None = None) -> tuple[str, ...]:
    """The dimension names of dataset ``key`` of group ``name``, whose axes (`axes`; `AXES` unless
    given) have ``sizes`` (`lengths`)."""
    first, second = group_axes or AXES[name]
    n, m = sizes
    if array.ndim == 0:
        return ()
    if array.ndim == 1:
        along_second = second is not None and array.shape[0] == m and (array.shape[0] != n or key in SECOND.get(name, ()))
        return (second,) if along_second else (first,)
    if array.ndim == 2 and second is not None and array.shape == (n, m):
        return (first, second)
    further = COLUMNS.get((name, key))
    if further is not None and array.ndim == 2:
        return (first, further)
    return (first, *(f"{key}_{i}" for i in range(1, array.ndim)))


def group_dims(name: str, group: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Each dataset of group ``name`` (and of its nested groups, as ``sub/key``) with its dimension
    names; a group without axes (`AXES`) has none."""
    if name not in AXES:
        return {}
    arrays = arrays_of(group)
    sizes, group_axes = lengths(name, arrays), axes(name, arrays)
    dims = {k: dims_of(name, k, a, sizes, group_axes) for k, a in arrays.items()}
    for sub, axis in SUBGROUPS.items():
        if sub[0] == name and isinstance(group.get(sub[1]), dict):
            dims |= {f"{sub[1]}/{k}": (axis,) for k, a in arrays_of(group[sub[1]]).items() if a.ndim == 1}
    return dims
