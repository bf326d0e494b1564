"""Formal harness of the host link (:class:`~lnsmadam.hw.link.Link`).

Abstraction: the UART receiver's byte stream and the transmitter's ``ready`` are cut free
(the link's reads of them are replaced by free inputs), so any byte sequence with any
timing, and any transmit pacing, is covered; the bytes on the pins are not. The host is
half duplex as ``docs/protocol.md`` §2 requires: it sends only while the link accepts
frames. With ``back_to_back`` the host sends a byte in every cycle in which the link accepts
frames (values free, timing fixed). The trainer behind ``bus``/``ctl`` is free: ``busy``
rises only after a ``start`` or ``evaluate`` pulse, and the bus target answers each
accepted command once, at any time.

A shadow receiver in the harness, written from ``docs/protocol.md`` (SLIP, CRC-16/CCITT-
FALSE, the request layout and checks), decodes the same bytes. Asserted:

* ``read_checked``: a bus read only for a READ frame that passed every check, in range;
* ``start_checked``: ``ctl.start`` only for a START frame that passed every check, with
  its ``epochs``, ``lr_step`` (1..64) and ``seed``;
* ``no_access_while_busy``: no bus command, ``start`` or ``evaluate`` while ``busy``;
* ``bus_cmd_held``: a bus command is held, unchanged, until ``cmd_ready``.

The WRITE path and the bounded response are proved by induction
in :mod:`.link_induct`. Everything here is a bounded model check (the frame buffer and the
shadow's CRC have no inductive relation short of the whole frame), from reset, over every
byte sequence that fits the depth.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal

from ...hw.link import Link

from .harness import Elaborated, Harness, fsm_encoding
from .mutants import Rewrite

__all__ = ["LinkHarness", "region_info", "cut_uart", "quiet_trainer"]

# docs/protocol.md, written down again here as the harness's own spec
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
MAX_PAYLOAD, MAX_BODY, LR_STEP_MAX = 270, 256, 64
OP_IDENTIFY, OP_READ, OP_WRITE, OP_START, OP_STOP, OP_STATUS, OP_EVALUATE = range(1, 8)
BODY = {OP_IDENTIFY: 2, OP_READ: 4, OP_START: 7, OP_STOP: 0, OP_STATUS: 0, OP_EVALUATE: 0}

#: the harness's default device: a 4-byte identify blob and two small regions
IDENTIFY = b"LNSM"
REGIONS = [(0, "a", 8, 4), (2, "b", 12, 3)]


def _crc16(crc, byte):
    """CRC-16/CCITT-FALSE after one more byte, bit by bit as ``docs/protocol.md`` §3
    defines it (MSB first, polynomial 0x1021), independent of the link's byte-wise form."""
    for i in range(7, -1, -1):
        top = crc[15] ^ byte[i]
        crc = Cat(Const(0, 1), crc[:15]) ^ Mux(top, Const(0x1021, 16), Const(0, 16))
    return crc


def region_info(m, region, regions):
    """The region table as ``docs/protocol.md`` §5 uses it, for the region id ``region``:
    ``(known, word bytes, top-byte mask, depth)`` (0 for an unknown id)."""
    known = Const(0)
    wb, top, depth = Signal(3), Signal(8), Signal(17)
    for r in regions:
        hit = region == r.id
        known = known | hit
        with m.If(hit):
            m.d.comb += [wb.eq(r.word_bytes),
                         top.eq((1 << (r.width - 8 * (r.word_bytes - 1))) - 1),
                         depth.eq(r.depth)]
    return known, wb, top, depth


