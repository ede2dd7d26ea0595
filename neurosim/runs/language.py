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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurosim import datasets
from neurosim.cores import core_model
from neurosim.cores.neurocore import COMPONENTS
from neurosim.engine.engine import Engine
from neurosim.runs.activity import PipelineWork
from neurosim.runs.checkpoint import Checkpoint
from neurosim.runs.progress import PROGRESS, TokenPhases, phase
from neurosim.runs.recorder import Recorder
from neurosim.runs.spiking import STEPS_PER_CALL, StepLoop
from neurosim.runs.setup import Setup
from neurosim.system.system import SystemTiming, system_timing
from neurosim.zoo.language import LoweredLanguageModel


@dataclass
class TokenStream:
    """A language run's tokens on their way through the chip: which entered at which step, whose
    output leaves when, the outputs read so far and the token the host picked to enter next."""

    prompt: np.ndarray
    n_total: int                  # the prompt's tokens and the generated ones
    depth: int                    # steps from a token's entry to its output
    step: int = 0                 # the step under way
    inputs: list[int] = field(default_factory=list)          # the tokens entered, in order
    phases: list[int] = field(default_factory=list)          # each one's: 0 prompt, 1 generated
    entry_step: list[int] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    entries: set[int] = field(default_factory=set)           # steps at which a token entered
    pending: dict[int, int] = field(default_factory=dict)    # step at which a token's output leaves -> its index
    next_token: int | None = None

    def enter(self, lowered: LoweredLanguageModel, zeros: np.ndarray) -> np.ndarray:
        """This step's input: the next prompt token's embedding, or the generated token's once the
        host has picked it; else ``zeros``."""
        index, n_prompt = len(self.inputs), len(self.prompt)
        if not (index < n_prompt or (self.next_token is not None and index < self.n_total)):
            return zeros
        token = self.prompt[index] if index < n_prompt else self.next_token
        self.inputs.append(int(token))
        self.phases.append(0 if index < n_prompt else 1)
        self.entry_step.append(self.step)
        self.entries.add(self.step)
        self.pending[self.step + self.depth] = index
        self.next_token = None
        return lowered.embed(np.array([token]))[0]

    def leave(self, lowered: LoweredLanguageModel, out: np.ndarray) -> None:
        """A token's output, read at this step; from the prompt's last token on, the host's head
        picks the next token from it."""
        self.outputs.append(out)
        if self.pending.pop(self.step) >= len(self.prompt) - 1:
            self.next_token = int(lowered.logits(out[None, :]).argmax())

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of it (under the names language checkpoints have)."""
        return {"tokens_in": self.inputs, "phases": self.phases, "entry_step": self.entry_step,
                "outputs": self.outputs, "entries": self.entries, "pending": self.pending, "step": self.step,
                "next_token": self.next_token}

    def restore(self, saved: dict[str, Any]) -> None:
        """Take back what `state` gave."""
        self.inputs, self.phases, self.entry_step = saved["tokens_in"], saved["phases"], saved["entry_step"]
        self.outputs, self.entries, self.pending = saved["outputs"], saved["entries"], saved["pending"]
        self.step, self.next_token = saved["step"], saved["next_token"]


def engine_state(engine: Engine) -> dict[str, Any]:
    """The engine's state between steps, for a checkpoint: a language run does not start afresh."""
    return {"acc": engine.acc, "payload": engine.payload, "steps_done": engine.steps_done,
            "neurons": [state.state for *_r, state in engine.pops]}


def restore_engine(engine: Engine, saved: dict[str, Any]) -> None:
    """Put back the state `engine_state` gave, in place (the engine's views keep pointing at it)."""
    engine.acc[:], engine.payload[:], engine.steps_done = saved["acc"], saved["payload"], saved["steps_done"]
    for (_name, *_r, state), arrays in zip(engine.pops, saved["neurons"]):
        for key, value in arrays.items():
            state.state[key][:] = value


