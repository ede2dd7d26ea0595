"""The MatMul-free LM as a graph of neuron programs: ternary synapses, integer activations as
graded spikes, gating and normalisation in neuron programs, for chips that run such graphs.

A token enters as the host's graded spikes (its embedding in fixed point, sent once to a
relay population that fans it out on the chip) and leaves as the last block's residual values, which the host turns into logits (the head runs on the host,
as the embedding does). Every block is a pipeline of populations; each population's inputs
are delayed so that all of them arrive in the same timestep, so a new token can enter every
timestep (prefill) and a population that hears nothing in a step sends nothing.

Fixed point (`FixedPoint`): activations, gates and states carry ``frac`` fractional bits;
gains and multipliers ``gain_frac``; RMSNorm scales ``rsqrt_frac``. A BitLinear's input is a
``code_bits`` integer code with a static power-of-two scale 2^k per layer, calibrated on text
(`calibrate`), in place of the per-token absmax scale the model was trained with.

Per block (``x`` the residual, ``g·`` per-channel gains, ``r = 1 / rms``)::

    r_a  = rsqrt(mean((x g_attn)²))                       one reduction for the block norm and
    q_b  = x g_attn g_b r_a 2^k_b         b = i, f, g     the BitLinears' own norms: they cancel
    f    = lb + (1 - lb) σ(W_f q_f s_f)   c = SiLU(W_i q_i s_i)   gp = W_g q_g s_g
    h    = f h + (1 - f) c                                gated_recurrence
    o'   = gp g_norm rsqrt(mean(gp²)) · SiLU(h)
    x   += W_o (o' g_o rsqrt(mean(o'²)) 2^k_o) s_o
    z    = SiLU(gate) · up,   [gate, up] = W_gate (x g_mlp g_gate rsqrt(mean((x g_mlp)²)) 2^k) s
    x   += W_down (z g_down rsqrt(mean(z²)) 2^k_down) s_down

where ``s = w_scale / 2^k`` turns a ternary sum of codes back into a value. `DataflowReference`
(`neurosim.programs.reference`) evaluates the same graph token by token, without the pipeline.

Two lowerings compute the same integers (`lower`'s ``fused``). Unfused (`_block`), each step is
a program of its own, 23 steps a block: a norm's squares, its rsqrt, the pre-scale, the code's
gate product, the ternary sums' lut, the recurrence, SiLU, and so on. Fused (`_fused_block`, the
programs of `neurosim.programs.fused`, as microcode would run them), 18 steps a block::

    x  ->  x² ->  r_a (rsqrt)  ->  q_i q_f q_g (scaled_product)  ->  SiLU(h) (mlgru), gp  ->  gp²
       ->  r_gn  ->  o' and o'² (scaled_product: gp g_norm r_gn SiLU(h))  ->  r_on  ->  q_o
       ->  x + W_o q_o (residual_add)  ->  its square  ->  r_m  ->  q_m  ->  z (glu, two halves)
       ->  z²  ->  r_dn  ->  q_d  ->  x + W_down q_d (residual_add)

o'² comes from a population beside o' that computes the same from the same (per-channel) inputs
and sends its squares. With ``squares_beside`` the squares of the ternary sums' values come
beside them too, so that each rsqrt follows its values in the next step: 14 steps a block, at
the price of reading those matrices twice (their synapses and synaptic operations double).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.graph.graph import Graph
from neurosim.zoo.pipeline import Pipeline, to_fixed
from neurosim.zoo.matmulfree.model import NORM_EPS, Model, rms_norm, sigmoid, silu


@dataclass(frozen=True)
class FixedPoint:
    frac: int = 12           # activations, gates and states
    gain_frac: int = 12      # per-channel gains and the multipliers that rescale ternary sums
    rsqrt_frac: int = 12     # RMSNorm scales
    code_bits: int = 12      # a BitLinear's input codes
    payload_bits: int = 24   # every other graded spike
    weight_storage_bits: int = 2     # a ternary weight in synaptic memory: 2 (packed) or 8 (an 8-bit weight)


def _norm_scale(b: Pipeline, fp: FixedPoint, x: str, gain: np.ndarray, tag: str) -> str:
    """A population of one neuron sending rsqrt(mean((x gain)²)) for every token of ``x``."""
    size = b.populations[x].size
    sq = b.add(f"{tag}_sq", "lut_activation", size,
               {"function": "square", "mult": to_fixed(gain, fp.gain_frac), "shift": fp.gain_frac, "in_frac": fp.frac,
                "payload_bits": fp.payload_bits}, [(x, "diagonal", 1, "")])
    return _rsqrt(b, fp, sq, tag)


def _rsqrt(b: Pipeline, fp: FixedPoint, sq: str | list[str], tag: str) -> str:
    """A population of one neuron sending rsqrt(mean) of the squares ``sq`` sends (or, for a
    list, the populations of ``sq`` together)."""
    sqs = [sq] if isinstance(sq, str) else sq
    size = sum(b.populations[name].size for name in sqs)
    eps = max(1, int(round(NORM_EPS * size * (1 << fp.frac))))
    return b.add(f"{tag}_rs", "rsqrt", 1, {"count": size, "in_frac": fp.frac, "out_frac": fp.rsqrt_frac, "eps": eps,
                                            "payload_bits": fp.payload_bits}, [(name, "sum", 1, "") for name in sqs])


def _scaled(b: Pipeline, fp: FixedPoint, x: str, gain: np.ndarray, scale: str, shift: int, bits: int,
            tag: str) -> str:
    """``(x gain) · r >> shift`` per channel, ``r`` the one value of ``scale``."""
    size = b.populations[x].size
    pre = b.add(f"{tag}_pre", "lut_activation", size,
                {"mult": to_fixed(gain, fp.gain_frac), "shift": fp.gain_frac, "payload_bits": fp.payload_bits},
                [(x, "diagonal", 1, "")])
    return b.add(f"{tag}_q", "gate_product", size, {"frac_bits": shift, "payload_bits": bits},
                 [(pre, "diagonal", 1, "a"), (scale, "broadcast", 1, "b")])


def _codes(b: Pipeline, fp: FixedPoint, x: str, gain: np.ndarray, scale: str, k: int, tag: str) -> str:
    """A BitLinear's input codes: ``x gain r 2^k`` in ``code_bits``."""
    return _scaled(b, fp, x, gain, scale, fp.frac + fp.rsqrt_frac - k, fp.code_bits, tag)


