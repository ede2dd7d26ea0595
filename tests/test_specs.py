"""Chip, scenario and model specs: what loads, and one clear error (file, line, field) per mistake."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers import LOIHI2, REPO, scenario_dict, tiny_model_files, write_model
from neurosim.errors import UserError
from neurosim.graph.graph import Dense, Sparse
from neurosim.zoo.loader import load_model
from neurosim.spec.chip import load_chip
from neurosim.spec.scenario import load_scenario
from neurosim.spec.yamlio import parse_yaml

CHIP_TEXT = LOIHI2.read_text()


def _line_of(text: str, fragment: str) -> int:
    """1-based line of the first line of `text` containing `fragment`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def _chip_error(tmp_path: Path, text: str) -> UserError:
    path = tmp_path / "chip.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_chip(path)
    assert err.value.file == str(path)
    return err.value


# ---------------------------------------------------------------------------------------------
# chips


def test_loihi2_loads():
    """The shipped Loihi 2 spec: 128 neurocores on an 8 x 4 mesh, with its published limits."""
    chip, text = load_chip(LOIHI2)
    assert text == CHIP_TEXT
    assert chip.name == "loihi2" and chip.chip.core_kind == "neurocore"
    assert (chip.cores_per_chip, chip.n_chips, chip.total_cores) == (128, 1, 128)
    lim = chip.core.limits
    assert (lim.neurons, lim.memory_bytes, lim.neuron_state_bytes, lim.synapse_memory_bytes) == \
        (8192, 196608, 65536, 131072)
    assert lim.neuron_state_bytes + lim.synapse_memory_bytes <= lim.memory_bytes
    assert chip.core.energy_pj.synop == 6.7 and chip.core.time_ns.synop == 0.7


def test_every_shipped_chip_loads():
    """Every chips/*.yaml validates."""
    paths = sorted((REPO / "chips").glob("*.yaml"))
    assert LOIHI2 in paths
    for path in paths:
        assert load_chip(path)[0].total_cores >= 1


# Each case: how to break the chip text, the field named, the line named (a fragment of it), and
# words the message must contain.
CHIP_MISTAKES = {
    "unknown field": (("  barrier_ns: 200.0", "  barrier_ns: 200.0\n  barrier_nanoseconds: 1"),
                      "chip.barrier_nanoseconds", "barrier_nanoseconds", "unknown field"),
    "wrong type": (("    routers_x: 8 ", "    routers_x: eight "), "chip.mesh.routers_x", "routers_x: eight",
                   "expected an integer, found 'eight'"),
    "negative energy": (("      synop: 6.7 ", "      synop: -1.0 "), "core_kinds.neurocore.energy_pj.synop",
                        "synop: -1.0", "expected a number >= 0"),
    "not finite": (("      synop: 6.7 ", "      synop: .nan "), "core_kinds.neurocore.energy_pj.synop",
                   "synop: .nan", "finite"),
    "missing field": (("  barrier_ns: 200.0", ""), "chip.barrier_ns", "chip:", "missing"),
    "duplicate key": (("  barrier_ns: 200.0", "  barrier_ns: 200.0\n  barrier_ns: 100.0"), "chip.barrier_ns",
                      "barrier_ns: 100.0", "duplicate key 'barrier_ns'"),
    "unknown core kind": (("    kind: neurocore", "    kind: arm_core"), "core_kinds.neurocore.kind",
                          "kind: arm_core", "expected one of 'neurocore', 'arm_pe', 'ternary_pipeline', 'gpu_roofline', found 'arm_core'"),
    "limits disagree": (("      neuron_state_bytes: 65536", "      neuron_state_bytes: 965536"),
                        "core_kinds.neurocore.limits", "    limits:", "exceeds memory_bytes"),
}


@pytest.mark.parametrize("case", list(CHIP_MISTAKES))
def test_chip_mistake_names_file_line_and_field(tmp_path, case):
    """A mistake in a chip file is a UserError with the file, the mistake's line and its field."""
    (old, new), field, line_fragment, words = CHIP_MISTAKES[case]
    assert CHIP_TEXT.count(old) == 1
    text = CHIP_TEXT.replace(old, new)
    err = _chip_error(tmp_path, text)
    assert err.field == field
    expected_line = _line_of(text, line_fragment)
    if case == "duplicate key":
        expected_line = _line_of(text, "barrier_ns: 100.0")
    assert err.line == expected_line, str(err)
    assert words in err.message
    assert str(err) == f"{tmp_path / 'chip.yaml'}:{expected_line}: {field}: {err.message}"


