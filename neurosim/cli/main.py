"""The `neurosim` command: run | plot | inspect | chips | models | validate.

User mistakes (a bad file, a wrong field, a model that does not fit) print one line
``error: <file>:<line>: <field>: <what was found and expected>`` and exit with status 2.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click

from neurosim.analysis.summary import summary_lines
from neurosim.analysis.units import si
from neurosim.errors import Interrupted, UserError
from neurosim.spec.places import find

DEFAULT_SCENARIO = "quickstart"
PATH = click.Path(dir_okay=True, file_okay=True)      # completes paths in the shell; names are looked up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurosim")
@click.option("-v", "--verbose", count=True, help="Say more: where each file was found, how the model was mapped "
                                                   "(-vv: debugging detail).")
@click.option("-q", "--quiet", is_flag=True, help="Say only errors (no warnings).")
def cli(verbose: int, quiet: bool) -> None:
    """Simulate models on neuromorphic chips, spike by spike, and write HDF5 traces.

    Chips, models and scenarios are files or names: a name is looked up beside the scenario,
    in the working directory's chips/, models/ and scenarios/, then among those that ship with
    neurosim.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr, force=True)


def scenario_path(name: str) -> Path:
    """A scenario argument: a file, or a name in scenarios/ (here, or shipped)."""
    return find("scenario", name, file=name, field="SCENARIO")


def _with_fields(scenario: Path, chip: str | None, settings: tuple[str, ...]) -> dict | None:
    """The scenario with ``--chip`` and ``--set`` applied, as a dict; None when neither is given."""
    if chip is None and not settings:
        return None
    from neurosim.spec.scenario import set_fields
    from neurosim.spec.yamlio import load_yaml

    data, _, _ = load_yaml(scenario)
    if not isinstance(data, dict):
        raise UserError("expected a mapping of scenario fields", file=str(scenario))
    values = _parse_pairs(settings, "--set", "input.samples=10")
    if chip is not None:
        values = {"chip": chip, **values}
    return set_fields(data, values)


@cli.command()
@click.argument("scenario", default=DEFAULT_SCENARIO, required=False, type=PATH)
@click.option("--out", "out_dir", default="traces", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the trace (checked before the run).")
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@click.option("--chip", default=None, metavar="NAME",
              help="Run on this chip instead of the scenario's (a chip file or a name in chips/).")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="Set any scenario field (repeatable), e.g. input.samples=10, timesteps=8, "
                   "mapping.placement=spread, overrides.core.energy_pj.synop=5.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--override", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Replace a chip field, as the scenario's overrides do (repeatable), e.g. system.chips_x=4.")
@click.option("--resume", is_flag=True,
              help="Continue from the last checkpoint of this run (the scenario's checkpoint_every).")
def run(scenario: str, out_dir: str, seed: int | None, chip: str | None, settings: tuple[str, ...],
        no_progress: bool, overrides: tuple[str, ...], resume: bool) -> None:
    """Run SCENARIO (a file or a name in scenarios/; default: the quickstart) and print its summary."""
    from neurosim.runs import run as run_scenario

    path = scenario_path(scenario)
    changed = _with_fields(path, chip, settings)
    target = changed if changed is not None else path
    progress = not no_progress and sys.stderr.isatty()
    if _names_several_chips(target):
        _run_several(target, path, out_dir, seed, progress, _parse_overrides(overrides))
        return
    result = run_scenario(target, out_dir=out_dir, seed=seed, progress=progress,
                          overrides=_parse_overrides(overrides), resume=resume, base_dir=path.parent)
    for line in summary_lines(result.summary, scenario=path, trace=result.trace_path):
        click.echo(line)


def _names_several_chips(scenario: Path | dict) -> bool:
    if isinstance(scenario, dict):
        return isinstance(scenario.get("chip"), list)
    from neurosim.spec.yamlio import load_yaml

    try:
        data, _, _ = load_yaml(scenario)
    except UserError:
        return False                    # the run reports what is wrong with the file
    return isinstance(data, dict) and isinstance(data.get("chip"), list)


def _run_several(scenario: Path | dict, path: Path, out_dir, seed, progress: bool, overrides: dict) -> None:
    """Run a scenario on each of its chips and print them side by side."""
    from neurosim.analysis.chips import run_chips
    from neurosim.analysis.compare import from_summary
    from neurosim.traces.trace import read_summary

    results, plot = run_chips(scenario, out_dir=out_dir, seed=seed, progress=progress, overrides=overrides,
                              base_dir=path.parent)
    rows = [from_summary("", str(read_summary(r.trace_path).meta.get("chip_name", "?")), "", r.summary)
            for r in results]
    per = rows[0].per
    click.echo(f"scenario        {path}")
    click.echo(f"{'chip':<22} {'accuracy':>9} {'energy/' + per:>17} {'latency/' + per:>18} {'cores':>6}  trace")
    for r, row in zip(results, rows):
        acc = f"{row.accuracy:.2%}" if row.accuracy == row.accuracy else "n/a"
        click.echo(f"{row.chip:<22} {acc:>9} {si(row.energy_j, 'J'):>17} "
                   f"{si(row.time_s, 's'):>18} {r.summary['cores_used']:>6}  {r.trace_path}")
    if plot is not None:
        click.echo(f"plot            {plot}")


def _parse_pairs(items: tuple[str, ...], option: str, example: str) -> dict:
    """``FIELD=VALUE`` pairs; each value is read as YAML (numbers, booleans, strings)."""
    import yaml

    out = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep or not field.strip():
            raise UserError(f"{option} {item!r}: expected FIELD=VALUE, e.g. {example}")
        try:
            out[field.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"{option} {item!r}: the value is not a YAML value") from None
    return out


def _parse_overrides(items: tuple[str, ...]) -> dict:
    return _parse_pairs(items, "--override", "system.chips_x=4")


@cli.command()
@click.argument("traces", nargs=-1, required=True)
@click.option("--out", "out_dir", default=None,
              help="Directory for the figures (default: a folder beside each trace, named after it).")
@click.option("--format", "fmt", type=click.Choice(["png", "pdf", "svg"]), default="png", show_default=True,
              help="The figures' file format.")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True,
              help="The sample whose timesteps and spikes are drawn (latency per timestep, spike raster).")
