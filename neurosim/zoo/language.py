"""A language model made ready for a chip: its code scales calibrated, its blocks lowered to a
graph of neuron programs, and its text; the host's part (embedding, head, scoring) as well."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim import datasets
from neurosim.zoo.egru import model as egru
from neurosim.zoo.matmulfree import model as matmulfree
from neurosim.zoo.spikegpt import model as spikegpt
from neurosim.zoo.egru.lowering import LoweredEgru
from neurosim.zoo.egru.lowering import lower as lower_egru
from neurosim.zoo.spikegpt.float_lowering import LoweredSpikeGPT
from neurosim.zoo.spikegpt.float_lowering import lower as lower_spikegpt
from neurosim.zoo.spikegpt.fixed_lowering import LoweredSpikeGPTFixed
from neurosim.zoo.spikegpt.fixed_lowering import lower as lower_spikegpt_fixed
from neurosim.graph.graph import Graph
from neurosim.zoo.loader import LanguageModel
from neurosim.zoo.matmulfree.lowering import calibrate, embed, lower
from neurosim.programs.reference import DataflowReference

RESET_EVERY = datasets.RESET_EVERY     # characters between state resets when scoring a text


@dataclass
class LoweredLanguageModel:
    reference_is_model = False      # the chip is checked against the integer dataflow reference

    lm: LanguageModel
    graph: Graph
    depth: int                      # timesteps from a token's entry to its output
    exponents: dict[str, int]       # each BitLinear's code scale 2^k

    @property
    def output(self) -> str:
        return self.graph.readout_population

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        """What the host sends for tokens: embeddings, or one-hot inputs with the embedding on the chip."""
        return embed(self.lm.model, tokens, self.lm.fixed_point, self.lm.embedding_on_chip)

    def logits(self, output: np.ndarray) -> np.ndarray:
        """The logits of the graph's output (fixed point): the chip's own with the head on the chip,
        else the host's head (as trained) on the last block's output."""
        x = np.asarray(output, np.float64) / (1 << self.lm.fixed_point.frac)
        return x if self.lm.head_on_chip else matmulfree.head_logits(self.lm.model, x, "quantized")

    def hold(self, step: int, entries: set[int] | range) -> frozenset[str]:
        """No population is held: the lowered programs keep their state over steps without input."""
        return frozenset()

    def output_values(self, payload: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
        """The output a token leaves: the output population's payloads."""
        return np.array(payload, copy=True)

    def matches(self, expected: list[np.ndarray], outputs: list[np.ndarray]) -> bool:
        """The chip's outputs equal the integer reference's exactly."""
        return all(np.array_equal(e, o) for e, o in zip(expected, outputs))

    def reference_outputs(self, tokens: list[int]) -> list[np.ndarray]:
        """The integer reference's outputs for the tokens (`DataflowReference`), one after another."""
        reference = DataflowReference(self.graph, 1)
        values = self.embed(np.asarray(tokens, np.int64))
        return list(reference.run(self.graph.input_population, values, self.output))

    def scores(self, codes: np.ndarray) -> dict[str, float]:
        """Bits per character and accuracy of the lowered integer model (the chip's arithmetic), and
        bits per character of the model with float activations and as trained."""
        chip = score(self, codes, "chip")
        return {"accuracy": chip.accuracy, "bits_per_char": chip.bits_per_char,
                "float_bits_per_char": score(self.lm.model, codes, "float").bits_per_char,
                "trained_bits_per_char": score(self.lm.model, codes, "quantized").bits_per_char,
                "scored_chars": chip.chars}


def lower_language_model(lm: LanguageModel, software_neurons: bool = True
                         ) -> LoweredLanguageModel | LoweredEgru | LoweredSpikeGPT:
    """An EGRU model as float neuron programs; a SpikeGPT as float programs on a chip whose
    neurons are software (``software_neurons``: ARM PEs), else as fixed-point programs with
    8-bit weights; a MatMul-free model calibrated on the start of the training text with its
    blocks lowered, to fused programs unless the neurons are software."""
    if isinstance(lm.model, egru.Model):
        graph, depth = lower_egru(lm.model, lm.name, lm.dataset, lm.head_on_chip)
        graph.source_file, graph.weights_sha256 = lm.source_file, lm.weights_sha256
        return LoweredEgru(lm, graph, depth)
    if isinstance(lm.model, spikegpt.Model):
        lowering, lowered = ((lower_spikegpt, LoweredSpikeGPT) if software_neurons
                             else (lower_spikegpt_fixed, LoweredSpikeGPTFixed))
        graph, stage = lowering(lm.model, lm.name, lm.dataset)
        graph.source_file, graph.weights_sha256 = lm.source_file, lm.weights_sha256
        return lowered(lm, graph, stage)
    text = datasets.load_text(lm.dataset, "train")
    exponents = calibrate(lm.model, text.codes[:lm.calibration_chars].astype(np.int64), lm.fixed_point)
    graph, depth = lower(lm.model, exponents, lm.fixed_point, name=lm.name, embedding_on_chip=lm.embedding_on_chip,
                         head_on_chip=lm.head_on_chip, fused=not software_neurons)
    graph.source_file, graph.weights_sha256 = lm.source_file, lm.weights_sha256
    return LoweredLanguageModel(lm, graph, depth, exponents)


@dataclass(frozen=True)
class Score:
    bits_per_char: float
    accuracy: float
    chars: int


def score(model: matmulfree.Model | LoweredLanguageModel, codes: np.ndarray, mode: str) -> Score:
    """Bits per character and next-character accuracy over ``codes``: ``mode`` is ``chip`` (a
    lowered model's integer graph, token by token, with the host's head) or a mode of the model
    as trained (``float``, ``quantized``). The text is cut into segments of `RESET_EVERY`
    characters that start from the zero state and run side by side (`datasets.text_segments`)."""
    inputs, targets, valid = datasets.text_segments(codes, RESET_EVERY)
    n_seg = len(inputs)
    lowered = model if isinstance(model, LoweredLanguageModel) else None
    model = lowered.lm.model if lowered is not None else model
    if mode == "chip":
        reference = DataflowReference(lowered.graph, n_seg)
    else:
        state = matmulfree.initial_state(model, n_seg)
    nll, correct = 0.0, 0
    for t in range(RESET_EVERY):
        if mode == "chip":
            reference.set_input(lowered.graph.input_population, lowered.embed(inputs[:, t]))
            logits = lowered.logits(reference.step()[lowered.output])
        else:
            logits, state = matmulfree.step(model, inputs[:, t], state, mode)
        rows = valid[:, t]
        loss, right = datasets.prediction_scores(logits[rows], targets[rows, t])
        nll, correct = nll + loss, correct + right
    n = int(valid.sum())
    return Score(float(nll / n / np.log(2.0)), correct / n, n)