def run_language(setup: Setup, progress: bool = False,
                 resume: bool = False) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Simulate the scenario's prompt and generation; returns (summary, trace groups, meta).
    With the scenario's ``checkpoint_every`` it saves its whole state every so many tokens, and
    with ``resume`` it continues from the last save (`Checkpoint`)."""
    spec, graph, mapping, lowered = setup.scenario, setup.graph, setup.mapping, setup.language
    lang = spec.language
    text = datasets.load_text(lowered.lm.dataset, spec.input.split)
    prompt = text.codes[:lang.prompt_tokens].astype(np.int64)
    d, out_lo = graph.populations[lowered.output].size, mapping.offsets[lowered.output]
    model = core_model(setup.chip, graph, mapping)
    engine = Engine(graph, mapping, model.costs, per_message=spec.timing.per_message and model.per_message)
    rec = Recorder.for_tokens(model, engine, mapping, spec.record)
    timing = system_timing(setup.chip, np.unique(mapping.core_chip), d, model.barrier)
    tokens = TokenStream(prompt, len(prompt) + lang.generate_tokens, lowered.depth)
    checkpoint = Checkpoint(setup, prompt, lang.generate_tokens, ".pkl") if spec.checkpoint_every else None
    like = {**tokens.state(), **engine_state(engine)}          # this run's state: a checkpoint must have its shape
    saved = checkpoint.load_state(like) if checkpoint is not None and resume else None
    if saved is not None:
        rec.restore_token_state(saved)
        tokens.restore(saved)
        restore_engine(engine, saved)
    bar = TokenPhases(len(prompt), tokens.n_total, len(tokens.outputs), spec.name, progress)   # prefill, generation
    zeros = np.zeros(graph.populations[graph.input_population].size, engine.payload.dtype)
    loop = StepLoop(engine, model, rec, graph.input_population) if StepLoop.compiles(engine, model) else None
    while len(tokens.outputs) < tokens.n_total:
        if loop is not None:
            run_to_next_output(loop, tokens, lowered, zeros)
        else:
            value = tokens.enter(lowered, zeros)
            PROGRESS.at = f"token {len(tokens.outputs) + 1} of {tokens.n_total}, timestep {tokens.step + 1}"
            engine.set_input(graph.input_population, value)
            c = engine.step(lowered.hold(tokens.step, tokens.entries))
            rec.add(c, model.step_cost(c, engine.payload), engine)
        read = tokens.step in tokens.pending
        if read:
            tokens.leave(lowered, lowered.output_values(engine.payload[out_lo:out_lo + d],
                                                        engine.state_of(lowered.output)))
            bar.update()
        tokens.step += 1
        done = len(tokens.outputs)
        if read and checkpoint is not None and done % spec.checkpoint_every == 0 and done < tokens.n_total:
            checkpoint.save_state({**rec.token_state(), **tokens.state(), **engine_state(engine)})
    bar.close()
    if checkpoint is not None:
        checkpoint.remove()

    # the chip against its reference, token by token
    checked = {}
    if spec.reference:
        with phase("the reference"):
            expected = lowered.reference_outputs(tokens.inputs)
        checked = {"matches_reference": bool(lowered.matches(expected, tokens.outputs)),
                   "reference_is_model": bool(lowered.reference_is_model)}
    with phase("scoring"):
        scores = lowered.scores(text.codes[:lang.accuracy_chars + 1]) if lang.accuracy_chars else {}
    summary, groups = token_outcome(setup, rec, tokens, timing, {**scores, **checked})
    meta = {"generated_text": "".join(lowered.lm.model.vocab[t] for t in tokens.inputs[len(prompt):])}
    return summary, groups, meta


def run_to_next_output(loop: StepLoop, tokens: TokenStream, lowered: LoweredLanguageModel,
                       zeros: np.ndarray) -> None:
    """The steps from the one under way to the next at which the host reads an output (at most
    `STEPS_PER_CALL`), in one compiled call; the tokens that enter meanwhile are known (the
    prompt's, or the one the host picked last). Leaves ``tokens.step`` at the last of them."""
    first = tokens.step
    inputs = [tokens.enter(lowered, zeros)]
    while tokens.step not in tokens.pending and len(inputs) < STEPS_PER_CALL:
        tokens.step += 1
        inputs.append(tokens.enter(lowered, zeros))
    PROGRESS.at = f"token {len(tokens.outputs) + 1} of {tokens.n_total}, timestep {tokens.step + 1}"
    names = [name for name, *_ in loop.engine.pops]
    updated = np.array([[name not in lowered.hold(s, tokens.entries) for name in names]
                        for s in range(first, tokens.step + 1)], bool)
    loop.run(len(inputs), np.stack(inputs), updated)
    loop.rec.advance(len(inputs))


def token_outcome(setup: Setup, rec: Recorder, tokens: TokenStream, timing: SystemTiming,
                  checks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's summary and trace groups from its records (see the module's figures); ``checks``
    are its scores and its comparison with the reference."""
    lang = setup.scenario.language
    n_prompt, n_total, depth = len(tokens.prompt), tokens.n_total, tokens.depth
    # time: the SimPy timeline of the steps, then the host's readouts where generation waits for them
    latency_ns, _ = rec.run_timeline(timing, 0, rec.n)
    waits = np.zeros(rec.n)
    out_steps = np.array(tokens.entry_step) + depth
    waits[out_steps[n_prompt - 1:]] = timing.readout_ns      # each output the host reads to go on
    time_ns = np.cumsum(latency_ns + waits)
    static_w = setup.chip.static_power_w(rec.n_chips)
    cum_energy = np.cumsum(rec.close(timing, static_w, latency_ns + waits,
                                     {"latency_ns": latency_ns, "wait_ns": waits, "time_ns": time_ns}))
    energy = rec.energy()

    # prefill: the prompt, to the last prompt token's output and its readout
    prefill_end = out_steps[n_prompt - 1]
    ttft_ns = time_ns[prefill_end]
    prefill_energy = cum_energy[prefill_end]
    # one more prompt token: the pipeline's pace (a full pipeline's steps, or else the slowest step seen,
    # as its stages sit on cores of their own) and a token's dynamic energy on its way through the stages
    steady_ns = float(np.mean(latency_ns[depth:n_prompt])) if n_prompt > depth else float(latency_ns.max())
    dynamic_pj = sum(energy[k].sum() for k in COMPONENTS[:-1]) / n_total
    steady_pj = dynamic_pj + static_w * steady_ns * 1e3 + float(np.mean(rec["idle_pj"]))
    reported = lang.report_prompt_tokens or n_prompt
    extra = max(reported - n_prompt, 0)
    ttft_reported_ns = ttft_ns + extra * steady_ns
    prefill_reported_pj = prefill_energy + extra * steady_pj
    # generation: each token from the previous output's readout to its own output's readout
    gen_ends = out_steps[n_prompt - 1:]
    gen_ns = np.diff(time_ns[gen_ends])
    gen_pj = np.diff(cum_energy[gen_ends])

    work = PipelineWork.of(rec, setup.language, tokens.entry_step)     # activity apart from the pipeline's idling
    summary = {
        "tokens_per_s": float(1e9 / gen_ns.mean()),
        "energy_per_token_j": float(gen_pj.mean() * 1e-12),
        "prefill_tokens_per_s": float(reported / (ttft_reported_ns - timing.readout_ns) * 1e9),
        "prefill_energy_per_token_j": float(prefill_reported_pj / reported * 1e-12),
        "ttft_s": float(ttft_reported_ns * 1e-9),
        "power_w": float(cum_energy[-1] / time_ns[-1] * 1e-3),
        "accuracy": float("nan"), "bits_per_char": float("nan"), **checks,
        "prompt_tokens_simulated": int(n_prompt), "prompt_tokens_reported": int(reported),
        "generated_tokens": int(lang.generate_tokens), "depth_steps": int(depth),
        "cores_used": int(setup.mapping.n_cores), "chips_used": int(rec.n_chips),
        "mean_sparsity": rec.mean_sparsity(list(range(len(rec.pops)))),
        **work.summary(),
        "synaptic_ops": int(rec["steps/synops"].sum()), "overflows": int(rec["steps/overflow"].sum()),
        **rec.bound_shares(),
        **rec.pe_summary(),
    }
    groups = {
        "steps": rec.steps_group(),
        "tokens": {"input": np.array(tokens.inputs, np.int64), "phase": np.array(tokens.phases, np.int64),
                   "entry_step": np.array(tokens.entry_step, np.int64), "output_step": out_steps,
                   "output_time_ns": time_ns[out_steps],
                   "@attrs": {"phase_codes": "0: prompt, 1: generated", "vocab": setup.language.lm.model.vocab}},
        "layers": rec.layers_group() | work.layers(),
        "links": rec.links_group(),
    }
    cores = rec.cores_group()
    if cores is not None:
        groups["cores"] = cores
    return summary, groups

