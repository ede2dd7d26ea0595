"""Runs: a scenario set up, run spike by spike (spiking, language and pipeline runs), recorded and
written as a trace. ``run`` is the entry point; the rest is what tools and tests build on.

Modules: `setup` (the scenario loaded, checked and mapped; its inputs), `runner` (`run`: which
kind of run, and the trace), `spiking`, `language` and `pipeline` (the kinds of run),
`recorder` (what a run keeps of each step), `scoring` (predictions, accuracy, the reference),
`checkpoint` and `progress` (where a run is, saved and in words).
"""

from neurosim.runs.runner import run
from neurosim.runs.scoring import run_reference, step_input
from neurosim.runs.setup import RunResult, Setup, prepare

__all__ = ["RunResult", "Setup", "prepare", "run", "run_reference", "step_input"]
