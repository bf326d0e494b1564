"""What every command shares: one-line errors for bad options, output-path checks, and the
design configuration options of ``train`` and ``build``.

Errors. A bad value is reported on one line that names the *option* the user typed and the
allowed range, with click's usage exit status 2; nothing is written. Library code validates
and raises ``ValueError("lanes must be in [1, 256], got -1")`` naming its *parameter*;
:func:`checked` runs such code and renames the parameter to the option through a table
(``{"lanes": "--lanes"}``). A new command uses the same pair::

    names = {"lanes": "--lanes", "acc_bits": "--acc-bits"}
    cfg = checked(lambda: MACConfig(fmt, lanes=lanes, acc_bits=acc_bits), names)

and refuses options that would change nothing with :func:`refuse_given`; output paths are
checked with :func:`output_file` / :func:`output_dir` before any long work starts.

Configuration. :func:`config_options` is the one definition of the SoC/model options
(``--sizes``, ``--hidden``, ``--lanes``, ``--records``, ``--bits``, ``--gamma``,
``--lr-step``, ``--clk-freq``, ``--baud``, ``--set KEY=VALUE``, ``--config FILE``);
:func:`config_values` turns them into ``SoCConfig`` field overrides, remembering which option
gave each field so that an error names it. Precedence: a TOML ``--config`` file, then the
command line (a dedicated option and ``--set`` of the same field together are refused).
"""

from __future__ import annotations

import ast
import gc
import re
import sys
import warnings
from pathlib import Path

import click
from click.core import ParameterSource

__all__ = ["OptionError", "fail", "warn", "checked", "option_message", "given",
           "refuse_given", "output_file", "output_dir", "PLOT_SUFFIXES", "parse_sizes",
           "config_options", "config_values", "apply_hidden", "ConfigValues",
           "CONFIG_OPTIONS"]


class OptionError(click.UsageError):
    """A bad or conflicting option: one ``error:`` line, exit status 2."""

    def show(self, file=None) -> None:
        click.echo(f"error: {' '.join(self.format_message().split())}",
                   file=file, err=file is None)


def fail(message, code: int = 1):
    """Print ``error: message`` (whitespace collapsed to one line) and exit with ``code``."""
    click.echo(f"error: {' '.join(str(message).split())}", err=True)
    sys.exit(code)


def warn(message) -> None:
    click.echo(f"warning: {' '.join(str(message).split())}", err=True)


_LEADING = re.compile(r"^([A-Za-z_][\w.]*)(\[\d+\])?(:| must| is|=)")


#: ``with name=value``: the other parameter a range depends on (``window must be in [1, 37]
#: with lut_frac=24``)
_WITH = re.compile(r"\bwith ([A-Za-z_]\w*)=([^\s,;()]+)")


