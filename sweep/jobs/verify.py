"""Job ``verify``: the cocotb regression of one generated block configuration, through
``lnsmadam verify BLOCK [generate options] [--sim ...]`` (issue 14).

Registered only when :mod:`lnsmadam.cli.verify` exists. Parameters: ``block`` and the
options of ``lnsmadam verify BLOCK`` under their Python names (the ``generate`` options and
``sim``). The command runs in this process; exit status 0 is a pass. Result: ``passed`` and
the command's output (also an artefact, ``verify.log``).
"""

from __future__ import annotations

from pathlib import Path

from . import _click

AVAILABLE = _click.has_command("verify")
NEEDS = "`lnsmadam verify` (lnsmadam.cli.verify, issue 14)"


def params(config: dict) -> dict:
    return _click.params(_click.command("verify"), config)


def run(config: dict, workdir: Path) -> dict:
    code, text = _click.run_block(_click.command("verify"), config, workdir)
    Path(workdir, "verify.log").write_text(text)
    return {"block": config["block"], "passed": code == 0, "exit_code": code,
            "output_tail": text.splitlines()[-20:], "artefacts": ["verify.log"]}


def metrics(result: dict) -> dict:
    return {"verified": result["passed"]}
