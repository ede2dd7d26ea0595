"""Neuron kinds: each numba kernel against its plain-numpy reference, and hand-computed steps
of Loihi's fixed-point arithmetic (shared/reference/loihi_fixed_point.md)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurosim.errors import UserError
from neurosim.numerics.fixed import STATE_MAX, decay, wrap24
from neurosim.numerics.neurons import (KINDS, build_state, lif_reference, lif_step, sigma_delta_reference,
                                       sigma_delta_step, source_reference, source_step)

I64 = np.int64
N = 40
EXTREME_ACC = [0, 1, -1, 2**15 - 1, 2**15, -(2**15), -(2**15) - 1, STATE_MAX, STATE_MAX + 1, -STATE_MAX - 1,
               2**40, -(2**40)]
EXTREME_STATE = [0, 1, -1, STATE_MAX, -STATE_MAX, 2**22, -(2**22), 2**23 - 4096, -(2**23) + 4096]


def _mixed(rng: np.random.Generator, n: int, lo: int, hi: int, extremes: list[int]) -> np.ndarray:
    """Random values in [lo, hi] with about a third replaced by extremes."""
    x = rng.integers(lo, hi + 1, n, dtype=I64)
    pick = rng.random(n) < 0.35
    x[pick] = rng.choice(np.array(extremes, I64), int(pick.sum()))
    return x


def _lif_args(rng: np.random.Generator, n: int = N):
    acc = _mixed(rng, n, -(2**17), 2**17, EXTREME_ACC)
    u = _mixed(rng, n, -STATE_MAX, STATE_MAX, EXTREME_STATE)
    v = _mixed(rng, n, -STATE_MAX, STATE_MAX, EXTREME_STATE)
    du = _mixed(rng, n, 0, 4095, [0, 4095])
    dv = _mixed(rng, n, 0, 4095, [0, 4095])
    vth6 = np.where(rng.random(n) < 0.2, -1, rng.integers(0, 131072, n) << 6).astype(I64)
    bias = (rng.integers(-4095, 4096, n) << rng.integers(0, 8, n)).astype(I64)
    return acc, u, v, du, dv, vth6, bias


def _run_both(kernel, reference, arrays, consts, steps: int = 1):
    """Run the kernel and the reference on copies of the same arrays; return both results."""
    results = []
    for fn in (kernel, reference):
        arr = [a.copy() for a in arrays]
        payloads, overflows = [], []
        for _ in range(steps):
            payload = np.full(arr[0].shape, -7, I64)
            overflows.append(fn(arr[0], payload, *arr[1:], *consts))
            payloads.append(payload.copy())
        results.append((arr, payloads, overflows))
    return results


# ---------------------------------------------------------------------------------------------
# kernel == reference


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("reset_subtract", [False, True])
def test_lif_kernel_matches_reference(seed, reset_subtract):
    """LIF: state, payloads, cleared accumulator and overflow counts agree bit for bit."""
    rng = np.random.default_rng(seed)
    acc, u, v, du, dv, vth6, bias = _lif_args(rng)
    (k_arr, k_pay, k_ovf), (r_arr, r_pay, r_ovf) = _run_both(
        lif_step, lif_reference, [acc, u, v], (du, dv, vth6, bias, reset_subtract))
    for k, r in zip(k_arr, r_arr):
        np.testing.assert_array_equal(k, r)
    np.testing.assert_array_equal(k_pay[0], r_pay[0])
    assert k_ovf == r_ovf
    assert not k_arr[0].any(), "the accumulator is cleared"


def test_lif_random_inputs_reach_every_saturation():
    """The random LIF inputs above do hit the 16-bit input clip, the 24-bit u wrap and the v clip,
    so the comparison covers them."""
    acc, u, v, du, dv, vth6, bias = _lif_args(np.random.default_rng(0), 4000)
    a = np.clip(acc, -(2**15), 2**15 - 1)
    uu = decay(u, 4096 - (du + 1)) + (a << 6)
    vv = decay(v, 4096 - dv) + wrap24(uu) + bias
    clipped, wrapped, saturated = (int(np.count_nonzero(x)) for x in
                                   (a != acc, wrap24(uu) != uu, np.abs(vv) > STATE_MAX))
    assert min(clipped, wrapped, saturated) > 0
    overflow = lif_step(acc, np.zeros_like(acc), u, v, du, dv, vth6, bias, False)
    assert overflow == clipped + wrapped + saturated


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 30), steps=st.integers(1, 4), reset_subtract=st.booleans())
def test_lif_kernel_matches_reference_hypothesis(data, n, steps, reset_subtract):
    """LIF over several steps, on hypothesis-chosen state within the registers' ranges."""
    ints = lambda lo, hi: hnp.arrays(I64, n, elements=st.integers(lo, hi))  # noqa: E731
    acc = data.draw(ints(-(2**40), 2**40))
    u = data.draw(ints(-STATE_MAX, STATE_MAX))
    v = data.draw(ints(-STATE_MAX, STATE_MAX))
    du, dv = data.draw(ints(0, 4095)), data.draw(ints(0, 4095))
    vth6 = data.draw(ints(-1, 131071)) << 6
    vth6[vth6 < 0] = -1
    bias = data.draw(ints(-4095, 4095)) << data.draw(st.integers(0, 7))
    (k_arr, k_pay, k_ovf), (r_arr, r_pay, r_ovf) = _run_both(
        lif_step, lif_reference, [acc, u, v], (du, dv, vth6, bias, reset_subtract), steps)
    for k, r in zip(k_arr, r_arr):
        np.testing.assert_array_equal(k, r)
    np.testing.assert_array_equal(np.array(k_pay), np.array(r_pay))
    assert k_ovf == r_ovf


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("relu", [False, True])
def test_sigma_delta_kernel_matches_reference(seed, relu):
    """Sigma-delta: sigma, act_prev, graded payloads and overflow counts agree, over three steps."""
    rng = np.random.default_rng(100 + seed)
    acc = _mixed(rng, N, -(2**20), 2**20, EXTREME_ACC)
    sigma = _mixed(rng, N, -STATE_MAX, STATE_MAX, EXTREME_STATE)
    act_prev = _mixed(rng, N, -(2**24), 2**24, EXTREME_STATE + [-(2**25), 2**25])
    vth = _mixed(rng, N, 0, 4096, [0, 1, STATE_MAX])
    bias = _mixed(rng, N, -STATE_MAX, STATE_MAX, [0, STATE_MAX, -STATE_MAX])
    state_exp = int(rng.integers(0, 8))
    (k_arr, k_pay, k_ovf), (r_arr, r_pay, r_ovf) = _run_both(
        sigma_delta_step, sigma_delta_reference, [acc, sigma, act_prev], (vth, bias, relu, state_exp), steps=3)
    for k, r in zip(k_arr, r_arr):
        np.testing.assert_array_equal(k, r)
    np.testing.assert_array_equal(np.array(k_pay), np.array(r_pay))
    assert k_ovf == r_ovf


