"""The HDF5 trace: one file per run, written whole under a temporary name and renamed.

The layout is documented in ``traces/README.md``; `read_trace` is its only parser.

Files are written whole or not at all (`write_atomically`): the HDF5 file is made in memory,
then its bytes go to a hidden partial file beside the target, named for the host and process
that write it (`partial_path`), which is renamed over the target once complete. A full disk or
a failing write is one `UserError` and leaves nothing; a partial file whose writer died (killed
mid-write) is removed by the next write in its folder (`remove_stale_partials`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import h5py
import numpy as np

from neurosim.datasets import check_allocation, check_hdf5
from neurosim.errors import UserError
from neurosim.traces.layout import group_dims
from neurosim.traces.tables import to_dataframe, to_xarray

GROUPS = ("steps", "cores", "layers", "links", "samples", "tokens", "spikes", "conversion", "readout", "mapping",
          "programs")
# A dimension scale that is no variable of its own, as netCDF marks it (netCDF readers name the
# dimension and show no dataset; `read_trace` skips it too).
PURE_DIMENSION = "This is a netCDF dimension but not a netCDF variable."


def _attr(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    return value


# ---------------------------------------------------------------------------------------------
# writing whole files

HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
PARTIAL = re.compile(r"^\..+\.(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[0-9a-f]{8}\.partial$")


def partial_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: hidden beside it, and named for
    this host and process (and a random part), so that no two writers share it and a writer that
    died can be recognised."""
    return path.with_name(f".{path.name}.{os.getpid()}-{HOST}-{secrets.token_hex(4)}.partial")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True              # another user's process
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the partial files (`partial_path`) in ``folder`` whose writer, a process of this host,
    is gone; returns them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = PARTIAL.match(entry.name)
        if match and match["host"] == HOST and not _alive(int(match["pid"])):
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)          # a sweep point's folder (`neurosim.sweep.cluster.run_point`)
                else:
                    entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed


@contextmanager
def atomic_writer(path: Path, what: str, mode: int = 0o666) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through, whole or not at all: a partial file created
    exclusively (never through a symlink), synced and renamed over ``path`` when the block ends.
    A failing write (a full disk) is a `UserError` naming ``what``; nothing is left behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot make the folder for {what} ({err.strerror or err})", file=str(path.parent)) from None
    remove_stale_partials(path.parent)
    tmp = partial_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"could not write {what} ({err.strerror or err}); nothing was written", file=str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes, what: str) -> Path:
    """Write ``data`` to ``path`` whole or not at all (`atomic_writer`)."""
    with atomic_writer(path, what) as fh:
        fh.write(data)
    return Path(path)


def hdf5_image(fill: Callable[[h5py.File], None]) -> bytes:
    """The bytes of an HDF5 file that ``fill`` writes, made in memory (so that a failing disk never
    leaves the HDF5 library with a half-written file)."""
    with h5py.File(f"neurosim-{uuid.uuid4().hex}.h5", "w", driver="core", backing_store=False) as h5:
        fill(h5)
        h5.flush()
        return h5.id.get_file_image()


def write_trace(path: str | Path, meta: dict[str, Any], summary: dict[str, Any],
                groups: dict[str, dict[str, Any]]) -> Path:
    """Write a complete trace to ``path``; nothing is left at ``path`` unless all of it was written.

    ``groups`` maps a group name to its datasets (arrays), nested dicts (subgroups) and
    attributes (under the key ``"@attrs"``).
    """
    def fill(h5: h5py.File) -> None:
        m = h5.create_group("meta")
        for k, v in meta.items():
            m.attrs[k] = _attr(v)
        s = h5.create_group("summary")
        for k, v in summary.items():
            s.attrs[k] = _attr(v)
        for name, content in groups.items():
            _write_group(h5.create_group(name), content)
            attach_dimensions(h5[name], group_dims(name, content))

    return write_atomically(Path(path), hdf5_image(fill), "the trace")


