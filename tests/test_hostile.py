"""Hostile inputs, faults and concurrency: every case ends in a valid run or in one error line and
exit status 2, through the ``neurosim`` command in a subprocess limited to 10 s and 1 GB; no code
runs from any file, no file is left behind, and no wrong result is reported with exit status 0.
The hostile files come from `hostile_inputs`."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from hostile_inputs import (CHIP, CSV_TEXTS, REPO, YAML_TEXTS, damaged_trace, dead_pid, generated_model,
                            hostile_weights, imported_scenario, input_file, model_copy, netx_net, neurosim, nir_graph,
                            tiny_scenario, write_yaml)


@pytest.fixture(scope="module", autouse=True)
def valid_files_run(tmp_path_factory):
    """Valid files still run, each to its trace (the digits model, a NIR graph, a netx network);
    first, with no time limit, so that the engine's kernels are in numba's cache and every case's
    limit measures the case, not a first compilation."""
    tmp = tmp_path_factory.mktemp("valid")
    for scenario in (tiny_scenario(tmp), _nir_scenario(tmp),
                     imported_scenario(tmp, {"netx": str(netx_net(tmp / "net.net"))}, name="netx")):
        outcome = neurosim("run", scenario, "--out", tmp / "out", cwd=tmp, timeout=900)
        assert outcome.code == 0 and "Traceback" not in outcome.err, outcome.err[-3000:]
    assert len(list((tmp / "out").glob("*.h5"))) == 3


def one_error(outcome, *words: str) -> str:
    """The command failed with one line naming what is wrong, exit status 2 and no traceback."""
    assert "Traceback" not in outcome.err + outcome.out, outcome.err[-3000:]
    assert outcome.code == 2, (outcome.code, outcome.err[-3000:])
    assert len(outcome.lines) == 1 and "error" in outcome.lines[0], outcome.err
    for word in words:
        assert word in outcome.lines[0], outcome.lines[0]
    return outcome.lines[0]


def one_error_each(outcome, faulty: list[Path], *words: str) -> list[str]:
    """``neurosim validate`` of several files failed with one line per file, each naming the file at
    fault (``faulty``, in order: the file validated, or a file it names)."""
    assert "Traceback" not in outcome.err + outcome.out, outcome.err[-3000:]
    assert outcome.code == 2, (outcome.code, outcome.err[-3000:])
    assert len(outcome.lines) == len(faulty), outcome.err
    for line, path in zip(outcome.lines, faulty):
        assert "error" in line and str(path) in line and all(w in line for w in words), (path, line)
    return outcome.lines


def files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()}


@pytest.fixture
def clean(tmp_path):
    """``tmp_path``, checked at the end to hold no file the test did not make itself (a trace, a
    partial file, a checkpoint) beyond those it lists in the returned set."""
    made: set[Path] = set()
    yield tmp_path, made
    before = made
    left = {p for p in files(tmp_path) if p not in before and p.suffix != ".yaml"}
    assert not left, sorted(map(str, left))


def made_by(tmp_path: Path, made: set[Path]) -> None:
    made.update(files(tmp_path))


# ---------------------------------------------------------------------------------------------
# integrity: data stored in the file itself


def test_weights_whose_data_is_not_in_the_file_are_refused(clean):
    tmp, made = clean
    cases = {"external_link": "external link", "external_storage": "external files", "virtual": "virtual dataset",
             "soft_loop": "loop"}
    models = []
    for how in cases:
        (tmp / how).mkdir()
        models.append(model_copy(tmp / how))
        hostile_weights(models[-1], how)
    made_by(tmp, made)
    lines = one_error_each(neurosim("validate", *(m / "model.yaml" for m in models), cwd=tmp),
                           [m / "weights.h5" for m in models])
    for line, words in zip(lines, cases.values()):
        assert words in line, line


def test_input_and_imported_files_whose_data_is_not_in_them_are_refused(clean):
    tmp, made = clean
    folders = [tmp / name for name in ("input", "nir", "netx")]
    for folder in folders:
        folder.mkdir()
    scenarios = [tiny_scenario(folders[0], input={"file": str(input_file(folders[0], "h5_external"))}),
                 imported_scenario(folders[1], {"nir": str(nir_graph(folders[1] / "graph.nir", "external_link")),
                                                "dt": 1e-3}),
                 imported_scenario(folders[2], {"netx": str(netx_net(folders[2] / "net.net", "external_link"))})]
    made_by(tmp, made)
    for scenario, name in zip(scenarios, ("inputs.h5", "graph.nir", "net.net")):
        one_error(neurosim("run", scenario, "--out", tmp / "out", cwd=tmp), name, "external link")


# ---------------------------------------------------------------------------------------------
# sizes first


def _nir_scenario(tmp: Path, how: str = "valid", **fields) -> Path:
    return imported_scenario(tmp, {"nir": str(nir_graph(tmp / "graph.nir", how)), "dt": 1e-3}, name="nir", **fields)


def _sealed(tmp: Path, how: str) -> Path:
    model = model_copy(tmp)
    hostile_weights(model, how)
    return model


def _in(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir()
    return tmp / name


def test_declared_sizes_are_checked_before_anything_is_allocated(clean):
    tmp, made = clean
    files_ = [_sealed(_in(tmp, "weights"), "huge") / "model.yaml", generated_model(_in(tmp, "g9"), 10**9),
              generated_model(_in(tmp, "g12"), 10**12), _nir_scenario(_in(tmp, "nir"), "linear_huge"),
              imported_scenario(_in(tmp, "netx"), {"netx": str(netx_net(tmp / "netx" / "net.net", "input_huge"))})]
    faulty = [files_[0].parent / "weights.h5", *files_[1:3], tmp / "nir" / "graph.nir", tmp / "netx" / "net.net"]
    made_by(tmp, made)
    for line in one_error_each(neurosim("validate", *files_, cwd=tmp), faulty):
        assert "memory" in line, line


RUNS = {
    "random_spikes_1e5x1e4": lambda tmp: _nir_scenario(tmp, input={"dataset": "random_spikes", "samples": 10**5},
                                                       timesteps=10**4),
    "digits_events_1e6_steps": lambda tmp: _nir_scenario(tmp, input={"dataset": "digits_events"}, timesteps=10**6),
    "input_h5_declared_huge": lambda tmp: tiny_scenario(tmp, input={"file": str(input_file(tmp, "h5_huge"))}),
    "input_npy_declared_huge": lambda tmp: tiny_scenario(tmp, input={"file": str(input_file(tmp, "npy_huge_header"))}),
}


@pytest.mark.parametrize("case", sorted(RUNS))
def test_inputs_are_sized_before_they_are_made_or_read(case, clean):
    tmp, made = clean
    scenario = RUNS[case](tmp)
    made_by(tmp, made)
    line = one_error(neurosim("run", scenario, "--out", tmp / "out", cwd=tmp))
    assert "memory" in line or "declares" in line, line


# ---------------------------------------------------------------------------------------------
# YAML


def test_yaml_that_would_cost_too_much_or_is_not_text_is_one_error(tmp_path):
    paths = []
    for case, text in sorted(YAML_TEXTS.items()):
        if text is not None:
            paths.append(tmp_path / f"{case}.yaml")
            paths[-1].write_bytes(text)
    started = time.perf_counter()
    one_error_each(neurosim("validate", *paths, cwd=tmp_path), paths)
    assert time.perf_counter() - started < 10
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("case", ["alias_bomb", "python_tag", "too_big", "deep_nesting"])
def test_running_such_yaml_is_one_error(case, tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_bytes(YAML_TEXTS[case])
    one_error(neurosim("run", path, "--out", tmp_path / "out", cwd=tmp_path), "scenario.yaml")
    assert not (tmp_path / "pwned").exists() and not files(tmp_path / "out")


def test_files_that_cannot_be_read_are_one_error(tmp_path):
    paths = {case: tmp_path / f"{case}.yaml" for case in ("missing", "directory", "symlink_loop", "fifo")}
    paths["directory"].mkdir()
    os.symlink(tmp_path / "other.yaml", paths["symlink_loop"])
    os.symlink(paths["symlink_loop"], tmp_path / "other.yaml")
    os.mkfifo(paths["fifo"])
    if os.geteuid() != 0:                     # root reads every file
        paths["unreadable"] = tmp_path / "unreadable.yaml"
        paths["unreadable"].write_text("name: x\n")
        paths["unreadable"].chmod(0)
    one_error_each(neurosim("validate", *paths.values(), cwd=tmp_path), list(paths.values()))
    for command in ("run", "inspect"):
        one_error(neurosim(command, paths["fifo"], cwd=tmp_path), "fifo.yaml")


def test_an_unreadable_file_is_one_error_for_root_too(tmp_path, monkeypatch):
    from neurosim.errors import UserError
    from neurosim.spec import yamlio

    path = tmp_path / "scenario.yaml"
    path.write_text("name: x\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(yamlio, "open", denied, raising=False)
    with pytest.raises(UserError, match="cannot be read \\(Permission denied\\)"):
        yamlio.load_yaml(path)


def test_a_boolean_is_no_number(tmp_path):
    cases = {"timesteps": True, "seed": False, "checkpoint_every": True,
             "input": {"dataset": "digits", "samples": True}, "record": {"spike_samples": True}}
    paths = [tiny_scenario(tmp_path, name=f"bool_{field}", **{field: value}) for field, value in cases.items()]
    one_error_each(neurosim("validate", *paths, cwd=tmp_path), paths, "expected an integer")


# ---------------------------------------------------------------------------------------------
# checkpoints


def _checkpoint_of(scenario: Path, cwd: Path) -> Path:
    """Where a run of ``scenario`` in ``cwd`` keeps its checkpoint, and its key."""
    from neurosim.runs.checkpoint import Checkpoint
    from neurosim.runs.setup import load_inputs, prepare, sample_timesteps

    here = os.getcwd()
    os.chdir(cwd)
    try:
        setup = prepare(scenario)
        data = load_inputs(setup)
        checkpoint = Checkpoint(setup, data.inputs, sample_timesteps(setup, data))
        return cwd / checkpoint.path, checkpoint.key
    finally:
        os.chdir(here)


class Planted:
    """Running it would leave a file: what a pickle planted as a checkpoint tries."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


