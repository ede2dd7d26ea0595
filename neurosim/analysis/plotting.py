"""Matplotlib without a screen, and the one way figures are written."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")                   # figures are files: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save"]


def save(fig, target: str | Path) -> Path:
    """Lay the figure out, write it as a PNG (its folder made if need be) and close it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(target, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return target