@pytest.mark.parametrize("text, line", [("name: x\nsystem: [1, 2\nchip: 3\n", 3),
                                        ("name: x\n  indented: : 3\n", 2),
                                        ("name: x\n\tchip: 1\n", 2)])
def test_malformed_yaml_names_file_and_line(tmp_path, text, line):
    err = _chip_error(tmp_path, text)
    assert err.line == line and "is not valid YAML" in err.message


@pytest.mark.parametrize("text, found", [("- 1\n- 2\n", "list"), ("", "NoneType"), ("just text", "str")])
def test_chip_that_is_not_a_mapping(tmp_path, text, found):
    assert f"expected a mapping with system, chip and core_kinds, found {found}" in _chip_error(tmp_path, text).message


def test_missing_and_unreadable_files(tmp_path):
    """A missing file, a directory and binary junk each give one sentence naming the file."""
    with pytest.raises(UserError, match="file not found") as err:
        load_chip(tmp_path / "nope.yaml")
    assert err.value.file == str(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="is a directory"):
        load_chip(tmp_path)
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(UserError, match="not UTF-8"):
        load_chip(junk)


def test_line_map_points_into_nested_lists():
    """The parser records the line of every key and list item."""
    data, lines = parse_yaml("a:\n  b:\n    - 1\n    - c: 2\n")
    assert data == {"a": {"b": [1, {"c": 2}]}}
    assert lines[("a", "b", 1, "c")] == 4
    assert lines.find(("a", "b", 1, "c", "deeper")) == 4
    assert lines.find(("nowhere",)) is None


# ---------------------------------------------------------------------------------------------
# scenarios


def _scenario_file(tmp_path: Path, extra: str = "", model: str = "models/tiny") -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"name: t\nchip: {LOIHI2}\nmodel: {model}\ninput: {{dataset: digits}}\ntimesteps: 3\n{extra}")
    return path


def test_scenario_defaults(tmp_path):
    spec, text, lines = load_scenario(_scenario_file(tmp_path))
    assert spec.input.split == "test" and spec.input.samples is None
    assert spec.record.spikes is False and spec.record.cores is True
    assert spec.timing.per_message is True and spec.reference is True and spec.seed == 0
    assert lines[("timesteps",)] == 5


@pytest.mark.parametrize("extra, field, words", [
    ("colour: red\n", "colour", "unknown field"),
    ("seed: -1\n", "seed", ">= 0"),
    ("record: {spikes: maybe}\n", "record.spikes", "true or false"),
    ("timing: {per_message: 1.5}\n", "timing.per_message", "true or false"),
])
def test_scenario_mistakes_name_line_and_field(tmp_path, extra, field, words):
    path = _scenario_file(tmp_path, extra)
    with pytest.raises(UserError) as err:
        load_scenario(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 6, field)
    assert words in err.value.message


def test_scenario_override_of_an_unknown_chip_field(tmp_path, tiny_model):
    """An override path the chip does not have is an error at the override's line."""
    from neurosim.runs import prepare

    path = _scenario_file(tmp_path, "overrides:\n  core.energy_pj.synap: 1.0\n")
    with pytest.raises(UserError) as err:
        prepare(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 7, "overrides.core.energy_pj.synap")
    path = _scenario_file(tmp_path, "overrides:\n  mesh.routers_x: 1\n")
    with pytest.raises(UserError, match="expected a path starting with system., chip. or core."):
        prepare(path)


def test_scenario_override_with_an_invalid_value(tmp_path, tiny_model):
    """A bad override value is reported at the override's line in the scenario."""
    from neurosim.runs import prepare

    path = _scenario_file(tmp_path, "overrides:\n  core.energy_pj.synop: -1.0\n")
    with pytest.raises(UserError) as err:
        prepare(path)
    assert (err.value.file, err.value.field) == (str(path), "overrides.core.energy_pj.synop")
    assert err.value.line == path.read_text().splitlines().index("  core.energy_pj.synop: -1.0") + 1
    assert ">= 0" in err.value.message


def test_scenario_overrides_change_the_chip(tmp_path, tiny_model):
    from neurosim.runs import prepare

    path = _scenario_file(tmp_path, "overrides:\n  core.energy_pj.synop: 1.5\n  chip.mesh.routers_x: 2\n")
    setup = prepare(path)
    assert setup.chip.core.energy_pj.synop == 1.5 and setup.chip.cores_per_chip == 2 * 4 * 4


def test_scenario_with_a_missing_model_names_the_scenario(tmp_path):
    from neurosim.runs import prepare

    path = _scenario_file(tmp_path, model="no_such_model")
    with pytest.raises(UserError) as err:
        prepare(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 3, "model")


