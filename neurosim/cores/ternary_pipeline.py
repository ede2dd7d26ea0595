"""The `ternary_pipeline` kind: a MatMul-free model on ternary matrix cores (an FPGA card).

A core runs the model's program one instruction after another (the open RTL of Zhu et al.
2024, TERNIP: a layer is an IMPORT of its input vector, a GO that streams the layer's weights
through the matrix unit, an EXPORT of its output vector). Per token every BitLinear is one pass
of its weights; ``cores`` cores share each layer, every core taking ``ceil(rows / cores)`` of its
output rows. A core's share of a layer takes, in cycles at ``clock_hz``, the longest of

- the **adds**: ``weights / ternary_units`` (an add, a subtract or a skip per weight);
- the **memory port**: ``weights * bits_per_weight / port_bits_per_cycle``, the weights the core
  can take from memory in a cycle;
- the **DDR**: all cores' weights of the layer at the DDR interface's rate (``ddr``: channels x
  width x transfers/s x efficiency), when the weights stream (they do unless all of them fit
  ``on_chip_buffer_bytes``);

which sets the layer's `BOUNDS` code (on a tie the memory side: DDR, then the port), then the
layer's vector moves (``n_in`` values in, its rows out, ``overhead_cycles.per_vector_value``
each) and ``overhead_cycles.per_layer``. A block adds its element-wise operations (norms, gates,
nonlinearities, `elementwise_ops`) on ``elementwise_units`` lanes. A token adds
``overhead_cycles.per_token`` and its input's load and output's store (``d`` values each; the
prompt's tokens store none, the host reads only the last prompt token's output).

Energy per token: ternary adds, element-wise operations, activation bytes moved on chip (a layer
reads its int8 input codes and writes 32-bit sums), streamed weight bits, the power drawn whatever
the cores do (`card_power_w`: the chip's static power and the card's DDR, shell and board) over
the token's time, and the regulators' loss delivering all of it at ``card.regulator_efficiency``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.spec.chip import TernaryPipelineSpec
from neurosim.zoo.matmulfree.model import BLOCK_LAYERS, Model

SUM_BYTES = 4        # a layer's output sums leave the matrix cores as 32-bit words
BOUNDS = ("adds", "port", "ddr")            # the codes of a layer's bound, in the trace's /layers
BOUND_CODES = "0: the adds (ternary_units), 1: the memory port (port_bits_per_cycle), 2: the DDR interface"


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
class LayerCost:
    """One BitLinear's pass for one token, in ns: each of the three limits of its matrix pass,
    its vector moves and its fixed overhead."""

    name: str
    n_out: int
    n_in: int
    adds_ns: float
    port_ns: float
    ddr_ns: float           # 0 when the weights stay on chip
    vector_ns: float
    overhead_ns: float

    @property
    def weights(self) -> int:
        return self.n_out * self.n_in

    @property
    def matrix_ns(self) -> float:
        return max(self.adds_ns, self.port_ns, self.ddr_ns)

    @property
    def bound(self) -> int:
        """The `BOUNDS` code of the limit that sets the matrix pass (ties go to the memory side)."""
        times = (self.adds_ns, self.port_ns, self.ddr_ns)
        return max(range(3), key=lambda k: (times[k], k))

    @property
    def time_ns(self) -> float:
        return self.matrix_ns + self.vector_ns + self.overhead_ns


@dataclass(frozen=True)
class BlockCost:
    """One block's work for one token."""

    weights: int            # ternary weights it passes (each one add, subtract or skip)
    elementwise: int        # element-wise operations
    activation_bytes: int   # bytes of activation codes in and sums out of its matrix passes
    layers: tuple[LayerCost, ...]
    elementwise_ns: float

    @property
    def compute_ns(self) -> float:
        """The cores' own time: adds or port, vector moves, overheads, element-wise work."""
        return sum(max(l.adds_ns, l.port_ns) + l.vector_ns + l.overhead_ns for l in self.layers) + self.elementwise_ns

    @property
    def stream_ns(self) -> float:
        """Its weights' stream through the DDR interface (0 when they stay on chip)."""
        return sum(l.ddr_ns for l in self.layers)

    @property
    def time_ns(self) -> float:
        return sum(l.time_ns for l in self.layers) + self.elementwise_ns

    @property
    def bound(self) -> int:
        """The `BOUNDS` code that set most of its matrix time."""
        shares = np.zeros(len(BOUNDS))
        for l in self.layers:
            shares[l.bound] += l.matrix_ns
        return int(np.argmax(shares))


