"""A run's progress saved on disk, so that ``resume`` continues it to the trace of a run that was
never stopped."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from neurosim.runs.setup import Setup

CHECKPOINTS = Path(".neurosim") / "checkpoints"


class Checkpoint:
    """A run's progress, kept in ``.neurosim/checkpoints/`` under the scenario's name and a hash of
    everything that determines the run (the scenario, chip and model texts, seed and overrides,
    the inputs): a spiking run's records at a sample's end as arrays (``.npz``: the engine starts
    each sample afresh, so nothing else is needed), a language run's whole state (``.pkl``)."""

    def __init__(self, setup: Setup, inputs: np.ndarray, timesteps: int, suffix: str = ".npz"):
        digest = hashlib.sha256()
        for part in (setup.scenario_text, setup.chip_text, setup.model_text, repr(setup.scenario.seed),
                     repr(sorted(setup.scenario.overrides.items())), repr(timesteps)):
            digest.update(part.encode())
        digest.update(np.ascontiguousarray(inputs).tobytes())
        self.key = digest.hexdigest()[:20]
        self.path = CHECKPOINTS / f"{setup.scenario.name}-{self.key}{suffix}"

    def _partial(self) -> Path:
        """Where a save is written before it replaces the last one (a save cut short leaves that intact)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path.with_name(f".{self.path.name}.partial")

    def save_state(self, state: dict) -> None:
        """A language run's whole state (its own pickle: written and read by this class only)."""
        tmp = self._partial()
        with open(tmp, "wb") as fh:
            pickle.dump({"key": self.key, "state": state}, fh)
        tmp.replace(self.path)

    def load_state(self) -> dict | None:
        """The state of the last `save_state`, or None when there is none for this run."""
        if not self.path.is_file():
            return None
        try:
            with open(self.path, "rb") as fh:
                saved = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError):
            return None
        return saved["state"] if saved.get("key") == self.key else None

    def save_arrays(self, samples_done: int, arrays: dict[str, np.ndarray]) -> None:
        """A spiking run's records after ``samples_done`` samples."""
        tmp = self._partial()
        with open(tmp, "wb") as fh:
            np.savez(fh, _key=np.array(self.key), _samples_done=np.array(samples_done), **arrays)
        tmp.replace(self.path)

    def load_arrays(self) -> tuple[int, dict[str, np.ndarray]] | None:
        """The samples done and the records of the last `save_arrays`, or None when there is none
        for this run."""
        if not self.path.is_file():
            return None
        with np.load(self.path, allow_pickle=False) as saved:
            if str(saved["_key"]) != self.key:
                return None
            arrays = {k: saved[k] for k in saved.files if not k.startswith("_")}
            return int(saved["_samples_done"]), arrays

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
