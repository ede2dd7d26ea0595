"""A scenario set up for a run: its chip and model loaded, checked and mapped (`prepare`), and its
inputs (`load_inputs`). Nothing here simulates; every mistake a user can fix is reported as a
`UserError` at the scenario's field before a run starts."""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from neurosim import datasets
from neurosim.errors import UserError
from neurosim.graph.graph import Graph
from neurosim.interop.imported import ImportedModel
from neurosim.zoo.knn import KnnGraph
from neurosim.zoo.loader import LanguageModel, load_model, sha256_of
from neurosim.zoo.language import LoweredLanguageModel, lower_language_model
from neurosim.mapping.mapper import Mapping, map_graph
from neurosim.mapping.placement import Where, check_against_chip
from neurosim.runs.progress import phase
from neurosim.spec.chip import (ArmPeSpec, ChipFile, GpuRooflineSpec, TernaryPipelineSpec, chip_from_dict, load_chip,
                                load_chip_data)
from neurosim.spec.places import find
from neurosim.spec.scenario import (NetxModelSpec, NirModelSpec, ScenarioFile, apply_overrides, load_scenario,
                                    override_path, scenario_from_dict)
from neurosim.spec.yamlio import LineMap
from neurosim.traces.tables import summary_html
from neurosim.traces.trace import Trace, read_trace


log = logging.getLogger("neurosim")


@dataclass
class RunResult:
    """What `run` returns: the summary attributes, where the trace was written, and the trace
    itself (`trace`: in memory when nothing was written, else read from its file when asked)."""

    summary: dict[str, Any]
    trace_path: Path | None
    records: Trace | None = field(default=None, repr=False)

    @property
    def trace(self) -> Trace | None:
        """The run's trace: its meta, summary and groups (`Trace.frame` and `Trace.dataset` give a
        group as a pandas DataFrame or an xarray Dataset)."""
        if self.records is None and self.trace_path is not None:
            self.records = read_trace(self.trace_path)
        return self.records

    def _repr_html_(self) -> str:
        """The summary as a table, each value in its unit, as a notebook shows the result."""
        return summary_html(self.summary, self.trace_path)


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
    beside: Path | None = None           # the folder names in the scenario are looked up from first


def _find(kind: str, name: str, beside: Path | None, field: str, scenario_file: str,
          lines: LineMap | None, key: tuple[str, ...] | None = None) -> Path:
    """``name`` looked up as `neurosim.spec.places` says; an error at the scenario's field if nowhere."""
    return find(kind, name, beside, file=scenario_file, field=field,
                line=lines.find(key or (field,)) if lines is not None else None)


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


def prepare(scenario: str | Path | dict, seed: int | None = None, overrides: dict[str, Any] | None = None,
            base_dir: str | Path | None = None) -> Setup:
    """Load, validate and map a scenario without running it; ``overrides`` add to (and win
    over) the scenario's own. The chip, model and files a scenario names are found beside it
    (``base_dir`` for a scenario given as a dict), in the working directory, then among the
    shipped ones (`neurosim.spec.places`). A dict scenario's model may be a `nir.NIRGraph` built
    in Python (``model: graph`` or ``model: {nir: graph, dt: ..., reset: ...}``)."""
    with nir_objects_as_files(scenario) as scenario:
        return _prepare(scenario, seed, overrides, base_dir)


@contextmanager
def nir_objects_as_files(scenario: str | Path | dict) -> Iterator[str | Path | dict]:
    """The scenario with an in-memory `nir.NIRGraph` model written to a temporary NIR file (removed
    afterwards), so that it is imported, checked and recorded as a file would be."""
    model = scenario.get("model") if isinstance(scenario, dict) else None
    graph = model.get("nir") if isinstance(model, dict) else model
    if isinstance(scenario, dict) and type(graph).__name__ == "NIRGraph":
        import nir

        with tempfile.TemporaryDirectory(prefix="neurosim-nir-") as tmp:
            path = Path(tmp) / "graph.nir"
            nir.write(str(path), graph)
            spec = {**model, "nir": str(path)} if isinstance(model, dict) else {"nir": str(path)}
            yield {**scenario, "model": spec}
        return
    yield scenario


