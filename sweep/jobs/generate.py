"""Job ``generate``: the Verilog and JSON description of one block (``lnsmadam generate``).

Parameters: ``block`` (``mac``, ``int8-mac``, ``mul``, ``convert``, ``update``) and that
block's ``lnsmadam generate BLOCK`` options under their Python names (``lanes``,
``acc_bits``, ``saturate`` for ``--saturate/--wrap``, ...), defaults as on the command line.
Result: the block's JSON description (parameters, ports, latency); artefacts: ``<name>.v``
and ``<name>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import _click


def params(config: dict) -> dict:
    return _click.params(_click.command("generate"), config)


def generate(config: dict, workdir: Path) -> dict:
    """Write the block into ``workdir``; return its JSON description (``"files"`` added)."""
    cmd = _click.command("generate")
    before = set(Path(workdir).glob("*.json"))
    _click.check(cmd, config.get("block"), *_click.run_block(cmd, config, workdir))
    (js,) = set(Path(workdir).glob("*.json")) - before
    meta = json.loads(js.read_text())
    meta["files"] = [meta["verilog"], js.name]
    return meta


def run(config: dict, workdir: Path) -> dict:
    meta = generate(config, workdir)
    return {"block": meta["block"], "name": meta["name"], "parameters": meta["parameters"],
            "timing": meta["timing"], "ports": len(meta["ports"]),
            "port_bits": sum(p["width"] for p in meta["ports"]),
            "verilog_bytes": (Path(workdir) / meta["verilog"]).stat().st_size,
            "artefacts": meta["files"]}


def metrics(result: dict) -> dict:
    return {"latency_cycles": result["timing"].get("latency_cycles"),
            "ports": result["ports"], "port_bits": result["port_bits"],
            "verilog_bytes": result["verilog_bytes"]}
