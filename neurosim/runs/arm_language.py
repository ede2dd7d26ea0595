"""An EGRU language model on ARM PEs driven by the host's per-token loop (``language.drive:
host_loop``), as Nazeer et al. 2024 ran theirs on SpiNNaker 2: batch 1, one token at a time.

Per token the host, over ``system.host`` (each step a request and a reply,
`neurosim.cores.arm_pe.transaction`, with the chip's ``host_loop`` figures):

1. writes the token's input: its embedding (E fp32 values), or its id (4 bytes) when the
   embedding runs on the chip;
2. starts the chip, which runs ``ticks_per_token`` ticks: the input leaves in the first, layer k
   updates in tick k + 1 and holds otherwise (`LoweredEgru.hold`); a head on the chip reads its
   rows for the top layer's events in the tick they are sent and picks the token in the next;
3. reads the output back: the top layer's events (H fp32 values) for the host's head, the
   logits of a head that is a population, or the token's id;

and before the next token its own embedding and head read their weights from its memory (every
weight of the head: a dense matrix-vector product) at ``host_loop.host_bytes_per_s``.

Power boundary: the chip's PEs (compute, and the cycles that load and store their SRAM), its
NoC, its DRAM, its baseline with every PE off, and the host link's I/O. The host's own work
takes time and no energy here. The PEs stay powered between tokens (they hold the recurrent
state) at their fixed DVFS level, or with ``auto`` the slowest.

A word-level model's embedding and head on the chip are tables the PEs read as software, kept
where they fit (`ArmPeModel.place_tables`): spread over the PEs' free SRAM, else in the chip's
DRAM, read by DMA each token (its bits, energy and transfer time counted per step).

The prompt is the start of the model's text (a character-level model), or word ids drawn
uniformly from the scenario's seed (a word-level model: no corpus ships; its cost does not
depend on which words); every generated token is the argmax of the previous token's logits.

Figures (summary attributes, means over the generated tokens; ``prefill_*`` over the prompt's):
``time_per_token_s`` = ``time_write_input_s`` + ``time_start_s`` + ``time_chip_per_token_s`` +
``time_read_output_s`` + ``time_host_work_s``, and ``energy_per_token_j`` = the sum of
``energy_<part>_per_token_j`` over `PARTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurosim import datasets
from neurosim.cores.arm_pe import ArmPeModel, PeWork, Transaction, transaction
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.runs.activity import PipelineWork
from neurosim.runs.progress import PROGRESS, progress_bar
from neurosim.runs.recorder import Recorder
from neurosim.runs.setup import Setup
from neurosim.spec.chip import ArmPeSpec, ChipFile
from neurosim.spec.validate import validate
from neurosim.system.system import system_timing
from neurosim.zoo.egru.lowering import LoweredEgru

# a token's energy, part by part (pJ per step, summed per token)
PARTS = ("pe_compute", "sram", "dram", "noc", "host_link", "pe_idle", "chip_baseline")
BOUNDARY = ("the chip: PEs (compute and SRAM), NoC, DRAM, baseline, and the host link's I/O; "
            "the host's own work takes time, not energy")
TOKEN_BYTES = 4                     # a token's id, as the host writes or reads it


def uses_host_loop(setup: Setup) -> bool:
    """Whether the scenario runs the host's per-token loop; a `UserError` for a model that needs it
    and is driven otherwise."""
    lang, lowered = setup.scenario.language, setup.language
    if lang is None:
        return False
    needs = isinstance(lowered, LoweredEgru) and (lowered.lm.model.vocab is None or lowered.embedding_table)
    if needs and lang.drive != "host_loop":
        raise UserError("a word-level EGRU, or one whose embedding runs on the chip, is run token by token "
                        "from the host: expected drive: host_loop", file=setup.scenario_file, field="language.drive",
                        line=setup.lines.find(("language",)) if setup.lines else None)
    return lang.drive == "host_loop"


@dataclass(frozen=True)
class HostLoop:
    """The host's steps for one token and its own work (ns)."""

    write: Transaction
    start: Transaction
    read: Transaction
    host_ns: float

    @property
    def energy_pj(self) -> float:
        return self.write.energy_pj + self.start.energy_pj + self.read.energy_pj


