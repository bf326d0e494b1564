"""LNS multiply: exponent add, sign xor, ZERO absorbs, saturate/flush (twin of golden.mul)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.format import LNSFormat, check_int
from .format import check_bool, check_format, is_zero, lns_layout, requantize

__all__ = ["LNSMul"]


class LNSMul(wiring.Component):
    """Product of two codes of one format, bit-exact with :func:`lnsmadam.golden.mul.mul`.

    ``E = Ea + Eb - shift``, ``sign = sa ^ sb``; a ZERO operand gives ZERO; ``E > emax``
    saturates, ``E < 1`` flushes to ZERO (or becomes ``E = 1`` with
    ``fmt.underflow == "min"``).

    Parameters
    ----------
    fmt : LNSFormat
        Operand and result format.
    shift : int in [-2**30, 2**30], default ``fmt.emax``
        Constant re-bias subtracted from the field sum (the default keeps a product of two
        max-scaled tensors max-scaled).
    registered : bool
        Register the output.

    Members
    -------
    a, b : In(:func:`~lnsmadam.hw.format.lns_layout` ``(fmt)``)
        The operands.
    p : Out(:func:`~lnsmadam.hw.format.lns_layout` ``(fmt)``)
        The product.

    Latency
    -------
    1 cycle (output register) if ``registered``, else 0 (combinational).

    Throughput
    ----------
    One product per cycle.

    Notes
    -----
    The result bias is ``ba + bb + shift``.
    """

    def __init__(self, fmt: LNSFormat, shift: int | None = None, registered: bool = True):
        self.fmt = check_format("fmt", fmt)
        self.shift = fmt.emax if shift is None else check_int("shift", shift, -(1 << 30), 1 << 30)
        self.registered = check_bool("registered", registered)
        layout = lns_layout(fmt)
        super().__init__({"a": In(layout), "b": In(layout), "p": Out(layout)})

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        code = requantize(self.fmt, a.sign ^ b.sign, a.exp + b.exp - self.shift,
                          is_zero(a) | is_zero(b))
        domain = m.d.sync if self.registered else m.d.comb
        domain += self.p.as_value().eq(code)
        return m
