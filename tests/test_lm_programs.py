"""The neuron programs of language models: lut_activation, rsqrt, and gated_recurrence's idle
steps; kernels against references, and values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosim.errors import UserError
from neurosim.programs import KINDS, build_state, function_table, run_step

I64 = np.int64


def _both(name: str, params: dict, acc: np.ndarray, **state):
    """(overflow, payload, state) of one step on the kernel and on the reference."""
    kind = KINDS[name]
    out = []
    for reference in (False, True):
        ns = build_state(kind, params, acc.shape[1])
        for key, value in state.items():
            ns.state[key][:] = value
        a, payload = acc.copy(), np.full(acc.shape[1], -7, I64)
        overflow = run_step(kind, a, payload, ns, reference=reference)
        assert not a.any()
        out.append((overflow, payload, {k: v.copy() for k, v in ns.state.items()}))
    return out


@pytest.mark.parametrize("function", ["identity", "relu", "sigmoid", "silu", "square"])
@pytest.mark.parametrize("seed", range(3))
def test_lut_activation_kernel_matches_reference(function, seed):
    """Random inputs (zeros, 32-bit overflows, both table edges), per-neuron mult, gain and offset."""
    rng = np.random.default_rng(seed)
    n = 400
    params = dict(function=function, mult=rng.integers(-400, 400, n), shift=5, in_frac=6, out_frac=10,
                  gain=rng.integers(-1500, 1500, n), offset=rng.integers(-40, 40, n), payload_bits=16)
    acc = rng.integers(-2**16, 2**16, (1, n))
    acc[0, ::13], acc[0, ::17], acc[0, ::9] = 2**40, -2**40, 0
    (k_ovf, k_pay, _), (r_ovf, r_pay, _) = _both("lut_activation", params, acc)
    np.testing.assert_array_equal(k_pay, r_pay)
    assert k_ovf == r_ovf > 0
    assert not k_pay[::9].any(), "a zero input sends nothing"


def test_lut_activation_by_hand():
    """x = acc * mult >> shift in in_frac = 4 bits; out_frac = 8. sigmoid(1.0) = 0.7311 -> 187/256;
    silu(-1.0) = -0.2689 -> -69/256; sigmoid(1.5) = 0.8176 -> 209, silu(1.5) = 1.2264 -> 314; beyond the
    table silu(9.0) = 9.0 -> 2304, sigmoid -> 256; square(1.5) = 2.25 -> 36/16."""
    acc = np.array([[16, -16, 144, 24, 0]])
    cases = {"sigmoid": [187, 69, 256, 209, 0], "silu": [187, -69, 2304, 314, 0]}
    for function, expected in cases.items():
        for _ovf, payload, _ in _both("lut_activation", dict(function=function, in_frac=4, out_frac=8), acc):
            assert list(payload) == expected, function
    for _ovf, payload, _ in _both("lut_activation", dict(function="square", in_frac=4, out_frac=4), acc):
        assert list(payload) == [16, 16, 1296, 36, 0]
    # gain 1/2 (128 of 256) and offset 3 after the function; mult 3, shift 1 before it
    params = dict(function="identity", mult=3, shift=1, out_frac=8, gain=128, offset=3)
    for _ovf, payload, _ in _both("lut_activation", params, np.array([[10, -10]])):
        assert list(payload) == [(15 * 128 >> 8) + 3, (-15 * 128 >> 8) + 3]     # 10, -5


def test_function_table_rounds_to_nearest():
    """The sigmoid table at x = 0 is 1/2 and at its ends within one step of 0 and 1."""
    table, lo = function_table("sigmoid", 4, 8)
    assert lo == -8 * 16 and len(table) == 16 * 16
    assert table[-lo] == 128 and table[0] == round(256 / (1 + math.exp(8))) and table[-1] == 256


@pytest.mark.parametrize("seed", range(3))
def test_rsqrt_kernel_matches_reference(seed):
    """Large sums near the int64 edge, small ones, zeros (idle) and negatives (clipped)."""
    rng = np.random.default_rng(seed)
    acc = rng.integers(1, 2**40, (1, 3000))
    acc[0, ::4] = rng.integers(1, 50, acc[0, ::4].shape)
    acc[0, ::11], acc[0, ::7] = -5, 0
    outs = _both("rsqrt", dict(count=4096, in_frac=16, out_frac=12, eps=3), acc)
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert outs[0][0] == outs[1][0] > 0
    assert not outs[0][1][::7].any()


def test_rsqrt_by_hand():
    """count 128, in_frac 10: a sum of squares 128 x 4.0 x 2^10 means mean 4, rsqrt 0.5 = 2048 / 2^12,
    less the floor of eps = 1: floor(sqrt(floor(2^41 / (2^19 + 1)))) = 2047."""
    for _ovf, payload, _ in _both("rsqrt", dict(count=128, in_frac=10, out_frac=12), np.array([[128 * 4 << 10]])):
        assert payload[0] == 2047 == math.isqrt((128 << 34) // ((128 * 4 << 10) + 1))


def test_rsqrt_refuses_a_numerator_beyond_62_bits():
    with pytest.raises(UserError) as err:
        build_state(KINDS["rsqrt"], dict(count=1 << 20, in_frac=30, out_frac=12), 1, file="m.yaml", prefix=("p",))
    assert err.value.field == "p.out_frac"


def test_gated_recurrence_keeps_its_state_in_idle_steps():
    """With no input on either port h is kept and nothing sent; with input on one port it updates."""
    acc = np.array([[0, 8, 0], [0, 0, 64]])
    for _ovf, payload, state in _both("gated_recurrence", dict(frac_bits=4), acc, h=[100, -50, 30]):
        # h0 idle; h1 = (8 * -50 + 8 * 0) >> 4 = -25; h2 = (0 * 30 + 16 * 64) >> 4 = 64
        assert list(state["h"]) == [100, -25, 64] and list(payload) == [0, -25, 64]


# --- the fixed-point programs of SpikeGPT (one numpy code serves as kernel and reference)

def _run(name: str, params: dict, accs: list, **state) -> tuple[list, dict]:
    """Steps of one population with the accumulators ``accs`` (each [ports, n]); payloads and state."""
    kind = KINDS[name]
    ns = build_state(kind, params, np.asarray(accs[0]).shape[1])
    for key, value in state.items():
        ns.state[key][:] = value
    payloads = []
    for acc in accs:
        a, payload = np.array(acc, I64), np.zeros(np.asarray(acc).shape[1], I64)
        run_step(kind, a, payload, ns)
        assert not a.any()
        payloads.append(payload)
    return payloads, ns.state


def test_exp_tables_are_e_to_the_x_in_16_bits():
    """EXP(0) = 2^16 exactly, EXP(-1) and EXP(-5.5) within 2 units of 2^16 e^x; beyond -16 it is 0."""
    from neurosim.programs.spikegpt_fixed import exp_fixed, exp_tables

    hi, lo = exp_tables()
    x = np.array([0, -4096, -22528, -(1 << 16) + 1, -(1 << 16), -10**7])
    y = exp_fixed(x, hi, lo)
    assert y[0] == 1 << 16 and y[4] == y[5] == 0
    assert abs(y[1] - 65536 * math.exp(-1)) <= 2 and abs(y[2] - 65536 * math.exp(-5.5)) <= 2
    assert y[3] == 0            # e^-16 is below 2^-16


def _wkv_float(k, v, r, decay, first):
    """RWKV-4's WKV with its gate in float64, token after token (as `neurosim.zoo.spikegpt.model`)."""
    num = den = 0.0
    top, out = -1e38, []
    for kt, vt, rt in zip(k, v, r):
        q = max(top, first + kt)
        e1, e2 = math.exp(top - q), math.exp(first + kt - q)
        out.append((e1 * num + e2 * vt) / (e1 * den + e2) / (1 + math.exp(-rt)))
        q = max(top + decay, kt)
        e1, e2 = math.exp(top + decay - q), math.exp(kt - q)
        num, den, top = e1 * num + e2 * vt, e1 * den + e2, q
    return np.array(out)