def host_loop(chip: ChipFile, lowered: LoweredEgru) -> HostLoop:
    """What the host's loop takes per token for this model (see the module's docstring)."""
    core, host, model = chip.core, chip.system.host, lowered.lm.model
    embed, top, vocab = model.embedding.shape[1], model.layers[-1].units, lowered.vocab_size
    write = TOKEN_BYTES if lowered.embedding_table else 4 * embed
    read = (TOKEN_BYTES if lowered.head_table else 4 * vocab if lowered.head_on_chip else 4 * top)
    host_bytes = (0 if lowered.embedding_table else 4 * embed) + (0 if lowered.lm.head_on_chip else 4 * vocab * (top + 1))
    loop = core.host_loop
    return HostLoop(transaction(host, loop, write, 0), transaction(host, loop, 0, 0), transaction(host, loop, 0, read),
                    host_bytes / loop.host_bytes_per_s * 1e9)


def checked_chip(setup: Setup) -> ChipFile:
    """The scenario's chip, checked for a host loop, with the language section's DVFS policy."""
    spec, core, lang = setup.scenario, setup.chip.core, setup.scenario.language
    where = dict(file=setup.scenario_file)

    def line(*key: str) -> int | None:
        return setup.lines.find(key) if setup.lines else None

    if not isinstance(core, ArmPeSpec):
        raise UserError(f"a host loop runs on a chip of ARM PEs (arm_pe), {setup.chip.name} has {core.kind} cores",
                        field="language.drive", line=line("language", "drive"), **where)
    if not isinstance(setup.language, LoweredEgru):
        raise UserError(f"a host loop runs EGRU language models, {setup.lm.name} is a {setup.lm.kind}",
                        field="language.drive", line=line("language", "drive"), **where)
    if core.host_loop is None:
        raise UserError(f"chip {setup.chip.name} gives no core_kinds.{setup.chip.chip.core_kind}.host_loop, expected "
                        f"its host loop's figures", field="chip", line=line("chip"), **where)
    if spec.checkpoint_every is not None:
        raise UserError("a host-loop run keeps no checkpoints, expected none", field="checkpoint_every",
                        line=line("checkpoint_every"), **where)
    if spec.input.dataset != setup.lm.dataset:
        raise UserError(f"the model reads {setup.lm.dataset!r}, expected it here", field="input.dataset",
                        line=line("input", "dataset"), **where)
    if lang.dvfs is None or "core.timing.dvfs" in spec.overrides:       # an override of the chip's field wins
        return setup.chip
    data = core.model_dump()
    data["timing"]["dvfs"] = lang.dvfs
    try:
        new = validate(ArmPeSpec, data, file=setup.scenario_file)
    except UserError as err:
        raise UserError(err.message, field="language.dvfs", line=line("language", "dvfs"), **where) from None
    return setup.chip.model_copy(update={"core_kinds": {**setup.chip.core_kinds, setup.chip.chip.core_kind: new}})


def ticks_per_token(setup: Setup) -> int:
    """The scenario's ticks per token, at least the model's depth needs: its input's tick, a tick
    per layer (and a head population's), and the argmax tick of a head table."""
    lowered, lang = setup.language, setup.scenario.language
    least = lowered.depth + 1 + int(lowered.head_table)
    if lang.ticks_per_token is not None and lang.ticks_per_token < least:
        raise UserError(f"{lang.ticks_per_token} ticks are fewer than a token needs: {least} (its input, "
                        f"{lowered.depth} layers{' and the head' if lowered.head_table else ''})",
                        file=setup.scenario_file, field="language.ticks_per_token",
                        line=setup.lines.find(("language", "ticks_per_token")) if setup.lines else None)
    return lang.ticks_per_token or least


