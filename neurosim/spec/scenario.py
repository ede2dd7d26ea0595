"""Scenarios: one YAML file that names a chip, a model and what to run.

Example (``scenarios/quickstart.yaml``)::

    name: quickstart
    chip: chips/loihi2.yaml        # a file, or a name in chips/
    model: models/digits_snn       # a folder, or a name in models/, or {nir: file, dt, reset} or {netx: file}
    input: {dataset: digits, split: test}
    timesteps: 16
    overrides: {core.energy_pj.synop: 0.7}
    mapping: {strategy: pack}      # or spread, group_per_chip, explicit (`MappingSpec`)
    record: {spikes: false}
    seed: 0

Overrides replace chip fields before the chip is validated: ``system.*``, ``chip.*`` and
``core.*`` (the chip's core kind) address the chip file's sections.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from neurosim.errors import UserError
from neurosim.spec.validate import Spec, validate
from neurosim.spec.yamlio import LineMap, load_yaml


class InputSpec(Spec):
    """A shipped or generated dataset by name, or a file of inputs per timestep (with labels)."""

    dataset: str | None = None
    file: str | None = None           # .npy or .h5: [timesteps, inputs] or [samples, timesteps, inputs]
    labels: str | None = None         # .npy of one integer per sample (an .h5 input file may hold /labels)
    split: str = "test"
    samples: Annotated[int, Field(ge=1, le=10_000_000)] | None = None   # the first N of the split
    rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1                 # random_spikes: spikes per input and step
    hold: bool = False            # a file's inputs keep their last step's values after it (a frame), else go silent

    @model_validator(mode="after")
    def _one_source(self) -> "InputSpec":
        if (self.dataset is None) == (self.file is None):
            raise ValueError("expected either dataset (a name) or file (a .npy or .h5 path)")
        if self.labels is not None and self.file is None:
            raise ValueError("labels go with an input file: expected file as well")
        return self


class NirModelSpec(Spec):
    """A NIR graph to import (`neurosim.interop.nir_import`): NIR stores neither the time step nor
    the reset, so they are given here."""

    nir: str
    dt: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None    # default: the file's metadata, else 1
    reset: Literal["zero", "subtract"] = "zero"
    input: Literal["spikes", "graded"] = "spikes"


class NetxModelSpec(Spec):
    """A lava-dl netx network file to import (`neurosim.interop.netx_import`). ``reset_interval``
    and ``reset_offset`` are lava-dl's (``netx.hdf5.Network``): every CUBA or LOIHI layer's u and
    v go back to 0 every ``reset_interval`` steps of a sample, each layer a step after its input;
    none (lava-dl's default): no reset within a sample."""

    netx: str
    reset_interval: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    reset_offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class RecordSpec(Spec):
    spikes: bool = False
    spike_samples: Annotated[int, Field(ge=1, le=1000)] = 1    # record spikes of this many samples
    cores: bool = True                                          # per-core, per-step datasets
    readout: bool | None = None     # the readout's values per sample and step (/readout); None: if they are small


class TimingSpec(Spec):
    per_message: bool = True      # False: cores' synapse time without message arrival times


class MapTarget(Spec):
    """Where an explicit map puts populations: a chip of the system, and optionally a range of
    its cores (``[first, last]``, both included, counted from 0 on that chip)."""

    chip: Annotated[int, Field(ge=0, le=1_000_000)]
    cores: tuple[Annotated[int, Field(ge=0, le=1_000_000)], Annotated[int, Field(ge=0, le=1_000_000)]] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "MapTarget":
        if self.cores is not None and self.cores[1] < self.cores[0]:
            raise ValueError(f"cores: expected [first, last] with first <= last, found {list(self.cores)}")
        return self


class MappingSpec(Spec):
    """Where the model's populations go on the system's cores (`neurosim.mapping.placement`).

    ``pack``: as few cores as the limits allow, in model order. ``spread``: smaller slices over
    all of the system's cores (or about ``cores`` of them). ``group_per_chip``: the populations
    whose names match ``groups`` (a regular expression; its first capture group, else the whole
    match, names a population's group) one group per chip in the order the groups first appear,
    each spread over its chip's cores; ``ungrouped`` says where the other on-chip populations go.
    ``explicit``: ``map`` sends population names or globs (first match wins) to a chip, or to a
    range of a chip's cores; every on-chip population must match an entry. ``placement`` is the
    older name of ``strategy``; a map without a strategy means ``explicit``. With ``share_cores``,
    slices of several populations share a core within its limits (`neurosim.mapping.share`), and
    a group or map entry is packed onto its cores rather than spread over them.
    """

    strategy: Literal["pack", "spread", "group_per_chip", "explicit"] = "pack"
    cores: Annotated[int, Field(ge=1, le=10_000_000)] | None = None    # spread over about this many cores
    groups: Annotated[str, Field(min_length=1, max_length=200)] = r"^b(\d+)_"     # the MatMul-free blocks
    ungrouped: Literal["nearest", "first", "last", "own_chip"] = "nearest"
    map: Annotated[dict[str, MapTarget], Field(max_length=100_000)] = {}
    share_cores: bool = False       # slices of several populations on one core (`neurosim.mapping.share`)

    @model_validator(mode="before")
    @classmethod
    def _older_name_and_short_targets(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "placement" in data:
            if "strategy" in data and data["strategy"] != data["placement"]:
                raise ValueError(f"placement is the older name of strategy: expected one of them, found "
                                 f"strategy {data['strategy']!r} and placement {data['placement']!r}")
            data["strategy"] = data.pop("placement")
        if isinstance(data.get("map"), dict):
            data["map"] = {k: {"chip": v} if isinstance(v, int) and not isinstance(v, bool) else v
                           for k, v in data["map"].items()}
            data.setdefault("strategy", "explicit")
        return data

    @field_validator("groups")
    @classmethod
    def _a_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"expected a regular expression, {value!r} is not one ({err})") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> "MappingSpec":
        if self.strategy == "explicit" and not self.map:
            raise ValueError("strategy explicit: expected a map of population names or globs to chips")
        if self.strategy == "spread" and self.share_cores:
            raise ValueError("share_cores packs slices onto as few cores as their limits allow, and spread slices "
                             "them over many: expected strategy pack, group_per_chip or explicit with share_cores")
        return self

    @property
    def placement(self) -> str:
        """The strategy (by its older name)."""
        return self.strategy


class LanguageSpec(Spec):
    """How a language model is driven: a prompt from the dataset's split, processed a token
    per timestep (prefill), then tokens generated one at a time, each from the previous one's
    output. Figures for a prompt of ``report_prompt_tokens`` extend the simulated prompt by its
    steady per-token cost when it is longer. ``accuracy_chars`` of the split are scored with
    the integer reference (0: none).

    ``drive: host_loop`` (an EGRU on ARM PEs, `neurosim.runs.arm_language`) runs every token in
    turn from the host instead: it writes the token's input, starts the chip for
    ``ticks_per_token`` ticks (none: as few as the model's depth needs) with the PEs' DVFS policy
    ``dvfs`` (``auto`` or a level's name; none, or an override of ``core.timing.dvfs``: the chip's),
    and reads the output back."""

    prompt_tokens: Annotated[int, Field(ge=1, le=100_000)] = 64
    generate_tokens: Annotated[int, Field(ge=1, le=100_000)] = 16
    report_prompt_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    accuracy_chars: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    drive: Literal["pipeline", "host_loop"] = "pipeline"
    ticks_per_token: Annotated[int, Field(ge=1, le=10_000)] | None = None
    dvfs: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None

    @model_validator(mode="after")
    def _check(self) -> "LanguageSpec":
        if self.drive != "host_loop" and (self.ticks_per_token is not None or self.dvfs is not None):
            raise ValueError("ticks_per_token and dvfs pace a host loop: expected drive: host_loop with them")
        return self


def _model_form(value: Any) -> str:
    """Which of its forms a scenario's model takes, so that a mistake in a file's fields is
    reported at that field (the tags are no keys of the model's mapping)."""
    if isinstance(value, (dict, NirModelSpec, NetxModelSpec)):
        keys = value if isinstance(value, dict) else type(value).model_fields
        return "nir_file" if "nir" in keys else "netx_file" if "netx" in keys else "path"
    return "path"


ModelForm = Annotated[Annotated[str, Tag("path")] | Annotated[NirModelSpec, Tag("nir_file")]
                      | Annotated[NetxModelSpec, Tag("netx_file")], Discriminator(_model_form)]


class ScenarioFile(Spec):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)]
    description: str = ""
    chip: str | Annotated[list[str], Field(min_length=1, max_length=64)]   # several: the model on each, compared
    model: ModelForm                    # a model folder, or a file to import (NirModelSpec, NetxModelSpec)
    input: InputSpec
    timesteps: Annotated[int, Field(ge=1, le=1_000_000)] | None = None     # per sample (not for language models)
    language: LanguageSpec | None = None                                   # for language models
    overrides: dict[str, Any] = {}
    record: RecordSpec = RecordSpec()
    timing: TimingSpec = TimingSpec()
    mapping: MappingSpec = MappingSpec()
    reference: bool = True        # also run the plain-numpy integer reference and compare
    checkpoint_every: Annotated[int, Field(ge=1, le=10**12)] | None = None   # timesteps (tokens for a language
                                                                             # model) between saves; see --resume
    baselines: Annotated[list[str], Field(max_length=16)] = []    # GPU chip files a language model is compared with
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


