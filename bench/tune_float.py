"""Tuning sweep of the FP32 baselines on the 8x8 digits (golden/baseline.py + golden/optim.py).

Trains the float MLP (default 64-16-10, batch 1) with every configuration of the grid below
for each seed, and reports the final test accuracy (median over seeds), the per-seed values
and the time taken.  The data split is fixed (``--split-seed``); the seed sets the initial
weights (``init_mlp``) and the sample order (``epoch_order``).

    ./run python bench/tune_float.py                      # full grid, 30 epochs, seeds 0 1 2
    ./run python bench/tune_float.py --epochs 5 --only adam sgd --json out/quick.json
    ./run python bench/tune_float.py --only adam --lr 3e-4 5e-4 --jobs 1 --json out/adam_lr.json

``--lr`` replaces the grid's learning rates (IntegerMadam's ``base_lr``): every selected grid
entry is run with each of the given values instead (its other settings kept, duplicates
dropped).

Writes a JSON file (default ``out/tune_float.json``) with every run's per-epoch history.
"""

from __future__ import annotations

import os

# one BLAS thread per worker process (the matrices are tiny; threads only contend)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

GRID: list[tuple[str, dict]] = [
    ("adam", {"lr": 1e-3}),
    ("adam", {"lr": 3e-3}),
    ("adam", {"lr": 1e-2}),
    ("sgd", {"lr": 0.01}),
    ("sgd", {"lr": 0.03}),
    ("sgd", {"lr": 0.1}),
    ("madam", {"lr": 0.01, "p_scale": 3.0}),
    ("madam", {"lr": 0.01, "p_scale": 20.0}),
    ("lns-madam-float", {"lr": 1 / 128, "p_scale": 3.0}),
    ("lns-madam-float", {"lr": 1 / 128, "p_scale": 20.0}),
    ("int-madam", {"base_lr": 3e-4, "p_scale": 3.0}),
    ("int-madam", {"base_lr": 1e-3, "p_scale": 3.0}),
    ("int-madam", {"base_lr": 3e-3, "p_scale": 3.0}),
    ("int-madam", {"base_lr": 1e-3, "p_scale": 20.0}),
    ("fromage", {"lr": 0.001, "p_bound": None}),
    ("fromage", {"lr": 0.003, "p_bound": None}),
    ("fromage", {"lr": 0.01, "p_bound": None}),
    ("fromage", {"lr": 0.03, "p_bound": None}),
]


def _one_run(args: tuple) -> dict:
    name, kw, sizes, epochs, seed, split_seed = args
    from lnsmadam.golden.baseline import train_float
    from lnsmadam.golden.data import load_digits_split

    data = load_digits_split(split_seed)
    t0 = time.perf_counter()
    r = train_float(name, kw, sizes, epochs, seed, data)
    return {"optimizer": name, "opt_kwargs": kw, "seed": seed,
            "final_test_acc": r["history"][-1]["test_acc"] if r["history"] else None,
            "final_train_acc": r["history"][-1]["train_acc"] if r["history"] else None,
            "best_test_acc": max((m["test_acc"] for m in r["history"]), default=None),
            "seconds": time.perf_counter() - t0, "history": r["history"]}


def _fmt_kw(kw: dict) -> str:
    def v(x):
        if isinstance(x, float) and x == 1 / 128:
            return "1/128"
        return f"{x:g}" if isinstance(x, float) else str(x)
    return ", ".join(f"{k}={v(x)}" for k, x in kw.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 16, 10])
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", default=None, help="optimizer names to keep")
    ap.add_argument("--lr", type=float, nargs="+", default=None,
                    help="run the selected entries with these learning rates instead")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path, default=Path("out/tune_float.json"))
    a = ap.parse_args(argv)
    if a.epochs < 1 or a.jobs < 1:
        ap.error("--epochs and --jobs must be >= 1")
    if a.lr is not None and any(not lr > 0 for lr in a.lr):
        ap.error("--lr values must be > 0")

    grid = [(n, kw) for n, kw in GRID if a.only is None or n in a.only]
    if not grid:
        ap.error(f"--only matches nothing; names: {sorted({n for n, _ in GRID})}")
    if a.lr is not None:
        swept = []
        for n, kw in grid:
            for lr in a.lr:
                entry = (n, {**kw, "base_lr" if "base_lr" in kw else "lr": lr})
                if entry not in swept:
                    swept.append(entry)
        grid = swept
    tasks = [(n, kw, tuple(a.sizes), a.epochs, s, a.split_seed) for n, kw in grid for s in a.seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        runs = list(ex.map(_one_run, tasks))
    wall = time.perf_counter() - t0

    rows = []
    for n, kw in grid:
        rs = [r for r in runs if r["optimizer"] == n and r["opt_kwargs"] == kw]
        accs = [r["final_test_acc"] for r in rs]
        rows.append({"optimizer": n, "opt_kwargs": kw,
                     "median_test_acc": statistics.median(accs),
                     "test_accs": accs,
                     "median_train_acc": statistics.median(r["final_train_acc"] for r in rs),
                     "median_best_test_acc": statistics.median(r["best_test_acc"] for r in rs),
                     "seconds_per_epoch": statistics.median(r["seconds"] for r in rs) / a.epochs})

    title = (f"digits {'-'.join(map(str, a.sizes))}, batch 1, {a.epochs} epochs, "
             f"seeds {a.seeds}, split {a.split_seed}: final test accuracy")
    print(title)
    hdr = f"{'optimizer':<16} {'settings':<26} {'median':>7} {'per seed':<24} {'train':>6} " \
          f"{'best':>6} {'s/ep':>5}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        per = " ".join(f"{x:.4f}" for x in r["test_accs"])
        print(f"{r['optimizer']:<16} {_fmt_kw(r['opt_kwargs']):<26} {r['median_test_acc']:>7.4f} "
              f"{per:<24} {r['median_train_acc']:>6.4f} {r['median_best_test_acc']:>6.4f} "
              f"{r['seconds_per_epoch']:>5.2f}")
    best = {}
    for r in rows:
        b = best.get(r["optimizer"])
        if b is None or r["median_test_acc"] > b["median_test_acc"]:
            best[r["optimizer"]] = r
    print("best per optimizer: " + "; ".join(
        f"{n} ({_fmt_kw(r['opt_kwargs'])}) {r['median_test_acc']:.4f}" for n, r in best.items()))
    print(f"wall time {wall:.1f} s with {a.jobs} worker(s)")

    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"title": title, "epochs": a.epochs, "seeds": a.seeds,
                                  "sizes": a.sizes, "split_seed": a.split_seed,
                                  "wall_seconds": wall, "summary": rows,
                                  "best": {n: r["opt_kwargs"] for n, r in best.items()},
                                  "runs": runs}, indent=1))
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
