"""A run's summary in words: the lines `neurosim run` prints and the report's summary shows.

`summary_rows` gives (label, text) pairs from a trace's ``/summary`` attributes (the dict a run
returns); `summary_lines` lays them out as the command prints them, the label in a column of 16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neurosim.analysis.units import number, percent, si

LABEL_WIDTH = 15


def summary_lines(s: dict[str, Any], *, scenario: str | Path | None = None,
                  trace: str | Path | None = None) -> list[str]:
    """The summary as printed lines (``energy          68.6 µJ per inference  (...)``), led by
    the scenario's file and ended by the trace's path when they are given."""
    rows = ([("scenario", str(scenario))] if scenario is not None else []) + summary_rows(s)
    if trace is not None:
        rows.append(("trace", str(trace)))
    return [f"{label:<{LABEL_WIDTH}} {text}" for label, text in rows]


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) per line of a run's summary: a language model's (per token), or a
    classification run's (per inference), then the wall time."""
    rows = language_rows(s) if "tokens_per_s" in s else search_rows(s) if "recall_at_k" in s else inference_rows(s)
    if "wall_time_s" in s:
        rows.append(("wall time", f"{s['wall_time_s']:.1f} s"))
    return rows


def inference_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """A classification run: samples, accuracy and its checks, energy, latency, sparsity, step time."""
    rows = [("samples", f"{s['samples']} x {s['timesteps']} timesteps on {s['cores_used']} cores, "
                        f"{s['chips_used']} chip(s)")]
    labelled = s["accuracy"] == s["accuracy"]           # NaN for unlabelled inputs
    line = f"{s['accuracy']:.2%}" if labelled else "n/a (unlabelled inputs)"
    if "reference_accuracy" in s:
        agree = "equals" if s["matches_reference"] else "DIFFERS FROM"
        line += (f"   (on-chip integer execution {agree} the numpy reference"
                 + (f": {s['reference_accuracy']:.2%})" if labelled else ")"))
    rows.append(("accuracy", line))
    if "float_decisions_equal" in s:
        rows.append(("float model", f"{s['float_decisions_equal']:.1%} of decisions equal"
                     + (f" (float accuracy {s['float_accuracy']:.2%})" if labelled else "")
                     + f"; spike counts agree {s['float_spike_agreement']:.1%}"
                     + readout_error(s)
                     + f"; weights off by {s['weights_mean_rel_error']:.1%} on average "
                       f"(at most {s['weights_max_rel_error']:.0%})"))
    rows.append(("energy", f"{si(s['energy_per_inference_j'], 'J')} per inference  "
                           f"(synapse {si(s['energy_synapse_per_inference_j'], 'J')}, "
                           f"neuron {si(s['energy_neuron_per_inference_j'], 'J')}, "
                           f"network {si(s['energy_network_per_inference_j'], 'J')}, "
                           f"static {si(s['energy_static_per_inference_j'], 'J')})"))
    rows.append(("latency", f"{si(s['latency_per_inference_s'], 's')} per inference"))
    rows.append(("sparsity", f"{s['mean_sparsity']:.1%} of neurons silent per step"))
    rows.append(("synaptic ops", f"{s['synaptic_ops']:,}   overflows {s['overflows']}"))
    bound = main_bound(s)
    if bound is not None:
        rows.append(("step time", f"set by {bound} in {s['steps_bound_by_' + bound]:.0%} of steps"
                     + (f"; {si(s['inter_chip_bits_per_inference'] / 8, 'B')} between chips per inference"
                        if s["chips_used"] > 1 and "inter_chip_bits_per_inference" in s else "")))
    rows += pe_rows(s)
    return rows


