"""What the block jobs (``generate``, ``synth``, ``verify``, ``asic``) share: a point names a
block kind (``block``) and gives that block's flat parameters, the options of ``lnsmadam
generate BLOCK`` under their Python names (``lanes``, ``acc_bits``, ``saturate`` for
``--saturate/--wrap``, ...), which :mod:`lnsmadam.hw.blockparams` turns into the block. The
parameters, their types, choices and defaults are read from there, so a grid takes exactly
what the command line takes.
"""

from __future__ import annotations

import functools
import json

from ...hw import blockparams
from . import Param, refusal

_KIND = {int: "int", bool: "bool", str: "str"}


def params(config: dict, own: dict | None = None) -> dict[str, Param]:
    """``block``, the job's ``own`` parameters and those of the point's block (none while
    ``block`` is missing or unknown: the grid check then refuses it)."""
    out = {"block": Param("str", "which block", choices=tuple(blockparams.KINDS)),
           **(own or {})}
    kind = config.get("block")
    if kind in blockparams.KINDS:
        for p in blockparams.parameters(kind).values():
            out.setdefault(p.name, Param(_KIND[p.type], f"a parameter of block {kind}",
                                         choices=p.choices))
    return out


def build(config: dict, own=()):
    """The :class:`~lnsmadam.hw.blocks.Block` of a point (the keys in ``own`` are the job's,
    not the block's)."""
    return blockparams.build(config.get("block"), {k: v for k, v in config.items()
                                                   if k != "block" and k not in own})


def check(config: dict, own=()) -> None:
    """Refuse, before anything runs, what :func:`build` would refuse at run time: a point
    without ``block``, or block parameters the block's builder rejects (a range, a
    combination, a Verilog keyword as ``name``); the keys in ``own`` are the job's. The block
    is built (not elaborated, a few ms) once per distinct set of block parameters other than
    ``name``."""
    from ...hw.blocks import check_module_name

    if config.get("block") is None:
        raise ValueError(f"block is required (one of {', '.join(blockparams.KINDS)})")
    if config.get("name") is not None:     # only names the module: checked on its own
        check_module_name(config["name"])
    msg = _refusal(json.dumps({k: v for k, v in config.items() if k not in own
                               and k != "name"}, sort_keys=True))
    if msg:
        raise ValueError(msg)


@functools.lru_cache(maxsize=4096)
def _refusal(params_json: str) -> str | None:
    params = json.loads(params_json)
    return refusal(lambda: build(params))
