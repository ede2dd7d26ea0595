"""The header of a model folder: ``models/<name>/model.yaml``.

A model is a graph of populations (a neuron kind, a size, parameters) and projections
(dense, sparse CSR or conv2d) between them. Weights live in the folder's HDF5 file,
whose sha256 the header records. A parameter is a number, or ``{h5: path}`` naming a
per-neuron dataset in the weights file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from neurosim.spec.validate import Spec

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class WeightsRef(Spec):
    file: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class InputSpec(Spec):
    population: Name
    encoding: Literal["graded_constant"]


class ReadoutSpec(Spec):
    population: Name
    mode: Literal["membrane", "spike_count"]


class PopulationSpec(Spec):
    kind: str
    size: Annotated[int, Field(ge=1, le=100_000_000)]
    params: dict[str, Any] = {}


class ProjectionSpec(Spec):
    """Where a projection's synapses come from; its arrays are in the weights file
    under ``/projections/<name>/``: ``weight`` (dense: [target, source]; conv2d:
    [out_channels, in_channels, kh, kw]) or ``indptr``/``indices``/``weight``
    (sparse: CSR with one row per source neuron), and the attribute ``weight_exp``.
    Weights are integers of ``weight_bits`` bits in ``sign_mode`` (see `neurosim.graph.graph`)."""

    kind: Literal["dense", "sparse", "conv2d"]
    source: Name
    target: Name
    port: Name | None = None                          # the target's input port (default: its kind's first)
    weight_bits: Annotated[int, Field(ge=1, le=8)] = 8
    sign_mode: Literal["mixed", "excitatory", "inhibitory"] = "mixed"
    in_shape: tuple[int, int, int] | None = None     # conv2d: (channels, height, width)
    stride: Annotated[int, Field(ge=1, le=16)] = 1
    padding: Annotated[int, Field(ge=0, le=16)] = 0

    @model_validator(mode="after")
    def _check(self) -> "ProjectionSpec":
        if self.kind == "conv2d" and self.in_shape is None:
            raise ValueError("a conv2d projection needs in_shape: [channels, height, width]")
        return self


class ModelFile(Spec):
    name: Name
    description: str = ""
    weights: WeightsRef
    dataset: str
    input: InputSpec
    readout: ReadoutSpec
    populations: dict[Name, PopulationSpec]
    projections: dict[Name, ProjectionSpec]

    @model_validator(mode="after")
    def _check(self) -> "ModelFile":
        pops = self.populations
        for ref, where in ((self.input.population, "input.population"),
                           (self.readout.population, "readout.population")):
            if ref not in pops:
                raise ValueError(f"{where} names {ref!r}, which is not a population "
                                 f"(populations: {', '.join(pops)})")
        for name, proj in self.projections.items():
            for end in ("source", "target"):
                if getattr(proj, end) not in pops:
                    raise ValueError(f"projection {name!r} {end} {getattr(proj, end)!r} is not a population")
        return self
