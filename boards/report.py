"""Build reports: parse Yosys/nextpnr output, check fit and timing, write JSON and Markdown.

Parsers (pure functions of text, tested on stored logs):

* :func:`parse_nextpnr_log`: the device utilisation table (``ICESTORM_LC: 1234/ 5280 23%``)
  and the ``Max frequency for clock 'x': N MHz (PASS|FAIL at M MHz)`` lines, the last of
  each (post-route) kind; also the first ``ERROR:`` line.
* :func:`parse_nextpnr_report`: nextpnr's ``--report`` JSON (``utilization`` and ``fmax``).
* :func:`parse_yosys_stat`: Yosys ``stat -json`` cell counts (LUT4, FF, carry, RAM, DSP).

:func:`resources` maps a family's cell names to the report's generic rows (``logic``,
``ff``, ``bram``, ``spram``, ``dsp``, ``pll``, ``io``); :func:`problems` gives the one-line
reasons a build is not usable (does not fit, fails timing); :func:`format_markdown` is the
one-screen summary.
"""

from __future__ import annotations

import re

__all__ = ["parse_nextpnr_log", "parse_nextpnr_report", "parse_yosys_stat", "resources",
           "problems", "main_clock", "critical_path", "breakdown", "format_markdown", "CELLS"]

#: Generic resource row -> nextpnr cell type(s), per family.
CELLS = {
    "ice40": {"logic": ("ICESTORM_LC",), "bram": ("ICESTORM_RAM",), "spram": ("ICESTORM_SPRAM",),
              "dsp": ("ICESTORM_DSP",), "pll": ("ICESTORM_PLL",), "io": ("SB_IO",),
              "gb": ("SB_GB",)},
    "ecp5": {"logic": ("TRELLIS_COMB",), "ff": ("TRELLIS_FF",), "bram": ("DP16KD",),
             "lutram": ("TRELLIS_RAMW",), "dsp": ("MULT18X18D",), "alu": ("ALU54B",),
             "pll": ("EHXPLLL",), "io": ("TRELLIS_IO",), "gb": ("DCCA",)},
}

ROW_TITLES = {"logic": "logic cells", "lut4": "LUT4 after synthesis", "ff": "flip-flops", "bram": "block RAM",
              "spram": "SPRAM", "dsp": "DSP", "pll": "PLL", "io": "I/O", "lutram": "LUT RAM",
              "alu": "ALU54", "gb": "global clocks", "carry": "carry"}

_UTIL = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)
_FMAX = re.compile(r"Max frequency for clock\s+'([^']*)':\s+([\d.]+) MHz\s+\((PASS|FAIL) at "
                   r"([\d.]+) MHz\)")


def parse_nextpnr_log(text: str) -> dict:
    """``{"utilization": {cell: {"used", "available"}}, "fmax": {clock: {"achieved",
    "constraint", "pass"}}, "error": str | None}`` from a nextpnr log.

    Utilisation is the last table in the log (after packing); Fmax the last line per clock
    (post-route)."""
    util: dict = {}
    for cell, used, avail, _ in _UTIL.findall(text):
        util[cell] = {"used": int(used), "available": int(avail)}
    fmax: dict = {}
    for clock, got, verdict, want in _FMAX.findall(text):
        fmax[clock] = {"achieved": float(got), "constraint": float(want),
                       "pass": verdict == "PASS"}
    err = re.search(r"^ERROR:\s*(.+)$", text, re.M)
    return {"utilization": util, "fmax": fmax, "error": err.group(1).strip() if err else None}


def parse_nextpnr_report(rep: dict) -> dict:
    """The same shape as :func:`parse_nextpnr_log` from nextpnr's ``--report`` JSON."""
    util = {cell: {"used": int(v["used"]), "available": int(v["available"])}
            for cell, v in rep.get("utilization", {}).items()}
    fmax = {clock: {"achieved": float(v["achieved"]), "constraint": float(v["constraint"]),
                    "pass": float(v["achieved"]) >= float(v["constraint"])}
            for clock, v in rep.get("fmax", {}).items()}
    return {"utilization": util, "fmax": fmax, "error": None}


