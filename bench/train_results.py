"""Accuracy results of docs/results.md: optimiser table and second-moment formats.

    python bench/train_results.py table  [--seeds 0,1,2] [--epochs 30] [--json out/results_table.json]
                                         [--names lns-madam,int-madam,...]
    python bench/train_results.py state  [--seeds 0,1,2] [--epochs 30] [--json out/results_state.json]

``table``: test accuracy (median over seeds, and min..max) on the digits MLP 64-16-10 of the
8-bit integer LNS-Madam golden model and of the FP32 MLP with float LNS-Madam, Madam,
IntegerMadam, Fromage, Adam and SGD (tuned hyper-parameters: golden/experiment.py
FLOAT_DEFAULTS); ``--names`` runs a subset of them. The same runs as a sweep:
``bench/grids/train_table.toml``.

``state``: 8-bit integer LNS-Madam with other second-moment formats / EMA constants
(mantissa bits incl. the hidden one, beta = 1 - 2**-k), to show what the state bits buy.
As a sweep: ``bench/grids/train_state.toml``.

The bit-width sweep of docs/results.md §3 (LNS-Madam against SGD and Adam updating the
stored LNS weights directly) is the grid ``bench/grids/train_bits.toml`` (the
``train-golden`` job's ``lns-sgd`` and ``lns-adam``).

Runs use both cores (multiprocessing); each configuration is independent.
"""


from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from multiprocessing import Pool


#: the configurations of the ``table`` mode (golden/experiment.py RUN_NAMES, less the
#: storage updaters of the bit-width grid)
TABLE_NAMES = ["lns-madam", "lns-madam-float", "madam", "int-madam", "fromage", "adam", "sgd"]

#: (label, state man_bits, beta_k): the second-moment variants of the ``state`` mode.
STATE_VARIANTS = [("m12_k10 (default, 17 b)", 12, 10), ("m10_k8 (15 b)", 10, 8),
                  ("m8_k6 (13 b)", 8, 6), ("m7_k5 (12 b)", 7, 5), ("m8_k10 (13 b)", 8, 10)]


def _job(args):
    kind, name, seed, epochs, extra = args
    from lnsmadam.golden.data import load_digits_split
    from lnsmadam.golden.experiment import run
    from lnsmadam.golden.mlp import train_lns
    data = load_digits_split(0)
    t = time.perf_counter()
    if kind == "table":
        r = run(name, data, epochs, seed)
        hist = r.history
    else:
        from lnsmadam.golden.mlp import MLPConfig
        from lnsmadam.golden.update import MadamConfig, StateFormat
        _, man, k = extra
        cfg = MLPConfig(madam=MadamConfig(state=StateFormat(man_bits=man), beta_k=k))
        hist = train_lns(cfg, data, epochs, seed)["history"]
    return {"kind": kind, "name": name, "seed": seed, "extra": extra, "history": hist,
            "final_test_acc": hist[-1]["test_acc"], "seconds": time.perf_counter() - t}


def _summ(accs):
    return {"median": statistics.median(accs), "min": min(accs), "max": max(accs),
            "all": accs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["table", "state"])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--names", default=",".join(TABLE_NAMES),
                    help="table: the configurations to run (comma-separated)")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.what == "table":
        names = [n.strip() for n in args.names.split(",") if n.strip()]
        bad = sorted(set(names) - set(TABLE_NAMES))
        if bad or not names:
            ap.error(f"--names must be some of {','.join(TABLE_NAMES)}, got {args.names!r}")
        jobs = [("table", n, s, args.epochs, None) for n in names for s in seeds]
    else:
        names = [v[0] for v in STATE_VARIANTS]
        jobs = [("state", v[0], s, args.epochs, v) for v in STATE_VARIANTS for s in seeds]
    t0 = time.perf_counter()
    with Pool(args.procs) as pool:
        res = []
        for r in pool.imap_unordered(_job, jobs):
            res.append(r)
            print(f"  done {r['name']:>16} seed {r['seed']} {r['extra'] or ''}: "
                  f"{100 * r['final_test_acc']:.2f} % ({r['seconds']:.0f} s)", file=sys.stderr)
    wall = time.perf_counter() - t0
    groups = {}
    for r in res:
        groups.setdefault(r["name"], []).append(100 * r["final_test_acc"])
    summary = {k: _summ(sorted(v)) for k, v in groups.items()}
    print(f"{'configuration':>24} {'median test %':>14} {'min..max':>14}")
    for n in names:
        s = summary[n]
        print(f"{n:>24} {s['median']:14.2f} {s['min']:6.2f}..{s['max']:6.2f}")
    print(f"wall time {wall:.0f} s on {args.procs} processes")
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"what": args.what, "seeds": seeds, "epochs": args.epochs,
                       "summary": summary, "runs": res, "wall_s": wall,
                       "command": "python bench/train_results.py " + " ".join(argv or sys.argv[1:])},
                      fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
