"""Neuron kinds: parameters, state, a numba kernel and a plain-numpy reference each.

Every kind's step reads the dendritic accumulator ``acc`` (int64, summed synaptic input of
the previous timestep), clears it, updates the state, and writes ``payload``: 0 for no
event, otherwise the event's value (1 for a binary spike, the graded value for a graded
spike). Both versions return the number of values that saturated or wrapped.

Kinds
-----
``loihi_lif``
    Loihi's bit-accurate current-based LIF (Lava's fixed-point model)::

        a    = clip(acc, -2^15, 2^15 - 1)                   (16-bit synaptic input)
        u    = (u * (4096 - du - 1)) / 4096 + (a << 6)      (division rounds toward 0)
        u    wraps once to 24 bits
        v    = clip((v * (4096 - dv)) / 4096 + u + (bias_mant << bias_exp), +-(2^23 - 1))
        spike if v > vth << 6; then v = 0 (reset: zero) or v -= vth << 6 (reset: subtract)

    ``vth: null`` makes a non-spiking integrator (a readout layer).
``sigma_delta``
    Loihi's sigma-delta neuron with graded spikes (Lava's corrected fixed-point model)::

        sigma = wrap24(sigma + clip24(acc))
        act   = sigma + bias                 (relu: max(act, 0))
        delta = act - act_prev
        s     = delta >> state_exp  if |delta| >= vth  else 0
        act_prev += s << state_exp;  payload = clip24(s)

``graded_source``
    A host-driven input: each step it sends the current input value of every neuron with
    a nonzero value as a graded spike. It lives on the host, not on a core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

import numba as nb
import numpy as np
from pydantic import Field

from neurosim.errors import UserError
from neurosim.numerics.fixed import (ACT_SHIFT, INPUT16_MAX, INPUT16_MIN, STATE_MAX, decay, shift,
                                     wrap24)
from neurosim.spec.validate import Spec, validate

# A per-neuron parameter is an integer (checked by the kind's Params spec) or an int64 array of the
# population's size from the weights file (checked by `_per_neuron`, the spec sees a placeholder 0).


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over flat state arrays


@nb.njit(cache=True, nogil=True)
def lif_step(acc, payload, u, v, du, dv, vth6, bias, reset_subtract):
    overflow = 0
    for i in range(acc.shape[0]):
        a = acc[i]
        acc[i] = 0
        if a > INPUT16_MAX:
            a = INPUT16_MAX
            overflow += 1
        elif a < INPUT16_MIN:
            a = INPUT16_MIN
            overflow += 1
        p = u[i] * (4096 - (du[i] + 1))
        uu = (p >> 12) if p >= 0 else -((-p) >> 12)
        uu += a << ACT_SHIFT
        if uu > (1 << 23):
            uu -= 1 << 24
            overflow += 1
        elif uu <= -(1 << 23):
            uu += 1 << 24
            overflow += 1
        q = v[i] * (4096 - dv[i])
        vv = (q >> 12) if q >= 0 else -((-q) >> 12)
        vv += uu + bias[i]
        if vv > STATE_MAX:
            vv = STATE_MAX
            overflow += 1
        elif vv < -STATE_MAX:
            vv = -STATE_MAX
            overflow += 1
        if vth6[i] >= 0 and vv > vth6[i]:
            payload[i] = 1
            vv = vv - vth6[i] if reset_subtract else 0
        else:
            payload[i] = 0
        u[i] = uu
        v[i] = vv
    return overflow


@nb.njit(cache=True, nogil=True)
def sigma_delta_step(acc, payload, sigma, act_prev, vth, bias, relu, state_exp):
    overflow = 0
    for i in range(acc.shape[0]):
        a = acc[i]
        acc[i] = 0
        if a > STATE_MAX:
            a = STATE_MAX
            overflow += 1
        elif a < -STATE_MAX:
            a = -STATE_MAX
            overflow += 1
        s = sigma[i] + a
        if s > (1 << 23):
            s -= 1 << 24
            overflow += 1
        elif s <= -(1 << 23):
            s += 1 << 24
            overflow += 1
        sigma[i] = s
        act = s + bias[i]
        if relu and act < 0:
            act = 0
        delta = act - act_prev[i]
        out = 0
        if abs(delta) >= vth[i]:
            out = delta >> state_exp
            act_prev[i] += out << state_exp
            if out > STATE_MAX:
                out = STATE_MAX
                overflow += 1
            elif out < -STATE_MAX:
                out = -STATE_MAX
                overflow += 1
        payload[i] = out
    return overflow


@nb.njit(cache=True, nogil=True)
def source_step(acc, payload, values):
    for i in range(acc.shape[0]):
        acc[i] = 0
        payload[i] = values[i]
    return 0


# ---------------------------------------------------------------------------------------------
# plain-numpy references of the same arithmetic


def lif_reference(acc, payload, u, v, du, dv, vth6, bias, reset_subtract):
    a = np.clip(acc, INPUT16_MIN, INPUT16_MAX)
    overflow = int(np.count_nonzero(a != acc))
    uu = decay(u, 4096 - (du + 1)) + np.left_shift(a, ACT_SHIFT)
    wrapped = wrap24(uu)
    overflow += int(np.count_nonzero(wrapped != uu))
    vv = decay(v, 4096 - dv) + wrapped + bias
    clipped = np.clip(vv, -STATE_MAX, STATE_MAX)
    overflow += int(np.count_nonzero(clipped != vv))
    spikes = (vth6 >= 0) & (clipped > vth6)
    reset = clipped - vth6 if reset_subtract else np.zeros_like(clipped)
    u[:] = wrapped
    v[:] = np.where(spikes, reset, clipped)
    payload[:] = spikes
    acc[:] = 0
    return overflow


def sigma_delta_reference(acc, payload, sigma, act_prev, vth, bias, relu, state_exp):
    a = np.clip(acc, -STATE_MAX, STATE_MAX)
    overflow = int(np.count_nonzero(a != acc))
    s = sigma + a
    wrapped = wrap24(s)
    overflow += int(np.count_nonzero(wrapped != s))
    sigma[:] = wrapped
    act = wrapped + bias
    if relu:
        act = np.maximum(act, 0)
    delta = act - act_prev
    out = np.where(np.abs(delta) >= vth, np.right_shift(delta, state_exp), 0)
    act_prev += np.left_shift(out, state_exp)
    clipped = np.clip(out, -STATE_MAX, STATE_MAX)
    overflow += int(np.count_nonzero(clipped != out))
    payload[:] = clipped
    acc[:] = 0
    return overflow


def source_reference(acc, payload, values):
    payload[:] = values
    acc[:] = 0
    return 0


# ---------------------------------------------------------------------------------------------
# kinds: parameters, state layout, the two implementations


class LifParams(Spec):
    du: Annotated[int, Field(ge=0, le=4095)] = 4095
    dv: Annotated[int, Field(ge=0, le=4095)] = 0
    vth: Annotated[int, Field(ge=0, le=131071)] | None
    bias_mant: Annotated[int, Field(ge=-4095, le=4095)] = 0
    bias_exp: Annotated[int, Field(ge=-7, le=7)] = 0
    v_init: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    reset: Literal["zero", "subtract"] = "zero"


class SigmaDeltaParams(Spec):
    vth: Annotated[int, Field(ge=0, le=STATE_MAX)]
    bias: Annotated[int, Field(ge=-STATE_MAX, le=STATE_MAX)] = 0
    activation: Literal["relu", "identity"] = "relu"
    state_exp: Annotated[int, Field(ge=0, le=23)] = 0


class SourceParams(Spec):
    pass


@dataclass
class NeuronState:
    """One population's arrays: `state` changes every step, `consts` do not."""

    state: dict[str, np.ndarray]
    consts: tuple
    initial: dict[str, np.ndarray]

    def reset(self) -> None:
        for key, value in self.initial.items():
            self.state[key][:] = value


