"""Float sums in compiled code that equal numpy's to the last bit.

``ndarray.sum()`` of float64 adds pairwise (numpy's ``pairwise_sum``): fewer than 8 values
one after another; up to 128 in eight interleaved partial sums, combined as
``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the rest one by one; more, split
in two halves (the first a multiple of 8 long) summed apart. A trace written by compiled
loops must hold the same sums as one written step by step with numpy, so they add the same way.
"""

from __future__ import annotations

import numba as nb
import numpy as np

BLOCK = 128


@nb.njit(cache=True, nogil=True, inline="always")
def block_sum(a, lo, n):
    """numpy's sum of ``a[lo:lo + n]`` for n <= `BLOCK`."""
    if n < 8:
        total = 0.0
        for i in range(lo, lo + n):
            total += a[i]
        return total
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = lo + 8
    end = lo + n - n % 8
    while i < end:
        r0, r1, r2, r3 = r0 + a[i], r1 + a[i + 1], r2 + a[i + 2], r3 + a[i + 3]
        r4, r5, r6, r7 = r4 + a[i + 4], r5 + a[i + 5], r6 + a[i + 6], r7 + a[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        total += a[i]
        i += 1
    return total


@nb.njit(cache=True, nogil=True)
def float_sum(a):
    """``a.sum()`` of a one-dimensional float64 array, as numpy adds it: the halving above as a
    walk of its tree with a stack (halves to visit, and sums of halves done)."""
    n = a.shape[0]
    if n <= BLOCK:
        return block_sum(a, 0, n)
    lo, size, stage = np.zeros(64, np.int64), np.zeros(64, np.int64), np.zeros(64, np.int64)
    done = np.zeros(64)
    top, n_done = 0, 0
    lo[0], size[0] = 0, n
    while top >= 0:
        if size[top] <= BLOCK:
            done[n_done] = block_sum(a, lo[top], size[top])
            n_done += 1
            top -= 1
        elif stage[top] < 2:
            half = size[top] // 2
            half -= half % 8
            first = stage[top] == 0
            stage[top] += 1
            lo[top + 1] = lo[top] if first else lo[top] + half
            size[top + 1] = half if first else size[top] - half
            stage[top + 1] = 0
            top += 1
        else:
            done[n_done - 2] = done[n_done - 2] + done[n_done - 1]
            n_done -= 1
            top -= 1
    return done[0]