@click.option("--scaling", is_flag=True,
              help="One figure across the traces (one model on systems of different sizes): energy and latency "
                   "against chip count, written to --out (default: traces/scaling).")
@click.option("--dvfs", is_flag=True,
              help="One figure across the traces (one model on ARM PEs at different DVFS settings): energy and "
                   "time per token or inference per setting, written to --out (default: traces/dvfs).")
def plot(traces: tuple[str, ...], out_dir: str | None, fmt: str, sample: int, scaling: bool, dvfs: bool) -> None:
    """Write the figures of each TRACE as PNG, PDF or SVG files."""
    from neurosim.analysis.figures import plot_dvfs, plot_scaling, plot_trace

    if dvfs:
        click.echo(str(plot_dvfs(list(traces), out_dir or Path(traces[0]).parent / "dvfs", fmt)))
        return
    if scaling:
        click.echo(str(plot_scaling(list(traces), out_dir or Path(traces[0]).parent / "scaling", fmt)))
        return
    for trace in traces:
        target = Path(out_dir) / Path(trace).stem if out_dir and len(traces) > 1 else out_dir
        for path in plot_trace(trace, target, fmt=fmt, sample=sample):
            click.echo(str(path))


@cli.command()
@click.argument("sweep_file")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler (default: a local cluster).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="Workers of the local cluster.")
@click.option("--no-progress", is_flag=True, help="Do not show a progress bar.")
def sweep(sweep_file: str, scheduler: str | None, workers: int, no_progress: bool) -> None:
    """Run every point of SWEEP_FILE on Dask and gather their summaries in one table."""
    from neurosim.sweep import run_sweep

    result = run_sweep(sweep_file, scheduler=scheduler, workers=workers,
                       progress=not no_progress and sys.stderr.isatty())
    click.echo(f"points          {result.done} run, {result.failed} failed, {result.skipped} already done")
    click.echo(f"table           {result.table_csv}  {result.table_h5}")
    if result.failed:
        click.echo("failed points have status 'error' and their error in the table")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", "out_dir", default=None,
              help="Directory for compare.png and pareto.png (default: a folder named compare beside the first).")
@click.option("--format", "fmt", type=click.Choice(["png", "pdf", "svg"]), default="png", show_default=True,
              help="The figures' file format.")
def compare(paths: tuple[str, ...], out_dir: str | None, fmt: str) -> None:
    """Compare runs (traces, and sweep tables: .csv) in a table and plots, with their Pareto front
    of energy, time and accuracy."""
    from neurosim.analysis.compare import load_rows, plot, table

    rows = load_rows(list(paths))
    click.echo(table(rows))
    for path in plot(rows, out_dir or Path(paths[0]).parent / "compare", fmt):
        click.echo(str(path))