def parse_yosys_stat(stat: dict, family: str) -> dict:
    """Cell counts from Yosys ``stat -json``: ``lut4``, ``ff``, ``carry``, ``bram``,
    ``spram``, ``dsp`` and every cell type (``cells``)."""
    design = stat.get("design") or {}
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()
             if not k.startswith("$scopeinfo")}
    if family == "ice40":
        out = {"lut4": cells.get("SB_LUT4", 0),
               "ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
               "carry": cells.get("SB_CARRY", 0), "bram": cells.get("SB_RAM40_4K", 0),
               "spram": cells.get("SB_SPRAM256KA", 0), "dsp": cells.get("SB_MAC16", 0)}
    elif family == "ecp5":
        out = {"lut4": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
               "ff": cells.get("TRELLIS_FF", 0), "carry": cells.get("CCU2C", 0),
               "bram": cells.get("DP16KD", 0), "spram": 0,
               "dsp": cells.get("MULT18X18D", 0)}
    else:
        raise ValueError(f"family must be 'ice40' or 'ecp5', got {family!r}")
    out["cells"] = cells
    return out


def _module_of(cell: str) -> str:
    return cell.rsplit(".", 1)[0] if "." in cell else "(top)"


def critical_path(rep: dict, clock: str | None = None) -> dict | None:
    """Summary of nextpnr's ``--report`` critical path (of ``clock``, else the first):
    ``from``/``to`` cells, ``delay_ns``, ``logic_levels`` (logic segments with delay) and
    ``through``: the design modules it crosses, in order (from the cell names)."""
    paths = rep.get("critical_paths") or []
    if clock is not None:
        paths = [p for p in paths if clock in p.get("from", "")] or paths
    if not paths:
        return None
    segs = paths[0].get("path") or []
    if not segs:
        return None
    through = []
    for s in segs:
        cell = s["to"]["cell"]
        if cell.startswith("$"):        # a tool-made cell: no module in its name
            continue
        mod = _module_of(cell)
        if s["type"] in ("logic", "clk-to-q", "setup") and (not through or through[-1] != mod):
            through.append(mod)
    return {"from": segs[0]["from"]["cell"], "to": segs[-1]["to"]["cell"],
            "delay_ns": round(sum(float(s["delay"]) for s in segs), 2),
            "logic_levels": sum(1 for s in segs if s["type"] == "logic" and s["delay"] > 0),
            "clock": paths[0].get("from"),
            "through": through}


def breakdown(stat: dict, family: str) -> dict:
    """Per-module cells of a ``synth -noflatten`` ``stat -json``: ``{module: {lut4, ff,
    bram, spram, dsp}}`` (each module's own cells, without its submodules), largest first."""
    out = {}
    for name, mod in (stat.get("modules") or {}).items():
        r = parse_yosys_stat({"design": mod}, family)
        row = {k: r[k] for k in ("lut4", "ff", "bram", "spram", "dsp")}
        if any(row.values()):
            out[name.lstrip("\\")] = row
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["lut4"]))


def resources(family: str, pnr: dict, synth: dict | None, board_resources: dict) -> dict:
    """Generic rows ``{row: {"used", "available", "percent", "cell"}}``.

    Used/available come from nextpnr's utilisation (what the placer counts); the iCE40 has
    no FF row in nextpnr (an LC holds a LUT4 and a FF), so its ``ff`` row is Yosys's
    SB_DFF* count against the LC count. Where the data sheet is smaller than nextpnr's
    count (the LFE5U-12F is a 25F die), the data sheet is the available figure.
    """
    util = pnr.get("utilization", {})
    rows: dict = {}
    sheet = {"logic": board_resources.get("lut4"), "ff": board_resources.get("ff"),
             "bram": board_resources.get("bram"), "spram": board_resources.get("spram"),
             "dsp": board_resources.get("dsp"), "pll": board_resources.get("pll")}
    for row, cells in CELLS[family].items():
        found = [util[c] for c in cells if c in util]
        if not found:
            continue
        used = sum(f["used"] for f in found)
        avail = sum(f["available"] for f in found)
        if sheet.get(row):
            avail = min(avail, sheet[row]) if avail else sheet[row]
        rows[row] = {"used": used, "available": avail, "cell": "+".join(cells)}
    if family == "ice40" and synth is not None:
        rows["ff"] = {"used": synth["ff"], "available": board_resources["ff"],
                      "cell": "SB_DFF*"}
    if synth is not None:
        rows["lut4"] = {"used": synth["lut4"], "available": board_resources["lut4"],
                        "cell": "SB_LUT4" if family == "ice40" else "LUT4+2*CCU2C"}
    for r in rows.values():
        r["percent"] = round(100.0 * r["used"] / r["available"], 1) if r["available"] else None
    return rows


