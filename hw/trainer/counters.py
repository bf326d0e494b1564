"""The trainer's streaming address counters.

Each phase streams over a vector or a matrix: FWD and UPD over rows x words-per-row, BWD
over columns x rows, the others over one dimension (LOAD ``n_in + 1`` items: features and
label; HREQ ``rows + 1``: outputs and the constant 1; EREQ the previous layer's rows; SMX
the output layer's rows). The issue side counts an outer (``oc``) and an inner (``ic``)
index with a linear address ``lin`` and a column address ``cadr``; one cycle later the
memory data is valid together with the ``d1_*`` copies. ``co`` counts the results the phase
has handled.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed

from .geometry import BIAS_BITS, Geometry
from .layers import Layers

__all__ = ["Counters"]


class Counters:
    """The counters (signals on construction, logic from :meth:`build`).

    Issue side: ``oc``, ``ic``, ``lin``, ``cadr``, ``issuing``; one cycle later
    ``d1_valid``, ``d1_first``, ``d1_last`` (the MAC's vector framing), ``d1_idx`` (``oc``),
    ``d1_bank`` and ``d1_const`` (HREQ's constant 1).
    Results: ``co``. The running maximum of the live exponents of a phase: ``mx``,
    ``any_live`` (:meth:`track_max`). ``smx_adv``: SMX advances only when the softmax unit
    takes the next logit.
    """

    def __init__(self, m: Module, geo: Geometry):
        self.m, self.geo = m, geo
        cnt = range(geo.n_max + 1)
        self.count_range = cnt
        self.oc = Signal(cnt)
        self.ic = Signal(cnt)
        self.lin = Signal(cnt)
        self.cadr = Signal(cnt)
        self.issuing = Signal()
        self.d1_valid = Signal()
        self.d1_first = Signal()
        self.d1_last = Signal()
        self.d1_idx = Signal(cnt)
        self.d1_bank = Signal(range(max(geo.lanes, 2)))
        self.d1_const = Signal()
        self.co = Signal(cnt)               # results handled in this phase
        self.mx = Signal(signed(BIAS_BITS + 2))   # running max of the live exponents
        self.any_live = Signal()
        self.smx_adv = Signal()             # SMX: the softmax unit takes the next logit

    def build(self, ph, layers: Layers, restart, co_inc) -> None:
        m, geo = self.m, self.geo
        oc, ic, lin, cadr, issuing = self.oc, self.ic, self.lin, self.cadr, self.issuing
        two_d = ph.fwd | ph.bwd | ph.upd
        outer_m1 = Mux(ph.bwd, layers.prev_m1, layers.rows_m1)
        inner_m1 = Mux(ph.bwd, layers.rows_m1, layers.wpr_m1)
        end_1d = Signal(self.count_range)
        with m.If(ph.load):
            m.d.comb += end_1d.eq(geo.n_in)
        with m.Elif(ph.hreq):
            m.d.comb += end_1d.eq(layers.rows_t)
        with m.Elif(ph.ereq):
            m.d.comb += end_1d.eq(layers.prev_m1)
        with m.Else():
            m.d.comb += end_1d.eq(geo.rows[-1] - 1)
        step = issuing & (~ph.smx | self.smx_adv)
        last_in = ic == inner_m1
        m.d.sync += [self.d1_valid.eq(step & ~ph.smx), self.d1_first.eq(ic == 0),
                     self.d1_last.eq(last_in), self.d1_idx.eq(oc),
                     self.d1_bank.eq(geo.bank(oc)),
                     self.d1_const.eq(ph.hreq & (oc == layers.rows_t))]
        with m.If(restart):
            m.d.sync += [oc.eq(0), ic.eq(0), lin.eq(0), cadr.eq(0), issuing.eq(1)]
        with m.Elif(step):
            with m.If(two_d):
                m.d.sync += lin.eq(lin + 1)
                with m.If(last_in):
                    m.d.sync += [ic.eq(0), oc.eq(oc + 1)]
                    with m.If(oc == outer_m1):
                        m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += ic.eq(ic + 1)
                # BWD: cadr = i * wpr + j // lanes, advanced by wpr per inner step
                with m.If(last_in):
                    m.d.sync += cadr.eq(geo.word(oc + 1))
                with m.Else():
                    m.d.sync += cadr.eq(cadr + layers.wpr_t)
            with m.Else():
                m.d.sync += oc.eq(oc + 1)
                with m.If(oc == end_1d):
                    m.d.sync += issuing.eq(0)
        with m.If(restart):
            m.d.sync += self.co.eq(0)
        with m.Elif(co_inc):
            m.d.sync += self.co.eq(self.co + 1)

    def track_max(self, x, live) -> None:
        """Fold the exponent ``x`` of a result into the running maximum if it is live."""
        m = self.m
        with m.If(live & (~self.any_live | (x > self.mx))):
            m.d.sync += [self.mx.eq(x), self.any_live.eq(1)]