def _sum_mult(fp: FixedPoint, w_scale: float, k: int) -> int:
    """The multiplier (``gain_frac`` bits) that turns a ternary sum of codes into a value of ``frac`` bits."""
    return int(round(w_scale * 2.0 ** (fp.frac + fp.gain_frac - k)))


def _ternary(b: Pipeline, fp: FixedPoint, codes: str, weight: np.ndarray, w_scale: float, k: int, tag: str,
             function: str = "identity", gain=None, offset=None) -> str:
    """A ternary matrix over codes, its sums turned back into values (``frac`` bits) and a function."""
    params = {"mult": _sum_mult(fp, w_scale, k), "shift": fp.gain_frac,
              "function": function, "in_frac": fp.frac, "out_frac": fp.frac, "payload_bits": fp.payload_bits}
    if gain is not None:
        params |= {"gain": gain, "offset": offset}
    return b.add(tag, "lut_activation", weight.shape[0], params, [(codes, "dense", weight, "")])


def _block(b: Pipeline, fp: FixedPoint, x: str, blk, k: dict[str, int], t: str) -> str:
    """One block as a chain of single-step programs (23 steps); its residual's output."""
    d = b.populations[x].size
    ones = np.ones(d)
    r_a = _norm_scale(b, fp, x, blk.attn_norm, f"{t}_attn")
    q = {p: _codes(b, fp, x, blk.attn_norm * getattr(blk, p).norm_gain, r_a, k[p], f"{t}_{p[0]}")
         for p in ("i_proj", "f_proj", "g_proj")}
    f = _ternary(b, fp, q["f_proj"], blk.f_proj.weight_ternary, blk.f_proj.weight_scale, k["f_proj"], f"{t}_f",
                 "sigmoid", gain=to_fixed(1.0 - blk.lower_bound, fp.frac), offset=to_fixed(blk.lower_bound, fp.frac))
    c = _ternary(b, fp, q["i_proj"], blk.i_proj.weight_ternary, blk.i_proj.weight_scale, k["i_proj"], f"{t}_c",
                 "silu")
    gp = _ternary(b, fp, q["g_proj"], blk.g_proj.weight_ternary, blk.g_proj.weight_scale, k["g_proj"],
                  f"{t}_gp")
    h = b.add(f"{t}_h", "gated_recurrence", d, {"frac_bits": fp.frac, "payload_bits": fp.payload_bits},
              [(f, "diagonal", 1, "f"), (c, "diagonal", 1, "c")])
    act = b.add(f"{t}_silu_h", "lut_activation", d,
                {"function": "silu", "in_frac": fp.frac, "out_frac": fp.frac, "payload_bits": fp.payload_bits},
                [(h, "diagonal", 1, "")])
    gn = _scaled(b, fp, gp, blk.g_norm, _norm_scale(b, fp, gp, ones, f"{t}_gn"), fp.rsqrt_frac, fp.payload_bits,
                 f"{t}_gn")
    o_in = b.add(f"{t}_o_in", "gate_product", d, {"frac_bits": fp.frac, "payload_bits": fp.payload_bits},
                 [(gn, "diagonal", 1, "a"), (act, "diagonal", 1, "b")])
    q_o = _codes(b, fp, o_in, blk.o_proj.norm_gain, _norm_scale(b, fp, o_in, ones, f"{t}_on"), k["o_proj"],
                 f"{t}_o")
    o = _ternary(b, fp, q_o, blk.o_proj.weight_ternary, blk.o_proj.weight_scale, k["o_proj"], f"{t}_o_out")
    x = b.add(f"{t}_mid", "graded_relu", d, {"activation": "identity", "payload_bits": fp.payload_bits},
              [(x, "diagonal", 1, ""), (o, "diagonal", 1, "")])
    r_m = _norm_scale(b, fp, x, blk.mlp_norm, f"{t}_mlp")
    q_m = _codes(b, fp, x, blk.mlp_norm * blk.gate_proj.norm_gain, r_m, k["gate_proj"], f"{t}_gate")
    glu = blk.gate_proj.weight_ternary.shape[0] // 2
    gate = _ternary(b, fp, q_m, blk.gate_proj.weight_ternary[:glu], blk.gate_proj.weight_scale, k["gate_proj"],
                    f"{t}_gate_out", "silu")
    up = _ternary(b, fp, q_m, blk.gate_proj.weight_ternary[glu:], blk.gate_proj.weight_scale, k["gate_proj"],
                  f"{t}_up_out")
    z = b.add(f"{t}_z", "gate_product", glu, {"frac_bits": fp.frac, "payload_bits": fp.payload_bits},
              [(gate, "diagonal", 1, "a"), (up, "diagonal", 1, "b")])
    q_d = _codes(b, fp, z, blk.down_proj.norm_gain, _norm_scale(b, fp, z, np.ones(glu), f"{t}_dn"),
                 k["down_proj"], f"{t}_down")
    m = _ternary(b, fp, q_d, blk.down_proj.weight_ternary, blk.down_proj.weight_scale, k["down_proj"],
                 f"{t}_down_out")
    x = b.add(f"{t}_out", "graded_relu", d, {"activation": "identity", "payload_bits": fp.payload_bits},
              [(x, "diagonal", 1, ""), (m, "diagonal", 1, "")])
    return x


