"""Text reports for the CLI: a chip's capacity and costs, a scenario's mapping, listings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neurosim.analysis.units import si
from neurosim.errors import UserError
from neurosim.mapping.mapper import utilisation_table
from neurosim.mapping.partition import LIMIT_NAMES
from neurosim.mapping.table import placement_group
from neurosim.programs import OP_CLASSES, check_populations
from neurosim.spec.chip import ArmPeSpec, ChipFile, GpuRooflineSpec, NeurocoreSpec, TernaryPipelineSpec, load_chip
from neurosim.spec.model import EgruModelFile, LanguageModelFile
from neurosim.spec.places import find
from neurosim.spec.validate import validate
from neurosim.spec.yamlio import load_yaml
from neurosim.zoo.loader import load_model
from neurosim.zoo.matmulfree.model import SHAPES


@dataclass(frozen=True)
class ModelSummary:
    name: str
    dataset: str
    lines: list[str]           # what `describe` prints under the name
    size: str                  # neurons and synapses, or layers and parameters


def _checked_model(folder: Path) -> ModelSummary:
    """Check a model folder as a run would (a language model with generated weights by its
    header alone: drawing billions of weights to list it would take minutes)."""
    yaml_path = folder / "model.yaml"
    data, lines, _ = load_yaml(yaml_path)
    if isinstance(data, dict) and data.get("kind") == "matmulfree_lm":
        spec = validate(LanguageModelFile, data, file=str(yaml_path), lines=lines)
        if spec.generated is not None:
            n_layers, d, glu = SHAPES[spec.generated.shape]
            what = f"generated weights, {spec.generated.shape} shape"
        else:
            model = load_model(folder)[0].model
            n_layers, d, glu = len(model.blocks), model.d, model.blocks[0].down_proj.weight_ternary.shape[1]
            what = "trained weights"
        ternary = n_layers * (4 * d * d + 3 * d * glu)
        return ModelSummary(spec.name, spec.dataset,
                            [f"  MatMul-free LM, {what}: {n_layers} blocks, d = {d}, GLU {glu}, "
                             f"{ternary:,} ternary weights in the blocks"],
                            f"{n_layers} x d {d}, {ternary / 1e6:,.1f} M ternary")
    if isinstance(data, dict) and data.get("kind") == "egru_lm":
        spec = validate(EgruModelFile, data, file=str(yaml_path), lines=lines)
        if spec.generated is not None:
            embed, hidden, sparsity = spec.generated.embed, spec.generated.hidden, spec.generated.sparsity
            what = f"generated weights, {sparsity:.0%} pruned"
        else:
            model = load_model(folder)[0].model
            embed, hidden = model.embedding.shape[1], [layer.units for layer in model.layers]
            sparsity = 1 - sum(layer.input_weight.nnz + layer.recurrent_weight.nnz for layer in model.layers) / sum(
                3 * h * (n_in + h) for n_in, h in zip([embed] + hidden[:-1], hidden))
            what = f"trained weights, {sparsity:.0%} pruned"
        units = " / ".join(str(h) for h in hidden)
        weights = sum(3 * h * (n_in + h) for n_in, h in zip([embed] + hidden[:-1], hidden))
        return ModelSummary(spec.name, spec.dataset,
                            [f"  EGRU LM, {what}: {len(hidden)} layers of {units} units, embedding {embed}, "
                             f"{weights:,} input and recurrent weights before pruning; head on the {spec.head}"],
                            f"{len(hidden)} x EGRU {units}, {weights * (1 - sparsity) / 1e6:,.2f} M weights")
    if isinstance(data, dict) and data.get("kind") == "spikegpt_lm":
        lm, _ = load_model(folder)
        model = lm.model
        d, ffn, vocab = model.embedding.shape[1], model.blocks[0].ffn_key.shape[0], len(model.vocab)
        weights = sum(b.key.size + b.value.size + b.receptance.size + b.output.size + b.ffn_key.size
                      + b.ffn_value.size + b.ffn_receptance.size for b in model.blocks)
        weights += model.embedding.size + model.head.size
        return ModelSummary(lm.name, lm.dataset,
                            [f"  SpikeGPT LM, trained weights: {len(model.blocks)} blocks, d = {d}, FFN {ffn}, "
                             f"vocabulary {vocab}, {weights:,} weights"],
                            f"{len(model.blocks)} x d {d}, {weights / 1e6:,.2f} M weights")
    graph, _ = load_model(folder)
    check_populations(graph)
    return ModelSummary(graph.name, graph.dataset,
                        [f"  {p.name:<14} {p.kind:<14} {p.size:>8,}" for p in graph.populations.values()],
                        f"{graph.n_neurons:>9,} neurons {graph.n_synapses:>12,} synapses")


IMPORTED = {".nir": "nir", ".net": "netx"}


def _kind_of_file(path: Path) -> str:
    if path.is_dir():
        return "model"
    if path.suffix in IMPORTED:
        return IMPORTED[path.suffix]
    if path.suffix == ".h5":
        return "trace"
    data, _, _ = load_yaml(path)
    if isinstance(data, dict) and ("grid" in data or "random" in data):
        return "sweep"
    if isinstance(data, dict) and ("core_kinds" in data or "base" in data):
        return "chip"
    if isinstance(data, dict) and ("populations" in data or data.get("kind") in ("matmulfree_lm", "egru_lm", "spikegpt_lm",
                                                                               "knn_patterns")):
        return "model"
    return "scenario"


def pipeline_report(chip: ChipFile) -> str:
    core, host = chip.core, chip.system.host
    lines = [
        f"{chip.name}: {chip.description}",
        f"chip     {core.cores} matrix cores x {core.ternary_units} ternary units at {core.clock_hz / 1e6:g} MHz "
        f"({si(core.cores * core.ternary_units * core.clock_hz, 'adds/s')}), {core.elementwise_units} "
        f"element-wise lanes; static {chip.chip.static_power_w} W",
        f"memory   {core.bits_per_weight:g} bits per weight, streamed at {si(core.weight_memory_bits_per_s, 'b/s')} "
        f"unless they fit {core.on_chip_buffer_bytes:,} bytes on chip",
        f"host     {host.latency_ns} ns, {host.energy_pj_per_bit} pJ/bit, {si(host.bandwidth_bits_per_s, 'b/s')}",
        "", "per-operation energy (pJ)",
    ]
    for op in type(core.energy_pj).model_fields:
        lines.append(f"  {op:<22} {getattr(core.energy_pj, op):>10g}")
    return "\n".join(lines)


def chip_report(chip: ChipFile) -> str:
    if isinstance(chip.core, TernaryPipelineSpec):
        return pipeline_report(chip)
    if isinstance(chip.core, GpuRooflineSpec):
        g = chip.core
        peaks = ", ".join(f"{k} {v / 1e12:g} T" for k, v in g.peak_ops_per_s.items())
        return "\n".join([f"{chip.name}: {chip.description}",
                          f"gpu      {g.memory_bandwidth_bytes_per_s / 1e9:g} GB/s, {g.memory_bytes / 2**30:g} GiB; "
                          f"peak dense ops/s {peaks}; runs {g.precision}; {g.board_power_w:g} W",
                          "a roofline baseline: name it in a language scenario's baselines"])
    core, mesh, sysm = chip.core, chip.chip.mesh, chip.system
    lim = core.mapping_limits(chip.cores_per_chip)
    lines = [
        f"{chip.name}: {chip.description}",
        f"system   {sysm.chips_x} x {sysm.chips_y} chips ({chip.n_chips}), {chip.total_cores:,} cores in all",
        f"chip     {mesh.routers_x} x {mesh.routers_y} routers x {mesh.cores_per_router} cores = "
        f"{chip.cores_per_chip} {chip.chip.core_kind} cores; static {chip.chip.static_power_w} W; "
        f"barrier {chip.chip.barrier_ns} ns",
        f"noc      {chip.chip.noc.message_bits}-bit messages; hop E-W {chip.chip.noc.hop_ns_east_west} ns / "
        f"{chip.chip.noc.hop_pj_east_west} pJ, N-S {chip.chip.noc.hop_ns_north_south} ns / "
        f"{chip.chip.noc.hop_pj_north_south} pJ, local {chip.chip.noc.local_ns} ns / {chip.chip.noc.local_pj} pJ",
        f"links    chip-to-chip {sysm.link.latency_ns} ns, {sysm.link.energy_pj_per_bit} pJ/bit, "
        f"{si(sysm.link.bandwidth_bits_per_s, 'b/s')}; host {sysm.host.latency_ns} ns, "
        f"{sysm.host.energy_pj_per_bit} pJ/bit, {si(sysm.host.bandwidth_bits_per_s, 'b/s')}",
        "",
        f"capacity per {chip.chip.core_kind} core         per chip            per system",
    ]
    for name in LIMIT_NAMES:
        v = getattr(lim, name)
        lines.append(f"  {name:<22} {v:>12,} {v * chip.cores_per_chip:>18,} {v * chip.total_cores:>21,}")
    fmt = core.synapses
    bits = fmt.max_weight_bits
    lines.append(f"  bytes per synapse      {bits}-bit weights: dense {core.synapse_bytes(bits, 'dense'):g}, "
                 f"sparse {core.synapse_bytes(bits, 'sparse'):g}; memory read in {fmt.word_bits}-bit words")
    lines.append("  graded payloads        " + (f"up to {core.graded_payload_bits} bits" if core.graded_payload_bits
                                                 else "none (binary spikes only)"))
    if isinstance(core, ArmPeSpec):
        return "\n".join(lines + _arm_pe_lines(core))
    lines += ["", "per-operation costs        energy (pJ)   time (ns)"]
    for op in type(core.energy_pj).model_fields:
        lines.append(f"  {op:<22} {getattr(core.energy_pj, op):>12g} {getattr(core.time_ns, op):>11g}")
    if core.program_ops is not None:
        lines += ["", "neuron programs by operation (in place of neuron_update)   energy (pJ)   time (ns)"]
        for op in type(core.program_ops.energy_pj).model_fields:
            lines.append(f"  {op:<22} {getattr(core.program_ops.energy_pj, op):>12g} "
                         f"{getattr(core.program_ops.time_ns, op):>11g}")
    return "\n".join(lines)


def _arm_pe_lines(core: ArmPeSpec) -> list[str]:
    """An ARM PE's cycles per operation, DVFS levels, timing, MAC array and DRAM."""
    c, t, m, d = core.cycles, core.timing, core.mac_array, core.dram
    lines = ["", "cycles per operation      (of them loads and stores)"]
    for op in type(c).model_fields:
        if op not in ("neuron_update", "memory"):
            lines.append(f"  {op:<22} {getattr(c, op):>8g} {getattr(c.memory, op):>8g}")
    for kind, cycles in c.neuron_update.items():
        lines.append(f"  update: {kind:<14} {cycles:>8g} {c.memory.update(kind):>8g}")
    lines += ["", "DVFS level   voltage   clock       pJ/cycle   pJ/MAC   idle"]
    for lv in core.dvfs:
        lines.append(f"  {lv.name:<10} {lv.voltage_v:>5g} V {lv.clock_hz / 1e6:>7g} MHz {lv.cycle_pj:>10g} "
                     f"{lv.mac_pj:>8g} {lv.idle_w * 1e3:>6g} mW")
    timing = (f"{t.mode}, tick {t.tick_ns / 1e6:g} ms" if t.mode == "ticked" else f"{t.mode}, barrier {t.sync_ns} ns")
    lines += ["", f"timing   {timing}; DVFS {t.dvfs}",
              f"MACs     {m.macs} x {m.operand_bits}-bit, {m.accumulator_bits}-bit accumulators; "
              f"dense layers {'on the array' if m.dense_layers else 'in software'}",
              f"DRAM     {d.bytes / 2**30:g} GiB, {si(d.bandwidth_bits_per_s, 'b/s')}, {d.energy_pj_per_bit} pJ/bit; "
              f"synapses in {core.synapses_in}"]
    if core.host_loop is not None:
        h = core.host_loop
        lines.append(f"host     per token a write, a start and a read, each a request and a reply in datagrams of "
                     f"{h.datagram_payload_bytes} bytes (+{h.header_bytes} of headers, {h.command_bytes} of command); "
                     f"the host's own work at {si(h.host_bytes_per_s, 'B/s')}")
    return lines


