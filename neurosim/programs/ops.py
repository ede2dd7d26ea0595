"""What one update of a neuron program executes, counted by class of operation, for chips that
price a program's operations rather than a flat neuron update (a neurocore's ``program_ops``,
`neurosim.cores.neurocore`).

Each integer kind declares its counts (`NeuronKind.ops`, from its validated parameters and the
raw ones, which say which parameters are per-neuron arrays); `registry.ops_of` gives them for a
population. The classes (`OP_CLASSES`):

``read``         a word of neuron memory read: a state variable, a port's dendritic accumulator
``write``        a word written: a state variable, an accumulator cleared for the next step
``add``          an add, subtract or negate
``multiply``     a multiply
``shift``        a shift
``compare``      a compare or select; a clip to a range is two (one per side)
``lookup``       a table entry read (sigmoid, silu, exponential tables)
``divide_step``  one step of an iterative division or square root: one bit of its result (a
                 shift, a compare and a subtract)

The counts are those of an update that does its work (input on a port); an idle update that
stops at its first test costs the same, as a core runs every neuron's program every step.
Rules: a step a parameter makes an identity is not counted (a multiplier of 1, a shift of 0, a
zero offset given as one number, a gain of one); a parameter given per neuron counts as used;
a 24-bit wraparound is free (the adder's own width) while saturation is a clip; a clip of a
value the program already holds in range is not counted. Counts are per neuron and update.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OP_CLASSES = ("read", "write", "add", "multiply", "shift", "compare", "lookup", "divide_step")

Ops = dict[str, int]


def ops(**counts: int) -> Ops:
    """Counts by class, every class present (0 unless given)."""
    unknown = set(counts) - set(OP_CLASSES)
    if unknown:
        raise ValueError(f"unknown operation classes {sorted(unknown)}, expected some of {', '.join(OP_CLASSES)}")
    return {c: int(counts.get(c, 0)) for c in OP_CLASSES}


def total(*parts: Ops) -> Ops:
    """The counts of several parts of an update, added."""
    return {c: sum(p.get(c, 0) for p in parts) for c in OP_CLASSES}


CLIP = ops(compare=2)           # a value clipped to a range
NONE = ops()


def memory(ports: int, state: int = 0) -> Ops:
    """Each port's accumulator read and cleared, each state variable read and written."""
    return ops(read=ports + state, write=ports + state)


def used(raw: dict[str, Any], p: Any, key: str, identity: int | None) -> bool:
    """Whether a parameter takes a step: given per neuron, or one number other than ``identity``
    (None: always a step)."""
    value = raw.get(key)
    if isinstance(value, np.ndarray):
        return True
    return identity is None or getattr(p, key) != identity


def if_(condition: bool, part: Ops) -> Ops:
    return part if condition else NONE
