"""Neuron programs: parameters, state, a numba kernel and a plain-numpy reference each.

A neuron program is what a neurocore runs for each of its neurons every timestep. Every
program's step reads its dendritic accumulators ``acc`` (int64, shape ``[ports, n]``: the
summed synaptic input of the previous timestep on each input port), clears them, updates
the state, and writes ``payload``: 0 for no event, otherwise the event's value (1 for a
binary spike, the value itself for a graded spike). Both versions return the number of
values that saturated or wrapped (the trace counts them as overflows).

Number formats (``neurosim.programs.fixed``): state is 24-bit signed; ``overflow: wrap``
wraps it modulo 2^24 as a two's-complement adder does, ``overflow: saturate`` clips it to
+-(2^23 - 1). A graded payload has ``payload_bits`` (at most the chip's
``graded_payload_bits``) and saturates. ``loihi_lif`` keeps Lava's own rules.

Programs
--------
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
``graded_source``
    A host-driven input: each step it sends the current input value of every neuron with
    a nonzero value as a graded spike (clipped to ``payload_bits``). It lives on the host,
    not on a core.
``spike_source``
    A host-driven binary input: each step every neuron with a nonzero input value sends a
    binary spike (a spike generator).
``delta_source``
    A host-driven graded input sent as changes (Lava's Delta neuron, the input layer of a
    sigma-delta network): the input is scaled by ``2^input_exp``, and a change of at least
    ``vth`` since what was sent goes out as ``change >> state_exp``; the part not sent stays
    for later::

        delta = (values << input_exp) - act_prev
        p = clip(delta >> state_exp, payload_bits) if |delta| >= vth else 0;  act_prev += p << state_exp

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

A neuron's update is *active* in a step when it does work beyond reading its state: it
has input on a port or state away from rest (`NeuronKind.active`). Chips may price active
updates apart (``neuron_active``), as Loihi's active and inactive neuron updates.

State memory per neuron (``state_bytes``): one 32-bit word per state variable and per
input port beyond the first; the mapper adds a word per parameter given per neuron.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

import numba as nb
import numpy as np
from pydantic import Field

from neurosim.errors import UserError
from neurosim.graph.graph import weight_range
from neurosim.programs.fixed import ACT_SHIFT, INPUT16_MAX, INPUT16_MIN, STATE_MAX, decay, fix24, shift, wrap24
from neurosim.spec.validate import Spec, validate

WORD_BYTES = 4     # one neuron-state word on a neurocore
MAX_PAYLOAD_BITS = 32
INPUT32_MAX = (1 << 31) - 1
FN_IDENTITY, FN_RELU, FN_SIGMOID, FN_SILU, FN_SQUARE = range(5)
FUNCTIONS = {"identity": FN_IDENTITY, "relu": FN_RELU, "sigmoid": FN_SIGMOID, "silu": FN_SILU, "square": FN_SQUARE}
TABLE_RANGE = 8          # sigmoid and silu tables cover x in [-8, 8)

# A per-neuron parameter is an integer (checked by the kind's Params spec) or an int64 array of the
# population's size from the weights file (checked by `_per_neuron`, the spec sees a placeholder 0).


# ---------------------------------------------------------------------------------------------
# numba building blocks: the chip's fixed-point rules on one value


@nb.njit(cache=True, nogil=True, inline="always")
def _clip(x, hi):
    """x clipped to [-hi, hi]; and 1 if it was clipped."""
    if x > hi:
        return hi, 1
    if x < -hi:
        return -hi, 1
    return x, 0


@nb.njit(cache=True, nogil=True, inline="always")
def _lava_wrap(x):
    """Lava's model of a 24-bit overflow: one wrap (2^23 itself stays); and 1 if changed."""
    if x > (1 << 23):
        return x - (1 << 24), 1
    if x <= -(1 << 23):
        return x + (1 << 24), 1
    return x, 0


@nb.njit(cache=True, nogil=True, inline="always")
def _fix24(x, saturate):
    """x brought into 24 bits by saturation or a two's-complement wrap; and 1 if changed."""
    if saturate:
        return _clip(x, STATE_MAX)
    wrapped = ((x + (1 << 23)) & ((1 << 24) - 1)) - (1 << 23)
    return wrapped, 1 if wrapped != x else 0


@nb.njit(cache=True, nogil=True, inline="always")
def _decay(x, factor):
    """x * factor / 4096 rounded toward zero."""
    p = x * factor
    return (p >> 12) if p >= 0 else -((-p) >> 12)


