"""Neuron programs: each numba kernel against its plain-numpy reference (random, multi-step and
batched), hand-computed steps and spike times of the fixed-point arithmetic
(Lava's bit-accurate Loihi models, as `neurosim/programs/lif.py` gives them), and the checking of their parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurosim.errors import UserError
from neurosim.programs.fixed import STATE_MAX, decay, fix24, shift, wrap24
from neurosim.programs import KINDS, build_state, payload_bits_of, run_step, state_bytes_of

I64 = np.int64
TWO23 = 1 << 23
ACC_EXTREMES = [0, 1, -1, 2**15 - 1, 2**15, -(2**15), -(2**15) - 1, STATE_MAX, STATE_MAX + 1, -STATE_MAX,
                -STATE_MAX - 1, 2**40, -(2**40)]
STATE_EXTREMES = [0, 1, -1, STATE_MAX, -STATE_MAX, 2**22, -(2**22), 2**23 - 4096, -(2**23) + 4096]
OVERFLOWS = ("wrap", "saturate")
ACTIVATIONS = ("relu", "identity")


def _mixed(rng: np.random.Generator, n: int, lo: int, hi: int, extremes: list[int]) -> np.ndarray:
    """Random values in [lo, hi] with about a third replaced by extremes."""
    x = rng.integers(lo, hi + 1, n, dtype=I64)
    pick = rng.random(n) < 0.35
    if extremes:
        x[pick] = rng.choice(np.array(extremes, I64), int(pick.sum()))
    return x


def _pmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


# ---------------------------------------------------------------------------------------------
# random cases: parameters (per-neuron ones as arrays), a starting state, the accumulators of a step

# Every program with each of its modes; the other parameters are drawn by `_params`.
VARIANTS = [
    ("loihi_lif", {"reset": "zero"}),
    ("loihi_lif", {"reset": "subtract"}),
    ("loihi_lif", {"vth": None}),
    *[("cuba_lif", {"overflow": o, "graded": g, "refractory": r})
      for o in OVERFLOWS for g in (False, True) for r in (0, 3)],
    *[("sigma_delta", {"overflow": o, "activation": a}) for o in OVERFLOWS for a in ACTIVATIONS],
    *[("graded_relu", {"activation": a}) for a in ACTIVATIONS],
    *[("gate_product", {"activation_a": a, "activation_b": b}) for a in ACTIVATIONS for b in ACTIVATIONS],
    *[("gated_recurrence", {"overflow": o}) for o in OVERFLOWS],
    ("graded_source", {}),
]
VARIANT_IDS = [name + "".join(f"-{k}={v}" for k, v in fixed.items()) for name, fixed in VARIANTS]
COMPARED = [pytest.param(name, fixed, id=i)
            for (name, fixed), i in zip(VARIANTS, VARIANT_IDS)]


def _params(name: str, fixed: dict, rng: np.random.Generator, n: int) -> dict:
    """Random parameters of `name` (every per-neuron one as an array), with `fixed` on top."""
    def arr(lo, hi, extremes):
        return _mixed(rng, n, lo, hi, extremes)

    def one(lo, hi):
        return int(rng.integers(lo, hi + 1))

    if name == "loihi_lif":
        p = dict(du=arr(0, 4095, [0, 4095]), dv=arr(0, 4095, [0, 4095]), bias_mant=arr(-4095, 4095, [0, -4095, 4095]),
                 bias_exp=one(-7, 7), vth=arr(0, 131071, [0, 1, 131071]))
    elif name == "cuba_lif":
        p = dict(du=arr(0, 4096, [0, 4096]), dv=arr(0, 4096, [0, 4096]),
                 bias=arr(-(2**16), 2**16, [0, STATE_MAX, -STATE_MAX]), vth=arr(0, 131071, [0, 1, 131071]),
                 reset=("zero", "subtract")[one(0, 1)], payload_bits=one(4, 16) if fixed.get("graded") else 24)
    elif name == "sigma_delta":
        p = dict(vth=arr(0, 4096, [0, 1, STATE_MAX]), bias=arr(-STATE_MAX, STATE_MAX, [0, STATE_MAX, -STATE_MAX]),
                 state_exp=one(0, 7), payload_bits=one(8, 20))
    elif name == "graded_relu":
        p = dict(bias=arr(-(2**20), 2**20, [0, STATE_MAX, -STATE_MAX]), shift=one(0, 8), payload_bits=one(4, 24))
    elif name == "gate_product":
        p = dict(frac_bits=one(0, 12), payload_bits=one(8, 32))
    elif name == "gated_recurrence":
        p = dict(frac_bits=one(1, 16), payload_bits=one(4, 24))
    else:
        p = dict(payload_bits=one(4, 32))
    return p | fixed


def _state(name: str, params: dict, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A random starting state within the registers' ranges (with their extremes)."""
    def st24():
        return _mixed(rng, n, -STATE_MAX, STATE_MAX, STATE_EXTREMES)

    if name == "loihi_lif":
        return dict(u=st24(), v=st24())
    if name == "cuba_lif":
        return dict(u=st24(), v=st24(), refractory_left=rng.integers(0, params["refractory"] + 1, n, dtype=I64))
    if name == "sigma_delta":
        return dict(sigma=st24(), act_prev=_mixed(rng, n, -(2**24), 2**24, STATE_EXTREMES + [-(2**25), 2**25]))
    if name == "gated_recurrence":
        # h never leaves 24 bits on its own (it is a convex mix of h and a clipped c), so values just
        # outside are planted to reach the wrap/saturate branch
        return dict(h=_mixed(rng, n, -STATE_MAX, STATE_MAX, STATE_EXTREMES + [TWO23, -TWO23, TWO23 + 5, -TWO23 - 5]))
    if name == "graded_source":
        return dict(values=_mixed(rng, n, -(2**20), 2**20, [0, 1, -1, 2**31 - 1, 2**31, -(2**31), 2**40, -(2**40)]))
    return {}


