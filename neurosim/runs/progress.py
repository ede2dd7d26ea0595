"""Where a run is: for the message of an interruption (Ctrl-C) and for the progress bar."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm


@dataclass
class Progress:
    """Where the run under way is, in words (``"sample 3 of 10, timestep 7 of 20"``); `run` names
    it in the `neurosim.errors.Interrupted` it raises on Ctrl-C."""

    at: str = "the start"


PROGRESS = Progress()      # one run at a time per process: the runs set it as they go


def progress_bar(total: int, initial: int, desc: str, unit: str, enabled: bool) -> tqdm:
    """A bar over a run's samples or tokens, from ``initial`` (a resumed run's); shown only when
    ``enabled``, and gone once closed."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, leave=False)