@nb.njit(cache=True, nogil=True, inline="always")
def _activate(x, relu):
    return 0 if relu and x < 0 else x


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over flat state arrays


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
        vv, o2 = _clip(_decay(v[i], 4096 - dv[i]) + uu + bias[i], STATE_MAX)
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
        uu, o1 = _fix24(_decay(u[i], 4096 - du[i]) + (a << ACT_SHIFT), saturate)
        u[i] = uu
        overflow += o0 + o1
        payload[i] = 0
        if refractory_left[i] > 0:
            refractory_left[i] -= 1
            v[i] = 0
            continue
        vv, o2 = _fix24(_decay(v[i], 4096 - dv[i]) + uu + bias[i], saturate)
        overflow += o2
        if vth6[i] >= 0 and vv > vth6[i]:
            if graded:
                out, o3 = _clip(max(vv >> ACT_SHIFT, 1), payload_max)
                payload[i] = out
                overflow += o3
            else:
                payload[i] = 1
            vv = vv - vth6[i] if reset_subtract else 0
            refractory_left[i] = refractory
        v[i] = vv
    return overflow


@nb.njit(cache=True, nogil=True)
def sigma_delta_step(acc, payload, sigma, act_prev, vth, bias, relu, state_exp, saturate, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        a, o0 = _clip(acc[0, i], STATE_MAX)
        acc[0, i] = 0
        s, o1 = _fix24(sigma[i] + a, saturate)
        sigma[i] = s
        overflow += o0 + o1
        delta = _activate(s + bias[i], relu) - act_prev[i]
        out = 0
        if abs(delta) >= vth[i]:
            out, o2 = _clip(delta >> state_exp, payload_max)
            act_prev[i] += out << state_exp
            overflow += o2
        payload[i] = out
    return overflow


@nb.njit(cache=True, nogil=True)
def graded_relu_step(acc, payload, bias, relu, shift_bits, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        x = _activate(acc[0, i] + bias[i], relu) >> shift_bits
        acc[0, i] = 0
        out, o = _clip(x, payload_max)
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def gate_product_step(acc, payload, relu_a, relu_b, frac_bits, offset, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        a, o0 = _clip(acc[0, i], STATE_MAX)
        b, o1 = _clip(acc[1, i], STATE_MAX)
        acc[0, i] = 0
        acc[1, i] = 0
        out, o2 = _clip(((_activate(a, relu_a) * _activate(b, relu_b)) >> frac_bits) + offset[i], payload_max)
        payload[i] = out
        overflow += o0 + o1 + o2
    return overflow


@nb.njit(cache=True, nogil=True)
def gated_recurrence_step(acc, payload, h, frac_bits, saturate, payload_max):
    one = 1 << frac_bits
    overflow = 0
    for i in range(payload.shape[0]):
        f = acc[0, i]
        if f == 0 and acc[1, i] == 0:
            payload[i] = 0
            continue
        if f < 0:
            f, overflow = 0, overflow + 1
        elif f > one:
            f, overflow = one, overflow + 1
        c, o0 = _clip(acc[1, i], STATE_MAX)
        acc[0, i] = 0
        acc[1, i] = 0
        hh, o1 = _fix24((f * h[i] + (one - f) * c) >> frac_bits, saturate)
        h[i] = hh
        out, o2 = _clip(hh, payload_max)
        payload[i] = out
        overflow += o0 + o1 + o2
    return overflow


@nb.njit(cache=True, nogil=True)
def lut_activation_step(acc, payload, mult, shift_bits, function, in_frac, out_frac, table, table_lo, gain, offset,
                        payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        a = acc[0, i]
        acc[0, i] = 0
        if a == 0:
            payload[i] = 0
            continue
        a, o0 = _clip(a, INPUT32_MAX)
        x = (a * mult[i]) >> shift_bits
        if function == FN_IDENTITY:
            y = x
        elif function == FN_RELU:
            y = max(x, 0)
        elif function == FN_SQUARE:
            x, o1 = _clip(x, INPUT32_MAX)
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
        out, o2 = _clip(((y * gain[i]) >> out_frac) + offset[i], payload_max)
        payload[i] = out
        overflow += o0 + o2
    return overflow


@nb.njit(cache=True, nogil=True, inline="always")
def _rescale(x, in_frac, out_frac):
    """x with ``in_frac`` fractional bits re-expressed with ``out_frac`` (toward minus infinity)."""
    return (x << (out_frac - in_frac)) if out_frac >= in_frac else (x >> (in_frac - out_frac))


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
        out, o = _clip(_isqrt(numerator // (s + eps)), payload_max)
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def spike_source_step(acc, payload, values):
    for i in range(payload.shape[0]):
        acc[0, i] = 0
        payload[i] = 1 if values[i] != 0 else 0
    return 0


@nb.njit(cache=True, nogil=True)
def source_step(acc, payload, values, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        acc[0, i] = 0
        out, o = _clip(values[i], payload_max)
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def delta_source_step(acc, payload, values, act_prev, vth, input_exp, state_exp, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        acc[0, i] = 0
        delta = (values[i] << input_exp) - act_prev[i]
        out = 0
        if abs(delta) >= vth:
            out, o = _clip(delta >> state_exp, payload_max)
            act_prev[i] += out << state_exp
            overflow += o
        payload[i] = out
    return overflow


# ---------------------------------------------------------------------------------------------
# fixed-point programs with a token shift: numpy on [..., ports, n], one code for kernel and
# reference (as the float programs below); they update only in the steps that bring a token

EXP_IN_FRAC, EXP_OUT_FRAC = 12, 16      # wkv_fixed: EXP's input and output fractional bits
GATE_IN_FRAC, GATE_FRAC = 8, 12         # SIG's input and output fractional bits
WKV_STATE_MAX = (1 << 47) - 1           # A and B: two 24-bit state words


def exp_tables() -> tuple[np.ndarray, np.ndarray]:
    """EXP's two tables: e^-(256 j / 2^12) and e^-(j / 2^12), j < 256, with 16 fractional bits."""
    j = np.arange(256, dtype=np.float64)
    def table(step: float) -> np.ndarray:
        return np.floor(np.exp(-j * step / (1 << EXP_IN_FRAC)) * (1 << EXP_OUT_FRAC) + 0.5).astype(np.int64)
    return table(256.0), table(1.0)


def _exp_fixed(x: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
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
    return xc, _count(a, total) + _count(xc, x)


def wkv_fixed_step(acc, payload, num, den, top, k_carry, v_carry, r_carry, mult_k, mult_v, mult_r, decay, first,
                   shift_bits, exp_hi, exp_lo, table, table_lo, payload_max):
    k, o_k = _shifted_in(acc[..., 0, :], k_carry, mult_k, shift_bits)
    v, o_v = _shifted_in(acc[..., 2, :], v_carry, mult_v, shift_bits)
    r, o_r = _shifted_in(acc[..., 4, :], r_carry, mult_r, shift_bits)
    k_carry[...], v_carry[...], r_carry[...] = acc[..., 1, :], acc[..., 3, :], acc[..., 5, :]
    uk = first + k
    q = np.maximum(top, uk)
    e1, e2 = _exp_fixed(top - q, exp_hi, exp_lo), _exp_fixed(uk - q, exp_hi, exp_lo)
    numerator = np.right_shift(e1 * num, EXP_OUT_FRAC) + e2 * v
    denominator = np.maximum(np.right_shift(e1 * den, EXP_OUT_FRAC) + e2, 1)
    wkv = numerator // denominator
    q = np.maximum(top + decay, k)
    e1, e2 = _exp_fixed(top + decay - q, exp_hi, exp_lo), _exp_fixed(k - q, exp_hi, exp_lo)
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
    return (o_k + o_v + o_r + _count(num, num_raw) + _count(den, den_raw) + _count(wkv_c, wkv)
            + _count(clipped, out))


def relu_square_fixed_step(acc, payload, carry, mult, shift_bits, in_frac, out_frac, payload_max):
    x, overflow = _shifted_in(acc[..., 0, :], carry, mult, shift_bits)
    carry[...] = acc[..., 1, :]
    y = np.right_shift(np.square(np.maximum(x, 0)), 2 * in_frac - out_frac)
    clipped = np.clip(y, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return overflow + _count(clipped, y)


def _lif_fixed(payload, v, x, frac_bits) -> int:
    raw = np.right_shift(v + x, 1)
    vv = np.clip(raw, -STATE_MAX, STATE_MAX)
    spike = vv >= (1 << frac_bits)
    payload[...] = spike
    v[...] = np.where(spike, 0, vv)
    return _count(vv, raw)


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
# float programs: numpy on [..., ports, n] (one population, or a batch of them); the same code
# serves as kernel and reference, so the two are the same arithmetic by construction


FLOAT = np.float32
EGRU_PORTS = ("in_z", "in_r", "in_g", "rec_z", "rec_r", "rec_g")


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
# plain-numpy references of the same arithmetic; batched: state [..., n], acc [..., ports, n]


def _count(before: np.ndarray, after: np.ndarray) -> int:
    return int(np.count_nonzero(before != after))


def lif_reference(acc, payload, u, v, du, dv, vth6, bias, reset_subtract):
    a_in = acc[..., 0, :]
    a = np.clip(a_in, INPUT16_MIN, INPUT16_MAX)
    uu = decay(u, 4096 - (du + 1)) + np.left_shift(a, ACT_SHIFT)
    wrapped = wrap24(uu)
    vv = decay(v, 4096 - dv) + wrapped + bias
    clipped = np.clip(vv, -STATE_MAX, STATE_MAX)
    overflow = _count(a, a_in) + _count(wrapped, uu) + _count(clipped, vv)
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
    overflow = (_count(a, a_in) + _count(u_new, u_raw) + _count(v_new[active], v_raw[active])
                + (_count(value[spikes], voltage[spikes]) if graded else 0))
    reset = v_new - vth6 if reset_subtract else np.zeros_like(v_new)
    u[...] = u_new
    v[...] = np.where(active, np.where(spikes, reset, v_new), 0)
    refractory_left[...] = np.where(active, np.where(spikes, refractory, 0), refractory_left - 1)
    payload[...] = np.where(spikes, value if graded else 1, 0)
    acc[...] = 0
    return overflow


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
    return _count(a, a_in) + _count(fixed, s) + _count(clipped, out)


def graded_relu_reference(acc, payload, bias, relu, shift_bits, payload_max):
    x = acc[..., 0, :] + bias
    if relu:
        x = np.maximum(x, 0)
    x = np.right_shift(x, shift_bits)
    clipped = np.clip(x, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return _count(clipped, x)


def gate_product_reference(acc, payload, relu_a, relu_b, frac_bits, offset, payload_max):
    a_in, b_in = acc[..., 0, :], acc[..., 1, :]
    a, b = np.clip(a_in, -STATE_MAX, STATE_MAX), np.clip(b_in, -STATE_MAX, STATE_MAX)
    overflow = _count(a, a_in) + _count(b, b_in)
    if relu_a:
        a = np.maximum(a, 0)
    if relu_b:
        b = np.maximum(b, 0)
    x = np.right_shift(a * b, frac_bits) + offset
    clipped = np.clip(x, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return overflow + _count(clipped, x)


def gated_recurrence_reference(acc, payload, h, frac_bits, saturate, payload_max):
    one = 1 << frac_bits
    f_in, c_in = acc[..., 0, :].copy(), acc[..., 1, :].copy()
    busy = (f_in != 0) | (c_in != 0)
    f = np.clip(f_in, 0, one)
    c = np.clip(c_in, -STATE_MAX, STATE_MAX)
    raw = np.right_shift(f * h + (one - f) * c, frac_bits)
    fixed = fix24(raw, saturate)
    clipped = np.clip(fixed, -payload_max, payload_max)
    h[...] = np.where(busy, fixed, h)
    payload[...] = np.where(busy, clipped, 0)
    acc[...] = 0
    return (_count(f[busy], f_in[busy]) + _count(c[busy], c_in[busy]) + _count(fixed[busy], raw[busy])
            + _count(clipped[busy], fixed[busy]))


def lut_activation_reference(acc, payload, mult, shift_bits, function, in_frac, out_frac, table, table_lo, gain,
                             offset, payload_max):
    a_in = acc[..., 0, :].copy()
    busy = a_in != 0
    a = np.clip(a_in, -INPUT32_MAX, INPUT32_MAX)
    x = np.right_shift(a * mult, shift_bits)
    overflow = _count(a[busy], a_in[busy])
    if function == FN_IDENTITY:
        y = x
    elif function == FN_RELU:
        y = np.maximum(x, 0)
    elif function == FN_SQUARE:
        xc = np.clip(x, -INPUT32_MAX, INPUT32_MAX)
        overflow += _count(xc[busy], x[busy])
        y = np.right_shift(xc * xc, in_frac)
    else:
        k = x - table_lo
        inside = table[np.clip(k, 0, len(table) - 1)]
        high = (1 << out_frac) if function == FN_SIGMOID else (
            np.left_shift(x, out_frac - in_frac) if out_frac >= in_frac else np.right_shift(x, in_frac - out_frac))
        y = np.where(k < 0, 0, np.where(k >= len(table), high, inside))
    raw = np.right_shift(y * gain, out_frac) + offset
    clipped = np.clip(raw, -payload_max, payload_max)
    payload[...] = np.where(busy, clipped, 0)
    acc[...] = 0
    return overflow + _count(clipped[busy], raw[busy])


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
    return _count(s[busy], s_in[busy]) + _count(clipped[busy], r[busy])


def spike_source_reference(acc, payload, values):
    payload[...] = values != 0
    acc[...] = 0
    return 0


def source_reference(acc, payload, values, payload_max):
    clipped = np.clip(values, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return _count(clipped, values)


def delta_source_reference(acc, payload, values, act_prev, vth, input_exp, state_exp, payload_max):
    delta = np.left_shift(values.astype(np.int64), input_exp) - act_prev
    raw = np.where(np.abs(delta) >= vth, np.right_shift(delta, state_exp), 0)
    out = np.clip(raw, -payload_max, payload_max)
    act_prev += np.left_shift(out, state_exp)
    payload[...] = out
    acc[...] = 0
    return _count(out, raw)


# ---------------------------------------------------------------------------------------------
# programs: parameters, state layout, the two implementations

PayloadBits = Annotated[int, Field(ge=1, le=MAX_PAYLOAD_BITS)]
Overflow = Literal["wrap", "saturate"]
Activation = Literal["relu", "identity"]


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


class SourceParams(Spec):
    payload_bits: PayloadBits = 24


class SpikeSourceParams(Spec):
    pass


class DeltaSourceParams(Spec):
    vth: Annotated[int, Field(ge=0, le=STATE_MAX)] = 0
    input_exp: Annotated[int, Field(ge=0, le=23)] = 0
    state_exp: Annotated[int, Field(ge=0, le=23)] = 0
    payload_bits: PayloadBits = 24


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


@dataclass
class NeuronState:
    """One population's arrays: `state` changes every step, `consts` do not."""

    state: dict[str, np.ndarray]
    consts: tuple
    initial: dict[str, np.ndarray]

    def reset(self) -> None:
        for key, value in self.initial.items():
            self.state[key][:] = value


@dataclass(frozen=True)
class NeuronKind:
    name: str
    params: type[Spec]
    state_bytes: int          # neuron-state memory one neuron takes on a core
    on_host: bool
    graded: bool              # whether its events carry a payload
    kernel: Callable
    reference: Callable
    build: Callable[[Spec, dict[str, Any], int], NeuronState]
    per_neuron: tuple[str, ...] = ()   # parameters that may be per-neuron arrays
    ports: tuple[str, ...] = ("in",)   # its dendritic inputs; a projection names one (default: the first)
    active: Callable[[np.ndarray, NeuronState], np.ndarray] | None = None   # see `active_neurons`
    float_valued: bool = False         # fp32 state, accumulators and payloads (else integers)
    whole_population: bool = False     # its update needs the whole population's vector: one core holds it


def payload_bits_of(kind: NeuronKind, params: dict[str, Any]) -> int:
    """Bits of payload an event of this population carries (0: a binary spike)."""
    if not kind.graded or (kind.name == "cuba_lif" and not params.get("graded", False)):
        return 0
    if kind.float_valued:
        return 32
    return int(params.get("payload_bits", kind.params.model_fields["payload_bits"].default))


def state_bytes_of(kind: NeuronKind, params: dict[str, Any]) -> int:
    """Neuron-state memory per neuron: the program's words, plus a word per per-neuron parameter."""
    arrays = sum(isinstance(v, np.ndarray) for v in params.values())
    return kind.state_bytes + WORD_BYTES * arrays


def active_neurons(kind: NeuronKind, acc: np.ndarray, ns: NeuronState) -> np.ndarray:
    """Which neurons' updates this step are active (before the update runs): input on any
    port, or state away from rest: the kind's own rule, else any nonzero state variable."""
    if kind.active is not None:
        return kind.active(acc, ns)
    active = (acc != 0).any(axis=0)
    for value in ns.state.values():
        active |= value != 0
    return active


def _lif_active(acc: np.ndarray, ns: NeuronState) -> np.ndarray:
    """A LIF neuron is active with input, a nonzero voltage or a bias (its current only
    carries the input, so it does not count apart)."""
    bias = ns.consts[3]
    return (acc != 0).any(axis=0) | (ns.state["v"] != 0) | (bias != 0) | (ns.state.get("refractory_left", 0) != 0)


def _value(raw: dict[str, Any], p: Spec, key: str) -> Any:
    """A parameter's per-neuron array if the model gave one, else its validated scalar."""
    value = raw.get(key)
    return value if isinstance(value, np.ndarray) else getattr(p, key)


class _ParameterError(ValueError):
    """A parameter's per-neuron values out of range; names the parameter."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _per_neuron(value: Any, size: int, lo: int, hi: int, field: str) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value, dtype=np.int64), (size,)).copy()
    if array.size and (array.min() < lo or array.max() > hi):
        raise _ParameterError(field, f"holds values outside [{lo}, {hi}] (found {array.min()} to {array.max()})")
    return array


def _payload_max(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _state(size: int, **initial: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    init = {k: np.full(size, v, np.int64) for k, v in initial.items()}
    return {k: a.copy() for k, a in init.items()}, init


def _vth6(p: Spec, raw: dict[str, Any], size: int) -> np.ndarray:
    if p.vth is None:
        return np.full(size, -1, np.int64)
    return np.left_shift(_per_neuron(_value(raw, p, "vth"), size, 0, 131071, "vth"), ACT_SHIFT)


def _build_lif(p: LifParams, raw: dict[str, Any], size: int) -> NeuronState:
    du = _per_neuron(_value(raw, p, "du"), size, 0, 4095, "du")
    dv = _per_neuron(_value(raw, p, "dv"), size, 0, 4095, "dv")
    mant = _per_neuron(_value(raw, p, "bias_mant"), size, -4095, 4095, "bias_mant")
    bias = shift(mant, p.bias_exp).astype(np.int64)
    state, initial = _state(size, u=0, v=p.v_init)
    return NeuronState(state, (du, dv, _vth6(p, raw, size), bias, p.reset == "subtract"), initial)


def _build_cuba_lif(p: CubaLifParams, raw: dict[str, Any], size: int) -> NeuronState:
    du = _per_neuron(_value(raw, p, "du"), size, 0, 4096, "du")
    dv = _per_neuron(_value(raw, p, "dv"), size, 0, 4096, "dv")
    bias = _per_neuron(_value(raw, p, "bias"), size, -STATE_MAX, STATE_MAX, "bias")
    state, initial = _state(size, u=0, v=p.v_init, refractory_left=0)
    return NeuronState(state, (du, dv, _vth6(p, raw, size), bias, p.reset == "subtract", p.refractory, p.graded,
                               p.overflow == "saturate", _payload_max(p.payload_bits)), initial)


def _build_sigma_delta(p: SigmaDeltaParams, raw: dict[str, Any], size: int) -> NeuronState:
    vth = _per_neuron(_value(raw, p, "vth"), size, 0, STATE_MAX, "vth")
    bias = _per_neuron(_value(raw, p, "bias"), size, -STATE_MAX, STATE_MAX, "bias")
    state, initial = _state(size, sigma=0, act_prev=0)
    return NeuronState(state, (vth, bias, p.activation == "relu", p.state_exp, p.overflow == "saturate",
                               _payload_max(p.payload_bits)), initial)


def _build_graded_relu(p: GradedReluParams, raw: dict[str, Any], size: int) -> NeuronState:
    bias = _per_neuron(_value(raw, p, "bias"), size, -STATE_MAX, STATE_MAX, "bias")
    return NeuronState({}, (bias, p.activation == "relu", p.shift, _payload_max(p.payload_bits)), {})


def _build_gate_product(p: GateProductParams, raw: dict[str, Any], size: int) -> NeuronState:
    offset = _per_neuron(_value(raw, p, "offset"), size, -STATE_MAX, STATE_MAX, "offset")
    return NeuronState({}, (p.activation_a == "relu", p.activation_b == "relu", p.frac_bits, offset,
                            _payload_max(p.payload_bits)), {})


def _build_gated_recurrence(p: GatedRecurrenceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _state(size, h=0)
    return NeuronState(state, (p.frac_bits, p.overflow == "saturate", _payload_max(p.payload_bits)), initial)


def function_table(function: str, in_frac: int, out_frac: int) -> tuple[np.ndarray, int]:
    """A sigmoid or silu table over [-TABLE_RANGE, TABLE_RANGE) at 2^-in_frac steps, values rounded
    to nearest at 2^-out_frac; and the x (in input units) of its first entry."""
    lo = -TABLE_RANGE << in_frac
    x = np.arange(lo, -lo, dtype=np.float64) / (1 << in_frac)
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    y = sigmoid if function == "sigmoid" else x * sigmoid
    return np.floor(y * (1 << out_frac) + 0.5).astype(np.int64), lo


def _build_lut_activation(p: LutActivationParams, raw: dict[str, Any], size: int) -> NeuronState:
    mult = _per_neuron(_value(raw, p, "mult"), size, -(1 << 23), 1 << 23, "mult")
    gain_value = raw.get("gain") if isinstance(raw.get("gain"), np.ndarray) else (
        p.gain if p.gain is not None else 1 << p.out_frac)
    gain = _per_neuron(gain_value, size, -(1 << 23), 1 << 23, "gain")
    offset = _per_neuron(_value(raw, p, "offset"), size, -STATE_MAX, STATE_MAX, "offset")
    if p.function in ("sigmoid", "silu"):
        table, lo = function_table(p.function, p.in_frac, p.out_frac)
    else:
        table, lo = np.zeros(1, np.int64), 0
    return NeuronState({}, (mult, p.shift, FUNCTIONS[p.function], p.in_frac, p.out_frac, table, lo, gain, offset,
                            _payload_max(p.payload_bits)), {})


def _build_rsqrt(p: RsqrtParams, raw: dict[str, Any], size: int) -> NeuronState:
    exponent = p.in_frac + 2 * p.out_frac
    if p.count.bit_length() + exponent > 62:
        raise _ParameterError("out_frac", f"count x 2^(in_frac + 2 out_frac) = {p.count} x 2^{exponent} needs more "
                                          f"than 62 bits; expected fewer fractional bits")
    return NeuronState({}, (np.int64(p.count) << exponent, p.eps, _payload_max(p.payload_bits)), {})


def _build_spike_source(p: SpikeSourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _state(size, values=0)
    return NeuronState(state, (), initial)


def _build_source(p: SourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _state(size, values=0)
    return NeuronState(state, (_payload_max(p.payload_bits),), initial)


def _build_delta_source(p: DeltaSourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _state(size, values=0, act_prev=0)
    return NeuronState(state, (p.vth, p.input_exp, p.state_exp, _payload_max(p.payload_bits)), initial)


def _mults(raw: dict[str, Any], p: Spec, keys: tuple[str, ...], size: int) -> tuple[np.ndarray, ...]:
    return tuple(_per_neuron(_value(raw, p, key), size, -(1 << 23), 1 << 23, key) for key in keys)


def _build_wkv_fixed(p: WkvFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    mult_k, mult_v, mult_r = _mults(raw, p, ("mult_k", "mult_v", "mult_r"), size)
    decay = _per_neuron(_value(raw, p, "decay"), size, -STATE_MAX, 0, "decay")
    first = _per_neuron(_value(raw, p, "first"), size, -STATE_MAX, STATE_MAX, "first")
    table, lo = function_table("sigmoid", GATE_IN_FRAC, GATE_FRAC)
    state, initial = _state(size, num=0, den=0, top=-STATE_MAX, k_carry=0, v_carry=0, r_carry=0)
    return NeuronState(state, (mult_k, mult_v, mult_r, decay, first, p.shift, *exp_tables(), table, lo,
                               _payload_max(p.payload_bits)), initial)


def _build_relu_square_fixed(p: ReluSquareFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    if 2 * p.in_frac < p.out_frac:
        raise _ParameterError("out_frac", f"a square has {2 * p.in_frac} fractional bits; expected out_frac "
                                          f"at most that, found {p.out_frac}")
    state, initial = _state(size, carry=0)
    return NeuronState(state, (*_mults(raw, p, ("mult",), size), p.shift, p.in_frac, p.out_frac,
                               _payload_max(p.payload_bits)), initial)


def _build_lif_fixed(p: LifFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = _state(size, v=0)
    return NeuronState(state, (*_mults(raw, p, ("mult",), size), p.shift, p.frac_bits), initial)


def _build_gated_lif_fixed(p: GatedLifFixedParams, raw: dict[str, Any], size: int) -> NeuronState:
    table, lo = function_table("sigmoid", GATE_IN_FRAC, GATE_FRAC)
    state, initial = _state(size, v=0, carry=0)
    return NeuronState(state, (*_mults(raw, p, ("mult", "mult_r"), size), p.shift, p.frac_bits, table, lo),
                       initial)


def _float_per_neuron(raw: dict[str, Any], p: Spec, key: str, size: int) -> np.ndarray:
    array = np.broadcast_to(np.asarray(_value(raw, p, key), dtype=FLOAT), (size,)).copy()
    if not np.all(np.isfinite(array)):
        raise _ParameterError(key, "holds values that are not finite numbers")
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


KINDS: dict[str, NeuronKind] = {
    k.name: k for k in (
        NeuronKind("loihi_lif", LifParams, 2 * WORD_BYTES, False, False, lif_step, lif_reference, _build_lif,
                   ("du", "dv", "bias_mant", "vth"), active=_lif_active),
        NeuronKind("cuba_lif", CubaLifParams, 3 * WORD_BYTES, False, True, cuba_lif_step, cuba_lif_reference,
                   _build_cuba_lif, ("du", "dv", "bias", "vth"), active=_lif_active),
        NeuronKind("sigma_delta", SigmaDeltaParams, 2 * WORD_BYTES, False, True, sigma_delta_step,
                   sigma_delta_reference, _build_sigma_delta, ("vth", "bias")),
        NeuronKind("graded_relu", GradedReluParams, WORD_BYTES, False, True, graded_relu_step,
                   graded_relu_reference, _build_graded_relu, ("bias",)),
        NeuronKind("gate_product", GateProductParams, WORD_BYTES, False, True, gate_product_step,
                   gate_product_reference, _build_gate_product, ("offset",), ("a", "b")),
        NeuronKind("gated_recurrence", GatedRecurrenceParams, 2 * WORD_BYTES, False, True, gated_recurrence_step,
                   gated_recurrence_reference, _build_gated_recurrence, (), ("f", "c")),
        NeuronKind("lut_activation", LutActivationParams, WORD_BYTES, False, True, lut_activation_step,
                   lut_activation_reference, _build_lut_activation, ("mult", "gain", "offset")),
        NeuronKind("rsqrt", RsqrtParams, WORD_BYTES, False, True, rsqrt_step, rsqrt_reference, _build_rsqrt),
        NeuronKind("graded_source", SourceParams, 0, True, True, source_step, source_reference, _build_source),
        NeuronKind("spike_source", SpikeSourceParams, 0, True, False, spike_source_step, spike_source_reference,
                   _build_spike_source),
        NeuronKind("delta_source", DeltaSourceParams, 0, True, True, delta_source_step, delta_source_reference,
                   _build_delta_source),
        NeuronKind("wkv_fixed", WkvFixedParams, 13 * WORD_BYTES, False, True, wkv_fixed_step, wkv_fixed_step,
                   _build_wkv_fixed, ("mult_k", "mult_v", "mult_r", "decay", "first"),
                   ("k", "k_next", "v", "v_next", "r", "r_next")),
        NeuronKind("relu_square_fixed", ReluSquareFixedParams, 2 * WORD_BYTES, False, True, relu_square_fixed_step,
                   relu_square_fixed_step, _build_relu_square_fixed, ("mult",), ("in", "in_next")),
        NeuronKind("lif_fixed", LifFixedParams, WORD_BYTES, False, False, lif_fixed_step, lif_fixed_step,
                   _build_lif_fixed, ("mult",)),
        NeuronKind("gated_lif_fixed", GatedLifFixedParams, 4 * WORD_BYTES, False, False, gated_lif_fixed_step,
                   gated_lif_fixed_step, _build_gated_lif_fixed, ("mult", "mult_r"), ("v", "r", "r_next")),
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
}


def kind_of(name: str, *, file: str = "", field: str = "", line: int | None = None) -> NeuronKind:
    if name not in KINDS:
        raise UserError(f"unknown neuron kind {name!r}, expected one of {', '.join(KINDS)}",
                        file=file, field=field, line=line)
    return KINDS[name]


def build_state(kind: NeuronKind, params: dict[str, Any], size: int, *, file: str = "",
                prefix: tuple = (), lines=None) -> NeuronState:
    """Validate a population's parameters for its kind and lay out its arrays."""
    def where(key: str | None = None):
        path = prefix + ((key,) if key else ())
        return dict(file=file, field=".".join(map(str, path)), line=lines.find(path) if lines is not None else None)

    for key, value in params.items():
        if isinstance(value, np.ndarray) and key not in kind.per_neuron:
            raise UserError(f"{kind.name} takes {key} as one number, not per neuron"
                            + (f" (per-neuron parameters: {', '.join(kind.per_neuron)})" if kind.per_neuron else ""),
                            **where(key))
    scalars = {k: (0 if isinstance(v, np.ndarray) else v) for k, v in params.items()}
    spec = validate(kind.params, scalars, file=file, lines=lines, prefix=prefix)
    try:
        return kind.build(spec, params, size)
    except _ParameterError as err:
        raise UserError(str(err), **where(err.key)) from None


def check_populations(graph) -> None:
    """Check every population of a `Graph`: a known neuron kind and valid parameters, and
    integer and float kinds not mixed; or a `UserError` naming the model file, line and field."""
    lines = graph.lines
    first = None
    for name, pop in graph.populations.items():
        where = ("populations", name, "kind")
        kind = kind_of(pop.kind, file=graph.source_file, field=".".join(where),
                       line=lines.find(where) if lines is not None else None)
        build_state(kind, pop.params, pop.size, file=graph.source_file, prefix=("populations", name, "params"),
                    lines=lines)
        first = first or (name, kind)
        if kind.float_valued != first[1].float_valued:
            arithmetic = {True: "float", False: "integer"}
            raise UserError(f"a {arithmetic[kind.float_valued]} neuron kind in a graph of {arithmetic[not kind.float_valued]} "
                            f"kinds ({first[0]!r} is {first[1].name}); expected all integer or all float kinds",
                            file=graph.source_file, field=".".join(where), line=lines.find(where) if lines is not None else None)


def value_dtype(graph) -> type:
    """The type of a graph's accumulators and payloads: float32 for float kinds, else int64."""
    kinds = [KINDS[p.kind] for p in graph.populations.values()]
    return FLOAT if kinds and kinds[0].float_valued else np.int64


def port_index(kind: NeuronKind, port: str) -> int:
    """The index of a projection's target port (empty: the first)."""
    return kind.ports.index(port) if port else 0


def check_projections(graph) -> None:
    """Check every projection of a `Graph`: a port its target has, and weights within their
    ``weight_bits`` and sign mode; else a `UserError` naming the model file, line and field."""
    def fail(name: str, key: str, message: str) -> UserError:
        where = ("projections", name, key)
        return UserError(message, file=graph.source_file, field=".".join(where),
                         line=graph.lines.find(where) if graph.lines is not None else None)

    for name, proj in graph.projections.items():
        kind = KINDS[graph.populations[proj.target].kind]
        if proj.port and proj.port not in kind.ports:
            raise fail(name, "port", f"{proj.target!r} is a {kind.name} population with input ports "
                                     f"{', '.join(kind.ports)}; found {proj.port!r}")
        weight = proj.weight if hasattr(proj, "weight") else proj.csr.weight
        if kind.float_valued or weight.dtype.kind == "f":
            if not (kind.float_valued and weight.dtype == FLOAT and proj.sign_mode == "float" and proj.weight_bits == 32):
                raise fail(name, "sign_mode", f"float32 weights (sign_mode float, 32 bits) go to float neuron kinds; "
                                              f"found {weight.dtype} weights, sign_mode {proj.sign_mode}, "
                                              f"{proj.weight_bits} bits into a {kind.name} population")
            if not np.all(np.isfinite(weight)):
                raise fail(name, "weight_bits", "weights that are not finite numbers")
            continue
        if proj.sign_mode != "mixed" and proj.weight_bits > 7:
            raise fail(name, "weight_bits", f"{proj.sign_mode} weights have at most 7 bits (they are stored as "
                                            f"int8), found {proj.weight_bits}")
        lo, hi = weight_range(proj.weight_bits, proj.sign_mode)
        if weight.size and (int(weight.min()) < lo or int(weight.max()) > hi):
            raise fail(name, "weight_bits", f"weights range over [{int(weight.min())}, {int(weight.max())}], "
                                            f"{proj.weight_bits}-bit {proj.sign_mode} weights hold [{lo}, {hi}]")


def run_step(kind: NeuronKind, acc: np.ndarray, payload: np.ndarray, ns: NeuronState,
             reference: bool = False) -> int:
    """One timestep of one population (numba kernel, or the numpy reference); ``acc`` is [ports, n]."""
    fn = kind.reference if reference else kind.kernel
    return fn(acc, payload, *ns.state.values(), *ns.consts)
