"""Import a NIR graph (Neuromorphic Intermediate Representation, package ``nir``) as a graph of
Loihi 2 CUBA neurons (`cuba_lif`) in the chip's fixed point.

NIR stores continuous-time equations and no time step, so the import takes ``dt`` (default: the
graph's metadata ``dt``, else 1) and the reset (``zero`` or ``subtract``; a node's metadata
``reset`` wins) as options and integrates each neuron with forward Euler at
``dt`` (`neurosim.interop.nir_reference` runs the same discrete model in float64):

============  ==========================================================================
node          per step, with x its summed input
============  ==========================================================================
CubaLIF       I += dt/tau_syn (w_in x - I);  v += dt/tau_mem (v_leak - v + r I);  spike
CubaLI        as CubaLIF, without spikes
LIF           v += dt/tau (v_leak - v + r x);  spike
LI            as LIF, without spikes
IF            v += dt r x;  spike
I             v += dt r x
Threshold     spike if x > threshold (no state)
============  ==========================================================================

A spike is ``v > v_threshold``; then ``v = v_reset`` (``reset: zero``) or ``v -= v_threshold -
v_reset`` (``subtract``). Each of these is a `cuba_lif` population: its current decay
``du = 4096 dt/tau_syn`` (4096 without a current: the input of one step), its voltage decay
``dv = 4096 dt/tau_mem`` (0 for IF and I; 4096 for Threshold), and the factor between the
input and the voltage folded into the synaptic weights, all in units of ``1/s`` volts for a
power-of-two scale ``s`` per population chosen so that its threshold is at most 2^14, one
step's input cannot exceed the 16-bit synaptic input, and its current and (for a population
that never spikes, which saturates) its voltage keep within the 24-bit state. Voltages count from ``v_reset``.
``v_leak`` and the biases of Affine and Conv nodes are constant inputs: a bias on ``v`` where
the neuron has no current filter, otherwise a bias neuron that spikes every step.

Linear nodes (Affine, Linear, Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Delay, and
the Input and Output nodes of nested graphs) between two neuron nodes are composed into one
projection per source population and delay (a Delay node's delay in steps of ``dt``). An event
reaches its targets one step later, as on the chip; a recurrent edge is one like any other.
Neuron nodes that send nothing on the chip (LI, CubaLI, I) may only feed the graph's Output.

Every conversion's error, float against fixed point, is kept per population and quantity
(weights, decays, thresholds, biases; `neurosim.interop.imported.ConversionError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.datasets import open_hdf5
from neurosim.errors import UserError
from neurosim.graph.graph import Csr, Dense, Graph, Population, Sparse
from neurosim.interop.imported import ConversionError, ImportedModel, relative_errors
from neurosim.interop.linear_maps import Coo, compose, concatenate, conv_map, finite, fits, m_apply, pool_map
from neurosim.programs.fixed import STATE_MAX

THRESHOLD_UNITS = 1 << 14          # a population's largest threshold in weight units, at most
INPUT_UNITS = (1 << 15) - 1        # one step's synaptic input of a neuron, at most (16 bits)
MAX_SCALE = 1 << 24
NEURON_TYPES = ("IF", "LIF", "LI", "I", "CubaLIF", "CubaLI", "Threshold")
LINEAR_TYPES = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay",
                "Input", "Output")
SPIKING = ("IF", "LIF", "CubaLIF", "Threshold")
MAX_DELAY = 255                    # steps, as a model folder's projections allow
MAX_NESTING = 32                   # graphs inside graphs
READ_FACTOR = 8                    # the file's data read by nir, converted and composed, against its declared bytes
BYTES_PER_NEURON = 256             # a population's parameters, state and maps, per neuron at most
TIME_CONSTANTS = ("tau", "tau_syn", "tau_mem")
PARAMETERS = ("r", "w_in", "v_leak", "v_reset", "v_threshold", "threshold")


def _nir():
    import nir

    return nir


# ---------------------------------------------------------------------------------------------
# each linear node as a map (with its bias)


def _shape(node, key: str) -> tuple[int, ...]:
    types = node.input_type if key == "input" else node.output_type
    value = types.get(key) if isinstance(types, dict) else None
    if value is None or np.asarray(value).size == 0:
        return ()
    return tuple(int(v) for v in np.atleast_1d(value))


def node_map(name: str, node, dt: float, errors: list[ConversionError]) -> tuple[Coo, np.ndarray]:
    """A linear node's map and bias."""
    kind = type(node).__name__
    in_shape = _shape(node, "input")
    n_in = int(np.prod(in_shape)) if in_shape else 0
    fits(n_in, BYTES_PER_NEURON, f"a {kind} node of {n_in:,} inputs")
    if kind in ("Affine", "Linear"):
        w = finite(node.weight, "weight")
        if w.ndim != 2:
            raise ValueError(f"a weight of shape {w.shape}, expected [outputs, inputs]")
        bias = finite(node.bias, "bias").ravel() if kind == "Affine" else np.zeros(w.shape[0])
        if bias.shape != (w.shape[0],):
            raise ValueError(f"{bias.size} biases for {w.shape[0]} outputs")
        return Coo.dense(w), bias
    if kind == "Scale":
        scale = finite(node.scale, "scale").ravel()
        n = scale.size
        return Coo(np.arange(n), np.arange(n), scale, np.zeros(n, np.int64), n, n).reduced(), np.zeros(n)
    if kind in ("Flatten", "Input", "Output"):
        return Coo.identity(n_in), np.zeros(n_in)
    if kind == "Delay":
        delay = np.broadcast_to(finite(node.delay, "delay").ravel(), (n_in,)) / dt
        if np.any(delay < 0):
            raise ValueError("a negative delay")
        if np.any(delay > MAX_DELAY + 0.5):
            raise ValueError(f"a delay of {delay.max():.4g} steps of dt, expected at most {MAX_DELAY}")
        steps = np.rint(delay).astype(np.int64)
        errors.append(relative_errors(name, "delay", steps, delay))
        return Coo.identity(n_in, steps), np.zeros(n_in)
    if kind in ("Conv1d", "Conv2d"):
        weight = finite(node.weight, "weight")
        if weight.ndim != (3 if kind == "Conv1d" else 4):
            raise ValueError(f"a weight of shape {weight.shape}, expected [out, in, *kernel]")
        if not in_shape:
            spatial = np.atleast_1d(node.input_shape) if node.input_shape is not None else ()
            in_shape = (weight.shape[1] * int(node.groups), *[int(v) for v in spatial])
        coo, bias, _ = conv_map(weight, in_shape, node.stride, node.padding, node.dilation, node.groups,
                                finite(node.bias, "bias") if node.bias is not None else None)
        return coo, bias
    if kind in ("SumPool2d", "AvgPool2d"):
        coo, _ = pool_map(in_shape, node.kernel_size, node.stride, node.padding, kind == "AvgPool2d")
        return coo, np.zeros(coo.n_out)
    raise ValueError(f"no linear map for a {kind} node")


