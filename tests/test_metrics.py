"""Figures that mean what they say: a language model's sparsity while its populations hold a
token apart from its pipeline's idling; an imported model's readout error relative to the
readout's range; a run's summary as an HTML table; the phases a language run shows and logs."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stderr
from html.parser import HTMLParser

import nir
import numpy as np
import pytest
import yaml

from helpers import REPO
from neurosim.analysis import units as analysis_units
from neurosim.analysis.summary import summary_lines
from neurosim.interop.nir_export import export_nir
from neurosim.runs import run
from neurosim.runs.activity import PipelineWork, pipeline_stages
from neurosim.runs.scoring import readout_errors
from neurosim.traces import units
from neurosim.traces.tables import summary_html
from neurosim.zoo.loader import load_model

LOIHI2 = str(REPO / "chips" / "loihi2.yaml")


# ---------------------------------------------------------------------------------------------
# a language model's activity apart from its pipeline's idling


def test_work_counts_a_population_only_in_the_steps_it_holds_a_token():
    """Two populations, stages 0 and 2, tokens entering at steps 0, 1 and 5 of 8: each holds one
    in three steps; sparsity counts those steps only, occupancy their share."""
    events = np.zeros((8, 2), np.int64)
    events[[0, 1, 5], 0] = [2, 4, 1]             # a (4 neurons) holds tokens in steps 0, 1, 5
    events[[2, 3, 7], 1] = [1, 0, 2]             # b (2 neurons) in steps 2, 3, 7
    events[4, 1] = 1                             # ... and sends once between its tokens
    work = PipelineWork.count(["a", "b"], np.array([4, 2]), events, {"b": 2}, [0, 1, 5])
    summary, layers = work.summary(), work.layers()
    assert summary["mean_sparsity_active"] == pytest.approx(1 - (7 + 3) / (3 * 4 + 3 * 2))
    assert summary["pipeline_occupancy"] == pytest.approx((3 * 4 + 3 * 2) / (6 * 8))
    assert summary["events_between_tokens"] == 1
    assert list(layers["stage"]) == [0, 2] and list(layers["active_steps"]) == [3, 3]
    assert layers["occupancy"] == pytest.approx([3 / 8, 3 / 8])
    assert layers["sparsity_active"] == pytest.approx([1 - 7 / 12, 1 - 3 / 6])


def test_a_model_that_names_its_stages_keeps_them():
    class Held:
        def stages(self):
            return {"x": 1, "y": 2}

    assert pipeline_stages(Held()) == {"x": 1, "y": 2}


@pytest.fixture(scope="module")
def language_run():
    """The small MatMul-free model on Loihi 2 for a few tokens, with its progress on: the result,
    what it logged and what it showed on the terminal."""
    scenario = yaml.safe_load((REPO / "scenarios" / "loihi2_matmulfree_small.yaml").read_text())
    scenario.pop("baselines")
    scenario["language"] = {"prompt_tokens": 5, "generate_tokens": 3, "accuracy_chars": 64}
    logger = logging.getLogger("neurosim")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    terminal = io.StringIO()
    try:
        with redirect_stderr(terminal):
            result = run(scenario, write=False, progress=True, base_dir=REPO / "scenarios")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return result, [r.getMessage() for r in records], terminal.getvalue()


def test_a_language_run_counts_its_sparsity_while_active_apart_from_the_pipelines_occupancy(language_run):
    result, *_ = language_run
    s, trace = result.summary, result.trace
    layers, tokens = trace["layers"], trace["tokens"]
    n, depth = len(layers["events"]), s["depth_steps"]
    output = list(layers["names"]).index(trace.meta.get("output", "") or layers["names"][-1])
    assert layers["stage"][output] == depth                             # the output leaves depth steps in
    entries = tokens["entry_step"]
    held = [int(np.sum(entries + stage < n)) for stage in layers["stage"]]
    assert list(layers["active_steps"]) == held                        # every token once through each stage
    sizes = layers["sizes"].astype(float)
    assert s["pipeline_occupancy"] == pytest.approx((sizes * held).sum() / (sizes.sum() * n))
    assert s["events_between_tokens"] == 0                             # the stages are where the events are
    assert 1 - s["mean_sparsity"] == pytest.approx((1 - s["mean_sparsity_active"]) * s["pipeline_occupancy"])
    assert s["pipeline_occupancy"] < 0.25 < 1 - s["mean_sparsity_active"]   # mostly idle, busy when it works
    lines = "\n".join(summary_lines(s))
    assert "silent per step" not in lines
    assert f"pipeline occupancy {units.percent(s['pipeline_occupancy'])}" in lines
    assert f"{units.percent(s['mean_sparsity_active'])} of neurons silent in the steps" in lines


def test_a_language_run_shows_and_logs_its_phases(language_run):
    _, messages, terminal = language_run
    phases = [m.split(":")[0] for m in messages if m.endswith(" s")]
    for name in ("loading the model", "mapping", "prefill", "generation", "the reference", "scoring", "the run"):
        assert name in phases, (name, phases)
    assert phases.index("prefill") < phases.index("generation") < phases.index("scoring")
    for shown in ("loading the model: ", "mapping: ", "prefill: ", "/5 [", "generation: ", "/3 [", "scoring: "):
        assert shown in terminal, shown                     # bars over the tokens, each phase's time so far
    assert "the run: " not in terminal


# ---------------------------------------------------------------------------------------------
# an imported model's readout against its float model


def test_a_nir_round_trip_reads_out_what_its_float_model_does(tmp_path):
    """digits_snn exported to NIR and imported again: the chip's membrane is 64 times the float
    one (its scale); in the float model's units the readout agrees, as every decision does."""
    graph, _ = load_model(REPO / "models" / "digits_snn")
    path = export_nir(graph, tmp_path / "digits.nir")
    s = run({"name": "rt", "chip": LOIHI2, "model": {"nir": str(path)}, "input": {"dataset": "digits", "samples": 8},
             "timesteps": 16}, write=False).summary
    assert s["float_decisions_equal"] == 1.0
    assert s["float_readout_rel_error"] < 1e-9 and s["float_readout_max_rel_error"] < 1e-9
    assert "readout off by 0% of its range" in "\n".join(summary_lines(s))