def search_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """A nearest-neighbour search read by its first k spikes: queries, recall and its check, energy
    per query (dynamic apart from static), time per query and per step, then activity as a
    classification run has it."""
    rows = [("queries", f"{s['samples']} queries of {s['steps_per_query']:.1f} steps (at most {s['timesteps']}) "
                        f"and {s['input_spikes_per_query']:,.0f} input spikes on {s['cores_used']} cores, "
                        f"{s['chips_used']} chip(s)")]
    line = f"recall@{s['k']} {s['recall_at_k']:.1%} of the exact nearest neighbours (cosine)"
    if "reference_recall_at_k" in s:
        agree = "equals" if s["matches_reference"] else "DIFFERS FROM"
        line += f"   (on-chip integer execution {agree} the numpy reference: {s['reference_recall_at_k']:.1%})"
    rows.append(("recall", line))
    rows.append(("energy", f"{si(s['energy_dynamic_per_inference_j'], 'J')} dynamic per query "
                           f"(synapse {si(s['energy_synapse_per_inference_j'], 'J')}, "
                           f"neuron {si(s['energy_neuron_per_inference_j'], 'J')}, "
                           f"network {si(s['energy_network_per_inference_j'], 'J')}), "
                           f"static {si(s['energy_static_per_inference_j'], 'J')}"))
    rows.append(("latency", f"{si(s['latency_per_inference_s'], 's')} per query, "
                            f"{si(s['time_per_step_s'], 's')} per step"))
    return rows + [row for row in inference_rows(s) if row[0] in ("sparsity", "synaptic ops", "step time")]


def language_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """A language model: tokens, accuracy, reference, generation, prefill, power, step time, GPUs."""
    rows = [("tokens", f"{s['prompt_tokens_simulated']} prompt + {s['generated_tokens']} generated, "
                       f"{s['depth_steps']} steps deep, on {s['cores_used']} cores, {s['chips_used']} chip(s)")]
    if s["accuracy"] == s["accuracy"]:
        others = (f"float activations {s['float_bits_per_char']:.3f}, as trained {s['trained_bits_per_char']:.3f}"
                  if "trained_bits_per_char" in s else f"the float model {s['float_bits_per_char']:.4f}")
        rows.append(("accuracy", f"{s['accuracy']:.2%} next character, {s['bits_per_char']:.4f} bits/char over "
                                 f"{s['scored_chars']:,} chars ({others})"))
    if "matches_reference" in s:
        what = "model" if s.get("reference_is_model") else "numpy reference"
        rows.append(("reference", f"on-chip execution {'equals' if s['matches_reference'] else 'DIFFERS FROM'} "
                                  f"the {what}, token by token"))
    rows.append(("generation", f"{s['tokens_per_s']:,.1f} tokens/s, {si(s['energy_per_token_j'], 'J')} per token"))
    rows.append(("prefill", f"{s['prefill_tokens_per_s']:,.1f} tokens/s, "
                            f"{si(s['prefill_energy_per_token_j'], 'J')} per token, time to first token "
                            f"{si(s['ttft_s'], 's')} ({s['prompt_tokens_reported']}-token prompt)"))
    rows += host_loop_rows(s)
    if "mean_sparsity" in s:
        rows.append(("power", si(s["power_w"], "W")))
        rows.append(("sparsity", language_sparsity(s)))
        bound = main_bound(s)
        if bound is not None:
            rows.append(("step time", f"set by {bound} in {s['steps_bound_by_' + bound]:.0%} of steps"))
    else:
        parts = ", ".join(f"{k.removeprefix('energy_').removesuffix('_per_token_j')} {si(v, 'J')}"
                          for k, v in s.items() if k.endswith("_per_token_j") and k.startswith("energy_")
                          and k != "energy_per_token_j")
        rows.append(("power", f"{si(s['power_w'], 'W')}; per generated token {parts}"
                     + ("; weights stream from off-chip memory" if s.get("weights_stream") else "")))
        rows += pipeline_rows(s)
    if "overflows" in s:
        rows.append(("overflows", f"{s['overflows']:,} values saturated or wrapped in the chip's fixed point"))
    rows += pe_rows(s)
    for key in [k for k in s if k.endswith("_energy_ratio") and "_transformer_" not in k]:
        gpu = key.removesuffix("_energy_ratio")
        rows.append((f"vs {gpu}", f"{times_energy(s[key])} per token than the same model on it "
                                  f"({si(s[gpu + '_energy_per_token_j'], 'J')}, {s[gpu + '_tokens_per_s']:,.0f} "
                                  f"tokens/s), {times_energy(s[gpu + '_transformer_energy_ratio'])} than a "
                                  f"transformer of its size; {share_of_speed(s[gpu + '_speed_ratio'])}"))
    return rows


