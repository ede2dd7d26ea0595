"""The EGRU language model as trained, in plain numpy float32: event-driven through CSR weights.

The model (Subramoney et al., ICLR 2023, "Efficient recurrent architectures through activity
sparsity and sparse back-propagation through time"; the EvNN code's ``EGRUScript``) runs token
by token. Per layer, with gates in the order z, r, g along the 3H axis, ``W`` [n_in, 3H] and
``R`` [H, 3H] stored presynaptic-row first (row j = the synapses of input j)::

    a   = x_t W + b                       R_t = y_{t-1} R + b_R
    u_t = σ(a_z + R_z)                    r_t = σ(a_r + R_r)
    g_t = tanh(a_g + r_t ⊙ R_g)
    c̃_t = u_t ⊙ c_{t-1} + (1 - u_t) ⊙ g_t         internal state, before the event rule
    e_t = H(c̃_t - ϑ)                               event: 1 where c̃ > ϑ (strictly), per-unit ϑ
    y_t = e_t ⊙ c̃_t                                the graded event sent on: the value of c̃
    c_t = c̃_t - e_t ⊙ ϑ                            reset by subtracting the threshold

``x_t`` is the embedding of the token (a character, or a word's id in a word-level model) for
layer 0 and the layer below's ``y_t`` above it;
``logits_t = y_t Wo + bo`` from the top layer. Every state starts at zero (``c_0 = y_0 = 0``).

Event-driven arithmetic: a projection is a scatter of the rows of the inputs that are not zero.
For input ``j`` with value ``v_j ≠ 0`` (an event ``y_j``, or an embedding component) the row
``indptr[j]:indptr[j+1]`` of the CSR matrix adds ``v_j · values`` to the accumulators named by
``indices``, in ascending ``j``, in float32; silent units read no synapse. This is the order a
chip's software synapses sum in (`neurosim.zoo.egru.lowering` lowers the model to float neuron
programs), so the chip's float32 results can equal this reference's.

Evaluation streams over a text with the state reset to zero every `RESET_EVERY` characters
(`neurosim.datasets.text_segments`). `generate_model` makes a model of any shape with random
sparse weights, for timing and energy at sizes that were never trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from neurosim import datasets

RESET_EVERY = datasets.RESET_EVERY      # characters between state resets in evaluation
GATES = ("z", "r", "g")    # the order of the three H-wide blocks along the 3H axis
FLOAT = np.float32


# ---------------------------------------------------------------------------------------------
# the model: CSR matrices, EGRU layers, the readout


@dataclass(frozen=True)
class Csr:
    """A sparse matrix ``[n_in, n_out]`` by presynaptic rows: row ``j`` holds the synapses of input
    ``j``, its targets ``indices[indptr[j]:indptr[j+1]]`` (ascending) and weights ``values[...]``."""

    indptr: np.ndarray           # int32 [n_in + 1]
    indices: np.ndarray          # int32 [nnz], target in 0..n_out-1
    values: np.ndarray           # float32 [nnz]
    shape: tuple[int, int]

    def __post_init__(self):
        n_in, n_out = self.shape
        assert self.indptr.shape == (n_in + 1,) and self.indptr[0] == 0, "indptr must have n_in + 1 entries from 0"
        assert self.indices.shape == self.values.shape == (self.indptr[-1],), "indices and values must have nnz entries"
        assert self.values.dtype == FLOAT, "CSR values must be float32"
        assert self.indices.size == 0 or (self.indices.min() >= 0 and self.indices.max() < n_out)

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> Csr:
        rows, cols = np.nonzero(dense)
        indptr = np.zeros(dense.shape[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=indptr[1:])
        return cls(indptr, cols.astype(np.int32), dense[rows, cols].astype(FLOAT), dense.shape)

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=FLOAT)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        dense[rows, self.indices] = self.values
        return dense

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    @property
    def sparsity(self) -> float:
        """The fraction of the dense matrix's entries that hold no synapse."""
        return 1.0 - self.nnz / (self.shape[0] * self.shape[1])


@dataclass(frozen=True)
class EgruLayer:
    """One EGRU layer of ``H`` units; gate blocks z, r, g along the ``3H`` axis (equations above)."""

    input_weight: Csr            # W [n_in, 3H]
    input_bias: np.ndarray       # b [3H]
    recurrent_weight: Csr        # R [H, 3H]
    recurrent_bias: np.ndarray   # b_R [3H]
    threshold: np.ndarray        # ϑ [H]

    def __post_init__(self):
        h = self.threshold.shape[0]
        assert self.recurrent_weight.shape == (h, 3 * h), "R must be [H, 3H]"
        assert self.input_weight.shape[1] == 3 * h, "W must be [n_in, 3H]"
        assert self.input_bias.shape == self.recurrent_bias.shape == (3 * h,), "biases must be [3H]"

    @property
    def units(self) -> int:
        return self.threshold.shape[0]


