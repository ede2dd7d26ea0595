"""Nearest-neighbour search on chips of neurocores, the k-NN of Frady et al. 2020 ("Neuromorphic
Nearest-Neighbor Search Using Intel's Pohoiki Springs", arXiv:2004.12691), as a model kind
(``kind: knn_patterns``, `neurosim.spec.model.KnnModelFile`).

The data: ``patterns`` unit vectors of ``dimensions`` drawn from the model's seed near a
subspace of ``intrinsic_dims`` (random Gaussian directions), in ``clusters`` Gaussian clusters
with isotropic ``noise``, so that nearest neighbours are meaningful as in real data of low
intrinsic dimension. A scenario's queries are drawn from the same distribution with the
scenario's seed (the ``knn_queries`` dataset: `KnnGraph.queries`), and their exact nearest
neighbours by cosine similarity (the dot product of unit vectors) are computed in numpy.

The network, one neuron per stored pattern:

* ``queries``: ``2 x dimensions`` input lines (`time_source`, values 1 to ``window``, value ``v``
  spiking at step ``window - v``), two per dimension. A query component ``x`` (of the unit vector,
  times ``code_gain``, clipped to [-1, 1]) is sent as two spikes, one on its ``+`` line at value
  ``1 + round((1 + x) (window - 1) / 2)`` and one on its ``-`` line at ``1 + round((1 - x) (window
  - 1) / 2)``: the larger the component, the earlier its ``+`` spike and the later its ``-``
  spike, ``x (window - 1)`` steps apart. A component below ``theta_e`` is not sent.
* per chip ``c`` of ``chips``: ``relay_c``, one relay neuron per input line (``loihi_lif`` that
  spikes in the step after its input), on chip ``c``, which the host reaches with each input
  spike; and ``patterns_c``, its share of the patterns (``loihi_lif`` with non-decaying current
  and voltage), on chip ``c``, each with dense 8-bit synapses from every relay of its chip: the
  pattern's components ``E`` (scaled so that the largest magnitude of all patterns is
  ``weight_max``) from the ``+`` lines and ``-E`` from the ``-`` lines (``W = [E, -E]``).

A dimension's ``+`` spike adds its weight to a pattern neuron's current and its ``-`` spike takes
it away again, so the voltage, integrating the current, gains ``E x (window - 1)`` from it:
once the window is over the voltage holds the dot product of the pattern with the query and
stays (a ``ramp`` bias, the same for every neuron, may lift all of them towards ``threshold``
after it, in the order of their dot products). The first ``k`` pattern neurons to spike are the
answer, and the query stops there (`neurosim.runs.first_spikes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurosim.datasets import Dataset, check_allocation
from neurosim.graph.graph import Csr, Dense, Graph, Population, Sparse
from neurosim.spec.model import KnnModelFile, KnnPatternsSpec

DATASET = "knn_queries"
CHUNK_ROWS = 8192           # vectors drawn at once: the same values whatever the count
BYTES_PER_SYNAPSE = 40      # a stored weight while the graph is built, mapped and run (routes, references)
BYTES_PER_VALUE = 24        # a pattern component while it is drawn and kept as a unit vector
RELAY = {"du": 4095, "dv": 0, "vth": 0}     # spikes in the step after a spike reaches it
BIAS_MANT, BIAS_EXP = 4095, 7               # the largest mantissa and exponent of a loihi_lif bias


def draw_vectors(spec: KnnPatternsSpec, n: int, stream: tuple[int, ...]) -> np.ndarray:
    """``n`` unit vectors (float32 ``[n, dimensions]``) of the model's distribution (see the module
    docstring), drawn from ``numpy.random.default_rng(stream)`` in chunks of `CHUNK_ROWS`; the
    clusters and the subspace come from the model's seed alone."""
    shape_rng = np.random.default_rng([spec.seed, 0])
    centres = shape_rng.standard_normal((spec.clusters, spec.intrinsic_dims))
    basis = shape_rng.standard_normal((spec.intrinsic_dims, spec.dimensions)) / math.sqrt(spec.intrinsic_dims)
    rng = np.random.default_rng(list(stream))
    out = np.empty((n, spec.dimensions), np.float32)
    for lo in range(0, n, CHUNK_ROWS):
        rows = min(CHUNK_ROWS, n - lo)
        latent = centres[rng.integers(0, spec.clusters, rows)]
        latent = latent + spec.cluster_spread * rng.standard_normal((rows, spec.intrinsic_dims))
        x = latent @ basis + spec.noise * rng.standard_normal((rows, spec.dimensions))
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        out[lo:lo + rows] = x
    return out


def quantised(patterns: np.ndarray, weight_max: int) -> np.ndarray:
    """The patterns as 8-bit weights: scaled so that the largest magnitude of all is ``weight_max``,
    rounded to nearest (int8 ``[patterns, dimensions]``)."""
    peak = float(np.abs(patterns).max(initial=0.0))
    scale = weight_max / peak if peak > 0 else 0.0
    return np.rint(patterns.astype(np.float64) * scale).astype(np.int8)


