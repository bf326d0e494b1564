"""The layer register and what it selects.

One sequencer serves every layer: the phases FWD, HREQ, BWD, EREQ and UPD are single FSM
states, and the layer register ``lay`` selects the per-layer constants, registers and
memories through small muxes (a copy of the control per layer cost about 750 iCE40 logic
cells per layer).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal

from .geometry import Geometry

__all__ = ["Layers"]


class Layers:
    """``lay``, the current layer, and its selections, built into ``m``.

    :meth:`table` and :meth:`pick` select a per-layer constant or signal; :meth:`bounds`
    makes the current layer's loop bounds and vector bases (``rows_t``, ``rows_m1``,
    ``wpr_m1``, ``words_m1``, ``wpr_t``, ``prev_m1``, ``a_base_t``, ``a_next_t``,
    ``e_base_t``, ``e_prev_t``, ``k_base_t``, ``k_prev_t``; ``_m1``: minus one, for the end
    tests) and ``is_last``.
    """

    def __init__(self, m: Module, geo: Geometry):
        self.m, self.geo = m, geo
        self.lay = Signal(range(max(geo.n_layers, 2)))

    def table(self, values, name: str) -> Signal:
        """``values[lay]``: per-layer constants as a small mux."""
        values = [int(v) for v in values]
        width = max(max(values).bit_length(), 1)
        sig = Signal(width, name=name)
        self.m.d.comb += sig.eq(Array(Const(v, width) for v in values)[self.lay])
        return sig

    def pick(self, sigs, name: str, index=None) -> Signal:
        """``sigs[index]`` (default ``lay``) for a per-layer list of signals."""
        sig = Signal.like(sigs[0], name=name)
        self.m.d.comb += sig.eq(Array(sigs)[self.lay if index is None else index])
        return sig

    def bounds(self) -> None:
        geo, table = self.geo, self.table
        nl, rows, wpr = geo.n_layers, geo.rows, geo.wpr
        a_base, e_base, k_base = geo.a_base, geo.e_base, geo.k_base
        self.rows_t = table(rows, "rows_t")
        self.rows_m1 = table([r - 1 for r in rows], "rows_m1")
        self.wpr_m1 = table([w - 1 for w in wpr], "wpr_m1")
        self.words_m1 = table([r * w - 1 for r, w in zip(rows, wpr)], "words_m1")
        self.wpr_t = table(wpr, "wpr_t")
        self.prev_m1 = table([rows[l - 1] - 1 if l else 0 for l in range(nl)], "prev_m1")
        self.a_base_t = table(a_base, "a_base")
        self.a_next_t = table(a_base[1:] + [0], "a_next")
        self.e_base_t = table(e_base, "e_base")
        self.e_prev_t = table([e_base[l - 1] if l else 0 for l in range(nl)], "e_prev")
        self.k_base_t = table(k_base + [0], "k_base") if nl > 1 else None
        self.k_prev_t = (table([k_base[l - 1] if l else 0 for l in range(nl)], "k_prev")
                         if nl > 1 else None)
        self.is_last = Signal()
        self.m.d.comb += self.is_last.eq(self.lay == nl - 1)