# ---------------------------------------------------------------------------------------------
# the graph: nested graphs flattened, populations and what feeds them


@dataclass
class Flat:
    nodes: dict[str, object]           # every node but nested graphs, by its dotted name
    preds: dict[str, list[str]]
    inputs: list[str]                  # the top level's Input nodes
    outputs: list[str]                 # the top level's Output nodes
    metadata: dict                     # the top level's


def flatten(graph, prefix: str = "", depth: int = 0) -> tuple[dict, list[tuple[str, str]]]:
    """Nodes of a graph with its nested graphs' nodes inlined (names joined by dots), and its edges
    with an edge into or out of a nested graph led to its Input or from its Output node."""
    nir = _nir()
    nodes, edges = {}, []
    if depth > MAX_NESTING:
        raise ValueError(f"graphs nested more than {MAX_NESTING} deep (at {prefix.rstrip('.')}), expected fewer")

    def ends(sub_name: str, sub, kind) -> list[str]:
        return [f"{sub_name}.{k}" for k, n in sub.nodes.items() if isinstance(n, kind)]

    subgraphs = {}
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = flatten(node, f"{full}.", depth + 1)
            nodes.update(inner_nodes)
            edges += inner_edges
            subgraphs[name] = node
        else:
            nodes[full] = node

    def resolve(end: str, kind) -> list[str]:
        head, _, rest = end.partition(".")
        if head in subgraphs:
            sub = subgraphs[head]
            if rest and rest in sub.nodes:
                return [f"{prefix}{end}"]
            found = ends(f"{prefix}{head}", sub, kind)
            if len(found) != 1:
                raise ValueError(f"an edge to the nested graph {head!r}, which has {len(found)} "
                                 f"{kind.__name__} nodes; expected one, or the edge naming it")
            return found
        return [f"{prefix}{end}"]

    for src, dst in graph.edges:
        for s in resolve(src, nir.Output):
            for d in resolve(dst, nir.Input):
                edges.append((s, d))
    return nodes, edges


