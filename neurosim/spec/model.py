"""The header of a model folder: ``models/<name>/model.yaml``.

A model is a graph of populations (a neuron kind, a size, parameters) and projections
(dense, sparse CSR or conv2d) between them. Weights live in the folder's HDF5 file,
whose sha256 the header records. A parameter is a number, or ``{h5: path}`` naming a
per-neuron dataset in the weights file.

A model for performance studies may instead have its weights drawn at load time:
``weights: {generated: {seed: N}}``, and every projection a ``generate`` block (sparse,
``fan_in`` synapses per target drawn from a ``window`` of sources around the target's
place in its layer, weights uniform in ``[weight_low, weight_high]``). The same seed
gives the same weights, bit for bit. A population may be pinned to a chip (``chip: N``).

A nearest-neighbour search (``kind: knn_patterns``, `KnnModelFile`) draws its stored patterns
from a seed and builds its graph itself (`neurosim.zoo.knn`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from neurosim.spec.validate import Spec

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class GeneratedWeights(Spec):
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)]


class WeightsRef(Spec):
    """The weights file and its sha256, or ``generated`` for weights drawn at load time."""

    file: str | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    generated: GeneratedWeights | None = None

    @model_validator(mode="after")
    def _check(self) -> "WeightsRef":
        if (self.generated is None) == (self.file is None):
            raise ValueError("expected either file and sha256, or generated: {seed: N}")
        if self.file is not None and self.sha256 is None:
            raise ValueError("a weights file needs its sha256")
        return self


class GenerateSpec(Spec):
    """Sparse synapses drawn at load time: ``fan_in`` per target neuron, from a window of
    ``window`` sources centred on the target's relative place (the whole source layer if
    null), one per stratum of the window so that no two repeat."""

    fan_in: Annotated[int, Field(ge=1, le=65536)]
    window: Annotated[int, Field(ge=1)] | None = None
    weight_low: Annotated[int, Field(ge=-128, le=127)]
    weight_high: Annotated[int, Field(ge=-128, le=127)]
    weight_exp: Annotated[int, Field(ge=-8, le=15)] = 0

    @model_validator(mode="after")
    def _check(self) -> "GenerateSpec":
        if self.weight_low > self.weight_high:
            raise ValueError(f"weight_low ({self.weight_low}) exceeds weight_high ({self.weight_high})")
        if self.window is not None and self.window < self.fan_in:
            raise ValueError(f"window ({self.window}) is smaller than fan_in ({self.fan_in})")
        return self


ENCODING_KINDS = {"graded_constant": "graded_source", "spike_constant": "spike_source"}


class InputSpec(Spec):
    population: Name
    encoding: Literal["graded_constant", "spike_constant"]   # every step: the values as graded spikes, or a
                                                             # binary spike where a value is nonzero


class ReadoutSpec(Spec):
    population: Name
    mode: Literal["membrane", "spike_count"]


class PopulationSpec(Spec):
    kind: str
    size: Annotated[int, Field(ge=1, le=100_000_000)]
    params: dict[str, Any] = {}
    chip: Annotated[int, Field(ge=0, le=1_000_000)] | None = None    # pinned to this chip of the system


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
    delay: Annotated[int, Field(ge=0, le=255)] = 0     # extra timesteps its input is held back
    generate: GenerateSpec | None = None               # with generated weights (kind: sparse)
    in_shape: tuple[int, int, int] | None = None     # conv2d: (channels, height, width)
    stride: Annotated[int, Field(ge=1, le=16)] = 1
    padding: Annotated[int, Field(ge=0, le=16)] = 0

    @model_validator(mode="after")
    def _check(self) -> "ProjectionSpec":
        if self.kind == "conv2d" and self.in_shape is None:
            raise ValueError("a conv2d projection needs in_shape: [channels, height, width]")
        if self.generate is not None and self.kind != "sparse":
            raise ValueError("generated synapses are sparse: expected kind: sparse")
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
            if (proj.generate is None) != (self.weights.generated is None):
                raise ValueError(f"projection {name!r}: with generated weights every projection has a generate "
                                 f"block, with a weights file none has")
            if proj.generate is not None and proj.generate.fan_in > pops[proj.source].size:
                raise ValueError(f"projection {name!r}: fan_in {proj.generate.fan_in} exceeds its source's "
                                 f"{pops[proj.source].size} neurons")
        return self


class FixedPointSpec(Spec):
    """Fractional bits of a lowered language model (`neurosim.zoo.matmulfree.lowering.FixedPoint`)."""

    frac: Annotated[int, Field(ge=4, le=16)] = 12
    gain_frac: Annotated[int, Field(ge=4, le=16)] = 12
    rsqrt_frac: Annotated[int, Field(ge=4, le=16)] = 12
    code_bits: Annotated[int, Field(ge=2, le=24)] = 12
    payload_bits: Annotated[int, Field(ge=8, le=32)] = 24
    weight_storage_bits: Literal[2, 8] = 2      # a ternary weight in synaptic memory: packed, or one 8-bit weight


class ShapeSpec(Spec):
    """A published shape, with weights drawn from ``seed`` (`neurosim.zoo.matmulfree.model.SHAPES`)."""

    shape: Literal["370m", "1.3b", "2.7b", "block512"]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


class LanguageModelFile(Spec):
    """``model.yaml`` of a MatMul-free language model: trained weights (``weights``) or a
    published shape with generated weights (``generated``), the text it reads, and the fixed
    point of its lowering; its code scales are calibrated on ``calibration_chars`` of the
    training split."""

    name: Name
    kind: Literal["matmulfree_lm"]
    description: str = ""
    weights: WeightsRef | None = None
    generated: ShapeSpec | None = None
    dataset: str
    fixed_point: FixedPointSpec = FixedPointSpec()
    calibration_chars: Annotated[int, Field(ge=256, le=1_000_000)] = 8192
    embedding: Literal["host", "chip"] = "host"    # where the embedding runs on a chip of neurocores
    head: Literal["host", "chip"] = "host"         # where the head runs on a chip of neurocores

    @model_validator(mode="after")
    def _check(self) -> "LanguageModelFile":
        if (self.weights is None) == (self.generated is None):
            raise ValueError("expected either weights (a trained file) or generated (a shape and a seed)")
        if self.weights is not None and self.weights.file is None:
            raise ValueError("a language model's weights are a file: expected weights: {file, sha256}")
        return self


class EgruShapeSpec(Spec):
    """A shape for an EGRU model with generated weights (`neurosim.zoo.egru.model.generate_model`):
    over the dataset's characters, or with ``vocab_size`` over that many word ids."""

    embed: Annotated[int, Field(ge=1, le=65536)]
    hidden: Annotated[list[Annotated[int, Field(ge=1, le=65536)]], Field(min_length=1, max_length=64)]
    sparsity: Annotated[float, Field(ge=0.0, lt=1.0)]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    vocab_size: Annotated[int, Field(ge=2, le=1_000_000)] | None = None    # a word-level model's vocabulary


