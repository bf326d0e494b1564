"""``lnsmadam prove``: formal proofs of the hardware blocks with SymbiYosys (from PyPI).

::

    lnsmadam prove mac --lanes 8            # the dot-product unit at one configuration
    lnsmadam prove update --pipeline 6 --runtime-lr
    lnsmadam prove all                      # every block at two or three sizes
    lnsmadam prove ci                       # the set the test suite runs
    lnsmadam prove mutants                  # injected bugs: each must fail

Each job prints one line (PASS/FAIL/UNKNOWN/TIMEOUT, mode and depth, solver, time, the
failing properties and the counterexample's path); the last line is ``N proved, N
failed`` and the exit status is 1 if any job failed (for ``mutants``: if any mutant was
*not* caught). Jobs run in ``$LNSMADAM_FORMAL_DIR`` (default ``formal/`` in the user
cache, ``$LNSMADAM_CACHE``), never in the current directory; a failing job's directory
is kept. ``docs/verification.md`` lists every property.

Refused with one ``error:`` line (exit status 2) before any job runs: an option that does
not apply to BLOCK (``prove mac --sizes ...``; any block option with ``all``, ``ci``,
``mutants``), a ``--match`` that selects no job (the error lists the ids), a ``--timeout``
that is not a finite number of seconds in (0, 86400], and every out-of-range block option.
"""

from __future__ import annotations

import json
import sys
import time

import click

_BLOCK_CHOICES = ["mac", "int8-mac", "update", "softmax", "shuffle", "link", "trainer",
                  "all", "ci", "mutants"]


#: parameter names in the blocks' checks -> this command's options
_OPTIONS = {"bits": "--bits", "gamma": "--gamma", "frac_bits": "--gamma", "lanes": "--lanes",
            "acc_bits": "--acc-bits", "window": "--window", "lut_frac": "--lut-frac",
            "pipeline": "--pipeline", "out_pipeline": "--out-pipeline", "n_max": "--n-max",
            "sizes": "--sizes", "n_records": "--max-records", "mac_pipeline": "--pipeline",
            "n_out": "--n-out", "timeout": "--timeout"}

#: the block options (parameter names) -> the blocks they apply to; any other block (and
#: ``all``, ``ci``, ``mutants``, whose jobs are fixed) refuses them
_APPLIES = {"bits": ("mac",), "gamma": ("mac",), "lanes": ("mac", "int8-mac", "trainer"),
            "acc_bits": ("mac", "int8-mac"), "window": ("mac",), "lut_frac": ("mac",),
            "saturate": ("mac", "int8-mac"), "pipeline": ("mac", "int8-mac", "update"),
            "out_pipeline": ("mac",), "runtime_lr": ("update",), "n_out": ("softmax",),
            "n_max": ("shuffle",), "sizes": ("trainer",), "max_records": ("trainer",),
            "no_data": ("mac", "int8-mac")}

#: ``--timeout`` range in seconds: (0, one day]
TIMEOUT_MAX = 86400


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("block", type=click.Choice(_BLOCK_CHOICES), default="ci")
@click.option("--bits", type=int, default=8, show_default=True, help="mac: LNS word width.")
@click.option("--gamma", type=int, default=8, show_default=True, help="mac: base factor.")
@click.option("--lanes", type=int, default=None,
              help="mac, int8-mac, trainer: lanes (default 1).")
@click.option("--acc-bits", type=int, default=32, show_default=True,
              help="mac, int8-mac: accumulator width.")
@click.option("--window", type=int, default=16, show_default=True, help="mac: window.")
@click.option("--lut-frac", type=int, default=8, show_default=True, help="mac: table bits.")
@click.option("--saturate/--wrap", default=True, show_default=True,
              help="mac, int8-mac: accumulator overflow rule.")
@click.option("--pipeline", type=int, default=None,
              help="mac, int8-mac (default 2), update (default 5): register stages.")
@click.option("--out-pipeline", type=int, default=3, show_default=True,
              help="mac: output converter stages.")
@click.option("--runtime-lr", is_flag=True, help="update: lr_step as an input port.")
@click.option("--n-out", type=int, default=10, show_default=True,
              help="softmax: classes, 1..4096.")
@click.option("--n-max", type=int, default=1437, show_default=True,
              help="shuffle: order memory depth.")
@click.option("--sizes", default="2-2-2", show_default=True,
              help="trainer: MLP layer widths.")
@click.option("--max-records", type=int, default=4, show_default=True,
              help="trainer: records of the data memory.")
@click.option("--depth", type=int, default=None,
              help="Override every job's depth (k for k-induction, cycles for BMC).")
@click.option("--engine", type=click.Choice(["z3", "boolector"]), default=None,
              help="Override every job's solver.")
@click.option("--no-data", is_flag=True, help="mac, int8-mac: skip the bounded data checks.")
@click.option("--timeout", type=float, default=1800, show_default=True,
              help=f"Seconds per job, a finite number in (0, {TIMEOUT_MAX}].")
@click.option("--keep", is_flag=True, help="Keep the job directories of passing jobs too.")
@click.option("--match", "match", multiple=True,
              help="Run only the jobs whose id contains this text (repeatable: any of them; "
                   "one that selects no job is refused).")
