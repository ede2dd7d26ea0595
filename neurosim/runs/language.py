"""Run a language model on a chip of neurocores: a prompt, then generated tokens.

The prompt's tokens enter one per timestep (prefill: the blocks work as a pipeline, a token
in each stage). Its last token's output gives, through the host's head, the first generated
token, which enters the step after the host has read that output; every later token follows
the previous one's output in the same way, so generation takes the graph's depth in steps per
token. Each step is costed as any run's (`neurosim.cores.neurocore`) and the system's SimPy
timeline gives its duration; the host's readout of a token's output (its ``d`` values over
the host link) is added where the next token waits for it.

Figures (summary attributes):

- ``ttft_s``: time to the first generated token: the prompt's prefill and the readout;
  ``prefill_tokens_per_s`` and ``prefill_energy_per_token_j`` over the prompt. For a reported
  prompt longer than the simulated one they add, per extra token, one step at the pipeline's
  pace (the mean step once the pipeline is full, or the slowest step simulated when the
  prompt is shorter than the pipeline: its stages sit on cores of their own) and a token's
  dynamic energy (the run's over its tokens) with the static energy of that step.
- ``tokens_per_s``, ``energy_per_token_j``: generation, the mean over the generated tokens.
- ``power_w``: the run's energy over its time.
- ``accuracy``, ``bits_per_char``: the lowered model in the chip's arithmetic on
  ``accuracy_chars`` of the split (`LoweredLanguageModel.scores`: the integer graph evaluated by
  `neurosim.programs.reference.DataflowReference`, with ``float_bits_per_char`` of the model
  with float activations and ``trained_bits_per_char`` as trained; `LoweredEgru.scores`: the
  float32 graph by `neurosim.programs.reference.Reference`, with ``float_bits_per_char`` and
  ``float_accuracy`` of the model itself and the event rate per layer); NaN when
  ``accuracy_chars`` is 0.
- ``matches_reference`` (when the scenario's ``reference`` is on): the chip's output for every
  token equals the reference's exactly: for a MatMul-free model the integer dataflow reference,
  for a SpikeGPT its graph on `neurosim.programs.reference.Reference` (integer or float32, the
  arithmetic that also scores the text), for an EGRU the model's own float32 step;
  ``reference_is_model`` says which of the last.

On a chip of ARM PEs (`neurosim.cores.arm_pe`) the PE figures join them: overruns, the share
of PE-steps at each DVFS level, cycles per PE and step; the trace's ``cores`` group has them
per step and PE.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim import datasets
from neurosim.cores import core_model
from neurosim.cores.arm_pe import ArmPeModel, PeRecord
from neurosim.cores.neurocore import BOUNDS, COMPONENTS, binding_bound
from neurosim.cores.ternary_pipeline import block_costs, stream_shares, token_cost
from neurosim.engine.engine import Engine
from neurosim.zoo.matmulfree import model as matmulfree
from neurosim.zoo.language import score
from neurosim.system.system import sample_timeline, system_timing


def run_language(setup, progress: bool = False, resume: bool = False) -> tuple[dict[str, Any], dict[str, Any],
                                                                              dict[str, Any]]:
    """Simulate the scenario's prompt and generation; returns (summary, trace groups, meta).
    With the scenario's ``checkpoint_every`` it saves its whole state every so many tokens, and
    with ``resume`` it continues from the last save (`neurosim.runs.runner.Checkpoint`)."""
    from neurosim.runs.runner import PROGRESS, Checkpoint

    spec, chip, graph, mapping, lowered = setup.scenario, setup.chip, setup.graph, setup.mapping, setup.language
    lang = spec.language
    text = datasets.load_text(lowered.lm.dataset, spec.input.split)
    prompt = text.codes[:lang.prompt_tokens].astype(np.int64)
    depth, d = lowered.depth, graph.populations[lowered.output].size
    model = core_model(chip, graph, mapping)
    links = model.links
    engine = Engine(graph, mapping, model.costs, per_message=spec.timing.per_message and model.per_message)
    pe_record = PeRecord(model, spec.record.cores) if isinstance(model, ArmPeModel) else None
    used_chips = np.unique(mapping.core_chip)
    sys_timing = system_timing(chip, used_chips, d, model.barrier)
    out_lo = mapping.offsets[lowered.output]
    pops = [(name, lo, hi) for name, lo, hi, *_ in engine.pops]

    record: dict[str, list] = {k: [] for k in ("events", "synops", "messages", "overflow", "chip_busy", "link_bits",
                                               "host_bits", "bounds", "layer_events", "idle", *COMPONENTS[:-1])}
    tokens_in, phases, entry_step, outputs, entries = [], [], [], [], set()
    pending: dict[int, int] = {}          # step at which a token's output leaves -> its index
    n_prompt, n_total = len(prompt), len(prompt) + lang.generate_tokens
    step = 0
    next_token = None
    checkpoint = Checkpoint(setup, prompt, lang.generate_tokens, ".pkl") if spec.checkpoint_every else None
    saved = checkpoint.load_state() if checkpoint is not None and resume else None
    if saved is not None:
        record, tokens_in, phases, entry_step = saved["record"], saved["tokens_in"], saved["phases"], saved["entry_step"]
        outputs, entries, pending = saved["outputs"], saved["entries"], saved["pending"]
        step, next_token = saved["step"], saved["next_token"]
        engine.acc[:], engine.payload[:], engine.steps_done = saved["acc"], saved["payload"], saved["steps_done"]
        for (_name, *_r, state), arrays in zip(engine.pops, saved["neurons"]):
            for key, value in arrays.items():
                state.state[key][:] = value
        if pe_record is not None:
            pe_record.restore(saved["pe"])
    from tqdm import tqdm
    bar = tqdm(total=n_total, initial=len(outputs), desc=spec.name, unit="token", disable=not progress, leave=False)
    while len(outputs) < n_total:
        value = np.zeros(graph.populations[graph.input_population].size, engine.payload.dtype)
        index = len(tokens_in)
        if index < n_prompt or (next_token is not None and index < n_total):
            token = prompt[index] if index < n_prompt else next_token
            tokens_in.append(int(token))
            phases.append(0 if index < n_prompt else 1)
            entry_step.append(step)
            entries.add(step)
            pending[step + depth] = index
            value = lowered.embed(np.array([token]))[0]
            next_token = None
        PROGRESS["at"] = f"token {len(outputs) + 1} of {n_total}, timestep {step + 1}"
        engine.set_input(graph.input_population, value)
        c = engine.step(lowered.hold(step, entries))
        cost = model.step_cost(c, engine.payload)
        if pe_record is not None:
            pe_record.add(cost)
        for key, v in (("events", c.events), ("synops", c.synops.sum()), ("messages", c.msgs_out.sum()),
                       ("overflow", c.overflow), ("chip_busy", cost.chip_busy_ns), ("link_bits", cost.link_bits),
                       ("host_bits", cost.host_bits), ("bounds", cost.bounds_ns),
                       ("layer_events", [np.count_nonzero(engine.payload[lo:hi]) for _, lo, hi in pops]),
                       ("synapse", cost.synapse_pj.sum()), ("neuron", cost.neuron_pj.sum()),
                       ("network", cost.network_pj.sum()),
                       ("idle", cost.static_pj.sum() if cost.static_pj is not None else 0.0)):
            record[key].append(v)
        if step in pending:
            out = lowered.output_values(engine.payload[out_lo:out_lo + d], engine.state_of(lowered.output))
            outputs.append(out)
            bar.update()
            if pending.pop(step) >= n_prompt - 1:
                next_token = int(lowered.logits(out[None, :]).argmax())   # the host's head picks the next token
            if checkpoint is not None and len(outputs) % spec.checkpoint_every == 0 and len(outputs) < n_total:
                checkpoint.save_state({
                    "record": record, "tokens_in": tokens_in, "phases": phases, "entry_step": entry_step,
                    "outputs": outputs, "entries": entries, "pending": pending, "step": step + 1,
                    "next_token": next_token, "acc": engine.acc, "payload": engine.payload,
                    "steps_done": engine.steps_done, "neurons": [state.state for *_r, state in engine.pops],
                    "pe": pe_record.state() if pe_record is not None else None})
        step += 1
    bar.close()
    if checkpoint is not None:
        checkpoint.remove()

    # the chip against its reference, token by token
    checked = {}
    if spec.reference:
        expected = lowered.reference_outputs(tokens_in)
        checked = {"matches_reference": bool(lowered.matches(expected, outputs)),
                   "reference_is_model": bool(lowered.reference_is_model)}

    # time: the SimPy timeline of the steps, then the host's readouts where generation waits for them
    n_steps = step
    bounds = np.array(record["bounds"])
    latency_ns, _ = sample_timeline(np.array(record["chip_busy"]), np.array(record["link_bits"]),
                                    np.array(record["host_bits"], np.float64), sys_timing)
    bounds[:, BOUNDS.index("barrier")] = sys_timing.barrier_ns
    waits = np.zeros(n_steps)
    out_steps = np.array(entry_step) + depth
    waits[out_steps[n_prompt - 1:]] = sys_timing.readout_ns      # each output the host reads to go on
    time_ns = np.cumsum(latency_ns + waits)
    static_w = chip.chip.static_power_w * len(used_chips)
    energy = {k: np.array(record[k], np.float64) for k in COMPONENTS[:-1]}
    energy["static"] = static_w * (latency_ns + waits) * 1e3 + np.array(record["idle"])
    step_energy = sum(energy.values())
    cum_energy = np.cumsum(step_energy)

    # prefill: the prompt, to the last prompt token's output and its readout
    prefill_end = out_steps[n_prompt - 1]
    ttft_ns = time_ns[prefill_end]
    prefill_energy = cum_energy[prefill_end]
    # one more prompt token: the pipeline's pace (a full pipeline's steps, or else the slowest step seen,
    # as its stages sit on cores of their own) and a token's dynamic energy on its way through the stages
    steady_ns = float(np.mean(latency_ns[depth:n_prompt])) if n_prompt > depth else float(latency_ns.max())
    dynamic_pj = sum(energy[k].sum() for k in COMPONENTS[:-1]) / n_total
    steady_pj = dynamic_pj + static_w * steady_ns * 1e3 + float(np.mean(record["idle"]))
    reported = lang.report_prompt_tokens or n_prompt
    extra = max(reported - n_prompt, 0)
    ttft_reported_ns = ttft_ns + extra * steady_ns
    prefill_reported_pj = prefill_energy + extra * steady_pj
    # generation: each token from the previous output's readout to its own output's readout
    gen_ends = out_steps[n_prompt - 1:]
    gen_ns = np.diff(time_ns[gen_ends])
    gen_pj = np.diff(cum_energy[gen_ends])

    scores = lowered.scores(text.codes[:lang.accuracy_chars + 1]) if lang.accuracy_chars else {}
    layer_events = np.array(record["layer_events"], np.int64)
    sizes = np.array([hi - lo for _, lo, hi in pops], np.float64)
    summary = {
        "tokens_per_s": float(1e9 / gen_ns.mean()),
        "energy_per_token_j": float(gen_pj.mean() * 1e-12),
        "prefill_tokens_per_s": float(reported / (ttft_reported_ns - sys_timing.readout_ns) * 1e9),
        "prefill_energy_per_token_j": float(prefill_reported_pj / reported * 1e-12),
        "ttft_s": float(ttft_reported_ns * 1e-9),
        "power_w": float(cum_energy[-1] / time_ns[-1] * 1e-3),
        "accuracy": float("nan"), "bits_per_char": float("nan"), **scores,
        **checked,
        "prompt_tokens_simulated": int(n_prompt), "prompt_tokens_reported": int(reported),
        "generated_tokens": int(lang.generate_tokens), "depth_steps": int(depth),
        "cores_used": int(mapping.n_cores), "chips_used": int(len(used_chips)),
        "mean_sparsity": float(1.0 - layer_events.sum() / (sizes.sum() * n_steps)),
        "synaptic_ops": int(np.sum(record["synops"])), "overflows": int(np.sum(record["overflow"])),
        **{f"steps_bound_by_{name}": float(np.mean([binding_bound(b) == k for b in bounds]))
           for k, name in enumerate(BOUNDS)},
        **(pe_record.summary() if pe_record is not None else {}),
    }
    groups = {
        "steps": {"events": np.array(record["events"]), "synops": np.array(record["synops"]),
                  "messages": np.array(record["messages"]), "overflow": np.array(record["overflow"]),
                  "latency_ns": latency_ns, "wait_ns": waits, "time_ns": time_ns, "bound_ns": bounds,
                  "bound": np.array([binding_bound(b) for b in bounds], np.int64),
                  **{f"energy_{k}_pj": v for k, v in energy.items()},
                  **(pe_record.step_groups() if pe_record is not None else {}),
                  "@attrs": {"bound_codes": ", ".join(f"{k}: {name}" for k, name in enumerate(BOUNDS))}},
        "tokens": {"input": np.array(tokens_in, np.int64), "phase": np.array(phases, np.int64),
                   "entry_step": np.array(entry_step, np.int64), "output_step": out_steps,
                   "output_time_ns": time_ns[out_steps],
                   "@attrs": {"phase_codes": "0: prompt, 1: generated", "vocab": lowered.lm.model.vocab}},
        "layers": {"names": np.array([name for name, *_ in pops]), "sizes": sizes.astype(np.int64),
                   "events": layer_events, "sparsity": 1.0 - layer_events / np.maximum(sizes, 1)},
        "links": {"names": np.array(links.names, dtype=str), "bits": np.array(record["link_bits"]),
                  "host_bits": np.array(record["host_bits"], np.float64)},
    }
    if pe_record is not None:
        groups["cores"] = {**pe_record.core_groups(), "chip": mapping.core_chip, "x": mapping.core_x,
                           "y": mapping.core_y, "@attrs": pe_record.core_attrs()}
    meta = {"generated_text": "".join(lowered.lm.model.vocab[t] for t in tokens_in[n_prompt:])}
    return summary, groups, meta


def run_pipeline_language(setup) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The same figures on a ternary pipeline accelerator (`neurosim.cores.ternary_pipeline`).

    Its arithmetic is the model's as trained (int8 activations with per-token scales), run
    token by token for the prompt and the generated tokens (for trained weights; the cost does
    not depend on the values); the host sends each token's embedding and reads each output
    over the host link.
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
    gen_ns = generated.time_ns + io_ns
    gen_pj = sum(generated.energy_pj.values()) + static_w * io_ns * 1e3

    # the tokens themselves, as trained (a model with generated weights predicts nothing worth running)
    tokens = list(prompt)
    if not lm.generated:
        state = matmulfree.initial_state(model, 1)
        for t in range(len(prompt) + lang.generate_tokens - 1):
            logits, state = matmulfree.step(model, np.array([tokens[t]]), state, "quantized")
            if t >= len(prompt) - 1:
                tokens.append(int(logits.argmax()))
    reported = lang.report_prompt_tokens or len(prompt)
    fill_ns = sum(b.time_ns for b in blocks) - prefill.time_ns       # the first token's way through the stages
    prefill_ns = fill_ns + reported * prefill.time_ns + io_ns
    prefill_pj = reported * sum(prefill.energy_pj.values()) + static_w * (fill_ns + io_ns) * 1e3
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
        **{f"energy_{k}_per_token_j": float(v * 1e-12) for k, v in generated.energy_pj.items()},
        "weights_stream": bool(any(b.stream_ns > 0 for b in blocks)),
    }
    groups = {
        "layers": {"names": np.array([f"block{n}" for n in range(len(blocks))]),
                   "weights": np.array([b.weights for b in blocks], np.int64),
                   "elementwise_ops": np.array([b.elementwise for b in blocks], np.int64),
                   "compute_ns": np.array([b.compute_ns for b in blocks]),
                   "stream_ns": np.array([b.stream_ns for b in blocks]),
                   "stream_bound": stream_shares(blocks)},
        "tokens": {"input": np.array(tokens, np.int64),
                   "phase": np.array([0] * len(prompt) + [1] * (len(tokens) - len(prompt)), np.int64),
                   "@attrs": {"phase_codes": "0: prompt, 1: generated", "vocab": model.vocab}},
    }
    meta = {"generated_text": "".join(model.vocab[t] for t in tokens[len(prompt):])}
    return summary, groups, meta
