"""The blocks of :mod:`.blocks` from flat parameters: what a command line or a sweep grid
gives.

A golden configuration nests formats (``MACConfig(LNSFormat.from_gamma(6, 4), lanes=4)``);
``lnsmadam generate mac --bits 6 --gamma 4 --lanes 4`` and the sweep point
``{block = "mac", bits = 6, gamma = 4, lanes = 4}`` give the same parameters flat. One
builder per block kind takes them as keywords (the ``generate`` options by their Python
names: ``--acc-bits`` is ``acc_bits``, the ``--saturate/--wrap`` switch is ``saturate``),
builds the configuration and the :class:`~.blocks.Block`, and raises ``ValueError`` naming
the flat parameter. The builders' signatures are the parameter table: :func:`parameters`
reads each name, type, default and choices (``Literal``) from them, so the command line
(whose options must match, ``tests/test_cli_generate.py``) and the sweep grids
(``lnsmadam.sweep.jobs``) cannot drift apart.

:func:`build` is the entry point: ``build("mac", {"lanes": 4})``. A parameter left out takes
its default; an unknown one, a value of the wrong type or outside its choices, and one that
the others make moot (:func:`unused`) are refused.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Literal

from ..golden.format import LNSFormat, check_int
from . import blocks
from .blocks import Block

__all__ = ["KINDS", "Parameter", "parameters", "build", "unused"]


def _fmt(bits: int, gamma: int, underflow: str = "flush") -> LNSFormat:
    return LNSFormat.from_gamma(bits, gamma, underflow=underflow)


#: the widest accumulator (and, plus its sign, the widest linear word) of the datapaths
MAX_ACC_BITS = 62


def _check_window(window: int, hi_format: int, hi_joint: int, why: str) -> None:
    """``window`` in ``[1, min(hi_format, hi_joint)]``: ``hi_format`` is the format's own
    product range, ``hi_joint`` the limit that the other parameters set (``why`` says
    which, with ``name=value`` for each: the command line shows them as options)."""
    check_int("window", window)
    if hi_joint < hi_format and not 1 <= window <= hi_joint:
        raise ValueError(f"window must be in [1, {hi_joint}] {why}, got {window}")
    check_int("window", window, 1, hi_format)


def _octaves(fmt: LNSFormat) -> tuple[int, int]:
    """The octaves ``q = p >> frac_bits`` that the format's exponents and their sums
    (``p = E1 + E2``, a product) reach: ``0 .. (2*emax) >> frac_bits``."""
    return 0, (2 * fmt.emax) >> fmt.frac_bits


def _renamed(exc: ValueError, names: dict) -> ValueError:
    """``exc`` with its leading parameter name (a key of ``names``) renamed, one line."""
    msg = " ".join(str(exc).split())
    for old, new in sorted(names.items(), key=lambda kv: -len(kv[0])):
        if msg.startswith(old + " "):
            return ValueError(new + msg[len(old):])
    return ValueError(msg)


# -- one builder per kind (keyword-only: the signature is the parameter table) --------------
def _mac(*, bits: int = 8, gamma: int = 8, lanes: int = 1, acc_bits: int = 32,
         window: int = 16, lut_frac: int = 8, mid_bits: int | None = None,
         saturate: bool = True, pipeline: int = 2, out_pipeline: int = 3,
         first_cut: Literal["linear", "log"] = "linear", name: str | None = None) -> Block:
    from ..golden.mac import MACConfig

    fmt = _fmt(bits, gamma)
    f = fmt.frac_bits
    check_int("lut_frac", lut_frac, f + 1, 24)
    _check_window(window, ((2 * fmt.emax) >> f) - (2 >> f) + 1, MAX_ACC_BITS - 1 - lut_frac,
                  f"with lut_frac={lut_frac} (a product, lut_frac + window + 1 bits, must fit "
                  f"the accumulator of at most {MAX_ACC_BITS} bits)")
    cfg = MACConfig(fmt, lut_frac=lut_frac, window=window, acc_bits=acc_bits,
                    saturate=saturate, lanes=lanes, mid_bits=mid_bits)
    return blocks.mac(cfg, pipeline, out_pipeline, name, first_cut)


def _int8_mac(*, lanes: int = 1, acc_bits: int = 32, saturate: bool = True,
              pipeline: int = 2, name: str | None = None) -> Block:
    return blocks.int8_mac(lanes, acc_bits, saturate, pipeline, name)


def _fp8_mac(*, a_format: Literal["e4m3", "e5m2"] = "e4m3",
             b_format: Literal["e4m3", "e5m2"] = "e4m3", lanes: int = 1, window: int = 16,
             acc_bits: int = 32, saturate: bool = True, pipeline: int = 2,
             name: str | None = None) -> Block:
    from ..golden.fpmac import FP8MACConfig

    ref = FP8MACConfig(a_format, b_format, window=1, acc_bits=MAX_ACC_BITS)
    _check_window(window, ref.q_top - ref.q_min + 1, MAX_ACC_BITS - 1 - ref.frac_bits,
                  f"for {a_format} x {b_format} (a product, window + {ref.frac_bits} + 1 bits, "
                  f"must fit the accumulator of at most {MAX_ACC_BITS} bits)")
    cfg = FP8MACConfig(a_format, b_format, window=window, acc_bits=acc_bits,
                       saturate=saturate, lanes=lanes)
    return blocks.fp8_mac(cfg, pipeline, name)


def _fp32_mac(*, pipeline: int = 2, name: str | None = None) -> Block:
    return blocks.fp32_mac(None, pipeline, name)


def _mul(*, bits: int = 8, gamma: int = 8, underflow: Literal["flush", "min"] = "flush",
         shift: int | None = None, registered: bool = True, name: str | None = None) -> Block:
    from ..golden.mul import shift_range

    fmt = _fmt(bits, gamma, underflow)
    if shift is not None:
        check_int("shift", shift, *shift_range(fmt))
    return blocks.mul(fmt, shift, registered, name)


def _convert(*, direction: Literal["to-linear", "from-linear"], bits: int = 8, gamma: int = 8,
             lut_frac: int = 8, window: int = 16, acc_bits: int = 32,
             mid_bits: int | None = None, q_lo: int | None = None, lsb_q: int | None = None,
             registered: bool = False, name: str | None = None) -> Block:
    from ..golden.mac import MACConfig

    fmt = _fmt(bits, gamma)
    f = fmt.frac_bits
    q_min, q_top = _octaves(fmt)
    mb = lut_frac if mid_bits is None else mid_bits
    if direction == "to-linear":
        if q_lo is None:      # the dot-product unit's window decides the default placement
            check_int("lut_frac", lut_frac, f + 1, 24)
            _check_window(window, q_top - (2 >> f) + 1, MAX_ACC_BITS - lut_frac,
                          f"with lut_frac={lut_frac} (the output, lut_frac + window + 1 bits, "
                          f"is at most {MAX_ACC_BITS + 1} bits)")
            q_lo = q_top - window + 1
        else:
            check_int("lut_frac", lut_frac, 0, 40)
            _check_window(window, MAX_ACC_BITS, MAX_ACC_BITS - lut_frac,
                          f"with lut_frac={lut_frac} (the output, lut_frac + window + 1 bits, "
                          f"is at most {MAX_ACC_BITS + 1} bits)")
            # some octave of the window must be one that the exponents reach
            if isinstance(q_lo, int) and not isinstance(q_lo, bool):
                if not q_min - window + 1 <= q_lo <= q_top:
                    raise ValueError(
                        f"q_lo must be in [{q_min - window + 1}, {q_top}] with window={window} "
                        f"(the window, octaves q_lo .. q_lo + window - 1, must overlap the "
                        f"octaves {q_min} .. {q_top} that the format's exponents and their "
                        f"sums reach), got {q_lo}")
        return blocks.to_linear(fmt, lut_frac, q_lo, window, registered, name)
    if lsb_q is None:     # placed like the dot-product unit's accumulator
        check_int("lut_frac", lut_frac, f + 1, 24)
        _check_window(window, q_top - (2 >> f) + 1, MAX_ACC_BITS - 1 - lut_frac,
                      f"with lut_frac={lut_frac} (the default input LSB is the MAC's, whose "
                      f"accumulator holds lut_frac + window + 1 <= {MAX_ACC_BITS} bits)")
        lsb_q = MACConfig(fmt, lut_frac=lut_frac, window=window, acc_bits=acc_bits,
                          mid_bits=mb).lsb_q
    elif (isinstance(lsb_q, int) and not isinstance(lsb_q, bool)
          and isinstance(acc_bits, int) and 2 <= acc_bits <= 63):
        if not q_min - acc_bits + 1 <= lsb_q <= q_top:
            raise ValueError(
                f"lsb_q must be in [{q_min - acc_bits + 1}, {q_top}] with acc_bits={acc_bits} "
                f"(the input's octaves, lsb_q .. lsb_q + acc_bits - 1, must overlap the "
                f"octaves {q_min} .. {q_top} that the format's exponents and their sums "
                f"reach), got {lsb_q}")
    return blocks.from_linear(fmt, acc_bits, mb, lsb_q, registered, name)


def _update(*, bits: int = 8, gamma: int = 8, weight_bits: int = 12, weight_gamma: int = 128,
            state_exp_bits: int = 6, state_man_bits: int = 12, state_offset: int = -52,
            lr_step: int = 1, g_bound: int = 10, beta_k: int = 10, guard_bits: int = 2,
            bias_correction: bool = False, bc_bits: int = 24, bias_bits: int = 32,
            pipeline: int = 5, name: str | None = None) -> Block:
    from ..golden.update import MadamConfig, StateFormat

    try:
        # the engine clips E' at 1 (a weight never becomes ZERO): the stored format's
        # underflow rule is "min" by construction
        weight = LNSFormat.from_gamma(weight_bits, weight_gamma, underflow="min")
    except ValueError as exc:
        raise _renamed(exc, {"bits": "weight_bits", "gamma": "weight_gamma"}) from None
    try:
        state = StateFormat(state_exp_bits, state_man_bits, state_offset)
    except ValueError as exc:
        raise _renamed(exc, {"state exp_bits": "state_exp_bits",
                             "state man_bits": "state_man_bits",
                             "state offset": "state_offset"}) from None
    try:
        cfg = MadamConfig(weight=weight, grad=_fmt(bits, gamma), state=state,
                          lr_step=lr_step, g_bound=g_bound, beta_k=beta_k,
                          guard_bits=guard_bits, bias_correction=bias_correction,
                          bc_bits=bc_bits)
    except ValueError as exc:
        raise _renamed(exc, {"state man_bits": "state_man_bits"}) from None
    return blocks.update(cfg, pipeline, bias_bits, name)


#: block kind -> its builder
KINDS = {"mac": _mac, "int8-mac": _int8_mac, "fp8-mac": _fp8_mac, "fp32-mac": _fp32_mac,
         "mul": _mul, "convert": _convert, "update": _update}


# -- the parameter table ----------------------------------------------------------------------
@dataclass(frozen=True)
class Parameter:
    """One flat parameter of a block kind, from its builder's signature.

    ``type`` is ``int``, ``bool`` or ``str``; ``optional``: None is allowed (the default
    then follows from the other parameters); ``required``: there is no default."""

    name: str
    type: type
    default: object
    choices: tuple | None = None
    optional: bool = False
    required: bool = False

    def check(self, value) -> None:
        """Raise ``ValueError`` naming the parameter if ``value`` has the wrong type or is
        not one of the choices."""
        if value is None and self.optional:
            return
        what = {int: "an integer", bool: "true or false", str: "a string"}[self.type]
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ValueError(f"{self.name} must be {what}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, "
                             f"got {value!r}")


def _kind(kind) -> typing.Callable[..., Block]:
    if kind not in KINDS:
        raise ValueError(f"block must be one of {', '.join(KINDS)}, got {kind!r}")
    return KINDS[kind]


def parameters(kind: str) -> dict[str, Parameter]:
    """The flat parameters of block ``kind``, in the builder's order."""
    fn = _kind(kind)
    hints = typing.get_type_hints(fn)
    out = {}
    for p in inspect.signature(fn).parameters.values():
        t, choices = hints[p.name], None
        args = typing.get_args(t)
        optional = type(None) in args
        if optional:
            (t,) = [a for a in args if a is not type(None)]
        if typing.get_origin(t) is Literal:
            choices = typing.get_args(t)
            t = type(choices[0])
        required = p.default is inspect.Parameter.empty
        out[p.name] = Parameter(p.name, t, None if required else p.default, choices,
                                optional, required)
    return out