def _prepare(scenario: str | Path | dict, seed: int | None, overrides: dict[str, Any] | None,
             base_dir: str | Path | None) -> Setup:
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
    beside = path.parent if path is not None else (Path(base_dir) if base_dir is not None else None)
    scenario_file = str(path or "<scenario>")
    _require(isinstance(spec.chip, str), "several chips: run them with neurosim run (or neurosim.run_chips), "
                                         "which compares them", "chip", scenario_file, lines)
    chip_path = _find("chip", spec.chip, beside, "chip", scenario_file, lines)
    chip, chip_text = load_chip_with_overrides(chip_path, spec.overrides, scenario_file, lines)
    check_against_chip(spec.mapping, chip, Where(scenario_file, lines))      # before the model is loaded
    _require(not isinstance(chip.core, GpuRooflineSpec), f"{chip.name} is a GPU roofline, a baseline: expected a "
             f"neuromorphic chip here, and the GPU in the scenario's baselines", "chip", scenario_file, lines)
    baselines = []
    for k, name in enumerate(spec.baselines):
        gpu, _ = load_chip(_find("chip", name, beside, f"baselines.{k}", scenario_file, lines, ("baselines",)))
        if not isinstance(gpu.core, GpuRooflineSpec):
            raise UserError(f"{name!r} is a {gpu.chip.core_kind} chip, expected a gpu_roofline chip",
                            file=scenario_file, field=f"baselines.{k}")
        baselines.append(gpu)
    pipeline = isinstance(chip.core, TernaryPipelineSpec)
    if not isinstance(spec.model, str):
        with phase("importing the model"):
            imported = import_model(spec.model, beside, scenario_file, lines)
        _require(not pipeline, f"a {chip.chip.core_kind} chip runs models from neurosim's model folders; "
                               f"imported files run on chips of cores", "model", scenario_file, lines)
        mapping = _map(imported.graph, chip, spec, Where(scenario_file, lines))
        import yaml

        model_text = yaml.safe_dump(spec.model.model_dump(), sort_keys=False)
        return Setup(spec, text, chip, chip_text, imported.graph, model_text, mapping, scenario_file, lines,
                     beside=beside, imported=imported)
    model_dir = _find("model", spec.model, beside, "model", scenario_file, lines)
    with phase("loading the model"):
        model, model_text = load_model(model_dir)
    if isinstance(model, LanguageModel):
        _require(spec.language is not None, "a language model is driven by a language section "
                                             "(prompt_tokens, generate_tokens)", "language", scenario_file, lines)
        if pipeline:
            _require(model.kind == "matmulfree_lm", f"a {chip.chip.core_kind} chip runs MatMul-free language "
                                                      f"models; {model.name!r} is not one", "model", scenario_file,
                     lines)
            return Setup(spec, text, chip, chip_text, None, model_text, None, scenario_file, lines, lm=model,
                         baselines=baselines, beside=beside)
        language = lower_language_model(model, software_neurons=isinstance(chip.core, ArmPeSpec))
        mapping = _map(language.graph, chip, spec, Where(scenario_file, lines))
        return Setup(spec, text, chip, chip_text, language.graph, model_text, mapping, scenario_file, lines,
                     lm=model, language=language, baselines=baselines, beside=beside)
    if pipeline:         # the pipeline computes the graph layer by layer: no cores to map onto
        from neurosim.programs import check_populations, check_projections

        _require(not isinstance(model, KnnGraph), f"a {chip.chip.core_kind} chip computes a graph layer by layer; "
                 f"a nearest-neighbour search runs on chips of cores", "model", scenario_file, lines)

        check_populations(model)
        check_projections(model)
        return Setup(spec, text, chip, chip_text, model, model_text, None, scenario_file, lines, beside=beside)
    mapping = _map(model, chip, spec, Where(scenario_file, lines))
    return Setup(spec, text, chip, chip_text, model, model_text, mapping, scenario_file, lines, beside=beside)