def time_code(queries: np.ndarray, window: int, gain: float, theta_e: float) -> np.ndarray:
    """The input lines' values of unit vectors ``queries`` ``[S, D]`` (see the module docstring):
    the ``+`` lines, then the ``-`` lines; each component times ``gain``, clipped to [-1, 1], and 0
    on both lines below ``theta_e`` (int64 ``[S, 2D]``)."""
    x = np.clip(queries.astype(np.float64) * gain, -1.0, 1.0)
    sent = np.abs(x) >= theta_e
    half = (window - 1) / 2
    plus = np.where(sent, 1 + np.rint((1 + x) * half), 0)
    minus = np.where(sent, 1 + np.rint((1 - x) * half), 0)
    return np.concatenate([plus, minus], axis=1).astype(np.int64)


def bias_of(ramp: int) -> tuple[int, int]:
    """A ``loihi_lif`` bias (mantissa, exponent) equal to ``ramp``; ValueError if none is."""
    for exp in range(BIAS_EXP + 1):
        if ramp % (1 << exp) == 0 and ramp >> exp <= BIAS_MANT:
            return ramp >> exp, exp
    raise ValueError(f"ramp {ramp} is no bias mantissa (up to {BIAS_MANT}) times 2^exponent (up to {BIAS_EXP})")


def exact_neighbours(patterns: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Each query's ``k`` nearest patterns by cosine similarity (the dot product of unit vectors,
    in float64), most similar first, the lower index first on a tie (int64 ``[S, k]``)."""
    index, stored = np.arange(len(patterns)), patterns.astype(np.float64)
    out = np.empty((len(queries), k), np.int64)
    for lo in range(0, len(queries), 256):
        similarity = stored @ queries[lo:lo + 256].astype(np.float64).T          # [patterns, queries]
        for j in range(similarity.shape[1]):
            out[lo + j] = np.lexsort((index, -similarity[:, j]))[:k]
    return out


@dataclass(frozen=True)
class KnnQueries(Dataset):
    """A scenario's queries: ``inputs`` the lines' values ``[S, 2D]``, ``labels`` each query's exact
    nearest pattern, ``vectors`` the unit vectors ``[S, D]`` and ``neighbours`` the exact ``k``
    nearest ``[S, k]``."""

    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    neighbours: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))


@dataclass
class KnnGraph(Graph):
    """The graph of a ``knn_patterns`` model, with what its runs need beyond it: ``k``, the pattern
    populations in the order of the patterns (``readout_populations``), the stored unit vectors
    and the model's spec (to draw queries)."""

    k: int = 1
    readout_populations: tuple[str, ...] = ()
    patterns: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    spec: KnnModelFile | None = None

    def queries(self, samples: int, seed: int) -> KnnQueries:
        """``samples`` queries drawn with the scenario's ``seed``, their time code and exact neighbours."""
        g = self.spec.generated
        check_allocation(samples * (g.dimensions * BYTES_PER_VALUE + 8 * len(self.patterns)),
                         f"{samples:,} queries of {g.dimensions:,} dimensions", field="input.samples")
        vectors = draw_vectors(g, samples, (g.seed, 2, seed))
        neighbours = exact_neighbours(self.patterns, vectors, self.k)
        code = time_code(vectors, self.spec.window, self.spec.code_gain, self.spec.theta_e)
        return KnnQueries(DATASET, "generated", code, neighbours[:, 0].copy(), vectors, neighbours)


def knn_graph(spec: KnnModelFile, yaml_path: Path, lines) -> KnnGraph:
    """The model's graph, its patterns drawn from its seed (see the module docstring)."""
    g = spec.generated
    lines_in = 2 * g.dimensions
    check_allocation(g.patterns * g.dimensions * (BYTES_PER_VALUE + 2 * BYTES_PER_SYNAPSE),
                     f"its {g.patterns:,} generated patterns of {g.dimensions:,} dimensions", file=str(yaml_path),
                     field="generated", line=lines.find(("generated",)) if lines is not None else None)
    patterns = draw_vectors(g, g.patterns, (g.seed, 1))
    weights = quantised(patterns, spec.weight_max)
    source = {"window": spec.window, "value_max": spec.window, "value_min": 1}
    mant, exp = bias_of(spec.ramp)
    populations = {"queries": Population("queries", "time_source", lines_in, source)}
    projections = {}
    one_to_one = Csr(np.arange(lines_in + 1, dtype=np.int64), np.arange(lines_in, dtype=np.int32),
                     np.ones(lines_in, np.int8))
    bounds = np.linspace(0, g.patterns, spec.chips + 1).astype(np.int64)
    readout = []
    for c in range(spec.chips):
        relay, store = f"relay_{c}", f"patterns_{c}"
        populations[relay] = Population(relay, "loihi_lif", lines_in, dict(RELAY), chip=c)
        populations[store] = Population(store, "loihi_lif", int(bounds[c + 1] - bounds[c]),
                                        {"du": 0, "dv": 0, "vth": spec.threshold, "bias_mant": mant,
                                         "bias_exp": exp}, chip=c)
        projections[f"broadcast_{c}"] = Sparse(f"broadcast_{c}", "queries", relay, one_to_one, lines_in, 0,
                                               weight_bits=2)
        mine = weights[bounds[c]:bounds[c + 1]]
        projections[f"match_{c}"] = Dense(f"match_{c}", relay, store, np.concatenate([mine, -mine], axis=1), 0)
        readout.append(store)
    return KnnGraph(name=spec.name, populations=populations, projections=projections, input_population="queries",
                    readout_population=readout[0], readout_mode="first_spikes", dataset=DATASET,
                    source_file=str(yaml_path), weights_sha256=f"generated, seed {g.seed}", lines=lines, k=spec.k,
                    readout_populations=tuple(readout), patterns=patterns, spec=spec)