def unused(kind: str, values: dict, given, spell=str) -> str | None:
    """The refusal, on one line, of the parameters in ``given`` (names the user set) that
    ``values`` (every parameter, defaults included) make moot; None when there are none.
    ``spell`` turns a parameter name into the user's spelling (``--acc-bits``).

    ``convert`` with ``direction = "to-linear"``: ``acc_bits``, ``mid_bits`` and ``lsb_q``;
    with ``"from-linear"``, ``q_lo``, and with an explicit ``lsb_q`` also ``window`` (it only
    places the default ``lsb_q``), and with explicit ``lsb_q`` and ``mid_bits`` also
    ``lut_frac`` (it only sets the default ``mid_bits``). ``update`` without
    ``bias_correction``: ``bc_bits`` (the width of the bias-correction input)."""
    if kind == "update":
        if values.get("bias_correction") or "bc_bits" not in given:
            return None
        return (f"{spell('bc_bits')} has no effect without "
                f"{spell('bias_correction').split('/')[0]}: leave it out")
    if kind != "convert":
        return None
    direction = values["direction"]
    why = f"with {spell('direction')} {direction}"
    if direction == "to-linear":
        moot = ["acc_bits", "mid_bits", "lsb_q"]
    else:
        moot = ["q_lo"]
        if values["lsb_q"] is not None:
            moot.append("window")
            if values["mid_bits"] is not None:
                moot.append("lut_frac")
            why += f" and {spell('lsb_q')}"
    bad = [spell(n) for n in moot if n in given]
    if not bad:
        return None
    return (f"{', '.join(bad)} has no effect {why}: leave {'it' if len(bad) == 1 else 'them'} "
            "out")


def build(kind: str, params: dict | None = None, given=None) -> Block:
    """The block ``kind`` from the flat ``params`` (missing ones take their defaults).
    ``given``: the names the user set, which alone are refused when moot (default: the keys
    of ``params``). Raises ``ValueError`` naming the parameter for any bad one."""
    spec = parameters(kind)
    params = dict(params or {})
    unknown = [n for n in params if n not in spec]
    if unknown:
        raise ValueError(f"{unknown[0]} is not a parameter of block {kind} (it has: "
                         f"{', '.join(spec)})")
    for p in spec.values():
        if p.required and p.name not in params:
            choices = f" (one of {', '.join(p.choices)})" if p.choices else ""
            raise ValueError(f"{p.name} is required for block {kind}{choices}")
        if p.name in params:
            p.check(params[p.name])
    values = {n: params.get(n, p.default) for n, p in spec.items()}
    msg = unused(kind, values, params.keys() if given is None else given)
    if msg:
        raise ValueError(msg)
    if values.get("name") is not None:     # "" would silently become the default name
        blocks.check_module_name(values["name"])
    return KINDS[kind](**values)

