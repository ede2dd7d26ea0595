"""The model intermediate representation: populations and projections.

A `Population` is a neuron kind, a size and its parameters (scalars or per-neuron
arrays). A projection connects a source population to a target population; every
projection kind can give its synapses as CSR rows, one row per source neuron, which
is what the mapper and the engine use. Weights are integers of ``weight_bits`` bits (1 to 8,
stored as int8) in a sign mode (``mixed``: two's complement; ``excitatory``: 0 to
2^bits - 1; ``inhibitory``: -(2^bits - 1) to 0) with one power-of-two exponent per
projection: a synaptic op adds ``shift(weight * payload, weight_exp)`` to the dendritic
accumulator of the target neuron's input ``port`` (one of its kind's ports; empty: the first).
A graph of float neuron kinds has float32 weights instead (sign mode ``float``, 32 bits,
exponent 0): a synaptic op adds ``weight * payload`` in float32.
A projection's ``delay`` holds its input back that many extra timesteps: with delay 0 an
event of step t is read by its target's update in step t + 1, with delay k in step t + 1 + k.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


SIGN_MODES = ("mixed", "excitatory", "inhibitory", "float")


def weight_range(bits: int, sign_mode: str) -> tuple[int, int]:
    """The integers a weight of ``bits`` bits can hold in a sign mode."""
    if sign_mode == "mixed":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    magnitude = (1 << bits) - 1
    return (0, magnitude) if sign_mode == "excitatory" else (-magnitude, 0)


@dataclass(frozen=True)
class Csr:
    """Synapses with one row per source neuron: targets and weights of row s are
    ``indices[indptr[s]:indptr[s+1]]`` and ``weight[...]``."""

    indptr: np.ndarray      # int64 [n_source + 1]
    indices: np.ndarray     # int32 [n_synapses], target neuron within the target population
    weight: np.ndarray      # int8 [n_synapses] (float32 in a float graph)

    @property
    def n_synapses(self) -> int:
        return int(self.indptr[-1])


@dataclass(frozen=True)
class Population:
    name: str
    kind: str
    size: int
    params: dict[str, Any] = field(default_factory=dict)
    chip: int | None = None     # pinned: every core of its slices on this chip of the system (`neurosim.mapping`)


@dataclass(frozen=True)
class Dense:
    """All-to-all synapses: ``weight[target, source]``."""

    name: str
    source: str
    target: str
    weight: np.ndarray
    weight_exp: int
    port: str = ""
    weight_bits: int = 8
    sign_mode: str = "mixed"
    delay: int = 0

    def __post_init__(self) -> None:
        assert self.weight.ndim == 2 and self.weight.dtype in (np.int8, np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return self.weight.shape  # (n_target, n_source)

    def to_csr(self) -> Csr:
        # Dense rows keep their zero weights: the chip stores and reads them.
        n_target, n_source = self.weight.shape
        indptr = np.arange(n_source + 1, dtype=np.int64) * n_target
        indices = np.tile(np.arange(n_target, dtype=np.int32), n_source)
        return Csr(indptr, indices, np.ascontiguousarray(self.weight.T).reshape(-1))


@dataclass(frozen=True)
class Sparse:
    """Synapses listed per source neuron (CSR)."""

    name: str
    source: str
    target: str
    csr: Csr
    n_target: int
    weight_exp: int
    port: str = ""
    weight_bits: int = 8
    sign_mode: str = "mixed"
    delay: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_target, len(self.csr.indptr) - 1)

    def to_csr(self) -> Csr:
        return self.csr


@dataclass(frozen=True)
class Conv2d:
    """A 2D convolution ``weight[out_ch, in_ch, kh, kw]`` over a (C, H, W) input, neurons
    laid out channel-major as (C, H, W). Expanded to CSR for execution; the chip stores
    the shared kernel once, which the mapper accounts for."""

    name: str
    source: str
    target: str
    weight: np.ndarray
    in_shape: tuple[int, int, int]
    stride: int
    padding: int
    weight_exp: int
    port: str = ""
    weight_bits: int = 8
    sign_mode: str = "mixed"
    delay: int = 0

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        oc, _, kh, kw = self.weight.shape
        return (oc, (h + 2 * self.padding - kh) // self.stride + 1, (w + 2 * self.padding - kw) // self.stride + 1)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(np.prod(self.out_shape)), int(np.prod(self.in_shape)))

    def to_csr(self) -> Csr:
        c, h, w = self.in_shape
        oc, ic, kh, kw = self.weight.shape
        _, oh, ow = self.out_shape
        o, y, x = (a.ravel() for a in np.meshgrid(np.arange(oc), np.arange(oh), np.arange(ow), indexing="ij"))
        target = (o * oh + y) * ow + x
        sources, targets, weights = [], [], []
        for i in range(ic):
            for dy in range(kh):
                for dx in range(kw):
                    sy, sx = y * self.stride + dy - self.padding, x * self.stride + dx - self.padding
                    inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
                    sources.append(((i * h + sy) * w + sx)[inside])
                    targets.append(target[inside])
                    weights.append(self.weight[o[inside], i, dy, dx])
        src, tgt, weight = np.concatenate(sources), np.concatenate(targets), np.concatenate(weights)
        order = np.lexsort((tgt, src))       # one synapse per (source, target): rows by source, targets ascending
        indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=c * h * w))]).astype(np.int64)
        return Csr(indptr, tgt[order].astype(np.int32), weight[order].astype(np.int8))


Projection = Dense | Sparse | Conv2d


@dataclass
class Graph:
    """A model: populations in order, projections between them, and what it reads and outputs."""

    name: str
    populations: dict[str, Population]
    projections: dict[str, Projection]
    input_population: str
    readout_population: str
    readout_mode: str
    dataset: str
    source_file: str = ""
    weights_sha256: str = ""
    lines: Any = None       # LineMap of the model file, for error messages
    # population: (interval, phase): its state back to its initial values at the start of every
    # step t of a sample with t % interval == phase (lava-dl's LIFReset layers)
    resets: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations.values())

    @property
    def n_synapses(self) -> int:
        return sum(p.to_csr().n_synapses for p in self.projections.values())
