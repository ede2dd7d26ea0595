"""Numbers for people: the one formatter lives in `neurosim.traces.units` (a stage that runs may
use too); the analysis modules take it from here."""

from __future__ import annotations

from neurosim.traces.units import PREFIXES, number, percent, prefix_for, si

__all__ = ["PREFIXES", "number", "percent", "prefix_for", "si"]
