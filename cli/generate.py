"""``lnsmadam generate``: write the Verilog of a hardware block and its JSON description.

::

    lnsmadam generate mac --bits 8 --gamma 8 --lanes 8 -o out/rtl
    lnsmadam generate mul --bits 8 --gamma 8 -o out/rtl
    lnsmadam generate convert --direction from-linear --acc-bits 32 -o out/rtl
    lnsmadam generate int8-mac --lanes 8 -o out/rtl
    lnsmadam generate fp8-mac --a-format e4m3 --b-format e5m2 --lanes 8 -o out/rtl
    lnsmadam generate fp32-mac -o out/rtl
    lnsmadam generate update --bits 8 --gamma 8 --weight-bits 12 --weight-gamma 128 -o out/rtl

Each writes into ``DIR``: ``<name>.v`` (``amaranth.back.verilog``; the top module is
``<name>``, ports named after the component's signature, e.g. ``i_stream__payload``, plus
``clk``/``rst`` for clocked blocks), ``<name>.json`` (the manifest: parameters, every port
with its direction, width and bit fields, clock and reset, latency and throughput, the
stream rules and field meanings), ``<name>.vlt`` (the Verilator lint waivers of the
generated code, each explained) and ``<name>_inst.vh`` (an instantiation template); with
``--axis`` (streaming blocks) also ``<name>_axis.v``, the block behind AXI4-Stream names
(``docs/integration.md``; :mod:`lnsmadam.sim.blockfiles` writes them). Files there that
lnsmadam did not write are never overwritten. The default name spells out only the main
parameters (``lns_mac_b8g8l4``, ``madam_update_b8g8w12``), so two designs that differ in
another one (``--pipeline``, ``--bc-bits``, ``--q-lo``...) share it: when ``DIR/<name>.json``
records a different design (other parameters), ``generate`` without ``--name`` refuses to
overwrite it (exit status 2, naming the parameters that differ); regenerating the same
design, or any design under an explicit ``--name``, replaces the files.

``lnsmadam verify BLOCK`` and ``lnsmadam asic BLOCK`` take the same options
(:mod:`lnsmadam.cli.verify`, :mod:`lnsmadam.cli.asic`). The block is built by
:func:`lnsmadam.hw.blockparams.build` from the options under their Python names, validated
by the golden dataclasses and the hardware constructors; an invalid one is one line naming
the option and its range (``error: --acc-bits must be in [25, 62], got 10``), exit status 2.

A new block: a function in :mod:`lnsmadam.hw.blocks`, its flat builder in
:mod:`lnsmadam.hw.blockparams` (whose signature is the parameter table), its bench in
:mod:`lnsmadam.sim.verify`, and a :class:`BlockCommand` in :data:`BLOCKS` here (one click
option per builder parameter, with the same default, and the option of each parameter name
for errors).
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from click.core import ParameterSource

from .options import OptionError, checked, output_dir

__all__ = ["generate", "BLOCKS", "BlockCommand", "make_block", "block_options", "discard"]

#: Python parameter names (as they appear in validation messages) -> command-line options.
_OPTION_OF = {
    "bits": "--bits", "gamma": "--gamma", "frac_bits": "--gamma", "fmt.frac_bits": "--gamma",
    "lanes": "--lanes", "acc_bits": "--acc-bits", "acc_width": "--acc-bits",
    "window": "--window", "lut_frac": "--lut-frac", "mid_bits": "--mid-bits",
    "pipeline": "--pipeline", "out_pipeline": "--out-pipeline", "shift": "--shift",
    "bias": "--bias", "q_lo": "--q-lo", "lsb_q": "--lsb-q", "p_bits": "--p-bits",
    "saturate": "--saturate/--wrap", "underflow": "--underflow", "name": "--name",
    # generate update
    "weight_bits": "--weight-bits", "weight_gamma": "--weight-gamma",
    "state_exp_bits": "--state-exp-bits", "state_man_bits": "--state-man-bits",
    "state_offset": "--state-offset", "lr_step": "--lr-step", "g_bound": "--g-bound",
    "beta_k": "--beta-k", "guard_bits": "--guard-bits", "bc_bits": "--bc-bits",
    "bias_bits": "--bias-bits", "bias_correction": "--bias-correction/--seeding",
}


# -- options -----------------------------------------------------------------------------------
def _format_options(f):
    f = click.option("--gamma", type=int, default=8, show_default=True,
                     help="Base factor gamma = 2**frac_bits: a power of two, "
                          "1..min(2**(bits-2), 4096).")(f)
    f = click.option("--bits", type=int, default=8, show_default=True,
                     help="LNS word width, sign included (3..24).")(f)
    return f


def _pipeline(default: int, text: str):
    return click.option("--pipeline", type=int, default=default, show_default=True,
                        help=text)


# shared by the dot-product units (a click option decorator makes a new Option per use)
_LANES = click.option("--lanes", type=int, default=1, show_default=True,
                      help="Operand pairs (products) per beat, 1..256.")
_SATURATE = click.option("--saturate/--wrap", default=True, show_default=True,
                         help="Saturate or wrap on accumulator overflow.")
_DOT_PIPELINE = _pipeline(2, "Register stages before the accumulator, "
                             "1 .. 2 + ceil(log2(lanes)).")

_MAC_OPTIONS = [
    _format_options,
    _LANES,
    click.option("--acc-bits", type=int, default=32, show_default=True,
                 help="Accumulator width, lut_frac + window + 1 .. 62."),
    click.option("--window", type=int, default=16, show_default=True,
                 help="Octaves of products kept below the largest product, "
                      "1 .. (2*emax >> log2(gamma)) + 1 - (2 >> log2(gamma)) (32 at 8 bits, "
                      "gamma 8) and at most 61 - lut_frac (a product must fit the 62-bit "
                      "accumulator)."),
    click.option("--lut-frac", type=int, default=8, show_default=True,
                 help="Fraction bits of the 2**(r/gamma) table, log2(gamma)+1 .. 24."),
    click.option("--mid-bits", type=int, default=None,
                 help="Mantissa bits compared on output, log2(gamma)+1 .. 40, and enough "
                      "for every table entry to convert back to itself (default: "
                      "--lut-frac)."),
    _SATURATE,
    _DOT_PIPELINE,
    click.option("--out-pipeline", type=int, default=3, show_default=True,
                 help="Register stages in the output LNS converter, 0..4."),
    click.option("--first-cut", type=click.Choice(["linear", "log"]), default="linear",
                 show_default=True,
                 help="First register stage of each lane: after the shifter (linear: "
                      "the product, lut_frac + window + 1 bits) or after the exponent "
                      "adder (log: the exponent sum, sign and ZERO flag, bits + 2 bits; "
                      "less area and energy, docs/asic.md)."),
]


_INT8_OPTIONS = [
    _LANES,
    click.option("--acc-bits", type=int, default=32, show_default=True,
                 help="Accumulator width, 16..62."),
    _SATURATE,
    _DOT_PIPELINE,
]


_FP8_OPTIONS = [
    click.option("--a-format", type=click.Choice(["e4m3", "e5m2"]), default="e4m3",
                 show_default=True, help="OCP FP8 format of the a operands."),
    click.option("--b-format", type=click.Choice(["e4m3", "e5m2"]), default="e4m3",
                 show_default=True, help="OCP FP8 format of the b operands."),
    _LANES,
    click.option("--window", type=int, default=16, show_default=True,
                 help="Octaves of products kept below the largest product, 1 .. the "
                      "formats' product range and at most 61 - man_bits(a) - man_bits(b) (a "
                      "product must fit the 62-bit accumulator): 36 (e4m3 x e4m3), "
                      "50 (e4m3 x e5m2), 57 (e5m2 x e5m2)."),
    click.option("--acc-bits", type=int, default=32, show_default=True,
                 help="Accumulator width, window + man_bits(a) + man_bits(b) + 1 .. 62 "
                      "(man_bits: e4m3 3, e5m2 2): 23 .. 62 at the defaults."),
    _SATURATE,
    _DOT_PIPELINE,
]

_FP32_OPTIONS = [
    _pipeline(2, "Register stages before the accumulator, 1..2 (the add, normalisation and "
                 "rounding stay in one cycle)."),
]

_MUL_OPTIONS = [
    _format_options,
    click.option("--underflow", type=click.Choice(["flush", "min"]), default="flush",
                 show_default=True, help="Results below E = 1: ZERO (flush) or E = 1 (min)."),
    click.option("--shift", type=int, default=None,
                 help="Re-bias subtracted from Ea + Eb, 2-emax .. 2*emax-1 (outside it every "
                      "product saturates or underflows; default emax = 2**(bits-1) - 1)."),
    click.option("--registered/--combinational", default=True, show_default=True,
                 help="Register the output (latency 1) or not (latency 0)."),
]


_CONVERT_OPTIONS = [
    click.option("--direction", type=click.Choice(["to-linear", "from-linear"]), required=True,
                 help="LNS exponent -> linear fixed point, or linear -> nearest LNS exponent."),
    _format_options,
    click.option("--lut-frac", type=int, default=8, show_default=True,
                 help="Fraction bits of the 2**(r/gamma) table (to-linear), and the default "
                      "--mid-bits (from-linear); log2(gamma)+1 .. 24."),
    click.option("--window", type=int, default=16, show_default=True,
                 help="to-linear: octaves kept, 1 .. 62 - lut_frac (output has lut_frac + "
                      "window + 1 bits); both: places the default window like the MAC's "
                      "(then also at most the format's product range, and for from-linear "
                      "at most 61 - lut_frac)."),
    click.option("--acc-bits", type=int, default=32, show_default=True,
                 help="from-linear: width of the signed input word, 2..63."),
    click.option("--mid-bits", type=int, default=None,
                 help="from-linear: mantissa bits compared with the midpoints, 0..40 "
                      "(default --lut-frac)."),
    click.option("--q-lo", type=int, default=None,
                 help="to-linear: lowest octave kept, 1 - window .. q_top (the window must "
                      "overlap the octaves 0 .. q_top = (2*emax) >> log2(gamma) that exponents "
                      "and their sums reach: 31 at 8 bits, gamma 8; default: the MAC's, q_top "
                      "- window + 1)."),
    click.option("--lsb-q", type=int, default=None,
                 help="from-linear: octave of the input LSB, 1 - acc_bits .. q_top (the "
                      "input's octaves must overlap 0 .. q_top = (2*emax) >> log2(gamma): 31 "
                      "at 8 bits, gamma 8; default: the MAC's, q_lo - lut_frac)."),
    click.option("--registered/--combinational", default=False, show_default=True,
                 help="Register the outputs (latency 1) or not (latency 0)."),
]


_UPDATE_OPTIONS = [
    _format_options,
    click.option("--weight-bits", type=int, default=12, show_default=True,
                 help="Stored weight (update format) width, sign included (3..24)."),
    click.option("--weight-gamma", type=int, default=128, show_default=True,
                 help="Base factor of the update format: a power of two, "
                      "1..min(2**(weight_bits-2), 4096)."),
    click.option("--state-exp-bits", type=int, default=6, show_default=True,
                 help="Exponent bits of the second-moment minifloat (2..8)."),
    click.option("--state-man-bits", type=int, default=12, show_default=True,
                 help="Mantissa bits of the state, hidden one included "
                      "(log2(gamma)+2..24)."),
    click.option("--state-offset", type=int, default=-52, show_default=True,
                 help="Octave of the state's exponent 0 (-1024..1024)."),
    click.option("--lr-step", type=int, default=1, show_default=True,
                 help="Learning rate in weight-exponent LSBs per unit of normalised "
                      "gradient (1..64)."),
    click.option("--g-bound", type=int, default=10, show_default=True,
                 help="Clamp of the normalised gradient (1..64)."),
    click.option("--beta-k", type=int, default=10, show_default=True,
                 help="EMA decay beta = 1 - 2**-k (1..20)."),
    click.option("--guard-bits", type=int, default=2, show_default=True,
                 help="Extra alignment bits of the EMA add (0..8)."),
    click.option("--bias-correction/--seeding", default=False, show_default=True,
                 help="Madam's bias correction (bc_exp input) or seeding v with the first "
                      "g**2."),
    click.option("--bc-bits", type=int, default=24, show_default=True,
                 help="Fraction bits of the beta**t register (12..40; sets the bc_exp "
                      "width; only with --bias-correction)."),
    click.option("--bias-bits", type=int, default=32, show_default=True,
                 help="Width of the signed g_bias input (2..48; 32 holds every legal bias)."),
    _pipeline(5, "Register cuts before the output register, 0..7 (latency = pipeline + 1)."),
]


@dataclass
class BlockCommand:
    """A block as the command line knows it: its options (one per parameter of
    :func:`lnsmadam.hw.blockparams.parameters` of ``name``, with the same default)."""

    name: str          # the block kind
    help: str
    options: list

    @property
    def axis(self) -> bool:
        """An AXI4-Stream wrapper exists (a streaming block)."""
        from ..hw.blocks import STREAMING

        return self.name in STREAMING


BLOCKS: dict[str, BlockCommand] = {
    "mac": BlockCommand("mac", "Streaming LNS dot-product unit (lnsmadam.hw.mac.LNSMAC).",
                        _MAC_OPTIONS),
    "int8-mac": BlockCommand("int8-mac", "Streaming signed 8-bit dot-product unit, the area "
                             "baseline (lnsmadam.hw.mac.INT8MAC).", _INT8_OPTIONS),
    "fp8-mac": BlockCommand("fp8-mac", "Streaming FP8 dot-product unit, a baseline "
                            "(lnsmadam.hw.fpmac.FP8MAC): products aligned into the LNS unit's "
                            "fixed-point window and accumulator.", _FP8_OPTIONS),
    "fp32-mac": BlockCommand("fp32-mac", "Streaming FP32 fused multiply-add, a baseline "
                             "(lnsmadam.hw.fpmac.FP32MAC): acc = fma(a, b, acc) per beat, "
                             "IEEE binary32, round to nearest even.", _FP32_OPTIONS),
    "mul": BlockCommand("mul", "LNS multiply (lnsmadam.hw.mul.LNSMul).", _MUL_OPTIONS),
    "convert": BlockCommand(
        "convert", "LNS <-> linear converters (lnsmadam.hw.convert.ToLinear / FromLinear). "
        "Defaults are the converters of `lnsmadam generate mac` with the same --bits, --gamma, "
        "--lut-frac and --window; --q-lo / --lsb-q place the window anywhere.",
        _CONVERT_OPTIONS),
    "update": BlockCommand(
        "update", "Streaming LNS-Madam weight-update engine (lnsmadam.hw.update.MadamUpdate). "
        "--bits/--gamma give the gradient format; the other options are the fields of "
        "golden.update.MadamConfig (defaults: MadamConfig()). The stored weights saturate at "
        "E = 1 (they never become ZERO).", _UPDATE_OPTIONS),
}


def _option(name: str) -> str:
    """The option of a block parameter (``acc_bits`` -> ``--acc-bits``)."""
    return _OPTION_OF.get(name) or "--" + name.replace("_", "-")


def make_block(ctx: click.Context, spec: BlockCommand, options: dict):
    """The :class:`~lnsmadam.hw.blocks.Block` of ``spec`` for the command's ``options``
    (:func:`lnsmadam.hw.blockparams.build`); a bad value, or an option given on the command
    line that the others make moot, is an :class:`~.options.OptionError` naming the option."""
    from ..hw import blockparams

    given = {n for n in options if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}
    moot = blockparams.unused(spec.name, options, given, spell=_option)
    if moot:
        raise OptionError(moot)
    return checked(lambda: blockparams.build(spec.name, options, given), _OPTION_OF)


def discard() -> None:
    """Collect, quietly, a block the caller built and dropped (``del block``) because a later
    check refused the command: no "created but never used" warning for it."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _other_design(block, out_dir) -> str | None:
    """The refusal when ``out_dir/<name>.json`` is the manifest of an earlier ``generate``
    of another design under the same default name (the files would be replaced by a
    different design without a word); None when there is no such manifest."""
    import json
    from pathlib import Path

    path = Path(out_dir) / f"{block.name}.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None               # none, or not a manifest (write_block refuses foreign files)
    if not isinstance(old, dict) or old.get("generator") != "lnsmadam generate":
        return None
    new = _flat(json.loads(json.dumps(block.parameters)))
    before = _flat(old.get("parameters") or {})
    if old.get("block") != block.kind:
        diff = ["the block kind"]
    else:
        # keys of one version only (a parameter added later) cannot be compared
        diff = [f"{k} {before[k]!r} there, {new[k]!r} now" for k in new if k in before
                and before[k] != new[k]]
    if not diff:
        return None
    return (f"--out: {path} describes another design of the same default name "
            f"({', '.join(diff[:4])}{', ...' if len(diff) > 4 else ''}): give --name, or "
            f"another directory")


