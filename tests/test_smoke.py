"""Every shipped file through the commands a user would try on it: each chip inspected, each model
validated, inspected and (where NIR can express it) exported, each scenario validated and run
small. A file added to chips/, models/ or scenarios/ is covered without editing this test; each
command must end in success or one `UserError` (exit 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neurosim.cli import cli
from neurosim.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CHIPS = sorted((REPO / "chips").glob("*.yaml"))
MODEL_FOLDERS = sorted(p for p in (REPO / "models").iterdir() if (p / "model.yaml").is_file())
IMPORTED = sorted(p for p in (REPO / "models").glob("*/*") if p.suffix in (".nir", ".net"))
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
# what makes a scenario small: two samples, or a prompt of two tokens and one generated
SMALL_SPIKING = ["input.samples=2"]
SMALL_LANGUAGE = ["language.prompt_tokens=2", "language.generate_tokens=1", "language.accuracy_chars=0",
                  "language.report_prompt_tokens=null"]
TOO_BIG_TO_RUN_HERE = {"loihi2_matmulfree_370m", "fpga_matmulfree_1.3b",   # generated weights of 0.3-1.3 G
                       "loihi1_knn"}                                          # 77 M generated synapses


def command(*args: str) -> tuple[int, str]:
    """Run the `neurosim` command in this process: its exit status and what it printed, as the
    console script would give them (a `UserError` is exit status 2)."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    if isinstance(result.exception, UserError):
        return 2, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception                 # a traceback: the test fails with it
    return result.exit_code, result.output


def ids(paths: list[Path]) -> list[str]:
    return [p.stem if p.suffix == ".yaml" else p.name for p in paths]


@pytest.mark.parametrize("chip", CHIPS, ids=ids(CHIPS))
def test_every_chip_is_inspected(chip):
    code, out = command("inspect", str(chip))
    assert code == 0, out
    assert out.strip()


@pytest.mark.parametrize("model", MODEL_FOLDERS + IMPORTED, ids=ids(MODEL_FOLDERS + IMPORTED))
def test_every_model_is_validated_and_inspected(model):
    code, out = command("validate", str(model))
    assert code == 0, out
    code, out = command("inspect", str(model))
    assert code == 0, out


@pytest.mark.parametrize("model", MODEL_FOLDERS, ids=ids(MODEL_FOLDERS))
def test_every_model_exports_to_nir_or_says_why_not(model, tmp_path):
    code, out = command("export", str(model), str(tmp_path / "m.nir"))
    assert code in (0, 2), out
    if code == 2:                              # one line: what NIR cannot express
        assert "\n" not in out.strip() and ("NIR" in out or "language model" in out), out
    else:
        assert (tmp_path / "m.nir").is_file()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=ids(SCENARIOS))
def test_every_scenario_validates(scenario):
    code, out = command("validate", str(scenario))
    assert code == 0, out


RUNNABLE = [s for s in SCENARIOS if not s.stem.startswith("sweep_") and s.stem not in TOO_BIG_TO_RUN_HERE]


@pytest.mark.parametrize("scenario", RUNNABLE, ids=ids(RUNNABLE))
def test_every_scenario_runs_small(scenario, tmp_path):
    data = yaml.safe_load(scenario.read_text())
    small = SMALL_LANGUAGE if "language" in data else SMALL_SPIKING
    args = ["run", str(scenario), "--out", str(tmp_path), "--no-progress"]
    for setting in small:
        args += ["--set", setting]
    code, out = command(*args)
    assert code == 0, out
    assert list(tmp_path.glob("*.h5")), out


def test_the_validate_command_reports_every_file_and_fails_at_the_end(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nchip: nowhere\nmodel: digits_snn\ninput: {dataset: digits}\ntimesteps: 2\n")
    code, out = command("validate", str(SCENARIOS[0]), str(bad), str(CHIPS[0]))
    assert code == 2
    assert f"{SCENARIOS[0]}: ok" in out and f"{CHIPS[0]}: ok" in out


def test_names_resolve_from_an_empty_folder(tmp_path, monkeypatch):
    """The shipped chips, models and scenarios are found by name wherever neurosim runs."""
    monkeypatch.chdir(tmp_path)
    code, out = command("run", "quickstart", "--set", "input.samples=2", "--chip", "spinnaker2",
                        "--out", str(tmp_path / "t"), "--no-progress")
    assert code == 0, out
    assert "accuracy" in out
    code, out = command("chips")
    assert code == 0 and "loihi2" in out
    code, out = command("models")
    assert code == 0 and "digits_snn" in out and "nir/cnn_sinabs.nir" in out


def test_the_wheel_carries_the_shipped_chips_models_and_scenarios(tmp_path):
    """An installed neurosim finds its chips, models and scenarios inside the package."""
    import subprocess
    import sys
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("neurosim-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, paths in (("chips", CHIPS), ("scenarios", SCENARIOS), ("models", IMPORTED)):
        for path in paths:
            assert f"neurosim/shipped/{folder}/{path.relative_to(REPO / folder).as_posix()}" in names
    for model in MODEL_FOLDERS:
        assert f"neurosim/shipped/models/{model.name}/model.yaml" in names
