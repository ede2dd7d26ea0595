"""SpikeGPT (`neurosim.graph.spikegpt`) lowered to fixed-point neuron programs and 8-bit weights,
for chips of neurocores (Loihi 2).

The residual stream is a count of binary spikes per channel: the token's binary embedding (sent
by the host as spikes) and every earlier sub-layer's LIF spikes. A LayerNorm of it takes three
stages, each LIF and matrix one, so a token is 24 steps deep (2 blocks)::

    ln_cw   lut_activation, d     c_i w_i 2^g / d, with c_i = d x_i - sum(x): the centering is a
                                  projection of 8-bit weights (127 on the diagonal, -1 elsewhere)
                                  from every residual source, delayed to arrive together
    ln_sq   lut_activation, d     c_i^2 (the same centering projection, function square)
    ln_rs   rsqrt, 1              r = 1 / sqrt(sum(c^2) / d^3 + 1e-5), 12 fractional bits
    ln      gate_product, d       (c w) r >> g + b: the LayerNorm's output, 12 fractional bits
    wkv_n   wkv_fixed, d          k, v, r of ln1 (token shift: ports and *_next), WKV, its gate
    att_n   lif_fixed, d          Wo of wkv; its spikes join the residual
    ffk_n   relu_square_fixed, 4d relu(Wk2 of ln2's two shares)^2, 8 fractional bits
    ffn_n   gated_lif_fixed, d    Wv2 of ffk gated by sigmoid(Wr2 of ln2's shares); spikes join
    head    lut_activation, V     Wh of the final LayerNorm: the logits, 12 fractional bits

Every matrix is stored as 8-bit weights with one scale per row (its largest magnitude over 127,
over both shares of a token shift); the receiving program multiplies its row's sum by that scale
(``mult`` >> ``shift``, `neurosim.numerics.neurons`). As the float lowering
(`neurosim.graph.spikegpt_chip`) the populations update only in the steps that bring them a
token (`LoweredSpikeGPTFixed.hold`), so tokens may come at any pace.
"""

from __future__ import annotations

import numpy as np

from neurosim.graph import spikegpt
from neurosim.graph.graph import Csr, Dense, Graph, Population, Sparse
from neurosim.graph.spikegpt_chip import LoweredSpikeGPT
from neurosim.numerics.fixed import STATE_MAX
from neurosim.numerics.neurons import GATE_IN_FRAC

FRAC = 12            # LayerNorm outputs, k, v, wkv, LIF voltages, logits
SQUARE_FRAC = 8      # relu^2 of the FFN's keys
RSQRT_FRAC = 12
MULT_MAX = (1 << 23) - 1


