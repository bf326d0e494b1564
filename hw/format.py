"""The LNS word in hardware: its layout, the ZERO test and requantisation.

Twin of :mod:`lnsmadam.golden.format`. A code of an :class:`~lnsmadam.golden.format.LNSFormat`
is viewed through :func:`lns_layout`, whose packed value *is* the golden code
(``sign << (bits - 1) | E``), so codes cross module and file boundaries unchanged.

* :func:`lns_layout`, :func:`is_zero`: the word and its one-field ZERO test (``E == 0``).
* :func:`requantize` (expression) and :class:`Requantize` (component): an absolute integer
  exponent, a sign and a zero flag to a code with a runtime bias, exactly
  :meth:`LNSFormat.from_exponent <lnsmadam.golden.format.LNSFormat.from_exponent>`.

Constant tables and memory ports live in :mod:`lnsmadam.hw.util`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden.format import LNSFormat, check_int

__all__ = ["lns_layout", "is_zero", "signed_bits", "check_format", "check_bool",
           "requantize", "Requantize"]


def check_format(name: str, fmt) -> LNSFormat:
    """Raise ``ValueError`` unless ``fmt`` is an :class:`LNSFormat` (which validated itself)."""
    if not isinstance(fmt, LNSFormat):
        raise ValueError(f"{name} must be an LNSFormat, got {fmt!r}")
    return fmt


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def signed_bits(*values: int) -> int:
    """Smallest two's-complement width that holds every integer in ``values``."""
    return max(max(v.bit_length() if v >= 0 else (~v).bit_length() for v in values) + 1, 1)


def lns_layout(fmt: LNSFormat) -> data.StructLayout:
    """Layout of one code: ``exp`` (``bits - 1``, LSBs) then ``sign`` (the MSB).

    The packed word equals the golden code, so ``view.as_value()`` can be compared with
    (or driven from) :mod:`lnsmadam.golden` codes directly.
    """
    check_format("fmt", fmt)
    return data.StructLayout({"exp": unsigned(fmt.exp_bits), "sign": unsigned(1)})


def is_zero(view) -> Value:
    """1 when the code is ZERO (``E == 0``, either sign bit)."""
    return view.exp == 0


def requantize(fmt: LNSFormat, sign, e, zero) -> Value:
    """Packed code for the biased exponent ``e = x - bias`` (signed), ``sign`` and ``zero``.

    ``e > emax`` saturates (sign kept); ``e < 1`` flushes to ZERO or becomes ``E = 1``
    (``fmt.underflow``); ``zero`` gives the canonical ZERO (code 0, sign bit clear too).
    """
    e = Value.cast(e)
    low = e < 1
    field = Mux(e > fmt.emax, fmt.emax, e)[:fmt.exp_bits]
    if fmt.underflow == "flush":
        field = Mux(low, 0, field)
    else:
        field = Mux(low, 1, field)
    field = Mux(zero, 0, field)
    # the golden join() clears the sign of every ZERO result (canonical code 0)
    return Mux(field == 0, 0, Cat(field, Value.cast(sign)[0]))


class Requantize(wiring.Component):
    """Integer exponent to an LNS code with a runtime bias (``LNSFormat.from_exponent``).

    Computes ``code = from_exponent(sign, x, zero, bias)`` of ``fmt``: ``E = x - bias``,
    saturation at ``emax``, flush to ZERO or clamp to ``E = 1`` per ``fmt.underflow``.

    Parameters
    ----------
    fmt : LNSFormat
        Output format (its ``underflow`` rule is used; its default bias is not: the bias
        is the ``bias`` input, e.g. a per-tensor dynamic bias).
    x_bits : int, 2..64
        Width of the signed exponent input ``x``.
    bias_bits : int, 2..64
        Width of the signed ``bias`` input (32 holds every legal bias, ±2**30).

    Members
    -------
    sign, zero : In(1)
        The value's sign and its ZERO flag.
    x : In(signed(x_bits))
        The absolute integer exponent.
    bias : In(signed(bias_bits))
        The tensor bias.
    code : Out(:func:`lns_layout` ``(fmt)``)
        The code.

    Latency
    -------
    0 (combinational).

    Throughput
    ----------
    One conversion per cycle.

    Notes
    -----
    :func:`requantize` is the same logic as an expression, for use inside other blocks.
    """

    def __init__(self, fmt: LNSFormat, x_bits: int = 16, bias_bits: int = 32):
        self.fmt = check_format("fmt", fmt)
        self.x_bits = check_int("x_bits", x_bits, 2, 64)
        self.bias_bits = check_int("bias_bits", bias_bits, 2, 64)
        super().__init__({
            "sign": In(1),
            "x": In(signed(self.x_bits)),
            "zero": In(1),
            "bias": In(signed(self.bias_bits)),
            "code": Out(lns_layout(fmt)),
        })

    def elaborate(self, platform):
        m = Module()
        code = requantize(self.fmt, self.sign, self.x - self.bias, self.zero)
        m.d.comb += self.code.as_value().eq(code)
        return m