def _acc(name: str, params: dict, rng: np.random.Generator, n: int) -> np.ndarray:
    """One step's accumulators, [ports, n]."""
    def row(lo, hi, extremes=ACC_EXTREMES):
        return _mixed(rng, n, lo, hi, extremes)

    if name in ("loihi_lif", "cuba_lif"):
        return np.stack([row(-(2**17), 2**17)])
    if name == "sigma_delta":
        return np.stack([row(-(2**20), 2**20)])
    if name == "graded_relu":
        return np.stack([row(-(2**24), 2**24)])
    if name == "gate_product":
        return np.stack([row(-(2**16), 2**16), row(-(2**16), 2**16)])
    if name == "gated_recurrence":
        one = 1 << params["frac_bits"]
        return np.stack([row(-one // 2, one + one // 2, [0, 1, -1, one - 1, one, one + 1, 2**40, -(2**40)]),
                         row(-(2**20), 2**20)])
    return rng.integers(-5, 6, (1, n), dtype=I64)     # a source ignores (and clears) its accumulator


@dataclass
class Step:
    overflow: int
    payload: np.ndarray
    acc: np.ndarray                  # the accumulators after the step
    state: dict[str, np.ndarray]


def _run(name: str, params: dict, state: dict, accs: list[np.ndarray], reference: bool) -> list[Step]:
    """Build a population, set its state, run it through the steps; what each step left."""
    kind = KINDS[name]
    n = accs[0].shape[1]
    ns = build_state(kind, params, n)
    for key, value in state.items():
        ns.state[key][:] = value
    steps = []
    for acc in accs:
        acc = acc.copy()
        payload = np.full(n, -7, I64)
        overflow = run_step(kind, acc, payload, ns, reference=reference)
        steps.append(Step(overflow, payload, acc, {k: v.copy() for k, v in ns.state.items()}))
    return steps


# ---------------------------------------------------------------------------------------------
# kernel == reference


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name, fixed", COMPARED)
def test_kernel_matches_reference(name, fixed, seed):
    """Over 4 steps from random extreme state: state, payloads, cleared accumulators and overflow counts agree."""
    rng = np.random.default_rng(seed)
    n = 200
    params = _params(name, fixed, rng, n)
    state = _state(name, params, rng, n)
    accs = [_acc(name, params, rng, n) for _ in range(4)]
    kernel, reference = _run(name, params, state, accs, False), _run(name, params, state, accs, True)
    for t, (k, r) in enumerate(zip(kernel, reference)):
        np.testing.assert_array_equal(k.payload, r.payload, err_msg=f"payload at step {t}")
        assert not k.acc.any() and not r.acc.any(), f"accumulators cleared at step {t}"
        assert k.state.keys() == r.state.keys()
        for key in k.state:
            np.testing.assert_array_equal(k.state[key], r.state[key], err_msg=f"{key} at step {t}")
    assert [r.overflow for r in reference] == [k.overflow for k in kernel], "overflow counts per step"


def _branches(name: str, p: dict, s: dict, acc: np.ndarray) -> tuple[dict, dict]:
    """How many neurons take each overflow branch, and each other branch, in one step; computed
    here from the formulas of the module docstring, independently of both implementations."""
    ovf, other = {}, {}
    sat = p.get("overflow") == "saturate"
    # 24 bits: saturation keeps +-(2^23 - 1), a two's-complement wrap keeps -2^23 .. 2^23 - 1
    top, bottom = (STATE_MAX, -STATE_MAX) if sat else (TWO23 - 1, -TWO23)

    def hi_lo(key, x, hi, lo, where=True):
        ovf[f"{key} high"] = int(np.count_nonzero(where & (x > hi)))
        ovf[f"{key} low"] = int(np.count_nonzero(where & (x < lo)))

    if name == "loihi_lif":
        a = np.clip(acc[0], -(2**15), 2**15 - 1)
        hi_lo("input", acc[0], 2**15 - 1, -(2**15))
        u_raw = decay(s["u"], 4096 - (p["du"] + 1)) + (a << 6)
        hi_lo("u wrap", u_raw, TWO23, -TWO23 + 1)
        v_raw = decay(s["v"], 4096 - p["dv"]) + wrap24(u_raw) + shift(p["bias_mant"], p["bias_exp"])
        hi_lo("v saturate", v_raw, STATE_MAX, -STATE_MAX)
        if p["vth"] is not None:
            spikes = np.clip(v_raw, -STATE_MAX, STATE_MAX) > (p["vth"] << 6)
            other |= {"spike": spikes.sum(), "no spike": (~spikes).sum()}
    elif name == "cuba_lif":
        a = np.clip(acc[0], -(2**15), 2**15 - 1)
        hi_lo("input", acc[0], 2**15 - 1, -(2**15))
        u_raw = decay(s["u"], 4096 - p["du"]) + (a << 6)
        hi_lo("u", u_raw, top, bottom)
        active = s["refractory_left"] == 0
        v_raw = decay(s["v"], 4096 - p["dv"]) + fix24(u_raw, sat) + p["bias"]
        hi_lo("v", v_raw, top, bottom, active)
        spikes = active & (fix24(v_raw, sat) > (p["vth"] << 6))
        if p["graded"]:
            clipped = spikes & (np.maximum(fix24(v_raw, sat) >> 6, 1) > _pmax(p["payload_bits"]))
            ovf["graded payload high"] = int(np.count_nonzero(clipped))
        other |= {"spike": spikes.sum(), "active, no spike": (active & ~spikes).sum()}
        if p["refractory"]:
            other["refractory"] = (~active).sum()
    elif name == "sigma_delta":
        a = np.clip(acc[0], -STATE_MAX, STATE_MAX)
        hi_lo("input", acc[0], STATE_MAX, -STATE_MAX)
        s_raw = s["sigma"] + a
        hi_lo("sigma", s_raw, top, bottom)
        act = fix24(s_raw, sat) + p["bias"]
        if p["activation"] == "relu":
            other["relu zeroed"] = (act < 0).sum()
            act = np.maximum(act, 0)
        delta = act - s["act_prev"]
        sent = np.abs(delta) >= p["vth"]
        hi_lo("payload", delta >> p["state_exp"], _pmax(p["payload_bits"]), -_pmax(p["payload_bits"]), sent)
        other |= {"sent": sent.sum(), "held": (~sent).sum()}
    elif name == "graded_relu":
        x = acc[0] + p["bias"]
        if p["activation"] == "relu":
            other["relu zeroed"] = (x < 0).sum()
            x = np.maximum(x, 0)
        hi_lo("payload", x >> p["shift"], _pmax(p["payload_bits"]), -_pmax(p["payload_bits"]))
        if p["activation"] == "relu":
            del ovf["payload low"]                   # unreachable: x >= 0
    elif name == "gate_product":
        hi_lo("a", acc[0], STATE_MAX, -STATE_MAX)
        hi_lo("b", acc[1], STATE_MAX, -STATE_MAX)
        a, b = np.clip(acc[0], -STATE_MAX, STATE_MAX), np.clip(acc[1], -STATE_MAX, STATE_MAX)
        if p["activation_a"] == "relu":
            other["relu zeroed a"] = (a < 0).sum()
            a = np.maximum(a, 0)
        if p["activation_b"] == "relu":
            other["relu zeroed b"] = (b < 0).sum()
            b = np.maximum(b, 0)
        hi_lo("payload", (a * b) >> p["frac_bits"], _pmax(p["payload_bits"]), -_pmax(p["payload_bits"]))
        if p["activation_a"] == p["activation_b"] == "relu":
            del ovf["payload low"]                   # unreachable: a * b >= 0
    elif name == "gated_recurrence":
        one = 1 << p["frac_bits"]
        hi_lo("f", acc[0], one, 0)
        hi_lo("c", acc[1], STATE_MAX, -STATE_MAX)
        f, c = np.clip(acc[0], 0, one), np.clip(acc[1], -STATE_MAX, STATE_MAX)
        h_raw = (f * s["h"] + (one - f) * c) >> p["frac_bits"]
        hi_lo("h", h_raw, top, bottom)
        hi_lo("payload", fix24(h_raw, sat), _pmax(p["payload_bits"]), -_pmax(p["payload_bits"]))
    else:
        hi_lo("payload", s["values"], _pmax(p["payload_bits"]), -_pmax(p["payload_bits"]))
    return ovf, {k: int(v) for k, v in other.items()}


@pytest.mark.parametrize("name, fixed", VARIANTS, ids=VARIANT_IDS)
def test_random_cases_reach_every_overflow_branch(name, fixed):
    """The random cases above hit every clip, wrap and saturation branch (and every other branch), and
    the kernel's overflow count is the sum of the branches taken."""
    rng = np.random.default_rng(0)
    n = 4000
    params = _params(name, fixed, rng, n)
    state = _state(name, params, rng, n)
    acc = _acc(name, params, rng, n)
    ovf, other = _branches(name, params, state, acc)
    assert all(ovf.values()) and all(other.values()), (ovf, other)
    assert _run(name, params, state, [acc], reference=False)[0].overflow == sum(ovf.values())


# The richest variant of each program
BATCHED = [("loihi_lif", {"reset": "subtract"}), ("cuba_lif", {"overflow": "wrap", "graded": True, "refractory": 3}),
           ("sigma_delta", {"overflow": "saturate", "activation": "identity"}), ("graded_relu", {"activation": "relu"}),
           ("gate_product", {"activation_a": "relu", "activation_b": "identity"}),
           ("gated_recurrence", {"overflow": "wrap"}), ("graded_source", {})]


@pytest.mark.parametrize("name, fixed", BATCHED, ids=[b[0] for b in BATCHED])
def test_reference_batched_equals_per_sample(name, fixed):
    """The reference on state [3, n] and acc [3, ports, n] equals it run on each of the 3 samples, over 2 steps."""
    rng = np.random.default_rng(7)
    n = 60
    kind = KINDS[name]
    params = _params(name, fixed, rng, n)
    consts = build_state(kind, params, n).consts
    samples = [_state(name, params, rng, n) for _ in range(3)]
    batched = {k: np.stack([s[k] for s in samples]) for k in samples[0]}
    single = {k: v.copy() for k, v in batched.items()}
    for _ in range(2):
        acc = np.stack([_acc(name, params, rng, n) for _ in range(3)])
        acc_b, payload_b = acc.copy(), np.full((3, n), -7, I64)
        overflow_b = kind.reference(acc_b, payload_b, *batched.values(), *consts)
        overflow_s = 0
        for i in range(3):
            acc_i, payload_i = acc[i].copy(), np.full(n, -7, I64)
            overflow_s += kind.reference(acc_i, payload_i, *(v[i] for v in single.values()), *consts)
            np.testing.assert_array_equal(payload_b[i], payload_i)
        assert overflow_b == overflow_s
        assert not acc_b.any()
        for key in batched:
            np.testing.assert_array_equal(batched[key], single[key], err_msg=key)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 30), steps=st.integers(1, 4), reset_subtract=st.booleans())
