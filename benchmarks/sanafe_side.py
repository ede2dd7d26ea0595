"""Run a small layered SNN on SANA-FE and collect its per-timestep costs.

This is the SANA-FE half of a neurosim-vs-SANA-FE cross-check. It needs the PyPI package
``sanafe`` (tested with 2.2.9: ``pip install sanafe==2.2.9``), which is not a neurosim
dependency. SANA-FE's Loihi architecture file ships inside that package::

    from importlib.resources import files
    arch_path = files("sanafe.examples") / "loihi.yaml"

Conventions (what SANA-FE does with the network this module builds):

- Timestep ``t`` of the returned arrays (0-based) is SANA-FE timestep ``t + 1``; input row
  ``inputs[t]`` spikes in that timestep.
- A spike sent in timestep ``t`` is integrated by its target soma in timestep ``t + 1``.
- LIF neurons use SANA-FE's ``leaky_integrate_fire`` soma (the arch's first soma unit with
  that model): ``v = trunc64(v * leak_decay) + bias + input``, spike when ``v > threshold``
  (strictly), then hard reset to 0. ``trunc64`` truncates towards zero to a multiple of 1/64.
- Every synapse uses the core's first synapse unit (``loihi_dense_synapse`` in loihi.yaml).
- Neurons are mapped, and so processed within each core, in layer order then index order.

Usage::

    python benchmarks/sanafe_side.py            # runs the two demo networks
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from importlib.resources import files

import numpy as np
import sanafe

# SANA-FE's per-timestep energy components (perf-trace keys ``<name>_energy``), in order.
ENERGY_COMPONENTS = ("synapse", "dendrite", "soma", "network", "total")

# LIF parameters used when a layer gives none; a layer's own dict overrides them.
DEFAULT_LIF = {"threshold": 1.0, "leak_decay": 1.0, "bias": 0.0}


def default_arch_path():
    """Path of the Loihi architecture file bundled with the ``sanafe`` package."""
    return files("sanafe.examples") / "loihi.yaml"


def run_sanafe(arch_path, layers, edges, inputs, placement, timesteps,
               timing_model="detailed"):
    """Build a layered SNN on a SANA-FE architecture, simulate it and return its costs.

    Args:
        arch_path: SANA-FE architecture YAML file (e.g. ``default_arch_path()``).
        layers: list of ``(name, size, kind)`` or ``(name, size, "lif", params)``. ``kind``
            is ``"input"`` (spike source driven by ``inputs``) or ``"lif"``. ``params`` may
            set ``threshold``, ``leak_decay`` (multiplicative, 1.0 = no leak) and ``bias``;
            missing ones come from ``DEFAULT_LIF``. The reset is always hard, to 0.
        edges: list of projections ``(src_layer, dst_layer, conn)`` where ``conn`` is either
            a dense array of shape ``(src_size, dst_size)`` (every entry is a synapse, zeros
            included) or a sparse triple ``(src_idx, dst_idx, weights)`` of 1-D arrays.
        inputs: 0/1 array of shape ``(timesteps, n_input)``; its columns are the neurons of
            the input layers, concatenated in layer order.
        placement: ``{layer_name: sequence of (tile, core)}`` with one pair per neuron;
            ``core`` is the core's offset within its tile.
        timesteps: number of timesteps to simulate.
        timing_model: SANA-FE timing model, ``"detailed"`` (default) or ``"simple"``.

    Returns:
        dict of per-timestep numpy arrays of length ``timesteps``:
        ``energy_<component>_pj`` for each of ``ENERGY_COMPONENTS``; ``latency_ns``;
        ``spikes`` (a dict ``{layer_name: spike counts}``, input layers included);
        ``synaptic_events``, ``neurons_updated``, ``neurons_fired`` (input neurons
        included), ``hops`` and ``messages`` (spike messages, one per firing neuron and
        destination core, its own core included). Plus two floats: ``wall_time_s`` (the
        ``chip.sim`` call, trace collection included) and ``build_time_s`` (loading the
        arch, building and loading the network; the first ``SpikingChip`` of a process
        adds a one-off ~5 s).
    """
    inputs = np.asarray(inputs)
    if inputs.shape[0] != timesteps:
        raise ValueError(f"inputs has {inputs.shape[0]} rows, expected {timesteps}")

    build_start = time.perf_counter()
    arch = sanafe.load_arch(str(arch_path))
    net = sanafe.Network()
    groups = _create_groups(net, layers)
    _map_neurons(arch, layers, groups, inputs, placement)
    for src, dst, conn in edges:
        _connect(groups[src], groups[dst], conn)
    chip = sanafe.SpikingChip(arch)
    chip.load(net)
    build_time = time.perf_counter() - build_start

    sim_start = time.perf_counter()
    with _quiet_stdout():
        result = chip.sim(timesteps, timing_model=timing_model, spike_trace=True,
                          perf_trace=True, message_trace=True)
    wall_time = time.perf_counter() - sim_start

    return _collect(result, layers, timesteps, wall_time, build_time)


@contextmanager
def _quiet_stdout():
    """Send what the C++ kernel prints to stdout (its ``Executed steps`` line) to /dev/null."""
    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


def _create_groups(net, layers):
    """Create one SANA-FE neuron group per layer, with spike logging on."""
    groups = {}
    for name, size, kind, *params in layers:
        if kind == "input":
            groups[name] = net.create_neuron_group(name, size, log_spikes=True)
        elif kind == "lif":
            attributes = {**DEFAULT_LIF, **(params[0] if params else {}),
                          "reset": 0.0, "reset_mode": "hard"}
            groups[name] = net.create_neuron_group(
                name, size, model_attributes=attributes, log_spikes=True)
        else:
            raise ValueError(f"layer {name!r}: unknown kind {kind!r}")
    return groups


def _map_neurons(arch, layers, groups, inputs, placement):
    """Map every neuron to its (tile, core); give each input neuron its spike train.

    SANA-FE's ``input`` soma model holds a single spike train, so each input neuron gets
    an ``input`` soma unit of its own on its core (loihi.yaml has 1024 per core).
    """
    free_input_units = {}
    column = 0
    for name, size, kind, *_ in layers:
        where = placement[name]
        if len(where) != size:
            raise ValueError(f"placement of {name!r} has {len(where)} entries, not {size}")
        for index, (tile, core_offset) in enumerate(where):
            core = arch.tiles[tile].cores[core_offset]
            neuron = groups[name][index]
            if kind == "input":
                units = free_input_units.setdefault(
                    (tile, core_offset),
                    [u.name for u in core.pipeline_hw if u.model_info.name == "input"])
                if not units:
                    raise ValueError(f"no free input soma unit on core {tile}.{core_offset}")
                train = [bool(s) for s in inputs[:, column]]
                neuron.set_attributes(soma_hw_name=units.pop(0),
                                      model_attributes={"spikes": train})
                column += 1
            neuron.map_to_core(core)
    if column != inputs.shape[1]:
        raise ValueError(f"inputs has {inputs.shape[1]} columns, input layers have {column}")


def _connect(src_group, dst_group, conn):
    """Add a dense ``(n_src, n_dst)`` weight array or a sparse ``(src, dst, w)`` triple."""
    if isinstance(conn, tuple):
        src_idx, dst_idx, weights = (np.asarray(a) for a in conn)
        pairs = list(zip(src_idx.tolist(), dst_idx.tolist()))
        src_group.connect_neurons_sparse(
            dst_group, {"weight": weights.astype(float).tolist()}, pairs)
    else:
        weights = np.asarray(conn, dtype=float)
        expected = (len(src_group), len(dst_group))
        if weights.shape != expected:
            raise ValueError(f"dense weights have shape {weights.shape}, expected {expected}")
        # SANA-FE flattens dense weights source-major: index = src * n_dst + dst.
        src_group.connect_neurons_dense(dst_group, {"weight": weights.ravel().tolist()})


def _collect(result, layers, timesteps, wall_time, build_time):
    """Turn ``chip.sim``'s result dict into per-timestep arrays in pJ, ns and counts."""
    perf = result["perf_trace"]
    out = {f"energy_{c}_pj": np.asarray(perf[f"{c}_energy"]) * 1e12
           for c in ENERGY_COMPONENTS}
    out["latency_ns"] = np.asarray(perf["sim_time"]) * 1e9
    out["synaptic_events"] = np.asarray(perf["spikes"])
    out["neurons_updated"] = np.asarray(perf["updated"])
    out["neurons_fired"] = np.asarray(perf["fired"])
    out["hops"] = np.asarray(perf["hops"])
    out["messages"] = np.array(
        [sum(not m["placeholder"] for m in step) for step in result["message_trace"]])

    index = {layer[0]: i for i, layer in enumerate(layers)}
    spikes = np.zeros((len(layers), timesteps), dtype=int)
    for t, fired in enumerate(result["spike_trace"]):
        for address in fired:
            spikes[index[address.group_name], t] += 1
    out["spikes"] = {layer[0]: spikes[i] for i, layer in enumerate(layers)}
    out["wall_time_s"] = wall_time
    out["build_time_s"] = build_time
    return out


