"""The job registry: one module per job kind.

A job module defines

* ``params(config) -> dict[str, Param]``: the point keys it reads (may depend on the point,
  e.g. ``generate``'s depend on ``block``); a grid key no job of the grid reads is an error;
* ``run(config, workdir) -> dict``: do the work for one point (``config`` holds only the
  keys of ``params``; missing keys take the job's defaults) in the empty folder ``workdir``
  and return a JSON-able result; ``result["artefacts"]`` may list files under ``workdir``
  (relative paths) that travel back to the client with the result;
* ``metrics(result) -> dict``: the flat scalar columns of the combined report;
* optionally ``check(config)``: raise ``ValueError`` (one line, starting with the name of
  the offending key where there is one) for a config ``run`` would refuse, so that the grid
  is refused when it is loaded (``--list`` included), not point by point at run time.
  ``config`` holds only the keys of ``params``, each already checked on its own; the check
  must be quick (no tools, no files): it runs on every distinct config of the grid;
* optionally ``AVAILABLE = False`` and ``NEEDS = "..."`` when the code it calls is not in
  this installation (the grid is then refused with that message).

Jobs run in Dask worker processes, possibly on other machines: they use the Python API, not
the command line through a shell, and never assume a shared filesystem.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

__all__ = ["Param", "JOBS", "get", "names", "available", "check"]

#: job name -> module (relative to this package)
JOBS = {
    "generate": ".generate",
    "synth": ".synth",
    "build": ".build",
    "cycles": ".cycles",
    "train-golden": ".train_golden",
    "verify": ".verify",
    "asic": ".asic",
    "area": ".area",
}


@dataclass(frozen=True)
class Param:
    """One parameter a job reads from a point.

    kind: ``int``, ``float`` (a finite number; an integer is accepted), ``bool``, ``str`` or
    ``ints`` (a list of integers); ``choices`` restricts the values; ``lo``/``hi`` bound
    numbers."""

    kind: str
    help: str
    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None

    def check(self, name: str, value) -> None:
        """Raise ValueError (one line, naming ``name``) if ``value`` is not allowed."""
        ok = {
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
            and (isinstance(v, int) or math.isfinite(v)),
            "bool": lambda v: isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
            "ints": lambda v: isinstance(v, list) and len(v) > 0 and all(
                isinstance(x, int) and not isinstance(x, bool) for x in v),
        }[self.kind]
        what = {"int": "an integer", "float": "a finite number", "bool": "true or false",
                "str": "a string", "ints": "a non-empty list of integers"}[self.kind]
        if not ok(value):
            raise ValueError(f"{name} must be {what} ({self.help}), got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, self.choices))}, "
                             f"got {value!r}")
        vals = value if self.kind == "ints" else [value]
        for v in vals:
            if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
                lo = "-inf" if self.lo is None else f"{self.lo:g}"
                hi = "inf" if self.hi is None else f"{self.hi:g}"
                raise ValueError(f"{name} must be in [{lo}, {hi}] ({self.help}), got {value!r}")


def names() -> list[str]:
    return list(JOBS)


def _module(name: str):
    return importlib.import_module(JOBS[name], __name__)


def get(name: str):
    """The module of job ``name``; ValueError if unknown or not available here."""
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r} (known: {', '.join(JOBS)})")
    mod = _module(name)
    if not getattr(mod, "AVAILABLE", True):
        raise ValueError(f"job {name!r} needs {mod.NEEDS}, which this installation does not "
                         "have")
    return mod


def available() -> list[str]:
    """The jobs that can run in this installation."""
    return [n for n in JOBS if getattr(_module(n), "AVAILABLE", True)]


def refusal(build) -> str | None:
    """``build()``'s ``ValueError`` as one line, or None if it builds. What it built (or
    half-built before refusing) is only checked and dropped: its Amaranth components would
    warn "created but never used" on the user's terminal when collected, so they are
    collected here, quietly."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        msg = None
        try:
            build()
        except ValueError as e:
            msg = " ".join(str(e).split())
        gc.collect()
    return msg


def check_digits_sizes(config: dict) -> None:
    """``sizes`` (if set) fits the digits data set the training jobs use: 64 inputs first,
    10 classes last."""
    from ...golden.data import N_CLASSES, N_FEATURES

    sizes = config.get("sizes")
    if sizes is not None and (len(sizes) < 2 or sizes[0] != N_FEATURES
                              or sizes[-1] != N_CLASSES):
        raise ValueError(f"sizes must start with {N_FEATURES} (the digits' pixels) and end "
                         f"with {N_CLASSES} (their classes), got {sizes}")


def check(name: str, config: dict) -> None:
    """Job ``name``'s ``check(config)`` hook, if it has one (module docstring)."""
    hook = getattr(get(name), "check", None)
    if hook is not None:
        hook(dict(config))
