"""The host link: UART + SLIP + request checks + execution (``docs/protocol.md``).

``Link(identify, regions, divisor)`` -- ports ``uart_rx: In(1)`` (pin, idle 1),
``uart_tx: Out(1)``, ``bus: Out(MemBus)``, ``ctl: Out(ControlSignature)`` (both from
:mod:`lnsmadam.hw.bus`; the link is their initiator). ``identify`` is the identify blob
(1..65535 bytes, :func:`lnsmadam.host.protocol.identify_blob`), ``regions`` the
``(id, name, width, depth)`` table (id 0..255, width 1..32, depth 1..65536) that READ and
WRITE are checked against, ``divisor`` the UART bit time in clocks (4..65535).
:class:`lnsmadam.host.protocol.DeviceModel` is its golden model: every reply payload equals
the model's.

Operation, one request at a time:

1. Receive: the SLIP decoder writes payload bytes into the frame buffer (a
   ``lib.memory.Memory`` of ``MAX_PAYLOAD`` bytes) and captures ``seq``, ``op`` and the first
   7 body bytes into registers; the CRC runs over each byte once the next two have
   arrived, so at the closing END it covers all but the last two bytes, which are the
   received CRC. A bad escape or an overlong frame sets a flag and the rest of the frame
   is discarded.
2. Check, 1 clock after the closing END has been received: BAD_FRAME, BAD_CRC, UNKNOWN_OP,
   BAD_LENGTH, (START/STOP/EVALUATE repeated with the remembered ``(seq, op)``: OK, not
   executed), BAD_REGION, BAD_RANGE, BUSY, BAD_ARG. A WRITE with a known region first walks
   its data in the frame buffer (one clock per byte), which gives its exact length
   (BAD_LENGTH) and whether a word has a bit above the width (BAD_ARG), then decides in the
   same order. Nothing is executed before all checks pass.
3. Execute and reply: WRITE issues its bus writes (per word: 4 clocks to assemble it from
   the buffer, then ``cmd_valid`` until ``cmd_ready``, then wait for ``rsp_valid``, which
   may come in the handshake cycle) before the reply; START/STOP/EVALUATE pulse ``ctl`` for
   one clock (``epochs``/``lr_step``/``seed`` are the captured body bytes: valid with
   ``start`` and held until the next request with a body; the trainer copies them);
   STATUS loads all status inputs in one clock into a shift register that the reply
   shifts out. The reply is
   SLIP-encoded and its CRC computed on the fly into the UART transmitter, starting 2
   clocks after the check; IDENTIFY bodies come from a ROM (``lib.memory.Memory`` with the
   blob as init), READ bodies from bus reads issued word by word as the reply goes out.

The link is half duplex at frame level: from the END closing a request until the reply's
last END has been handed to the UART, received bytes are discarded, and a frame whose
beginning was discarded is dropped up to its END without a reply. The host only sends
after a reply or a timeout, so this only loses retries sent into a reply.

Throughput is UART-bound (a request costs its wire time in both directions plus a few
hundred clocks at most). Resources (Yosys ``synth_ice40``, 18 regions, 1.8 kB blob): about
800 LUT4, 450 flip-flops, 120 carries, one 4-kbit RAM for the frame buffer and
``ceil(len(identify) / 512)`` for the ROM; the STATUS snapshot and its byte select are
about 110 LUT4 of it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lnsmadam.golden.format import check_int
from lnsmadam.host import protocol as P

from .bus import ControlSignature, MemBus
from .uart import UARTRx, UARTTx

__all__ = ["Link", "crc16_byte"]


def crc16_byte(crc, byte):
    """CRC-16/CCITT-FALSE register after one more byte (Amaranth expression, 16 bits):
    the byte-wise form of the MSB-first shift register with polynomial 0x1021."""
    x = crc[8:16] ^ byte
    x = x ^ x[4:8]                       # x ^= x >> 4 (the top 4 bits are unchanged)
    return (Cat(Const(0, 8), crc[0:8]) ^ Cat(Const(0, 12), x[0:4])
            ^ Cat(Const(0, 5), x) ^ x)[0:16]


class Link(wiring.Component):
    """Host link (see the module docstring for behaviour and timing)."""

    def __init__(self, identify: bytes, regions, divisor: int):
        identify = bytes(identify)
        if not 1 <= len(identify) <= 0xFFFF:
            raise ValueError(f"identify must be 1..65535 bytes, got {len(identify)}")
        self.identify = identify
        self.regions = list(P.region_table(regions).values())
        self.divisor = check_int("divisor", divisor, 4, 65535)
        super().__init__({
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "bus": Out(MemBus),
            "ctl": Out(ControlSignature),
        })

    def elaborate(self, platform):
        m = Module()
        bus, ctl = self.bus, self.ctl
        rx = m.submodules.rx = UARTRx(self.divisor)
        tx = m.submodules.tx = UARTTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx), rx.o.ready.eq(1)]

        buf = m.submodules.buf = Memory(shape=8, depth=P.MAX_PAYLOAD, init=[])
        bw, br = buf.write_port(), buf.read_port()
        rom = m.submodules.rom = Memory(shape=8, depth=len(self.identify),
                                        init=list(self.identify))
        rr = rom.read_port()

        # -- registers ---------------------------------------------------------------------
        nlen = Signal(range(P.MAX_PAYLOAD + 1))       # payload bytes received
        raw = Signal()        # any wire byte since the last END
        esc = Signal()
        bad = Signal()        # bad escape seen
        over = Signal()       # more than MAX_PAYLOAD bytes
        skip = Signal()       # a non-END byte was discarded while busy: drop to the next END
        seq, op = Signal(8), Signal(8)
        arg = Signal(56)      # body bytes 0..6
        d0, d1 = Signal(8), Signal(8)                 # the last two payload bytes (d1 newest)
        crc = Signal(16, init=0xFFFF)
        status = Signal(4)
        hi_bits = Signal()    # WRITE: a data word has a bit set above the region's width
        last_seq, last_op, last_ok = Signal(8), Signal(3), Signal()
        addr = Signal(16)     # bus word address / ROM address
        cnt = Signal(9)       # words (READ/WRITE) or bytes (IDENTIFY/STATUS) left
        k = Signal(2)         # byte within a word
        ptr = Signal(range(P.MAX_PAYLOAD + 1))        # frame buffer read address
        sr = Signal(32)       # READ word (sent LSB byte first) / WRITE word (assembled)
        snap = Signal(112)    # STATUS snapshot, shifted out LSB byte first

        region, a_addr, count = arg[0:8], arg[8:24], arg[24:32]
        epochs, lr_step, seed = arg[0:16], arg[16:24], arg[24:56]

        # -- region table ------------------------------------------------------------------
        r_ok = Signal()
        r_wb1 = Signal(2)     # word bytes - 1
        r_top = Signal(8)     # bits allowed in a word's top byte
        r_depth = Signal(17)
        with m.Switch(region):
            for r in self.regions:
                with m.Case(r.id):
                    top = r.width - 8 * (r.word_bytes - 1)
                    m.d.comb += [r_ok.eq(1), r_wb1.eq(r.word_bytes - 1),
                                 r_top.eq((1 << top) - 1), r_depth.eq(r.depth)]

        # -- SLIP transmit: payload bytes (p_*) to the UART --------------------------------
        p_valid, p_end, p_ready = Signal(), Signal(), Signal()
        p_byte = Signal(8)
        p_crc = Signal()      # the byte counts into the reply CRC
        esc_pend, esc_lsb = Signal(), Signal()
        needs_esc = ~p_end & ((p_byte == P.END) | (p_byte == P.ESC))
        with m.If(esc_pend):
            m.d.comb += [tx.i.valid.eq(1),
                         tx.i.payload.eq(Cat(esc_lsb, Const(P.ESC_END >> 1, 7)))]
            with m.If(tx.i.ready):
                m.d.sync += esc_pend.eq(0)
        with m.Else():
            m.d.comb += [tx.i.valid.eq(p_valid), p_ready.eq(tx.i.ready),
                         tx.i.payload.eq(Mux(p_end, P.END, Mux(needs_esc, P.ESC, p_byte)))]
            with m.If(p_valid & tx.i.ready & needs_esc):
                m.d.sync += [esc_pend.eq(1), esc_lsb.eq(p_byte[0])]   # C0 -> DC, DB -> DD

        # -- CRC, shared by receive (d0) and transmit (p_byte) ------------------------------
        crc_in = Signal(8)
        crc_en = Signal()
        with m.If(crc_en):
            m.d.sync += crc.eq(crc16_byte(crc, crc_in))

        # -- frame buffer read address: ptr, or the value it is set to this cycle -----------
        ptr_set = Signal()
        ptr_next = Signal.like(ptr)
        m.d.comb += br.addr.eq(Mux(ptr_set, ptr_next, ptr))
        with m.If(ptr_set):
            m.d.sync += ptr.eq(ptr_next)
        addr_set = Signal()
        addr_next = Signal(16)
        m.d.comb += rr.addr.eq(Mux(addr_set, addr_next, addr))
        with m.If(addr_set):
            m.d.sync += addr.eq(addr_next)

        # -- bus and control outputs -------------------------------------------------------
        m.d.comb += [bus.cmd_region.eq(region), bus.cmd_addr.eq(addr),
                     bus.cmd_wdata.eq(sr[0:32])]
        m.d.sync += [ctl.start.eq(0), ctl.stop.eq(0), ctl.evaluate.eq(0)]
        m.d.comb += [ctl.epochs.eq(epochs), ctl.lr_step.eq(lr_step), ctl.seed.eq(seed)]

        b = rx.o.payload
        got = rx.o.valid
        dec = Mux(esc, Mux(b[0], P.ESC, P.END), b)               # DC -> C0, DD -> DB
        is_end = b == P.END

        # past the UNKNOWN_OP check op is 1..7: decode its low 3 bits only
        op_known = (op[3:] == 0) & (op[0:3] != 0)
        op3 = op[0:3]
        is_read, is_write = op3 == P.OP_READ, op3 == P.OP_WRITE
        is_rw = is_read | is_write
        is_start = op3 == P.OP_START
        crc_ok = (nlen >= 4) & (crc == Cat(d0, d1))
        len_ok = Signal()
        with m.Switch(op3):
            for o, n in P.REQUEST_LENGTH.items():
                with m.Case(o):
                    if o == P.OP_WRITE:
                        m.d.comb += len_ok.eq((nlen >= 8) & (nlen <= 4 + P.MAX_BODY))
                    else:
                        m.d.comb += len_ok.eq(nlen == 4 + n)
        too_many = Signal()   # a READ reply longer than MAX_BODY: count * wb > 256
        with m.Switch(r_wb1):
            for i in range(1, 4):
                with m.Case(i):
                    m.d.comb += too_many.eq(count > P.MAX_BODY // (i + 1))
        dedup = ((is_start | (op3 == P.OP_STOP) | (op3 == P.OP_EVALUATE))
                 & last_ok & (seq == last_seq) & (op3 == last_op))
        range_bad = Signal()
        m.d.comb += range_bad.eq((count == 0) | (a_addr + count > r_depth) | (is_read & too_many))
        busy_op = is_rw | is_start | (op3 == P.OP_EVALUATE)

        def reply(st):
            m.d.sync += status.eq(st)
            m.next = "H_END"

        with m.FSM(name="link") as fsm:
            with m.State("RECV"):
                m.d.comb += crc_in.eq(d0)
                with m.If(got):
                    with m.If(skip):
                        m.d.sync += skip.eq(~is_end)
                    with m.Elif(is_end):
                        with m.If(raw):
                            m.next = "CHECK"
                    with m.Else():
                        m.d.sync += raw.eq(1)
                        put = Signal()
                        with m.If(~bad & ~over):
                            with m.If(esc):
                                m.d.sync += esc.eq(0)
                                with m.If((b == P.ESC_END) | (b == P.ESC_ESC)):
                                    m.d.comb += put.eq(1)
                                with m.Else():
                                    m.d.sync += bad.eq(1)
                            with m.Elif(b == P.ESC):
                                m.d.sync += esc.eq(1)
                            with m.Else():
                                m.d.comb += put.eq(1)
                        with m.If(put):
                            with m.If(nlen == P.MAX_PAYLOAD):
                                m.d.sync += over.eq(1)
                            with m.Else():
                                m.d.comb += [bw.en.eq(1), bw.addr.eq(nlen), bw.data.eq(dec),
                                             crc_en.eq(nlen >= 2)]
                                m.d.sync += [nlen.eq(nlen + 1), d1.eq(dec), d0.eq(d1)]
                                with m.If(nlen == 0):
                                    m.d.sync += seq.eq(dec)
                                with m.If(nlen == 1):
                                    m.d.sync += op.eq(dec)
                                for i in range(7):
                                    with m.If(nlen == 2 + i):
                                        m.d.sync += arg[8 * i:8 * i + 8].eq(dec)

            with m.State("CHECK"):
                with m.If(crc_ok & ~bad & ~over & ~esc):
                    m.d.sync += [last_seq.eq(seq), last_op.eq(op3), last_ok.eq(0)]
                with m.If(bad | over | esc):
                    reply(P.BAD_FRAME)
                with m.Elif(~crc_ok):
                    reply(P.BAD_CRC)
                with m.Elif(~op_known):
                    reply(P.UNKNOWN_OP)
                with m.Elif(~len_ok):
                    reply(P.BAD_LENGTH)
                with m.Elif(dedup):
                    m.d.sync += last_ok.eq(1)
                    reply(P.OK)
                with m.Elif(is_rw & ~r_ok):
                    reply(P.BAD_REGION)
                with m.Elif(is_write):
                    # the length, range, busy and width checks of a WRITE follow in WSCAN
                    m.d.sync += [cnt.eq(count), k.eq(0), hi_bits.eq(0)]
                    m.d.comb += [addr_set.eq(1), addr_next.eq(a_addr), ptr_set.eq(1),
                                 ptr_next.eq(6)]
                    m.next = "WSCAN"
                with m.Elif(is_rw & range_bad):
                    reply(P.BAD_RANGE)
                with m.Elif(busy_op & ctl.busy):
                    reply(P.BUSY)
                with m.Elif(is_start & ((epochs == 0) | (lr_step == 0)
                                        | (lr_step > P.LR_STEP_MAX))):
                    reply(P.BAD_ARG)
                with m.Else():
                    m.d.sync += [last_ok.eq(1), status.eq(P.OK), cnt.eq(count), k.eq(0)]
                    m.d.comb += addr_set.eq(1)
                    m.next = "H_END"
                    with m.Switch(op3):
                        with m.Case(P.OP_IDENTIFY):
                            m.d.comb += addr_next.eq(arg[0:16])
                            m.d.sync += cnt.eq(P.MAX_BODY)
                        with m.Case(P.OP_READ):
                            m.d.comb += addr_next.eq(a_addr)
                        with m.Case(P.OP_START):
                            m.d.sync += ctl.start.eq(1)
                        with m.Case(P.OP_STOP):
                            m.d.sync += ctl.stop.eq(1)
                        with m.Case(P.OP_EVALUATE):
                            m.d.sync += ctl.evaluate.eq(1)
                        with m.Case(P.OP_STATUS):
                            m.d.sync += [cnt.eq(P.STATUS_BODY_LEN),
                                         snap.eq(Cat(ctl.state, ctl.error, ctl.epoch,
                                                   ctl.sample, ctl.correct,
                                                   ctl.last_correct, ctl.steps))]

            # WRITE, pass 1: walk the data (``br.data`` is byte ``ptr``) word by word to the
            # CRC: the length must be ``count`` words; note set bits above the width.
            with m.State("WSCAN"):
                at_crc = ptr + 2 == nlen
                with m.If((cnt == 0) | at_crc):
                    with m.If((cnt != 0) | ~at_crc):
                        reply(P.BAD_LENGTH)
                    with m.Elif(range_bad):
                        reply(P.BAD_RANGE)
                    with m.Elif(ctl.busy):
                        reply(P.BUSY)
                    with m.Elif(hi_bits):
                        reply(P.BAD_ARG)
                    with m.Else():
                        m.d.sync += [last_ok.eq(1), status.eq(P.OK), cnt.eq(count)]
                        m.d.comb += [ptr_set.eq(1), ptr_next.eq(6)]
                        m.next = "WLOAD"
                with m.Else():
                    m.d.comb += [ptr_set.eq(1), ptr_next.eq(ptr + 1)]
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == r_wb1):
                        m.d.sync += [k.eq(0), cnt.eq(cnt - 1)]
                        with m.If((br.data & ~r_top) != 0):
                            m.d.sync += hi_bits.eq(1)
            # WRITE, pass 2: assemble each word (4 shifts: wb bytes, then zeros), write it.
            with m.State("WLOAD"):
                m.d.sync += [k.eq(k + 1), sr[0:24].eq(sr[8:32])]
                with m.If(k <= r_wb1):
                    m.d.sync += sr[24:32].eq(br.data)
                    m.d.comb += [ptr_set.eq(1), ptr_next.eq(ptr + 1)]
                with m.Else():
                    m.d.sync += sr[24:32].eq(0)
                with m.If(k == 3):
                    m.next = "WCMD"
            with m.State("WCMD"):
                m.d.comb += [bus.cmd_valid.eq(1), bus.cmd_write.eq(1)]
                with m.If(bus.cmd_ready):
                    with m.If(bus.rsp_valid):
                        m.d.comb += [addr_set.eq(1), addr_next.eq(addr + 1)]
                        m.d.sync += cnt.eq(cnt - 1)
                        m.next = "WNEXT"
                    with m.Else():
                        m.next = "WRSP"
            with m.State("WRSP"):
                with m.If(bus.rsp_valid):
                    m.d.comb += [addr_set.eq(1), addr_next.eq(addr + 1)]
                    m.d.sync += cnt.eq(cnt - 1)
                    m.next = "WNEXT"
            with m.State("WNEXT"):
                with m.If(cnt == 0):
                    m.next = "H_END"
                with m.Else():
                    m.next = "WLOAD"

            # -- reply ------------------------------------------------------------------------
            with m.State("H_END"):
                m.d.comb += [p_valid.eq(1), p_end.eq(1)]
                with m.If(p_ready):
                    m.d.sync += crc.eq(0xFFFF)
                    m.next = "H_SEQ"
            with m.State("H_SEQ"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(seq), p_crc.eq(1)]
                with m.If(p_ready):
                    m.next = "H_OP"
            with m.State("H_OP"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(op | P.REPLY_FLAG), p_crc.eq(1)]
                with m.If(p_ready):
                    m.next = "H_ST"
            with m.State("H_ST"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(status), p_crc.eq(1)]
                with m.If(p_ready):
                    m.next = "C_LO"
                    with m.If(status == P.OK):
                        with m.Switch(op3):
                            with m.Case(P.OP_IDENTIFY):
                                m.next = "B_ID"
                            with m.Case(P.OP_READ):
                                m.next = "RCMD"
                            with m.Case(P.OP_STATUS):
                                m.next = "B_SR"
            with m.State("B_ID"):
                with m.If((cnt == 0) | (addr >= len(self.identify))):
                    m.next = "C_LO"
                with m.Else():
                    m.d.comb += [p_valid.eq(1), p_byte.eq(rr.data), p_crc.eq(1)]
                    with m.If(p_ready):
                        m.d.comb += [addr_set.eq(1), addr_next.eq(addr + 1)]
                        m.d.sync += cnt.eq(cnt - 1)
            with m.State("B_SR"):                     # STATUS body: byte 16 - cnt of snap
                m.d.comb += [p_valid.eq(1), p_byte.eq(snap[0:8]), p_crc.eq(1)]
                with m.If(p_ready):
                    m.d.sync += [cnt.eq(cnt - 1), snap.eq(snap[8:])]
                    with m.If(cnt == 1):
                        m.next = "C_LO"
            with m.State("RCMD"):
                m.d.comb += bus.cmd_valid.eq(1)
                with m.If(bus.cmd_ready):
                    with m.If(bus.rsp_valid):
                        m.d.sync += sr[0:32].eq(bus.rsp_rdata)
                        m.next = "RSEND"
                    with m.Else():
                        m.next = "RRSP"
            with m.State("RRSP"):
                with m.If(bus.rsp_valid):
                    m.d.sync += sr[0:32].eq(bus.rsp_rdata)
                    m.next = "RSEND"
            with m.State("RSEND"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(sr[0:8]), p_crc.eq(1)]
                with m.If(p_ready):
                    m.d.sync += [sr[0:24].eq(sr[8:32]), k.eq(k + 1)]
                    with m.If(k == r_wb1):
                        m.d.comb += [addr_set.eq(1), addr_next.eq(addr + 1)]
                        m.d.sync += [k.eq(0), cnt.eq(cnt - 1)]
                        with m.If(cnt == 1):
                            m.next = "C_LO"
                        with m.Else():
                            m.next = "RCMD"
            with m.State("C_LO"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(crc[0:8])]
                with m.If(p_ready):
                    m.next = "C_HI"
            with m.State("C_HI"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(crc[8:16])]
                with m.If(p_ready):
                    m.next = "T_END"
            with m.State("T_END"):
                m.d.comb += [p_valid.eq(1), p_end.eq(1)]
                with m.If(p_ready):
                    m.d.sync += [nlen.eq(0), raw.eq(0), esc.eq(0), bad.eq(0), over.eq(0),
                                 seq.eq(0), op.eq(0), crc.eq(0xFFFF)]
                    m.next = "RECV"

        with m.If(~fsm.ongoing("RECV")):
            m.d.comb += [crc_in.eq(p_byte), crc_en.eq(p_valid & p_ready & p_crc)]
            with m.If(got):
                m.d.sync += skip.eq(~is_end)
        return m
