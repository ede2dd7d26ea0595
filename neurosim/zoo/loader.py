"""Load a model folder (``model.yaml`` + ``weights.h5``) into a `Graph`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurosim import datasets
from neurosim.datasets import check_allocation
from neurosim.errors import UserError
from neurosim.zoo.egru import model as egru
from neurosim.zoo.knn import KnnGraph, knn_graph
from neurosim.zoo.matmulfree import model as matmulfree
from neurosim.zoo.spikegpt import model as spikegpt
from neurosim.graph.generate import local_sparse
from neurosim.graph.graph import Conv2d, Csr, Dense, Graph, Population, Sparse
from neurosim.zoo.matmulfree.lowering import FixedPoint
from neurosim.spec.model import (ENCODING_KINDS, EgruModelFile, KnnModelFile, LanguageModelFile, ModelFile,
                                 SpikeGptModelFile)
from neurosim.spec.validate import validate
from neurosim.spec.yamlio import load_yaml

MODELS_DIR = Path("models")
GENERATED_BYTES_PER_SYNAPSE = 64     # drawing a synapse (`local_sparse`'s arrays at their peak), then keeping it
WEIGHTS_READ_FACTOR = 4              # a weights file's data read, converted and kept, against its declared bytes


def resolve_model_dir(name_or_path: str, base: Path | None = None) -> Path:
    """A model is a folder holding model.yaml, or a name of a folder in ``models/``."""
    candidates = [Path(name_or_path), MODELS_DIR / name_or_path]
    if base is not None:
        candidates.insert(0, base / name_or_path)
    for path in candidates:
        if (path / "model.yaml").is_file():
            return path
    raise UserError(f"model {name_or_path!r} not found, expected a folder holding model.yaml "
                    f"or a name in models/")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dataset(h5: h5py.File, path: str, file: str, dtype_kind: str = "iu",
             shape: tuple[int, ...] | None = None, ndim: int | None = None, note: str = "") -> np.ndarray:
    """A dataset of integers, its type and ``shape`` (or number of dimensions; ``note`` says what the
    shape is made of) checked before it is read."""
    item = h5.get(path)
    if not isinstance(item, h5py.Dataset):
        raise UserError(f"dataset /{path} is missing", file=file)
    if item.dtype.kind not in dtype_kind:
        raise UserError(f"dataset /{path} has type {item.dtype}, expected integers", file=file)
    if shape is not None and item.shape != shape:
        raise UserError(f"dataset /{path} has shape {item.shape}, expected {shape}{note}", file=file)
    if ndim is not None and len(item.shape) != ndim:
        raise UserError(f"dataset /{path} has shape {item.shape}, expected {ndim} dimensions", file=file)
    return np.asarray(item[()])


def _int8(array: np.ndarray, path: str, file: str) -> np.ndarray:
    if array.size and (array.min() < -128 or array.max() > 127):
        raise UserError(f"dataset /{path} holds values outside the 8-bit range [-128, 127]", file=file)
    return array.astype(np.int8)


def _weight_exp(h5: h5py.File, name: str, file: str) -> int:
    group = h5.get(f"projections/{name}")
    if group is None:
        raise UserError(f"group /projections/{name} is missing", file=file)
    exp = group.attrs.get("weight_exp", 0)
    if np.ndim(exp) != 0 or not np.issubdtype(np.asarray(exp).dtype, np.integer) or not -8 <= int(exp) <= 15:
        raise UserError(f"attribute /projections/{name}.weight_exp is {exp!r}, expected an integer in [-8, 15]",
                        file=file)
    return int(exp)


def _resolve_params(params: dict[str, Any], h5: h5py.File, pop: str, size: int, file: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict) and set(value) == {"h5"}:
            try:
                array = _dataset(h5, str(value["h5"]), file, shape=(size,))
            except UserError as err:
                raise UserError(f"{err.message} (populations.{pop}.params.{key})", file=file) from None
            out[key] = array.astype(np.int64)
        else:
            out[key] = value
    return out


def _generated_graph(spec: ModelFile, yaml_path: Path, lines) -> Graph:
    """The graph of a model whose synapses are drawn from its seed (`neurosim.graph.generate`)."""
    seed = spec.weights.generated.seed
    for name, pop in spec.populations.items():
        for key, value in pop.params.items():
            if isinstance(value, dict):
                where = ("populations", name, "params", key)
                raise UserError("a model with generated weights has no weights file to take per-neuron values from; "
                                "expected a number", file=str(yaml_path), field=".".join(where),
                                line=lines.find(where))
    populations = {name: Population(name, p.kind, p.size, dict(p.params), p.chip)
                   for name, p in spec.populations.items()}
    synapses = sum(spec.populations[p.target].size * p.generate.fan_in for p in spec.projections.values())
    check_allocation(synapses * GENERATED_BYTES_PER_SYNAPSE, f"its {synapses:,} generated synapses",
                     file=str(yaml_path), field="projections", line=lines.find(("projections",)))
    projections = {}
    for index, (name, p) in enumerate(spec.projections.items()):
        g = p.generate
        n_src, n_tgt = spec.populations[p.source].size, spec.populations[p.target].size
        csr = local_sparse(n_src, n_tgt, g.fan_in, g.window, g.weight_low, g.weight_high, seed, index)
        projections[name] = Sparse(name, p.source, p.target, csr, n_tgt, g.weight_exp, port=p.port or "",
                                   weight_bits=p.weight_bits, sign_mode=p.sign_mode, delay=p.delay)
    return Graph(name=spec.name, populations=populations, projections=projections,
                 input_population=spec.input.population, readout_population=spec.readout.population,
                 readout_mode=spec.readout.mode, dataset=spec.dataset, source_file=str(yaml_path),
                 weights_sha256=f"generated, seed {seed}", lines=lines)


@dataclass
class LanguageModel:
    """A language model folder: the model, the text it reads and how to lower it to a chip."""

    name: str
    model: matmulfree.Model | egru.Model | spikegpt.Model
    fixed_point: FixedPoint
    dataset: str
    calibration_chars: int
    source_file: str
    weights_sha256: str
    generated: bool = False         # weights drawn for a shape: its predictions mean nothing
    embedding_on_chip: bool = False
    head_on_chip: bool = False

    @property
    def kind(self) -> str:
        if isinstance(self.model, egru.Model):
            return "egru_lm"
        return "spikegpt_lm" if isinstance(self.model, spikegpt.Model) else "matmulfree_lm"


def load_language_model(folder: Path, data: dict, lines, yaml_path: Path) -> LanguageModel:
    spec = validate(LanguageModelFile, data, file=str(yaml_path), lines=lines)
    _text_dataset(spec.dataset, yaml_path, lines)
    if spec.generated is not None:
        n_layers, d, glu = matmulfree.SHAPES[spec.generated.shape]
        vocab = len(datasets.load_text(spec.dataset, "test").vocab)
        weights = n_layers * (4 * d * d + 3 * glu * d) + vocab * d
        check_allocation(weights + 8 * 2 * glu * d, f"the {spec.generated.shape} shape's {weights:,} weights",
                         file=str(yaml_path), field="generated", line=lines.find(("generated",)))
        model = matmulfree.generate(n_layers, d, glu, vocab, spec.generated.seed)
        sha = f"generated, seed {spec.generated.seed}"
    else:
        model, sha = _trained(folder, spec.weights, matmulfree.load, "MatMul-free")
    return LanguageModel(spec.name, model, FixedPoint(**spec.fixed_point.model_dump()), spec.dataset,
                         spec.calibration_chars, str(yaml_path), sha, spec.generated is not None,
                         spec.embedding == "chip", spec.head == "chip")


def _trained(folder: Path, weights, load, what: str):
    """A language model's trained weights, checked against their sha256: (model, sha256)."""
    path = folder / weights.file
    sha = _checked_sha256(path, weights.sha256)
    datasets.open_hdf5(path, f"{what} weights file", factor=WEIGHTS_READ_FACTOR).close()
    try:
        return load(path), sha
    except (OSError, KeyError, ValueError, AssertionError, TypeError, IndexError, AttributeError) as err:
        raise UserError(f"is not a readable {what} weights file ({err or type(err).__name__})", file=str(path)) from None


