"""What every neuron program shares: its record (`NeuronKind`), its arrays (`NeuronState`), and
the helpers the programs' parameters, state and kernels are built from.

A neuron program is what a neurocore runs for each of its neurons every timestep. Every
program's step reads its dendritic accumulators ``acc`` (int64, shape ``[ports, n]``: the
summed synaptic input of the previous timestep on each input port), clears them, updates
the state, and writes ``payload``: 0 for no event, otherwise the event's value (1 for a
binary spike, the value itself for a graded spike). Both versions return the number of
values that saturated or wrapped (the trace counts them as overflows).

Number formats (``neurosim.programs.fixed``): state is 24-bit signed; ``overflow: wrap``
wraps it modulo 2^24 as a two's-complement adder does, ``overflow: saturate`` clips it to
+-(2^23 - 1). A graded payload has ``payload_bits`` (at most the chip's
``graded_payload_bits``) and saturates. ``loihi_lif`` keeps Lava's own rules.

A neuron's update is *active* in a step when it does work beyond reading its state: it
has input on a port or state away from rest (`NeuronKind.active`). Chips may price active
updates apart (``neuron_active``), as Loihi's active and inactive neuron updates.

State memory per neuron (``state_bytes``): one 32-bit word per state variable and per
input port beyond the first; the mapper adds a word per parameter given per neuron.

Operations per update (``ops``): what one update executes by class (adds, multiplies, table
look-ups, ...; `neurosim.programs.ops`), for chips that price a program's operations.

Each family of programs has its own module, its equations in its docstring (`neurosim.programs.lif`,
`graded`, `lm_ops`, `fused`, `sources`, `spikegpt_fixed`, `fp32`); `neurosim.programs.registry` holds ``KINDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

import numba as nb
import numpy as np
from pydantic import Field

from neurosim.programs.fixed import STATE_MAX
from neurosim.spec.validate import Spec

WORD_BYTES = 4     # one neuron-state word on a neurocore
MAX_PAYLOAD_BITS = 32
INPUT32_MAX = (1 << 31) - 1
FLOAT = np.float32        # the float programs' number type: state, accumulators, payloads, weights
TABLE_RANGE = 8          # sigmoid and silu tables cover x in [-8, 8)

# A per-neuron parameter is an integer (checked by the kind's Params spec) or an int64 array of the
# population's size from the weights file (checked by `per_neuron_int`, the spec sees a placeholder 0).

PayloadBits = Annotated[int, Field(ge=1, le=MAX_PAYLOAD_BITS)]
Overflow = Literal["wrap", "saturate"]
Activation = Literal["relu", "identity"]


# ---------------------------------------------------------------------------------------------
# numba building blocks: the chip's fixed-point rules on one value (inlined into the kernels)
# numba's on-disk cache knows a kernel by its own file only: after changing one of these, clear the
# family modules' caches (__pycache__/*.nbi, *.nbc) so that their kernels are compiled anew.


@nb.njit(cache=True, nogil=True, inline="always")
def clip_scalar(x, hi):
    """x clipped to [-hi, hi]; and 1 if it was clipped."""
    if x > hi:
        return hi, 1
    if x < -hi:
        return -hi, 1
    return x, 0


@nb.njit(cache=True, nogil=True, inline="always")
def fix24_scalar(x, saturate):
    """x brought into 24 bits by saturation or a two's-complement wrap; and 1 if changed."""
    if saturate:
        return clip_scalar(x, STATE_MAX)
    wrapped = ((x + (1 << 23)) & ((1 << 24) - 1)) - (1 << 23)
    return wrapped, 1 if wrapped != x else 0


@nb.njit(cache=True, nogil=True, inline="always")
def activate(x, relu):
    """x, or 0 for a negative x with relu."""
    return 0 if relu and x < 0 else x


# ---------------------------------------------------------------------------------------------
# a program's record and its arrays


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
    ports: tuple[str, ...] = ("in",)   # its dendritic inputs; a projection names one (default: the first)
    active: Callable[[np.ndarray, NeuronState], np.ndarray] | None = None   # see `active_neurons`
    float_valued: bool = False         # fp32 state, accumulators and payloads (else integers)
    whole_population: bool = False     # its update needs the whole population's vector: one core holds it
    ops: Callable[[Spec, dict[str, Any]], dict[str, int]] | None = None   # one update's operations by class
    #                                  (`neurosim.programs.ops`), from its parameters; None: not counted


# ---------------------------------------------------------------------------------------------
# parameters and state: validation and layout, shared by the programs' builders


def param_value(raw: dict[str, Any], p: Spec, key: str) -> Any:
    """A parameter's per-neuron array if the model gave one, else its validated scalar."""
    value = raw.get(key)
    return value if isinstance(value, np.ndarray) else getattr(p, key)


class ParameterError(ValueError):
    """A parameter's per-neuron values out of range; names the parameter."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def per_neuron_int(value: Any, size: int, lo: int, hi: int, field: str) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value, dtype=np.int64), (size,)).copy()
    if array.size and (array.min() < lo or array.max() > hi):
        raise ParameterError(field, f"holds values outside [{lo}, {hi}] (found {array.min()} to {array.max()})")
    return array


def max_payload(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def int_state(size: int, **initial: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    init = {k: np.full(size, v, np.int64) for k, v in initial.items()}
    return {k: a.copy() for k, a in init.items()}, init


def count_changed(before: np.ndarray, after: np.ndarray) -> int:
    return int(np.count_nonzero(before != after))


def function_table(function: str, in_frac: int, out_frac: int) -> tuple[np.ndarray, int]:
    """A sigmoid or silu table over [-TABLE_RANGE, TABLE_RANGE) at 2^-in_frac steps, values rounded
    to nearest at 2^-out_frac; and the x (in input units) of its first entry."""
    lo = -TABLE_RANGE << in_frac
    x = np.arange(lo, -lo, dtype=np.float64) / (1 << in_frac)
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    y = sigmoid if function == "sigmoid" else x * sigmoid
    return np.floor(y * (1 << out_frac) + 0.5).astype(np.int64), lo