def readout_error(s: dict[str, Any]) -> str:
    """How far an imported model's readout membrane is from its float model's, relative to the
    readout's range (none for a model read by its spikes)."""
    if "float_readout_rel_error" not in s:
        return ""
    if "float_readout_max_rel_error" not in s:        # a trace from before the range was the measure
        return f"; readout off by {percent(s['float_readout_rel_error'])}"
    return (f"; readout off by {percent(s['float_readout_rel_error'])} of its range on average "
            f"(at most {percent(s['float_readout_max_rel_error'])})")


def host_loop_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """A host-loop run's token (`neurosim.runs.arm_language`): its time and energy part by part,
    where the embedding's and head's weights are, the power boundary; accuracy not measured for
    generated weights."""
    if s.get("drive") != "host_loop":
        return []
    rows = []
    if s["accuracy"] != s["accuracy"] and s.get("weights_generated"):
        rows.append(("accuracy", "not measured: the weights are generated (time, power and energy only)"))
    loop = s["time_write_input_s"] + s["time_start_s"] + s["time_read_output_s"]
    steps = "ticks" if s.get("timing_mode", "ticked") == "ticked" else "steps as fast as possible"
    rows.append(("time per token", f"{si(s['time_per_token_s'], 's')} = chip {s['ticks_per_token']} {steps} "
                                   f"{si(s['time_chip_per_token_s'], 's')} + host link {si(loop, 's')} (write input "
                                   f"{si(s['time_write_input_s'], 's')}, start {si(s['time_start_s'], 's')}, read "
                                   f"output {si(s['time_read_output_s'], 's')}) + host's own work "
                                   f"{si(s['time_host_work_s'], 's')}"))
    parts = (("PE compute", "pe_compute"), ("SRAM", "sram"), ("DRAM", "dram"), ("NoC", "noc"),
             ("host link", "host_link"), ("PEs idle", "pe_idle"), ("chip baseline", "chip_baseline"))
    rows.append(("energy/token", f"{si(s['energy_per_token_j'], 'J')} = " + " + ".join(
        f"{label} {si(s[f'energy_{key}_per_token_j'], 'J')}" for label, key in parts)))
    rows.append(("weights", f"the layers' in {'PE SRAM' if s['layers_at'] == 'sram' else 'DRAM'} (a PE's data "
                            f"memory used up to {si(s['pe_memory_max_bytes'], 'B')} of "
                            f"{si(s['pe_memory_bytes'], 'B')}); embedding on the {place(s['embedding_at'])}, "
                            f"head on the {place(s['head_at'])}; {si(s['dram_bytes_per_token'], 'B')} from DRAM and "
                            f"{si(s['host_link_bytes_per_token'], 'B')} over the host link per token"))
    rows.append(("power boundary", s["power_boundary"]))
    return rows


def place(where: str) -> str:
    """Where a table's weights are, in words."""
    return {"sram": "PEs (weights in their SRAM)", "dram": "PEs (weights in DRAM)"}.get(where, where)


def language_sparsity(s: dict[str, Any]) -> str:
    """A language run's activation sparsity while its populations hold a token, apart from the
    pipeline's occupancy (the share of neuron-steps holding one; the rest is idling, not sparsity)."""
    if "mean_sparsity_active" not in s:               # a trace from before they were counted apart
        return f"{s['mean_sparsity']:.1%} of neurons silent per step"
    return (f"{percent(s['mean_sparsity_active'])} of neurons silent in the steps their population holds a "
            f"token; pipeline occupancy {percent(s['pipeline_occupancy'])} (the other steps idle)")


