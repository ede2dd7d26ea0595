"""Chip specs: a system of chips, each a mesh of routers with cores of one named kind.

A chip file (``chips/*.yaml``) has four parts:

``system``
    how many chips, on what grid, and the links between them and to the host.
``chip``
    one chip: its router mesh, the kind of core at each router, its network-on-chip
    hop costs per direction, its barrier time and its static power.
``core_kinds``
    per core kind its capacity limits and per-operation energy (pJ) and time (ns); a
    neurocore may price its neuron programs by operation class (``program_ops``).
    Every kind has a ``kind`` field naming the code that models it: ``neurocore``
    (`neurosim.cores.neurocore`), ``arm_pe`` (`neurosim.cores.arm_pe`) or
    ``ternary_pipeline`` (`neurosim.cores.ternary_pipeline`).

Units are in the field names (``_pj``, ``_ns``, ``_w``, ``_v``, ``_hz``, ``_bytes``, ``_bits_per_s``,
``_cycles``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from neurosim.errors import UserError
from neurosim.spec.arm_pe import ArmPeCycles, ArmPeHostLoop, DramSpec
from neurosim.spec.places import find
from neurosim.spec.validate import Spec, validate
from neurosim.spec.yamlio import LineMap, load_yaml

# Sizes beyond these are refused before anything is allocated.
MAX_TOTAL_CORES = 10_000_000
MAX_MESH_SIDE = 4096

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, le=MAX_MESH_SIDE)]


class LinkSpec(Spec):
    """A chip-to-chip (or host-to-chip) link: one message crossing it costs this."""

    latency_ns: NonNegative
    energy_pj_per_bit: NonNegative
    bandwidth_bits_per_s: Positive


class SystemSpec(Spec):
    """Chips on a 2D grid; messages between chips cross `link`, inputs arrive over `host`."""

    chips_x: Count = 1
    chips_y: Count = 1
    link: LinkSpec
    host: LinkSpec
    barrier_ns_per_chip_hop: NonNegative = 0.0
    powered_chips: Literal["used", "all"] = "used"   # whose static power a run pays: the chips it uses, or all
    board_static_power_w: NonNegative = 0.0         # the board's own beyond its chips (controllers, regulators)


class MeshSpec(Spec):
    routers_x: Count
    routers_y: Count
    cores_per_router: Annotated[int, Field(ge=1, le=64)]


class NocSpec(Spec):
    """Hop costs on the chip's mesh, per direction, per message. A binary spike message has
    `message_bits`; a graded one carries its payload bits on top. `core_link_bits_per_s` is
    the bandwidth of the link between a core and its router, each way."""

    message_bits: Annotated[int, Field(ge=1, le=1024)]
    core_link_bits_per_s: Positive
    hop_ns_east_west: NonNegative
    hop_ns_north_south: NonNegative
    hop_pj_east_west: NonNegative
    hop_pj_north_south: NonNegative
    local_ns: NonNegative          # core to core through the same router
    local_pj: NonNegative


class ChipSpec(Spec):
    """One chip. A chip of neurocores has a router mesh, its NoC's costs and a barrier; a
    pipeline accelerator has none of these."""

    mesh: MeshSpec | None = None
    cores: Annotated[int, Field(ge=1, le=MAX_TOTAL_CORES)] | None = None   # cores present, if fewer than the
                                                                          # mesh has places for (the last stay empty)
    core_kind: str
    noc: NocSpec | None = None
    barrier_ns: NonNegative | None = None
    static_power_w: NonNegative


class NeurocoreLimits(Spec):
    """Capacity of one neurocore; the mapper honours every one of these.

    Neuron state and synapses share the core's `memory_bytes`, each within its own maximum.
    """

    neurons: Annotated[int, Field(ge=1, le=1_000_000)]
    memory_bytes: Annotated[int, Field(ge=1, le=1 << 34)]
    neuron_state_bytes: Annotated[int, Field(ge=1, le=1 << 30)]
    synapse_memory_bytes: Annotated[int, Field(ge=1, le=1 << 34)]
    fan_in: Annotated[int, Field(ge=1, le=1 << 30)]      # input axons (source neurons) per core
    fan_out: Annotated[int, Field(ge=1, le=1 << 30)]     # output axons (core-to-core edges) per core
    routes: Annotated[int, Field(ge=1, le=1 << 30)]      # routing-table entries: destination cores per core
    synaptic_delay_steps: Annotated[int, Field(ge=0, le=255)] = 0   # the longest synaptic delay it can hold

    @model_validator(mode="after")
    def _check(self) -> "NeurocoreLimits":
        for name in ("neuron_state_bytes", "synapse_memory_bytes"):
            if getattr(self, name) > self.memory_bytes:
                raise ValueError(f"{name} ({getattr(self, name)}) exceeds memory_bytes ({self.memory_bytes})")
        return self


class NeurocoreOps(Spec):
    """What one operation of each kind costs; the counts they multiply are in brackets."""

    synop: NonNegative                  # [synaptic ops] one weight read and accumulate
    synmem_read: NonNegative = 0.0      # [synaptic-memory words read] (a message reads its synapses' words)
    message_in: NonNegative = 0.0       # [messages received] the axon-in stage
    neuron_update: NonNegative          # [neurons x timesteps] one neuron's state update
    neuron_active: NonNegative = 0.0    # [active updates] more for an update with input or state off rest
    spike_out: NonNegative              # [events] a neuron's spike or graded event leaving its neuron unit
    message_out: NonNegative = 0.0      # [messages sent] the axon-out stage, one message per output axon


class ProgramOpCosts(Spec):
    """What one operation of a neuron program costs, by class (`neurosim.programs.ops`); the
    counts are each program's per update (`NeuronKind.ops`)."""

    read: NonNegative                   # a word of neuron memory read (state, a dendritic accumulator)
    write: NonNegative                  # a word written (state, an accumulator cleared)
    add: NonNegative                    # an add, subtract or negate
    multiply: NonNegative
    shift: NonNegative
    compare: NonNegative                # a compare or select (a clip is two)
    lookup: NonNegative                 # a table entry read
    divide_step: NonNegative            # one result bit of an iterative division or square root


