"""Job ``asic``: an ASIC synthesis report of one block, through
``lnsmadam asic BLOCK ... --lib L --clock-ns N -o DIR`` (issue 15).

Registered only when :mod:`lnsmadam.cli.asic` exists. Parameters: ``block`` and the options
of ``lnsmadam asic BLOCK`` under their Python names (``lib``, ``clock_ns``, the block's
options). The command runs in this process and writes ``report.json`` into the job's
folder. Result: that report; metrics: its numeric top-level entries, and ``area_um2`` /
``fmax_mhz`` when the report names them so.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from . import _click

AVAILABLE = importlib.util.find_spec("lnsmadam.cli.asic") is not None
NEEDS = "`lnsmadam asic` (lnsmadam.cli.asic, issue 15)"


def _command():
    from ...cli.asic import asic
    return asic


def params(config: dict) -> dict:
    return _click.params(_command(), config)


def run(config: dict, workdir: Path) -> dict:
    cmd = _command()
    block = config.get("block")
    sub = _click.subcommand(cmd, block)
    text = _click.check(cmd, block, *_click.invoke(
        cmd, block, [*_click.arguments(sub, config), "-o", str(workdir)]))
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
