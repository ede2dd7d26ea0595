"""Runs on a ternary pipeline accelerator (`neurosim.cores.ternary_pipeline`): a spiking graph
(`run_pipeline_graph`) or a MatMul-free language model (`run_pipeline_language`).

The pipeline computes a graph's the graph's integer arithmetic layer by layer, one timestep after
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

from neurosim import datasets
from neurosim.cores.ternary_pipeline import (BOUND_CODES, BOUNDS, block_costs, card_power_w,
                                             graph_step_cost, graph_weight_bits, layer_bounds, stream_shares,
                                             token_cost, weights_stream, with_regulators)
from neurosim.datasets import Dataset
from neurosim.programs import KINDS, payload_bits_of
from neurosim.programs.reference import Reference
from neurosim.runs.scoring import REFERENCE_BATCH, accuracy, predict, step_input
from neurosim.runs.setup import Setup
from neurosim.zoo.language import score
from neurosim.zoo.matmulfree import model as matmulfree

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
    static_w = sum(card_power_w(core, chip.chip.static_power_w).values()) * chip.n_chips
    dynamic = {k: v.sum(axis=1) for k, v in energy.items()}
    card_pj = static_w * sample_ns * 1e3
    # static: the chip's and the card's power whatever the cores do, and the regulators' loss on all
    static_pj = card_pj + with_regulators(core, {"delivered": sum(dynamic.values()) + card_pj})["regulators"]
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


def run_pipeline_language(setup: Setup) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A language model's figures (those of `neurosim.runs.language`) on a ternary pipeline.

    Its arithmetic is the model's as trained (int8 activations with per-token scales), run
    token by token for the prompt and the generated tokens (for trained weights; the cost does
    not depend on the values); the host sends each token's embedding and reads each output
    over the host link. A prompt's tokens follow one another on the cores; the host reads the
    last one's output only. Beside the figures: what bounds each layer (`BOUNDS`), a generated
    token's time by part, and the card's power by part.
    """
    spec, chip, lm = setup.scenario, setup.chip, setup.lm
    lang, core, model = spec.language, chip.core, lm.model
    text = datasets.load_text(lm.dataset, spec.input.split)
    prompt = text.codes[:lang.prompt_tokens].astype(np.int64)
    blocks = block_costs(core, model)
    static_w = chip.chip.static_power_w * chip.n_chips
    host = chip.system.host
    io_ns = 2 * (host.latency_ns + model.d * 16 / host.bandwidth_bits_per_s * 1e9)   # 16-bit values in and out
    generated = token_cost(core, static_w, blocks, prefill=False)
    prefill = token_cost(core, static_w, blocks, prefill=True)
    io_pj = with_regulators(core, {k: w * io_ns * 1e3 for k, w in card_power_w(core, static_w).items()})
    gen_ns = generated.time_ns + io_ns
    gen_parts = {k: generated.energy_pj[k] + io_pj.get(k, 0.0) for k in generated.energy_pj}
    gen_pj = sum(gen_parts.values())

    # the tokens themselves, as trained (a model with generated weights predicts nothing worth running)
    tokens = list(prompt)
    if not lm.generated:
        state = matmulfree.initial_state(model, 1)
        for t in range(len(prompt) + lang.generate_tokens - 1):
            logits, state = matmulfree.step(model, np.array([tokens[t]]), state, "quantized")
            if t >= len(prompt) - 1:
                tokens.append(int(logits.argmax()))
    reported = lang.report_prompt_tokens or len(prompt)
    prefill_ns = reported * prefill.time_ns + io_ns
    prefill_pj = reported * sum(prefill.energy_pj.values()) + sum(io_pj.values())
    scores = {}
    if lang.accuracy_chars:
        held_out = text.codes[:lang.accuracy_chars + 1]
        trained = score(model, held_out, "quantized")
        scores = {"accuracy": trained.accuracy, "bits_per_char": trained.bits_per_char,
                  "float_bits_per_char": score(model, held_out, "float").bits_per_char,
                  "trained_bits_per_char": trained.bits_per_char, "scored_chars": trained.chars}
    summary = {
        "tokens_per_s": float(1e9 / gen_ns), "energy_per_token_j": float(gen_pj * 1e-12),
        "prefill_tokens_per_s": float(reported / (prefill_ns - io_ns) * 1e9),
        "prefill_energy_per_token_j": float(prefill_pj / reported * 1e-12),
        "ttft_s": float(prefill_ns * 1e-9), "power_w": float(gen_pj / gen_ns * 1e-3),
        "accuracy": float("nan"), "bits_per_char": float("nan"), **scores,
        "prompt_tokens_simulated": int(len(prompt)), "prompt_tokens_reported": int(reported),
        "generated_tokens": int(lang.generate_tokens), "depth_steps": len(blocks),
        "cores_used": int(core.cores), "chips_used": int(chip.n_chips),
        **{f"energy_{k}_per_token_j": float(v * 1e-12) for k, v in gen_parts.items()},
        "weights_stream": weights_stream(core, model),
        **core_figures(core, blocks, generated.time_ns, io_ns, gen_parts, gen_ns),
    }
    layers = layer_bounds(blocks)
    groups = {
        "layers": {"names": np.array([f"block{n}" for n in range(len(blocks))]),
                   "weights": np.array([b.weights for b in blocks], np.int64),
                   "elementwise_ops": np.array([b.elementwise for b in blocks], np.int64),
                   "compute_ns": np.array([b.compute_ns for b in blocks]),
                   "stream_ns": np.array([b.stream_ns for b in blocks]),
                   "stream_bound": stream_shares(blocks),
                   **{f"{part}_ns": np.array([sum(getattr(l, f"{part}_ns") for l in b.layers) for b in blocks])
                      for part in ("adds", "port", "ddr", "matrix", "vector", "overhead")},
                   "elementwise_ns": np.array([b.elementwise_ns for b in blocks]),
                   "time_ns": np.array([b.time_ns for b in blocks]),
                   "bound": np.array([b.bound for b in blocks], np.int64),
                   "layer_bound": layers,
                   "@attrs": {"bound_codes": BOUND_CODES, "layer_bound_columns": ", ".join(matmulfree.BLOCK_LAYERS)}},
        "tokens": {"input": np.array(tokens, np.int64),
                   "phase": np.array([0] * len(prompt) + [1] * (len(tokens) - len(prompt)), np.int64),
                   "@attrs": {"phase_codes": "0: prompt, 1: generated", "vocab": model.vocab}},
    }
    meta = {"generated_text": "".join(model.vocab[t] for t in tokens[len(prompt):])}
    return summary, groups, meta