class EgruModelFile(Spec):
    """``model.yaml`` of an EGRU language model (`neurosim.zoo.egru.model`): trained weights
    (``weights``) or a shape with generated weights (``generated``), the text it reads, and
    where its head (the readout to logits) runs."""

    name: Name
    kind: Literal["egru_lm"]
    description: str = ""
    weights: WeightsRef | None = None
    generated: EgruShapeSpec | None = None
    dataset: str
    head: Literal["host", "chip"] = "chip"
    embedding: Literal["host", "chip"] = "host"

    @model_validator(mode="after")
    def _check(self) -> "EgruModelFile":
        if (self.weights is None) == (self.generated is None):
            raise ValueError("expected either weights (a trained file) or generated (a shape and a seed)")
        if self.weights is not None and self.weights.file is None:
            raise ValueError("a language model's weights are a file: expected weights: {file, sha256}")
        words = self.generated is not None and self.generated.vocab_size is not None
        if words != (self.dataset == "random"):
            raise ValueError("a model of word ids (generated.vocab_size) reads ids drawn from the scenario's seed, "
                             "and only it: expected dataset: random with generated.vocab_size, else a text")
        return self


class KnnPatternsSpec(Spec):
    """Stored patterns and their queries drawn from ``seed`` (`neurosim.zoo.knn`): unit vectors of
    ``dimensions`` that lie near a subspace of ``intrinsic_dims``, in ``clusters`` clusters of
    ``cluster_spread`` (in units of the spread of the clusters' centres), with isotropic ``noise``."""

    seed: Annotated[int, Field(ge=0, le=2**32 - 1)]
    patterns: Annotated[int, Field(ge=1, le=100_000_000)]
    dimensions: Annotated[int, Field(ge=1, le=8192)]
    intrinsic_dims: Annotated[int, Field(ge=1, le=8192)] = 16
    clusters: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    cluster_spread: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 0.3
    noise: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.1

    @model_validator(mode="after")
    def _check(self) -> "KnnPatternsSpec":
        if self.intrinsic_dims > self.dimensions:
            raise ValueError(f"intrinsic_dims ({self.intrinsic_dims}) exceeds dimensions ({self.dimensions})")
        return self


