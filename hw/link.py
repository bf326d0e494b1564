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
   ``lib.memory.Memory`` of ``MAX_PAYLOAD`` bytes) and counts them; nothing else. A bad
   escape or an overlong frame sets a flag and the rest of the frame is discarded.
2. Walk, from the clock after the closing END: one buffer byte per clock (``nlen`` clocks).
   All but the last two bytes go into the CRC and are parsed (``seq == last seq``, ``op``;
   body bytes 2..5 shift through ``cnt``/``addr``/``region``, every body byte through
   ``sr``, so START's ``epochs``/``lr_step``/``seed`` end up in ``addr``/``cnt``/``sr``;
   WRITE data is counted in words against ``count`` and checked for bits above the
   width); the last two are compared with the CRC.
3. Check, 1 clock: BAD_FRAME, BAD_CRC, UNKNOWN_OP, BAD_LENGTH, (START/STOP/EVALUATE
   repeated with the remembered ``(seq, op)``: OK, not executed), BAD_REGION, (WRITE: not
   exactly ``count`` words: BAD_LENGTH), BAD_RANGE, BUSY, BAD_ARG. Nothing is executed
   before all checks pass.
4. Execute and reply: WRITE re-reads ``count`` and issues its bus writes (per word: 8
   clocks to assemble it from the buffer, then ``cmd_valid`` until ``cmd_ready``, then wait
   for ``rsp_valid``, which may come in the handshake cycle) before the reply;
   START/STOP/EVALUATE pulse ``ctl`` for one clock (``epochs``/``lr_step``/``seed`` are
   valid in the ``start`` cycle only, as ``ControlSignature`` allows; the trainer copies
   them); STATUS loads all status inputs in the check clock into a shift register, which
   the reply shifts out (one consistent snapshot however long the reply takes). The reply
   is SLIP-encoded and its CRC computed on the fly into the UART transmitter; ``seq`` and
   ``op`` are read back from the buffer, IDENTIFY bodies come from a ROM
   (``lib.memory.Memory`` with the blob as init), READ bodies from bus reads issued word
   by word as the reply goes out.

The link is half duplex at frame level: from the END closing a request until the reply's
last END has been handed to the UART, received bytes are discarded, and a frame whose
beginning was discarded is dropped up to its END without a reply. The host only sends
after a reply or a timeout, so this only loses retries sent into a reply.

Throughput is UART-bound (a request costs its wire time in both directions plus at most
about 2 * ``MAX_PAYLOAD`` clocks). Resources (Yosys ``synth_ice40`` + nextpnr packing,
iCE40UP5K, the default SoC: 6 regions, 1261-byte blob, divisor 12): 740 LUT4, 317
flip-flops, 44 carries, 818 logic cells, one 4-kbit RAM for the frame buffer and
``ceil(len(identify) / 512)`` for the ROM. The STATUS snapshot register (112 bits, a
loadable shift register) is about 106 of those logic cells, the region table (word size,
top-byte mask, range check) about 37. Comparisons with constants are AND/OR chains
(:func:`_gt`), as Yosys would give each a carry chain of one cell per bit; one adder
serves ``addr + count`` (range check) and ``addr + 1``. Tried without gain: a bit-serial
CRC (trailing reception by two bytes; its bit-select mux and byte handshake cost what the
XOR network saves) and one-hot state encoding.
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


