"""``lnsmadam build``: the bitstream of the training SoC for a board (YoWASP tools only).

::

    lnsmadam build --board icebreaker                 # default config, out/build/icebreaker/
    lnsmadam build --board ulx3s-85f --lanes 4 --hidden 32 --clk-freq 50 --seed 2 --out DIR

Runs Yosys and nextpnr from PyPI (yowasp-*), shows each step, and writes the bitstream,
``report.json`` (resources used/available, Fmax achieved/required, tool versions, config,
board) and ``report.md`` (printed at the end). Exit status: 0 when the design fits and
meets timing; 1 when it does not (the numbers on one or two ``error:`` lines) or a tool
fails; 2 for an unknown board or a bad config option (one line).
"""

from __future__ import annotations

import ast
import sys

import click


def _fail(msg: str, code: int) -> None:
    click.echo(f"error: {' '.join(str(msg).split())}", err=True)
    sys.exit(code)


def _parse_set(items) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set must be KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def parse_sizes(sizes: str) -> tuple[int, ...]:
    """``--sizes`` text (``64,32,10`` or ``64-32-10``) as a tuple of layer widths."""
    try:
        return tuple(int(s) for s in sizes.replace("-", ",").split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--sizes must be comma-separated integers, got {sizes!r}") from None


def config_overrides(hidden, sizes, lanes, n_records, clk_freq, baud, sets) -> dict:
    """SoCConfig overrides from the command-line options (``--clk-freq`` is in MHz)."""
    over = _parse_set(sets)
    if sizes is not None:
        over["sizes"] = parse_sizes(sizes)
    if hidden is not None:
        base = list(over.get("sizes", (64, 16, 10)))
        if len(base) != 3:
            raise ValueError("--hidden sets the one hidden layer of a 3-layer MLP; use --sizes")
        over["sizes"] = (base[0], hidden, base[2])
    if lanes is not None:
        over["lanes"] = lanes
    if n_records is not None:
        over["n_records"] = n_records
    if clk_freq is not None:
        over["clk_freq"] = clk_freq * 1e6
    if baud is not None:
        over["baud"] = baud
    return over


def config_options(f):
    """The SoCConfig options shared by ``build`` (and usable by other commands)."""
    opts = [
        click.option("--hidden", type=int, default=None,
                     help="Hidden units of the 64-H-10 MLP (default: the board's)."),
        click.option("--sizes", default=None, help="Layer widths, e.g. 64,32,10."),
        click.option("--lanes", type=int, default=None,
                     help="MAC lanes, 1..16 (default: the board's)."),
        click.option("--records", "n_records", type=int, default=None,
                     help="Samples the on-chip data memory holds (default: the board's)."),
        click.option("--clk-freq", type=float, default=None,
                     help="Design clock in MHz (default: the board's, `lnsmadam boards`); "
                          "a PLL makes any clock other than the oscillator's."),
        click.option("--baud", type=int, default=None, help="UART rate (default 1000000)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Any other SoCConfig field, e.g. --set gamma=4 (repeatable)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.command("build", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--board", default="icebreaker", show_default=True,
              help="Target board (`lnsmadam boards` lists them).")
@config_options
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory (default out/build/BOARD).")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr placement seed.")
@click.option("--design", type=click.Choice(["soc", "standin"]), default="soc",
              show_default=True,
              help="soc: the trainer; standin: a small TEST design (UART echo through "
                   "memories of the SoC's shapes) to check the flow.")
@click.option("--breakdown", is_flag=True,
              help="Also report each module's own LUT4/FF/RAM/DSP (one more Yosys run).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def build(board, hidden, sizes, lanes, n_records, clk_freq, baud, sets, out_dir, seed, design,
          breakdown, quiet):
    """Build the bitstream, report.json and report.md for a board (YoWASP flow)."""
    from lnsmadam.boards.build import BuildError, build as run_build
    from lnsmadam.boards.platforms import UnknownBoard, get_board

    try:
        b = get_board(board)
    except UnknownBoard as e:
        _fail(e, 2)
    try:
        over = config_overrides(hidden, sizes, lanes, n_records, clk_freq, baud, sets)
    except ValueError as e:
        _fail(e, 2)
    command = "lnsmadam " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["build"] else None
    try:
        rep = run_build(b, design=design, overrides=over, out_dir=out_dir, seed=seed,
                        progress=None if quiet else _progress, command=command,
                        breakdown=breakdown)
    except BuildError as e:
        msg = str(e).splitlines()
        click.echo(f"error: {msg[0]}", err=True)
        for line in msg[1:]:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    except ValueError as e:
        _fail(e, 2)
    from pathlib import Path
    out = Path(rep["bitstream"]).parent if rep["bitstream"] else \
        Path(out_dir or Path("out") / "build" / b.name)
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
