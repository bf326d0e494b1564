"""``lnsmadam train --checkpoint PATH`` / ``--resume PATH``: the command-line side of exact
resume (``docs/protocol.md`` §10, :mod:`lnsmadam.host.checkpoint`).

A resume continues the checkpoint's run: its design configuration (the device's
``SoCConfig``), seed, ``p_scale``, mode and FP32 baseline (``--baseline``,
``--baseline-lr``) come from the checkpoint, and an option given on the command line (or in
``--config``) that says otherwise is refused with one line naming it, never silently
overridden. ``--epochs`` sets the run's total epoch count (default: the checkpoint's); one
at or below the epochs already done is refused (nothing to do). Without ``--backend`` a
checkpoint of ``--backend golden`` resumes on the golden device; on another backend it is
refused, naming the one it needs.

``--checkpoint PATH`` never overwrites a file that is not the run's own: an existing PATH is
refused unless it is the checkpoint given to ``--resume`` (the run being continued). Another
run's checkpoint there is refused too (continue it with ``--resume PATH``, or give a new
path), and so is any other file.
"""

from __future__ import annotations

import dataclasses
import os

import click

from .options import OptionError, given

#: the schedules of ``--mode``, in the order of the ``mode`` register's bit 0
MODES = ("exact", "pipelined")


def load(path: str):
    """The checkpoint at ``path``, or a one-line usage error naming ``--resume``."""
    from ..host.checkpoint import Checkpoint, CheckpointError

    try:
        return Checkpoint.load(path)
    except CheckpointError as exc:
        raise OptionError(f"--resume: {exc}") from None


def same_file(a, b) -> bool:
    """``a`` and ``b`` name one file (after resolving links and ``..``)."""
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_target(path, resume_path) -> None:
    """Refuse, before any work, a ``--checkpoint`` ``path`` that would overwrite a file other
    than the checkpoint being resumed (``resume_path``): any other file, or another run's
    checkpoint."""
    from ..host.checkpoint import Checkpoint, CheckpointError

    if path is None or not os.path.lexists(path):
        return
    if resume_path is not None and same_file(path, resume_path):
        return
    try:
        Checkpoint.load(path)
    except CheckpointError:
        raise OptionError(f"--checkpoint: {path} exists and is not an lnsmadam checkpoint: "
                          "give a new path (it is never overwritten)") from None
    raise OptionError(f"--checkpoint: {path} holds the checkpoint of another run: continue "
                      f"that run with --resume {path}, or give a new path")


def backend_of(ck) -> str | None:
    """The backend that wrote checkpoint ``ck``: ``"golden"`` (the golden device),
    ``"sim"`` (the SoC: the twin or a board) or None (not known). Recorded in the run since
    it was; for older checkpoints, the device configuration that matches its hash (only
    when just one of them does)."""
    from ..golden.device import GoldenDevice
    from ..golden.soc import SoCConfig
    from ..host.checkpoint import config_hash

    recorded = ck.position.run.get("backend")
    if recorded in ("golden", "sim", "board"):
        return "sim" if recorded == "board" else recorded
    try:
        cfg = SoCConfig.from_dict(ck.position.run["soc"])
    except (KeyError, TypeError, ValueError):
        return None
    golden = config_hash(GoldenDevice.identify_of(cfg)) == ck.config_hash
    soc = config_hash(cfg.identify_json()) == ck.config_hash
    return "golden" if golden and not soc else "sim" if soc and not golden else None


