"""Job ``generate``: the Verilog and JSON description of one block, what ``lnsmadam generate``
writes (:func:`lnsmadam.sim.blockfiles.write_block`).

Parameters: ``block`` (``mac``, ``int8-mac``, ``fp8-mac``, ``fp32-mac``, ``mul``,
``convert``, ``update``) and that block's parameters, the ``lnsmadam generate BLOCK``
options under their Python names (``lanes``, ``acc_bits``, ``saturate`` for
``--saturate/--wrap``, ...; :mod:`lnsmadam.hw.blockparams`), defaults as on the command
line; ``axis`` (false) also writes the AXI4-Stream wrapper of a streaming block. Result: the
block's JSON description (parameters, ports, latency); artefacts: every file written
(``<name>.v``, ``.json``, ``.vlt``, ``_inst.vh``, ``_axis.v``).
"""

from __future__ import annotations

from pathlib import Path

from . import Param, _blocks

_OWN = {"axis": Param("bool", "also write <name>_axis.v, the AXI4-Stream wrapper "
                              "(streaming blocks)")}


def params(config: dict) -> dict:
    return _blocks.params(config, _OWN)


def check(config: dict) -> None:
    """What :func:`generate` refuses, without writing anything."""
    _check_axis(config)
    _blocks.check(config, _OWN)


def _check_axis(config: dict) -> None:
    from ...hw.blocks import STREAMING

    if config.get("axis", False) and config.get("block") not in STREAMING:
        raise ValueError(f"axis applies to the streaming blocks ({', '.join(STREAMING)}), "
                         f"not to {config.get('block')}")


def generate(config: dict, workdir: Path) -> tuple[dict, list[str]]:
    """Write the block of ``config`` into ``workdir``; return its JSON description and the
    names of the files written (the keys of ``_OWN`` are this job's)."""
    from ...sim.blockfiles import write_block

    _check_axis(config)
    axis = config.get("axis", False)
    written, meta = write_block(_blocks.build(config, _OWN), workdir, axis)
    return meta, [p.name for p in written]


def run(config: dict, workdir: Path) -> dict:
    meta, files = generate(config, workdir)
    return {"block": meta["block"], "name": meta["name"], "parameters": meta["parameters"],
            "timing": meta["timing"], "ports": len(meta["ports"]),
            "port_bits": sum(p["width"] for p in meta["ports"]),
            "verilog_bytes": (Path(workdir) / meta["verilog"]).stat().st_size,
            "artefacts": files}


def metrics(result: dict) -> dict:
    return {"latency_cycles": result["timing"].get("latency_cycles"),
            "ports": result["ports"], "port_bits": result["port_bits"],
            "verilog_bytes": result["verilog_bytes"]}