def scenario_from_dict(data: Any, *, file: str, lines: LineMap | None = None) -> ScenarioFile:
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping with name, chip, model, input and timesteps, "
                        f"found {type(data).__name__}", file=file)
    return validate(ScenarioFile, data, file=file, lines=lines)


def load_scenario(path: str | Path) -> tuple[ScenarioFile, str, LineMap]:
    data, lines, text = load_yaml(path)
    return scenario_from_dict(data, file=str(path), lines=lines), text, lines


SECTIONS = {"system": ("system",), "chip": ("chip",)}


def override_path(dotted: str, chip_data: dict) -> list[str]:
    """The chip-file key path an override addresses (``core.`` is the chip's core kind)."""
    parts = str(dotted).split(".")
    if parts[0] == "core":
        kind = chip_data.get("chip", {}).get("core_kind") if isinstance(chip_data.get("chip"), dict) else None
        return ["core_kinds", str(kind)] + parts[1:]
    return parts


def apply_overrides(chip_data: dict, overrides: dict[str, Any], *, file: str, lines: LineMap | None) -> dict:
    """Replace chip fields named by dotted paths; an unknown path is an error in the scenario."""
    data = copy.deepcopy(chip_data)
    for dotted, value in overrides.items():
        parts = override_path(dotted, data)
        where = lines.find(("overrides", dotted)) if lines is not None else None
        if str(dotted).split(".")[0] not in ("core", *SECTIONS):
            raise UserError("expected a path starting with system., chip. or core.", file=file, line=where,
                            field=f"overrides.{dotted}")
        node = data
        for i, key in enumerate(parts[:-1]):
            if not isinstance(node, dict) or key not in node:
                raise UserError(f"the chip has no field {'.'.join(parts[:i + 1])!r}", file=file, line=where,
                                field=f"overrides.{dotted}")
            node = node[key]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise UserError(f"the chip has no field {'.'.join(parts)!r}", file=file, line=where,
                            field=f"overrides.{dotted}")
        node[parts[-1]] = value
    return data


