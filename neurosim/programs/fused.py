"""Fused language-model programs: several steps of a MatMul-free block in one neuron update, as a
Loihi 2 deployment writes them in microcode (`neurosim.zoo.matmulfree.lowering`, ``fused``). Each
runs the integer arithmetic of the chain of `neurosim.programs.lm_ops` programs it replaces, with
the same stage functions and the same clips between stages, so a fused graph sends what the
unfused one sends; its depth, neurons and operations are what differ. (The step's contract and
the number formats: `neurosim.programs.kind`.)

``scaled_product`` (ports ``x scale gate``)
    An input scaled per channel (`lut_activation` identity), times a broadcast scale (an RMSNorm's
    1 / rms, a `gate_product`) and, with ``gate_frac_bits``, times a gate (a second one)::

        v = clip(clip32(acc_x) * mult >> shift, inner_bits)            (0 for an input of 0)
        v = clip(v * clip24(acc_scale) >> frac_bits, inner_bits or value)
        v = clip(v * clip24(acc_gate) >> gate_frac_bits, value)         (with a gate)
``residual_add`` (ports ``sum res``)
    A ternary matrix's sum turned back into a value (`lut_activation` identity, ``frac``
    fractional bits in and out) added to the residual (`graded_relu` identity)::

        v = clip(acc_res + clip(clip32(acc_sum) * mult >> shift, inner_bits), value)

    With nothing on ``res`` it is the scaled sum alone.
``glu`` (ports ``gate up``)
    A GLU: SiLU of one half of a BitLinear's sums times the other half (two `lut_activation`,
    SiLU and identity, sharing ``mult`` and ``shift``, and a `gate_product`)::

        v = clip(clip(silu(acc_gate * mult >> shift), inner) * clip(acc_up * mult >> shift, inner)
                 >> frac_bits, value)
``mlgru`` (ports ``f i``; state ``h``)
    The MatMul-free LM's token mixer in one update: f a sigmoid of one sum with a per-channel
    gain and offset (lb + (1 - lb) sigmoid), c a SiLU of the other, the `gated_recurrence`
    h = f h + (1 - f) c (idle when f and c are both 0), and it sends SiLU(h)::

        f = lut_sigmoid(acc_f; mult_f, gain_f, offset_f);   c = lut_silu(acc_i; mult_i)
        h, p = gated_recurrence(f, c; frac_bits);           payload = lut_silu(p)

``value`` is ``payload_bits``, unless ``emit: square``: then the first three send, in place of
v (clipped to ``value_bits``), an RMSNorm's square of it (`lut_activation` square with
``square_mult`` per channel, ``square_shift`` and ``square_in_frac``) clipped to
``payload_bits``. Such a population sits beside the one that sends v, so that the norm's sum of
squares leaves in the step the values leave. Overflows are counted as the chain counts them,
once: a square population counts only its square's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numba as nb
import numpy as np
from pydantic import Field

from neurosim.programs.kind import (WORD_BYTES, NeuronKind, NeuronState, Overflow, PayloadBits, clip_scalar,
                                    count_changed, function_table, int_state, max_payload, param_value,
                                    per_neuron_int)
from neurosim.programs.lm_ops import (FN_IDENTITY, FN_SIGMOID, FN_SILU, FN_SQUARE, lut_gain_used, lut_ops, lut_scalar,
                                      lut_values, product_ops, product_scalar, product_values, recurrence_ops,
                                      recurrence_scalar, recurrence_values)
from neurosim.programs.ops import CLIP, NONE, Ops, if_, memory, ops, total, used
from neurosim.spec.validate import Spec

INNER_CLIPPED = 24      # a value held within 24 bits needs no clip before a gate product (its inputs' range)


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over flat state arrays. A stage that has no table is given any
# int64 array in its place (identity and square never read it).


@nb.njit(cache=True, nogil=True, inline="always")
def _emit(v, o, square, square_mult, square_shift, square_in_frac, payload_max, no_table):
    """v and its overflows, or with ``square`` its square and the square's overflows only."""
    if not square:
        return v, o
    return lut_scalar(v, square_mult, square_shift, FN_SQUARE, square_in_frac, 0, no_table, 0, 1, 0, payload_max)


