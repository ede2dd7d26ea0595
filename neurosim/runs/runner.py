"""Run a scenario end to end: specs -> graph -> mapping -> engine -> system -> trace."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neurosim import __version__, datasets
from neurosim.cores import core_model
from neurosim.cores.neurocore import BOUNDS, COMPONENTS, binding_bound
from neurosim.cores.arm_pe import ArmPeModel, PeRecord
from neurosim.engine.engine import Engine
from neurosim.errors import Interrupted, UserError
from neurosim.graph.graph import Graph
from neurosim.interop.imported import ImportedModel
from neurosim.zoo.loader import LanguageModel, load_model, resolve_model_dir, sha256_of
from neurosim.zoo.language import LoweredLanguageModel, lower_language_model
from neurosim.mapping.mapper import Mapping, map_graph
from neurosim.programs.reference import Reference
from neurosim.spec.chip import (ArmPeSpec, ChipFile, GpuRooflineSpec, TernaryPipelineSpec, chip_from_dict, load_chip,
                                load_chip_data, resolve_chip_path)
from neurosim.spec.scenario import (NetxModelSpec, NirModelSpec, ScenarioFile, apply_overrides, load_scenario,
                                    override_path, scenario_from_dict)
from neurosim.spec.yamlio import LineMap
from neurosim.system.system import sample_timeline, system_timing
from neurosim.traces.trace import write_trace

REFERENCE_BATCH = 128


@dataclass
class RunResult:
    """What `run` returns: the summary attributes and where the trace was written."""

    summary: dict[str, Any]
    trace_path: Path | None


@dataclass
class Setup:
    """Everything a run needs, loaded and checked, before any simulation."""

    scenario: ScenarioFile
    scenario_text: str
    chip: ChipFile
    chip_text: str
    graph: Graph | None                  # None on a pipeline accelerator
    model_text: str
    mapping: Mapping | None
    scenario_file: str = "<scenario>"
    lines: LineMap | None = None         # of the scenario file, for error messages
    lm: LanguageModel | None = None                  # a language model, and for neurocores its lowering
    language: LoweredLanguageModel | None = None
    imported: ImportedModel | None = None            # a model imported from a NIR or netx file
    baselines: list[ChipFile] = field(default_factory=list)   # GPU rooflines a language model is compared with


def _search_bases(scenario_path: Path | None) -> list[Path]:
    bases = [Path.cwd()]
    if scenario_path is not None:
        bases += [scenario_path.parent, scenario_path.parent.parent]
    return bases


def _resolve(resolver: Callable[[str, Path | None], Path], name: str, bases: list[Path], what: str,
             scenario_file: str, lines: LineMap | None) -> Path:
    """The first base under which ``resolver`` finds ``name``; else an error at the scenario's field."""
    for base in bases:
        try:
            return resolver(name, base)
        except UserError:
            continue
    places = ", ".join(dict.fromkeys(str(b) for b in bases))
    expected = ("a YAML file or a name in chips/" if what == "chip"
                else "a folder holding model.yaml or a name in models/")
    raise UserError(f"{what} {name!r} not found (looked under {places}), expected {expected}", file=scenario_file,
                    field=what, line=lines.find((what,)) if lines is not None else None)


def load_chip_with_overrides(path: Path, overrides: dict[str, Any], scenario_file: str,
                             lines: LineMap | None) -> tuple[ChipFile, str]:
    """Load a chip file and apply a scenario's overrides; an override that makes the chip
    invalid is reported at the override's line in the scenario."""
    data, chip_lines, text = load_chip_data(path)
    if not overrides:
        return chip_from_dict(data, file=str(path), lines=chip_lines), text
    patched = apply_overrides(data, overrides, file=scenario_file, lines=lines)
    try:
        return chip_from_dict(patched, file=str(path)), text
    except UserError as err:
        for dotted in overrides:
            if err.field and ".".join(override_path(dotted, data)).startswith(err.field):
                raise UserError(err.message, file=scenario_file, field=f"overrides.{dotted}",
                                line=lines.find(("overrides", dotted)) if lines is not None else None) from None
        raise UserError(f"{err.message} (after the overrides in {scenario_file})", file=err.file,
                        field=err.field) from None


