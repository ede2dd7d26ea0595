"""A plain-numpy reference of a graph's integer arithmetic, batched over samples.

It shares nothing with the engine but the neuron kinds' numpy reference steps: synapses
are applied per projection from CSR arrays with ``np.add.at``, with no cores, axons or
messages; a projection's delay puts its input into a later step's accumulators. The engine
must reproduce its events and state exactly.
"""

from __future__ import annotations

import numpy as np

from neurosim.graph.graph import Graph
from neurosim.numerics.fixed import shift
from neurosim.numerics.neurons import KINDS, build_state, port_index


class Reference:
    """Runs a batch of samples in lockstep; `step` returns each population's payloads."""

    def __init__(self, graph: Graph, batch: int):
        self.graph = graph
        self.batch = batch
        self.kinds = {name: KINDS[p.kind] for name, p in graph.populations.items()}
        self.states = {}
        for name, pop in graph.populations.items():
            ns = build_state(self.kinds[name], pop.params, pop.size)
            ns.state = {k: np.tile(v, (batch, 1)) for k, v in ns.initial.items()}
            self.states[name] = ns
        self.slots = 1 + max((p.delay for p in graph.projections.values()), default=0)
        # accumulators per delay slot: step t reads slot t mod slots
        self.accs = [{name: np.zeros((batch, len(self.kinds[name].ports), p.size), np.int64)
                      for name, p in graph.populations.items()} for _ in range(self.slots)]
        self.steps_done = 0
        self.payload = {name: np.zeros((batch, p.size), np.int64) for name, p in graph.populations.items()}
        self.csr = {name: proj.to_csr() for name, proj in graph.projections.items()}

    def set_input(self, population: str, values: np.ndarray) -> None:
        self.states[population].state["values"][:] = values

    @property
    def acc(self) -> dict[str, np.ndarray]:
        """Each population's accumulators, [batch, ports, size]: the input its next step reads."""
        return self.accs[self.steps_done % self.slots]

    def step(self) -> dict[str, np.ndarray]:
        for name, kind in self.kinds.items():
            ns = self.states[name]
            kind.reference(self.acc[name], self.payload[name], *ns.state.values(), *ns.consts)
        for name, proj in self.graph.projections.items():
            csr = self.csr[name]
            src = np.repeat(np.arange(len(csr.indptr) - 1), np.diff(csr.indptr))
            contrib = shift(csr.weight.astype(np.int64)[None, :] * self.payload[proj.source][:, src],
                            proj.weight_exp)
            port = port_index(self.kinds[proj.target], proj.port)
            later = self.accs[(self.steps_done + 1 + proj.delay) % self.slots]
            np.add.at(later[proj.target], (slice(None), port, csr.indices), contrib)
        self.steps_done += 1
        return self.payload

    def state_of(self, population: str) -> dict[str, np.ndarray]:
        return self.states[population].state
