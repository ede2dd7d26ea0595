"""The registry of neuron programs, ``KINDS`` (each family's kinds, in this order), and what the
rest of the simulator asks of a kind: validated state, one step, its payload and state sizes,
and the checks of a graph's populations and projections against it."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim.errors import UserError
from neurosim.graph.graph import weight_range
from neurosim.programs.fp32 import FP32_KINDS
from neurosim.programs.fused import FUSED_KINDS
from neurosim.programs.graded import GRADED_KINDS
from neurosim.programs.kind import FLOAT, WORD_BYTES, NeuronKind, NeuronState, ParameterError
from neurosim.programs.lif import LIF_KINDS
from neurosim.programs.lm_ops import LM_KINDS
from neurosim.programs.ops import Ops, ops
from neurosim.programs.sources import SOURCE_KINDS
from neurosim.programs.spikegpt_fixed import SPIKEGPT_FIXED_KINDS
from neurosim.spec.validate import validate

KINDS: dict[str, NeuronKind] = {
    k.name: k for k in (*LIF_KINDS, *GRADED_KINDS, *LM_KINDS, *FUSED_KINDS, *SOURCE_KINDS, *SPIKEGPT_FIXED_KINDS,
                        *FP32_KINDS)
}


def payload_bits_of(kind: NeuronKind, params: dict[str, Any]) -> int:
    """Bits of payload an event of this population carries (0: a binary spike)."""
    if not kind.graded or (kind.name == "cuba_lif" and not params.get("graded", False)):
        return 0
    if kind.float_valued:
        return 32
    return int(params.get("payload_bits", kind.params.model_fields["payload_bits"].default))


def state_bytes_of(kind: NeuronKind, params: dict[str, Any]) -> int:
    """Neuron-state memory per neuron: the program's words, plus a word per per-neuron parameter."""
    arrays = sum(isinstance(v, np.ndarray) for v in params.values())
    return kind.state_bytes + WORD_BYTES * arrays


def ops_of(kind: NeuronKind, params: dict[str, Any]) -> Ops | None:
    """One update's operations by class (`neurosim.programs.ops`) for a population of this kind
    and parameters: none for a population on the host, None for a kind that does not count
    them (the float programs, which run on no neurocore)."""
    if kind.on_host:
        return ops()
    if kind.ops is None:
        return None
    scalars = {k: (0 if isinstance(v, np.ndarray) else v) for k, v in params.items()}
    return kind.ops(validate(kind.params, scalars, file=""), params)


def active_neurons(kind: NeuronKind, acc: np.ndarray, ns: NeuronState) -> np.ndarray:
    """Which neurons' updates this step are active (before the update runs): input on any
    port, or state away from rest: the kind's own rule, else any nonzero state variable."""
    if kind.active is not None:
        return kind.active(acc, ns)
    active = (acc != 0).any(axis=0)
    for value in ns.state.values():
        active |= value != 0
    return active


def kind_of(name: str, *, file: str = "", field: str = "", line: int | None = None) -> NeuronKind:
    if name not in KINDS:
        raise UserError(f"unknown neuron kind {name!r}, expected one of {', '.join(KINDS)}",
                        file=file, field=field, line=line)
    return KINDS[name]


def build_state(kind: NeuronKind, params: dict[str, Any], size: int, *, file: str = "",
                prefix: tuple = (), lines=None) -> NeuronState:
    """Validate a population's parameters for its kind and lay out its arrays."""
    def where(key: str | None = None):
        path = prefix + ((key,) if key else ())
        return dict(file=file, field=".".join(map(str, path)), line=lines.find(path) if lines is not None else None)

    for key, value in params.items():
        if isinstance(value, np.ndarray) and key not in kind.per_neuron:
            raise UserError(f"{kind.name} takes {key} as one number, not per neuron"
                            + (f" (per-neuron parameters: {', '.join(kind.per_neuron)})" if kind.per_neuron else ""),
                            **where(key))
    scalars = {k: (0 if isinstance(v, np.ndarray) else v) for k, v in params.items()}
    spec = validate(kind.params, scalars, file=file, lines=lines, prefix=prefix)
    try:
        return kind.build(spec, params, size)
    except ParameterError as err:
        raise UserError(str(err), **where(err.key)) from None


