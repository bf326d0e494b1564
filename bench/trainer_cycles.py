"""Cycles per training sample of the SoC (Verilator twin) against the lane-bound ideal.

For each configuration: build the twin (cached), load the digits data set and a golden
model's initial weights over the UART, train one epoch and count the cycles the trainer was
busy (the twin's ``busy_cycles``: exact, whatever the host's polling), then evaluate.

ideal = (forward + backward + gradient + update MAC operations) / lanes per sample, with
forward = gradient = update = sum_l n_{l+1} (n_l + 1) and backward = sum_{l>=1} n_l n_{l+1}.
Also: the epoch time at a board clock (``--clocks``, MHz) and the same epoch (64-H-10,
batch 1) in PyTorch FP32 with Adam on this CPU.

    ./run python bench/trainer_cycles.py [--configs 16x1,16x2,32x1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def ideal_ops(sizes) -> dict:
    fwd = sum(sizes[l + 1] * (sizes[l] + 1) for l in range(len(sizes) - 1))
    bwd = sum(sizes[l] * sizes[l + 1] for l in range(1, len(sizes) - 1))
    return {"forward": fwd, "backward": bwd, "gradient": fwd, "update": fwd,
            "total": 3 * fwd + bwd}


def measure(hidden: int, lanes: int, data, seed: int = 0) -> dict:
    from lnsmadam.golden.mlp import LNSMLP
    from lnsmadam.host import session
    from lnsmadam.host.device import Device
    from lnsmadam.sim.twin import open_twin, twin_config

    soc = twin_config(sizes=(64, hidden, 10), lanes=lanes)
    t0 = time.perf_counter()
    tr = open_twin(soc)
    build_s = time.perf_counter() - t0
    cfg = soc.mlp_config()
    model = LNSMLP(cfg, seed)
    with Device(tr) as dev:
        t0 = time.perf_counter()
        session.prepare(dev, model, data)
        upload_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run = session.train(dev, data, 1, seed)
        wall = time.perf_counter() - t0
        n = len(data.x_train)
        b_eval0 = tr.counters()["busy_cycles"]
        dev.evaluate()
        b_eval = tr.counters()["busy_cycles"] - b_eval0
    sizes = (64, hidden, 10)
    ops = ideal_ops(sizes)
    train_cycles = run.cycles
    per = train_cycles / n
    return {"sizes": list(sizes), "lanes": lanes, "n_train": n,
            "cycles_per_sample": per, "ideal_per_sample": ops["total"] / lanes,
            "ratio_to_ideal": per / (ops["total"] / lanes), "ops": ops,
            "eval_cycles_per_sample": b_eval / len(data.x_test),
            "epoch_cycles": train_cycles, "twin_epoch_wall_s": wall,
            "twin_build_s": build_s, "upload_s": upload_s,
            "test_acc_after_1_epoch": run.history[0]["test_acc"]}


def torch_epoch(hidden: int, data, seed: int = 0) -> float:
    import torch
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.tensor(data.x_train, dtype=torch.float32)
    y = torch.tensor(data.y_train, dtype=torch.int64)
    lossf = torch.nn.CrossEntropyLoss()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(len(x)):
            opt.zero_grad()
            loss = lossf(net(x[i:i + 1]), y[i:i + 1])
            loss.backward()
            opt.step()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="16x1,16x2,32x1",
                    help="comma-separated HIDDENxLANES (default: %(default)s)")
    ap.add_argument("--clocks", default="icebreaker:24,ulx3s-85f:50",
                    help="board:MHz pairs for the epoch-time column (default: %(default)s)")
    ap.add_argument("--json", default="docs/data/trainer_cycles.json")
    args = ap.parse_args()
    from lnsmadam.golden.data import load_digits_split
    data = load_digits_split(0)
    clocks = [(b, float(f)) for b, f in (c.split(":") for c in args.clocks.split(","))]
    rows = []
    for c in args.configs.split(","):
        h, l = (int(t) for t in c.split("x"))
        r = measure(h, l, data)
        r["torch_fp32_epoch_s"] = torch_epoch(h, data)
        r["epoch_s_at"] = {f"{b}@{f:g}MHz": r["epoch_cycles"] / (f * 1e6) for b, f in clocks}
        rows.append(r)
        print(f"64-{h}-10 lanes {l}: {r['cycles_per_sample']:.1f} cycles/sample, ideal "
              f"{r['ideal_per_sample']:.1f} ({r['ratio_to_ideal']:.3f}x), epoch "
              + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in r["epoch_s_at"].items())
              + f", torch FP32 {r['torch_fp32_epoch_s'] * 1e3:.0f} ms, twin {r['twin_epoch_wall_s']:.1f} s",
              flush=True)
    head = ("| MLP | lanes | cycles/sample | ideal | ratio | "
            + " | ".join(f"epoch {b} @ {f:g} MHz" for b, f in clocks)
            + " | PyTorch FP32 epoch (1 thread) | twin epoch (wall) |")
    print()
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(f"| 64-{r['sizes'][1]}-10 | {r['lanes']} | {r['cycles_per_sample']:.1f} | "
              f"{r['ideal_per_sample']:.1f} | {r['ratio_to_ideal']:.3f} | "
              + " | ".join(f"{v * 1e3:.0f} ms" for v in r["epoch_s_at"].values())
              + f" | {r['torch_fp32_epoch_s'] * 1e3:.0f} ms | {r['twin_epoch_wall_s']:.1f} s |")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"command": "./run python bench/trainer_cycles.py "
                   + f"--configs {args.configs} --clocks {args.clocks}",
                   "machine": platform.processor() or platform.machine(),
                   "rows": rows}, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