def test_scenario_reports_the_error_of_a_broken_model_beside_it(tmp_path):
    from neurosim.runs import prepare

    spec, arrays, attrs = tiny_model_files(np.random.default_rng(0))
    folder = write_model(tmp_path / "models" / "tiny", spec, arrays, attrs)
    with h5py.File(folder / "weights.h5", "a") as h5:
        h5["projections/w_in/weight"][0, 0] += 1
    with pytest.raises(UserError, match="sha256"):
        prepare(_scenario_file(tmp_path))


# ---------------------------------------------------------------------------------------------
# models


def test_model_loads(tiny_model):
    """model.yaml + weights.h5 become a Graph: kinds, projections, per-neuron parameters, exponents."""
    graph, text = load_model(tiny_model)
    assert list(graph.populations) == ["inp", "hid", "out"]
    assert graph.input_population == "inp" and graph.readout_population == "out"
    assert graph.readout_mode == "membrane" and graph.dataset == "digits"
    w_in, w_out = graph.projections["w_in"], graph.projections["w_out"]
    assert isinstance(w_in, Dense) and w_in.weight.shape == (20, 64) and w_in.weight.dtype == np.int8
    assert isinstance(w_out, Sparse) and w_out.shape == (10, 20)
    assert (w_in.weight_exp, w_out.weight_exp) == (-1, 1)
    dv = graph.populations["hid"].params["dv"]
    assert isinstance(dv, np.ndarray) and dv.shape == (20,)
    with h5py.File(tiny_model / "weights.h5") as h5:
        np.testing.assert_array_equal(dv, h5["params/hid_dv"][()])
        np.testing.assert_array_equal(w_in.weight, h5["projections/w_in/weight"][()])
    assert graph.weights_sha256 in text


def _model_error(tmp_path: Path, change) -> UserError:
    """Write the tiny model after `change(spec, arrays, attrs)`; return the error loading it."""
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(0))
    change(spec, arrays, attrs)
    folder = write_model(tmp_path / "m", spec, arrays, attrs)
    with pytest.raises(UserError) as err:
        load_model(folder)
    return err.value


def test_model_weights_checksum(tmp_path):
    """A weights file changed after model.yaml was written is refused, naming the file."""
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(0))
    folder = write_model(tmp_path / "m", spec, arrays, attrs)
    with h5py.File(folder / "weights.h5", "a") as h5:
        h5["projections/w_in/weight"][0, 0] += 1
    with pytest.raises(UserError, match="sha256 is .* model.yaml expects") as err:
        load_model(folder)
    assert err.value.file == str(folder / "weights.h5")
    (folder / "weights.h5").unlink()
    with pytest.raises(UserError, match="weights file not found"):
        load_model(folder)


def _set(path, value):
    def change(spec, arrays, attrs):
        node = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


@pytest.mark.parametrize("change, words, file", [
    (lambda s, a, t: a.update({"projections/w_in/weight": np.zeros((64, 20), np.int8)}),
     "has shape (64, 20), expected (20, 64)", "weights.h5"),
    (lambda s, a, t: a.update({"projections/w_in/weight": np.full((20, 64), 200, np.int16)}),
     "outside the 8-bit range", "weights.h5"),
    (lambda s, a, t: a.update({"projections/w_in/weight": np.zeros((20, 64), np.float32)}),
     "expected integers", "weights.h5"),
    (lambda s, a, t: a.update({"projections/w_out/indices": np.full_like(a["projections/w_out/indices"], 10)}),
     "not a valid CSR matrix", "weights.h5"),
    (lambda s, a, t: t.update({"projections/w_in": {"weight_exp": 20}}), "expected an integer in [-8, 15]",
     "weights.h5"),
    (lambda s, a, t: a.update({"params/hid_dv": np.zeros(3, np.int64)}), "expected (20,)", "weights.h5"),
    (lambda s, a, t: a.pop("projections/w_in/weight"), "/projections/w_in/weight is missing", "weights.h5"),
    (_set(("readout", "population"), "nowhere"), "readout.population names 'nowhere'", "model.yaml"),
    (_set(("input", "population"), "hid"), "names 'hid', a loihi_lif population; the graded_constant encoding",
     "model.yaml"),
    (_set(("projections", "w_out", "kind"), "ternary"), "one of", "model.yaml"),
    (_set(("populations", "hid", "size"), 0), ">= 1", "model.yaml"),
])
def test_model_mistakes(tmp_path, change, words, file):
    """Each mistake in a model folder is one UserError naming the file at fault."""
    err = _model_error(tmp_path, change)
    assert words in err.message
    assert err.file == str(tmp_path / "m" / file)


