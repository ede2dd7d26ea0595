"""Fixed-point helpers shared by the neuron kinds (plain numpy; the kernels inline the same rules)."""

from __future__ import annotations

import numpy as np

STATE_BITS = 24
STATE_MAX = (1 << (STATE_BITS - 1)) - 1        # 2^23 - 1
INPUT16_MIN, INPUT16_MAX = -(1 << 15), (1 << 15) - 1
DECAY_SHIFT = 12                                # decays are 12-bit fractions of 4096
ACT_SHIFT = 6                                   # synaptic input and threshold are MSB-aligned by 6 bits


def shift(x: np.ndarray | int, exp: np.ndarray | int):
    """x * 2**exp as an arithmetic shift (right shift rounds toward minus infinity)."""
    x = np.asarray(x, dtype=np.int64)
    if np.ndim(exp) == 0:                       # one exponent: one shift, no select
        exp = int(exp)
        return np.left_shift(x, exp) if exp >= 0 else np.right_shift(x, -exp)
    exp = np.asarray(exp, dtype=np.int64)
    return np.where(exp >= 0, np.left_shift(x, np.maximum(exp, 0)), np.right_shift(x, np.maximum(-exp, 0)))


def decay(x: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """x * factor / 4096 rounded toward zero, as the chip shifts the magnitude."""
    p = x.astype(np.int64) * factor
    return np.sign(p) * (np.abs(p) >> DECAY_SHIFT)


def wrap24(x: np.ndarray) -> np.ndarray:
    """One 24-bit wraparound step, as Lava's bit-accurate LIF applies it (2^23 itself stays)."""
    x = np.where(x > (1 << 23), x - (1 << 24), x)
    return np.where(x <= -(1 << 23), x + (1 << 24), x)


def fix24(x: np.ndarray, saturate: bool) -> np.ndarray:
    """Bring x into 24 bits: saturate to +-(2^23 - 1), or wrap modulo 2^24 (two's complement)."""
    if saturate:
        return np.clip(x, -STATE_MAX, STATE_MAX)
    return ((np.asarray(x, np.int64) + (1 << 23)) & ((1 << 24) - 1)) - (1 << 23)