class ProgramOps(Spec):
    """A neurocore that prices its neuron programs' operations: a neuron's update costs its
    program's operations (`neurosim.cores.neurocore`) in place of ``neuron_update``."""

    time_ns: ProgramOpCosts
    energy_pj: ProgramOpCosts


class SynapseFormat(Spec):
    """How synapses are laid out in synaptic memory, which sets the bytes each one takes.

    A dense synapse stores its weight only; a sparse one adds a target index; a conv
    projection stores its kernels once per core. Memory is read in words of `word_bits`.
    """

    max_weight_bits: Annotated[int, Field(ge=1, le=32)]     # 32: software synapses may hold fp32 weights
    sparse_index_bits: Annotated[int, Field(ge=0, le=64)]
    word_bits: Annotated[int, Field(ge=8, le=1024)]


class SynapticCoreSpec(Spec):
    """What the mapper needs of a core that holds neurons and their synapses."""

    limits: NeurocoreLimits
    synapses: SynapseFormat
    graded_payload_bits: Annotated[int, Field(ge=0, le=128)]     # 0: binary spikes only

    def mapping_limits(self, cores_per_chip: int) -> NeurocoreLimits:
        """The limits a mapping honours on one core."""
        return self.limits

    def synapse_bytes(self, weight_bits: int, encoding: str) -> float:
        """Bytes one synapse of a projection takes in synaptic memory (``dense``, ``sparse`` or ``conv``)."""
        index = self.synapses.sparse_index_bits if encoding == "sparse" else 0
        return (weight_bits + index) / 8


class NeurocoreSpec(SynapticCoreSpec):
    """A Loihi-style neurocore: fixed-function synapses, programmable neurons."""

    kind: Literal["neurocore"]
    graded_payload_bits: Annotated[int, Field(ge=0, le=32)]     # 0: binary spikes only
    energy_pj: NeurocoreOps
    time_ns: NeurocoreOps
    program_ops: ProgramOps | None = None    # None: every update costs ``neuron_update``


class TernaryPipelineOps(Spec):
    ternary_add: NonNegative           # one add or subtract of an activation code (a weight of +-1 or 0)
    elementwise_op: NonNegative        # one fixed-point operation of a norm, gate or nonlinearity
    activation_byte: NonNegative       # one byte of activations moved through on-chip buffers
    weight_bit_offchip: NonNegative    # one bit of weights streamed from off-chip memory


class DdrSpec(Spec):
    """The off-chip memory the weights stream from: ``channels`` of ``width_bits`` data bits (ECC
    bits excluded) at ``transfers_per_s``, of which a weight stream gets ``efficiency``."""

    channels: Annotated[int, Field(ge=1, le=64)]
    width_bits: Annotated[int, Field(ge=1, le=4096)]
    transfers_per_s: Positive
    efficiency: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class OverheadCycles(Spec):
    """Fixed costs of the core's program, in clock cycles: per layer (issuing its instructions,
    the DDR read latency before a stream's first weights), per activation value moved into or out
    of the matrix unit, and per token (starting it, loading its input, storing its output)."""

    per_layer: NonNegative
    per_vector_value: NonNegative
    per_token: NonNegative


