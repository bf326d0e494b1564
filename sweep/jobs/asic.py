"""Job ``asic``: an ASIC synthesis report of one block, through
``lnsmadam asic BLOCK ... --lib L --clock-ns N -o DIR`` (issue 15).

Registered only when :mod:`lnsmadam.cli.asic` exists. Parameters: ``block`` and the options
of ``lnsmadam asic BLOCK`` under their Python names (``lib``, ``clock_ns``, the block's
options). The command runs in this process and writes ``report.json`` into the job's
folder. Result: that report; metrics: its numeric top-level entries, and ``area_um2`` /
``fmax_mhz`` when the report names them so.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import _click

AVAILABLE = _click.has_command("asic")
NEEDS = "`lnsmadam asic` (lnsmadam.cli.asic, issue 15)"


def params(config: dict) -> dict:
    return _click.params(_click.command("asic"), config)


def run(config: dict, workdir: Path) -> dict:
    cmd, block = _click.command("asic"), config.get("block")
    text = _click.check(cmd, block, *_click.run_block(cmd, config, workdir))
    Path(workdir, "asic.log").write_text(text)
    report = json.loads(Path(workdir, "report.json").read_text())
    files = [p.name for p in Path(workdir).iterdir()
             if p.is_file() and p.suffix in (".json", ".md", ".log", ".rpt", ".txt")]
    return {"block": block, "report": report, "artefacts": sorted(files)}


def metrics(result: dict) -> dict:
    rep = result["report"]
    out = {f"asic_{k}": v for k, v in rep.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key in ("area_um2", "fmax_mhz"):
        if key in rep:
            out[key] = rep[key]
    return out
