"""Import a lava-dl netx network (``.net``, HDF5) with the register semantics of lava-dl's own
loader (``lava.lib.dl.netx.hdf5.Network``) on a Loihi 2 chip.

Layers ``/layer/0 .. n-1`` in order, each fed by the one before:

``input``
    The input, one neuron per input value, ``shape`` (C, H, W). With CUBA or LOIHI neurons it is
    a LIF layer whose bias is the input (lava-dl feeds it through ``bias_mant``): here the host
    sends each input value as a graded spike through one-to-one unit synapses, which reaches the
    voltage as a bias of ``bias_exp = 6`` would (the layer's current carries nothing over). The
    values are the layer's input currents as lava-dl's tutorials make them, e.g.
    ``int(2 w x - w + b)`` from pixels ``x`` in [0, 1] with the layer's ``weight`` and ``bias``.
    With SDNN neurons it is a Delta neuron fed by the host (`delta_source`: the value is scaled
    by 2^12 and its changes of at least ``vThMant << 12`` are sent as ``change >> 6``).
``dense`` / ``conv``
    Synapses with the stored integer weights (``weight[out, in]``, a 1-D ``weight`` of n values
    read as ``(out, n / out)`` as lava-dl reshapes it; conv ``weight[out, in, kh, kw]``
    as PyTorch cross-correlation over (C, H, W), with ``stride``, ``padding``, ``dilation`` and
    ``groups`` in (y, x) order), 8-bit mantissas with a shared exponent, the product exact;
    and the layer's neurons with its ``bias`` (per output channel of a conv).
``pool``
    Sum pooling by ``kernelSize``/``stride``/``padding`` with the layer's ``weight`` (lava-dl's
    loader itself does not build pool layers).
``flatten``
    Nothing: the (C, H, W) order is the flattened order.

Neurons: CUBA and LOIHI become `loihi_lif` with ``du = iDecay - 1``, ``dv = vDecay``,
``vth = vThMant``, ``bias_mant`` = the layer's bias, ``bias_exp = 6`` (lava-dl's ``LIF``, Lava's
bit-accurate model: no refractory period, binary spikes). SDNN becomes `sigma_delta` with
``vth = vThMant << 12``, ``bias << 12``, ``state_exp = 6``, ReLU and ``messageBits`` (16 by
default) of payload; a layer marked ``sigma_output`` is a Sigma (identity, threshold 0, no
bias) whose accumulated ``sigma`` is read out. A dense layer's ``delay`` (synaptic delays, which
lava-dl applies) is refused unless all zero; a conv layer's is ignored, as lava-dl ignores it.

Reset (``reset_interval`` R, ``reset_offset``, as lava-dl's ``Network(..., reset_interval=R,
reset_offset=...)``): lava-dl makes each CUBA or LOIHI layer a ``LIFReset`` process whose ``u``
and ``v`` are set to 0 at the start of every step ``t`` (counted from 0) with ``t % R`` equal to
its layer's number plus ``reset_offset``, before that step's input is added; the synapses'
buffers, delays and the input are not reset, and SDNN layers never are (lava-dl ignores the
interval for them). The layer's input is one step later at each layer, so each layer's window of
R steps starts when its sample's first input reaches it. Here layer k (lava-dl's k-th layer with
neurons, 0 first) is reset at steps ``t % R == (k + 1 + reset_offset) % R``, the step at which
input the host sends at step 0 reaches it. With an input layer, the host's input reaches it one
step later than lava-dl's input layer takes it as its bias, so each layer's state at step
``t + 1`` is lava-dl's at step ``t``; a network whose first layer takes spikes from the host
gets them at the step lava-dl's would, and its schedule is lava-dl's with ``reset_offset + 1``
(the offset lava-dl itself uses with spike input). Each sample still starts from rest; with
``R + depth`` timesteps (``depth``: the readout layer's k + 1) the readout layer has integrated
its whole window of R steps at the sample's end, the value lava-dl reads from it.

The float reference runs the same network in float64: the same equations and parameters
without the chip's truncation, wraparound, clipping or payload rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from neurosim.datasets import open_hdf5
from neurosim.errors import UserError
from neurosim.graph.graph import Conv2d, Csr, Dense, Graph, Population, Sparse
from neurosim.interop.imported import ConversionError, FloatRun, ImportedModel, relative_errors
from neurosim.interop.linear_maps import Coo, conv_map, finite, fits, m_apply, pool_map

SDNN_SCALE = 12         # state exponent + spike exponent of Lava's sigma-delta processes
SDNN_STATE_EXP = 6
SDNN_MESSAGE_BITS = 16
LIF_BIAS_EXP = 6
READ_FACTOR = 8            # the file's data read, converted and mapped, against its declared bytes
BYTES_PER_NEURON = 256     # a layer's parameters, state and maps, per neuron at most


def _str(value) -> str:
    value = np.asarray(value).ravel()[0] if np.ndim(value) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(group: h5py.Group, key: str, default: int | None = None) -> int:
    if key not in group:
        if default is None:
            raise KeyError(f"{group.name}/{key}")
        return default
    return int(np.asarray(group[key][()]).ravel()[0])


@dataclass
class Layer:
    index: int
    type: str
    shape: tuple[int, ...]              # (C, H, W) or (n,)
    neuron: dict
    weight: np.ndarray | None
    bias: np.ndarray | None
    group: h5py.Group


def _layers(h5: h5py.File, file: str) -> list[Layer]:
    if not isinstance(h5.get("layer"), h5py.Group):
        raise UserError("has no /layer group: expected a lava-dl netx network", file=file)
    layers = []
    for k in range(len(h5["layer"])):
        if str(k) not in h5["layer"]:
            raise UserError(f"has no /layer/{k} (layers must be numbered 0 to {len(h5['layer']) - 1})", file=file)
        g = h5["layer"][str(k)]
        neuron = {}
        if "neuron" in g:
            for key, ds in g["neuron"].items():
                value = ds[()]
                neuron[key] = _str(value) if isinstance(value, (bytes, np.bytes_)) or np.asarray(value).dtype.kind in "OS" \
                    else np.asarray(value).ravel()[0]
        shape = tuple(int(v) for v in np.atleast_1d(finite(g["shape"][()], f"layer {k}'s shape")))
        if not shape or min(shape) < 1:
            raise ValueError(f"layer {k} has shape {shape}, expected positive sizes")
        fits(int(np.prod(shape, dtype=object)), BYTES_PER_NEURON, f"layer {k} of shape {shape}")
        weight = finite(g["weight"][()], f"layer {k}'s weight") if "weight" in g else None
        if weight is not None and np.any(weight != np.rint(weight)):
            raise ValueError(f"layer {k}'s weight holds fractional values, expected the integers netx stores")
        layers.append(Layer(k, _str(g["type"][()]), shape, neuron, weight,
                            finite(g["bias"][()], f"layer {k}'s bias").ravel() if "bias" in g else None, g))
    return layers


def _exact_int8(w: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Integer weights as 8-bit mantissas and one exponent: the exponent is the least that fits the
    largest, and a mantissa is rounded only if the weight is not a multiple of 2^exponent."""
    big = float(np.abs(w).max(initial=0.0))
    exp = max(0, math.ceil(math.log2(big / 127))) if big > 127 else 0
    mant = np.clip(np.rint(w / 2.0 ** exp), -128, 127)
    return mant.astype(np.int8), exp, mant * 2.0 ** exp


