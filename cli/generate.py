"""``lnsmadam generate``: write the Verilog of a hardware block and its JSON description.

::

    lnsmadam generate mac --bits 8 --gamma 8 --lanes 8 -o out/rtl
    lnsmadam generate mul --bits 8 --gamma 8 -o out/rtl
    lnsmadam generate convert --direction from-linear --acc-bits 32 -o out/rtl
    lnsmadam generate int8-mac --lanes 8 -o out/rtl
    lnsmadam generate fp8-mac --a-format e4m3 --b-format e5m2 --lanes 8 -o out/rtl
    lnsmadam generate fp32-mac -o out/rtl
    lnsmadam generate update --bits 8 --gamma 8 --weight-bits 12 --weight-gamma 128 -o out/rtl

Each writes ``DIR/<name>.v`` (``amaranth.back.verilog``; the top module is ``<name>``, ports
named after the component's signature, e.g. ``i_stream__payload``, plus ``clk``/``rst`` for
clocked blocks) and ``DIR/<name>.json``: the parameters, every port with its direction,
width and (for structured payloads) bit fields, the clock/reset, latency and throughput.
Parameters are validated by the golden dataclasses and the hardware constructors; an
invalid one is reported on one line (``error: --acc-bits must be in [25, 62], got 10``) with
exit status 2.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import click

#: Python parameter names (as they appear in validation messages) -> command-line options.
_OPTION_OF = {
    "bits": "--bits", "gamma": "--gamma", "frac_bits": "--gamma", "fmt.frac_bits": "--gamma",
    "lanes": "--lanes", "acc_bits": "--acc-bits", "acc_width": "--acc-bits",
    "window": "--window", "lut_frac": "--lut-frac", "mid_bits": "--mid-bits",
    "pipeline": "--pipeline", "out_pipeline": "--out-pipeline", "shift": "--shift", "bias": "--bias", "q_lo": "--q-lo",
    "lsb_q": "--lsb-q", "p_bits": "--p-bits", "saturate": "--saturate/--wrap",
    "underflow": "--underflow", "a_fmt": "--a-format", "b_fmt": "--b-format",
    # generate update
    "weight_bits": "--weight-bits", "weight_gamma": "--weight-gamma",
    "weight_underflow": "--weight-underflow", "state_exp_bits": "--state-exp-bits",
    "state_man_bits": "--state-man-bits", "state_offset": "--state-offset",
    "lr_step": "--lr-step", "g_bound": "--g-bound", "beta_k": "--beta-k",
    "guard_bits": "--guard-bits", "bc_bits": "--bc-bits", "bias_bits": "--bias-bits",
    "bias_correction": "--bias-correction/--seeding",
}


def _renamed(exc: ValueError, names: dict) -> ValueError:
    """``exc`` with its leading parameter name (one of ``names``) renamed."""
    msg = " ".join(str(exc).split())
    for old, new in sorted(names.items(), key=lambda kv: -len(kv[0])):
        if msg.startswith(old + " "):
            return ValueError(new + msg[len(old):])
    return ValueError(msg)


def _option_error(exc: ValueError) -> ValueError:
    """The same message with its leading parameter name replaced by the option's."""
    msg = " ".join(str(exc).split())
    m = re.match(r"^([\w.]+)( must| is|=)", msg)
    if m and m.group(1) in _OPTION_OF:
        opt = _OPTION_OF[m.group(1)]
        msg = opt + msg[len(m.group(1)):] if m.group(2) != "=" else f"{opt}: {msg}"
    return ValueError(msg)


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
        raise ValueError(f"--name must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*), "
                         f"got {name!r}")
    return name


def _fmt(bits: int, gamma: int, underflow: str = "flush", bias: int = 0):
    from ..golden.format import LNSFormat

    return LNSFormat.from_gamma(bits, gamma, bias=bias, underflow=underflow)


#: When set (by ``lnsmadam asic``), receives what :func:`_write` is given instead of the
#: Verilog writer, so every generate subcommand also describes an ASIC report's block.
_sink = None