SHORT_LIMIT_NAMES = {"neurons": "neurons", "memory_bytes": "memory", "neuron_state_bytes": "state mem",
                     "synapse_memory_bytes": "synapse mem", "fan_in": "fan-in", "fan_out": "fan-out",
                     "routes": "routes"}


def pipeline_scenario_report(setup) -> str:
    """A language model on a ternary pipeline: each block's weights and what sets its time per token."""
    from neurosim.cores.ternary_pipeline import block_costs

    blocks = block_costs(setup.chip.core, setup.lm.model)
    lines = [f"{setup.scenario.name}: model {setup.lm.name} on {setup.chip.name}: {len(blocks)} blocks",
             f"{'block':>5} {'weights':>14} {'compute us':>11} {'stream us':>10}  per token set by"]
    for n, b in enumerate(blocks):
        lines.append(f"{n:>5} {b.weights:>14,} {b.compute_ns / 1e3:>11.1f} {b.stream_ns / 1e3:>10.1f}  "
                     f"{'weight stream' if b.stream_ns > b.compute_ns else 'matrix cores'}")
    return "\n".join(lines)


def scenario_report(path: Path) -> str:
    from neurosim.analysis.chips import per_chip
    from neurosim.runs import prepare

    data, _, _ = load_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("chip"), list):
        _, scenarios, base = per_chip(path)
        return "\n\n".join(setup_report(prepare(one, base_dir=base)) for one in scenarios)
    return setup_report(prepare(path))