@nb.njit(cache=True, nogil=True)
def scaled_product_step(acc, payload, mult, shift_bits, frac_bits, gate_frac, inner_max, value_max, square,
                        square_mult, square_shift, square_in_frac, payload_max):
    overflow = 0
    gated = gate_frac >= 0
    for i in range(payload.shape[0]):
        v, o = lut_scalar(acc[0, i], mult[i], shift_bits, FN_IDENTITY, 0, 0, mult, 0, 1, 0, inner_max)
        v, o1 = product_scalar(v, acc[1, i], False, False, frac_bits, 0, inner_max if gated else value_max)
        o += o1
        if gated:
            v, o1 = product_scalar(v, acc[2, i], False, False, gate_frac, 0, value_max)
            o += o1
        out, o = _emit(v, o, square, square_mult[i], square_shift, square_in_frac, payload_max, mult)
        acc[0, i] = 0
        acc[1, i] = 0
        acc[2, i] = 0
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def residual_add_step(acc, payload, mult, shift_bits, frac, inner_max, value_max, square, square_mult, square_shift,
                      square_in_frac, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        s, o = lut_scalar(acc[0, i], mult[i], shift_bits, FN_IDENTITY, frac, frac, mult, 0, 1 << frac, 0, inner_max)
        v, o1 = clip_scalar(acc[1, i] + s, value_max)
        out, o = _emit(v, o + o1, square, square_mult[i], square_shift, square_in_frac, payload_max, mult)
        acc[0, i] = 0
        acc[1, i] = 0
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def glu_step(acc, payload, mult, shift_bits, in_frac, out_frac, silu_table, table_lo, frac_bits, inner_max, value_max,
             square, square_mult, square_shift, square_in_frac, payload_max):
    overflow = 0
    one = 1 << out_frac
    for i in range(payload.shape[0]):
        g, o = lut_scalar(acc[0, i], mult[i], shift_bits, FN_SILU, in_frac, out_frac, silu_table, table_lo, one, 0,
                          inner_max)
        u, o1 = lut_scalar(acc[1, i], mult[i], shift_bits, FN_IDENTITY, in_frac, out_frac, silu_table, table_lo, one,
                           0, inner_max)
        v, o2 = product_scalar(g, u, False, False, frac_bits, 0, value_max)
        out, o = _emit(v, o + o1 + o2, square, square_mult[i], square_shift, square_in_frac, payload_max, mult)
        acc[0, i] = 0
        acc[1, i] = 0
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def mlgru_step(acc, payload, h, mult_f, mult_i, shift_bits, in_frac, out_frac, sigmoid_table, silu_table, table_lo,
               gain_f, offset_f, frac_bits, saturate, inner_max, payload_max):
    overflow = 0
    one = 1 << out_frac
    for i in range(payload.shape[0]):
        f, o0 = lut_scalar(acc[0, i], mult_f[i], shift_bits, FN_SIGMOID, in_frac, out_frac, sigmoid_table, table_lo,
                           gain_f[i], offset_f[i], inner_max)
        c, o1 = lut_scalar(acc[1, i], mult_i[i], shift_bits, FN_SILU, in_frac, out_frac, silu_table, table_lo, one, 0,
                           inner_max)
        hh, sent, o2 = recurrence_scalar(f, c, h[i], frac_bits, saturate, inner_max)
        out, o3 = lut_scalar(sent, 1, 0, FN_SILU, in_frac, out_frac, silu_table, table_lo, one, 0, payload_max)
        acc[0, i] = 0
        acc[1, i] = 0
        h[i] = hh
        payload[i] = out
        overflow += o0 + o1 + o2 + o3
    return overflow


# ---------------------------------------------------------------------------------------------
# plain-numpy references of the same arithmetic; batched: state [..., n], acc [..., ports, n]


def _emit_values(v, o, square, square_mult, square_shift, square_in_frac, payload_max):
    if not square:
        return v, o
    return lut_values(v, square_mult, square_shift, FN_SQUARE, square_in_frac, 0, None, 0, 1, 0, payload_max)


def scaled_product_reference(acc, payload, mult, shift_bits, frac_bits, gate_frac, inner_max, value_max, square,
                             square_mult, square_shift, square_in_frac, payload_max):
    gated = gate_frac >= 0
    v, o = lut_values(acc[..., 0, :], mult, shift_bits, FN_IDENTITY, 0, 0, None, 0, 1, 0, inner_max)
    v, o1 = product_values(v, acc[..., 1, :], False, False, frac_bits, 0, inner_max if gated else value_max)
    o += o1
    if gated:
        v, o1 = product_values(v, acc[..., 2, :], False, False, gate_frac, 0, value_max)
        o += o1
    payload[...], o = _emit_values(v, o, square, square_mult, square_shift, square_in_frac, payload_max)
    acc[...] = 0
    return o


def residual_add_reference(acc, payload, mult, shift_bits, frac, inner_max, value_max, square, square_mult,
                           square_shift, square_in_frac, payload_max):
    s, o = lut_values(acc[..., 0, :], mult, shift_bits, FN_IDENTITY, frac, frac, None, 0, 1 << frac, 0, inner_max)
    raw = acc[..., 1, :] + s
    v = np.clip(raw, -value_max, value_max)
    payload[...], o = _emit_values(v, o + count_changed(v, raw), square, square_mult, square_shift, square_in_frac,
                                   payload_max)
    acc[...] = 0
    return o


def glu_reference(acc, payload, mult, shift_bits, in_frac, out_frac, silu_table, table_lo, frac_bits, inner_max,
                  value_max, square, square_mult, square_shift, square_in_frac, payload_max):
    one = 1 << out_frac
    g, o = lut_values(acc[..., 0, :], mult, shift_bits, FN_SILU, in_frac, out_frac, silu_table, table_lo, one, 0,
                      inner_max)
    u, o1 = lut_values(acc[..., 1, :], mult, shift_bits, FN_IDENTITY, in_frac, out_frac, silu_table, table_lo, one, 0,
                       inner_max)
    v, o2 = product_values(g, u, False, False, frac_bits, 0, value_max)
    payload[...], o = _emit_values(v, o + o1 + o2, square, square_mult, square_shift, square_in_frac, payload_max)
    acc[...] = 0
    return o


def mlgru_reference(acc, payload, h, mult_f, mult_i, shift_bits, in_frac, out_frac, sigmoid_table, silu_table,
                    table_lo, gain_f, offset_f, frac_bits, saturate, inner_max, payload_max):
    one = 1 << out_frac
    f, o0 = lut_values(acc[..., 0, :], mult_f, shift_bits, FN_SIGMOID, in_frac, out_frac, sigmoid_table, table_lo,
                       gain_f, offset_f, inner_max)
    c, o1 = lut_values(acc[..., 1, :], mult_i, shift_bits, FN_SILU, in_frac, out_frac, silu_table, table_lo, one, 0,
                       inner_max)
    h[...], sent, o2 = recurrence_values(f, c, h, frac_bits, saturate, inner_max)
    payload[...], o3 = lut_values(sent, 1, 0, FN_SILU, in_frac, out_frac, silu_table, table_lo, one, 0, payload_max)
    acc[...] = 0
    return o0 + o1 + o2 + o3


# ---------------------------------------------------------------------------------------------
# parameters, state layout, operations, the two implementations


Mult = Annotated[int, Field(ge=-(1 << 23), le=1 << 23)]
Shift = Annotated[int, Field(ge=0, le=62)]
Frac = Annotated[int, Field(ge=0, le=23)]
InFrac = Annotated[int, Field(ge=0, le=12)]


class SquareParams(Spec):
    """What a fused population sends: its value, or an RMSNorm's square of it."""

    payload_bits: PayloadBits = 24
    emit: Literal["value", "square"] = "value"
    value_bits: PayloadBits = 24         # the value's clip before its square (emit: square)
    square_mult: Mult = 1
    square_shift: Shift = 0
    square_in_frac: InFrac = 0


class ScaledParams(SquareParams):
    """A sum scaled by ``mult >> shift`` as it enters, computed within ``inner_bits``."""

    mult: Mult = 1
    shift: Shift = 0
    inner_bits: PayloadBits = 24


class ScaledProductParams(ScaledParams):
    frac_bits: Frac = 0
    gate_frac_bits: Frac | None = None   # None: no gate


class ResidualAddParams(ScaledParams):
    frac: Frac = 0


class GluParams(ScaledParams):
    in_frac: InFrac = 0
    out_frac: Frac = 0
    frac_bits: Frac = 0


class MlgruParams(Spec):
    mult_f: Mult = 1
    mult_i: Mult = 1
    shift: Shift = 0
    in_frac: InFrac = 0
    out_frac: Frac = 0
    gain_f: Mult | None = None           # default: 2^out_frac, i.e. 1
    offset_f: Annotated[int, Field(ge=-(1 << 23) + 1, le=(1 << 23) - 1)] = 0
    frac_bits: Annotated[int, Field(ge=1, le=16)] = 8
    overflow: Overflow = "wrap"
    inner_bits: PayloadBits = 24
    payload_bits: PayloadBits = 24


def _mult(raw: dict[str, Any], p: Spec, key: str, size: int) -> np.ndarray:
    return per_neuron_int(param_value(raw, p, key), size, -(1 << 23), 1 << 23, key)


def _emitted(p: SquareParams, raw: dict[str, Any], size: int) -> tuple:
    """The value's clip, and the square's constants."""
    square = p.emit == "square"
    return (max_payload(p.value_bits if square else p.payload_bits), square, _mult(raw, p, "square_mult", size),
            p.square_shift, p.square_in_frac, max_payload(p.payload_bits))


def _build_scaled_product(p: ScaledProductParams, raw: dict[str, Any], size: int) -> NeuronState:
    gate = -1 if p.gate_frac_bits is None else p.gate_frac_bits
    return NeuronState({}, (_mult(raw, p, "mult", size), p.shift, p.frac_bits, gate, max_payload(p.inner_bits),
                            *_emitted(p, raw, size)), {})


def _build_residual_add(p: ResidualAddParams, raw: dict[str, Any], size: int) -> NeuronState:
    return NeuronState({}, (_mult(raw, p, "mult", size), p.shift, p.frac, max_payload(p.inner_bits),
                            *_emitted(p, raw, size)), {})


def _build_glu(p: GluParams, raw: dict[str, Any], size: int) -> NeuronState:
    table, lo = function_table("silu", p.in_frac, p.out_frac)
    return NeuronState({}, (_mult(raw, p, "mult", size), p.shift, p.in_frac, p.out_frac, table, lo, p.frac_bits,
                            max_payload(p.inner_bits), *_emitted(p, raw, size)), {})


def _build_mlgru(p: MlgruParams, raw: dict[str, Any], size: int) -> NeuronState:
    sigmoid, lo = function_table("sigmoid", p.in_frac, p.out_frac)
    silu, _ = function_table("silu", p.in_frac, p.out_frac)
    gain = raw.get("gain_f") if isinstance(raw.get("gain_f"), np.ndarray) else (
        p.gain_f if p.gain_f is not None else 1 << p.out_frac)
    offset = per_neuron_int(param_value(raw, p, "offset_f"), size, -(1 << 23) + 1, (1 << 23) - 1, "offset_f")
    state, initial = int_state(size, h=0)
    return NeuronState(state, (_mult(raw, p, "mult_f", size), _mult(raw, p, "mult_i", size), p.shift, p.in_frac,
                               p.out_frac, sigmoid, silu, lo, per_neuron_int(gain, size, -(1 << 23), 1 << 23, "gain_f"),
                               offset, p.frac_bits, p.overflow == "saturate", max_payload(p.inner_bits),
                               max_payload(p.payload_bits)), initial)


def _square_ops(p: SquareParams, raw: dict[str, Any]) -> Ops:
    """With emit square: the square's lut stage (the value is already within 32 bits)."""
    return if_(p.emit == "square", lut_ops("square", used(raw, p, "square_mult", 1), p.square_shift, p.square_in_frac,
                                           0, False, False, clip_input=False))


def _scaled_product_ops(p: ScaledProductParams, raw: dict[str, Any]) -> Ops:
    gated, wide = p.gate_frac_bits is not None, p.inner_bits > INNER_CLIPPED
    gate = product_ops(False, False, p.gate_frac_bits or 0, False, clip_a=wide) if gated else NONE
    return total(memory(3 if gated else 2), lut_ops("identity", used(raw, p, "mult", 1), p.shift, 0, 0, False, False),
                 product_ops(False, False, p.frac_bits, False, clip_a=wide), gate, _square_ops(p, raw))


def _residual_add_ops(p: ResidualAddParams, raw: dict[str, Any]) -> Ops:
    return total(memory(2), lut_ops("identity", used(raw, p, "mult", 1), p.shift, p.frac, p.frac, False, False),
                 ops(add=1), CLIP, _square_ops(p, raw))


def _glu_ops(p: GluParams, raw: dict[str, Any]) -> Ops:
    mult, wide = used(raw, p, "mult", 1), p.inner_bits > INNER_CLIPPED
    return total(memory(2), lut_ops("silu", mult, p.shift, p.in_frac, p.out_frac, False, False),
                 lut_ops("identity", mult, p.shift, p.in_frac, p.out_frac, False, False),
                 product_ops(False, False, p.frac_bits, False, clip_a=wide, clip_b=wide), _square_ops(p, raw))


def _mlgru_ops(p: MlgruParams, raw: dict[str, Any]) -> Ops:
    wide = p.inner_bits > INNER_CLIPPED
    return total(memory(2, state=1),
                 lut_ops("sigmoid", used(raw, p, "mult_f", 1), p.shift, p.in_frac, p.out_frac,
                         lut_gain_used(p, raw, "gain_f"), used(raw, p, "offset_f", 0)),
                 lut_ops("silu", used(raw, p, "mult_i", 1), p.shift, p.in_frac, p.out_frac, False, False),
                 recurrence_ops(p.overflow == "saturate", clip_c=wide),
                 lut_ops("silu", False, 0, p.in_frac, p.out_frac, False, False, clip_input=False))


FUSED_KINDS: tuple[NeuronKind, ...] = (
    NeuronKind("scaled_product", ScaledProductParams, 2 * WORD_BYTES, False, True, scaled_product_step,
               scaled_product_reference, _build_scaled_product, ("mult", "square_mult"), ("x", "scale", "gate"),
               ops=_scaled_product_ops),
    NeuronKind("residual_add", ResidualAddParams, WORD_BYTES, False, True, residual_add_step, residual_add_reference,
               _build_residual_add, ("mult", "square_mult"), ("sum", "res"), ops=_residual_add_ops),
    NeuronKind("glu", GluParams, WORD_BYTES, False, True, glu_step, glu_reference, _build_glu,
               ("mult", "square_mult"), ("gate", "up"), ops=_glu_ops),
    NeuronKind("mlgru", MlgruParams, 2 * WORD_BYTES, False, True, mlgru_step, mlgru_reference, _build_mlgru,
               ("mult_f", "mult_i", "gain_f", "offset_f"), ("f", "i"), ops=_mlgru_ops),
)
