"""A float64 executor of a NIR graph, node by node: the reference an imported graph's chip run is
compared with (`neurosim.interop.nir_import`).

It reads the NIR nodes' own parameters and evaluates each linear node directly (matrix products,
convolutions and pooling over (C, ...) arrays, delays from a history of its inputs), with no
sparse composition and no fixed point. Neurons follow the forward-Euler models of
`neurosim.interop.nir_import` (`FloatNeuron`). As on the chip, a neuron node's output (and the
input) of one step reaches the neurons it feeds in the next step; linear nodes pass it on within
the step. Biases are constant inputs from the first step on.
"""

from __future__ import annotations

import numpy as np

from neurosim.interop.imported import FloatRun


def _tuple(value, n: int) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value)).astype(np.int64)
    return tuple(int(v) for v in (np.repeat(arr, n) if arr.size == 1 else arr))


def conv(x: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """Cross-correlation of x [B, C, *dims] with weight [Cout, C/groups, *kernel], as NIR and
    PyTorch define it."""
    spatial = x.ndim - 2
    kernel = weight.shape[2:]
    stride, dilation = _tuple(stride, spatial), _tuple(dilation, spatial)
    if isinstance(padding, str):
        padding = (0,) * spatial if padding == "valid" else tuple((d * (k - 1)) // 2 for d, k in zip(dilation, kernel))
    padding = _tuple(padding, spatial)
    x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    dims = x.shape[2:]
    out_dims = tuple((n - d * (k - 1) - 1) // s + 1 for n, d, k, s in zip(dims, dilation, kernel, stride))
    c_out, c_group = weight.shape[0], weight.shape[1]
    out = np.zeros((x.shape[0], c_out) + out_dims)
    per_group = c_out // groups
    for g in range(groups):
        xs = x[:, g * c_group:(g + 1) * c_group]
        ws = weight[g * per_group:(g + 1) * per_group]
        for offset in np.ndindex(*kernel):
            index = tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                          for o, d, s, n in zip(offset, dilation, stride, out_dims))
            patch = xs[(slice(None), slice(None)) + index]                    # [B, c_group, *out_dims]
            out[:, g * per_group:(g + 1) * per_group] += np.einsum("bc...,oc->bo...", patch,
                                                                   ws[(slice(None), slice(None)) + offset])
    return out


class NirReference:
    """Runs a flattened NIR graph (`neurosim.interop.nir_import.Flat`) on a batch of inputs.

    ``scales`` gives each neuron node's power-of-two scale on the chip (its ``v`` is 64 x scale x
    the graph's voltage). A readout read by its membrane is given in the chip's units, as the chip
    reads it: the graph's voltage over `readout_scale` (the graph's units of one unit of the
    chip's ``v``; None for a readout read by its spikes)."""

    def __init__(self, flat, models, input_node: str, targets: list[str], readout: str, dt: float, reset: str,
                 input_encoding: str, names: dict[str, str], scales: dict[str, float] | None = None):
        self.flat, self.models, self.input, self.targets, self.names = flat, models, input_node, targets, names
        self.readout, self.dt = readout, dt
        self.readout_scale = None if models[readout].theta is not None else 1 / (64 * (scales or {}).get(readout, 1.0))
        self.graded = input_encoding == "graded"

    def _linear(self, name: str, x: np.ndarray, history: dict, t: int) -> np.ndarray:
        node = self.flat.nodes[name]
        kind = type(node).__name__
        batch = x.shape[0]
        if kind in ("Affine", "Linear"):
            y = x @ np.asarray(node.weight, np.float64).T
            return y + np.asarray(node.bias, np.float64).ravel() if kind == "Affine" else y
        if kind == "Scale":
            return x * np.asarray(node.scale, np.float64).ravel()
        if kind in ("Flatten", "Input", "Output"):
            return x
        if kind == "Delay":
            steps = np.rint(np.broadcast_to(np.asarray(node.delay, np.float64).ravel(), (x.shape[1],)) / self.dt)
            buf = history.setdefault(name, [])
            buf.append(x)
            out = np.zeros_like(x)
            for i, d in enumerate(steps.astype(np.int64)):
                if t - d >= 0:
                    out[:, i] = buf[t - d][:, i]
            return out
        in_shape = tuple(int(v) for v in np.atleast_1d(node.input_type["input"]))
        xs = x.reshape((batch,) + in_shape)
        if kind in ("Conv1d", "Conv2d"):
            y = conv(xs, np.asarray(node.weight, np.float64), node.stride, node.padding, node.dilation, int(node.groups))
            if node.bias is not None:
                y += np.asarray(node.bias, np.float64).reshape((1, -1) + (1,) * (y.ndim - 2))
            return y.reshape(batch, -1)
        if kind in ("SumPool2d", "AvgPool2d"):
            kernel = _tuple(node.kernel_size, 2)
            c = in_shape[0]
            weight = np.full((c, 1) + kernel, 1.0 / (kernel[0] * kernel[1]) if kind == "AvgPool2d" else 1.0)
            stride = node.stride if node.stride is not None else kernel
            return conv(xs, weight, stride, node.padding, 1, c).reshape(batch, -1)
        raise ValueError(f"no float model of a {kind} node")

    def run(self, inputs: np.ndarray, timesteps: int) -> FloatRun:
        """``inputs`` [S, T, n] (or [S, n]: the same every step) over ``timesteps`` steps."""
        flat, models = self.flat, self.models
        batch = inputs.shape[0]
        state = {n: {"i": np.zeros((batch, models[n].n)), "v": np.tile(models[n].v0, (batch, 1))}
                 for n in self.targets}
        out = {n: np.zeros((batch, models[n].n)) for n in self.targets}
        n_in = inputs.shape[-1]
        out[self.input] = np.zeros((batch, n_in))
        events = {n: np.zeros((batch, timesteps), np.int64) for n in [self.input] + self.targets}
        counts = np.zeros((batch, models[self.readout].n))
        history: dict = {}
        pops = set(self.targets) | {self.input}
        for t in range(timesteps):
            values: dict[str, np.ndarray] = {}

            def value(name: str) -> np.ndarray:
                if name in pops:
                    return out[name]
                if name not in values:
                    x = sum(value(p) for p in flat.preds[name])
                    values[name] = self._linear(name, x, history, t)
                return values[name]

            new_out = {}
            for n in self.targets:
                m, s = models[n], state[n]
                x = sum((value(p) for p in flat.preds[n]), np.zeros((batch, m.n)))
                s["i"] = (1 - m.a) * s["i"] + m.gain * x
                s["v"] = (1 - m.b) * s["v"] + s["i"] + m.leak
                if m.theta is None:
                    new_out[n] = np.zeros((batch, m.n))
                    continue
                spike = s["v"] > m.theta
                s["v"] = np.where(spike, s["v"] - m.theta if m.subtract else 0.0, s["v"])
                new_out[n] = spike.astype(np.float64)
                events[n][:, t] = spike.sum(axis=1)
            x_in = inputs[:, t] if inputs.ndim == 3 and t < inputs.shape[1] else (
                inputs if inputs.ndim == 2 else np.zeros((batch, n_in)))
            new_out[self.input] = np.asarray(x_in, np.float64) if self.graded else (x_in != 0).astype(np.float64)
            events[self.input][:, t] = np.count_nonzero(new_out[self.input], axis=1)
            out = new_out
            counts += out[self.readout] if models[self.readout].theta is not None else 0
        spiking = models[self.readout].theta is not None
        readout = counts if spiking else state[self.readout]["v"] / self.readout_scale
        return FloatRun({self.names[n]: e for n, e in events.items()}, readout)
