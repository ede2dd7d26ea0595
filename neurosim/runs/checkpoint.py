"""A run's progress saved on disk, so that ``resume`` continues it to the trace of a run that was
never stopped.

A checkpoint holds arrays and plain values only (an ``.npz`` read with ``allow_pickle=False``:
nothing in it can run code), under a name made of the scenario's name and a hash of everything
that determines the run: the scenario, chip and model texts, the weights' sha256, the seed and
overrides, the inputs and neurosim's version. What it holds is checked against the run it would
resume before anything is restored: the hash, its counters' ranges (samples done, steps, tokens
and their places), and with ``like`` the names, shapes and types of its arrays. A checkpoint that
fails any of that is a `UserError` naming the file. A save goes to a partial file of its own
(`neurosim.traces.trace.atomic_writer`: created exclusively, never through a symlink) and then
replaces the last save, so that a save cut short leaves that intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neurosim.datasets import check_allocation
from neurosim.errors import UserError
from neurosim.traces.trace import atomic_writer

if TYPE_CHECKING:
    from neurosim.runs.setup import Setup

CHECKPOINTS = Path(".neurosim") / "checkpoints"
MAX_MEMBERS = 100_000          # arrays in one checkpoint
PE_PER_CORE = ("pe/cycles", "pe/level", "pe/overrun", "pe/packets_in", "pe/packets_out")   # rows kept with record.cores


class Damaged(ValueError):
    """What is wrong with a checkpoint's contents (becomes a `UserError` naming its file)."""


# ---------------------------------------------------------------------------------------------
# nested values as arrays and a JSON layout


def _uniform(items: list) -> np.ndarray | None:
    """The items of a list as one array, when they are all numbers or arrays of one shape and type."""
    if items and all(isinstance(v, (np.ndarray, np.generic)) for v in items):
        first = np.asarray(items[0])
        if all(np.asarray(v).shape == first.shape and np.asarray(v).dtype == first.dtype for v in items):
            return np.stack([np.asarray(v) for v in items])
    if items and all(type(v) is int for v in items):
        return np.array(items, np.int64)
    if items and all(type(v) is float for v in items):
        return np.array(items, np.float64)
    return None


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as a JSON layout, its arrays moved to ``arrays``."""
    def put(array: np.ndarray) -> str:
        name = f"v{len(arrays)}"
        arrays[name] = np.asarray(array)
        return name

    if value is None or isinstance(value, (bool, str)):
        return {"value": value}
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return {"value": value.item() if isinstance(value, np.generic) else value}
    if isinstance(value, np.ndarray):
        return {"array": put(value)}
    if isinstance(value, (list, set)):
        items = sorted(value) if isinstance(value, set) else value
        stacked = _uniform(list(items))
        kind = "set" if isinstance(value, set) else "list"
        if stacked is not None:
            return {kind: put(stacked), "python": not isinstance(items[0], (np.ndarray, np.generic))}
        return {kind: [_encode(v, arrays) for v in items]}
    if isinstance(value, dict) and all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in value):
        return {"dict": [[k, _encode(v, arrays)] for k, v in value.items()]}
    raise TypeError(f"a checkpoint holds arrays and plain values, not {type(value).__name__}")


def _decode(layout: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    """The value a layout describes; `Damaged` when the layout is not one `_encode` makes."""
    if depth > 32 or not isinstance(layout, dict) or len(layout) not in (1, 2):
        raise Damaged("its layout is malformed")
    if set(layout) == {"value"}:
        if layout["value"] is not None and not isinstance(layout["value"], (bool, int, float, str)):
            raise Damaged("its layout holds a value that is not plain")
        return layout["value"]
    if set(layout) == {"array"}:
        return _array(arrays, layout["array"])
    if set(layout) == {"dict"} and isinstance(layout["dict"], list):
        out = {}
        for pair in layout["dict"]:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))):
                raise Damaged("its layout holds a malformed mapping")
            out[pair[0]] = _decode(pair[1], arrays, depth + 1)
        return out
    kind = "list" if "list" in layout else "set" if "set" in layout else None
    if kind is None:
        raise Damaged("its layout is malformed")
    if isinstance(layout[kind], list):
        items = [_decode(v, arrays, depth + 1) for v in layout[kind]]
    else:
        stacked = _array(arrays, layout[kind])
        items = stacked.tolist() if layout.get("python") else list(stacked)
    if kind == "set":
        if not all(isinstance(v, int) for v in items):
            raise Damaged("its layout holds a set of other than integers")
        return set(items)
    return items


def _array(arrays: dict[str, np.ndarray], name: Any) -> np.ndarray:
    if not isinstance(name, str) or name not in arrays:
        raise Damaged(f"its layout names an array {name!r} it does not hold")
    return arrays[name]


# ---------------------------------------------------------------------------------------------
# reading a checkpoint file without trusting it


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """A checkpoint's arrays: not through a symlink, each sized from its header (against its stored
    bytes and the machine's memory) before it is read, numbers only, no pickles."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        with zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise Damaged(f"it holds {len(infos):,} arrays")
            check_allocation(2 * sum(i.file_size for i in infos), "reading it", file=str(path))
            for info in infos:
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = read(member)
                if dtype.hasobject or dtype.kind not in "biufU":
                    raise Damaged(f"array {info.filename} holds {dtype}, expected numbers")
                if int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
                    raise Damaged(f"array {info.filename} declares more data than it holds")
        fh.seek(0)
        with np.load(fh, allow_pickle=False) as saved:
            return {k: saved[k] for k in saved.files}


