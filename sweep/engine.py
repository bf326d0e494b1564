"""Run a grid's jobs on Dask and keep every result in ``DIR``; resumable.

Layout of ``DIR``::

    .lnsmadam-sweep                  marks DIR as a sweep folder (written on first use)
    grid.toml                        the grid file last run here
    points/<key>/point.json          the point's config and jobs
    points/<key>/<job>.json          the job's result: written last, atomically (done marker)
    points/<key>/<job>/...           the job's artefacts (reports, Verilog, logs)
    points/<key>/<job>.error.json    a failure: one-line error, host, time
    points/<key>/<job>.traceback.txt ... and its traceback

A (point, job) pair is done when ``<job>.json`` exists and was made by the same
``lnsmadam`` code (:func:`code_version`, a hash of the installed package's sources, which
every result records); a run skips those, so a sweep killed at any moment (Ctrl-C, SIGKILL,
a crashed machine) resumes where it stopped when run again. Failed pairs are tried again on
the next run. A result of other code is stale: the run moves it to ``<job>.stale.json`` and
runs the pair again (``reuse_stale=True`` keeps and counts it as done instead).

Each pair is one Dask task (:func:`execute`) on a worker process with one thread, so a
YoWASP build or a Verilator twin has a core to itself. The task runs in a temporary folder
on the worker and returns the result and the artefacts' bytes; only this process (the
client) writes into ``DIR``, so workers need no shared filesystem, only the same
``lnsmadam`` installed. ``jobs=N`` starts a ``LocalCluster`` of N worker processes
(``memory_limit`` each: Dask restarts a worker that passes it and the task fails);
``scheduler="tcp://host:8786"`` uses a running scheduler and its workers instead.

``DIR`` must be new, empty or a sweep folder (:func:`check_out_dir`): a folder of other
files is refused, never written into. The option checks of the command line
(:func:`parse_memory_limit`, :func:`check_wait`, :func:`check_scheduler`) raise
``ValueError`` naming the option and its allowed range.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import os
import re
import socket
import tempfile
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timezone
from pathlib import Path

from . import jobs as registry
from .grid import Grid, Point

__all__ = ["run", "execute", "pending", "is_done", "code_version", "write_json",
           "MAX_ARTEFACT_BYTES", "OUT_MARKER", "MIN_MEMORY", "MAX_JOBS", "WAIT_RANGE",
           "check_out_dir", "is_sweep_dir", "parse_memory_limit", "check_jobs", "check_wait",
           "check_scheduler"]

#: Artefacts larger than this stay on the worker (noted in the result).
MAX_ARTEFACT_BYTES = 16 << 20


#: The file that marks a folder as written by a sweep.
OUT_MARKER = ".lnsmadam-sweep"
#: The smallest --memory-limit per local worker (a job below it cannot even import numpy).
MIN_MEMORY = 256 << 20
#: The most local worker processes.
MAX_JOBS = 1024
#: --wait, seconds: the range allowed.
WAIT_RANGE = (1.0, 86400.0)


# -- option and folder checks (before any work) ---------------------------------------------
def is_sweep_dir(path) -> bool:
    """``path`` holds a sweep's files: the marker, or (a sweep from before the marker) its
    ``grid.toml`` beside a ``points`` folder."""
    p = Path(path)
    return (p / OUT_MARKER).is_file() or ((p / "grid.toml").is_file()
                                          and (p / "points").is_dir())


def check_out_dir(out_dir, name: str = "-o") -> Path:
    """``out_dir`` as a Path if a sweep may write there: a new directory (its parents are
    created), an empty one or an earlier sweep's folder (:func:`is_sweep_dir`). Raises
    ``ValueError`` naming ``name`` for anything else (a path under a file, a folder not
    writable, a folder of other files: those are never written into). Creates nothing."""
    from ..sim.files import check_writable

    p = check_writable(out_dir, name, "dir")
    if p.exists() and any(p.iterdir()) and not is_sweep_dir(p):
        raise ValueError(f"{name}: {p} already holds files that lnsmadam did not write (not a "
                         f"sweep folder: no {OUT_MARKER}, no grid.toml with points/): give a "
                         f"new or empty directory, or an earlier sweep's folder")
    return p


def _ram() -> int:
    """The memory this process may use (the cgroup's limit, else the machine's RAM)."""
    try:
        from distributed.system import MEMORY_LIMIT
        return int(MEMORY_LIMIT)
    except ImportError:       # pragma: no cover - distributed is a dependency
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _size(n: float) -> str:
    for unit, f in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= f:
            return f"{n / f:.3g}{unit}"
    return f"{n:.0f}B"


_SIZE = re.compile(r"\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]+)\s*")
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_memory_limit(text, name: str = "--memory-limit"):
    """``"auto"`` (Dask's default: the RAM shared by the workers) or the bytes of a size
    with a unit (``4GiB``, ``1.5GB``, ``800MiB``; B, kB, MB, GB, TB, KiB, MiB, GiB, TiB) in
    [:data:`MIN_MEMORY`, the RAM]; ``ValueError`` naming ``name`` otherwise. An int is taken
    as bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        n = text
    elif isinstance(text, str) and text.strip().lower() == "auto":
        return "auto"
    else:
        m = _SIZE.fullmatch(text) if isinstance(text, str) else None
        unit = _UNITS.get(m.group(2).lower()) if m else None
        n = None if unit is None else float(m.group(1)) * unit     # inf past 1e308
    ram = _ram()
    if n is None or not MIN_MEMORY <= n <= ram:
        raise ValueError(f"{name} must be 'auto' or a size in [{_size(MIN_MEMORY)}, "
                         f"{_size(ram)}] (the RAM here; e.g. 4GiB), got {text!r}")
    return int(n)


def check_jobs(jobs, name: str = "--jobs") -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"{name} must be in [1, {MAX_JOBS}], got {jobs}")
    return jobs