def test_lif_kernel_matches_reference_hypothesis(data, n, steps, reset_subtract):
    """LIF over several steps on hypothesis-chosen state, with thresholds and no thresholds in one population."""
    def ints(lo, hi):
        return hnp.arrays(I64, n, elements=st.integers(lo, hi))

    acc = data.draw(ints(-(2**40), 2**40))[None, :]
    u = data.draw(ints(-STATE_MAX, STATE_MAX))
    v = data.draw(ints(-STATE_MAX, STATE_MAX))
    du, dv = data.draw(ints(0, 4095)), data.draw(ints(0, 4095))
    vth6 = data.draw(ints(-1, 131071)) << 6
    vth6[vth6 < 0] = -1
    bias = data.draw(ints(-4095, 4095)) << data.draw(st.integers(0, 7))
    kind = KINDS["loihi_lif"]
    results = []
    for fn in (kind.kernel, kind.reference):
        a, uu, vv = acc.copy(), u.copy(), v.copy()
        out = []
        for _ in range(steps):
            payload = np.full(n, -7, I64)
            out.append((fn(a, payload, uu, vv, du, dv, vth6, bias, reset_subtract), payload.tolist()))
            assert not a.any()
            a[:] = acc
        results.append((out, uu.tolist(), vv.tolist()))
    assert results[0] == results[1]


# ---------------------------------------------------------------------------------------------
# hand-computed steps; each runs the kernel and the reference


@pytest.fixture(params=[False, True], ids=["kernel", "reference"])
def reference(request) -> bool:
    return request.param


@dataclass
class Trace:
    payload: list        # [steps][neurons]
    state: dict          # name -> [steps][neurons]
    overflow: list       # [steps]