@dataclass
class FloatLayer:
    """One layer of the float reference."""

    name: str
    kind: str                           # "lif", "sigma_delta", "sigma", "delta_input", "lif_input"
    n: int
    params: dict
    synapses: Coo | None                # from the layer before (exact weights)


class NetxReference:
    def __init__(self, layers: list[FloatLayer], readout: str, readout_spikes: bool,
                 resets: dict[str, tuple[int, int]] | None = None):
        self.layers, self.readout, self.readout_spikes = layers, readout, readout_spikes
        self.resets = resets or {}          # population: (interval, phase), as `Graph.resets`

    def run(self, inputs: np.ndarray, timesteps: int) -> FloatRun:
        batch = inputs.shape[0]
        per_step = inputs.ndim == 3
        state = {L.name: {k: np.zeros((batch, L.n)) for k in ("u", "v", "sigma", "act")} for L in self.layers}
        out = {L.name: np.zeros((batch, L.n)) for L in self.layers}
        events = {L.name: np.zeros((batch, timesteps), np.int64) for L in self.layers}
        counts = np.zeros((batch, self.layers[-1].n))
        for t in range(timesteps):
            x = (inputs[:, t] if t < inputs.shape[1] else np.zeros_like(inputs[:, 0])) if per_step else inputs
            new = {}
            prev = None
            for L in self.layers:
                s, p = state[L.name], L.params
                if L.kind in ("delta_input",):
                    a = np.asarray(x, np.float64) * 2.0 ** SDNN_SCALE
                    delta = a - s["act"]
                    send = np.abs(delta) >= p["vth"]
                    s["act"] = np.where(send, a, s["act"])
                    new[L.name] = np.where(send, delta / 2.0 ** SDNN_STATE_EXP, 0.0)
                elif L.kind == "lif_input_host":
                    new[L.name] = np.asarray(x, np.float64)
                else:
                    a = np.stack([m_apply(L.synapses, row) for row in out[prev]])
                    every, phase = self.resets.get(L.name, (0, 0))
                    if every and t % every == phase:
                        s["u"][:], s["v"][:] = 0.0, 0.0
                    if L.kind == "lif":
                        s["u"] = s["u"] * (1 - (p["du"] + 1) / 4096) + a * 64
                        s["v"] = s["v"] * (1 - p["dv"] / 4096) + s["u"] + p["bias"]
                        spike = p["vth"] >= 0
                        fired = (s["v"] > p["vth"] * 64) & spike
                        s["v"] = np.where(fired, 0.0, s["v"])
                        new[L.name] = fired.astype(np.float64)
                    else:            # sigma_delta and sigma
                        s["sigma"] = s["sigma"] + a
                        act = s["sigma"] + p["bias"]
                        act = np.maximum(act, 0) if L.kind == "sigma_delta" else act
                        delta = act - s["act"]
                        send = np.abs(delta) >= p["vth"]
                        s["act"] = np.where(send, act, s["act"])
                        new[L.name] = np.where(send, delta / 2.0 ** SDNN_STATE_EXP, 0.0)
                events[L.name][:, t] = np.count_nonzero(new[L.name], axis=1)
                prev = L.name
            out = new
            counts += out[self.readout] != 0
        last = state[self.readout]
        readout = counts if self.readout_spikes else last["sigma"]
        return FloatRun(events, readout)


