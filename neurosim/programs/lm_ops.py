"""Language-model operators on neurocores: gates, a gated recurrence, table-driven activations and
an RMSNorm's inverse root (the step's contract and the number formats: `neurosim.programs.kind`).

``gate_product``
    A two-port gate: the elementwise fixed-point product of its inputs ``a`` and ``b``, plus a
    per-neuron ``offset`` (0 unless given)::

        payload = clip(((act_a(acc_a) * act_b(acc_b)) >> frac_bits) + offset, payload_bits)
``gated_recurrence``
    A two-port recurrent gate as in a minimal GRU, h = f * h_prev + (1 - f) * c, with f a
    fixed-point fraction of 2^frac_bits on port ``f`` and the candidate on port ``c``::

        f = clip(acc_f, 0, 2^frac_bits)
        h = fix24((f * h + (2^frac_bits - f) * acc_c) >> frac_bits)
        payload = clip(h, payload_bits)

    A step with no input on either port is idle: h is kept and nothing is sent.
``lut_activation``
    A fixed-point function of a scaled input, for the nonlinearities of language models::

        x = clip32(acc) * mult >> shift                         (mult per neuron)
        y = x | max(x, 0) | sigmoid(x) | silu(x) | x * x >> in_frac    (function)
        payload = clip((y * gain >> out_frac) + offset, payload_bits)  (gain, offset per neuron)

    x has ``in_frac`` fractional bits, y ``out_frac``. sigmoid and silu read a table of
    2^in_frac entries per unit of x over [-8, 8), built once from float64 math and rounded
    to nearest; beyond it sigmoid is 0 or 1 and silu is 0 or x. An input of exactly 0 is an
    idle step and sends nothing, whatever the function's value at 0.
``rsqrt``
    The inverse root mean square of a sum of squares, as an RMSNorm's scale: with the sum S
    of ``count`` squares with ``in_frac`` fractional bits::

        r = floor(sqrt(floor(count * 2^(in_frac + 2 * out_frac) / (S + eps))))

    so that r / 2^out_frac = 1 / sqrt(S / 2^in_frac / count). An input of 0 is idle.

One neuron's step of the first three (`lut_scalar`, `product_scalar`, `recurrence_scalar` and
their numpy twins) is also a stage of the fused programs (`neurosim.programs.fused`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numba as nb
import numpy as np
from pydantic import Field

from neurosim.programs.fixed import STATE_MAX, fix24
from neurosim.programs.kind import (INPUT32_MAX, WORD_BYTES, Activation, NeuronKind, NeuronState, Overflow,
                                    ParameterError, PayloadBits, activate, clip_scalar, count_changed, fix24_scalar,
                                    function_table, int_state, max_payload, param_value, per_neuron_int)
from neurosim.programs.ops import CLIP, NONE, Ops, if_, memory, ops, total, used
from neurosim.spec.validate import Spec

FN_IDENTITY, FN_RELU, FN_SIGMOID, FN_SILU, FN_SQUARE = range(5)
FUNCTIONS = {"identity": FN_IDENTITY, "relu": FN_RELU, "sigmoid": FN_SIGMOID, "silu": FN_SILU, "square": FN_SQUARE}


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over flat state arrays


@nb.njit(cache=True, nogil=True, inline="always")
def _rescale(x, in_frac, out_frac):
    """x with ``in_frac`` fractional bits re-expressed with ``out_frac`` (toward minus infinity)."""
    return (x << (out_frac - in_frac)) if out_frac >= in_frac else (x >> (in_frac - out_frac))


@nb.njit(cache=True, nogil=True, inline="always")
def lut_scalar(a, mult, shift_bits, function, in_frac, out_frac, table, table_lo, gain, offset, payload_max):
    """``lut_activation`` of one input ``a``: (payload, overflows); an input of 0 sends 0."""
    if a == 0:
        return np.int64(0), 0
    a, o0 = clip_scalar(a, INPUT32_MAX)
    x = (a * mult) >> shift_bits
    if function == FN_IDENTITY:
        y = x
    elif function == FN_RELU:
        y = max(x, 0)
    elif function == FN_SQUARE:
        x, o1 = clip_scalar(x, INPUT32_MAX)
        o0 += o1
        y = (x * x) >> in_frac
    else:
        k = x - table_lo
        if k < 0:
            y = 0
        elif k >= table.shape[0]:
            y = (1 << out_frac) if function == FN_SIGMOID else _rescale(x, in_frac, out_frac)
        else:
            y = table[k]
    out, o2 = clip_scalar(((y * gain) >> out_frac) + offset, payload_max)
    return out, o0 + o2


@nb.njit(cache=True, nogil=True, inline="always")
def product_scalar(a, b, relu_a, relu_b, frac_bits, offset, payload_max):
    """``gate_product`` of one pair of inputs: (payload, overflows)."""
    a, o0 = clip_scalar(a, STATE_MAX)
    b, o1 = clip_scalar(b, STATE_MAX)
    out, o2 = clip_scalar(((activate(a, relu_a) * activate(b, relu_b)) >> frac_bits) + offset, payload_max)
    return out, o0 + o1 + o2


@nb.njit(cache=True, nogil=True, inline="always")
def recurrence_scalar(f, c, h, frac_bits, saturate, payload_max):
    """``gated_recurrence`` of one neuron: (its new h, payload, overflows); idle (h kept, 0 sent)
    when f and c are both 0."""
    if f == 0 and c == 0:
        return h, np.int64(0), 0
    one = 1 << frac_bits
    o = 0
    if f < 0:
        f, o = 0, 1
    elif f > one:
        f, o = one, 1
    c, o0 = clip_scalar(c, STATE_MAX)
    hh, o1 = fix24_scalar((f * h + (one - f) * c) >> frac_bits, saturate)
    out, o2 = clip_scalar(hh, payload_max)
    return hh, out, o + o0 + o1 + o2


@nb.njit(cache=True, nogil=True)
def gate_product_step(acc, payload, relu_a, relu_b, frac_bits, offset, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        out, o = product_scalar(acc[0, i], acc[1, i], relu_a, relu_b, frac_bits, offset[i], payload_max)
        acc[0, i] = 0
        acc[1, i] = 0
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def gated_recurrence_step(acc, payload, h, frac_bits, saturate, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        hh, out, o = recurrence_scalar(acc[0, i], acc[1, i], h[i], frac_bits, saturate, payload_max)
        acc[0, i] = 0
        acc[1, i] = 0
        h[i] = hh
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def lut_activation_step(acc, payload, mult, shift_bits, function, in_frac, out_frac, table, table_lo, gain, offset,
                        payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        out, o = lut_scalar(acc[0, i], mult[i], shift_bits, function, in_frac, out_frac, table, table_lo, gain[i],
                            offset[i], payload_max)
        acc[0, i] = 0
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True, inline="always")
def _isqrt(n):
    """floor(sqrt(n)) of a non-negative int64, exactly."""
    if n < 2:
        return n
    r = np.int64(np.sqrt(np.float64(n)))
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


@nb.njit(cache=True, nogil=True)
def rsqrt_step(acc, payload, numerator, eps, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        s = acc[0, i]
        acc[0, i] = 0
        if s == 0:
            payload[i] = 0
            continue
        if s < 0:
            s, overflow = 0, overflow + 1
        out, o = clip_scalar(_isqrt(numerator // (s + eps)), payload_max)
        payload[i] = out
        overflow += o
    return overflow


# ---------------------------------------------------------------------------------------------
# plain-numpy references of the same arithmetic; batched: state [..., n], acc [..., ports, n]


def lut_values(a_in, mult, shift_bits, function, in_frac, out_frac, table, table_lo, gain, offset, payload_max):
    """`lut_scalar` over arrays: (payloads, overflows)."""
    busy = a_in != 0
    a = np.clip(a_in, -INPUT32_MAX, INPUT32_MAX)
    x = np.right_shift(a * mult, shift_bits)
    overflow = count_changed(a[busy], a_in[busy])
    if function == FN_IDENTITY:
        y = x
    elif function == FN_RELU:
        y = np.maximum(x, 0)
    elif function == FN_SQUARE:
        xc = np.clip(x, -INPUT32_MAX, INPUT32_MAX)
        overflow += count_changed(xc[busy], x[busy])
        y = np.right_shift(xc * xc, in_frac)
    else:
        k = x - table_lo
        inside = table[np.clip(k, 0, len(table) - 1)]
        high = (1 << out_frac) if function == FN_SIGMOID else (
            np.left_shift(x, out_frac - in_frac) if out_frac >= in_frac else np.right_shift(x, in_frac - out_frac))
        y = np.where(k < 0, 0, np.where(k >= len(table), high, inside))
    raw = np.right_shift(y * gain, out_frac) + offset
    clipped = np.clip(raw, -payload_max, payload_max)
    return np.where(busy, clipped, 0), overflow + count_changed(clipped[busy], raw[busy])


def product_values(a_in, b_in, relu_a, relu_b, frac_bits, offset, payload_max):
    """`product_scalar` over arrays: (payloads, overflows)."""
    a, b = np.clip(a_in, -STATE_MAX, STATE_MAX), np.clip(b_in, -STATE_MAX, STATE_MAX)
    overflow = count_changed(a, a_in) + count_changed(b, b_in)
    if relu_a:
        a = np.maximum(a, 0)
    if relu_b:
        b = np.maximum(b, 0)
    x = np.right_shift(a * b, frac_bits) + offset
    clipped = np.clip(x, -payload_max, payload_max)
    return clipped, overflow + count_changed(clipped, x)


def recurrence_values(f_in, c_in, h, frac_bits, saturate, payload_max):
    """`recurrence_scalar` over arrays: (new h, payloads, overflows)."""
    one = 1 << frac_bits
    busy = (f_in != 0) | (c_in != 0)
    f = np.clip(f_in, 0, one)
    c = np.clip(c_in, -STATE_MAX, STATE_MAX)
    raw = np.right_shift(f * h + (one - f) * c, frac_bits)
    fixed = fix24(raw, saturate)
    clipped = np.clip(fixed, -payload_max, payload_max)
    overflow = (count_changed(f[busy], f_in[busy]) + count_changed(c[busy], c_in[busy])
                + count_changed(fixed[busy], raw[busy]) + count_changed(clipped[busy], fixed[busy]))
    return np.where(busy, fixed, h), np.where(busy, clipped, 0), overflow


def gate_product_reference(acc, payload, relu_a, relu_b, frac_bits, offset, payload_max):
    payload[...], overflow = product_values(acc[..., 0, :], acc[..., 1, :], relu_a, relu_b, frac_bits, offset,
                                            payload_max)
    acc[...] = 0
    return overflow


def gated_recurrence_reference(acc, payload, h, frac_bits, saturate, payload_max):
    h[...], payload[...], overflow = recurrence_values(acc[..., 0, :], acc[..., 1, :], h, frac_bits, saturate,
                                                       payload_max)
    acc[...] = 0
    return overflow


def lut_activation_reference(acc, payload, mult, shift_bits, function, in_frac, out_frac, table, table_lo, gain,
                             offset, payload_max):
    payload[...], overflow = lut_values(acc[..., 0, :], mult, shift_bits, function, in_frac, out_frac, table,
                                        table_lo, gain, offset, payload_max)
    acc[...] = 0
    return overflow


def rsqrt_reference(acc, payload, numerator, eps, payload_max):
    s_in = acc[..., 0, :].copy()
    busy = s_in != 0
    s = np.maximum(s_in, 0)
    q = numerator // (s + eps)
    r = np.floor(np.sqrt(q.astype(np.float64))).astype(np.int64)
    r -= (r * r > q)                                    # exact floor of the square root
    r += ((r + 1) * (r + 1) <= q)
    clipped = np.clip(r, -payload_max, payload_max)
    payload[...] = np.where(busy, clipped, 0)
    acc[...] = 0
    return count_changed(s[busy], s_in[busy]) + count_changed(clipped[busy], r[busy])


# ---------------------------------------------------------------------------------------------
# parameters, state layout, the two implementations


class GateProductParams(Spec):
    activation_a: Activation = "identity"
    activation_b: Activation = "identity"
    frac_bits: Annotated[int, Field(ge=0, le=23)] = 0
    offset: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    payload_bits: PayloadBits = 24


class GatedRecurrenceParams(Spec):
    frac_bits: Annotated[int, Field(ge=1, le=16)] = 8
    overflow: Overflow = "wrap"
    payload_bits: PayloadBits = 24


class LutActivationParams(Spec):
    mult: Annotated[int, Field(ge=-(1 << 23), le=1 << 23)] = 1
    shift: Annotated[int, Field(ge=0, le=62)] = 0
    function: Literal["identity", "relu", "sigmoid", "silu", "square"] = "identity"
    in_frac: Annotated[int, Field(ge=0, le=12)] = 0
    out_frac: Annotated[int, Field(ge=0, le=23)] = 0
    gain: Annotated[int, Field(ge=-(1 << 23), le=1 << 23)] | None = None     # default: 2^out_frac, i.e. 1
    offset: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    payload_bits: PayloadBits = 24


class RsqrtParams(Spec):
    count: Annotated[int, Field(ge=1, le=1 << 40)]
    in_frac: Annotated[int, Field(ge=0, le=30)] = 0
    out_frac: Annotated[int, Field(ge=0, le=23)] = 12
    eps: Annotated[int, Field(ge=1, le=1 << 40)] = 1
    payload_bits: PayloadBits = 24


def _build_gate_product(p: GateProductParams, raw: dict[str, Any], size: int) -> NeuronState:
    offset = per_neuron_int(param_value(raw, p, "offset"), size, -STATE_MAX, STATE_MAX, "offset")
    return NeuronState({}, (p.activation_a == "relu", p.activation_b == "relu", p.frac_bits, offset,
                            max_payload(p.payload_bits)), {})


def _build_gated_recurrence(p: GatedRecurrenceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = int_state(size, h=0)
    return NeuronState(state, (p.frac_bits, p.overflow == "saturate", max_payload(p.payload_bits)), initial)


def _build_lut_activation(p: LutActivationParams, raw: dict[str, Any], size: int) -> NeuronState:
    mult = per_neuron_int(param_value(raw, p, "mult"), size, -(1 << 23), 1 << 23, "mult")
    gain_value = raw.get("gain") if isinstance(raw.get("gain"), np.ndarray) else (
        p.gain if p.gain is not None else 1 << p.out_frac)
    gain = per_neuron_int(gain_value, size, -(1 << 23), 1 << 23, "gain")
    offset = per_neuron_int(param_value(raw, p, "offset"), size, -STATE_MAX, STATE_MAX, "offset")
    if p.function in ("sigmoid", "silu"):
        table, lo = function_table(p.function, p.in_frac, p.out_frac)
    else:
        table, lo = np.zeros(1, np.int64), 0
    return NeuronState({}, (mult, p.shift, FUNCTIONS[p.function], p.in_frac, p.out_frac, table, lo, gain, offset,
                            max_payload(p.payload_bits)), {})


def _build_rsqrt(p: RsqrtParams, raw: dict[str, Any], size: int) -> NeuronState:
    exponent = p.in_frac + 2 * p.out_frac
    if p.count.bit_length() + exponent > 62:
        raise ParameterError("out_frac", f"count x 2^(in_frac + 2 out_frac) = {p.count} x 2^{exponent} needs more "
                                         f"than 62 bits; expected fewer fractional bits")
    return NeuronState({}, (np.int64(p.count) << exponent, p.eps, max_payload(p.payload_bits)), {})


# ---------------------------------------------------------------------------------------------
# operations per update (`neurosim.programs.ops`); the stages' also make up the fused programs'


def lut_ops(function: str, mult: bool, shift: int, in_frac: int, out_frac: int, gain: bool, offset: bool,
            clip_input: bool = True) -> Ops:
    """A lut stage's arithmetic (no memory): the idle test, the input's clip (unless it is
    already in range), the scale, the function, gain, offset and the payload's clip."""
    function_ops = {"identity": NONE, "relu": ops(compare=1),
                    "square": total(CLIP, ops(multiply=1, shift=int(in_frac > 0))),
                    "sigmoid": ops(add=1, compare=2, lookup=1), "silu": ops(add=1, compare=2, lookup=1)}[function]
    return total(ops(compare=1), if_(clip_input, CLIP), ops(multiply=int(mult), shift=int(shift > 0)), function_ops,
                 ops(multiply=int(gain), shift=int(gain and out_frac > 0), add=int(offset)), CLIP)


