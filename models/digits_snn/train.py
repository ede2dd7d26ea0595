"""Train the digits classifier and convert it to Loihi integer parameters.

    python models/digits_snn/train.py

The network is a 64-128-128-10 perceptron whose hidden activations are quantisation
clip-floor-shift (QCFS) functions (Bu et al., "Optimal ANN-SNN conversion for
high-accuracy and ultra-low-latency spiking neural networks", ICLR 2022)::

    h(z) = lam * clip(floor(z * L / lam + 1/2) / L, 0, 1)        L = 8 levels

trained in plain numpy (Adam, cross-entropy, straight-through gradients). Such a network
converts to integrate-and-fire neurons with threshold ``lam``, reset by subtraction and
the membrane starting at ``lam / 2``: a neuron's spike rate times ``lam`` then tracks its
activation. On the chip:

* ``pixels``: the 64 pixel values 0..16, sent from the host every timestep as graded spikes;
* ``hidden1``, ``hidden2``: Loihi LIF neurons with no leak (``du = 4095``: the current is
  the last step's input; ``dv = 0``: the voltage integrates), reset by subtraction;
* ``output``: 10 non-spiking integrators; the class is the argmax of their voltage.

Conversion to integers, per layer: the float weights ``W`` (with the previous layer's
``lam`` folded in, since a spike stands for ``lam``) are scaled by ``s`` and rounded to
int8; the threshold becomes ``round(lam * s)`` and the bias ``b * s * 64`` voltage units
(the chip aligns synaptic input and threshold 6 bits up). ``s`` is as large as the int8
range allows, and smaller where the 16-bit dendritic input would otherwise saturate on the
training set.

The script writes ``weights.h5`` (with a small golden set: a few test inputs and the
integer readout they must produce), updates the sha256 in ``model.yaml`` and prints the
float, spiking-float and integer accuracies that ``README.md`` states.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from neurosim import datasets                                   # noqa: E402
from neurosim.zoo.loader import load_model, sha256_of          # noqa: E402
from neurosim.runs import run_reference                        # noqa: E402

SIZES = (64, 128, 128, 10)
LEVELS = 8                 # QCFS quantisation levels L
TIMESTEPS = 16             # the quickstart's timesteps; each layer adds one step of delay
PIXEL_MAX = 16
EPOCHS = 60
BATCH = 64
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
SEED = 0
INT8_MAX = 127
INPUT16_MAX = 32767
ACT_SHIFT = 6
BIAS_MANT_MAX = 4095
N_GOLDEN = 8


# ---------------------------------------------------------------------------------------------
# the quantised ANN


def qcfs(z: np.ndarray, lam: float) -> np.ndarray:
    return lam * np.clip(np.floor(z * LEVELS / lam + 0.5) / LEVELS, 0.0, 1.0)


def qcfs_grads(z: np.ndarray, lam: float, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Straight-through gradients of h with respect to z and lam (Bu et al., eq. 12)."""
    inside = (z >= 0) & (z < lam)
    dz = inside.astype(z.dtype)
    dlam = np.where(z >= lam, 1.0, np.where(inside, (h - z) / lam, 0.0))
    return dz, dlam


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        params[f"W{i}"] = rng.normal(0.0, np.sqrt(2.0 / n_in), (n_out, n_in))
        params[f"b{i}"] = np.zeros(n_out)
    params["lam1"] = np.array(2.0)
    params["lam2"] = np.array(2.0)
    return params


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    z1 = x @ p["W1"].T + p["b1"]
    h1 = qcfs(z1, float(p["lam1"]))
    z2 = h1 @ p["W2"].T + p["b2"]
    h2 = qcfs(z2, float(p["lam2"]))
    logits = h2 @ p["W3"].T + p["b3"]
    return logits, {"x": x, "z1": z1, "h1": h1, "z2": z2, "h2": h2}


