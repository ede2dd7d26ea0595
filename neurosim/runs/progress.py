"""Where a run is: for the message of an interruption (Ctrl-C), the progress shown on a terminal
and the time of each phase that ``neurosim -v`` logs."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from tqdm import tqdm

log = logging.getLogger("neurosim")
TICK_S = 0.5           # how often a phase's line on the terminal shows its time


@dataclass
class Progress:
    """Where the run under way is, in words (``"sample 3 of 10, timestep 7 of 20"``); `run` names
    it in the `neurosim.errors.Interrupted` it raises on Ctrl-C. ``shown``: phases show on the
    terminal (a run with its progress on)."""

    at: str = "the start"
    shown: bool = False


PROGRESS = Progress()      # one run at a time per process: the runs set it as they go


def progress_bar(total: int, initial: int, desc: str, unit: str, enabled: bool) -> tqdm:
    """A bar over a run's samples or tokens, from ``initial`` (a resumed run's); shown only when
    ``enabled``, and gone once closed."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, leave=False)


class _Clock:
    """A phase's line on the terminal, its name and the time it has taken so far, kept current by
    a thread of its own until `stop`."""

    def __init__(self, name: str):
        self.bar = tqdm(total=None, desc=name, bar_format="{desc}: {elapsed}", leave=False)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tick, name="neurosim-progress", daemon=True)
        self.thread.start()

    def _tick(self) -> None:
        while not self.done.wait(TICK_S):
            self.bar.refresh()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self.bar.close()


@contextmanager
def phase(name: str, shown: bool = True) -> Iterator[None]:
    """A phase of a run (loading, mapping, the run, the reference, scoring, writing): where the run
    is while it lasts, on the terminal (when the run shows its progress and ``shown``) a line with
    its name and time so far, and with ``neurosim -v`` a line saying how long it took."""
    PROGRESS.at = name
    start = time.perf_counter()
    clock = _Clock(name) if shown and PROGRESS.shown else None
    try:
        yield
    finally:
        if clock is not None:
            clock.stop()
    log.info("%s: %.2f s", name, time.perf_counter() - start)


class TokenPhases:
    """A language run's progress over its tokens' outputs, in two phases: ``prefill`` until the
    prompt's last token is out, then ``generation``. Each is a bar on the terminal (with
    ``enabled``) and, with ``neurosim -v``, a line with its time; `update` counts an output."""

    def __init__(self, prompt: int, total: int, done: int, desc: str, enabled: bool):
        self.prompt, self.total, self.done, self.desc, self.enabled = prompt, total, done, desc, enabled
        self.bar: tqdm | None = None
        self.name, self.start = "", 0.0
        self._enter("prefill" if done < prompt else "generation")

    def _enter(self, name: str) -> None:
        self._leave()
        first, last = (0, self.prompt) if name == "prefill" else (self.prompt, self.total)
        self.name, self.start = name, time.perf_counter()
        self.bar = tqdm(total=last - first, initial=max(self.done - first, 0), desc=f"{self.desc}: {name}",
                        unit="token", disable=not self.enabled, leave=False)

    def _leave(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            log.info("%s: %.2f s", self.name, time.perf_counter() - self.start)

    def update(self) -> None:
        self.done += 1
        self.bar.update()
        if self.done == self.prompt and self.done < self.total:
            self._enter("generation")

    def close(self) -> None:
        self._leave()