@pytest.mark.parametrize("decay, first", [(-0.01, -0.5), (-3.0, -2.0), (-18.0, -0.2)])
def test_wkv_fixed_follows_the_float_wkv(decay, first):
    """Over 200 tokens of random k, v, r (12 fractional bits; r as 8) the fixed-point WKV stays
    within 0.01 of the float one, for slow, middling and fast decays."""
    rng = np.random.default_rng(0)
    n = 200
    k, v, r = rng.uniform(-8, 8, n), rng.uniform(-10, 10, n), rng.uniform(-6, 6, n)
    kf, vf, rf = (np.round(x * 4096).astype(I64) for x in (k, v, r))
    params = dict(mult_r=1, shift=4, mult_k=16, mult_v=16, decay=round(decay * 4096), first=round(first * 4096))
    accs = [[[kt], [0], [vt], [0], [rt], [0]] for kt, vt, rt in zip(kf, vf, rf)]
    payloads, _ = _run("wkv_fixed", params, accs)
    expected = _wkv_float(kf / 4096, vf / 4096, (rf >> 4) / 256, params["decay"] / 4096, params["first"] / 4096)
    np.testing.assert_allclose(np.concatenate(payloads) / 4096, expected, atol=0.01)


def test_wkv_fixed_adds_the_token_shift_to_the_next_token():
    """What arrives on k_next, v_next and r_next in one step is added to k, v and r in the next."""
    params = dict(shift=0)
    split = _run("wkv_fixed", params, [[[0], [4096], [0], [8192], [0], [256]], [[4096], [0], [8192], [0], [256], [0]]])
    whole = _run("wkv_fixed", params, [[[0], [0], [0], [0], [0], [0]], [[8192], [0], [16384], [0], [512], [0]]])
    assert split[0][1][0] == whole[0][1][0] != 0


