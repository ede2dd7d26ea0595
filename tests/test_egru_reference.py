"""The EGRU character LM: its weights file, the event-driven numpy forward against the golden torch
logits, the event rule and the CSR scatter by hand. No torch needed."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from helpers import REPO, load_script
from neurosim import datasets

MODEL = REPO / "models" / "egru_lm"
WEIGHTS = MODEL / "weights.h5"


reference = load_script(MODEL / "reference.py", "egru_reference")
Csr, EgruLayer, LayerState = reference.Csr, reference.EgruLayer, reference.LayerState


@pytest.fixture(scope="module")
def model():
    return reference.load(WEIGHTS)


def _pruned_matrices(n_layers: int) -> list[str]:
    return [f"layers/{n}/{name}" for n in range(n_layers) for name in ("input_weight", "recurrent_weight")]


# ---------------------------------------------------------------------------------------------
# the weights file


def test_weights_file_holds_the_documented_datasets():
    assert WEIGHTS.stat().st_size < 1_500_000
    with h5py.File(WEIGHTS, "r") as h5:
        assert h5.attrs["format_version"] == 1 and h5.attrs["model"] == "egru_lm"
        config = json.loads(h5.attrs["config"])
        vocab = json.loads(h5.attrs["vocab"])
        for key in ("train", "metrics"):
            assert isinstance(json.loads(h5.attrs[key]), dict)
        v, e, h = config["vocab_size"], config["embed"], config["hidden"]
        assert config["gates"] == "zrg" and config["reset_every"] == reference.RESET_EVERY
        assert len(vocab) == v and vocab == datasets.load_text(config["dataset"], "test").vocab
        assert h5["embedding"].shape == (v, e) and h5["embedding"].dtype == np.float32
        n_in = e
        for n in range(config["n_layers"]):
            g = h5[f"layers/{n}"]
            shapes = {"input_weight": (n_in, 3 * h), "recurrent_weight": (h, 3 * h), "input_bias": (3 * h,),
                      "recurrent_bias": (3 * h,), "threshold": (h,)}
            for name, shape in shapes.items():
                assert g[name].shape == shape and g[name].dtype == np.float32, f"layers/{n}/{name}"
            for name in ("input_weight", "recurrent_weight"):
                csr = g[f"{name}_csr"]
                rows = shapes[name][0]
                assert tuple(csr.attrs["shape"]) == shapes[name]
                assert csr["indptr"].shape == (rows + 1,) and csr["indptr"].dtype == np.int32
                assert csr["indices"].dtype == np.int32 and csr["values"].dtype == np.float32
                assert csr["indices"].shape == csr["values"].shape == (csr["indptr"][-1],)
            n_in = h
        assert h5["readout/weight"].shape == (h, v) and h5["readout/bias"].shape == (v,)
        n_seq, n_chars = h5["golden/inputs"].shape
        assert h5["golden/inputs"].dtype == np.uint8
        assert h5["golden/logits"].shape == (n_seq, n_chars, v) and h5["golden/logits"].dtype == np.float32
        assert h5["golden/event_counts"].shape == (n_seq, n_chars, config["n_layers"])


def test_pruned_matrices_are_80_to_90_percent_sparse_as_the_metrics_say():
    with h5py.File(WEIGHTS, "r") as h5:
        config, metrics = json.loads(h5.attrs["config"]), json.loads(h5.attrs["metrics"])
        for path in _pruned_matrices(config["n_layers"]):
            sparsity = float(np.mean(h5[path][()] == 0))
            assert 0.8 <= sparsity <= 0.9, path
            assert sparsity == pytest.approx(metrics["weight_sparsity"][path], abs=1e-6), path


def test_csr_and_dense_weights_agree():
    with h5py.File(WEIGHTS, "r") as h5:
        config = json.loads(h5.attrs["config"])
        for path in _pruned_matrices(config["n_layers"]):
            dense, csr = h5[path][()], reference.read_csr(h5[f"{path}_csr"])
            np.testing.assert_array_equal(csr.to_dense(), dense, err_msg=path)
            assert csr.nnz == np.count_nonzero(dense) and np.all(csr.values != 0), path
            for j in range(csr.shape[0]):                 # targets ascend within each row
                assert np.all(np.diff(csr.indices[csr.indptr[j]:csr.indptr[j + 1]]) > 0), path


def test_loaded_model_uses_the_csr_weights(model):
    with h5py.File(WEIGHTS, "r") as h5:
        for n, layer in enumerate(model.layers):
            assert layer.recurrent_weight.nnz == np.count_nonzero(h5[f"layers/{n}/recurrent_weight"][()])
            np.testing.assert_array_equal(layer.input_weight.to_dense(), h5[f"layers/{n}/input_weight"][()])


# ---------------------------------------------------------------------------------------------
# the numpy forward against torch


def test_numpy_forward_reproduces_the_golden_torch_logits_and_event_counts(model):
    diff, steps_with_other_counts = reference.golden_check(model, WEIGHTS)
    assert steps_with_other_counts == 0
    assert diff < reference.GOLDEN_TOLERANCE


def test_golden_logits_predict_shakespeare_better_than_chance():
    with h5py.File(WEIGHTS, "r") as h5:
        inputs, logits = h5["golden/inputs"][()], h5["golden/logits"][()]
    hits = logits[:, :-1].argmax(axis=-1) == inputs[:, 1:]
    assert hits.mean() > 0.3


# ---------------------------------------------------------------------------------------------
# the event rule and the CSR scatter, by hand


def _tiny_layer(z_bias: float = 0.0) -> EgruLayer:
    """Two units, one input. Unit 0's event feeds unit 1's candidate through R[0, g1] = 0.8."""
    h = 2
    w = np.zeros((1, 3 * h), np.float32)
    w[0, 2 * h:] = [1.0, 0.5]                       # input -> g of both units
    r = np.zeros((h, 3 * h), np.float32)
    r[0, 2 * h + 1] = 0.8                           # unit 0 -> g of unit 1
    b = np.array([z_bias, z_bias, 0.0, 0.0, 1.0, 0.0], np.float32)     # z, r (r = σ(0) = 0.5), g
    b_r = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.1], np.float32)
    return EgruLayer(Csr.from_dense(w), b, Csr.from_dense(r), b_r, np.array([0.3, 0.3], np.float32))


def test_event_rule_by_hand():
    layer = _tiny_layer()
    x = np.array([[1.0]], np.float32)
    zero = np.zeros((1, 2), np.float32)
    # step 1 from zero: u = 0.5, r = 0.5, g0 = tanh(1 + 1) , g1 = tanh(0.5 + 0.5 * 0.1); c̃ = 0.5 g
    state, e, _ = reference.egru_step(layer, x, LayerState(zero, zero))
    c0, c1 = 0.5 * np.tanh(2.0), 0.5 * np.tanh(0.55)          # 0.482 > 0.3: event; 0.250 < 0.3: silent
    np.testing.assert_array_equal(e, [[True, False]])
    np.testing.assert_allclose(state.y, [[c0, 0.0]], rtol=1e-6)            # the event carries c̃
    np.testing.assert_allclose(state.c, [[c0 - 0.3, c1]], rtol=1e-6)       # reset by subtracting ϑ
    # step 2: unit 0's event y0 reaches unit 1's candidate, gated by r: g1 = tanh(0.5 + 0.5 (0.8 y0 + 0.1))
    state2, e2, _ = reference.egru_step(layer, x, state)
    c0_2 = 0.5 * (c0 - 0.3) + 0.5 * np.tanh(2.0)
    c1_2 = 0.5 * c1 + 0.5 * np.tanh(0.5 + 0.5 * (0.8 * c0 + 0.1))
    np.testing.assert_array_equal(e2, [[True, True]])
    np.testing.assert_allclose(state2.y, [[c0_2, c1_2]], rtol=1e-6)
    np.testing.assert_allclose(state2.c, [[c0_2 - 0.3, c1_2 - 0.3]], rtol=1e-6)


def test_an_event_needs_the_state_strictly_above_the_threshold():
    layer = _tiny_layer(z_bias=100.0)               # u = σ(100) = 1 in float32: c̃ = c exactly
    at = np.array([[0.3, np.nextafter(np.float32(0.3), np.float32(1))]], np.float32)
    state, e, _ = reference.egru_step(layer, np.zeros((1, 1), np.float32), LayerState(at, np.zeros_like(at)))
    np.testing.assert_array_equal(e, [[False, True]])
    np.testing.assert_array_equal(state.c, [[at[0, 0], at[0, 1] - np.float32(0.3)]])


def test_non_negative_thresholds_keep_the_state_and_the_events_in_range(model):
    """With ϑ ≥ 0 the state stays in (-1, 1) and every event carries a value in (ϑ, 1)."""
    assert all(np.all(layer.threshold >= 0) for layer in model.layers)
    with h5py.File(WEIGHTS, "r") as h5:
        inputs = h5["golden/inputs"][()].astype(np.int64)
    state = reference.initial_state(model, len(inputs))
    for t in range(inputs.shape[1]):
        _, state, stats = reference.step(model, inputs[:, t], state)
        for layer, layer_state, e in zip(model.layers, state, stats.events):
            threshold = np.broadcast_to(layer.threshold, e.shape)
            assert np.all(np.abs(layer_state.c) < 1)
            assert np.all(layer_state.y[e] > threshold[e]) and np.all(layer_state.y[e] < 1)
            assert np.all(layer_state.y[~e] == 0)


def test_event_matvec_reads_only_the_rows_of_nonzero_inputs():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(20, 30)).astype(np.float32)
    dense[rng.random(dense.shape) < 0.85] = 0
    csr = Csr.from_dense(dense)
    inputs = rng.normal(size=(3, 20)).astype(np.float32)
    inputs[rng.random(inputs.shape) < 0.7] = 0
    out, synapses = reference.event_matvec(csr, inputs)
    np.testing.assert_allclose(out, inputs @ dense, rtol=1e-5, atol=1e-6)
    row_nnz = np.count_nonzero(dense, axis=1)
    np.testing.assert_array_equal(synapses, [(row_nnz * (x != 0)).sum() for x in inputs])


def test_a_silent_layer_reads_no_recurrent_synapse(model):
    layer = model.layers[0]
    zero = np.zeros((1, layer.units), np.float32)
    _, _, synapses = reference.egru_step(layer, model.embedding[[5]], LayerState(zero, zero))
    assert synapses[0] == layer.input_weight.nnz      # the embedding is dense; y = 0 reads no row of R


# ---------------------------------------------------------------------------------------------
# evaluation


def test_evaluation_segments_predict_every_character_but_the_first_once():
    codes = np.arange(11)
    inputs, targets, valid = reference.segments(codes, reset_every=4)
    np.testing.assert_array_equal(targets[valid], codes[1:])
    np.testing.assert_array_equal(inputs[:, 0], [0, 4, 8])      # the state is reset before these


def test_short_evaluation_reports_rates_in_range(model):
    codes = datasets.load_text("shakespeare", "test").codes[:600]
    m = reference.evaluate(model, codes, reset_every=200)
    assert m.chars == 599 and 0 < m.bits_per_char < 4.5 and 0.2 < m.accuracy < 1
    assert all(0.05 < rate < 0.6 for rate in m.event_rate) and m.synops_per_char > 0


@pytest.mark.slow
def test_reference_evaluation_matches_the_torch_metrics(model):
    """The whole test split agrees with what train.py measured in torch (float32)."""
    with h5py.File(WEIGHTS, "r") as h5:
        metrics = json.loads(h5.attrs["metrics"])["test"]
    result = reference.evaluate(model, datasets.load_text("shakespeare", "test").codes)
    assert result.chars == metrics["chars"]
    assert abs(result.bits_per_char - metrics["bits_per_char"]) < 1e-3
    assert abs(result.accuracy - metrics["accuracy"]) < 1e-3
    np.testing.assert_allclose(result.event_rate, metrics["event_rate"], atol=1e-3)
