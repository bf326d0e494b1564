"""AXI-Stream-named wrapper of a streaming block (``lnsmadam generate ... --axis``).

:class:`AXIStreamWrapper` gives a block with ``i_stream``/``o_stream`` (:mod:`lnsmadam.hw.mac`
dot-product units, :class:`~lnsmadam.hw.update.MadamUpdate`) the port names and reset of
AMBA AXI4-Stream, so that it drops into a vendor block design without renaming.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..golden.format import check_type

__all__ = ["AXIStreamWrapper"]


def _bytes(width: int) -> int:
    """AXI4-Stream TDATA is a whole number of bytes."""
    return 8 * -(-width // 8)


class AXIStreamWrapper(wiring.Component):
    """A streaming block behind AXI4-Stream names, one beat per cycle.

    Parameters
    ----------
    block : wiring.Component
        A component with ``i_stream`` (``In``) and ``o_stream`` (``Out``) ``lib.stream``
        members in the ``sync`` domain; any other members are plain inputs (side band) and
        are passed through under their own names.
    framed : bool
        The block's input payload has ``first``/``last`` fields (the dot-product units):
        ``s_axis_tlast`` drives ``last`` and ``first`` is derived (the first beat after
        reset or after a beat with ``tlast``); every output beat is a packet of its own
        (``m_axis_tlast = 1``). Otherwise (the update engine) ``s_axis_tlast`` travels with
        its beat through a FIFO to ``m_axis_tlast``: the engine is in order, one result per
        beat.
    depth : int
        FIFO depth for the unframed case: at least the beats in flight (``latency + 1``).

    Members
    -------
    aclk, aresetn : In(1)
        Clock and synchronous active-low reset (AXI convention; at least one cycle low).
    s_axis_tdata : In(8*ceil(w/8))
        The block's input payload packed LSB first (its manifest's field offsets), padded
        with zeros; ``first``/``last`` of framed blocks are not in TDATA.
    s_axis_tvalid, s_axis_tlast : In(1); s_axis_tready : Out(1)
    m_axis_tdata : Out(8*ceil(w/8)); m_axis_tvalid, m_axis_tlast : Out(1);
    m_axis_tready : In(1)
        The block's output payload, zero padded.

    Latency
    -------
    The block's (the wrapper adds no register on the data path).

    Throughput
    ----------
    The block's: one beat per cycle.

    Notes
    -----
    TKEEP/TSTRB (all bytes valid), TID, TDEST and TUSER are not used.
    """

    def __init__(self, block: wiring.Component, framed: bool, depth: int = 16):
        check_type("block", block, wiring.Component)
        members = dict(block.signature.members)
        for name, flow in (("i_stream", wiring.In), ("o_stream", wiring.Out)):
            if name not in members or members[name].flow != flow:
                raise ValueError(f"block must have a {flow.name} stream member {name!r}")
        self.block = block
        self.framed = bool(framed)
        self.depth = depth
        self._in_layout = block.i_stream.payload.shape()
        self._in_fields = ({n: f for n, f in self._in_layout} if framed else None)
        in_width = (sum(f.width for n, f in self._in_fields.items()
                        if n not in ("first", "last")) if framed else
                    block.i_stream.payload.as_value().shape().width)
        out_width = block.o_stream.payload.as_value().shape().width
        self.side = {n: m for n, m in members.items() if n not in ("i_stream", "o_stream")}
        ports = {"aclk": In(1), "aresetn": In(1),
                 "s_axis_tdata": In(_bytes(in_width)), "s_axis_tvalid": In(1),
                 "s_axis_tready": Out(1), "s_axis_tlast": In(1),
                 "m_axis_tdata": Out(_bytes(out_width)), "m_axis_tvalid": Out(1),
                 "m_axis_tready": In(1), "m_axis_tlast": Out(1)}
        for n, mem in self.side.items():
            if not mem.is_port or mem.flow != wiring.In:
                raise ValueError(f"block member {n!r} must be a plain input to be passed "
                                 "through")
            ports[n] = In(mem.shape)
        self.in_width, self.out_width = in_width, out_width
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain(local=True)
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        b = m.submodules.block = self.block
        i, o = b.i_stream, b.o_stream
        for n in self.side:
            m.d.comb += getattr(b, n).eq(getattr(self, n))
        m.d.comb += [i.valid.eq(self.s_axis_tvalid), self.s_axis_tready.eq(i.ready),
                     self.m_axis_tvalid.eq(o.valid), o.ready.eq(self.m_axis_tready),
                     self.m_axis_tdata.eq(o.payload.as_value())]
        data = self.s_axis_tdata[:self.in_width]
        take = self.s_axis_tvalid & i.ready
        if self.framed:
            # TDATA holds every field but first/last, in layout order
            first = Signal(init=1)
            with m.If(take):
                m.d.sync += first.eq(self.s_axis_tlast)
            pos = 0
            for name, f in self._in_layout:
                if name == "first":
                    m.d.comb += i.payload.first.eq(first)
                elif name == "last":
                    m.d.comb += i.payload.last.eq(self.s_axis_tlast)
                else:
                    m.d.comb += getattr(i.payload, name).as_value().eq(
                        data[pos:pos + f.width])
                    pos += f.width
            m.d.comb += self.m_axis_tlast.eq(Const(1))
        else:
            m.d.comb += i.payload.as_value().eq(data)
            fifo = m.submodules.tlast = SyncFIFO(width=1, depth=self.depth)
            m.d.comb += [fifo.w_en.eq(take), fifo.w_data.eq(self.s_axis_tlast),
                         fifo.r_en.eq(o.valid & self.m_axis_tready),
                         self.m_axis_tlast.eq(fifo.r_data & fifo.r_rdy)]
        return m
