"""SpikeGPT (`neurosim.zoo.spikegpt.model`) lowered to a graph of float neuron programs, for chips
whose neurons are software (SpiNNaker 2's ARM PEs).

Populations per block ``n`` (d channels, f = 4 d in the FFN), after ``embed`` (the host sends a
token's binary embedding)::

    ln1_n    float_layernorm, d    LN1 of the token's residual (the embedding and every earlier
                                    sub-layer's spikes, one synapse of weight 1 each)
    wkv_n    rwkv_wkv, d           k, v, r from ln1 (the token shift's two shares on two ports), WKV, gate
    att_n    float_lif, d          Wo of wkv's output; its spikes join the residual
    ln2_n    float_layernorm, d    LN2 of the residual
    ffk_n    relu_square, f        Wk2 of ln2's two shares, relu^2
    ffn_n    float_gated_lif, d    Wv2 of ffk (port v), sigmoid(Wr2 of ln2's shares) (ports r, r_next)
    ln_out   float_layernorm, d    the final LN of the residual
    head     float_readout, V      Wh: the logits

The token shift ``x mu + x' (1 - mu)`` (``x'`` the previous token's) is two projections of the
same weights times ``mu`` and ``1 - mu``: the first into the token's port, the second into a
``*_next`` port whose program keeps it for the next token (`neurosim.programs.fp32`), so
tokens may come at any pace. Each population takes a token a fixed number of steps after it
entered (`stages`); the residual's contributions reach a LayerNorm in the same step through
synaptic delays. A population updates only in the steps that bring it a token (`hold`).

Its arithmetic is the model's in float32, but summed synapse by synapse in source order rather
than by numpy's matrix products: the logits agree with the model's to float32 rounding, and a
spike whose voltage was within that rounding of the threshold may differ (`LoweredSpikeGPT.scores`
compares the two over a text). The chip's logits equal those of the graph's numpy `Reference`,
which sums in the same order, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.zoo.spikegpt import model as spikegpt
from neurosim.graph.graph import Csr, Dense, Graph, Population, Sparse
from neurosim.programs import FLOAT
from neurosim.zoo.lowered import score_on_reference
from neurosim.programs.reference import Reference


def _dense(name, source, target, weight, port="", delay=0):
    return Dense(name, source, target, np.ascontiguousarray(weight, FLOAT), 0, port=port, weight_bits=32,
                 sign_mode="float", delay=delay)


def _identity(name, source, target, n, delay):
    csr = Csr(np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int32), np.ones(n, FLOAT))
    return Sparse(name, source, target, csr, n, 0, weight_bits=32, sign_mode="float", delay=delay)


def lower(model: spikegpt.Model, name: str, dataset: str) -> tuple[Graph, dict[str, int]]:
    """The graph and each population's stage (steps after a token's entry at which it takes it)."""
    d = model.d
    pops = {"embed": Population("embed", "float_source", d)}
    projs: dict = {}
    stage = {"embed": 0}
    spikes: list[str] = ["embed"]                 # the residual's contributions, in order

    def add(p):
        projs[p.name] = p

    def layernorm(pname: str, ln: spikegpt.LayerNorm, at: int) -> None:
        pops[pname] = Population(pname, "float_layernorm", d, {"weight": ln.weight.astype(FLOAT),
                                                                "bias": ln.bias.astype(FLOAT)})
        stage[pname] = at
        for src in spikes:                       # every contribution arrives at step `at`
            add(_identity(f"{src}_to_{pname}", src, pname, d, at - stage[src] - 1))

    def shifted(prefix: str, src: str, target: str, weight: np.ndarray, mix: np.ndarray, port: str,
                delay: int = 0) -> None:
        add(_dense(f"{prefix}_{port}", src, target, weight * mix[None, :], port, delay))
        add(_dense(f"{prefix}_{port}_next", src, target, weight * (1 - mix)[None, :], f"{port}_next", delay))

    at = 1
    for n, block in enumerate(model.blocks):
        ln1, wkv, att, ln2, ffk, ffn = (f"{p}_{n}" for p in ("ln1", "wkv", "att", "ln2", "ffk", "ffn"))
        layernorm(ln1, block.ln1, at)
        pops[wkv] = Population(wkv, "rwkv_wkv", d, {"decay": block.decay.astype(FLOAT),
                                                    "first": block.first.astype(FLOAT)})
        stage[wkv] = at + 1
        for port, weight, mix in (("k", block.key, block.mix_k), ("v", block.value, block.mix_v),
                                  ("r", block.receptance, block.mix_r)):
            shifted(f"{ln1}_to_{wkv}", ln1, wkv, weight, mix, port)
        pops[att] = Population(att, "float_lif", d)
        stage[att] = at + 2
        add(_dense(f"{wkv}_to_{att}", wkv, att, block.output))
        spikes.append(att)
        layernorm(ln2, block.ln2, at + 3)
        pops[ffk] = Population(ffk, "relu_square", block.ffn_key.shape[0])
        stage[ffk] = at + 4
        shifted(f"{ln2}_to_{ffk}", ln2, ffk, block.ffn_key, block.ffn_mix_k, "in")
        pops[ffn] = Population(ffn, "float_gated_lif", d)
        stage[ffn] = at + 5
        add(_dense(f"{ffk}_to_{ffn}", ffk, ffn, block.ffn_value, "v"))
        shifted(f"{ln2}_to_{ffn}", ln2, ffn, block.ffn_receptance, block.ffn_mix_r, "r", delay=1)
        spikes.append(ffn)
        at += 6
    layernorm("ln_out", model.ln_out, at)
    vocab = model.head.shape[0]
    pops["head"] = Population("head", "float_readout", vocab, {"bias": np.zeros(vocab, FLOAT)})
    stage["head"] = at + 1
    add(_dense("ln_out_to_head", "ln_out", "head", model.head))
    return Graph(name, pops, projs, "embed", "head", "membrane", dataset), stage


@dataclass
class LoweredSpikeGPT:
    """A SpikeGPT lowered for a chip: what the language runner needs of it."""

    lif_kinds = ("float_lif", "float_gated_lif")     # the populations whose spikes are counted
    reference_is_model = False                       # the chip is checked against its graph's `Reference`

    lm: object
    graph: Graph
    stage: dict[str, int]

    @property
    def depth(self) -> int:
        return self.stage["head"]

    @property
    def output(self) -> str:
        return "head"

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        return (self.lm.model.embedding[np.asarray(tokens)] >= 0).astype(FLOAT)

    def stages(self) -> dict[str, int]:
        return {k: v for k, v in self.stage.items() if k != "embed"}

    def hold(self, step: int, entries) -> frozenset[str]:
        return frozenset(name for name, offset in self.stages().items() if step - offset not in entries)

    def output_values(self, payload, state) -> np.ndarray:
        return state["v"].copy()

    def logits(self, output: np.ndarray) -> np.ndarray:
        return np.atleast_2d(output)

    def reference_outputs(self, tokens: list[int]) -> list[np.ndarray]:
        """The graph's outputs for the tokens on its numpy `Reference` (the arithmetic that scores
        the text), one after another: each token alone in the pipeline, read ``depth`` steps
        after it entered."""
        reference, out = Reference(self.graph, 1), []
        silent = np.zeros_like(self.embed(np.zeros(1, np.int64)))
        step = 0
        for token in tokens:
            entry = step
            for t in range(self.depth + 1):
                reference.set_input(self.graph.input_population, self.embed(np.array([token])) if t == 0 else silent)
                payload = reference.step(self.hold(step, {entry}))
                step += 1
            state = {key: value[0] for key, value in reference.state_of(self.output).items()}
            out.append(self.output_values(payload[self.output][0], state))
        return out

    def matches(self, expected: list[np.ndarray], outputs: list[np.ndarray]) -> bool:
        """The chip's logits equal the reference's exactly (the same sums in the same order)."""
        return all(np.array_equal(e, o) for e, o in zip(expected, outputs))

    def scores(self, codes: np.ndarray) -> dict[str, float]:
        """Bits per character of the chip's arithmetic (`score_on_reference`) and of the model
        itself; spikes per neuron and token of each LIF population."""
        lifs = [p for p, pop in self.graph.populations.items() if pop.kind in self.lif_kinds]
        chip, n = score_on_reference(self, codes, lifs)
        float_model = spikegpt.evaluate(self.lm.model, codes)
        return {"bits_per_char": chip["bits_per_char"], "accuracy": chip["accuracy"],
                "float_bits_per_char": float_model.bits_per_char, "float_accuracy": float_model.accuracy,
                "scored_chars": n, **{f"spike_rate_{name}": chip[name] for name in lifs}}