def backward(p: dict[str, np.ndarray], cache: dict[str, np.ndarray], logits: np.ndarray,
             y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    n = len(y)
    shifted = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(shifted)
    prob /= prob.sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.log(prob[np.arange(n), y] + 1e-12)))
    g = prob
    g[np.arange(n), y] -= 1.0
    g /= n
    grads = {"W3": g.T @ cache["h2"], "b3": g.sum(axis=0)}
    dh2 = g @ p["W3"]
    dz2, dlam2 = qcfs_grads(cache["z2"], float(p["lam2"]), cache["h2"])
    g2 = dh2 * dz2
    grads["lam2"] = np.array(np.sum(dh2 * dlam2))
    grads["W2"], grads["b2"] = g2.T @ cache["h1"], g2.sum(axis=0)
    dh1 = g2 @ p["W2"]
    dz1, dlam1 = qcfs_grads(cache["z1"], float(p["lam1"]), cache["h1"])
    g1 = dh1 * dz1
    grads["lam1"] = np.array(np.sum(dh1 * dlam1))
    grads["W1"], grads["b1"] = g1.T @ cache["x"], g1.sum(axis=0)
    return loss, grads


def train(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    beta1, beta2, step = 0.9, 0.999, 0
    for epoch in range(EPOCHS):
        lr = LEARNING_RATE * 0.5 * (1 + np.cos(np.pi * epoch / EPOCHS))
        order = rng.permutation(len(y))
        total = 0.0
        for lo in range(0, len(y), BATCH):
            idx = order[lo:lo + BATCH]
            logits, cache = forward(p, x[idx])
            loss, grads = backward(p, cache, logits, y[idx])
            total += loss * len(idx)
            step += 1
            for k in p:
                g = grads[k] + (WEIGHT_DECAY * p[k] if k.startswith("W") else 0.0)
                m[k] = beta1 * m[k] + (1 - beta1) * g
                v[k] = beta2 * v[k] + (1 - beta2) * g * g
                mhat = m[k] / (1 - beta1 ** step)
                vhat = v[k] / (1 - beta2 ** step)
                p[k] = p[k] - lr * mhat / (np.sqrt(vhat) + 1e-8)
            p["lam1"] = np.maximum(p["lam1"], 0.05)
            p["lam2"] = np.maximum(p["lam2"], 0.05)
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:3d}  loss {total / len(y):.4f}")
    return p


# ---------------------------------------------------------------------------------------------
# the same network as spiking neurons in floating point, with the chip's one-step delays


def spiking_float(p: dict[str, np.ndarray], x: np.ndarray, timesteps: int) -> np.ndarray:
    """Readout voltages of the IF network in floats: the ideal the integer version approximates.

    As on the chip, a layer's input at step t is what the layer below emitted at t - 1,
    and biases are added every step.
    """
    lam1, lam2 = float(p["lam1"]), float(p["lam2"])
    n = len(x)
    v1, v2 = np.full((n, SIZES[1]), lam1 / 2), np.full((n, SIZES[2]), lam2 / 2)
    out = np.zeros((n, SIZES[3]))
    s0 = np.zeros_like(x)
    s1, s2 = np.zeros((n, SIZES[1])), np.zeros((n, SIZES[2]))
    for _ in range(timesteps):
        in1, in2, in3 = s0 @ p["W1"].T, s1 @ p["W2"].T * lam1, s2 @ p["W3"].T * lam2
        out += in3 + p["b3"]
        v2 += in2 + p["b2"]
        s2 = (v2 > lam2).astype(float)
        v2 -= s2 * lam2
        v1 += in1 + p["b1"]
        s1 = (v1 > lam1).astype(float)
        v1 -= s1 * lam1
        s0 = x
    return out


# ---------------------------------------------------------------------------------------------
# conversion to the chip's integers


def bias_parts(bias_v: np.ndarray) -> tuple[np.ndarray, int]:
    """Voltage-unit biases as mantissas (|m| <= 4095) with one shared exponent >= 0."""
    exp = 0
    while np.abs(bias_v).max() / (1 << exp) > BIAS_MANT_MAX:
        exp += 1
    return np.round(bias_v / (1 << exp)).astype(np.int64), exp