def option_message(exc: Exception, names: dict) -> str:
    """``exc``'s message on one line, its leading parameter name (a key of ``names``,
    optionally indexed as ``sizes[1]``) replaced by the option (the value of ``names``), and
    each ``with name=value`` (a parameter the range depends on) by ``with --option value``."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    m = _LEADING.match(msg)
    if m and m.group(1) in names:
        opt, idx = names[m.group(1)], m.group(2)
        if m.group(3) == "=":
            return f"{opt}: {msg}"
        if idx and opt != "--hidden":
            opt = f"{opt} (entry {idx[1:-1]})"
        msg = opt + msg[m.end(2) if idx else m.end(1):]
    return _WITH.sub(lambda w: f"with {names[w.group(1)]} {w.group(2)}"
                     if w.group(1) in names else w.group(0), msg)


def checked(fn, names: dict):
    """``fn()``; a ``ValueError`` (any parameter check) becomes an :class:`OptionError`
    naming the option (:func:`option_message`)."""
    try:
        return fn()
    except ValueError as exc:
        err = OptionError(option_message(exc, names))
    # A constructor that rejected its parameters leaves a half-built Elaboratable behind
    # (reachable from the traceback until the except block is left): collect it now,
    # quietly, instead of a later "created but never used" warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
    raise err


def given(ctx: click.Context, *params: str) -> list[str]:
    """The options among ``params`` (parameter names) the user gave on the command line, as
    they are spelt there (``--lanes``)."""
    out = []
    for name in params:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            param = next(p for p in ctx.command.params if p.name == name)
            out.append(max(param.opts, key=len))
    return out


def refuse_given(ctx: click.Context, params, why: str) -> None:
    """Refuse (exit 2) any of ``params`` given on the command line: ``why`` says why it
    would change nothing (e.g. ``"with --backend golden"``)."""
    bad = given(ctx, *params)
    if bad:
        raise OptionError(f"{', '.join(bad)} has no effect {why}: leave "
                          f"{'it' if len(bad) == 1 else 'them'} out")


# -- output paths -------------------------------------------------------------------------------
#: plot file types matplotlib writes with its own dependencies (pgf needs LaTeX, avif a
#: Pillow plugin)
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".svgz", ".eps", ".ps", ".jpg", ".jpeg", ".tif",
                 ".tiff", ".webp", ".gif")


def output_file(path, option: str, suffixes: tuple[str, ...] | None = None) -> Path | None:
    """Check, before any work, that ``path`` (None: not asked for) can be written as a file
    and ends in one of ``suffixes``; raise :class:`OptionError` naming ``option``."""
    if path is None:
        return None
    from ..sim.files import OutputPathError, check_writable

    if suffixes is not None and Path(path).suffix.lower() not in suffixes:
        raise OptionError(f"{option} must end in one of {', '.join(suffixes)}, got {path!r}")
    try:
        return check_writable(path, option, "file")
    except OutputPathError as exc:
        raise OptionError(str(exc)) from None


def output_dir(path, option: str) -> Path:
    """Check, before any work, that ``path`` can be written as a directory."""
    from ..sim.files import OutputPathError, check_writable

    try:
        return check_writable(path, option, "dir")
    except OutputPathError as exc:
        raise OptionError(str(exc)) from None


# -- --sizes, --set, --config -------------------------------------------------------------------
def parse_sizes(text: str, option: str = "--sizes") -> tuple[int, ...]:
    """Layer widths from ``64,16,10`` or ``64-16-10``: two or more positive integers joined
    by one kind of separator; anything else (``64,,10``, ``64,-16,10``) is refused."""
    s = str(text).strip()
    sep = "," if "," in s else "-"
    parts = [p.strip() for p in s.split(sep)]
    if len(parts) < 2 or not all(re.fullmatch(r"[0-9]+", p) for p in parts):
        raise OptionError(f"{option} must be two or more positive layer widths joined by "
                          f"',' or '-' (e.g. 64,16,10), got {text!r}")
    sizes = tuple(int(p) for p in parts)
    if min(sizes) < 1:
        raise OptionError(f"{option} widths must be >= 1, got {text!r}")
    return sizes


def _parse_value(key: str, value: str, where: str):
    if key == "sizes" and isinstance(value, str):
        text = value.strip().strip("()[]")
        return parse_sizes(text, where)
    text = value.strip()
    if text.lower() in ("true", "false"):          # TOML's spelling, as in --config files
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


#: dedicated option (parameter name) -> SoCConfig field it sets
CONFIG_OPTIONS = {"sizes": "sizes", "hidden": "sizes", "lanes": "lanes",
                  "n_records": "n_records", "bits": "bits", "gamma": "gamma",
                  "lr_step": "lr_step", "clk_freq": "clk_freq", "baud": "baud"}


def config_options(f):
    """The design configuration options (one definition, used by ``train`` and ``build``).

    Every one defaults to None: the field then comes from the base configuration (a
    board's default, or the simulation twin's)."""
    opts = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False),
                     default=None, metavar="FILE",
                     help="TOML file of configuration fields (SoCConfig names, e.g. "
                          "lanes = 4, sizes = [64, 32, 10]); the command line overrides it."),
        click.option("--sizes", default=None, metavar="N0,N1,...",
                     help="Layer widths, input first, e.g. 64,32,10 (each 1..1024 on a "
                          "device; default 64,16,10)."),
        click.option("--hidden", type=int, default=None,
                     help="Hidden width of a 3-layer MLP: --sizes 64,H,10 (default 16)."),
        click.option("--lanes", type=int, default=None,
                     help="Weights per cycle in each datapath: 1, 2, 4, ..., 64 on a device "
                          "(default 1, or the board's)."),
        click.option("--records", "n_records", type=int, default=None,
                     help="Samples the device's data memory holds, 1..65535 (default: "
                          "1797, or the board's)."),
        click.option("--bits", type=int, default=None,
                     help="Width of every forward/backward LNS tensor (3..8 on a device, "
                          "3..16 in golden; default 8)."),
        click.option("--gamma", type=int, default=None,
                     help="Their base factor: a power of two, 1..2**(bits-2) (default 8)."),
        click.option("--lr-step", type=int, default=None,
                     help="LNS-Madam step in update-format LSBs, 1..64 (1 = 2^-7 octave; "
                          "default 1)."),
        click.option("--clk-freq", type=float, default=None,
                     help="Design clock in MHz, 0.001..1000 (default: the board's, "
                          "`lnsmadam boards`; the twin's 8 MHz)."),
        click.option("--baud", type=int, default=None,
                     help="UART rate, 300..50000000 (default 1000000); clk/baud must be "
                          "4..65535 clocks per bit."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Any SoCConfig field, e.g. --set mac_pipeline=1, --set "
                          "pipelined=true, --set softmax=parallel (repeatable)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


class ConfigValues:
    """SoCConfig field overrides and, per field, the option (or file) that set it."""

    def __init__(self):
        self.values: dict = {}
        self.source: dict = {}     # field -> "--lanes", "--set lanes", "FILE: lanes"
        self.from_file: set = set()

    def names(self) -> dict:
        """Field -> option, for :func:`checked`."""
        return dict(self.source)


def _load_toml(path: str) -> dict:
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise OptionError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"--config: {path} is not valid TOML: {exc}") from None
    return data


def config_values(ctx: click.Context, params: dict) -> ConfigValues:
    """The configuration overrides from ``params`` (the command's keyword arguments, from
    :func:`config_options`): the ``--config`` file, then ``--set``, then the dedicated
    options. Raises :class:`OptionError` for a malformed or conflicting one."""
    cv = ConfigValues()
    path = params.get("config_file")
    if path is not None:
        for key, value in _load_toml(path).items():
            if isinstance(value, dict):
                raise OptionError(f"--config: {path}: [{key}] tables are not supported; "
                                  "give the fields at the top level")
            cv.values[key] = tuple(value) if isinstance(value, list) else value
            cv.source[key] = f"{key} in {path}"
            cv.from_file.add(key)
    set_here: dict = {}
    for item in params.get("sets") or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key):
            raise OptionError(f"--set must be KEY=VALUE with KEY a config field name, "
                              f"got {item!r}")
        if key in set_here:
            raise OptionError(f"--set {key} is given twice ({set_here[key]!r} and {item!r})")
        set_here[key] = item
        cv.values[key] = _parse_value(key, value, f"--set {key}")
        cv.source[key] = f"--set {key}"
        cv.from_file.discard(key)
    for opt in ("sizes", "hidden"):
        if params.get(opt) is not None and "sizes" in set_here:
            raise OptionError(f"--{opt} conflicts with --set sizes: give one")
    if params.get("sizes") is not None and params.get("hidden") is not None:
        raise OptionError("--hidden conflicts with --sizes: give the hidden width in --sizes")
    if params.get("sizes") is not None:
        cv.values["sizes"] = parse_sizes(params["sizes"])
        cv.source["sizes"] = "--sizes"
        cv.from_file.discard("sizes")
    for param, key in CONFIG_OPTIONS.items():
        if param in ("sizes", "hidden") or params.get(param) is None:
            continue
        opt = (given(ctx, param) or [f"--{param.replace('_', '-')}"])[0]
        if key in set_here:
            raise OptionError(f"{opt} conflicts with --set {key}: give one")
        value = params[param]
        if key == "clk_freq":        # in MHz on the command line, Hz in SoCConfig
            from ..golden.format import check_float

            value = checked(lambda: check_float(opt, value, 1e-3, 1e3, unit=" MHz"), {}) * 1e6
        cv.values[key] = value
        cv.source[key] = opt
        cv.from_file.discard(key)
    return cv


def apply_hidden(cv: ConfigValues, hidden: int | None, base_sizes) -> None:
    """``--hidden H``: the middle of a 3-layer ``sizes`` (the file's, else ``base_sizes``)."""
    if hidden is None:
        return
    sizes = tuple(cv.values.get("sizes", base_sizes))
    if len(sizes) != 3:
        raise OptionError(f"--hidden sets the one hidden layer of a 3-layer MLP, but sizes is "
                          f"{'-'.join(map(str, sizes))}: use --sizes")
    cv.values["sizes"] = (sizes[0], hidden, sizes[2])
    cv.source["sizes"] = "--hidden"
    cv.from_file.discard("sizes")