def problems(rows: dict, fmax: dict, required_mhz: float | None,
             error: str | None = None, timing: bool = True) -> list[str]:
    """One-line reasons the build is unusable: resources over 100 %, a clock below its
    constraint, no clock constrained to ``required_mhz``, or a tool error. Empty when it
    fits and meets timing. ``timing=False`` (a build without placement): fit only."""
    out = []
    over = [f"{ROW_TITLES.get(k, k)} {v['used']}/{v['available']} ({v['percent']:.0f} %)"
            for k, v in rows.items()
            if k != "lut4" and v.get("available") and v["used"] > v["available"]]
    if over:
        out.append("does not fit: " + ", ".join(over))
    if error and not over:
        out.append(f"nextpnr: {error}")
    if not timing:
        return out
    for clock, f in fmax.items():
        if f["achieved"] < f["constraint"]:
            out.append(f"fails timing: {clock} reaches {f['achieved']:.2f} MHz, "
                       f"needs {f['constraint']:.2f} MHz")
    if fmax and required_mhz is not None and main_clock(fmax, required_mhz) is None:
        out.append(f"no clock constrained to the required {required_mhz:.2f} MHz")
    if not fmax and not error:
        out.append("no timing result from nextpnr")
    return out


def main_clock(fmax: dict, required_mhz: float) -> str | None:
    """The design clock among nextpnr's clocks: the one constrained to ``required_mhz``
    (within 0.1 %); the others are e.g. the oscillator input of a PLL."""
    best = None
    for clock, f in fmax.items():
        d = abs(f["constraint"] - required_mhz)
        if d <= 1e-3 * required_mhz and (best is None or d < best[0]):
            best = (d, clock)
    return best[1] if best else None


def _fmt_res(r):
    pct = f" ({r['percent']:.0f} %)" if r.get("percent") is not None else ""
    return f"{r['used']} / {r['available']}{pct}"


def format_markdown(rep: dict) -> str:
    """The one-screen summary of a report dict (:func:`lnsmadam.boards.build.build`)."""
    b, cfg = rep["board"], rep["config"]
    ok = "OK" if rep["ok"] else "FAILED"
    lines = [f"# {b['name']}: {ok}", "",
             f"{b['title']}, {b['device']}-{b['package']}; design `{rep['design']}`; "
             f"seed {rep['seed']}; {rep['seconds']['total']:.0f} s", ""]
    if rep.get("problems"):
        lines += [f"**{p}**" for p in rep["problems"]] + [""]
    t = rep.get("timing") or {}
    if t:
        lines.append(f"Clock: {t['required_mhz']:.2f} MHz required"
                     + (f" (PLL from {b['clock']['freq'] / 1e6:g} MHz)" if t.get("pll") else "")
                     + (f", {t['achieved_mhz']:.2f} MHz achieved"
                        if t.get("achieved_mhz") is not None else "")
                     + (f" (slack {t['margin_percent']:+.0f} %)"
                        if t.get("margin_percent") is not None else ""))
        cp = t.get("critical_path")
        if cp:
            lines.append(f"Critical path: {cp['delay_ns']:.1f} ns, {cp['logic_levels']} logic "
                         f"levels, `{cp['from']}` -> `{cp['to']}` through "
                         + ", ".join(f"`{m}`" for m in cp["through"][:6]))
        lines.append("")
    lines += ["| resource | used / available |", "|---|---|"]
    for k, r in rep.get("resources", {}).items():
        lines.append(f"| {ROW_TITLES.get(k, k)} ({r['cell']}) | {_fmt_res(r)} |")
    lines.append("")
    bd = rep.get("breakdown")
    if bd:
        lines += ["| module (own cells) | LUT4 | FF | block RAM | DSP |", "|---|---|---|---|---|"]
        for name, r in list(bd.items())[:8]:
            lines.append(f"| {name} | {r['lut4']} | {r['ff']} | {r['bram']} | {r['dsp']} |")
        lines.append("")
    keys = [k for k in ("sizes", "lanes", "n_records", "bits", "gamma", "clk_freq", "baud",
                        "divisor") if k in cfg]
    lines.append("Config: " + ", ".join(f"{k}={cfg[k]}" for k in keys))
    tools = rep.get("tools", {})
    lines.append("Tools: " + ", ".join(f"{k} {v}" for k, v in tools.items()
                                       if not k.endswith("-V") and v))
    if rep.get("bitstream"):
        lines.append(f"Bitstream: `{rep['bitstream']}`")
    return "\n".join(lines) + "\n"