class LogicResources(Spec):
    alms: Annotated[int, Field(ge=0, le=1 << 32)]      # adaptive logic modules
    m20k: Annotated[int, Field(ge=0, le=1 << 32)]      # 20-kbit memory blocks


class ResourcesSpec(Spec):
    """What fits: the device's logic, what its shell (PCIe, memory controllers) takes, what one
    core takes. The cores that fit are the fewest any resource allows (`fitting_cores`)."""

    device: LogicResources
    shell: LogicResources
    core: LogicResources

    def fitting_cores(self) -> tuple[int, str]:
        """How many cores fit and the resource that limits them."""
        counts = {name: (getattr(self.device, name) - getattr(self.shell, name)) // getattr(self.core, name)
                  for name in ("alms", "m20k") if getattr(self.core, name) > 0}
        if not counts:
            raise ValueError("resources.core needs alms or m20k above 0")
        limit = min(counts, key=counts.get)
        return max(counts[limit], 0), limit


class CardPower(Spec):
    """The card around the chip, drawn whatever the chip does: DDR (refresh and background), the
    shell's interfaces, the rest of the board, and regulators delivering it all at an efficiency."""

    ddr_w: NonNegative
    shell_w: NonNegative
    board_w: NonNegative
    regulator_efficiency: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class TernaryPipelineSpec(Spec):
    """A ternary matrix accelerator (an FPGA running a MatMul-free model): ``cores`` matrix
    cores (or ``max``: as many as ``resources`` fit) of ``ternary_units`` add/subtract units each
    at ``clock_hz``, each taking ``port_bits_per_cycle`` of weights (``bits_per_weight`` each) a
    cycle from memory; the weights stream from ``ddr`` unless all of them fit
    ``on_chip_buffer_bytes``; ``elementwise_units`` lanes (or ``elementwise_units_per_core``) for
    the norms, gates and nonlinearities; ``overhead_cycles`` of the program; ``card`` power on top
    of the chip's. See `neurosim.cores.ternary_pipeline`."""

    kind: Literal["ternary_pipeline"]
    clock_hz: Positive
    cores: Annotated[int, Field(ge=1, le=1_000_000)] | Literal["max"]
    ternary_units: Annotated[int, Field(ge=1, le=1_000_000)]
    port_bits_per_cycle: Annotated[int, Field(ge=1, le=1 << 20)]
    elementwise_units: Annotated[int, Field(ge=1, le=1 << 30)] | None = None
    elementwise_units_per_core: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    bits_per_weight: Positive
    on_chip_buffer_bytes: Annotated[int, Field(ge=0)]
    ddr: DdrSpec
    overhead_cycles: OverheadCycles
    resources: ResourcesSpec | None = None
    card: CardPower
    energy_pj: TernaryPipelineOps

    @model_validator(mode="after")
    def _check(self) -> "TernaryPipelineSpec":
        if (self.elementwise_units is None) == (self.elementwise_units_per_core is None):
            raise ValueError("expected one of elementwise_units (lanes in all) or elementwise_units_per_core")
        if self.resources is None and self.cores == "max":
            raise ValueError("cores: max needs resources (device, shell and core) to count the cores that fit")
        if self.resources is not None:
            fit, limit = self.resources.fitting_cores()
            if fit < 1:
                raise ValueError(f"no core fits: one needs {getattr(self.resources.core, limit):,} {limit}, "
                                 f"the device leaves {getattr(self.resources.device, limit) - getattr(self.resources.shell, limit):,} "
                                 f"beside its shell")
            if self.cores != "max" and self.cores > fit:
                raise ValueError(f"cores is {self.cores}, expected at most {fit} (the device's {limit} beside "
                                 f"its shell fit {fit} cores)")
            if self.cores == "max":      # the count the resources allow replaces max (an immutable spec)
                object.__setattr__(self, "cores", fit)
        if self.elementwise_units is None:
            object.__setattr__(self, "elementwise_units", self.cores * self.elementwise_units_per_core)
        return self

    @property
    def weight_memory_bits_per_s(self) -> float:
        """The weight stream's rate from DDR."""
        d = self.ddr
        return d.channels * d.width_bits * d.transfers_per_s * d.efficiency