def read_flat(path: Path) -> Flat:
    """A NIR file's graph, flattened; its HDF5 checked first (`neurosim.datasets.check_hdf5`: no
    data outside the file) and its declared size against memory, as nir reads every dataset."""
    nir = _nir()
    if not Path(path).is_file():
        raise UserError("NIR file not found", file=str(path))
    open_hdf5(Path(path), "NIR graph", factor=READ_FACTOR).close()
    try:
        graph = nir.read(str(path))
    except FileNotFoundError:
        raise UserError("NIR file not found", file=str(path)) from None
    except Exception as err:        # nir raises many kinds on a malformed file
        raise UserError(f"is not a readable NIR graph ({type(err).__name__}: {err})", file=str(path)) from None
    try:
        nodes, edges = flatten(graph)
    except ValueError as err:
        raise UserError(str(err), file=str(path)) from None
    preds = {name: [] for name in nodes}
    for s, d in edges:
        if s not in nodes or d not in nodes:
            raise UserError(f"an edge {s} -> {d} names a node the graph does not have", file=str(path))
        preds[d].append(s)
    top = lambda kind: [n for n, node in graph.nodes.items() if isinstance(node, kind)]    # noqa: E731
    return Flat(nodes, preds, top(nir.Input), top(nir.Output), dict(getattr(graph, "metadata", {}) or {}))


# ---------------------------------------------------------------------------------------------
# neurons: the float model and its fixed point


@dataclass
class FloatNeuron:
    """One neuron node as the discrete model of the module's table, per neuron:
    ``I = (1 - a) I + gain x`` (a = 1: no current memory; I is in volts of v),
    ``v = (1 - b) v + I + leak``, spike when ``v > theta``; voltages count from v_reset."""

    kind: str
    n: int
    subtract: bool
    a: np.ndarray
    b: np.ndarray
    gain: np.ndarray
    leak: np.ndarray
    theta: np.ndarray | None
    v0: np.ndarray