def block_options(spec: BlockCommand, name: bool = True):
    """Decorator adding ``spec``'s options and (with ``name``) ``--name``."""
    def deco(f):
        if name:
            f = click.option("--name", default=None,
                             help="Top module / file name: a Verilog identifier that is not "
                                  "a keyword (default: from the main parameters, e.g. "
                                  "lns_mac_b8g8l4; generate refuses to overwrite a default-"
                                  "named design of other parameters: give --name).")(f)
        for o in reversed(spec.options):
            f = o(f)
        return f
    return deco


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def generate() -> None:
    """Write the Verilog of a hardware block plus a JSON description of it."""


def _generate_command(spec: BlockCommand):
    @click.pass_context
    def cmd(ctx, out_dir, axis=False, **options):
        output_dir(out_dir, "--out")    # --axis exists only where spec.axis
        from ..sim.blockfiles import write_block
        from ..sim.files import OutputPathError

        block = make_block(ctx, spec, options)
        clash = _other_design(block, out_dir) if options.get("name") is None else None
        if clash:
            del block
            discard()
            raise OptionError(clash)
        refused = None
        try:
            written, meta = write_block(block, out_dir, axis, option="--out")
        except OutputPathError as exc:
            refused = str(exc)       # raised below, once the unused block is collected
        if refused:
            del block
            discard()
            raise OptionError(refused)
        n = len(meta["ports"])
        n_in = sum(p["direction"] == "input" for p in meta["ports"])
        click.echo(f"wrote {written[0]} ({n} ports: {n_in} in, {n - n_in} out)")
        for p in written[1:]:
            click.echo(f"wrote {p}")

    cmd = click.option("--axis", is_flag=True,
                       help="Also write <name>_axis.v: the block with AXI4-Stream port names "
                            "(streaming blocks).")(cmd) if spec.axis else cmd
    cmd = click.option("-o", "--out", "out_dir", required=True,
                       type=click.Path(file_okay=False),
                       help="Output directory (created if missing).")(cmd)
    cmd = block_options(spec)(cmd)
    return generate.command(spec.name, help=spec.help)(cmd)


for _spec in BLOCKS.values():
    _generate_command(_spec)
