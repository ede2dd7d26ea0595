"""The neuron programs of language models: lut_activation, rsqrt, and gated_recurrence's idle
steps; kernels against references, and values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosim.errors import UserError
from neurosim.numerics.neurons import KINDS, build_state, function_table, run_step

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
