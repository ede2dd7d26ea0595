"""A spiking graph on a ternary pipeline accelerator (`neurosim.cores.ternary_pipeline`).

The pipeline computes the graph's integer arithmetic layer by layer, one timestep after
another, skipping zeros: each event's synapses are added into their targets' sums by the
matrix cores (a binary spike's synapse is one add of its weight; a graded one is
``weight_bits`` shift-and-adds), every neuron is updated by the element-wise lanes, and the
weights stream from off-chip memory each step when they do not fit the on-chip buffers. Its
results are the integer reference's (`neurosim.programs.reference.Reference`, which this runs);
its time and energy per step come from `graph_step_cost`. The host sends each step's input
events over the host link and reads the readout at the end of a sample.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from neurosim.cores.ternary_pipeline import graph_step_cost, graph_weight_bits
from neurosim.datasets import Dataset
from neurosim.programs import KINDS, payload_bits_of
from neurosim.programs.reference import Reference
from neurosim.runs.scoring import REFERENCE_BATCH, accuracy, predict, step_input
from neurosim.runs.setup import Setup

ADDRESS_BYTES = 2       # an event moves its 16-bit address, and its payload when graded


def run_pipeline_graph(setup: Setup, data: Dataset, timesteps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summary and trace groups of a spiking graph on a ternary pipeline."""
    wall = time.perf_counter()
    graph, chip, spec = setup.graph, setup.chip, setup.scenario
    core, host = chip.core, chip.system.host
    per_step, hold = data.inputs.ndim == 3, spec.input.hold
    pops = list(graph.populations)
    kinds = {name: KINDS[p.kind] for name, p in graph.populations.items()}
    on_chip = [n for n in pops if not kinds[n].on_host]
    neurons = sum(graph.populations[n].size for n in on_chip)
    weight_bits = graph_weight_bits(graph)
    payload_bits = {n: payload_bits_of(kinds[n], graph.populations[n].params) for n in pops}
    rows = {name: np.diff(proj.to_csr().indptr) * (proj.weight_bits if payload_bits[proj.source] else 1)
            for name, proj in graph.projections.items()}
    n_samples, T = len(data.labels), timesteps
    steps = {k: np.zeros((n_samples, T)) for k in ("adds", "elementwise", "activation_bytes", "stream_bits",
                                                   "compute_ns", "stream_ns", "time_ns", "host_ns")}
    energy = {k: np.zeros((n_samples, T)) for k in ("matrix", "elementwise", "memory", "stream")}
    layer_events = np.zeros((n_samples, T, len(pops)), np.int64)
    predictions = np.zeros(n_samples, np.int64)
    readout = graph.readout_population
    for lo in range(0, n_samples, REFERENCE_BATCH):
        batch = data.inputs[lo:lo + REFERENCE_BATCH]
        b = len(batch)
        ref = Reference(graph, b)
        counts = np.zeros((b, graph.populations[readout].size), np.int64)
        if not per_step:
            ref.set_input(graph.input_population, batch)
        for t in range(T):
            if per_step:
                ref.set_input(graph.input_population, step_input(batch, t, True, hold))
            payload = ref.step()
            adds = np.zeros(b)
            for name, proj in graph.projections.items():
                adds += (payload[proj.source] != 0) @ rows[name]
            moved = np.zeros(b)
            host_bits = np.zeros(b)
            for p, name in enumerate(pops):
                fired = np.count_nonzero(payload[name], axis=1)
                layer_events[lo:lo + b, t, p] = fired
                moved += fired * (ADDRESS_BYTES + payload_bits[name] / 8)
                if kinds[name].on_host:
                    host_bits += fired * (8 * ADDRESS_BYTES + payload_bits[name])
            counts += payload[readout] != 0
            for i in range(b):
                c = graph_step_cost(core, adds[i], neurons, moved[i], weight_bits)
                s = lo + i
                steps["adds"][s, t], steps["elementwise"][s, t] = c.adds, c.elementwise
                steps["activation_bytes"][s, t], steps["stream_bits"][s, t] = c.activation_bytes, c.stream_bits
                steps["compute_ns"][s, t], steps["stream_ns"][s, t] = c.compute_ns, c.stream_ns
                steps["host_ns"][s, t] = host_bits[i] / host.bandwidth_bits_per_s * 1e9
                steps["time_ns"][s, t] = max(c.time_ns, steps["host_ns"][s, t])
                for k, v in c.energy_pj.items():
                    energy[k][s, t] = v
        predictions[lo:lo + b] = predict(graph, ref.state_of(readout), counts)
    readout_ns = host.latency_ns + graph.populations[readout].size * 24 / host.bandwidth_bits_per_s * 1e9
    sample_ns = steps["time_ns"].sum(axis=1) + readout_ns
    static_w = chip.chip.static_power_w * chip.n_chips
    static_pj = static_w * sample_ns * 1e3
    dynamic = {k: v.sum(axis=1) for k, v in energy.items()}
    sample_pj = sum(dynamic.values()) + static_pj
    labels = data.labels.astype(np.int64)
    sizes = np.array([graph.populations[n].size for n in pops], np.float64)
    chip_pops = [p for p, n in enumerate(pops) if not kinds[n].on_host]
    activity = layer_events[:, :, chip_pops].sum() / (sizes[chip_pops].sum() * n_samples * T) if chip_pops else 0.0
    stream = bool(weight_bits > core.on_chip_buffer_bytes * 8)
    summary = {
        "accuracy": accuracy(predictions, labels),
        "energy_per_inference_j": float(sample_pj.mean() * 1e-12),
        "latency_per_inference_s": float(sample_ns.mean() * 1e-9),
        "energy_synapse_per_inference_j": float(dynamic["matrix"].mean() * 1e-12),
        "energy_neuron_per_inference_j": float(dynamic["elementwise"].mean() * 1e-12),
        "energy_network_per_inference_j": float((dynamic["memory"] + dynamic["stream"]).mean() * 1e-12),
        "energy_static_per_inference_j": float(static_pj.mean() * 1e-12),
        "mean_sparsity": float(1.0 - activity),
        "cores_used": int(core.cores), "chips_used": int(chip.n_chips),
        "timesteps": int(T), "samples": int(n_samples),
        "synaptic_ops": int(steps["adds"].sum()), "overflows": 0,
        "weights_stream": stream,
        "wall_time_s": float(time.perf_counter() - wall),
    }
    groups = {
        "steps": {"sample": np.repeat(np.arange(n_samples), T), "step": np.tile(np.arange(T), n_samples),
                  **{k: v.reshape(-1) for k, v in steps.items()},
                  **{f"energy_{k}_pj": v.reshape(-1) for k, v in energy.items()}},
        "layers": {"names": np.array(pops), "sizes": sizes.astype(np.int64),
                   "events": layer_events.reshape(n_samples * T, len(pops)),
                   "sparsity": 1.0 - layer_events.reshape(n_samples * T, len(pops)) / np.maximum(sizes, 1)},
        "samples": {"prediction": predictions, "label": labels, "latency_s": sample_ns * 1e-9,
                    "energy_j": sample_pj * 1e-12},
    }
    return summary, groups
