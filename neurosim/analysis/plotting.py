"""Matplotlib without a screen, and the one way figures are laid out and written (PNG, PDF or SVG)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                   # figures are files: no display is needed or wanted
matplotlib.rcParams["svg.hashsalt"] = "neurosim"      # an SVG's element ids: the same figure, the same file
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import Formatter, NullFormatter  # noqa: E402

from neurosim.analysis.units import si  # noqa: E402
from neurosim.errors import UserError  # noqa: E402
from neurosim.traces.trace import write_atomically  # noqa: E402

__all__ = ["FORMATS", "PALETTE", "SIFormatter", "check_format", "distinct_digits", "image_bytes", "plt", "save", "si_axis"]

FORMATS = ("png", "pdf", "svg")
# Paul Tol's bright scheme: distinct for colour-blind readers and in greyscale print
PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")
METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
            "svg": {"Creator": None, "Date": None}}       # no dates or versions: the same trace, the same file


def check_format(fmt: str) -> str:
    """A figure format named by a user: one of `FORMATS`."""
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise UserError(f"figure format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def image_bytes(fig, fmt: str = "png") -> bytes:
    """Lay the figure out and return it as a file's bytes in ``fmt``; the figure is closed."""
    fmt = check_format(fmt)
    try:
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight", metadata=METADATA[fmt])
        return buffer.getvalue()
    finally:
        plt.close(fig)


def save(fig, target: str | Path) -> Path:
    """Lay the figure out and write it to ``target`` in the format its suffix names (PNG, PDF or
    SVG; its folder made if need be), whole or not at all; the figure is closed."""
    target = Path(target)
    return write_atomically(target, image_bytes(fig, target.suffix or "png"), "a figure")


class SIFormatter(Formatter):
    """Tick labels written with `si`, with as many significant digits (3 to 6) as it takes for
    neighbouring ticks to read differently."""

    def __init__(self, unit: str, digits: int = 3):
        self.unit, self.digits = unit, digits

    def __call__(self, value, pos=None) -> str:
        return si(value, self.unit, self.digits) if value else "0"

    def format_ticks(self, values) -> list[str]:
        shown = [v for v in values if v]
        for self.digits in range(3, 7):
            labels = [self(v) for v in values]
            if len({self(v) for v in shown}) == len(set(shown)):
                return labels
        return labels


def si_axis(axis, unit: str, digits: int = 3) -> None:
    """Label an axis's ticks with `si` (``20 µs``, ``1.5 mJ``) instead of powers of ten."""
    axis.set_major_formatter(SIFormatter(unit, digits))
    axis.set_minor_formatter(NullFormatter())


def distinct_digits(values, least: int = 3) -> int:
    """Significant digits (``least`` to 6) that tell the smallest and largest of ``values`` apart."""
    lo, hi = float(min(values)), float(max(values))
    if hi == lo or not (math.isfinite(lo) and math.isfinite(hi)):
        return least
    return int(min(6, max(least, math.ceil(math.log10(max(abs(lo), abs(hi)) / (hi - lo))) + 2)))