def setup_report(setup) -> str:
    """A set-up scenario's mapping: per core, the fraction of each limit it uses."""
    if setup.mapping is None:
        return pipeline_scenario_report(setup)
    m, g = setup.mapping, setup.graph
    rows = utilisation_table(m)
    names = list(m.limits)
    header = f"{'core':>5} {'chip':>4} {'router':>8}  {'population':<14} {'slice':<13}" + "".join(
        f" {SHORT_LIMIT_NAMES.get(n, n)[:11]:>11}" for n in names)
    peak = "  ".join(f"{SHORT_LIMIT_NAMES.get(n, n)} {max(r[n] for r in rows):.1%}" for n in names) if rows else "-"
    lines = [f"{setup.scenario.name}: model {g.name} ({g.n_neurons:,} neurons, {g.n_synapses:,} synapses) on "
             f"{setup.chip.name}: {m.n_cores} cores on {m.chips_used} chip(s)",
             f"busiest core per limit: {peak}", "", *placement_lines(placement_group(m)), "",
             "utilisation per core (fraction of each limit)", header]
    for r in rows:
        pops = str(r["population"]).split("+")
        held = pops[0] if len(pops) == 1 else f"{pops[0]} +{len(pops) - 1}"      # a shared core
        lines.append(f"{r['core']:>5} {r['chip']:>4} {str(r['router']):>8}  {held:<14} "
                     f"{r['slice']:<13}" + "".join(f" {r[n]:>11.1%}" for n in names))
    host = [s for s in m.slices if s.core < 0]
    if host:
        lines.append("on the host: " + ", ".join(f"{s.population} ({s.hi - s.lo} neurons)" for s in host))
    if isinstance(setup.chip.core, NeurocoreSpec):
        lines += ["", *program_lines(setup.chip, g)]
    return "\n".join(lines)