def _trace(name: str, params: dict, accs: list, reference: bool, **state) -> Trace:
    """Run a population through the steps; each acc is a nested list [ports][neurons]."""
    accs = [np.array(a, I64) for a in accs]
    steps = _run(name, params, {k: np.array(v, I64) for k, v in state.items()}, accs, reference)
    keys = steps[0].state.keys()
    return Trace([s.payload.tolist() for s in steps], {k: [s.state[k].tolist() for s in steps] for k in keys},
                 [s.overflow for s in steps])


def _spike_steps(trace: Trace) -> list[int]:
    """The 1-based steps at which neuron 0 sent an event."""
    return [t + 1 for t, p in enumerate(trace.payload) if p[0]]


def _lif(acc, u, v, du, dv, vth, bias=0, reset_subtract=False, reference=False):
    """One loihi_lif step of one neuron (vth None: no threshold); returns (spike, u, v, overflow)."""
    params = dict(du=du, dv=dv, vth=vth, bias_mant=bias, reset="subtract" if reset_subtract else "zero")
    t = _trace("loihi_lif", params, [[[acc]]], reference, u=[u], v=[v])
    return t.payload[0][0], t.state["u"][0][0], t.state["v"][0][0], t.overflow[0]


def test_lif_hand_computed_steps(reference):
    """du=2048, dv=1024, vth=20 (vth<<6 = 1280), input 10, 10, 0."""
    # step 1: u = 10<<6 = 640; v = 0 + 640 = 640 <= 1280
    assert _lif(10, 0, 0, 2048, 1024, 20, reference=reference) == (0, 640, 640, 0)
    # step 2: u = 640*2047>>12 = 319, +640 = 959; v = 640*3072>>12 = 480, +959 = 1439 > 1280: spike, v = 0
    assert _lif(10, 640, 640, 2048, 1024, 20, reference=reference) == (1, 959, 0, 0)
    # step 3: u = 959*2047>>12 = 479 (479.26), v = 0 + 479
    assert _lif(0, 959, 0, 2048, 1024, 20, reference=reference) == (0, 479, 479, 0)
    # reset by subtraction keeps the excess: 1439 - 1280
    assert _lif(10, 640, 640, 2048, 1024, 20, reset_subtract=True, reference=reference) == (1, 959, 159, 0)


def test_lif_decay_rounds_toward_zero(reference):
    """The decay shifts the magnitude: -959*2047/4096 = -479.26 becomes -479, not -480."""
    assert _lif(0, -959, 0, 2048, 4095, 131071, reference=reference)[1] == -479
    assert _lif(0, 0, -1439, 4095, 1024, 131071, reference=reference)[2] == -1079   # -1439*3072/4096 = -1079.25


def test_lif_decay_offsets(reference):
    """du = 4095 forgets u; du = 0 still decays u by 1/4096; dv = 0 keeps v."""
    assert _lif(3, 100_000, 0, 4095, 0, 131071, reference=reference)[1] == 3 << 6
    assert _lif(0, 4096, 0, 0, 0, 131071, reference=reference)[1] == 4095
    assert _lif(0, 0, 5000, 4095, 0, 131071, reference=reference)[2] == 5000


def test_lif_bias_and_threshold_is_strict(reference):
    """A spike needs v > vth<<6; v == vth<<6 does not spike."""
    assert _lif(0, 0, 0, 4095, 4095, 10, bias=640, reference=reference)[:3] == (0, 0, 640)
    assert _lif(0, 0, 0, 4095, 4095, 10, bias=641, reference=reference)[:3] == (1, 0, 0)


def test_lif_bias_is_mantissa_shifted_by_exponent(reference):
    """bias = bias_mant << bias_exp, a right shift (toward -inf) for a negative exponent."""
    # 5 << 3 = 40; -5 >> 1 = -2.5 -> -3; both neurons forget v (dv = 4095 keeps 1/4096 of 0)
    params = dict(vth=None, dv=4095, bias_mant=np.array([5, -5]), bias_exp=3)
    assert _trace("loihi_lif", params, [[[0, 0]]], reference).state["v"] == [[40, -40]]
    params["bias_exp"] = -1
    assert _trace("loihi_lif", params, [[[0, 0]]], reference).state["v"] == [[2, -3]]


def test_lif_16bit_input_and_24bit_wrap(reference):
    """Input clips to 16 bits; u wraps once past 2^23; v saturates at +-(2^23 - 1)."""
    # 40000 clips to 32767; u = (2^23-1)*4095>>12 = 8386559, + 32767<<6 = 10483647 -> wraps to -6293569
    spike, u, v, ovf = _lif(40000, STATE_MAX, 0, 0, 0, 131071, reference=reference)
    assert (spike, u, ovf) == (0, 10483647 - (1 << 24), 2)
    assert v == u
    # v saturates at 2^23 - 1 (dv = 0 keeps v, plus u = 32767<<6), and at -(2^23 - 1)
    assert _lif(32767, 0, STATE_MAX, 4095, 0, None, reference=reference) == (0, 32767 << 6, STATE_MAX, 1)
    assert _lif(-32768, 0, -STATE_MAX, 4095, 0, None, reference=reference) == (0, -32768 << 6, -STATE_MAX, 1)
    # the largest threshold (131071 << 6) is below the saturated v, so a saturated neuron spikes
    assert _lif(32767, 0, STATE_MAX, 4095, 0, 131071, reference=reference)[0] == 1


def test_lif_without_threshold_never_spikes(reference):
    """vth: null makes a non-spiking integrator (a readout)."""
    t = _trace("loihi_lif", {"vth": None, "dv": 0}, [[[30000] * 3]] * 5, reference)
    assert not np.any(t.payload)
    assert all(v > 0 for v in t.state["v"][-1])


@pytest.mark.parametrize("reset, spikes", [("zero", [3, 6, 9, 12]), ("subtract", [3, 6, 8, 11])])
def test_lif_spike_times_with_constant_input(reference, reset, spikes):
    """One LIF neuron, du=4095, dv=0, input 10, vth=25: spikes every 3 steps (reset zero) or 3,3,2,3 (subtract)."""
    # du = 4095: u = 10<<6 = 640 every step; dv = 0: v adds 640 a step; vth<<6 = 1600.
    # zero:     640, 1280, 1920 > 1600 spike -> 0, and again: steps 3, 6, 9, 12
    # subtract: 640, 1280, 1920 spike -> 320; 960, 1600 (not >), 2240 spike -> 640; 1280, 1920 spike -> 320;
    #           960, 1600, 2240 spike -> 640; 1280: steps 3, 6, 8, 11
    t = _trace("loihi_lif", dict(du=4095, dv=0, vth=25, reset=reset), [[[10]]] * 12, reference)
    assert _spike_steps(t) == spikes
    assert {u for (u,) in t.state["u"]} == {640}