def table_places(setup: Setup, model: ArmPeModel) -> dict[str, str]:
    """Where the embedding's and the head's weights are: host, sram or dram."""
    lowered = setup.language
    lm_model = lowered.lm.model
    embed, top, vocab = lm_model.embedding.shape[1], lm_model.layers[-1].units, lowered.vocab_size
    tables = {}
    if lowered.embedding_table:
        tables["embedding"] = (0, 4 * vocab * embed)
    if lowered.head_table:
        tables["head"] = (4 * vocab, 4 * vocab * top)          # its biases stay in SRAM
    try:
        places = model.place_tables(tables)
    except UserError as err:
        name = next(k for k in tables if k in err.message)
        raise UserError(f"{err.message}; expected {name}: host", file=lowered.lm.source_file, field=name) from None
    head = places.get("head", ("dram" if model.dram else "sram") if lowered.head_on_chip else "host")
    return {"embedding": places.get("embedding", "host"), "head": head}


def prompt_of(setup: Setup) -> np.ndarray:
    """The prompt: the start of the model's text, or word ids drawn from the scenario's seed."""
    lowered, spec = setup.language, setup.scenario
    if lowered.lm.model.vocab is None:
        rng = np.random.default_rng([spec.seed, lowered.vocab_size])
        return rng.integers(0, lowered.vocab_size, spec.language.prompt_tokens).astype(np.int64)
    return datasets.load_text(lowered.lm.dataset, spec.input.split).codes[:spec.language.prompt_tokens].astype(np.int64)


