"""Combinational constant tables (ROMs in LUTs, no memory primitive, no latency)."""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value, signed, unsigned

from ..format import signed_bits

__all__ = ["rom", "signed_rom"]


def rom(table, index, signed_entries: bool = False) -> Value:
    """Combinational lookup ``table[index]`` of integer constants (non-negative unless
    ``signed_entries``; then a signed value just wide enough for every entry); an index
    past the table reads 0.

    A small constant table synthesises into LUTs (γ = 8 entries for the ``2**(r/gamma)``
    table), so no memory primitive and no latency is involved. It is built as a binary
    tree of multiplexers on the index bits, which Yosys writes as continuous assignments:
    a ``case`` table in an ``always @*`` block (what an ``Array`` lookup becomes) is not
    evaluated at time 0 under SystemVerilog semantics (Icarus ``-g2012``), so with an
    index register that keeps its reset value it stays X; its unused codes also make
    Verilator infer a latch.
    """
    table = [int(t) for t in table]
    if not table or (not signed_entries and min(table) < 0):
        raise ValueError("rom table must be a non-empty list of non-negative integers")
    shape = (signed(signed_bits(*table)) if signed_entries
             else unsigned(max(max(table).bit_length(), 1)))
    if len(table) == 1:
        # a one-entry table has a zero-width index (gamma = 1)
        return Const(table[0], shape)
    index = Value.cast(index)
    need = (len(table) - 1).bit_length()
    level = [Const(t, shape) for t in table] + [Const(0, shape)] * ((1 << need) - len(table))
    for k in range(min(need, index.shape().width)):
        level = [Mux(index[k], level[j + 1], level[j]) for j in range(0, len(level), 2)]
    out = level[0]
    if index.shape().width > need:
        out = Mux(index[need:].any(), Const(0, shape), out)
    return out


def signed_rom(table, index) -> Value:
    """Combinational lookup ``table[index]`` of signed integer constants (a signed value
    just wide enough for every entry): :func:`rom` with signed entries."""
    return rom(table, index, signed_entries=True)