def cut_uart(h: Harness, m: Module, dut: Link, platform, tx_ready, back_to_back: bool):
    """Add ``dut`` (mutated as ``h.mutate`` says) to ``m`` with its UART cut: the
    receiver's byte stream becomes free inputs, the transmitter's ``ready`` is ``tx_ready``;
    the host is half duplex (and, with ``back_to_back``, sends a byte in every clock in
    which the link accepts frames). Returns ``(elaborated, rx_valid, rx_byte, states)``,
    ``states`` mapping each FSM state's name to "the link is in it"."""
    rx_valid, rx_byte = h.free(1, "rx_valid"), h.free(8, "rx_byte")
    cut = Rewrite(use={"o__valid": lambda s: rx_valid, "o__payload": lambda s: rx_byte,
                       "i__ready": lambda s: tx_ready})
    user = h.mutate or (lambda f: f)
    el = Elaborated(dut, platform, lambda f: user(cut(f)))
    m.submodules.dut = el.fragment
    state = el.probe("link_state")
    st = {name: state == value for name, value in fsm_encoding(state).items()}
    h.assume(m, "host_half_duplex", ~rx_valid | st["RECV"])
    if back_to_back:
        h.assume(m, "host_back_to_back", rx_valid == st["RECV"])
    return el, rx_valid, rx_byte, st


def quiet_trainer(m: Module, bus, ctl):
    """The trainer's read data and status fields, which no property here reads, held at 0."""
    m.d.comb += bus.rsp_rdata.eq(0)
    for name in ("state", "error", "epoch", "sample", "correct", "last_correct", "steps"):
        m.d.comb += getattr(ctl, name).eq(0)