def resume_options(ctx: click.Context, ck, cv, hidden, *, seed, p_scale, mode, epochs,
                   baseline=None, baseline_lr=None):
    """Take the run's options from checkpoint ``ck``: its design fields go into ``cv`` (the
    configuration overrides), ``(seed, p_scale, mode, epochs, baseline, baseline_lr)`` are
    returned (the baseline's as given when the checkpoint does not record it). Any of them
    the user gave with another value is refused, and so is ``epochs`` at or below the
    epochs done (nothing to do)."""
    run = ck.position.run
    soc = run.get("soc")
    if soc is None or run.get("p_scale") is None:
        raise OptionError("--resume: the checkpoint does not record its design and p_scale "
                          "(not written by lnsmadam train)")
    from ..golden.soc import SoCConfig

    try:
        design = SoCConfig.from_dict(soc)
    except (ValueError, TypeError, KeyError) as exc:
        raise OptionError(f"--resume: the checkpoint's design is not valid here: {exc}") from None
    theirs = {f.name: getattr(design, f.name) for f in dataclasses.fields(design)}
    sizes = theirs["sizes"]
    if hidden is not None and (len(sizes) != 3 or sizes[1] != hidden):
        raise OptionError(f"--hidden {hidden} conflicts with the checkpoint's sizes = "
                          f"{sizes}: a resume continues its run; leave it out")
    for key, value in cv.values.items():
        if key in theirs and value != theirs[key] and not (
                key == "clk_freq" and float(value) == float(theirs[key])):
            raise OptionError(f"{cv.source[key]} ({key} = {value}) conflicts with the "
                              f"checkpoint's {key} = {theirs[key]}: a resume continues its "
                              f"run; leave it out")
    for key, value in theirs.items():
        cv.values[key] = value
        cv.source.setdefault(key, f"--resume ({key})")
        cv.from_file.discard(key)
    ck_run = {"seed": int(run["seed"]), "p_scale": float(run["p_scale"]),
              "mode": MODES[int(run["mode"])]}
    mine = {"seed": seed, "p_scale": p_scale, "mode": mode}
    for name, flag in (("seed", "--seed"), ("p_scale", "--p-scale"), ("mode", "--mode")):
        if given(ctx, name) and mine[name] != ck_run[name]:
            raise OptionError(f"{flag} {mine[name]} conflicts with the checkpoint's "
                              f"{ck_run[name]}: a resume continues its run; leave {flag} out")
    if "baseline" in run:
        theirs_b, theirs_lr = run["baseline"], run.get("baseline_lr")
        if given(ctx, "baseline") and baseline != theirs_b:
            raise OptionError(f"--baseline {baseline} conflicts with the checkpoint's "
                              f"--baseline {theirs_b}: a resume continues its run; leave "
                              "--baseline out")
        if given(ctx, "baseline_lr") and baseline_lr != theirs_lr:
            theirs = ("--baseline none" if theirs_b == "none" else
                      "tuned default" if theirs_lr is None else theirs_lr)
            raise OptionError(f"--baseline-lr {baseline_lr:g} conflicts with the checkpoint's "
                              f"{theirs}: a resume continues its run; leave --baseline-lr out")
        baseline, baseline_lr = theirs_b, theirs_lr
    p = ck.position
    if epochs is None:
        epochs = int(run["epochs"])
        if epochs <= p.epochs_done:
            raise OptionError(f"--resume: the checkpoint's run has done all its {epochs} "
                              f"epochs: nothing to do; give --epochs (the run's total) above "
                              f"{epochs} to train on")
    elif epochs <= p.epochs_done:
        raise OptionError(f"--epochs (the run's total) must be more than the checkpoint's "
                          f"{p.epochs_done} epochs done, got {epochs}: nothing to do")
    return ck_run["seed"], ck_run["p_scale"], ck_run["mode"], epochs, baseline, baseline_lr


def check_backend(ck, backend: str) -> None:
    """Refuse at once a resume on ``backend`` (``sim`` or ``golden``; a board is checked
    when it answers) whose device is not the one that wrote checkpoint ``ck``."""
    from ..golden.device import GoldenDevice
    from ..golden.soc import SoCConfig

    if backend not in ("sim", "golden"):
        return
    try:
        cfg = SoCConfig.from_dict(ck.position.run["soc"])
    except (KeyError, TypeError, ValueError):
        return                                     # resume_options says what is wrong
    check_design(ck, cfg.identify_json() if backend == "sim"
                 else GoldenDevice.identify_of(cfg), backend)


def check_design(ck, ident: dict, backend: str | None = None) -> None:
    """Refuse, before building anything, a twin or golden device (``backend``) whose
    identify JSON (``ident``) is not the checkpoint's configuration (the device check
    repeats it); name the backend the checkpoint needs where it is known."""
    from ..host.checkpoint import config_hash

    if config_hash(ident) == ck.config_hash:
        return
    wrote = backend_of(ck)
    if backend is not None and wrote is not None and wrote != backend:
        need = "--backend golden" if wrote == "golden" else "--sim or --board NAME"
        raise OptionError(f"--resume: the checkpoint was written by "
                          f"{'--backend golden' if wrote == 'golden' else 'the SoC'}, not "
                          f"--backend {backend}: resume it with {need}")
    raise OptionError("--resume: the checkpoint was written on a device with another "
                      "configuration (another backend, --lanes or gateware version)")