def check_populations(graph) -> None:
    """Check every population of a `Graph`: a known neuron kind and valid parameters, and
    integer and float kinds not mixed; or a `UserError` naming the model file, line and field."""
    lines = graph.lines
    first = None
    for name, pop in graph.populations.items():
        where = ("populations", name, "kind")
        kind = kind_of(pop.kind, file=graph.source_file, field=".".join(where),
                       line=lines.find(where) if lines is not None else None)
        build_state(kind, pop.params, pop.size, file=graph.source_file, prefix=("populations", name, "params"),
                    lines=lines)
        first = first or (name, kind)
        if kind.float_valued != first[1].float_valued:
            arithmetic = {True: "float", False: "integer"}
            raise UserError(f"a {arithmetic[kind.float_valued]} neuron kind in a graph of {arithmetic[not kind.float_valued]} "
                            f"kinds ({first[0]!r} is {first[1].name}); expected all integer or all float kinds",
                            file=graph.source_file, field=".".join(where), line=lines.find(where) if lines is not None else None)


def value_dtype(graph) -> type:
    """The type of a graph's accumulators and payloads: float32 for float kinds, else int64."""
    kinds = [KINDS[p.kind] for p in graph.populations.values()]
    return FLOAT if kinds and kinds[0].float_valued else np.int64


def port_index(kind: NeuronKind, port: str) -> int:
    """The index of a projection's target port (empty: the first)."""
    return kind.ports.index(port) if port else 0


def check_projections(graph) -> None:
    """Check every projection of a `Graph`: a port its target has, and weights within their
    ``weight_bits`` and sign mode; else a `UserError` naming the model file, line and field."""
    def fail(name: str, key: str, message: str) -> UserError:
        where = ("projections", name, key)
        return UserError(message, file=graph.source_file, field=".".join(where),
                         line=graph.lines.find(where) if graph.lines is not None else None)

    for name, proj in graph.projections.items():
        kind = KINDS[graph.populations[proj.target].kind]
        if proj.port and proj.port not in kind.ports:
            raise fail(name, "port", f"{proj.target!r} is a {kind.name} population with input ports "
                                     f"{', '.join(kind.ports)}; found {proj.port!r}")
        weight = proj.weight if hasattr(proj, "weight") else proj.csr.weight
        if kind.float_valued or weight.dtype.kind == "f":
            if not (kind.float_valued and weight.dtype == FLOAT and proj.sign_mode == "float" and proj.weight_bits == 32):
                raise fail(name, "sign_mode", f"float32 weights (sign_mode float, 32 bits) go to float neuron kinds; "
                                              f"found {weight.dtype} weights, sign_mode {proj.sign_mode}, "
                                              f"{proj.weight_bits} bits into a {kind.name} population")
            if not np.all(np.isfinite(weight)):
                raise fail(name, "weight_bits", "weights that are not finite numbers")
            continue
        if proj.sign_mode != "mixed" and proj.weight_bits > 7:
            raise fail(name, "weight_bits", f"{proj.sign_mode} weights have at most 7 bits (they are stored as "
                                            f"int8), found {proj.weight_bits}")
        lo, hi = weight_range(proj.weight_bits, proj.sign_mode)
        if weight.size and (int(weight.min()) < lo or int(weight.max()) > hi):
            raise fail(name, "weight_bits", f"weights range over [{int(weight.min())}, {int(weight.max())}], "
                                            f"{proj.weight_bits}-bit {proj.sign_mode} weights hold [{lo}, {hi}]")


def run_step(kind: NeuronKind, acc: np.ndarray, payload: np.ndarray, ns: NeuronState,
             reference: bool = False) -> int:
    """One timestep of one population (numba kernel, or the numpy reference); ``acc`` is [ports, n]."""
    fn = kind.reference if reference else kind.kernel
    return fn(acc, payload, *ns.state.values(), *ns.consts)
