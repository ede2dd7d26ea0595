"""Core kinds: one module per kind with its cost model and its timestep semantics."""

from __future__ import annotations

from neurosim.spec.chip import ArmPeSpec


def core_model(chip, graph, mapping):
    """The cost model of the chip's core kind for a mapped graph: ``.costs`` and ``.links`` for
    the engine, ``.step_cost(counters, payload)`` per step, and ``.barrier``: whether steps end
    in a barrier across chips."""
    if isinstance(chip.core, ArmPeSpec):
        from neurosim.cores.arm_pe import ArmPeModel
        return ArmPeModel(chip, graph, mapping)
    from neurosim.cores.neurocore import NeurocoreModel
    return NeurocoreModel(chip, graph, mapping)