def product_ops(relu_a: bool, relu_b: bool, frac_bits: int, offset: bool, clip_a: bool = True,
                clip_b: bool = True) -> Ops:
    """A gate product's arithmetic: its inputs' clips (unless in range), relus, the product,
    its shift, offset and the payload's clip."""
    return total(if_(clip_a, CLIP), if_(clip_b, CLIP),
                 ops(compare=int(relu_a) + int(relu_b), multiply=1, shift=int(frac_bits > 0), add=int(offset)), CLIP)


def recurrence_ops(saturate: bool, clip_c: bool = True) -> Ops:
    """A gated recurrence's arithmetic: the idle test, f's and c's clips, f h + (1 - f) c and its
    shift, saturation and the payload's clip."""
    return total(ops(compare=2), CLIP, if_(clip_c, CLIP), ops(add=2, multiply=2, shift=1), if_(saturate, CLIP), CLIP)


def _gate_product_ops(p: GateProductParams, raw: dict[str, Any]) -> Ops:
    return total(memory(2), product_ops(p.activation_a == "relu", p.activation_b == "relu", p.frac_bits,
                                        used(raw, p, "offset", 0)))


def _gated_recurrence_ops(p: GatedRecurrenceParams, raw: dict[str, Any]) -> Ops:
    return total(memory(2, state=1), recurrence_ops(p.overflow == "saturate"))


