"""Formal harness of the on-device shuffler (:class:`~lnsmadam.hw.shuffle.Shuffler`).

Environment: ``start`` pulses at any time (also while busy), any ``n`` in ``0 .. n_max``,
any seed, epoch and read address. Asserted (k-induction), counting cycles from the last
``start`` in the harness:

* ``busy_cycles``: ``busy`` is high exactly in the ``cycles(n) = 67 + n * (bits(n_max) + 3)``
  cycles after a ``start`` (none for ``n = 0``), as the module docstring documents;
* ``done_once``: ``done`` is high in exactly one cycle per shuffle, the first with
  ``busy`` low after it;
* ``sched_*``: the documented schedule as invariants on the probed state (``state``,
  ``k``, ``rnd``, ``i``, ``i1``, ``n``; ``counters`` bounds the harness's own): two seeding rounds of one xorshift step and a
  32-cycle multiply, then per element a ``bits(n_max)``-cycle multiply, a read and two
  writes.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from ...hw.shuffle import _S

from .harness import Harness

__all__ = ["ShuffleHarness"]


class ShuffleHarness(Harness):
    block = "shuffle"

    def build(self, m: Module, platform):
        dut, el = self.instantiate(m, platform)
        nmax, W = dut.n_max, dut.mul_bits
        start = self.free(1, "start")
        n_in = self.free(dut.n.shape(), "n")
        self.assume(m, "n_range", n_in <= nmax)
        m.d.comb += [dut.start.eq(start), dut.n.eq(n_in),
                     dut.seed.eq(self.free(32, "seed")), dut.epoch.eq(self.free(16, "epoch")),
                     dut.rd_addr.eq(self.free(dut.rd_addr.shape(), "rd_addr"))]
        self.assume(m, "rd_addr_range", dut.rd_addr < nmax)

        per = W + 3
        top = 67 + nmax * per + 1
        elapsed = Signal(range(top + 1))       # cycles since the last start (saturating)
        seen = Signal()                        # a start has happened
        n = Signal(range(nmax + 1))
        done_seen = Signal()                   # this shuffle's done has been given
        with m.If(start):
            m.d.sync += [elapsed.eq(1), seen.eq(1), n.eq(n_in), done_seen.eq(0)]
        with m.Elif(elapsed != top):
            m.d.sync += elapsed.eq(elapsed + 1)
        with m.If(dut.done & ~start):
            m.d.sync += done_seen.eq(1)
        cycles = Mux(n == 0, 0, 67 + n * per)
        self.check(m, "busy_cycles", ~seen | (dut.busy == ((elapsed >= 1) & (elapsed <= cycles))))
        self.check(m, "busy_before_start", seen | ~dut.busy)
        self.check(m, "counters", ~seen | ((elapsed >= 1) & (elapsed <= top) & (n <= nmax)))
        after = Mux(n == 0, elapsed == 1, elapsed == cycles + 1)
        self.check(m, "done_once", dut.done == (seen & after & ~done_seen))
        self.check(m, "done_pending", ~seen | ~done_seen | (elapsed > cycles))

        st, k, rnd = el.probe("state"), el.probe("k"), el.probe("rnd")
        i, i1, dn = el.probe("i"), el.probe("i1"), el.probe("n")
        elem = 68 + i * per
        self.check(m, "sched_n", ~seen | (dn == n))
        self.check(m, "sched_state", st <= max(v.value for v in _S))
        self.check(m, "sched_idle", ~seen | (st != _S.IDLE) | (elapsed > cycles) | (n == 0))
        first = (i == 0) & (i1 == 1) & (n != 0)
        self.check(m, "sched_xs", (st != _S.XS) | (seen & (elapsed == 1 + 33 * rnd)
                                                   & (rnd <= 2) & first))
        self.check(m, "sched_mulc", (st != _S.MULC) | (seen & (rnd >= 1) & (rnd <= 2)
                                                       & (elapsed == 33 * rnd - 31 + k)
                                                       & (k <= 31) & first))
        for s, off in ((_S.MUL, k), (_S.RD, W), (_S.WR1, W + 1), (_S.WR2, W + 2)):
            self.check(m, f"sched_{s.name.lower()}",
                       (st != s) | (seen & (elapsed == elem + off) & (i < n) & (i1 == i + 1)
                                    & ((s != _S.MUL) | (k < W))))
