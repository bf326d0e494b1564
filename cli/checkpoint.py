"""``lnsmadam train --checkpoint PATH`` / ``--resume PATH``: the command-line side of exact
resume (``docs/protocol.md`` §10, :mod:`lnsmadam.host.checkpoint`).

A resume continues the checkpoint's run: its MLP, seed, learning rate and mode come from the
checkpoint, and an option given on the command line that says otherwise is refused (one
line naming it), never silently overridden. ``--epochs`` sets the run's total epoch count
(default: the checkpoint's).
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.core import ParameterSource

#: train option (click parameter name) -> (its flag, the checkpoint run key)
RUN_OPTIONS = {"hidden": ("--hidden", "sizes"), "bits": ("--bits", "bits"),
               "gamma": ("--gamma", "gamma"), "p_scale": ("--p-scale", "p_scale"),
               "lr_step": ("--lr-step", "lr_step"), "seed": ("--seed", "seed"),
               "mode": ("--mode", "mode")}
MODES = ("exact", "pipelined")


def check_output(path: str | None) -> None:
    """Refuse a ``--checkpoint`` path that cannot be written, before any training."""
    if path is None:
        return
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise click.BadParameter(f"{path} is a directory; give a file name (e.g. run.npz)",
                                 param_hint="--checkpoint")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise click.BadParameter(f"cannot write {path}: {parent} is not a writable directory",
                                 param_hint="--checkpoint")


def load(path: str):
    """The checkpoint at ``path``, or a one-line usage error."""
    from lnsmadam.host.checkpoint import Checkpoint, CheckpointError

    try:
        return Checkpoint.load(path)
    except CheckpointError as exc:
        raise click.BadParameter(str(exc), param_hint="--resume") from None


def run_values(ctx: click.Context, ck, given: dict) -> dict:
    """The run options of a resume: the checkpoint's values; an option the user gave
    explicitly must agree with them. ``given``: the command's values of RUN_OPTIONS."""
    run = ck.position.run
    sizes = [int(s) for s in run["sizes"]]
    if len(sizes) != 3 or sizes[0] != 64 or sizes[2] != 10:
        raise click.BadParameter(f"the checkpoint's MLP is {'-'.join(map(str, sizes))}; "
                                 f"this command trains 64-H-10", param_hint="--resume")
    missing = [k for k in ("bits", "gamma", "p_scale") if run.get(k) is None]
    if missing:
        raise click.BadParameter(f"the checkpoint does not record {', '.join(missing)} "
                                 f"(not written by lnsmadam train)", param_hint="--resume")
    theirs = {"hidden": sizes[1], "bits": int(run["bits"]), "gamma": int(run["gamma"]),
              "p_scale": float(run["p_scale"]), "lr_step": int(run["lr_step"]),
              "seed": int(run["seed"]), "mode": MODES[int(run["mode"])]}
    for name, (flag, _) in RUN_OPTIONS.items():
        if (ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
                and given[name] != theirs[name]):
            raise click.BadParameter(f"{flag} {given[name]} conflicts with the checkpoint's "
                                     f"{theirs[name]} (a resume continues its run: leave "
                                     f"{flag} out)", param_hint=flag)
    return theirs


def total_epochs(ck, epochs: int | None) -> int:
    """The resumed run's total epochs: ``--epochs`` if given (at least those done)."""
    p = ck.position
    if epochs is None:
        return int(p.run["epochs"])
    if epochs < p.epochs_done:
        raise click.BadParameter(f"the checkpoint has {p.epochs_done} epochs done; --epochs "
                                 f"(the run's total) must be at least that, got {epochs}",
                                 param_hint="--epochs")
    return epochs