def test_sigma_delta_extremes_count_overflows():
    """Clipped input, a wrapped sigma and a clipped graded payload are each counted once."""
    for fn in (sigma_delta_step, sigma_delta_reference):
        acc = np.array([STATE_MAX + 5, STATE_MAX, 0], I64)
        sigma = np.array([0, STATE_MAX, 0], I64)
        act_prev = np.array([0, 0, -(2**25)], I64)
        payload = np.zeros(3, I64)
        overflow = fn(acc, payload, sigma, act_prev, np.zeros(3, I64), np.zeros(3, I64), False, 0)
        # neuron 0: input clipped; neuron 1: sigma wraps to 2*STATE_MAX - 2^24 = -2;
        # neuron 2: delta 2^25 is sent clipped to STATE_MAX
        assert overflow == 3, fn.__name__
        assert sigma.tolist() == [STATE_MAX, -2, 0]
        assert payload.tolist() == [STATE_MAX, -2, STATE_MAX]


@pytest.mark.parametrize("seed", range(4))
def test_source_kernel_matches_reference(seed):
    """graded_source: payload is the input value, the accumulator is cleared."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-(2**20), 2**20, N)
    for fn in (source_step, source_reference):
        acc, payload = rng.integers(-5, 5, N), np.zeros(N, I64)
        assert fn(acc, payload, values) == 0
        np.testing.assert_array_equal(payload, values)
        assert not acc.any()


# ---------------------------------------------------------------------------------------------
# hand-computed Loihi semantics


def _lif(acc, u, v, du, dv, vth, bias=0, reset_subtract=False):
    """One kernel step of one neuron (vth None: no threshold); returns (spike, u, v, overflow)."""
    a, uu, vv = (np.array([x], I64) for x in (acc, u, v))
    payload = np.zeros(1, I64)
    vth6 = -1 if vth is None else vth << 6
    ovf = lif_step(a, payload, uu, vv, np.array([du], I64), np.array([dv], I64), np.array([vth6], I64),
                   np.array([bias], I64), reset_subtract)
    return int(payload[0]), int(uu[0]), int(vv[0]), ovf


def test_lif_hand_computed_steps():
    """du=2048, dv=1024, vth=20 (vth<<6 = 1280), input 10, 10, 0."""
    # step 1: u = 10<<6 = 640; v = 0 + 640 = 640 <= 1280
    assert _lif(10, 0, 0, 2048, 1024, 20) == (0, 640, 640, 0)
    # step 2: u = 640*2047>>12 = 319, +640 = 959; v = 640*3072>>12 = 480, +959 = 1439 > 1280: spike, v = 0
    assert _lif(10, 640, 640, 2048, 1024, 20) == (1, 959, 0, 0)
    # step 3: u = 959*2047>>12 = 479 (479.26), v = 0 + 479
    assert _lif(0, 959, 0, 2048, 1024, 20) == (0, 479, 479, 0)
    # reset by subtraction keeps the excess: 1439 - 1280
    assert _lif(10, 640, 640, 2048, 1024, 20, reset_subtract=True) == (1, 959, 159, 0)


def test_lif_decay_rounds_toward_zero():
    """The decay shifts the magnitude: -959*2047/4096 = -479.26 becomes -479, not -480."""
    assert _lif(0, -959, 0, 2048, 4095, 131071)[1] == -479
    assert _lif(0, 0, -1439, 4095, 1024, 131071)[2] == -1079      # -1439*3072/4096 = -1079.25


def test_lif_decay_offsets():
    """du = 4095 forgets u; du = 0 still decays u by 1/4096; dv = 0 keeps v."""
    assert _lif(3, 100_000, 0, 4095, 0, 131071)[1] == 3 << 6
    assert _lif(0, 4096, 0, 0, 0, 131071)[1] == 4095
    assert _lif(0, 0, 5000, 4095, 0, 131071)[2] == 5000


def test_lif_bias_and_threshold_is_strict():
    """A spike needs v > vth<<6; v == vth<<6 does not spike."""
    assert _lif(0, 0, 0, 4095, 4095, 10, bias=640)[:3] == (0, 0, 640)
    assert _lif(0, 0, 0, 4095, 4095, 10, bias=641)[:3] == (1, 0, 0)


def test_lif_16bit_input_and_24bit_wrap():
    """Input clips to 16 bits; u wraps once past 2^23; v saturates at +-(2^23 - 1)."""
    # 40000 clips to 32767; u = (2^23-1)*4095>>12 = 8386559, + 32767<<6 = 10483647 -> wraps to -6293569
    spike, u, v, ovf = _lif(40000, STATE_MAX, 0, 0, 0, 131071)
    assert (spike, u, ovf) == (0, 10483647 - (1 << 24), 2)
    assert v == u
    # v saturates at 2^23 - 1 (dv = 0 keeps v, plus u = 32767<<6), and at -(2^23 - 1)
    assert _lif(32767, 0, STATE_MAX, 4095, 0, None) == (0, 32767 << 6, STATE_MAX, 1)
    assert _lif(-32768, 0, -STATE_MAX, 4095, 0, None) == (0, -32768 << 6, -STATE_MAX, 1)
    # the largest threshold (131071 << 6) is below the saturated v, so a saturated neuron spikes
    assert _lif(32767, 0, STATE_MAX, 4095, 0, 131071)[0] == 1


def test_lif_without_threshold_never_spikes():
    """vth: null makes a non-spiking integrator (a readout)."""
    kind = KINDS["loihi_lif"]
    ns = build_state(kind, {"vth": None, "dv": 0}, 3)
    acc, payload = np.full(3, 30000, I64), np.zeros(3, I64)
    for _ in range(5):
        kind.kernel(acc, payload, *ns.state.values(), *ns.consts)
        acc[:] = 30000
        assert not payload.any()
    assert (ns.state["v"] > 0).all()


def test_sigma_delta_hand_computed_steps():
    """vth=10, relu, state_exp=0: inputs 5, 7, -20 give payloads 0, 12, -12."""
    sigma, act_prev, payload = np.zeros(1, I64), np.zeros(1, I64), np.zeros(1, I64)
    vth, bias = np.array([10], I64), np.zeros(1, I64)
    out = []
    for a in (5, 7, -20):
        sigma_delta_step(np.array([a], I64), payload, sigma, act_prev, vth, bias, True, 0)
        out.append((int(payload[0]), int(sigma[0]), int(act_prev[0])))
    assert out == [(0, 5, 0), (12, 12, 12), (-12, -8, 0)]   # relu: act = max(-8, 0) = 0


def test_sigma_delta_state_exp_keeps_residue():
    """state_exp=2: delta 13 sends 13>>2 = 3 and remembers 12; the residue 1 stays below vth."""
    sigma, act_prev, payload = np.zeros(1, I64), np.zeros(1, I64), np.zeros(1, I64)
    consts = (np.array([4], I64), np.zeros(1, I64), False, 2)
    sigma_delta_step(np.array([13], I64), payload, sigma, act_prev, *consts)
    assert (payload[0], act_prev[0]) == (3, 12)
    sigma_delta_step(np.array([0], I64), payload, sigma, act_prev, *consts)
    assert (payload[0], act_prev[0]) == (0, 12)


# ---------------------------------------------------------------------------------------------
# parameters


PREFIX = ("populations", "hid", "params")


@pytest.mark.parametrize("value, expected", [(5000, "<= 4095, found 5000"), (1.5, "an integer, found 1.5"),
                                             (None, "an integer, found None"), ("abc", "an integer")])
def test_build_state_rejects_a_wrong_scalar_parameter(value, expected):
    """A wrong scalar parameter is a UserError naming file and field, not a crash or a silent truncation."""
    with pytest.raises(UserError) as err:
        build_state(KINDS["loihi_lif"], {"vth": 10, "du": value}, 4, file="m.yaml", prefix=PREFIX)
    assert (err.value.file, err.value.field) == ("m.yaml", "populations.hid.params.du")
    assert expected in err.value.message


def test_build_state_checks_per_neuron_arrays():
    """Per-neuron arrays are range-checked; a parameter that cannot be per-neuron refuses an array."""
    with pytest.raises(UserError, match=r"dv holds values outside \[0, 4095\]"):
        build_state(KINDS["loihi_lif"], {"vth": 10, "dv": np.array([1, 2, 3, 9999])}, 4, file="m.yaml",
                    prefix=PREFIX)
    with pytest.raises(UserError) as err:      # was silently replaced by vth = 0
        build_state(KINDS["loihi_lif"], {"vth": np.array([5, 5, 5, 5])}, 4, file="m.yaml", prefix=PREFIX)
    assert err.value.field == "populations.hid.params.vth"
    ns = build_state(KINDS["sigma_delta"], {"vth": np.array([1, 2, 3, 4]), "bias": -3}, 4)
    assert ns.consts[0].tolist() == [1, 2, 3, 4] and ns.consts[1].tolist() == [-3] * 4
    with pytest.raises(UserError, match="unknown field"):
        build_state(KINDS["sigma_delta"], {"vth": 1, "threshold": 3}, 4)