# --- cuba_lif


def test_cuba_lif_decays_have_no_offset(reference):
    """du = 0 keeps u exactly; du = dv = 2048 halve (toward zero); du = dv = 4096 forget."""
    # neuron 0: du = 0: u = 4096 stays (loihi_lif would give 4095); dv = 0: v = 5000 + 4096 = 9096
    # neuron 1: u = -1001*2048/4096 = -500.5 -> -500; v = 3001*2048/4096 = 1500.5 -> 1500, + u = 1000
    # neuron 2: u = 0, v = 0 + 0
    params = dict(vth=None, du=np.array([0, 2048, 4096]), dv=np.array([0, 2048, 4096]))
    t = _trace("cuba_lif", params, [[[0, 0, 0]]], reference, u=[4096, -1001, 777], v=[5000, 3001, 888])
    assert t.state["u"] == [[4096, -500, 0]]
    assert t.state["v"] == [[9096, 1000, 0]]
    assert t.overflow == [0]


def test_cuba_lif_refractory_holds_v_at_zero(reference):
    """refractory=3: after a spike v stays 0 and no spike comes for exactly 3 steps, while u keeps integrating."""
    # du = 4096: u = 100<<6 = 6400 each step; vth<<6 = 640; reset subtract would keep 6400 - 640 = 5760.
    # step 1: v = 6400 > 640: spike, v = 5760, refractory_left = 3
    # steps 2, 3, 4: refractory: v = 0, no spike, refractory_left 2, 1, 0
    # step 5: v = 0 + 6400: spike again, v = 5760, refractory_left = 3; step 6: refractory
    params = dict(vth=10, du=4096, dv=0, refractory=3, reset="subtract")
    t = _trace("cuba_lif", params, [[[100]]] * 6, reference)
    assert [p for (p,) in t.payload] == [1, 0, 0, 0, 1, 0]
    assert [v for (v,) in t.state["v"]] == [5760, 0, 0, 0, 5760, 0]
    assert [r for (r,) in t.state["refractory_left"]] == [3, 2, 1, 0, 3, 2]
    assert [u for (u,) in t.state["u"]] == [6400] * 6


@pytest.mark.parametrize("refractory, spikes", [(2, [5, 12, 19]), (0, [5, 10, 15, 20])])
def test_cuba_lif_spike_times_with_leak_and_refractory(reference, refractory, spikes):
    """One CUBA neuron, input 10, dv=1024 (leaks 1/4), vth=30: spikes at steps 5, 12, 19 with refractory 2."""
    # du = 4096: u = 10<<6 = 640 each step; v = v*3072>>12 + 640; vth<<6 = 1920
    # v: 640; 480+640 = 1120; 840+640 = 1480; 1110+640 = 1750; 1312 (1312.5)+640 = 1952 > 1920: spike at 5, v = 0
    # refractory 2: steps 6, 7 hold v = 0, step 8 starts over at 640: a period of 7 -> 5, 12, 19
    # refractory 0: step 6 starts over at 640: a period of 5 -> 5, 10, 15, 20
    # (without the leak, v = 640*t would pass 1920 at step 4)
    params = dict(vth=30, du=4096, dv=1024, refractory=refractory)
    t = _trace("cuba_lif", params, [[[10]]] * 20, reference)
    assert _spike_steps(t) == spikes
    assert [v for (v,) in t.state["v"][:5]] == [640, 1120, 1480, 1750, 0]
    if refractory:
        assert [v for (v,) in t.state["v"][5:8]] == [0, 0, 640]


@pytest.mark.parametrize("graded, payload_bits, payload, overflow",
                         [(False, 24, 1, 0), (True, 24, 21, 0), (True, 4, 7, 1)])
def test_cuba_lif_graded_payload_is_v_shifted(reference, graded, payload_bits, payload, overflow):
    """graded: a spike carries v >> 6, clipped to payload_bits (counted); otherwise it carries 1."""
    # u = 20<<6 = 1280; v = 1280 + bias 100 = 1380 > 10<<6 = 640: spike; 1380 >> 6 = 21 (21*64 = 1344);
    # 4 payload bits hold at most 7
    params = dict(vth=10, du=4096, bias=100, graded=graded, payload_bits=payload_bits)
    t = _trace("cuba_lif", params, [[[20]]], reference)
    assert (t.payload, t.overflow, t.state["v"]) == ([[payload]], [overflow], [[0]])


@pytest.mark.parametrize("overflow, v, u", [("wrap", [-8388555, -8388545], [64, -8388545]),
                                            ("saturate", [STATE_MAX, STATE_MAX], [64, STATE_MAX])])
def test_cuba_lif_overflow_wraps_or_saturates(reference, overflow, v, u):
    """A v or u past 24 bits wraps by 2^24 (overflow: wrap) or clips to 2^23 - 1 (saturate), counted once each."""
    # neuron 0: du = 4096, u = 1<<6 = 64; v = (2^23 - 11) + 64 = 8388661 > 2^23:
    #           wrap: 8388661 - 2^24 = -8388555; saturate: 8388607
    # neuron 1: du = 0 keeps u = 2^23 - 1: u = 8388607 + 64 = 8388671: wrap: -8388545; saturate: 8388607;
    #           v = 0 + u, in range
    params = dict(vth=None, du=np.array([4096, 0]), dv=0, overflow=overflow)
    t = _trace("cuba_lif", params, [[[1, 1]]], reference, u=[0, STATE_MAX], v=[STATE_MAX - 10, 0])
    assert (t.state["v"], t.state["u"], t.overflow) == ([v], [u], [2])


# --- sigma_delta


