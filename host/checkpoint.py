"""Checkpoints of a training run on a device: everything an exact resume needs.

A :class:`Checkpoint` holds the device's trained state (per-layer weights ``u`` and state
``v``, the run-control registers and per-layer constants, ``steps``), where the run stands
(:class:`RunPosition`), a SHA-256 of the device's identify ``config`` (a resume refuses a
device whose configuration differs) and of the uploaded data set (a resume refuses other
data). ``docs/protocol.md`` §10 defines the resume.

File format (``save``/``load``): one NumPy ``.npz`` (no pickles) holding ``header``, a JSON
string with ``format`` = :data:`FORMAT`, ``version`` = :data:`VERSION` and every scalar field,
and the arrays ``u0, v0, u1, v1, ...``. Loading refuses a missing file, a corrupt one (zip
CRC, JSON, shapes, field types) and another format version, each with one line naming the
file and the reason (:class:`CheckpointError`, a ``ValueError``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

__all__ = ["Checkpoint", "CheckpointError", "RunPosition", "FORMAT", "VERSION",
           "config_hash", "data_hash"]

FORMAT = "lnsmadam-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (one line: the file and the reason)."""


def _sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def config_hash(ident: dict) -> str:
    """SHA-256 of a device's identify ``config`` object (canonical JSON)."""
    return _sha256_json(ident.get("config", {}))


def data_hash(words) -> str:
    """SHA-256 of the data region's words as uploaded (little-endian int64)."""
    return hashlib.sha256(np.asarray(words, "<i8").tobytes()).hexdigest()


@dataclass
class RunPosition:
    """Where a training run stands.

    ``run``: what defines it (``sizes``, ``lr_step``, ``seed``, ``mode``, ``first_epoch``,
    ``epochs``: the total; the session adds ``bits``, ``gamma`` and what the device cannot
    know, e.g. ``p_scale``); ``epochs_done``: epochs
    finished (their metrics are ``history``); ``sample``/``correct``: samples finished in
    the epoch in progress and how many of them were predicted right.
    """
    run: dict
    epochs_done: int = 0
    sample: int = 0
    correct: int = 0
    history: list = field(default_factory=list)

    @property
    def epoch_base(self) -> int:
        """The epoch number (shuffle) of the epoch in progress."""
        return int(self.run["first_epoch"]) + self.epochs_done

    @property
    def epochs_left(self) -> int:
        return int(self.run["epochs"]) - self.epochs_done


_RUN_KEYS = ("sizes", "lr_step", "seed", "mode", "first_epoch", "epochs")


@dataclass
class Checkpoint:
    """A device's trained state and its run's position (see the module docstring).

    ``regs``: run-control registers by name (``n_train``, ``n_test``, ``epoch_base``, and
    ``sample_base``/``mode`` where the device has them); ``consts``: ``u_bias``, ``f_bias``,
    ``e_clamp`` per layer; ``steps``: training samples since the run's initial weights.
    """
    position: RunPosition
    u: list
    v: list
    regs: dict
    consts: dict
    steps: int
    config_hash: str
    data_hash: str

    def header(self) -> dict:
        h = {k.name: getattr(self, k.name) for k in fields(self) if k.name not in ("u", "v")}
        h["position"] = asdict(self.position)
        return {"format": FORMAT, "version": VERSION, "layers": len(self.u), **h}

    def save(self, path) -> None:
        """Write the checkpoint to ``path`` (``.npz``), atomically (a temporary file, then
        renamed), so an interrupted save never leaves a half-written checkpoint."""
        path = Path(path)
        arrays = {}
        for l, (u, v) in enumerate(zip(self.u, self.v)):
            arrays[f"u{l}"] = np.asarray(u, np.int64)
            arrays[f"v{l}"] = np.asarray(v, np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, header=np.array(json.dumps(self.header(), default=_plain)), **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> Checkpoint:
        """Read a checkpoint; :class:`CheckpointError` (one line) when it cannot be used."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist")
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"checkpoint {path} is corrupt: not an .npz (zip) file")
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"][()]))
                if not isinstance(header, dict) or header.get("format") != FORMAT:
                    raise CheckpointError(f"{path} is not an lnsmadam checkpoint")
                if header.get("version") != VERSION:
                    raise CheckpointError(f"checkpoint {path} has format version "
                                          f"{header.get('version')!r}; this lnsmadam reads "
                                          f"version {VERSION}")
                n = header["layers"]
                u = [z[f"u{l}"] for l in range(n)]
                v = [z[f"v{l}"] for l in range(n)]
            ck = cls(position=RunPosition(**header["position"]), u=u, v=v,
                     **{k: header[k] for k in ("regs", "consts", "steps", "config_hash",
                                               "data_hash")})
            ck._check()
        except CheckpointError:
            raise
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, TypeError, ValueError,
                json.JSONDecodeError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"checkpoint {path} is corrupt: {why}") from None
        return ck

    def _check(self) -> None:
        """Shapes and field types agree with each other (ValueError otherwise)."""
        run = self.position.run
        missing = [k for k in _RUN_KEYS if k not in run]
        if missing:
            raise ValueError(f"run lacks {', '.join(missing)}")
        sizes = [int(s) for s in run["sizes"]]
        if len(self.u) != len(sizes) - 1:
            raise ValueError(f"{len(self.u)} layers for sizes {sizes}")
        for l, (u, v) in enumerate(zip(self.u, self.v)):
            shape = (sizes[l + 1], sizes[l] + 1)
            if u.shape != shape or v.shape != shape or u.dtype.kind != "i" or v.dtype.kind != "i":
                raise ValueError(f"layer {l}: u {u.shape}, v {v.shape}, expected {shape}")
        p = self.position
        for name, val in (("epochs_done", p.epochs_done), ("sample", p.sample),
                          ("correct", p.correct), ("steps", self.steps)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 0:
                raise ValueError(f"{name} is {val!r}")
        if not 0 <= p.epochs_done <= int(run["epochs"]) or len(p.history) != p.epochs_done:
            raise ValueError(f"{p.epochs_done} epochs done of {run['epochs']} with "
                             f"{len(p.history)} history entries")
        if p.correct > p.sample or p.sample >= max(1, int(self.regs["n_train"])):
            raise ValueError(f"sample {p.sample}, correct {p.correct} for "
                             f"n_train {self.regs['n_train']}")


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