def load_netx(path: str | Path, name: str | None = None, reset_interval: int | None = None,
              reset_offset: int = 0) -> ImportedModel:
    """A netx file as a graph (see the module's docstring); with ``reset_interval`` its CUBA and
    LOIHI layers reset as lava-dl's ``LIFReset`` layers do (the graph's `Graph.resets`)."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise UserError("netx file not found", file=file)
    if reset_interval is not None and reset_interval < 1:
        raise UserError(f"reset_interval {reset_interval}: expected a whole number of steps, 1 or more", file=file)
    try:
        with open_hdf5(path, "netx file", factor=READ_FACTOR) as h5:
            return _build(_layers(h5, file), path, name, reset_interval, reset_offset)
    except OSError as err:
        raise UserError(f"is not a readable HDF5 netx file ({err})", file=file) from None
    except KeyError as err:
        raise UserError(f"lacks {err.args[0]}, which its layer needs", file=file) from None
    except (ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError) as err:
        raise UserError(f"cannot be imported ({err})", file=file) from None


def _build(layers: list[Layer], path: Path, name: str | None, reset_interval: int | None = None,
           reset_offset: int = 0) -> ImportedModel:
    file = str(path)
    pops: dict[str, Population] = {}
    projections: dict = {}
    errors: list[ConversionError] = []
    float_layers: list[FloatLayer] = []
    if not layers:
        raise UserError("has no layers", file=file)
    first = layers[0]
    shape = first.shape
    source = None
    input_pop = None
    depth = {}               # the steps input sent at step 0 takes to reach each LIF layer
    for layer in layers:
        kind = layer.type
        neuron_type = _str(layer.neuron.get("type", "CUBA"))
        pname = f"layer{layer.index}"
        if kind == "input":
            n = int(np.prod(layer.shape))
            if neuron_type == "SDNN":
                vth = int(layer.neuron.get("vThMant", 0)) << SDNN_SCALE
                pops["input"] = Population("input", "delta_source", n, {
                    "vth": vth, "input_exp": SDNN_SCALE, "state_exp": SDNN_STATE_EXP,
                    "payload_bits": int(layer.neuron.get("messageBits", SDNN_MESSAGE_BITS))})
                input_pop = source = "input"
                float_layers.append(FloatLayer("input", "delta_input", n, {"vth": vth}, None))
            else:
                pops["input"] = Population("input", "graded_source", n, {"payload_bits": 16})
                float_layers.append(FloatLayer("input", "lif_input_host", n, {}, None))
                input_pop = "input"
                params = _lif_params(layer, np.zeros(n))
                pops[pname] = Population(pname, "loihi_lif", n, params)
                depth[pname] = 1
                ident = Coo.identity(n)
                projections[f"input_to_{pname}"] = Sparse(
                    f"input_to_{pname}", "input", pname,
                    Csr(np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int32), np.ones(n, np.int8)), n, 0)
                float_layers.append(FloatLayer(pname, "lif", n, _float_lif(params, n), ident))
                source = pname
            shape = layer.shape
            continue
        if input_pop is None:            # a network that starts with a synaptic layer: a spike input
            n_in = _in_size(layer)
            pops["input"] = Population("input", "spike_source", n_in)
            float_layers.append(FloatLayer("input", "lif_input_host", n_in, {}, None))
            input_pop = source = "input"
            shape = (n_in,)
        if kind == "flatten":
            shape = (int(np.prod(shape)),)
            continue
        try:
            coo, out_shape = _synapses(layer, shape)
        except (ValueError, KeyError) as err:
            raise UserError(f"layer {layer.index} ({kind}): {err}", file=file) from None
        n = coo.n_out
        declared = layer.shape if len(layer.shape) == len(out_shape) else (int(np.prod(layer.shape)),)
        if declared != (out_shape if len(declared) == len(out_shape) else (n,)):
            raise UserError(f"layer {layer.index} ({kind}) declares shape {layer.shape}, and its weights over its "
                            f"input of shape {shape} give {out_shape}", file=file)
        if layer.bias is not None and n % layer.bias.size:
            raise UserError(f"layer {layer.index}: {layer.bias.size} biases for {n} neurons", file=file)
        bias = np.zeros(n) if layer.bias is None else np.repeat(layer.bias, n // layer.bias.size)   # per channel
        if neuron_type in ("CUBA", "LOIHI"):
            params = _lif_params(layer, bias)
            pops[pname] = Population(pname, "loihi_lif", n, params)
            depth[pname] = depth.get(source, 0) + 1
            fparams = _float_lif(params, n)
            fkind = "lif"
        elif neuron_type == "SDNN":
            sigma_output = bool(layer.neuron.get("sigma_output", False))
            bits = int(layer.neuron.get("messageBits", SDNN_MESSAGE_BITS))
            if sigma_output:
                params = {"vth": 0, "bias": 0, "activation": "identity", "state_exp": SDNN_STATE_EXP,
                          "payload_bits": bits}
            else:
                params = {"vth": int(layer.neuron.get("vThMant", 0)) << SDNN_SCALE,
                          "bias": np.rint(bias * 2 ** SDNN_SCALE).astype(np.int64), "activation": "relu",
                          "state_exp": SDNN_STATE_EXP, "payload_bits": bits}
            pops[pname] = Population(pname, "sigma_delta", n, params)
            fparams = {"vth": float(params["vth"]), "bias": np.broadcast_to(np.asarray(params["bias"], np.float64),
                                                                            (n,)).copy()}
            fkind = "sigma" if sigma_output else "sigma_delta"
        else:
            raise UserError(f"layer {layer.index}: neuron type {neuron_type!r}, expected CUBA, LOIHI or SDNN",
                            file=file)
        mant, exp, exact = _exact_int8(coo.vals)
        errors.append(relative_errors(pname, "weights", exact, coo.vals))
        projections[f"{source}_to_{pname}"] = _projection(f"{source}_to_{pname}", source, pname, coo, mant, exp,
                                                          layer, shape)
        float_layers.append(FloatLayer(pname, fkind, n, fparams, coo))
        if pname not in depth:
            depth[pname] = depth.get(source, 0) + 1
        source, shape = pname, out_shape
    last = float_layers[-1]
    spikes = last.kind == "lif"
    resets = _resets(depth, pops, reset_interval, reset_offset, file)
    graph = Graph(name or path.stem, pops, projections, input_pop, source, "spike_count" if spikes else "membrane",
                  "any", source_file=file, resets=resets)
    reference = NetxReference([L for L in float_layers], source, spikes, resets)
    # the readout's v holds 6 fraction bits; a sigma-delta network's values are scaled by 2^12
    scale = 2.0 ** -LIF_BIAS_EXP if spikes else 2.0 ** -SDNN_SCALE
    return ImportedModel(graph, reference.run, errors, "netx", file, feed_forward=True, readout_scale=scale)


def _resets(depth: dict[str, int], pops: dict[str, Population], interval: int | None, offset: int,
            file: str) -> dict[str, tuple[int, int]]:
    """Each LIF layer's reset (interval, phase): at its depth plus ``offset`` (the module's docstring)."""
    if interval is None:
        return {}
    lif = {name: d for name, d in depth.items() if pops[name].kind == "loihi_lif"}
    if not lif:
        raise UserError("has no CUBA or LOIHI layers to reset (lava-dl does not reset SDNN layers): "
                        "expected no reset_interval for it", file=file)
    return {name: (interval, (d + offset) % interval) for name, d in lif.items()}


def _in_size(layer: Layer) -> int:
    if layer.weight is None:
        raise ValueError("a layer without weights first, and no input layer")
    if layer.weight.ndim == 1:
        return layer.weight.size // int(np.prod(layer.shape))
    return int(np.prod(layer.weight.shape[1:]))


def _lif_params(layer: Layer, bias: np.ndarray) -> dict:
    i_decay = int(layer.neuron.get("iDecay", 0))
    if i_decay < 1:
        raise UserError(f"layer {layer.index}: iDecay {i_decay}, which needs a current that never decays "
                        f"(du = -1); expected iDecay of 1 to 4096", file=layer.group.file.filename)
    mant = np.rint(bias).astype(np.int64)
    return {"du": i_decay - 1, "dv": int(layer.neuron.get("vDecay", 0)), "vth": int(layer.neuron.get("vThMant", 0)),
            "bias_mant": mant, "bias_exp": LIF_BIAS_EXP, "reset": "zero"}


def _float_lif(params: dict, n: int) -> dict:
    return {"du": params["du"], "dv": params["dv"], "vth": params["vth"],
            "bias": np.broadcast_to(np.asarray(params["bias_mant"], np.float64) * 2 ** params["bias_exp"], (n,)).copy()}


def _synapses(layer: Layer, in_shape: tuple[int, ...]) -> tuple[Coo, tuple[int, ...]]:
    g = layer.group
    if layer.type == "dense":
        if "delay" in g and np.any(finite(g["delay"][()], "its delay") != 0):
            raise ValueError("synaptic delays (its delay dataset), which this import does not apply; expected "
                             "none or all 0")
        n_out = int(np.prod(layer.shape))          # lava-dl reads a 1-D weight as (out, in)
        w = layer.weight.reshape(n_out if layer.weight.ndim == 1 else layer.weight.shape[0], -1)
        if w.shape[1] != int(np.prod(in_shape)):
            raise ValueError(f"a dense weight of {w.shape[1]} inputs after a layer of {int(np.prod(in_shape))}")
        return Coo.dense(w), (w.shape[0],)
    if layer.type == "conv":
        w = layer.weight.reshape(layer.weight.shape[:4])
        pair = (lambda key, default: tuple(int(v) for v in np.atleast_1d(g[key][()])) if key in g else default)
        coo, _, out_shape = conv_map(w, in_shape, pair("stride", (1, 1)), pair("padding", (0, 0)),
                                     pair("dilation", (1, 1)), _int(g, "groups", 1), None)
        return coo, out_shape
    if layer.type == "pool":
        pair = (lambda key, default: tuple(int(v) for v in np.atleast_1d(g[key][()])) if key in g else default)
        kernel = pair("kernelSize", (2, 2))
        coo, out_shape = pool_map(in_shape, kernel, pair("stride", kernel), pair("padding", (0, 0)), False)
        scale = float(np.asarray(layer.weight).ravel()[0]) if layer.weight is not None and layer.weight.size else 1.0
        return Coo(coo.rows, coo.cols, coo.vals * scale, coo.delays, coo.n_out, coo.n_in), out_shape
    raise ValueError(f"layer type {layer.type!r}, expected input, dense, conv, pool or flatten")


def _projection(name: str, source: str, target: str, coo: Coo, mant: np.ndarray, exp: int, layer: Layer,
                in_shape: tuple[int, ...]):
    """A conv layer with one stride and padding for both axes and no dilation or groups keeps its
    kernels once (`Conv2d`); the rest are dense or sparse."""
    g = layer.group
    if layer.type == "conv":
        stride = np.atleast_1d(g["stride"][()]) if "stride" in g else np.array([1])
        padding = np.atleast_1d(g["padding"][()]) if "padding" in g else np.array([0])
        dilation = np.atleast_1d(g["dilation"][()]) if "dilation" in g else np.array([1])
        if (len(set(stride.tolist())) == 1 and len(set(padding.tolist())) == 1 and set(dilation.tolist()) == {1}
                and _int(g, "groups", 1) == 1 and len(in_shape) == 3):
            w = layer.weight.reshape(layer.weight.shape[:4])
            _, big_exp, _ = _exact_int8(w.ravel())
            kernel = np.clip(np.rint(w / 2.0 ** big_exp), -128, 127).astype(np.int8)
            return Conv2d(name, source, target, kernel, in_shape, int(stride[0]), int(padding[0]), big_exp)
    if len(coo.rows) >= 0.5 * coo.n_out * coo.n_in:
        dense = np.zeros((coo.n_out, coo.n_in), np.int8)
        dense[coo.rows, coo.cols] = mant
        return Dense(name, source, target, dense, exp)
    order = np.lexsort((coo.rows, coo.cols))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(coo.cols, minlength=coo.n_in))]).astype(np.int64)
    return Sparse(name, source, target, Csr(indptr, coo.rows[order].astype(np.int32), mant[order]), coo.n_out, exp)
