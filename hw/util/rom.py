"""Combinational constant tables (ROMs in LUTs, no memory primitive, no latency)."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Value, signed

from ..format import signed_bits

__all__ = ["rom", "signed_rom"]


def rom(table, index) -> Value:
    """Combinational lookup ``table[index]`` of non-negative integer constants.

    A small constant table synthesises into LUTs (γ = 8 entries for the
    ``2**(r/gamma)`` table), so no memory primitive and no latency is involved.
    """
    table = [int(t) for t in table]
    if not table or min(table) < 0:
        raise ValueError("rom table must be a non-empty list of non-negative integers")
    width = max(max(table).bit_length(), 1)
    if len(table) == 1:
        # a one-entry table has a zero-width index (gamma = 1)
        return Const(table[0], width)
    return Array(Const(t, width) for t in table)[index]


def signed_rom(table, index) -> Value:
    """Combinational lookup ``table[index]`` of signed integer constants (a signed value
    just wide enough for every entry)."""
    table = [int(t) for t in table]
    width = signed_bits(*table)
    if len(table) == 1:
        return Const(table[0], signed(width))
    return Array(Const(t, signed(width)) for t in table)[index]
