# amaranth: UnusedElaboratable=no
"""ASIC area, Fmax and energy per operation of the LNS units against the baselines.

    python bench/asic.py [--lib osu018] [--clock-ns 10] [--designs all]
                         [--streams 256] [--cycles 256] [--json docs/data/asic.json]

Every design goes through :func:`lnsmadam.boards.asic.asic_report` (the flow of
``lnsmadam asic``): Yosys to the library, OpenSTA timing and per-instance power, a zero-delay
gate-level simulation on the operands of real training (the golden digits MLP, 200 steps
in, the same recorded tensors for every design: LNS codes as they are, INT8/FP8 quantised
per tensor), results checked bit-exact. Designs:

* ``lns_l<N>``: :class:`~lnsmadam.hw.mac.LNSMAC`, default ``MACConfig`` (8-bit, gamma 8,
  window 16, 32-bit saturating accumulator), ``pipeline=2``, ``out_pipeline=3``;
* ``lns_lean_l<N>``: the same unit without the ``acc`` output and its delay registers
  (``out_acc=False``) and with the unpipelined output converter (``out_pipeline=0``): the
  LNS result only, the fewest flip-flops;
* ``lns_logcut_l<N>``, ``lns_w8_l<N>``, ``lns_logcut_w8_l<N>``: ``lns_lean`` with the design
  changes tried against the energy gap: ``first_cut="log"`` (the first register after the
  exponent adders, 11 bits a lane, instead of after the shifters, 25 bits), and/or an
  8-octave window (17-bit products; a numerics change, not the trained configuration);
* ``lns_core_l<N>``: the unit without its output converter (like INT8, whose output is the
  accumulator word only);
* ``int8_l<N>``: :class:`~lnsmadam.hw.mac.INT8MAC`, 32-bit saturating, ``pipeline=2``;
* ``fp8_l<N>`` / ``fp8e5_l<N>``: :class:`~lnsmadam.hw.fpmac.FP8MAC`, E4M3 x E4M3 and
  E5M2 x E5M2, window 16, 32-bit saturating, ``pipeline=2``;
* ``fp32``: :class:`~lnsmadam.hw.fpmac.FP32MAC`, one IEEE binary32 FMA per cycle, ``pipeline=2``;
* ``update``: :class:`~lnsmadam.hw.update.MadamUpdate`, ``MadamConfig()``, ``pipeline=5``.

Prints the table and writes the reports of every design into one JSON file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lnsmadam.boards.asic import asic_report
from lnsmadam.boards.asic.stimulus import record_training, samples_to_fill
from lnsmadam.golden.fpmac import FP8MACConfig, FP32MACConfig
from lnsmadam.golden.mac import MACConfig
from lnsmadam.golden.update import MadamConfig
from lnsmadam.hw.fpmac import FP8MAC, FP32MAC
from lnsmadam.hw.mac import INT8MAC, LNSMAC
from lnsmadam.hw.update import MadamUpdate

LANES = (1, 4, 8, 16)


class _LNSCore(LNSMAC):
    """LNSMAC without its output converter (``out_pipeline=0``, sign/exp/zero stay 0)."""

    has_lns_output = False

    def _out_fields(self, m, acc, adv):
        return []


def design(name: str):
    """``(component, kind)`` of a design name (see the module docstring)."""
    base, _, lanes = name.rpartition("_l")
    n = int(lanes) if lanes.isdigit() else 1
    if base == "lns":
        return LNSMAC(MACConfig(lanes=n), pipeline=2)
    if base == "lns_lean":
        return LNSMAC(MACConfig(lanes=n), pipeline=2, out_pipeline=0, out_acc=False)
    if base in ("lns_logcut", "lns_w8", "lns_logcut_w8"):
        cfg = MACConfig(lanes=n, window=8 if base.endswith("w8") else 16)
        return LNSMAC(cfg, pipeline=2, out_pipeline=0, out_acc=False,
                      first_cut="log" if "logcut" in base else "linear")
    if base == "lns_core":
        return _LNSCore(MACConfig(lanes=n), pipeline=2, out_pipeline=0)
    if base == "int8":
        return INT8MAC(n, acc_bits=32, saturate=True, pipeline=2)
    if base == "fp8":
        return FP8MAC(FP8MACConfig("e4m3", "e4m3", lanes=n), pipeline=2)
    if base == "fp8e5":
        return FP8MAC(FP8MACConfig("e5m2", "e5m2", lanes=n), pipeline=2)
    if name == "fp32":
        return FP32MAC(FP32MACConfig(), pipeline=2)
    if name == "update":
        return MadamUpdate(MadamConfig(), pipeline=5)
    raise ValueError(f"unknown design {name!r}")


ALL = ([f"lns_l{n}" for n in LANES] + [f"lns_lean_l{n}" for n in (1, 4, 16)]
       + [f"lns_core_l{n}" for n in (4, 16)] + [f"int8_l{n}" for n in LANES]
       + [f"fp8_l{n}" for n in (1, 4, 16)] + ["fp8e5_l4", "fp32", "update"]
       + [f"lns_logcut_l{n}" for n in (8, 16)] + ["lns_w8_l16", "lns_logcut_w8_l16"])


def _log(m):
    print(m, file=sys.stderr, flush=True)


def run(designs, lib, clock_ns, streams, cycles, keep=None) -> dict:
    t0 = time.monotonic()
    # one recording for all: enough samples to fill every design's streams (the widest
    # unit needs the most: fewest beats per sample)
    need = max(samples_to_fill("update" if d == "update" else "lns", _lanes(d), streams, cycles)
               for d in designs)
    _log(f"recording {need} training samples")
    trace = record_training(samples=need, warm_samples=200)
    rows = []
    for d in designs:
        _log(f"== {d}")
        out = Path(keep or "out/asic_bench") / d
        rep = asic_report(design(d), d, {}, lib, clock_ns, out, streams=streams,
                          cycles=cycles, trace=trace, keep=False, log=_log)
        rows.append({"design": d, **rep})
    return {"meta": {"command": "python bench/asic.py " + " ".join(sys.argv[1:]),
                     "library": lib, "clock_ns": clock_ns, "streams": streams,
                     "cycles": cycles, "training_samples": need, "warm_samples": 200,
                     "seconds": round(time.monotonic() - t0, 1)},
            "designs": rows}


def _lanes(d):
    tail = d.rpartition("_l")[2]
    return int(tail) if tail.isdigit() else 1


def format_table(res: dict) -> str:
    rows = res["designs"]
    by = {r["design"]: r for r in rows}
    out = ["| design | lanes | cells | flops | area µm² | area/lane µm² | Fmax MHz | "
           "pJ/op simulated | pJ/op at activity 0.1 | clock-pin share | toggle rate |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        n = _lanes(r["design"])
        p, pa = r.get("power", {}), r.get("power_assumed", {})
        out.append(f"| {r['design']} | {n} | {r['cells']} | {r['flops']} | "
                   f"{r['area_um2']:.0f} | {r['area_um2'] / n:.0f} | "
                   f"{r.get('timing', {}).get('fmax_mhz', '-')} | "
                   f"{p.get('energy_per_slot_pj', float('nan')):.2f} | "
                   f"{pa.get('energy_per_op_pj', float('nan')):.2f} | "
                   f"{p.get('flop_clock_share', float('nan')):.2f} | "
                   f"{p.get('mean_toggle_rate', float('nan')):.3f} |")
    out += ["", "Per extra lane (from the two largest lane counts measured):", "",
            "| design | area µm²/lane | energy pJ per extra MAC slot |", "|---|---|---|"]
    for base in ("lns", "lns_lean", "lns_core", "lns_logcut", "int8", "fp8"):
        ls = sorted(_lanes(d) for d in by if d.rpartition("_l")[0] == base)
        if len(ls) >= 2:
            a, b = by[f"{base}_l{ls[-2]}"], by[f"{base}_l{ls[-1]}"]
            k = ls[-1] - ls[-2]
            ea = a.get("power", {}).get("energy_per_cycle_pj", float("nan"))
            eb = b.get("power", {}).get("energy_per_cycle_pj", float("nan"))
            out.append(f"| {base} ({ls[-2]}->{ls[-1]}) | {(b['area_um2'] - a['area_um2']) / k:.0f}"
                       f" | {(eb - ea) / k:.2f} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default="osu018")
    ap.add_argument("--clock-ns", type=float, default=10.0)
    ap.add_argument("--designs", default="all", help=f"comma list or 'all' ({','.join(ALL)})")
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--cycles", type=int, default=256)
    ap.add_argument("--json", default="out/asic.json")
    ap.add_argument("--keep", default=None, help="report directory (default out/asic_bench)")
    args = ap.parse_args(argv)
    designs = ALL if args.designs == "all" else [d.strip() for d in args.designs.split(",")]
    for d in designs:
        design(d)                                       # fail early on a bad name
    res = run(designs, args.lib, args.clock_ns, args.streams, args.cycles, args.keep)
    print(format_table(res))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    for r in res["designs"]:
        r.pop("cells_by_type", None)
    Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    _log(f"wrote {args.json} ({res['meta']['seconds']} s)")


if __name__ == "__main__":
    main()