class DvfsLevel(Spec):
    """One performance level of a PE: its supply and clock, and what a cycle, an 8-bit MAC of
    the MAC array and an idle second cost there."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    voltage_v: Positive
    clock_hz: Positive
    cycle_pj: NonNegative               # one clock cycle of the ARM core running (its instructions)
    mac_pj: NonNegative                 # one 8-bit multiply-accumulate of the MAC array
    idle_w: NonNegative                 # the PE powered but waiting for its next tick


class MacArraySpec(Spec):
    """The PE's multiply-accumulate array, used for dense projections when ``dense_layers``."""

    macs: Annotated[int, Field(ge=1, le=4096)]
    operand_bits: Annotated[int, Field(ge=1, le=32)]
    accumulator_bits: Annotated[int, Field(ge=1, le=64)]
    dense_layers: bool = False          # dense projections run on the array (all weights, every step)


class PeTiming(Spec):
    """How steps are timed: ``ticked`` (a timer tick of ``tick_ns``; a PE whose work takes
    longer overruns and is reported) or ``afap`` (as fast as possible: a step ends when
    the slowest PE and a barrier of ``sync_ns`` have); ``dvfs`` names the level PEs run at,
    or ``auto``: per tick and PE the lowest level that finishes within the tick."""

    mode: Literal["ticked", "afap"] = "ticked"
    tick_ns: Positive = 1.0e6
    sync_ns: NonNegative = 0.0
    dvfs: str = "auto"


class ArmPeSpec(SynapticCoreSpec):
    """A programmable processing element (SpiNNaker 2's ARM Cortex-M4F): neurons and synapses
    are software, so costs are cycles at a DVFS level. See `neurosim.cores.arm_pe`."""

    kind: Literal["arm_pe"]
    cycles: ArmPeCycles
    mac_array: MacArraySpec
    dvfs: list[DvfsLevel] = Field(min_length=1)
    timing: PeTiming = PeTiming()
    synapses_in: Literal["sram", "dram"] = "sram"   # dram: rows fetched per packet; the chip's DRAM holds them
    dram: DramSpec
    host_loop: ArmPeHostLoop | None = None          # what a host-loop language run's transactions take

    @model_validator(mode="after")
    def _check(self) -> "ArmPeSpec":
        names = [level.name for level in self.dvfs]
        if len(set(names)) != len(names):
            raise ValueError(f"dvfs level names repeat: {', '.join(names)}")
        if self.timing.dvfs != "auto" and self.timing.dvfs not in names:
            raise ValueError(f"timing.dvfs is {self.timing.dvfs!r}, expected auto or a level: {', '.join(names)}")
        if self.timing.dvfs == "auto" and self.timing.mode != "ticked":
            raise ValueError("timing.dvfs: auto picks a level per tick, expected timing.mode: ticked")
        if sorted(self.dvfs, key=lambda level: level.clock_hz) != self.dvfs:
            raise ValueError("dvfs levels must be listed from the slowest clock to the fastest")
        return self

    def mapping_limits(self, cores_per_chip: int) -> NeurocoreLimits:
        """With synapses in DRAM a PE's synapses take its share of the chip's DRAM instead of its
        own memory (which keeps the neuron state)."""
        if self.synapses_in == "sram":
            return self.limits
        share = self.dram.bytes // cores_per_chip
        return self.limits.model_copy(update={"synapse_memory_bytes": share,
                                              "memory_bytes": self.limits.neuron_state_bytes + share})

    def level(self, name: str) -> DvfsLevel:
        return next(level for level in self.dvfs if level.name == name)


class GpuRooflineSpec(Spec):
    """A GPU as a roofline, for baselines: a token of a language model at batch 1 takes the longer
    of reading its weights (and cache) from memory and doing its operations at the peak rate of
    ``precision``, at ``board_power_w``. See `neurosim.cores.gpu_roofline`."""

    kind: Literal["gpu_roofline"]
    memory_bandwidth_bytes_per_s: Positive
    memory_bytes: Annotated[int, Field(ge=1)]
    peak_ops_per_s: dict[Literal["fp32", "fp16", "int8"], Positive]     # dense; a MAC is 2 ops
    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    board_power_w: Positive

    @model_validator(mode="after")
    def _check(self) -> "GpuRooflineSpec":
        if self.precision not in self.peak_ops_per_s:
            raise ValueError(f"precision {self.precision!r} has no peak_ops_per_s entry")
        return self

    @property
    def bytes_per_value(self) -> float:
        return {"fp32": 4.0, "fp16": 2.0, "int8": 1.0}[self.precision]


CoreKindSpec = Annotated[NeurocoreSpec | ArmPeSpec | TernaryPipelineSpec | GpuRooflineSpec,
                         Field(discriminator="kind")]