def lut_gain_used(p: Spec, raw: dict[str, Any], key: str = "gain") -> bool:
    """Whether a lut's gain takes a multiply: given per neuron, or other than its default 2^out_frac."""
    value = getattr(p, key)
    return isinstance(raw.get(key), np.ndarray) or (value is not None and value != 1 << p.out_frac)


def _lut_activation_ops(p: LutActivationParams, raw: dict[str, Any]) -> Ops:
    return total(memory(1), lut_ops(p.function, used(raw, p, "mult", 1), p.shift, p.in_frac, p.out_frac,
                                    lut_gain_used(p, raw), used(raw, p, "offset", 0)))


def _rsqrt_ops(p: RsqrtParams, raw: dict[str, Any]) -> Ops:
    """The quotient count 2^(...) / (S + eps) bit by bit, then its root bit by bit."""
    bits = (p.count << (p.in_frac + 2 * p.out_frac)).bit_length()
    return total(memory(1), ops(compare=2, add=1, divide_step=bits + (bits + 1) // 2), CLIP)


LM_KINDS: tuple[NeuronKind, ...] = (
    NeuronKind("gate_product", GateProductParams, WORD_BYTES, False, True, gate_product_step,
               gate_product_reference, _build_gate_product, ("offset",), ("a", "b"), ops=_gate_product_ops),
    NeuronKind("gated_recurrence", GatedRecurrenceParams, 2 * WORD_BYTES, False, True, gated_recurrence_step,
               gated_recurrence_reference, _build_gated_recurrence, (), ("f", "c"), ops=_gated_recurrence_ops),
    NeuronKind("lut_activation", LutActivationParams, WORD_BYTES, False, True, lut_activation_step,
               lut_activation_reference, _build_lut_activation, ("mult", "gain", "offset"), ops=_lut_activation_ops),
    NeuronKind("rsqrt", RsqrtParams, WORD_BYTES, False, True, rsqrt_step, rsqrt_reference, _build_rsqrt,
               ops=_rsqrt_ops),
)