def float_neuron(name: str, node, dt: float, reset: str) -> FloatNeuron:
    kind = type(node).__name__
    meta = node.metadata if isinstance(getattr(node, "metadata", None), dict) else {}
    subtract = meta.get("reset", reset) == "subtract"
    n = int(np.prod(_shape(node, "output") or _shape(node, "input") or (np.asarray(
        getattr(node, "threshold", getattr(node, "r", 0))).size,)))
    fits(n, BYTES_PER_NEURON, f"a {kind} node of {n:,} neurons")
    for key in TIME_CONSTANTS + PARAMETERS:
        if getattr(node, key, None) is not None:
            finite(getattr(node, key), key, positive=key in TIME_CONSTANTS)
    arr = (lambda v: np.broadcast_to(np.asarray(v, np.float64).ravel(), (n,)).copy())       # noqa: E731
    one, zero = np.ones(n), np.zeros(n)
    v_reset = arr(getattr(node, "v_reset", 0.0)) if hasattr(node, "v_reset") else zero
    theta = arr(node.v_threshold) - v_reset if hasattr(node, "v_threshold") else None
    v0 = arr(meta.get("v0", 0.0)) - v_reset
    if kind in ("CubaLIF", "CubaLI"):
        a, b = dt / arr(node.tau_syn), dt / arr(node.tau_mem)
        return FloatNeuron(kind, n, subtract, a, b, a * b * arr(node.r) * arr(node.w_in),
                           b * (arr(node.v_leak) - v_reset), theta, v0)
    if kind in ("LIF", "LI"):
        b = dt / arr(node.tau)
        return FloatNeuron(kind, n, subtract, one, b, b * arr(node.r), b * (arr(node.v_leak) - v_reset), theta, v0)
    if kind in ("IF", "I"):
        return FloatNeuron(kind, n, subtract, one, zero, dt * arr(node.r), zero, theta, v0)
    if kind == "Threshold":
        return FloatNeuron(kind, n, subtract, one, one, one.copy(), zero, arr(node.threshold), zero)
    raise ValueError(f"{name}: no neuron model for a {kind} node")


def _scale(model: FloatNeuron, row_sums: np.ndarray) -> float:
    """A power of two, in weight units per volt, such that the population's threshold is at most
    THRESHOLD_UNITS, one step's input at most INPUT_UNITS, and the current (its steady value,
    ``input / a``) and a silent integrator's voltage (``input / b``, or 256 steps of input
    without a leak) stay within half of the 24-bit state."""
    limit = MAX_SCALE
    theta = model.theta
    if theta is not None and theta.max(initial=0.0) > 0:
        limit = min(limit, THRESHOLD_UNITS / theta.max())
    worst = row_sums.max(initial=0.0)
    if worst > 0:
        half_state = 1 << 16                 # weight units: 2^23 / 64 / 2
        limit = min(limit, INPUT_UNITS / worst, half_state * model.a.min() / worst)
        if theta is None:
            limit = min(limit, half_state * max(model.b.min(), 1 / 256) / worst)
    return 2.0 ** math.floor(math.log2(limit))


def _integral(arrays: list[np.ndarray]) -> bool:
    """Whether every value is an integer (to float rounding) and a threshold fits the chip's range."""
    for x in arrays:
        x = np.asarray(x, np.float64)
        if x.size and (not np.all(np.isfinite(x)) or np.abs(x - np.rint(x)).max() > 1e-6 * max(1.0, np.abs(x).max())):
            return False
    return True


def _weight_exp(max_abs: float) -> int:
    """The exponent that puts the largest weight in 8 signed bits."""
    if max_abs <= 127:
        return 0 if max_abs >= 64 or max_abs == 0 else max(-8, -math.floor(math.log2(127 / max_abs)))
    return min(15, math.ceil(math.log2(max_abs / 127)))


# ---------------------------------------------------------------------------------------------
# the import


@dataclass
class Incoming:
    source: str
    coo: Coo
    bias: np.ndarray


def load_nir(path: str | Path, *, dt: float | None = None, reset: str = "zero", input_encoding: str = "spikes",
             name: str | None = None) -> ImportedModel:
    """A NIR file as a graph of `cuba_lif` populations (see the module's docstring). ``dt``
    defaults to the graph's metadata ``dt`` (as `neurosim.interop.nir_export` writes it), else 1."""
    path = Path(path)
    file = str(path)
    flat = read_flat(path)
    if dt is None:
        try:
            dt = float(flat.metadata.get("dt", 1.0)) if isinstance(flat.metadata, dict) else 1.0
        except (TypeError, ValueError):
            dt = float("nan")
        if not (math.isfinite(dt) and dt > 0):
            raise UserError(f"its metadata gives dt {flat.metadata.get('dt')!r}, expected a positive number of "
                            f"seconds (or dt in the scenario)", file=file)
    try:
        return _import(flat, path, dt, reset, input_encoding, name)
    except (ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError) as err:
        raise UserError(f"cannot be imported ({err})", file=file) from None


