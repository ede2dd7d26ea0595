"""The fused language-model programs (`neurosim.programs.fused`): each kernel equals its numpy
reference on random inputs with saturating edges, each equals the chain of single-step programs
it replaces, and the fused lowering of a MatMul-free model computes what the unfused one does,
in fewer steps, on the engine as in the reference."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.programs import KINDS, build_state, run_step

I64 = np.int64


def _edgy(rng: np.random.Generator, ports: int, n: int, scale: int = 2**20) -> np.ndarray:
    """Accumulators: random values, zeros (idle), and values beyond 24 and 32 bits both ways."""
    acc = rng.integers(-scale, scale, (ports, n))
    acc[:, ::7] = 0
    acc[:, 3::11] = rng.choice([2**40, -2**40, 2**23, -2**23, 2**31 + 5, -(2**31 + 5)], (ports, len(acc[0, 3::11])))
    return acc


def _kernel_and_reference(name: str, params: dict, accs: list[np.ndarray]):
    """(payloads, overflows, final state) over several steps, on the kernel and on the reference."""
    kind = KINDS[name]
    out = []
    for reference in (False, True):
        ns = build_state(kind, params, accs[0].shape[1])
        payloads, overflows = [], []
        for acc in accs:
            a, payload = acc.copy(), np.full(acc.shape[1], -7, I64)
            overflows.append(run_step(kind, a, payload, ns, reference=reference))
            assert not a.any(), "the accumulators are cleared"
            payloads.append(payload)
        out.append((np.array(payloads), overflows, {k: v.copy() for k, v in ns.state.items()}))
    return out


CASES = {
    "scaled_product": lambda rng, n: dict(mult=rng.integers(-5000, 5000, n), shift=12, frac_bits=20,
                                          gate_frac_bits=12, inner_bits=24, payload_bits=12),
    "residual_add": lambda rng, n: dict(mult=rng.integers(-300000, 300000, n), shift=12, frac=12, inner_bits=24,
                                        payload_bits=24),
    "glu": lambda rng, n: dict(mult=rng.integers(1, 3000, n), shift=12, in_frac=10, out_frac=12, frac_bits=12,
                               inner_bits=20, payload_bits=24),
    "mlgru": lambda rng, n: dict(mult_f=rng.integers(1, 3000, n), mult_i=rng.integers(1, 3000, n), shift=12,
                                 in_frac=10, out_frac=12, gain_f=rng.integers(0, 4096, n),
                                 offset_f=rng.integers(0, 4096, n), frac_bits=12, payload_bits=16),
}
SQUARE = dict(emit="square", value_bits=24, square_mult=1, square_shift=0, square_in_frac=12, payload_bits=24)


@pytest.mark.parametrize("name, emit", [(name, emit) for name in CASES for emit in ("value", "square")
                                         if not (name == "mlgru" and emit == "square")])     # mlgru sends SiLU(h)
@pytest.mark.parametrize("seed", range(3))
def test_fused_kernel_equals_its_reference(name, emit, seed):
    """Random accumulators with zeros and values past 24 and 32 bits, per-neuron multipliers: the
    compiled kernel and the numpy reference send the same payloads, count the same overflows and
    keep the same state, step after step."""
    rng = np.random.default_rng(seed)
    n = 500
    params = CASES[name](rng, n)
    if emit == "square":
        params |= {**SQUARE, "square_mult": rng.integers(-8000, 8000, n)}
    ports = len(KINDS[name].ports)
    accs = [_edgy(rng, ports, n) for _ in range(4)]
    (k_pay, k_ovf, k_state), (r_pay, r_ovf, r_state) = _kernel_and_reference(name, params, accs)
    np.testing.assert_array_equal(k_pay, r_pay)
    assert k_ovf == r_ovf and sum(k_ovf) > 0, "the edges saturate"
    for key in k_state:
        np.testing.assert_array_equal(k_state[key], r_state[key])
    assert np.count_nonzero(k_pay) > n, "not silent"


# ---------------------------------------------------------------------------------------------
# each fused program is the chain it replaces


class Chain:
    """Single-step programs (numpy references) run one after another, each on its sources' payloads."""

    def __init__(self):
        self.states = {}
        self.overflow = 0

    def __call__(self, tag: str, name: str, params: dict, *ports: np.ndarray) -> np.ndarray:
        kind = KINDS[name]
        if tag not in self.states:
            self.states[tag] = build_state(kind, params, ports[0].shape[0])
        acc, payload = np.stack(ports).astype(I64), np.zeros(ports[0].shape[0], I64)
        self.overflow += run_step(kind, acc, payload, self.states[tag], reference=True)
        return payload


