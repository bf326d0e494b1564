"""Resources and Fmax of the SoC per board and config (YoWASP builds), with epoch times.

    ./run python bench/boards.py [--runs RUN ...] [--seeds 1,2] [--cycles PATH]
                                 [--json out/boards.json] [--keep DIR]

A RUN is ``BOARD`` (its default config) or ``BOARD:key=value,key=value`` with SoCConfig
fields (``sizes=64-32-10``, ``lanes=4``, ``clk_freq=20e6``, ``n_records=1400``). Default
runs: every board's default config. Each run is one ``lnsmadam.boards.build.build`` per
seed (nextpnr placement seed); the table has the LUT4/FF/BRAM/SPRAM/DSP counts, the
required clock, the achieved Fmax (min and max over seeds) and whether it fits and meets
timing.

``--cycles``: the JSON of ``bench/trainer_cycles.py`` (cycles per training sample, from the
Verilator twin); the epoch time is then ``n_train * cycles_per_sample / clk_freq`` with
n_train = 1437 (the digits training split), for the config with the same sizes and lanes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from lnsmadam.boards.build import build
from lnsmadam.boards.platforms import BOARDS

N_TRAIN = 1437


def parse_run(text: str) -> tuple[str, dict]:
    board, _, rest = text.partition(":")
    over = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        if k == "sizes":
            over[k] = tuple(int(x) for x in v.split("-"))
        elif k == "clk_freq":
            over[k] = float(v)
        else:
            over[k] = int(v)
    return board, over


def _cycles(path) -> dict:
    if not path:
        return {}
    rows = json.loads(Path(path).read_text())
    rows = rows.get("configs", rows.get("rows", rows)) if isinstance(rows, dict) else rows
    return {(tuple(r["sizes"]), r["lanes"]): r["cycles_per_sample"] for r in rows}


def run(runs, seeds, keep=None, cycles=None) -> list[dict]:
    out = []
    cyc = _cycles(cycles)
    for text in runs:
        board, over = parse_run(text)
        reps = []
        for seed in seeds:
            print(f"== {board} {over} seed {seed}", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(prefix="lnsmadam-bench-") as tmp:
                d = Path(keep) / f"{board}-{len(out)}-s{seed}" if keep else Path(tmp)
                reps.append(build(board, overrides=over, out_dir=d, seed=seed,
                                  progress=lambda m: print(m, file=sys.stderr, flush=True)))
        r0 = reps[0]
        res = {k: (v["used"], v["available"]) for k, v in r0["resources"].items()}
        fmax = [r["timing"]["achieved_mhz"] for r in reps if r["timing"]["achieved_mhz"]]
        cfg = r0["config"]
        per = cyc.get((tuple(cfg["sizes"]), cfg["lanes"]))
        out.append({
            "run": text, "board": board, "config": cfg, "seeds": list(seeds),
            "ok": [r["ok"] for r in reps], "problems": [r["problems"] for r in reps],
            "resources": res, "required_mhz": r0["timing"]["required_mhz"],
            "fmax_mhz": fmax, "critical_path": r0["timing"]["critical_path"],
            "seconds": [r["seconds"]["total"] for r in reps],
            "cycles_per_sample": per,
            "epoch_seconds": (N_TRAIN * per / cfg["clk_freq"]) if per else None,
        })
    return out


def table(rows) -> str:
    head = ("board", "sizes", "lanes", "logic", "FF", "BRAM", "SPRAM", "DSP", "clock MHz",
            "Fmax MHz", "fits+timing", "epoch s")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        c, res = r["config"], r["resources"]

        def f(k):
            return f"{res[k][0]}/{res[k][1]}" if k in res else "-"

        fm = r["fmax_mhz"]
        fmax = "-" if not fm else (f"{min(fm):.1f}" if len(fm) == 1 else
                                   f"{min(fm):.1f}..{max(fm):.1f}")
        lines.append("| " + " | ".join(str(x) for x in (
            r["board"], "-".join(map(str, c["sizes"])), c["lanes"], f("logic"), f("ff"),
            f("bram"), f("spram"), f("dsp"), f"{r['required_mhz']:g}", fmax,
            "yes" if all(r["ok"]) else "no",
            f"{r['epoch_seconds']:.2f}" if r["epoch_seconds"] else "-")) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", default=list(BOARDS))
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--cycles", default=None, help="bench/trainer_cycles.py JSON")
    ap.add_argument("--json", default="out/boards.json")
    ap.add_argument("--keep", default=None, help="keep each build under this directory")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    t0 = time.monotonic()
    rows = run(a.runs, seeds, a.keep, a.cycles)
    print(table(rows))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"command": "python bench/boards.py " +
                                            " ".join(sys.argv[1:]),
                                            "seconds": round(time.monotonic() - t0, 1),
                                            "rows": rows}, indent=1) + "\n")
        print(f"wrote {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
