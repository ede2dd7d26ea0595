"""The parts of an ARM PE's spec (`neurosim.spec.chip.ArmPeSpec`, SpiNNaker 2's processing element)
that say what its software costs: cycles per operation and which of them are memory traffic, the
chip's DRAM, and the host's per-token loop over the host link."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from neurosim.spec.validate import Spec

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ArmPeMemoryCycles(Spec):
    """Of each operation's cycles (`ArmPeCycles`), those that load or store memory: the PE's
    SRAM (and the registers of its comms controller and accelerators). They take no extra
    time; they say which share of a PE's cycles, and of its energy, is memory traffic. All
    zero: not split (every cycle counts as compute)."""

    tick: NonNegative = 0.0
    packet_in: NonNegative = 0.0
    row: NonNegative = 0.0
    synapse_int: NonNegative = 0.0
    synapse_float: NonNegative = 0.0
    packet_out: NonNegative = 0.0
    dma_setup: NonNegative = 0.0
    max_compare: NonNegative = 0.0
    neuron_update: dict[str, NonNegative] = {"default": 0.0}

    def update(self, kind: str) -> float:
        return self.neuron_update.get(kind, self.neuron_update.get("default", 0.0))


class ArmPeCycles(Spec):
    """Clock cycles of the PE's software per operation; the counts they multiply are in brackets."""

    tick: NonNegative                   # [timesteps] the timer interrupt and the step's bookkeeping
    packet_in: NonNegative              # [packets received] interrupt, key lookup, finding the synaptic row
    row: NonNegative = 0.0              # [rows read] per synaptic row (one per projection a packet reaches)
    synapse_int: NonNegative            # [synapses] one integer weight times the payload into its target's input
    synapse_float: NonNegative          # [synapses] the same in fp32 (a model of float neuron programs)
    packet_out: NonNegative             # [packets sent] one multicast packet per event of a neuron with targets
    neuron_update: dict[str, NonNegative]   # [neurons x timesteps] per neuron kind; "default" for the others
    dma_setup: NonNegative = 0.0        # [DRAM transfers] starting a DMA from the chip's DRAM
    max_compare: NonNegative = 0.0      # [values compared] a running maximum and its index (a head's argmax)
    memory: ArmPeMemoryCycles = ArmPeMemoryCycles()   # of the cycles above, the loads and stores

    def update(self, kind: str) -> float:
        return self.neuron_update.get(kind, self.neuron_update["default"])

    @model_validator(mode="after")
    def _check(self) -> "ArmPeCycles":
        if "default" not in self.neuron_update:
            raise ValueError("neuron_update needs a 'default' entry (cycles for neuron kinds not listed)")
        for name in ("tick", "packet_in", "row", "synapse_int", "synapse_float", "packet_out", "dma_setup",
                     "max_compare"):
            if getattr(self.memory, name) > getattr(self, name):
                raise ValueError(f"memory.{name} ({getattr(self.memory, name):g}) exceeds {name} "
                                 f"({getattr(self, name):g}): memory cycles are a part of the operation's")
        for kind in set(self.neuron_update) | set(self.memory.neuron_update):
            if self.memory.update(kind) > self.update(kind):
                raise ValueError(f"memory.neuron_update.{kind} ({self.memory.update(kind):g}) exceeds "
                                 f"neuron_update.{kind} ({self.update(kind):g})")
        return self


class DramSpec(Spec):
    """The chip's DRAM: where synaptic rows live when ``synapses_in`` is ``dram``."""

    bytes: Annotated[int, Field(ge=0, le=1 << 50)]
    bandwidth_bits_per_s: Positive
    energy_pj_per_bit: NonNegative


class ArmPeHostLoop(Spec):
    """The host's per-token loop over the host link (a host-loop language run,
    `neurosim.runs.arm_language`): each of its steps (write the input, start the run, read the
    output) is a transaction of a request and a reply, in UDP datagrams of at most
    ``datagram_payload_bytes``, each with ``header_bytes`` on the wire and a command of
    ``command_bytes``. ``host_bytes_per_s``: the rate at which the host's own embedding and head
    read their weights from its memory (the host's time; its energy is outside the power boundary)."""

    header_bytes: Annotated[int, Field(ge=0, le=1 << 16)]
    datagram_payload_bytes: Annotated[int, Field(ge=1, le=1 << 20)]
    command_bytes: Annotated[int, Field(ge=0, le=1 << 16)]
    host_bytes_per_s: Positive

    @model_validator(mode="after")
    def _check(self) -> "ArmPeHostLoop":
        if self.command_bytes >= self.datagram_payload_bytes:
            raise ValueError(f"command_bytes ({self.command_bytes}) leaves no room in a datagram of "
                             f"{self.datagram_payload_bytes} bytes")
        return self
