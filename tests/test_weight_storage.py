"""A ternary weight's storage in synaptic memory: packed in 2 bits, or one 8-bit weight as deployed."""

import numpy as np
import pytest

from helpers import make_chip
from neurosim import datasets
from neurosim.graph.graph import Dense
from neurosim.mapping.mapper import map_graph
from neurosim.zoo.matmulfree import model as matmulfree
from neurosim.zoo.matmulfree.lowering import FixedPoint, calibrate, lower

VOCAB = datasets.load_text("shakespeare", "test").vocab


@pytest.fixture(scope="module")
def graphs():
    model = matmulfree.generate(2, 32, 64, len(VOCAB), 0)
    exponents = calibrate(model, np.random.default_rng(0).integers(0, len(VOCAB), 128))
    return {bits: lower(model, exponents, FixedPoint(weight_storage_bits=bits))[0] for bits in (2, 8)}


def ternary(graph):
    return {name: p for name, p in graph.projections.items() if isinstance(p, Dense) and p.weight_bits != 8}


def test_the_format_sets_every_ternary_matrix_and_no_other(graphs):
    packed, wide = graphs[2], graphs[8]
    assert ternary(packed) and all(p.weight_bits == 2 for p in ternary(packed).values())
    assert not ternary(wide)
    for name, p in packed.projections.items():
        assert np.array_equal(np.asarray(p.weight if isinstance(p, Dense) else p.csr.weight),
                              np.asarray(wide.projections[name].weight if isinstance(p, Dense)
                                         else wide.projections[name].csr.weight))


def test_wider_weights_take_more_memory_and_more_reads(graphs):
    chip = make_chip()
    maps = {bits: map_graph(graph, chip) for bits, graph in graphs.items()}
    names = list(ternary(graphs[2]))
    index = {bits: [list(graphs[bits].projections).index(n) for n in names] for bits in graphs}
    bits2 = maps[2].routes.proj_syn_bits[index[2]]
    bits8 = maps[8].routes.proj_syn_bits[index[8]]
    assert np.all(bits8 - bits2 == 6)                  # the same index bits, six more weight bits
    reads = {bits: int(m.routes.synmem_reads.sum()) for bits, m in maps.items()}    # one message on every axon
    assert reads[8] > reads[2]
    assert maps[8].n_cores >= maps[2].n_cores
