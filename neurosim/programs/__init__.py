"""Neuron programs: what a core runs for each of its neurons every timestep.

Each program has its parameters, its state, a numba kernel and a plain-numpy reference of the
same arithmetic, in one module per family (``lif``, ``graded``, ``lm_ops``, ``sources``,
``spikegpt_fixed``, ``fp32``, and ``fused``: several language-model steps in one program, on the
shared record of ``kind``); ``registry.KINDS`` is their registry, ``ops`` their operations per
update by class. ``neurosim.programs.fixed`` holds the fixed-point arithmetic they share and
``neurosim.programs.reference`` runs a whole graph of them in numpy.
"""

from neurosim.programs.fp32 import EGRU_PORTS
from neurosim.programs.kind import FLOAT, NeuronKind, NeuronState, function_table
from neurosim.programs.ops import OP_CLASSES
from neurosim.programs.registry import (KINDS, active_neurons, build_state, check_populations, check_projections,
                                        ops_of, payload_bits_of, port_index, run_step, state_bytes_of, value_dtype)
from neurosim.programs.spikegpt_fixed import GATE_IN_FRAC, exp_tables

__all__ = ["EGRU_PORTS", "FLOAT", "GATE_IN_FRAC", "KINDS", "NeuronKind", "NeuronState", "OP_CLASSES",
           "active_neurons", "build_state", "check_populations", "check_projections", "exp_tables", "function_table",
           "ops_of", "payload_bits_of", "port_index", "run_step", "state_bytes_of", "value_dtype"]
