"""The HDF5 trace: one file per run, written whole under a temporary name and renamed.

The layout is documented in ``traces/README.md``; `read_trace` is its only parser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurosim.errors import UserError

GROUPS = ("steps", "cores", "layers", "links", "samples", "tokens", "spikes", "conversion")


def _attr(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    return value


def write_trace(path: str | Path, meta: dict[str, Any], summary: dict[str, Any],
                groups: dict[str, dict[str, Any]]) -> Path:
    """Write a complete trace to ``path``; nothing is left at ``path`` unless all of it was written.

    ``groups`` maps a group name to its datasets (arrays), nested dicts (subgroups) and
    attributes (under the key ``"@attrs"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with h5py.File(tmp, "w") as h5:
            m = h5.create_group("meta")
            for k, v in meta.items():
                m.attrs[k] = _attr(v)
            s = h5.create_group("summary")
            for k, v in summary.items():
                s.attrs[k] = _attr(v)
            for name, content in groups.items():
                _write_group(h5.create_group(name), content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_group(group: h5py.Group, content: dict[str, Any]) -> None:
    for key, value in content.items():
        if key == "@attrs":
            for k, v in value.items():
                group.attrs[k] = _attr(v)
        elif isinstance(value, dict):
            _write_group(group.create_group(key), value)
        else:
            array = np.asarray(value)
            if array.dtype.kind == "U":
                array = array.astype(h5py.string_dtype())
            big = array.ndim == 2 and array.size > 4096
            group.create_dataset(key, data=array, chunks=True if big else None,
                                 compression="gzip" if big else None, shuffle=big)


@dataclass
class Trace:
    """A trace read back: attributes as dicts, datasets as numpy arrays."""

    path: Path
    meta: dict[str, Any]
    summary: dict[str, Any]
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getitem__(self, group: str) -> dict[str, Any]:
        return self.groups[group]


def _read_group(group: h5py.Group) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _read_group(item)
        else:
            data = item[()]
            if item.dtype.kind == "O":
                data = np.array([d.decode() if isinstance(d, bytes) else d for d in data])
            out[key] = data
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_summary(path: str | Path) -> Trace:
    """A trace's meta and summary only, without its datasets (quick for large traces)."""
    return _read(path, datasets=False)


def read_trace(path: str | Path) -> Trace:
    """Read a whole trace; a missing, truncated or foreign file is a `UserError`."""
    return _read(path, datasets=True)


def _read(path: str | Path, datasets: bool) -> Trace:
    path = Path(path)
    if not path.is_file():
        raise UserError("trace file not found", file=str(path))
    try:
        with h5py.File(path, "r") as h5:
            if "meta" not in h5 or "summary" not in h5:
                raise UserError("is not a neurosim trace (no /meta or /summary group)", file=str(path))
            meta = {k: _plain(v) for k, v in h5["meta"].attrs.items()}
            summary = {k: _plain(v) for k, v in h5["summary"].attrs.items()}
            present = [g for g in GROUPS if g in h5] if datasets else []
            groups = {g: _read_group(h5[g]) for g in present}
            attrs = {g: {k: _plain(v) for k, v in h5[g].attrs.items()} for g in present}
    except OSError as err:
        raise UserError(f"is not a readable HDF5 trace ({err})", file=str(path)) from None
    return Trace(path, meta, summary, groups, attrs)
