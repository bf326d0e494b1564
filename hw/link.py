"""The host link: UART + SLIP + request checks + execution (``docs/protocol.md``).

:class:`Link` receives requests on a UART pin, checks them completely, executes them on
:data:`~lnsmadam.hw.bus.MemBus` and :data:`~lnsmadam.hw.bus.ControlSignature` and answers.
:class:`lnsmadam.golden.link.DeviceModel` is its golden model: every reply payload equals
the model's. The wire format's constants and field widths come from
:mod:`lnsmadam.golden.link`.

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
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden import link as P      # the protocol: constants, op and status codes
from ..golden.format import check_int
from .bus import ControlSignature, MemBus
from .uart import DIVISOR_MAX, DIVISOR_MIN, UARTRx, UARTTx
from .util.compare import gt_const

__all__ = ["Link", "crc16_byte"]


def crc16_byte(crc, byte):
    """CRC-16/CCITT-FALSE register after one more byte (Amaranth expression, 16 bits):
    the byte-wise form of the MSB-first shift register with polynomial 0x1021."""
    x = crc[8:16] ^ byte
    x = x ^ x[4:8]                       # x ^= x >> 4 (the top 4 bits are unchanged)
    return (Cat(Const(0, 8), crc[0:8]) ^ Cat(Const(0, 12), x[0:4])
            ^ Cat(Const(0, 5), x) ^ x)[0:16]


class Link(wiring.Component):
    """Host link: UART, SLIP, request checks, execution and reply (``docs/protocol.md``).

    Parameters
    ----------
    identify : bytes, 1..65535 bytes
        The identify blob (:func:`lnsmadam.golden.link.identify_blob`), served from a ROM.
    regions : iterable of ``(id, name, width, depth)``
        The region table READ and WRITE are checked against (id 0..255, width 1..32, depth
        1..65536; :func:`lnsmadam.golden.link.region_table`).
    divisor : int, 4..65535
        UART bit time in clock cycles.

    Members
    -------
    uart_rx : In(1), init 1
        The receive pin (asynchronous; idle high).
    uart_tx : Out(1), init 1
        The transmit pin.
    bus : Out(:data:`~lnsmadam.hw.bus.MemBus`)
        Region reads and writes; the link is the initiator.
    ctl : Out(:data:`~lnsmadam.hw.bus.ControlSignature`)
        ``start``/``stop``/``evaluate`` pulses with their arguments, the trainer's status in.

    Latency
    -------
    The reply starts ``nlen + 2`` clocks after the END closing a request (the walk over the
    ``nlen`` payload bytes and the check), plus, for WRITE, about 9 clocks and the bus's
    response time per word before the reply.

    Throughput
    ----------
    One request at a time, UART-bound: a request costs its wire time in both directions
    plus at most about ``2 * MAX_PAYLOAD`` clocks.

    Notes
    -----
    Operation: see the module docstring. Resources (Yosys ``synth_ice40`` + nextpnr packing,
    iCE40UP5K, the default SoC: 6 regions, 1261-byte blob, divisor 12): 740 LUT4, 317
    flip-flops, 44 carries, 818 logic cells, one 4-kbit RAM for the frame buffer and
    ``ceil(len(identify) / 512)`` for the ROM. The STATUS snapshot register (112 bits, a
    loadable shift register) is about 106 of those logic cells, the region table (word
    size, top-byte mask, range check) about 37. Comparisons with constants are AND/OR
    chains (:func:`~lnsmadam.hw.util.compare.gt_const`), as Yosys would give each a carry
    chain of one cell per bit; one adder serves ``addr + count`` (range check) and
    ``addr + 1``. Tried without gain: a bit-serial CRC (trailing reception by two bytes;
    its bit-select mux and byte handshake cost what the XOR network saves) and one-hot
    state encoding.
    """

    def __init__(self, identify: bytes, regions, divisor: int):
        identify = bytes(identify)
        if not 1 <= len(identify) <= 0xFFFF:
            raise ValueError(f"identify must be 1..65535 bytes, got {len(identify)}")
        self.identify = identify
        self.regions = list(P.region_table(regions).values())
        self.divisor = check_int("divisor", divisor, DIVISOR_MIN, DIVISOR_MAX)
        super().__init__({
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "bus": Out(MemBus),
            "ctl": Out(ControlSignature),
        })

    def elaborate(self, platform):
        m = Module()
        lg = _Logic(m, self)
        with m.FSM(name="link") as fsm:
            lg.receive()
            lg.walk()
            lg.check()
            lg.write()
            lg.bus_access()
            lg.reply()
        lg.discard(fsm)
        return m


class _Logic:
    """The link's registers and datapath, built into ``m``; its methods add the FSM states
    (receive, walk, check, write, bus access, reply) and the reception guard."""

    def __init__(self, m: Module, link: Link):
        self.m, self.link = m, link
        self.bus, self.ctl = link.bus, link.ctl
        rx = m.submodules.rx = UARTRx(link.divisor)
        tx = m.submodules.tx = UARTTx(link.divisor)
        m.d.comb += [rx.rx.eq(link.uart_rx), link.uart_tx.eq(tx.tx), rx.o.ready.eq(1)]
        self.tx = tx

        # Both memories are read at a register address (``ptr``, ``addr``): the data is
        # that of the address of the previous cycle. Reply bytes are taken at most once
        # per UART byte time, so any address set when a byte is taken is read in time.
        buf = m.submodules.buf = Memory(shape=8, depth=P.MAX_PAYLOAD, init=[])
        bw, br = buf.write_port(), buf.read_port()
        self.bw, self.br = bw, br
        rom = m.submodules.rom = Memory(shape=8, depth=len(link.identify),
                                        init=list(link.identify))
        self.rr = rr = rom.read_port()
        self._registers()
        m.d.comb += [self.br.addr.eq(self.ptr), rr.addr.eq(self.addr)]
        self.d = self.br.data
        self.is_read, self.is_write = self.op3 == P.OP_READ, self.op3 == P.OP_WRITE
        self._region_table()
        self._transmitter()
        self._outputs(rx)

    def _registers(self):
        self.nlen = Signal(range(P.MAX_PAYLOAD + 1))    # payload bytes received
        self.raw = Signal()       # any wire byte since the last END
        self.esc = Signal()
        self.bad = Signal()       # bad escape seen
        self.over = Signal()      # more than MAX_PAYLOAD bytes
        self.skip = Signal()      # a non-END byte was discarded while busy: drop to next END
        self.ptr = Signal(range(P.MAX_PAYLOAD + 1))     # frame buffer read address
        self.crc = Signal(16, init=0xFFFF)
        self.crc_bad = Signal()   # a received CRC byte differs from the computed one
        self.seq_eq = Signal()    # seq == last_seq
        self.op3 = Signal(3)      # op (low 3 bits) and whether op is 1..7
        self.op_ok = Signal()
        self.upd = Signal()       # the request passed the CRC check: remember its seq
        self.status = Signal(4)
        self.hi_bits = Signal()   # WRITE: a data word has a bit set above the region's width
        self.range_bad = Signal()  # READ/WRITE: BAD_RANGE
        last_seq, last_op, last_ok = Signal(8), Signal(3), Signal()
        self.last_seq, self.last_op, self.last_ok = last_seq, last_op, last_ok
        self.issued = Signal()    # the bus command has been accepted
        self.region = Signal(P.REGION_BITS)
        self.addr = Signal(P.ADDR_BITS)     # bus word address / ROM address / START epochs
        self.cnt = Signal(8)      # READ/WRITE count, START lr_step; words left
        self.k = Signal(3)        # byte within a word
        self.sr = Signal(P.WORD_BITS)       # START seed / READ word (LSB byte first) / WRITE
        self.snap = Signal(8 * sum(P.STATUS_FIELDS.values()))   # STATUS, LSB byte first

    def _region_table(self):
        """Decode ``region`` against the table: ``r_ok``, the word size ``r_wb1``, the
        top-byte mask ``r_top`` and ``past`` (out of range), with ``end = addr + count``."""
        m, regions = self.m, self.link.regions
        r_ok = self.r_ok = Signal()
        r_idx = Signal(range(len(regions)))
        with m.Switch(self.region):
            for i, r in enumerate(regions):
                with m.Case(r.id):
                    m.d.comb += [r_ok.eq(1), r_idx.eq(i)]
        r_wb1 = self.r_wb1 = Signal(2)     # word bytes - 1
        r_top = self.r_top = Signal(8)     # bits allowed in a word's top byte
        end = self.end = Signal(P.ADDR_BITS + 1)    # addr + count
        past = Signal()       # end > the region's depth, or (READ) count * wb > MAX_BODY
        self.past = past
        with m.Switch(r_idx):
            for i, r in enumerate(regions):
                with m.Case(i):
                    top = r.width - 8 * (r.word_bytes - 1)
                    m.d.comb += [r_wb1.eq(r.word_bytes - 1), r_top.eq((1 << top) - 1),
                                 past.eq(gt_const(end, r.depth)
                                         | (self.is_read
                                            & gt_const(self.cnt, P.MAX_BODY // r.word_bytes)))]

        # one adder: addr + count for the range check in the walk, else addr + 1
        walking = self.walking = Signal()
        m.d.comb += end.eq(self.addr + Mux(walking, self.cnt, 1))

    def _transmitter(self):
        """Reply bytes (``p_*``) SLIP-encoded into the UART, and the CRC register."""
        m, tx = self.m, self.tx
        # p_byte is taken (p_ready) when its last wire byte is; an escaped byte is sent as
        # ESC, then (esc_pend) DC for C0 or DD for DB. p_end: an END, not escaped.
        p_valid, p_end, p_ready = Signal(), Signal(), Signal()
        self.p_valid, self.p_end, self.p_ready = p_valid, p_end, p_ready
        p_byte = self.p_byte = Signal(8)
        self.p_crc = Signal()     # the byte counts into the reply CRC
        esc_pend = Signal()
        needs_esc = ~p_end & ((p_byte == P.END) | (p_byte == P.ESC))
        m.d.comb += [tx.i.valid.eq(p_valid),
                     tx.i.payload.eq(Mux(esc_pend, Cat(p_byte[0], Const(P.ESC_END >> 1, 7)),
                                         Mux(needs_esc, P.ESC, p_byte))),
                     p_ready.eq(tx.i.ready & (esc_pend | ~needs_esc))]
        with m.If(p_valid & tx.i.ready & needs_esc):
            m.d.sync += esc_pend.eq(~esc_pend)

        # the CRC over p_byte: the received payload (walk) and the reply
        crc_en = self.crc_en = Signal()
        with m.If(crc_en):
            m.d.sync += self.crc.eq(crc16_byte(self.crc, p_byte))
        crc_hi = self.crc_hi = Signal()
        self.crc_sel = Mux(crc_hi, self.crc[8:16], self.crc[0:8])

    def _outputs(self, rx):
        """The bus and control outputs, and the decoded received byte."""
        m, bus, ctl = self.m, self.bus, self.ctl
        m.d.comb += [bus.cmd_region.eq(self.region), bus.cmd_addr.eq(self.addr),
                     bus.cmd_wdata.eq(self.sr),
                     ctl.epochs.eq(self.addr), ctl.lr_step.eq(self.cnt[0:8]),
                     ctl.seed.eq(self.sr)]
        m.d.sync += [ctl.start.eq(0), ctl.stop.eq(0), ctl.evaluate.eq(0)]

        self.b = b = rx.o.payload
        self.got = rx.o.valid
        self.dec = Mux(self.esc, Mux(b[0], P.ESC, P.END), b)     # DC -> C0, DD -> DB
        self.is_end = b == P.END

        op3, nlen = self.op3, self.nlen
        self.is_rw = self.is_read | self.is_write
        self.is_start = op3 == P.OP_START
        len_ok = self.len_ok = Signal()
        with m.Switch(op3):
            for o, n in P.REQUEST_LENGTH.items():
                with m.Case(o):
                    if o == P.OP_WRITE:
                        m.d.comb += len_ok.eq(gt_const(nlen, 7)
                                              & ~gt_const(nlen, 4 + P.MAX_BODY))
                    else:
                        m.d.comb += len_ok.eq(nlen == 4 + n)
        self.dedup = ((self.is_start | (op3 == P.OP_STOP) | (op3 == P.OP_EVALUATE))
                      & self.last_ok & self.seq_eq & (op3 == self.last_op))
        self.busy_op = self.is_rw | self.is_start | (op3 == P.OP_EVALUATE)
        self.lr_step = self.cnt[0:8]

    def _reply_with(self, st):
        self.m.d.sync += self.status.eq(st)
        self.m.next = "H_END"

    # -- FSM states ----------------------------------------------------------------------
    def receive(self):
        """RECV: SLIP-decode wire bytes into the frame buffer until the closing END."""
        m, b = self.m, self.b
        with m.State("RECV"):
            with m.If(self.got):
                with m.If(self.skip):
                    m.d.sync += self.skip.eq(~self.is_end)
                with m.Elif(self.is_end):
                    with m.If(self.raw):
                        # ``ptr`` is 0 here: the walk starts with byte 0 in ``d``
                        m.d.sync += [self.ptr.eq(1), self.k.eq(0), self.hi_bits.eq(0),
                                     self.crc_bad.eq(0)]
                        m.next = "WALK"
                with m.Else():
                    m.d.sync += self.raw.eq(1)
                    put = Signal()
                    with m.If(~self.bad & ~self.over):
                        with m.If(self.esc):
                            m.d.sync += self.esc.eq(0)
                            with m.If((b == P.ESC_END) | (b == P.ESC_ESC)):
                                m.d.comb += put.eq(1)
                            with m.Else():
                                m.d.sync += self.bad.eq(1)
                        with m.Elif(b == P.ESC):
                            m.d.sync += self.esc.eq(1)
                        with m.Else():
                            m.d.comb += put.eq(1)
                    with m.If(put):
                        with m.If(self.nlen == P.MAX_PAYLOAD):
                            m.d.sync += self.over.eq(1)
                        with m.Else():
                            m.d.comb += [self.bw.en.eq(1), self.bw.addr.eq(self.nlen),
                                         self.bw.data.eq(self.dec)]
                            m.d.sync += self.nlen.eq(self.nlen + 1)

    def walk(self):
        """WALK: one buffer byte per clock, ``d`` = byte ``ptr - 1``. All but the last two
        bytes go into the CRC and are parsed; the last two are compared with the CRC."""
        m, d, ptr, nlen, k, cnt = self.m, self.d, self.ptr, self.nlen, self.k, self.cnt
        with m.State("WALK"):
            m.d.comb += [self.p_byte.eq(d), self.walking.eq(1)]
            m.d.sync += ptr.eq(ptr + 1)
            at_hi = ptr == nlen
            # a frame of no payload bytes (a bad escape at once) is done after one clock,
            # not after ``ptr`` wrapped round to 0 (512 clocks over unwritten addresses)
            with m.If(at_hi | (ptr + 1 == nlen) | (nlen == 0)):
                m.d.comb += self.crc_hi.eq(at_hi)
                with m.If(d != self.crc_sel):
                    m.d.sync += self.crc_bad.eq(1)
                with m.If(at_hi | (nlen == 0)):
                    m.next = "CHECK"
            with m.Else():
                m.d.comb += self.crc_en.eq(1)
                m.d.sync += self.sr.eq(Cat(self.sr[8:], d))
                with m.Switch(ptr):
                    with m.Case(1):
                        m.d.sync += self.seq_eq.eq(d == self.last_seq)
                    with m.Case(2):
                        m.d.sync += [self.op3.eq(d[0:3]),
                                     self.op_ok.eq((d[3:] == 0) & (d[0:3] != 0))]
                    with m.Case(3, 4, 5, 6):
                        pass
                    with m.Default():
                        # WRITE data: count words down from ``count``, note high bits
                        with m.If(self.is_write):
                            m.d.sync += k.eq(k + 1)
                            with m.If(k == self.r_wb1):
                                m.d.sync += [k.eq(0), cnt.eq(cnt - 1)]
                                with m.If((d & ~self.r_top) != 0):
                                    m.d.sync += self.hi_bits.eq(1)
            # Body bytes 2.. shift through d -> cnt -> addr -> region: bytes 2..4 always
            # (for IDENTIFY the third is a CRC byte), byte 5 for READ/WRITE. Then
            # IDENTIFY: addr = offset; START: addr = epochs, cnt = lr_step (sr = seed);
            # READ/WRITE: region, addr, cnt = count.
            with m.If((ptr == 3) | (ptr == 4) | (ptr == 5) | ((ptr == 6) & self.is_rw)):
                m.d.sync += [cnt.eq(d), self.addr.eq(Cat(self.addr[8:], cnt[0:8])),
                             self.region.eq(self.addr[0:8])]
            with m.If(ptr == 7):    # byte 6: count is in cnt, not yet counted down
                m.d.sync += self.range_bad.eq((cnt == 0) | self.past)

    def check(self):
        """CHECK, one clock: the first failing check answers; else execute."""
        m, ctl, op3 = self.m, self.ctl, self.op3
        reply = self._reply_with
        with m.State("CHECK"):
            crc_ok = gt_const(self.nlen, 3) & ~self.crc_bad
            frame_ok = ~self.bad & ~self.over & ~self.esc
            m.d.sync += self.upd.eq(crc_ok & frame_ok)
            with m.If(crc_ok & frame_ok):
                m.d.sync += [self.last_op.eq(op3), self.last_ok.eq(0)]
            with m.If(~frame_ok):
                reply(P.BAD_FRAME)
            with m.Elif(~crc_ok):
                reply(P.BAD_CRC)
            with m.Elif(~self.op_ok):
                reply(P.UNKNOWN_OP)
            with m.Elif(~self.len_ok):
                reply(P.BAD_LENGTH)
            with m.Elif(self.dedup):
                m.d.sync += self.last_ok.eq(1)
                reply(P.OK)
            with m.Elif(self.is_rw & ~self.r_ok):
                reply(P.BAD_REGION)
            with m.Elif(self.is_write & ((self.cnt != 0) | (self.k != 0))):
                reply(P.BAD_LENGTH)             # not exactly ``count`` words
            with m.Elif(self.is_rw & self.range_bad):
                reply(P.BAD_RANGE)
            with m.Elif(self.busy_op & ctl.busy):
                reply(P.BUSY)
            with m.Elif(self.is_start & ((self.addr == 0) | (self.lr_step == 0)
                                         | gt_const(self.lr_step, P.LR_STEP_MAX))):
                reply(P.BAD_ARG)
            with m.Elif(self.is_write & self.hi_bits):
                reply(P.BAD_ARG)
            with m.Else():
                m.d.sync += [self.last_ok.eq(1), self.status.eq(P.OK), self.k.eq(0)]
                m.next = "H_END"
                with m.Switch(op3):
                    with m.Case(P.OP_WRITE):
                        m.d.sync += self.ptr.eq(5)   # re-read count (cnt counted it down)
                        m.next = "WCNT"
                    with m.Case(P.OP_START):
                        m.d.sync += ctl.start.eq(1)
                    with m.Case(P.OP_STOP):
                        m.d.sync += ctl.stop.eq(1)
                    with m.Case(P.OP_EVALUATE):
                        m.d.sync += ctl.evaluate.eq(1)
                    with m.Case(P.OP_STATUS):
                        m.d.sync += [self.snap.eq(Cat(*(getattr(ctl, name)
                                                        for name in P.STATUS_FIELDS)))]

    def write(self):
        """WCNT, WLOAD: re-read ``count``, then assemble each word from the buffer."""
        m, k, d = self.m, self.k, self.d
        # WRITE: k[0] alternates between setting the buffer address and using its data
        with m.State("WCNT"):
            m.d.sync += k.eq(k + 1)
            with m.If(k[0]):
                m.d.sync += [self.cnt.eq(d), self.ptr.eq(self.ptr + 1), k.eq(0)]
                m.next = "WLOAD"
        # assemble each word (4 shifts: wb bytes, then zeros), write it
        with m.State("WLOAD"):
            m.d.sync += k.eq(k + 1)
            with m.If(k[0]):
                with m.If(k[1:3] <= self.r_wb1):
                    m.d.sync += [self.sr.eq(Cat(self.sr[8:], d)), self.ptr.eq(self.ptr + 1)]
                with m.Else():
                    m.d.sync += self.sr.eq(Cat(self.sr[8:], Const(0, 8)))
                with m.If(k == 7):
                    m.next = "BUS"

    def bus_access(self):
        """BUS: one access (READ and WRITE): ``cmd_valid`` until ``cmd_ready``, then wait
        for ``rsp_valid`` (which may come in the handshake cycle)."""
        m, bus, cnt = self.m, self.bus, self.cnt
        with m.State("BUS"):
            m.d.comb += [bus.cmd_valid.eq(~self.issued), bus.cmd_write.eq(self.is_write)]
            with m.If(bus.cmd_ready):
                m.d.sync += self.issued.eq(1)
            with m.If(bus.rsp_valid & (self.issued | bus.cmd_ready)):
                m.d.sync += self.issued.eq(0)
                with m.If(self.is_write):
                    m.d.sync += [self.addr.eq(self.end[0:16]), cnt.eq(cnt - 1)]
                    with m.If(cnt == 1):
                        m.next = "H_END"
                    with m.Else():
                        m.next = "WLOAD"
                with m.Else():
                    m.d.sync += self.sr.eq(bus.rsp_rdata)
                    m.next = "RSEND"

    def reply(self):
        """H_END ... T_END: the reply, SLIP-framed, its body and CRC."""
        m, ptr, k = self.m, self.ptr, self.k
        p_valid, p_byte, p_crc, p_ready = self.p_valid, self.p_byte, self.p_crc, self.p_ready
        with m.State("H_END"):
            m.d.comb += [p_valid.eq(1), self.p_end.eq(1), p_byte.eq(P.END)]
            with m.If(p_ready):
                m.d.sync += [self.crc.eq(0xFFFF), ptr.eq(0)]
                m.next = "HDR"
        with m.State("HDR"):      # seq, op | 0x80: buffer bytes 0 and 1 (0 if absent)
            have = Mux(ptr[0], self.nlen[1:] != 0, self.nlen != 0)
            m.d.comb += [p_valid.eq(1), p_crc.eq(1),
                         p_byte.eq(Mux(have, self.d, 0) | Cat(Const(0, 7), ptr[0]))]
            with m.If(p_ready):
                m.d.sync += ptr.eq(ptr + 1)
                with m.If(self.upd & ~ptr[0]):
                    m.d.sync += self.last_seq.eq(self.d)
                with m.If(ptr[0]):
                    m.next = "H_ST"
        with m.State("H_ST"):
            m.d.comb += [p_valid.eq(1), p_byte.eq(self.status), p_crc.eq(1)]
            with m.If(p_ready):
                m.d.sync += k.eq(0)
                m.next = "CRC"
                with m.If(self.status == P.OK):
                    with m.Switch(self.op3):
                        with m.Case(P.OP_IDENTIFY):
                            m.next = "B_ID"
                        with m.Case(P.OP_READ):
                            m.next = "BUS"
                        with m.Case(P.OP_STATUS):
                            m.next = "B_SR"
        self._reply_body()
        with m.State("CRC"):                      # k = 0: low byte, 1: high byte
            m.d.comb += [p_valid.eq(1), p_byte.eq(self.crc_sel), self.crc_hi.eq(k[0])]
            with m.If(p_ready):
                m.d.sync += k.eq(1)
                with m.If(k[0]):
                    m.next = "T_END"
        with m.State("T_END"):
            m.d.comb += [p_valid.eq(1), self.p_end.eq(1), p_byte.eq(P.END)]
            with m.If(p_ready):
                m.d.sync += [self.nlen.eq(0), self.raw.eq(0), self.esc.eq(0),
                             self.bad.eq(0), self.over.eq(0), ptr.eq(0),
                             self.crc.eq(0xFFFF)]
                m.next = "RECV"

    def _reply_body(self):
        """B_ID, B_SR, RSEND: the IDENTIFY, STATUS and READ bodies."""
        m, ptr, k, cnt, sr = self.m, self.ptr, self.k, self.cnt, self.sr
        p_valid, p_byte, p_crc, p_ready = self.p_valid, self.p_byte, self.p_crc, self.p_ready
        # IDENTIFY and STATUS count their body bytes in ptr (2 at the first)
        with m.State("B_ID"):
            with m.If((ptr == 2 + P.MAX_BODY)
                      | gt_const(self.addr, len(self.link.identify) - 1)):
                m.next = "CRC"
            with m.Else():
                m.d.comb += [p_valid.eq(1), p_byte.eq(self.rr.data), p_crc.eq(1)]
                with m.If(p_ready):
                    m.d.sync += [self.addr.eq(self.end[0:16]), ptr.eq(ptr + 1)]
        with m.State("B_SR"):                     # STATUS body, then the zero pad
            m.d.comb += [p_valid.eq(1), p_byte.eq(self.snap[0:8]), p_crc.eq(1)]
            with m.If(p_ready):
                m.d.sync += [ptr.eq(ptr + 1), self.snap.eq(self.snap[8:])]
                with m.If(ptr == 1 + P.STATUS_BODY_LEN):
                    m.next = "CRC"
        with m.State("RSEND"):
            m.d.comb += [p_valid.eq(1), p_byte.eq(sr[0:8]), p_crc.eq(1)]
            with m.If(p_ready):
                m.d.sync += [sr[0:24].eq(sr[8:32]), k.eq(k + 1)]
                with m.If(k == self.r_wb1):
                    m.d.sync += [self.addr.eq(self.end[0:16]), k.eq(0), cnt.eq(cnt - 1)]
                    with m.If(cnt == 1):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "BUS"

    def discard(self, fsm):
        """Outside RECV: the reply's bytes into the CRC, and received bytes discarded up
        to the next END (half duplex at frame level)."""
        m = self.m
        with m.If(~fsm.ongoing("RECV")):
            with m.If(self.p_valid & self.p_ready & self.p_crc):
                m.d.comb += self.crc_en.eq(1)
            with m.If(self.got):
                m.d.sync += self.skip.eq(~self.is_end)