@click.option("--list", "list_only", is_flag=True, help="List the jobs, run nothing.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the results as JSON.")
@click.pass_context
def prove(ctx, block, bits, gamma, lanes, acc_bits, window, lut_frac, saturate, pipeline,
          out_pipeline, runtime_lr, n_out, n_max, sizes, max_records, depth, engine,
          no_data, timeout, keep, match, list_only, json_path):
    """Prove BLOCK's properties (SymbiYosys, k-induction or bounded model checking)."""
    from ..golden.format import check_float
    from ..sim.formal import jobs as J
    from ..sim.formal.sby import FormalToolError, run_job
    from .options import OptionError, checked, fail, output_file, refuse_given

    opts = dict(locals())
    refuse_given(ctx, [n for n, blocks in _APPLIES.items() if block not in blocks],
                 f"for {block}" + (" (its jobs are fixed)"
                                   if block in ("all", "ci", "mutants") else ""))
    if depth is not None and not 1 <= depth <= 1000:
        raise OptionError(f"--depth must be in [1, 1000], got {depth}")
    checked(lambda: check_float("timeout", timeout, 0, TIMEOUT_MAX, lo_open=True, unit=" s"),
            _OPTIONS)
    output_file(json_path, "--json")
    mutants = block == "mutants"
    if mutants:
        items = [(mu, mu.job()) for mu in J.mutant_jobs()]
    else:
        items = [(None, j) for j in checked(lambda: _jobs(J, block, opts), _OPTIONS)]
    if match:
        ids = [mu.id if mu else job.id for mu, job in items]
        items = [(mu, job) for mu, job in items
                 if any(t in (mu.id if mu else job.id) for t in match)]
        if not items:
            shown = ", ".join(ids[:8]) + (f", ... ({len(ids)} jobs: --list shows them)"
                                          if len(ids) > 8 else "")
            raise OptionError(f"--match {' / '.join(match)} matches no job of {block} "
                              f"(ids: {shown})")
    for _, job in items:
        if depth is not None:
            job.depth = depth
        if engine is not None:
            job.engine = engine
    if list_only:
        for mu, job in items:
            click.echo(f"{job.id:45s} {job.mode:6s} depth {job.depth:3d} {job.engine:9s} "
                       + (mu.bug if mu else json.dumps(job.params)))
        return
    ok_count = bad = 0
    records = []
    t0 = time.monotonic()
    for mu, job in items:
        try:
            result = run_job(job, keep=keep, timeout=timeout)
        except FormalToolError as exc:
            fail(exc)
        if mu:
            caught = result.status == "FAIL" and bool(set(result.failed) & set(mu.expect))
            ok_count += caught
            bad += not caught
            click.echo(f"{'CAUGHT ' if caught else 'MISSED '} {mu.id}: {mu.bug} -> "
                       + result.summary())
        else:
            ok_count += result.ok
            bad += not result.ok
            click.echo(result.summary())
        records.append({"job": job.id, "mode": job.mode, "depth": job.depth,
                        "engine": job.engine, "params": job.params, "status": result.status,
                        "failed": result.failed, "seconds": round(result.seconds, 1),
                        "cpu_seconds": result.cpu_seconds,
                        "properties": result.props,
                        "trace": str(result.trace) if result.trace else None,
                        **({"mutant": mu.id, "bug": mu.bug} if mu else {})})
        sys.stdout.flush()
        if json_path:              # after every job: a stopped run keeps what it measured
            _write_json(json_path, block, time.monotonic() - t0, records)
    if mutants:
        click.echo(f"{ok_count} caught, {bad} missed")
    else:
        click.echo(f"{ok_count} proved, {bad} failed")
    if bad:
        sys.exit(1)


def _write_json(path, block, seconds, records):
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        json.dump({"block": block, "seconds": round(seconds, 1), "results": records}, fh,
                  indent=2)
        fh.write("\n")


def _jobs(J, block, o):
    if block == "all":
        return J.family_jobs()
    if block == "ci":
        return J.ci_jobs()
    lanes = 1 if o["lanes"] is None else o["lanes"]
    if block == "mac":
        return J.mac_jobs(o["bits"], o["gamma"], lanes, o["acc_bits"], o["window"],
                          o["lut_frac"], None, o["saturate"],
                          2 if o["pipeline"] is None else o["pipeline"], o["out_pipeline"],
                          data=not o["no_data"])
    if block == "int8-mac":
        return J.int8_mac_jobs(lanes, o["acc_bits"], o["saturate"],
                               2 if o["pipeline"] is None else o["pipeline"],
                               data=not o["no_data"])
    if block == "update":
        return J.update_jobs(5 if o["pipeline"] is None else o["pipeline"], o["runtime_lr"])
    if block == "softmax":
        return J.softmax_jobs(o["n_out"])
    if block == "shuffle":
        return J.shuffle_jobs(o["n_max"])
    if block == "link":
        return J.link_jobs()
    from .options import parse_sizes

    return J.trainer_jobs(parse_sizes(o["sizes"]), lanes, o["max_records"])
