"""Job ``cycles``: cycles per training sample of the SoC in its Verilator twin.

Build the twin of the SoC (cached), load the digits data set and a golden model's initial
weights over the UART, train ``epochs`` full epochs in ``mode`` (the twin's exact
``busy_cycles``) and evaluate once more to count the evaluation cycles; the accuracies are
checked against the golden model's schedule of that mode (``bit_exact``).

The lane-bound ideal (issue 13, ``docs/engine.md``): a sample visits each weight of layer 0
once (``UF_0``: the pending update fused with the forward) and each weight of the later
layers twice (``F_l``, then ``BU_l``: the backward product and the update in one pass), so
``visits = sum_l R_l C_l + sum_{l>=1} R_l C_l`` (``R_l = n_{l+1}``, ``C_l = n_l + 1``: 1,380
for 64-16-10, 5,460 for 64-64-10) and ``ideal = visits / lanes`` cycles per sample in exact
mode. In pipelined mode the two datapaths (stage A: layer 0, stage B: the rest) run at once,
``ideal = max(R_0 C_0, 2 sum_{l>=1} R_l C_l) / lanes``. ``efficiency = ideal / measured``.

Parameters: ``sizes`` (default [64, 16, 10]), ``lanes`` (1), ``mode`` (``exact`` or
``pipelined``; the twin is built with the pipelined capability for the latter), ``seed``
(0: initial weights and sample order), ``epochs`` (1), ``clock_mhz`` (a board clock for the
``us_per_sample`` and ``epoch_s`` columns; default none), and the engine's SoCConfig fields
of :data:`ENGINE_FIELDS` (default: those of the point's ``board`` when it has one, else the
twin's). Result: cycles per
sample, the ideal, the efficiency, evaluation cycles per test sample, the accuracies after
each epoch, the twin's wall times.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import Param, check_digits_sizes
from .build import SOC_PARAMS

MODES = ("exact", "pipelined")
#: SoCConfig fields a point may set besides sizes and lanes (the twin's defaults otherwise)
ENGINE_FIELDS = ("state_man_bits", "beta_k", "softmax", "bias_lane", "fast_shuffle",
                 "read_reg", "mac_pipeline", "conv_pipeline", "update_pipeline")

PARAMS = {
    "sizes": Param("ints", "MLP layer widths, input first", lo=1, hi=1024),
    "lanes": Param("int", "weights per cycle per datapath", choices=(1, 2, 4, 8, 16, 32, 64)),
    "mode": Param("str", "training schedule", choices=MODES),
    "seed": Param("int", "initial weights and sample order", lo=0, hi=2**32 - 1),
    "epochs": Param("int", "epochs trained on the twin", lo=1, hi=1000),
    "clock_mhz": Param("float", "board clock for the time columns, MHz", lo=1e-3, hi=1e3),
    **{k: SOC_PARAMS[k] for k in ENGINE_FIELDS},
}


def params(config: dict) -> dict:
    # a point that also builds for a board measures that board's engine (its fields)
    from .build import params as build_params
    return {**PARAMS, "board": build_params(config)["board"]}


def weight_visits(sizes) -> dict:
    """Weight visits per training sample: layer 0 once, every later layer twice."""
    rc = [sizes[l + 1] * (sizes[l] + 1) for l in range(len(sizes) - 1)]
    return {"layer0": rc[0], "later": 2 * sum(rc[1:]), "total": rc[0] + 2 * sum(rc[1:])}


def ideal_cycles(sizes, lanes: int, mode: str = "exact") -> float:
    """The lane-bound ideal cycles per sample (module docstring)."""
    v = weight_visits(sizes)
    if mode == "pipelined":
        return max(v["layer0"], v["later"]) / lanes
    return v["total"] / lanes


def soc_config(config: dict):
    """The twin's SoCConfig of a point (ValueError naming a field it refuses)."""
    import dataclasses

    from ...sim.twin import twin_config

    extra = {}
    if "board" in config:            # a point that also builds for a board: its engine fields
        from ...boards.platforms import get_board
        extra = {k: v for k, v in get_board(config["board"]).config.items()
                 if k in ENGINE_FIELDS}
    extra.update({k: config[k] for k in ENGINE_FIELDS if k in config})
    return dataclasses.replace(twin_config(sizes=tuple(config.get("sizes", (64, 16, 10))),
                                           lanes=config.get("lanes", 1)),
                               pipelined=config.get("mode", "exact") == "pipelined", **extra)


def check(config: dict) -> None:
    check_digits_sizes(config)
    soc_config(config)


def run(config: dict, workdir: Path) -> dict:
    from ...golden.data import load_digits_split
    from ...golden.mlp import LNSMLP, train_lns
    from ...host import session
    from ...host.device import Device
    from ...sim.twin import open_twin

    sizes = tuple(config.get("sizes", (64, 16, 10)))
    lanes, seed = config.get("lanes", 1), config.get("seed", 0)
    epochs, mode = config.get("epochs", 1), config.get("mode", "exact")
    data = load_digits_split(0)
    soc = soc_config(config)
    t0 = time.perf_counter()
    tr = open_twin(soc)
    build_s = time.perf_counter() - t0
    try:
        with Device(tr) as dev:
            t0 = time.perf_counter()
            session.prepare(dev, LNSMLP(soc.mlp_config(), seed), data)
            upload_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            run = session.train(dev, data, epochs, seed, mode=MODES.index(mode))
            wall = time.perf_counter() - t0
            b0 = tr.counters()["busy_cycles"]
            dev.evaluate()
            eval_cycles = tr.counters()["busy_cycles"] - b0
    finally:
        tr.close()
    ref = train_lns(soc.mlp_config(), data, epochs, seed, mode=mode)
    n = len(data.x_train) * epochs
    per = run.cycles / n
    ideal = ideal_cycles(sizes, lanes, mode)
    out = {"sizes": list(sizes), "lanes": lanes, "mode": mode, "seed": seed,
           "epochs": epochs, "n_train": len(data.x_train), "cycles_per_sample": per,
           "ideal_per_sample": ideal, "efficiency": ideal / per,
           "visits": weight_visits(sizes), "soc": soc.to_dict(),
           "eval_cycles_per_sample": eval_cycles / len(data.x_test),
           "epoch_cycles": run.cycles / epochs, "history": run.history,
           "bit_exact": run.history == ref["history"],
           "twin_train_wall_s": wall, "twin_build_s": build_s, "upload_s": upload_s}
    if "clock_mhz" in config:
        out["clock_mhz"] = config["clock_mhz"]
        out["us_per_sample"] = per / config["clock_mhz"]
        out["epoch_s"] = out["epoch_cycles"] / (config["clock_mhz"] * 1e6)
    return out


def metrics(result: dict) -> dict:
    out = {k: result[k] for k in ("cycles_per_sample", "ideal_per_sample", "efficiency",
                                  "eval_cycles_per_sample", "n_train", "bit_exact")}
    out["twin_test_acc"] = result["history"][-1]["test_acc"]
    for k in ("us_per_sample", "epoch_s"):
        if k in result:
            out[k] = result[k]
    return out
