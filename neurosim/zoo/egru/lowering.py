"""An EGRU language model (`neurosim.zoo.egru.model`) lowered to a graph of float neuron programs.

Populations, in order::

    embed     float_source, E      the token's embedding, sent by the host every step
    egru0..   egru, H per layer    one unit per neuron; six input ports (`neurosim.programs.fp32.EGRU_PORTS`)
    readout   float_readout, V     the logits (with the head on the chip, of a character-level model)

A word-level model's head (tens of thousands of logits) is never a population: on the chip it
is a table the PEs read as software (`LoweredEgru.head_table`), as its embedding is with
``embedding: chip`` (`LoweredEgru.embedding_table`); a host-loop run
(`neurosim.runs.arm_language`) prices both where their weights fit, PE SRAM or the chip's DRAM.

Projections: per layer, its input matrix W (from ``embed`` or the layer below) and its
recurrent matrix R (from itself), each split by gate into three sparse projections onto
ports ``in_z in_r in_g`` and ``rec_z rec_r rec_g``; the readout Wo from the top layer.
All keep the trained float32 weights (sign mode ``float``) and delay 0.

Timing: a token's embedding is sent in step t; layer k updates with it in step t + 1 + k and
its recurrent input is its own events of its update before, so one token enters per step and
the layers work as a pipeline. A layer updates only in the steps that bring it a token
(`LoweredEgru.hold`): before the first token reaches it and between generated tokens it
keeps its state, as the model has no step between two tokens. The logits are in the readout's state after step t + L + 1
(head on the chip), or the top layer's events of step t + L go to the host's head.

The graph's arithmetic is the model's: a synapse adds ``weight * value`` in float32, each
accumulator in ascending source order, and the unit's update is the same numpy code, so the
chip's logits equal `neurosim.zoo.egru.model.step`'s (`LoweredEgru.reference_outputs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.zoo.egru import model as egru
from neurosim.graph.graph import Csr, Graph, Population, Sparse
from neurosim.programs import EGRU_PORTS, FLOAT
from neurosim.zoo.lowered import score_on_reference


def gate_blocks(w: egru.Csr, h: int) -> list[Csr]:
    """A ``[n_in, 3H]`` CSR matrix as three ``[n_in, H]`` ones, gates z, r, g."""
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    blocks = []
    for g in range(3):
        keep = (w.indices >= g * h) & (w.indices < (g + 1) * h)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=w.shape[0]))]).astype(np.int64)
        blocks.append(Csr(indptr, (w.indices[keep] - g * h).astype(np.int32), w.values[keep].astype(FLOAT)))
    return blocks


def lower(model: egru.Model, name: str, dataset: str, head_on_chip: bool) -> tuple[Graph, int]:
    """The graph of the model and its depth: steps from a token's entry to its output."""
    pops = {"embed": Population("embed", "float_source", model.embedding.shape[1])}
    projections = {}

    def add(proj_name: str, source: str, target: str, csr: Csr, n_target: int, port: str = "") -> None:
        projections[proj_name] = Sparse(proj_name, source, target, csr, n_target, 0, port=port, weight_bits=32,
                                        sign_mode="float")

    below = "embed"
    for k, layer in enumerate(model.layers):
        h, unit = layer.units, f"egru{k}"
        b, rb = layer.input_bias.reshape(3, h), layer.recurrent_bias.reshape(3, h)
        params = {"threshold": layer.threshold.astype(FLOAT)}
        for g, gate in enumerate(egru.GATES):
            params[f"bias_{gate}"] = b[g].astype(FLOAT)
            params[f"rec_bias_{gate}"] = rb[g].astype(FLOAT)
        pops[unit] = Population(unit, "egru", h, params)
        for g, (gate, csr) in enumerate(zip(egru.GATES, gate_blocks(layer.input_weight, h))):
            add(f"{below}_to_{unit}_{gate}", below, unit, csr, h, EGRU_PORTS[g])
        for g, (gate, csr) in enumerate(zip(egru.GATES, gate_blocks(layer.recurrent_weight, h))):
            add(f"{unit}_rec_{gate}", unit, unit, csr, h, EGRU_PORTS[3 + g])
        below = unit
    depth = len(model.layers)
    if head_on_chip and model.vocab is not None:
        vocab = model.readout_bias.shape[0]
        pops["readout"] = Population("readout", "float_readout", vocab, {"bias": model.readout_bias.astype(FLOAT)})
        wo = model.readout_weight
        add(f"{below}_to_readout", below, "readout", Csr(wo.indptr.astype(np.int64), wo.indices, wo.values), vocab)
        below, depth = "readout", depth + 1
    return Graph(name, pops, projections, "embed", below, "membrane", dataset), depth