def extra_work(model: ArmPeModel, lowered: LoweredEgru, places: dict[str, str], tick: int, token: int,
               top_sources: np.ndarray) -> PeWork | None:
    """The tables' work in a token's ``tick``: the embedding's row in the first, the head's rows in
    the top layer's tick (``top_sources``: the PE of each of its events) and its argmax after."""
    embed = lowered.lm.model.embedding.shape[1]
    if tick == 0 and lowered.embedding_table:
        return model.embedding_work(token * model.n_cores // lowered.vocab_size, embed, places["embedding"])
    if tick == lowered.depth and lowered.head_table:
        return model.head_rows_work(top_sources, lowered.vocab_size, places["head"])
    if tick == lowered.depth + 1 and lowered.head_table:
        return model.head_select_work(lowered.vocab_size)
    return None


def run_host_loop(setup: Setup, progress: bool = False) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Simulate the scenario's prompt and generation token by token; returns (summary, trace
    groups, meta) as `neurosim.runs.language.run_language` does."""
    chip = setup.chip = checked_chip(setup)
    spec, lang, lowered, graph, mapping = setup.scenario, setup.scenario.language, setup.language, setup.graph, \
        setup.mapping
    model = ArmPeModel(chip, graph, mapping)
    engine = Engine(graph, mapping, model.costs, per_message=False)
    rec = Recorder.for_tokens(model, engine, mapping, spec.record)
    places, loop, ticks = table_places(setup, model), host_loop(chip, lowered), ticks_per_token(setup)
    prompt = prompt_of(setup)
    n_total = len(prompt) + lang.generate_tokens
    out_lo, d = mapping.offsets[lowered.output], graph.populations[lowered.output].size
    top = [name for name in graph.populations if name.startswith("egru")][-1]
    top_lo, top_hi = mapping.offsets[top], mapping.offsets[top] + graph.populations[top].size
    zeros = np.zeros(graph.populations[graph.input_population].size, engine.payload.dtype)
    static_w = chip.chip.static_power_w * rec.n_chips
    idle_w = model.idle_w[model.fixed_level if model.fixed_level is not None else 0] * model.n_cores
    steps = {k: [] for k in (*PARTS, "latency_ns", "wait_ns", "dram_bits")}
    inputs, outputs, token = [], [], 0
    bar = progress_bar(n_total, 0, spec.name, "token", progress)
    for index in range(n_total):
        token = int(prompt[index]) if index < len(prompt) else token
        inputs.append(token)
        top_sources, output = np.zeros(0, np.int64), None
        for tick in range(ticks):
            PROGRESS.at = f"token {index + 1} of {n_total}, tick {tick + 1} of {ticks}"
            engine.set_input(graph.input_population, lowered.embed(np.array([token]))[0] if tick == 0 else zeros)
            c = engine.step(lowered.hold(tick, {0}))
            if tick == lowered.depth:
                output = lowered.output_values(engine.payload[out_lo:out_lo + d], engine.state_of(lowered.output))
                top_sources = mapping.core_of[top_lo + np.flatnonzero(engine.payload[top_lo:top_hi])]
            cost, split = model.step_parts(c, engine.payload, extra_work(model, lowered, places, tick, token,
                                                                         top_sources))
            rec.add(c, cost, engine)
            before = (loop.write.time_ns + loop.start.time_ns) if tick == 0 else 0.0
            after = (loop.read.time_ns + loop.host_ns) if tick == ticks - 1 else 0.0
            link = (loop.write.energy_pj + loop.start.energy_pj if tick == 0 else 0.0) + \
                (loop.read.energy_pj if tick == ticks - 1 else 0.0)
            step_ns = float(cost.chip_busy_ns.max())
            dynamic = cost.neuron_pj.sum() + cost.synapse_pj.sum()
            sram, dram = split.memory_pj.sum(), split.dram_pj.sum()
            values = {"pe_compute": dynamic - sram - dram, "sram": sram, "dram": dram,
                      "noc": cost.network_pj.sum() - split.host_link_pj, "host_link": link,
                      "pe_idle": cost.static_pj.sum() + idle_w * (before + after) * 1e3,
                      "chip_baseline": static_w * (step_ns + before + after) * 1e3,
                      "latency_ns": step_ns, "wait_ns": before + after, "dram_bits": split.dram_bits.sum()}
            for k, v in values.items():
                steps[k].append(float(v))
            row = rec.n - 1        # the records' network and idle energy as the parts count them
            rec.columns["energy/network"][row] += link - split.host_link_pj
            rec.columns["idle_pj"][row] += idle_w * (before + after) * 1e3
        outputs.append(output)
        token = int(lowered.logits(output[None, :]).argmax())
        bar.update()
    bar.close()
    steps = {k: np.array(v) for k, v in steps.items()}

    checked = {}
    if spec.reference:
        checked = {"matches_reference": bool(lowered.matches(lowered.reference_outputs(inputs), outputs)),
                   "reference_is_model": True}
    scores = {}
    if lang.accuracy_chars and lowered.lm.model.vocab is not None:
        scores = lowered.scores(datasets.load_text(lowered.lm.dataset, spec.input.split).codes[:lang.accuracy_chars + 1])
    time_ns = np.cumsum(steps["latency_ns"] + steps["wait_ns"])
    timing = system_timing(chip, np.unique(mapping.core_chip), d, model.barrier)
    rec.close(timing, static_w, steps["latency_ns"] + steps["wait_ns"],
              {"latency_ns": steps["latency_ns"], "wait_ns": steps["wait_ns"], "time_ns": time_ns})
    entry = np.arange(n_total, dtype=np.int64) * ticks
    work = PipelineWork.of(rec, lowered, entry)       # each population's tick of a token apart from the others
    summary, tokens = token_figures(setup, rec, steps, loop, ticks, len(prompt), work)
    summary |= {**scores, **checked, "embedding_at": places["embedding"], "head_at": places["head"]}
    phases = np.array([0] * len(prompt) + [1] * lang.generate_tokens, np.int64)
    groups = {
        "steps": {**rec.steps_group(), "energy_sram_pj": steps["sram"],
                  "energy_dram_pj": steps["dram"], "dram_bits": steps["dram_bits"]},
        "tokens": {"input": np.array(inputs, np.int64), "phase": phases, "entry_step": entry,
                   "output_step": entry + ticks - 1, "output_time_ns": time_ns[entry + ticks - 1], **tokens,
                   "@attrs": {"phase_codes": "0: prompt, 1: generated", "vocab": lowered.lm.model.vocab or "",
                              "vocab_size": lowered.vocab_size, "drive": "host_loop", "ticks_per_token": ticks,
                              "power_boundary": BOUNDARY}},
        "layers": rec.layers_group() | work.layers(),
        "links": rec.links_group(),
    }
    cores = rec.cores_group()
    if cores is not None:
        groups["cores"] = cores
    return summary, groups, {"generated_text": lowered.token_text(inputs[len(prompt):])}


def token_figures(setup: Setup, rec: Recorder, steps: dict[str, np.ndarray], loop: HostLoop, ticks: int,
                  n_prompt: int, work: PipelineWork) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The summary's figures and the trace's per-token arrays from the per-step parts."""
    lang, lowered, mapping = setup.scenario.language, setup.language, setup.mapping
    per_token = {k: v.reshape(-1, ticks).sum(axis=1) for k, v in steps.items()}
    energy = sum(per_token[k] for k in PARTS)
    time_ns = per_token["latency_ns"] + per_token["wait_ns"]
    gen, pre = slice(n_prompt, None), slice(0, n_prompt)
    reported = lang.report_prompt_tokens or n_prompt
    prefill_ns = time_ns[pre].sum() + max(reported - n_prompt, 0) * time_ns[pre].mean()
    prefill_pj = energy[pre].sum() + max(reported - n_prompt, 0) * energy[pre].mean()
    # each layer's events in the tick it takes a token, over its units: its event rate per token
    names = [name for name, *_ in rec.pops]
    rates = {f"event_rate_{name}": float(rec["layer_events"][offset::ticks, names.index(name)].mean()
                                         / setup.graph.populations[name].size)
             for name, offset in lowered.stages().items() if name.startswith("egru")}
    summary = {
        "tokens_per_s": float(1e9 / time_ns[gen].mean()), "energy_per_token_j": float(energy[gen].mean() * 1e-12),
        "prefill_tokens_per_s": float(reported / prefill_ns * 1e9),
        "prefill_energy_per_token_j": float(prefill_pj / reported * 1e-12), "ttft_s": float(prefill_ns * 1e-9),
        "power_w": float(energy.sum() / time_ns.sum() * 1e-3),
        "accuracy": float("nan"), "bits_per_char": float("nan"),
        "prompt_tokens_simulated": int(n_prompt), "prompt_tokens_reported": int(reported),
        "generated_tokens": int(lang.generate_tokens), "depth_steps": int(lowered.depth),
        "cores_used": int(mapping.n_cores), "chips_used": int(rec.n_chips),
        "mean_sparsity": rec.mean_sparsity(list(range(len(rec.pops)))), **work.summary(), **rates,
        "synaptic_ops": int(rec["steps/synops"].sum()), "overflows": int(rec["steps/overflow"].sum()),
        **rec.bound_shares(), **rec.pe_summary(),
        "drive": "host_loop", "ticks_per_token": int(ticks), "dvfs": setup.chip.core.timing.dvfs,
        "timing_mode": setup.chip.core.timing.mode,
        "vocab_size": int(lowered.vocab_size), "weights_generated": bool(lowered.lm.generated),
        "time_per_token_s": float(time_ns[gen].mean() * 1e-9),
        "time_write_input_s": loop.write.time_ns * 1e-9, "time_start_s": loop.start.time_ns * 1e-9,
        "time_chip_per_token_s": float(per_token["latency_ns"][gen].mean() * 1e-9),
        "time_read_output_s": loop.read.time_ns * 1e-9, "time_host_work_s": loop.host_ns * 1e-9,
        **{f"energy_{k}_per_token_j": float(per_token[k][gen].mean() * 1e-12) for k in PARTS},
        "dram_bytes_per_token": float(per_token["dram_bits"][gen].mean() / 8),
        "layers_at": setup.chip.core.synapses_in,
        "pe_memory_max_bytes": float(mapping.utilisation["memory_bytes"].max(initial=0)),
        "pe_memory_bytes": float(setup.chip.core.limits.memory_bytes),
        "host_link_bytes_per_token": (loop.write.bits + loop.start.bits + loop.read.bits) / 8,
        "power_boundary": BOUNDARY,
    }
    tokens = {"time_ns": time_ns, "chip_ns": per_token["latency_ns"], "host_loop_ns": per_token["wait_ns"],
              **{f"energy_{k}_pj": per_token[k] for k in PARTS}, "dram_bits": per_token["dram_bits"]}
    return summary, tokens
