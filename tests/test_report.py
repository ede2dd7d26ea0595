"""`neurosim report`: one self-contained page whose figures are all embedded images, whose tables
are well formed, whose sections come in order, which escapes what it takes from the trace, and
which shows a language model's generated text."""

from __future__ import annotations

import base64
import shutil
from html.parser import HTMLParser

import h5py
import pytest
import yaml
from click.testing import CliRunner

from helpers import REPO
from neurosim.analysis.report import build_report
from neurosim.analysis.summary import summary_rows
from neurosim.errors import UserError
from neurosim.runs import run
from neurosim.traces.trace import read_trace

MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/svg+xml": b"<?xml"}


class Page(HTMLParser):
    """The parts of a page the tests look at: images, tables (rows of cells), headings, text."""

    def __init__(self):
        super().__init__()
        self.images, self.tables, self.headings, self.text = [], [], [], []
        self.open_heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append(0)
        elif tag in ("td", "th"):
            self.tables[-1][-1] += 1
        elif tag == "h2":
            self.open_heading = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self.headings.append(self.open_heading)
            self.open_heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self.open_heading is not None:
            self.open_heading += data


def parse(path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def decoded(src: str) -> tuple[str, bytes]:
    assert src.startswith("data:") and ";base64," in src, src[:40]
    mime, data = src[5:].split(";base64,", 1)
    return mime, base64.b64decode(data, validate=True)


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return run({"name": "rep", "chip": str(REPO / "chips" / "loihi2.yaml"), "model": str(REPO / "models" / "digits_snn"),
                "input": {"dataset": "digits", "samples": 4}, "timesteps": 4, "record": {"spikes": True}},
               out_dir=tmp_path_factory.mktemp("traces")).trace_path


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_every_figure_is_an_embedded_image_and_every_table_is_well_formed(trace, tmp_path, fmt):
    page = parse(build_report(trace, tmp_path / "r.html", fmt=fmt))
    assert len(page.images) == 4 + 1                  # the trace's four figures and the per-sample distributions
    for src in page.images:
        mime, data = decoded(src)
        assert data.startswith(MAGIC[mime]) and mime == {"png": "image/png", "svg": "image/svg+xml"}[fmt]
    assert len(page.tables) >= 4
    for rows in page.tables:
        assert rows and len(set(rows)) == 1, rows      # every row has the header's number of cells


def test_sections_come_in_order_and_the_summary_speaks_as_the_cli(trace, tmp_path):
    page = parse(build_report(trace, tmp_path / "r.html"))
    assert page.headings == ["Summary", "Verdicts", "Mapping and utilisation", "Per-sample distributions", "Figures",
                             "Scenario", "Chip", "Model", "All summary attributes"]
    text = " ".join(page.text)
    for label, line in summary_rows(read_trace(trace).summary):
        assert label in text and line in text
    assert "the chip equals its reference" in text and "the energy components add up" in text


def test_text_from_the_trace_is_escaped(trace, tmp_path):
    hostile = tmp_path / "hostile.h5"
    shutil.copy(trace, hostile)
    with h5py.File(hostile, "r+") as h5:
        h5["meta"].attrs["scenario_name"] = "<script>alert(1)</script>"
        h5["meta"].attrs["chip_yaml"] = "name: x</pre><img src=x onerror=alert(1)>"
    html = build_report(hostile, tmp_path / "h.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "onerror=alert(1)>" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_report_options_from_the_cli(trace, tmp_path):
    from neurosim.cli import cli

    out = CliRunner().invoke(cli, ["report", str(trace), "--out", str(tmp_path / "s.html"), "--format", "svg",
                                   "--sample", "3"])
    assert out.exit_code == 0, out.output
    assert all(decoded(src)[0] == "image/svg+xml" for src in parse(tmp_path / "s.html").images)
    with pytest.raises(UserError, match="png or svg"):
        build_report(trace, tmp_path / "p.html", fmt="pdf")


def test_a_language_models_report_shows_its_prompt_and_generated_text(tmp_path):
    data = yaml.safe_load((REPO / "scenarios" / "spinnaker2_egru_small.yaml").read_text())
    data |= {"chip": str(REPO / "chips" / "spinnaker2.yaml"), "model": str(REPO / "models" / "egru_lm"),
             "language": {"prompt_tokens": 8, "generate_tokens": 4, "accuracy_chars": 64}, "baselines": []}
    path = run(data, out_dir=tmp_path).trace_path
    trace = read_trace(path)
    page = parse(build_report(path, tmp_path / "lm.html"))
    assert "Generated text" in page.headings and "Per-sample distributions" not in page.headings
    vocab = trace.attrs["tokens"]["vocab"]
    prompt = "".join(vocab[c] for c in trace["tokens"]["input"][trace["tokens"]["phase"] == 0])
    text = "".join(page.text)
    assert prompt + trace.meta["generated_text"] in text
    assert len(page.images) == 2 and all(decoded(src)[1].startswith(MAGIC["image/png"]) for src in page.images)
