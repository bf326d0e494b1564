"""Design-space sweeps: a grid file expanded to points, each point's jobs run on Dask.

* :mod:`.grid`: the grid file (TOML: ``jobs``, ``[fixed]``, ``[axes]``, ``[[cases]]``),
  validated against the jobs' parameters and expanded to :class:`~.grid.Point` s, each keyed
  by a hash of its canonical config;
* :mod:`.jobs`: the job registry, one module per job kind, each a plain function
  ``run(config, workdir) -> dict`` over the project's Python API;
* :mod:`.engine`: runs the points' jobs on a Dask ``LocalCluster`` or an existing scheduler,
  writes each result atomically under ``DIR/points/<key>/`` and skips what is done;
* :mod:`.report`: ``DIR/sweep.json``, ``sweep.csv``, ``sweep.md`` and the Pareto plots,
  rebuilt from ``DIR`` alone.

``lnsmadam sweep`` (:mod:`lnsmadam.cli.sweep`) is the command line on top of these.
"""
