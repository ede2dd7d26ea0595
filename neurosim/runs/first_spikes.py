"""A first-spikes readout: a sample's answer is the first ``k`` neurons of its readout to spike,
and the sample stops at the end of the step in which the ``k``-th does (or after its timesteps).

The readout is the populations a `neurosim.zoo.knn.KnnGraph` names (its stored patterns, one
neuron each, numbered in their order); neurons whose first spikes fall in the same step are
taken lowest number first. The chip's run (`neurosim.runs.spiking`) checks after every step;
`reference_answers` runs the plain-numpy integer reference (`neurosim.programs.reference`) to
the same rule, and `first_spikes_outcome` scores the answers: recall@k against the exact
nearest neighbours the queries carry (`neurosim.zoo.knn.KnnQueries`), the check against the
reference over the steps each query ran, and the figures per query.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim.programs.reference import Reference
from neurosim.runs.progress import PROGRESS
from neurosim.runs.scoring import REFERENCE_BATCH
from neurosim.zoo.knn import KnnGraph, KnnQueries


class FirstSpikes:
    """Which readout neurons have spiked, and in which step first, for one sample at a time.

    ``lo``:``hi`` is the span of the engine's neurons that holds the readout populations (a run
    counts the spikes of the span); ``index`` picks the readout's neurons out of it, in order."""

    def __init__(self, ranges: list[tuple[int, int]], k: int):
        self.k = k
        self.lo, self.hi = ranges[0][0], ranges[-1][1]
        self.index = np.concatenate([np.arange(lo, hi) for lo, hi in ranges]) - self.lo
        self.first_step = np.full(len(self.index), -1, np.int64)
        self.spiked = 0

    @classmethod
    def of(cls, graph: Any, pops: list[tuple]) -> FirstSpikes | None:
        """The readout of a graph read by its first spikes (a `KnnGraph`), over the engine's
        populations ``pops`` (name, first neuron, end, ...); None for any other graph."""
        if not isinstance(graph, KnnGraph):
            return None
        where = {name: (lo, hi) for name, lo, hi, *_ in pops}
        return cls([where[name] for name in graph.readout_populations], graph.k)

    def start(self) -> None:
        self.first_step[:] = -1
        self.spiked = 0

    def update(self, counts: np.ndarray, t: int) -> bool:
        """Take the spike counts of the span after step ``t``; whether the answer is complete."""
        new = (counts[self.index] > 0) & (self.first_step < 0)
        self.first_step[new] = t
        self.spiked += int(np.count_nonzero(new))
        return self.spiked >= self.k

    def answer(self) -> np.ndarray:
        """The first ``k`` neurons to spike (-1 for places no spike filled)."""
        return answer_of(self.first_step, self.k)