def convert(p: dict[str, np.ndarray], x_train_pixels: np.ndarray) -> dict[str, dict[str, object]]:
    """Integer weights, thresholds and biases per layer (see the module docstring)."""
    lam = [1.0, float(p["lam1"]), float(p["lam2"])]          # what one input event stands for
    per_event = [1.0 / PIXEL_MAX, lam[1], lam[2]]             # layer 1 sees pixel counts 0..16
    payload_max = [PIXEL_MAX, 1, 1]
    layers = {}
    inputs = x_train_pixels.astype(np.float64)
    for i, name in enumerate(("fc1", "fc2", "fc3")):
        w = p[f"W{i + 1}"] * per_event[i]
        scale = INT8_MAX / np.abs(w).max()
        # the largest dendritic input on the training set must fit in 16 bits
        worst = np.abs(inputs @ np.abs(w).T).max() if i == 0 else np.abs(w).sum(axis=1).max() * payload_max[i]
        scale = min(scale, 0.95 * INPUT16_MAX / worst)
        wq = np.clip(np.round(w * scale), -INT8_MAX, INT8_MAX).astype(np.int8)
        mant, exp = bias_parts(p[f"b{i + 1}"] * scale * (1 << ACT_SHIFT))
        layer = {"weight": wq, "bias_mant": mant, "bias_exp": exp, "scale": scale}
        if i < 2:
            layer["vth"] = int(round(float(p[f"lam{i + 1}"]) * scale))
        layers[name] = layer
    return layers


def write_weights(path: Path, layers: dict[str, dict[str, object]], p: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as h5:
        h5.attrs["format_version"] = 1
        h5.attrs["model"] = "digits_snn"
        h5.attrs["levels"] = LEVELS
        h5.attrs["lam"] = np.array([float(p["lam1"]), float(p["lam2"])])
        for name, layer in layers.items():
            group = h5.create_group(f"projections/{name}")
            group.create_dataset("weight", data=layer["weight"])
            group.attrs["weight_exp"] = 0
            group.attrs["scale"] = layer["scale"]
        for pop, layer in zip(("hidden1", "hidden2", "output"), layers.values()):
            h5.create_dataset(f"populations/{pop}/bias_mant", data=layer["bias_mant"])


def update_yaml(layers: dict[str, dict[str, object]], sha: str) -> None:
    """Write the integer thresholds, bias exponents and the weights' sha256 into model.yaml."""
    path = HERE / "model.yaml"
    text = path.read_text()
    text = re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {sha}", text)
    for pop, layer in zip(("hidden1", "hidden2", "output"), layers.values()):
        block = re.search(rf"\n  {pop}:\n(?:    .*\n)+", text)
        new = block.group(0)
        if "vth" in layer:
            vth = int(layer["vth"])
            new = re.sub(r"vth: \d+", f"vth: {vth}", new)
            v_init = f"v_init: {(vth << ACT_SHIFT) // 2}"
            new = re.sub(r"v_init: \d+ *", lambda m: v_init.ljust(len(m.group(0))), new)
        new = re.sub(r"bias_exp: \d+", f"bias_exp: {layer['bias_exp']}", new)
        text = text.replace(block.group(0), new)
    path.write_text(text)


def main() -> None:
    train_set, test_set = datasets.load("digits", "train"), datasets.load("digits", "test")
    x_train, x_test = train_set.inputs / PIXEL_MAX, test_set.inputs / PIXEL_MAX
    p = train(x_train, train_set.labels)

    ann_acc = np.mean(forward(p, x_test)[0].argmax(axis=1) == test_set.labels)
    snn_acc = np.mean(spiking_float(p, x_test, TIMESTEPS).argmax(axis=1) == test_set.labels)

    layers = convert(p, train_set.inputs)
    weights = HERE / "weights.h5"
    write_weights(weights, layers, p)
    update_yaml(layers, sha256_of(weights))

    # golden set: the integer reference's readout for the first test inputs
    graph, _ = load_model(HERE)
    pred, readout_v, _ = run_reference(graph, test_set.inputs, TIMESTEPS)
    int_acc = np.mean(pred == test_set.labels)
    with h5py.File(weights, "a") as h5:
        h5.create_dataset("golden/inputs", data=test_set.inputs[:N_GOLDEN])
        h5.create_dataset("golden/readout_v", data=readout_v[:N_GOLDEN])
        h5.attrs["golden_timesteps"] = TIMESTEPS
    update_yaml(layers, sha256_of(weights))

    print(f"lam1 {float(p['lam1']):.3f}  lam2 {float(p['lam2']):.3f}")
    for name, layer in layers.items():
        print(f"{name}: scale {layer['scale']:.2f}  vth {layer.get('vth', '-')}  bias_exp {layer['bias_exp']}")
    print(f"test accuracy: quantised ANN {ann_acc:.4f}, spiking float (T={TIMESTEPS}) {snn_acc:.4f}, "
          f"integer on chip (T={TIMESTEPS}) {int_acc:.4f}")


if __name__ == "__main__":
    main()