def test_a_converted_readout_is_off_by_a_small_part_of_its_range():
    """Float weights rounded to 8 bits: the readout differs, by a few per cent of its range."""
    rng = np.random.default_rng(0)
    n_in, n_h, n_out = 8, 16, 4
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([n_in])),
        "fc1": nir.Affine(weight=rng.normal(2.0, 4.0, (n_h, n_in)), bias=np.zeros(n_h)),
        "lif": nir.LIF(tau=np.full(n_h, 0.02), r=np.ones(n_h), v_leak=np.zeros(n_h), v_threshold=np.ones(n_h)),
        "fc2": nir.Affine(weight=rng.normal(0.0, 1.0, (n_out, n_h)), bias=np.zeros(n_out)),
        "li": nir.LI(tau=np.full(n_out, 0.05), r=np.ones(n_out), v_leak=np.zeros(n_out)),
        "output": nir.Output(output_type=np.array([n_out]))},
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "output")])
    s = run({"name": "n", "chip": LOIHI2, "model": {"nir": graph, "dt": 1e-3},
             "input": {"dataset": "random_spikes", "samples": 8, "rate": 0.3}, "timesteps": 40}, write=False).summary
    assert s["float_spike_agreement"] > 0.95
    assert 0 < s["float_readout_rel_error"] <= s["float_readout_max_rel_error"] < 0.1


def test_readout_errors_are_relative_to_the_range():
    chip, exact = np.array([[100.0, 1.0], [-50.0, 0.0]]), np.array([[99.0, 0.5], [-50.0, 0.5]])
    errors = readout_errors(chip, exact)
    assert errors["float_readout_rel_error"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4 / 99)
    assert errors["float_readout_max_rel_error"] == pytest.approx(1 / 99)


# ---------------------------------------------------------------------------------------------
# the summary in a notebook


class Page(HTMLParser):
    """Checks that tags close in order; keeps the header and data cells."""

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.cells: dict[str, list[str]] = {"th": [], "td": []}

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)
        if tag in self.cells:
            self.cells[tag].append("")

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing open"

    def handle_data(self, data):
        if self.open and self.open[-1] in self.cells:
            self.cells[self.open[-1]][-1] += data


def test_a_run_result_shows_its_summary_as_an_html_table():
    result = run({"name": "h", "chip": LOIHI2, "model": str(REPO / "models" / "digits_snn"),
                  "input": {"dataset": "digits", "samples": 2}, "timesteps": 4}, write=False)
    page = Page()
    page.feed(result._repr_html_())
    page.close()
    assert page.open == []
    assert page.cells["th"] == list(result.summary)
    shown = dict(zip(page.cells["th"], page.cells["td"]))
    assert shown["energy_per_inference_j"] == units.si(result.summary["energy_per_inference_j"], "J")
    assert shown["accuracy"] == units.percent(result.summary["accuracy"])
    assert shown["cores_used"] == f"{result.summary['cores_used']:,}"
    assert "µJ" in shown["energy_per_inference_j"] and shown["matches_reference"] in ("yes", "no")
    assert "&lt;b&gt;" in summary_html({"<b>": "x"})                   # names are escaped


def test_the_formatter_is_one_for_runs_and_analysis():
    assert analysis_units.si is units.si and analysis_units.percent is units.percent
    assert units.summary_value("ttft_s", 0.0171) == "17.1 ms"
    assert units.summary_value("tokens_per_s", 3913.2) == "3,913 tokens/s"
    assert units.summary_value("accuracy", float("nan")) == "n/a"


# ---------------------------------------------------------------------------------------------
# a checkpoint is checked against the run it resumes


def test_a_resumed_run_refuses_records_unlike_its_own(tmp_path, monkeypatch):
    """A checkpoint of the run's own key whose records are of another type is refused, not
    poured into the run's records."""
    from neurosim.errors import UserError
    from neurosim.runs.checkpoint import Checkpoint

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Checkpoint, "remove", lambda self: None)            # keep the last save
    scenario = {"name": "ck", "chip": LOIHI2, "model": str(REPO / "models" / "digits_snn"),
                "input": {"dataset": "digits", "samples": 4}, "timesteps": 4, "checkpoint_every": 8}
    run(scenario, write=False)
    path = next((tmp_path / ".neurosim" / "checkpoints").iterdir())
    with np.load(path) as saved:
        arrays = dict(saved)
    arrays["bounds_ns"] = arrays["bounds_ns"].astype(np.float32)
    np.savez(path, **arrays)
    with pytest.raises(UserError, match="bounds_ns"):
        run(scenario, write=False, resume=True)


@pytest.mark.parametrize("ratio, words", [(3.2, "3.2x less energy"), (0.623, "1.61x more energy"),
                                          (1.0, "the same energy")])
def test_gpu_energy_ratios_read_the_right_way_round(ratio, words):
    """The ratio is the GPU's energy over the chip's: above one the chip needs less, below one more."""
    from neurosim.analysis.summary import times_energy
    assert times_energy(ratio) == words
