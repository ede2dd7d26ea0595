"""The dataflow reference over a sequence of tokens, a chunk of tokens per matrix product, equals it
token by token."""

import numpy as np
import pytest

from neurosim import datasets
from neurosim.programs.reference import DataflowReference
from neurosim.zoo.matmulfree import model as matmulfree
from neurosim.zoo.matmulfree.lowering import calibrate, embed, lower

VOCAB = datasets.load_text("shakespeare", "test").vocab


@pytest.mark.parametrize("chunk", [1, 3, 32])
def test_a_sequence_equals_token_after_token(chunk):
    model = matmulfree.generate(2, 32, 64, len(VOCAB), 1)
    exponents = calibrate(model, np.random.default_rng(0).integers(0, len(VOCAB), 128))
    graph, _ = lower(model, exponents)
    tokens = np.random.default_rng(2).integers(0, len(VOCAB), 10)
    readout = graph.readout_population
    one = DataflowReference(graph, 1)
    expected = []
    for token in tokens:
        one.set_input(graph.input_population, embed(model, np.array([token])))
        expected.append(one.step()[readout][0])
    got = DataflowReference(graph, 1).run(graph.input_population, embed(model, tokens), readout, chunk)
    np.testing.assert_array_equal(got, np.array(expected))
    assert np.abs(got).max() > 0 and len({row.tobytes() for row in got}) == len(tokens)
