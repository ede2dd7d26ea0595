"""The `gpu_roofline` kind: a GPU as a baseline for language models at batch 1.

Per generated token a GPU reads every weight once from its memory (at ``bytes_per_value`` of its
``precision``) and does two operations per weight (a multiply and an add); a transformer of the
same size also reads its key-value cache, ``2 x layers x d x context`` values, and does
``4 x layers x d x context`` attention operations. The token takes the longer of the memory
traffic at ``memory_bandwidth_bytes_per_s`` and the operations at the peak dense rate, and
costs ``board_power_w`` over that time (the roofline's bound: real kernels reach a fraction of
either peak, so the GPU's time and energy here are lower bounds).
"""

from __future__ import annotations

from dataclasses import dataclass

from neurosim.spec.chip import GpuRooflineSpec


@dataclass(frozen=True)
class GpuToken:
    time_s: float
    energy_j: float
    memory_bound: bool


def token_cost(gpu: GpuRooflineSpec, params: int, layers: int = 0, d: int = 0, context: int = 0) -> GpuToken:
    """One generated token of a model of ``params`` weights (with a key-value cache of ``layers``,
    ``d`` and ``context`` for a transformer)."""
    cache = 2 * layers * d * context
    memory_s = (params + cache) * gpu.bytes_per_value / gpu.memory_bandwidth_bytes_per_s
    compute_s = (2 * params + 4 * layers * d * context) / gpu.peak_ops_per_s[gpu.precision]
    time_s = max(memory_s, compute_s)
    return GpuToken(time_s, time_s * gpu.board_power_w, memory_s >= compute_s)


def model_shape(model) -> tuple[int, int, int]:
    """(weights, layers, d) of a language model as a GPU would run it: every weight dense."""
    from neurosim.zoo.egru import model as egru

    if isinstance(model, egru.Model):
        weights = sum(layer.input_weight.shape[0] * layer.input_weight.shape[1]
                      + layer.recurrent_weight.shape[0] * layer.recurrent_weight.shape[1] for layer in model.layers)
        weights += model.readout_weight.shape[0] * model.readout_weight.shape[1] + model.embedding.size
        return weights, len(model.layers), model.layers[0].units
    weights = sum(layer.weight_ternary.size for layer in model.bitlinears().values()) + model.embedding.size
    return weights, len(model.blocks), model.d


def baseline_summary(gpu_chips: list, model, context: int, energy_per_token_j: float,
                     tokens_per_s: float) -> dict[str, float]:
    """Per GPU: its time and energy per generated token for the same model and for a transformer
    of the same size at ``context`` tokens, and the chip's advantage in each (ratios > 1 favour the
    chip)."""
    weights, layers, d = model_shape(model)
    out: dict[str, float] = {"baseline_weights": float(weights)}
    for chip in gpu_chips:
        same = token_cost(chip.core, weights)
        transformer = token_cost(chip.core, weights, layers, d, context)
        out |= {f"{chip.name}_tokens_per_s": 1.0 / same.time_s, f"{chip.name}_energy_per_token_j": same.energy_j,
                f"{chip.name}_energy_ratio": same.energy_j / energy_per_token_j,
                f"{chip.name}_speed_ratio": tokens_per_s * same.time_s,
                f"{chip.name}_transformer_tokens_per_s": 1.0 / transformer.time_s,
                f"{chip.name}_transformer_energy_per_token_j": transformer.energy_j,
                f"{chip.name}_transformer_energy_ratio": transformer.energy_j / energy_per_token_j}
    return out
