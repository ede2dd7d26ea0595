"""The neuron programs of a graph as one table that compiled code can run.

A program's kernel (`neurosim.programs`) takes its population's state arrays and constants as
separate arguments, in its own order. To call every population's kernel from one compiled step,
their arrays are laid out flat, a population's state variables one after another in ``state``
and its constant arrays (per-neuron parameters, tables) in ``arrays``, its scalar constants in
``scalars``; `run_program` unpacks them into each kernel's own call. The population's
`NeuronState` is pointed at the flat copy, so that what the rest of the simulator reads and
writes through it (inputs, reset, checkpoints) is what the kernels use.

A kind whose kernel is plain numpy (the float and SpikeGPT programs) is not in the table; a
graph with one is run population by population from Python instead (``Programs.compiled``).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from neurosim.programs import NeuronKind, NeuronState, active_neurons
from neurosim.programs.graded import graded_relu_step, sigma_delta_step
from neurosim.programs.fused import glu_step, mlgru_step, residual_add_step, scaled_product_step
from neurosim.programs.lif import cuba_lif_step, lif_step
from neurosim.programs.lm_ops import gate_product_step, gated_recurrence_step, lut_activation_step, rsqrt_step
from neurosim.programs.sources import delta_source_step, source_step, spike_source_step, time_source_step

# The compiled kinds, with each kernel's constants in order: "a" an array, "s" a scalar.
LAYOUTS = {"loihi_lif": "aaaas", "cuba_lif": "aaaasssss", "sigma_delta": "aassss", "graded_relu": "asss",
           "gate_product": "sssas", "gated_recurrence": "sss", "lut_activation": "assssasaas", "rsqrt": "sss",
           "graded_source": "s", "spike_source": "", "delta_source": "ssss", "time_source": "sss",
           "scaled_product": "assssssasss", "residual_add": "asssssasss", "glu": "asssasssssasss",
           "mlgru": "aasssaasaassss"}
KIND_IDS = {name: k for k, name in enumerate(LAYOUTS)}
SCALED_PRODUCT, RESIDUAL_ADD, GLU, MLGRU = (KIND_IDS[k] for k in ("scaled_product", "residual_add", "glu", "mlgru"))


class ProgramTable(NamedTuple):
    """Every population's program, state and constants, flat (see the module's docstring)."""

    kind: np.ndarray          # int64 [n_pops] index into LAYOUTS
    lo: np.ndarray            # int64 [n_pops] first neuron
    hi: np.ndarray            # int64 [n_pops] one past the last
    dendrite: np.ndarray      # int64 [n_pops] first dendrite (accumulator) of its ports
    ports: np.ndarray         # int64 [n_pops]
    state: np.ndarray         # int64, each population's state variables one after another
    state_lo: np.ndarray      # int64 [n_pops] where its first variable starts
    state_hi: np.ndarray      # int64 [n_pops] where its last one ends
    arrays: np.ndarray        # int64, every constant array one after another
    array_ptr: np.ndarray     # int64 [n_arrays + 1] bounds of each constant array in `arrays`
    first_array: np.ndarray   # int64 [n_pops] its first constant array's index
    scalars: np.ndarray       # int64, every scalar constant
    first_scalar: np.ndarray  # int64 [n_pops] its first scalar's index
    rest_active: np.ndarray   # bool [n_neurons] active whatever the state and input (e.g. a bias)
    watched: np.ndarray       # bool [len(state)] state entries whose nonzero value makes an update active


def layout_of(state: NeuronState) -> str:
    return "".join("a" if isinstance(c, np.ndarray) else "s" for c in state.consts)


def compilable(kind: NeuronKind, state: NeuronState) -> bool:
    """Whether the table can run this population: a compiled kernel, integer state and constants."""
    return (LAYOUTS.get(kind.name) == layout_of(state)
            and all(a.dtype == np.int64 and a.ndim == 1 for a in state.state.values())
            and all(c.dtype == np.int64 and c.ndim == 1 for c in state.consts if isinstance(c, np.ndarray)))


def active_rule(kind: NeuronKind, state: NeuronState, n: int) -> tuple[np.ndarray, list[bool]]:
    """A kind's rule for active updates (`neurosim.programs.active_neurons`) as the table keeps it
    for a population of ``n``: which neurons are active at rest (no input, zero state), and which
    state variables make a neuron active when nonzero (input on any port always does). Found by
    asking the rule itself."""
    zero = {k: np.zeros_like(v) for k, v in state.state.items()}
    acc = np.zeros((len(kind.ports), n), np.int64)
    at_rest = np.asarray(active_neurons(kind, acc, NeuronState(zero, state.consts, zero)), bool)
    watched = []
    for key in state.state:
        probe = {k: (np.ones_like(v) if k == key else v) for k, v in zero.items()}
        watched.append(bool(np.all(active_neurons(kind, acc, NeuronState(probe, state.consts, zero)))))
    return np.broadcast_to(at_rest, (n,)), watched


def program_table(pops: list[tuple[str, int, int, NeuronKind, NeuronState]], dendrites: list[int],
                  n_neurons: int) -> ProgramTable | None:
    """The table of ``pops`` (name, first neuron, end, kind, state), each population's dendrites
    from ``dendrites``; None if a population's kind cannot run compiled. Each `NeuronState`'s
    arrays become views of the table's."""
    if not all(compilable(kind, state) for *_, kind, state in pops):
        return None
    state_lo, state_hi, arrays, first_array, scalars, first_scalar = [], [], [], [], [], []
    pos = 0
    for *_, state in pops:
        state_lo.append(pos)
        pos += sum(len(a) for a in state.state.values())
        state_hi.append(pos)
        first_array.append(len(arrays))
        first_scalar.append(len(scalars))
        arrays += [c for c in state.consts if isinstance(c, np.ndarray)]
        scalars += [int(c) for c in state.consts if not isinstance(c, np.ndarray)]
    flat = np.zeros(pos, np.int64)
    watched = np.zeros(pos, bool)
    rest_active = np.zeros(n_neurons, bool)
    for (_name, lo, hi, kind, state), start in zip(pops, state_lo):
        at_rest, watches = active_rule(kind, state, hi - lo)
        rest_active[lo:hi] = at_rest
        for (key, values), watch in zip(list(state.state.items()), watches):
            view = flat[start:start + len(values)]
            view[:] = values
            watched[start:start + len(values)] = watch
            state.state[key] = view
            start += len(values)
    array_ptr = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
    flat_arrays = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    k = 0
    for *_, state in pops:          # its constant arrays become views of the table's too
        consts = list(state.consts)
        for i, c in enumerate(consts):
            if isinstance(c, np.ndarray):
                consts[i] = flat_arrays[array_ptr[k]:array_ptr[k + 1]]
                k += 1
        state.consts = tuple(consts)
    as_int = (lambda values: np.array(values, np.int64))
    return ProgramTable(as_int([KIND_IDS[kind.name] for *_, kind, _s in pops]), as_int([p[1] for p in pops]),
                        as_int([p[2] for p in pops]), as_int(dendrites), as_int([len(p[3].ports) for p in pops]),
                        flat, as_int(state_lo), as_int(state_hi), flat_arrays,
                        array_ptr, as_int(first_array), as_int(scalars), as_int(first_scalar), rest_active, watched)


