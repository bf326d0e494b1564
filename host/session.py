"""A training run on a device (a board or the twin), the same run as ``golden.mlp.train_lns``.

:func:`prepare` loads a device with a golden model's initial weights, state and per-layer
constants plus the encoded data set (or a checkpoint's weights, state and constants);
:func:`train` then runs epochs one ``START`` at a time (the device shuffles with
``(seed, epoch_base + 0)``, and ``epoch_base`` is set to the epoch number first) and
evaluates the test set after each, so the history has the shape ``train_lns`` returns and
equals it bit for bit. A STOP or Ctrl-C ends it at a sample; with ``checkpoint`` it writes a
:class:`~.checkpoint.Checkpoint` there (and after every epoch), and ``resume`` continues
from one exactly (``docs/protocol.md`` §10).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..golden.mlp import LNSMLP, MLPConfig
from ..golden.soc import SoCConfig
from .checkpoint import Checkpoint, RunPosition

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
    """What :func:`train` did: per-epoch metrics (``history``, a resumed run's included),
    wall times, samples trained, the twin's busy cycles, ``steps`` (training samples since
    the run's initial weights), ``stopped`` (a STOP ended it early) and the ``position``
    where it stands (:class:`~.checkpoint.RunPosition`)."""
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds: float = 0.0
    samples: int = 0
    cycles: int | None = None
    steps: int = 0
    stopped: bool = False
    position: RunPosition | None = None


def prepare(dev, model: LNSMLP, data, resume: Checkpoint | None = None) -> dict:
    """Upload data, then the initial weights/state and constants of ``model`` (or, with
    ``resume``, the checkpoint's, after checking its configuration and data); returns
    identify."""
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
    if resume is not None:
        dev.restore(resume)
        return ident
    dev.write_layer_constants(model.u_bias, model.f_bias, model.e_clamp)
    dev.write_weights(model.u, model.v)
    return ident


def train(dev, data, epochs: int, seed: int, lr_step: int = 1,
          on_epoch: Callable[[int, dict], None] | None = None,
          progress: Callable[[int], None] | None = None,
          first_epoch: int = 0, mode: int = 0, checkpoint: str | None = None,
          resume: Checkpoint | None = None, run: dict | None = None) -> DeviceRun:
    """Train epochs ``first_epoch .. first_epoch + epochs - 1`` one START at a time,
    evaluating after each.

    ``mode``: 0 exact, 1 pipelined. ``resume``: continue the run of that checkpoint (loaded
    with :func:`prepare`); its ``run`` (seed, lr_step, mode, epochs) replaces the arguments.
    ``checkpoint``: a path to write a :class:`~.checkpoint.Checkpoint` to after every epoch,
    when a STOP (``dev.stop``, e.g. from ``progress``) ends the run early, and on Ctrl-C (then
    the KeyboardInterrupt goes on). ``run``: more keys for the checkpoint's run dict (what
    the device cannot know, e.g. ``p_scale``).
    """
    n_train, n_test = len(data.x_train), len(data.x_test)
    if resume is not None:
        pos, steps_before = resume.position, resume.steps
        spec = pos.run
        if spec["mode"] and pos.sample:      # the pipeline refills: not bit-exact (§10)
            spec["refills"] = spec.get("refills", 0) + 1
    else:
        conf = dev.config
        spec = {**(run or {}), "sizes": dev.sizes, "bits": conf.get("bits"),
                "gamma": conf.get("gamma"), "soc": conf.get("soc"),
                "lr_step": int(lr_step), "seed": int(seed),
                "mode": int(mode), "first_epoch": int(first_epoch), "epochs": int(epochs)}
        pos, steps_before = RunPosition(spec), 0
    lr_step, seed, mode = spec["lr_step"], spec["seed"], spec["mode"]
    res = DeviceRun(position=pos)
    counters = getattr(dev.transport, "counters", None)     # the twin's cycle counters
    if counters is not None:
        res.cycles = 0
    interrupted = False
    t0 = time.perf_counter()
    while pos.epochs_left > 0:
        dev.write_position(pos.epoch_base, pos.sample, mode)
        first = pos.sample
        seen = [first]

        def cb(st, seen=seen):
            if progress is not None and st.sample > seen[0]:
                progress(st.sample - seen[0])
                seen[0] = st.sample

        t1 = time.perf_counter()
        b0 = counters()["busy_cycles"] if counters is not None else 0
        try:
            st = dev.train(1, lr_step, seed, progress=cb)
        except KeyboardInterrupt:            # Device sent STOP: let the samples in flight end
            interrupted = True
            st = dev.stop()
        finally:
            if counters is not None:
                res.cycles += counters()["busy_cycles"] - b0
            res.train_seconds += time.perf_counter() - t1
        res.stopped = interrupted or dev.stop_requested
        res.samples += (n_train if st.epoch else st.sample) - first
        if not st.epoch:                     # a STOP inside the epoch
            pos.sample, pos.correct = st.sample, pos.correct + st.correct
            break
        if progress is not None and n_train > seen[0]:
            progress(n_train - seen[0])
        try:
            test_correct = dev.evaluate()
        except KeyboardInterrupt:            # complete the epoch's record first
            interrupted = res.stopped = True
            dev.stop()
            test_correct = dev.evaluate()
        m = {"epoch": pos.epoch_base + 1, "train_acc": (pos.correct + st.last_correct) / n_train,
             "test_acc": test_correct / n_test}
        pos.history.append(m)
        pos.epochs_done += 1
        pos.sample = pos.correct = 0
        if on_epoch is not None:
            on_epoch(m["epoch"], m)
        if res.stopped:
            break
        if checkpoint is not None:
            dev.checkpoint(pos, steps_before).save(checkpoint)
    if res.stopped and checkpoint is not None:
        dev.checkpoint(pos, steps_before).save(checkpoint)
    res.history = list(pos.history)
    res.steps = steps_before + dev.status().steps
    res.seconds = time.perf_counter() - t0
    if interrupted:
        raise KeyboardInterrupt
    return res
