"""Formal harness of the trainer, written against its ports only.

The block under test is any component with ``bus: In(MemBus)``, ``ctl:
In(ControlSignature)`` (:mod:`lnsmadam.hw.bus`) and a ``(id, name, width, depth)`` region
table (by default ``dut.cfg.regions()``, a :class:`~lnsmadam.golden.soc.SoCConfig`'s), so
the harness carried over from the serial trainer to the fused
:class:`~lnsmadam.hw.engine.engine.Engine` unchanged; nothing inside it is probed.

Environment: the initiator keeps the :data:`~lnsmadam.hw.bus.MemBus` contract (one command
at a time, held until ``cmd_ready``, only region ids and addresses of the table, no bit
above a region's width, commands and ``start``/``evaluate`` only while ``busy`` is low, as
the link guarantees; a ``start``/``evaluate`` pulse alone, not beside a bus command or a
response still due, as the link issues them); everything else is free.

* ``no_access_while_busy`` (k-induction): no bus command is accepted while ``busy``: the
  trainer's side of the BUSY refusal;
* ``rsp_matches``: a response only for an accepted command, one per command;
  ``rsp_latency``: it comes exactly ``rsp_latency`` cycles after the command (one number,
  or one for writes and one for reads: ``1 + read_reg`` and ``1 + 2 * read_reg`` for the
  engine; the bus allows any latency, so each target passes its own);
* ``word_kept`` (bounded): a symbolic word ``(region, addr)`` of a memory region (data,
  weights, state) reads back the last value written to it through the bus: no access to
  another word, in range or not, and nothing the trainer does while idle changes it.
  Training may rewrite weights and state, so a run that starts forgets the weight/state
  word; the data region must survive runs too.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal

from .harness import Harness

__all__ = ["TrainerHarness"]


class TrainerHarness(Harness):
    """Parameters: ``make`` (zero-argument callable returning the trainer), ``memory``
    (add the bounded ``word_kept`` property), ``rsp_latency`` (the target's documented
    response latency in cycles, asserted exactly: an int, or ``(write, read)``; None: only
    ``rsp_matches``), ``regions``
    (the block's region table from the block; default ``dut.cfg.regions()``, the
    :class:`~lnsmadam.golden.soc.SoCConfig`'s)."""

    block = "trainer"

    def __init__(self, make, memory: bool = False, rsp_latency: int | tuple | None = 1,
                 mutate=None, regions=None):
        super().__init__(make, mutate)
        self.memory, self.rsp_latency = memory, rsp_latency
        self.regions = regions or (lambda dut: dut.cfg.regions())

    def build(self, m: Module, platform):
        dut, _ = self.instantiate(m, platform)
        bus, ctl = dut.bus, dut.ctl
        regions = list(self.regions(dut))

        # -- the initiator (link) ---------------------------------------------------------
        valid = self.free(1, "cmd_valid")
        write = self.free(1, "cmd_write")
        region = self.free(len(bus.cmd_region), "cmd_region")
        addr = self.free(len(bus.cmd_addr), "cmd_addr")
        wdata = self.free(len(bus.cmd_wdata), "cmd_wdata")
        m.d.comb += [bus.cmd_valid.eq(valid), bus.cmd_write.eq(write),
                     bus.cmd_region.eq(region), bus.cmd_addr.eq(addr),
                     bus.cmd_wdata.eq(wdata)]
        legal = Const(0)
        for rid, _, width, depth in regions:
            legal = legal | ((region == rid) & (addr < depth)
                             & (~write | ((wdata >> width) == 0)))
        self.assume(m, "cmd_legal", ~valid | legal)
        accept = valid & bus.cmd_ready
        pending = Signal()                    # accepted, response not yet seen
        # a response in the accepting cycle answers an older command if there is one
        m.d.sync += pending.eq(pending + accept - bus.rsp_valid)
        waiting = self.past(m, valid & ~bus.cmd_ready)
        same = Const(1)
        for c in (write, region, addr, wdata):
            same = same & (c == self.past(m, c))
        self.assume(m, "cmd_held", ~self.started | ~waiting | (valid & same))
        self.assume(m, "one_outstanding", ~valid | ~pending | bus.rsp_valid)
        start, evaluate, stop = (self.free(1, n) for n in ("start", "evaluate", "stop"))
        self.assume(m, "idle_commands", ~ctl.busy | ~(valid | start | evaluate))
        # as the link does: a run control pulse alone, never beside a bus access or a
        # response still due (a READ accepted in a START cycle is answered from the
        # sequencer's port, not the addressed word: the contract leaves that case open)
        self.assume(m, "control_alone", ~(start | evaluate) | ~(valid | pending)
                    & ~(start & evaluate))
        m.d.comb += [ctl.start.eq(start), ctl.evaluate.eq(evaluate), ctl.stop.eq(stop),
                     ctl.epochs.eq(self.free(16, "epochs")), ctl.lr_step.eq(self.free(8, "lr")),
                     ctl.seed.eq(self.free(32, "seed"))]

        # -- properties ----------------------------------------------------------------------
        self.check(m, "no_access_while_busy", ~ctl.busy | ~bus.cmd_ready)
        self.check(m, "rsp_matches", ~bus.rsp_valid | pending | accept)
        if self.rsp_latency is not None:
            lat = self.rsp_latency
            w_lat, r_lat = (lat, lat) if isinstance(lat, int) else lat
            late, due = Const(0), Const(0)
            for kind, n in ((write, w_lat), (~write, r_lat)):
                x = accept & kind
                for _ in range(n):
                    x = self.past(m, x)
                    due = due | x              # accepted, answered in this cycle or later
                late = late | x
            self.check(m, "rsp_latency", ~self.started | (bus.rsp_valid == late))
            # the harness's count of outstanding commands agrees with the latency (it
            # strengthens the induction)
            self.check(m, "rsp_pending", ~self.started | (pending == due))
        if self.memory:
            self._word_kept(m, dut, regions, bus, ctl, accept, pending)

    def _word_kept(self, m, dut, regions, bus, ctl, accept, pending):
        mems = [r for r in regions if r[1] != "regs"]
        r_s = self.anyconst(m, len(bus.cmd_region), "watch_region")
        a_s = self.anyconst(m, len(bus.cmd_addr), "watch_addr")
        self.assume(m, "watch_legal", _one_of(r_s, a_s, mems))
        is_data = Const(0)
        for rid, name, _, _ in mems:
            if name == "data":
                is_data = r_s == rid
        hit = (bus.cmd_region == r_s) & (bus.cmd_addr == a_s)
        known = Signal()                     # the word holds ``value``
        value = Signal(len(bus.cmd_wdata))
        read_hit = Signal()                  # the pending command reads the word
        with m.If(accept & bus.cmd_write & hit):
            m.d.sync += [known.eq(1), value.eq(bus.cmd_wdata)]
        with m.Elif(ctl.busy & ~is_data):
            m.d.sync += known.eq(0)          # training may rewrite weights and state
        with m.If(accept):
            m.d.sync += read_hit.eq(~bus.cmd_write & hit & known)
        # the response to the command accepted in this cycle or before
        now = accept & ~bus.cmd_write & hit & known
        mine = Mux(pending, read_hit, now)
        self.check(m, "word_kept", ~bus.rsp_valid | ~mine | (bus.rsp_rdata == value))
        self.cover(m, "word_read_back", bus.rsp_valid & mine)


def _one_of(r, a, regions):
    ok = Const(0)
    for rid, _, _, depth in regions:
        ok = ok | ((r == rid) & (a < depth))
    return ok
