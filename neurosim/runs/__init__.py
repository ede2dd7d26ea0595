"""Runs: a scenario set up, run spike by spike (spiking, language and pipeline runs), recorded and
written as a trace. ``run`` is the entry point; the rest is what tools and tests build on."""

from neurosim.runs.runner import RunResult, Setup, prepare, run, run_reference, step_input

__all__ = ["RunResult", "Setup", "prepare", "run", "run_reference", "step_input"]