@dataclass(frozen=True)
class NeuronKind:
    name: str
    params: type[Spec]
    state_bytes: int          # neuron-state memory one neuron takes on a core
    on_host: bool
    graded: bool              # whether its events carry a payload
    kernel: Callable
    reference: Callable
    build: Callable[[Spec, dict[str, Any], int], NeuronState]
    per_neuron: tuple[str, ...] = ()   # parameters that may be per-neuron arrays


def _value(raw: dict[str, Any], p: Spec, key: str) -> Any:
    """A parameter's per-neuron array if the model gave one, else its validated scalar."""
    value = raw.get(key)
    return value if isinstance(value, np.ndarray) else getattr(p, key)


def _per_neuron(value: Any, size: int, lo: int, hi: int, field: str) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value, dtype=np.int64), (size,)).copy()
    if array.size and (array.min() < lo or array.max() > hi):
        raise ValueError(f"{field} holds values outside [{lo}, {hi}]")
    return array


def _build_lif(p: LifParams, raw: dict[str, Any], size: int) -> NeuronState:
    du = _per_neuron(_value(raw, p, "du"), size, 0, 4095, "du")
    dv = _per_neuron(_value(raw, p, "dv"), size, 0, 4095, "dv")
    mant = _per_neuron(_value(raw, p, "bias_mant"), size, -4095, 4095, "bias_mant")
    vth6 = np.full(size, -1 if p.vth is None else p.vth << ACT_SHIFT, dtype=np.int64)
    bias = shift(mant, p.bias_exp).astype(np.int64)
    initial = {"u": np.zeros(size, np.int64), "v": np.full(size, p.v_init, np.int64)}
    state = {k: a.copy() for k, a in initial.items()}
    return NeuronState(state, (du, dv, vth6, bias, p.reset == "subtract"), initial)


