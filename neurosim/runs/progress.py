"""Where a run is: for the message of an interruption (Ctrl-C) and for the progress bar."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from tqdm import tqdm

log = logging.getLogger("neurosim")


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


@contextmanager
def phase(name: str) -> Iterator[None]:
    """A phase of a run (loading, mapping, the run, the reference, writing): where the run is
    while it lasts, and with ``neurosim -v`` a line saying how long it took."""
    PROGRESS.at = name
    start = time.perf_counter()
    yield
    log.info("%s: %.2f s", name, time.perf_counter() - start)