def weights_stream(core: TernaryPipelineSpec, model: Model) -> bool:
    """Whether the weights stream from DDR: unless all of them fit the on-chip buffers."""
    total_bits = sum(layer.weight_ternary.size for layer in model.bitlinears().values()) * core.bits_per_weight
    return total_bits > core.on_chip_buffer_bytes * 8


def layer_cost(core: TernaryPipelineSpec, name: str, n_out: int, n_in: int, streams: bool) -> LayerCost:
    """A ``n_out x n_in`` BitLinear shared by the cores, each taking its share of the rows."""
    cycle_ns = 1e9 / core.clock_hz
    rows = -(-n_out // core.cores)
    share = rows * n_in
    adds = -(-share // core.ternary_units)
    port = -(-int(np.ceil(share * core.bits_per_weight)) // core.port_bits_per_cycle)
    ddr_ns = n_out * n_in * core.bits_per_weight / core.weight_memory_bits_per_s * 1e9 if streams else 0.0
    o = core.overhead_cycles
    return LayerCost(name, n_out, n_in, adds * cycle_ns, port * cycle_ns, ddr_ns,
                     (n_in + rows) * o.per_vector_value * cycle_ns, o.per_layer * cycle_ns)


def block_costs(core: TernaryPipelineSpec, model: Model) -> list[BlockCost]:
    """The cost of each block for one token."""
    streams = weights_stream(core, model)
    cycle_ns = 1e9 / core.clock_hz
    out = []
    for block in model.blocks:
        shapes = [getattr(block, name).weight_ternary.shape for name in BLOCK_LAYERS]
        layers = tuple(layer_cost(core, name, n_out, n_in, streams)
                       for name, (n_out, n_in) in zip(BLOCK_LAYERS, shapes))
        glu = block.down_proj.weight_ternary.shape[1]
        ops = elementwise_ops(model.d, glu)
        act_bytes = sum(n_in + SUM_BYTES * n_out for n_out, n_in in shapes)
        out.append(BlockCost(sum(l.weights for l in layers), ops, act_bytes, layers,
                             -(-ops // core.elementwise_units) * cycle_ns))
    return out


def token_overhead_ns(core: TernaryPipelineSpec, d: int, prefill: bool) -> float:
    """A token's own overhead: starting it, loading its input vector and (when generated) storing
    its output."""
    o = core.overhead_cycles
    values = d if prefill else 2 * d
    return (o.per_token + values * o.per_vector_value) * 1e9 / core.clock_hz


def card_power_w(core: TernaryPipelineSpec, chip_static_w: float) -> dict[str, float]:
    """The power drawn whatever the cores do, by part: the chip's static power and the card's DDR,
    shell and board (before the regulators' loss, `with_regulators`)."""
    c = core.card
    return {"static": chip_static_w, "ddr": c.ddr_w, "shell": c.shell_w, "board": c.board_w}


def with_regulators(core: TernaryPipelineSpec, parts: dict[str, float]) -> dict[str, float]:
    """``parts`` (power or energy delivered on the card) and the regulators' loss delivering them."""
    return parts | {"regulators": sum(parts.values()) * (1.0 / core.card.regulator_efficiency - 1.0)}


@dataclass(frozen=True)
class TokenCost:
    time_ns: float
    energy_pj: dict[str, float]        # matrix, elementwise, memory, stream; `card_power_w`'s parts; regulators


def token_cost(core: TernaryPipelineSpec, static_power_w: float, blocks: list[BlockCost], prefill: bool) -> TokenCost:
    """A token's time and energy: its blocks one after another and its own overhead
    (`token_overhead_ns`, which in ``prefill`` stores no output); ``static_power_w`` is the chip's."""
    d = blocks[0].layers[0].n_in if blocks else 0
    time_ns = sum(b.time_ns for b in blocks) + token_overhead_ns(core, d, prefill)
    e = core.energy_pj
    energy = {
        "matrix": sum(b.weights for b in blocks) * e.ternary_add,
        "elementwise": sum(b.elementwise for b in blocks) * e.elementwise_op,
        "memory": sum(b.activation_bytes for b in blocks) * e.activation_byte,
        "stream": sum(b.weights for b in blocks if b.stream_ns > 0) * core.bits_per_weight * e.weight_bit_offchip,
    }
    energy |= {k: w * time_ns * 1e3 for k, w in card_power_w(core, static_power_w).items()}
    return TokenCost(time_ns, with_regulators(core, energy))


def layer_bounds(blocks: list[BlockCost]) -> np.ndarray:
    """Per block and BitLinear (``BLOCK_LAYERS`` order), the `BOUNDS` code of its matrix pass."""
    return np.array([[l.bound for l in b.layers] for b in blocks], np.int64).reshape(len(blocks), len(BLOCK_LAYERS))


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
