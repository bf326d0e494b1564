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

Every option, the grid and ``-o DIR`` are checked before anything starts or is written; a
mistake is one ``error:`` line naming the option (or the grid entry) and what is allowed:
``--jobs`` in [1, 1024], ``--memory-limit`` ``auto`` or a size in [256MiB, the RAM],
``--wait`` seconds in [1, 86400], ``--scheduler`` an address ``[tcp://]host:port``;
``--jobs``/``--memory-limit`` (local workers) and ``--scheduler``/``--wait`` (a cluster)
exclude each other, and the options of a run are refused with ``--list`` and
``--report-only``. ``DIR`` must be new, empty or an earlier sweep's folder, so that no file
of the user's is overwritten. ``--report-only`` rebuilds the report from ``DIR/grid.toml``;
a GRID_FILE given with it must be the same grid.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource


def _fail(msg, code: int = 2):
    click.echo(f"error: {' '.join(str(msg).split())}", err=True)
    sys.exit(code)


@click.command("sweep", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("grid_file", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Sweep folder: new, empty or an earlier sweep's; results, report "
                   "(required unless --list).")
@click.option("--jobs", "-j", type=int, default=2, show_default=True,
              help="Local Dask worker processes, 1 to 1024 (one job each at a time).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Use a running Dask scheduler (tcp://host:8786) and its workers "
                   "instead of local ones.")
@click.option("--memory-limit", default="auto", show_default=True,
              help="Memory limit per local worker: auto (RAM / jobs) or a size in "
                   "[256MiB, the RAM], e.g. 4GiB.")
@click.option("--wait", "wait_s", default="60", show_default=True, metavar="SECONDS",
              help="Seconds (1 to 86400) to wait for the scheduler and its first worker "
                   "(with --scheduler).")
@click.option("--report-only", is_flag=True,
              help="Rebuild the report of DIR from its grid.toml and results; run nothing.")
@click.option("--list", "list_points", is_flag=True, help="List the grid's points and exit.")
@click.option("--reuse-stale", is_flag=True,
              help="Count results made by other lnsmadam code as done (default: run those "
                   "again; the old result is kept as <job>.stale.json).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def sweep(ctx, grid_file, out_dir, jobs, scheduler, memory_limit, wait_s, report_only,
          list_points, reuse_stale, quiet):
    """Run the jobs of every point of GRID_FILE (TOML) and report (see module docs)."""
    from ..sweep import engine, report
    from ..sweep.grid import canonical, load

    def given(*names):
        """The options among ``names`` the user typed, as spelt on the command line."""
        return [max(p.opts, key=len) for p in ctx.command.params if p.name in names
                and ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE]

    def refuse(names, why):
        bad = given(*names)
        if bad:
            _fail(f"{', '.join(bad)} {'has' if len(bad) == 1 else 'have'} no effect {why}: "
                  f"leave {'it' if len(bad) == 1 else 'them'} out")

    run_options = ("jobs", "scheduler", "memory_limit", "wait_s", "reuse_stale")
    if report_only:
        refuse(("list_points", *run_options), "with --report-only")
        if out_dir is None:
            _fail("--report-only needs -o DIR")
        try:
            grid = _report_grid(Path(out_dir), grid_file)
            doc = report.build(out_dir, grid)
        except ValueError as e:
            _fail(e)
        _summary(doc, out_dir)
        return
    if list_points:
        refuse(("out_dir", *run_options), "with --list")
    # every option before anything is printed, loaded or started
    try:
        wait_s = engine.check_wait(wait_s)
        if scheduler is not None:
            scheduler = engine.check_scheduler(scheduler)
            refuse(("jobs", "memory_limit"), "with --scheduler (its workers have their own)")
        else:
            refuse(("wait_s",), "without --scheduler")
            jobs = engine.check_jobs(jobs)
            memory_limit = engine.parse_memory_limit(memory_limit)
    except ValueError as e:
        _fail(e)
    if grid_file is None:
        _fail("give a GRID_FILE (or --report-only -o DIR)")
    if not list_points:
        if out_dir is None:
            _fail("-o DIR is required")
        try:
            engine.check_out_dir(out_dir)
        except ValueError as e:
            _fail(e)
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


def _report_grid(out: Path, grid_file):
    """The grid of the sweep folder ``out`` (its ``grid.toml``); ``grid_file``, if given,
    must be the same grid (then its title is kept), else ValueError: the report of ``out``
    is never rebuilt from another grid."""
    import tomllib

    from ..sweep.grid import load

    stored = out / "grid.toml"
    if not stored.is_file():
        raise ValueError(f"-o {out}: no grid.toml there (not a sweep folder)")
    grid = load(stored)
    if grid_file is None:
        return grid
    mine = load(grid_file)
    if tomllib.loads(mine.text) != tomllib.loads(grid.text):
        raise ValueError(f"--report-only: {grid_file} is not the grid of {out} (its "
                         f"grid.toml differs): leave GRID_FILE out to rebuild the report of "
                         f"{out}, or run {grid_file} without --report-only")
    return mine


def _summary(doc: dict, out_dir) -> None:
    out = Path(out_dir)
    files = ["sweep.json", "sweep.csv", *(["sweep_groups.csv"] if doc["groups"] else []),
             "sweep.md", *doc["plots"]]
    click.echo("wrote " + ", ".join(str(out / f) for f in files), err=True)
