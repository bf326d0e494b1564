"""Does anything inside LNS-Madam close its accuracy gap to Adam on the digits MLP?

Screens variants of the integer golden model (64-16-10, batch 1, p_scale 40, lr_step 1 unless
the variant says otherwise) on the 8x8 digits, one run at a time, and records the test and
running train accuracy of every epoch:

* ``base``: the golden model as specified (the reference row);
* ``sr``: **stochastic rounding** of the normalised gradient, ``n = floor(r + u)`` with
  ``r = |g| / sqrt(v')`` from the decoded codes and ``u`` uniform in [0, 1) (NumPy, seeded),
  clamped to ``g_bound``. Not what the hardware does (it rounds to nearest): this asks whether
  the ~94 % of updates that round to zero hold training back;
* ``sched``: ``lr_step`` 2 for the first 10 epochs, then 1. The device can run this as it is
  (``lr_step`` is an argument of every START);
* ``beta6``: ``beta_k`` 6 (beta = 1 - 2**-6, a shorter second-moment memory);
* ``adam``: the FP32 Adam baseline at ``--adam-lr`` (its tuned 5e-4 by default), for the
  same epoch count.

With ``--epochs 60`` the same runs show whether a longer budget helps either side.

    ./run python bench/tune_lns_variants.py --variants base sr sched beta6 adam \\
        --seeds 0 1 2 --json out/tune_variants/screen.json

The JSON is rewritten after every run, and runs already in it are skipped (resume).
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
from dataclasses import replace
from pathlib import Path

VARIANTS = ("base", "sr", "sched", "beta6", "adam")


def sr_updater(rng):
    """An ``LNSMLP.step`` updater: the golden step, then the exponent change re-drawn with
    stochastic rounding of the exact ratio |g| / sqrt(v') (v' = the golden new state)."""
    import numpy as np

    from lnsmadam.golden.update import madam_step

    def update(model, grads):
        cfg = model.cfg.madam
        W, G, V = cfg.weight, cfg.grad, cfg.state
        for l, g in enumerate(grads):
            u_old = model.u[l]
            _, v_new, _ = madam_step(u_old, model.v[l], g.codes, g.bias, model.e_clamp[l], cfg)
            sw, ew, zw = W.split(u_old)
            sg, eg, zg = G.split(g.codes)
            # the golden step skips gradients whose square underflows the state format
            live = ~zg & ((((eg + g.bias) * 2) >> G.frac_bits) - V.offset >= 1) & (v_new != 0)
            ratio = np.abs(G.decode(g.codes, g.bias)) / np.sqrt(np.maximum(V.decode(v_new), 1e-300))
            n = np.minimum(np.floor(ratio + rng.random(ratio.shape)), cfg.g_bound).astype(np.int64)
            n = np.where(live, n, 0) * cfg.lr_step
            e_w = np.clip(ew + np.where(sw == sg, -n, n), 1, model.e_clamp[l])
            model.u[l] = np.where(zw, u_old, W.join(sw, e_w)).astype(np.int64)
            model.v[l] = v_new
    return update


def run_lns(variant: str, data, epochs: int, seed: int, p_scale: float) -> list[dict]:
    import numpy as np

    from lnsmadam.golden.mlp import LNSMLP, MLPConfig, accuracy
    from lnsmadam.golden.shuffle import epoch_order

    cfg = MLPConfig(p_scale=p_scale)
    if variant == "beta6":
        cfg = replace(cfg, madam=replace(cfg.madam, beta_k=6))
    model = LNSMLP(cfg, seed)
    updater = sr_updater(np.random.default_rng(1000 + seed)) if variant == "sr" else None
    n = len(data.x_train)
    hist = []
    for ep in range(epochs):
        if variant == "sched":
            model.cfg = replace(cfg, madam=replace(cfg.madam, lr_step=2 if ep < 10 else 1))
        correct = 0
        for i in epoch_order(n, seed, ep):
            correct += model.step(data.x_train[i], int(data.y_train[i]), updater) == data.y_train[i]
        hist.append({"epoch": ep + 1, "train_acc": float(100 * correct / n),
                     "test_acc": 100 * accuracy(model, data.x_test, data.y_test)})
    return hist


def run_adam(data, epochs: int, seed: int, lr: float) -> list[dict]:
    from lnsmadam.golden.experiment import run

    r = run("adam", data, epochs, seed, opt_kwargs={"lr": lr})
    return [{"epoch": m["epoch"], "train_acc": 100 * m["train_acc"],
             "test_acc": 100 * m["test_acc"]} for m in r.history]


def summarise(runs: list[dict]) -> dict:
    out = {}
    for key in sorted({(r["variant"], r["epochs"]) for r in runs}):
        rs = sorted((r for r in runs if (r["variant"], r["epochs"]) == key),
                    key=lambda r: r["seed"])
        s = {"variant": key[0], "epochs": key[1], "seeds": [r["seed"] for r in rs]}
        for ep in sorted({30, key[1]} & set(range(1, key[1] + 1))):
            te = [r["history"][ep - 1]["test_acc"] for r in rs]
            tr = [r["history"][ep - 1]["train_acc"] for r in rs]
            s[f"epoch{ep}"] = {"test": te, "test_median": statistics.median(te),
                               "test_mean": statistics.fmean(te),
                               "train_median": statistics.median(tr)}
        out[f"{key[0]}_e{key[1]}"] = s
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--p-scale", type=float, default=40.0)
    ap.add_argument("--adam-lr", type=float, default=5e-4)
    ap.add_argument("--json", default="out/tune_lns_variants.json")
    args = ap.parse_args(argv)
    if not 1 <= args.epochs <= 1000:
        ap.error(f"--epochs must be in 1..1000, got {args.epochs}")

    from lnsmadam.golden.data import load_digits_split

    path = Path(args.json)
    runs: list[dict] = json.loads(path.read_text())["runs"] if path.exists() else []
    done = {(r["variant"], r["seed"], r["epochs"]) for r in runs}
    data = load_digits_split(0)
    for variant in args.variants:
        for seed in args.seeds:
            if (variant, seed, args.epochs) in done:
                continue
            t0 = time.perf_counter()
            if variant == "adam":
                hist = run_adam(data, args.epochs, seed, args.adam_lr)
            else:
                hist = run_lns(variant, data, args.epochs, seed, args.p_scale)
            rec = {"variant": variant, "seed": seed, "epochs": args.epochs,
                   "p_scale": args.p_scale if variant != "adam" else None,
                   "adam_lr": args.adam_lr if variant == "adam" else None,
                   "history": hist, "seconds": time.perf_counter() - t0}
            runs.append(rec)
            print(f"{variant} seed {seed}, {args.epochs} epochs: test "
                  f"{hist[-1]['test_acc']:.2f} %, train {hist[-1]['train_acc']:.2f} % "
                  f"({rec['seconds']:.0f} s)", flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"command": " ".join(sys.argv), "runs": runs,
                                        "summary": summarise(runs)}, indent=1))
    for name, s in summarise(runs).items():
        parts = [f"ep{ep[5:]} test median {v['test_median']:.2f} mean {v['test_mean']:.2f}"
                 f" train {v['train_median']:.2f}" for ep, v in s.items() if isinstance(v, dict)]
        print(f"{name:>12} ({len(s['seeds'])} seeds): " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