def _text_dataset(name: str, yaml_path: Path, lines) -> None:
    if name not in datasets.text_names():
        raise UserError(f"unknown text dataset {name!r}, expected one of {', '.join(datasets.text_names())}",
                        file=str(yaml_path), field="dataset", line=lines.find(("dataset",)))


def load_egru_model(folder: Path, data: dict, lines, yaml_path: Path) -> LanguageModel:
    spec = validate(EgruModelFile, data, file=str(yaml_path), lines=lines)
    words = spec.generated is not None and spec.generated.vocab_size is not None     # word ids, not characters
    if not words:
        _text_dataset(spec.dataset, yaml_path, lines)
    if spec.generated is not None:
        g = spec.generated
        sizes = [g.embed, *g.hidden]
        synapses = sum((n_in + h) * 3 * h for n_in, h in zip(sizes, g.hidden)) * (1 - g.sparsity)
        table = (g.vocab_size or 0) * (g.embed + g.hidden[-1]) * 20    # embedding and head, as drawn and kept
        check_allocation(synapses * 24 + table + 8 * max(sizes) * 256, f"its {synapses:,.0f} generated synapses"
                         + (f" and {g.vocab_size:,}-word embedding and head" if words else ""),
                         file=str(yaml_path), field="generated", line=lines.find(("generated",)))
        vocab = None if words else datasets.load_text(spec.dataset, "test").vocab
        model = egru.generate_model(vocab, g.embed, g.hidden, g.sparsity, g.seed, g.vocab_size)
        sha = f"generated, seed {g.seed}"
    else:
        model, sha = _trained(folder, spec.weights, egru.load, "EGRU")
    return LanguageModel(spec.name, model, FixedPoint(), spec.dataset, 0, str(yaml_path), sha,
                         spec.generated is not None, spec.embedding == "chip", spec.head == "chip")


