"""neurosim: a discrete-event simulator of neuromorphic chips.

``neurosim.run(path_or_dict)`` runs a scenario and returns its summary, its trace path and the
trace; ``neurosim.read_trace(path)`` reads a trace written before.
"""

__version__ = "0.1.0"


def run(scenario, **kwargs):
    """Run a scenario; see `neurosim.runs.run`."""
    from neurosim.runs import run as _run
    return _run(scenario, **kwargs)


def run_chips(scenario, **kwargs):
    """Run a scenario on each chip it names and compare them; see `neurosim.analysis.chips.run_chips`."""
    from neurosim.analysis.chips import run_chips as _run_chips
    return _run_chips(scenario, **kwargs)


def read_trace(path):
    """Read a trace file whole: its meta, summary, groups and their attributes; see
    `neurosim.traces.trace.read_trace` and ``traces/README.md``."""
    from neurosim.traces.trace import read_trace as _read_trace
    return _read_trace(path)
