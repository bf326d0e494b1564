"""``lnsmadam verify``: run a block's cocotb regression against golden, for exactly the
configuration ``lnsmadam generate`` would write.

::

    lnsmadam verify mac --bits 6 --gamma 4 --lanes 4 --acc-bits 19 --window 12 --lut-frac 6
    lnsmadam verify update --bias-correction --pipeline 6 --sim icarus --waves

Takes every option of ``lnsmadam generate BLOCK`` (but ``-o``), builds the block's Verilog in
the simulation cache, and runs its bench (``sim/cocotb_*.py``: every corner plus seeded random
vectors, every output compared bit for bit with ``lnsmadam.golden``) on Icarus, Verilator or
both. Prints one line per simulator and, for a failure, the bench's first mismatches. Exit
status 0 when every simulator passed, 1 otherwise, 2 for a bad option. Needs the ``[sim]``
extra (cocotb, Verilator) and Icarus Verilog. ``--waves`` keeps a waveform per simulator
(Icarus: ``.fst``, Verilator: ``.vcd``; GTKWave or Surfer open both); cocotb's own
``WAVES=1`` does the same.
"""

from __future__ import annotations

import sys

import click

from .generate import BLOCKS, BlockCommand, block_options, make_block


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def verify() -> None:
    """Check a block's Verilog against the golden model (cocotb, Icarus and Verilator)."""


def _verify_command(spec: BlockCommand):
    @click.pass_context
    def cmd(ctx, sim, waves, seed, **options):
        from ..sim.runner import SIMULATORS
        from ..sim.verify import summary, verify_block

        block = make_block(ctx, spec, options)
        sims = SIMULATORS if sim == "both" else (sim,)
        click.echo(f"verifying {block.name} ({block.cls}) on {', '.join(sims)} "
                   "(builds are cached; a first Verilator build takes about 20 s) ...",
                   err=True)
        results = verify_block(block, sims, waves=waves or None, seed=seed)
        click.echo(summary(block.name, results))
        if not all(r.passed for r in results):
            sys.exit(1)

    cmd = click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=1,
                       show_default=True, help="Seed of the random stimulus.")(cmd)
    cmd = click.option("--waves", is_flag=True,
                       help="Keep waveforms (Icarus .fst, Verilator .vcd; open them with "
                            "GTKWave or Surfer).")(cmd)
    cmd = click.option("--sim", type=click.Choice(["icarus", "verilator", "both"]),
                       default="both", show_default=True, help="Simulator(s) to run.")(cmd)
    cmd = block_options(spec)(cmd)
    return verify.command(spec.name, help=spec.help)(cmd)


for _spec in BLOCKS.values():
    _verify_command(_spec)
