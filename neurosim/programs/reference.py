"""A plain-numpy reference of a graph's integer (or float32) arithmetic, batched over samples.

It shares nothing with the engine but the neuron kinds' numpy reference steps: synapses
are applied per projection from CSR arrays with ``np.add.at``, the rows of the sources that
sent an event, with no cores, axons or messages (an integer dense projection with a weight
exponent of 0 or more as an exact int64 product instead: of the matrix's rows of the sources that
sent an event when they are few, else of the whole matrix); a projection's delay puts its input
into a later step's accumulators. The engine must reproduce its events and state exactly.
"""

from __future__ import annotations

import numpy as np

from neurosim.graph.graph import Dense, Graph
from neurosim.programs.fixed import shift
from neurosim.programs.registry import KINDS, build_state, port_index, value_dtype

SPARSE_SHARE = 1 / 16        # a dense projection's sources with events below this share: their rows only


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
        dtype = value_dtype(graph)
        self.accs = [{name: np.zeros((batch, len(self.kinds[name].ports), p.size), dtype)
                      for name, p in graph.populations.items()} for _ in range(self.slots)]
        self.steps_done = 0
        self.payload = {name: np.zeros((batch, p.size), dtype) for name, p in graph.populations.items()}
        # integer dense projections as exact products [source, target]: w * 2^exp per synapse
        self.matrix = {name: np.ascontiguousarray(proj.weight.T, np.int64) << proj.weight_exp
                       for name, proj in graph.projections.items()
                       if isinstance(proj, Dense) and proj.weight.dtype.kind != "f" and proj.weight_exp >= 0}
        self.csr = {name: proj.to_csr() for name, proj in graph.projections.items() if name not in self.matrix}

    def set_input(self, population: str, values: np.ndarray) -> None:
        self.states[population].state["values"][:] = values

    @property
    def acc(self) -> dict[str, np.ndarray]:
        """Each population's accumulators, [batch, ports, size]: the input its next step reads."""
        return self.accs[self.steps_done % self.slots]

    def step(self, hold: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
        """One timestep; populations in ``hold`` keep their state and accumulators and send nothing
        (as `neurosim.engine.engine.Engine.step`); a population due a reset (`Graph.resets`) first
        goes back to its initial state."""
        for name, (every, phase) in self.graph.resets.items():
            if self.steps_done % every == phase:
                self.states[name].reset()
        for name, kind in self.kinds.items():
            ns = self.states[name]
            if name in hold:
                self.payload[name][:] = 0
                continue
            kind.reference(self.acc[name], self.payload[name], *ns.state.values(), *ns.consts)
        for name, proj in self.graph.projections.items():
            acc = self.accs[(self.steps_done + 1 + proj.delay) % self.slots][proj.target]
            port = port_index(self.kinds[proj.target], proj.port)
            if name in self.matrix:
                acc[:, port] += dense_product(self.payload[proj.source], self.matrix[name])
                continue
            csr = self.csr[name]
            b, j = np.nonzero(self.payload[proj.source])          # events, by sample then source
            lengths = csr.indptr[j + 1] - csr.indptr[j]
            first = np.cumsum(lengths) - lengths
            synapse = np.repeat(csr.indptr[j] - first, lengths) + np.arange(int(lengths.sum()))
            value = np.repeat(self.payload[proj.source][b, j], lengths)
            if csr.weight.dtype.kind == "f":        # float32, summed in source order as the chip does
                contrib = csr.weight[synapse] * value
            else:
                contrib = shift(csr.weight[synapse].astype(np.int64) * value, proj.weight_exp)
            flat = acc.reshape(-1)
            n_ports, size = acc.shape[1], acc.shape[2]
            np.add.at(flat, (np.repeat(b, lengths) * n_ports + port) * size + csr.indices[synapse], contrib)
        self.steps_done += 1
        return self.payload

    def state_of(self, population: str) -> dict[str, np.ndarray]:
        return self.states[population].state


def dense_product(payload: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``payload [batch, source] @ matrix [source, target]`` in int64: from the rows of the sources
    with an event, summed per sample, when fewer than `SPARSE_SHARE` of them have one."""
    b, j = np.nonzero(payload)
    if len(j) >= SPARSE_SHARE * payload.size:
        return payload @ matrix
    out = np.zeros((payload.shape[0], matrix.shape[1]), np.int64)
    if len(j):
        starts = np.flatnonzero(np.diff(b, prepend=-1))       # events come by sample
        out[b[starts]] = np.add.reduceat(matrix[j] * payload[b, j][:, None], starts, axis=0)
    return out


class DataflowReference:
    """An acyclic graph evaluated token by token: each population once per token, in an order
    where its sources come first, from the same token's payloads of its sources.

    Delays are not looked at: a graph whose delays bring all of a population's inputs in one
    timestep (a pipeline) computes the same per token. State (a recurrence) carries over from
    token to token. Dense projections are summed as float64 matrix products, exact while the
    sums stay below 2^53.
    """

    def __init__(self, graph: Graph, batch: int):
        self.graph = graph
        self.kinds = {name: KINDS[p.kind] for name, p in graph.populations.items()}
        self.order = _sources_first(graph)
        self.states = {}
        for name, pop in graph.populations.items():
            ns = build_state(self.kinds[name], pop.params, pop.size)
            ns.state = {k: np.tile(v, (batch, 1)) for k, v in ns.initial.items()}
            self.states[name] = ns
        self.inputs = {name: [] for name in graph.populations}
        for proj in graph.projections.values():
            dense = isinstance(proj, Dense) and proj.weight_exp >= 0
            matrix = proj.weight.T.astype(np.float64) * 2.0 ** proj.weight_exp if dense else proj.to_csr()
            self.inputs[proj.target].append((proj, port_index(self.kinds[proj.target], proj.port), matrix))
        self.batch = batch

    def set_input(self, population: str, values: np.ndarray) -> None:
        self.states[population].state["values"][:] = values

    def step(self) -> dict[str, np.ndarray]:
        """One token through the whole graph; each population's payloads ``[batch, size]``."""
        payload = {}
        for name in self.order:
            pop, kind = self.graph.populations[name], self.kinds[name]
            acc = self._inputs(name, payload, self.batch)
            payload[name] = np.zeros((self.batch, pop.size), np.int64)
            ns = self.states[name]
            kind.reference(acc, payload[name], *ns.state.values(), *ns.consts)
        return payload

    def _inputs(self, name: str, payload: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """A population's accumulators [rows, ports, size] from its sources' payloads [rows, ...]."""
        kind = self.kinds[name]
        acc = np.zeros((rows, len(kind.ports), self.graph.populations[name].size), np.int64)
        for proj, port, matrix in self.inputs[name]:
            if isinstance(matrix, np.ndarray):
                acc[:, port] += np.rint(payload[proj.source] @ matrix).astype(np.int64)
            else:
                src = np.repeat(np.arange(len(matrix.indptr) - 1), np.diff(matrix.indptr))
                contrib = shift(matrix.weight.astype(np.int64)[None, :] * payload[proj.source][:, src],
                                proj.weight_exp)
                np.add.at(acc, (slice(None), port, matrix.indices), contrib)
        return acc

    def run(self, population: str, values: np.ndarray, readout: str, chunk: int = 32) -> np.ndarray:
        """The ``readout`` population's payloads for a sequence of inputs, one token after another:
        row ``t`` of ``values`` [tokens, size] set as ``population``'s input for token ``t``. It
        equals calling `set_input` and `step` per token (batch 1): each population is evaluated for
        ``chunk`` tokens at a time, its programs token after token (their state carries over), so
        that a dense projection is one matrix product per chunk instead of one per token."""
        if self.batch != 1:
            raise ValueError("a sequence of tokens runs with a batch of 1")
        out = []
        for lo in range(0, len(values), chunk):
            block = np.asarray(values[lo:lo + chunk])
            n = len(block)
            payload = {}
            for name in self.order:
                kind, size = self.kinds[name], self.graph.populations[name].size
                acc = self._inputs(name, payload, n)
                payload[name] = np.zeros((n, size), np.int64)
                ns = self.states[name]
                for t in range(n):
                    if name == population:
                        ns.state["values"][:] = block[t]
                    kind.reference(acc[t:t + 1], payload[name][t:t + 1], *ns.state.values(), *ns.consts)
            out.append(payload[readout])
        return np.concatenate(out) if out else np.zeros((0, self.graph.populations[readout].size), np.int64)

    def state_of(self, population: str) -> dict[str, np.ndarray]:
        return self.states[population].state


def _sources_first(graph: Graph) -> list[str]:
    """Populations ordered so that every projection's source comes before its target."""
    incoming = {name: {p.source for p in graph.projections.values() if p.target == name} for name in graph.populations}
    order, done = [], set()
    while len(order) < len(incoming):
        ready = [name for name in incoming if name not in done and incoming[name] <= done]
        if not ready:
            raise ValueError("the graph has a cycle; a dataflow evaluation needs an acyclic graph")
        order += ready
        done.update(ready)
    return order
