"""``lnsmadam sweep``: run a grid of configurations through jobs on Dask, resumable.

::

    lnsmadam sweep bench/grids/boards.toml -o out/sweep/boards           # 2 local workers
    lnsmadam sweep GRID.toml --jobs 4 --memory-limit 6GiB -o DIR
    lnsmadam sweep GRID.toml --scheduler tcp://host:8786 -o DIR          # a Dask cluster
    lnsmadam sweep --report-only -o DIR                                  # rebuild the report
    lnsmadam sweep GRID.toml --list                                      # show the points

The grid file format and the job parameters: :mod:`lnsmadam.sweep.grid`,
:mod:`lnsmadam.sweep.jobs`. Results go to ``DIR/points/<key>/``; the combined report to
``DIR/sweep.json``, ``sweep.csv``, ``sweep.md`` and the plots. Running the same command
again skips what is done by the same lnsmadam code (results of other code are run again
unless ``--reuse-stale``). Exit status: 0 when every job succeeded, 1 when some failed,
2 for a bad grid or option, 130 on Ctrl-C.
"""

from __future__ import annotations

import sys

import click


def _fail(msg, code: int = 2):
    click.echo(f"error: {' '.join(str(msg).split())}", err=True)
    sys.exit(code)


@click.command("sweep", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("grid_file", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Sweep folder: results, report (required unless --list).")
@click.option("--jobs", "-j", type=int, default=2, show_default=True,
              help="Local Dask worker processes (one job each at a time).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Use a running Dask scheduler (tcp://host:8786) and its workers "
                   "instead of local ones.")
@click.option("--memory-limit", default="auto", show_default=True,
              help="Memory limit per local worker (e.g. 4GiB; auto = RAM / jobs).")
@click.option("--wait", "wait_s", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the scheduler and its first worker.")
@click.option("--report-only", is_flag=True,
              help="Rebuild the report of DIR from its grid.toml and results; run nothing.")
@click.option("--list", "list_points", is_flag=True, help="List the grid's points and exit.")
@click.option("--reuse-stale", is_flag=True,
              help="Count results made by other lnsmadam code as done (default: run those "
                   "again; the old result is kept as <job>.stale.json).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sweep(grid_file, out_dir, jobs, scheduler, memory_limit, wait_s, report_only,
          list_points, reuse_stale, quiet):
    """Run the jobs of every point of GRID_FILE (TOML) and report (see module docs)."""
    from ..sweep import engine, report
    from ..sweep.grid import canonical, load

    if report_only:
        if out_dir is None:
            _fail("--report-only needs -o DIR")
        try:
            doc = report.build(out_dir, load(grid_file) if grid_file else None)
        except ValueError as e:
            _fail(e)
        _summary(doc, out_dir)
        return
    if grid_file is None:
        _fail("give a GRID_FILE (or --report-only -o DIR)")
    try:
        grid = load(grid_file)
    except ValueError as e:
        _fail(e)
    if list_points:
        for p in grid.points:
            click.echo(f"{p.key}  {canonical(p.config)}")
        click.echo(f"{len(grid.points)} points x {len(grid.jobs)} jobs "
                   f"({', '.join(grid.jobs)})", err=True)
        return
    if out_dir is None:
        _fail("-o DIR is required")
    where = scheduler or f"{jobs} local worker{'s' if jobs != 1 else ''}"
    click.echo(f"sweep {grid.title}: {len(grid.points)} points x {', '.join(grid.jobs)} "
               f"on {where} -> {out_dir}", err=True)
    try:
        s = engine.run(grid, out_dir, jobs=jobs, scheduler=scheduler,
                       memory_limit=memory_limit, wait_s=wait_s, progress=not quiet,
                       reuse_stale=reuse_stale)
    except KeyboardInterrupt:
        click.echo("interrupted: finished jobs are kept; run the same command again to "
                   "resume", err=True)
        report.build(out_dir, grid)
        sys.exit(130)
    except ValueError as e:
        _fail(e)
    if s["stale"]:
        click.echo(f"{s['stale']} results were made by other lnsmadam code than this "
                   f"({s['code']}): " + ("reused (--reuse-stale)" if reuse_stale else
                                         "run again, the old ones kept as <job>.stale.json"),
                   err=True)
    click.echo(f"{s['ran']} jobs run, {s['skipped']} already done, {s['failed']} failed "
               f"({s['seconds']:.0f} s)", err=True)
    doc = report.build(out_dir, grid)
    _summary(doc, out_dir)
    if s["failed"]:
        sys.exit(1)


def _summary(doc: dict, out_dir) -> None:
    from pathlib import Path
    out = Path(out_dir)
    files = ["sweep.json", "sweep.csv", *(["sweep_groups.csv"] if doc["groups"] else []),
             "sweep.md", *doc["plots"]]
    click.echo("wrote " + ", ".join(str(out / f) for f in files), err=True)
