"""A spiking run: a scenario's samples through the engine on a chip of cores, step by step.

Each sample starts from rest and runs the scenario's timesteps; its prediction is the argmax of
the readout (`neurosim.runs.scoring.predict`). One `Recorder` keeps every step's counters and
costs; a sample's latency is its steps on the system's SimPy timeline, back to back, then the
host's readout, and its energy theirs with the chips' static power over that time. The numpy
reference (`run_reference`) and, for a model imported from NIR or netx, its float model check
the chip's results. A model read by its first spikes (nearest-neighbour search) runs each
sample only until its answer is complete (`neurosim.runs.first_spikes`): its samples' steps,
time and energy are those of the steps they ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from neurosim.cores import core_model
from neurosim.cores.neurocore import NeurocoreModel, cost_arrays, cost_kernel
from neurosim.datasets import Dataset
from neurosim.engine.engine import Engine
from neurosim.engine.step import step
from neurosim.errors import UserError
from neurosim.runs.checkpoint import Checkpoint
from neurosim.runs.first_spikes import FirstSpikes, first_spikes_outcome, run_answered
from neurosim.runs.progress import PROGRESS, progress_bar
from neurosim.runs.recorder import Recorder, check_memory, readout_scale, record_row
from neurosim.runs.scoring import (accuracy, compare_with_float, held_inputs, predict, readout_values, run_reference,
                                   step_input)
from neurosim.runs.setup import Setup
from neurosim.system.system import SystemTiming, system_timing


def run_spiking(setup: Setup, data: Dataset, timesteps: int, progress: bool = False,
                resume: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the scenario's samples; returns (summary, trace groups). With the scenario's
    ``checkpoint_every`` it saves its records at the end of a sample every so many timesteps,
    and with ``resume`` it continues from the last save (`Checkpoint`)."""
    spec, graph, mapping = setup.scenario, setup.graph, setup.mapping
    n_samples, T = len(data.labels), timesteps
    check_memory(setup, n_samples * T, mapping.n_cores)
    model = core_model(setup.chip, graph, mapping)
    engine = Engine(graph, mapping, model.costs, per_message=spec.timing.per_message and model.per_message)
    _name, lo, hi, *_ = next(p for p in engine.pops if p[0] == graph.readout_population)
    first_k = FirstSpikes.of(graph, engine.pops)      # a readout by the first k spikes, or None
    if first_k is not None:
        lo, hi = first_k.lo, first_k.hi
        check_first_spikes(setup, StepLoop.compiles(engine, model))
    rec = Recorder.for_samples(model, engine, mapping, spec.record, n_samples, T, 0 if first_k else hi - lo)
    rec.keep_readout(spec.record.readout if first_k is None else False, engine.state_of(graph.readout_population),
                     graph.readout_population, readout_scale(setup), setup.scenario_file)
    timing = system_timing(setup.chip, np.unique(mapping.core_chip), first_k.k if first_k else hi - lo,
                           model.barrier)
    answers, steps = (np.full((n_samples, first_k.k), -1, np.int64), np.full(n_samples, T)) if first_k else (None, None)
    per_step = data.inputs.ndim == 3
    checkpoint = Checkpoint(setup, data.inputs, T) if spec.checkpoint_every else None
    saved = checkpoint.load_arrays(like=rec.state(0)) if checkpoint is not None and resume else None
    first = rec.restore(*saved) if saved is not None else 0
    bar = progress_bar(n_samples, first, spec.name, "sample", progress)
    loop = StepLoop(engine, model, rec, graph.input_population, lo) if StepLoop.compiles(engine, model) else None
    next_save = (first * T // spec.checkpoint_every + 1) * spec.checkpoint_every if checkpoint else None
    for s in range(first, n_samples):
        engine.reset()
        if not per_step:
            engine.set_input(graph.input_population, data.inputs[s])
        counts = np.zeros(hi - lo, np.int64)           # the readout's spikes, for a model read by them
        inputs = (np.stack([step_input(data.inputs[s], t, True, spec.input.hold) for t in range(T)]) if per_step
                  else None)
        if first_k is not None:
            steps[s] = run_answered(first_k, loop, engine, model, rec, graph.input_population, s, n_samples, inputs,
                                    counts)
            answers[s] = first_k.answer()
        elif loop is not None:
            loop.run_sample(s, n_samples, inputs, counts)
        for t in range(T if loop is None and first_k is None else 0):
            PROGRESS.at = f"sample {s + 1} of {n_samples}, timestep {t + 1} of {T}"
            if per_step:
                engine.set_input(graph.input_population, inputs[t])
            c = engine.step()
            rec.add(c, model.step_cost(c, engine.payload), engine, s, t)
            counts += engine.payload[lo:hi] != 0
            rec.add_readout(s, t, readout_values(engine.state_of(graph.readout_population)))
        state = engine.state_of(graph.readout_population)
        if first_k is None:
            rec.end_sample(s, predict(graph, state, counts), readout_values(state))
        else:
            rec.end_sample(s, answers[s, 0], np.zeros(0, np.int64))
        bar.update()
        if checkpoint is not None and rec.n >= next_save and s + 1 < n_samples:
            checkpoint.save_arrays(s + 1, rec.state(s + 1))
            next_save = (rec.n // spec.checkpoint_every + 1) * spec.checkpoint_every
    bar.close()
    if checkpoint is not None:
        checkpoint.remove()
    figures = close_samples(rec, timing, setup.chip.static_power_w(rec.n_chips), steps)
    return outcome(setup, data, rec, figures, answers, steps)


def check_first_spikes(setup: Setup, compiled: bool) -> None:
    """What a run read by its first spikes cannot do: a checkpoint (its samples end at different
    steps), and spike trains where the engine steps from Python (their steps are numbered per sample)."""
    if setup.scenario.checkpoint_every:
        raise UserError("a model read by its first spikes stops each sample when its answer is complete; "
                        "expected no checkpoint_every", file=setup.scenario_file, field="checkpoint_every")
    if setup.scenario.record.spikes and not compiled:
        raise UserError(f"spike trains of a model read by its first spikes are kept on chips of neurocores; "
                        f"expected record.spikes: false on {setup.chip.name}", file=setup.scenario_file,
                        field="record.spikes")


STEPS_PER_CALL = 256     # at most this many steps per compiled call: Ctrl-C is seen between calls


@nb.njit(cache=True, nogil=True)
def run_steps(net, table, sim, counts, arrival, synapses, count_active, per_message, costs, cost, rows, row, sample,
              t0, engine_t0, updated, inputs, values, fired, readout_lo, readout_counts, readout_now, readout_steps):
    """Timesteps of a run on a chip of neurocores (one per row of ``updated``, which says the
    populations that update; the engine's from ``engine_t0`` on), into the records' rows ``row``
    on: each step's programs and messages (`neurosim.engine.step.step`), its cost
    (`neurosim.cores.neurocore.cost_kernel`) and its row (`record_row`, as step ``t0 + t`` of
    ``sample``). ``inputs[t]`` (if any) is the input
    population's ``values`` at step ``t``; ``readout_counts`` counts the events of the neurons
    from ``readout_lo`` on, and ``fired`` (if any) keeps which neurons had one;
    ``readout_steps[t]`` (if any) keeps ``readout_now``, the readout's values as the step leaves
    them. Returns the message buffers."""
    for t in range(updated.shape[0]):
        if inputs.shape[0]:
            values[:] = inputs[t]
        arrival, synapses = step(net, table, sim, counts, arrival, synapses, updated[t], count_active, per_message,
                                 engine_t0 + t)
        if readout_steps.shape[0]:
            readout_steps[t] = readout_now
        cost_kernel(costs, counts.synops, counts.reads, counts.active, counts.spikes, counts.msgs_in, counts.bits_in,
                    counts.bits_out, counts.network_pj, counts.path_msgs, counts.neuron_done_ns,
                    counts.synapse_done_ns, cost)
        record_row(rows, row + t, sample, t0 + t, counts, cost, table.lo, table.hi, sim.payload)
        for i in range(readout_counts.shape[0]):
            readout_counts[i] += sim.payload[readout_lo + i] != 0
        if fired.shape[0]:
            fired[t] = sim.payload != 0
    return arrival, synapses


class StepLoop:
    """Timesteps of a run in compiled calls of `run_steps`, into the run's `Recorder`: for
    neurocores whose programs the engine runs compiled (`compiles`)."""

    def __init__(self, engine: Engine, model: NeurocoreModel, rec: Recorder, input_population: str,
                 readout_lo: int = 0):
        self.engine, self.model, self.rec, self.readout_lo = engine, model, rec, readout_lo
        self.values = engine.state_of(input_population).get("values", np.zeros(0, engine.payload.dtype))
        kept = rec.readout_attrs          # the readout's values the recorder keeps per step, as the engine holds them
        self.readout_now = engine.state_of(kept["population"])[kept["variable"]] if kept else np.zeros(0, np.int64)
        self.cost = cost_arrays(engine.n_cores, model.n_chips, len(model.links.names))

    @staticmethod
    def compiles(engine: Engine, model: Any) -> bool:
        return isinstance(model, NeurocoreModel) and engine.table is not None

    def run(self, n: int, inputs: np.ndarray | None = None, updated: np.ndarray | None = None,
            readout_counts: np.ndarray | None = None, fired: np.ndarray | None = None, sample: int = 0,
            t0: int = 0, readout_steps: np.ndarray | None = None) -> None:
        """``n`` steps in one call, recorded as steps ``t0`` on of ``sample`` (a spiking run's).
        ``inputs`` ([n, inputs], or None to keep the input set) sets the input population's
        values each step; ``updated`` ([n, populations], or None: all) which populations update;
        ``readout_counts`` counts the readout's events; ``fired`` ([n, neurons]) keeps which
        neurons had one; ``readout_steps`` ([n, readout]) the readout's values after each step."""
        engine, rec = self.engine, self.rec
        inputs = np.zeros((0, len(self.values)), self.values.dtype) if inputs is None \
            else np.asarray(inputs, self.values.dtype)
        updated = np.ones((n, len(engine.pops)), bool) if updated is None else updated
        readout_counts = np.zeros(0, np.int64) if readout_counts is None else readout_counts
        fired = np.zeros((0, len(engine.payload)), bool) if fired is None else fired
        readout_steps = np.zeros((0, 0), np.int64) if readout_steps is None else readout_steps
        engine.messages = run_steps(engine.net, engine.table, engine.sim, engine.counts, *engine.messages,
                                    engine.count_active, engine.per_message, self.model.table, self.cost, rec.rows(n),
                                    rec.n, sample, t0, engine.steps_done, updated, inputs, self.values, fired,
                                    self.readout_lo, readout_counts, self.readout_now, readout_steps)
        engine.steps_done += n

    def run_sample(self, sample: int, n_samples: int, inputs: np.ndarray | None, readout_counts: np.ndarray) -> None:
        """A spiking run's sample from rest (the engine reset, its input set unless ``inputs``
        gives one per step), at most `STEPS_PER_CALL` steps per call."""
        T = self.rec.timesteps
        for t0 in range(0, T, STEPS_PER_CALL):
            n = min(STEPS_PER_CALL, T - t0)
            PROGRESS.at = f"sample {sample + 1} of {n_samples}, timestep {t0 + n} of {T}"
            fired = np.zeros((n, len(self.engine.payload)), bool) if self.rec.keeps_spikes(sample) else None
            self.run(n, None if inputs is None else inputs[t0:t0 + n], None, readout_counts, fired, sample, t0,
                     self.rec.readout_rows(sample, t0, n))
            self.rec.advance(n, fired, sample, t0)


@dataclass
class SampleFigures:
    """Each sample's latency (ns) and energy (pJ), and the static energy of the host's readout."""

    latency_ns: np.ndarray
    energy_pj: np.ndarray
    readout_static_pj: float


def close_samples(rec: Recorder, timing: SystemTiming, static_w: float,
                  steps: np.ndarray | None = None) -> SampleFigures:
    """The samples on the system's timeline, back to back, each ending in the host's readout;
    closes the records with each step's latency and end time. ``steps``: the steps each sample
    ran, when not all of the run's timesteps."""
    T, n_samples = rec.timesteps, rec.samples
    steps = np.full(n_samples, T) if steps is None else steps
    starts = np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)
    latency_ns = np.zeros(rec.n)
    time_ns = np.zeros(rec.n)              # simulated time at the end of each step, samples back to back
    sample_latency_ns = np.zeros(n_samples)
    sample_start = 0.0
    for s in range(n_samples):
        lo, hi = starts[s], starts[s + 1]
        step_lat, total = rec.run_timeline(timing, lo, hi)
        latency_ns[lo:hi] = step_lat
        time_ns[lo:hi] = sample_start + np.cumsum(step_lat)
        sample_latency_ns[s] = total
        sample_start += total
    step_energy_pj = rec.close(timing, static_w, latency_ns, {"time_ns": time_ns, "latency_ns": latency_ns})
    readout_static_pj = static_w * timing.readout_ns * 1e3
    per_sample = (step_energy_pj.reshape(n_samples, T).sum(axis=1) if np.all(steps == T)
                  else np.array([step_energy_pj[starts[s]:starts[s + 1]].sum() for s in range(n_samples)]))
    sample_energy_pj = per_sample + readout_static_pj
    return SampleFigures(sample_latency_ns, sample_energy_pj, readout_static_pj)


def outcome(setup: Setup, data: Dataset, rec: Recorder, figures: SampleFigures, answers: np.ndarray | None = None,
            steps: np.ndarray | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's summary and trace groups, from its closed records: accuracy, its checks against
    the reference and float models, then time, energy and activity per inference; for a model
    read by its first spikes, its ``answers`` and the ``steps`` its samples ran
    (`neurosim.runs.first_spikes.first_spikes_outcome`)."""
    spec, graph, mapping = setup.scenario, setup.graph, setup.mapping
    n_samples, T, n_pops = rec.samples, rec.timesteps, len(rec.pops)
    labels = data.labels.astype(np.int64)
    reference = {}
    ref_pred = np.full(n_samples, -1)
    first_k, first_samples = ({}, {}) if answers is None else first_spikes_outcome(graph, data, rec, answers, steps,
                                                                                   spec.reference)
    if "matches_reference" in first_k:
        ref_pred = first_samples["reference_neighbours"][:, 0]
        reference = {"reference_accuracy": accuracy(ref_pred, labels),
                     "matches_reference": first_k.pop("matches_reference")}
    elif spec.reference and answers is None:
        ref_pred, ref_v, ref_events = run_reference(graph, data.inputs, T, spec.input.hold)
        exact = bool(np.array_equal(ref_v, rec.readout_v)
                     and np.array_equal(ref_events.reshape(rec.n, n_pops), rec["layer_events"]))
        reference = {"reference_accuracy": accuracy(ref_pred, labels), "matches_reference": exact}
    float_summary, conversion = ({}, None) if setup.imported is None else compare_with_float(
        setup.imported, held_inputs(data.inputs, T, spec.input.hold), T, rec.predictions, labels,
        rec["layer_events"].reshape(n_samples, T, n_pops), [name for name, *_ in rec.pops],
        rec.readout_v if graph.readout_mode == "membrane" else None)
    energy = rec.energy()
    summary = {
        "accuracy": accuracy(rec.predictions, labels),
        **reference,
        **float_summary,
        "energy_per_inference_j": float(figures.energy_pj.mean() * 1e-12),
        "latency_per_inference_s": float(figures.latency_ns.mean() * 1e-9),
        **{f"energy_{k}_per_inference_j": float(energy[k].sum() / n_samples * 1e-12)
           for k in ("synapse", "neuron", "network")},
        "energy_static_per_inference_j": float((energy["static"].sum() / n_samples + figures.readout_static_pj)
                                               * 1e-12),
        "mean_sparsity": rec.mean_sparsity(rec.on_chip()),
        "cores_used": int(mapping.n_cores),
        "chips_used": int(rec.n_chips),
        "timesteps": int(T),
        "samples": int(n_samples),
        "synaptic_ops": int(rec["steps/synops"].sum()),
        "inter_chip_bits_per_inference": float(rec["link_bits"].sum() / n_samples),
        "host_bits_per_inference": float(rec["host_bits"].sum() / n_samples),
        **rec.bound_shares(),
        "overflows": int(rec["steps/overflow"].sum()),
        **rec.pe_summary(),
        **first_k,
    }
    groups = {"steps": rec.steps_group(), "links": rec.links_group(), "cores": cores_group(setup, rec),
              "layers": rec.layers_group(),
              "samples": {"prediction": rec.predictions, "label": labels, "reference_prediction": ref_pred,
                          "latency_s": figures.latency_ns * 1e-9, "energy_j": figures.energy_pj * 1e-12,
                          **first_samples}}
    if conversion is not None:
        groups["conversion"] = conversion
    if rec.spikes:
        groups["spikes"] = rec.spikes_group()
    if rec.readout is not None:
        groups["readout"] = rec.readout_group()
    return summary, groups


def cores_group(setup: Setup, rec: Recorder) -> dict[str, Any]:
    """The recorder's per-core records with what the mapping put on each core and the mesh."""
    mapping, mesh, system = setup.mapping, setup.chip.chip.mesh, setup.chip.system
    group = rec.cores_group()
    return group | {"neurons": mapping.core_neurons.astype(np.int64),
                    "population": np.array(mapping.core_populations()),
                    "utilisation": {k: v / mapping.limits[k] for k, v in mapping.utilisation.items()},
                    "@attrs": {"mesh_x": mesh.routers_x * system.chips_x, "mesh_y": mesh.routers_y * system.chips_y,
                               "cores_per_router": mesh.cores_per_router, **group["@attrs"]}}
