"""Jobs over a block subcommand of the command line (``generate``, ``verify``, ``asic``).

Those commands keep the block constructors and their parameter checks in their click
callbacks, so the job calls the click command in this process (no shell, no new Python):
its options become the job's parameters (``--acc-bits`` is ``acc_bits``; a
``--saturate/--wrap`` switch is the boolean ``saturate``), the point's values become
arguments, and output is captured.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io

import click

from . import Param

#: options that the job sets itself (output folder) or that are not design parameters
_OWN = {"out_dir", "help", "quiet"}


def has_command(name: str) -> bool:
    """Whether ``lnsmadam NAME`` exists here (module ``lnsmadam.cli.NAME``)."""
    return importlib.util.find_spec(f"lnsmadam.cli.{name}") is not None


def command(name: str) -> click.Command:
    """The click command of ``lnsmadam NAME`` (``lnsmadam.cli.NAME:NAME``)."""
    return getattr(importlib.import_module(f"lnsmadam.cli.{name}"), name)


def _param(opt: click.Parameter) -> Param:
    t = opt.type
    help_ = (getattr(opt, "help", None) or opt.name).split(".")[0].strip()
    if getattr(opt, "is_flag", False) or isinstance(t, click.types.BoolParamType):
        return Param("bool", help_)
    if isinstance(t, click.Choice):
        return Param("str", help_, choices=tuple(t.choices))
    if isinstance(t, click.types.IntParamType):
        return Param("int", help_)
    if isinstance(t, click.types.FloatParamType):
        return Param("float", help_)
    return Param("str", help_)


def _blocks(cmd: click.Command) -> tuple[str, ...]:
    """The blocks of a group's subcommands, or of a command's ``block`` argument choices."""
    if isinstance(cmd, click.Group):
        return tuple(sorted(cmd.commands))
    arg = next((p for p in cmd.params if isinstance(p, click.Argument) and p.name == "block"),
               None)
    return tuple(arg.type.choices) if arg is not None and isinstance(arg.type, click.Choice) \
        else ()


def subcommand(cmd: click.Command, block) -> click.Command:
    """The command that takes the block's options: ``cmd``'s subcommand ``block`` (a group,
    like ``generate``) or ``cmd`` itself (a command with a ``BLOCK`` argument)."""
    blocks = _blocks(cmd)
    if not isinstance(block, str) or (blocks and block not in blocks):
        raise ValueError(f"block must be one of {', '.join(blocks)}, got {block!r}")
    return cmd.commands[block] if isinstance(cmd, click.Group) else cmd


def params(cmd: click.Command, config: dict, extra: dict | None = None) -> dict[str, Param]:
    """``block`` plus the options of the block's command (without the output folder)."""
    blocks = _blocks(cmd)
    out = {"block": Param("str", "which block", choices=blocks or None), **(extra or {})}
    try:
        sub = subcommand(cmd, config.get("block"))
    except ValueError:
        return out
    for opt in sub.params:
        if isinstance(opt, click.Option) and opt.name not in _OWN:
            out.setdefault(opt.name, _param(opt))
    return out


def arguments(cmd: click.Command, config: dict) -> list[str]:
    """Command-line arguments for ``cmd`` from ``config`` (keys = option names)."""
    args = []
    opts = {o.name: o for o in cmd.params if isinstance(o, click.Option)}
    for key, value in config.items():
        if key not in opts:
            continue
        o = opts[key]
        if o.is_flag and o.secondary_opts:
            args.append(o.opts[0] if value else o.secondary_opts[0])
        elif o.is_flag:
            if value:
                args.append(o.opts[0])
        else:
            args += [o.opts[-1], str(value)]
    return args


def run_block(cmd: click.Command, config: dict, out_dir=None) -> tuple[int, str]:
    """``lnsmadam CMD BLOCK`` with ``config``'s options (and ``-o out_dir`` when the
    command has that option); see :func:`invoke`."""
    block = config.get("block")
    sub = subcommand(cmd, block)
    args = arguments(sub, config)
    if out_dir is not None and any(o.name == "out_dir" for o in sub.params):
        args += ["-o", str(out_dir)]
    return invoke(cmd, block, args)


def invoke(cmd: click.Command, block: str, args: list[str]) -> tuple[int, str]:
    """Run ``lnsmadam CMD BLOCK ARGS`` in this process; return its exit status and output
    (stdout and stderr). A library ValueError propagates."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            cmd.main([block, *args], prog_name=f"lnsmadam {cmd.name}", standalone_mode=False)
            code = 0
        except click.ClickException as e:
            buf.write(f"error: {e.format_message()}\n")
            code = e.exit_code
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, buf.getvalue()


def check(cmd: click.Command, block: str, code: int, text: str) -> str:
    """``text`` when ``code`` is 0, else RuntimeError with the command's last output line."""
    if code:
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise RuntimeError(f"lnsmadam {cmd.name} {block} exited with {code}: {last[0]}")
    return text
