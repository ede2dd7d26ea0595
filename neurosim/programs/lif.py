"""LIF programs on neurocores: Loihi's bit-accurate LIF and Loihi 2's CUBA LIF (the step's
contract and the number formats: `neurosim.programs.kind`).

``loihi_lif``
    Loihi's bit-accurate current-based LIF (Lava's fixed-point model)::

        a    = clip(acc, -2^15, 2^15 - 1)                   (16-bit synaptic input)
        u    = (u * (4096 - du - 1)) / 4096 + (a << 6)      (division rounds toward 0)
        u    wraps once to 24 bits
        v    = clip((v * (4096 - dv)) / 4096 + u + (bias_mant << bias_exp), +-(2^23 - 1))
        spike if v > vth << 6; then v = 0 (reset: zero) or v -= vth << 6 (reset: subtract)

    ``vth: null`` makes a non-spiking integrator (a readout layer).
``cuba_lif``
    The CUBA LIF neuron program of Loihi 2 (lava-dl's CUBA neuron): the decays carry no
    offset, the state overflows as ``overflow`` says, a spike starts a refractory period
    of ``refractory`` steps in which v stays at 0, and with ``graded: true`` a spike
    carries the voltage (v >> 6, at least 1) as its payload::

        u = fix24(u * (4096 - du) / 4096 + clip16(acc) << 6)
        v = fix24(v * (4096 - dv) / 4096 + u + bias)        (unless refractory)
        spike if v > vth << 6; then reset as loihi_lif, and count `refractory` steps
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numba as nb
import numpy as np
from pydantic import Field

from neurosim.programs.fixed import ACT_SHIFT, INPUT16_MAX, INPUT16_MIN, STATE_MAX, decay, fix24, shift, wrap24
from neurosim.programs.kind import (WORD_BYTES, NeuronKind, NeuronState, Overflow, PayloadBits, clip_scalar,
                                    count_changed, fix24_scalar, int_state, max_payload, param_value, per_neuron_int)
from neurosim.programs.ops import CLIP, Ops, if_, memory, ops, total, used
from neurosim.spec.validate import Spec


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over flat state arrays


@nb.njit(cache=True, nogil=True, inline="always")
def _lava_wrap(x):
    """Lava's model of a 24-bit overflow: one wrap (2^23 itself stays); and 1 if changed."""
    if x > (1 << 23):
        return x - (1 << 24), 1
    if x <= -(1 << 23):
        return x + (1 << 24), 1
    return x, 0


@nb.njit(cache=True, nogil=True, inline="always")
def _decay(x, factor):
    """x * factor / 4096 rounded toward zero."""
    p = x * factor
    return (p >> 12) if p >= 0 else -((-p) >> 12)


@nb.njit(cache=True, nogil=True)
def lif_step(acc, payload, u, v, du, dv, vth6, bias, reset_subtract):
    overflow = 0
    for i in range(payload.shape[0]):
        a = acc[0, i]
        acc[0, i] = 0
        if a > INPUT16_MAX:
            a = INPUT16_MAX
            overflow += 1
        elif a < INPUT16_MIN:
            a = INPUT16_MIN
            overflow += 1
        uu, o1 = _lava_wrap(_decay(u[i], 4096 - (du[i] + 1)) + (a << ACT_SHIFT))
        vv, o2 = clip_scalar(_decay(v[i], 4096 - dv[i]) + uu + bias[i], STATE_MAX)
        overflow += o1 + o2
        if vth6[i] >= 0 and vv > vth6[i]:
            payload[i] = 1
            vv = vv - vth6[i] if reset_subtract else 0
        else:
            payload[i] = 0
        u[i] = uu
        v[i] = vv
    return overflow


