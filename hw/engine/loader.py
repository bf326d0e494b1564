"""The sample loader: one record from the data memory into an input buffer, while the
engine trains on the previous sample.

A record is ``rec = ceil(n_in / 2) + 1`` 16-bit words: the feature codes, two per word (code
``2k`` in the low byte), then the label (``docs/protocol.md`` §7). The input vector
``a_0`` of a sample lives in one of four buffers of the input memory (lane bank ``j %
lanes``, word ``buffer * W_0 + j // lanes``); its constant-1 entry is part of the memory's
initial contents and is never written.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...golden.format import check_int

__all__ = ["Loader"]


class Loader(wiring.Component):
    """Loads the record of sample position ``pos`` into input buffer ``buf``.

    Parameters
    ----------
    n_in : int, 1..1024
        Features per record.
    lanes : int, power of two, 1..64
        Input banks (one code per bank and cycle; at one lane one code per cycle).
    max_records : int, 1..65535
        Records the data memory holds (``max_records * rec <= 65536`` words).
    code_bits : int, 3..8
        Bits of a feature code.
    w0 : int
        Words per buffer in each bank: ``ceil((n_in + 1) / lanes)``, or ``ceil(n_in / lanes)``
        when the bias has a lane of its own (the default: the former).

    Members
    -------
    start : In(1)
        Pulse (while not ``busy``): load the sample at position ``pos`` of the epoch order
        (training: ``record = order[pos]`` from the shuffler's read port) or of the test
        set (``eval``: ``record = n_train + pos``) into buffer ``buf``.
    busy : Out(1)
        High from the cycle after ``start`` until the buffer and ``label`` are written.
    label : Out(16)
        The loaded record's label word.
    sh_addr : Out, sh_data : In
        The shuffler's order read port (data one cycle after the address).
    d_addr : Out, d_rdata : In(16)
        The data memory's read port (data one cycle after the address); only while busy.
    a0_we, a0_waddr, a0_wdata : Out
        The input buffers' write port (per bank enable, one word address, a code per bank).

    Latency
    -------
    ``busy`` for ``4 + rec`` cycles (``lanes >= 2``: a word per cycle) or ``4 + n_in + 1``
    cycles (one lane: a code per cycle).

    Throughput
    ----------
    One record per load; the engine overlaps a load with the previous sample's passes.

    Notes
    -----
    At ``lanes >= 2`` the two codes of a word land in different banks at one address.
    """

    def __init__(self, n_in: int, lanes: int, max_records: int, code_bits: int = 8,
                 w0: int | None = None):
        self.n_in = check_int("n_in", n_in, 1, 1024)
        self.lanes = check_int("lanes", lanes, 1, 64)
        self.max_records = check_int("max_records", max_records, 1, 65535)
        self.rec = (n_in + 1) // 2 + 1
        self.w0 = -(-(n_in + 1) // lanes) if w0 is None else check_int("w0", w0, 1, 1024)
        depth = max(max_records * self.rec, 2)
        super().__init__({
            "start": In(1), "pos": In(16), "buf": In(2), "eval": In(1), "n_train": In(16),
            "busy": Out(1), "label": Out(16),
            "sh_addr": Out(range(max(max_records, 2))),
            "sh_data": In(max(max_records - 1, 1).bit_length()),
            "d_addr": Out(range(depth)), "d_rdata": In(16),
            "a0_we": Out(lanes), "a0_waddr": Out(range(max(4 * self.w0, 2))),
            "a0_wdata": Out(data.ArrayLayout(code_bits, lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        L, n_in, rec = self.lanes, self.n_in, self.rec
        lb = L.bit_length() - 1
        one = L == 1
        # items: one lane, a code per cycle then the label; else a word per cycle
        n_items = n_in + 1 if one else rec
        pos, buf, ev = Signal(16), Signal(2), Signal()
        record = Signal(range(self.max_records + 1))
        addr = Signal.like(self.d_addr)
        item = Signal(range(n_items + 1))
        phase = Signal(range(4))            # 0 order read, 1 record, 2 base, 3 reading
        issuing, d_valid = Signal(), Signal()
        d_item = Signal.like(item)
        with m.If(self.start):
            m.d.sync += [pos.eq(self.pos), buf.eq(self.buf), ev.eq(self.eval), self.busy.eq(1),
                         phase.eq(0), item.eq(0), issuing.eq(0)]
        m.d.comb += self.sh_addr.eq(pos)
        with m.If(self.busy & (phase == 0)):
            m.d.sync += phase.eq(1)
        with m.If(self.busy & (phase == 1)):
            m.d.sync += [record.eq(Mux(ev, self.n_train + pos, self.sh_data)), phase.eq(2)]
        # The data-memory address is a register of its own (not record * rec + offset): on
        # a large ECP5 that sum fed ~60 block RAMs and was the whole SoC's critical path.
        with m.If(self.busy & (phase == 2)):
            m.d.sync += [addr.eq(record * rec), phase.eq(3), issuing.eq(1)]
        m.d.comb += self.d_addr.eq(addr)
        last_item = item == n_items - 1
        m.d.sync += [d_valid.eq(issuing), d_item.eq(item)]
        with m.If(issuing):
            m.d.sync += item.eq(item + 1)
            if one:
                # codes 2k and 2k+1 share word k; the label has the record's last word,
                # one further on when n_in is odd
                step = item[0] | (item == n_in - 1) if n_in % 2 else item[0]
                m.d.sync += addr.eq(addr + step)
            else:
                m.d.sync += addr.eq(addr + 1)
            with m.If(last_item):
                m.d.sync += issuing.eq(0)

        # the data of the item read last cycle
        is_label = d_item == n_items - 1
        with m.If(d_valid & is_label):
            m.d.sync += [self.label.eq(self.d_rdata), self.busy.eq(0)]
        code_lo, code_hi = self.d_rdata[:8], self.d_rdata[8:16]
        w0 = self.w0
        if one:
            j = d_item
            m.d.comb += [self.a0_waddr.eq(buf * w0 + j),
                         self.a0_wdata[0].eq(Mux(j[0], code_hi, code_lo)),
                         self.a0_we[0].eq(d_valid & ~is_label)]
        else:
            j = d_item << 1                 # the low code's index; the high one is j + 1
            m.d.comb += self.a0_waddr.eq(buf * w0 + (j >> lb))
            for b in range(L):
                lo_here = (j[:lb] == b)
                hi_here = ((j + 1)[:lb] == b) & (j + 1 < n_in)
                m.d.comb += [self.a0_wdata[b].eq(Mux(lo_here, code_lo, code_hi)),
                             self.a0_we[b].eq(d_valid & ~is_label & (lo_here | hi_here))]
        return m