def _check_like(saved: Any, like: Any, where: str) -> None:
    """``saved`` has the structure of ``like`` (a state of the same run at its start): its keys,
    and arrays of the same type and shape (rows, the first axis of an array ``like`` has none of,
    may differ)."""
    if isinstance(like, np.ndarray):
        rows = 1 if like.ndim and like.shape[0] == 0 else 0            # rows grow as the run goes
        if not (isinstance(saved, np.ndarray) and saved.dtype == like.dtype and saved.ndim == like.ndim
                and saved.shape[rows:] == like.shape[rows:]):
            found = f"{saved.dtype} {saved.shape}" if isinstance(saved, np.ndarray) else type(saved).__name__
            raise Damaged(f"{where} is {found}, expected {like.dtype} {like.shape}")
    elif isinstance(like, dict):
        missing = sorted(map(str, set(like) - set(saved))) if isinstance(saved, dict) else ["all"]
        if missing:
            raise Damaged(f"{where} lacks {', '.join(missing[:3])}, which this run keeps")
        for k, v in like.items():
            _check_like(saved[k], v, f"{where}.{k}")
    elif isinstance(like, list) and like:
        if not isinstance(saved, list) or len(saved) != len(like):
            raise Damaged(f"{where} does not hold what this run keeps")
        for k, (s, v) in enumerate(zip(saved, like)):
            _check_like(s, v, f"{where}.{k}")


def _ints(values: Any, where: str, lo: int, hi: int) -> np.ndarray:
    """``values`` as integers, each in [lo, hi)."""
    array = np.asarray(values)
    if array.size and (array.dtype.kind not in "iu" or array.min() < lo or array.max() >= hi):
        raise Damaged(f"{where} holds values outside [{lo}, {hi})")
    return array.astype(np.int64)


# ---------------------------------------------------------------------------------------------


