"""Builders shared by the tests: tiny chips, graphs, model folders on disk and a fake dataset."""

from __future__ import annotations

import copy
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml

from neurosim.graph.graph import Conv2d, Csr, Dense, Graph, Population, Sparse
from neurosim.zoo.loader import sha256_of
from neurosim.spec.chip import ChipFile, chip_from_dict

REPO = Path(__file__).resolve().parents[1]
LOIHI2 = REPO / "chips" / "loihi2.yaml"


# ---------------------------------------------------------------------------------------------
# chips


def loihi2_data() -> dict:
    """The loihi2 chip file as plain data, to be modified by a test."""
    return yaml.safe_load(LOIHI2.read_text())


def make_chip(**changes: Any) -> ChipFile:
    """The loihi2 chip with its size (``routers_x``, ``routers_y``, ``cores_per_router``,
    ``chips_x``, ``chips_y``) and any neurocore limits (``neurons=4``, ``fan_in=20``, ...) replaced."""
    data = loihi2_data()
    for key in ("routers_x", "routers_y", "cores_per_router"):
        if key in changes:
            data["chip"]["mesh"][key] = changes.pop(key)
    for key in ("chips_x", "chips_y"):
        if key in changes:
            data["system"][key] = changes.pop(key)
    data["core_kinds"]["neurocore"]["limits"].update(changes)
    return chip_from_dict(data, file="<test chip>")


# ---------------------------------------------------------------------------------------------
# graphs in memory


def rand_int8(rng: np.random.Generator, shape, lo: int = -128, hi: int = 127, density: float = 1.0) -> np.ndarray:
    w = rng.integers(lo, hi + 1, size=shape).astype(np.int8)
    if density < 1.0:
        w[rng.random(shape) >= density] = 0
    return w


def rand_csr(rng: np.random.Generator, n_source: int, n_target: int, density: float) -> Csr:
    """A random CSR matrix, one row per source, sorted distinct targets per row."""
    rows = [np.flatnonzero(rng.random(n_target) < density).astype(np.int32) for _ in range(n_source)]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    indices = np.concatenate(rows) if rows else np.zeros(0, np.int32)
    weight = rand_int8(rng, len(indices))
    return Csr(indptr, indices.astype(np.int32), weight)


def graph_of(populations: list[Population], projections: list, *, input_pop: str, readout_pop: str,
             readout_mode: str = "membrane", name: str = "g") -> Graph:
    return Graph(name=name, populations={p.name: p for p in populations},
                 projections={p.name: p for p in projections}, input_population=input_pop,
                 readout_population=readout_pop, readout_mode=readout_mode, dataset="digits")


def mlp_graph(rng: np.random.Generator, n_in: int = 16, n_hidden: int = 24, n_out: int = 6) -> Graph:
    """graded_source -> LIF hidden -> non-spiking LIF readout, dense int8 weights."""
    pops = [Population("inp", "graded_source", n_in),
            Population("hid", "loihi_lif", n_hidden, {"du": 3000, "dv": 300, "vth": 40}),
            Population("out", "loihi_lif", n_out, {"du": 4095, "dv": 0, "vth": None})]
    projs = [Dense("w1", "inp", "hid", rand_int8(rng, (n_hidden, n_in)), 0),
             Dense("w2", "hid", "out", rand_int8(rng, (n_out, n_hidden)), 0)]
    return graph_of(pops, projs, input_pop="inp", readout_pop="out")


def random_graph(seed: int, exps: tuple[int, ...] | None = None) -> Graph:
    """Every neuron and projection kind: a (2, 4, 4) graded input; conv2d (padding 1 and
    stride 2) into LIF populations; a recurrent sparse projection; dense into a sigma-delta
    population (graded events) and on to a spiking LIF readout; weight exponents of both signs."""
    rng = np.random.default_rng(seed)
    e = list(exps) if exps is not None else [int(x) for x in rng.integers(-3, 4, 6)]
    pops = [
        Population("inp", "graded_source", 32),
        Population("a", "loihi_lif", 48, {"du": 3500, "dv": rng.integers(0, 800, 48), "vth": 60,
                                          "reset": "subtract"}),
        Population("d", "loihi_lif", 12, {"du": 4095, "dv": 200, "vth": 30, "bias_mant": 5, "bias_exp": 3}),
        Population("b", "sigma_delta", 20, {"vth": rng.integers(0, 300, 20), "bias": 7,
                                            "activation": "relu" if seed % 2 else "identity",
                                            "state_exp": int(seed % 3)}),
        Population("c", "loihi_lif", 10, {"du": 2000, "dv": 100, "vth": 25}),
    ]
    projs = [
        Conv2d("conv", "inp", "a", rand_int8(rng, (3, 2, 3, 3)), (2, 4, 4), 1, 1, e[0]),
        Conv2d("conv_s2", "inp", "d", rand_int8(rng, (3, 2, 2, 2)), (2, 4, 4), 2, 0, e[1]),
        Sparse("rec", "a", "a", rand_csr(rng, 48, 48, 0.2), 48, e[2]),
        Dense("ab", "a", "b", rand_int8(rng, (20, 48), density=0.7), e[3]),
        Sparse("inp_b", "inp", "b", rand_csr(rng, 32, 20, 0.3), 20, e[4]),
        Dense("bc", "b", "c", rand_int8(rng, (10, 20)), e[5]),
        Dense("dc", "d", "c", rand_int8(rng, (10, 12)), 0),
    ]
    return graph_of(pops, projs, input_pop="inp", readout_pop="c")


