"""Run a scenario end to end: specs -> graph -> mapping -> engine -> system -> trace.

`run` sets the scenario up (`neurosim.runs.setup`), hands it to its kind of run (a spiking
graph on cores, `neurosim.runs.spiking`, or a spiking graph or a language model on a ternary
pipeline, `neurosim.runs.pipeline`; a language model, `neurosim.runs.language`, or token by
token from the host on ARM PEs, `neurosim.runs.arm_language`) and writes what that gives as a trace.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from neurosim import __version__
from neurosim.cores.neurocore import programs_group
from neurosim.errors import Interrupted, UserError
from neurosim.mapping.table import placement_group
from neurosim.runs.arm_language import run_host_loop, uses_host_loop
from neurosim.runs.language import run_language
from neurosim.runs.pipeline import run_pipeline_graph, run_pipeline_language
from neurosim.runs.progress import PROGRESS, phase
from neurosim.runs.setup import RunResult, Setup, load_inputs, prepare, sample_timesteps
from neurosim.runs.spiking import run_spiking
from neurosim.spec.chip import ArmPeSpec, NeurocoreSpec
from neurosim.traces.trace import Trace, write_trace


def run(scenario: str | Path | dict, *, out_dir: str | Path | None = None, seed: int | None = None,
        progress: bool = False, write: bool = True, overrides: dict[str, Any] | None = None,
        resume: bool = False, base_dir: str | Path | None = None) -> RunResult:
    """Run a scenario (a YAML path or a dict of its contents) and write its trace.

    ``seed`` and ``overrides`` (chip fields, as in the scenario's ``overrides``) change the
    scenario for this run; ``base_dir`` is where the names in a dict scenario are looked up first
    (`neurosim.spec.places`). The trace's folder is checked (made if need be, writable, with room)
    before anything runs. Returns the summary and the trace path (None when ``write`` is False).
    Interrupted (Ctrl-C), it raises `neurosim.errors.Interrupted` saying where it was, and
    writes nothing. With the scenario's ``checkpoint_every`` a run saves its progress every so
    many timesteps (at the end of a sample; `neurosim.runs.checkpoint.Checkpoint`), and with
    ``resume`` it continues from the last save of the same scenario, chip, model, seed and
    overrides, to the same trace as a run that was never stopped.
    """
    PROGRESS.at = "loading the scenario"
    if write:
        check_out_dir(Path(out_dir) if out_dir is not None else Path("traces"))
    PROGRESS.shown = progress            # its phases show on the terminal too
    try:
        return _run(scenario, out_dir=out_dir, seed=seed, progress=progress, write=write, overrides=overrides,
                    resume=resume, base_dir=base_dir)
    except BaseException as err:
        signal = interruption_in(err)
        if isinstance(signal, KeyboardInterrupt):
            raise Interrupted(PROGRESS.at) from None
        if isinstance(signal, SystemExit) and signal is not err:
            raise signal from None
        raise
    finally:
        PROGRESS.shown = False


def interruption_in(err: BaseException) -> BaseException | None:
    """The Ctrl-C (`KeyboardInterrupt`) or SIGTERM (`SystemExit`) behind ``err``: itself, or one that
    a compiled loop wrapped into another error when the signal arrived inside it."""
    seen = 0
    while err is not None and seen < 32:
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def _run(scenario: str | Path | dict, *, out_dir: str | Path | None, seed: int | None, progress: bool,
         write: bool, overrides: dict[str, Any] | None, resume: bool = False,
         base_dir: str | Path | None = None) -> RunResult:
    wall_start = time.perf_counter()
    setup = prepare(scenario, seed, overrides, base_dir)
    meta: dict[str, Any] = {}
    if setup.lm is not None:
        with phase("the run", shown=False):         # its own phases show themselves
            summary, groups, meta = (run_host_loop(setup, progress) if uses_host_loop(setup)
                                     else run_language(setup, progress, resume) if setup.language is not None
                                     else run_pipeline_language(setup))
        if setup.baselines:
            from neurosim.cores.gpu_roofline import baseline_summary

            lang = setup.scenario.language
            summary |= baseline_summary(setup.baselines, setup.lm.model,
                                        lang.report_prompt_tokens or lang.prompt_tokens,
                                        summary["energy_per_token_j"], summary["tokens_per_s"])
    else:
        data = load_inputs(setup)
        timesteps = sample_timesteps(setup, data)
        with phase("the run", shown=False):         # a bar over the samples shows it
            summary, groups = (run_pipeline_graph(setup, data, timesteps) if setup.mapping is None  # a ternary pipeline
                               else run_spiking(setup, data, timesteps, progress, resume))
    summary["wall_time_s"] = float(time.perf_counter() - wall_start)
    return _finish(setup, summary, groups, meta, out_dir, write)


MIN_FREE_BYTES = 16 << 20       # room for a small trace and its temporary copy


def check_out_dir(out: Path) -> None:
    """Refuse, before a run, a trace folder that cannot be made or written to, or has no room."""
    def fail(why: str) -> UserError:
        return UserError(f"the trace folder {str(out)!r} {why}", field="--out")

    if out.exists() and not out.is_dir():
        raise fail("is a file, expected a folder")
    made = [p for p in (out, *out.parents) if not p.exists()]    # made for the probe, then removed again:
    try:                                                         # a run that fails leaves nothing behind
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".neurosim-probe-", delete=True)
        probe.close()
        free = shutil.disk_usage(out).free
    except OSError as err:
        raise fail(f"cannot be written to ({err.strerror or err})") from None
    finally:
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break
    if free < MIN_FREE_BYTES:
        raise fail(f"has {free / 2**20:.1f} MiB free, expected at least {MIN_FREE_BYTES >> 20} MiB for the trace")


def _finish(setup: Setup, summary: dict[str, Any], groups: dict[str, Any], meta: dict[str, Any],
            out_dir: str | Path | None, write: bool) -> RunResult:
    """Write the trace (meta, summary, groups) unless ``write`` is False; the result holds the
    trace in memory when it is not written."""
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
    if setup.mapping is not None:
        groups = {**groups, "mapping": placement_group(setup.mapping)}
    if setup.mapping is not None and isinstance(setup.chip.core, NeurocoreSpec):
        groups = {**groups, "programs": programs_group(setup.chip, setup.graph)}
    if not write:
        attrs = {name: dict(content.get("@attrs", {})) for name, content in groups.items()}
        return RunResult(summary, None, Trace(None, meta, summary, groups, attrs))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    out = Path(out_dir) if out_dir is not None else Path("traces")
    with phase("writing the trace"):
        path = write_trace(out / f"{spec.name}-{stamp}.h5", meta, summary, groups)
    return RunResult(summary, path)