def block_placement(size: int, cores: Sequence[tuple[int, int]], per_core: int):
    """Place ``size`` neurons on ``cores`` in order, ``per_core`` consecutive ones each."""
    if size > len(cores) * per_core:
        raise ValueError(f"{size} neurons do not fit on {len(cores)} cores of {per_core}")
    return [cores[i // per_core] for i in range(size)]


def print_summary(title: str, result: Mapping) -> None:
    """Print the per-timestep means (and totals) of a ``run_sanafe`` result."""
    print(f"\n== {title} ==")
    print(f"build {result['build_time_s']:.3f} s, sim wall time {result['wall_time_s']:.3f} s")
    rows = [f"energy_{c}_pj" for c in ENERGY_COMPONENTS]
    rows += ["latency_ns", "synaptic_events", "messages", "hops", "neurons_updated",
             "neurons_fired"]
    print(f"{'per timestep':<18}{'mean':>14}{'total':>16}")
    for key in rows:
        values = result[key]
        print(f"{key:<18}{values.mean():>14.4f}{values.sum():>16.4f}")
    for layer, counts in result["spikes"].items():
        print(f"{'spikes ' + layer:<18}{counts.mean():>14.4f}{counts.sum():>16d}")


def demo_feedforward(arch_path, timesteps=20, seed=0):
    """64 inputs -> 128 LIF -> 10 LIF, dense random integer weights, p(spike) = 0.2.

    Weights are uniform integers in [-4, 4]; LIF threshold 8, no leak. Inputs on core 0.0,
    the hidden layer on cores 0.1 and 0.2 (64 each), the output layer on core 1.0 (the
    next tile north).
    """
    rng = np.random.default_rng(seed)
    layers = [("in", 64, "input"),
              ("hidden", 128, "lif", {"threshold": 8.0}),
              ("out", 10, "lif", {"threshold": 8.0})]
    edges = [("in", "hidden", rng.integers(-4, 5, size=(64, 128))),
             ("hidden", "out", rng.integers(-4, 5, size=(128, 10)))]
    inputs = (rng.random((timesteps, 64)) < 0.2).astype(int)
    placement = {"in": [(0, 0)] * 64,
                 "hidden": block_placement(128, [(0, 1), (0, 2)], 64),
                 "out": [(1, 0)] * 10}
    return run_sanafe(arch_path, layers, edges, inputs, placement, timesteps)


def demo_recurrent(arch_path, timesteps=20, seed=1):
    """100 inputs -> 512 LIF with 10 % random recurrent connectivity, p(spike) = 0.2.

    Input -> LIF connectivity is also 10 % random, weights uniform integers in [1, 4];
    recurrent weights are uniform integers in [-4, 3]; LIF threshold 12, leak_decay 0.875
    (no self-connections). Inputs on core 0.0; the 512 LIF neurons 64 per core on cores 0
    and 1 of tiles 1 to 4.
    """
    rng = np.random.default_rng(seed)
    n_in, n_lif, density = 100, 512, 0.10
    layers = [("in", n_in, "input"),
              ("rec", n_lif, "lif", {"threshold": 12.0, "leak_decay": 0.875})]
    feed_mask = rng.random((n_in, n_lif)) < density
    rec_mask = rng.random((n_lif, n_lif)) < density
    np.fill_diagonal(rec_mask, False)
    feed_src, feed_dst = np.nonzero(feed_mask)
    rec_src, rec_dst = np.nonzero(rec_mask)
    edges = [("in", "rec", (feed_src, feed_dst, rng.integers(1, 5, size=feed_src.size))),
             ("rec", "rec", (rec_src, rec_dst, rng.integers(-4, 4, size=rec_src.size)))]
    inputs = (rng.random((timesteps, n_in)) < 0.2).astype(int)
    lif_cores = [(tile, core) for tile in range(1, 5) for core in range(2)]
    placement = {"in": [(0, 0)] * n_in,
                 "rec": block_placement(n_lif, lif_cores, 64)}
    return run_sanafe(arch_path, layers, edges, inputs, placement, timesteps)


if __name__ == "__main__":
    arch = default_arch_path()
    print_summary("(a) feed-forward 64 -> 128 -> 10, 20 timesteps", demo_feedforward(arch))
    print_summary("(b) recurrent 100 -> 512 (10 % recurrent), 20 timesteps",
                  demo_recurrent(arch))
