"""A language run's activity apart from its pipeline's idling.

A token passes a lowered language model's populations one stage after another: the population
at stage ``k`` holds the token that entered at step ``e`` in step ``e + k``. In prefill a new
token enters every step and every stage is busy; in generation the next token enters only once
the last one's output is out, so each population holds a token in one step of the graph's depth
and idles in the others. Events per step average that idling in (``mean_sparsity``); here the
steps in which a population holds work are counted apart: its sparsity in them
(``mean_sparsity_active``, and per population ``sparsity_active``) and their share of the steps
(``pipeline_occupancy``, and per population ``occupancy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def pipeline_stages(lowered: Any) -> dict[str, int]:
    """Each population of a lowered language model and the steps after a token's entry at which
    it takes the token: the model's own stages where it has them (``stages()``: the models that
    hold their populations between tokens), else from its graph, in the graph's order: a
    population without inputs at 0, any other one step after its sources plus the projection's
    delay (the delays line a population's inputs up to arrive together; the longest way counts
    where they do not; an input from later in the order, a recurrent one, does not count)."""
    if hasattr(lowered, "stages"):
        return dict(lowered.stages())
    graph = lowered.graph
    inputs: dict[str, list[tuple[str, int]]] = {name: [] for name in graph.populations}
    for projection in graph.projections.values():
        inputs[projection.target].append((projection.source, int(projection.delay)))
    stage: dict[str, int] = {}
    for name in graph.populations:
        stage[name] = max((stage[src] + 1 + delay for src, delay in inputs[name] if src in stage), default=0)
    return stage


@dataclass
class PipelineWork:
    """When each population of a language run holds a token, and its events then."""

    names: list[str]
    stage: np.ndarray           # [P] each population's stage
    holds: np.ndarray           # [N, P] whether it holds a token in the step
    sizes: np.ndarray           # [P] neurons
    events: np.ndarray          # [N, P] events per step

    @classmethod
    def of(cls, rec: Any, lowered: Any, entry_steps: list[int] | np.ndarray) -> PipelineWork:
        """From a language run's records (`neurosim.runs.recorder.Recorder`), its lowered model
        (`pipeline_stages`) and the steps at which its tokens entered."""
        return cls.count([name for name, *_ in rec.pops], rec.sizes(), rec["layer_events"], pipeline_stages(lowered),
                         entry_steps)

    @classmethod
    def count(cls, names: list[str], sizes: np.ndarray, events: np.ndarray, stages: dict[str, int],
              entry_steps: list[int] | np.ndarray) -> PipelineWork:
        """From a run's populations (``names``, ``sizes``), its ``events`` per step and population,
        each population's stage (`pipeline_stages`; 0, a token's entry, for one it does not name)
        and the steps at which the tokens entered."""
        n = len(events)
        stage = np.array([stages.get(name, 0) for name in names], np.int64)
        entered = np.zeros(n, bool)
        entered[np.asarray(entry_steps, np.int64)] = True
        at = np.arange(n)[:, None] - stage[None, :]              # the entry step of the token it would hold
        holds = (at >= 0) & entered[np.clip(at, 0, None)]
        return cls(list(names), stage, holds, np.asarray(sizes, np.float64), np.asarray(events))

    def summary(self) -> dict[str, float]:
        """Over all populations: ``mean_sparsity_active``, 1 less the share of neurons with an
        event in the steps their population holds a token, and ``pipeline_occupancy``, the share
        of neuron-steps that hold one. 1 - ``mean_sparsity`` is their product when no population
        sends between its tokens (``events_between_tokens`` counts what does)."""
        busy = float((self.holds * self.sizes).sum())
        fired = float(self.events[self.holds].sum())
        return {"mean_sparsity_active": 1.0 - fired / busy if busy else 1.0,
                "pipeline_occupancy": busy / float(self.sizes.sum() * len(self.holds)) if len(self.holds) else 0.0,
                "events_between_tokens": int(self.events[~self.holds].sum())}

    def layers(self) -> dict[str, np.ndarray]:
        """Per population for ``/layers``: its ``stage``, the steps it holds a token
        (``active_steps``), their share of the steps (``occupancy``) and its sparsity in them
        (``sparsity_active``; NaN where it holds none)."""
        steps = self.holds.sum(axis=0)
        busy = steps * self.sizes
        fired = np.where(self.holds, self.events, 0).sum(axis=0)
        sparsity = np.divide(busy - fired, busy, out=np.full(len(busy), np.nan), where=busy > 0)
        return {"stage": self.stage, "active_steps": steps.astype(np.int64),
                "occupancy": steps / max(len(self.holds), 1), "sparsity_active": sparsity}
