"""Bad input never crashes: valid chip, scenario, sweep and model files, mutated at random (a
field deleted or given a wrong type, a negative, huge or absurd value, an unknown key, a unit in
a number, broken YAML), are either still valid or give one clean error line naming the file,
with exit status 2 and no traceback; so are tiny runs and ``inspect`` of mutated files, and
weights, inputs, NIR graphs and netx networks with bytes changed, zeroed or cut off."""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import REPO

BAD_VALUES = [None, -1, 0, -1e30, 1e30, 10**12, 1.5, "abc", "1 ms", "5 pJ", [], {}, True, [1, 2], {"x": 1},
              float("nan"), float("inf"), -0.5, 2**63, "", "chips/nowhere.yaml"]
EXAMPLES = 250           # per kind of file: 1,000 inputs in all


def paths_of(data, prefix=()):
    """Every key path in nested mappings and lists."""
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append(prefix + (k,))
            out += paths_of(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append(prefix + (i,))
            out += paths_of(v, prefix + (i,))
    return out


def mutate(text: str, draw) -> str:
    """One random mutation of a YAML file's text."""
    how = draw(st.sampled_from(["value", "value", "value", "delete", "unknown", "truncate", "junk"]))
    if how == "truncate":
        return text[:draw(st.integers(0, max(len(text) - 1, 0)))]
    if how == "junk":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from([":", "- [", "{{", "\t", "'", "]]", ": :", "\x00", "&a *b"])) + text[at:]
    data = yaml.safe_load(text)
    paths = paths_of(data)
    path = draw(st.sampled_from(paths))
    node = data
    for key in path[:-1]:
        node = node[key]
    if how == "delete":
        del node[path[-1]]
    elif how == "unknown":
        if isinstance(node, dict):
            node[draw(st.sampled_from(["colour", "energy_pj_typo", "sizes", "x"]))] = 1
        else:
            node.append({"unknown": 1})
    else:
        node[path[-1]] = draw(st.sampled_from(BAD_VALUES))
    return yaml.safe_dump(data, sort_keys=False)


def validate_cli(path: Path, *command: str) -> tuple[int, str]:
    """``neurosim validate PATH`` (or ``neurosim COMMAND... PATH``) in this process: (exit status, stderr)."""
    from neurosim.cli.main import main

    err, out = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["neurosim", *(command or ("validate",)), str(path)]
    code = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, err.getvalue()


def check(path: Path, *command: str) -> None:
    code, err = validate_cli(path, *command)
    assert "Traceback" not in err, err
    if code:
        assert code == 2, (code, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert str(path) in lines[0] or "nowhere" in lines[0] or "/" in lines[0], err


SOURCES = {
    "chip": REPO / "chips" / "spinnaker2.yaml",
    "scenario": REPO / "scenarios" / "quickstart.yaml",
    "sweep": REPO / "scenarios" / "sweep_digits_chips.yaml",
}


@pytest.mark.parametrize("kind", ["chip", "scenario", "sweep"])
def test_mutated_files_give_a_valid_run_or_one_clean_error(kind):
    text = SOURCES[kind].read_text()
    if kind == "scenario":
        text = text.replace("chips/loihi2.yaml", str(REPO / "chips" / "loihi2.yaml")).replace(
            "models/digits_snn", str(REPO / "models" / "digits_snn"))
    if kind == "sweep":
        text = text.replace("scenarios/quickstart.yaml", str(REPO / "scenarios" / "quickstart.yaml"))

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{kind}.yaml"
            path.write_text(mutate(text, data.draw))
            check(path)

    run()


def test_mutated_model_files_give_a_valid_model_or_one_clean_error():
    source = REPO / "models" / "digits_snn"
    text = (source / "model.yaml").read_text()

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "m"
            folder.mkdir()
            shutil.copy(source / "weights.h5", folder / "weights.h5")
            (folder / "model.yaml").write_text(mutate(text, data.draw))
            check(folder / "model.yaml")

    run()


def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path):
    data = yaml.safe_load(SOURCES["chip"].read_text())
    data["system"]["chips_x"] = 4096
    data["system"]["chips_y"] = 4096
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(data))
    code, err = validate_cli(path)
    assert code == 2 and "cores, expected at most" in err


