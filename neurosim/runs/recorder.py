"""What a run on a chip of cores keeps of each step, in one `Recorder` per run.

The recorder owns every per-step array of a run (one row a step), a spiking run's per-sample
arrays and spikes, and an ARM PE's record (`neurosim.cores.arm_pe.PeRecord`); it saves and
restores them for a checkpoint, closes them with the run's timeline and static energy, and
turns them into the trace's groups (``steps``, ``links``, ``layers``, ``cores``, ``spikes``).
A spiking run knows its steps ahead and has its arrays allocated once (`check_memory` first
makes sure they fit); a language run stops when its last token is out, so its arrays grow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from neurosim.cores.arm_pe import ArmPeModel, PeRecord
from neurosim.cores.neurocore import BOUNDS, COMPONENTS, StepCost, binding_bounds
from neurosim.datasets import check_allocation
from neurosim.engine.engine import Engine, StepCounters
from neurosim.engine.sums import float_sum
from neurosim.errors import UserError
from neurosim.mapping.mapper import Mapping
from neurosim.runs.setup import Setup
from neurosim.spec.scenario import RecordSpec
from neurosim.system.system import SystemTiming, bulk_timeline
from neurosim.traces.sonata import spike_population

# Each step's counters in a spiking run's /steps (``bound`` is filled when the run closes) ...
COUNTERS = ("sample", "step", "events", "synops", "synmem_reads", "messages", "hops", "links", "overflow", "bound")
TOTALS = ("events", "synops", "messages", "overflow", "bound")     # ... and in a language run's
# Per core and step in a spiking run's /cores (with the scenario's record.cores).
CORE_COLUMNS = (("synops", np.int64), ("synmem_reads", np.int64), ("spikes", np.int64), ("messages_out", np.int64),
                ("messages_in", np.int64), ("hops", np.int64), ("busy_ns", np.float64), ("energy_pj", np.float64))
RECORD_BYTES_PER_CORE_STEP = 8 * len(CORE_COLUMNS)      # 8 bytes each
READOUT_AUTO_BYTES = 64 << 20      # the readout's values per step are kept up to this size unless record.readout says
# A language run's checkpoint holds its records as lists under these names (of the columns).
PICKLED = {"events": "steps/events", "synops": "steps/synops", "messages": "steps/messages",
           "overflow": "steps/overflow", "chip_busy": "chip_busy", "link_bits": "link_bits", "host_bits": "host_bits",
           "bounds": "bounds_ns", "layer_events": "layer_events", "idle": "idle_pj", "synapse": "energy/synapse",
           "neuron": "energy/neuron", "network": "energy/network"}


@dataclass(frozen=True)
class Recording:
    """What a run records beyond each step's totals (events, synaptic ops, messages, overflows,
    bounds, link and host loads, chips' busy time, energy by component, events per layer).

    ``counters``: a spiking run's further counters (each step's sample and timestep, synaptic-
    memory reads, hops, link crossings, overflows per layer; with ``cores`` also per core).
    ``cores``: per core and step (the scenario's record.cores): those counters, and on ARM PEs
    their cycles, DVFS levels, overruns and packets. ``spikes``: every spike of the first
    ``spike_samples`` samples (record.spikes). ``link_dtype``: of the link loads; None takes the
    cost's own, as a language run's traces have it (int64 when there are no links).
    """

    counters: bool
    cores: bool
    spikes: bool = False
    spike_samples: int = 0
    link_dtype: Any = np.float64


class Rows(NamedTuple):
    """The recorder's columns as compiled loops fill them (`record_row`), one row a step; a
    column a run does not record is empty."""

    sample: np.ndarray
    step: np.ndarray
    events: np.ndarray
    synops: np.ndarray
    synmem_reads: np.ndarray
    messages: np.ndarray
    hops: np.ndarray
    links: np.ndarray
    overflow: np.ndarray
    bounds_ns: np.ndarray
    link_bits: np.ndarray
    host_bits: np.ndarray
    layer_overflow: np.ndarray
    layer_events: np.ndarray
    chip_busy: np.ndarray
    energy_synapse: np.ndarray
    energy_neuron: np.ndarray
    energy_network: np.ndarray
    core_synops: np.ndarray
    core_reads: np.ndarray
    core_spikes: np.ndarray
    core_msgs_out: np.ndarray
    core_msgs_in: np.ndarray
    core_hops: np.ndarray
    core_busy_ns: np.ndarray
    core_energy_pj: np.ndarray


ROW_COLUMNS = {"sample": "steps/sample", "step": "steps/step", "events": "steps/events", "synops": "steps/synops",
               "synmem_reads": "steps/synmem_reads", "messages": "steps/messages", "hops": "steps/hops",
               "links": "steps/links", "overflow": "steps/overflow", "bounds_ns": "bounds_ns",
               "link_bits": "link_bits", "host_bits": "host_bits", "layer_overflow": "layer_overflow",
               "layer_events": "layer_events", "chip_busy": "chip_busy", "energy_synapse": "energy/synapse",
               "energy_neuron": "energy/neuron", "energy_network": "energy/network", "core_synops": "cores/synops",
               "core_reads": "cores/synmem_reads", "core_spikes": "cores/spikes", "core_msgs_out": "cores/messages_out",
               "core_msgs_in": "cores/messages_in", "core_hops": "cores/hops", "core_busy_ns": "cores/busy_ns",
               "core_energy_pj": "cores/energy_pj"}


def unrecorded(field: str) -> np.ndarray:
    """An empty stand-in for a column a run does not record, of the column's kind."""
    per_core = field.startswith("core_") or field == "layer_overflow"
    dtype = np.float64 if field in ("core_busy_ns", "core_energy_pj") else np.int64
    return np.zeros((0, 0) if per_core else 0, dtype)


@nb.njit(cache=True, nogil=True)
def record_row(rows, i, sample, t, counts, cost, pop_lo, pop_hi, payload):
    """Row ``i`` of the records (`Recorder.add`'s): step ``t`` of ``sample``, from the engine's
    ``counts`` (`neurosim.engine.step.Counts`), their ``cost`` (`neurosim.cores.neurocore.CostArrays`)
    and the step's ``payload``, populations ``pop_lo[p]:pop_hi[p]``."""
    n = counts.synops.shape[0]
    rows.events[i] = counts.events[0]
    rows.synops[i] = counts.synops.sum()
    rows.messages[i] = counts.msgs_out.sum()
    rows.overflow[i] = counts.overflow.sum()
    rows.bounds_ns[i] = cost.bounds_ns
    for j in range(cost.link_bits.shape[0]):
        rows.link_bits[i, j] = cost.link_bits[j]
    rows.host_bits[i] = cost.host_bits[0]
    rows.energy_synapse[i] = float_sum(cost.synapse_pj)
    rows.energy_neuron[i] = float_sum(cost.neuron_pj)
    rows.energy_network[i] = float_sum(cost.network_pj)
    rows.chip_busy[i] = cost.chip_busy_ns
    if rows.sample.shape[0]:
        rows.sample[i], rows.step[i] = sample, t
        rows.synmem_reads[i] = counts.reads.sum()
        rows.hops[i] = counts.hops.sum()
        rows.links[i] = counts.links.sum()
        rows.layer_overflow[i] = counts.overflow
    if rows.core_synops.shape[0]:
        rows.core_synops[i], rows.core_reads[i], rows.core_msgs_in[i] = counts.synops, counts.reads, counts.msgs_in
        rows.core_spikes[i], rows.core_msgs_out[i] = counts.spikes[:n], counts.msgs_out[:n]
        rows.core_hops[i], rows.core_busy_ns[i] = counts.hops[:n], cost.busy_ns
        for c in range(n):
            rows.core_energy_pj[i, c] = cost.synapse_pj[c] + cost.neuron_pj[c] + cost.network_pj[c] + 0.0
    for p in range(pop_lo.shape[0]):
        fired = 0
        for j in range(pop_lo[p], pop_hi[p]):
            fired += payload[j] != 0
        rows.layer_events[i, p] = fired


class Recorder:
    """One run's records; `for_samples` and `for_tokens` make a spiking and a language run's."""

    def __init__(self, model: Any, engine: Engine, mapping: Mapping, recording: Recording, samples: int = 0,
                 timesteps: int = 0, readout_size: int = 0):
        self.recording, self.mapping = recording, mapping
        self.link_names = model.links.names
        self.link_bits_dtype = np.float64 if len(model.links.path_links) else np.int64   # as the costs have them
        self.pops = [(name, lo, hi) for name, lo, hi, *_ in engine.pops]
        self.on_host = [kind.on_host for _name, _lo, _hi, kind, _state in engine.pops]
        self.n_chips = len(np.unique(mapping.core_chip))
        self.samples, self.timesteps = samples, timesteps
        self.pe = PeRecord(model, recording.cores) if isinstance(model, ArmPeModel) else None
        r, n_cores, n_pops = recording, mapping.n_cores, len(self.pops)
        self.shapes: dict[str, tuple[tuple[int, ...], Any]] = {
            **{f"steps/{k}": ((), np.int64) for k in (COUNTERS if r.counters else TOTALS)},
            "bounds_ns": ((len(BOUNDS),), np.float64), "link_bits": ((len(self.link_names),), r.link_dtype),
            "host_bits": ((), np.float64),
            **({"layer_overflow": ((n_pops,), np.int64)} if r.counters else {}),
            "idle_pj": ((), np.float64),            # cores idling through the rest of a step (kinds that price it)
            "layer_events": ((n_pops,), np.int64), "chip_busy": ((self.n_chips,), np.float64),
            **{f"energy/{k}": ((), np.float64) for k in COMPONENTS},
            **({f"cores/{k}": ((n_cores,), dt) for k, dt in CORE_COLUMNS} if r.counters and r.cores else {})}
        self.n = 0                                  # steps recorded
        self.columns: dict[str, np.ndarray] = {}
        self._allocate(samples * timesteps if samples else 256)
        self.predictions = np.zeros(samples, np.int64)
        self.readout_v = np.zeros((samples, readout_size), np.int64)
        self.readout: np.ndarray | None = None      # [samples, timesteps, readout] its values per step (`keep_readout`)
        self.readout_attrs: dict[str, Any] = {}
        self.spikes: dict[str, tuple[list, list]] = {name: ([], []) for name, *_ in self.pops} if r.spikes else {}
        self.timeline: dict[str, np.ndarray] = {}  # each step's time figures, once closed

    @classmethod
    def for_samples(cls, model: Any, engine: Engine, mapping: Mapping, record: RecordSpec, samples: int,
                    timesteps: int, readout_size: int) -> Recorder:
        """A spiking run's: ``samples`` of ``timesteps`` steps, what the scenario's ``record`` asks."""
        return cls(model, engine, mapping, Recording(True, record.cores, record.spikes, record.spike_samples),
                   samples, timesteps, readout_size)

    @classmethod
    def for_tokens(cls, model: Any, engine: Engine, mapping: Mapping, record: RecordSpec) -> Recorder:
        """A language run's: its steps' totals, and an ARM PE's figures per core with record.cores."""
        return cls(model, engine, mapping, Recording(False, record.cores, link_dtype=None))

    # -- the rows

    def _allocate(self, rows: int, first: dict[str, np.ndarray] | None = None) -> None:
        """Room for ``rows`` steps, keeping those recorded; a column typed by its values is made
        once ``first`` holds one of them."""
        columns = {}
        for k, (shape, dtype) in self.shapes.items():
            old = self.columns.get(k)
            if dtype is None:
                if old is None and (first is None or k not in first):
                    continue
                dtype = old.dtype if old is not None else np.asarray(first[k]).dtype
            columns[k] = np.zeros((rows, *shape), dtype)
            if old is not None:
                columns[k][:self.n] = old[:self.n]
        self.columns = columns

    def add(self, c: StepCounters, cost: StepCost, engine: Engine, sample: int = 0, step: int = 0) -> None:
        """Record one step: the engine's counters ``c``, their ``cost``, and from the engine its
        payload (events per layer, spikes) and overflows per layer; ``sample`` and ``step`` say
        which step of a spiking run it is."""
        i, a = self.n, self.columns
        if i == len(a["steps/events"]) or len(a) < len(self.shapes):
            self._allocate(max(2 * i, 256), {"link_bits": cost.link_bits})
            a = self.columns
        a["steps/events"][i] = c.events
        a["steps/synops"][i] = c.synops.sum()
        a["steps/messages"][i] = c.msgs_out.sum()
        a["steps/overflow"][i] = c.overflow
        a["bounds_ns"][i] = cost.bounds_ns
        a["link_bits"][i] = cost.link_bits
        a["host_bits"][i] = cost.host_bits
        a["energy/synapse"][i] = cost.synapse_pj.sum()
        a["energy/neuron"][i] = cost.neuron_pj.sum()
        a["energy/network"][i] = cost.network_pj.sum()
        a["idle_pj"][i] = cost.static_pj.sum() if cost.static_pj is not None else 0.0
        a["chip_busy"][i] = cost.chip_busy_ns
        if self.pe is not None:
            self.pe.add(cost)
        if self.recording.counters:
            self._add_counters(i, c, cost, engine, sample, step)
        spikes = self.spikes if sample < self.recording.spike_samples else {}
        for p, (name, lo, hi) in enumerate(self.pops):
            a["layer_events"][i, p] = np.count_nonzero(engine.payload[lo:hi])
            if spikes:
                ids = np.flatnonzero(engine.payload[lo:hi])
                spikes[name][0].append(np.full(len(ids), i, np.int64))          # the step's row
                spikes[name][1].append(ids)
        self.n = i + 1

    def _add_counters(self, i: int, c: StepCounters, cost: StepCost, engine: Engine, sample: int, step: int) -> None:
        a, n_cores = self.columns, self.mapping.n_cores
        a["steps/sample"][i], a["steps/step"][i] = sample, step
        a["steps/synmem_reads"][i] = c.synmem_reads.sum()
        a["steps/hops"][i] = c.hops.sum()
        a["steps/links"][i] = c.links.sum()
        a["layer_overflow"][i] = engine.overflow_per_population
        if self.recording.cores:
            a["cores/synops"][i] = c.synops
            a["cores/synmem_reads"][i] = c.synmem_reads
            a["cores/messages_in"][i] = c.msgs_in
            a["cores/spikes"][i] = c.spikes[:n_cores]
            a["cores/messages_out"][i] = c.msgs_out[:n_cores]
            a["cores/hops"][i] = c.hops[:n_cores]
            a["cores/busy_ns"][i] = cost.busy_ns
            a["cores/energy_pj"][i] = cost.synapse_pj + cost.neuron_pj + cost.network_pj[:n_cores] + (
                cost.static_pj if cost.static_pj is not None else 0.0)

    def rows(self, steps: int) -> Rows:
        """The columns for a compiled loop to fill ``steps`` rows from row `n` on (`record_row`);
        `advance` then counts them."""
        if self.n + steps > len(self.columns["steps/events"]) or len(self.columns) < len(self.shapes):
            self._allocate(max(2 * self.n, self.n + steps, 256), {"link_bits": np.zeros(0, self.link_bits_dtype)})
        return Rows(**{field: self.columns[column] if column in self.columns else unrecorded(field)
                       for field, column in ROW_COLUMNS.items()})

    def advance(self, steps: int, fired: np.ndarray | None = None, sample: int = 0, first_step: int = 0) -> None:
        """Count ``steps`` rows a compiled loop has filled; ``fired`` ([steps, neurons]: whether each
        neuron had an event) gives the spikes of a sample whose spikes are kept, its steps from
        ``first_step`` on."""
        if fired is not None and self.keeps_spikes(sample):
            for t in range(steps):
                for name, lo, hi in self.pops:
                    ids = np.flatnonzero(fired[t, lo:hi])
                    self.spikes[name][0].append(np.full(len(ids), self.n + t, np.int64))   # the step's row
                    self.spikes[name][1].append(ids)
        self.n += steps

    def keeps_spikes(self, sample: int) -> bool:
        return bool(self.spikes) and sample < self.recording.spike_samples

    def end_sample(self, sample: int, prediction: np.ndarray, readout_v: np.ndarray) -> None:
        """Record a spiking run's sample: its prediction and the readout's final membrane."""
        self.predictions[sample] = prediction
        self.readout_v[sample] = readout_v

    def __getitem__(self, column: str) -> np.ndarray:
        """A column's recorded rows (a view)."""
        return self.columns[column][:self.n]

    # -- checkpoints

    def state(self, samples_done: int) -> dict[str, np.ndarray]:
        """A spiking run's records after ``samples_done`` samples, as arrays for `Checkpoint.save_arrays`."""
        steps = samples_done * self.timesteps
        arrays = {k: v[:steps] for k, v in self.columns.items()}
        arrays |= {"predictions": self.predictions[:samples_done], "readout_v": self.readout_v[:samples_done]}
        if self.readout is not None:              # a row a step, as the checkpoint checks
            arrays["readout/values"] = self.readout[:samples_done].reshape(steps, self.readout.shape[-1])
        for name, (ts, ids) in self.spikes.items():
            arrays[f"spikes/{name}/t"] = np.concatenate(ts) if ts else np.zeros(0, np.int64)
            arrays[f"spikes/{name}/ids"] = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        return arrays | (self.pe.state() if self.pe is not None else {})

    def restore(self, samples_done: int, saved: dict[str, np.ndarray]) -> int:
        """Take back the records `state` gave; returns the samples they hold."""
        for k, v in self.columns.items():
            v[:len(saved[k])] = saved[k]
        self.predictions[:len(saved["predictions"])] = saved["predictions"]
        self.readout_v[:len(saved["readout_v"])] = saved["readout_v"]
        if self.readout is not None:
            self.readout[:samples_done] = saved["readout/values"].reshape(samples_done, self.timesteps, -1)
        for name, (ts, ids) in self.spikes.items():
            ts.append(saved[f"spikes/{name}/t"])
            ids.append(saved[f"spikes/{name}/ids"])
        if self.pe is not None:
            self.pe.restore({k: saved[k] for k in saved if k.startswith("pe/")})
        self.n = samples_done * self.timesteps
        return samples_done

    def token_state(self) -> dict[str, Any]:
        """A language run's records as its checkpoint keeps them: a list per record (a row a
        step) under ``record``, an ARM PE's arrays under ``pe``."""
        return {"record": {name: list(self[column]) for name, column in PICKLED.items()},
                "pe": self.pe.state() if self.pe is not None else None}

    def restore_token_state(self, saved: dict[str, Any]) -> None:
        """Take back the records `token_state` gave."""
        record, n = saved["record"], len(saved["record"]["events"])
        self._allocate(max(2 * n, 256), {"link_bits": record["link_bits"][0]} if n else None)
        if n:
            for name, column in PICKLED.items():
                self.columns[column][:n] = np.asarray(record[name])
        self.n = n
        if self.pe is not None:
            self.pe.restore(saved["pe"])

    # -- the end of the run

    def run_timeline(self, timing: SystemTiming, lo: int, hi: int) -> tuple[np.ndarray, float]:
        """Steps ``lo`` to ``hi`` through the system's timeline, back to back: each one's latency
        (ns) and the whole's with the host's readout (`bulk_timeline`, equal to the SimPy run's)."""
        return bulk_timeline(self["chip_busy"][lo:hi], self["link_bits"][lo:hi], self["host_bits"][lo:hi], timing)

    def close(self, timing: SystemTiming, static_w: float, step_ns: np.ndarray,
              timeline: dict[str, np.ndarray]) -> np.ndarray:
        """End the records: every step's barrier and binding bound, the static energy of the chips
        over each step's duration ``step_ns`` (and of cores idling), and the ``timeline`` arrays
        for the trace; returns each step's energy (pJ)."""
        self.columns = {k: v[:self.n] for k, v in self.columns.items()}
        bounds = self.columns["bounds_ns"]
        bounds[:, BOUNDS.index("barrier")] = timing.barrier_ns
        self.columns["steps/bound"][:] = binding_bounds(bounds)
        self.columns["energy/static"][:] = static_w * step_ns * 1e3 + self.columns["idle_pj"]   # W x ns = 1e3 pJ
        self.timeline = timeline
        return sum(self.energy().values())

    def energy(self) -> dict[str, np.ndarray]:
        """Each step's energy (pJ) by component, in `COMPONENTS`' order (which sums rely on)."""
        return {k: self.columns[f"energy/{k}"] for k in COMPONENTS}

    def sizes(self) -> np.ndarray:
        """Each population's neurons."""
        return np.array([hi - lo for _, lo, hi in self.pops], np.float64)

    def mean_sparsity(self, pops: list[int]) -> float:
        """1 less the share of the populations ``pops``' neurons that fired, over all steps."""
        if not pops:
            return 1.0
        return float(1.0 - self["layer_events"][:, pops].sum() / (self.sizes()[pops].sum() * self.n))

    def on_chip(self) -> list[int]:
        """The populations the chip's cores hold (not the host's)."""
        return [p for p, on_host in enumerate(self.on_host) if not on_host]

    def bound_shares(self) -> dict[str, float]:
        """The share of steps each bound set (summary attributes)."""
        return {f"steps_bound_by_{name}": float(np.mean(self["steps/bound"] == k)) for k, name in enumerate(BOUNDS)}

    def pe_summary(self) -> dict[str, float]:
        """An ARM PE's summary attributes (overruns, DVFS shares, cycles); none on neurocores."""
        return self.pe.summary() if self.pe is not None else {}

    # -- the trace's groups

    def steps_group(self) -> dict[str, Any]:
        counts = {k.removeprefix("steps/"): v for k, v in self.columns.items() if k.startswith("steps/")}
        return {**counts, **self.timeline, "bound_ns": self.columns["bounds_ns"],
                **(self.pe.step_groups() if self.pe is not None else {}),
                **{f"energy_{k}_pj": v for k, v in self.energy().items()},
                "@attrs": {"bound_codes": ", ".join(f"{k}: {name}" for k, name in enumerate(BOUNDS))}}

    def links_group(self) -> dict[str, Any]:
        return {"names": np.array(self.link_names if self.link_names else [], dtype=str),
                "bits": self.columns["link_bits"], "host_bits": self.columns["host_bits"]}

    def layers_group(self) -> dict[str, Any]:
        sizes, events = self.sizes(), self.columns["layer_events"]
        return {"names": np.array([name for name, *_ in self.pops]), "sizes": sizes.astype(np.int64),
                "events": events, "sparsity": 1.0 - events / np.maximum(sizes, 1),
                **({"overflow": self.columns["layer_overflow"]} if self.recording.counters else {})}

    def cores_group(self) -> dict[str, Any] | None:
        """Per core and step what was recorded (none with record.cores off: a spiking run's
        counters then have no rows), with each core's chip and place; None when a run records
        nothing per core (a language run on neurocores)."""
        if not self.recording.counters and self.pe is None:
            return None
        n, m = self.mapping.n_cores, self.mapping
        counters = {k: self.columns.get(f"cores/{k}", np.zeros((0, n), dt)) for k, dt in CORE_COLUMNS} \
            if self.recording.counters else {}
        return {**counters, **(self.pe.core_groups() if self.pe is not None else {}),
                "chip": m.core_chip, "x": m.core_x, "y": m.core_y,
                "@attrs": self.pe.core_attrs() if self.pe is not None else {}}

    # -- the readout's values per step

    def keep_readout(self, keep: bool | None, state: dict[str, np.ndarray], population: str, scale: float,
                     file: str = "<scenario>") -> None:
        """Keep the readout's value (a LIF neuron's ``v``, a sigma-delta neuron's ``sigma``, as the
        chip holds it) at the end of every step of every sample: with ``keep`` (record.readout)
        true, or unset and at most `READOUT_AUTO_BYTES`; ``scale`` turns it into the model's units."""
        variable = "v" if "v" in state else "sigma"
        values = state[variable]
        nbytes = self.samples * self.timesteps * len(values) * values.dtype.itemsize
        if keep is False or (keep is None and nbytes > READOUT_AUTO_BYTES):
            return
        check_allocation(nbytes, "the readout's values per step (record.readout)", file=file,
                         field="record.readout")
        self.readout = np.zeros((self.samples, self.timesteps, len(values)), values.dtype)
        self.readout_attrs = {"population": population, "variable": variable, "scale": float(scale)}

    def readout_rows(self, sample: int, first_step: int, steps: int) -> np.ndarray:
        """Where a compiled loop writes the readout's values of ``steps`` steps of ``sample`` from
        ``first_step`` on, [steps, readout]; empty when they are not kept."""
        if self.readout is None:
            return np.zeros((0, 0), np.int64)
        return self.readout[sample, first_step:first_step + steps]

    def add_readout(self, sample: int, step: int, values: np.ndarray) -> None:
        """The readout's values after one step (a run stepped from Python)."""
        if self.readout is not None:
            self.readout[sample, step] = values

    def readout_group(self) -> dict[str, Any]:
        """The trace's ``/readout`` group (traces/README.md)."""
        return {"values": self.readout, "@attrs": self.readout_attrs}

    def spikes_group(self) -> dict[str, Any]:
        """The spikes recorded, per population, in the SONATA layout (`spike_population`: times in
        ms on the run's simulated clock, from the closed records' step times); empty when none were."""
        latency_ns = self.timeline["latency_ns"]
        start_ms = (self.timeline["time_ns"] - latency_ns) * 1e-6
        step_ms = float(np.mean(latency_ns)) * 1e-6 if len(latency_ns) else 0.0
        return {name: spike_population(np.concatenate(ts) if ts else np.zeros(0, np.int64),
                                       np.concatenate(ids) if ids else np.zeros(0, np.int64), start_ms, step_ms)
                for name, (ts, ids) in self.spikes.items()}


def readout_scale(setup: Setup) -> float:
    """What one unit of the readout's value is in its model's units: an imported file's own
    (`neurosim.interop.imported.ImportedModel.readout_scale`), else for a LIF neuron's ``v`` 2^-6
    (its synaptic input and bias are added 6 bits up), and 1 for a sigma-delta neuron's ``sigma``."""
    if setup.imported is not None and setup.imported.readout_scale is not None:
        return setup.imported.readout_scale
    kind = setup.graph.populations[setup.graph.readout_population].kind
    return 2.0 ** -6 if "lif" in kind else 1.0


def physical_memory_bytes() -> int:
    """The machine's memory; unbounded where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check_memory(setup: Setup, n_steps: int, n_cores: int) -> None:
    """Refuse a run whose mapped model and records would not fit the machine's memory, before
    allocating them: the routes and state the mapping holds, and the per-step records."""
    mapping, spec = setup.mapping, setup.scenario
    routes = mapping.routes.nbytes()
    state = 8 * (mapping.delay_slots * mapping.n_dendrites + 4 * mapping.n_neurons)
    per_core = n_steps * n_cores * RECORD_BYTES_PER_CORE_STEP if spec.record.cores else 0
    per_step = n_steps * 8 * (40 + len(setup.graph.populations) * 2)
    needed = routes + state + per_core + per_step
    have = physical_memory_bytes()
    if needed > 0.8 * have:
        hint = " (record.cores: false drops the per-core records, " \
               f"{per_core / 1e9:.1f} GB of it)" if per_core > 0.5 * needed else " (fewer samples or timesteps)"
        raise UserError(f"the run would need about {needed / 1e9:.1f} GB of memory and the machine has "
                        f"{have / 1e9:.1f} GB{hint}", file=setup.scenario_file)