def set_fields(scenario: dict, values: dict[str, Any], *, source: str = "--set") -> dict:
    """A copy of a scenario (as read from YAML) with dotted fields set: ``timesteps``,
    ``input.samples``, ``mapping.strategy``, ``overrides.<chip field>``... Values are YAML values.
    A path through something that is not a mapping is a `UserError` naming ``source``."""
    import copy

    out = copy.deepcopy(scenario)
    for path, value in values.items():
        if path.startswith("overrides."):
            overrides = out.setdefault("overrides", {})
            if not isinstance(overrides, dict):
                raise UserError(f"{path!r}: the scenario's overrides are not a mapping", field=source)
            overrides[path.removeprefix("overrides.")] = value
            continue
        node, parts = out, path.split(".")
        if not all(parts):
            raise UserError(f"{path!r}: expected a dotted field such as input.samples", field=source)
        for key in parts[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise UserError(f"{path!r}: {key!r} of the scenario is not a mapping", field=source)
        node[parts[-1]] = value
        drop_synonym(parts, node)
    return out


SYNONYMS = {("mapping", "strategy"): "placement", ("mapping", "placement"): "strategy"}


def drop_synonym(parts: list[str], node: dict) -> None:
    """After field ``parts`` was set in ``node`` (its parent), remove the field's other name
    there (``mapping.placement`` is the older name of ``mapping.strategy``): the value set wins."""
    other = SYNONYMS.get(tuple(parts))
    if other is not None:
        node.pop(other, None)