class LinkHarness(Harness):
    block = "link"

    def __init__(self, make=None, back_to_back: bool = False,
                 mutate=None, only=None):
        super().__init__(make or (lambda: Link(IDENTIFY, REGIONS, 4)), mutate, only)
        #: the host sends a byte in every cycle in which the link accepts frames (the
        #: byte values stay free): fixes the frame's timing, which makes the bounded
        #: check much cheaper
        self.back_to_back = back_to_back

    def build(self, m: Module, platform):
        dut: Link = self.make()
        el, rx_valid, rx_byte, st = cut_uart(self, m, dut, platform, self.free(1, "tx_ready"),
                                             self.back_to_back)
        in_recv = st["RECV"]
        bus, ctl = dut.bus, dut.ctl
        self._environment(m, bus, ctl)
        sh = self._shadow(m, dut, rx_valid & in_recv, rx_byte)

        acc = bus.cmd_valid
        a = bus.cmd_addr
        in_w = (a >= sh["addr"]) & (a < sh["addr"] + sh["count"])
        self.check(m, "read_checked", ~(acc & ~bus.cmd_write)
                   | (sh["r_ok"] & (bus.cmd_region == sh["region"]) & in_w))
        self.check(m, "start_checked", ~ctl.start
                   | (sh["s_ok"] & (ctl.epochs == sh["epochs"]) & (ctl.lr_step == sh["lr"])
                      & (ctl.seed == sh["seed"])))
        self.check(m, "no_access_while_busy", ~ctl.busy
                   | ~(bus.cmd_valid | ctl.start | ctl.evaluate))
        waiting = self.past(m, bus.cmd_valid & ~bus.cmd_ready)
        held = self.past(m, Cat(bus.cmd_write, bus.cmd_region, bus.cmd_addr, bus.cmd_wdata))
        self.check(m, "bus_cmd_held", ~self.started | ~waiting
                   | (bus.cmd_valid & (Cat(bus.cmd_write, bus.cmd_region, bus.cmd_addr,
                                           bus.cmd_wdata) == held)))

    # -- the trainer side ----------------------------------------------------------------
    def _environment(self, m, bus, ctl):
        ready, rsp, busy = (self.free(1, "cmd_ready"), self.free(1, "rsp_valid"),
                            self.free(1, "busy"))
        m.d.comb += [bus.cmd_ready.eq(ready), bus.rsp_valid.eq(rsp), ctl.busy.eq(busy)]
        # one response per accepted command, in or after the accepting cycle
        pending = Signal()
        accept = bus.cmd_valid & ready
        with m.If(accept & ~rsp):
            m.d.sync += pending.eq(1)
        with m.Elif(rsp):
            m.d.sync += pending.eq(0)
        self.assume(m, "one_response", ~rsp | pending | accept)
        rose = busy & ~self.past(m, busy)
        self.assume(m, "busy_after_start", ~self.started | ~rose
                    | self.past(m, ctl.start | ctl.evaluate))
        quiet_trainer(m, bus, ctl)

    # -- the shadow receiver (docs/protocol.md §2, §3, §5) ---------------------------------
    def _shadow(self, m, dut, got, b):
        n = Signal(range(MAX_PAYLOAD + 2))          # payload bytes (saturating)
        esc, bad, raw = Signal(), Signal(), Signal()
        d1, d2 = Signal(8), Signal(8)               # the last two bytes (the CRC candidates)
        crc = Signal(16, init=0xFFFF)               # over the bytes before them
        seq, op, region = Signal(8), Signal(8), Signal(8)
        addr, count = Signal(16), Signal(8)
        epochs, lr, seed = Signal(16), Signal(8), Signal(32)
        known, wb, _, depth = region_info(m, region, dut.regions)

        is_end = b == END
        dec = Mux(esc, Mux(b == ESC_END, END, ESC), b)
        put = got & ~is_end & ~bad & ~(~esc & (b == ESC)) & ~(esc & (b != ESC_END)
                                                               & (b != ESC_ESC))
        closing = got & is_end & raw
        with m.If(got & ~is_end):
            m.d.sync += raw.eq(1)
            with m.If(esc):
                m.d.sync += esc.eq(0)
                with m.If((b != ESC_END) & (b != ESC_ESC)):
                    m.d.sync += bad.eq(1)
            with m.Elif(b == ESC):
                m.d.sync += esc.eq(1)
        with m.If(put):
            with m.If(n != MAX_PAYLOAD + 1):
                m.d.sync += n.eq(n + 1)
            m.d.sync += [d1.eq(dec), d2.eq(d1)]
            # byte n - 2 is now known not to be a CRC byte: parse it
            i = n - 2
            with m.If(n >= 2):
                m.d.sync += crc.eq(_crc16(crc, d2))
                with m.Switch(i):
                    with m.Case(0):
                        m.d.sync += seq.eq(d2)
                    with m.Case(1):
                        m.d.sync += op.eq(d2)
                    with m.Case(2):
                        m.d.sync += [region.eq(d2), epochs[0:8].eq(d2)]
                    with m.Case(3):
                        m.d.sync += [addr[0:8].eq(d2), epochs[8:16].eq(d2)]
                    with m.Case(4):
                        m.d.sync += [addr[8:16].eq(d2), lr.eq(d2)]
                    with m.Case(5):
                        m.d.sync += [count.eq(d2), seed[0:8].eq(d2)]
                    with m.Default():
                        for j in (1, 2, 3):             # START: seed bytes 1..3
                            with m.If(i == 5 + j):
                                m.d.sync += seed[8 * j:8 * j + 8].eq(d2)
        with m.If(got & is_end):
            m.d.sync += [n.eq(0), esc.eq(0), bad.eq(0), raw.eq(0), crc.eq(0xFFFF)]

        # the checks of a frame closed now (docs/protocol.md §3, in its order)
        body = n - 4
        frame = ~bad & ~esc & (n <= MAX_PAYLOAD)
        crc_ok = (n >= 4) & (crc == Cat(d2, d1))
        ok = frame & crc_ok
        end = addr + count
        in_range = (count != 0) & (end <= depth)
        r = Signal()
        m.d.comb += r.eq(ok & (op == OP_READ) & (body == BODY[OP_READ]) & known & in_range
                         & (count * wb <= MAX_BODY))
        s = Signal()
        m.d.comb += s.eq(ok & (op == OP_START) & (body == BODY[OP_START]) & (epochs != 0)
                         & (lr >= 1) & (lr <= LR_STEP_MAX))
        # the verdict of the last closed frame, until the next one starts
        out = {k: Signal(name=f"sh_{k}") for k in ("r_ok", "s_ok")}
        keep = {"region": Signal(8), "addr": Signal(16), "count": Signal(17),
                "epochs": Signal(16), "lr": Signal(8), "seed": Signal(32)}
        with m.If(closing):
            m.d.sync += [out["r_ok"].eq(r), out["s_ok"].eq(s),
                         keep["region"].eq(region), keep["addr"].eq(addr),
                         keep["count"].eq(count), keep["epochs"].eq(epochs),
                         keep["lr"].eq(lr), keep["seed"].eq(seed)]
        with m.Elif(got):
            m.d.sync += [o.eq(0) for o in out.values()]
        return {**out, **keep}
