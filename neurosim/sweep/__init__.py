"""Parameter sweeps: one base scenario, many points, run on Dask, gathered into one table.

``points`` reads a sweep file and makes its points' scenarios; ``cluster`` runs them and keeps the table.

A sweep file (``neurosim sweep sweep.yaml``)::

    name: digits_chips
    base: scenarios/quickstart.yaml          # the scenario every point starts from
    grid:                                    # every combination of these values
      chip: [chips/loihi2.yaml, chips/spinnaker2.yaml]
      timesteps: [4, 8, 12, 16]
      overrides.core.energy_pj.synop: [5.0, 6.7]     # a chip field, as a scenario's overrides
    random:                                  # and/or points drawn from the seed
      samples: 10
      seed: 0
      fields:
        input.samples: {int: [10, 50]}                # int | uniform | log_uniform: [lo, hi]; or choices: [...]
    out: traces/sweeps/digits_chips          # default: traces/sweeps/<name>
    traces: true                             # write each point's trace (false: the table only)

A field is a dotted path into the scenario (``chip``, ``timesteps``, ``input.samples``,
``mapping.placement``, ``model``...) or ``overrides.<chip field>``. Points run as Dask tasks on a
``LocalCluster`` (or an existing cluster's scheduler); each finished point is added to the table
at once (``<out>/<name>.csv`` and ``<out>/<name>.h5``: a row per point, its fields, ``status``
``ok`` or ``error`` with the error, the trace, and every summary attribute as a column), so an
interrupted sweep keeps what it finished, and running it again skips the points already done
(a point is known by a hash of its fields and of everything else that determines it: the base
scenario, the chip, model and input files' contents, neurosim's version; `points.point_context`).
A point that fails is recorded and the others go on. The local cluster listens on 127.0.0.1 and
starts no dashboard unless ``run_sweep(..., dashboard=ADDRESS)`` asks for one.
"""

from neurosim.sweep.cluster import SweepResult, run_sweep
from neurosim.sweep.points import Sweep, apply_point, load_sweep, point_id

__all__ = ["Sweep", "SweepResult", "apply_point", "load_sweep", "point_id", "run_sweep"]