def test_relu_square_fixed_by_hand():
    """x = 1.5 (12 fractional bits, half from the carry) -> 2.25 with 8 = 576; x < 0 -> 0."""
    payloads, state = _run("relu_square_fixed", dict(in_frac=12, out_frac=8),
                           [[[0, 0], [3072, -4096]], [[3072, 0], [0, 0]]])
    assert list(payloads[1]) == [576, 0] and list(state["carry"]) == [0, 0]


def test_lif_fixed_by_hand():
    """x = 1.5: V = 0.75, then (0.75 + 1.5) / 2 = 1.125 >= 1: a spike and V = 0; then 0.75 again."""
    payloads, state = _run("lif_fixed", dict(mult=3, shift=1, frac_bits=12), [[[4096]]] * 3)
    assert [int(p[0]) for p in payloads] == [0, 1, 0] and state["v"][0] == 3072


def test_gated_lif_fixed_by_hand():
    """v = 4.0 gated by sigmoid(0) = 1/2: x = 2.0, V = 1.0 -> a spike; gated by sigmoid(-8) ~ 0:
    no spike. The r_next share of one step gates the next."""
    params = dict(mult=1, mult_r=1, shift=0, frac_bits=12)
    payloads, _ = _run("gated_lif_fixed", params, [[[16384, 16384], [0, -2048], [0, 0]]])
    assert list(payloads[0]) == [1, 0]
    payloads, _ = _run("gated_lif_fixed", params, [[[0], [0], [-2048]], [[16384], [0], [0]]])
    assert payloads[1][0] == 0


def test_gate_product_offset_is_added_after_the_product():
    for _ovf, payload, _ in _both("gate_product", dict(frac_bits=4, offset=np.array([5, -7])), np.array([[32, 32], [8, 8]])):
        assert list(payload) == [16 + 5, 16 - 7]
