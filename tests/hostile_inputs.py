"""Makers of hostile files for `test_hostile.py`: weights, inputs, NIR graphs and netx networks
whose data lives outside the file or declares absurd sizes, YAML that expands or nests without
end, damaged traces and tables, planted checkpoints; and a runner of the ``neurosim`` command in
a subprocess under a time and memory limit."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
CHIP = REPO / "chips" / "loihi2.yaml"
DIGITS = REPO / "models" / "digits_snn"
TINY_NET = REPO / "models" / "netx" / "tiny.net"
MEMORY = 1 << 30           # bytes of address space a command may use
SECONDS = 10               # a command's time limit


# ---------------------------------------------------------------------------------------------
# the command, limited


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def limits(memory: int = MEMORY, file_size: int | None = None):
    """A child's limits: its address space, and (to stand for a full disk) the size of files it writes."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if file_size is not None:
            import signal

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)         # a write past the limit fails instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    return apply


def neurosim(*args: str | Path, cwd: Path, memory: int = MEMORY, file_size: int | None = None,
             timeout: float = SECONDS) -> Outcome:
    """``python -m neurosim.cli ARGS`` in ``cwd`` within ``timeout`` seconds and ``memory`` bytes."""
    env = os.environ | {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "neurosim.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limits(memory, file_size))
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


# ---------------------------------------------------------------------------------------------
# scenarios and models


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tiny_scenario(folder: Path, name: str = "tiny", **fields) -> Path:
    """The digits classifier on Loihi 2 for 2 samples of 2 steps, with ``fields`` replaced."""
    data = {"name": name, "chip": str(CHIP), "model": str(DIGITS), "input": {"dataset": "digits", "samples": 2},
            "timesteps": 2, "record": {"spikes": False, "cores": False}, "reference": True, "seed": 0}
    data.update(fields)
    return write_yaml(folder / f"{name}.yaml", data)


def imported_scenario(folder: Path, model: dict, name: str = "imported", **fields) -> Path:
    """A NIR or netx file on Loihi 2 for 2 samples of 2 steps of random inputs."""
    dataset = {"dataset": "random_spikes", "samples": 2} if "nir" in model else {"dataset": "random", "samples": 2}
    data = {"name": name, "chip": str(CHIP), "model": model, "input": dataset, "timesteps": 2,
            "record": {"cores": False}, "seed": 0}
    data.update(fields)
    return write_yaml(folder / f"{name}.yaml", data)


def model_copy(folder: Path) -> Path:
    """A copy of the digits model folder."""
    target = folder / "model"
    shutil.copytree(DIGITS, target, ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__"))
    return target


def reseal(model: Path) -> None:
    """Record the weights file's own sha256 in model.yaml, as a careful attacker would."""
    data = yaml.safe_load((model / "model.yaml").read_text())
    data["weights"]["sha256"] = hashlib.sha256((model / "weights.h5").read_bytes()).hexdigest()
    write_yaml(model / "model.yaml", data)


def hostile_weights(model: Path, how: str) -> None:
    """Damage a copied model's weights file (``how``) and reseal its checksum."""
    weights = model / "weights.h5"
    target = "projections/hidden1_to_hidden2/weight"
    with h5py.File(weights, "r+") as h5:
        proj = next(iter(h5["projections"]))
        target = f"projections/{proj}/weight"
        data = h5[target][()]
        if how == "weight_exp_array":
            h5[f"projections/{proj}"].attrs["weight_exp"] = np.array([1, 2])
        elif how == "external_link":
            outside = model.parent / "outside.h5"
            with h5py.File(outside, "w") as other:
                other["w"] = data
            del h5[target]
            h5[target] = h5py.ExternalLink(str(outside), "/w")
        elif how == "external_storage":
            raw = model.parent / "outside.bin"
            raw.write_bytes(np.ascontiguousarray(data).tobytes())
            del h5[target]
            h5.create_dataset(target, shape=data.shape, dtype=data.dtype, external=[(str(raw), 0, data.nbytes)])
        elif how == "virtual":
            outside = model.parent / "outside.h5"
            with h5py.File(outside, "w") as other:
                other["w"] = data
            layout = h5py.VirtualLayout(shape=data.shape, dtype=data.dtype)
            layout[...] = h5py.VirtualSource(str(outside), "w", shape=data.shape)
            del h5[target]
            h5.create_virtual_dataset(target, layout)
        elif how == "soft_loop":
            h5["loop_a"] = h5py.SoftLink("/loop_b")
            h5["loop_b"] = h5py.SoftLink("/loop_a")
        elif how == "huge":
            del h5[target]
            h5.create_dataset(target, shape=(100_000, 100_000), dtype=np.int8, chunks=(1000, 1000),
                              compression="gzip")
        else:
            raise ValueError(how)
    reseal(model)


def generated_model(folder: Path, synapses: int) -> Path:
    """A model.yaml of generated connectivity with about ``synapses`` synapses."""
    fan_in = min(65536, max(1, synapses // 10_000_000))
    size = max(1, synapses // fan_in)
    target = folder / "generated"
    target.mkdir()
    write_yaml(target / "model.yaml", {
        "name": "generated", "weights": {"generated": {"seed": 0}}, "dataset": "random",
        "input": {"population": "inp", "encoding": "graded_constant"}, "readout": {"population": "out",
                                                                                 "mode": "spike_count"},
        "populations": {"inp": {"kind": "graded_source", "size": size},
                        "out": {"kind": "loihi_lif", "size": size, "params": {"vth": 100}}},
        "projections": {"p": {"kind": "sparse", "source": "inp", "target": "out",
                              "generate": {"fan_in": fan_in, "weight_low": -1, "weight_high": 1}}}})
    return target / "model.yaml"


# ---------------------------------------------------------------------------------------------
# YAML


def alias_bomb() -> str:
    """About 330 bytes standing for 9^9 values."""
    text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(8):
        prev, name = chr(97 + i), chr(98 + i)
        text += f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
    return text


YAML_TEXTS = {
    "alias_bomb": alias_bomb().encode(),
    "deep_nesting": ("name: x\nchip: " + "[" * 500 + "]" * 500 + "\n").encode(),
    "recursive_alias": b"name: &a [x, *a]\n",
    "utf16_bom": "name: x\nchip: y\n".encode("utf-16"),
    "utf16_no_bom": "name: x\nchip: y\n".encode("utf-16-le"),
    "latin1": "name: caf\xe9\n".encode("latin-1"),
    "int_key": b"name: x\n1: 2\n",
    "bool_key": b"name: x\nyes: 2\n",
    "list_key": b"name: x\n? [1, 2]\n: 3\n",
    "huge_integer": b"name: x\ntimesteps: 1" + b"0" * 5000 + b"\n",
    "python_tag": b"name: !!python/object/apply:os.system ['touch pwned']\n",
    "too_big": b"name: x\n" + b"# padding\n" * 120_000,
    "timesteps_true": None,       # made by `scenario_text`
}


# ---------------------------------------------------------------------------------------------
# NIR graphs and netx networks


def nir_graph(path: Path, how: str = "valid") -> Path:
    """A small NIR graph (input 3 -> Linear -> CubaLIF 4 -> output), made hostile by ``how``."""
    n = 4
    weight = np.full((n, 3), 0.5)
    tau_syn, tau_mem, delay = np.full(n, 0.01), np.full(n, 0.02), None
    if how == "nan_weight":
        weight[0, 0] = np.nan
    if how == "inf_weight":
        weight[1, 1] = np.inf
    if how == "tau_zero":
        tau_mem[0] = 0.0
    if how == "tau_nan":
        tau_syn[2] = np.nan
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "w": nir.Linear(weight=weight),
             "lif": nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=np.ones(n), v_leak=np.zeros(n),
                                v_threshold=np.ones(n), w_in=np.ones(n)),
             "output": nir.Output(output_type={"output": np.array([n])})}
    edges = [("input", "w"), ("w", "lif"), ("lif", "output")]
    if how == "delay_huge":
        nodes["d"] = nir.Delay(delay=np.full(3, 1e15))
        edges = [("input", "d"), ("d", "w"), ("w", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    nir.write(str(path), graph)
    if how == "linear_huge":
        with h5py.File(path, "r+") as h5:
            del h5["node/nodes/w/weight"]
            h5.create_dataset("node/nodes/w/weight", shape=(20_000, 20_000), dtype=np.float64, chunks=(500, 500),
                              compression="gzip")
    if how == "external_link":
        outside = path.with_name("outside.h5")
        with h5py.File(path, "r+") as h5, h5py.File(outside, "w") as other:
            other["w"] = h5["node/nodes/w/weight"][()]
            del h5["node/nodes/w/weight"]
            h5["node/nodes/w/weight"] = h5py.ExternalLink(str(outside), "/w")
    if how == "nested_300":
        with h5py.File(path, "r+") as h5:
            group = h5["node/nodes"]
            for k in range(300):
                group = group.create_group(f"g{k}").create_group("nodes")
    return path


def netx_net(path: Path, how: str = "valid") -> Path:
    """lava-dl's tiny network (3 x 16 x 16 input, two conv layers), made hostile by ``how``."""
    shutil.copy(TINY_NET, path)
    with h5py.File(path, "r+") as h5:
        conv = h5["layer/1"]

        def replace(group, key, value):
            del group[key]
            group[key] = value

        if how == "stride_0":
            replace(conv, "stride", np.array([0, 0]))
        elif how == "stride_negative":
            replace(conv, "stride", np.array([-1, -1]))
        elif how == "groups_0":
            replace(conv, "groups", np.int64(0))
        elif how in ("inf_weight", "nan_weight", "fractional_weight"):
            w = conv["weight"][()].astype(np.float64)
            w.flat[0] = {"inf_weight": np.inf, "nan_weight": np.nan, "fractional_weight": 0.5}[how]
            replace(conv, "weight", w)
        elif how == "shape_mismatch":
            replace(conv, "shape", np.array([24, 5, 5]))
        elif how == "channels_mismatch":
            replace(conv, "shape", np.array([20, 6, 6]))
        elif how == "input_huge":
            replace(h5["layer/0"], "shape", np.array([3, 3000, 3000]))
        elif how == "external_link":
            outside = path.with_name("outside.h5")
            with h5py.File(outside, "w") as other:
                other["w"] = conv["weight"][()]
            del conv["weight"]
            conv["weight"] = h5py.ExternalLink(str(outside), "/w")
        elif how != "valid":
            raise ValueError(how)
    return path


# ---------------------------------------------------------------------------------------------
# inputs, traces, tables


def input_file(folder: Path, how: str) -> Path:
    """An input file for the digits model (64 inputs), hostile by ``how``."""
    if how == "npy_empty":
        path = folder / "inputs.npy"
        path.write_bytes(b"")
    elif how == "npy_huge_header":
        path = folder / "inputs.npy"
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (100_000, 100_000, 64)})
            fh.write(b"\0" * 64)
    elif how == "npy_object":
        path = folder / "inputs.npy"
        np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    elif how == "h5_huge":
        path = folder / "inputs.h5"
        with h5py.File(path, "w") as h5:
            h5.create_dataset("inputs", shape=(10**6, 10**4, 64), dtype=np.float64, chunks=(1, 100, 64))
    elif how == "h5_external":
        path = folder / "inputs.h5"
        with h5py.File(folder / "outside.h5", "w") as other:
            other["x"] = np.ones((2, 2, 64))
        with h5py.File(path, "w") as h5:
            h5["inputs"] = h5py.ExternalLink(str(folder / "outside.h5"), "/x")
    elif how == "graded_too_big":
        path = folder / "inputs.npy"
        np.save(path, np.full((2, 2, 64), 10**8, np.int64))
    else:
        raise ValueError(how)
    return path


def damaged_trace(source: Path, target: Path, how: str) -> Path:
    """A copy of a trace, damaged by ``how``."""
    shutil.copy(source, target)
    if how == "truncated":
        target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
        return target
    with h5py.File(target, "r+") as h5:
        if how == "no_steps":
            del h5["steps"]
        elif how == "no_layers":
            del h5["layers"]
        elif how == "timesteps_huge":
            h5["summary"].attrs["timesteps"] = 10**12
        elif how == "summary_text":
            h5["summary"].attrs["energy_per_inference_j"] = "lots"
        elif how == "mesh_huge":
            h5["cores"].attrs["mesh_x"] = 10**9
        elif how == "short_latency":
            del h5["steps/latency_ns"]
            h5["steps/latency_ns"] = np.zeros(1)
        elif how == "external_link":
            with h5py.File(target.with_name("outside.h5"), "w") as other:
                other["x"] = np.zeros(3)
            del h5["steps/latency_ns"]
            h5["steps/latency_ns"] = h5py.ExternalLink(str(target.with_name("outside.h5")), "/x")
        else:
            raise ValueError(how)
    return target


CSV_TEXTS = {
    "nul_bytes": b"point,chip,status,error,trace\nab\0cd,x,ok,,\n",
    "latin1": "point,chip,status,error,trace\nabc,caf\xe9,ok,,\n".encode("latin-1"),
    "no_columns": b"a,b,c\n1,2,3\n",
    "ragged": b"point,chip,status,error,trace,energy_per_inference_j,latency_per_inference_s\n"
              b"p1,chips/x.yaml,ok\np2,chips/y.yaml,ok,,,1e-6,2e-6,extra,cells\n",
    "zero_rate": b"point,chip,status,error,trace,tokens_per_s,energy_per_token_j\np1,x,ok,,,0,1e-3\n",
    "huge_field": b"point,chip,status,error,trace\np1,x,ok," + b"y" * 200_000 + b",\n",
    "status_first": b"status,point,chip,error,trace\nok,p1,x,,\n",
    "repeated": b"point,point,status,error,trace\np1,p1,ok,,\n",
}


def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