def prepare(scenario: str | Path | dict, seed: int | None = None, overrides: dict[str, Any] | None = None) -> Setup:
    """Load, validate and map a scenario without running it; ``overrides`` add to (and win
    over) the scenario's own."""
    if isinstance(scenario, dict):
        import yaml

        spec = scenario_from_dict(scenario, file="<scenario>")
        text, lines, path = yaml.safe_dump(scenario, sort_keys=False), None, None
    else:
        path = Path(scenario)
        spec, text, lines = load_scenario(path)
    if seed is not None:
        spec = spec.model_copy(update={"seed": seed})
    if overrides:
        spec = spec.model_copy(update={"overrides": {**spec.overrides, **overrides}})
    bases = _search_bases(path)
    scenario_file = str(path or "<scenario>")
    _require(isinstance(spec.chip, str), "several chips: run them with neurosim run (or neurosim.run_chips), "
                                         "which compares them", "chip", scenario_file, lines)
    chip_path = _resolve(resolve_chip_path, spec.chip, bases, "chip", scenario_file, lines)
    chip, chip_text = load_chip_with_overrides(chip_path, spec.overrides, scenario_file, lines)
    _require(not isinstance(chip.core, GpuRooflineSpec), f"{chip.name} is a GPU roofline, a baseline: expected a "
             f"neuromorphic chip here, and the GPU in the scenario's baselines", "chip", scenario_file, lines)
    baselines = []
    for k, name in enumerate(spec.baselines):
        gpu, _ = load_chip(_resolve(resolve_chip_path, name, bases, "chip", scenario_file, lines))
        if not isinstance(gpu.core, GpuRooflineSpec):
            raise UserError(f"{name!r} is a {gpu.chip.core_kind} chip, expected a gpu_roofline chip",
                            file=scenario_file, field=f"baselines.{k}")
        baselines.append(gpu)
    pipeline = isinstance(chip.core, TernaryPipelineSpec)
    if not isinstance(spec.model, str):
        imported = import_model(spec.model, bases, scenario_file, lines)
        _require(not pipeline, f"a {chip.chip.core_kind} chip runs models from neurosim's model folders; "
                               f"imported files run on chips of cores", "model", scenario_file, lines)
        mapping = map_graph(imported.graph, chip, spec.mapping.placement, spec.mapping.cores)
        import yaml

        model_text = yaml.safe_dump(spec.model.model_dump(), sort_keys=False)
        return Setup(spec, text, chip, chip_text, imported.graph, model_text, mapping, scenario_file, lines,
                     imported=imported)
    model_dir = _resolve(resolve_model_dir, spec.model, bases, "model", scenario_file, lines)
    model, model_text = load_model(model_dir)
    if isinstance(model, LanguageModel):
        _require(spec.language is not None, "a language model is driven by a language section "
                                             "(prompt_tokens, generate_tokens)", "language", scenario_file, lines)
        if pipeline:
            _require(model.kind == "matmulfree_lm", f"a {chip.chip.core_kind} chip runs MatMul-free language "
                                                      f"models; {model.name!r} is not one", "model", scenario_file, lines)
            return Setup(spec, text, chip, chip_text, None, model_text, None, scenario_file, lines, lm=model,
                         baselines=baselines)
        language = lower_language_model(model, software_neurons=isinstance(chip.core, ArmPeSpec))
        mapping = map_graph(language.graph, chip, spec.mapping.placement, spec.mapping.cores)
        return Setup(spec, text, chip, chip_text, language.graph, model_text, mapping, scenario_file, lines,
                     lm=model, language=language, baselines=baselines)
    if pipeline:         # the pipeline computes the graph layer by layer: no cores to map onto
        from neurosim.programs import check_populations, check_projections

        check_populations(model)
        check_projections(model)
        return Setup(spec, text, chip, chip_text, model, model_text, None, scenario_file, lines)
    mapping = map_graph(model, chip, spec.mapping.placement, spec.mapping.cores)
    return Setup(spec, text, chip, chip_text, model, model_text, mapping, scenario_file, lines)


def import_model(spec: NirModelSpec | NetxModelSpec, bases: list[Path], scenario_file: str,
                 lines: LineMap | None) -> ImportedModel:
    """A NIR or netx file named by a scenario's model, found under the scenario's search bases."""
    fmt = "nir" if isinstance(spec, NirModelSpec) else "netx"
    name = getattr(spec, fmt)
    found = next((base / name for base in bases if (base / name).is_file()), None)
    if found is None:
        places = ", ".join(dict.fromkeys(str(b) for b in bases))
        raise UserError(f"{fmt} file {name!r} not found (looked under {places})", file=scenario_file,
                        field=f"model.{fmt}", line=lines.find(("model", fmt)) if lines is not None else None)
    if fmt == "nir":
        from neurosim.interop.nir_import import load_nir

        imported = load_nir(found, dt=spec.dt, reset=spec.reset, input_encoding=spec.input)
    else:
        from neurosim.interop.netx_import import load_netx

        imported = load_netx(found)
    imported.graph.weights_sha256 = sha256_of(found)
    return imported


