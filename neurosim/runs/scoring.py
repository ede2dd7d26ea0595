"""How a run is scored: its predictions from the readout, their accuracy, the numpy integer
reference over the same inputs (`run_reference`) and, for a model imported from a NIR or netx
file, the comparison with its float model (`compare_with_float`)."""

from __future__ import annotations

import numpy as np

from neurosim.graph.graph import Graph
from neurosim.interop.imported import ImportedModel
from neurosim.programs.reference import Reference

REFERENCE_BATCH = 128       # samples the reference (and a ternary pipeline) runs at once


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """The fraction predicted right; NaN for unlabelled inputs (labels -1)."""
    return float(np.mean(predictions == labels)) if np.all(labels >= 0) else float("nan")


def readout_values(state: dict[str, np.ndarray]) -> np.ndarray:
    """The readout's membrane: a LIF neuron's voltage ``v``, a sigma-delta neuron's ``sigma``."""
    return state["v"] if "v" in state else state["sigma"]


def predict(graph: Graph, readout_state: dict[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
    """Argmax of the readout population (lowest index wins ties), per sample: of its membrane, or
    of its spike ``counts`` when the model is read by them."""
    values = readout_values(readout_state) if graph.readout_mode == "membrane" else counts
    return np.argmax(values, axis=-1)


def step_input(inputs: np.ndarray, t: int, per_step: bool, hold: bool = False) -> np.ndarray:
    """Inputs of timestep t: ``inputs`` itself ([..., inputs], the same every step), or with
    ``per_step`` its step t of ``[..., timesteps, inputs]``; after its last step, zero, or with
    ``hold`` the last step's values."""
    if not per_step:
        return inputs
    if t < inputs.shape[-2]:
        return inputs[..., t, :]
    return inputs[..., -1, :] if hold else np.zeros_like(inputs[..., 0, :])


def held_inputs(inputs: np.ndarray, timesteps: int, hold: bool) -> np.ndarray:
    """Per-step inputs as a float model sees them: with ``hold``, the last frame repeated to
    ``timesteps`` (the chip holds it); anything else as it is."""
    if inputs.ndim == 3 and hold and inputs.shape[1] < timesteps:
        return np.concatenate([inputs, np.repeat(inputs[:, -1:], timesteps - inputs.shape[1], axis=1)], axis=1)
    return inputs


def run_reference(graph: Graph, inputs: np.ndarray, timesteps: int,
                  hold: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numpy reference over all samples: (predictions, readout v, events per population per step)."""
    pops = list(graph.populations)
    preds, vs, events = [], [], []
    for lo in range(0, len(inputs), REFERENCE_BATCH):
        batch = inputs[lo:lo + REFERENCE_BATCH]
        ref = Reference(graph, len(batch))
        counts = np.zeros((len(batch), graph.populations[graph.readout_population].size), np.int64)
        ev = np.zeros((len(batch), timesteps, len(pops)), np.int64)
        for t in range(timesteps):
            ref.set_input(graph.input_population, step_input(batch, t, batch.ndim == 3, hold))
            payload = ref.step()
            for p, name in enumerate(pops):
                ev[:, t, p] = np.count_nonzero(payload[name], axis=1)
            counts += payload[graph.readout_population] != 0
        state = ref.state_of(graph.readout_population)
        preds.append(predict(graph, state, counts))
        vs.append(readout_values(state).copy())
        events.append(ev)
    return np.concatenate(preds), np.concatenate(vs), np.concatenate(events)


def readout_errors(chip: np.ndarray, float_values: np.ndarray) -> dict[str, float]:
    """How far the chip's readout membrane is from the float model's (both in the chip's units,
    `neurosim.interop.imported.FloatRun`), relative to the readout's range (the largest |float
    value| over all samples and neurons): the mean and the largest difference. Relative to each
    value instead, a value near zero would make a correct conversion look far off."""
    diff = np.abs(np.asarray(chip, np.float64) - float_values)
    span = max(float(np.abs(float_values).max(initial=0.0)), 1e-300)
    return {"float_readout_rel_error": float(diff.mean()) / span if diff.size else 0.0,
            "float_readout_max_rel_error": float(diff.max(initial=0.0)) / span}


def compare_with_float(imported: ImportedModel, inputs: np.ndarray, timesteps: int, predictions: np.ndarray,
                       labels: np.ndarray, chip_events: np.ndarray, names: list[str],
                       chip_membrane: np.ndarray | None) -> tuple[dict, dict]:
    """An imported model's chip run against its float reference: summary figures and the trace's
    ``conversion`` group (see traces/README.md). ``chip_events`` is [samples, timesteps, populations];
    ``chip_membrane`` the readout's final membrane when the model is read by it."""
    run_f = imported.float_reference(inputs, timesteps)
    float_pred = np.argmax(run_f.readout, axis=-1)
    compared = [p for p, name in enumerate(names) if name in run_f.events and name != names[0]]
    chip_counts = chip_events.sum(axis=1)[:, compared]                                   # [S, P']
    float_counts = np.stack([run_f.events[names[p]].sum(axis=1) for p in compared], axis=1) if compared \
        else np.zeros_like(chip_counts)
    diff, total = np.abs(chip_counts - float_counts).sum(axis=0), (chip_counts + float_counts).sum(axis=0)
    agreement = np.where(total > 0, 1 - diff / np.maximum(total, 1), 1.0)
    errors = imported.conversion
    summary = {"float_accuracy": accuracy(float_pred, labels),
               "float_decisions_equal": float(np.mean(float_pred == predictions)),
               "float_spike_agreement": float(1 - diff.sum() / max(total.sum(), 1)),
               **(readout_errors(chip_membrane, run_f.readout) if chip_membrane is not None else {}),
               "weights_max_rel_error": max((e.max_rel_error for e in errors if e.quantity == "weights"), default=0.0),
               "weights_mean_rel_error": float(np.mean([e.mean_rel_error for e in errors if e.quantity == "weights"]
                                                       or [0.0]))}
    group = {"populations": np.array([names[p] for p in compared], dtype=str),
             "chip_events": chip_counts.astype(np.int64), "float_events": float_counts.astype(np.int64),
             "spike_agreement": agreement, "float_prediction": float_pred.astype(np.int64),
             "errors": {"name": np.array([e.name for e in errors], dtype=str),
                        "quantity": np.array([e.quantity for e in errors], dtype=str),
                        "max_rel_error": np.array([e.max_rel_error for e in errors]),
                        "mean_rel_error": np.array([e.mean_rel_error for e in errors]),
                        "values": np.array([e.values for e in errors], np.int64)},
             "@attrs": {"format": imported.format, "source": imported.source,
                        "feed_forward": imported.feed_forward}}
    return summary, group
