"""Language models on chips: the MatMul-free LM lowered to neuron programs runs pipelined on the
engine exactly as the integer reference computes it token by token; its runs' figures; the
ternary pipeline accelerator's costs by hand; and the mistakes a user can make."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import LOIHI2, REPO, make_chip
from neurosim import datasets
from neurosim.cores.neurocore import timing_costs
from neurosim.cores.ternary_pipeline import block_costs, elementwise_ops, token_cost
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.zoo.matmulfree import model as matmulfree
from neurosim.zoo.loader import sha256_of
from neurosim.zoo.matmulfree.lowering import calibrate, embed, lower
from neurosim.mapping.mapper import map_graph
from neurosim.programs.reference import DataflowReference
from neurosim.runs import run
from neurosim.spec.chip import load_chip
from neurosim.traces.trace import read_trace

VOCAB = datasets.load_text("shakespeare", "test").vocab


def tiny_model(seed: int = 0, d: int = 32, glu: int = 64) -> matmulfree.Model:
    model = matmulfree.generate(2, d, glu, len(VOCAB), seed)
    return matmulfree.Model(VOCAB, model.embedding, model.blocks, model.final_norm, model.head, model.config)


@pytest.fixture(scope="module")
def lowered():
    model = tiny_model()
    exponents = calibrate(model, np.random.default_rng(0).integers(0, len(VOCAB), 256))
    graph, depth = lower(model, exponents)
    return model, graph, depth


def _engine_outputs(model, graph, depth, chip, tokens, gap):
    """The last block's output for each token, tokens entering every ``gap`` steps."""
    mapping = map_graph(graph, chip)
    engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0])
    lo = mapping.offsets[graph.readout_population]
    outputs = {}
    for step in range((len(tokens) - 1) * gap + depth + 1):
        index, entering = divmod(step, gap)
        value = embed(model, np.array([tokens[index]]))[0] if entering == 0 and index < len(tokens) else 0
        engine.set_input("embedding", np.broadcast_to(value, (model.d,)))
        engine.step()
        if step >= depth and (step - depth) % gap == 0:
            outputs[(step - depth) // gap] = engine.payload[lo:lo + model.d].copy()
    return [outputs[i] for i in range(len(tokens))]


@pytest.mark.parametrize("chip", ["one_chip", "sliced_over_chips"])
@pytest.mark.parametrize("mode", ["prefill", "generation"])
def test_pipelined_chip_equals_the_token_by_token_reference(lowered, chip, mode):
    """A token every step (prefill) or every depth + 1 steps (generation): the chip's output for every
    token equals the dataflow reference's, bit for bit, on one chip and sliced over four chips."""
    model, graph, depth = lowered
    system = make_chip() if chip == "one_chip" else make_chip(neurons=16, chips_x=2, chips_y=2)
    tokens = np.random.default_rng(1).integers(0, len(VOCAB), 6)
    reference = DataflowReference(graph, 1)
    expected = []
    for token in tokens:
        reference.set_input("embedding", embed(model, np.array([token])))
        expected.append(reference.step()[graph.readout_population][0])
    got = _engine_outputs(model, graph, depth, system, tokens, 1 if mode == "prefill" else depth + 1)
    for i, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(g, e, err_msg=f"token {i}")
    assert any(e.any() for e in expected)


def test_embedding_and_head_on_the_chip_equal_the_reference():
    """With the embedding (one-hot spikes into 8-bit weights) and the head on the chip, the chip's
    logits for every token equal the reference's, and the host sends one spike per token."""
    model = tiny_model(seed=4)
    exponents = calibrate(model, np.random.default_rng(0).integers(0, len(VOCAB), 256))
    graph, depth = lower(model, exponents, embedding_on_chip=True, head_on_chip=True)
    assert graph.populations["embedding"].kind == "spike_source"
    assert graph.populations[graph.readout_population].size == len(VOCAB)
    tokens = np.random.default_rng(3).integers(0, len(VOCAB), 5)
    reference = DataflowReference(graph, 1)
    expected = []
    for token in tokens:
        reference.set_input("embedding", embed(model, np.array([token]), on_chip=True))
        expected.append(reference.step()[graph.readout_population][0])
    chip = make_chip()
    mapping = map_graph(graph, chip)
    engine = Engine(graph, mapping, timing_costs(chip, graph, mapping)[0])
    lo = mapping.offsets[graph.readout_population]
    for step in range(len(tokens) + depth):
        one_hot = embed(model, np.array([tokens[step]]), on_chip=True)[0] if step < len(tokens) else 0
        engine.set_input("embedding", np.broadcast_to(one_hot, (len(VOCAB),)))
        counters = engine.step()
        assert counters.spikes[-1] == (1 if step < len(tokens) else 0), "the host sends one spike per token"
        if step >= depth:
            np.testing.assert_array_equal(engine.payload[lo:lo + len(VOCAB)], expected[step - depth])


def test_trained_model_bits_per_char_within_two_percent_of_float_activations():
    """On held-out text the chip's integer arithmetic scores within 2 % of the same ternary model with
    float activations (2,048 characters here; the scenario scores more)."""
    from neurosim.zoo.loader import load_model
    from neurosim.zoo.language import lower_language_model, score

    lm, _ = load_model(REPO / "models" / "matmulfree_lm")
    low = lower_language_model(lm)
    codes = datasets.load_text("shakespeare", "test").codes[:2049]
    chip, floating = score(low, codes, "chip"), score(lm.model, codes, "float")
    assert abs(chip.bits_per_char / floating.bits_per_char - 1) < 0.02
    assert chip.accuracy > 0.4


# ---------------------------------------------------------------------------------------------
# runs


def _model_folder(tmp_path: Path, **extra) -> Path:
    folder = tmp_path / "models" / "tiny_lm"
    folder.mkdir(parents=True)
    matmulfree.save(tiny_model(), folder / "weights.h5")
    spec = {"name": "tiny_lm", "kind": "matmulfree_lm", "dataset": "shakespeare", "calibration_chars": 512,
            "weights": {"file": "weights.h5", "sha256": sha256_of(folder / "weights.h5")}, **extra}
    (folder / "model.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _scenario(model: Path, chip=LOIHI2, **language) -> dict:
    return {"name": "lm", "chip": str(chip), "model": str(model), "input": {"dataset": "shakespeare"},
            "language": {"prompt_tokens": 12, "generate_tokens": 3, **language}}


LANGUAGE_KEYS = {"tokens_per_s", "energy_per_token_j", "prefill_tokens_per_s", "prefill_energy_per_token_j",
                 "ttft_s", "power_w", "accuracy", "bits_per_char"}


def test_language_run_on_loihi2(tmp_path):
    """A prompt and generated tokens on Loihi 2: the figures the issue names, the chip equal to the
    reference, prefill faster per token than generation, and the trace's tokens and sparsity."""
    result = run(_scenario(_model_folder(tmp_path), accuracy_chars=512, report_prompt_tokens=100),
                 out_dir=tmp_path / "traces")
    s = result.summary
    assert LANGUAGE_KEYS <= set(s) and s["matches_reference"] is True
    assert s["prefill_tokens_per_s"] > s["tokens_per_s"] > 0 and s["ttft_s"] > 0
    assert 0 <= s["accuracy"] <= 1 and s["bits_per_char"] > 0 and s["scored_chars"] == 512
    trace = read_trace(result.trace_path)
    tokens = trace["tokens"]
    assert list(tokens["phase"]) == [0] * 12 + [1] * 3
    assert np.all(np.diff(tokens["output_time_ns"]) > 0)
    assert trace["layers"]["sparsity"].shape[1] == len(trace["layers"]["names"])
    assert len(trace.meta["generated_text"]) == 3
    from neurosim.analysis.figures import plot_trace
    assert [p.name for p in plot_trace(result.trace_path, tmp_path / "figures")] == ["tokens.png",
                                                                                       "layer_sparsity.png"]


def test_language_run_on_the_ternary_pipeline(tmp_path):
    """The same model on the FPGA accelerator: its figures follow from the block costs."""
    result = run(_scenario(_model_folder(tmp_path), chip=REPO / "chips" / "ternary_fpga.yaml"),
                 out_dir=tmp_path / "traces")
    s = result.summary
    from neurosim.analysis.figures import plot_trace
    assert [p.name for p in plot_trace(result.trace_path, tmp_path / "figures")] == ["block_times.png"]
    assert LANGUAGE_KEYS <= set(s) and s["tokens_per_s"] > 0
    chip, _ = load_chip(REPO / "chips" / "ternary_fpga.yaml")
    blocks = block_costs(chip.core, tiny_model())
    assert s["tokens_per_s"] < 1e9 / sum(b.time_ns for b in blocks)       # plus the host's transfers


def test_block_costs_by_hand():
    """A block's weights pass the matrix cores 4 units x 16 cores a cycle at 60 MHz; they stay on chip
    when they fit, and stream at the memory's bandwidth when they do not."""
    chip, _ = load_chip(REPO / "chips" / "ternary_fpga.yaml")
    model = tiny_model(d=32, glu=64)
    weights = 4 * 32 * 32 + 2 * 64 * 32 + 32 * 64                        # i, f, g, o; gate; down
    cycles = 4 * (32 * 32 // 64) + (128 * 32 // 64) + (32 * 64 // 64) + -(-elementwise_ops(32, 64) // 16)
    block = block_costs(chip.core, model)[0]
    assert block.weights == weights and block.stream_ns == 0
    assert block.compute_ns == pytest.approx(cycles / 60e6 * 1e9)
    streaming = chip.core.model_copy(update={"on_chip_buffer_bytes": 0})
    assert block_costs(streaming, model)[0].stream_ns == pytest.approx(weights * 2 / 6.144e11 * 1e9)
    cost = token_cost(chip.core, 3.575, block_costs(chip.core, model), prefill=False)
    assert cost.energy_pj["matrix"] == pytest.approx(2 * weights * 0.42)
    assert cost.energy_pj["static"] == pytest.approx(3.575 * cost.time_ns * 1e3)


# ---------------------------------------------------------------------------------------------
# mistakes


def test_language_model_needs_a_language_section(tmp_path):
    scenario = _scenario(_model_folder(tmp_path))
    del scenario["language"]
    with pytest.raises(UserError) as err:
        run(scenario, write=False)
    assert err.value.field == "language"


def test_pipeline_chip_refuses_an_egru(tmp_path):
    scenario = {"name": "x", "chip": str(REPO / "chips" / "ternary_fpga.yaml"), "model": str(REPO / "models" / "egru_lm"),
                "input": {"dataset": "shakespeare"}, "language": {"prompt_tokens": 4, "generate_tokens": 2}}
    with pytest.raises(UserError) as err:
        run(scenario, write=False)
    assert err.value.field == "model" and "MatMul-free" in err.value.message


def test_model_with_both_weights_and_a_shape_is_refused(tmp_path):
    folder = _model_folder(tmp_path, generated={"shape": "370m"})
    with pytest.raises(UserError) as err:
        run(_scenario(folder), write=False)
    assert "either weights" in err.value.message


def test_cli_prints_language_figures(tmp_path):
    from neurosim.cli import cli

    scenario = tmp_path / "lm.yaml"
    scenario.write_text(yaml.safe_dump(_scenario(_model_folder(tmp_path))))
    out = CliRunner().invoke(cli, ["run", str(scenario), "--out", str(tmp_path / "traces")])
    assert out.exit_code == 0, out.output
    assert "generation" in out.output and "tokens/s" in out.output and "time to first token" in out.output
