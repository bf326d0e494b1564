"""A training run on a device (a board or the twin), the same run as ``golden.mlp.train_lns``.

:func:`prepare` loads a device with a golden model's initial weights, state and per-layer
constants plus the encoded data set; :func:`train` then runs epochs one ``START`` at a time
(the device shuffles with ``(seed, epoch_base + 0)``, and ``epoch_base`` is set to the
epoch number first) and evaluates the test set after each, so the history has the shape
``train_lns`` returns and equals it bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..golden import image
from ..golden.mlp import LNSMLP, MLPConfig
from ..golden.soc import SoCConfig

__all__ = ["DeviceRun", "config_from_identify", "encode_inputs", "prepare", "train",
           "check_config"]


def encode_inputs(model: LNSMLP, x) -> np.ndarray:
    """Input codes (without the constant 1) of feature rows ``x`` in [0, 1]."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    return model.input_codes(x).codes[:, :-1]


def config_from_identify(ident: dict) -> SoCConfig:
    """The :class:`~lnsmadam.golden.soc.SoCConfig` a device reports (its identify JSON's
    ``config.soc``; ValueError if it is not a valid one)."""
    return SoCConfig.from_dict(ident["config"]["soc"])


def check_config(ident: dict, cfg: MLPConfig) -> None:
    """Raise ValueError when the device was generated for another model than ``cfg``."""
    dev = config_from_identify(ident).mlp_config()
    mine, theirs = cfg.to_dict(), dev.to_dict()
    for k in ("sizes", "bits", "gamma", "mac", "weight_format", "state_format", "g_bound",
              "beta_k", "guard_bits", "softmax_window"):
        if mine[k] != theirs[k]:
            raise ValueError(f"the device was built for {k} = {theirs[k]}, the run asks for "
                             f"{mine[k]}: rebuild it or change the run's options")


@dataclass
class DeviceRun:
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds: float = 0.0
    samples: int = 0
    cycles: int | None = None


def prepare(dev, model: LNSMLP, data) -> dict:
    """Upload data, initial weights/state and constants of ``model``; returns identify."""
    ident = dev.identify()
    check_config(ident, model.cfg)
    n_train, n_test = len(data.x_train), len(data.x_test)
    depth = ident["config"]["max_records"]
    if n_train + n_test > depth:
        raise ValueError(f"the data set has {n_train + n_test} samples; the device holds at "
                         f"most {depth} (n_records)")
    codes = np.concatenate([encode_inputs(model, data.x_train), encode_inputs(model, data.x_test)])
    labels = np.concatenate([data.y_train, data.y_test]).astype(np.int64)
    dev.upload_dataset(codes, labels, n_train)
    dev.write_layer_constants(model.u_bias, model.f_bias, model.e_clamp)
    dev.write_weights(model.u, model.v)
    return ident


def train(dev, data, epochs: int, seed: int, lr_step: int = 1,
          on_epoch: Callable[[int, dict], None] | None = None,
          progress: Callable[[int], None] | None = None,
          first_epoch: int = 0) -> DeviceRun:
    """Train ``epochs`` epochs (numbered from ``first_epoch``), evaluating after each."""
    n_train, n_test = len(data.x_train), len(data.x_test)
    run = DeviceRun()
    counters = getattr(dev.transport, "counters", None)     # the twin's cycle counters
    if counters is not None:
        run.cycles = 0
    t0 = time.perf_counter()
    for ep in range(first_epoch, first_epoch + epochs):
        dev.write_region("regs", image.REGS["epoch_base"], [ep])
        seen = [0]

        def cb(st, seen=seen):
            if progress is not None and st.sample > seen[0]:
                progress(st.sample - seen[0])
                seen[0] = st.sample

        t1 = time.perf_counter()
        b0 = counters()["busy_cycles"] if counters is not None else 0
        st = dev.train(1, lr_step, seed, progress=cb)
        if counters is not None:
            run.cycles += counters()["busy_cycles"] - b0
        run.train_seconds += time.perf_counter() - t1
        if progress is not None and n_train > seen[0]:
            progress(n_train - seen[0])
        test_correct = dev.evaluate()
        m = {"epoch": ep + 1, "train_acc": st.last_correct / n_train,
             "test_acc": test_correct / n_test}
        run.history.append(m)
        run.samples += n_train
        if on_epoch is not None:
            on_epoch(ep + 1, m)
    run.seconds = time.perf_counter() - t0
    return run