OP_HEADINGS = {"read": "read", "write": "write", "add": "add", "multiply": "mul", "shift": "shift",
               "compare": "cmp", "lookup": "table", "divide_step": "div"}


def program_lines(chip: ChipFile, graph) -> list[str]:
    """Each population's neuron program: its operations per update by class and one update's
    time and energy on the chip (`neurosim.cores.neurocore.program_costs`)."""
    from neurosim.cores.neurocore import program_costs

    priced = "its operations" if chip.core.program_ops is not None else "neuron_update"
    lines = [f"neuron programs: operations per update, and one update's time and energy (priced by {priced})",
             f"  {'population':<20} {'kind':<17}" + "".join(f" {OP_HEADINGS[k]:>5}" for k in OP_CLASSES)
             + f" {'ns':>8} {'pJ':>8}"]
    for c in program_costs(chip, graph):
        counts = "".join(f" {c.ops[k]:>5}" if c.ops is not None else f" {'-':>5}" for k in OP_CLASSES)
        lines.append(f"  {c.population[:20]:<20} {c.kind:<17}{counts} {c.time_ns:>8.3f} {c.energy_pj:>8.3f}")
    return lines


SETTINGS = {"group_per_chip": ("groups", "ungrouped"), "explicit": ("map",), "spread": ("cores",)}