def attach_dimensions(group: h5py.Group, dims: dict[str, tuple[str, ...]]) -> None:
    """Name the axes of ``group``'s datasets (``dims``: a dataset's path in the group and its
    dimension names, `neurosim.traces.layout.group_dims`) with HDF5 dimension scales, as netCDF
    readers (xarray's ``h5netcdf`` and ``netcdf4`` engines) read them. A dimension is the group's
    1-D dataset of that name and length where it has one (``/steps/step``), else a dataset of no
    data of its own (`PURE_DIMENSION`); where a dataset of that name does not fit, the axis is
    named for the dataset (``<dataset>_<axis>``). A nested group's dimensions are its top group's
    (netCDF's scoping)."""
    for key, names in dims.items():
        dataset = group[key]
        scales = [_dimension(group, dim, length) or _dimension(group, f"{key.replace('/', '_')}_{axis}", length)
                  for axis, (dim, length) in enumerate(zip(names, dataset.shape))]
        if all(scale is not None for scale in scales):          # netCDF takes all of a dataset's axes named or none
            for axis, scale in enumerate(scales):
                if scale != dataset:
                    dataset.dims[axis].attach_scale(scale)


def _dimension(group: h5py.Group, name: str, length: int) -> h5py.Dataset | None:
    """The dimension scale ``name`` of ``length`` in ``group``, made if need be; None where a
    dataset of that name is there and does not fit."""
    found = group.get(name)
    if found is None:
        found = group.create_dataset(name, shape=(length,), dtype="f4")      # no data is written: it takes no room
        found.make_scale(f"{PURE_DIMENSION}{length:10d}")
        return found
    if not isinstance(found, h5py.Dataset) or found.shape != (length,):
        return None
    if not found.is_scale:
        found.make_scale(name)
    return found


def _write_group(group: h5py.Group, content: dict[str, Any]) -> None:
    """Write ``content`` into ``group``: arrays as datasets, dicts as subgroups, ``"@attrs"`` as the
    group's attributes and ``"@attrs/<dataset>"`` as a dataset's."""
    for key, value in content.items():
        if key.startswith("@"):
            continue
        if isinstance(value, dict):
            _write_group(group.create_group(key), value)
        else:
            array = np.asarray(value)
            if array.dtype.kind == "U":
                array = array.astype(h5py.string_dtype())
            big = array.ndim == 2 and array.size > 4096
            group.create_dataset(key, data=array, chunks=True if big else None,
                                 compression="gzip" if big else None, shuffle=big)
    for key, attrs in content.items():
        if key.startswith("@attrs"):
            target = group[key.removeprefix("@attrs/")] if key != "@attrs" else group
            for k, v in attrs.items():
                target.attrs[k] = _attr(v)


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

    def frame(self, group: str):
        """Group ``group`` as a pandas DataFrame (`neurosim.traces.tables.to_dataframe`)."""
        return to_dataframe(self, group)

    def dataset(self, group: str):
        """Group ``group`` as an xarray Dataset with named dimensions (`neurosim.traces.tables.to_xarray`)."""
        return to_xarray(self, group)


def _read_group(group: h5py.Group) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _read_group(item)
        elif not _pure_dimension(item):
            data = item[()]
            if item.dtype.kind == "O":
                data = np.array([d.decode() if isinstance(d, bytes) else d for d in data])
            out[key] = data
    return out


def _pure_dimension(dataset: h5py.Dataset) -> bool:
    name = dataset.attrs.get("NAME")
    return isinstance(name, bytes) and name.startswith(PURE_DIMENSION.encode())


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
            declared = check_hdf5(h5, str(path))
            if datasets:
                check_allocation(2 * declared, "reading its datasets", file=str(path))
            if not isinstance(h5.get("meta"), h5py.Group) or not isinstance(h5.get("summary"), h5py.Group):
                raise UserError("is not a neurosim trace (no /meta or /summary group)", file=str(path))
            meta = {k: _plain(v) for k, v in h5["meta"].attrs.items()}
            summary = {k: _plain(v) for k, v in h5["summary"].attrs.items()}
            present = [g for g in GROUPS if g in h5] if datasets else []
            groups = {g: _read_group(h5[g]) for g in present}
            attrs = {g: {k: _plain(v) for k, v in h5[g].attrs.items()} for g in present}
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as err:
        raise UserError(f"is not a readable HDF5 trace ({err})", file=str(path)) from None
    return Trace(path, meta, summary, groups, attrs)
