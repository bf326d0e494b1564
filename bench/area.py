"""FPGA area of the LNS dot-product unit against the INT8 baseline: the tables of
``docs/results.md`` §7 and ``docs/area.md`` from a sweep of the ``area`` job.

    python bench/area.py [GRID] [-o DIR] [--jobs N] [--scheduler ADDRESS] [--json FILE]
    python bench/area.py --tables DIR [--json FILE]

The first form runs ``GRID`` (default ``bench/grids/area.toml``: whole units at 1, 4, 8
and 16 lanes, the parts of a lane, the 8-lane units placed and routed with seeds 1-3, on
iCE40 and ECP5) with ``lnsmadam sweep``'s engine into ``DIR`` (default
``out/sweep/area``; what is done there already is kept), then prints the tables; the
second only prints the tables of a finished sweep folder, e.g. after
``lnsmadam sweep bench/grids/area.toml -o DIR`` on a cluster. ``--json`` writes the rows
(``units``, ``breakdown``, ``pnr``) and the flow (``meta``). The designs, the Yosys script
and the place-and-route wrapper: :mod:`lnsmadam.boards.area`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lnsmadam.boards.area import BASELINES, DESIGNS, LANE_BLOCKS, PNR, SYNTH, TREE_BLOCKS
from lnsmadam.sweep import engine
from lnsmadam.sweep.grid import load

__all__ = ["collect", "format_tables", "main"]

GRID = Path(__file__).resolve().parent / "grids" / "area.toml"


def collect(out_dir) -> dict:
    """The done ``area`` results of a sweep folder as ``{"units", "breakdown", "pnr",
    "meta"}`` (in the grid's order); failed or pending points are left out and counted in
    ``meta["missing"]``."""
    out = Path(out_dir)
    grid = load(out / "grid.toml")
    res = {"units": [], "breakdown": [], "pnr": [], "meta": {"grid": grid.title}}
    missing = 0
    for p in grid.points:
        try:
            doc = json.loads((out / "points" / p.key / "area.json").read_text())
        except (OSError, ValueError):
            doc = None
        if not doc or not doc.get("ok"):
            missing += 1
            continue
        r = doc["result"]
        res["meta"].update(r.pop("meta"))
        if "fmax_mhz" in r:
            res["pnr"].append(r)
        elif r["design"] in LANE_BLOCKS + TREE_BLOCKS:
            res["breakdown"].append({"block": r.pop("design"), **r})
        else:
            res["units"].append(r)
    res["meta"]["missing"] = missing
    return res


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("grid", nargs="?", default=str(GRID),
                    help="grid file of area jobs (default bench/grids/area.toml)")
    ap.add_argument("-o", "--out", default="out/sweep/area", help="sweep folder")
    ap.add_argument("--jobs", type=int, default=1, help="local Dask workers (default 1)")
    ap.add_argument("--scheduler", default=None, help="a running Dask scheduler instead")
    ap.add_argument("--tables", metavar="DIR", default=None,
                    help="only print the tables of the finished sweep folder DIR")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    out = args.tables
    if out is None:
        try:
            grid = load(args.grid)
            if grid.jobs != ("area",):
                ap.error(f"{args.grid}: a grid of area jobs only, got jobs {list(grid.jobs)}")
            s = engine.run(grid, args.out, jobs=args.jobs, scheduler=args.scheduler)
        except ValueError as e:
            ap.error(str(e))
        print(f"{s['ran']} jobs run, {s['skipped']} already done, {s['failed']} failed "
              f"({s['seconds']:.0f} s)", file=sys.stderr)
        out = args.out
    elif not (Path(out) / "grid.toml").exists():
        ap.error(f"--tables {out}: no grid.toml there (not a sweep folder)")
    res = collect(out)
    print(format_tables(res))
    if res["meta"]["missing"]:
        print(f"{res['meta']['missing']} points failed or not run: see {out}/sweep.md "
              "(lnsmadam sweep --report-only -o DIR)", file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