def _listed(names: str, most: int = 4) -> str:
    """A comma-joined list of names, shortened to its first and last ones past ``most``."""
    items = [n for n in str(names).split(",") if n]
    if len(items) <= most:
        return ", ".join(items)
    return f"{len(items)}: {', '.join(items[:most - 1])}, ..., {items[-1]}"


def placement_lines(group: dict) -> list[str]:
    """A placement (a trace's ``/mapping`` group, `neurosim.mapping.table`) per chip: the cores
    used, neurons, synapses, memory, and the groups or populations it holds."""
    attrs, chips = group.get("@attrs", {}), group["chips"]
    settings = ", ".join(f"{k} '{attrs[k]}'" if isinstance(attrs[k], str) else f"{k} {attrs[k]}"
                         for k in SETTINGS.get(attrs.get("strategy"), ()) if k in attrs)
    lines = [f"placement {attrs.get('strategy', 'pack')}" + (f" ({settings})" if settings else "") +
             f": {attrs.get('cores_used', int(chips['cores'].sum())):,} cores on "
             f"{attrs.get('chips_used', len(chips['chip']))} chip(s)",
             f"{'chip':>5} {'cores':>6} {'neurons':>12} {'synapses':>15} {'memory':>10}  groups / populations"]
    for i, c in enumerate(chips["chip"]):
        held = (f"group(s) {_listed(chips['groups'][i])}; " if chips["groups"][i] else "") + \
            f"population(s) {_listed(chips['populations'][i])}"
        lines.append(f"{int(c):>5} {int(chips['cores'][i]):>6} {int(chips['neurons'][i]):>12,} "
                     f"{int(chips['synapses'][i]):>15,} {si(chips['memory_bytes'][i], 'B'):>10}  {held}")
    return lines


def trace_report(path: Path) -> str:
    """A trace's run in a line, and the placement it ran with (its ``/mapping`` group)."""
    from neurosim.traces.trace import read_trace

    trace = read_trace(path)
    head = f"{path.name}: scenario {trace.meta.get('scenario_name')}, model {trace.meta.get('model_name')} on " \
           f"{trace.meta.get('chip_name')}"
    if "mapping" not in trace.groups:
        return f"{head}\nthe trace records no placement (no /mapping group: a pipeline accelerator has no cores)"
    return "\n".join([head, *placement_lines({**trace["mapping"], "@attrs": trace.attrs.get("mapping", {})})])


def _existing(path_str: str) -> tuple[Path, str]:
    """The path and what it holds (a chip, a model, a scenario, a sweep, or a NIR or netx file),
    for a path or the name of a chip, scenario or model (looked up as `neurosim.spec.places` says)."""
    path = Path(path_str)
    if not path.exists():
        for kind in ("scenario", "chip", "model"):
            try:
                path = find(kind, path_str)
                break
            except UserError:
                continue
        else:
            raise UserError("file not found: expected a chip, model, scenario or sweep file, or the name of a chip, "
                            "model or scenario", file=path_str)
    return path, _kind_of_file(path)


def _imported(path: Path, kind: str):
    if kind == "nir":
        from neurosim.interop.nir_import import load_nir

        return load_nir(path)
    from neurosim.interop.netx_import import load_netx

    return load_netx(path)