def _map(graph: Graph, chip: ChipFile, spec: ScenarioFile, where: Where) -> Mapping:
    """The graph placed on the chip's cores as the scenario's mapping section says."""
    with phase("mapping"):
        mapping = map_graph(graph, chip, spec.mapping, scenario_file=where.file, lines=where.lines)
    log.info("%s: %d populations, %d neurons, %d synapses on %d cores of %d chip(s)", graph.name,
             len(graph.populations), graph.n_neurons, graph.n_synapses, mapping.n_cores, mapping.chips_used)
    return mapping


def import_model(spec: NirModelSpec | NetxModelSpec, beside: Path | None, scenario_file: str,
                 lines: LineMap | None) -> ImportedModel:
    """A NIR or netx file named by a scenario's model, found as `neurosim.spec.places` says."""
    fmt = "nir" if isinstance(spec, NirModelSpec) else "netx"
    found = _find("file", getattr(spec, fmt), beside, f"model.{fmt}", scenario_file, lines, ("model", fmt))
    if fmt == "nir":
        from neurosim.interop.nir_import import load_nir

        imported = load_nir(found, dt=spec.dt, reset=spec.reset, input_encoding=spec.input)
    else:
        from neurosim.interop.netx_import import load_netx

        imported = load_netx(found, reset_interval=spec.reset_interval, reset_offset=spec.reset_offset)
    imported.graph.weights_sha256 = sha256_of(found)
    return imported


def _require(condition: bool, message: str, field: str, scenario_file: str, lines: LineMap | None) -> None:
    """A `UserError` at the scenario's ``field`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message, file=scenario_file, field=field, line=lines.find((field,)) if lines else None)


def load_inputs(setup: Setup) -> datasets.Dataset:
    """The scenario's inputs: ``[samples, inputs]`` (the same every step) or ``[samples, timesteps, inputs]``."""
    spec, graph = setup.scenario, setup.graph

    def fail(message: str, *key: str) -> UserError:
        line = setup.lines.find(key) if setup.lines is not None else None
        return UserError(message, file=setup.scenario_file, line=line, field=".".join(key))

    size = graph.populations[graph.input_population].size
    if isinstance(graph, KnnGraph):         # queries drawn with the model's patterns (`neurosim.zoo.knn`)
        if spec.input.dataset != graph.dataset:
            raise fail(f"a nearest-neighbour search reads queries drawn with its patterns: expected dataset "
                       f"{graph.dataset!r}", "input", "dataset")
        return graph.queries(spec.input.samples or datasets.RANDOM_SAMPLES, spec.seed)
    if spec.input.file is not None:
        path = _find("file", spec.input.file, setup.beside, "input.file", setup.scenario_file, setup.lines,
                     ("input", "file"))
        labels = None
        if spec.input.labels is not None:
            labels = _find("file", spec.input.labels, setup.beside, "input.labels", setup.scenario_file,
                           setup.lines, ("input", "labels"))
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
        pop = graph.populations[graph.input_population]
        if pop.kind == "graded_source":
            problem = datasets.outside_payload(data.inputs, int(pop.params.get("payload_bits", 24)))
            if problem:
                raise fail(f"{path} {problem}", "input", "file")
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


def sample_timesteps(setup: Setup, data: datasets.Dataset) -> int:
    """Timesteps per sample: the scenario's, else those of per-step inputs."""
    per_step = data.inputs.ndim == 3
    timesteps = setup.scenario.timesteps or (data.inputs.shape[1] if per_step else None)
    if timesteps is None:
        raise UserError("expected timesteps per sample", file=setup.scenario_file, field="timesteps")
    return timesteps