# ---------------------------------------------------------------------------------------------
# the fused lowering: `neurosim.programs.fused`'s programs, the same integers in 14 steps a block


def _square(fp: FixedPoint, gain: np.ndarray) -> dict:
    """What makes a fused population send its norm's squares (``(v gain)²``, as `_norm_scale`'s)."""
    return {"emit": "square", "value_bits": fp.payload_bits, "payload_bits": fp.payload_bits,
            "square_mult": to_fixed(gain, fp.gain_frac), "square_shift": fp.gain_frac, "square_in_frac": fp.frac}


def _with_square(b: Pipeline, fp: FixedPoint, tag: str, kind: str, size: int, params: dict, inputs: list,
                 gain: np.ndarray | None, beside: bool = True) -> tuple[str, str | None]:
    """A fused population and, for a norm of gain ``gain`` (None: none), the population that
    sends its squares: beside it (the same program on the same inputs, sending the squares of
    what it computes), or with ``beside`` False a `lut_activation` square of its values, a step
    later (as `_norm_scale`'s)."""
    value = b.add(tag, kind, size, {**params, "payload_bits": fp.payload_bits}, inputs)
    if gain is None:
        return value, None
    if beside:
        return value, b.add(f"{tag}_sq", kind, size, {**params, **_square(fp, gain)}, inputs)
    return value, b.add(f"{tag}_sq", "lut_activation", size,
                        {"function": "square", "mult": to_fixed(gain, fp.gain_frac), "shift": fp.gain_frac,
                         "in_frac": fp.frac, "payload_bits": fp.payload_bits}, [(value, "diagonal", 1, "")])


