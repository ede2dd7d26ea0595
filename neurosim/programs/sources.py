"""Host-driven integer inputs: the values the host sets each step, sent as graded spikes, binary
spikes, changes or spike times (the step's contract: `neurosim.programs.kind`; the float input ``float_source``
is in `neurosim.programs.fp32`).

``graded_source``
    A host-driven input: each step it sends the current input value of every neuron with
    a nonzero value as a graded spike (clipped to ``payload_bits``). It lives on the host,
    not on a core.
``spike_source``
    A host-driven binary input: each step every neuron with a nonzero input value sends a
    binary spike (a spike generator).
``delta_source``
    A host-driven graded input sent as changes (Lava's Delta neuron, the input layer of a
    sigma-delta network): the input is scaled by ``2^input_exp``, and a change of at least
    ``vth`` since what was sent goes out as ``change >> state_exp``; the part not sent stays
    for later::

        delta = (values << input_exp) - act_prev
        p = clip(delta >> state_exp, payload_bits) if |delta| >= vth else 0;  act_prev += p << state_exp

``time_source``
    A host-driven input in a time code (a spike latency): each value becomes one binary spike
    within a window of ``window`` steps from rest, the larger the value the earlier. A value
    ``v`` of at least ``value_min`` spikes at the step (counted by ``age`` from rest) ::

        t(v) = (value_max - min(v, value_max)) * (window - 1) // max(value_max - value_min, 1)

    so ``value_max`` (and above: clipped, counted as an overflow) spikes in the first step and
    ``value_min`` in the last; a value below ``value_min`` never spikes.
"""

from __future__ import annotations

from typing import Annotated, Any

import numba as nb
import numpy as np
from pydantic import Field, model_validator

from neurosim.programs.fixed import STATE_MAX
from neurosim.programs.kind import (NeuronKind, NeuronState, PayloadBits, clip_scalar, count_changed, int_state,
                                    max_payload)
from neurosim.spec.validate import Spec


# ---------------------------------------------------------------------------------------------
# numba kernels: pure functions over flat state arrays


@nb.njit(cache=True, nogil=True)
def spike_source_step(acc, payload, values):
    for i in range(payload.shape[0]):
        acc[0, i] = 0
        payload[i] = 1 if values[i] != 0 else 0
    return 0


@nb.njit(cache=True, nogil=True)
def source_step(acc, payload, values, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        acc[0, i] = 0
        out, o = clip_scalar(values[i], payload_max)
        payload[i] = out
        overflow += o
    return overflow


@nb.njit(cache=True, nogil=True)
def delta_source_step(acc, payload, values, act_prev, vth, input_exp, state_exp, payload_max):
    overflow = 0
    for i in range(payload.shape[0]):
        acc[0, i] = 0
        delta = (values[i] << input_exp) - act_prev[i]
        out = 0
        if abs(delta) >= vth:
            out, o = clip_scalar(delta >> state_exp, payload_max)
            act_prev[i] += out << state_exp
            overflow += o
        payload[i] = out
    return overflow


@nb.njit(cache=True, nogil=True)
def time_source_step(acc, payload, values, age, window, value_max, value_min):
    overflow = 0
    span = max(value_max - value_min, 1)
    for i in range(payload.shape[0]):
        acc[0, i] = 0
        v = values[i]
        out = 0
        if v >= value_min:
            clipped = v > value_max
            if clipped:
                v = value_max
            if age[i] == (value_max - v) * (window - 1) // span:
                out = 1
                overflow += clipped
        payload[i] = out
        age[i] += 1
    return overflow


# ---------------------------------------------------------------------------------------------
# plain-numpy references of the same arithmetic; batched: state [..., n], acc [..., ports, n]


def spike_source_reference(acc, payload, values):
    payload[...] = values != 0
    acc[...] = 0
    return 0


def source_reference(acc, payload, values, payload_max):
    clipped = np.clip(values, -payload_max, payload_max)
    payload[...] = clipped
    acc[...] = 0
    return count_changed(clipped, values)


def delta_source_reference(acc, payload, values, act_prev, vth, input_exp, state_exp, payload_max):
    delta = np.left_shift(values.astype(np.int64), input_exp) - act_prev
    raw = np.where(np.abs(delta) >= vth, np.right_shift(delta, state_exp), 0)
    out = np.clip(raw, -payload_max, payload_max)
    act_prev += np.left_shift(out, state_exp)
    payload[...] = out
    acc[...] = 0
    return count_changed(out, raw)


def time_source_reference(acc, payload, values, age, window, value_max, value_min):
    v = np.minimum(values, value_max)
    due = (values >= value_min) & (age == (value_max - v) * (window - 1) // max(value_max - value_min, 1))
    payload[...] = due
    acc[...] = 0
    age += 1
    return int(np.count_nonzero(due & (values > value_max)))


# ---------------------------------------------------------------------------------------------
# parameters, state layout, the two implementations


class SourceParams(Spec):
    payload_bits: PayloadBits = 24


class SpikeSourceParams(Spec):
    pass


class DeltaSourceParams(Spec):
    vth: Annotated[int, Field(ge=0, le=STATE_MAX)] = 0
    input_exp: Annotated[int, Field(ge=0, le=23)] = 0
    state_exp: Annotated[int, Field(ge=0, le=23)] = 0
    payload_bits: PayloadBits = 24


class TimeSourceParams(Spec):
    window: Annotated[int, Field(ge=1, le=1 << 20)] = 60         # the window of Frady et al. 2020
    value_max: Annotated[int, Field(ge=1, le=STATE_MAX)] = 60     # a value per step of that window
    value_min: Annotated[int, Field(ge=1, le=STATE_MAX)] = 1

    @model_validator(mode="after")
    def _check(self) -> "TimeSourceParams":
        if self.value_min > self.value_max:
            raise ValueError(f"value_min ({self.value_min}) exceeds value_max ({self.value_max})")
        return self


def _build_spike_source(p: SpikeSourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = int_state(size, values=0)
    return NeuronState(state, (), initial)


def _build_source(p: SourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = int_state(size, values=0)
    return NeuronState(state, (max_payload(p.payload_bits),), initial)


def _build_delta_source(p: DeltaSourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = int_state(size, values=0, act_prev=0)
    return NeuronState(state, (p.vth, p.input_exp, p.state_exp, max_payload(p.payload_bits)), initial)


def _build_time_source(p: TimeSourceParams, raw: dict[str, Any], size: int) -> NeuronState:
    state, initial = int_state(size, values=0, age=0)
    return NeuronState(state, (p.window, p.value_max, p.value_min), initial)


SOURCE_KINDS: tuple[NeuronKind, ...] = (
    NeuronKind("graded_source", SourceParams, 0, True, True, source_step, source_reference, _build_source),
    NeuronKind("spike_source", SpikeSourceParams, 0, True, False, spike_source_step, spike_source_reference,
               _build_spike_source),
    NeuronKind("delta_source", DeltaSourceParams, 0, True, True, delta_source_step, delta_source_reference,
               _build_delta_source),
    NeuronKind("time_source", TimeSourceParams, 0, True, False, time_source_step, time_source_reference,
               _build_time_source),
)
