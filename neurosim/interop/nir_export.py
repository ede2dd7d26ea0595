"""Export a model's graph to NIR (``nir.write``), readable by any NIR tool and by
`neurosim.interop.nir_import`.

The graph's integer model becomes the continuous-time NIR model whose forward-Euler steps at
``dt`` (stored in the graph's metadata) are that model without the chip's rounding. Units are
the chip's weight units (a weight of 1 adds 1 to the voltage's scale of the threshold):

- a host input: an ``Input`` node (metadata ``encoding``: ``graded`` or ``spikes``);
- a `loihi_lif` or `cuba_lif` population: with a current that carries over (``a = du/4096 < 1``,
  ``du + 1`` for `loihi_lif`), a ``CubaLIF`` (``CubaLI`` when it never spikes) with
  ``tau_syn = dt / a``, ``w_in = 1 / a``, ``tau_mem = dt / b`` (``b = dv/4096``; a voltage that
  does not leak gets ``b = 1e-12``), ``r = 1 / b`` and ``v_leak = bias / b``; without one, an
  ``IF`` or ``LIF`` (``I`` or ``LI``) with ``r = 1/dt`` or ``1/b`` and its bias on its first
  input's ``Affine``. Thresholds are ``vth``, ``v_reset`` 0; the reset mode and the initial
  voltage, which NIR does not store, go in the node's metadata (``reset``, ``v0``);
- each projection: an ``Affine`` or ``Linear`` node of its dense weights ``weight * 2^weight_exp``
  (a ``Conv2d`` node for a conv projection) and, with a delay, a ``Delay`` node after it;
- the readout population feeds the ``Output`` node.

Models whose programs NIR cannot express (graded-spike, gating, float or language-model
programs), or whose weights would be too large as dense matrices, are refused with an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurosim.errors import UserError
from neurosim.graph.graph import Conv2d, Graph
from neurosim.programs import KINDS, build_state

MAX_DENSE_ENTRIES = 50_000_000      # NIR stores weights dense; larger matrices are refused
NO_LEAK = 1e-12                     # b of a voltage that does not leak


def _shapes(graph: Graph) -> dict[str, tuple[int, ...]]:
    """Each population's shape in NIR: (C, H, W) where a convolution reads or writes it, else flat.
    NIR checks that the shapes along every edge agree."""
    shapes: dict[str, tuple[int, ...]] = {}
    for pname, proj in graph.projections.items():
        if not isinstance(proj, Conv2d):
            continue
        for pop, shape in ((proj.source, tuple(proj.in_shape)), (proj.target, tuple(proj.out_shape))):
            if shapes.setdefault(pop, shape) != shape:
                raise UserError(f"projection {pname!r}: population {pop!r} is seen as {shapes[pop]} by one "
                                f"convolution and as {shape} by another")
    for pname, proj in graph.projections.items():
        if not isinstance(proj, Conv2d) and len(shapes.get(proj.target, ())) > 1:
            raise UserError(f"projection {pname!r}: a dense projection into {proj.target!r}, which a convolution "
                            f"also feeds; NIR has no node to give a dense output the convolution's shape")
    return {name: shapes.get(name, (pop.size,)) for name, pop in graph.populations.items()}


def _neuron(name: str, pop, dt: float, shape: tuple[int, ...]):
    node, bias = _flat_neuron(name, pop, dt)
    if len(shape) > 1:                          # NIR neurons take their shape from their parameters
        node = type(node)(**{k: (np.asarray(v).reshape(shape) if isinstance(v, np.ndarray) else v)
                             for k, v in vars(node).items() if k not in ("input_type", "output_type")})
    return node, bias


def _flat_neuron(name: str, pop, dt: float):
    import nir

    kind = KINDS[pop.kind]
    ns = build_state(kind, pop.params, pop.size)
    if pop.kind == "loihi_lif":
        du, dv, vth6, bias, subtract = ns.consts
        a = (du + 1) / 4096
    else:
        du, dv, vth6, bias, subtract, refractory, graded, *_ = ns.consts
        if refractory or graded:
            raise UserError(f"population {name!r}: a refractory period or graded spikes, which NIR neurons "
                            f"do not have")
        a = du / 4096
    n = pop.size
    a = np.broadcast_to(np.asarray(a, np.float64), (n,)).astype(np.float64)
    b = np.broadcast_to(np.asarray(dv, np.float64) / 4096, (n,)).copy()
    spiking = bool(np.all(vth6 >= 0))
    if np.any(vth6 >= 0) and not spiking:
        raise UserError(f"population {name!r}: some neurons spike and some never do; NIR gives a node one kind")
    theta = np.where(vth6 >= 0, vth6 / 64.0, np.inf)
    bias_volts = np.broadcast_to(np.asarray(bias, np.float64) / 64.0, (n,)).astype(np.float64)
    meta = {"v0": float(ns.initial["v"][0] / 64.0), "reset": "subtract" if subtract else "zero"}
    v_reset = np.zeros(n)
    if np.all(a >= 1.0):                         # the current is the step's input
        if np.all(b == 0):
            node = (nir.IF(r=np.full(n, 1 / dt), v_threshold=theta, v_reset=v_reset, metadata=meta) if spiking
                    else nir.I(r=np.full(n, 1 / dt), metadata=meta))
            return node, bias_volts             # the bias goes on an input's Affine
        b_safe = np.maximum(b, NO_LEAK)
        tau = dt / b_safe
        leak = bias_volts / b_safe
        node = (nir.LIF(tau=tau, r=1 / b_safe, v_leak=leak, v_threshold=theta, v_reset=v_reset, metadata=meta)
                if spiking else nir.LI(tau=tau, r=1 / b_safe, v_leak=leak, metadata=meta))
        return node, np.zeros(n)
    if np.any(a >= 1.0) or np.any(a <= 0):
        raise UserError(f"population {name!r}: current decays that are not all below 4096 or all 4096")
    b_safe = np.maximum(b, NO_LEAK)
    args = dict(tau_syn=dt / a, tau_mem=dt / b_safe, r=1 / b_safe, v_leak=bias_volts / b_safe, w_in=1 / a,
                metadata=meta)
    node = (nir.CubaLIF(**args, v_threshold=theta, v_reset=v_reset) if spiking else nir.CubaLI(**args))
    return node, np.zeros(n)


def to_nir(graph: Graph, dt: float = 1.0):
    """The graph as a `nir.NIRGraph` (see the module's docstring)."""
    import nir

    nodes, edges = {}, []
    pending_bias: dict[str, np.ndarray] = {}
    shapes = _shapes(graph)
    for name, pop in graph.populations.items():
        kind = KINDS[pop.kind]
        if kind.on_host:
            if pop.kind not in ("graded_source", "spike_source"):
                raise UserError(f"population {name!r}: a {pop.kind} input, which NIR has no counterpart for")
            nodes[name] = nir.Input(input_type={"input": np.array(shapes[name])},
                                    metadata={"encoding": "graded" if pop.kind == "graded_source" else "spikes"})
            continue
        if pop.kind not in ("loihi_lif", "cuba_lif"):
            raise UserError(f"population {name!r}: a {pop.kind} program, which no NIR neuron expresses "
                            f"(expected loihi_lif or cuba_lif)")
        nodes[name], pending_bias[name] = _neuron(name, pop, dt, shapes[name])
    for pname, proj in graph.projections.items():
        target = graph.populations[proj.target]
        if len(KINDS[target.kind].ports) > 1:
            raise UserError(f"projection {pname!r}: a target with several input ports, which NIR neurons lack")
        n_t, n_s = proj.shape
        scale = 2.0 ** proj.weight_exp
        bias = pending_bias.pop(proj.target, None)
        if isinstance(proj, Conv2d):
            weight = proj.weight.astype(np.float64) * scale
            c_out = weight.shape[0]
            per_channel = None
            if bias is not None and np.any(bias):
                per_channel = bias.reshape(c_out, -1)
                if not np.all(per_channel == per_channel[:, :1]):
                    raise UserError(f"population {proj.target!r}: a bias that differs within a channel of "
                                    f"a conv input")
            node = nir.Conv2d(input_shape=np.array(proj.in_shape[1:]), weight=weight, stride=proj.stride,
                              padding=proj.padding, dilation=1, groups=1,
                              bias=per_channel[:, 0] if per_channel is not None else np.zeros(c_out))
        else:
            if n_t * n_s > MAX_DENSE_ENTRIES:
                raise UserError(f"projection {pname!r}: NIR stores weights dense, and this one would take "
                                f"{n_t * n_s:,} entries (at most {MAX_DENSE_ENTRIES:,})")
            csr = proj.to_csr()
            dense = np.zeros((n_t, n_s))
            src = np.repeat(np.arange(n_s), np.diff(csr.indptr))
            dense[csr.indices, src] = csr.weight.astype(np.float64) * scale
            node = (nir.Affine(weight=dense, bias=bias) if bias is not None and np.any(bias)
                    else nir.Linear(weight=dense))
        nodes[pname] = node
        if not isinstance(proj, Conv2d) and len(shapes[proj.source]) > 1:
            flat = f"{pname}_flatten"
            nodes[flat] = nir.Flatten(input_type={"input": np.array(shapes[proj.source])}, start_dim=0, end_dim=-1)
            edges += [(proj.source, flat), (flat, pname)]
        else:
            edges.append((proj.source, pname))
        if proj.delay:
            delay = f"{pname}_delay"
            nodes[delay] = nir.Delay(delay=np.full(n_t, proj.delay * dt))
            edges += [(pname, delay), (delay, proj.target)]
        else:
            edges.append((pname, proj.target))
    left = [name for name, b in pending_bias.items() if np.any(b)]
    if left:
        raise UserError(f"population {left[0]!r}: a bias but no input to carry it in NIR")
    out = next(name for name in ("output", "graph_output", "readout_output") if name not in nodes)
    nodes[out] = nir.Output(output_type={"output": np.array(shapes[graph.readout_population])})
    edges.append((graph.readout_population, out))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "source": "neurosim", "name": graph.name})


def export_nir(graph: Graph, path: str | Path, dt: float = 1.0) -> Path:
    """Write the graph to a NIR file; returns its path."""
    import nir

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    graph_nir = to_nir(graph, dt)
    try:
        nir.write(str(tmp), graph_nir)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