# ---------------------------------------------------------------------------------------------
# model folders on disk


def write_model(folder: Path, spec: dict, arrays: dict[str, np.ndarray],
                attrs: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write ``folder/weights.h5`` (datasets by path, attributes by group path) and
    ``folder/model.yaml`` (``spec`` with the weights' sha256 filled in)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "weights.h5"
    with h5py.File(weights, "w") as h5:
        for path, array in arrays.items():
            h5.create_dataset(path, data=array)
        for group, values in (attrs or {}).items():
            g = h5.require_group(group)
            for key, value in values.items():
                g.attrs[key] = value
    spec = copy.deepcopy(spec)
    spec["weights"] = {"file": "weights.h5", "sha256": sha256_of(weights)}
    (folder / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def tiny_model_files(rng: np.random.Generator, n_in: int = 64, n_hidden: int = 20, n_out: int = 10,
                     readout_mode: str = "membrane") -> tuple[dict, dict, dict]:
    """The spec, datasets and attributes of a small digits-shaped model:
    64 graded inputs -> LIF hidden (dense) -> LIF readout (sparse)."""
    spec = {
        "name": "tiny",
        "description": "a test model",
        "dataset": "digits",
        "input": {"population": "inp", "encoding": "graded_constant"},
        "readout": {"population": "out", "mode": readout_mode},
        "populations": {
            "inp": {"kind": "graded_source", "size": n_in},
            "hid": {"kind": "loihi_lif", "size": n_hidden,
                    "params": {"du": 2048, "dv": {"h5": "params/hid_dv"}, "vth": 30}},
            "out": {"kind": "loihi_lif", "size": n_out,
                    "params": {"vth": None} if readout_mode == "membrane" else {"vth": 20, "dv": 200}},
        },
        "projections": {
            "w_in": {"kind": "dense", "source": "inp", "target": "hid"},
            "w_out": {"kind": "sparse", "source": "hid", "target": "out"},
        },
    }
    csr = rand_csr(rng, n_hidden, n_out, 0.6)
    arrays = {
        "projections/w_in/weight": rand_int8(rng, (n_hidden, n_in), -20, 40),
        "projections/w_out/indptr": csr.indptr,
        "projections/w_out/indices": csr.indices,
        "projections/w_out/weight": csr.weight,
        "params/hid_dv": rng.integers(0, 1000, n_hidden).astype(np.int64),
    }
    attrs = {"projections/w_in": {"weight_exp": -1}, "projections/w_out": {"weight_exp": 1}}
    return spec, arrays, attrs


# ---------------------------------------------------------------------------------------------
# a small synthetic dataset in place of neurosim.datasets


@dataclass(frozen=True)
class FakeDataset:
    name: str
    split: str
    inputs: np.ndarray
    labels: np.ndarray


def fake_digits(n_samples: int = 6, n_inputs: int = 64, seed: int = 0) -> FakeDataset:
    rng = np.random.default_rng(seed)
    """Random 0..16 inputs and 0..9 labels, like the digits dataset."""
    return FakeDataset("digits", "test", rng.integers(0, 17, (n_samples, n_inputs)).astype(np.int64),
                       rng.integers(0, 10, n_samples).astype(np.int64))


def scenario_dict(model: Path, **extra: Any) -> dict:
    """A scenario running `model` on the loihi2 chip."""
    scenario = {"name": "test", "chip": str(LOIHI2), "model": str(model),
                "input": {"dataset": "digits", "split": "test"}, "timesteps": 5, "seed": 0}
    scenario.update(extra)
    return scenario


def load_script(path: Path, name: str):
    """A model folder's script (not a package) imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

