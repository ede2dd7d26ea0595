"""Neuron programs: what a core runs for each of its neurons every timestep.

Each program has its parameters, its state, a numba kernel and a plain-numpy reference of the
same arithmetic; ``KINDS`` is their registry. ``neurosim.programs.fixed`` holds the fixed-point
arithmetic they share and ``neurosim.programs.reference`` runs a whole graph of them in numpy.
"""

from neurosim.programs.neurons import (EGRU_PORTS, FLOAT, GATE_IN_FRAC, KINDS, NeuronKind, NeuronState,
                                       active_neurons, build_state, check_populations, check_projections,
                                       exp_tables, function_table, payload_bits_of, port_index, run_step,
                                       state_bytes_of, value_dtype)

__all__ = ["EGRU_PORTS", "FLOAT", "GATE_IN_FRAC", "KINDS", "NeuronKind", "NeuronState", "active_neurons",
           "build_state", "check_populations", "check_projections", "exp_tables", "function_table",
           "payload_bits_of", "port_index", "run_step", "state_bytes_of", "value_dtype"]