def _square(chain: Chain, value: np.ndarray, mult, in_frac: int) -> np.ndarray:
    """The chain's norm square of ``value``, counting only its own overflows."""
    before = chain.overflow
    chain.overflow = 0
    out = chain("sq", "lut_activation", dict(function="square", mult=mult, in_frac=in_frac, payload_bits=24), value)
    chain.overflow, square_overflow = before, chain.overflow
    return out, square_overflow


@pytest.mark.parametrize("emit", ["value", "square"])
def test_scaled_product_is_lut_then_two_gate_products(emit):
    rng = np.random.default_rng(5)
    n = 600
    x, scale, gate = _edgy(rng, 3, n)
    scale = np.abs(scale) % (1 << 24)
    params = CASES["scaled_product"](rng, n)
    chain = Chain()
    pre = chain("pre", "lut_activation", dict(mult=params["mult"], shift=12, payload_bits=24), x)
    q = chain("q", "gate_product", dict(frac_bits=20, payload_bits=24), pre, scale)
    expected = chain("o", "gate_product", dict(frac_bits=12, payload_bits=12), q, gate)
    if emit == "square":
        sq_mult = rng.integers(-8000, 8000, n)
        params |= {**SQUARE, "value_bits": 12, "square_mult": sq_mult}
        expected, chain.overflow = _square(chain, expected, sq_mult, 12)
    (pay, ovf, _), _ = _kernel_and_reference("scaled_product", params, [np.stack([x, scale, gate])])
    np.testing.assert_array_equal(pay[0], expected)
    assert ovf[0] == chain.overflow > 0


@pytest.mark.parametrize("emit", ["value", "square"])
def test_residual_add_is_lut_then_graded_relu(emit):
    rng = np.random.default_rng(6)
    n = 600
    total, res = _edgy(rng, 2, n)
    res = np.clip(res, -(2**23 - 1), 2**23 - 1)          # a residual is a payload
    params = CASES["residual_add"](rng, n)
    chain = Chain()
    o = chain("o", "lut_activation", dict(mult=params["mult"], shift=12, in_frac=12, out_frac=12, payload_bits=24),
              total)
    expected = chain("mid", "graded_relu", dict(activation="identity", payload_bits=24), res + o)
    if emit == "square":
        params |= SQUARE
        expected, chain.overflow = _square(chain, expected, 1, 12)
    (pay, ovf, _), _ = _kernel_and_reference("residual_add", params, [np.stack([total, res])])
    np.testing.assert_array_equal(pay[0], expected)
    assert ovf[0] == chain.overflow > 0


@pytest.mark.parametrize("emit", ["value", "square"])
def test_glu_is_two_luts_then_a_gate_product(emit):
    rng = np.random.default_rng(7)
    n = 600
    gate, up = _edgy(rng, 2, n)
    params = CASES["glu"](rng, n)
    chain = Chain()
    lut = dict(mult=params["mult"], shift=12, in_frac=10, out_frac=12, payload_bits=20)
    g = chain("g", "lut_activation", {**lut, "function": "silu"}, gate)
    u = chain("u", "lut_activation", lut, up)
    expected = chain("z", "gate_product", dict(frac_bits=12, payload_bits=24), g, u)
    if emit == "square":
        params |= SQUARE
        expected, chain.overflow = _square(chain, expected, 1, 12)
    (pay, ovf, _), _ = _kernel_and_reference("glu", params, [np.stack([gate, up])])
    np.testing.assert_array_equal(pay[0], expected)
    assert ovf[0] == chain.overflow > 0


def test_mlgru_is_sigmoid_silu_recurrence_silu_over_steps():
    """Four steps, some idle (no input on either port: h is kept and nothing is sent)."""
    rng = np.random.default_rng(8)
    n = 600
    params = CASES["mlgru"](rng, n)
    accs = [_edgy(rng, 2, n, 2**14) for _ in range(4)]
    accs[2][:, :100] = 0
    chain = Chain()
    lut = dict(shift=12, in_frac=10, out_frac=12, payload_bits=24)
    expected, overflows = [], []
    for f_in, i_in in accs:
        chain.overflow = 0
        f = chain("f", "lut_activation", {**lut, "function": "sigmoid", "mult": params["mult_f"],
                                          "gain": params["gain_f"], "offset": params["offset_f"]}, f_in)
        c = chain("c", "lut_activation", {**lut, "function": "silu", "mult": params["mult_i"]}, i_in)
        h = chain("h", "gated_recurrence", dict(frac_bits=12, payload_bits=24), f, c)
        expected.append(chain("act", "lut_activation", dict(function="silu", in_frac=10, out_frac=12, payload_bits=16),
                              h))
        overflows.append(chain.overflow)
    (pay, ovf, state), _ = _kernel_and_reference("mlgru", params, accs)
    np.testing.assert_array_equal(pay, np.array(expected))
    np.testing.assert_array_equal(state["h"], chain.states["h"].state["h"])
    assert ovf == overflows and not pay[2][:100].any()