def test_model_yaml_mistake_has_line_and_field(tmp_path):
    err = _model_error(tmp_path, _set(("populations", "hid", "size"), -5))
    text = (tmp_path / "m" / "model.yaml").read_text()
    assert err.field == "populations.hid.size" and err.line == _line_of(text, "size: -5")


def test_conv2d_shape_mismatch_points_at_the_projection(tmp_path):
    """A conv2d whose output size differs from its target population names the projection's line."""
    def conv(spec, arrays, attrs):
        spec["populations"]["hid"]["size"] = 20
        spec["projections"]["w_in"] = {"kind": "conv2d", "source": "inp", "target": "hid", "in_shape": [1, 8, 8]}
        arrays["projections/w_in/weight"] = np.ones((2, 1, 3, 3), np.int8)     # 2 x 6 x 6 = 72 outputs, not 20
        arrays["params/hid_dv"] = np.zeros(20, np.int64)
    err = _model_error(tmp_path, conv)
    assert "maps 64 inputs to 72 outputs" in err.message
    text = (tmp_path / "m" / "model.yaml").read_text()
    assert err.file == str(tmp_path / "m" / "model.yaml") and err.line == _line_of(text, "  w_in:")


def test_unknown_neuron_kind_and_bad_parameter_are_user_errors(tmp_path, loihi2):
    """Checked before mapping: an unknown kind or a parameter out of range names the model's line."""
    from neurosim.mapping.mapper import map_graph

    for change, field, words in ((_set(("populations", "hid", "kind"), "lif"), "populations.hid.kind",
                                  "unknown neuron kind 'lif'"),
                                 (_set(("populations", "hid", "params", "du"), 9999), "populations.hid.params.du",
                                  "<= 4095")):
        spec, arrays, attrs = tiny_model_files(np.random.default_rng(0))
        change(spec, arrays, attrs)
        folder = write_model(tmp_path / field, spec, arrays, attrs)
        graph, text = load_model(folder)
        with pytest.raises(UserError) as err:
            map_graph(graph, loihi2)
        assert err.value.field == field and words in err.value.message
        assert err.value.file == str(folder / "model.yaml")
        assert field.split(".")[-1] + ":" in text.splitlines()[err.value.line - 1]


# ---------------------------------------------------------------------------------------------
# the command line


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurosim.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def _assert_one_error_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_cli_malformed_chip_prints_one_error_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CHIP_TEXT.replace("      synop: 6.7 ", "      synop: -1.0 "))
    line = _assert_one_error_line(_cli("validate", str(bad)), str(bad), "core_kinds.neurocore.energy_pj.synop")
    assert line.startswith(f"error: {bad}:{_line_of(bad.read_text(), 'synop: -1.0')}: ")
    _assert_one_error_line(_cli("inspect", str(bad)), str(bad))


def test_cli_malformed_scenario_prints_one_error_line(tmp_path):
    path = _scenario_file(tmp_path, "timesteps_typo: 3\n")
    _assert_one_error_line(_cli("run", str(path), "--out", str(tmp_path)), f"{path}:6: timesteps_typo: unknown field")
    _assert_one_error_line(_cli("run", str(tmp_path / "missing.yaml")), "file not found")
    path.write_text("name: t\nchip: [unclosed\n")
    _assert_one_error_line(_cli("validate", str(path)), "is not valid YAML")
    assert not list(tmp_path.glob("*.h5"))


def test_cli_validate_ok_and_usage_errors(tmp_path):
    ok = _cli("validate", str(LOIHI2))
    assert ok.returncode == 0 and ok.stdout.strip() == f"{LOIHI2}: ok (chip)"
    usage = _cli("validate")            # a click usage error: no Traceback, non-zero status
    assert usage.returncode == 2 and "Traceback" not in usage.stderr and "Usage" in usage.stderr


@pytest.mark.skipif(shutil.which("neurosim") is None, reason="the console script is not installed")
def test_console_script_maps_user_errors(tmp_path):
    proc = subprocess.run(["neurosim", "validate", str(tmp_path / "none.yaml")], capture_output=True, text=True,
                          timeout=120)
    _assert_one_error_line(proc, "file not found")


def test_scenario_dict_helper_is_valid(tiny_model, fake_dataset):
    """The helper the run tests use builds a scenario that validates."""
    from neurosim.runs import prepare

    setup = prepare(scenario_dict(tiny_model))
    assert setup.graph.name == "tiny" and setup.mapping.n_cores == 2
