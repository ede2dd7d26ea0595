"""Numbers for people: the one formatter of every figure neurosim prints or draws."""

from __future__ import annotations

import math

PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""),
            (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"))


def si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` in ``unit`` with an SI prefix and ``digits`` significant digits: 1.23e-5 J is
    ``12.3 µJ``, 2.5e9 b/s is ``2.5 Gb/s``. Zero, NaN and infinities are written as they are."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".rstrip()
    magnitude = abs(value)
    factor, prefix = PREFIXES[0]
    for f, p in PREFIXES:
        if magnitude >= f * (1 - 0.5 * 10.0 ** -digits):      # 999.96 rounds up into the next prefix
            factor, prefix = f, p
    text = f"{value / factor:.{digits}g}"
    if "e" in text:                    # beyond the prefixes (below 1 f or from 1000 T): plain scientific
        text = f"{value:.{digits}g}"
        prefix = ""
    return f"{text} {prefix}{unit}".rstrip()