def _write(component, name: str, out_dir: str, block: str, cls: str, parameters: dict,
           timing: dict, notes: dict | None = None) -> None:
    """Export ``component`` and write ``<name>.v`` and ``<name>.json`` into ``out_dir``."""
    if _sink is not None:
        return _sink(component, name, out_dir, block, cls, parameters, timing, notes)
    from ..sim.runner import export_verilog

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.FileError(str(out), hint=str(exc)) from None
    design = export_verilog(component, name, out)
    clocked = any(p["name"] == "clk" for p in design.ports)
    meta = {
        "generator": "lnsmadam generate",
        "version": importlib.metadata.version("lnsmadam"),
        "block": block,
        "class": cls,
        "name": name,
        "verilog": design.verilog.name,
        "top_module": name,
        "parameters": parameters,
        "clock": "clk" if clocked else None,
        "reset": {"port": "rst", "kind": "synchronous, active high"} if clocked else None,
        "ports": design.ports,
        "timing": timing,
    }
    if notes:
        meta.update(notes)
    js = out / f"{name}.json"
    js.write_text(json.dumps(meta, indent=2) + "\n")
    n_in = sum(p["direction"] == "input" for p in design.ports)
    click.echo(f"wrote {design.verilog} ({len(design.ports)} ports: {n_in} in, "
               f"{len(design.ports) - n_in} out)")
    click.echo(f"wrote {js}")


def _run(build):
    """Call ``build()``; turn a ValueError into one naming the command-line option."""
    try:
        return build()
    except ValueError as exc:
        err = _option_error(exc)
    # A constructor that rejected its parameters leaves a half-built Elaboratable behind
    # (reachable from the traceback until the except block is left): collect it now,
    # quietly, instead of a later "created but never used" warning.
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
    raise err


_out_option = click.option("-o", "--out", "out_dir", required=True,
                           type=click.Path(file_okay=False),
                           help="Output directory (created if missing).")
_name_option = click.option("--name", default=None,
                            help="Top module / file name (default: from the parameters).")


def _stream_timing(comp, lanes: int) -> dict:
    """The ``timing`` entry of a streaming dot-product block."""
    return {"latency_cycles": comp.latency,
            "latency_definition": "cycles from accepting a vector's last beat to "
                                  "presenting its result",
            "throughput": "one input beat per cycle",
            "products_per_cycle": lanes, "initiation_interval": 1}


def _pipeline_option(default: int, text: str):
    """``--pipeline`` (the register stages of a streaming block), with its own range text."""
    return click.option("--pipeline", type=int, default=default, show_default=True, help=text)