def check_wait(value, name: str = "--wait") -> float:
    """Seconds, a finite number in :data:`WAIT_RANGE`; ``ValueError`` naming ``name``."""
    lo, hi = WAIT_RANGE
    try:
        v = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be a number of seconds in [{lo:g}, {hi:g}], "
                         f"got {value!r}")
    return v


_ADDRESS = re.compile(r"(?:(tcp|tls|ucx|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|"
                      r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})")


def check_scheduler(address, name: str = "--scheduler") -> str:
    """A Dask scheduler address, ``[tcp|tls|ucx|ws|wss://]host:port``; ``ValueError``
    naming ``name`` otherwise."""
    m = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise ValueError(f"{name} must be a scheduler address such as tcp://host:8786 "
                         f"([tcp|tls|ucx|ws|wss://]host:port, port in [1, 65535]), "
                         f"got {address!r}")
    return address


#: The parts of the package whose sources decide a result.
_PARTS = ("golden", "hw", "sim", "boards", "host", "cli", "sweep")
_SOURCE_SUFFIXES = {".py", ".cpp", ".h", ".v", ".sv", ".toml"}


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+<12 hex digits>``: a SHA-256 over the relative path and bytes of
    every source file of the installed ``lnsmadam`` (any edit changes it)."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec
    h = hashlib.sha256()
    for part in _PARTS:
        spec = find_spec(f"lnsmadam.{part}")
        for root in (spec.submodule_search_locations or []) if spec else []:
            root = Path(root)
            for f in sorted(root.rglob("*")):
                if (f.suffix in _SOURCE_SUFFIXES and f.is_file()
                        and "__pycache__" not in f.parts):
                    h.update(f"{part}/{f.relative_to(root).as_posix()}\0".encode())
                    h.update(f.read_bytes())
    try:
        ver = version("lnsmadam")
    except PackageNotFoundError:
        ver = "0"
    return f"{ver}+{h.hexdigest()[:12]}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a reader sees the old file or the new
    one, never a part)."""
    write_bytes(path, (json.dumps(data, indent=1, default=str) + "\n").encode())


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute(job: str, config: dict) -> dict:
    """Run one job on one point's config in a fresh temporary folder (on a worker).

    Returns ``{"ok", "result" | "error", "traceback", "artefacts": {path: bytes}, "seconds",
    "host", "pid"}``; an exception inside the job is caught and returned, not raised."""
    t0 = time.monotonic()
    out = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now(),
           "code": code_version()}
    log = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="lnsmadam-sweep-") as tmp:
        work = Path(tmp)
        try:
            with redirect_stdout(log), redirect_stderr(log):
                result = registry.get(job).run(dict(config), work)
            names = list(result.pop("artefacts", []))
            out.update(ok=True, result=result)
        except Exception as e:     # a failed point is data, the sweep goes on
            names = [p.name for p in work.iterdir() if p.suffix in (".log", ".rpt", ".json")]
            out.update(ok=False, error=_one_line(e), traceback=traceback.format_exc())
        art, skipped = {}, []
        for name in names:
            path = work / name
            if path.is_file() and path.stat().st_size <= MAX_ARTEFACT_BYTES:
                art[name] = path.read_bytes()
            elif path.is_file():
                skipped.append(f"{name} ({path.stat().st_size} bytes)")
        if log.getvalue():
            art["output.log"] = log.getvalue().encode()
        out["artefacts"], out["artefacts_skipped"] = art, skipped
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def _result_path(out: Path, key: str, job: str) -> Path:
    return out / "points" / key / f"{job}.json"


def _stored(out: Path, key: str, job: str) -> dict | None:
    try:
        res = json.loads(_result_path(out, key, job).read_text())
    except (OSError, ValueError):
        return None
    return res if isinstance(res, dict) and res.get("ok") is True else None


def is_done(out: Path, key: str, job: str, code: str | None = None) -> bool:
    """``<job>.json`` holds a success (made by ``code``, when given)."""
    res = _stored(out, key, job)
    return res is not None and (code is None or res.get("code") == code)


def pending(grid: Grid, out, code: str | None = None) -> list[tuple[Point, str]]:
    """The (point, job) pairs of ``grid`` not yet done in ``out`` (by ``code``, if given)."""
    out = Path(out)
    return [(p, j) for p in grid.points for j in p.jobs if not is_done(out, p.key, j, code)]


def store(out: Path, point: Point, job: str, payload: dict) -> bool:
    """Write a task's payload under ``out/points/<key>/``; True if the job succeeded."""
    folder = out / "points" / point.key
    for name, data in payload.get("artefacts", {}).items():
        write_bytes(folder / job / name, data)
    meta = {"format": "lnsmadam-sweep-result", "version": 1, "point": point.key, "job": job,
            "config": point.job_config(job), "code": payload.get("code"),
            "host": payload.get("host"),
            "started": payload.get("started"), "finished": _now(),
            "seconds": payload.get("seconds"),
            "artefacts": sorted(payload.get("artefacts", {})),
            "artefacts_skipped": payload.get("artefacts_skipped", [])}
    err, tb = folder / f"{job}.error.json", folder / f"{job}.traceback.txt"
    if payload.get("ok"):
        write_json(_result_path(out, point.key, job), {**meta, "ok": True,
                                                       "result": payload["result"]})
        err.unlink(missing_ok=True)
        tb.unlink(missing_ok=True)
        return True
    write_bytes(tb, payload.get("traceback", "").encode())
    write_json(err, {**meta, "ok": False, "error": payload.get("error")})
    return False