def answer_of(first_step: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` neurons of the earliest first spikes (``first_step`` -1: none), lowest number
    first within a step; -1 where fewer spiked."""
    spiked = np.flatnonzero(first_step >= 0)
    order = spiked[np.lexsort((spiked, first_step[spiked]))][:k]
    return np.concatenate([order, np.full(k - len(order), -1)]).astype(np.int64)


def run_answered(first: FirstSpikes, loop: Any, engine: Any, model: Any, rec: Any, input_population: str,
                 sample: int, n_samples: int, inputs: np.ndarray | None, counts: np.ndarray) -> int:
    """One sample step by step until its answer is complete or its timesteps are over, with the
    compiled ``loop`` (a `neurosim.runs.spiking.StepLoop`) or, without one, the engine stepped
    from Python; ``counts`` counts the readout span's spikes. Returns the steps it ran. Its
    spikes, when kept, are stamped with their rows of the records."""
    first.start()
    T = rec.timesteps
    for t in range(T):
        PROGRESS.at = f"sample {sample + 1} of {n_samples}, timestep {t + 1} of {T}"
        step_inputs = None if inputs is None else inputs[t:t + 1]
        if loop is not None:
            fired = np.zeros((1, len(engine.payload)), bool) if rec.keeps_spikes(sample) else None
            loop.run(1, step_inputs, None, counts, fired, sample, t)
            rec.advance(1, fired, 0, rec.n)         # sample 0, step = row: the stamp is the row
        else:
            if step_inputs is not None:
                engine.set_input(input_population, step_inputs[0])
            c = engine.step()
            rec.add(c, model.step_cost(c, engine.payload), engine, sample, t)
            counts += engine.payload[first.lo:first.hi] != 0
        if first.update(counts, t):
            return t + 1
    return T


def reference_answers(graph: KnnGraph, inputs: np.ndarray, timesteps: int) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """The numpy reference's answers ``[S, k]``, steps run ``[S]`` and events per population and
    step ``[S, timesteps, populations]`` (valid up to each sample's steps), to the rule of the
    module's docstring."""
    pops, k = list(graph.populations), graph.k
    answers, steps, events = [], [], []
    for lo in range(0, len(inputs), REFERENCE_BATCH):
        batch = inputs[lo:lo + REFERENCE_BATCH]
        ref = Reference(graph, len(batch))
        ref.set_input(graph.input_population, batch)
        size = sum(graph.populations[name].size for name in graph.readout_populations)
        first = np.full((len(batch), size), -1, np.int64)
        ran = np.full(len(batch), timesteps, np.int64)
        ev = np.zeros((len(batch), timesteps, len(pops)), np.int64)
        for t in range(timesteps):
            payload = ref.step()
            for p, name in enumerate(pops):
                ev[:, t, p] = np.count_nonzero(payload[name], axis=1)
            spiked = np.concatenate([payload[name] for name in graph.readout_populations], axis=1) != 0
            open_ = ran == timesteps
            first[spiked & (first < 0) & open_[:, None]] = t
            done = open_ & (np.count_nonzero(first >= 0, axis=1) >= k)
            ran[done] = t + 1
            if not np.any(ran == timesteps) and t + 1 < timesteps:
                break
        answers.append(np.stack([answer_of(f, k) for f in first]))
        steps.append(ran)
        events.append(ev)
    return np.concatenate(answers), np.concatenate(steps), np.concatenate(events)


def recall_at_k(answers: np.ndarray, exact: np.ndarray) -> float:
    """The share of the exact ``k`` nearest neighbours among the answers, over all queries."""
    hits = sum(len(np.intersect1d(a[a >= 0], e)) for a, e in zip(answers, exact))
    return float(hits / exact.size) if exact.size else float("nan")


def first_spikes_outcome(graph: KnnGraph, data: KnnQueries, rec: Any, answers: np.ndarray, steps: np.ndarray,
                         reference: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summary attributes and ``/samples`` datasets of a first-spikes run (traces/README.md): recall,
    steps, input spikes and time per query, the reference's verdict when ``reference``."""
    pops = [name for name, *_ in rec.pops]
    events, energy = rec["layer_events"], rec.energy()
    summary: dict[str, Any] = {
        "k": int(graph.k), "recall_at_k": recall_at_k(answers, data.neighbours),
        "energy_dynamic_per_inference_j": float(sum(energy[k].sum() for k in ("synapse", "neuron", "network"))
                                                / len(steps) * 1e-12),
        "steps_per_query": float(steps.mean()),
        "input_spikes_per_query": float(events[:, pops.index(graph.input_population)].sum() / len(steps)),
        "time_per_step_s": float(rec.timeline["latency_ns"].mean() * 1e-9),
    }
    samples = {"neighbours": answers, "exact_neighbours": data.neighbours, "steps": steps}
    if reference:
        ref_answers, ref_steps, ref_events = reference_answers(graph, data.inputs, rec.timesteps)
        chip_events = np.split(events, np.cumsum(steps)[:-1])
        same_events = all(np.array_equal(ref_events[s, :steps[s]], chip_events[s]) for s in range(len(steps)))
        summary |= {"reference_recall_at_k": recall_at_k(ref_answers, data.neighbours),
                    "matches_reference": bool(np.array_equal(ref_answers, answers)
                                              and np.array_equal(ref_steps, steps) and same_events)}
        samples["reference_neighbours"] = ref_answers
    return summary, samples
