"""The host's per-token loop of an EGRU on SpiNNaker 2's ARM PEs (`neurosim.runs.arm_language`):
its time and energy part by part, ticks per token, where the embedding's and head's weights go
(PE SRAM or DRAM) and what that costs, and the mistakes it refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from neurosim.analysis.summary import summary_lines
from neurosim.cores.arm_pe import ArmPeModel, transaction
from neurosim.engine.engine import Engine
from neurosim.errors import UserError
from neurosim.runs import prepare, run
from neurosim.runs.arm_language import PARTS

REPO = Path(__file__).resolve().parents[1]
SPINNAKER2 = REPO / "chips" / "spinnaker2.yaml"


def word_model(folder: Path, vocab: int = 300, embedding: str = "host", head: str = "host",
               hidden: tuple[int, ...] = (24, 16)) -> Path:
    """A small word-level EGRU with generated weights over ``vocab`` word ids."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.yaml").write_text(yaml.safe_dump({
        "name": "words", "kind": "egru_lm", "dataset": "random", "embedding": embedding, "head": head,
        "generated": {"embed": 16, "hidden": list(hidden), "sparsity": 0.5, "seed": 1, "vocab_size": vocab}}))
    return folder


def scenario(model: Path, **language) -> dict:
    return {"name": "words", "chip": str(SPINNAKER2), "model": str(model), "input": {"dataset": "random"},
            "language": {"drive": "host_loop", "prompt_tokens": 3, "generate_tokens": 2} | language, "seed": 3}


def test_the_breakdowns_add_up_to_the_totals(tmp_path):
    """Time per token is its parts' sum, energy per token its parts' sum, and the trace's steps hold
    the same energy as its tokens."""
    result = run(scenario(word_model(tmp_path / "m")), write=False)
    s, trace = result.summary, result.trace
    assert s["time_per_token_s"] == pytest.approx(s["time_write_input_s"] + s["time_start_s"] + s["time_read_output_s"]
                                                  + s["time_chip_per_token_s"] + s["time_host_work_s"], rel=1e-12)
    assert s["energy_per_token_j"] == pytest.approx(sum(s[f"energy_{k}_per_token_j"] for k in PARTS), rel=1e-12)
    assert all(s[f"energy_{k}_per_token_j"] > 0 for k in ("pe_compute", "sram", "noc", "host_link", "pe_idle",
                                                             "chip_baseline"))
    assert s["energy_dram_per_token_j"] == 0 and s["dram_bytes_per_token"] == 0
    steps, tokens = trace.groups["steps"], trace.groups["tokens"]
    from_steps = sum(np.sum(steps[f"energy_{k}_pj"]) for k in ("synapse", "neuron", "network", "static"))
    from_tokens = sum(np.sum(tokens[f"energy_{k}_pj"]) for k in PARTS)
    assert from_steps == pytest.approx(from_tokens, rel=1e-12)
    assert s["power_w"] == pytest.approx(from_tokens * 1e-12 / (np.sum(tokens["time_ns"]) * 1e-9), rel=1e-12)
    assert s["matches_reference"] and s["vocab_size"] == 300 and s["ticks_per_token"] == 3   # input + 2 layers


def test_the_host_loop_is_three_transactions_over_the_host_link():
    """A write of the embedding, a start and a read of the top layer: each two latencies of the link
    and its bytes with their datagrams' headers at its bandwidth."""
    chip = prepare(scenario(REPO / "models" / "egru_lm")).chip
    host, loop = chip.system.host, chip.core.host_loop
    t = transaction(host, loop, 3000, 0)           # 3 datagrams of at most 1456 bytes each
    bits = 8 * (3000 + 3 * (16 + 66) + (16 + 66))
    assert t.bits == bits
    assert t.time_ns == pytest.approx(2 * host.latency_ns + bits / host.bandwidth_bits_per_s * 1e9)
    assert t.energy_pj == pytest.approx(bits * host.energy_pj_per_bit)


def test_more_ticks_per_token_take_more_time_and_energy(tmp_path):
    model = word_model(tmp_path / "m")
    few = run(scenario(model, ticks_per_token=3), write=False).summary
    many = run(scenario(model, ticks_per_token=6), write=False).summary
    tick = 1e-3
    assert many["time_chip_per_token_s"] == pytest.approx(few["time_chip_per_token_s"] + 3 * tick)
    assert many["time_per_token_s"] > few["time_per_token_s"]
    assert many["energy_per_token_j"] > few["energy_per_token_j"]
    assert many["energy_chip_baseline_per_token_j"] > few["energy_chip_baseline_per_token_j"]
    assert many["tokens_per_s"] < few["tokens_per_s"]


def test_a_fixed_dvfs_level_from_the_language_section(tmp_path):
    model = word_model(tmp_path / "m")
    fast = run(scenario(model, dvfs="pl4"), write=False).summary
    auto = run(scenario(model, dvfs="auto"), write=False).summary
    assert fast["dvfs"] == "pl4" and fast["dvfs_share_pl4"] == 1.0
    assert fast["energy_pe_compute_per_token_j"] > auto["energy_pe_compute_per_token_j"]


