"""neurosim: a discrete-event simulator of neuromorphic chips.

``neurosim.run(path_or_dict)`` runs a scenario and returns its summary and trace path.
"""

__version__ = "0.1.0"


def run(scenario, **kwargs):
    """Run a scenario; see `neurosim.runner.run`."""
    from neurosim.runner import run as _run
    return _run(scenario, **kwargs)