TINY = {"name": "tiny", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
        "input": {"dataset": "digits", "samples": 2}, "timesteps": 2, "record": {"spikes": True, "cores": False},
        "reference": True, "seed": 0}
RUNS = 30                # mutated tiny runs


def test_mutated_tiny_runs_give_a_trace_or_one_clean_error():
    text = yaml.safe_dump(TINY, sort_keys=False)

    @settings(max_examples=RUNS, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as tmp:
            path, out = Path(tmp) / "tiny.yaml", Path(tmp) / "out"
            path.write_text(mutate(text, data.draw))
            code, err = validate_cli(path, "run", "--no-progress", "--out", str(out))
            assert "Traceback" not in err, err
            traces = list(out.rglob("*")) if out.exists() else []
            if code == 0:
                assert [p.suffix for p in traces if p.is_file()] == [".h5"], traces
            else:
                check(path, "run", "--no-progress", "--out", str(out))
                assert not [p for p in traces if p.is_file()], traces

    run()


@pytest.mark.parametrize("kind", ["chip", "scenario"])
def test_mutated_files_inspect_or_give_one_clean_error(kind):
    text = SOURCES[kind].read_text()
    if kind == "scenario":
        text = yaml.safe_dump(TINY, sort_keys=False)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{kind}.yaml"
            path.write_text(mutate(text, data.draw))
            check(path, "inspect")

    run()


def damage(data: bytes, draw) -> bytes:
    """One random damage to a binary file: bytes changed, a run of them zeroed, the file cut short."""
    raw = bytearray(data)
    how = draw(st.sampled_from(["change", "change", "zero", "cut"]))
    if how == "cut":
        return bytes(raw[:draw(st.integers(0, len(raw) - 1))])
    at = draw(st.integers(0, len(raw) - 1))
    if how == "zero":
        raw[at:at + draw(st.integers(1, 256))] = bytes(len(raw[at:at + 256]))[:len(raw[at:at + 256])]
        return bytes(raw)
    for offset in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
        raw[offset] = draw(st.integers(0, 255))
    return bytes(raw)


BINARY = {
    "weights": REPO / "models" / "digits_snn" / "weights.h5",
    "inputs": None,                                   # an inputs.npy of the digits' shape
    "nir": REPO / "models" / "nir" / "braille_noDelay_bias_zero.nir",
    "netx": REPO / "models" / "netx" / "tiny.net",
}


@pytest.mark.parametrize("kind", sorted(BINARY))
def test_damaged_binary_files_give_a_result_or_one_clean_error(kind):
    """Weights whose checksum was made to match, inputs, NIR graphs and netx networks with bytes
    changed: a valid model or run, or one clean error naming the file."""
    import hashlib

    import numpy as np

    source = BINARY[kind]
    if kind == "inputs":
        buffer = io.BytesIO()
        np.save(buffer, np.random.default_rng(0).integers(0, 17, (2, 2, 64)))
        original = buffer.getvalue()
    else:
        original = source.read_bytes()

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            damaged = damage(original, data.draw)
            if kind == "weights":
                folder = tmp / "m"
                shutil.copytree(source.parent, folder, ignore=shutil.ignore_patterns("*.py", "*.md"))
                (folder / "weights.h5").write_bytes(damaged)
                spec = yaml.safe_load((folder / "model.yaml").read_text())
                spec["weights"]["sha256"] = hashlib.sha256(damaged).hexdigest()
                (folder / "model.yaml").write_text(yaml.safe_dump(spec))
                check(folder / "model.yaml")
                return
            target = tmp / {"inputs": "inputs.npy", "nir": "graph.nir", "netx": "net.net"}[kind]
            target.write_bytes(damaged)
            scenario = dict(TINY)
            if kind == "inputs":
                scenario["input"] = {"file": str(target)}
            else:
                scenario["model"] = {"nir": str(target), "dt": 1e-4} if kind == "nir" else {"netx": str(target)}
                scenario["input"] = {"dataset": "random_spikes" if kind == "nir" else "random", "samples": 2}
            path = tmp / "scenario.yaml"
            path.write_text(yaml.safe_dump(scenario))
            check(path, "run", "--no-progress", "--out", str(tmp / "out")) if kind == "inputs" else check(path)

    run()
