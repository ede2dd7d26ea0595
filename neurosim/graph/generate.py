"""Synapses drawn at load time from a seed, for models used in performance studies.

Target neuron ``j`` of a layer of ``n_target`` sits at relative place ``j / n_target``; its
``fan_in`` sources come from a window of ``window`` source neurons centred on the same
relative place in the source layer (wrapping around its ends), one source from each of
``fan_in`` equal strata of the window, so that no source repeats. Weights are uniform
integers in ``[weight_low, weight_high]``. Each projection draws from its own stream,
``numpy.random.default_rng([seed, projection index])``, so the same seed gives the same
synapses on every machine.
"""

from __future__ import annotations

import numpy as np

from neurosim.graph.graph import Csr


def local_sparse(n_source: int, n_target: int, fan_in: int, window: int | None, weight_low: int, weight_high: int,
                 seed: int, index: int) -> Csr:
    """A CSR matrix (one row per source) of ``fan_in`` synapses per target, drawn as the module says."""
    rng = np.random.default_rng([seed, index])
    width = n_source if window is None else min(window, n_source)
    stratum = width // fan_in
    centre = (np.arange(n_target, dtype=np.int64) * n_source) // n_target
    offsets = np.arange(fan_in, dtype=np.int64) * stratum + rng.integers(0, stratum, (n_target, fan_in))
    sources = ((centre[:, None] - width // 2 + offsets) % n_source).ravel()
    targets = np.repeat(np.arange(n_target, dtype=np.int64), fan_in)
    weights = rng.integers(weight_low, weight_high + 1, n_target * fan_in).astype(np.int8)
    order = np.argsort(sources, kind="stable")          # rows by source, targets ascending within a row
    indptr = np.concatenate([[0], np.cumsum(np.bincount(sources, minlength=n_source))]).astype(np.int64)
    return Csr(indptr, targets[order].astype(np.int32), weights[order])
