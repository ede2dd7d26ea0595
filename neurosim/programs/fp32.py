"""Float programs: EGRU, a readout, a LayerNorm, SpikeGPT's WKV, squared ReLU and LIFs, and the
float input (the step's contract: `neurosim.programs.kind`).

Float programs (fp32, as software neurons on a programmable core run them; a graph is all
integer or all float, and a float graph's weights, accumulators and payloads are float32):

``egru``
    An event-based GRU unit (Subramoney et al., ICLR 2023), gates z, r, g; input ports
    ``in_z in_r in_g`` (from the layer below) and ``rec_z rec_r rec_g`` (from the layer's own
    events), per-neuron biases ``bias_*`` and ``rec_bias_*`` and ``threshold``::

        a = acc_in + bias;  h = acc_rec + rec_bias                  (per gate)
        u = sigmoid(a_z + h_z);  r = sigmoid(a_r + h_r);  g = tanh(a_g + r * h_g)
        c~ = u * c + (1 - u) * g
        event if c~ > threshold: payload = c~, c = c~ - threshold;  else payload = 0, c = c~
``float_readout``
    A linear readout: ``v = acc + bias``, kept as state for the host to read; sends nothing.
``float_layernorm``
    A LayerNorm over the whole population (its neurons must share one core): the input is a
    token's residual, ``payload = (x - mean) / sqrt(var + 1e-5) * weight + bias`` every update.
``rwkv_wkv``
    RWKV-4's WKV with its receptance gate, per channel (ports ``k v r``, and ``k_next v_next
    r_next``: the token shift's share of this token for the next one, kept as ``*_carry``)::

        k = acc_k + k_carry (v, r alike);  carries = acc_*_next
        wkv = (A e^(p-q) + v e^(u+k-q)) / (B e^(p-q) + e^(u+k-q)),  q = max(p, u + k)
        A, B, p = A e^(p+w-q') + v e^(k-q'), B e^(p+w-q') + e^(k-q'), q' = max(p + w, k)
        payload = sigmoid(r) * wkv
``relu_square``
    ``payload = relu(acc_in + carry)^2`` with ``carry = acc_in_next`` (token shift, as above).
``float_lif``
    spikingjelly's LIF with decay of the input (tau 2): ``V += (X - V) / 2``; a spike where
    ``V >= 1``, then ``V = 0``; ``X = acc`` (port ``in``), or with ports ``v``, ``r`` and
    ``r_next`` a gated input ``X = sigmoid(acc_r + carry_r) * acc_v`` (SpikeGPT's FFN).
``float_source``
    A host-driven float input: each step it sends every nonzero input value as it is.

Numpy on [..., ports, n] (one population, or a batch of them); the same code serves as kernel and
reference, so the two are the same arithmetic by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim.programs.kind import FLOAT, WORD_BYTES, NeuronKind, NeuronState, ParameterError, param_value
from neurosim.spec.validate import Spec

EGRU_PORTS = ("in_z", "in_r", "in_g", "rec_z", "rec_r", "rec_g")


# ---------------------------------------------------------------------------------------------
# kernels (also the references)


def sigmoid32(x: np.ndarray) -> np.ndarray:
    return FLOAT(1) / (FLOAT(1) + np.exp(-x))


def egru_step(acc, payload, c, threshold, bias, rec_bias):
    a = acc[..., :3, :] + bias
    h = acc[..., 3:, :] + rec_bias
    u = sigmoid32(a[..., 0, :] + h[..., 0, :])
    r = sigmoid32(a[..., 1, :] + h[..., 1, :])
    g = np.tanh(a[..., 2, :] + r * h[..., 2, :])
    c_tilde = u * c + (FLOAT(1) - u) * g
    event = c_tilde > threshold
    payload[...] = np.where(event, c_tilde, FLOAT(0))
    c[...] = np.where(event, c_tilde - threshold, c_tilde)
    acc[...] = 0
    return 0


def float_readout_step(acc, payload, v, bias):
    v[...] = acc[..., 0, :] + bias
    payload[...] = 0
    acc[...] = 0
    return 0


def float_layernorm_step(acc, payload, weight, bias):
    x = acc[..., 0, :]
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    payload[...] = (x - mean) / np.sqrt(var + FLOAT(1e-5)) * weight + bias
    acc[...] = 0
    return 0


def rwkv_wkv_step(acc, payload, num, den, top, k_carry, v_carry, r_carry, decay, first):
    k = acc[..., 0, :] + k_carry
    v = acc[..., 2, :] + v_carry
    r = acc[..., 4, :] + r_carry
    k_carry[...], v_carry[...], r_carry[...] = acc[..., 1, :], acc[..., 3, :], acc[..., 5, :]
    q = np.maximum(top, first + k)
    e1, e2 = np.exp(top - q), np.exp(first + k - q)
    wkv = (e1 * num + e2 * v) / (e1 * den + e2)
    q = np.maximum(top + decay, k)
    e1, e2 = np.exp(top + decay - q), np.exp(k - q)
    num[...], den[...], top[...] = e1 * num + e2 * v, e1 * den + e2, q
    payload[...] = sigmoid32(r) * wkv
    acc[...] = 0
    return 0


def relu_square_step(acc, payload, carry):
    x = acc[..., 0, :] + carry
    carry[...] = acc[..., 1, :]
    payload[...] = np.square(np.maximum(x, FLOAT(0)))
    acc[...] = 0
    return 0


def float_lif_step(acc, payload, v, carry):
    if acc.shape[-2] == 1:
        x = acc[..., 0, :]
    else:                                    # ports v, r, r_next: a gated input
        x = sigmoid32(acc[..., 1, :] + carry) * acc[..., 0, :]
        carry[...] = acc[..., 2, :]
    v[...] = v + (x - v) / FLOAT(2)
    spike = (v >= FLOAT(1)).astype(FLOAT)
    v[...] = v * (FLOAT(1) - spike)
    payload[...] = spike
    acc[...] = 0
    return 0


def float_source_step(acc, payload, values):
    payload[...] = values
    return 0


# ---------------------------------------------------------------------------------------------
# parameters, state layout


class EgruParams(Spec):
    threshold: float = 0.0
    bias_z: float = 0.0
    bias_r: float = 0.0
    bias_g: float = 0.0
    rec_bias_z: float = 0.0
    rec_bias_r: float = 0.0
    rec_bias_g: float = 0.0


class FloatReadoutParams(Spec):
    bias: float = 0.0


class FloatSourceParams(Spec):
    pass


class FloatLayerNormParams(Spec):
    weight: float = 1.0
    bias: float = 0.0


class RwkvWkvParams(Spec):
    decay: float = 0.0           # w' (negative): the log of the per-step decay
    first: float = 0.0           # u


class FloatLifParams(Spec):
    pass


def _float_per_neuron(raw: dict[str, Any], p: Spec, key: str, size: int) -> np.ndarray:
    array = np.broadcast_to(np.asarray(param_value(raw, p, key), dtype=FLOAT), (size,)).copy()
    if not np.all(np.isfinite(array)):
        raise ParameterError(key, "holds values that are not finite numbers")
    return array


def _float_state(size: int, **initial: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    init = {k: np.full(size, v, FLOAT) for k, v in initial.items()}
    return {k: a.copy() for k, a in init.items()}, init


def _build_egru(p: EgruParams, raw: dict[str, Any], size: int) -> NeuronState:
    bias = np.stack([_float_per_neuron(raw, p, f"bias_{g}", size) for g in "zrg"])
    rec_bias = np.stack([_float_per_neuron(raw, p, f"rec_bias_{g}", size) for g in "zrg"])
    state, initial = _float_state(size, c=0.0)
    return NeuronState(state, (_float_per_neuron(raw, p, "threshold", size), bias, rec_bias), initial)


def _build_float_readout(p: FloatReadoutParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _float_state(size, v=0.0)
    return NeuronState(state, (_float_per_neuron(raw, p, "bias", size),), initial)


def _build_float_layernorm(p: FloatLayerNormParams, raw: dict[str, Any], size: int) -> NeuronState:
    return NeuronState({}, (_float_per_neuron(raw, p, "weight", size), _float_per_neuron(raw, p, "bias", size)), {})


def _build_rwkv_wkv(p: RwkvWkvParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _float_state(size, num=0.0, den=0.0, top=-1e38, k_carry=0.0, v_carry=0.0, r_carry=0.0)
    return NeuronState(state, (_float_per_neuron(raw, p, "decay", size), _float_per_neuron(raw, p, "first", size)),
                       initial)


def _build_relu_square(p: FloatSourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _float_state(size, carry=0.0)
    return NeuronState(state, (), initial)


def _build_float_lif(p: FloatLifParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _float_state(size, v=0.0, carry=0.0)
    return NeuronState(state, (), initial)


def _build_float_source(p: FloatSourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _float_state(size, values=0.0)
    return NeuronState(state, (), initial)


FP32_KINDS: tuple[NeuronKind, ...] = (
    NeuronKind("egru", EgruParams, (1 + len(EGRU_PORTS) - 1) * WORD_BYTES, False, True, egru_step, egru_step,
               _build_egru, ("threshold", "bias_z", "bias_r", "bias_g", "rec_bias_z", "rec_bias_r", "rec_bias_g"),
               EGRU_PORTS, float_valued=True),
    NeuronKind("float_readout", FloatReadoutParams, WORD_BYTES, False, False, float_readout_step,
               float_readout_step, _build_float_readout, ("bias",), float_valued=True),
    NeuronKind("float_source", FloatSourceParams, 0, True, True, float_source_step, float_source_step,
               _build_float_source, float_valued=True),
    NeuronKind("float_layernorm", FloatLayerNormParams, 0, False, True, float_layernorm_step,
               float_layernorm_step, _build_float_layernorm, ("weight", "bias"), float_valued=True,
               whole_population=True),
    NeuronKind("rwkv_wkv", RwkvWkvParams, 8 * WORD_BYTES, False, True, rwkv_wkv_step, rwkv_wkv_step,
               _build_rwkv_wkv, ("decay", "first"), ("k", "k_next", "v", "v_next", "r", "r_next"),
               float_valued=True),
    NeuronKind("relu_square", FloatSourceParams, 2 * WORD_BYTES, False, True, relu_square_step, relu_square_step,
               _build_relu_square, (), ("in", "in_next"), float_valued=True),
    NeuronKind("float_lif", FloatLifParams, 2 * WORD_BYTES, False, False, float_lif_step, float_lif_step,
               _build_float_lif, float_valued=True),
    NeuronKind("float_gated_lif", FloatLifParams, 4 * WORD_BYTES, False, False, float_lif_step, float_lif_step,
               _build_float_lif, (), ("v", "r", "r_next"), float_valued=True),
)
