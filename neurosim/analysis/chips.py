"""A scenario run on each chip it names, and their comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from neurosim.analysis.figures import plot_chip_comparison
from neurosim.runs import RunResult, run
from neurosim.spec.scenario import load_scenario


def run_chips(scenario: str | Path | dict, *, out_dir: str | Path | None = None, seed: int | None = None,
              progress: bool = False, overrides: dict[str, Any] | None = None) -> tuple[list[RunResult], Path | None]:
    """Run a scenario that names several chips once per chip (each with its own trace, named
    ``<name>-<chip>``); returns the results in the scenario's order and a comparison plot of
    accuracy, energy and latency per inference (`neurosim.analysis.figures.plot_chip_comparison`)."""
    if isinstance(scenario, dict):
        data, base = dict(scenario), None
    else:
        path = Path(scenario)
        spec, _, _ = load_scenario(path)           # validates the file
        data, base = yaml.safe_load(path.read_text()), path
    chips = data["chip"] if isinstance(data["chip"], list) else [data["chip"]]
    results = []
    for chip in chips:
        one = {**data, "chip": chip, "name": f"{data['name']}-{Path(str(chip)).stem}"}
        if base is not None:                       # resolve relative paths as the scenario file would
            for key in ("chip",):
                candidate = base.parent / str(one[key])
                if not Path(str(one[key])).exists() and candidate.exists():
                    one[key] = str(candidate)
            if isinstance(one["model"], str) and not Path(one["model"]).exists() and (base.parent / one["model"]).exists():
                one["model"] = str(base.parent / one["model"])
        results.append(run(one, out_dir=out_dir, seed=seed, progress=progress, overrides=overrides))
    plot = None
    if all(r.trace_path is not None for r in results):
        plot = plot_chip_comparison([r.trace_path for r in results],
                                    Path(out_dir or "traces") / f"{data['name']}-compare.png")
    return results, plot
