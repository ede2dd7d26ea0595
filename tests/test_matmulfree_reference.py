"""The MatMul-free character LM: its weights file, the numpy reference against the golden torch
logits, BitLinear's quantisers by hand, and the Shakespeare split. No torch needed."""

from __future__ import annotations

import json
import lzma

import h5py
import numpy as np
import pytest

from helpers import REPO, load_script
from neurosim import datasets

MODEL = REPO / "models" / "matmulfree_lm"
WEIGHTS = MODEL / "weights.h5"


reference = load_script(MODEL / "reference.py", "matmulfree_reference")


@pytest.fixture(scope="module")
def model():
    return reference.load(WEIGHTS)


# ---------------------------------------------------------------------------------------------
# the weights file


def test_weights_file_holds_the_documented_datasets():
    assert WEIGHTS.stat().st_size < 1_000_000
    with h5py.File(WEIGHTS, "r") as h5:
        assert h5.attrs["format_version"] == 1 and h5.attrs["model"] == "matmulfree_lm"
        config = json.loads(h5.attrs["config"])
        vocab = json.loads(h5.attrs["vocab"])
        for key in ("train", "metrics"):
            assert isinstance(json.loads(h5.attrs[key]), dict)
        d, n_inter, n_vocab = config["d_model"], config["intermediate"], config["vocab_size"]
        assert len(vocab) == n_vocab and vocab == datasets.load_text(config["dataset"], "test").vocab
        assert h5["embedding"].shape == (n_vocab, d) and h5["embedding"].dtype == np.float32
        assert h5["final_norm"].shape == (d,)
        shapes = {"i_proj": (d, d), "f_proj": (d, d), "g_proj": (d, d), "o_proj": (d, d),
                  "gate_proj": (2 * n_inter, d), "down_proj": (d, n_inter)}
        layers = {f"blocks/{n}/{name}": shape for n in range(config["n_layers"]) for name, shape in shapes.items()}
        layers["head"] = (n_vocab, d)
        for path, shape in layers.items():
            w = h5[f"{path}/weight_ternary"]
            assert w.shape == shape and w.dtype == np.int8, path
            assert set(np.unique(w[()])) <= {-1, 0, 1}, path
            assert h5[f"{path}/weight_scale"].shape == () and h5[f"{path}/weight_scale"].dtype == np.float32
            assert h5[f"{path}/norm_gain"].shape == (shape[1],)
        for n in range(config["n_layers"]):
            for name in ("attn_norm", "g_norm", "mlp_norm", "lower_bound"):
                assert h5[f"blocks/{n}/{name}"].shape == (d,)
        lower_bounds = [h5[f"blocks/{n}/lower_bound"][()] for n in range(config["n_layers"])]
        assert np.all(lower_bounds[0] == 0) and all(np.all((lb >= 0) & (lb < 1)) for lb in lower_bounds)
        n_seq, n_chars = h5["golden/inputs"].shape
        assert h5["golden/logits"].shape == (n_seq, n_chars, n_vocab)


def test_numpy_quantized_forward_reproduces_the_golden_torch_logits(model):
    assert reference.golden_max_abs_diff(model, WEIGHTS) < reference.GOLDEN_TOLERANCE


def test_golden_logits_predict_shakespeare_better_than_chance(model):
    with h5py.File(WEIGHTS, "r") as h5:
        inputs, logits = h5["golden/inputs"][()], h5["golden/logits"][()]
    hits = logits[:, :-1].argmax(axis=-1) == inputs[:, 1:]
    assert hits.mean() > 0.3