@cli.command()
@click.argument("trace")
@click.option("--out", default=None, help="The HTML file (default: the trace's path with .html).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png", show_default=True,
              help="How the figures are embedded in the page.")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True,
              help="The sample whose timesteps and spikes are drawn.")
def report(trace: str, out: str | None, fmt: str, sample: int) -> None:
    """Write one self-contained HTML page of TRACE: summary, verdicts, mapping, per-sample
    distributions, generated text, figures, and the scenario, chip and model files."""
    from neurosim.analysis.report import build_report

    click.echo(str(build_report(trace, out, fmt=fmt, sample=sample)))


@cli.command(name="export")
@click.argument("model", type=PATH)
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--dt", default=1.0, show_default=True, type=float,
              help="The time step the NIR model's time constants are given for.")
def export(model: str, out: str, dt: float) -> None:
    """Write MODEL (a model folder or a name in models/) as a NIR graph to OUT (.nir)."""
    from neurosim.zoo.loader import LanguageModel, load_model
    from neurosim.interop.nir_export import export_nir

    from neurosim.spec.yamlio import load_yaml

    folder = find("model", model, file=model, field="MODEL")
    header, _, _ = load_yaml(folder / "model.yaml")
    if isinstance(header, dict) and str(header.get("kind", "")).endswith("_lm"):    # refused before its weights load
        raise UserError(f"a language model ({header['kind']}), whose programs no NIR primitive expresses; "
                        f"expected a spiking graph", file=str(folder / "model.yaml"), field="kind")
    graph, _ = load_model(folder)
    if isinstance(graph, LanguageModel):
        raise UserError(f"{graph.name} is a language model, whose programs no NIR primitive expresses; "
                        f"expected a spiking graph", file=model)
    try:
        click.echo(str(export_nir(graph, out, dt)))
    except UserError as err:
        raise UserError(err.message, file=err.file or model, field=err.field) from None


@cli.command()
@click.argument("path", type=PATH)
def inspect(path: str) -> None:
    """Show a chip's capacity and costs, a model's populations, or a scenario's per-core utilisation
    (PATH: a file, or the name of a chip, model or scenario)."""
    from neurosim.cli.inspect import describe

    click.echo(describe(path))


def _listed(directory: str | None, kind: str) -> Path:
    """The folder to list: the one given, else ./chips (./models) if there is one, else the shipped one."""
    from neurosim.spec.places import FOLDERS, shipped_folder

    if directory is not None:
        return Path(directory)
    here = Path(FOLDERS[kind])
    shipped = shipped_folder(kind)
    if here.is_dir() or shipped is None:
        return here
    return shipped


@cli.command()
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False),
              help="The folder to list (default: ./chips, else the chips that ship with neurosim).")
def chips(directory: str | None) -> None:
    """List the chip specs."""
    from neurosim.cli.inspect import list_chips

    click.echo(list_chips(_listed(directory, "chip")))


@cli.command()
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False),
              help="The folder to list (default: ./models, else the models that ship with neurosim).")
def models(directory: str | None) -> None:
    """List the models."""
    from neurosim.cli.inspect import list_models

    click.echo(list_models(_listed(directory, "model")))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=PATH)
def validate(paths: tuple[str, ...]) -> None:
    """Check chip, scenario, sweep, model, NIR and netx files (or names) without running anything.

    Every file is checked and reported on a line of its own; the exit status is 2 if any was wrong."""
    from neurosim.cli.inspect import validate_path

    failed = 0
    for path in paths:
        try:
            click.echo(f"{path}: ok ({validate_path(path)})")
        except UserError as err:
            failed += 1
            click.echo(f"error: {err}", err=True)
    if failed:
        raise SystemExit(2)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(standalone_mode=False, prog_name="neurosim")
    except UserError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Interrupted as err:
        click.echo(f"interrupted at {err.where}; no trace written", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted; no trace written", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except MemoryError:
        click.echo("error: the run needs more memory than this machine has; nothing was written", err=True)
        sys.exit(2)
    except SystemError as err:           # a signal that arrived inside a compiled loop
        if isinstance(err.__cause__ or err.__context__, (KeyboardInterrupt, SystemExit)):
            click.echo("interrupted; no trace written", err=True)
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
