"""Graded-spike programs on neurocores: Loihi's sigma-delta neuron and an integer activation sent
every step (the step's contract and the number formats: `neurosim.programs.kind`).

``sigma_delta``
    Loihi's sigma-delta neuron with graded spikes (Lava's fixed-point model). The part of
    a change not sent (its residue) stays in ``act - act_prev`` and goes out with a later
    one::

        sigma = fix24(sigma + clip24(acc))
        act   = sigma + bias                 (relu: max(act, 0))
        delta = act - act_prev
        s     = delta >> state_exp  if |delta| >= vth  else 0
        p     = clip(s, payload_bits);  act_prev += p << state_exp;  payload = p
``graded_relu``
    An integer activation sent as a graded spike every step (relu or identity)::

        payload = clip((act(acc + bias)) >> shift, payload_bits)
"""

from __future__ import annotations

from typing import Annotated, Any

import numba as nb
import numpy as np
from pydantic import Field

from neurosim.programs.fixed import STATE_MAX, fix24
from neurosim.programs.kind import (WORD_BYTES, Activation, NeuronKind, NeuronState, Overflow, PayloadBits, activate,
                                    clip_scalar, count_changed, fix24_scalar, int_state, max_payload, param_value,
                                    per_neuron_int)
from neurosim.programs.ops import CLIP, Ops, if_, memory, ops, total, used
from neurosim.spec.validate import Spec


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over flat state arrays


@nb.njit(cache=True, nogil=True)
def sigma_delta_step(acc, payload, sigma, act_prev, vth, bias, relu, state_exp, saturate, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        a, o0 = clip_scalar(acc[0, i], STATE_MAX)
        acc[0, i] = 0
        s, o1 = fix24_scalar(sigma[i] + a, saturate)
        sigma[i] = s
        overflow += o0 + o1
        delta = activate(s + bias[i], relu) - act_prev[i]
        out = 0
        if abs(delta) >= vth[i]:
            out, o2 = clip_scalar(delta >> state_exp, payload_max)
            act_prev[i] += out << state_exp
            overflow += o2
        payload[i] = out
    return overflow


@nb.njit(cache=True, nogil=True)
def graded_relu_step(acc, payload, bias, relu, shift_bits, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        x = activate(acc[0, i] + bias[i], relu) >> shift_bits
        acc[0, i] = 0
        out, o = clip_scalar(x, payload_max)
        payload[i] = out
        overflow += o
    return overflow


# ---------------------------------------------------------------------------------------------
# plain-numpy references of the same arithmetic; batched: state [..., n], acc [..., ports, n]


def sigma_delta_reference(acc, payload, sigma, act_prev, vth, bias, relu, state_exp, saturate, payload_max):
    a_in = acc[..., 0, :].copy()
    a = np.clip(a_in, -STATE_MAX, STATE_MAX)
    s = sigma + a
    fixed = fix24(s, saturate)
    sigma[...] = fixed
    act = fixed + bias
    if relu:
        act = np.maximum(act, 0)
    delta = act - act_prev
    out = np.where(np.abs(delta) >= vth, np.right_shift(delta, state_exp), 0)
    clipped = np.clip(out, -payload_max, payload_max)
    act_prev += np.left_shift(clipped, state_exp)
    payload[...] = clipped
    acc[...] = 0
    return count_changed(a, a_in) + count_changed(fixed, s) + count_changed(clipped, out)


def graded_relu_reference(acc, payload, bias, relu, shift_bits, payload_max):
    x = acc[..., 0, :] + bias
    if relu:
        x = np.maximum(x, 0)
    x = np.right_shift(x, shift_bits)
    clipped = np.clip(x, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return count_changed(clipped, x)


# ---------------------------------------------------------------------------------------------
# parameters, state layout, the two implementations


class SigmaDeltaParams(Spec):
    vth: Annotated[int, Field(ge=0, le=STATE_MAX)]
    bias: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    activation: Activation = "relu"
    state_exp: Annotated[int, Field(ge=0, le=23)] = 0
    overflow: Overflow = "wrap"
    payload_bits: PayloadBits = 24


class GradedReluParams(Spec):
    bias: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    activation: Activation = "relu"
    shift: Annotated[int, Field(ge=0, le=23)] = 0
    payload_bits: PayloadBits = 24


def _build_sigma_delta(p: SigmaDeltaParams, raw: dict[str, Any], size: int) -> NeuronState:
    vth = per_neuron_int(param_value(raw, p, "vth"), size, 0, STATE_MAX, "vth")
    bias = per_neuron_int(param_value(raw, p, "bias"), size, -STATE_MAX, STATE_MAX, "bias")
    state, initial = int_state(size, sigma=0, act_prev=0)
    return NeuronState(state, (vth, bias, p.activation == "relu", p.state_exp, p.overflow == "saturate",
                               max_payload(p.payload_bits)), initial)


def _build_graded_relu(p: GradedReluParams, raw: dict[str, Any], size: int) -> NeuronState:
    bias = per_neuron_int(param_value(raw, p, "bias"), size, -STATE_MAX, STATE_MAX, "bias")
    return NeuronState({}, (bias, p.activation == "relu", p.shift, max_payload(p.payload_bits)), {})


def _sigma_delta_ops(p: SigmaDeltaParams, raw: dict[str, Any]) -> Ops:
    """The input's clip and sum, saturation, bias, relu, the change and its threshold (an
    absolute value and a compare), its shift and clip, and the sent part added back."""
    shifts = 2 * int(p.state_exp > 0)
    return total(memory(1, state=2), CLIP, ops(add=1), if_(p.overflow == "saturate", CLIP),
                 ops(add=2 + int(used(raw, p, "bias", 0)), compare=2 + int(p.activation == "relu"), shift=shifts),
                 CLIP)


def _graded_relu_ops(p: GradedReluParams, raw: dict[str, Any]) -> Ops:
    return total(memory(1), ops(add=int(used(raw, p, "bias", 0)), compare=int(p.activation == "relu"),
                                shift=int(p.shift > 0)), CLIP)


GRADED_KINDS: tuple[NeuronKind, ...] = (
    NeuronKind("sigma_delta", SigmaDeltaParams, 2 * WORD_BYTES, False, True, sigma_delta_step,
               sigma_delta_reference, _build_sigma_delta, ("vth", "bias"), ops=_sigma_delta_ops),
    NeuronKind("graded_relu", GradedReluParams, WORD_BYTES, False, True, graded_relu_step,
               graded_relu_reference, _build_graded_relu, ("bias",), ops=_graded_relu_ops),
)
