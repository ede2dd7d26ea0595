"""lava-dl's way of running a netx network of CUBA/LOIHI layers, written from its loader and Lava's
bit-accurate LIF in plain numpy for the tests (no code of neurosim's), and a small netx file to run.

lava-dl (``netx.hdf5.Network(..., reset_interval=R, reset_offset=o)``) makes each layer a
``LIFReset`` process; Lava counts time steps from 1 and resets layer j's ``u`` and ``v`` at the
start of every step with ``step % R == (o + 1 + j) % R``. A dense block's synapse sends at step
n what its input sent at step n - 1. The input layer takes the input as its bias (``bias_mant``).
The network runs on without any other reset: sample after sample, R steps each.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

MAX = 1 << 23              # Lava's 24-bit state: max_uv_val


def shift_decay(x: np.ndarray, keep: int) -> np.ndarray:
    """Lava's decay: x * keep / 4096 as sign(x) * (|x * keep| >> 12)."""
    p = x.astype(np.int64) * keep
    return np.sign(p) * np.right_shift(np.abs(p), 12)


def lif_step(u: np.ndarray, v: np.ndarray, a_in: np.ndarray, neuron: dict, bias_mant: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lava's PyLifModelBitAcc step (du = iDecay - 1 with its offset of 1, dv = vDecay, bias_exp 6,
    vth = vThMant << 6); returns (u, v, spikes)."""
    curr = shift_decay(u, 4096 - neuron["iDecay"]) + np.left_shift(a_in.astype(np.int64), 6)
    wrapped = np.where(curr > MAX, curr - 2 * MAX, curr)
    wrapped = np.where(wrapped <= -MAX, curr + 2 * MAX, wrapped)
    volt = shift_decay(v, 4096 - neuron["vDecay"]) + wrapped + np.left_shift(bias_mant.astype(np.int64), 6)
    volt = np.clip(volt, -MAX + 1, MAX - 1)
    spikes = volt > (neuron["vThMant"] << 6)
    return wrapped, np.where(spikes, 0, volt), spikes


def lava_run(layers: list[dict], images: np.ndarray, steps: int, reset_interval: int | None = None,
             reset_offset: int = 0) -> dict[str, np.ndarray]:
    """The network run for ``steps`` steps, the input layer's bias ``images[s]`` from its reset
    step of sample s on (the first image before). Per layer j, ``u{j}``, ``v{j}``, ``s{j}``:
    [steps, neurons] after each step (0-based)."""
    n = [len(layer["bias"]) if layer["weight"] is None else layer["weight"].shape[0] for layer in layers]
    u = [np.zeros(k, np.int64) for k in n]
    v = [np.zeros(k, np.int64) for k in n]
    sent = [np.zeros(k, bool) for k in n]
    out = {f"{x}{j}": np.zeros((steps, k), np.int64) for j, k in enumerate(n) for x in "uvs"}
    for g in range(steps):
        time_step = g + 1
        sample = min(max(g - reset_offset, 0) // reset_interval, len(images) - 1) if reset_interval else 0
        now = []
        for j, layer in enumerate(layers):
            a_in = np.zeros(n[j], np.int64) if j == 0 else layer["weight"] @ sent[j - 1].astype(np.int64)
            if reset_interval and time_step % reset_interval == (reset_offset + 1 + j) % reset_interval:
                u[j], v[j] = u[j] * 0, v[j] * 0
            bias = images[sample] if j == 0 else layer["bias"]
            u[j], v[j], s = lif_step(u[j], v[j], a_in, layer["neuron"], bias)
            now.append(s)
            out[f"u{j}"][g], out[f"v{j}"][g], out[f"s{j}"][g] = u[j], v[j], s
        sent = now
    return out


def chain_layers(seed: int = 0, hidden_bias: bool = True) -> list[dict]:
    """An input layer of 6 LOIHI neurons, dense 6 -> 8 and 8 -> 5 of CUBA neurons, and a dense
    readout of one non-spiking integrator whose weight is stored 1-D (as PilotNet's)."""
    rng = np.random.default_rng(seed)
    loihi = {"type": "LOIHI", "iDecay": 4096, "vDecay": 1024, "vThMant": 25}
    return [
        {"type": "input", "shape": [6], "weight": None, "bias": np.zeros(6), "neuron": loihi},
        {"type": "dense", "shape": [8], "weight": rng.integers(-40, 61, (8, 6)),
         "bias": rng.integers(-4, 12, 8) * hidden_bias, "neuron": {"type": "CUBA", "iDecay": 1024, "vDecay": 512,
                                                                   "vThMant": 20}},
        {"type": "dense", "shape": [5], "weight": rng.integers(-30, 61, (5, 8)),
         "bias": rng.integers(-3, 9, 5) * hidden_bias, "neuron": {"type": "CUBA", "iDecay": 2048, "vDecay": 256,
                                                                  "vThMant": 15}},
        {"type": "dense", "shape": [1, 1, 1], "weight": rng.integers(-20, 41, (1, 5)), "bias": np.zeros(1),
         "neuron": {"type": "LOIHI", "iDecay": 4096, "vDecay": 0, "vThMant": 131071}, "one_d": True},
    ]


def write_netx(path: Path, layers: list[dict]) -> Path:
    """``layers`` as a netx file in lava-dl's layout (``/layer/<i>/type``, ``shape``, ``weight``,
    ``bias``, ``delay``, ``neuron/*``); a layer with ``one_d`` stores its weight as one row, flat."""
    with h5py.File(path, "w") as h5:
        for i, layer in enumerate(layers):
            g = h5.create_group(f"layer/{i}")
            g["type"] = np.array([layer["type"].encode()])
            g["shape"] = np.array(layer["shape"])
            if layer["weight"] is not None:
                w = layer["weight"].astype(np.float32)
                g["weight"] = w.ravel() if layer.get("one_d") else w
                g["bias"] = np.asarray(layer["bias"], np.float32)
            if "delay" in layer:
                g["delay"] = np.asarray(layer["delay"])
            for key, value in layer["neuron"].items():
                g[f"neuron/{key}"] = value.encode() if isinstance(value, str) else np.int64(value)
    return path