def load_spikegpt_model(folder: Path, data: dict, lines, yaml_path: Path) -> LanguageModel:
    spec = validate(SpikeGptModelFile, data, file=str(yaml_path), lines=lines)
    _text_dataset(spec.dataset, yaml_path, lines)
    model, sha = _trained(folder, spec.weights, spikegpt.load, "SpikeGPT")
    return LanguageModel(spec.name, model, FixedPoint(), spec.dataset, 0, str(yaml_path), sha, False, False, True)


def _checked_sha256(path: Path, expected: str) -> str:
    if not path.is_file():
        raise UserError("weights file not found", file=str(path))
    actual = sha256_of(path)
    if actual != expected:
        raise UserError(f"sha256 is {actual[:12]}..., model.yaml expects {expected[:12]}...: "
                        f"the weights file is corrupt or was changed", file=str(path))
    return actual


def load_knn_model(data: dict, lines, yaml_path: Path) -> KnnGraph:
    """A nearest-neighbour search with generated patterns (`neurosim.zoo.knn`)."""
    return knn_graph(validate(KnnModelFile, data, file=str(yaml_path), lines=lines), yaml_path, lines)


def load_model(name_or_path: str | Path, base: Path | None = None) -> tuple[Graph | LanguageModel, str]:
    """Load and check a model folder; returns the graph (or a language model) and the model.yaml text."""
    folder = resolve_model_dir(str(name_or_path), base)
    yaml_path = folder / "model.yaml"
    data, lines, text = load_yaml(yaml_path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping describing the model", file=str(yaml_path))
    if data.get("kind") == "matmulfree_lm":
        return load_language_model(folder, data, lines, yaml_path), text
    if data.get("kind") == "egru_lm":
        return load_egru_model(folder, data, lines, yaml_path), text
    if data.get("kind") == "spikegpt_lm":
        return load_spikegpt_model(folder, data, lines, yaml_path), text
    if data.get("kind") == "knn_patterns":
        return load_knn_model(data, lines, yaml_path), text
    spec = validate(ModelFile, data, file=str(yaml_path), lines=lines)
    input_kind = spec.populations[spec.input.population].kind
    expected_kind = ENCODING_KINDS[spec.input.encoding]
    if input_kind != expected_kind:
        raise UserError(f"names {spec.input.population!r}, a {input_kind} population; the {spec.input.encoding} "
                        f"encoding feeds a {expected_kind} population", file=str(yaml_path),
                        line=lines.find(("input", "population")), field="input.population")

    if spec.weights.generated is not None:
        return _generated_graph(spec, yaml_path, lines), text

    weights_path = folder / spec.weights.file
    wfile = str(weights_path)
    actual = _checked_sha256(weights_path, spec.weights.sha256)
    h5 = datasets.open_hdf5(weights_path, "weights file", factor=WEIGHTS_READ_FACTOR)
    try:
        graph = _weights_graph(spec, h5, wfile, yaml_path, lines, actual)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:   # a damaged file with a right checksum
        raise UserError(f"is not a readable weights file ({err})", file=wfile) from None
    return graph, text


def _weights_graph(spec: ModelFile, h5: h5py.File, wfile: str, yaml_path: Path, lines, actual: str) -> Graph:
    """A model folder's graph from its open weights file ``wfile`` (closed at the end)."""
    with h5:
        populations = {
            name: Population(name, p.kind, p.size, _resolve_params(p.params, h5, name, p.size, wfile), p.chip)
            for name, p in spec.populations.items()
        }
        projections = {}
        for name, p in spec.projections.items():
            n_src, n_tgt = spec.populations[p.source].size, spec.populations[p.target].size
            exp = _weight_exp(h5, name, wfile)
            base_path = f"projections/{name}"
            fmt = dict(port=p.port or "", weight_bits=p.weight_bits, sign_mode=p.sign_mode, delay=p.delay)
            if p.kind == "dense":
                w = _int8(_dataset(h5, f"{base_path}/weight", wfile, shape=(n_tgt, n_src),
                                   note=f" = (target {p.target}, source {p.source})"), f"{base_path}/weight", wfile)
                projections[name] = Dense(name, p.source, p.target, w, exp, **fmt)
            elif p.kind == "sparse":
                indptr = _dataset(h5, f"{base_path}/indptr", wfile, shape=(n_src + 1,)).astype(np.int64)
                indices = _dataset(h5, f"{base_path}/indices", wfile, ndim=1).astype(np.int64)
                w = _int8(_dataset(h5, f"{base_path}/weight", wfile, ndim=1), f"{base_path}/weight", wfile)
                ok = (indptr.shape == (n_src + 1,) and indptr[0] == 0 and np.all(np.diff(indptr) >= 0)
                      and indptr[-1] == len(indices) == len(w)
                      and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < n_tgt)))
                if not ok:
                    raise UserError(f"group /{base_path} is not a valid CSR matrix with {n_src} source rows "
                                    f"and {n_tgt} target columns", file=wfile)
                projections[name] = Sparse(name, p.source, p.target, Csr(indptr, indices.astype(np.int32), w),
                                           n_tgt, exp, **fmt)
            else:
                w = _int8(_dataset(h5, f"{base_path}/weight", wfile, ndim=4), f"{base_path}/weight", wfile)
                conv = Conv2d(name, p.source, p.target, w, tuple(p.in_shape), p.stride, p.padding, exp, **fmt)
                if w.ndim != 4 or w.shape[1] != p.in_shape[0]:
                    raise UserError(f"dataset /{base_path}/weight has shape {w.shape}, expected "
                                    f"(out_channels, {p.in_shape[0]}, kh, kw)", file=wfile)
                if conv.shape != (n_tgt, n_src):
                    raise UserError(f"projection {name} maps {conv.shape[1]} inputs to {conv.shape[0]} outputs, "
                                    f"but {p.source} has {n_src} and {p.target} has {n_tgt} neurons",
                                    file=str(yaml_path), line=lines.find(("projections", name)))
                projections[name] = conv

    graph = Graph(name=spec.name, populations=populations, projections=projections,
                  input_population=spec.input.population, readout_population=spec.readout.population,
                  readout_mode=spec.readout.mode, dataset=spec.dataset, source_file=str(yaml_path),
                  weights_sha256=actual, lines=lines)
    return graph
