"""SpikeGPT's fixed-point programs: WKV, squared ReLU, LIF and gated LIF, and the EXP tables (the
step's contract and the number formats: `neurosim.programs.kind`).

Fixed-point programs with a token shift (SpikeGPT on neurocores, `neurosim.zoo.spikegpt.fixed_lowering`).
They run only in the steps that bring their population a token (a pipeline's layers are held
between tokens, `neurosim.engine.engine.Engine.step`), so a step with no input on a port is still
a token. Each has a ``*_next`` port: the previous layer's share of this token for the next one,
kept as ``carry`` (the token shift ``x mu + x' (1 - mu)`` as two projections of one matrix); a
per-neuron ``mult`` with a common ``shift`` rescales a sum of 8-bit weights (its row's scale). ``SIG``
reads a sigmoid table over [-8, 8) at 2^-8 steps with 12 fractional bits; ``EXP`` is e^x for x <= 0
(12 fractional bits in, 16 out) as the product of two 256-entry tables (e^-(hi 256 + lo) / 4096)::

    in(port) = clip32(acc_port + carry_port) * mult_port >> shift;   carry_port = acc_port_next

``wkv_fixed``
    RWKV-4's WKV and its receptance gate in fixed point (ports ``k k_next v v_next r r_next``;
    k, v, ``first`` u, ``decay`` w and the running maximum p with 12 fractional bits, r with 8;
    A with 28 and B with 16, 48-bit state saturating at +-(2^47 - 1))::

        q = max(p, u + k);  wkv = ((EXP(p-q) A >> 16) + EXP(u+k-q) v) // ((EXP(p-q) B >> 16) + EXP(u+k-q))
        q' = max(p + w, k);  A = (EXP(p+w-q') A >> 16) + EXP(k-q') v;  B = (EXP(p+w-q') B >> 16) + EXP(k-q');  p = q'
        payload = clip(SIG(r) wkv >> 12, payload_bits)
``relu_square_fixed``
    ``payload = clip(max(in, 0)^2 >> (2 in_frac - out_frac), payload_bits)`` (ports ``in in_next``).
``lif_fixed``
    spikingjelly's LIF (tau 2, threshold 1, hard reset) with ``frac_bits`` fractional bits: ``x =
    in`` (port ``in``, no carry); ``V = fix24((V + x) >> 1)``; a spike where ``V >= 2^frac_bits``,
    then ``V = 0``.
``gated_lif_fixed``
    The same with a gated input (SpikeGPT's FFN; ports ``v r r_next``): ``x = clip24(v) SIG(r) >> 12``.

Numpy on [..., ports, n], one code for kernel and reference (as the float programs of
`neurosim.programs.fp32`).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import Field

from neurosim.programs.fixed import STATE_MAX
from neurosim.programs.kind import (INPUT32_MAX, WORD_BYTES, NeuronKind, NeuronState, ParameterError, PayloadBits,
                                    count_changed, function_table, int_state, max_payload, param_value,
                                    per_neuron_int)
from neurosim.programs.ops import CLIP, Ops, memory, ops, total
from neurosim.spec.validate import Spec

EXP_IN_FRAC, EXP_OUT_FRAC = 12, 16      # wkv_fixed: EXP's input and output fractional bits
GATE_IN_FRAC, GATE_FRAC = 8, 12         # SIG's input and output fractional bits
WKV_STATE_MAX = (1 << 47) - 1           # A and B: two 24-bit state words


# ---------------------------------------------------------------------------------------------
# kernels (also the references); they update only in the steps that bring a token


def exp_tables() -> tuple[np.ndarray, np.ndarray]:
    """EXP's two tables: e^-(256 j / 2^12) and e^-(j / 2^12), j < 256, with 16 fractional bits."""
    j = np.arange(256, dtype=np.float64)
    def table(step: float) -> np.ndarray:
        return np.floor(np.exp(-j * step / (1 << EXP_IN_FRAC)) * (1 << EXP_OUT_FRAC) + 0.5).astype(np.int64)
    return table(256.0), table(1.0)