# ---------------------------------------------------------------------------------------------
# the lowering


@pytest.fixture(scope="module")
def tiny():
    from test_language import VOCAB, tiny_model
    from neurosim.zoo.matmulfree.lowering import calibrate

    model = tiny_model(seed=2)
    return model, calibrate(model, np.random.default_rng(0).integers(0, len(VOCAB), 256))


@pytest.mark.parametrize("head_on_chip", [False, True])
@pytest.mark.parametrize("beside, steps", [(True, 14), (False, 18)])
def test_fused_lowering_sends_what_the_unfused_sends_in_fewer_steps(tiny, head_on_chip, beside, steps):
    """Token by token on the dataflow reference, the fused graph's output equals the unfused
    graph's for every token of several streams; a block takes 14 steps (18 with a ternary sum's
    squares after its values, but the first) instead of 23."""
    from neurosim.programs.reference import DataflowReference
    from neurosim.zoo.matmulfree.lowering import embed, lower

    model, exponents = tiny
    unfused, depth_u = lower(model, exponents, fused=False, head_on_chip=head_on_chip)
    fused, depth_f = lower(model, exponents, fused=True, head_on_chip=head_on_chip, squares_beside=beside)
    blocks = len(model.blocks)
    assert depth_u == 1 + 23 * blocks + 4 * head_on_chip
    # (the relay's squares are always beside it: its input is the host's, a synapse a channel)
    assert depth_f == 1 + steps * blocks - (not beside) + (3 if beside else 4) * head_on_chip
    assert (fused.n_synapses > unfused.n_synapses + 6000) == beside, "beside, three matrices are read twice"
    assert {p.kind for p in fused.populations.values()} >= {"scaled_product", "residual_add", "glu", "mlgru"}
    refs = DataflowReference(unfused, 8), DataflowReference(fused, 8)
    tokens = np.random.default_rng(3).integers(0, model.embedding.shape[0], (8, 40))
    for t in range(tokens.shape[1]):
        outs = []
        for graph, ref in zip((unfused, fused), refs):
            ref.set_input("embedding", embed(model, tokens[:, t]))
            outs.append(ref.step()[graph.readout_population])
        np.testing.assert_array_equal(outs[0], outs[1], err_msg=f"token {t}")
    assert outs[1].any()


@pytest.mark.parametrize("beside", [False, True])
def test_fused_graph_on_chips_equals_the_token_by_token_reference(tiny, beside):
    """The fused graph sliced over four chips (16 neurons a core), a token every step: the
    engine's output for every token equals the dataflow reference's, bit for bit."""
    from helpers import make_chip
    from test_language import _engine_outputs
    from neurosim.programs.reference import DataflowReference
    from neurosim.zoo.matmulfree.lowering import embed, lower

    model, exponents = tiny
    graph, depth = lower(model, exponents, fused=True, squares_beside=beside)
    tokens = np.random.default_rng(5).integers(0, model.embedding.shape[0], 6)
    reference, expected = DataflowReference(graph, 1), []
    for token in tokens:
        reference.set_input("embedding", embed(model, np.array([token])))
        expected.append(reference.step()[graph.readout_population][0])
    got = _engine_outputs(model, graph, depth, make_chip(neurons=16, chips_x=2, chips_y=2), tokens, 1)
    for i, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(g, e, err_msg=f"token {i}")
    assert any(e.any() for e in expected)


def test_the_small_models_fused_lowering_on_loihi2_equals_its_reference(tmp_path):
    """scenarios/loihi2_matmulfree_small.yaml, shortened, with ``reference: true``: the chip runs the
    fused programs (36 steps deep for 2 blocks, the first one a step shorter) and its output for
    every token, prompt and generated, equals the dataflow reference's."""
    import yaml

    from helpers import REPO
    from neurosim.runs import run

    scenario = yaml.safe_load((REPO / "scenarios" / "loihi2_matmulfree_small.yaml").read_text())
    scenario["language"] |= {"prompt_tokens": 10, "generate_tokens": 3, "accuracy_chars": 0}
    scenario |= {"reference": True, "baselines": []}
    result = run(scenario, out_dir=tmp_path, base_dir=REPO)
    s = result.summary
    assert s["matches_reference"] is True and s["depth_steps"] == 1 + 18 * 2 - 1
    from neurosim.traces.trace import read_trace

    kinds = set(read_trace(result.trace_path)["programs"]["kinds"])
    assert {"mlgru", "glu", "scaled_product", "residual_add", "rsqrt"} <= kinds and "gate_product" not in kinds
