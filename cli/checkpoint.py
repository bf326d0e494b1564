"""``lnsmadam train --checkpoint PATH`` / ``--resume PATH``: the command-line side of exact
resume (``docs/protocol.md`` §10, :mod:`lnsmadam.host.checkpoint`).

A resume continues the checkpoint's run: its design configuration (the device's
``SoCConfig``), seed, ``p_scale`` and mode come from the checkpoint, and an option given on
the command line (or in ``--config``) that says otherwise is refused with one line naming
it, never silently overridden. ``--epochs`` sets the run's total epoch count (default: the
checkpoint's).
"""

from __future__ import annotations

import dataclasses

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


def resume_options(ctx: click.Context, ck, cv, hidden, *, seed, p_scale, mode, epochs):
    """Take the run's options from checkpoint ``ck``: its design fields go into ``cv`` (the
    configuration overrides), ``(seed, p_scale, mode, epochs)`` are returned. Any of them the
    user gave with another value is refused."""
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
    p = ck.position
    if epochs is None:
        epochs = int(run["epochs"])
    elif epochs < p.epochs_done:
        raise OptionError(f"--epochs (the run's total) must be at least the checkpoint's "
                          f"{p.epochs_done} epochs done, got {epochs}")
    return ck_run["seed"], ck_run["p_scale"], ck_run["mode"], epochs


def check_design(ck, ident: dict) -> None:
    """Refuse, before building anything, a twin or golden device whose identify JSON
    (``ident``) is not the checkpoint's configuration (the device check repeats it)."""
    from ..host.checkpoint import config_hash

    if config_hash(ident) != ck.config_hash:
        raise OptionError("--resume: the checkpoint was written on a device with another "
                          "configuration (another backend, --lanes or gateware version)")