def describe(path_str: str) -> str:
    path, kind = _existing(path_str)
    if kind == "sweep":
        from neurosim.sweep import load_sweep

        sweep = load_sweep(path)
        return f"{sweep.spec.name}: {len(sweep.points)} points over {', '.join(dict.fromkeys(k for p in sweep.points for k in p))}"
    if kind == "chip":
        return chip_report(load_chip(path)[0])
    if kind == "trace":
        return trace_report(path)
    if kind == "model":
        model = _checked_model(path if path.is_dir() else path.parent)
        return "\n".join([f"{model.name}: {model.size.strip()}"] + model.lines)
    if kind in IMPORTED.values():
        graph = _imported(path, kind).graph
        return "\n".join([f"{path.name}: a {kind} model, {graph.n_neurons:,} neurons, {graph.n_synapses:,} synapses"]
                         + [f"  {p.name:<14} {p.kind:<14} {p.size:>8,}" for p in graph.populations.values()])
    return scenario_report(path)


def validate_path(path_str: str) -> str:
    path, kind = _existing(path_str)
    if kind == "chip":
        load_chip(path)
    elif kind == "model":
        _checked_model(path if path.is_dir() else path.parent)
    elif kind in IMPORTED.values():
        _imported(path, kind)
    elif kind == "trace":
        from neurosim.traces.trace import read_summary

        read_summary(path)
    elif kind == "sweep":
        from neurosim.spec.scenario import scenario_from_dict
        from neurosim.sweep import apply_point, load_sweep

        sweep = load_sweep(path)
        for values in sweep.points:
            scenario_from_dict(apply_point(sweep.base, values, [path.parent, Path.cwd()]),
                               file=f"{path} (point {values})")
    else:
        _validate_scenario(path)
    return kind


def _validate_scenario(path: Path) -> None:
    """Set a scenario up as a run would, once per chip when it names several."""
    from neurosim.analysis.chips import per_chip
    from neurosim.runs import prepare

    data, _, _ = load_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("chip"), list):
        _, scenarios, base = per_chip(path)
        for one in scenarios:
            try:
                prepare(one, base_dir=base)
            except UserError as err:
                raise UserError(f"with chip {one['chip']!r}: {err.message}", file=str(path), field=err.field) \
                    from None
        return
    prepare(path)


def _folder(directory: Path, what: str) -> Path:
    if not directory.is_dir():
        raise UserError(f"no such folder, expected a folder of {what}", file=str(directory))
    return directory


def list_chips(directory: Path) -> str:
    """A line per chip file in ``directory``: the name to give a scenario, and what it is."""
    paths = sorted(_folder(directory, "chip files").glob("*.yaml"))
    if not paths:
        raise UserError("holds no chip files (*.yaml)", file=str(directory))
    lines = [f"chips in {directory}", f"{'chip':<28} {'name':<20} {'chips':>5} {'cores':>8}  core kind"]
    for path in paths:
        try:
            chip, _ = load_chip(path)
            lines.append(f"{path.stem:<28} {chip.name:<20} {chip.n_chips:>5} {chip.total_cores:>8,}  "
                         f"{chip.chip.core_kind}")
        except UserError as err:
            lines.append(f"{path.stem:<28} invalid: {err.message}")
    return "\n".join(lines)


def list_models(directory: Path) -> str:
    """A line per model folder in ``directory`` (the name to give a scenario, its size and data),
    then the NIR and netx files in its sub-folders."""
    folders = sorted(p for p in _folder(directory, "models").iterdir() if (p / "model.yaml").is_file())
    imported = sorted(p for p in directory.glob("*/*") if p.suffix in IMPORTED)
    if not folders and not imported:
        raise UserError("holds no models (folders with model.yaml, or .nir and .net files)", file=str(directory))
    lines = [f"models in {directory}", f"{'model':<28} {'size':<40} dataset"]
    for folder in folders:
        try:
            m = _checked_model(folder)
            lines.append(f"{folder.name:<28} {m.size:<40} {m.dataset}")
        except UserError as err:
            lines.append(f"{folder.name:<28} invalid: {err.message}")
    if imported:
        lines += ["", "imported models (a scenario's model: {nir: FILE} or {netx: FILE})"]
        lines += [f"{str(p.relative_to(directory.parent)):<48} {IMPORTED[p.suffix]}" for p in imported]
    return "\n".join(lines)