@nb.njit(cache=True, nogil=True)
def cuba_lif_step(acc, payload, u, v, refractory_left, du, dv, vth6, bias, reset_subtract, refractory, graded,
                  saturate, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        a = acc[0, i]
        acc[0, i] = 0
        o0 = 0
        if a > INPUT16_MAX:
            a, o0 = INPUT16_MAX, 1
        elif a < INPUT16_MIN:
            a, o0 = INPUT16_MIN, 1
        uu, o1 = fix24_scalar(_decay(u[i], 4096 - du[i]) + (a << ACT_SHIFT), saturate)
        u[i] = uu
        overflow += o0 + o1
        payload[i] = 0
        if refractory_left[i] > 0:
            refractory_left[i] -= 1
            v[i] = 0
            continue
        vv, o2 = fix24_scalar(_decay(v[i], 4096 - dv[i]) + uu + bias[i], saturate)
        overflow += o2
        if vth6[i] >= 0 and vv > vth6[i]:
            if graded:
                out, o3 = clip_scalar(max(vv >> ACT_SHIFT, 1), payload_max)
                payload[i] = out
                overflow += o3
            else:
                payload[i] = 1
            vv = vv - vth6[i] if reset_subtract else 0
            refractory_left[i] = refractory
        v[i] = vv
    return overflow


# ---------------------------------------------------------------------------------------------
# plain-numpy references of the same arithmetic; batched: state [..., n], acc [..., ports, n]


def lif_reference(acc, payload, u, v, du, dv, vth6, bias, reset_subtract):
    a_in = acc[..., 0, :]
    a = np.clip(a_in, INPUT16_MIN, INPUT16_MAX)
    uu = decay(u, 4096 - (du + 1)) + np.left_shift(a, ACT_SHIFT)
    wrapped = wrap24(uu)
    vv = decay(v, 4096 - dv) + wrapped + bias
    clipped = np.clip(vv, -STATE_MAX, STATE_MAX)
    overflow = count_changed(a, a_in) + count_changed(wrapped, uu) + count_changed(clipped, vv)
    spikes = (vth6 >= 0) & (clipped > vth6)
    reset = clipped - vth6 if reset_subtract else np.zeros_like(clipped)
    u[...] = wrapped
    v[...] = np.where(spikes, reset, clipped)
    payload[...] = spikes
    acc[...] = 0
    return overflow


def cuba_lif_reference(acc, payload, u, v, refractory_left, du, dv, vth6, bias, reset_subtract, refractory, graded,
                       saturate, payload_max):
    a_in = acc[..., 0, :]
    a = np.clip(a_in, INPUT16_MIN, INPUT16_MAX)
    u_raw = decay(u, 4096 - du) + np.left_shift(a, ACT_SHIFT)
    u_new = fix24(u_raw, saturate)
    active = refractory_left == 0
    v_raw = decay(v, 4096 - dv) + u_new + bias
    v_new = fix24(v_raw, saturate)
    spikes = active & (vth6 >= 0) & (v_new > vth6)
    voltage = np.maximum(np.right_shift(v_new, ACT_SHIFT), 1)
    value = np.clip(voltage, -payload_max, payload_max)
    overflow = (count_changed(a, a_in) + count_changed(u_new, u_raw) + count_changed(v_new[active], v_raw[active])
                + (count_changed(value[spikes], voltage[spikes]) if graded else 0))
    reset = v_new - vth6 if reset_subtract else np.zeros_like(v_new)
    u[...] = u_new
    v[...] = np.where(active, np.where(spikes, reset, v_new), 0)
    refractory_left[...] = np.where(active, np.where(spikes, refractory, 0), refractory_left - 1)
    payload[...] = np.where(spikes, value if graded else 1, 0)
    acc[...] = 0
    return overflow


# ---------------------------------------------------------------------------------------------
# parameters, state layout, the two implementations


class LifParams(Spec):
    du: Annotated[int, Field(ge=0, le=4095)] = 4095
    dv: Annotated[int, Field(ge=0, le=4095)] = 0
    vth: Annotated[int, Field(ge=0, le=131071)] | None
    bias_mant: Annotated[int, Field(ge=-4095, le=4095)] = 0
    bias_exp: Annotated[int, Field(ge=-7, le=7)] = 0
    v_init: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    reset: Literal["zero", "subtract"] = "zero"


class CubaLifParams(Spec):
    du: Annotated[int, Field(ge=0, le=4096)] = 4096
    dv: Annotated[int, Field(ge=0, le=4096)] = 0
    vth: Annotated[int, Field(ge=0, le=131071)] | None
    bias: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    v_init: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    reset: Literal["zero", "subtract"] = "zero"
    refractory: Annotated[int, Field(ge=0, le=255)] = 0
    graded: bool = False
    overflow: Overflow = "wrap"
    payload_bits: PayloadBits = 24


def _lif_active(acc: np.ndarray, ns: NeuronState) -> np.ndarray:
    """A LIF neuron is active with input, a nonzero voltage or a bias (its current only
    carries the input, so it does not count apart)."""
    bias = ns.consts[3]
    return (acc != 0).any(axis=0) | (ns.state["v"] != 0) | (bias != 0) | (ns.state.get("refractory_left", 0) != 0)


def _vth6(p: Spec, raw: dict[str, Any], size: int) -> np.ndarray:
    if p.vth is None:
        return np.full(size, -1, np.int64)
    return np.left_shift(per_neuron_int(param_value(raw, p, "vth"), size, 0, 131071, "vth"), ACT_SHIFT)


def _build_lif(p: LifParams, raw: dict[str, Any], size: int) -> NeuronState:
    du = per_neuron_int(param_value(raw, p, "du"), size, 0, 4095, "du")
    dv = per_neuron_int(param_value(raw, p, "dv"), size, 0, 4095, "dv")
    mant = per_neuron_int(param_value(raw, p, "bias_mant"), size, -4095, 4095, "bias_mant")
    bias = shift(mant, p.bias_exp).astype(np.int64)
    state, initial = int_state(size, u=0, v=p.v_init)
    return NeuronState(state, (du, dv, _vth6(p, raw, size), bias, p.reset == "subtract"), initial)


def _build_cuba_lif(p: CubaLifParams, raw: dict[str, Any], size: int) -> NeuronState:
    du = per_neuron_int(param_value(raw, p, "du"), size, 0, 4096, "du")
    dv = per_neuron_int(param_value(raw, p, "dv"), size, 0, 4096, "dv")
    bias = per_neuron_int(param_value(raw, p, "bias"), size, -STATE_MAX, STATE_MAX, "bias")
    state, initial = int_state(size, u=0, v=p.v_init, refractory_left=0)
    return NeuronState(state, (du, dv, _vth6(p, raw, size), bias, p.reset == "subtract", p.refractory, p.graded,
                               p.overflow == "saturate", max_payload(p.payload_bits)), initial)


def _lif_ops(p: LifParams, raw: dict[str, Any]) -> Ops:
    """Lava's bit-accurate LIF is one program whatever its parameters (Loihi's compartment): the
    input's clip, two decays (multiply, shift), the input's shift, three adds and the reset's,
    v's clip and the threshold."""
    return total(memory(1, state=2), CLIP, ops(multiply=2, shift=3, add=4, compare=1), CLIP)


def _cuba_lif_ops(p: CubaLifParams, raw: dict[str, Any]) -> Ops:
    """Loihi 2's CUBA LIF has the steps its parameters need: a decay unless it keeps nothing
    (du = 4096) or everything (dv = 0), the bias if any, saturation, the refractory counter, the
    threshold and reset of a spiking neuron, a graded spike's payload."""
    decay_u, decay_v = used(raw, p, "du", 4096), used(raw, p, "dv", 0)
    saturate, refractory, spiking = p.overflow == "saturate", p.refractory > 0, p.vth is not None
    return total(memory(1, state=2 + int(refractory)), CLIP,
                 ops(multiply=int(decay_u), shift=1 + int(decay_u), add=int(decay_u)), if_(saturate, CLIP),
                 if_(refractory, ops(compare=1, add=1)),
                 ops(multiply=int(decay_v), shift=int(decay_v), add=1 + int(used(raw, p, "bias", 0))),
                 if_(saturate, CLIP), if_(spiking, ops(compare=1, add=int(p.reset == "subtract"))),
                 if_(spiking and p.graded, total(ops(shift=1, compare=1), CLIP)))


LIF_KINDS: tuple[NeuronKind, ...] = (
    NeuronKind("loihi_lif", LifParams, 2 * WORD_BYTES, False, False, lif_step, lif_reference, _build_lif,
               ("du", "dv", "bias_mant", "vth"), active=_lif_active, ops=_lif_ops),
    NeuronKind("cuba_lif", CubaLifParams, 3 * WORD_BYTES, False, True, cuba_lif_step, cuba_lif_reference,
               _build_cuba_lif, ("du", "dv", "bias", "vth"), active=_lif_active, ops=_cuba_lif_ops),
)
