"""The HDF5 trace: a complete file or none, read back as written."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from helpers import scenario_dict
from neurosim.errors import UserError
from neurosim.traces.trace import read_trace, write_trace

META = {"neurosim_version": "0.1.0", "scenario_yaml": "name: t\n", "seed": 3, "missing": None}
SUMMARY = {"accuracy": 0.5, "matches_reference": True, "cores_used": 2}


def _groups():
    rng = np.random.default_rng(0)
    return {
        "steps": {"latency_ns": rng.random(7), "events": np.arange(7), "@attrs": {"bound_codes": "0: a, 1: b"}},
        "cores": {"synops": rng.integers(0, 100, (300, 20)), "utilisation": {"neurons": rng.random(20)},
                  "population": np.array(["hid", "out"])},
        "layers": {"names": np.array(["inp", "hid"]), "events": rng.integers(0, 5, (7, 2))},
        "samples": {"prediction": np.array([1, 2]), "label": np.array([1, 3])},
        "spikes": {"hid": {"timestamps": np.array([0.0, 1.0]), "node_ids": np.array([4, 2]),
                           "@attrs": {"sorting": "by_time"}}},
    }


def test_round_trip(tmp_path):
    """Attributes, datasets, nested groups, strings and group attributes come back unchanged."""
    groups = _groups()
    path = write_trace(tmp_path / "sub" / "run.h5", META, SUMMARY, groups)
    assert path == tmp_path / "sub" / "run.h5" and path.is_file()
    trace = read_trace(path)
    assert trace.meta == {**META, "missing": "none"}
    assert trace.summary == SUMMARY and type(trace.summary["matches_reference"]) is bool
    for name, content in groups.items():
        for key, value in content.items():
            if key == "@attrs":
                assert trace.attrs[name] == value
            elif isinstance(value, dict):
                for k, v in value.items():
                    if k != "@attrs":
                        np.testing.assert_array_equal(trace[name][key][k], v)
            else:
                np.testing.assert_array_equal(trace[name][key], value)
    assert trace["layers"]["names"].tolist() == ["inp", "hid"]
    with h5py.File(path) as h5:
        assert h5["cores/synops"].compression == "gzip"       # large 2D datasets are compressed


def test_failed_write_leaves_nothing(tmp_path):
    """An exception while writing leaves neither the trace nor its .partial file."""
    groups = _groups()
    groups["samples"]["bad"] = np.array([object(), object()])     # h5py cannot store Python objects
    target = tmp_path / "run.h5"
    with pytest.raises(TypeError):
        write_trace(target, META, SUMMARY, groups)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_an_older_trace(tmp_path):
    """A failed write over an existing trace leaves the old one intact."""
    target = write_trace(tmp_path / "run.h5", META, SUMMARY, _groups())
    before = target.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        class Interrupt(dict):
            def items(self):
                raise KeyboardInterrupt
        write_trace(target, META, Interrupt(), _groups())
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_read_rejects_missing_foreign_and_truncated_files(tmp_path):
    with pytest.raises(UserError, match="trace file not found"):
        read_trace(tmp_path / "none.h5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(UserError, match="not a neurosim trace"):
        read_trace(foreign)
    good = write_trace(tmp_path / "good.h5", META, SUMMARY, _groups())
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(UserError) as err:
        read_trace(truncated)
    assert err.value.file == str(truncated)


def test_run_summary_attribute_names(tmp_path, tiny_model, fake_dataset):
    """A run's /summary holds the figures users ask for, with their units in the names."""
    from neurosim.runs import run

    result = run(scenario_dict(tiny_model), out_dir=tmp_path / "traces")
    summary = read_trace(result.trace_path).summary
    for name in ("accuracy", "energy_per_inference_j", "latency_per_inference_s", "mean_sparsity", "cores_used",
                 "chips_used", "timesteps", "wall_time_s", "matches_reference", "reference_accuracy"):
        assert name in summary, name
    assert summary == pytest.approx(result.summary)
    assert 0 <= summary["accuracy"] <= 1 and 0 <= summary["mean_sparsity"] <= 1
    assert summary["energy_per_inference_j"] > 0 and summary["latency_per_inference_s"] > 0
    assert (summary["cores_used"], summary["chips_used"], summary["timesteps"]) == (2, 1, 5)
    assert [p.name for p in (tmp_path / "traces").iterdir()] == [result.trace_path.name]


