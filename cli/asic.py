"""``lnsmadam asic``: an ASIC report (area, timing, power, energy per operation) of a block.

::

    lnsmadam asic mac --lanes 4 --lib osu018 --clock-ns 10 -o out/asic/mac4
    lnsmadam asic int8-mac --lanes 4 --lib osu018 --clock-ns 10 -o out/asic/int8
    lnsmadam asic update --lib sky130-area -o out/asic/update

Every ``lnsmadam generate`` block (:data:`~.generate.BLOCKS`) is a subcommand here, with the
same options (but ``--name`` and ``--axis``, which name and wrap a Verilog file that this
does not write), plus the ASIC options: ``--lib`` (``osu018``: characterised 0.18 µm,
timing and power; ``sky130-area``: SkyWater 130 nm, area only), ``--clock-ns`` (the
synthesis and timing clock), ``--activity`` (``training``: toggles from a gate-level
simulation on operands of real training, the default for the blocks that have such a
stimulus; or an assumed toggle rate per cycle, by default 0.1 for ``mul`` and ``convert``),
``--streams``/``--cycles`` (the size of that simulation) and ``--keep`` (keep the tool files
under ``DIR/work``). Options that would change nothing (the clock, activity and simulation
size with the area-only library; the simulation size with an assumed activity) are refused.
The block's options are checked first, then these, then ``-o DIR``: it must be new, empty
or an earlier ``asic`` report's (marked by ``.lnsmadam-asic``, or holding its
``report.json``), so that no file lnsmadam did not write is overwritten. The library and
OpenSTA are fetched or installed on first use (``docs/asic.md``). Writes
``DIR/report.json``, ``DIR/report.md`` and ``DIR/net.v``
(:func:`lnsmadam.boards.asic.asic_report`).
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from .generate import BLOCKS, BlockCommand, block_options, discard, make_block
from .options import OptionError, checked, fail

__all__ = ["asic"]

#: the ASIC options' parameter names -> their options, for errors
_NAMES = {"lib": "--lib", "clock_ns": "--clock-ns", "activity": "--activity",
          "streams": "--streams", "cycles": "--cycles"}


def _asic_options(f):
    from ..boards.asic import CLOCK_NS, CYCLES, DEFAULTS, LIBS, STREAMS
    from ..boards.asic.report import ASSUMED_ACTIVITY, TRAINING_BLOCKS

    opts = [
        click.option("--lib", type=click.Choice(list(LIBS)), default=DEFAULTS["lib"],
                     show_default=True, help="Standard-cell library (sky130-area: area only)."),
        click.option("--clock-ns", type=float, default=DEFAULTS["clock_ns"], show_default=True,
                     help=f"Clock period in ns for synthesis (abc -D) and timing, "
                          f"{CLOCK_NS[0]}..{CLOCK_NS[1]}."),
        click.option("--activity", default=None,
                     help=f"'training' (simulated toggles on real training operands; "
                          f"{', '.join(TRAINING_BLOCKS)}) or an assumed toggle rate per "
                          f"cycle, 0..2. Default: training for those blocks, "
                          f"{ASSUMED_ACTIVITY} for the others."),
        click.option("--streams", type=int, default=DEFAULTS["streams"], show_default=True,
                     help=f"Parallel simulation streams, a multiple of 64 in "
                          f"{STREAMS[0]}..{STREAMS[1]}."),
        click.option("--cycles", type=int, default=DEFAULTS["cycles"], show_default=True,
                     help=f"Simulated cycles per stream, {CYCLES[0]}..{CYCLES[1]}."),
        click.option("--keep/--no-keep", default=False, show_default=True,
                     help="Keep the Yosys/OpenSTA files under DIR/work."),
        click.option("-o", "--out", "out_dir", required=True,
                     type=click.Path(file_okay=False),
                     help="Output directory: new, empty or an earlier asic report's (created "
                          "if missing; other files are never overwritten)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _activity(text: str):
    """``training`` or a number (checked with the other options)."""
    try:
        return float(text)
    except ValueError:
        return text


def _asic_command(spec: BlockCommand):
    @click.pass_context
    def cmd(ctx, lib, clock_ns, activity, streams, cycles, keep, out_dir, **options):
        from ..boards.asic import ToolError, asic_report, check_options, unused
        from ..boards.asic.report import check_out_dir, default_activity, mark_out_dir
        from ..sim.files import OutputPathError

        # the block's own options first (their values and those the others make moot), then
        # the flow's, then the output directory: all before any work
        block = make_block(ctx, spec, options)
        given = {n for n in _NAMES if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}
        activity = default_activity(spec.name) if activity is None else _activity(activity)
        try:
            moot = unused(lib, activity, given, spell=_NAMES.get, block=spec.name)
            if moot:
                raise OptionError(moot)
            checked(lambda: check_options(clock_ns, activity, spec.name, streams, cycles, lib),
                    _NAMES)
            try:
                check_out_dir(out_dir, "--out")
            except OutputPathError as exc:
                raise OptionError(str(exc)) from None
        except OptionError:
            del block           # built only to check its options: never synthesised
            discard()
            raise
        mark_out_dir(out_dir)
        try:
            asic_report(block.component, block.kind, block.parameters, lib, clock_ns, out_dir,
                        activity=activity, streams=streams, cycles=cycles, keep=keep,
                        log=lambda m: click.echo(m, err=True))
        except ToolError as exc:
            fail(exc)

    cmd = _asic_options(cmd)
    cmd = block_options(spec, name=False)(cmd)
    return asic.command(spec.name, help=f"ASIC report of: {spec.help}",
                        short_help=f"ASIC report: {spec.help.split(' (')[0]}")(cmd)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def asic() -> None:
    """ASIC report of a block: cells, area, timing, power, energy per operation."""


for _spec in BLOCKS.values():
    _asic_command(_spec)