class KnnModelFile(Spec):
    """``model.yaml`` of a nearest-neighbour search (`neurosim.zoo.knn`): generated patterns stored
    as the dense 8-bit weights of one neuron each, spread over ``chips`` chips with a relay group on
    each; a query's components (of the unit vector, times ``code_gain``) as spike times in a
    ``window`` of steps (a component below ``theta_e`` is not sent); the patterns' weights reach
    ``weight_max``; a pattern neuron spikes
    when its membrane passes ``threshold`` (``ramp``: a bias that lifts every one alike each step),
    and the first ``k`` to spike are the answer."""

    name: Name
    kind: Literal["knn_patterns"]
    description: str = ""
    generated: KnnPatternsSpec
    chips: Annotated[int, Field(ge=1, le=16384)]
    window: Annotated[int, Field(ge=2, le=4096)] = 60
    code_gain: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 1.0
    theta_e: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.1
    threshold: Annotated[int, Field(ge=0, le=131071)]
    ramp: Annotated[int, Field(ge=0, le=4095 << 7)] = 0
    weight_max: Annotated[int, Field(ge=1, le=127)] = 127
    k: Annotated[int, Field(ge=1, le=1024)] = 1

    @model_validator(mode="after")
    def _check(self) -> "KnnModelFile":
        if self.chips > self.generated.patterns:
            raise ValueError(f"chips ({self.chips}) exceeds generated.patterns ({self.generated.patterns}): every "
                             f"chip holds some patterns")
        if self.k > self.generated.patterns:
            raise ValueError(f"k ({self.k}) exceeds generated.patterns ({self.generated.patterns})")
        if not any(self.ramp % (1 << e) == 0 and self.ramp >> e <= 4095 for e in range(8)):
            raise ValueError(f"ramp {self.ramp} is no loihi_lif bias: expected a mantissa up to 4095 times 2^0 to 2^7")
        return self


class SpikeGptModelFile(Spec):
    """``model.yaml`` of a SpikeGPT language model (`neurosim.zoo.spikegpt.model`): trained weights and
    the text it reads."""

    name: Name
    kind: Literal["spikegpt_lm"]
    description: str = ""
    weights: WeightsRef
    dataset: str

    @model_validator(mode="after")
    def _check(self) -> "SpikeGptModelFile":
        if self.weights.file is None:
            raise ValueError("a language model's weights are a file: expected weights: {file, sha256}")
        return self