class ChipFile(Spec):
    """A whole chip spec file. ``base: <chip>`` starts from another chip file and replaces
    the fields this one gives (a board of several chips, a variant's figures)."""

    name: str
    description: str = ""
    system: SystemSpec
    chip: ChipSpec
    core_kinds: dict[str, CoreKindSpec]

    @model_validator(mode="after")
    def _check(self) -> "ChipFile":
        if self.chip.core_kind not in self.core_kinds:
            raise ValueError(f"chip.core_kind {self.chip.core_kind!r} is not defined in core_kinds "
                             f"(defined: {', '.join(self.core_kinds) or 'none'})")
        if isinstance(self.core, SynapticCoreSpec) and self.chip.mesh is None:
            return self           # `chip_from_dict` names the missing field
        mesh = self.chip.mesh
        if mesh is not None and self.chip.cores is not None and \
                self.chip.cores > mesh.routers_x * mesh.routers_y * mesh.cores_per_router:
            raise ValueError(f"chip.cores ({self.chip.cores}) exceeds the mesh's places "
                             f"({mesh.routers_x} x {mesh.routers_y} x {mesh.cores_per_router})")
        total = self.total_cores
        if total > MAX_TOTAL_CORES:
            raise ValueError(f"the system has {total:,} cores, expected at most {MAX_TOTAL_CORES:,}")
        return self

    @property
    def core(self) -> NeurocoreSpec | ArmPeSpec | TernaryPipelineSpec | GpuRooflineSpec:
        return self.core_kinds[self.chip.core_kind]

    def static_power_w(self, chips_used: int) -> float:
        """The system's static power during a run on ``chips_used`` of its chips: each powered
        chip's (``system.powered_chips``: the used ones, or all) and the board's own."""
        powered = chips_used if self.system.powered_chips == "used" else self.n_chips
        return self.chip.static_power_w * powered + self.system.board_static_power_w

    @property
    def cores_per_chip(self) -> int:
        if isinstance(self.core, TernaryPipelineSpec):
            return self.core.cores
        if isinstance(self.core, GpuRooflineSpec):
            return 1
        m = self.chip.mesh
        places = m.routers_x * m.routers_y * m.cores_per_router
        return min(places, self.chip.cores) if self.chip.cores is not None else places

    @property
    def n_chips(self) -> int:
        return self.system.chips_x * self.system.chips_y

    @property
    def total_cores(self) -> int:
        return self.cores_per_chip * self.n_chips


def chip_from_dict(data: object, *, file: str, lines: LineMap | None = None) -> ChipFile:
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping with system, chip and core_kinds, found {type(data).__name__}",
                        file=file)
    chip = validate(ChipFile, data, file=file, lines=lines)
    if isinstance(chip.core, (NeurocoreSpec, ArmPeSpec)):
        for name in ("mesh", "noc", "barrier_ns"):
            if getattr(chip.chip, name) is None:
                raise UserError(f"missing, expected a value (a chip of {chip.chip.core_kind} cores needs it)",
                                file=file, field=f"chip.{name}", line=lines.find(("chip",)) if lines else None)
    return chip


def merge(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` laid over it, mapping by mapping."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_chip_data(path: str | Path, _seen: tuple[Path, ...] = ()) -> tuple[dict, LineMap | None, str]:
    """A chip file's data with its ``base`` chain resolved; its own line map and text.

    Line numbers are those of the file itself; a field that comes from a base file has none.
    """
    path = Path(path)
    data, lines, text = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping with system, chip and core_kinds, found {type(data).__name__}",
                        file=str(path))
    if "base" not in data:
        return data, lines, text
    base_name = data.pop("base")
    if not isinstance(base_name, str):
        raise UserError(f"expected the name or path of a chip file, found {base_name!r}", file=str(path),
                        field="base", line=lines.find(("base",)))
    try:
        base_path = find("chip", base_name, path.parent, file=str(path), field="base")
    except UserError as err:
        raise UserError(err.message, file=str(path), field="base", line=lines.find(("base",))) from None
    if base_path.resolve() in _seen or base_path.resolve() == path.resolve():
        raise UserError(f"base {base_name!r} leads back to this file", file=str(path), field="base",
                        line=lines.find(("base",)))
    base_data, _, _ = load_chip_data(base_path, _seen + (path.resolve(),))
    return merge(base_data, data), lines, text


def load_chip(path: str | Path) -> tuple[ChipFile, str]:
    """Load and validate a chip file; returns the spec and its YAML text."""
    data, lines, text = load_chip_data(path)
    return chip_from_dict(data, file=str(path), lines=lines), text
