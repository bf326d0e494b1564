"""Job ``cycles``: cycles per training sample of the SoC in its Verilator twin.

The measurement of ``bench/trainer_cycles.py``: build the twin of the SoC (cached), load the
digits data set and a golden model's initial weights over the UART, train ``epochs`` epochs
(the twin's exact ``busy_cycles``) and evaluate once more to count the evaluation cycles.
The lane-bound ideal is (forward + backward + gradient + update MAC operations) / lanes.

Parameters: ``sizes`` (default [64, 16, 10]), ``lanes`` (1), ``seed`` (0: initial weights
and sample order), ``epochs`` (1), ``clock_mhz`` (a board clock for the ``epoch_s`` column;
default none). Result: cycles per sample, the ideal and their ratio, evaluation cycles per
test sample, the accuracies after each epoch, the twin's wall times.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import Param

PARAMS = {
    "sizes": Param("ints", "MLP layer widths, input first", lo=1, hi=1024),
    "lanes": Param("int", "MAC lanes", choices=(1, 2, 4, 8, 16)),
    "seed": Param("int", "initial weights and sample order", lo=0, hi=2**32 - 1),
    "epochs": Param("int", "epochs trained on the twin", lo=1, hi=1000),
    "clock_mhz": Param("float", "board clock for the epoch-time column, MHz", lo=1e-3, hi=1e3),
}


def params(config: dict) -> dict:
    return PARAMS


def ideal_ops(sizes) -> dict:
    """MAC operations per sample: forward = gradient = update = sum n_{l+1} (n_l + 1),
    backward = sum_{l>=1} n_l n_{l+1}."""
    fwd = sum(sizes[l + 1] * (sizes[l] + 1) for l in range(len(sizes) - 1))
    bwd = sum(sizes[l] * sizes[l + 1] for l in range(1, len(sizes) - 1))
    return {"forward": fwd, "backward": bwd, "gradient": fwd, "update": fwd,
            "total": 3 * fwd + bwd}


def run(config: dict, workdir: Path) -> dict:
    from ...golden.data import load_digits_split
    from ...golden.mlp import LNSMLP
    from ...host import session
    from ...host.device import Device
    from ...sim.twin import open_twin, twin_config

    sizes = tuple(config.get("sizes", (64, 16, 10)))
    lanes, seed = config.get("lanes", 1), config.get("seed", 0)
    epochs = config.get("epochs", 1)
    data = load_digits_split(0)
    soc = twin_config(sizes=sizes, lanes=lanes)
    t0 = time.perf_counter()
    tr = open_twin(soc)
    build_s = time.perf_counter() - t0
    with Device(tr) as dev:
        t0 = time.perf_counter()
        session.prepare(dev, LNSMLP(soc.mlp_config(), seed), data)
        upload_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run = session.train(dev, data, epochs, seed)
        wall = time.perf_counter() - t0
        b0 = tr.counters()["busy_cycles"]
        dev.evaluate()
        eval_cycles = tr.counters()["busy_cycles"] - b0
    n = len(data.x_train) * epochs
    ops = ideal_ops(sizes)
    per = run.cycles / n
    out = {"sizes": list(sizes), "lanes": lanes, "seed": seed, "epochs": epochs,
           "n_train": len(data.x_train), "cycles_per_sample": per,
           "ideal_per_sample": ops["total"] / lanes,
           "ratio_to_ideal": per / (ops["total"] / lanes), "ops": ops,
           "eval_cycles_per_sample": eval_cycles / len(data.x_test),
           "epoch_cycles": run.cycles / epochs, "history": run.history,
           "twin_train_wall_s": wall, "twin_build_s": build_s, "upload_s": upload_s}
    if "clock_mhz" in config:
        out["clock_mhz"] = config["clock_mhz"]
        out["epoch_s"] = out["epoch_cycles"] / (config["clock_mhz"] * 1e6)
    return out


def metrics(result: dict) -> dict:
    out = {k: result[k] for k in ("cycles_per_sample", "ideal_per_sample", "ratio_to_ideal",
                                  "eval_cycles_per_sample", "n_train")}
    out["twin_test_acc"] = result["history"][-1]["test_acc"]
    if "epoch_s" in result:
        out["epoch_s"] = result["epoch_s"]
    return out
