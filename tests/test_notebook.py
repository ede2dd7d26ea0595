"""The notebook in examples/ runs from top to bottom, and a run's records read as tables with
named dimensions."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")


def test_the_example_notebook_runs(monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(REPO)
    notebook = json.loads((REPO / "examples" / "notebook.ipynb").read_text())
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "examples/notebook.ipynb", "exec"), namespace)   # noqa: S102
    assert 0.5 < namespace["result"].summary["accuracy"] <= 1.0
    assert len(namespace["samples"]) == 20
    assert namespace["layers"]["events"].dims == ("step", "population")
    assert namespace["imported"].summary["float_decisions_equal"] >= 0.5


def test_a_result_not_written_holds_its_trace_as_tables():
    import neurosim
    from neurosim.traces.tables import to_dataframe, to_xarray

    result = neurosim.run({"name": "t", "chip": "loihi2", "model": "digits_snn",
                           "input": {"dataset": "digits", "samples": 3}, "timesteps": 4}, write=False)
    assert result.trace_path is None and result.trace is not None
    steps = to_dataframe(result.trace, "steps")
    assert len(steps) == 12 and "bound_ns[messages]" in steps.columns
    cores = to_dataframe(result.trace, "cores")
    assert cores.index.names == ["step", "core"]
    assert np.array_equal(cores["synops"].to_numpy().reshape(12, -1), result.trace["cores"]["synops"])
    layers = to_xarray(result.trace, "layers")
    assert list(layers.population.values) == list(result.trace["layers"]["names"])
    assert layers["events"].sum().item() == result.trace["layers"]["events"].sum()


def test_a_written_trace_reads_back_the_same_tables(tmp_path):
    import neurosim
    from neurosim.traces.tables import to_dataframe

    scenario = {"name": "t", "chip": "loihi2", "model": "digits_snn",
                "input": {"dataset": "digits", "samples": 2}, "timesteps": 4}
    memory = neurosim.run(scenario, write=False)
    written = neurosim.run(scenario, out_dir=tmp_path)
    again = neurosim.read_trace(written.trace_path)
    for group in ("steps", "samples", "cores", "layers"):
        pd.testing.assert_frame_equal(to_dataframe(memory.trace, group), to_dataframe(again, group), check_like=True)