def test_sigma_delta_hand_computed_steps(reference):
    """vth=10, relu, state_exp=0: inputs 5, 7, -20 give payloads 0, 12, -12."""
    # sigma 5: delta 5 < 10 held; sigma 12: delta 12 sent, act_prev 12; sigma -8: relu 0, delta -12 sent
    t = _trace("sigma_delta", dict(vth=10, activation="relu"), [[[5]], [[7]], [[-20]]], reference)
    assert t.payload == [[0], [12], [-12]]
    assert t.state["sigma"] == [[5], [12], [-8]]
    assert t.state["act_prev"] == [[0], [12], [0]]


def test_sigma_delta_holds_a_small_change_and_sends_it_later(reference):
    """vth=10: changes of 6 and 3 are held (below vth); with 2 more the whole 11 goes out at once."""
    # act 6: delta 6 < 10; act 9: delta 9 < 10; act 11: delta 11 >= 10: sent, act_prev = 11
    t = _trace("sigma_delta", dict(vth=10, activation="identity"), [[[6]], [[3]], [[2]]], reference)
    assert t.payload == [[0], [0], [11]]
    assert t.state["act_prev"] == [[0], [0], [11]]


def test_sigma_delta_state_exp_keeps_residue(reference):
    """state_exp=2: delta 13 sends 13>>2 = 3 and remembers 12; the residue 1 stays below vth."""
    t = _trace("sigma_delta", dict(vth=4, activation="identity", state_exp=2), [[[13]], [[0]]], reference)
    assert t.payload == [[3], [0]]
    assert t.state["act_prev"] == [[12], [12]]


@pytest.mark.parametrize("overflow, sigma1", [("wrap", -2), ("saturate", STATE_MAX)])
def test_sigma_delta_extremes_count_overflows(reference, overflow, sigma1):
    """A clipped input, a wrapped/saturated sigma and a clipped graded payload are each counted once."""
    # neuron 0: input clipped to 2^23 - 1; neuron 1: sigma = 2*(2^23 - 1) wraps to 2^24 - 2 - 2^24 = -2, or
    # saturates at 2^23 - 1; neuron 2: delta 0 - (-2^25) = 2^25 is sent clipped to 2^23 - 1 (24 payload bits)
    params = dict(vth=0, activation="identity", overflow=overflow)
    t = _trace("sigma_delta", params, [[[STATE_MAX + 5, STATE_MAX, 0]]], reference,
               sigma=[0, STATE_MAX, 0], act_prev=[0, 0, -(2**25)])
    assert t.state["sigma"] == [[STATE_MAX, sigma1, 0]]
    assert t.payload == [[STATE_MAX, sigma1, STATE_MAX]]
    assert t.overflow == [3]


def test_sigma_delta_payload_bits_clip(reference):
    """payload_bits=4: changes of +100 and -300 go out as +7 and -7, each counted as an overflow."""
    # act 100: delta 100 -> 7; act -200: delta -200 - 100 = -300 -> -7 (4 bits hold +-7)
    params = dict(vth=0, activation="identity", payload_bits=4)
    t = _trace("sigma_delta", params, [[[100]], [[-300]]], reference)
    assert t.payload == [[7], [-7]]
    assert t.overflow == [1, 1]


# --- graded_relu, gate_product, gated_recurrence, graded_source


@pytest.mark.parametrize("activation, payload, overflow", [("relu", [5, 0, 7, 0], 1), ("identity", [5, -7, 7, -7], 2)])
def test_graded_relu_bias_shift_and_clip(reference, activation, payload, overflow):
    """bias=5, shift=2, payload_bits=4 (+-7): inputs 15, -30, 100, -100."""
    # acc + bias = 20, -25, 105, -95
    # relu:     20, 0, 105, 0        >> 2 = 5, 0, 26, 0    -> 26 clips to 7
    # identity: 20, -25, 105, -95    >> 2 = 5, -7 (-6.25 floors), 26, -24 (-23.75) -> 26, -24 clip to 7, -7
    params = dict(bias=5, shift=2, payload_bits=4, activation=activation)
    t = _trace("graded_relu", params, [[[15, -30, 100, -100]]], reference)
    assert (t.payload, t.overflow) == ([payload], [overflow])


@pytest.mark.parametrize("act_a, act_b, payload", [("identity", "identity", [48, -48, -24, 127, -1]),
                                                   ("relu", "identity", [48, 0, -24, 127, 0]),
                                                   ("identity", "relu", [48, -48, 0, 127, -1])])
def test_gate_product_of_two_ports(reference, act_a, act_b, payload):
    """frac_bits=4, payload_bits=8 (+-127): (a * b) >> 4, relu applied to a port before the product."""
    # a = 32, -32, 48, 32, -3; b = 24, 24, -8, 1000, 5
    # a*b = 768, -768, -384, 32000, -15 >> 4 = 48, -48, -24, 2000 (clips to 127), -1 (-0.94 floors)
    # relu on a zeroes neurons 1 and 4; relu on b zeroes neuron 2
    params = dict(frac_bits=4, payload_bits=8, activation_a=act_a, activation_b=act_b)
    t = _trace("gate_product", params, [[[32, -32, 48, 32, -3], [24, 24, -8, 1000, 5]]], reference)
    assert (t.payload, t.overflow) == ([payload], [1])


@pytest.mark.parametrize("payload_bits, payload, overflow", [(24, [40, 40, -28, -48], [0, 1, 0, 1]),
                                                             (6, [31, 31, -28, -31], [1, 2, 0, 2])])
def test_gated_recurrence_mixes_h_and_c(reference, payload_bits, payload, overflow):
    """frac_bits=4 (one = 16): h = (f*h + (16 - f)*c) >> 4, with f clipped to [0, 16], over 4 steps."""
    # step 1: f 12, c 160:          (12*0 + 4*160) >> 4 = 640 >> 4 = 40
    # step 2: f 20 -> 16 (counted): (16*40 + 0*999) >> 4 = 40
    # step 3: f 4, c -50:           (4*40 + 12*-50) >> 4 = -440 >> 4 = -27.5 -> -28
    # step 4: f -5 -> 0 (counted):  (0 + 16*-48) >> 4 = -48
    # 6 payload bits hold +-31: 40, 40, -48 clip (one more overflow each), h does not
    params = dict(frac_bits=4, payload_bits=payload_bits)
    t = _trace("gated_recurrence", params, [[[12], [160]], [[20], [999]], [[4], [-50]], [[-5], [-48]]], reference)
    assert [h for (h,) in t.state["h"]] == [40, 40, -28, -48]
    assert [p for (p,) in t.payload] == payload
    assert t.overflow == overflow