@nb.njit(cache=True, nogil=True, inline="always")
def var(t, p, j):
    """Population ``p``'s ``j``-th state variable."""
    n = t.hi[p] - t.lo[p]
    return t.state[t.state_lo[p] + j * n:t.state_lo[p] + (j + 1) * n]


@nb.njit(cache=True, nogil=True, inline="always")
def arr(t, p, j):
    """Population ``p``'s ``j``-th constant array."""
    k = t.first_array[p] + j
    return t.arrays[t.array_ptr[k]:t.array_ptr[k + 1]]


@nb.njit(cache=True, nogil=True, inline="always")
def num(t, p, j):
    """Population ``p``'s ``j``-th scalar constant."""
    return t.scalars[t.first_scalar[p] + j]


@nb.njit(cache=True, nogil=True)
def run_program(t, p, acc, payload):
    """Population ``p``'s step: its kernel on its accumulators ``acc`` ([ports, n]), its
    ``payload`` and its state and constants from table ``t``; returns its overflows."""
    k = t.kind[p]
    if k == 0:
        return lif_step(acc, payload, var(t, p, 0), var(t, p, 1), arr(t, p, 0), arr(t, p, 1), arr(t, p, 2),
                        arr(t, p, 3), num(t, p, 0) != 0)
    if k == 1:
        return cuba_lif_step(acc, payload, var(t, p, 0), var(t, p, 1), var(t, p, 2), arr(t, p, 0), arr(t, p, 1),
                             arr(t, p, 2), arr(t, p, 3), num(t, p, 0) != 0, num(t, p, 1), num(t, p, 2) != 0,
                             num(t, p, 3) != 0, num(t, p, 4))
    if k == 2:
        return sigma_delta_step(acc, payload, var(t, p, 0), var(t, p, 1), arr(t, p, 0), arr(t, p, 1),
                                num(t, p, 0) != 0, num(t, p, 1), num(t, p, 2) != 0, num(t, p, 3))
    if k == 3:
        return graded_relu_step(acc, payload, arr(t, p, 0), num(t, p, 0) != 0, num(t, p, 1), num(t, p, 2))
    if k == 4:
        return gate_product_step(acc, payload, num(t, p, 0) != 0, num(t, p, 1) != 0, num(t, p, 2), arr(t, p, 0),
                                 num(t, p, 3))
    if k == 5:
        return gated_recurrence_step(acc, payload, var(t, p, 0), num(t, p, 0), num(t, p, 1) != 0, num(t, p, 2))
    if k == 6:
        return lut_activation_step(acc, payload, arr(t, p, 0), num(t, p, 0), num(t, p, 1), num(t, p, 2),
                                   num(t, p, 3), arr(t, p, 1), num(t, p, 4), arr(t, p, 2), arr(t, p, 3), num(t, p, 5))
    if k == 7:
        return rsqrt_step(acc, payload, num(t, p, 0), num(t, p, 1), num(t, p, 2))
    if k == 8:
        return source_step(acc, payload, var(t, p, 0), num(t, p, 0))
    if k == 9:
        return spike_source_step(acc, payload, var(t, p, 0))
    if k == 11:
        return time_source_step(acc, payload, var(t, p, 0), var(t, p, 1), num(t, p, 0), num(t, p, 1), num(t, p, 2))
    if k == SCALED_PRODUCT:
        return scaled_product_step(acc, payload, arr(t, p, 0), num(t, p, 0), num(t, p, 1), num(t, p, 2), num(t, p, 3),
                                   num(t, p, 4), num(t, p, 5) != 0, arr(t, p, 1), num(t, p, 6), num(t, p, 7),
                                   num(t, p, 8))
    if k == RESIDUAL_ADD:
        return residual_add_step(acc, payload, arr(t, p, 0), num(t, p, 0), num(t, p, 1), num(t, p, 2), num(t, p, 3),
                                 num(t, p, 4) != 0, arr(t, p, 1), num(t, p, 5), num(t, p, 6), num(t, p, 7))
    if k == GLU:
        return glu_step(acc, payload, arr(t, p, 0), num(t, p, 0), num(t, p, 1), num(t, p, 2), arr(t, p, 1),
                        num(t, p, 3), num(t, p, 4), num(t, p, 5), num(t, p, 6), num(t, p, 7) != 0, arr(t, p, 2),
                        num(t, p, 8), num(t, p, 9), num(t, p, 10))
    if k == MLGRU:
        return mlgru_step(acc, payload, var(t, p, 0), arr(t, p, 0), arr(t, p, 1), num(t, p, 0), num(t, p, 1),
                          num(t, p, 2), arr(t, p, 2), arr(t, p, 3), num(t, p, 3), arr(t, p, 4), arr(t, p, 5),
                          num(t, p, 4), num(t, p, 5) != 0, num(t, p, 6), num(t, p, 7))
    return delta_source_step(acc, payload, var(t, p, 0), var(t, p, 1), num(t, p, 0), num(t, p, 1), num(t, p, 2),
                             num(t, p, 3))


@nb.njit(cache=True, nogil=True)
def mark_active(t, p, acc, active):
    """Which of population ``p``'s updates this step are active, before it runs (see `active_rule`)."""
    lo, n = t.lo[p], t.hi[p] - t.lo[p]
    for i in range(n):
        on = t.rest_active[lo + i]
        for port in range(acc.shape[0]):
            on |= acc[port, i] != 0
        for s in range(t.state_lo[p] + i, t.state_hi[p], n):
            on |= t.watched[s] and t.state[s] != 0
        active[lo + i] = on
