"""Train the convolutional digit classifiers and convert them to Loihi integer parameters.

    pip install -e '.[train]'
    python models/scnn_digits/train.py            # the 8x8 pixels: models/scnn_digits
    python models/scnn_digits/train.py --events   # the event digits: models/scnn_digits_events

Each is a small convolutional network whose hidden activations are quantisation-clip-floor-shift
functions (QCFS, Bu et al., ICLR 2022; L = 8 levels), trained in torch on the `train` split and
converted to integrate-and-fire neurons as `models/digits_snn` is (threshold ``lam``, membrane
starting at ``lam / 2``, reset by subtraction, non-spiking integrators as the readout):

pixels (models.md's V-2)::

    1 x 8 x 8 pixels 0..16, sent every step as graded spikes
    conv 3x3, 1 -> 16, padding 1 -> QCFS      16 x 8 x 8
    conv 3x3, 16 -> 32, stride 2, padding 1 -> QCFS   32 x 4 x 4
    dense 512 -> 10                              the readout

events (`neurosim.datasets.events`: three saccades over a 34 x 34 sensor, ON and OFF channels)::

    2 x 34 x 34 binary events per step; the network is trained on their rates (events / steps)
    conv 5x5, 2 -> 8, stride 2, padding 2 -> QCFS     8 x 17 x 17
    conv 3x3, 8 -> 16, stride 2, padding 1 -> QCFS    16 x 9 x 9
    dense 1296 -> 10

Conversion per layer: the float weights (with the previous layer's ``lam`` folded in, since a
spike stands for it) scaled by ``s`` and rounded to int8, ``s`` as large as int8 and the 16-bit
dendritic input allow on the training set; thresholds ``round(lam * s)``; biases ``b * s * 64``
voltage units as mantissa and exponent. The script writes ``weights.h5`` (with golden readouts of
a few test inputs from the integer reference), ``model.yaml``, and prints the accuracies that
README.md states.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from neurosim import datasets                                   # noqa: E402
from neurosim.zoo.loader import load_model, sha256_of          # noqa: E402
from neurosim.runs import run_reference                        # noqa: E402

LEVELS = 8
SEED = 0
INT8_MAX = 127
INPUT16_MAX = 32767
ACT_SHIFT = 6
BIAS_MANT_MAX = 4095
N_GOLDEN = 4
PIXEL_MAX = 16

VARIANTS = {
    "pixels": dict(folder=HERE, name="scnn_digits", in_shape=(1, 8, 8), timesteps=16, epochs=60,
                   layers=[(16, 3, 1, 1), (32, 3, 2, 1)]),
    "events": dict(folder=REPO / "models" / "scnn_digits_events", name="scnn_digits_events", in_shape=(2, 34, 34),
                   timesteps=60, epochs=40, layers=[(8, 5, 2, 2), (16, 3, 2, 1)]),
}


class Qcfs(nn.Module):
    """lam * clip(floor(z L / lam + 1/2) / L, 0, 1), with straight-through gradients."""

    def __init__(self):
        super().__init__()
        self.lam = nn.Parameter(torch.tensor(2.0))

    def forward(self, z):
        x = z / self.lam
        q = torch.clamp(torch.floor(x * LEVELS + 0.5) / LEVELS, 0, 1)
        x = torch.clamp(x, 0, 1)
        return (x + (q - x).detach()) * self.lam


class Net(nn.Module):
    def __init__(self, in_shape, layers):
        super().__init__()
        c, h, w = in_shape
        mods = []
        for out_c, k, stride, pad in layers:
            mods += [nn.Conv2d(c, out_c, k, stride, pad), Qcfs()]
            h, w, c = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1, out_c
        self.features = nn.Sequential(*mods)
        self.shapes = (c, h, w)
        self.fc = nn.Linear(c * h * w, 10)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def train(net: Net, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    torch.manual_seed(SEED)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        order = torch.randperm(len(yt), generator=gen)
        total = 0.0
        for lo in range(0, len(yt), 64):
            idx = order[lo:lo + 64]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            for m in net.modules():
                if isinstance(m, Qcfs):
                    m.lam.data.clamp_(min=0.05)
            total += float(loss) * len(idx)
        sched.step()
        if epoch % 10 == 9:
            print(f"epoch {epoch + 1:3d}  loss {total / len(yt):.4f}")


def conv_out(shape, layer):
    c, h, w = shape
    out_c, k, stride, pad = layer
    return out_c, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1


def bias_parts(bias_v: np.ndarray) -> tuple[np.ndarray, int]:
    exp = 0
    while np.abs(bias_v).max() / (1 << exp) > BIAS_MANT_MAX:
        exp += 1
    return np.round(bias_v / (1 << exp)).astype(np.int64), exp


def convert(net: Net, variant: dict, x_train_chip: np.ndarray, payload_max: int) -> list[dict]:
    """Integer weights, thresholds and biases per layer."""
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    lams = [float(m.lam) for m in net.features if isinstance(m, Qcfs)]
    weights = [c.weight.detach().double().numpy() for c in convs] + [net.fc.weight.detach().double().numpy()]
    biases = [c.bias.detach().double().numpy() for c in convs] + [net.fc.bias.detach().double().numpy()]
    per_event = [1.0 / payload_max] + lams        # what one input event stands for
    out = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        w = w * per_event[i]
        scale = INT8_MAX / np.abs(w).max()
        flat = np.abs(w).reshape(w.shape[0], -1)
        worst = flat.sum(axis=1).max() * (payload_max if i == 0 else 1)
        scale = min(scale, 0.95 * INPUT16_MAX / worst)
        wq = np.clip(np.round(w * scale), -INT8_MAX, INT8_MAX).astype(np.int8)
        layer = {"weight": wq, "bias_v": b * scale * (1 << ACT_SHIFT), "scale": scale}
        if i < len(lams):
            layer["vth"] = int(round(lams[i] * scale))
        out.append(layer)
    return out


def write(variant: dict, layers: list[dict], net: Net) -> Path:
    folder = variant["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    shapes = [variant["in_shape"]]
    for layer in variant["layers"]:
        shapes.append(conv_out(shapes[-1], layer))
    names = ["conv1", "conv2"]
    pops = ["hidden1", "hidden2"]
    weights = folder / "weights.h5"
    bias_exps = []
    with h5py.File(weights, "w") as h5:
        h5.attrs["format_version"] = 1
        h5.attrs["model"] = variant["name"]
        h5.attrs["levels"] = LEVELS
        for i, layer in enumerate(layers):
            name = names[i] if i < 2 else "fc"
            g = h5.create_group(f"projections/{name}")
            g.create_dataset("weight", data=layer["weight"])
            g.attrs["weight_exp"] = 0
            g.attrs["scale"] = layer["scale"]
            shape = shapes[i + 1] if i < 2 else (10, 1, 1)
            per_neuron = np.repeat(layer["bias_v"], int(np.prod(shape[1:])))
            mant, exp = bias_parts(per_neuron)
            bias_exps.append(exp)
            pop = pops[i] if i < 2 else "output"
            h5.create_dataset(f"populations/{pop}/bias_mant", data=mant)
    return weights, shapes, bias_exps


def model_yaml(variant: dict, layers: list[dict], shapes, bias_exps, sha: str) -> str:
    events = variant["name"].endswith("events")
    c0 = shapes[0]
    lines = [
        "# A convolutional spiking classifier of the digits" + (" as event streams (N-MNIST's recipe)." if events
                                                                 else " (8x8 pixels)."),
        "# Trained and converted by train.py" + (" --events" if events else "") + "; see models/scnn_digits/README.md.",
        f"name: {variant['name']}",
        "description: conv SNN " + " -> ".join(f"{s[0]}x{s[1]}x{s[2]}" for s in shapes) + " -> 10, QCFS-converted IF",
        "weights:",
        "  file: weights.h5",
        f"  sha256: {sha}",
        f"dataset: {'digits_events' if events else 'digits'}",
        "input:",
        "  population: pixels",
        f"  encoding: {'spike_constant' if events else 'graded_constant'}",
        "readout:",
        "  population: output",
        "  mode: membrane",
        "populations:",
        "  pixels:",
        f"    kind: {'spike_source' if events else 'graded_source'}",
        f"    size: {int(np.prod(c0))}",
    ]
    for i, pop in enumerate(("hidden1", "hidden2")):
        vth = layers[i]["vth"]
        lines += [f"  {pop}:", "    kind: loihi_lif", f"    size: {int(np.prod(shapes[i + 1]))}", "    params:",
                  "      du: 4095", "      dv: 0", f"      vth: {vth}", f"      v_init: {(vth << ACT_SHIFT) // 2}",
                  "      reset: subtract", f"      bias_mant: {{h5: populations/{pop}/bias_mant}}",
                  f"      bias_exp: {bias_exps[i]}"]
    lines += ["  output:", "    kind: loihi_lif", "    size: 10", "    params:", "      du: 4095", "      dv: 0",
              "      vth: null", "      bias_mant: {h5: populations/output/bias_mant}", f"      bias_exp: {bias_exps[2]}",
              "projections:"]
    for i, (name, src, tgt) in enumerate((("conv1", "pixels", "hidden1"), ("conv2", "hidden1", "hidden2"))):
        _, k, stride, pad = variant["layers"][i]
        lines.append(f"  {name}: {{kind: conv2d, source: {src}, target: {tgt}, in_shape: {list(shapes[i])}, "
                     f"stride: {stride}, padding: {pad}}}")
    lines.append("  fc: {kind: dense, source: hidden2, target: output}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", action="store_true")
    args = parser.parse_args()
    variant = VARIANTS["events" if args.events else "pixels"]
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    t0 = time.time()
    T = variant["timesteps"]
    if args.events:
        train_set, test_set = datasets.digits_events("train", T), datasets.digits_events("test", T)
        x_train = train_set.inputs.mean(axis=1).reshape(-1, *variant["in_shape"])      # event rates
        x_test = test_set.inputs.mean(axis=1).reshape(-1, *variant["in_shape"])
        chip_train, payload_max = train_set.inputs, 1
    else:
        train_set, test_set = datasets.load("digits", "train"), datasets.load("digits", "test")
        x_train = (train_set.inputs / PIXEL_MAX).reshape(-1, *variant["in_shape"])
        x_test = (test_set.inputs / PIXEL_MAX).reshape(-1, *variant["in_shape"])
        chip_train, payload_max = train_set.inputs, PIXEL_MAX
    net = Net(variant["in_shape"], variant["layers"]).double()
    train(net, x_train, train_set.labels, variant["epochs"])
    with torch.no_grad():
        ann_acc = float((net(torch.tensor(x_test)).argmax(1).numpy() == test_set.labels).mean())
    layers = convert(net, variant, chip_train, payload_max)
    weights, shapes, bias_exps = write(variant, layers, net)
    (variant["folder"] / "model.yaml").write_text(model_yaml(variant, layers, shapes, bias_exps, sha256_of(weights)))
    graph, _ = load_model(variant["folder"])
    pred, readout_v, _ = run_reference(graph, test_set.inputs, T)
    int_acc = float(np.mean(pred == test_set.labels))
    with h5py.File(weights, "a") as h5:
        h5.create_dataset("golden/inputs", data=test_set.inputs[:N_GOLDEN])
        h5.create_dataset("golden/readout_v", data=readout_v[:N_GOLDEN])
        h5.attrs["golden_timesteps"] = T
        h5.attrs["ann_accuracy"] = ann_acc
        h5.attrs["train_seconds"] = time.time() - t0
    (variant["folder"] / "model.yaml").write_text(model_yaml(variant, layers, shapes, bias_exps, sha256_of(weights)))
    params = sum(p.numel() for p in net.parameters())
    print(f"{variant['name']}: {params} parameters, lam {[round(float(m.lam), 3) for m in net.modules() if isinstance(m, Qcfs)]}")
    print(f"test accuracy: quantised ANN {ann_acc:.4f}, integer on chip (T={T}) {int_acc:.4f}; "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