def test_graded_source_sends_its_values_clipped(reference):
    """A source sends each value (clipped to payload_bits, counted), 0 for none, and clears its accumulator."""
    # 8 payload bits hold +-127
    values = [0, 5, -127, 128, -1000, 127]
    t = _trace("graded_source", dict(payload_bits=8), [[[3] * 6]], reference, values=values)
    assert (t.payload, t.overflow) == ([[0, 5, -127, 127, -127, 127]], [2])
    assert t.state["values"] == [values]


# ---------------------------------------------------------------------------------------------
# overflow and residue edge cases


def test_cuba_lif_wrap_keeps_state_in_24_bits(reference):
    """overflow: wrap leaves u and v within 24 bits for any (clipped) input."""
    # acc = 2^20 is inside the 24-bit input clip; u = 2^26 wraps once to 2^26 - 2^24 = 50331648
    t = _trace("cuba_lif", dict(vth=None), [[[1 << 20]]], reference)
    assert -TWO23 <= t.state["u"][0][0] <= TWO23 and -TWO23 <= t.state["v"][0][0] <= TWO23


def test_cuba_lif_graded_spike_is_never_lost(reference):
    """A graded spike that resets the neuron also sends an event (a nonzero payload)."""
    # vth = 0: v = 10 > 0 spikes and resets to 0, but its payload is 10 >> 6 = 0, which means no event
    t = _trace("cuba_lif", dict(vth=0, graded=True, dv=0), [[[0]]], reference, v=[10])
    assert t.state["v"] == [[0]]
    assert t.payload != [[0]]


def test_sigma_delta_sends_the_clipped_part_of_a_change_later(reference):
    """What payload_bits clips off a change is residue, sent by later steps (the docstring's residue rule)."""
    # payload_bits = 4 (+-7), vth = 0: a change of 20 should go out as 7, 7, 6
    t = _trace("sigma_delta", dict(vth=0, activation="identity", payload_bits=4), [[[20]], [[0]], [[0]]], reference)
    assert t.payload == [[7], [7], [6]]


# ---------------------------------------------------------------------------------------------
# programs and parameters


@pytest.mark.parametrize("name, state_bytes", [("loihi_lif", 8), ("cuba_lif", 12), ("sigma_delta", 8),
                                               ("graded_relu", 4), ("gate_product", 4), ("gated_recurrence", 8),
                                               ("graded_source", 0)])
def test_state_bytes_per_program(name, state_bytes):
    """Each program's neuron-state memory: a 32-bit word per state variable and per extra input port."""
    assert KINDS[name].state_bytes == state_bytes


def test_state_bytes_of_adds_a_word_per_per_neuron_array():
    """state_bytes_of adds 4 bytes per parameter given as a per-neuron array, none for scalars."""
    arr = np.arange(4, dtype=I64)
    cases = [("loihi_lif", {"vth": 10, "du": 5}, 8), ("loihi_lif", {"vth": arr, "du": arr}, 16),
             ("cuba_lif", {"vth": arr, "du": arr, "dv": arr, "bias": arr}, 28),
             ("sigma_delta", {"vth": arr}, 12), ("graded_relu", {"bias": arr}, 8), ("graded_source", {}, 0)]
    for name, params, expected in cases:
        build_state(KINDS[name], params, 4)          # a valid population
        assert state_bytes_of(KINDS[name], params) == expected, name


@pytest.mark.parametrize("name, params, bits", [
    ("loihi_lif", {"vth": 10}, 0), ("cuba_lif", {"vth": 10}, 0), ("cuba_lif", {"vth": 10, "payload_bits": 8}, 0),
    ("cuba_lif", {"vth": 10, "graded": True}, 24), ("cuba_lif", {"vth": 10, "graded": True, "payload_bits": 8}, 8),
    ("sigma_delta", {"vth": 1}, 24), ("sigma_delta", {"vth": 1, "payload_bits": 12}, 12), ("graded_relu", {}, 24),
    ("gate_product", {"payload_bits": 16}, 16), ("gated_recurrence", {}, 24),
    ("graded_source", {"payload_bits": 9}, 9)])
def test_payload_bits_of(name, params, bits):
    """Binary spikes carry 0 payload bits (cuba_lif unless graded); graded ones payload_bits, 24 by default."""
    assert payload_bits_of(KINDS[name], params) == bits


def test_ports_of_the_programs():
    """The multi-port programs name their ports; every other program has the one port 'in'."""
    ports = {name: kind.ports for name, kind in KINDS.items()}
    assert ports.pop("gate_product") == ("a", "b")
    assert ports.pop("gated_recurrence") == ("f", "c")
    assert ports.pop("egru") == ("in_z", "in_r", "in_g", "rec_z", "rec_r", "rec_g")
    assert ports.pop("rwkv_wkv") == ("k", "k_next", "v", "v_next", "r", "r_next")
    assert ports.pop("relu_square") == ("in", "in_next")
    assert ports.pop("float_gated_lif") == ("v", "r", "r_next")
    assert ports.pop("wkv_fixed") == ("k", "k_next", "v", "v_next", "r", "r_next")
    assert ports.pop("relu_square_fixed") == ("in", "in_next")
    assert ports.pop("gated_lif_fixed") == ("v", "r", "r_next")
    assert ports.pop("scaled_product") == ("x", "scale", "gate")
    assert ports.pop("residual_add") == ("sum", "res")
    assert ports.pop("glu") == ("gate", "up")
    assert ports.pop("mlgru") == ("f", "i")
    assert set(ports.values()) == {("in",)}


PREFIX = ("populations", "hid", "params")


@pytest.mark.parametrize("value, expected", [(5000, "<= 4095, found 5000"), (1.5, "an integer, found 1.5"),
                                             (None, "an integer, found None"), ("abc", "an integer")])
def test_build_state_rejects_a_wrong_scalar_parameter(value, expected):
    """A wrong scalar parameter is a UserError naming file and field, not a crash or a silent truncation."""
    with pytest.raises(UserError) as err:
        build_state(KINDS["loihi_lif"], {"vth": 10, "du": value}, 4, file="m.yaml", prefix=PREFIX)
    assert (err.value.file, err.value.field) == ("m.yaml", "populations.hid.params.du")
    assert expected in err.value.message


