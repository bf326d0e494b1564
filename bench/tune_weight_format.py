"""Screen of the stored-weight (update) format of the integer LNS-Madam golden model.

Trains the integer golden model (``lnsmadam.golden.experiment.run("lns-madam", ...)``, the
function ``lnsmadam train --backend golden`` calls) on the 8x8 digits, 64-16-10, batch 1,
with ``MLPConfig().madam.weight`` replaced by ``LNSFormat(bits, frac_bits, underflow="min")``
and everything else default (8-bit gamma = 8 tensors, state format, g_bound, beta_k, seeding),
for every (format, lr_step, p_scale, seed) of the grid, one run at a time, and reports the
final test accuracy per seed (median/mean per setting).

The format keeps ``bits - frac_bits = 5`` integer exponent bits, i.e. 16 octaves below sigma*
(``e_clamp = emax``: sigma* at the top field value), so only the step resolution changes:
``gamma_U = 2**frac_bits`` and the step is ``lr_step / gamma_U`` octave per unit of
normalised gradient.

    ./run python bench/tune_weight_format.py --formats 13,8 --lr-step 1 2 --p-scale 10 40 \\
        --seeds 0 1 2 --json out/tune_wf/screen.json

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
from dataclasses import replace
from pathlib import Path


def _fmt(s: str) -> tuple[int, int]:
    try:
        bits, frac = (int(t) for t in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"format must be BITS,FRAC_BITS, got {s!r}") from None
    return bits, frac


def make_config(bits: int, frac_bits: int, lr_step: int, p_scale: float, hidden: int = 16):
    """``MLPConfig`` with the default everything except the weight format, lr_step, p_scale."""
    from lnsmadam.golden.format import LNSFormat
    from lnsmadam.golden.mlp import MLPConfig

    base = MLPConfig(sizes=(64, hidden, 10))
    weight = LNSFormat(bits, frac_bits, underflow="min")
    madam = replace(base.madam, weight=weight, lr_step=lr_step)
    return MLPConfig(sizes=base.sizes, fmt=base.fmt, madam=madam, p_scale=p_scale)


def _key(r: dict) -> tuple:
    return (r["weight_bits"], r["weight_frac_bits"], r["lr_step"], r["p_scale"], r["seed"],
            r["epochs"])


def _setting(r: dict) -> str:
    return (f"w{r['weight_bits']}f{r['weight_frac_bits']}_lr{r['lr_step']}"
            f"_p{r['p_scale']:g}")


def summarise(runs: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(_setting(r), []).append(r)
    out = {}
    for name, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        acc = [r["final_test_acc"] for r in rs]
        r0 = rs[0]
        out[name] = {
            "weight_format": {"bits": r0["weight_bits"], "frac_bits": r0["weight_frac_bits"],
                              "gamma_U": 1 << r0["weight_frac_bits"]},
            "lr_step": r0["lr_step"], "p_scale": r0["p_scale"],
            "step_octave": r0["lr_step"] / (1 << r0["weight_frac_bits"]),
            "bits_per_weight": r0["bits_per_weight"],
            "seeds": [r["seed"] for r in rs], "acc": acc,
            "median": statistics.median(acc), "mean": statistics.fmean(acc),
            "min": min(acc), "max": max(acc),
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--formats", type=_fmt, nargs="+", default=[(13, 8)],
                    help="stored-weight formats BITS,FRAC_BITS (default 13,8; today 12,7)")
    ap.add_argument("--lr-step", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--p-scale", type=float, nargs="+", default=[10.0, 40.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--json", default="out/tune_weight_format.json")
    args = ap.parse_args(argv)

    from lnsmadam.golden.data import load_digits_split
    from lnsmadam.golden.experiment import run

    path = Path(args.json)
    runs: list[dict] = []
    if path.exists():
        runs = json.loads(path.read_text()).get("runs", [])
    done = {_key(r) for r in runs}
    data = load_digits_split(0)
    for bits, frac in args.formats:
        for lr_step in args.lr_step:
            for p_scale in args.p_scale:
                cfg = make_config(bits, frac, lr_step, p_scale, args.hidden)  # validates
                for seed in args.seeds:
                    rec = {"weight_bits": bits, "weight_frac_bits": frac, "lr_step": lr_step,
                           "p_scale": float(p_scale), "seed": seed, "epochs": args.epochs}
                    if _key(rec) in done:
                        continue
                    r = run("lns-madam", data, args.epochs, seed, sizes=cfg.sizes,
                            lns_config=cfg)
                    rec.update({"bits_per_weight": cfg.madam.bits_per_weight,
                                "final_test_acc": 100 * r.final_test_acc,
                                "final_train_acc": 100 * r.history[-1]["train_acc"],
                                "test_acc_per_epoch": [100 * m["test_acc"] for m in r.history],
                                "seconds": r.seconds})
                    runs.append(rec)
                    done.add(_key(rec))
                    print(f"{_setting(rec)} seed {seed}: {rec['final_test_acc']:.2f} % "
                          f"({r.seconds:.0f} s)", flush=True)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps({"command": " ".join(sys.argv),
                                                "runs": runs, "summary": summarise(runs)},
                                               indent=1))
    for name, s in summarise(runs).items():
        print(f"{name:>20}: median {s['median']:.2f} mean {s['mean']:.2f} "
              f"({len(s['acc'])} seeds, {s['bits_per_weight']} b/weight)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