def _fused_codes(b: Pipeline, fp: FixedPoint, x: str, gain: np.ndarray, scale: str, k: int, tag: str) -> str:
    """`_codes` in one step: ``x gain r 2^k`` in ``code_bits`` (`scaled_product`)."""
    return b.add(f"{tag}_q", "scaled_product", b.populations[x].size,
                 {"mult": to_fixed(gain, fp.gain_frac), "shift": fp.gain_frac, "payload_bits": fp.code_bits,
                  "frac_bits": fp.frac + fp.rsqrt_frac - k, "inner_bits": fp.payload_bits},
                 [(x, "diagonal", 1, "x"), (scale, "broadcast", 1, "scale")])


def _fused_block(b: Pipeline, fp: FixedPoint, x: str, x_sq: str, blk, k: dict[str, int], t: str,
                 next_gain: np.ndarray | None, beside: bool = False) -> tuple[str, str | None]:
    """One block in fused programs; its residual's output and that output's squares for the next
    norm of gain ``next_gain``. ``x_sq`` sends the squares of ``x`` for this block's norm. The
    squares of a ternary sum's values follow them a step later (`_with_square`), or with
    ``beside`` come beside them, reading its matrix a second time: 18 steps a block, or 14."""
    d, glu = b.populations[x].size, blk.gate_proj.weight_ternary.shape[0] // 2
    ones = np.ones(d)

    def ternary_sum(p: str) -> dict:
        layer = getattr(blk, p)
        return {"mult": _sum_mult(fp, layer.weight_scale, k[p]), "shift": fp.gain_frac, "frac": fp.frac}

    r_a = _rsqrt(b, fp, x_sq, f"{t}_attn")
    q = {p: _fused_codes(b, fp, x, blk.attn_norm * getattr(blk, p).norm_gain, r_a, k[p], f"{t}_{p[0]}")
         for p in ("i_proj", "f_proj", "g_proj")}
    h = b.add(f"{t}_mlgru", "mlgru", d,
              {"mult_f": _sum_mult(fp, blk.f_proj.weight_scale, k["f_proj"]),
               "mult_i": _sum_mult(fp, blk.i_proj.weight_scale, k["i_proj"]), "shift": fp.gain_frac,
               "in_frac": fp.frac, "out_frac": fp.frac, "gain_f": to_fixed(1.0 - blk.lower_bound, fp.frac),
               "offset_f": to_fixed(blk.lower_bound, fp.frac), "frac_bits": fp.frac,
               "inner_bits": fp.payload_bits, "payload_bits": fp.payload_bits},
              [(q["f_proj"], "dense", blk.f_proj.weight_ternary, "f"), (q["i_proj"], "dense", blk.i_proj.weight_ternary,
                                                                          "i")])
    gp, gp_sq = _with_square(b, fp, f"{t}_gp", "residual_add", d, ternary_sum("g_proj"),
                             [(q["g_proj"], "dense", blk.g_proj.weight_ternary, "sum")], ones, beside)
    o_in, o_in_sq = _with_square(b, fp, f"{t}_o_in", "scaled_product", d,
                                 {"mult": to_fixed(blk.g_norm, fp.gain_frac), "shift": fp.gain_frac,
                                  "frac_bits": fp.rsqrt_frac, "gate_frac_bits": fp.frac, "inner_bits": fp.payload_bits},
                                 [(gp, "diagonal", 1, "x"), (_rsqrt(b, fp, gp_sq, f"{t}_gn"), "broadcast", 1, "scale"),
                                  (h, "diagonal", 1, "gate")], ones)
    q_o = _fused_codes(b, fp, o_in, blk.o_proj.norm_gain, _rsqrt(b, fp, o_in_sq, f"{t}_on"), k["o_proj"], f"{t}_o")
    mid, mid_sq = _with_square(b, fp, f"{t}_mid", "residual_add", d, ternary_sum("o_proj"),
                               [(q_o, "dense", blk.o_proj.weight_ternary, "sum"), (x, "diagonal", 1, "res")],
                               blk.mlp_norm, beside)
    q_m = _fused_codes(b, fp, mid, blk.mlp_norm * blk.gate_proj.norm_gain, _rsqrt(b, fp, mid_sq, f"{t}_mlp"),
                       k["gate_proj"], f"{t}_gate")
    # The GLU's neurons read both halves of the matrix, twice a chain neuron's synapses: in two
    # populations of half its channels each, a core holds no more synapses than the chain's did.
    halves = [(0, glu // 2), (glu // 2, glu)]
    glu_params = {"mult": _sum_mult(fp, blk.gate_proj.weight_scale, k["gate_proj"]), "shift": fp.gain_frac,
                  "in_frac": fp.frac, "out_frac": fp.frac, "frac_bits": fp.frac, "inner_bits": fp.payload_bits}
    z = [_with_square(b, fp, f"{t}_glu{j}", "glu", hi - lo, glu_params,
                      [(q_m, "dense", blk.gate_proj.weight_ternary[lo:hi], "gate"),
                       (q_m, "dense", blk.gate_proj.weight_ternary[glu + lo:glu + hi], "up")], np.ones(hi - lo), beside)
         for j, (lo, hi) in enumerate(halves)]
    r_dn = _rsqrt(b, fp, [z_sq for _z, z_sq in z], f"{t}_dn")
    q_d = [_fused_codes(b, fp, z_j, blk.down_proj.norm_gain[lo:hi], r_dn, k["down_proj"], f"{t}_down{j}")
           for j, ((z_j, _sq), (lo, hi)) in enumerate(zip(z, halves))]
    down = [(q, "dense", blk.down_proj.weight_ternary[:, lo:hi], "sum") for q, (lo, hi) in zip(q_d, halves)]
    return _with_square(b, fp, f"{t}_out", "residual_add", d, ternary_sum("down_proj"),
                        down + [(mid, "diagonal", 1, "res")], next_gain, beside)


def lower(model: Model, exponents: dict[str, int], fp: FixedPoint = FixedPoint(), name: str = "",
          embedding_on_chip: bool = False, head_on_chip: bool = False, fused: bool = False,
          squares_beside: bool = False) -> tuple[Graph, int]:
    """The model's blocks as a graph, and its depth: the timestep after a token's entry at which
    the graph's output leaves. ``exponents`` gives each BitLinear's code scale 2^k (`calibrate`).

    The host sends each token's embedding once to a relay on the chip, which fans it out; with
    ``embedding_on_chip`` the host sends the token as one spike of a one-hot input instead and
    the embedding is a projection of 8-bit weights (`embedding_weights`). The output is the last
    block's residual values, or with ``head_on_chip`` the logits (``frac`` bits) of the head.
    ``fused`` lowers each block to the fused programs (`_fused_block`: a norm's squares of a
    ternary sum's values a step after them, or with ``squares_beside`` beside them, reading its
    matrix a second time), else to the chain of single-step programs (`_block`); all compute the
    same integers. A run on neurocores lowers fused (`neurosim.zoo.language.lower_language_model`).
    """
    b = Pipeline(dense_bits=fp.weight_storage_bits)
    if embedding_on_chip:
        weight, exp = embedding_weights(model, fp)
        embedding = (b.source("embedding", "spike_source", len(model.vocab)), "dense8", weight, "", exp)
    else:
        embedding = (b.source("embedding", "graded_source", model.d, {"payload_bits": fp.payload_bits}), "diagonal", 1, "")
    x = b.add("embedding_relay", "graded_relu", model.d, {"activation": "identity", "payload_bits": fp.payload_bits},
              [embedding])
    # each residual's norm gain: the next block's, then the head's (none: the head is on the host)
    gains = [blk.attn_norm for blk in model.blocks] + [model.final_norm if head_on_chip else None]
    x_sq = None
    if fused and gains[0] is not None:      # the relay's squares, beside it
        x_sq = b.add("embedding_relay_sq", "residual_add", model.d, _square(fp, gains[0]),
                     [embedding[:3] + ("res",) + embedding[4:]])
    for n, blk in enumerate(model.blocks):
        k = {name: exponents[f"blocks/{n}/{name}"] for name in ("i_proj", "f_proj", "g_proj", "o_proj",
                                                                 "gate_proj", "down_proj")}
        if fused:
            x, x_sq = _fused_block(b, fp, x, x_sq, blk, k, f"b{n}", gains[n + 1], squares_beside)
        else:
            x = _block(b, fp, x, blk, k, f"b{n}")
    if head_on_chip:
        head, k = model.head, exponents["head"]
        gain = model.final_norm * head.norm_gain
        if fused:
            q = _fused_codes(b, fp, x, gain, _rsqrt(b, fp, x_sq, "head"), k, "head")
        else:
            q = _codes(b, fp, x, gain, _norm_scale(b, fp, x, model.final_norm, "head"), k, "head")
        x = _ternary(b, fp, q, head.weight_ternary, head.weight_scale, k, "logits")
    graph = Graph(name=name or "matmulfree_lm", populations=b.populations, projections=b.projections,
                  input_population="embedding", readout_population=x, readout_mode="membrane", dataset="")
    return graph, b.time[x]


def embedding_weights(model: Model, fp: FixedPoint) -> tuple[np.ndarray, int]:
    """The embedding as 8-bit weights ``[d, V]`` and their exponent: ``w 2^exp`` is the embedding
    in ``frac`` fractional bits, rounded to the 8 bits its largest value allows."""
    largest = max(float(np.abs(model.embedding).max()), 1e-9)
    e = int(np.floor(np.log2(127 / largest)))
    weight = np.clip(np.round(model.embedding.T * 2.0 ** e), -127, 127).astype(np.int8)
    return np.ascontiguousarray(weight), fp.frac - e


def embed(model: Model, tokens: np.ndarray, fp: FixedPoint = FixedPoint(), on_chip: bool = False) -> np.ndarray:
    """The host's input for tokens: their embeddings in fixed point, ``[..., d]``; or, with the
    embedding on the chip, one-hot vectors ``[..., V]``."""
    if on_chip:
        return (np.asarray(tokens)[..., None] == np.arange(len(model.vocab))).astype(np.int64)
    limit = (1 << (fp.payload_bits - 1)) - 1
    return np.clip(to_fixed(model.embedding[tokens], fp.frac), -limit, limit)


def calibrate(model: Model, tokens: np.ndarray, fp: FixedPoint = FixedPoint(), quantile: float = 0.9999,
              batch: int = 16) -> dict[str, int]:
    """Each BitLinear's code exponent k: the largest that keeps the ``quantile`` of its inputs'
    magnitudes (``x̂ = x g / rms(x)``, with the float model on ``tokens``) within the codes."""
    samples: dict[str, list[np.ndarray]] = {}
    streams = np.asarray(tokens)[: len(tokens) // batch * batch].reshape(batch, -1)
    state = [np.zeros((batch, model.d)) for _ in model.blocks]
    for t in range(streams.shape[1]):
        x = model.embedding[streams[:, t]].astype(np.float64)
        for n, (blk, h) in enumerate(zip(model.blocks, state)):
            def seen(name: str, value: np.ndarray) -> np.ndarray:
                samples.setdefault(f"blocks/{n}/{name}", []).append(np.abs(value).ravel())
                return value

            u = rms_norm(x, blk.attn_norm, NORM_EPS)
            pre = {p: seen(p, rms_norm(u, getattr(blk, p).norm_gain, 1e-8)) for p in ("i_proj", "f_proj", "g_proj")}
            lin = {p: pre[p] @ (getattr(blk, p).weight_ternary.T * getattr(blk, p).weight_scale) for p in pre}
            f = blk.lower_bound + (1 - blk.lower_bound) * sigmoid(lin["f_proj"])
            h = f * h + (1 - f) * silu(lin["i_proj"])
            state[n] = h
            o_in = seen("o_proj", rms_norm(rms_norm(lin["g_proj"], blk.g_norm, NORM_EPS) * silu(h),
                                           blk.o_proj.norm_gain, 1e-8))
            x = x + o_in @ (blk.o_proj.weight_ternary.T * blk.o_proj.weight_scale)
            v = seen("gate_proj", rms_norm(rms_norm(x, blk.mlp_norm, NORM_EPS), blk.gate_proj.norm_gain, 1e-8))
            g, up = np.split(v @ (blk.gate_proj.weight_ternary.T * blk.gate_proj.weight_scale), 2, axis=-1)
            z = seen("down_proj", rms_norm(silu(g) * up, blk.down_proj.norm_gain, 1e-8))
            x = x + z @ (blk.down_proj.weight_ternary.T * blk.down_proj.weight_scale)
        samples.setdefault("head", []).append(
            np.abs(rms_norm(rms_norm(x, model.final_norm, NORM_EPS), model.head.norm_gain, 1e-8)).ravel())
    code_max = (1 << (fp.code_bits - 1)) - 1
    return {name: int(np.floor(np.log2(code_max / max(np.quantile(np.concatenate(v), quantile), 1e-9))))
            for name, v in samples.items()}