def _gt(x, c):
    """``x > c`` for a constant ``c`` as an AND/OR chain, LSB first: about ``len(x) / 3``
    LUTs, where Yosys would spend a carry chain of ``len(x)`` logic cells."""
    if c >> len(x):
        return Const(0, 1)
    g = Const(0, 1)
    for i in range(len(x)):
        g = (x[i] & g) if (c >> i) & 1 else (x[i] | g)
    return g


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

        # Both memories are read at a register address (``ptr``, ``addr``): the data is
        # that of the address of the previous cycle. Reply bytes are taken at most once
        # per UART byte time, so any address set when a byte is taken is read in time.
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
        ptr = Signal(range(P.MAX_PAYLOAD + 1))        # frame buffer read address
        crc = Signal(16, init=0xFFFF)
        crc_bad = Signal()    # a received CRC byte differs from the computed one
        seq_eq = Signal()     # seq == last_seq
        op3 = Signal(3)       # op (low 3 bits) and whether op is 1..7
        op_ok = Signal()
        upd = Signal()        # the request passed the CRC check: remember its seq
        status = Signal(4)
        hi_bits = Signal()    # WRITE: a data word has a bit set above the region's width
        range_bad = Signal()  # READ/WRITE: BAD_RANGE
        last_seq, last_op, last_ok = Signal(8), Signal(3), Signal()
        issued = Signal()     # the bus command has been accepted
        region = Signal(8)
        addr = Signal(16)     # bus word address / ROM address / START epochs
        cnt = Signal(8)       # READ/WRITE count, START lr_step; words left
        k = Signal(3)         # byte within a word
        sr = Signal(32)       # START seed / READ word (sent LSB byte first) / WRITE word
        snap = Signal(112)    # STATUS snapshot, shifted out LSB byte first

        m.d.comb += [br.addr.eq(ptr), rr.addr.eq(addr)]
        d = br.data

        is_read, is_write = op3 == P.OP_READ, op3 == P.OP_WRITE

        # -- region table ------------------------------------------------------------------
        r_ok = Signal()
        r_idx = Signal(range(len(self.regions)))
        with m.Switch(region):
            for i, r in enumerate(self.regions):
                with m.Case(r.id):
                    m.d.comb += [r_ok.eq(1), r_idx.eq(i)]
        r_wb1 = Signal(2)     # word bytes - 1
        r_top = Signal(8)     # bits allowed in a word's top byte
        end = Signal(17)      # addr + count
        past = Signal()       # end > the region's depth, or (READ) count * wb > MAX_BODY
        with m.Switch(r_idx):
            for i, r in enumerate(self.regions):
                with m.Case(i):
                    top = r.width - 8 * (r.word_bytes - 1)
                    m.d.comb += [r_wb1.eq(r.word_bytes - 1), r_top.eq((1 << top) - 1),
                                 past.eq(_gt(end, r.depth)
                                         | (is_read & _gt(cnt, P.MAX_BODY // r.word_bytes)))]

        # one adder: addr + count for the range check in the walk, else addr + 1
        walking = Signal()
        m.d.comb += end.eq(addr + Mux(walking, cnt, 1))

        # -- SLIP transmit: payload bytes (p_*) to the UART --------------------------------
        # p_byte is taken (p_ready) when its last wire byte is; an escaped byte is sent as
        # ESC, then (esc_pend) DC for C0 or DD for DB. p_end: an END, not escaped.
        p_valid, p_end, p_ready = Signal(), Signal(), Signal()
        p_byte = Signal(8)
        p_crc = Signal()      # the byte counts into the reply CRC
        esc_pend = Signal()
        needs_esc = ~p_end & ((p_byte == P.END) | (p_byte == P.ESC))
        m.d.comb += [tx.i.valid.eq(p_valid),
                     tx.i.payload.eq(Mux(esc_pend, Cat(p_byte[0], Const(P.ESC_END >> 1, 7)),
                                         Mux(needs_esc, P.ESC, p_byte))),
                     p_ready.eq(tx.i.ready & (esc_pend | ~needs_esc))]
        with m.If(p_valid & tx.i.ready & needs_esc):
            m.d.sync += esc_pend.eq(~esc_pend)

        # -- CRC over p_byte: the received payload (walk) and the reply ------------------------
        crc_en = Signal()
        with m.If(crc_en):
            m.d.sync += crc.eq(crc16_byte(crc, p_byte))
        crc_hi = Signal()
        crc_sel = Mux(crc_hi, crc[8:16], crc[0:8])

        # -- bus and control outputs -------------------------------------------------------
        m.d.comb += [bus.cmd_region.eq(region), bus.cmd_addr.eq(addr),
                     bus.cmd_wdata.eq(sr),
                     ctl.epochs.eq(addr), ctl.lr_step.eq(cnt[0:8]), ctl.seed.eq(sr)]
        m.d.sync += [ctl.start.eq(0), ctl.stop.eq(0), ctl.evaluate.eq(0)]

        b = rx.o.payload
        got = rx.o.valid
        dec = Mux(esc, Mux(b[0], P.ESC, P.END), b)               # DC -> C0, DD -> DB
        is_end = b == P.END

        is_rw = is_read | is_write
        is_start = op3 == P.OP_START
        len_ok = Signal()
        with m.Switch(op3):
            for o, n in P.REQUEST_LENGTH.items():
                with m.Case(o):
                    if o == P.OP_WRITE:
                        m.d.comb += len_ok.eq(_gt(nlen, 7) & ~_gt(nlen, 4 + P.MAX_BODY))
                    else:
                        m.d.comb += len_ok.eq(nlen == 4 + n)
        dedup = ((is_start | (op3 == P.OP_STOP) | (op3 == P.OP_EVALUATE))
                 & last_ok & seq_eq & (op3 == last_op))
        busy_op = is_rw | is_start | (op3 == P.OP_EVALUATE)
        lr_step = cnt[0:8]

        def reply(st):
            m.d.sync += status.eq(st)
            m.next = "H_END"

        with m.FSM(name="link") as fsm:
            with m.State("RECV"):
                with m.If(got):
                    with m.If(skip):
                        m.d.sync += skip.eq(~is_end)
                    with m.Elif(is_end):
                        with m.If(raw):
                            # ``ptr`` is 0 here: the walk starts with byte 0 in ``d``
                            m.d.sync += [ptr.eq(1), k.eq(0), hi_bits.eq(0),
                                         crc_bad.eq(0)]
                            m.next = "WALK"
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
                                m.d.comb += [bw.en.eq(1), bw.addr.eq(nlen), bw.data.eq(dec)]
                                m.d.sync += nlen.eq(nlen + 1)

            # Walk the payload: one byte per clock, ``d`` = byte ``ptr - 1``. All but the
            # last two bytes go into the CRC and are parsed; the last two are compared
            # with the CRC.
            with m.State("WALK"):
                m.d.comb += [p_byte.eq(d), walking.eq(1)]
                m.d.sync += ptr.eq(ptr + 1)
                at_hi = ptr == nlen
                with m.If(at_hi | (ptr + 1 == nlen)):
                    m.d.comb += crc_hi.eq(at_hi)
                    with m.If(d != crc_sel):
                        m.d.sync += crc_bad.eq(1)
                    with m.If(at_hi | (nlen == 0)):
                        m.next = "CHECK"
                with m.Else():
                    m.d.comb += crc_en.eq(1)
                    m.d.sync += sr.eq(Cat(sr[8:], d))
                    with m.Switch(ptr):
                        with m.Case(1):
                            m.d.sync += seq_eq.eq(d == last_seq)
                        with m.Case(2):
                            m.d.sync += [op3.eq(d[0:3]),
                                         op_ok.eq((d[3:] == 0) & (d[0:3] != 0))]
                        with m.Case(3, 4, 5, 6):
                            pass
                        with m.Default():
                            # WRITE data: count words down from ``count``, note high bits
                            with m.If(is_write):
                                m.d.sync += k.eq(k + 1)
                                with m.If(k == r_wb1):
                                    m.d.sync += [k.eq(0), cnt.eq(cnt - 1)]
                                    with m.If((d & ~r_top) != 0):
                                        m.d.sync += hi_bits.eq(1)
                # Body bytes 2.. shift through d -> cnt -> addr -> region: bytes 2..4 always
                # (for IDENTIFY the third is a CRC byte), byte 5 for READ/WRITE. Then
                # IDENTIFY: addr = offset; START: addr = epochs, cnt = lr_step (sr = seed);
                # READ/WRITE: region, addr, cnt = count.
                with m.If((ptr == 3) | (ptr == 4) | (ptr == 5) | ((ptr == 6) & is_rw)):
                    m.d.sync += [cnt.eq(d), addr.eq(Cat(addr[8:], cnt[0:8])),
                                 region.eq(addr[0:8])]
                with m.If(ptr == 7):    # byte 6: count is in cnt, not yet counted down
                    m.d.sync += range_bad.eq((cnt == 0) | past)

            with m.State("CHECK"):
                crc_ok = _gt(nlen, 3) & ~crc_bad
                frame_ok = ~bad & ~over & ~esc
                m.d.sync += upd.eq(crc_ok & frame_ok)
                with m.If(crc_ok & frame_ok):
                    m.d.sync += [last_op.eq(op3), last_ok.eq(0)]
                with m.If(~frame_ok):
                    reply(P.BAD_FRAME)
                with m.Elif(~crc_ok):
                    reply(P.BAD_CRC)
                with m.Elif(~op_ok):
                    reply(P.UNKNOWN_OP)
                with m.Elif(~len_ok):
                    reply(P.BAD_LENGTH)
                with m.Elif(dedup):
                    m.d.sync += last_ok.eq(1)
                    reply(P.OK)
                with m.Elif(is_rw & ~r_ok):
                    reply(P.BAD_REGION)
                with m.Elif(is_write & ((cnt != 0) | (k != 0))):
                    reply(P.BAD_LENGTH)             # not exactly ``count`` words
                with m.Elif(is_rw & range_bad):
                    reply(P.BAD_RANGE)
                with m.Elif(busy_op & ctl.busy):
                    reply(P.BUSY)
                with m.Elif(is_start & ((addr == 0) | (lr_step == 0)
                                        | _gt(lr_step, P.LR_STEP_MAX))):
                    reply(P.BAD_ARG)
                with m.Elif(is_write & hi_bits):
                    reply(P.BAD_ARG)
                with m.Else():
                    m.d.sync += [last_ok.eq(1), status.eq(P.OK), k.eq(0)]
                    m.next = "H_END"
                    with m.Switch(op3):
                        with m.Case(P.OP_WRITE):
                            m.d.sync += ptr.eq(5)   # re-read count (cnt counted it down)
                            m.next = "WCNT"
                        with m.Case(P.OP_START):
                            m.d.sync += ctl.start.eq(1)
                        with m.Case(P.OP_STOP):
                            m.d.sync += ctl.stop.eq(1)
                        with m.Case(P.OP_EVALUATE):
                            m.d.sync += ctl.evaluate.eq(1)
                        with m.Case(P.OP_STATUS):
                            m.d.sync += [snap.eq(Cat(ctl.state, ctl.error, ctl.epoch,
                                                     ctl.sample, ctl.correct,
                                                     ctl.last_correct, ctl.steps))]

            # WRITE: k[0] alternates between setting the buffer address and using its data
            with m.State("WCNT"):
                m.d.sync += k.eq(k + 1)
                with m.If(k[0]):
                    m.d.sync += [cnt.eq(d), ptr.eq(ptr + 1), k.eq(0)]
                    m.next = "WLOAD"
            # assemble each word (4 shifts: wb bytes, then zeros), write it
            with m.State("WLOAD"):
                m.d.sync += k.eq(k + 1)
                with m.If(k[0]):
                    with m.If(k[1:3] <= r_wb1):
                        m.d.sync += [sr.eq(Cat(sr[8:], d)), ptr.eq(ptr + 1)]
                    with m.Else():
                        m.d.sync += sr.eq(Cat(sr[8:], Const(0, 8)))
                    with m.If(k == 7):
                        m.next = "BUS"
            # one bus access (READ and WRITE): cmd_valid until cmd_ready, then wait for
            # rsp_valid (which may come in the handshake cycle)
            with m.State("BUS"):
                m.d.comb += [bus.cmd_valid.eq(~issued), bus.cmd_write.eq(is_write)]
                with m.If(bus.cmd_ready):
                    m.d.sync += issued.eq(1)
                with m.If(bus.rsp_valid & (issued | bus.cmd_ready)):
                    m.d.sync += issued.eq(0)
                    with m.If(is_write):
                        m.d.sync += [addr.eq(end[0:16]), cnt.eq(cnt - 1)]
                        with m.If(cnt == 1):
                            m.next = "H_END"
                        with m.Else():
                            m.next = "WLOAD"
                    with m.Else():
                        m.d.sync += sr.eq(bus.rsp_rdata)
                        m.next = "RSEND"

            # -- reply ------------------------------------------------------------------------
            with m.State("H_END"):
                m.d.comb += [p_valid.eq(1), p_end.eq(1), p_byte.eq(P.END)]
                with m.If(p_ready):
                    m.d.sync += [crc.eq(0xFFFF), ptr.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):      # seq, op | 0x80: buffer bytes 0 and 1 (0 if absent)
                have = Mux(ptr[0], nlen[1:] != 0, nlen != 0)
                m.d.comb += [p_valid.eq(1), p_crc.eq(1),
                             p_byte.eq(Mux(have, d, 0) | Cat(Const(0, 7), ptr[0]))]
                with m.If(p_ready):
                    m.d.sync += ptr.eq(ptr + 1)
                    with m.If(upd & ~ptr[0]):
                        m.d.sync += last_seq.eq(d)
                    with m.If(ptr[0]):
                        m.next = "H_ST"
            with m.State("H_ST"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(status), p_crc.eq(1)]
                with m.If(p_ready):
                    m.d.sync += k.eq(0)
                    m.next = "CRC"
                    with m.If(status == P.OK):
                        with m.Switch(op3):
                            with m.Case(P.OP_IDENTIFY):
                                m.next = "B_ID"
                            with m.Case(P.OP_READ):
                                m.next = "BUS"
                            with m.Case(P.OP_STATUS):
                                m.next = "B_SR"
            # IDENTIFY and STATUS count their body bytes in ptr (2 at the first)
            with m.State("B_ID"):
                with m.If((ptr == 2 + P.MAX_BODY) | _gt(addr, len(self.identify) - 1)):
                    m.next = "CRC"
                with m.Else():
                    m.d.comb += [p_valid.eq(1), p_byte.eq(rr.data), p_crc.eq(1)]
                    with m.If(p_ready):
                        m.d.sync += [addr.eq(end[0:16]), ptr.eq(ptr + 1)]
            with m.State("B_SR"):                     # STATUS body, then the zero pad
                m.d.comb += [p_valid.eq(1), p_byte.eq(snap[0:8]), p_crc.eq(1)]
                with m.If(p_ready):
                    m.d.sync += [ptr.eq(ptr + 1), snap.eq(snap[8:])]
                    with m.If(ptr == 1 + P.STATUS_BODY_LEN):
                        m.next = "CRC"
            with m.State("RSEND"):
                m.d.comb += [p_valid.eq(1), p_byte.eq(sr[0:8]), p_crc.eq(1)]
                with m.If(p_ready):
                    m.d.sync += [sr[0:24].eq(sr[8:32]), k.eq(k + 1)]
                    with m.If(k == r_wb1):
                        m.d.sync += [addr.eq(end[0:16]), k.eq(0), cnt.eq(cnt - 1)]
                        with m.If(cnt == 1):
                            m.next = "CRC"
                        with m.Else():
                            m.next = "BUS"
            with m.State("CRC"):                      # k = 0: low byte, 1: high byte
                m.d.comb += [p_valid.eq(1), p_byte.eq(crc_sel), crc_hi.eq(k[0])]
                with m.If(p_ready):
                    m.d.sync += k.eq(1)
                    with m.If(k[0]):
                        m.next = "T_END"
            with m.State("T_END"):
                m.d.comb += [p_valid.eq(1), p_end.eq(1), p_byte.eq(P.END)]
                with m.If(p_ready):
                    m.d.sync += [nlen.eq(0), raw.eq(0), esc.eq(0), bad.eq(0), over.eq(0),
                                 ptr.eq(0), crc.eq(0xFFFF)]
                    m.next = "RECV"

        with m.If(~fsm.ongoing("RECV")):
            with m.If(p_valid & p_ready & p_crc):
                m.d.comb += crc_en.eq(1)
            with m.If(got):
                m.d.sync += skip.eq(~is_end)
        return m
