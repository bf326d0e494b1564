"""Named training runs with one result shape, for the CLI, the results tables and the benches.

``run(name, ...)`` trains the digits MLP with one optimiser and returns a :class:`RunResult`:

* ``"lns-madam"``: the integer golden model (:mod:`lnsmadam.golden.mlp`), every tensor in LNS;
* ``"adam"``, ``"sgd"``, ``"madam"``, ``"fromage"``, ``"lns-madam-float"``, ``"int-madam"``:
  the FP32 MLP (:mod:`lnsmadam.golden.baseline`) with the float reference optimisers
  (:mod:`lnsmadam.golden.optim`).
* ``"lns-sgd"``, ``"lns-adam"``: the integer model (``lns_config``: every tensor LNS) whose
  stored LNS weights SGD or Adam update directly (:class:`StorageUpdater`: decode, float32
  step, re-encode after every sample; no FP32 master copy; Adam's moments stay FP32), at
  the tuned FP32 learning rates; ``docs/results.md`` §3.

Default hyper-parameters are the tuned ones recorded in ``docs/results.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .format import check_int
from .mlp import MLPConfig, train_lns

__all__ = ["RunResult", "run", "FLOAT_DEFAULTS", "RUN_NAMES", "STORAGE_UPDATERS",
           "StorageUpdater"]

#: Tuned defaults of the float baselines (bench/tune_float.py, docs/results.md).
FLOAT_DEFAULTS: dict[str, dict] = {
    "adam": {"lr": 1e-3},
    "sgd": {"lr": 0.03},
    "madam": {"lr": 0.01, "p_scale": 20.0},
    "lns-madam-float": {"lr": 1 / 128, "p_scale": 20.0},
    "int-madam": {"base_lr": 1e-3, "lr_factor": 10, "levels": 4096, "p_scale": 20.0},
    "fromage": {"lr": 0.01},
}
#: the integer model with its stored weights updated by a float optimiser: name -> optimiser
STORAGE_UPDATERS = {"lns-sgd": "sgd", "lns-adam": "adam"}
RUN_NAMES = ("lns-madam",) + tuple(FLOAT_DEFAULTS) + tuple(STORAGE_UPDATERS)


class StorageUpdater:
    """SGD or Adam on an :class:`~.mlp.LNSMLP`'s stored weights (``train_lns(updater=)``):
    decode them and the LNS gradients, take the float32 step, re-encode into the storage
    format with the layer's bias; nothing else is kept between steps but the optimiser's
    own state."""

    def __init__(self, name: str, kw: dict):
        from .optim import make_optimizer
        self.opt = make_optimizer(name, **kw)

    def __call__(self, model, grads):
        W, G = model.cfg.madam.weight, model.cfg.fmt
        ws = [W.decode(u, b).astype(np.float32) for u, b in zip(model.u, model.u_bias)]
        gs = [G.decode(g.codes, g.bias).astype(np.float32) for g in grads]
        self.opt.step(ws, gs)
        for l, w in enumerate(ws):
            model.u[l] = W.encode(w, model.u_bias[l])


@dataclass
class RunResult:
    name: str
    history: list[dict]
    config: dict
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def final_test_acc(self) -> float:
        return self.history[-1]["test_acc"] if self.history else float("nan")

    def to_dict(self) -> dict:
        return {"name": self.name, "history": self.history, "config": self.config,
                "seconds": self.seconds, "final_test_acc": self.final_test_acc, **self.extra}


def run(name: str, data, epochs: int, seed: int, *, sizes=(64, 16, 10),
        lns_config: MLPConfig | None = None, opt_kwargs: dict | None = None,
        on_epoch: Callable[[int, dict], None] | None = None,
        progress: Callable[[int], None] | None = None, mode: str = "exact") -> RunResult:
    """Train one named configuration; see the module docstring for the names. ``mode``:
    the integer model's schedule (``train_lns``; "exact" or "pipelined")."""
    if name not in RUN_NAMES:
        raise ValueError(f"optimizer must be one of {', '.join(RUN_NAMES)}; got {name!r}")
    check_int("epochs", epochs, 1, 100000)
    check_int("seed", seed, 0, 2**32 - 1)
    t0 = time.perf_counter()
    if name == "lns-madam" or name in STORAGE_UPDATERS:
        cfg = lns_config if lns_config is not None else MLPConfig(sizes=tuple(sizes))
        upd, config = None, {}
        if name in STORAGE_UPDATERS:
            opt = STORAGE_UPDATERS[name]
            config = {"updater": {"optimizer": opt, **FLOAT_DEFAULTS[opt], **(opt_kwargs or {})}}
            upd = StorageUpdater(opt, {k: v for k, v in config["updater"].items()
                                       if k != "optimizer"})
        r = train_lns(cfg, data, epochs, seed, callback=on_epoch, updater=upd,
                      progress=progress, mode=mode)
        return RunResult(name, r["history"], {**r["config"], **config},
                         time.perf_counter() - t0, extra={"model": r["model"]})
    from .baseline import train_float
    kw = dict(FLOAT_DEFAULTS[name])
    kw.update(opt_kwargs or {})
    n = len(data.x_train)

    def cb(ep, m):
        if progress is not None:
            progress(n)         # the float loop is fast: report per epoch
        if on_epoch is not None:
            on_epoch(ep, m)

    r = train_float(name, kw, tuple(sizes), epochs, seed, data, callback=cb)
    # train accuracy = running accuracy (each sample's prediction before its own update),
    # the same definition the integer trainer (and the device) reports
    hist = [{"epoch": int(m["epoch"]), "train_acc": float(m["running_acc"]),
             "test_acc": float(m["test_acc"])} for m in r["history"]]
    return RunResult(name, hist, {"sizes": list(sizes), "optimizer": name, **kw},
                     time.perf_counter() - t0)
