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

import numba as nb
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
    weights = rng.integers(weight_low, weight_high + 1, n_target * fan_in).astype(np.int8)
    return Csr(*rows_by_source(centre - width // 2, offsets, n_source, weights))


@nb.njit(cache=True, nogil=True)
def rows_by_source(start, offsets, n_source, weights):
    """The CSR arrays (indptr, indices, weights) of the synapses ``(start[t] + offsets[t, k]) %
    n_source -> t`` with weights ``weights[t * fan_in + k]``: one row per source, its targets
    ascending (a stable counting sort of the synapses by source)."""
    n_target, fan_in = offsets.shape
    indptr = np.zeros(n_source + 1, np.int64)
    for t in range(n_target):
        for k in range(fan_in):
            indptr[(start[t] + offsets[t, k]) % n_source + 1] += 1
    for s in range(n_source):
        indptr[s + 1] += indptr[s]
    fill = indptr[:-1].copy()
    targets = np.empty(n_target * fan_in, np.int32)
    ordered = np.empty(n_target * fan_in, weights.dtype)
    for t in range(n_target):
        for k in range(fan_in):
            s = (start[t] + offsets[t, k]) % n_source
            targets[fill[s]] = t
            ordered[fill[s]] = weights[t * fan_in + k]
            fill[s] += 1
    return indptr, targets, ordered