def test_dram_held_head_weights_cost_dram_energy_and_time_that_sram_held_ones_do_not():
    """The same head rows read from SRAM and by DMA from DRAM: the DRAM's bits, energy and transfer
    time, and the DMAs' cycles, only for the latter."""
    setup = prepare(scenario(REPO / "models" / "egru_lm"))
    model = ArmPeModel(setup.chip, setup.graph, setup.mapping)
    engine = Engine(setup.graph, setup.mapping, model.costs, per_message=False)
    counters = engine.step()
    sources = np.zeros(10, np.int64)                 # ten events on the first PE
    in_sram = model.step_parts(counters, engine.payload, model.head_rows_work(sources, 5000, "sram"))
    in_dram = model.step_parts(counters, engine.payload, model.head_rows_work(sources, 5000, "dram"))
    assert in_sram[1].dram_pj.sum() == 0 and in_sram[0].bounds_ns[2] == 0
    bits = 10 * 5000 * 32
    assert in_dram[1].dram_bits.sum() == bits
    assert in_dram[1].dram_pj.sum() == pytest.approx(bits * setup.chip.core.dram.energy_pj_per_bit)
    dram_ns = bits / setup.chip.core.dram.bandwidth_bits_per_s * 1e9
    assert in_dram[0].bounds_ns[2] == pytest.approx(dram_ns) and in_dram[0].busy_ns.max() >= dram_ns
    dmas = 10 * model.n_cores * setup.chip.core.cycles.dma_setup
    assert in_dram[0].cycles.sum() == pytest.approx(in_sram[0].cycles.sum() + dmas)
    total = lambda cost: cost.synapse_pj.sum() + cost.neuron_pj.sum()      # noqa: E731
    assert total(in_dram[0]) > total(in_sram[0])


def test_a_head_goes_to_sram_where_it_fits_and_to_dram_where_it_does_not(tmp_path):
    small = run(scenario(word_model(tmp_path / "small", vocab=300, head="chip", embedding="chip")),
                write=False).summary
    assert small["head_at"] == "sram" and small["embedding_at"] == "sram"
    assert small["energy_dram_per_token_j"] == 0
    big = run(scenario(word_model(tmp_path / "big", vocab=20000, head="chip", embedding="chip")), write=False).summary
    assert big["head_at"] == "dram" and big["embedding_at"] == "dram"     # 1.3 MB each, the PEs hold ~0.2 MB
    assert big["energy_dram_per_token_j"] > 0 and big["dram_bytes_per_token"] >= 16 * 4   # the embedding's row
    assert big["ticks_per_token"] == 4                # the head's argmax takes a tick of its own
    assert big["time_read_output_s"] < small["time_per_token_s"]
    assert big["matches_reference"]


def test_weights_too_big_for_the_dram_or_the_pes_are_refused_with_exit_status_2(tmp_path):
    model = word_model(tmp_path / "m", vocab=20000, head="chip")
    data = scenario(model) | {"overrides": {"core.dram.bytes": 1_000_000}}
    with pytest.raises(UserError, match="head's 1.4 MB fit neither") as err:
        run(data, write=False)
    assert err.value.field == "head" and err.value.file.endswith("model.yaml")
    for name, overrides in (("head", {"core.dram.bytes": 1_000_000}), ("layers", {"chip.cores": 1})):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(scenario(model) | {"overrides": overrides}))
        done = subprocess.run([sys.executable, "-m", "neurosim", "run", str(path), "--out", str(tmp_path)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_what_a_host_loop_refuses(tmp_path):
    model = word_model(tmp_path / "m")
    with pytest.raises(UserError, match="expected drive: host_loop") as err:
        run(scenario(model) | {"language": {"prompt_tokens": 2, "generate_tokens": 1}}, write=False)
    assert err.value.field == "language.drive"
    with pytest.raises(UserError, match="fewer than a token needs: 3"):
        run(scenario(model, ticks_per_token=2), write=False)
    with pytest.raises(UserError, match="expected auto or a level") as err:
        run(scenario(model, dvfs="pl9"), write=False)
    assert err.value.field == "language.dvfs"
    with pytest.raises(UserError, match="arm_pe"):
        run(scenario(model) | {"chip": str(REPO / "chips" / "loihi2.yaml")}, write=False)
    with pytest.raises(UserError, match="pace a host loop"):
        run(scenario(model) | {"language": {"ticks_per_token": 4}}, write=False)


def test_the_summary_lines_give_time_energy_and_the_boundary(tmp_path):
    s = run(scenario(word_model(tmp_path / "m")), write=False).summary
    text = "\n".join(summary_lines(s))
    assert "accuracy        not measured: the weights are generated" in text
    for words in ("time per token", "write input", "start", "read output", "host's own work", "energy/token",
                  "PE compute", "SRAM", "DRAM", "NoC", "host link", "PEs idle", "chip baseline", "power boundary"):
        assert words in text, words