def _require(condition: bool, message: str, field: str, scenario_file: str, lines: LineMap | None) -> None:
    if not condition:
        raise UserError(message, file=scenario_file, field=field, line=lines.find((field,)) if lines else None)


def _inputs(setup: Setup) -> datasets.Dataset:
    """The scenario's inputs: ``[samples, inputs]`` (the same every step) or ``[samples, timesteps, inputs]``."""
    spec, graph = setup.scenario, setup.graph

    def fail(message: str, *key: str) -> UserError:
        line = setup.lines.find(key) if setup.lines is not None else None
        return UserError(message, file=setup.scenario_file, line=line, field=".".join(key))

    size = graph.populations[graph.input_population].size
    if spec.input.file is not None:
        bases = _search_bases(Path(setup.scenario_file) if setup.scenario_file != "<scenario>" else None)
        path = next((b / spec.input.file for b in bases if (b / spec.input.file).is_file()), Path(spec.input.file))
        labels = None
        if spec.input.labels is not None:
            labels = next((b / spec.input.labels for b in bases if (b / spec.input.labels).is_file()),
                          Path(spec.input.labels))
        try:
            data = datasets.load_input_file(path, labels)
        except ValueError as err:
            raise UserError(f"{err}", file=str(path), field="input.file") from None
        if data.inputs.shape[-1] != size:
            raise fail(f"{path} has {data.inputs.shape[-1]} inputs per step, the model's input population "
                       f"{graph.input_population!r} has {size} neurons", "input", "file")
        if graph.populations[graph.input_population].kind == "graded_source" and \
                not np.all(data.inputs == np.rint(data.inputs)):
            raise fail(f"{path} holds fractional values; graded inputs are integers", "input", "file")
        n = spec.input.samples or len(data.labels)
        return datasets.Dataset(data.name, data.split, data.inputs[:n], data.labels[:n])
    if graph.dataset != "any" and spec.input.dataset != graph.dataset:
        raise fail(f"dataset {spec.input.dataset!r} does not match the model's dataset {graph.dataset!r}",
                   "input", "dataset")
    if spec.input.dataset in datasets.PER_STEP and spec.timesteps is None:
        raise fail(f"expected timesteps per sample ({spec.input.dataset} are made per step)", "timesteps")
    if spec.input.dataset == "random_spikes":
        return datasets.random_spikes(size, spec.input.samples or datasets.RANDOM_SAMPLES, spec.timesteps,
                                      spec.input.rate, spec.seed)
    if spec.input.dataset == "digits_events":
        if spec.input.split not in datasets.SPLITS:
            raise fail(f"unknown split {spec.input.split!r}, expected one of {', '.join(datasets.SPLITS)}",
                       "input", "split")
        data = datasets.digits_events(spec.input.split, spec.timesteps)
        if data.inputs.shape[-1] != size:
            raise fail(f"digits_events have {data.inputs.shape[-1]} inputs per step, the model's input population "
                       f"{graph.input_population!r} has {size} neurons", "input", "dataset")
        n = spec.input.samples or len(data.labels)
        return datasets.Dataset(data.name, data.split, data.inputs[:n], data.labels[:n])
    if spec.input.dataset in datasets.GENERATED:
        return datasets.random_inputs(size, spec.input.samples or datasets.RANDOM_SAMPLES, spec.seed)
    try:
        data = datasets.load(spec.input.dataset, spec.input.split)
    except ValueError as err:
        raise fail(str(err), "input", "split" if spec.input.dataset in datasets.names() else "dataset") from None
    if data.inputs.shape[1] != size:
        raise fail(f"dataset {data.name!r} has {data.inputs.shape[1]} inputs per sample, the model's input "
                   f"population {graph.input_population!r} has {size} neurons", "input", "dataset")
    if spec.input.samples is not None:
        data = datasets.Dataset(data.name, data.split, data.inputs[:spec.input.samples],
                                data.labels[:spec.input.samples])
    return data


def _accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """The fraction predicted right; NaN for unlabelled inputs (labels -1)."""
    return float(np.mean(predictions == labels)) if np.all(labels >= 0) else float("nan")


def readout_values(state: dict[str, np.ndarray]) -> np.ndarray:
    """The readout's membrane: a LIF neuron's voltage ``v``, a sigma-delta neuron's ``sigma``."""
    return state["v"] if "v" in state else state["sigma"]