def exp_fixed(x: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """EXP(x) for x <= 0 (12 fractional bits in, 16 out); 0 below -16."""
    j = -x
    jc = np.clip(j, 0, (1 << 16) - 1)
    return np.where(j < (1 << 16), np.right_shift(hi[jc >> 8] * lo[jc & 255], EXP_OUT_FRAC), 0)


def _gate(r: np.ndarray, table: np.ndarray, table_lo: int) -> np.ndarray:
    """SIG(r): r with 8 fractional bits, the sigmoid with 12; 0 and 1 beyond the table."""
    k = r - table_lo
    inside = table[np.clip(k, 0, len(table) - 1)]
    return np.where(k < 0, 0, np.where(k >= len(table), 1 << GATE_FRAC, inside))


def _shifted_in(acc: np.ndarray, carry: np.ndarray, mult: np.ndarray, shift_bits: int) -> tuple[np.ndarray, int]:
    """A token-shifted input: clip32(acc + carry) * mult >> shift, clipped to 24 bits; and its overflows."""
    total = acc + carry
    a = np.clip(total, -INPUT32_MAX, INPUT32_MAX)
    x = np.right_shift(a * mult, shift_bits)
    xc = np.clip(x, -STATE_MAX, STATE_MAX)
    return xc, count_changed(a, total) + count_changed(xc, x)


def wkv_fixed_step(acc, payload, num, den, top, k_carry, v_carry, r_carry, mult_k, mult_v, mult_r, decay, first,
                   shift_bits, exp_hi, exp_lo, table, table_lo, payload_max):
    k, o_k = _shifted_in(acc[..., 0, :], k_carry, mult_k, shift_bits)
    v, o_v = _shifted_in(acc[..., 2, :], v_carry, mult_v, shift_bits)
    r, o_r = _shifted_in(acc[..., 4, :], r_carry, mult_r, shift_bits)
    k_carry[...], v_carry[...], r_carry[...] = acc[..., 1, :], acc[..., 3, :], acc[..., 5, :]
    uk = first + k
    q = np.maximum(top, uk)
    e1, e2 = exp_fixed(top - q, exp_hi, exp_lo), exp_fixed(uk - q, exp_hi, exp_lo)
    numerator = np.right_shift(e1 * num, EXP_OUT_FRAC) + e2 * v
    denominator = np.maximum(np.right_shift(e1 * den, EXP_OUT_FRAC) + e2, 1)
    wkv = numerator // denominator
    q = np.maximum(top + decay, k)
    e1, e2 = exp_fixed(top + decay - q, exp_hi, exp_lo), exp_fixed(k - q, exp_hi, exp_lo)
    num_raw = np.right_shift(e1 * num, EXP_OUT_FRAC) + e2 * v
    den_raw = np.right_shift(e1 * den, EXP_OUT_FRAC) + e2
    num[...] = np.clip(num_raw, -WKV_STATE_MAX, WKV_STATE_MAX)
    den[...] = np.clip(den_raw, 0, WKV_STATE_MAX)
    top[...] = q
    wkv_c = np.clip(wkv, -STATE_MAX, STATE_MAX)
    out = np.right_shift(_gate(r, table, table_lo) * wkv_c, GATE_FRAC)
    clipped = np.clip(out, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return (o_k + o_v + o_r + count_changed(num, num_raw) + count_changed(den, den_raw) + count_changed(wkv_c, wkv)
            + count_changed(clipped, out))


def relu_square_fixed_step(acc, payload, carry, mult, shift_bits, in_frac, out_frac, payload_max):
    x, overflow = _shifted_in(acc[..., 0, :], carry, mult, shift_bits)
    carry[...] = acc[..., 1, :]
    y = np.right_shift(np.square(np.maximum(x, 0)), 2 * in_frac - out_frac)
    clipped = np.clip(y, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return overflow + count_changed(clipped, y)


def _lif_fixed(payload, v, x, frac_bits) -> int:
    raw = np.right_shift(v + x, 1)
    vv = np.clip(raw, -STATE_MAX, STATE_MAX)
    spike = vv >= (1 << frac_bits)
    payload[...] = spike
    v[...] = np.where(spike, 0, vv)
    return count_changed(vv, raw)


def lif_fixed_step(acc, payload, v, mult, shift_bits, frac_bits):
    x, overflow = _shifted_in(acc[..., 0, :], 0, mult, shift_bits)
    acc[...] = 0
    return overflow + _lif_fixed(payload, v, x, frac_bits)


def gated_lif_fixed_step(acc, payload, v, carry, mult, mult_r, shift_bits, frac_bits, table, table_lo):
    x, o_v = _shifted_in(acc[..., 0, :], 0, mult, shift_bits)
    r, o_r = _shifted_in(acc[..., 1, :], carry, mult_r, shift_bits)
    carry[...] = acc[..., 2, :]
    acc[...] = 0
    return o_v + o_r + _lif_fixed(payload, v, np.right_shift(x * _gate(r, table, table_lo), GATE_FRAC), frac_bits)


# ---------------------------------------------------------------------------------------------
# parameters, state layout


Mult = Annotated[int, Field(ge=-(1 << 23), le=1 << 23)]
Shift = Annotated[int, Field(ge=0, le=40)]
FixedFrac = Annotated[int, Field(ge=0, le=16)]


class WkvFixedParams(Spec):
    mult_k: Mult = 1
    mult_v: Mult = 1
    mult_r: Mult = 1
    shift: Shift = 0
    decay: Annotated[int, Field(ge=-STATE_MAX, le=0)] = 0       # w, 12 fractional bits
    first: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0   # u, 12 fractional bits
    payload_bits: PayloadBits = 24


class ReluSquareFixedParams(Spec):
    mult: Mult = 1
    shift: Shift = 0
    in_frac: FixedFrac = 12
    out_frac: FixedFrac = 8
    payload_bits: PayloadBits = 24


class LifFixedParams(Spec):
    mult: Mult = 1
    shift: Shift = 0
    frac_bits: FixedFrac = 12


class GatedLifFixedParams(LifFixedParams):
    mult_r: Mult = 1


def _mults(raw: dict[str, Any], p: Spec, keys: tuple[str, ...], size: int) -> tuple[np.ndarray, ...]:
    return tuple(per_neuron_int(param_value(raw, p, key), size, -(1 << 23), 1 << 23, key) for key in keys)


def _build_wkv_fixed(p: WkvFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    mult_k, mult_v, mult_r = _mults(raw, p, ("mult_k", "mult_v", "mult_r"), size)
    decay = per_neuron_int(param_value(raw, p, "decay"), size, -STATE_MAX, 0, "decay")
    first = per_neuron_int(param_value(raw, p, "first"), size, -STATE_MAX, STATE_MAX, "first")
    table, lo = function_table("sigmoid", GATE_IN_FRAC, GATE_FRAC)
    state, initial = int_state(size, num=0, den=0, top=-STATE_MAX, k_carry=0, v_carry=0, r_carry=0)
    return NeuronState(state, (mult_k, mult_v, mult_r, decay, first, p.shift, *exp_tables(), table, lo,
                               max_payload(p.payload_bits)), initial)


def _build_relu_square_fixed(p: ReluSquareFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    if 2 * p.in_frac < p.out_frac:
        raise ParameterError("out_frac", f"a square has {2 * p.in_frac} fractional bits; expected out_frac "
                                         f"at most that, found {p.out_frac}")
    state, initial = int_state(size, carry=0)
    return NeuronState(state, (*_mults(raw, p, ("mult",), size), p.shift, p.in_frac, p.out_frac,
                               max_payload(p.payload_bits)), initial)


def _build_lif_fixed(p: LifFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = int_state(size, v=0)
    return NeuronState(state, (*_mults(raw, p, ("mult",), size), p.shift, p.frac_bits), initial)


def _build_gated_lif_fixed(p: GatedLifFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    table, lo = function_table("sigmoid", GATE_IN_FRAC, GATE_FRAC)
    state, initial = int_state(size, v=0, carry=0)
    return NeuronState(state, (*_mults(raw, p, ("mult", "mult_r"), size), p.shift, p.frac_bits, table, lo),
                       initial)


# ---------------------------------------------------------------------------------------------
# operations per update (`neurosim.programs.ops`)


def _shifted_ops(carry: bool) -> Ops:
    """A token-shifted input: the carry added, clipped to 32 bits, scaled, clipped to 24."""
    return total(ops(add=int(carry), multiply=1, shift=1), CLIP, CLIP)


EXP_OPS = total(ops(add=1, compare=1, shift=3, lookup=2, multiply=1), CLIP)   # -x, range, split, two tables
SIG_OPS = ops(add=1, compare=2, lookup=1)
LIF_FIXED_OPS = total(ops(add=1, shift=1, compare=1), CLIP)                  # (V + x) >> 1, clip, threshold


def _wkv_fixed_ops(p: WkvFixedParams, raw: dict[str, Any]) -> Ops:
    """Three token-shifted inputs; the output's two maxima, four exponentials, numerator and
    denominator and a division to a 24-bit quotient (larger ones saturate); the state's update;
    clips; the receptance's gate."""
    return total(memory(6, state=6), *[_shifted_ops(True)] * 3, *[EXP_OPS] * 4,
                 ops(add=10, compare=3, multiply=6, shift=4, divide_step=24), CLIP, CLIP, CLIP, SIG_OPS,
                 ops(multiply=1, shift=1), CLIP)


def _relu_square_fixed_ops(p: ReluSquareFixedParams, raw: dict[str, Any]) -> Ops:
    return total(memory(2, state=1), _shifted_ops(True), ops(compare=1, multiply=1, shift=1), CLIP)


def _lif_fixed_ops(p: LifFixedParams, raw: dict[str, Any]) -> Ops:
    return total(memory(1, state=1), _shifted_ops(False), LIF_FIXED_OPS)


def _gated_lif_fixed_ops(p: GatedLifFixedParams, raw: dict[str, Any]) -> Ops:
    return total(memory(3, state=2), _shifted_ops(False), _shifted_ops(True), SIG_OPS, ops(multiply=1, shift=1),
                 LIF_FIXED_OPS)


SPIKEGPT_FIXED_KINDS: tuple[NeuronKind, ...] = (
    NeuronKind("wkv_fixed", WkvFixedParams, 13 * WORD_BYTES, False, True, wkv_fixed_step, wkv_fixed_step,
               _build_wkv_fixed, ("mult_k", "mult_v", "mult_r", "decay", "first"),
               ("k", "k_next", "v", "v_next", "r", "r_next"), ops=_wkv_fixed_ops),
    NeuronKind("relu_square_fixed", ReluSquareFixedParams, 2 * WORD_BYTES, False, True, relu_square_fixed_step,
               relu_square_fixed_step, _build_relu_square_fixed, ("mult",), ("in", "in_next"),
               ops=_relu_square_fixed_ops),
    NeuronKind("lif_fixed", LifFixedParams, WORD_BYTES, False, False, lif_fixed_step, lif_fixed_step,
               _build_lif_fixed, ("mult",), ops=_lif_fixed_ops),
    NeuronKind("gated_lif_fixed", GatedLifFixedParams, 4 * WORD_BYTES, False, False, gated_lif_fixed_step,
               gated_lif_fixed_step, _build_gated_lif_fixed, ("mult", "mult_r"), ("v", "r", "r_next"),
               ops=_gated_lif_fixed_ops),
)