def core_figures(core, blocks, token_ns: float, io_ns: float, parts_pj: dict[str, float],
                 gen_ns: float) -> dict[str, Any]:
    """The accelerator's own summary figures: its cores (and how many fit), the share of layers
    each bound sets, a generated token's time by part, the card's power by part."""
    bounds = layer_bounds(blocks).ravel()
    layer_parts = {part: sum(getattr(l, f"{part}_ns") for b in blocks for l in b.layers)
                   for part in ("matrix", "vector", "overhead")}
    times = layer_parts | {"elementwise": sum(b.elementwise_ns for b in blocks)}
    times["overhead"] += token_ns - sum(b.time_ns for b in blocks)
    times["host"] = io_ns
    dynamic = ("matrix", "elementwise", "memory", "stream")
    power = {"dynamic": sum(parts_pj[k] for k in dynamic)} | {k: v for k, v in parts_pj.items() if k not in dynamic}
    out = {"clock_hz": float(core.clock_hz), "ternary_units": int(core.ternary_units),
           "port_bits_per_cycle": int(core.port_bits_per_cycle),
           "block_time_s": float(np.mean([b.time_ns for b in blocks]) * 1e-9) if blocks else 0.0,
           **{f"layers_bound_by_{name}": float(np.mean(bounds == code)) if bounds.size else 0.0
              for code, name in enumerate(BOUNDS)},
           **{f"time_share_{k}": float(v / gen_ns) for k, v in times.items()},
           **{f"power_{k}_w": float(v / gen_ns * 1e-3) for k, v in power.items()}}
    if core.resources is not None:
        fit, limit = core.resources.fitting_cores()
        out |= {"cores_fit": int(fit), "cores_limited_by": limit}
    return out