def _predict(graph: Graph, readout_state: dict[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
    """Argmax of the readout population (lowest index wins ties), per sample."""
    values = readout_values(readout_state) if graph.readout_mode == "membrane" else counts
    return np.argmax(values, axis=-1)


CHECKPOINTS = Path(".neurosim") / "checkpoints"


class Checkpoint:
    """A spiking run's progress saved at a sample's end: every array recorded so far (the
    engine starts each sample afresh, so nothing else is needed). Kept in
    ``.neurosim/checkpoints/`` under the scenario's name and a hash of everything that
    determines the run (the scenario, chip and model texts, seed and overrides, the inputs)."""

    def __init__(self, setup: Setup, inputs: np.ndarray, timesteps: int, suffix: str = ".npz"):
        import hashlib

        digest = hashlib.sha256()
        for part in (setup.scenario_text, setup.chip_text, setup.model_text, repr(setup.scenario.seed),
                     repr(sorted(setup.scenario.overrides.items())), repr(timesteps)):
            digest.update(part.encode())
        digest.update(np.ascontiguousarray(inputs).tobytes())
        self.key = digest.hexdigest()[:20]
        self.path = CHECKPOINTS / f"{setup.scenario.name}-{self.key}{suffix}"

    def save_state(self, state: dict) -> None:
        """A language run's whole state (its own pickle: written and read by this class only)."""
        import pickle

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.partial")
        with open(tmp, "wb") as fh:
            pickle.dump({"key": self.key, "state": state}, fh)
        tmp.replace(self.path)

    def load_state(self) -> dict | None:
        import pickle

        if not self.path.is_file():
            return None
        try:
            with open(self.path, "rb") as fh:
                saved = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError):
            return None
        return saved["state"] if saved.get("key") == self.key else None

    def save(self, samples_done: int, step_arrays: dict, sample_arrays: dict, spikes: dict, pe) -> None:
        steps = int(samples_done * len(step_arrays["steps/sample"]) // len(sample_arrays["predictions"]))
        arrays = {k: v[:steps] for k, v in step_arrays.items()} | {k: v[:samples_done] for k, v in sample_arrays.items()}
        for name, (ts, ids) in spikes.items():
            arrays[f"spikes/{name}/t"] = np.concatenate(ts) if ts else np.zeros(0)
            arrays[f"spikes/{name}/ids"] = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        if pe is not None:
            arrays |= pe.state()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.partial")
        with open(tmp, "wb") as fh:
            np.savez(fh, _key=np.array(self.key), _samples_done=np.array(samples_done), **arrays)
        tmp.replace(self.path)

    def restore(self, step_arrays: dict, sample_arrays: dict, spikes: dict, pe) -> int:
        """Fill the arrays from the last save (if any); returns the samples it had done."""
        if not self.path.is_file():
            return 0
        with np.load(self.path, allow_pickle=False) as saved:
            if str(saved["_key"]) != self.key:
                return 0
            for k, v in step_arrays.items():
                v[:len(saved[k])] = saved[k]
            for k, v in sample_arrays.items():
                v[:len(saved[k])] = saved[k]
            for name in spikes:
                spikes[name][0].append(saved[f"spikes/{name}/t"])
                spikes[name][1].append(saved[f"spikes/{name}/ids"])
            if pe is not None:
                pe.restore({k: saved[k] for k in saved.files if k.startswith("pe/")})
            return int(saved["_samples_done"])

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def physical_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


RECORD_BYTES_PER_CORE_STEP = 8 * 8        # the eight per-core datasets of /cores, 8 bytes each


def check_memory(setup: Setup, n_steps: int, n_cores: int) -> None:
    """Refuse a run whose mapped model and records would not fit the machine's memory, before
    allocating them: the routes and state the mapping holds, and the per-step records."""
    mapping, spec = setup.mapping, setup.scenario
    routes = mapping.routes.nbytes()
    state = 8 * (mapping.delay_slots * mapping.n_dendrites + 4 * mapping.n_neurons)
    per_core = n_steps * n_cores * RECORD_BYTES_PER_CORE_STEP if spec.record.cores else 0
    per_step = n_steps * 8 * (40 + len(setup.graph.populations) * 2)
    needed = routes + state + per_core + per_step
    have = physical_memory_bytes()
    if needed > 0.8 * have:
        hint = " (record.cores: false drops the per-core records, " \
               f"{per_core / 1e9:.1f} GB of it)" if per_core > 0.5 * needed else " (fewer samples or timesteps)"
        raise UserError(f"the run would need about {needed / 1e9:.1f} GB of memory and the machine has "
                        f"{have / 1e9:.1f} GB{hint}", file=setup.scenario_file)


def step_input(inputs: np.ndarray, t: int, per_step: bool, hold: bool = False) -> np.ndarray:
    """Inputs of timestep t: ``inputs`` itself ([..., inputs], the same every step), or with
    ``per_step`` its step t of ``[..., timesteps, inputs]``; after its last step, zero, or with
    ``hold`` the last step's values."""
    if not per_step:
        return inputs
    if t < inputs.shape[-2]:
        return inputs[..., t, :]
    return inputs[..., -1, :] if hold else np.zeros_like(inputs[..., 0, :])


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
        preds.append(_predict(graph, state, counts))
        vs.append(readout_values(state).copy())
        events.append(ev)
    return np.concatenate(preds), np.concatenate(vs), np.concatenate(events)


PROGRESS = {"at": "the start"}       # where a run is, for an interruption's message


def run(scenario: str | Path | dict, *, out_dir: str | Path | None = None, seed: int | None = None,
        progress: bool = False, write: bool = True, overrides: dict[str, Any] | None = None,
        resume: bool = False) -> RunResult:
    """Run a scenario (a YAML path or a dict of its contents) and write its trace.

    ``seed`` and ``overrides`` (chip fields, as in the scenario's ``overrides``) change the
    scenario for this run. Returns the summary and the trace path (None when ``write`` is False).
    Interrupted (Ctrl-C), it raises `neurosim.errors.Interrupted` saying where it was, and
    writes nothing. With the scenario's ``checkpoint_every`` a run saves its progress every so
    many timesteps (at the end of a sample; `Checkpoint`), and with ``resume`` it continues from
    the last save of the same scenario, chip, model, seed and overrides, to the same trace as a
    run that was never stopped.
    """
    PROGRESS["at"] = "loading the scenario"
    try:
        return _run(scenario, out_dir=out_dir, seed=seed, progress=progress, write=write, overrides=overrides,
                    resume=resume)
    except KeyboardInterrupt:
        raise Interrupted(PROGRESS["at"]) from None


def _run(scenario: str | Path | dict, *, out_dir: str | Path | None, seed: int | None, progress: bool,
         write: bool, overrides: dict[str, Any] | None, resume: bool = False) -> RunResult:
    wall_start = time.perf_counter()
    setup = prepare(scenario, seed, overrides)
    if setup.lm is not None:
        from neurosim.runs.language import run_language, run_pipeline_language

        summary, groups, meta = (run_language(setup, progress, resume) if setup.language is not None
                                 else run_pipeline_language(setup))
        if setup.baselines:
            from neurosim.cores.gpu_roofline import baseline_summary

            lang = setup.scenario.language
            summary |= baseline_summary(setup.baselines, setup.lm.model,
                                        lang.report_prompt_tokens or lang.prompt_tokens,
                                        summary["energy_per_token_j"], summary["tokens_per_s"])
        return _finish(setup, summary | {"wall_time_s": time.perf_counter() - wall_start}, groups, meta, out_dir,
                       write)
    spec, chip, graph, mapping = setup.scenario, setup.chip, setup.graph, setup.mapping
    data = _inputs(setup)
    per_step = data.inputs.ndim == 3
    T = spec.timesteps or (data.inputs.shape[1] if per_step else None)
    if T is None:
        raise UserError("expected timesteps per sample", file=setup.scenario_file, field="timesteps")
    if mapping is None:              # a ternary pipeline
        from neurosim.runs.pipeline import run_pipeline_graph

        summary, groups = run_pipeline_graph(setup, data, T)
        summary["wall_time_s"] = time.perf_counter() - wall_start
        return _finish(setup, summary, groups, {}, out_dir, write)
    n_samples, n_cores = len(data.labels), mapping.n_cores
    check_memory(setup, n_samples * T, n_cores)
    model = core_model(chip, graph, mapping)
    links = model.links
    engine = Engine(graph, mapping, model.costs, per_message=spec.timing.per_message and model.per_message)
    pe_record = PeRecord(model, spec.record.cores) if isinstance(model, ArmPeModel) else None

    used_chips = np.unique(mapping.core_chip)
    sys_timing = system_timing(chip, used_chips, graph.populations[graph.readout_population].size, model.barrier)
    neurons_per_core = (mapping.core_neuron_hi - mapping.core_neuron_lo).astype(np.float64)
    pops = [(name, lo, hi) for name, lo, hi, *_ in engine.pops]
    readout = next(p for p in engine.pops if p[0] == graph.readout_population)
    n_steps = n_samples * T

    steps = {k: np.zeros(n_steps, np.int64) for k in ("sample", "step", "events", "synops", "synmem_reads",
                                                      "messages", "hops", "links", "overflow", "bound")}
    bounds_ns = np.zeros((n_steps, len(BOUNDS)))
    link_bits = np.zeros((n_steps, len(links.names)))
    host_bits = np.zeros(n_steps)
    layer_overflow = np.zeros((n_steps, len(engine.pops)), np.int64)
    energy = {k: np.zeros(n_steps) for k in COMPONENTS}
    idle_pj = np.zeros(n_steps)          # cores idling through the rest of a step (kinds that price it)
    record_cores = spec.record.cores
    cores = {k: np.zeros((n_steps if record_cores else 0, n_cores), dt) for k, dt in
             (("synops", np.int64), ("synmem_reads", np.int64), ("spikes", np.int64), ("messages_out", np.int64),
              ("messages_in", np.int64), ("hops", np.int64), ("busy_ns", np.float64), ("energy_pj", np.float64))}
    layer_events = np.zeros((n_steps, len(pops)), np.int64)
    chip_busy = np.zeros((n_steps, len(used_chips)))
    predictions = np.zeros(n_samples, np.int64)
    readout_v = np.zeros((n_samples, readout[2] - readout[1]), np.int64)
    spikes_rec = {name: ([], []) for name, *_ in pops} if spec.record.spikes else {}

    step_arrays = {**{f"steps/{k}": v for k, v in steps.items()}, "bounds_ns": bounds_ns, "link_bits": link_bits,
                   "host_bits": host_bits, "layer_overflow": layer_overflow, "idle_pj": idle_pj,
                   "layer_events": layer_events, "chip_busy": chip_busy,
                   **{f"energy/{k}": v for k, v in energy.items()},
                   **({f"cores/{k}": v for k, v in cores.items()} if record_cores else {})}
    sample_arrays = {"predictions": predictions, "readout_v": readout_v}
    checkpoint = Checkpoint(setup, data.inputs, T) if spec.checkpoint_every else None
    first = 0
    if checkpoint is not None and resume:
        first = checkpoint.restore(step_arrays, sample_arrays, spikes_rec, pe_record)
    from tqdm import tqdm
    bar = tqdm(total=n_samples, initial=first, desc=spec.name, unit="sample", disable=not progress, leave=False)
    i = first * T
    next_save = (first * T // spec.checkpoint_every + 1) * spec.checkpoint_every if checkpoint else None
    for s in range(first, n_samples):
        engine.reset()
        if not per_step:
            engine.set_input(graph.input_population, data.inputs[s])
        counts = np.zeros(readout[2] - readout[1], np.int64)
        for t in range(T):
            PROGRESS["at"] = f"sample {s + 1} of {n_samples}, timestep {t + 1} of {T}"
            if per_step:
                engine.set_input(graph.input_population, step_input(data.inputs[s], t, True, spec.input.hold))
            c = engine.step()
            cost = model.step_cost(c, engine.payload)
            steps["sample"][i], steps["step"][i] = s, t
            steps["events"][i] = c.events
            steps["synops"][i] = c.synops.sum()
            steps["synmem_reads"][i] = c.synmem_reads.sum()
            steps["messages"][i] = c.msgs_out.sum()
            steps["hops"][i] = c.hops.sum()
            steps["links"][i] = c.links.sum()
            steps["overflow"][i] = c.overflow
            layer_overflow[i] = engine.overflow_per_population
            bounds_ns[i] = cost.bounds_ns
            link_bits[i] = cost.link_bits
            host_bits[i] = cost.host_bits
            energy["synapse"][i] = cost.synapse_pj.sum()
            energy["neuron"][i] = cost.neuron_pj.sum()
            energy["network"][i] = cost.network_pj.sum()
            idle_pj[i] = cost.static_pj.sum() if cost.static_pj is not None else 0.0
            chip_busy[i] = cost.chip_busy_ns
            if pe_record is not None:
                pe_record.add(cost)
            if record_cores:
                cores["synops"][i] = c.synops
                cores["synmem_reads"][i] = c.synmem_reads
                cores["messages_in"][i] = c.msgs_in
                cores["spikes"][i] = c.spikes[:n_cores]
                cores["messages_out"][i] = c.msgs_out[:n_cores]
                cores["hops"][i] = c.hops[:n_cores]
                cores["busy_ns"][i] = cost.busy_ns
                cores["energy_pj"][i] = cost.synapse_pj + cost.neuron_pj + cost.network_pj[:n_cores] + (
                    cost.static_pj if cost.static_pj is not None else 0.0)
            for p, (name, lo, hi) in enumerate(pops):
                layer_events[i, p] = np.count_nonzero(engine.payload[lo:hi])
                if spikes_rec and s < spec.record.spike_samples:
                    ids = np.flatnonzero(engine.payload[lo:hi])
                    spikes_rec[name][0].append(np.full(len(ids), s * T + t, np.float64))
                    spikes_rec[name][1].append(ids)
            counts += engine.payload[readout[1]:readout[2]] != 0
            i += 1
        state = engine.state_of(graph.readout_population)
        predictions[s] = _predict(graph, state, counts)
        readout_v[s] = readout_values(state)
        bar.update()
        if checkpoint is not None and i >= next_save and s + 1 < n_samples:
            checkpoint.save(s + 1, step_arrays, sample_arrays, spikes_rec, pe_record)
            next_save = (i // spec.checkpoint_every + 1) * spec.checkpoint_every
    bar.close()
    if checkpoint is not None:
        checkpoint.remove()

    latency_ns = np.zeros(n_steps)
    time_ns = np.zeros(n_steps)              # simulated time at the end of each step, samples back to back
    sample_latency_ns = np.zeros(n_samples)
    sample_start = 0.0
    for s in range(n_samples):
        window = slice(s * T, (s + 1) * T)
        step_lat, total = sample_timeline(chip_busy[window], link_bits[window], host_bits[window], sys_timing)
        latency_ns[s * T:(s + 1) * T] = step_lat
        time_ns[s * T:(s + 1) * T] = sample_start + np.cumsum(step_lat)
        sample_latency_ns[s] = total
        sample_start += total
    bounds_ns[:, BOUNDS.index("barrier")] = sys_timing.barrier_ns
    steps["bound"] = np.array([binding_bound(b) for b in bounds_ns], np.int64)
    static_w = chip.chip.static_power_w * len(used_chips)
    energy["static"] = static_w * latency_ns * 1e3 + idle_pj        # W x ns = 1e-9 J = 1e3 pJ
    readout_static_pj = static_w * sys_timing.readout_ns * 1e3
    step_energy_pj = sum(energy.values())
    sample_energy_pj = step_energy_pj.reshape(n_samples, T).sum(axis=1) + readout_static_pj

    labels = data.labels.astype(np.int64)
    reference = {}
    if spec.reference:
        ref_pred, ref_v, ref_events = run_reference(graph, data.inputs, T, spec.input.hold)
        exact = bool(np.array_equal(ref_v, readout_v)
                     and np.array_equal(ref_events.reshape(n_steps, len(pops)), layer_events))
        reference = {"reference_accuracy": _accuracy(ref_pred, labels), "matches_reference": exact}
    else:
        ref_pred = np.full(n_samples, -1)
    held = data.inputs
    if per_step and spec.input.hold and data.inputs.shape[1] < T:       # the float reference sees the held frame
        held = np.concatenate([data.inputs, np.repeat(data.inputs[:, -1:], T - data.inputs.shape[1], axis=1)], axis=1)
    float_summary, conversion = ({}, None) if setup.imported is None else compare_with_float(
        setup.imported, held, T, predictions, labels, layer_events.reshape(n_samples, T, len(pops)),
        [name for name, *_ in pops], readout_v if graph.readout_mode == "membrane" else None)

    on_chip = [p for p, (name, *_r) in enumerate(pops) if not engine.pops[p][3].on_host]
    sizes = np.array([hi - lo for _, lo, hi in pops], np.float64)
    activity = layer_events[:, on_chip].sum() / (sizes[on_chip].sum() * n_steps) if on_chip else 0.0
    wall = time.perf_counter() - wall_start
    summary = {
        "accuracy": _accuracy(predictions, labels),
        **reference,
        **float_summary,
        "energy_per_inference_j": float(sample_energy_pj.mean() * 1e-12),
        "latency_per_inference_s": float(sample_latency_ns.mean() * 1e-9),
        **{f"energy_{k}_per_inference_j": float(energy[k].sum() / n_samples * 1e-12)
           for k in ("synapse", "neuron", "network")},
        "energy_static_per_inference_j": float((energy["static"].sum() / n_samples + readout_static_pj) * 1e-12),
        "mean_sparsity": float(1.0 - activity),
        "cores_used": int(n_cores),
        "chips_used": int(len(used_chips)),
        "timesteps": int(T),
        "samples": int(n_samples),
        "synaptic_ops": int(steps["synops"].sum()),
        "inter_chip_bits_per_inference": float(link_bits.sum() / n_samples),
        "host_bits_per_inference": float(host_bits.sum() / n_samples),
        **{f"steps_bound_by_{name}": float(np.mean(steps["bound"] == k)) for k, name in enumerate(BOUNDS)},
        "overflows": int(steps["overflow"].sum()),
        **(pe_record.summary() if pe_record is not None else {}),
        "wall_time_s": float(wall),
    }
    if not write:
        return RunResult(summary, None)
    util = mapping.utilisation
    population_of_core = np.array([s.population for s in mapping.slices if s.core >= 0])
    groups: dict[str, dict[str, Any]] = {
        "steps": {**steps, "time_ns": time_ns, "latency_ns": latency_ns, "bound_ns": bounds_ns,
                  **(pe_record.step_groups() if pe_record is not None else {}),
                  **{f"energy_{k}_pj": v for k, v in energy.items()},
                  "@attrs": {"bound_codes": ", ".join(f"{k}: {name}" for k, name in enumerate(BOUNDS))}},
        "links": {"names": np.array(links.names if links.names else [], dtype=str), "bits": link_bits,
                  "host_bits": host_bits},
        "cores": {**cores, **(pe_record.core_groups() if pe_record is not None else {}),
                  "chip": mapping.core_chip, "x": mapping.core_x, "y": mapping.core_y,
                  "neurons": neurons_per_core.astype(np.int64),
                  "population": population_of_core,
                  "utilisation": {k: v / mapping.limits[k] for k, v in util.items()},
                  "@attrs": {"mesh_x": chip.chip.mesh.routers_x * chip.system.chips_x,
                             "mesh_y": chip.chip.mesh.routers_y * chip.system.chips_y,
                             "cores_per_router": chip.chip.mesh.cores_per_router,
                             **(pe_record.core_attrs() if pe_record is not None else {})}},
        "layers": {"names": np.array([name for name, *_ in pops]), "sizes": sizes.astype(np.int64),
                   "events": layer_events, "sparsity": 1.0 - layer_events / np.maximum(sizes, 1),
                   "overflow": layer_overflow},
        "samples": {"prediction": predictions, "label": labels, "reference_prediction": ref_pred,
                    "latency_s": sample_latency_ns * 1e-9, "energy_j": sample_energy_pj * 1e-12},
    }
    if conversion is not None:
        groups["conversion"] = conversion
    if spikes_rec:
        # SONATA: timestamps in ms of simulated time; here one timestep = 1 ms of model time, per sample.
        groups["spikes"] = {
            name: {"timestamps": np.concatenate(ts) if ts else np.zeros(0),
                   "node_ids": np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64),
                   "@attrs": {"sorting": "by_time", "units": "timestep"}}
            for name, (ts, ids) in spikes_rec.items()}
    return _finish(setup, summary, groups, {}, out_dir, write)


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
    summary = {"float_accuracy": _accuracy(float_pred, labels),
               "float_decisions_equal": float(np.mean(float_pred == predictions)),
               "float_spike_agreement": float(1 - diff.sum() / max(total.sum(), 1)),
               **({"float_readout_rel_error": float(np.abs(chip_membrane - run_f.readout).sum()
                                                    / max(np.abs(run_f.readout).sum(), 1e-300))}
                  if chip_membrane is not None else {}),
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


def _finish(setup: Setup, summary: dict[str, Any], groups: dict[str, Any], meta: dict[str, Any],
            out_dir: str | Path | None, write: bool) -> RunResult:
    """Write the trace (meta, summary, groups) unless ``write`` is False."""
    if not write:
        return RunResult(summary, None)
    spec = setup.scenario
    meta = {
        "neurosim_version": __version__, "scenario_name": spec.name, "scenario_yaml": setup.scenario_text,
        "chip_yaml": setup.chip_text, "model_yaml": setup.model_text,
        "model_name": setup.lm.name if setup.lm is not None else setup.graph.name, "chip_name": setup.chip.name,
        "weights_sha256": setup.lm.weights_sha256 if setup.lm is not None else setup.graph.weights_sha256,
        "seed": spec.seed,
        "overrides": repr(dict(spec.overrides)), "created": datetime.now(timezone.utc).isoformat(), **meta,
    }
    if isinstance(setup.chip.core, ArmPeSpec):
        meta |= {"dvfs": setup.chip.core.timing.dvfs, "timing_mode": setup.chip.core.timing.mode}
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    out = Path(out_dir) if out_dir is not None else Path("traces")
    path = write_trace(out / f"{spec.name}-{stamp}.h5", meta, summary, groups)
    return RunResult(summary, path)
