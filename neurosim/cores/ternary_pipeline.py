"""The `ternary_pipeline` kind: a MatMul-free model on a ternary matrix accelerator (an FPGA).

Per token every BitLinear is one pass of its weights through the matrix cores: each weight is
an add, a subtract or a skip of an activation code, ``cores x ternary_units`` of them per
cycle at ``clock_hz``. Unless all weights fit the on-chip buffers, they stream from off-chip
memory at ``weight_memory_bits_per_s`` (``bits_per_weight`` each) while the cores work, so a
layer takes the longer of its compute and its stream. Norms, gates and nonlinearities are
element-wise fixed-point operations on ``elementwise_units`` lanes (`elementwise_ops`).

A generated token passes the blocks one after another. In prefill the blocks are the stages
of a pipeline that the prompt's tokens follow one behind another, so a token costs the
slowest block, or the weight stream of a whole token when the weights stream.

Energy per token: ternary adds, element-wise operations, activation bytes moved on chip (a
layer reads its int8 input codes and writes 32-bit sums), streamed weight bits, and static
power over the token's time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.zoo.matmulfree.model import BLOCK_LAYERS, Model
from neurosim.spec.chip import TernaryPipelineSpec

SUM_BYTES = 4        # a layer's output sums leave the matrix cores as 32-bit words


def elementwise_ops(d: int, glu: int) -> int:
    """Element-wise operations of one block per token, counted by what the block computes:

    - RMSNorms: 3 per element (square, accumulate, scale) over the block's two norms (d each),
      the output gate's norm (d) and every BitLinear's own (5 of d, the down projection's of glu);
    - absmax quantisation: 2 per input element of each BitLinear (max, scale and round);
    - rescaling each BitLinear's sums: 1 per output (4 d + 2 glu + d);
    - the MLGRU: sigmoid, SiLU, 1 - f, the state update (3), SiLU(h), the gate product: 8 d;
    - the GLU: SiLU and the product: 2 glu; the residual adds: 2 d.
    """
    norms = 3 * (3 * d + 5 * d + glu)
    quantise = 2 * (5 * d + glu)
    rescale = 5 * d + 2 * glu
    return norms + quantise + rescale + 8 * d + 2 * glu + 2 * d


@dataclass(frozen=True)
class BlockCost:
    """One block's work for one token."""

    weights: int            # ternary weights it passes (each one add, subtract or skip)
    elementwise: int        # element-wise operations
    activation_bytes: int   # bytes of activation codes in and sums out of its matrix passes
    compute_ns: float       # the matrix cores' time, then the element-wise lanes'
    stream_ns: float        # its weights' stream from off-chip memory (0 when they stay on chip)

    @property
    def time_ns(self) -> float:
        return max(self.compute_ns, self.stream_ns)


def block_costs(core: TernaryPipelineSpec, model: Model) -> list[BlockCost]:
    """The cost of each block for one token."""
    total_weight_bytes = sum(layer.weight_ternary.size for layer in model.bitlinears().values()) \
        * core.bits_per_weight / 8
    streams = total_weight_bytes > core.on_chip_buffer_bytes
    cycle_ns = 1e9 / core.clock_hz
    out = []
    for block in model.blocks:
        layers = [getattr(block, name).weight_ternary for name in BLOCK_LAYERS]
        weights = sum(w.size for w in layers)
        glu = block.down_proj.weight_ternary.shape[1]
        ops = elementwise_ops(model.d, glu)
        matrix_cycles = sum(-(-w.size // (core.cores * core.ternary_units)) for w in layers)
        compute_ns = (matrix_cycles + -(-ops // core.elementwise_units)) * cycle_ns
        stream_ns = weights * core.bits_per_weight / core.weight_memory_bits_per_s * 1e9 if streams else 0.0
        act_bytes = sum(w.shape[1] + SUM_BYTES * w.shape[0] for w in layers)
        out.append(BlockCost(weights, ops, act_bytes, compute_ns, stream_ns))
    return out


@dataclass(frozen=True)
class TokenCost:
    time_ns: float
    energy_pj: dict[str, float]        # by component: matrix, elementwise, memory, stream, static


def token_cost(core: TernaryPipelineSpec, static_power_w: float, blocks: list[BlockCost], prefill: bool) -> TokenCost:
    """A token's time and energy: generated (the blocks in turn) or in prefill (the pipeline's pace)."""
    if prefill:
        time_ns = max(max(b.compute_ns for b in blocks), sum(b.stream_ns for b in blocks))
    else:
        time_ns = sum(b.time_ns for b in blocks)
    e = core.energy_pj
    energy = {
        "matrix": sum(b.weights for b in blocks) * e.ternary_add,
        "elementwise": sum(b.elementwise for b in blocks) * e.elementwise_op,
        "memory": sum(b.activation_bytes for b in blocks) * e.activation_byte,
        "stream": sum(b.weights for b in blocks if b.stream_ns > 0) * core.bits_per_weight * e.weight_bit_offchip,
        "static": static_power_w * time_ns * 1e3,
    }
    return TokenCost(time_ns, energy)


def stream_shares(blocks: list[BlockCost]) -> np.ndarray:
    """Per block, whether its weight stream (1) or its compute (0) sets its time."""
    return np.array([b.stream_ns > b.compute_ns for b in blocks], np.int64)


# ---------------------------------------------------------------------------------------------
# a spiking graph on the pipeline: its integer arithmetic, layer by layer, step by step

NEURON_OPS = 6          # element-wise operations of one neuron's update: two decays, two adds, compare, reset
STATE_BYTES = 8         # a neuron's state read and written per update (current and voltage, 32 bits each)


@dataclass(frozen=True)
class GraphStepCost:
    """One timestep of a spiking graph on the pipeline."""

    adds: float             # add/subtract operations of the matrix cores
    elementwise: float      # neuron-update operations
    activation_bytes: float
    stream_bits: float      # weight bits streamed from off-chip memory
    compute_ns: float
    stream_ns: float
    energy_pj: dict[str, float]

    @property
    def time_ns(self) -> float:
        return max(self.compute_ns, self.stream_ns)


def graph_weight_bits(graph) -> float:
    """The bits the graph's synapses take as stored: each projection's weights at their width
    (a conv projection's kernels once)."""
    total = 0.0
    for proj in graph.projections.values():
        count = proj.weight.size if hasattr(proj, "weight") else proj.to_csr().n_synapses
        total += count * proj.weight_bits
    return total


def graph_step_cost(core: TernaryPipelineSpec, synapse_adds: float, neurons: int, events_bytes: float,
                    weight_bits: float) -> GraphStepCost:
    """A step's cost: ``synapse_adds`` add operations (an event's synapses, one add each for a
    binary spike and ``weight_bits`` shift-and-adds for a graded one, zeros skipped), ``neurons``
    updates of `NEURON_OPS` element-wise operations, the events' payload bytes and the neurons'
    state moved through the on-chip buffers, and the weights streamed when they do not fit them."""
    adds_per_ns = core.cores * core.ternary_units * core.clock_hz * 1e-9
    ops = neurons * NEURON_OPS
    compute = synapse_adds / adds_per_ns + ops / (core.elementwise_units * core.clock_hz * 1e-9)
    stream_bits = 0.0 if weight_bits <= core.on_chip_buffer_bytes * 8 else weight_bits
    stream = stream_bits / core.weight_memory_bits_per_s * 1e9
    moved = events_bytes + neurons * STATE_BYTES
    e = core.energy_pj
    energy = {"matrix": synapse_adds * e.ternary_add, "elementwise": ops * e.elementwise_op,
              "memory": moved * e.activation_byte, "stream": stream_bits * e.weight_bit_offchip}
    return GraphStepCost(synapse_adds, ops, moved, stream_bits, compute, stream, energy)
