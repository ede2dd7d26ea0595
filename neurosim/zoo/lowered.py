"""What language models lowered to float neuron programs share (`neurosim.zoo.egru.lowering`,
`neurosim.zoo.spikegpt.float_lowering`): scoring a text with the graph's own float32 arithmetic."""

from __future__ import annotations

import numpy as np

from neurosim import datasets
from neurosim.programs.reference import Reference


def score_on_reference(lowered, codes: np.ndarray, counted: list[str]) -> tuple[dict[str, float], int]:
    """Bits per character and accuracy of ``lowered``'s graph over ``codes``, evaluated by the
    float32 `Reference` batched over the text's segments (`datasets.text_segments`), a token per
    step with the populations held between tokens as on the chip; and per population in
    ``counted`` the fraction of its neurons that sent an event per token. Returns the figures and
    the characters scored."""
    steps = datasets.RESET_EVERY
    inputs, targets, valid = datasets.text_segments(codes, steps)
    reference = Reference(lowered.graph, len(inputs))
    stage = lowered.stages()
    entries = range(steps)
    silent = np.zeros_like(lowered.embed(inputs[:, 0]))
    nll, correct = 0.0, 0
    events = np.zeros(len(counted))
    for t in range(steps + lowered.depth):
        reference.set_input(lowered.graph.input_population, lowered.embed(inputs[:, t]) if t < steps else silent)
        payload = reference.step(lowered.hold(t, entries))
        for k, name in enumerate(counted):
            token = t - stage[name]
            if 0 <= token < steps:
                events[k] += np.count_nonzero(payload[name][valid[:, token]])
        token = t - lowered.depth
        if token < 0:
            continue
        rows = valid[:, token]
        out = lowered.output_values(payload[lowered.output], reference.state_of(lowered.output))
        loss, right = datasets.prediction_scores(lowered.logits(out)[rows], targets[rows, token])
        nll, correct = nll + loss, correct + right
    n = int(valid.sum())
    sizes = [lowered.graph.populations[name].size for name in counted]
    rates = {name: float(e / (n * size)) for name, e, size in zip(counted, events, sizes)}
    return {"bits_per_char": float(nll / n / np.log(2.0)), "accuracy": correct / n, **rates}, n