# ---------------------------------------------------------------------------------------------
# named dimensions: netCDF readers (xarray) see the axes the trace's layout gives


def test_netcdf_readers_name_every_axis_of_the_main_groups(tmp_path):
    """xarray opens each group with the dimension names of `traces/README.md` (no ``phony_dim``),
    the values as written; the dimensions add no dataset to what `read_trace` gives."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    rng = np.random.default_rng(1)
    n = 5                         # as many steps as cores, populations and links: the names decide
    groups = {"steps": {"step": np.arange(n) % 2, "latency_ns": rng.random(n), "bound": np.zeros(n, np.int64),
                        "bound_ns": rng.random((n, 7))},
              "cores": {"synops": rng.integers(0, 9, (n, n)), "chip": np.zeros(n, np.int32),
                        "population": np.array(list("abcde")), "utilisation": {"neurons": rng.random(n)}},
              "layers": {"names": np.array(list("vwxyz")), "sizes": np.arange(n), "events": rng.integers(0, 9, (n, n))},
              "links": {"names": np.array([], dtype=str), "bits": np.zeros((n, 0)), "host_bits": rng.random(n)},
              "samples": {"prediction": np.arange(3), "latency_s": rng.random(3)},
              "tokens": {"input": np.arange(4), "phase": np.array([0, 0, 1, 1])},
              "conversion": {"populations": np.array(["a", "b"]), "chip_events": rng.integers(0, 9, (3, 2)),
                             "float_prediction": np.arange(3), "errors": {"name": np.array(["a", "b", "c"])}}}
    path = write_trace(tmp_path / "run.h5", META, SUMMARY, groups)
    expected = {"steps": {"step": ("step",), "latency_ns": ("step",), "bound": ("step",),
                          "bound_ns": ("step", "bound_code")},
                "cores": {"synops": ("step", "core"), "chip": ("core",), "population": ("core",)},
                "cores/utilisation": {"neurons": ("core",)},
                "layers": {"names": ("population",), "sizes": ("population",), "events": ("step", "population")},
                "links": {"names": ("link",), "bits": ("step", "link"), "host_bits": ("step",)},
                "samples": {"prediction": ("sample",), "latency_s": ("sample",)},
                "tokens": {"input": ("token",), "phase": ("token",)},
                "conversion": {"populations": ("population",), "chip_events": ("sample", "population"),
                               "float_prediction": ("sample",)},
                "conversion/errors": {"name": ("error",)}}
    for group, variables in expected.items():
        with xr.open_dataset(path, group=group, engine="h5netcdf") as ds:
            assert {k: ds[k].dims for k in variables} == variables, group
            assert set(ds.variables) == set(variables), group            # no dimension shows as a variable
            for key in variables:
                written = groups
                for part in (*group.split("/"), key):
                    written = written[part]
                assert np.array_equal(ds[key].values.astype(written.dtype), written), (group, key)
    trace = read_trace(path)
    assert set(trace["samples"]) == {"prediction", "latency_s"} and set(trace["cores"]["utilisation"]) == {"neurons"}


def test_a_runs_trace_opens_with_named_dimensions_in_xarray(tmp_path, tiny_model, fake_dataset):
    """A run's groups open in xarray as `neurosim.traces.tables.to_xarray` gives them."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from neurosim.runs import run
    from neurosim.traces.tables import to_xarray

    path = run(scenario_dict(tiny_model), out_dir=tmp_path).trace_path
    trace = read_trace(path)
    for group in ("steps", "cores", "layers", "links", "samples"):
        with xr.open_dataset(path, group=group, engine="h5netcdf") as ds:
            table = to_xarray(trace, group)
            assert dict(ds.sizes) == dict(table.sizes), group
            for key, variable in ds.variables.items():              # the table makes the names a coordinate
                assert variable.dims == table[key if key in table else variable.dims[0]].dims, (group, key)


def test_a_pipelines_layers_run_along_its_blocks(tmp_path):
    """A ternary pipeline's /layers is per block (no events per step), even when a block's columns
    are as many as its blocks."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    layers = {"names": np.array([f"block{b}" for b in range(6)]), "weights": np.arange(6),
              "layer_bound": np.zeros((6, 6), np.int64)}
    path = write_trace(tmp_path / "run.h5", META, SUMMARY, {"layers": layers})
    with xr.open_dataset(path, group="layers", engine="h5netcdf") as ds:
        assert ds["weights"].dims == ("population",) and ds["layer_bound"].dims == ("population", "layer_bound_1")
