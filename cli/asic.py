"""``lnsmadam asic``: an ASIC report (area, timing, power, energy per operation) of a block.

::

    lnsmadam asic mac --lanes 4 --lib osu018 --clock-ns 10 -o out/asic/mac4
    lnsmadam asic int8-mac --lanes 4 --lib osu018 --clock-ns 10 -o out/asic/int8
    lnsmadam asic update --lib sky130-area --clock-ns 10 -o out/asic/update

Every ``lnsmadam generate`` block is a subcommand here, with the same options (they are
the generate command's own), plus the ASIC options: ``--lib`` (``osu018``: characterised
0.18 µm, timing and power; ``sky130-area``: SkyWater 130 nm, area only), ``--clock-ns``
(the synthesis and timing clock), ``--activity`` (``training``, the default: toggles from
a gate-level simulation on operands of real training; or an assumed toggle rate per cycle),
``--streams``/``--cycles`` (the size of that simulation) and ``--keep`` (keep the tool files
under ``DIR/work``). The library and OpenSTA are fetched or installed on first use
(``docs/asic.md``). Writes ``DIR/report.json``, ``DIR/report.md`` and ``DIR/net.v``.
"""

from __future__ import annotations

import click

from . import generate as _gen

__all__ = ["asic"]


def _activity(value: str):
    if value == "training":
        return value
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter("must be 'training' or a number of toggles per cycle "
                                 "in [0, 2]") from None


_ASIC_PARAMS = [
    click.Option(["--lib"], type=click.Choice(["osu018", "sky130-area"]), default="osu018",
                 show_default=True, help="Standard-cell library."),
    click.Option(["--clock-ns"], type=float, default=10.0, show_default=True,
                 help="Clock period in ns for synthesis (abc -D) and timing, 0.05..1000."),
    click.Option(["--activity"], default="training", show_default=True,
                 help="'training' (simulated toggles on real training operands) or an "
                      "assumed toggle rate per cycle, 0..2."),
    click.Option(["--streams"], type=click.IntRange(64, 4096), default=256, show_default=True,
                 help="Parallel simulation streams (a multiple of 64)."),
    click.Option(["--cycles"], type=click.IntRange(32, 100000), default=256,
                 show_default=True, help="Simulated cycles per stream."),
    click.Option(["--keep/--no-keep"], default=False, show_default=True,
                 help="Keep the Yosys/OpenSTA files under DIR/work."),
]
_ASIC_NAMES = {p.name for p in _ASIC_PARAMS}


def _clone(name: str, cmd: click.Command) -> click.Command:
    """The generate subcommand ``cmd`` with the ASIC options; its Verilog writer replaced by
    the ASIC report."""

    def callback(**kw):
        opts = {k: kw.pop(k) for k in list(kw) if k in _ASIC_NAMES}
        if opts["streams"] % 64:
            raise click.BadParameter(f"must be a multiple of 64, got {opts['streams']}",
                                     param_hint="--streams")
        activity = _activity(opts["activity"])
        from ..boards.asic.report import check_options

        check_options(opts["clock_ns"], activity, name)      # before any block is built

        def sink(component, top, out_dir, block, cls, parameters, timing, notes):
            from ..boards.asic import ToolError, asic_report

            try:
                asic_report(component, block, parameters, opts["lib"], opts["clock_ns"],
                            out_dir, activity=activity, streams=opts["streams"],
                            cycles=opts["cycles"], keep=opts["keep"],
                            log=lambda m: click.echo(m, err=True))
            except ToolError as exc:
                raise click.ClickException(str(exc)) from None

        _gen._sink = sink
        try:
            return cmd.callback(**kw)
        finally:
            _gen._sink = None

    doc = (cmd.help or "").split("\n")[0]
    return click.Command(name, params=list(cmd.params) + _ASIC_PARAMS, callback=callback,
                         help=f"ASIC report of: {doc}", short_help=f"ASIC report: {doc}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def asic() -> None:
    """ASIC report of a block: cells, area, timing, power, energy per operation."""


for _name, _cmd in _gen.generate.commands.items():
    asic.add_command(_clone(_name, _cmd))
