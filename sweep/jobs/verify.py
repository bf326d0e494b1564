"""Job ``verify``: the cocotb regression of one generated block configuration, through
``lnsmadam verify BLOCK [generate options] [--sim ...]`` (issue 14).

Registered only when :mod:`lnsmadam.cli.verify` exists. Parameters: ``block`` and the
options of ``lnsmadam verify BLOCK`` under their Python names (the ``generate`` options and
``sim``). The command runs in this process; exit status 0 is a pass. Result: ``passed`` and
the command's output (also an artefact, ``verify.log``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from . import _click

AVAILABLE = importlib.util.find_spec("lnsmadam.cli.verify") is not None
NEEDS = "`lnsmadam verify` (lnsmadam.cli.verify, issue 14)"


def _command():
    from ...cli.verify import verify
    return verify


def params(config: dict) -> dict:
    return _click.params(_command(), config)


def run(config: dict, workdir: Path) -> dict:
    cmd = _command()
    block = config.get("block")
    sub = _click.subcommand(cmd, block)
    args = _click.arguments(sub, config)
    if any(o.name == "out_dir" for o in sub.params):
        args += ["-o", str(workdir)]
    code, text = _click.invoke(cmd, block, args)
    Path(workdir, "verify.log").write_text(text)
    return {"block": block, "passed": code == 0, "exit_code": code,
            "output_tail": text.splitlines()[-20:], "artefacts": ["verify.log"]}


def metrics(result: dict) -> dict:
    return {"verified": result["passed"]}