def test_streaming_step_by_step_equals_forward(model):
    codes = datasets.load_text("shakespeare", "test").codes[:40].astype(np.int64)
    state = reference.initial_state(model, 1)
    for t in range(len(codes)):
        logits, state = reference.step(model, codes[t:t + 1], state, "float")
    np.testing.assert_allclose(logits[0], reference.forward(model, codes[None], "float")[0, -1], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# BitLinear's quantisers, by hand


def test_activation_quantizer_is_per_token_absmax_int8():
    x = np.array([[0.5, -1.0, 0.25, 0.0],       # s_x = 127: 63.5 rounds to even, 64
                  [2.0, -8.0, 0.0, 0.05],       # s_x = 127 / 8 = 15.875: 31.75 -> 32, 0.79 -> 1
                  [0.0, 0.0, 0.0, 0.0]])        # absmax floored at 1e-5: all codes 0
    codes, s_x = reference.quantize_activations(x)
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(codes, [[64, -127, 32, 0], [32, -127, 0, 1], [0, 0, 0, 0]])
    np.testing.assert_allclose(s_x[:, 0], [127.0, 15.875, 127e5])


def test_weight_quantizer_is_per_tensor_absmean_ternary():
    w = np.array([[0.3, -0.1, 0.0], [0.05, -0.6, 0.2]])
    ternary, scale = reference.quantize_weights(w)
    assert ternary.dtype == np.int8 and scale == np.float32(1.25 / 6)
    # w / scale = [[1.44, -0.48, 0], [0.24, -2.88, 0.96]]: round, then clip to {-1, 0, 1}
    np.testing.assert_array_equal(ternary, [[1, 0, 0], [0, -1, 1]])


def test_bitlinear_accumulates_codes_in_integers_and_rescales_once():
    layer = reference.BitLinear(np.ones(2), np.array([[1, -1], [0, 1]], dtype=np.int8), 0.5)
    x = np.array([3.0, -4.0])                   # RMSNorm: x / sqrt(12.5), absmax 4 / sqrt(12.5)
    s_x = 127 * np.sqrt(12.5) / 4               # codes round(3 * 127 / 4) = 95 and -127
    np.testing.assert_allclose(reference.bitlinear(layer, x, "quantized"), np.array([95 + 127, -127]) * 0.5 / s_x)
    x_hat = x / np.sqrt(12.5)
    np.testing.assert_allclose(reference.bitlinear(layer, x, "float"), [0.5 * (x_hat[0] - x_hat[1]), 0.5 * x_hat[1]])


# ---------------------------------------------------------------------------------------------
# the Shakespeare split and the evaluation windows


def test_shakespeare_split_is_deterministic_and_interleaved_by_4096_char_blocks():
    train, test = datasets.load_text("shakespeare", "train"), datasets.load_text("shakespeare", "test")
    corpus = lzma.decompress((REPO / "neurosim" / "datasets" / "shakespeare.txt.xz").read_bytes()).decode("ascii")
    assert len(train.text) + len(test.text) == len(corpus) == 1_150_302
    assert len(test.text) == 28 * 4096
    block = 4096
    rebuilt, taken = [], {"train": 0, "test": 0}
    for k in range(-(-len(corpus) // block)):
        split, text = ("test", test.text) if k % 10 == 9 else ("train", train.text)
        rebuilt.append(text[taken[split]:taken[split] + block])
        taken[split] += block
    assert "".join(rebuilt) == corpus
    assert test.text[:block] == corpus[9 * block:10 * block]
    assert train.vocab == test.vocab == "".join(sorted(set(corpus))) and len(train.vocab) <= 96
    assert test.codes.dtype == np.uint8 and test.decode(test.codes) == test.text
    np.testing.assert_array_equal(test.encode(test.text[:100]), test.codes[:100])
    again = datasets.load_text("shakespeare", "test")
    assert again.text == test.text and np.array_equal(again.codes, test.codes)


def test_unknown_text_dataset_or_split_is_a_value_error():
    with pytest.raises(ValueError, match="unknown text dataset"):
        datasets.load_text("milton", "test")
    with pytest.raises(ValueError, match="unknown split"):
        datasets.load_text("shakespeare", "validation")


def test_evaluation_segments_predict_every_character_but_the_first_once():
    codes = np.arange(11)
    inputs, targets, valid = reference.segments(codes, reset_every=4)
    assert inputs.shape == (3, 4)
    np.testing.assert_array_equal(targets[valid], codes[1:])
    np.testing.assert_array_equal(inputs[valid], codes[:-1])
    np.testing.assert_array_equal(inputs[:, 0], [0, 4, 8])      # the state is reset before these


@pytest.mark.slow
def test_reference_evaluation_matches_the_torch_metrics(model):
    """Both modes over the whole test split agree with what train.py measured in torch (float32)."""
    with h5py.File(WEIGHTS, "r") as h5:
        metrics = json.loads(h5.attrs["metrics"])
    codes = datasets.load_text("shakespeare", "test").codes
    for mode, key in (("quantized", "test_quantized"), ("float", "test_float_activations")):
        result = reference.evaluate(model, codes, mode)
        assert result.chars == metrics[key]["chars"]
        assert abs(result.bits_per_char - metrics[key]["bits_per_char"]) < 1e-3
        assert abs(result.accuracy - metrics[key]["accuracy"]) < 1e-3