CHECKPOINTS = {
    "pickle": lambda path, key: path.write_bytes(pickle.dumps(Planted(str(path.parent / "pwned")))),
    "empty": lambda path, key: path.write_bytes(b""),
    "samples_done_huge": lambda path, key: np.savez(path, _key=np.array(key), _samples_done=np.array(10**9)),
    "samples_done_negative": lambda path, key: np.savez(path, _key=np.array(key), _samples_done=np.array(-3)),
    "other_key": lambda path, key: np.savez(path, _key=np.array("0" * 20), _samples_done=np.array(1)),
    "rows_missing": lambda path, key: np.savez(path, _key=np.array(key), _samples_done=np.array(2),
                                               **{"steps/events": np.zeros(1, np.int64)}),
    "objects": lambda path, key: np.savez(path, _key=np.array(key), _samples_done=np.array(1),
                                          x=np.array([{"a": 1}], dtype=object)),
    "symlink": lambda path, key: os.symlink("/etc/hostname", path),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_a_planted_or_edited_checkpoint_runs_no_code_and_is_refused(case, clean):
    tmp, made = clean
    scenario = tiny_scenario(tmp, input={"dataset": "digits", "samples": 4}, checkpoint_every=2)
    path, key = _checkpoint_of(scenario, tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    CHECKPOINTS[case](path, key)
    made_by(tmp, made)
    line = one_error(neurosim("run", scenario, "--resume", "--out", tmp / "out", cwd=tmp), "checkpoint")
    assert str(path.name) in line
    assert not (path.parent / "pwned").exists()


def _setup(tmp_path: Path):
    """What a `Checkpoint` reads of a run's setup, for a run of 4 samples of the digits model."""
    from types import SimpleNamespace

    from neurosim.graph.graph import Population

    graph = SimpleNamespace(populations={"out": Population("out", "loihi_lif", 10)}, readout_population="out",
                            weights_sha256="0" * 64)
    scenario = SimpleNamespace(name="run", seed=0, overrides={})
    return SimpleNamespace(scenario=scenario, scenario_text="s", chip_text="c", model_text="m", graph=graph,
                           language=None)


def test_a_checkpoint_is_checked_against_the_run_it_resumes(tmp_path, monkeypatch):
    from neurosim.errors import UserError
    from neurosim.runs.checkpoint import Checkpoint

    monkeypatch.chdir(tmp_path)
    checkpoint = Checkpoint(_setup(tmp_path), np.zeros((4, 64)), 2)
    records = {"steps/events": np.arange(4), "steps/sample": np.array([0, 0, 1, 1]),
               "steps/step": np.array([0, 1, 0, 1]), "predictions": np.array([3, 9]),
               "readout_v": np.zeros((2, 10), np.int64), "spikes/out/t": np.array([0.0, 3.0]),
               "spikes/out/ids": np.array([1, 9])}
    like = {k: v[:0] for k, v in records.items()}
    checkpoint.save_arrays(2, records)
    done, saved = checkpoint.load_arrays(like=like)
    assert done == 2 and all(np.array_equal(saved[k], v) for k, v in records.items())
    assert not [p for p in (tmp_path / ".neurosim" / "checkpoints").iterdir() if p.name != checkpoint.path.name]
    edits = {"steps/events": np.arange(5), "predictions": np.array([3, 10]), "steps/sample": np.array([0, 0, 1, 2]),
             "spikes/out/t": np.array([0.0, 4.0]), "readout_v": np.zeros((2, 11), np.int64)}
    for key, value in edits.items():
        checkpoint.save_arrays(2, records | {key: value})
        with pytest.raises(UserError, match="not a checkpoint this run can resume from"):
            checkpoint.load_arrays(like=like)
    checkpoint.save_arrays(2, {k: v for k, v in records.items() if k != "readout_v"})
    with pytest.raises(UserError, match="lacks"):
        checkpoint.load_arrays(like=like)


def test_a_language_state_is_kept_as_arrays_and_plain_values(tmp_path, monkeypatch):
    from neurosim.errors import UserError
    from neurosim.runs.checkpoint import Checkpoint

    monkeypatch.chdir(tmp_path)
    checkpoint = Checkpoint(_setup(tmp_path), np.array([5, 6, 7]), 2, ".pkl")
    state = {"record": {"events": [np.int64(3)] * 6, "link_bits": [np.zeros(2)] * 6}, "pe": None,
             "tokens_in": [5, 6, 7, 1], "phases": [0, 0, 0, 1], "entry_step": [0, 1, 2, 4],
             "outputs": [np.ones(4), np.zeros(4)], "entries": {0, 1, 2, 4}, "pending": {4: 2, 6: 3}, "step": 6,
             "next_token": None, "acc": np.zeros((2, 8)), "payload": np.zeros(8, np.int32), "steps_done": 6,
             "neurons": [{"v": np.arange(3)}]}
    checkpoint.save_state(state)
    like = {k: v for k, v in state.items() if k in ("acc", "payload", "neurons")}
    back = checkpoint.load_state(like=like)
    assert back["tokens_in"] == [5, 6, 7, 1] and back["entries"] == {0, 1, 2, 4} and back["pending"] == {4: 2, 6: 3}
    assert back["next_token"] is None and np.array_equal(back["neurons"][0]["v"], np.arange(3))
    assert type(back["tokens_in"][0]) is int and isinstance(back["record"]["events"][0], np.int64)
    for key, value in {"tokens_in": [5, 6, 8, 1], "step": 10**15, "pending": {4: 7}, "phases": [0, 1, 0, 1],
                       "entry_step": [0, 2, 1, 4], "next_token": -1}.items():
        checkpoint.save_state(state | {key: value})
        with pytest.raises(UserError, match="not a checkpoint this run can resume from"):
            checkpoint.load_state()
    checkpoint.save_state(state | {"acc": np.zeros((3, 8))})
    with pytest.raises(UserError, match="acc"):
        checkpoint.load_state(like=like)


def test_checkpoints_are_arrays_and_no_module_unpickles():
    for module in (REPO / "neurosim").rglob("*.py"):
        text = module.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, module


def test_saves_never_follow_planted_symlinks_and_runs_in_one_folder_do_not_collide(clean):
    tmp, made = clean
    victim = tmp / "victim.txt"
    victim.write_text("precious")
    first = tiny_scenario(tmp, name="first", input={"dataset": "digits", "samples": 4}, checkpoint_every=2)
    second = tiny_scenario(tmp, name="second", input={"dataset": "digits", "samples": 4}, checkpoint_every=2)
    folder = tmp / ".neurosim" / "checkpoints"
    folder.mkdir(parents=True)
    for scenario in (first, second):
        path, _ = _checkpoint_of(scenario, tmp)
        os.symlink(victim, path)                                        # at the checkpoint's own name
        os.symlink(victim, path.with_name(f".{path.name}.partial"))     # and at the old fixed partial name
    made_by(tmp, made)
    env = os.environ | {"NUMBA_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "neurosim.cli", "run", s, "--out", tmp / "out"], cwd=tmp,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in (first, second)]
    for proc in procs:
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "Traceback" not in err, err
    assert victim.read_text() == "precious"
    assert not [p for p in folder.iterdir() if not p.is_symlink()]        # each run removed its own at the end
    assert len(list((tmp / "out").glob("*.h5"))) == 2
    made.update((tmp / "out").glob("*.h5"))


# ---------------------------------------------------------------------------------------------
# output: a full disk, a writer that died


def test_a_full_disk_is_one_error_and_leaves_nothing(clean):
    tmp, made = clean
    scenario = tiny_scenario(tmp)
    made_by(tmp, made)
    one_error(neurosim("run", scenario, "--out", tmp / "out", cwd=tmp, file_size=4096), "could not write the trace")
    assert not (tmp / "out").exists() or not files(tmp / "out")


def test_partial_files_of_a_writer_that_died_are_removed_by_the_next_run(clean):
    from neurosim.traces.trace import HOST

    tmp, made = clean
    out = tmp / "out"
    out.mkdir()
    stale = out / f".tiny-20260101-000000-000000.h5.{dead_pid()}-{HOST}-0123abcd.partial"
    live = out / f".tiny-20260101-000000-000001.h5.{os.getpid()}-{HOST}-0123abcd.partial"
    stale.write_bytes(b"half a trace")
    live.write_bytes(b"being written")
    scenario = tiny_scenario(tmp)
    made_by(tmp, made)
    outcome = neurosim("run", scenario, "--out", out, cwd=tmp)
    assert outcome.code == 0, outcome.err
    assert not stale.exists() and live.exists()
    live.unlink()
    made.update(out.glob("*.h5"))


# ---------------------------------------------------------------------------------------------
# sweeps


def test_a_sweep_point_is_known_by_everything_that_determines_it(tmp_path, monkeypatch):
    from neurosim.sweep import apply_point, load_sweep, point_id
    from neurosim.sweep.points import point_context

    monkeypatch.chdir(tmp_path)
    chip = tmp_path / "chip.yaml"
    chip.write_text(CHIP.read_text())
    model = model_copy(tmp_path)
    base = tiny_scenario(tmp_path, chip=str(chip), model=str(model))
    sweep = write_yaml(tmp_path / "sweep.yaml", {"name": "s", "base": str(base), "grid": {"timesteps": [1, 2]}})

    def keys() -> list[str]:
        loaded = load_sweep(sweep)
        return [point_id(v, point_context(apply_point(loaded.base, v, [tmp_path]), {})) for v in loaded.points]

    seen = [keys()]
    assert seen[0] == keys() and len(set(seen[0])) == 2
    data = yaml.safe_load(chip.read_text())
    data["core_kinds"]["neurocore"]["energy_pj"]["synop"] *= 2
    write_yaml(chip, data)                                         # the chip's figures change
    seen.append(keys())
    (model / "model.yaml").write_text((model / "model.yaml").read_text() + "\n# edited\n")     # the model's file
    seen.append(keys())
    write_yaml(base, {**yaml.safe_load(base.read_text()), "reference": False})                # the base scenario
    seen.append(keys())
    assert len({key for found in seen for key in found}) == 2 * len(seen)


def test_a_point_that_runs_twice_leaves_one_trace(tmp_path, monkeypatch):
    from neurosim.sweep.cluster import run_point

    monkeypatch.chdir(tmp_path)
    scenario = yaml.safe_load(tiny_scenario(tmp_path).read_text()) | {"name": "s-0123456789abcdef"}
    out = tmp_path / "traces"
    first, again = run_point(scenario, str(out)), run_point(scenario, str(out))
    assert first["status"] == again["status"] == "ok", first["error"]
    assert first["trace"] == again["trace"] == str(out / "s-0123456789abcdef.h5")
    assert sorted(p.name for p in out.iterdir()) == ["s-0123456789abcdef.h5"]


def test_the_local_cluster_listens_on_this_host_only_and_has_no_dashboard(monkeypatch):
    import dask.distributed

    from neurosim.sweep.cluster import dask_client

    made = {}

    class Cluster:
        def __init__(self, **kwargs):
            made.update(kwargs)

    monkeypatch.setattr(dask.distributed, "LocalCluster", Cluster)
    monkeypatch.setattr(dask.distributed, "Client", lambda cluster, **kwargs: cluster)
    dask_client(None, 2, None)
    assert made["dashboard_address"] is None and made["host"] == "127.0.0.1"


def test_a_sweep_on_a_full_disk_is_one_error_and_leaves_nothing(clean):
    tmp, made = clean
    base = tiny_scenario(tmp)
    sweep = write_yaml(tmp / "sweep.yaml", {"name": "s", "base": str(base), "grid": {"timesteps": [1]},
                                            "out": str(tmp / "out"), "traces": False})
    made_by(tmp, made)
    one_error(neurosim("sweep", sweep, "--workers", "1", cwd=tmp, file_size=200),
              "could not write the sweep table")
    assert not (tmp / "out").exists() or not files(tmp / "out")


# ---------------------------------------------------------------------------------------------
# imports that crashed, or were silently accepted


NIR_CASES = ["nan_weight", "inf_weight", "tau_zero", "tau_nan", "delay_huge", "nested_300"]
NETX_CASES = ["stride_0", "stride_negative", "groups_0", "inf_weight", "nan_weight", "fractional_weight",
              "shape_mismatch", "channels_mismatch"]


def test_imported_files_that_crashed_the_import_or_were_misread_are_one_error(clean):
    tmp, made = clean
    scenarios, names = [], []
    for how in NIR_CASES:
        scenarios.append(_nir_scenario(_in(tmp, f"nir_{how}"), how))
        names.append(tmp / f"nir_{how}" / "graph.nir")
    for how in NETX_CASES:
        folder = _in(tmp, f"netx_{how}")
        scenarios.append(imported_scenario(folder, {"netx": str(netx_net(folder / "net.net", how))}))
        names.append(folder / "net.net")
    made_by(tmp, made)
    one_error_each(neurosim("validate", *scenarios, cwd=tmp), names)


@pytest.mark.parametrize("case", ["nir_tau_zero", "netx_stride_0"])
def test_running_such_files_is_one_error(case, clean):
    tmp, made = clean
    kind, how = case.split("_", 1)
    scenario = (_nir_scenario(tmp, how) if kind == "nir" else
                imported_scenario(tmp, {"netx": str(netx_net(tmp / "net.net", how))}))
    made_by(tmp, made)
    one_error(neurosim("run", scenario, "--out", tmp / "out", cwd=tmp), "graph.nir" if kind == "nir" else "net.net")


def test_a_weight_exponent_stored_as_an_array_is_one_error(clean):
    tmp, made = clean
    model = _sealed(tmp, "weight_exp_array")
    made_by(tmp, made)
    one_error(neurosim("validate", model / "model.yaml", cwd=tmp), "weight_exp")


@pytest.mark.parametrize("case", ["npy_empty", "npy_object"])
def test_unreadable_input_arrays_are_one_error_not_an_interruption(case, clean):
    tmp, made = clean
    scenario = tiny_scenario(tmp, input={"file": str(input_file(tmp, case))})
    made_by(tmp, made)
    one_error(neurosim("run", scenario, "--out", tmp / "out", cwd=tmp), "inputs.npy")


def test_graded_inputs_beyond_the_payload_are_refused_at_load(clean):
    tmp, made = clean
    scenario = tiny_scenario(tmp, input={"file": str(input_file(tmp, "graded_too_big"))})
    made_by(tmp, made)
    one_error(neurosim("run", scenario, "--out", tmp / "out", cwd=tmp), "payload")


def test_graded_inputs_beyond_the_payload_are_named():
    from neurosim.datasets import outside_payload

    assert outside_payload(np.array([0, 127, -127]), 8) is None
    assert "beyond the 8-bit graded payload" in outside_payload(np.array([0, 128]), 8)


# ---------------------------------------------------------------------------------------------
# damaged traces and tables


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("trace")
    outcome = neurosim("run", tiny_scenario(tmp, record={"cores": True}), "--out", tmp / "out", cwd=tmp)
    assert outcome.code == 0, outcome.err
    return next((tmp / "out").glob("*.h5"))


DAMAGE = ["truncated", "no_steps", "no_layers", "timesteps_huge", "summary_text", "mesh_huge", "short_latency",
          "external_link"]


@pytest.mark.parametrize("how", DAMAGE)
def test_plot_and_report_of_a_damaged_trace_are_one_error_and_write_nothing(how, trace, clean):
    tmp, made = clean
    damaged = damaged_trace(trace, tmp / "damaged.h5", how)
    made_by(tmp, made)
    one_error(neurosim("plot", damaged, cwd=tmp), "damaged.h5")
    if how in ("truncated", "no_layers", "summary_text"):
        one_error(neurosim("report", damaged, cwd=tmp), "damaged.h5")


@pytest.mark.parametrize("how", sorted(CSV_TEXTS))
def test_compare_of_a_malformed_table_is_one_error_or_a_table(how, clean):
    tmp, made = clean
    table = tmp / "table.csv"
    table.write_bytes(CSV_TEXTS[how])
    made_by(tmp, made)
    outcome = neurosim("compare", table, "--out", tmp / "cmp", cwd=tmp)
    if outcome.code == 0:
        assert "Traceback" not in outcome.err
        made.update(files(tmp / "cmp"))
    else:
        one_error(outcome, "table.csv")
