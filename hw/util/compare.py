"""Comparisons of a value with an integer constant, as AND/OR chains.

From the LSB up, ``x[:i+1] >= c[:i+1]`` is ``x[i] & r`` where ``c`` has a one and
``x[i] | r`` where it has a zero, starting from ``r = 1`` (``>=``) or ``r = 0`` (``>``);
signed values are compared with their sign bit flipped and ``c`` offset by
``2**(n-1)``. Synthesis maps the chain to a shallow LUT tree, where a ``>=`` operator would
cost a carry chain of one iCE40 logic cell per bit.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value

__all__ = ["ge_const", "gt_const"]


def ge_const(x, c: int, m: Module | None = None) -> Value:
    """``x >= c`` for an integer constant ``c`` (``x`` signed or unsigned), one bit.

    With ``m``, ``x`` is first bound to a net of ``m`` (one net to slice, and one value in
    simulation) and the result is a net of ``m`` too; without, it is an expression.
    """
    return _compare(x, c, False, m)


def gt_const(x, c: int, m: Module | None = None) -> Value:
    """``x > c`` for an integer constant ``c``; otherwise as :func:`ge_const`."""
    return _compare(x, c, True, m)


def _compare(x, c, strict, m):
    x = Value.cast(x)
    shape = x.shape()
    n = shape.width
    lo, hi = (-(1 << (n - 1)), (1 << (n - 1)) - 1) if shape.signed else (0, (1 << n) - 1)
    if c < lo or (c == lo and not strict):
        return Const(1, 1)
    if c > hi or (c == hi and strict):
        return Const(0, 1)
    if m is not None and not isinstance(x, Signal):
        xs = Signal(shape)
        m.d.comb += xs.eq(x)
        x = xs
    if shape.signed:
        x, c = Cat(x[:n - 1], ~x[n - 1]), c + (1 << (n - 1))
    r = Const(0 if strict else 1, 1)
    for i in range(n):
        r = (x[i] & r) if (c >> i) & 1 else (x[i] | r)
    if m is None:
        return r
    out = Signal()
    m.d.comb += out.eq(r)
    return out
