"""Event streams made from the digits as N-MNIST was made from MNIST (Orchard et al. 2015): the image
moves over a sensor along three short saccades, and each pixel sends an ON or OFF event when its
log intensity has changed by a threshold since its last event.

Deterministic: the same split and timesteps give the same events. Per image:

- the 8x8 digit (values 0..16) is scaled to 20x20 by bilinear interpolation (MNIST's digits
  fill 20x20 of their 28x28 frame) and placed near the centre of a 34x34 sensor (N-MNIST's
  size), intensity ``I = value / 16``;
- over ``timesteps`` steps the image moves along a triangle of three saccades, from (0, 0) to
  (1.5, 3) to (3, 0) and back to (0, 0) pixels (x right, y down), a third of the steps each,
  sampled bilinearly at its sub-pixel position;
- a pixel's log intensity ``L = log(I + 0.1)`` is compared with its reference, at first the
  value it starts from: when ``L - ref >= 0.3`` the pixel sends an ON event and its reference
  rises by as many thresholds as were crossed; when ``ref - L >= 0.3``, an OFF event (at most one
  event per pixel and polarity in a step, as a binary spike).

The stream is ``[samples, timesteps, 2 * 34 * 34]``, channel-major (polarity, y, x) with ON as
channel 0 and OFF as channel 1. (The NIR paper's N-MNIST network, ``cnn_sinabs.nir``, classifies
54 % of the first 128 test digits in this order and 41 % with the channels swapped, in its float
model at 60 steps.)
"""

from __future__ import annotations

import numpy as np

SENSOR = 34
DIGIT = 20
THRESHOLD = 0.3
EPSILON = 0.1
SACCADES = np.array([(0.0, 0.0), (1.5, 3.0), (3.0, 0.0), (0.0, 0.0)])     # (x, y) vertices, pixels


def _bilinear(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``images`` [N, h, w] sampled at float coordinates (zero outside), [N, len(ys), len(xs)]."""
    n, h, w = images.shape
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    fy, fx = ys - y0, xs - x0
    padded = np.zeros((n, h + 2, w + 2))
    padded[:, 1:-1, 1:-1] = images

    def at(yy, xx):
        yy, xx = np.clip(yy + 1, 0, h + 1), np.clip(xx + 1, 0, w + 1)
        return padded[:, yy[:, None], xx[None, :]]

    return (at(y0, x0) * ((1 - fy)[:, None] * (1 - fx)[None, :]) + at(y0, x0 + 1) * ((1 - fy)[:, None] * fx[None, :])
            + at(y0 + 1, x0) * (fy[:, None] * (1 - fx)[None, :]) + at(y0 + 1, x0 + 1) * (fy[:, None] * fx[None, :]))


def path(timesteps: int) -> np.ndarray:
    """The image's offset (x, y) in each step: the three saccades, a third of the steps each."""
    legs = np.array_split(np.arange(timesteps), 3)
    out = np.zeros((timesteps, 2))
    for k, steps in enumerate(legs):
        if len(steps):
            frac = (np.arange(len(steps)) + 1) / len(steps)
            out[steps] = SACCADES[k] + frac[:, None] * (SACCADES[k + 1] - SACCADES[k])
    return out


def digit_events(images: np.ndarray, timesteps: int) -> np.ndarray:
    """Events of 8x8 ``images`` [N, 64] (values 0..16) over ``timesteps`` steps, uint8
    ``[N, timesteps, 2 * 34 * 34]`` (see the module's docstring)."""
    images = np.asarray(images, np.float64).reshape(-1, 8, 8) / 16.0
    n = len(images)
    scale = 8 / DIGIT
    grid = (np.arange(DIGIT) + 0.5) * scale - 0.5
    digits = np.zeros((n, SENSOR, SENSOR))
    lo = (SENSOR - DIGIT) // 2 - 2                 # leaves room for the saccades' 3 pixels
    digits[:, lo:lo + DIGIT, lo:lo + DIGIT] = _bilinear(images, grid, grid)
    coords = np.arange(SENSOR, dtype=np.float64)
    ref = np.log(digits + EPSILON)
    events = np.zeros((n, timesteps, 2, SENSOR, SENSOR), np.uint8)
    for t, (dx, dy) in enumerate(path(timesteps)):
        level = np.log(_bilinear(digits, coords - dy, coords - dx) + EPSILON)
        up = np.floor((level - ref) / THRESHOLD)
        down = np.floor((ref - level) / THRESHOLD)
        on, off = up >= 1, down >= 1
        events[:, t, 0] = on
        events[:, t, 1] = off
        ref = ref + np.where(on, up, 0) * THRESHOLD - np.where(off, down, 0) * THRESHOLD
    return events.reshape(n, timesteps, 2 * SENSOR * SENSOR)
