"""``lnsmadam build``: the bitstream of the training SoC for a board (YoWASP tools only).

::

    lnsmadam build --board icebreaker                 # default config, out/build/icebreaker/
    lnsmadam build --board ulx3s-85f --lanes 4 --hidden 32 --clk-freq 50 --seed 2 --out DIR
    lnsmadam build --board ulx3s-85f --config soc.toml --set update_pipeline=6

Runs Yosys and nextpnr from PyPI (yowasp-*, the ``[boards]`` extra), shows each step, and
writes the bitstream, ``report.json`` (resources used/available, Fmax achieved/required, tool
versions, config, board) and ``report.md`` (printed at the end) into ``--out`` (default
``out/build/BOARD`` for the board's default configuration, ``out/build/BOARD-KEY`` for any
other); intermediate files go to the user cache. ``--out`` must be new, empty or an earlier
build's: nothing else is ever overwritten. Exit status: 0 when the design fits and meets
timing; 1 when it does not (the numbers on one or two ``error:`` lines) or a tool fails; 2
for an unknown board or a bad or conflicting option (one line, checked before any work).
"""

from __future__ import annotations

import sys

import click

from .options import apply_hidden, checked, config_options, config_values, fail


@click.command("build", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--board", default="icebreaker", show_default=True,
              help="Target board (`lnsmadam boards` lists them).")
@config_options
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory: new, empty or an earlier build's (default "
                   "out/build/BOARD, or out/build/BOARD-KEY for a non-default config).")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=1, show_default=True,
              help="nextpnr placement seed.")
@click.option("--router", type=click.Choice(["router1", "router2"]), default=None,
              help="nextpnr's router (default: nextpnr's, router1). router2 can route a "
                   "large, congested ECP5 design that router1 does not finish.")
@click.option("--design", type=click.Choice(["soc", "standin"]), default="soc",
              show_default=True,
              help="soc: the trainer; standin: a small TEST design (UART echo through "
                   "memories of the SoC's shapes) to check the flow.")
@click.option("--breakdown", is_flag=True,
              help="Also report each module's own LUT4/FF/RAM/DSP (one more Yosys run).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@click.pass_context
def build(ctx, board, out_dir, seed, router, design, breakdown, quiet, **params):
    """Build the bitstream, report.json and report.md for a board (YoWASP flow)."""
    from ..boards.build import BuildError, build as run_build, make_config
    from ..boards.platforms import UnknownBoard, get_board

    try:
        b = get_board(board)
    except UnknownBoard as e:
        fail(e, 2)
    cv = config_values(ctx, params)
    if params.get("hidden") is not None:
        base = checked(lambda: make_config(b, design), {})
        apply_hidden(cv, params["hidden"], getattr(base, "sizes", (64, 16, 10)))
    names = {**cv.names(), "out_dir": "--out", "seed": "--seed"}
    checked(lambda: make_config(b, design, cv.values), names)
    command = "lnsmadam " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["build"] else None
    try:
        rep = checked(lambda: run_build(b, design=design, overrides=cv.values,
                                        out_dir=out_dir, seed=seed,
                                        progress=None if quiet else _progress,
                                        command=command, breakdown=breakdown,
                                        router=router), names)
    except BuildError as e:
        msg = str(e).splitlines()
        click.echo(f"error: {msg[0]}", err=True)
        for line in msg[1:]:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    from pathlib import Path
    out = Path(rep["out_dir"])
    if not quiet:
        click.echo((out / "report.md").read_text())
    click.echo(f"wrote {out / 'report.json'}, {out / 'report.md'}"
               + (f", {rep['bitstream']}" if rep["bitstream"] else ""), err=True)
    if not rep["ok"]:
        for p in rep["problems"]:
            click.echo(f"error: {b.name}: {p}", err=True)
        sys.exit(1)


def _progress(msg: str) -> None:
    click.echo(msg, err=True)