def pe_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The PE figures of a chip of ARM PEs: cycles, DVFS levels and overruns (none on other chips)."""
    if "pe_overruns" not in s:
        return []
    levels = ", ".join(f"{k.removeprefix('dvfs_share_')} {v:.0%}" for k, v in s.items()
                       if k.startswith("dvfs_share_") and v > 0)
    return [("PEs", f"{s['mean_pe_cycles_per_step']:,.0f} cycles per PE and step; DVFS levels {levels}; "
                    f"{s['pe_overruns']} overruns" + (f" in {s['steps_overrun']:.0%} of steps, up to "
                                                     f"{si(s['max_late_s'], 's')} late" if s['pe_overruns'] else ""))]


LAYER_BOUNDS = {"adds": "adds", "port": "memory port", "ddr": "DDR interface"}
RESOURCE_NAMES = {"alms": "ALMs", "m20k": "M20K blocks"}


def pipeline_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """A language model on a ternary pipeline (an FPGA card): its cores and how many fit, what
    bounds its layers, a generated token's time and the card's power, by part (none elsewhere)."""
    if "layers_bound_by_port" not in s:
        return []
    fit = (f"; {s['cores_fit']:,} fit the device's {RESOURCE_NAMES.get(s['cores_limited_by'], s['cores_limited_by'])}"
           if "cores_fit" in s else "")
    shares = {k: s[f"layers_bound_by_{k}"] for k in LAYER_BOUNDS}
    main = max(shares, key=shares.get)
    others = ", ".join(f"{LAYER_BOUNDS[k]} {v:.0%}" for k, v in shares.items() if k != main)
    times = ", ".join(f"{k.removeprefix('time_share_')} {v:.0%}" for k, v in s.items() if k.startswith("time_share_"))
    power = ", ".join(f"{k.removeprefix('power_').removesuffix('_w')} {si(v, 'W')}" for k, v in s.items()
                      if k.startswith("power_") and k.endswith("_w") and k != "power_w")
    return [("cores", f"{s['cores_used']:,} x {s['ternary_units']} adds and {s['port_bits_per_cycle']} bits from "
                      f"memory a cycle at {si(s['clock_hz'], 'Hz')}{fit}"),
            ("layer time", f"set by the {LAYER_BOUNDS[main]} in {shares[main]:.0%} of layers ({others}); "
                           f"a block {si(s['block_time_s'], 's')}; a generated token's time: {times}"),
            ("card power", f"{si(s['power_w'], 'W')}: {power}")]


def main_bound(s: dict[str, Any]) -> str | None:
    """The bound that set the most steps (``steps_bound_by_<bound>``), None when the run has none."""
    shares = {k.removeprefix("steps_bound_by_"): v for k, v in s.items() if k.startswith("steps_bound_by_")}
    return max(shares, key=shares.get) if shares else None


def times_energy(ratio: float) -> str:
    """A GPU's energy over the chip's as words: ``3.2x less energy`` (the chip needs less), or
    ``1.6x more energy`` when the ratio is below one."""
    ratio = float(ratio)
    if ratio <= 0 or ratio != ratio:
        return f"{ratio:.3g}x less energy"
    if 0.995 <= ratio < 1.005:                   # "1x less" reads as a contradiction
        return "the same energy"
    if ratio >= 1:
        return f"{ratio:.3g}x less energy"
    return f"{1 / ratio:.3g}x more energy"


def share_of_speed(ratio: float) -> str:
    """The chip's tokens per second over a GPU's, as words: ``2.5x its speed``, or ``1/11,429 of
    its speed`` when the chip is slower."""
    ratio = float(ratio)
    if ratio >= 1 or ratio <= 0 or ratio != ratio:
        return f"{ratio:.3g}x its speed"
    return f"1/{number(1 / ratio)} of its speed"
