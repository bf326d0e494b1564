"""Inductive proofs of the host link (:class:`~lnsmadam.hw.link.Link`): the WRITE path and
the bounded response.

The link keeps a request in its frame buffer and decides on it while it walks the buffer,
after the frame has ended; a shadow that computes the CRC as the bytes arrive (the bounded
harness in :mod:`.link`) can only be related to that walk prefix by prefix, which no
induction of useful depth closes. These proofs split the claim in two, both inductive:

* ``walk_reads_frame``: the byte the link reads in its ``t``-th walk clock is the frame's
  ``t``-th decoded payload byte. A symbolic index ``j`` (any buffer position, fixed per
  trace) is checked; the shadow keeps only byte ``j`` of the frame (SLIP decoding,
  ``docs/protocol.md`` §2), and the buffer word ``j`` is observed through an extra
  combinational read port added to the link's buffer in the harness (read only). As ``j``
  is any position, every walked byte is the frame's.
* an observer parses the walked bytes as ``docs/protocol.md`` §3 and §5 define a request
  (CRC-16/CCITT-FALSE bit by bit, the header, WRITE's words and their top bytes) and gives
  the protocol's verdict; ``write_checked``: a bus write happens only for a WRITE frame
  whose every check passed (SLIP, length, CRC, op, region, exact length for ``count``
  words, range, data bits), to its region and inside ``[addr, addr + count)``;
  ``write_data``/``write_fits``: every written word is the frame's word (its byte ``jb``
  is the frame's byte ``j`` when ``j`` is byte ``jb`` of that word), with no bit above the
  region's width and zeros above its bytes; ``write_not_busy``: never while ``busy``;
  ``control_alone``: a ``start``/``stop``/
  ``evaluate`` pulse never beside a bus command or a response still due, and one at a time
  (what the trainer's harness assumes of its initiator).

Together: a write happens only for a frame that passed every check of the protocol.

``response``: with a responsive trainer (every bus command answered at once, ``busy``
low) and the fastest transmitter a UART can be (it takes a byte in any clock but the one
after it took one; the real one waits ``10 * divisor`` clocks): ``rank_decreases``: a rank,
an upper bound of the clocks left until reception computed from the link's registers (the
walk's bytes, the WRITE's words, the reply's bytes at four clocks each, escaped or not),
falls in every clock outside reception; ``back_to_recv``: the link accepts frames again
at most ``max(L, 1) + rank_max`` clocks after leaving reception (``L`` the payload bytes
kept; :meth:`LinkInductHarness.rank_max` the largest execution and reply of the
configuration). The device always returns to accepting frames, for every request, good
or bad, and the rank at the check is each request's own bound.

The invariants that close the inductions relate the link's registers (probed by name: FSM
state, byte count, read pointer, CRC, parse registers, word counters) to the shadow's and
the observer's; they are asserted and proved with the properties (``inv_*``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal

from ...hw.link import Link
from .harness import Harness, fsm_encoding
from .link import (END, ESC, ESC_END, ESC_ESC, IDENTIFY, MAX_BODY, MAX_PAYLOAD, OP_IDENTIFY,
                   OP_READ, OP_STATUS, OP_WRITE, REGIONS, _crc16, cut_uart, quiet_trainer,
                   region_info)

__all__ = ["LinkInductHarness", "BYTE"]

#: docs/protocol.md §5: the STATUS body
STATUS_BODY = 16
#: bounded response: clocks per reply byte at most (two wire bytes if escaped, each taken
#: in one clock after a clock in which the transmitter is not ready)
BYTE = 4
#: clocks of a reply's CRC bytes and closing END; of a whole reply without a body
TAIL = 3 * BYTE
REPLY_PLAIN = 4 * BYTE + TAIL


class LinkInductHarness(Harness):
    """``prop``: ``"write"`` (the WRITE path, any bus and ``busy`` behaviour) or
    ``"response"`` (the bounded response, responsive environment)."""

    block = "link"

    def __init__(self, make=None, prop: str = "write", mutate=None, only=None,
                 back_to_back: bool = False):
        if prop not in ("write", "response"):
            self._MustUse__silence = True       # never elaborated: no unused warning
            raise ValueError(f"prop must be 'write' or 'response', got {prop!r}")
        super().__init__(make or (lambda: Link(IDENTIFY, REGIONS, 4)), mutate, only)
        self.prop = prop
        #: the host sends a byte in every cycle the link accepts frames (for the bounded
        #: mutant runs: a fixed frame timing)
        self.back_to_back = back_to_back

    def build(self, m: Module, platform):
        dut: Link = self.make()
        if self.prop == "response":
            # the fastest transmitter a UART can be: never ready in the clock after it took
            # a byte (the real one takes the next byte 10 * divisor clocks later)
            self.gap = Signal(name="tx_gap")
            tx_ready = ~self.gap
        else:
            tx_ready = self.free(1, "tx_ready")
        el, rx_valid, rx_byte, self.st = cut_uart(self, m, dut, platform, tx_ready,
                                                  self.back_to_back)
        self.el, self.dut = el, dut
        in_recv = self.st["RECV"]
        self.check(m, "inv_state", el.probe("link_state") < len(self.st))
        self._environment(m)

        # the buffer, observed at the symbolic position j and at the count byte (5)
        buf = {name: sub for sub, name, _ in el.fragment.subfragments}["buf"]
        abits = len(buf._read_ports[0]._addr)
        self.j = self.anyconst(m, abits, "j")
        self.assume(m, "j_in_buffer", self.j < MAX_PAYLOAD)
        self.buf_j, self.buf_5 = Signal(8), Signal(8)
        buf.read_port(domain="comb", addr=self.j, data=self.buf_j, en=Const(1),
                      transparent_for=())
        buf.read_port(domain="comb", addr=Const(5, abits), data=self.buf_5, en=Const(1),
                      transparent_for=())
        self.data = buf._read_ports[0]._data       # what the link reads (address ptr)
        if self.prop == "response":
            m.d.sync += self.gap.eq(el.probe("i__valid") & ~self.gap)

        sh = self._shadow(m, rx_valid & in_recv, rx_byte)
        ob = self._observer(m, sh)
        self._reception_invariants(m, sh)
        self._walk_invariants(m, sh, ob)
        if self.prop == "write":
            self._write_path(m, sh, ob)
        else:
            self._response(m, sh, ob)

    def r(self, name):
        return self.el.probe(name)

    # -- the trainer side ----------------------------------------------------------------
    def _environment(self, m):
        bus, ctl = self.dut.bus, self.dut.ctl
        if self.prop == "response":
            m.d.comb += [bus.cmd_ready.eq(1), bus.rsp_valid.eq(bus.cmd_valid),
                         ctl.busy.eq(0)]
        else:
            # any bus (no assumption on its answers); busy rises only after a pulse
            busy = self.free(1, "busy")
            m.d.comb += [bus.cmd_ready.eq(self.free(1, "cmd_ready")),
                         bus.rsp_valid.eq(self.free(1, "rsp_valid")), ctl.busy.eq(busy)]
            rose = busy & ~self.past(m, busy)
            self.assume(m, "busy_after_start", ~self.started | ~rose
                        | self.past(m, ctl.start | ctl.evaluate))
        quiet_trainer(m, bus, ctl)

    # -- the shadow receiver: SLIP decoding (docs/protocol.md §2) -------------------------
    def _shadow(self, m, got, b):
        n = Signal(range(MAX_PAYLOAD + 2), name="sh_n")   # MAX_PAYLOAD + 1: overlong
        esc, bad, raw = Signal(name="sh_esc"), Signal(name="sh_bad"), Signal(name="sh_raw")
        bj = Signal(8, name="sh_bj")                      # payload byte j
        over = n == MAX_PAYLOAD + 1
        is_end = b == END
        dec = Mux(esc, Mux(b == ESC_END, END, ESC), b)
        live = got & ~is_end & ~bad & ~over               # after an error: discarded
        put = live & Mux(esc, (b == ESC_END) | (b == ESC_ESC), b != ESC)
        with m.If(got & ~is_end):
            m.d.sync += raw.eq(1)
        with m.If(live):
            with m.If(esc):
                m.d.sync += [esc.eq(0), bad.eq((b != ESC_END) & (b != ESC_ESC))]
            with m.Elif(b == ESC):
                m.d.sync += esc.eq(1)
        with m.If(put):
            m.d.sync += n.eq(n + 1)
            with m.If(n == self.j):
                m.d.sync += bj.eq(dec)
        closing = got & is_end & raw
        with m.If(got & is_end):
            m.d.sync += [n.eq(0), esc.eq(0), bad.eq(0), raw.eq(0)]
        # the frame just closed: its length (kept bytes), whether SLIP and length passed
        f_n = Signal(range(MAX_PAYLOAD + 2), name="sh_frame_n")
        f_ok = Signal(name="sh_frame_ok")
        with m.If(closing):
            m.d.sync += [f_n.eq(n), f_ok.eq(~bad & ~esc & ~over)]
        kept = Mux(over, MAX_PAYLOAD, n)
        f_kept = Mux(f_n == MAX_PAYLOAD + 1, MAX_PAYLOAD, f_n)
        return dict(n=n, esc=esc, bad=bad, raw=raw, bj=bj, over=over, kept=kept,
                    closing=closing, f_n=f_n, f_ok=f_ok, L=f_kept)

    # -- the observer: the walked bytes parsed as a request (§3, §5) -----------------------
    def _observer(self, m, sh):
        L, d = sh["L"], self.data
        t = Signal(range(MAX_PAYLOAD + 1), name="ob_t")   # walk clocks seen
        crc = Signal(16, init=0xFFFF, name="ob_crc")
        mism = Signal(name="ob_mism")                      # a CRC byte differs
        op, region, count = (Signal(8, name=f"ob_{x}") for x in ("op", "region", "count"))
        addr = Signal(16, name="ob_addr")
        wpos, words = Signal(2, name="ob_wpos"), Signal(9, name="ob_words")
        hibits = Signal(name="ob_hibits")
        jdata, jw, jb = Signal(name="ob_jdata"), Signal(9, name="ob_jw"), Signal(2, name="ob_jb")
        known, wb, top, depth = region_info(m, region, self.dut.regions)
        in_recv = self.st["RECV"]
        with m.If(sh["closing"]):
            m.d.sync += [t.eq(0), crc.eq(0xFFFF), mism.eq(0), wpos.eq(0), words.eq(0),
                         hibits.eq(0), jdata.eq(0)]
        with m.Elif(~in_recv & (t < L)):
            m.d.sync += t.eq(t + 1)
            with m.If(t + 2 < L):
                m.d.sync += crc.eq(_crc16(crc, d))
                with m.Switch(t):
                    with m.Case(0):
                        pass                        # seq: no check of the WRITE path
                    with m.Case(1):
                        m.d.sync += op.eq(d)
                    with m.Case(2):
                        m.d.sync += region.eq(d)
                    with m.Case(3):
                        m.d.sync += addr[0:8].eq(d)
                    with m.Case(4):
                        m.d.sync += addr[8:16].eq(d)
                    with m.Case(5):
                        m.d.sync += count.eq(d)
                    with m.Default():
                        # WRITE data: count the words, check every word's top byte
                        last = wpos == wb - 1
                        m.d.sync += wpos.eq(Mux(last, 0, wpos + 1))
                        with m.If(last):
                            m.d.sync += words.eq(words + 1)
                            with m.If((d & ~top) != 0):
                                m.d.sync += hibits.eq(1)
                        # byte j is byte jb of data word jw
                        with m.If(t == self.j):
                            m.d.sync += [jdata.eq(1), jw.eq(words), jb.eq(wpos)]
            with m.Elif(t + 2 == L):
                m.d.sync += mism.eq(mism | (d != crc[0:8]))
            with m.Else():
                m.d.sync += mism.eq(mism | (d != crc[8:16]))

        # the verdict once the walk is over (the checks of §3 in order, §5's WRITE rules)
        body = sh["f_n"] - 4
        passed = sh["f_ok"] & (sh["f_n"] >= 4) & ~mism
        in_range = (count != 0) & (addr + count <= depth)
        w = Signal(name="ob_write_ok")
        m.d.comb += w.eq(passed & (op == OP_WRITE) & (body <= MAX_BODY) & known
                         & (body == 4 + count * wb) & in_range & ~hibits)
        return dict(t=t, crc=crc, mism=mism, op=op, region=region, addr=addr,
                    count=count, wpos=wpos, words=words, hibits=hibits, top=top,
                    jdata=jdata, jw=jw, jb=jb,
                    known=known, wb=wb, depth=depth, w=w, passed=passed, body=body, done=t == L)

    # -- invariants ---------------------------------------------------------------------
    def _reception_invariants(self, m, sh):
        r, j = self.r, self.j
        in_recv = self.st["RECV"]
        self.check(m, "inv_no_skip", ~r("skip"))
        self.check(m, "inv_recv", ~in_recv | (
            (r("nlen") == sh["kept"]) & (r("over") == sh["over"]) & (r("raw") == sh["raw"])
            & (sh["over"] | ((r("esc") == sh["esc"]) & (r("bad") == sh["bad"])))
            & (r("ptr") == 0) & (r("crc") == 0xFFFF) & ~r("issued")
            & (sh["raw"] | ((sh["n"] == 0) & ~sh["esc"] & ~sh["bad"]))))
        self.check(m, "inv_recv_buffer", ~in_recv | (j >= sh["kept"]) | (self.buf_j == sh["bj"]))
        self.check(m, "inv_away", in_recv | (
            (r("nlen") == sh["L"]) & (sh["n"] == 0) & ~sh["esc"] & ~sh["bad"] & ~sh["raw"]
            & (sh["f_ok"] == (~r("bad") & ~r("esc") & ~r("over")))
            & ((sh["f_n"] == MAX_PAYLOAD + 1) == r("over"))))
        self.check(m, "inv_away_buffer", in_recv | (j >= sh["L"]) | (self.buf_j == sh["bj"]))
        st, bus = self.st, self.dut.bus
        self.check(m, "inv_cmd", (~bus.cmd_valid | st["BUS"]) & (~r("issued") | st["BUS"]))
        self.check(m, "inv_read_states", (~st["RSEND"] | (r("op3") == OP_READ))
                   & (~st["BUS"] | (r("op3") == OP_READ) | (r("op3") == OP_WRITE)))
        self.check(m, "inv_pulse", ~(self.dut.ctl.start | self.dut.ctl.stop
                                     | self.dut.ctl.evaluate) | self.st["H_END"])

    def _walk_invariants(self, m, sh, ob):
        r, L, t = self.r, sh["L"], ob["t"]
        walk, check, in_recv = self.st["WALK"], self.st["CHECK"], self.st["RECV"]
        self.check(m, "walk_reads_frame", in_recv | (t >= L) | (t != self.j)
                   | (self.data == sh["bj"]))
        self.check(m, "inv_walk", ~walk | (
            (r("ptr") == t + 1) & ((t < L) | ((L == 0) & (t == 0))) & (r("crc") == ob["crc"])
            & ((L == 0) | (r("crc_bad") == ob["mism"]))))
        self.check(m, "inv_walked", in_recv | walk | ob["done"])
        self.check(m, "inv_ranges", (sh["n"] <= MAX_PAYLOAD + 1) & (sh["f_n"] <= MAX_PAYLOAD + 1)
                   & (t <= L) & (ob["words"] <= t))
        parsing = walk | check
        hdr = L >= 8
        self.check(m, "inv_op", ~parsing | ~(hdr & (t >= 2)) | (
            (r("op3") == ob["op"][0:3])
            & (r("op_ok") == ((ob["op"][3:8] == 0) & (ob["op"][0:3] != 0)))))
        is_w = ob["op"] == OP_WRITE
        # region, addr and count shift through cnt -> addr -> region (bytes 2..5)
        cnt, addr, oa = r("cnt"), r("addr"), ob["addr"]
        self.check(m, "inv_header", ~parsing | ~(hdr & is_w) | (
            ((t != 3) | (cnt == ob["region"]))
            & ((t != 4) | ((cnt == oa[0:8]) & (addr[8:16] == ob["region"])))
            & ((t != 5) | ((cnt == oa[8:16]) & (addr == Cat(ob["region"], oa[0:8]))))
            & ((t < 6) | ((r("region") == ob["region"]) & (addr == oa)))))
        in_range = (ob["count"] != 0) & (ob["addr"] + ob["count"] <= ob["depth"])
        self.check(m, "inv_range", ~parsing | ~(hdr & (t >= 7) & is_w & ob["known"])
                   | (r("range_bad") == ~in_range))
        data_bytes = Mux(t + 2 <= L, t, L - 2) - 6     # WRITE data bytes parsed so far
        self.check(m, "inv_words", ~parsing | ~(hdr & (t >= 6) & is_w & ob["known"]) | (
            (ob["wpos"] < ob["wb"]) & (ob["words"] * ob["wb"] + ob["wpos"] == data_bytes)
            & (r("k") == ob["wpos"]) & (r("cnt") == (ob["count"] - ob["words"])[0:8])
            & (r("hi_bits") == ob["hibits"])))
        self.check(m, "inv_no_data_yet", ~parsing | (t > 6) | (
            (r("k") == 0) & ~r("hi_bits") & (ob["words"] == 0) & (ob["wpos"] == 0)
            & ~ob["hibits"]))
        self.check(m, "inv_count_byte", in_recv | ~(hdr & (t >= 6)) | (self.buf_5 == ob["count"]))

    # -- the WRITE path --------------------------------------------------------------------
    def _write_path(self, m, sh, ob):
        r, st, bus, ctl = self.r, self.st, self.dut.bus, self.dut.ctl
        writing = st["WCNT"] | st["WLOAD"] | (st["BUS"] & (r("op3") == OP_WRITE))
        end = ob["addr"] + ob["count"]
        self.check(m, "inv_exec", ~writing | (
            ob["done"] & ob["w"] & (r("op3") == OP_WRITE) & (r("region") == ob["region"])
            & ~ctl.busy))
        self.check(m, "inv_exec_count", ~st["WCNT"] | (
            (r("addr") == ob["addr"]) & (r("ptr") == 5) & (r("k") <= 1)))
        self.check(m, "inv_exec_words", ~(st["WLOAD"] | (st["BUS"] & (r("op3") == OP_WRITE)))
                   | ((r("addr") + r("cnt") == end) & (r("cnt") != 0)
                      & (r("addr") >= ob["addr"])))
        wr = bus.cmd_valid & bus.cmd_write
        self.check(m, "write_checked", ~wr | (
            ~self.st["RECV"] & ob["done"] & ob["w"] & (bus.cmd_region == ob["region"])
            & (bus.cmd_addr >= ob["addr"]) & (bus.cmd_addr < end)))
        self.check(m, "write_not_busy", ~wr | ~ctl.busy)
        self._write_data(m, sh, ob, wr)
        # what the trainer's harness assumes of its initiator (``control_alone``): a run
        # control pulse never beside a bus command or a response still due, one at a time
        pending = Signal(name="rsp_pending")
        with m.If(bus.cmd_valid & bus.cmd_ready & ~bus.rsp_valid):
            m.d.sync += pending.eq(1)
        with m.Elif(bus.rsp_valid):
            m.d.sync += pending.eq(0)
        self.check(m, "inv_pending", pending == r("issued"))
        pulses = Cat(ctl.start, ctl.stop, ctl.evaluate)
        self.check(m, "control_alone", (pulses == 0) | (~bus.cmd_valid & ~pending
                                                         & ((pulses & (pulses - 1)) == 0)))

    def _write_data(self, m, sh, ob, wr):
        """The written words: byte ``jb`` of word ``jw`` is the frame's byte ``j``, the top
        byte has no bit above the width, the bytes above the word are zero."""
        r, st = self.r, self.st
        k, cnt, ptr, sr = r("k"), r("cnt"), r("ptr"), r("sr")
        wb, bj = ob["wb"], sh["bj"]
        loading = st["WLOAD"] | (st["BUS"] & (r("op3") == OP_WRITE))
        w = (ob["count"] - cnt)[0:8]                  # words written before this one
        shifts = Mux(st["BUS"], 4, k[1:3])            # bytes shifted into sr so far
        mine = ob["jdata"] & (ob["jw"] == w)          # byte j belongs to this word
        top_ok = (bj & ~ob["top"]) == 0
        j, t = self.j, ob["t"]
        self.check(m, "inv_j_data", ~ob["jdata"] | ((j >= 6) & (j + 2 < sh["L"]) & (j < t)))
        self.check(m, "inv_j_word", ~(~st["RECV"] & ob["jdata"] & (ob["op"] == OP_WRITE)
                                      & ob["known"] & (sh["L"] >= 8))
                   | ((ob["jw"] * wb + ob["jb"] == j - 6) & (ob["jb"] < wb)
                      & ((ob["jb"] != wb - 1) | top_ok | ob["hibits"])))
        self.check(m, "inv_load_ptr", ~loading | (
            (ptr == 6 + w * wb + Mux(shifts < wb, shifts, wb)) & (~st["BUS"] | (k == 0))))
        self.check(m, "inv_word", ~loading | ~mine | (ob["jb"] >= shifts)
                   | (sr.word_select((4 - shifts + ob["jb"]).as_unsigned(), 8) == bj))
        pad = Const(1)
        for i in range(4):
            pad = pad & ((i >= shifts) | (i < wb) | (sr.word_select((4 - shifts + i).as_unsigned(), 8) == 0))
        self.check(m, "inv_pad", ~loading | pad)
        data = self.dut.bus.cmd_wdata
        self.check(m, "write_data", ~wr | ~mine | (data.word_select(ob["jb"], 8) == bj))
        self.check(m, "write_fits", ~wr | ((data >> (8 * wb)) == 0)
                   & (~mine | (ob["jb"] != wb - 1) | top_ok))

    # -- the bounded response ----------------------------------------------------------------
    def rank_max(self) -> int:
        """The largest rank the check can leave (``U`` of CHECK over every register value):
        the bound beyond the walk."""
        ident = min(len(self.dut.identify), MAX_BODY)
        wb = max(r.word_bytes for r in self.dut.regions)
        body = max(BYTE * ident + 1 + TAIL, 255 * (1 + BYTE * wb) + TAIL,
                   BYTE * STATUS_BODY + TAIL)
        return 1 + max(2 + 9 * 255 + REPLY_PLAIN, 4 * BYTE + body)

    def _response(self, m, sh, ob):
        r, st = self.r, self.st
        in_recv, walk = st["RECV"], st["WALK"]
        e, k, cnt, ptr, addr = r("esc_pend"), r("k"), r("cnt"), r("ptr"), r("addr")
        op3, status, wb = r("op3"), r("status"), r("r_wb1") + 1
        is_read, is_write = op3 == OP_READ, op3 == OP_WRITE
        ident = len(self.dut.identify)
        word = 1 + BYTE * wb              # READ: a bus access and the word's bytes
        half = 2 * e                      # the first half of an escaped byte is sent

        def id_left(p):                   # IDENTIFY body bytes still to send
            return Mux(addr >= ident, 0, Mux(ident - addr < 2 + MAX_BODY - p, ident - addr,
                                             2 + MAX_BODY - p))

        def body(ok):                     # rank when H_ST hands over (its next state)
            return Mux(ok & (op3 == OP_IDENTIFY), BYTE * id_left(2) + 1 + TAIL,
                       Mux(ok & is_read, cnt * word + TAIL,
                           Mux(ok & (op3 == OP_STATUS), BYTE * STATUS_BODY + TAIL, TAIL)))

        body_now = body(status == 0)
        rmax = self.rank_max()
        lw = Mux(sh["L"] == 0, 1, sh["L"])
        u = {
            "WALK": lw - ob["t"] + rmax,
            "CHECK": 1 + Mux(is_write, 2 + 9 * self.buf_5 + REPLY_PLAIN, 4 * BYTE + body(1)),
            "WCNT": 2 - k + 9 * self.buf_5 + REPLY_PLAIN,
            "WLOAD": 8 - k + 1 + 9 * (cnt - 1) + REPLY_PLAIN,
            "BUS": Mux(is_write, 1 + 9 * (cnt - 1) + REPLY_PLAIN, cnt * word + TAIL),
            "H_END": 4 * BYTE + body_now,
            "HDR": BYTE * (2 - ptr[0]) - half + BYTE + body_now,
            "H_ST": BYTE - half + body_now,
            "B_ID": BYTE * id_left(ptr) - half + 1 + TAIL,
            "B_SR": BYTE * (2 + STATUS_BODY - ptr) - half + TAIL,
            "RSEND": BYTE * (wb - k) - half + (cnt - 1) * word + TAIL,
            "CRC": BYTE * (2 - k[0]) - half + BYTE,
            "T_END": BYTE,
        }
        rank = Signal(range(4 * (MAX_PAYLOAD + rmax)), name="rank")
        with m.Switch(self.el.probe("link_state")):
            for name, value in fsm_encoding(self.el.probe("link_state")).items():
                if name in u:
                    with m.Case(value):
                        m.d.comb += rank.eq(u[name] + self.gap)
        away = Signal(range(4 * (MAX_PAYLOAD + self.rank_max())), name="away")
        m.d.sync += away.eq(Mux(in_recv, 0, away + 1))
        budget = lw + self.rank_max()
        self.check(m, "back_to_recv", in_recv | (away < budget))
        self.check(m, "rank_decreases", ~self.started | self.past(m, in_recv)
                   | in_recv | (rank < self.past(m, rank)))
        self.check(m, "inv_rank_budget", in_recv | ((rank >= 1) & (away + rank <= budget)))
        self.check(m, "inv_walk_away", ~walk | (away == ob["t"]))

        # the registers the rank reads stay in their ranges
        sending = st["HDR"] | st["H_ST"] | st["B_ID"] | st["B_SR"] | st["RSEND"] | st["CRC"]
        reply_ok_read = (status == 0) & is_read
        pb = r("p_byte")
        self.check(m, "inv_reply_ranges", (~e | (sending & ((pb == END) | (pb == ESC))))
                   & (~st["HDR"] | (ptr <= 1)) & (~st["H_ST"] | (ptr == 2))
                   & (~st["B_ID"] | ((ptr >= 2) & (ptr <= 2 + MAX_BODY)))
                   & (~st["B_SR"] | ((ptr >= 2) & (ptr <= 1 + STATUS_BODY)))
                   & (~st["CRC"] | (k <= 1)) & (~(st["B_ID"] | st["B_SR"]) | (k == 0))
                   & (~st["RSEND"] | ((k < wb) & (cnt != 0) & is_read))
                   & (~(st["H_END"] | st["HDR"] | st["H_ST"]) | ~reply_ok_read | (cnt != 0)))
        # a bus that answers at once: the command is never left issued and unanswered
        self.check(m, "inv_exec_ranges", ~r("issued")
                   & (~st["WCNT"] | ((k <= 1) & (ptr == 5) & (self.buf_5 != 0) & is_write))
                   & (~st["WLOAD"] | ((cnt != 0) & is_write))
                   & (~st["BUS"] | ((k == 0) & (cnt != 0) & (is_read | is_write))))
        parsing = walk | st["CHECK"]
        self.check(m, "inv_read_count", ~parsing | ~((sh["L"] >= 8) & (ob["t"] >= 7) & is_read
                                                     & r("op_ok"))
                   | r("range_bad") | (cnt != 0))