@pytest.mark.parametrize("name, params, field, expected", [
    ("loihi_lif", {"vth": 131072}, "vth", "<= 131071, found 131072"),
    ("loihi_lif", {"vth": 1, "bias_exp": 8}, "bias_exp", "<= 7, found 8"),
    ("cuba_lif", {"vth": 1, "du": 4097}, "du", "<= 4096, found 4097"),
    ("cuba_lif", {"vth": 1, "refractory": 256}, "refractory", "<= 255, found 256"),
    ("cuba_lif", {"vth": 1, "payload_bits": 33}, "payload_bits", "<= 32, found 33"),
    ("sigma_delta", {"vth": -1}, "vth", ">= 0, found -1"),
    ("sigma_delta", {"vth": 1, "state_exp": 24}, "state_exp", "<= 23, found 24"),
    ("sigma_delta", {"vth": 1, "overflow": "clip"}, "overflow", "one of 'wrap' or 'saturate', found 'clip'"),
    ("graded_relu", {"payload_bits": 0}, "payload_bits", ">= 1, found 0"),
    ("graded_relu", {"activation": "tanh"}, "activation", "one of 'relu' or 'identity', found 'tanh'"),
    ("gate_product", {"frac_bits": 24}, "frac_bits", "<= 23, found 24"),
    ("gated_recurrence", {"frac_bits": 0}, "frac_bits", ">= 1, found 0"),
    ("gated_recurrence", {"frac_bits": 17}, "frac_bits", "<= 16, found 17"),
    ("graded_source", {"payload_bits": 33}, "payload_bits", "<= 32, found 33")])
def test_build_state_rejects_out_of_range_values(name, params, field, expected):
    """An out-of-range parameter of any program is a UserError naming the field."""
    with pytest.raises(UserError) as err:
        build_state(KINDS[name], params, 4, file="m.yaml", prefix=PREFIX)
    assert (err.value.file, err.value.field) == ("m.yaml", f"populations.hid.params.{field}")
    assert expected in err.value.message


@pytest.mark.parametrize("name, params, field, bounds", [
    ("loihi_lif", {"vth": 10, "dv": [1, 2, 3, 9999]}, "dv", "[0, 4095]"),
    ("loihi_lif", {"vth": [0, 131072, 1, 1]}, "vth", "[0, 131071]"),
    ("cuba_lif", {"vth": 10, "du": [4097, 0, 0, 0]}, "du", "[0, 4096]"),
    ("sigma_delta", {"vth": [-1, 0, 0, 0]}, "vth", f"[0, {STATE_MAX}]"),
    ("graded_relu", {"bias": [0, 0, 0, STATE_MAX + 1]}, "bias", f"[{-STATE_MAX}, {STATE_MAX}]")])
def test_build_state_range_checks_per_neuron_arrays(name, params, field, bounds):
    """A per-neuron array with a value out of range is a UserError naming the parameter and its range."""
    params = {k: np.array(v, I64) if isinstance(v, list) else v for k, v in params.items()}
    with pytest.raises(UserError) as err:
        build_state(KINDS[name], params, 4, file="m.yaml", prefix=PREFIX)
    assert err.value.file == "m.yaml" and err.value.field == f"populations.hid.params.{field}"
    assert f"holds values outside {bounds}" in err.value.message


@pytest.mark.parametrize("name, params, field", [
    ("loihi_lif", {"vth": 10, "bias_exp": np.array([1, 2, 3, 4])}, "bias_exp"),
    ("cuba_lif", {"vth": 10, "refractory": np.array([1, 2, 3, 4])}, "refractory"),
    ("sigma_delta", {"vth": 1, "state_exp": np.array([1, 2, 3, 4])}, "state_exp"),
    ("gate_product", {"frac_bits": np.array([1, 2, 3, 4])}, "frac_bits"),
    ("gated_recurrence", {"frac_bits": np.array([1, 2, 3, 4])}, "frac_bits"),
    ("graded_source", {"payload_bits": np.array([8, 8, 8, 8])}, "payload_bits")])
def test_build_state_refuses_an_array_for_a_scalar_parameter(name, params, field):
    """A per-neuron array for a parameter that is not per-neuron is a UserError naming the field."""
    with pytest.raises(UserError) as err:
        build_state(KINDS[name], params, 4, file="m.yaml", prefix=PREFIX)
    assert (err.value.file, err.value.field) == ("m.yaml", f"populations.hid.params.{field}")
    assert f"takes {field} as one number, not per neuron" in err.value.message


@pytest.mark.parametrize("name", list(KINDS))
def test_build_state_rejects_unknown_params(name):
    """An unknown parameter of any program is a UserError naming it."""
    params = {"vth": 1} if name in ("loihi_lif", "cuba_lif", "sigma_delta") else {"count": 4} if name == "rsqrt" else {}
    with pytest.raises(UserError, match="unknown field") as err:
        build_state(KINDS[name], params | {"no_such_parameter": 3}, 4, file="m.yaml", prefix=PREFIX)
    assert err.value.field == "populations.hid.params.no_such_parameter"


def test_build_state_uses_per_neuron_arrays():
    """Per-neuron arrays reach the constants; scalars are broadcast to the population."""
    ns = build_state(KINDS["sigma_delta"], {"vth": np.array([1, 2, 3, 4]), "bias": -3}, 4)
    assert ns.consts[0].tolist() == [1, 2, 3, 4] and ns.consts[1].tolist() == [-3] * 4
    # loihi_lif: vth is stored as vth << 6; bias as bias_mant << bias_exp
    ns = build_state(KINDS["loihi_lif"], {"vth": np.array([0, 1, 2, 131071]), "bias_mant": np.array([1, -1, 0, 3]),
                                          "bias_exp": 2}, 4)
    du, dv, vth6, bias, reset_subtract = ns.consts
    assert vth6.tolist() == [0, 64, 128, 131071 << 6] and bias.tolist() == [4, -4, 0, 12]
    assert du.tolist() == [4095] * 4 and dv.tolist() == [0] * 4 and reset_subtract is False
