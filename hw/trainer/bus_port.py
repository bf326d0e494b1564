"""The trainer's side of :data:`~lnsmadam.hw.bus.MemBus`: host access to its regions.

Served only while the trainer is idle (the link refuses accesses while ``busy``); every
access is accepted at once and answered in the next cycle. Reads of weights and state share
the datapath's read muxes (``u_rd``, ``v_rd`` of layer ``rd_layer``); writes use the
memories' write ports, which carry the bus's address and data while idle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed

from ...golden.link import WORD_BITS
from .geometry import BIAS_BITS, Geometry
from .memories import Memories
from .registers import Registers

__all__ = ["BusPort"]

#: what a read returns in its response cycle
_REGS, _DATA, _WEIGHTS, _STATE = range(4)


class BusPort:
    """The response path (built into ``m`` on construction) and :meth:`serve`, the
    accesses, which the sequencer calls in its idle state."""

    def __init__(self, m: Module, geo: Geometry, bus, mem: Memories, regs: Registers, dp,
                 steps):
        self.m, self.geo, self.bus, self.mem, self.regs, self.dp = m, geo, bus, mem, regs, dp
        self.steps = steps
        self.regions = geo.cfg.regions()
        self.rd_pending = rd_pending = Signal()
        self.rd_kind = rd_kind = Signal(2)          # 0 registers, 1 data, 2 weights, 3 state
        self.rd_bank = Signal(range(max(geo.lanes, 2)))
        self.wr_ack = wr_ack = Signal()
        self.reg_rdata = Signal(signed(BIAS_BITS + 1))  # every register fits, sign-extended
        m.d.sync += [rd_pending.eq(0), wr_ack.eq(0)]
        m.d.comb += bus.rsp_valid.eq(rd_pending | wr_ack)
        # read data: the region's read port (addressed in the accepting cycle)
        rsp = Signal(WORD_BITS)
        with m.Switch(rd_kind):
            with m.Case(_REGS):
                m.d.comb += rsp.eq(self.reg_rdata)
            with m.Case(_DATA):
                m.d.comb += rsp.eq(mem.d_rp.data)
            with m.Case(_WEIGHTS):
                m.d.comb += rsp.eq(Array(dp.u_rd)[self.rd_bank])
            with m.Case(_STATE):
                m.d.comb += rsp.eq(Array(dp.v_rd)[self.rd_bank])
        m.d.comb += bus.rsp_rdata.eq(Mux(rd_pending, rsp, 0))

    def serve(self) -> None:
        """Accept an access (in the caller's FSM state)."""
        m, bus = self.m, self.bus
        m.d.comb += bus.cmd_ready.eq(1)
        with m.If(bus.cmd_valid):
            with m.If(bus.cmd_write):
                m.d.sync += self.wr_ack.eq(1)
            with m.Else():
                m.d.sync += self.rd_pending.eq(1)
            # the link only issues region ids and addresses of the region table, so
            # the low bits decode them
            with m.Switch(bus.cmd_region[:(len(self.regions) - 1).bit_length()]):
                with m.Case(0):
                    m.d.sync += self.rd_kind.eq(_REGS)
                    self._registers()
                with m.Case(1):
                    m.d.sync += self.rd_kind.eq(_DATA)
                    m.d.comb += [self.mem.d_addr.eq(bus.cmd_addr),
                                 self.mem.d_wp.en.eq(bus.cmd_write),
                                 self.mem.d_wp.data.eq(bus.cmd_wdata)]
                for rid, name, _, _ in self.regions[2:]:
                    kind, rest = name[0], name[1:]
                    l, b = (int(t) for t in rest.split("."))
                    wp = (self.mem.U if kind == "u" else self.mem.V)[l][b].wr
                    with m.Case(rid):
                        m.d.sync += [self.rd_kind.eq(_WEIGHTS if kind == "u" else _STATE),
                                     self.dp.rd_layer.eq(l), self.rd_bank.eq(b)]
                        m.d.comb += wp.en.eq(bus.cmd_write)
                        with m.If(bus.cmd_write):
                            m.d.sync += self.steps.eq(0)

    def _registers(self):
        """Region ``regs``: write the register addressed, read it back sign-extended
        (0 for an address without a register)."""
        m, a, wd = self.m, self.bus.cmd_addr, self.bus.cmd_wdata
        regmap = self.regs.by_address()
        n_reg = self.regions[0][3]
        with m.Switch(a[:(n_reg - 1).bit_length()]):
            for adr, sig in regmap.items():
                with m.Case(adr):
                    with m.If(self.bus.cmd_write):
                        m.d.sync += sig.eq(wd)
                    m.d.sync += self.reg_rdata.eq(sig)   # sign-extended
            with m.Default():
                m.d.sync += self.reg_rdata.eq(0)