def _build_sigma_delta(p: SigmaDeltaParams, raw: dict[str, Any], size: int) -> NeuronState:
    vth = _per_neuron(_value(raw, p, "vth"), size, 0, STATE_MAX, "vth")
    bias = _per_neuron(_value(raw, p, "bias"), size, -STATE_MAX, STATE_MAX, "bias")
    initial = {"sigma": np.zeros(size, np.int64), "act_prev": np.zeros(size, np.int64)}
    state = {k: a.copy() for k, a in initial.items()}
    return NeuronState(state, (vth, bias, p.activation == "relu", p.state_exp), initial)


def _build_source(p: SourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    values = np.zeros(size, np.int64)
    return NeuronState({"values": values}, (), {"values": np.zeros(size, np.int64)})


KINDS: dict[str, NeuronKind] = {
    k.name: k for k in (
        NeuronKind("loihi_lif", LifParams, 8, False, False, lif_step, lif_reference, _build_lif,
                   ("du", "dv", "bias_mant")),
        NeuronKind("sigma_delta", SigmaDeltaParams, 8, False, True, sigma_delta_step,
                   sigma_delta_reference, _build_sigma_delta, ("vth", "bias")),
        NeuronKind("graded_source", SourceParams, 0, True, True, source_step, source_reference,
                   _build_source),
    )
}


def kind_of(name: str, *, file: str = "", field: str = "", line: int | None = None) -> NeuronKind:
    if name not in KINDS:
        raise UserError(f"unknown neuron kind {name!r}, expected one of {', '.join(KINDS)}",
                        file=file, field=field, line=line)
    return KINDS[name]


def build_state(kind: NeuronKind, params: dict[str, Any], size: int, *, file: str = "",
                prefix: tuple = (), lines=None) -> NeuronState:
    """Validate a population's parameters for its kind and lay out its arrays."""
    scalars = {k: (0 if isinstance(v, np.ndarray) and k in kind.per_neuron else v) for k, v in params.items()}
    spec = validate(kind.params, scalars, file=file, lines=lines, prefix=prefix)
    try:
        return kind.build(spec, params, size)
    except ValueError as err:
        raise UserError(str(err), file=file, field=".".join(map(str, prefix)),
                        line=lines.find(prefix) if lines is not None else None) from None


def check_populations(graph) -> None:
    """Check every population of a `Graph`: a known neuron kind and valid parameters, or a
    `UserError` naming the model file, line and field."""
    lines = graph.lines
    for name, pop in graph.populations.items():
        kind = kind_of(pop.kind, file=graph.source_file, field=f"populations.{name}.kind",
                       line=lines.find(("populations", name, "kind")) if lines is not None else None)
        build_state(kind, pop.params, pop.size, file=graph.source_file, prefix=("populations", name, "params"),
                    lines=lines)


def run_step(kind: NeuronKind, acc: np.ndarray, payload: np.ndarray, ns: NeuronState,
             reference: bool = False) -> int:
    """One timestep of one population (numba kernel, or the numpy reference)."""
    fn = kind.reference if reference else kind.kernel
    return fn(acc, payload, *ns.state.values(), *ns.consts)