def _format_options(f):
    f = click.option("--gamma", type=int, default=8, show_default=True,
                     help="Base factor gamma = 2**frac_bits (a power of two, 1..2**(bits-2)).")(f)
    f = click.option("--bits", type=int, default=8, show_default=True,
                     help="LNS word width, sign included (3..24).")(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def generate() -> None:
    """Write the Verilog of a hardware block plus a JSON description of it."""


@generate.command("mac")
@_format_options
@click.option("--lanes", type=int, default=1, show_default=True,
              help="Operand pairs (products) per beat, 1..256.")
@click.option("--acc-bits", type=int, default=32, show_default=True,
              help="Accumulator width, lut_frac + window + 1 .. 62.")
@click.option("--window", type=int, default=16, show_default=True,
              help="Octaves of products kept below the largest product.")
@click.option("--lut-frac", type=int, default=8, show_default=True,
              help="Fraction bits of the 2**(r/gamma) table, log2(gamma)+1 .. 24.")
@click.option("--mid-bits", type=int, default=None,
              help="Mantissa bits compared on output (default: --lut-frac).")
@click.option("--saturate/--wrap", default=True, show_default=True,
              help="Saturate or wrap on accumulator overflow.")
@_pipeline_option(2, "Register stages before the accumulator, 1 .. 2 + ceil(log2(lanes)).")
@click.option("--out-pipeline", type=int, default=3, show_default=True,
              help="Register stages in the output LNS converter, 0..4.")
@click.option("--first-cut", type=click.Choice(["linear", "log"]), default="linear",
              show_default=True,
              help="First register stage after the shifters (linear products) or after the "
                   "exponent adders (log domain, fewer bits).")
@_name_option
@_out_option
def mac(bits, gamma, lanes, acc_bits, window, lut_frac, mid_bits, saturate, pipeline,
        out_pipeline, first_cut, name, out_dir):
    """Streaming LNS dot-product unit (lnsmadam.hw.mac.LNSMAC)."""
    from ..golden.mac import MACConfig
    from ..hw.mac import LNSMAC

    def build():
        cfg = MACConfig(_fmt(bits, gamma), lut_frac=lut_frac, window=window,
                        acc_bits=acc_bits, saturate=saturate, lanes=lanes, mid_bits=mid_bits)
        return cfg, LNSMAC(cfg, pipeline=pipeline, out_pipeline=out_pipeline,
                           first_cut=first_cut)

    top = _check_name(name or f"lns_mac_b{bits}g{gamma}l{lanes}")
    cfg, comp = _run(build)
    params = {"bits": bits, "gamma": gamma, "frac_bits": cfg.fmt.frac_bits, "lanes": lanes,
              "acc_bits": acc_bits, "window": window, "lut_frac": lut_frac,
              "mid_bits": cfg.mid_bits, "saturate": saturate, "pipeline": pipeline,
              "out_pipeline": out_pipeline, "first_cut": first_cut, "q_top": cfg.q_top, "q_lo": cfg.q_lo, "lsb_q": cfg.lsb_q,
              "product_bits": cfg.product_bits}
    timing = {"latency_cycles": comp.latency,
              "latency_definition": "cycles from accepting a vector's last beat to "
                                    "presenting its result",
              "throughput": "one input beat per cycle",
              "products_per_cycle": lanes, "initiation_interval": 1}
    _write(comp, top, out_dir, "mac", "lnsmadam.hw.mac.LNSMAC", params, timing, {
        "protocol": "i_stream: one beat = lanes operand pairs (a.k, b.k LNS codes, exp in the "
                    "LSBs, sign the MSB), first/last mark a vector; o_stream: one result per "
                    "vector (acc: accumulator word, LSB weight 2**lsb_q; sign/exp/zero: its "
                    "nearest LNS exponent in field units, add the operand biases)"})


@generate.command("int8-mac")
@click.option("--lanes", type=int, default=1, show_default=True,
              help="Operand pairs (products) per beat, 1..256.")
@click.option("--acc-bits", type=int, default=32, show_default=True,
              help="Accumulator width, 16..62.")
@click.option("--saturate/--wrap", default=True, show_default=True,
              help="Saturate or wrap on accumulator overflow.")
@_pipeline_option(2, "Register stages before the accumulator, 1 .. 2 + ceil(log2(lanes)).")
@_name_option
@_out_option
def int8_mac(lanes, acc_bits, saturate, pipeline, name, out_dir):
    """Streaming signed 8-bit dot-product unit, the area baseline (lnsmadam.hw.mac.INT8MAC)."""
    from ..hw.mac import INT8MAC

    top = _check_name(name or f"int8_mac_l{lanes}")
    comp = _run(lambda: INT8MAC(lanes, acc_bits=acc_bits, saturate=saturate,
                                pipeline=pipeline))
    params = {"lanes": lanes, "acc_bits": acc_bits, "saturate": saturate,
              "pipeline": pipeline}
    timing = {"latency_cycles": comp.latency,
              "latency_definition": "cycles from accepting a vector's last beat to "
                                    "presenting its result",
              "throughput": "one input beat per cycle",
              "products_per_cycle": lanes, "initiation_interval": 1}
    _write(comp, top, out_dir, "int8-mac", "lnsmadam.hw.mac.INT8MAC", params, timing)


@generate.command("fp8-mac")
@click.option("--a-format", type=click.Choice(["e4m3", "e5m2"]), default="e4m3",
              show_default=True, help="FP8 format of the a operands.")
@click.option("--b-format", type=click.Choice(["e4m3", "e5m2"]), default="e4m3",
              show_default=True, help="FP8 format of the b operands.")
@click.option("--lanes", type=int, default=1, show_default=True,
              help="Operand pairs (products) per beat, 1..256.")
@click.option("--window", type=int, default=16, show_default=True,
              help="Octaves of products kept below the largest product.")
@click.option("--acc-bits", type=int, default=32, show_default=True,
              help="Accumulator width, window + man_bits_a + man_bits_b + 1 .. 62.")
@click.option("--saturate/--wrap", default=True, show_default=True,
              help="Saturate or wrap on accumulator overflow.")
@_pipeline_option(2, "Register stages before the accumulator, 1 .. 2 + ceil(log2(lanes)).")
@_name_option
@_out_option
def fp8_mac(a_format, b_format, lanes, window, acc_bits, saturate, pipeline, name, out_dir):
    """Streaming FP8 dot-product unit, a baseline (lnsmadam.hw.fpmac.FP8MAC)."""
    from ..golden.fpmac import FP8MACConfig
    from ..hw.fpmac import FP8MAC

    def build():
        cfg = FP8MACConfig(a_format, b_format, window=window, acc_bits=acc_bits,
                           saturate=saturate, lanes=lanes)
        return cfg, FP8MAC(cfg, pipeline=pipeline)

    top = _check_name(name or f"fp8_mac_{a_format}_{b_format}_l{lanes}")
    cfg, comp = _run(build)
    params = {"a_format": a_format, "b_format": b_format, "lanes": lanes, "window": window,
              "acc_bits": acc_bits, "saturate": saturate, "pipeline": pipeline,
              "q_top": cfg.q_top, "lsb": cfg.lsb, "product_bits": cfg.product_bits}
    timing = _stream_timing(comp, lanes)
    _write(comp, top, out_dir, "fp8-mac", "lnsmadam.hw.fpmac.FP8MAC", params, timing, {
        "protocol": "i_stream: one beat = lanes operand pairs (a.k, b.k FP8 codes), first/last "
                    "mark a vector; o_stream: acc, one per vector (LSB weight 2**lsb); NaN/Inf "
                    "operands contribute 0"})


@generate.command("fp32-mac")
@_pipeline_option(2, "Register stages before the accumulator, 1..2.")
@_name_option
@_out_option
def fp32_mac(pipeline, name, out_dir):
    """Streaming FP32 fused multiply-add, a baseline (lnsmadam.hw.fpmac.FP32MAC)."""
    from ..golden.fpmac import FP32MACConfig
    from ..hw.fpmac import FP32MAC

    top = _check_name(name or "fp32_mac")
    comp = _run(lambda: FP32MAC(FP32MACConfig(), pipeline=pipeline))
    params = {"lanes": 1, "pipeline": pipeline, "rounding": "nearest even",
              "subnormals": True, "nan": "0x7fc00000"}
    timing = _stream_timing(comp, 1)
    _write(comp, top, out_dir, "fp32-mac", "lnsmadam.hw.fpmac.FP32MAC", params, timing, {
        "protocol": "i_stream: one beat = one operand pair (a.0, b.0 IEEE binary32 bit patterns), "
                    "first/last mark a vector; o_stream: acc = fma(a, b, acc) over the vector "
                    "(from -0), IEEE binary32, round to nearest even"})


@generate.command("mul")
@_format_options
@click.option("--underflow", type=click.Choice(["flush", "min"]), default="flush",
              show_default=True, help="Results below E = 1: ZERO (flush) or E = 1 (min).")
@click.option("--shift", type=int, default=None,
              help="Re-bias subtracted from Ea + Eb (default: emax = 2**(bits-1) - 1).")
@click.option("--registered/--combinational", default=True, show_default=True,
              help="Register the output (latency 1) or not (latency 0).")
@_name_option
@_out_option
def mul(bits, gamma, underflow, shift, registered, name, out_dir):
    """LNS multiply (lnsmadam.hw.mul.LNSMul)."""
    from ..hw.mul import LNSMul

    def build():
        fmt = _fmt(bits, gamma, underflow)
        return fmt, LNSMul(fmt, shift=shift, registered=registered)

    top = _check_name(name or f"lns_mul_b{bits}g{gamma}")
    fmt, comp = _run(build)
    params = {"bits": bits, "gamma": gamma, "frac_bits": fmt.frac_bits,
              "underflow": underflow, "shift": comp.shift, "registered": registered}
    timing = {"latency_cycles": 1 if registered else 0, "throughput": "one product per cycle",
              "initiation_interval": 1}
    _write(comp, top, out_dir, "mul", "lnsmadam.hw.mul.LNSMul", params, timing)


@generate.command("convert")
@click.option("--direction", type=click.Choice(["to-linear", "from-linear"]), required=True,
              help="LNS exponent -> linear fixed point, or linear -> nearest LNS exponent.")
@_format_options
@click.option("--lut-frac", type=int, default=8, show_default=True,
              help="to-linear: fraction bits of the 2**(r/gamma) table.")
@click.option("--window", type=int, default=16, show_default=True,
              help="to-linear: octaves kept (output has lut_frac + window + 1 bits).")
@click.option("--acc-bits", type=int, default=32, show_default=True,
              help="from-linear: width of the signed input word.")
@click.option("--mid-bits", type=int, default=None,
              help="from-linear: mantissa bits compared with the midpoints (default --lut-frac).")
@click.option("--q-lo", type=int, default=None,
              help="to-linear: lowest octave kept (default: the MAC's, q_top - window + 1).")
@click.option("--lsb-q", type=int, default=None,
              help="from-linear: octave of the input LSB (default: the MAC's, q_lo - lut_frac).")
@click.option("--registered/--combinational", default=False, show_default=True,
              help="Register the outputs (latency 1) or not (latency 0).")
@_name_option
@_out_option
def convert(direction, bits, gamma, lut_frac, window, acc_bits, mid_bits, q_lo, lsb_q,
            registered, name, out_dir):
    """LNS <-> linear converters (lnsmadam.hw.convert.ToLinear / FromLinear).

    Defaults are the converters of `lnsmadam generate mac` with the same --bits, --gamma,
    --lut-frac and --window; --q-lo / --lsb-q place the window anywhere.
    """
    from ..golden.mac import MACConfig
    from ..hw.convert import FromLinear, ToLinear

    def build():
        fmt = _fmt(bits, gamma)
        mb = lut_frac if mid_bits is None else mid_bits
        if (q_lo if direction == "to-linear" else lsb_q) is None:
            # the dot-product unit's window decides the default placement
            if direction == "to-linear":
                cfg = MACConfig(fmt, lut_frac=lut_frac, window=window,
                                acc_bits=max(acc_bits, lut_frac + window + 1))
            else:
                cfg = MACConfig(fmt, lut_frac=lut_frac, window=window, acc_bits=acc_bits,
                                mid_bits=mb)
            ql, lq = cfg.q_lo, cfg.lsb_q
        else:
            ql, lq = q_lo, lsb_q
        if direction == "to-linear":
            comp = ToLinear(fmt, lut_frac, ql, window, registered=registered)
            return fmt, comp, {"lut_frac": lut_frac, "window": window, "q_lo": ql,
                               "p_bits": comp.p_bits, "out_bits": lut_frac + window + 1}
        comp = FromLinear(acc_bits, fmt.frac_bits, mb, lq, registered=registered)
        return fmt, comp, {"acc_bits": acc_bits, "mid_bits": mb, "lsb_q": lq}

    short = "to_linear" if direction == "to-linear" else "from_linear"
    top = _check_name(name or f"{short}_b{bits}g{gamma}")
    fmt, comp, extra = _run(build)
    params = {"direction": direction, "bits": bits, "gamma": gamma,
              "frac_bits": fmt.frac_bits, **extra, "registered": registered}
    timing = {"latency_cycles": 1 if registered else 0,
              "throughput": "one conversion per cycle", "initiation_interval": 1}
    cls = "ToLinear" if direction == "to-linear" else "FromLinear"
    _write(comp, top, out_dir, "convert", f"lnsmadam.hw.convert.{cls}", params, timing)


@generate.command("update")
@_format_options
@click.option("--weight-bits", type=int, default=12, show_default=True,
              help="Stored weight (update format) width, sign included (3..24).")
@click.option("--weight-gamma", type=int, default=128, show_default=True,
              help="Base factor of the update format (a power of two, 1..2**(bits-2)).")
@click.option("--weight-underflow", type=click.Choice(["min", "flush"]), default="min",
              show_default=True, help="Underflow rule of the stored weights.")
@click.option("--state-exp-bits", type=int, default=6, show_default=True,
              help="Exponent bits of the second-moment minifloat (2..8).")
@click.option("--state-man-bits", type=int, default=12, show_default=True,
              help="Mantissa bits of the state, hidden one included (frac_bits(--gamma)+2..24).")
@click.option("--state-offset", type=int, default=-52, show_default=True,
              help="Octave of the state's exponent 0 (-1024..1024).")
@click.option("--lr-step", type=int, default=1, show_default=True,
              help="Learning rate in weight-exponent LSBs per unit of normalised gradient (1..64).")
@click.option("--g-bound", type=int, default=10, show_default=True,
              help="Clamp of the normalised gradient (1..64).")
@click.option("--beta-k", type=int, default=10, show_default=True,
              help="EMA decay beta = 1 - 2**-k (1..20).")
@click.option("--guard-bits", type=int, default=2, show_default=True,
              help="Extra alignment bits of the EMA add (0..8).")
@click.option("--bias-correction/--seeding", default=False, show_default=True,
              help="Madam's bias correction (bc_exp input) or seeding v with the first g**2.")
@click.option("--bc-bits", type=int, default=24, show_default=True,
              help="Fraction bits of the beta**t register (12..40; sets the bc_exp width).")
@click.option("--bias-bits", type=int, default=32, show_default=True,
              help="Width of the signed g_bias input (2..48; 32 holds every legal bias).")
@_pipeline_option(5, "Register cuts before the output register, 0..6 (latency = pipeline + 1).")
@_name_option
@_out_option
def update(bits, gamma, weight_bits, weight_gamma, weight_underflow, state_exp_bits,
           state_man_bits, state_offset, lr_step, g_bound, beta_k, guard_bits,
           bias_correction, bc_bits, bias_bits, pipeline, name, out_dir):
    """Streaming LNS-Madam weight-update engine (lnsmadam.hw.update.MadamUpdate).

    --bits/--gamma give the gradient format; the other options are the fields of
    golden.update.MadamConfig (defaults: MadamConfig()).
    """
    from ..golden.format import LNSFormat
    from ..golden.update import MadamConfig, StateFormat
    from ..hw.update import MadamUpdate, config_to_dict

    def build():
        try:
            weight = LNSFormat.from_gamma(weight_bits, weight_gamma, underflow=weight_underflow)
        except ValueError as exc:
            raise _renamed(exc, {"bits": "weight_bits", "gamma": "weight_gamma",
                                 "underflow": "weight_underflow"}) from None
        try:
            state = StateFormat(state_exp_bits, state_man_bits, state_offset)
        except ValueError as exc:
            raise _renamed(exc, {"state exp_bits": "state_exp_bits",
                                 "state man_bits": "state_man_bits",
                                 "state offset": "state_offset"}) from None
        grad = _fmt(bits, gamma)
        try:
            cfg = MadamConfig(weight=weight, grad=grad, state=state, lr_step=lr_step,
                              g_bound=g_bound, beta_k=beta_k, guard_bits=guard_bits,
                              bias_correction=bias_correction, bc_bits=bc_bits)
        except ValueError as exc:
            raise _renamed(exc, {"state man_bits": "state_man_bits"}) from None
        return cfg, MadamUpdate(cfg, pipeline=pipeline, bias_bits=bias_bits)

    top = _check_name(name or f"madam_update_b{bits}g{gamma}w{weight_bits}"
                      + ("bc" if bias_correction else ""))
    cfg, comp = _run(build)
    params = {"config": config_to_dict(cfg), "pipeline": pipeline, "cuts": list(comp.cuts),
              "bias_bits": bias_bits, "bc_exp_bits": comp.bc_width}
    timing = {"latency_cycles": comp.latency,
              "latency_definition": "cycles from accepting a weight to presenting its result",
              "throughput": "one weight per cycle", "updates_per_cycle": 1,
              "initiation_interval": 1}
    _write(comp, top, out_dir, "update", "lnsmadam.hw.update.MadamUpdate", params, timing, {
        "protocol": "i_stream: one weight per beat (w: weight code, v: state code, g: gradient "
                    "code; packed words equal the golden codes); o_stream: w_new, v_new and n "
                    "(the signed applied exponent step), in order, exactly "
                    "golden.update.madam_step. i_stream.ready = ~o_stream.valid | "
                    "o_stream.ready.",
        "side_band": "g_bias (gradient tensor bias, signed), e_clamp (sigma* clamp, weight "
                     "field), bc_exp (signed bias-correction exponent, ignored when seeding): "
                     "per step, change them only while the engine is empty (from the first "
                     "weight of a step accepted to its last result presented)."})
