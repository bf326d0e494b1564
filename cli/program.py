"""``lnsmadam program``: program a board and check that the design answers.

::

    lnsmadam program --board icebreaker                  # out/build/icebreaker/icebreaker.bin
    lnsmadam program --board ulx3s-85f --bitstream my.bit --port /dev/ttyUSB0

Runs the board's programmer (iCEBreaker: iceprog, or openFPGALoader; ULX3S: openFPGALoader),
then reads the design's identify blob over the UART (protocol version, design, config).
Anything missing (the programmer, the bitstream, the board on USB, an answer on the UART)
is one ``error:`` line saying what and how to fix it, with exit status 1; an unknown board
is one line with exit status 2.
"""

from __future__ import annotations

import sys

import click


def _fail(msg: str, code: int = 1) -> None:
    click.echo(f"error: {' '.join(str(msg).split())}", err=True)
    sys.exit(code)


@click.command("program", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--board", default="icebreaker", show_default=True,
              help="Target board (`lnsmadam boards` lists them).")
@click.option("--bitstream", type=click.Path(dir_okay=False), default=None,
              help="Bitstream (default out/build/BOARD/BOARD.bin or .bit).")
@click.option("--programmer", default=None,
              help="iceprog or openFPGALoader (default: the first one installed).")
@click.option("--flash/--sram", default=None,
              help="Write the configuration flash or only SRAM (default: iCEBreaker flash, "
                   "ULX3S SRAM).")
@click.option("--port", default=None,
              help="Serial port of the board's UART (default: found by USB id, else "
                   "/dev/ttyUSB1 on iCEBreaker, /dev/ttyUSB0 on ULX3S).")
@click.option("--baud", type=int, default=None,
              help="UART rate (default: the build's report.json, else 1000000).")
@click.option("--identify/--no-identify", default=True, show_default=True,
              help="After programming, read the design's identify blob over the UART.")
def program(board, bitstream, programmer, flash, port, baud, identify):
    """Program a board with a bitstream from `lnsmadam build`, then identify the design."""
    from ..boards import program as P
    from ..boards.platforms import UnknownBoard, get_board

    try:
        b = get_board(board)
    except UnknownBoard as e:
        _fail(e, 2)
    bit = bitstream or P.default_bitstream(b)
    try:
        cmd = P.program(b, bit, programmer=programmer, flash=flash)
    except P.ProgramError as e:
        _fail(e)
    click.echo(f"programmed {b.name}: {cmd}", err=True)
    if not identify:
        return
    port = port or P.default_port(b)
    baud = baud or P.build_baud(bit, b)
    try:
        info = P.identify(b, port, baud)
    except ImportError as e:
        from .main import missing_extra
        _fail(missing_extra(e) or f"the host library is not available ({e}); cannot "
              "identify the design")
    except P.ProgramError as e:
        _fail(e)
    design = info.get("design", {})
    soc = info.get("config", {}).get("soc", {})
    sizes = "-".join(str(s) for s in soc.get("sizes", []))
    click.echo(f"identify on {port}: {design.get('name')} {design.get('version')}, protocol "
               f"{info.get('protocol')}, sizes {sizes or '?'}, lanes {soc.get('lanes', '?')}, "
               f"{float(info.get('clk_freq', 0)) / 1e6:g} MHz, {info.get('baud')} baud")
