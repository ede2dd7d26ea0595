"""SpikeGPT (`neurosim.zoo.spikegpt.model`) lowered to fixed-point neuron programs and 8-bit weights,
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
(``mult`` >> ``shift``, `neurosim.programs.spikegpt_fixed`). Each population takes a token a step after
the last of its sources sent it (`neurosim.zoo.pipeline.Pipeline`). As the float lowering
(`neurosim.zoo.spikegpt.float_lowering`) the populations update only in the steps that bring them a
token (`LoweredSpikeGPTFixed.hold`), so tokens may come at any pace.
"""

from __future__ import annotations

import numpy as np

from neurosim.zoo.spikegpt import model as spikegpt
from neurosim.graph.graph import Graph
from neurosim.zoo.pipeline import Pipeline, to_fixed
from neurosim.zoo.spikegpt.float_lowering import LoweredSpikeGPT
from neurosim.programs.fixed import STATE_MAX
from neurosim.programs import GATE_IN_FRAC

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


def lower(model: spikegpt.Model, name: str, dataset: str) -> tuple[Graph, dict[str, int]]:
    """The graph and each population's stage (steps after a token's entry at which it takes it)."""
    d, n_layers = model.d, len(model.blocks)
    b = Pipeline()
    residual = [b.source("embed", "spike_source", d)]      # the residual stream's spike sources
    centering = np.full((d, d), -1, np.int8)
    np.fill_diagonal(centering, 127)
    # c w 2^g / d within 24 bits for a residual count up to its number of sources
    largest_weight = max(float(np.abs(ln.weight).max())
                         for ln in [model.ln_out, *(n for blk in model.blocks for n in (blk.ln1, blk.ln2))])
    gain_frac = min(20, int(np.floor(np.log2(STATE_MAX / ((1 + 2 * n_layers) * largest_weight)))))

    def layernorm(tag: str, ln: spikegpt.LayerNorm) -> str:
        centered = [(src, "dense8", centering, "") for src in residual]
        cw = b.add(f"{tag}_cw", "lut_activation", d,
                   {"mult": np.round(ln.weight.astype(np.float64) * 2.0 ** gain_frac / d).astype(np.int64)}, centered)
        sq = b.add(f"{tag}_sq", "lut_activation", d, {"function": "square"}, centered)
        rs = b.add(f"{tag}_rs", "rsqrt", 1, {"count": d ** 3, "out_frac": RSQRT_FRAC,
                                             "eps": max(1, round(spikegpt.LN_EPS * d ** 3))}, [(sq, "sum", 1, "")])
        return b.add(tag, "gate_product", d, {"frac_bits": gain_frac + RSQRT_FRAC - FRAC,
                                              "offset": to_fixed(ln.bias, FRAC)},
                     [(cw, "diagonal", 1, "a"), (rs, "broadcast", 1, "b")])

    def shifted(src: str, port: str, weight: np.ndarray, mix: np.ndarray) -> tuple[list[tuple], np.ndarray]:
        """The token shift's two projections of ``weight``, and its rows' scale."""
        (now, nxt), scale = _rows(weight * mix[None, :], weight * (1 - mix)[None, :])
        return [(src, "dense8", now, port), (src, "dense8", nxt, f"{port}_next")], scale

    for n, blk in enumerate(model.blocks):
        ln1 = layernorm(f"ln1_{n}", blk.ln1)
        (k, s_k), (v, s_v), (r, s_r) = (shifted(ln1, p, w, mix) for p, w, mix in
                                        (("k", blk.key, blk.mix_k), ("v", blk.value, blk.mix_v),
                                         ("r", blk.receptance, blk.mix_r)))
        mults, shift = _mults({"mult_k": s_k, "mult_v": s_v, "mult_r": s_r * 2.0 ** (GATE_IN_FRAC - FRAC)})
        wkv = b.add(f"wkv_{n}", "wkv_fixed", d, {**mults, "shift": shift, "decay": to_fixed(blk.decay, FRAC),
                                                 "first": to_fixed(blk.first, FRAC)}, k + v + r)
        (w_o,), scale = _rows(blk.output)
        mults, shift = _mults({"mult": scale})
        residual.append(b.add(f"att_{n}", "lif_fixed", d, {**mults, "shift": shift, "frac_bits": FRAC},
                              [(wkv, "dense8", w_o, "")]))
        ln2 = layernorm(f"ln2_{n}", blk.ln2)
        keys, scale = shifted(ln2, "in", blk.ffn_key, blk.ffn_mix_k)
        mults, shift = _mults({"mult": scale})
        ffk = b.add(f"ffk_{n}", "relu_square_fixed", blk.ffn_key.shape[0],
                    {**mults, "shift": shift, "in_frac": FRAC, "out_frac": SQUARE_FRAC}, keys)
        (w_v,), scale_v = _rows(blk.ffn_value)
        gates, scale_r = shifted(ln2, "r", blk.ffn_receptance, blk.ffn_mix_r)
        mults, shift = _mults({"mult": scale_v * 2.0 ** (FRAC - SQUARE_FRAC),
                               "mult_r": scale_r * 2.0 ** (GATE_IN_FRAC - FRAC)})
        residual.append(b.add(f"ffn_{n}", "gated_lif_fixed", d, {**mults, "shift": shift, "frac_bits": FRAC},
                              [(ffk, "dense8", w_v, "v"), *gates]))
    ln_out = layernorm("ln_out", model.ln_out)
    (w_h,), scale = _rows(model.head)
    mults, shift = _mults({"mult": scale})
    head = b.add("head", "lut_activation", model.head.shape[0], {**mults, "shift": shift}, [(ln_out, "dense8", w_h, "")])
    return Graph(name, b.populations, b.projections, "embed", head, "membrane", dataset), dict(b.time)


class LoweredSpikeGPTFixed(LoweredSpikeGPT):
    """A SpikeGPT lowered to fixed-point programs: the chip's outputs are the head's payloads,
    logits with `FRAC` fractional bits, which must equal those of the
    graph's integer `neurosim.programs.reference.Reference`."""

    lif_kinds = ("lif_fixed", "gated_lif_fixed")

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        return (self.lm.model.embedding[np.asarray(tokens)] >= 0).astype(np.int64)

    def output_values(self, payload, state) -> np.ndarray:
        return np.array(payload, copy=True)

    def logits(self, output: np.ndarray) -> np.ndarray:
        return np.atleast_2d(output) / float(1 << FRAC)
