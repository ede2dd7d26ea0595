"""Numbers for people: the one formatter of every figure neurosim prints or draws, and the unit of
each ``/summary`` attribute of a trace (read from its name, as ``traces/README.md`` names them).

It sits with the traces, the first stage whose figures people read, so that a run's result
(`neurosim.runs`) and the analysis after it format numbers the same way.
"""

from __future__ import annotations

import math
from typing import Any

PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""),
            (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"))


def si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` in ``unit`` with an SI prefix and ``digits`` significant digits: 1.23e-5 J is
    ``12.3 µJ``, 2.5e9 b/s is ``2.5 Gb/s``. Zero, NaN and infinities are written as they are."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".rstrip()
    factor, prefix = prefix_for(value)
    text = f"{value / factor:.{digits}g}"
    if abs(float(text)) >= 1000 and factor < PREFIXES[-1][0]:    # 999.96 rounds up into the next prefix
        factor, prefix = next((f, p) for f, p in PREFIXES if f > factor)
        text = f"{value / factor:.{digits}g}"
    if "e" in text:                    # beyond the prefixes (below 1 f or from 1000 T): plain scientific
        text = f"{value:.{digits}g}"
        prefix = ""
    return f"{text} {prefix}{unit}".rstrip()


def prefix_for(value: float) -> tuple[float, str]:
    """The SI prefix ``value`` is written with: its factor and symbol (1.2e-5 gives 1e-6, "µ")."""
    magnitude = abs(float(value))
    factor, prefix = PREFIXES[0]
    for f, p in PREFIXES:
        if magnitude >= f:
            factor, prefix = f, p
    return factor, prefix


def percent(fraction: float, digits: int = 3) -> str:
    """A fraction as a percentage with ``digits`` significant digits: 0.979 is ``97.9%``, 0.00025
    is ``0.025%`` (never a bare ``0.0%`` for a part that is not zero)."""
    fraction = float(fraction)
    if fraction == 0 or not math.isfinite(fraction):
        return f"{100 * fraction:g}%"
    return f"{100 * fraction:.{digits}g}%"


def number(value: float, digits: int = 3) -> str:
    """A plain count or rate: whole and with thousands separators from 100 up (``29,219``),
    ``digits`` significant digits below (``66.6``)."""
    value = float(value)
    if not math.isfinite(value):
        return f"{value:g}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"


# Summary attributes that are fractions (shares, rates, relative errors), by name or name part.
FRACTIONS = ("accuracy", "sparsity", "occupancy", "agreement", "decisions_equal", "rel_error", "steps_overrun")
FRACTION_PREFIXES = ("steps_bound_by_", "layers_bound_by_", "dvfs_share_", "time_share_", "event_rate_", "spike_rate_")
UNITS = (("_j", "J"), ("_w", "W"), ("_s", "s"), ("_hz", "Hz"), ("_bits_per_inference", "b"))   # name ending -> unit


def summary_value(key: str, value: Any) -> str:
    """A ``/summary`` attribute's value for people, in the unit its name gives (`traces/README.md`):
    ``energy_per_inference_j`` 6.86e-05 is ``68.6 µJ``, ``accuracy`` 0.9944 is ``99.4%``,
    ``tokens_per_s`` 3913.2 is ``3,913 tokens/s``, ``a100_energy_ratio`` 3.2 is ``3.2x``."""
    if hasattr(value, "item"):                 # a numpy scalar
        value = value.item()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return "n/a"
    if key.endswith("_ratio"):
        return f"{value:.3g}x"
    if key.endswith("tokens_per_s"):
        return f"{number(value)} tokens/s"
    if key.endswith("bits_per_char"):
        return f"{value:.4f} bits/char"
    if key.startswith(FRACTION_PREFIXES) or any(part in key for part in FRACTIONS):
        return percent(value)
    unit = next((u for ending, u in UNITS if key.endswith(ending)), None)
    return si(value, unit) if unit is not None else number(value)
