"""Building a language model's graph as a pipeline of populations (`neurosim.zoo.matmulfree.lowering`,
`neurosim.zoo.spikegpt.fixed_lowering`): each population takes a token one step after the last of its
sources sent it, and each projection is delayed so that all of a population's inputs for a token
arrive in that step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim.graph.graph import Csr, Dense, Population, Sparse


def to_fixed(values: np.ndarray, frac: int) -> np.ndarray:
    """Values rounded to integers with ``frac`` fractional bits."""
    return np.round(np.asarray(values, np.float64) * (1 << frac)).astype(np.int64)


@dataclass
class Pipeline:
    """Populations with the timestep (relative to the token's entry) at which each sends."""

    populations: dict[str, Population] = field(default_factory=dict)
    dense_bits: int = 2          # synaptic-memory bits of a ternary (``dense``) matrix's weight
    projections: dict[str, object] = field(default_factory=dict)
    time: dict[str, int] = field(default_factory=dict)

    def source(self, name: str, kind: str, size: int, params: dict | None = None) -> str:
        """A host input, sending at the token's entry."""
        self.populations[name] = Population(name, kind, size, params or {})
        self.time[name] = 0
        return name

    def add(self, name: str, kind: str, size: int, params: dict, inputs: list[tuple]) -> str:
        """A population reading ``inputs``: ``(source, connection, weight, port[, exp])`` with the
        connection ``diagonal`` (per-channel int8 weights), ``broadcast`` (one source to all),
        ``sum`` (all to one), ``dense`` (a ternary matrix [target, source]) or ``dense8`` (an
        8-bit matrix with the weight exponent ``exp``, 0 unless given)."""
        self.populations[name] = Population(name, kind, size, params)
        self.time[name] = 1 + max(self.time[src] for src, *_ in inputs)
        for src, connection, weight, port, *exp in inputs:
            delay = self.time[name] - self.time[src] - 1
            proj_name = f"{src}__{name}" + (f"_{port}" if port else "")
            n_src = self.populations[src].size
            if connection == "diagonal":
                w = np.broadcast_to(np.asarray(weight, np.int8), (size,)).copy()
                csr = Csr(np.arange(size + 1, dtype=np.int64), np.arange(size, dtype=np.int32), w)
                proj = Sparse(proj_name, src, name, csr, size, 0, port=port, weight_bits=8, delay=delay)
            else:
                w = {"broadcast": np.ones((size, 1), np.int8), "sum": np.ones((1, n_src), np.int8)}.get(connection,
                                                                                                         weight)
                proj = Dense(proj_name, src, name, np.ascontiguousarray(w, np.int8), exp[0] if exp else 0, port=port,
                             weight_bits=self.dense_bits if connection == "dense" else 8, delay=delay)
            self.projections[proj_name] = proj
        return name
