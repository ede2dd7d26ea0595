"""A scenario run on each chip it names, and their comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from neurosim.analysis.figures import plot_chip_comparison
from neurosim.runs import RunResult, run
from neurosim.spec.scenario import load_scenario


def per_chip(scenario: str | Path | dict) -> tuple[str, list[dict[str, Any]], Path | None]:
    """A scenario that names several chips: its name, one scenario per chip (named
    ``<name>-<chip>``), and the folder their names are looked up from (the scenario file's)."""
    if isinstance(scenario, dict):
        data, base = dict(scenario), None
    else:
        path = Path(scenario)
        load_scenario(path)                        # validates the file
        data, base = yaml.safe_load(path.read_text()), path.parent
    chips = data["chip"] if isinstance(data["chip"], list) else [data["chip"]]
    return data["name"], [{**data, "chip": chip, "name": f"{data['name']}-{Path(str(chip)).stem}"}
                          for chip in chips], base


def run_chips(scenario: str | Path | dict, *, out_dir: str | Path | None = None, seed: int | None = None,
              progress: bool = False, overrides: dict[str, Any] | None = None,
              base_dir: str | Path | None = None) -> tuple[list[RunResult], Path | None]:
    """Run a scenario that names several chips once per chip (each with its own trace, named
    ``<name>-<chip>``); returns the results in the scenario's order and a comparison plot of
    accuracy, energy and latency per inference (`neurosim.analysis.figures.plot_chip_comparison`)."""
    name, scenarios, base = per_chip(scenario)
    results = [run(one, out_dir=out_dir, seed=seed, progress=progress, overrides=overrides,
                   base_dir=base or base_dir) for one in scenarios]
    plot = None
    if all(r.trace_path is not None for r in results):
        plot = plot_chip_comparison([r.trace_path for r in results],
                                    Path(out_dir or "traces") / f"{name}-compare.png")
    return results, plot