@dataclass(frozen=True)
class Model:
    embedding: np.ndarray        # float32 [V, E]
    layers: list[EgruLayer]
    readout_weight: Csr          # Wo [H, V], dense as CSR
    readout_bias: np.ndarray     # bo [V]
    config: dict
    vocab: str | None            # the characters of a character-level model; None: tokens are word ids 0..V-1

    def __post_init__(self):
        n_in = self.embedding.shape[1]
        for n, layer in enumerate(self.layers):
            rows = layer.input_weight.shape[0]
            assert rows == n_in, f"layer {n}: W has {rows} rows, expected {n_in}"
            n_in = layer.units
        assert self.readout_weight.shape == (n_in, self.embedding.shape[0]), "readout must be [H, V]"


@dataclass(frozen=True)
class LayerState:
    c: np.ndarray                # float32 [batch, H], internal state after the reset
    y: np.ndarray                # float32 [batch, H], last step's graded events (0 where silent)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return FLOAT(1) / (FLOAT(1) + np.exp(-x))


def event_matvec(w: Csr, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``inputs [batch, n_in] @ w`` reading only the rows of non-zero inputs, and the synapses read per batch row.

    Each accumulator sums its contributions in ascending input order, in float32.
    """
    batch, n_out = inputs.shape[0], w.shape[1]
    b, j = np.nonzero(inputs)
    starts = w.indptr[j].astype(np.int64)
    lengths = w.indptr[j + 1] - w.indptr[j]
    n_syn = int(lengths.sum())
    # synapse k of event i is at starts[i] + k
    first = np.cumsum(lengths) - lengths
    synapse = np.repeat(starts - first, lengths) + np.arange(n_syn)
    target = np.repeat(b * n_out, lengths) + w.indices[synapse]
    out = np.zeros(batch * n_out, dtype=FLOAT)
    np.add.at(out, target, np.repeat(inputs[b, j], lengths) * w.values[synapse])
    return out.reshape(batch, n_out), np.bincount(b, weights=lengths, minlength=batch).astype(np.int64)


def egru_step(layer: EgruLayer, x: np.ndarray, state: LayerState) -> tuple[LayerState, np.ndarray, np.ndarray]:
    """One step of one layer: (new state, events e [batch, H] bool, synapses read per batch row)."""
    h = layer.units
    a, syn_in = event_matvec(layer.input_weight, x)
    a += layer.input_bias
    rec, syn_rec = event_matvec(layer.recurrent_weight, state.y)
    rec += layer.recurrent_bias
    u = sigmoid(a[:, :h] + rec[:, :h])
    r = sigmoid(a[:, h:2 * h] + rec[:, h:2 * h])
    g = np.tanh(a[:, 2 * h:] + r * rec[:, 2 * h:])
    c_tilde = u * state.c + (FLOAT(1) - u) * g
    e = c_tilde > layer.threshold
    y = np.where(e, c_tilde, FLOAT(0))
    c = np.where(e, c_tilde - layer.threshold, c_tilde)
    return LayerState(c, y), e, syn_in + syn_rec


def initial_state(model: Model, batch: int) -> list[LayerState]:
    return [LayerState(np.zeros((batch, layer.units), FLOAT), np.zeros((batch, layer.units), FLOAT))
            for layer in model.layers]


@dataclass(frozen=True)
class StepStats:
    events: list[np.ndarray]     # per layer, bool [batch, H]
    synops: np.ndarray           # per batch row: synapses read by all projections, readout included


def step(model: Model, codes_t: np.ndarray, state: list[LayerState]) -> tuple[np.ndarray, list[LayerState], StepStats]:
    """Logits ``[batch, V]`` for the characters ``codes_t [batch]``, the new state, and what fired."""
    x = model.embedding[codes_t]
    new_state, events, synops = [], [], 0
    for layer, layer_state in zip(model.layers, state):
        layer_state, e, n = egru_step(layer, x, layer_state)
        new_state.append(layer_state)
        events.append(e)
        synops += n
        x = layer_state.y
    logits, n = event_matvec(model.readout_weight, x)
    return logits + model.readout_bias, new_state, StepStats(events, synops + n)


def forward(model: Model, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[batch, T, V]`` and events per step ``[batch, T, layer]`` of ``codes [batch, T]``, from zero."""
    state = initial_state(model, len(codes))
    logits, counts = [], []
    for t in range(codes.shape[1]):
        out, state, stats = step(model, codes[:, t], state)
        logits.append(out)
        counts.append(np.stack([e.sum(axis=1) for e in stats.events], axis=1))
    return np.stack(logits, axis=1), np.stack(counts, axis=1)


# ---------------------------------------------------------------------------------------------
# evaluation


segments = datasets.text_segments      # the evaluation windows, shared with neurosim


@dataclass(frozen=True)
class Metrics:
    bits_per_char: float
    accuracy: float              # next-character argmax accuracy
    event_rate: list[float]      # per layer: fraction of units emitting an event per step
    synops_per_char: float       # synapses read per character (input, recurrent and readout)
    chars: int                   # characters predicted


def evaluate(model: Model, codes: np.ndarray, reset_every: int = RESET_EVERY) -> Metrics:
    """Metrics over ``codes``, streaming with the state reset every ``reset_every`` characters."""
    inputs, targets, valid = segments(np.asarray(codes), reset_every)
    state = initial_state(model, len(inputs))
    nll, correct, synops = 0.0, 0, 0
    events = np.zeros(len(model.layers))
    for t in range(reset_every):
        rows = valid[:, t]
        # padded rows run too (the batch stays rectangular) but are not counted
        logits, state, stats = step(model, inputs[:, t], state)
        loss, right = datasets.prediction_scores(logits[rows], targets[rows, t])
        nll, correct = nll + loss, correct + right
        events += [e[rows].sum() for e in stats.events]
        synops += int(stats.synops[rows].sum())
    n = int(valid.sum())
    rates = [float(k / (n * layer.units)) for k, layer in zip(events, model.layers)]
    return Metrics(float(nll / n / np.log(2.0)), correct / n, rates, synops / n, n)


# ---------------------------------------------------------------------------------------------
# the weights file (format in README.md)


def read_csr(group: h5py.Group) -> Csr:
    shape = tuple(int(s) for s in group.attrs["shape"])
    return Csr(group["indptr"][()], group["indices"][()], group["values"][()], shape)


def load(path: str | Path) -> Model:
    """The model from ``weights.h5``, its pruned matrices from their CSR groups."""
    with h5py.File(path, "r") as h5:
        config = json.loads(h5.attrs["config"])
        layers = []
        for n in range(config["n_layers"]):
            g = h5[f"layers/{n}"]
            layers.append(EgruLayer(read_csr(g["input_weight_csr"]), g["input_bias"][()],
                                    read_csr(g["recurrent_weight_csr"]), g["recurrent_bias"][()],
                                    g["threshold"][()]))
        return Model(h5["embedding"][()], layers, Csr.from_dense(h5["readout/weight"][()]),
                     h5["readout/bias"][()], config, json.loads(h5.attrs["vocab"]))




def generate_model(vocab: str | None, embed: int, hidden: list[int], sparsity: float, seed: int,
                   vocab_size: int | None = None) -> Model:
    """A model of a given shape with random sparse weights drawn from ``seed``, for timing and
    energy at sizes never trained here (its predictions mean nothing): over the characters
    ``vocab``, or with ``vocab`` None over ``vocab_size`` word ids.

    W and R keep ``1 - sparsity`` of their entries, at places drawn uniformly, with values
    normal(0, 1 / (kept fan-in)) so that a unit's summed input has about unit variance;
    thresholds are Beta(alpha, 3) with mean 0.3 (EvNN's initialisation); biases are zero; the
    embedding is normal(0, 1) and the readout dense normal(0, 1 / H).
    """
    rng = np.random.default_rng(seed)
    density = 1.0 - sparsity

    def sparse(n_in: int, n_out: int) -> Csr:
        per_row = rng.binomial(n_out, density, n_in)
        indptr = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
        indices = np.concatenate([np.sort(rng.choice(n_out, k, replace=False)) for k in per_row] or [[]])
        scale = 1.0 / np.sqrt(max(n_in * density, 1.0))
        values = (rng.standard_normal(int(indptr[-1])) * scale).astype(FLOAT)
        return Csr(indptr, indices.astype(np.int32), values, (n_in, n_out))

    alpha = 3 * 0.3 / (1 - 0.3)
    layers, n_in = [], embed
    for h in hidden:
        layers.append(EgruLayer(sparse(n_in, 3 * h), np.zeros(3 * h, FLOAT), sparse(h, 3 * h), np.zeros(3 * h, FLOAT),
                                rng.beta(alpha, 3.0, h).astype(FLOAT)))
        n_in = h
    v = len(vocab) if vocab is not None else int(vocab_size)
    if vocab is not None:
        readout = Csr.from_dense((rng.standard_normal((n_in, v)) / np.sqrt(n_in)).astype(FLOAT))
    else:       # every entry kept, without the dense matrix's coordinates (tens of millions at a word vocabulary)
        values = (rng.standard_normal((n_in, v)) / np.sqrt(n_in)).astype(FLOAT).ravel()
        readout = Csr(np.arange(0, n_in * v + 1, v, dtype=np.int64), np.tile(np.arange(v, dtype=np.int32), n_in),
                      values, (n_in, v))
    config = {"vocab_size": v, "embed": embed, "hidden": list(hidden), "n_layers": len(hidden), "gates": "zrg",
              "sparsity": sparsity, "seed": seed}
    return Model(rng.standard_normal((v, embed)).astype(FLOAT), layers, readout, np.zeros(v, FLOAT), config, vocab)