@dataclass
class LoweredEgru:
    """An EGRU language model lowered for a chip: what the language runner needs of it."""

    reference_is_model = True       # the chip is checked against the model's own float32 step

    lm: object                      # neurosim.zoo.loader.LanguageModel
    graph: Graph
    depth: int

    @property
    def output(self) -> str:
        return self.graph.readout_population

    @property
    def head_on_chip(self) -> bool:
        """The head is the graph's readout population."""
        return self.output == "readout"

    @property
    def head_table(self) -> bool:
        """The head runs on the chip as a table the PEs read, not as a population (a word-level model's)."""
        return self.lm.head_on_chip and not self.head_on_chip

    @property
    def embedding_table(self) -> bool:
        """The embedding runs on the chip: a PE reads the token's row and sends it to the first layer."""
        return self.lm.embedding_on_chip

    @property
    def vocab_size(self) -> int:
        return int(self.lm.model.embedding.shape[0])

    def token_text(self, tokens: list[int]) -> str:
        """Tokens as text: characters, or word ids (a model of word ids has no words to show)."""
        vocab = self.lm.model.vocab
        return "".join(vocab[t] for t in tokens) if vocab is not None else " ".join(f"<{t}>" for t in tokens)

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        return self.lm.model.embedding[np.asarray(tokens)]

    def stages(self) -> dict[str, int]:
        """Each updating population and the steps after a token's entry at which it takes the token."""
        names = [name for name in self.graph.populations if name != "embed"]
        return {name: 1 + k for k, name in enumerate(names)}

    def hold(self, step: int, entries: set[int] | range) -> frozenset[str]:
        """The populations that take no token in ``step`` (tokens entered at ``entries``): they
        keep their state (`neurosim.engine.engine.Engine.step`), as the model has no step
        between two tokens."""
        return frozenset(name for name, offset in self.stages().items() if step - offset not in entries)

    def output_values(self, payload: dict[str, np.ndarray] | np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
        """The output a token leaves: the readout's logits (head on the chip) or the top layer's events."""
        return state["v"].copy() if self.head_on_chip else np.array(payload, copy=True)

    def logits(self, output: np.ndarray) -> np.ndarray:
        output = np.atleast_2d(output)
        if self.head_on_chip:
            return output
        logits, _ = egru.event_matvec(self.lm.model.readout_weight, output.astype(FLOAT))
        return logits + self.lm.model.readout_bias

    def reference_outputs(self, tokens: list[int]) -> list[np.ndarray]:
        """The model's own outputs for the tokens, one after another from the zero state."""
        model, state, outputs = self.lm.model, egru.initial_state(self.lm.model, 1), []
        for token in tokens:
            logits, state, _ = egru.step(model, np.array([token]), state)
            outputs.append(logits[0] if self.head_on_chip else state[-1].y[0])
        return outputs

    def matches(self, expected: list[np.ndarray], outputs: list[np.ndarray]) -> bool:
        """The chip's outputs equal the model's bit for bit (the same float32 sums, in the same order)."""
        return all(np.array_equal(e, o) for e, o in zip(expected, outputs))

    def scores(self, codes: np.ndarray) -> dict[str, float]:
        """Bits per character and accuracy of the chip's arithmetic (`score_on_reference`) and of the
        model as trained (`neurosim.zoo.egru.model.evaluate`); with the event rate per layer."""
        units = [name for name in self.graph.populations if name.startswith("egru")]
        chip, n = score_on_reference(self, codes, units)
        float_model = egru.evaluate(self.lm.model, codes)
        return {"bits_per_char": chip["bits_per_char"], "accuracy": chip["accuracy"],
                "float_bits_per_char": float_model.bits_per_char, "float_accuracy": float_model.accuracy,
                "scored_chars": n, **{f"event_rate_{name}": chip[name] for name in units}}
