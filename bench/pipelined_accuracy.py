"""What does the engine's pipelined mode cost in accuracy?

Trains the digits MLP (the §1 setup of ``docs/results.md``: split seed 0, batch 1, the
on-device order ``epoch_order(n, seed, epoch)``, 30 epochs) with

* ``exact``: the integer golden model, LNS-Madam as specified (p_scale 10, lr_step 1),
  bit-identical with the device's exact mode;
* ``pipelined``: the same model in the engine's pipelined schedule
  (``train_lns(..., mode="pipelined")``: layer 0's forward one sample stale, every epoch
  filled and drained on its own);
* ``adam5e-4`` / ``adam1e-3``: FP32 Adam at the two learning rates §1 tuned;

and records the test and running train accuracy of every epoch, one run at a time.

    ./run python bench/pipelined_accuracy.py --sizes 64,16,10 --seeds 0 1 2 3 4 5 6 7 8 9 \\
        --json docs/data/pipelined_accuracy.json
    ./run python bench/pipelined_accuracy.py --sizes 64,64,10 --seeds 0 1 2 \\
        --json docs/data/pipelined_accuracy.json

The JSON is rewritten after every run, and runs already in it are skipped (resume). The
summary gives, per (sizes, variant), the median, mean, min and max of the final test
accuracy, and per seed the differences pipelined - exact and exact/pipelined - Adam.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

VARIANTS = ("exact", "pipelined", "adam5e-4", "adam1e-3")


def run_variant(variant: str, sizes: tuple, data, epochs: int, seed: int) -> list[dict]:
    from lnsmadam.golden.experiment import run
    from lnsmadam.golden.mlp import MLPConfig, train_lns

    if variant.startswith("adam"):
        hist = run("adam", data, epochs, seed, sizes=sizes,
                   opt_kwargs={"lr": float(variant[4:])}).history
    else:
        hist = train_lns(MLPConfig(sizes=sizes), data, epochs, seed, mode=variant)["history"]
    return [{"epoch": int(m["epoch"]), "train_acc": float(100 * m["train_acc"]),
             "test_acc": float(100 * m["test_acc"])} for m in hist]


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "mean": statistics.fmean(values),
            "min": min(values), "max": max(values), "n": len(values)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for key in sorted({(r["sizes"], r["epochs"]) for r in runs}):
        final = {}
        for r in runs:
            if (r["sizes"], r["epochs"]) == key:
                final.setdefault(r["variant"], {})[r["seed"]] = r["history"][-1]["test_acc"]
        s = {v: {**_stats(list(f.values())), "seeds": sorted(f)} for v, f in final.items()}
        pairs = [("pipelined", "exact")] + [(a, b) for a in ("pipelined", "exact")
                                            for b in VARIANTS[2:]]
        for a, b in pairs:
            if a in final and b in final:
                common = sorted(set(final[a]) & set(final[b]))
                d = {seed: final[a][seed] - final[b][seed] for seed in common}
                if d:
                    s[f"{a} - {b}"] = {**_stats(list(d.values())),
                                       "per_seed": {str(k): v for k, v in d.items()}}
        out[f"{key[0]}, {key[1]} epochs"] = s
    return out


def _sizes(text: str) -> str:
    parts = text.split(",")
    if len(parts) < 2 or not all(p.isdigit() and 1 <= int(p) <= 4096 for p in parts):
        raise argparse.ArgumentTypeError(f"--sizes must be layer widths in 1..4096 separated "
                                         f"by commas (e.g. 64,16,10), got {text!r}")
    if int(parts[0]) != 64 or int(parts[-1]) != 10:
        raise argparse.ArgumentTypeError(f"--sizes must start with 64 and end with 10 (the "
                                         f"digits data), got {text!r}")
    return "-".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_sizes, default="64,16,10")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--json", default="out/pipelined_accuracy.json")
    args = ap.parse_args(argv)
    if not 1 <= args.epochs <= 1000:
        ap.error(f"--epochs must be in 1..1000, got {args.epochs}")
    if any(not 0 <= s < 2**32 for s in args.seeds):
        ap.error("--seeds must be in 0..2**32-1")

    from lnsmadam.golden.data import load_digits_split

    path = Path(args.json)
    state = json.loads(path.read_text()) if path.exists() else {}
    runs: list[dict] = state.get("runs", [])
    commands: list[str] = state.get("commands", [])
    cmd = " ".join(["./run python bench/pipelined_accuracy.py"] + sys.argv[1:])
    if cmd not in commands:
        commands.append(cmd)
    done = {(r["sizes"], r["variant"], r["seed"], r["epochs"]) for r in runs}
    data = load_digits_split(0)
    sizes = tuple(int(s) for s in args.sizes.split("-"))
    for seed in args.seeds:
        for variant in args.variants:
            if (args.sizes, variant, seed, args.epochs) in done:
                continue
            t0 = time.perf_counter()
            hist = run_variant(variant, sizes, data, args.epochs, seed)
            runs.append({"sizes": args.sizes, "variant": variant, "seed": seed,
                         "epochs": args.epochs, "history": hist,
                         "seconds": time.perf_counter() - t0})
            print(f"{args.sizes} {variant:>9} seed {seed}: test {hist[-1]['test_acc']:.2f} %, "
                  f"train {hist[-1]['train_acc']:.2f} % ({runs[-1]['seconds']:.0f} s)",
                  flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"commands": commands, "runs": runs,
                                        "summary": summarise(runs)}, indent=1))
    for key, s in summarise(runs).items():
        print(f"{key}: final test accuracy (%)")
        for name, v in s.items():
            print(f"  {name:>22}: median {v['median']:6.2f}  mean {v['mean']:6.2f}  "
                  f"min..max {v['min']:.2f}..{v['max']:.2f}  ({v['n']} seeds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