def _import(flat: Flat, path: Path, dt: float, reset: str, input_encoding: str, name: str | None) -> ImportedModel:
    from neurosim.interop.nir_reference import NirReference

    file = str(path)
    nodes, preds = flat.nodes, flat.preds
    if len(flat.inputs) != 1 or len(flat.outputs) != 1:
        raise UserError(f"has {len(flat.inputs)} Input and {len(flat.outputs)} Output nodes at its top level; "
                        f"expected one of each", file=file)
    for n, node in nodes.items():
        kind = type(node).__name__
        if kind not in NEURON_TYPES + LINEAR_TYPES:
            raise UserError(f"node {n!r} is a {kind}, which has no counterpart on the chip "
                            f"(expected one of {', '.join(NEURON_TYPES + LINEAR_TYPES)})", file=file)
    inp, out = flat.inputs[0], flat.outputs[0]
    is_pop = (lambda n: n == inp or type(nodes[n]).__name__ in NEURON_TYPES)      # noqa: E731
    errors: list[ConversionError] = []
    maps: dict[str, tuple[Coo, np.ndarray]] = {}
    memo: dict[str, list[Incoming]] = {}

    def incoming(n: str, visiting: frozenset = frozenset()) -> list[Incoming]:
        """Everything reaching node n's input: per source population its composed map and bias."""
        found = []
        for p in preds[n]:
            if is_pop(p):
                size = _size(nodes[p])
                found.append(Incoming(p, Coo.identity(size), np.zeros(size)))
                continue
            if p in visiting:
                raise UserError(f"node {p!r} is in a cycle of linear nodes with no neuron on it", file=file)
            if p not in memo:
                upstream = incoming(p, visiting | {p})
                if p not in maps:
                    try:
                        maps[p] = node_map(p, nodes[p], dt, errors)
                    except (ValueError, TypeError, AttributeError) as err:
                        raise UserError(f"node {p!r}: {err}", file=file) from None
                m, b = maps[p]
                for i in upstream:
                    if i.coo.n_out != m.n_in:
                        raise UserError(f"node {p!r} takes {m.n_in} values, and what reaches it has {i.coo.n_out}",
                                        file=file)
                memo[p] = [Incoming(i.source, compose(m, i.coo), m_apply(m, i.bias) + b) for i in upstream]
            found += memo[p]
        return found

    pops: dict[str, Population] = {}
    projections: dict = {}
    input_size = _size(nodes[inp])
    names = {inp: _pop_name(inp)}
    meta = nodes[inp].metadata if isinstance(getattr(nodes[inp], "metadata", None), dict) else {}
    input_encoding = meta.get("encoding", input_encoding)
    pops[names[inp]] = Population(names[inp], "graded_source" if input_encoding == "graded" else "spike_source",
                                  input_size)
    neuron_nodes = [n for n in nodes if type(nodes[n]).__name__ in NEURON_TYPES]
    direct_output = [p for p in preds[out] if is_pop(p)]
    models: dict[str, FloatNeuron] = {}
    recurrent = False
    for n in neuron_nodes:
        names[n] = _pop_name(n)
        try:
            models[n] = float_neuron(n, nodes[n], dt, reset)
        except (ValueError, TypeError, AttributeError) as err:
            raise UserError(f"node {n!r}: {err}", file=file) from None
    for n in neuron_nodes:
        if models[n].theta is None and any(n in {i.source for i in incoming(m)} for m in neuron_nodes):
            raise UserError(f"node {n!r} is a {type(nodes[n]).__name__}, which sends nothing on the chip, and "
                            f"feeds another neuron node; expected it to feed only the Output", file=file)
    readout = None
    if len(direct_output) == 1 and not [i for i in incoming(out) if i.source not in direct_output]:
        readout = direct_output[0]
    targets = list(neuron_nodes)
    if readout is None:                      # a linear map before the Output: integrate it
        readout = out
        models[out] = FloatNeuron("I", _size(nodes[out]), False, np.ones(_size(nodes[out])), np.zeros(_size(nodes[out])),
                                  np.ones(_size(nodes[out])), np.zeros(_size(nodes[out])), None,
                                  np.zeros(_size(nodes[out])))
        names[out] = _pop_name(out)
        targets.append(out)
    order, scales = {n: k for k, n in enumerate([inp] + targets)}, {}    # scales: as `NirReference` takes them
    for t in targets:
        model = models[t]
        ins = incoming(t)
        for i in ins:
            if i.coo.n_out != model.n:
                raise UserError(f"node {t!r} has {model.n} neurons, and what reaches it from {i.source!r} has "
                                f"{i.coo.n_out} values", file=file)
        recurrent |= any(order[i.source] >= order[t] for i in ins)
        per_source: dict[str, list[Incoming]] = {}
        for i in ins:
            per_source.setdefault(i.source, []).append(i)
        combined = {s: concatenate([i.coo for i in group]) for s, group in per_source.items()}
        bias_in = sum((i.bias for i in ins), np.zeros(model.n))
        eff = {s: Coo(c.rows, c.cols, c.vals * model.gain[c.rows], c.delays, c.n_out, c.n_in)
               for s, c in combined.items()}
        row_sums = sum((np.bincount(c.rows, weights=np.abs(c.vals), minlength=model.n) for c in eff.values()),
                       np.zeros(model.n))
        bias_eff = model.gain * bias_in
        needs_bias_neuron = bool(np.any(bias_eff != 0) and np.any(model.a < 1))
        scale = _scale(model, row_sums + (np.abs(bias_eff) if needs_bias_neuron else 0))
        if _integral([c.vals for c in eff.values()] + [model.theta if model.theta is not None else np.zeros(0),
                                                       64 * (model.leak + bias_eff), 64 * model.v0]):
            scale = 1.0          # already in the chip's units (a graph exported from neurosim): keep them
        pop, scales[t] = names[t], scale
        du = np.clip(np.rint(model.a * 4096), 0, 4096).astype(np.int64)
        dv = np.clip(np.rint(model.b * 4096), 0, 4096).astype(np.int64)
        v_bias = model.leak + (0 if needs_bias_neuron else bias_eff)
        bias = np.clip(np.rint(64 * scale * v_bias), -STATE_MAX, STATE_MAX).astype(np.int64)
        params = {"du": du, "dv": dv, "bias": bias, "reset": "subtract" if model.subtract else "zero"}
        if model.theta is not None:
            vth = np.clip(np.rint(model.theta * scale), 0, 131071).astype(np.int64)
            params["vth"] = vth
            errors.append(relative_errors(pop, "threshold", vth / scale, model.theta))
        else:
            params["vth"] = None
            params["overflow"] = "saturate"           # a readout that saturates rather than wraps
        v0 = np.unique(np.rint(64 * scale * model.v0))
        if len(v0) > 1:
            raise UserError(f"node {t!r}: its neurons start from different voltages; expected one", file=file)
        params["v_init"] = int(np.clip(v0[0], -STATE_MAX, STATE_MAX))
        errors.append(relative_errors(pop, "du", 4096 - du, 4096 * (1 - model.a)))
        errors.append(relative_errors(pop, "dv", 4096 - dv, 4096 * (1 - model.b)))
        errors.append(relative_errors(pop, "bias", bias / (64 * scale), v_bias))
        pops[pop] = Population(pop, "cuba_lif", model.n, params)
        weights_fixed, weights_exact = [], []
        for s, c in eff.items():
            if len(c.delays) and c.delays.max() > MAX_DELAY:
                raise UserError(f"the paths from {s!r} to {t!r} add up to a delay of {int(c.delays.max())} steps, "
                                f"expected at most {MAX_DELAY}", file=file)
            made, fixed, exact = _projections(f"{names[s]}_to_{pop}", names[s], pop, c, scale)
            projections.update((proj.name, proj) for proj in made)
            weights_fixed.append(fixed)
            weights_exact.append(exact)
        if needs_bias_neuron:
            src = f"{pop}_bias"
            pops[src] = Population(src, "cuba_lif", 1, {"du": 4096, "dv": 4096, "vth": 0, "bias": 64})
            c = Coo(np.flatnonzero(bias_eff), np.zeros(np.count_nonzero(bias_eff), np.int64),
                    bias_eff[bias_eff != 0], np.zeros(np.count_nonzero(bias_eff), np.int64), model.n, 1)
            made, fixed, exact = _projections(f"{src}_to_{pop}", src, pop, c, scale)
            projections.update((proj.name, proj) for proj in made)
            errors.append(relative_errors(pop, "bias weights", fixed, exact))
        if weights_exact:
            errors.append(relative_errors(pop, "weights", np.concatenate(weights_fixed), np.concatenate(weights_exact)))
    graph = Graph(name or path.stem, pops, projections, names[inp], names[readout],
                  "membrane" if models[readout].theta is None else "spike_count", "any", source_file=file)
    reference = NirReference(flat, models, inp, targets, readout, dt, reset, input_encoding, names, scales)
    return ImportedModel(graph, reference.run, errors, "nir", file, feed_forward=not recurrent,
                         readout_scale=reference.readout_scale)


