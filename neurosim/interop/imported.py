"""A model imported from another tool's file (NIR, lava-dl netx): the graph the chip runs, a
float reference of the file's own model, and what converting it to the chip's fixed point cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from neurosim.graph.graph import Graph


@dataclass(frozen=True)
class ConversionError:
    """How far a converted quantity of one population (or projection) is from the float one:
    relative errors ``|fixed - float| / |float|`` over its nonzero values."""

    name: str                   # the population or projection
    quantity: str               # weights, du, dv, threshold, bias, delay
    max_rel_error: float
    mean_rel_error: float
    values: int                 # how many values were compared


def relative_errors(name: str, quantity: str, fixed: np.ndarray, exact: np.ndarray) -> ConversionError:
    fixed, exact = np.asarray(fixed, np.float64).ravel(), np.asarray(exact, np.float64).ravel()
    keep = exact != 0
    if not keep.any():
        return ConversionError(name, quantity, 0.0, 0.0, 0)
    err = np.abs(fixed[keep] - exact[keep]) / np.abs(exact[keep])
    return ConversionError(name, quantity, float(err.max()), float(err.mean()), int(keep.sum()))


@dataclass
class FloatRun:
    """What the float reference gives for a batch of samples."""

    events: dict[str, np.ndarray]      # per population: events per sample and step [S, T]
    readout: np.ndarray                # [S, n_readout]: spike counts or the final membrane, as the chip reads


@dataclass
class ImportedModel:
    graph: Graph
    float_reference: Callable[[np.ndarray, int], FloatRun]    # (inputs [S, T, n] or [S, n], timesteps)
    conversion: list[ConversionError] = field(default_factory=list)
    format: str = ""                   # "nir" or "netx"
    source: str = ""                   # the file
    feed_forward: bool = True          # no recurrent edge
    readout_scale: float | None = None     # the file's units of one unit of the readout's v or sigma