def _rows(*matrices: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Matrices of one shape as 8-bit weights sharing each row's scale: (weights, scale per row)."""
    largest = np.max([np.abs(m).max(axis=1) for m in matrices], axis=0).astype(np.float64)
    scale = np.where(largest > 0, largest / 127.0, 1.0)
    weights = [np.clip(np.round(m / scale[:, None]), -127, 127).astype(np.int8) for m in matrices]
    return weights, scale


def _mults(scales: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Per-neuron multipliers ``round(scale 2^shift)`` for one common shift, the largest that
    keeps every multiplier within 23 bits."""
    largest = max(float(s.max()) for s in scales.values())
    shift = int(np.floor(np.log2(MULT_MAX / largest)))
    return {key: np.round(s * 2.0 ** shift).astype(np.int64) for key, s in scales.items()}, shift


def _fixed(values: np.ndarray, frac: int) -> np.ndarray:
    return np.round(np.asarray(values, np.float64) * (1 << frac)).astype(np.int64)


def lower(model: spikegpt.Model, name: str, dataset: str) -> tuple[Graph, dict[str, int]]:
    """The graph and each population's stage (steps after a token's entry at which it takes it)."""
    d, n_layers = model.d, len(model.blocks)
    pops = {"embed": Population("embed", "spike_source", d)}
    projs: dict = {}
    stage = {"embed": 0}
    residual: list[str] = ["embed"]

    def add(pname: str, kind: str, size: int, at: int, params: dict | None = None) -> str:
        pops[pname] = Population(pname, kind, size, params or {})
        stage[pname] = at
        return pname

    def dense(src: str, tgt: str, weight: np.ndarray, port: str = "") -> None:
        pname = f"{src}_to_{tgt}" + (f"_{port}" if port else "")
        delay = stage[tgt] - stage[src] - 1
        projs[pname] = Dense(pname, src, tgt, np.ascontiguousarray(weight, np.int8), 0, port=port, weight_bits=8,
                             delay=delay)

    def diagonal(src: str, tgt: str, port: str, size: int) -> None:
        pname = f"{src}_to_{tgt}_{port}"
        csr = Csr(np.arange(size + 1, dtype=np.int64), np.arange(size, dtype=np.int32), np.ones(size, np.int8))
        projs[pname] = Sparse(pname, src, tgt, csr, size, 0, port=port, weight_bits=8,
                              delay=stage[tgt] - stage[src] - 1)

    centering = np.full((d, d), -1, np.int8)
    np.fill_diagonal(centering, 127)
    # c w 2^g / d within 24 bits for a residual count up to its number of sources
    largest_weight = max(float(np.abs(ln.weight).max()) for blk in model.blocks for ln in (blk.ln1, blk.ln2))
    largest_weight = max(largest_weight, float(np.abs(model.ln_out.weight).max()))
    gain_frac = min(20, int(np.floor(np.log2(STATE_MAX / ((1 + 2 * n_layers) * largest_weight)))))

    def layernorm(tag: str, ln: spikegpt.LayerNorm, at: int) -> str:
        cw = add(f"{tag}_cw", "lut_activation", d, at,
                 {"mult": np.round(ln.weight.astype(np.float64) * 2.0 ** gain_frac / d).astype(np.int64)})
        sq = add(f"{tag}_sq", "lut_activation", d, at, {"function": "square"})
        for src in residual:
            dense(src, cw, centering)
            dense(src, sq, centering)
        rs = add(f"{tag}_rs", "rsqrt", 1, at + 1, {"count": d ** 3, "out_frac": RSQRT_FRAC,
                                                     "eps": max(1, round(spikegpt.LN_EPS * d ** 3))})
        dense(sq, rs, np.ones((1, d), np.int8))
        out = add(tag, "gate_product", d, at + 2, {"frac_bits": gain_frac + RSQRT_FRAC - FRAC,
                                                   "offset": _fixed(ln.bias, FRAC)})
        diagonal(cw, out, "a", d)
        dense(rs, out, np.ones((d, 1), np.int8), "b")
        return out

    def shifted(src: str, tgt: str, port: str, weight: np.ndarray, mix: np.ndarray) -> np.ndarray:
        """The token shift's two projections; returns the rows' scale."""
        (now, nxt), scale = _rows(weight * mix[None, :], weight * (1 - mix)[None, :])
        dense(src, tgt, now, port)
        dense(src, tgt, nxt, f"{port}_next")
        return scale

    at = 1
    for n, blk in enumerate(model.blocks):
        ln1 = layernorm(f"ln1_{n}", blk.ln1, at)
        wkv = add(f"wkv_{n}", "wkv_fixed", d, at + 3)
        scales = {f"mult_{p}": shifted(ln1, wkv, p, w, mix) for p, w, mix in
                  (("k", blk.key, blk.mix_k), ("v", blk.value, blk.mix_v), ("r", blk.receptance, blk.mix_r))}
        scales["mult_r"] = scales["mult_r"] * 2.0 ** (GATE_IN_FRAC - FRAC)
        mults, shift = _mults(scales)
        pops[wkv].params.update(mults, shift=shift, decay=_fixed(blk.decay, FRAC), first=_fixed(blk.first, FRAC))
        att = add(f"att_{n}", "lif_fixed", d, at + 4)
        (w_o,), scale = _rows(blk.output)
        dense(wkv, att, w_o)
        mults, shift = _mults({"mult": scale})
        pops[att].params.update(mults, shift=shift, frac_bits=FRAC)
        residual.append(att)
        ln2 = layernorm(f"ln2_{n}", blk.ln2, at + 5)
        ffk = add(f"ffk_{n}", "relu_square_fixed", blk.ffn_key.shape[0], at + 8)
        mults, shift = _mults({"mult": shifted(ln2, ffk, "in", blk.ffn_key, blk.ffn_mix_k)})
        pops[ffk].params.update(mults, shift=shift, in_frac=FRAC, out_frac=SQUARE_FRAC)
        ffn = add(f"ffn_{n}", "gated_lif_fixed", d, at + 9)
        (w_v,), scale_v = _rows(blk.ffn_value)
        dense(ffk, ffn, w_v, "v")
        scale_r = shifted(ln2, ffn, "r", blk.ffn_receptance, blk.ffn_mix_r)
        mults, shift = _mults({"mult": scale_v * 2.0 ** (FRAC - SQUARE_FRAC),
                               "mult_r": scale_r * 2.0 ** (GATE_IN_FRAC - FRAC)})
        pops[ffn].params.update(mults, shift=shift, frac_bits=FRAC)
        residual.append(ffn)
        at += 10
    ln_out = layernorm("ln_out", model.ln_out, at)
    head = add("head", "lut_activation", model.head.shape[0], at + 3)
    (w_h,), scale = _rows(model.head)
    dense(ln_out, head, w_h)
    mults, shift = _mults({"mult": scale})
    pops[head].params.update(mults, shift=shift)
    return Graph(name, pops, projs, "embed", "head", "membrane", dataset), stage


class LoweredSpikeGPTFixed(LoweredSpikeGPT):
    """A SpikeGPT lowered to fixed-point programs: the chip's outputs are the head's payloads,
    logits with `FRAC` fractional bits, which must equal those of the
    graph's integer `neurosim.numerics.reference.Reference`."""

    lif_kinds = ("lif_fixed", "gated_lif_fixed")

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        return (self.lm.model.embedding[np.asarray(tokens)] >= 0).astype(np.int64)

    def output_values(self, payload, state) -> np.ndarray:
        return np.array(payload, copy=True)

    def logits(self, output: np.ndarray) -> np.ndarray:
        return np.atleast_2d(output) / float(1 << FRAC)