def _size(node) -> int:
    shape = _shape(node, "output") or _shape(node, "input")
    if not shape:
        raise ValueError("a node without a known shape (its input_type and output_type are empty)")
    if min(shape) < 1:
        raise ValueError(f"a node of shape {shape}, expected positive sizes")
    n = int(np.prod(shape, dtype=object))
    fits(n, BYTES_PER_NEURON, f"a node of {n:,} values")
    return n



def _pop_name(node_name: str) -> str:
    return node_name.replace("/", "_") or "node"


def _projections(name: str, source: str, target: str, c: Coo, scale: float
                 ) -> tuple[list[Dense | Sparse], np.ndarray, np.ndarray]:
    """One projection per delay: 8-bit weights with a shared exponent; dense when it is mostly full.
    Also every weight as the chip has it and as it should be, in volts."""
    out, fixed, exact = [], [], []
    for d in np.unique(c.delays):
        pick = c.delays == d
        rows, cols, vals = c.rows[pick], c.cols[pick], c.vals[pick] * scale
        exp = _weight_exp(float(np.abs(vals).max(initial=0.0)))
        w = np.clip(np.rint(vals / 2.0 ** exp), -128, 127).astype(np.int8)
        fixed.append(w * 2.0 ** exp / scale)
        exact.append(vals / scale)
        pname = name if len(np.unique(c.delays)) == 1 else f"{name}_delay{int(d)}"
        if len(rows) >= 0.5 * c.n_out * c.n_in:
            dense = np.zeros((c.n_out, c.n_in), np.int8)
            dense[rows, cols] = w
            out.append(Dense(pname, source, target, dense, exp, delay=int(d)))
        else:
            order = np.lexsort((rows, cols))
            indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=c.n_in))]).astype(np.int64)
            out.append(Sparse(pname, source, target, Csr(indptr, rows[order].astype(np.int32), w[order]), c.n_out,
                              exp, delay=int(d)))
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0))      # noqa: E731
    return out, cat(fixed), cat(exact)