class Checkpoint:
    """A run's progress, kept in ``.neurosim/checkpoints/`` under the scenario's name and a hash of
    everything that determines the run (see the module's docstring): a spiking run's records at a
    sample's end (`save_arrays`: the engine starts each sample afresh, so nothing else is needed),
    a language run's whole state (`save_state`). ``suffix`` other than ``.npz`` marks the latter."""

    def __init__(self, setup: Setup, inputs: np.ndarray, timesteps: int, suffix: str = ".npz"):
        from neurosim import __version__

        self.setup, self.inputs, self.timesteps = setup, np.asarray(inputs), int(timesteps)
        self.kind = "samples" if suffix == ".npz" else "tokens"
        graph = setup.graph
        digest = hashlib.sha256()
        for part in (self.kind, __version__, setup.scenario_text, setup.chip_text, setup.model_text,
                     str(getattr(graph, "weights_sha256", "")), repr(setup.scenario.seed),
                     repr(sorted(setup.scenario.overrides.items())), repr(timesteps), repr(self.inputs.shape),
                     str(self.inputs.dtype)):
            digest.update(part.encode() + b"\0")
        digest.update(np.ascontiguousarray(self.inputs).tobytes())
        self.key = digest.hexdigest()[:20]
        self.path = CHECKPOINTS / f"{setup.scenario.name}-{self.key}.npz"

    def _folder(self) -> Path:
        """The checkpoints' folder, made if need be; not through a symlink someone left there."""
        for folder in (CHECKPOINTS.parent, CHECKPOINTS):
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise UserError("is a symbolic link or a file, expected the folder of neurosim's checkpoints "
                                "(remove it)", file=str(folder))
            try:
                folder.mkdir(mode=0o700, exist_ok=True)
            except OSError as err:
                raise UserError(f"cannot make the folder for checkpoints ({err.strerror or err})",
                                file=str(folder)) from None
        return CHECKPOINTS

    def _save(self, arrays: dict[str, np.ndarray]) -> None:
        self._folder()
        with atomic_writer(self.path, "the checkpoint", mode=0o600) as fh:
            np.savez(fh, **arrays)

    def _load(self) -> dict[str, np.ndarray] | None:
        """The saved arrays with their key checked, or None when there is no checkpoint."""
        if not os.path.lexists(self.path):
            return None
        self._folder()
        try:
            arrays = _read_npz(self.path)
            if str(arrays.pop("_key", "")) != self.key:
                raise Damaged("it was saved by another run (its key does not match its name)")
            return arrays
        except UserError:
            raise
        except Exception as err:          # zipfile's and numpy's parsers raise several kinds on a damaged file
            raise self._damaged(err) from None

    def _damaged(self, err: Exception) -> UserError:
        what = str(err) or type(err).__name__
        return UserError(f"is not a checkpoint this run can resume from ({what}); remove it to start afresh",
                         file=str(self.path))

    # -- a language run's whole state

    def save_state(self, state: dict) -> None:
        """A language run's whole state: nested dicts, lists and sets of arrays and plain values."""
        arrays: dict[str, np.ndarray] = {}
        layout = _encode(state, arrays)
        self._save({"_key": np.array(self.key), "_layout": np.array(json.dumps(layout)), **arrays})

    def load_state(self, like: dict | None = None) -> dict | None:
        """The state of the last `save_state`, or None when there is none for this run; checked
        against the run (see the module's docstring), and with ``like`` (this run's state at its
        start) against its structure."""
        arrays = self._load()
        if arrays is None:
            return None
        try:
            layout = json.loads(str(arrays.pop("_layout")))
            state = _decode(layout, arrays)
            if not isinstance(state, dict):
                raise Damaged("it holds no state")
            if like is not None:
                _check_like(state, like, "its state")
            self._check_tokens(state)
        except (Damaged, KeyError, ValueError, TypeError, IndexError) as err:
            raise self._damaged(err) from None
        return state

    def _check_tokens(self, state: dict) -> None:
        """A language run's counters against each other and the run: tokens, their steps and outputs."""
        lang = self.setup.language
        vocab = len(lang.lm.model.vocab) if lang is not None else 1 << 31
        n_prompt, n_total = len(self.inputs), len(self.inputs) + self.timesteps
        step = state.get("step")
        if type(step) is not int or not 0 <= step <= 1 << 40 or state.get("steps_done", step) != step:
            raise Damaged("its step counters are out of range or disagree")
        tokens = _ints(state.get("tokens_in", []), "tokens_in", 0, vocab)
        n = len(tokens)
        if n > n_total or not np.array_equal(tokens[:n_prompt], self.inputs[:n]):
            raise Damaged("its tokens are not this run's prompt")
        if not np.array_equal(_ints(state.get("phases", [0] * n), "phases", 0, 2), (np.arange(n) >= n_prompt)):
            raise Damaged("its tokens' phases disagree with the prompt")
        entry = _ints(state.get("entry_step", list(range(n))), "entry_step", 0, max(step, 1))
        if len(entry) != n or np.any(np.diff(entry) <= 0):
            raise Damaged("its tokens' entry steps are out of order")
        if set(state.get("entries", set(entry.tolist()))) != set(entry.tolist()):
            raise Damaged("its entry steps disagree")
        outputs = state.get("outputs", [])
        pending = state.get("pending", {})
        if not isinstance(outputs, list) or not isinstance(pending, dict) or len(outputs) > n:
            raise Damaged("its outputs are more than its tokens")
        depth = getattr(lang, "depth", None)
        for at, index in pending.items():
            if not (type(index) is int and len(outputs) <= index < n and (depth is None or at == entry[index] + depth)):
                raise Damaged("its tokens awaiting output are out of range")
        nxt = state.get("next_token")
        if nxt is not None and not (type(nxt) is int and 0 <= nxt < vocab):
            raise Damaged("its next token is out of range")
        record = state.get("record", {})
        if not isinstance(record, dict) or any(not isinstance(v, (list, np.ndarray)) or len(v) != step
                                               for v in record.values()):
            raise Damaged("its records are not one row per step")

    # -- a spiking run's records

    def save_arrays(self, samples_done: int, arrays: dict[str, np.ndarray]) -> None:
        """A spiking run's records after ``samples_done`` samples."""
        self._save({"_key": np.array(self.key), "_samples_done": np.array(samples_done), **arrays})

    def load_arrays(self, like: dict[str, np.ndarray] | None = None) -> tuple[int, dict[str, np.ndarray]] | None:
        """The samples done and the records of the last `save_arrays`, or None when there is none for
        this run; checked against the run (see the module's docstring), and with ``like`` (this
        run's records with no sample done) against their names, types and shapes."""
        arrays = self._load()
        if arrays is None:
            return None
        try:
            done = arrays.pop("_samples_done")
            if done.shape != () or done.dtype.kind not in "iu" or not 0 < int(done) < len(self.inputs):
                raise Damaged(f"it says {done} samples are done, expected 1 to {len(self.inputs) - 1}")
            done = int(done)
            if like is not None:
                _check_like(arrays, like, "its records")
            self._check_samples(done, arrays)
        except (Damaged, KeyError, ValueError, TypeError, IndexError) as err:
            raise self._damaged(err) from None
        return done, arrays

    def _check_samples(self, done: int, arrays: dict[str, np.ndarray]) -> None:
        """A spiking run's records against the samples done: a row per step (per sample for the
        predictions), steps and samples where they belong, spikes within the steps and populations."""
        steps, graph = done * self.timesteps, self.setup.graph
        for name, array in arrays.items():
            if array.dtype.kind not in "biuf":
                raise Damaged(f"{name} holds {array.dtype}, expected numbers")
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise Damaged(f"{name} holds values that are not finite")
            rows = (done,) if name in ("predictions", "readout_v") else () if name.startswith("spikes/") or \
                name == "pe/level_counts" else (0, steps) if name.startswith(PE_PER_CORE) else (steps,)
            if rows and (array.ndim == 0 or len(array) not in rows):
                raise Damaged(f"{name} has {len(array) if array.ndim else 0} rows, expected {rows[-1]}")
        _ints(arrays.get("steps/sample", []), "steps/sample", 0, done)
        _ints(arrays.get("steps/step", []), "steps/step", 0, self.timesteps)
        readout = graph.populations[graph.readout_population].size if graph is not None else 1 << 31
        _ints(arrays.get("predictions", []), "predictions", 0, readout)
        for name, array in arrays.items():
            parts = name.split("/")
            if parts[0] == "spikes" and len(parts) == 3:
                pop = graph.populations.get(parts[1]) if graph is not None else None
                if pop is None:
                    raise Damaged(f"{name} names no population of the model")
                if parts[2] == "t" and array.size and (array.min() < 0 or array.max() >= steps):
                    raise Damaged(f"{name} holds times outside the steps done")
                if parts[2] == "ids":
                    _ints(array, name, 0, pop.size)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
