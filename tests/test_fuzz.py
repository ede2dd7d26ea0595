"""Bad input never crashes: valid chip, scenario, sweep and model files, mutated at random (a
field deleted or given a wrong type, a negative, huge or absurd value, an unknown key, a unit in
a number, broken YAML), are either still valid or give one clean error line naming the file,
with exit status 2 and no traceback."""

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


def validate_cli(path: Path) -> tuple[int, str]:
    """``neurosim validate PATH`` in this process: (exit status, stderr)."""
    from neurosim.cli.main import main

    err, out = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["neurosim", "validate", str(path)]
    code = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, err.getvalue()


def check(path: Path) -> None:
    code, err = validate_cli(path)
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
