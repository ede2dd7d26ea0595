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


def _norm_scale(b: Pipeline, fp: FixedPoint, x: str, gain: np.ndarray, tag: str) -> str:
    """A population of one neuron sending rsqrt(mean((x gain)²)) for every token of ``x``."""
    size = b.populations[x].size
    sq = b.add(f"{tag}_sq", "lut_activation", size,
               {"function": "square", "mult": to_fixed(gain, fp.gain_frac), "shift": fp.gain_frac, "in_frac": fp.frac,
                "payload_bits": fp.payload_bits}, [(x, "diagonal", 1, "")])
    eps = max(1, int(round(NORM_EPS * size * (1 << fp.frac))))
    return b.add(f"{tag}_rs", "rsqrt", 1, {"count": size, "in_frac": fp.frac, "out_frac": fp.rsqrt_frac, "eps": eps,
                                            "payload_bits": fp.payload_bits}, [(sq, "sum", 1, "")])


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


def _ternary(b: Pipeline, fp: FixedPoint, codes: str, weight: np.ndarray, w_scale: float, k: int, tag: str,
             function: str = "identity", gain=None, offset=None) -> str:
    """A ternary matrix over codes, its sums turned back into values (``frac`` bits) and a function."""
    params = {"mult": int(round(w_scale * 2.0 ** (fp.frac + fp.gain_frac - k))), "shift": fp.gain_frac,
              "function": function, "in_frac": fp.frac, "out_frac": fp.frac, "payload_bits": fp.payload_bits}
    if gain is not None:
        params |= {"gain": gain, "offset": offset}
    return b.add(tag, "lut_activation", weight.shape[0], params, [(codes, "dense", weight, "")])


def lower(model: Model, exponents: dict[str, int], fp: FixedPoint = FixedPoint(), name: str = "",
          embedding_on_chip: bool = False, head_on_chip: bool = False) -> tuple[Graph, int]:
    """The model's blocks as a graph, and its depth: the timestep after a token's entry at which
    the graph's output leaves. ``exponents`` gives each BitLinear's code scale 2^k (`calibrate`).

    The host sends each token's embedding once to a relay on the chip, which fans it out; with
    ``embedding_on_chip`` the host sends the token as one spike of a one-hot input instead and
    the embedding is a projection of 8-bit weights (`embedding_weights`). The output is the last
    block's residual values, or with ``head_on_chip`` the logits (``frac`` bits) of the head.
    """
    b = Pipeline()
    if embedding_on_chip:
        weight, exp = embedding_weights(model, fp)
        embedding = (b.source("embedding", "spike_source", len(model.vocab)), "dense8", weight, "", exp)
    else:
        embedding = (b.source("embedding", "graded_source", model.d, {"payload_bits": fp.payload_bits}), "diagonal", 1, "")
    x = b.add("embedding_relay", "graded_relu", model.d, {"activation": "identity", "payload_bits": fp.payload_bits},
              [embedding])
    ones = np.ones(model.d)
    for n, blk in enumerate(model.blocks):
        t = f"b{n}"
        k = {name: exponents[f"blocks/{n}/{name}"] for name in ("i_proj", "f_proj", "g_proj", "o_proj",
                                                                 "gate_proj", "down_proj")}
        r_a = _norm_scale(b, fp, x, blk.attn_norm, f"{t}_attn")
        q = {p: _codes(b, fp, x, blk.attn_norm * getattr(blk, p).norm_gain, r_a, k[p], f"{t}_{p[0]}")
             for p in ("i_proj", "f_proj", "g_proj")}
        f = _ternary(b, fp, q["f_proj"], blk.f_proj.weight_ternary, blk.f_proj.weight_scale, k["f_proj"], f"{t}_f",
                     "sigmoid", gain=to_fixed(1.0 - blk.lower_bound, fp.frac), offset=to_fixed(blk.lower_bound, fp.frac))
        c = _ternary(b, fp, q["i_proj"], blk.i_proj.weight_ternary, blk.i_proj.weight_scale, k["i_proj"], f"{t}_c",
                     "silu")
        gp = _ternary(b, fp, q["g_proj"], blk.g_proj.weight_ternary, blk.g_proj.weight_scale, k["g_proj"],
                      f"{t}_gp")
        h = b.add(f"{t}_h", "gated_recurrence", model.d, {"frac_bits": fp.frac, "payload_bits": fp.payload_bits},
                  [(f, "diagonal", 1, "f"), (c, "diagonal", 1, "c")])
        act = b.add(f"{t}_silu_h", "lut_activation", model.d,
                    {"function": "silu", "in_frac": fp.frac, "out_frac": fp.frac, "payload_bits": fp.payload_bits},
                    [(h, "diagonal", 1, "")])
        gn = _scaled(b, fp, gp, blk.g_norm, _norm_scale(b, fp, gp, ones, f"{t}_gn"), fp.rsqrt_frac, fp.payload_bits,
                     f"{t}_gn")
        o_in = b.add(f"{t}_o_in", "gate_product", model.d, {"frac_bits": fp.frac, "payload_bits": fp.payload_bits},
                     [(gn, "diagonal", 1, "a"), (act, "diagonal", 1, "b")])
        q_o = _codes(b, fp, o_in, blk.o_proj.norm_gain, _norm_scale(b, fp, o_in, ones, f"{t}_on"), k["o_proj"],
                     f"{t}_o")
        o = _ternary(b, fp, q_o, blk.o_proj.weight_ternary, blk.o_proj.weight_scale, k["o_proj"], f"{t}_o_out")
        x = b.add(f"{t}_mid", "graded_relu", model.d, {"activation": "identity", "payload_bits": fp.payload_bits},
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
        x = b.add(f"{t}_out", "graded_relu", model.d, {"activation": "identity", "payload_bits": fp.payload_bits},
                  [(x, "diagonal", 1, ""), (m, "diagonal", 1, "")])
    if head_on_chip:
        head, k = model.head, exponents["head"]
        q = _codes(b, fp, x, model.final_norm * head.norm_gain, _norm_scale(b, fp, x, model.final_norm, "head"), k,
                   "head")
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