def _failure(exc: BaseException) -> dict:
    """The payload of a task that died outside :func:`execute` (a killed worker, ...)."""
    return {"ok": False, "error": _one_line(exc),
            "traceback": "".join(traceback.format_exception(exc))}


def _client(jobs: int, scheduler: str | None, memory_limit, wait_s: float):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=wait_s)
        except (OSError, TimeoutError) as e:
            raise ValueError(f"--scheduler: cannot connect to {scheduler}: {_one_line(e)}") \
                from None
        try:
            client.wait_for_workers(1, timeout=wait_s)
        except (TimeoutError, OSError):
            client.close()
            raise ValueError(f"--scheduler: no worker joined {scheduler} within {wait_s:g} s; "
                             f"start one with `dask worker {scheduler}`") from None
        return client, None
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                           memory_limit=memory_limit, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run(grid: Grid, out_dir, *, jobs: int = 2, scheduler: str | None = None,
        memory_limit="auto", wait_s: float = 60.0, progress: bool = True,
        reuse_stale: bool = False) -> dict:
    """Run every job of every point of ``grid`` not yet done in ``out_dir`` by this code.

    Returns ``{"points", "tasks", "skipped", "stale", "ran", "failed", "seconds", "code"}``
    (``stale``: results of other code, re-run, or kept when ``reuse_stale``). Ctrl-C stops
    the run (what finished is kept) and re-raises KeyboardInterrupt."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    if scheduler:
        check_scheduler(scheduler)
        wait_s = check_wait(wait_s)
    else:
        check_jobs(jobs)
        memory_limit = parse_memory_limit(memory_limit)
    t0 = time.monotonic()
    out = check_out_dir(out_dir)
    if not (out / OUT_MARKER).exists():
        write_json(out / OUT_MARKER, {"format": "lnsmadam-sweep-folder", "version": 1,
                                      "created": _now(), "code": code_version()})
    write_bytes(out / "grid.toml", grid.text.encode())
    for p in grid.points:
        meta = out / "points" / p.key / "point.json"
        if not meta.exists():
            write_json(meta, {"key": p.key, "config": p.config, "jobs": list(p.jobs)})
    code = code_version()
    todo = pending(grid, out, None if reuse_stale else code)
    stale = [(p, j) for p, j in (pending(grid, out, code) if reuse_stale else todo)
             if is_done(out, p.key, j)]
    if not reuse_stale:
        # keep what the old code found beside the new result, never under its name
        for p, j in stale:
            os.replace(_result_path(out, p.key, j), out / "points" / p.key / f"{j}.stale.json")
    left = {}
    for p, j in todo:
        left.setdefault(p.key, set()).add(j)
    summary = {"points": len(grid.points), "tasks": len(grid.points) * len(grid.jobs),
               "skipped": len(grid.points) * len(grid.jobs) - len(todo), "stale": len(stale),
               "ran": 0, "failed": 0, "code": code}
    foreign = set()
    if todo:
        client, cluster = _client(jobs, scheduler, memory_limit, wait_s)
        bar = tqdm(total=len(grid.points), initial=len(grid.points) - len(left), unit="point",
                   desc="sweep", disable=not progress, dynamic_ncols=True)
        futures = {}
        try:
            for p, j in todo:
                f = client.submit(execute, j, p.job_config(j), pure=False,
                                  key=f"{j}-{p.key}-{os.urandom(4).hex()}")
                futures[f] = (p, j)
            for f in as_completed(futures):
                p, j = futures[f]
                try:
                    payload = f.result()
                except Exception as e:      # the worker died (memory limit), or similar
                    payload = _failure(e)
                ok = store(out, p, j, payload)
                theirs = payload.get("code")
                if theirs and theirs != code and theirs not in foreign:
                    foreign.add(theirs)
                    bar.write(f"warning: worker {payload.get('host')} runs lnsmadam {theirs}, "
                              f"this client {code}: its results count as stale here (install "
                              f"the same lnsmadam on every worker)")
                summary["ran"] += 1
                summary["failed"] += not ok
                left[p.key].discard(j)
                if not left[p.key]:
                    bar.update(1)
                if not ok:
                    bar.write(f"failed: {j} on point {p.key}: {payload['error'][:200]}")
                bar.set_postfix(failed=summary["failed"])
        finally:
            bar.close()
            for f in futures:
                f.cancel()
            client.close()
            if cluster is not None:
                cluster.close()
    summary["seconds"] = round(time.monotonic() - t0, 1)
    return summary
