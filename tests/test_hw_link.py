# amaranth: UnusedElaboratable=no
"""hw/link.py against golden/link.py's DeviceModel, through the UART pins.

A testbench drives ``uart_rx`` bit by bit with SLIP frames built by ``golden.link``; a
monitor decodes ``uart_tx``; a bus server answers ``bus`` from a dict with random ready and
response delays (including a response in the handshake cycle); a control monitor logs the
``ctl`` pulses (and checks they last one cycle). Every wire byte is also fed to a
:class:`DeviceModel`; whenever the model answers a frame, the device must send the same
reply payload (and the same wire bytes), and the device's log of bus accesses and pulses
must equal the model's -- so a faulty frame that the model does not execute can cause no
access and no pulse.
"""

import random

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from lnsmadam.golden import link as P
from lnsmadam.golden.link import DeviceModel, SlipDecoder, TrainerStatus
from lnsmadam.hw.bus import ControlSignature, MemBus
from lnsmadam.hw.link import Link

T = 1e-6                        # clock period of the simulation
REGIONS = [(0, "regs", 32, 20), (1, "data", 16, 300), (2, "w8", 8, 600), (3, "u12", 12, 70),
           (6, "v17", 17, 50), (9, "bits", 1, 65536)]
WIDTH = {r[0]: r[2] for r in REGIONS}
DEPTH = {r[0]: r[3] for r in REGIONS}
BLOB = P.identify_blob({"protocol": 1, "design": {"name": "test", "version": "0"},
                        "regions": [{"id": i, "name": n, "width": w, "depth": d}
                                    for i, n, w, d in REGIONS],
                        "pad": "".join(chr(0xC0 + i % 40) for i in range(150))})


class Harness:
    """One simulation of a :class:`Link` beside its :class:`DeviceModel`."""

    def __init__(self, divisor=4, seed=0, max_delay=3, p_same=0.25, regions=REGIONS,
                 identify=BLOB):
        self.divisor = divisor
        self.dut = Link(identify, regions, divisor)
        self.rng = random.Random(seed)
        self.max_delay, self.p_same = max_delay, p_same
        init = {}
        for rid, _, width, depth in regions:
            for a in self.rng.sample(range(depth), min(depth, 40)):
                init[(rid, a)] = self.rng.getrandbits(width)
        self.store = dict(init)                 # the device's memory (served on `bus`)
        self.model = DeviceModel(regions, store=dict(init), identify=identify)
        self.events = []                        # the device's accesses and pulses
        self.tx = bytearray()                   # every byte the device sent
        self.replies = []                       # reply payloads decoded from uart_tx
        self.expected = []                      # the model's reply payloads
        self.width = {r[0]: r[2] for r in regions}
        self.depth = {r[0]: r[3] for r in regions}
        self.handled = []                       # (frame, reply payload) of the model
        self._dec = SlipDecoder()               # device -> host
        self._rxdec = SlipDecoder()             # host -> device, for the model

    # -- background benches (plain awaits only) --------------------------------------------
    async def _uart_monitor(self, ctx):
        d, pin = self.divisor, self.dut.uart_tx
        while True:
            await ctx.negedge(pin)
            await ctx.delay((d // 2 + 0.25) * T)
            assert ctx.get(pin) == 0, "start bit too short"
            byte = 0
            for i in range(8):
                await ctx.delay(d * T)
                byte |= ctx.get(pin) << i
            await ctx.delay(d * T)
            assert ctx.get(pin) == 1, "stop bit is 0"
            self.tx.append(byte)
            for f in self._dec.feed(bytes([byte])):
                assert f.error is None, f
                self.replies.append(f.payload)

    async def _bus_server(self, ctx):
        bus, ctl = self.dut.bus, self.dut.ctl
        rng = self.rng
        while True:
            if not ctx.get(bus.cmd_valid):
                await ctx.posedge(bus.cmd_valid)
                if not ctx.get(bus.cmd_valid):
                    continue
            for _ in range(rng.randrange(self.max_delay + 1)):
                await ctx.tick()
                assert ctx.get(bus.cmd_valid), "cmd_valid dropped before cmd_ready"
            write, rid, addr, wdata = (ctx.get(bus.cmd_write), ctx.get(bus.cmd_region),
                                       ctx.get(bus.cmd_addr), ctx.get(bus.cmd_wdata))
            assert not ctx.get(ctl.busy), "bus access while busy"
            assert rid in self.width and addr < self.depth[rid], (rid, addr)
            if write:
                assert wdata >> self.width[rid] == 0, "bits above the region's width"
                self.events.append(("write", rid, addr, wdata))
                self.store[(rid, addr)] = wdata
                rdata = 0
            else:
                self.events.append(("read", rid, addr))
                rdata = self.store.get((rid, addr), 0)
            ctx.set(bus.cmd_ready, 1)
            same = rng.random() < self.p_same
            if same:
                ctx.set(bus.rsp_valid, 1)
                ctx.set(bus.rsp_rdata, rdata)
            await ctx.tick()
            ctx.set(bus.cmd_ready, 0)
            if not same:
                ctx.set(bus.rsp_rdata, rng.getrandbits(32))      # junk while not valid
                for _ in range(rng.randrange(self.max_delay + 1)):
                    await ctx.tick()
                ctx.set(bus.rsp_valid, 1)
                ctx.set(bus.rsp_rdata, rdata)
                await ctx.tick()
            ctx.set(bus.rsp_valid, 0)
            ctx.set(bus.rsp_rdata, rng.getrandbits(32))

    async def _ctl_monitor(self, ctx):
        ctl = self.dut.ctl
        while True:
            vals = await ctx.changed(ctl.start, ctl.stop, ctl.evaluate)
            if not any(vals):
                continue
            assert sum(vals) == 1
            if vals[0]:
                self.events.append(("start", ctx.get(ctl.epochs), ctx.get(ctl.lr_step),
                                    ctx.get(ctl.seed)))
            else:
                self.events.append(("stop",) if vals[1] else ("evaluate",))
            await ctx.tick()
            assert not (ctx.get(ctl.start) or ctx.get(ctl.stop) or ctx.get(ctl.evaluate)), \
                "ctl pulse longer than one cycle"

    # -- driver helpers ------------------------------------------------------------------
    async def drive(self, ctx, data, model=True):
        """Send wire bytes back to back; after each frame the model answers, wait for the
        device's reply and compare (payload, and the events so far)."""
        d, pin = self.divisor, self.dut.uart_rx
        for byte in bytes(data):
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                ctx.set(pin, bit)
                await ctx.delay(d * T)
            if not model:
                continue
            for f in self._rxdec.feed(bytes([byte])):
                r = self.model.handle(f)
                self.handled.append((f, r))
                self.expected.append(r)
                await self.wait_replies(ctx, len(self.expected))
                assert self.replies[-1] == r, (P.parse_reply(self.replies[-1]),
                                               P.parse_reply(r))
                assert self.events == self.model.events

    async def wait_replies(self, ctx, n, limit=5000):
        for _ in range(limit):
            if len(self.replies) >= n:
                return
            await ctx.delay(10 * self.divisor * T)
        raise AssertionError(f"no reply: have {len(self.replies)}, want {n}")

    async def request(self, ctx, seq, op, body=b""):
        await self.drive(ctx, P.slip_encode(P.build_request(seq, op, body)))
        return P.parse_reply(self.replies[-1])

    def set_busy(self, ctx, busy):
        ctx.set(self.dut.ctl.busy, busy)
        self.model.busy = bool(busy)

    def set_status(self, ctx, s: TrainerStatus):
        ctl = self.dut.ctl
        for name in ("state", "error", "epoch", "sample", "correct", "last_correct", "steps"):
            ctx.set(getattr(ctl, name), getattr(s, name))
        self.model.status = s

    def run(self, script, deadline=20.0):
        sim = Simulator(self.dut)
        sim.add_clock(T)
        for bench in (self._uart_monitor, self._bus_server, self._ctl_monitor):
            sim.add_testbench(bench, background=True)

        async def main(ctx):
            await ctx.tick()
            await ctx.delay(0.25 * T)           # drive the pin between clock edges
            await script(self, ctx)
            await ctx.delay(30 * self.divisor * T)   # nothing more may come

        async def watchdog(ctx):
            await ctx.delay(deadline)
            raise AssertionError("simulation deadline")

        sim.add_testbench(main)
        sim.add_testbench(watchdog, background=True)
        sim.run()
        assert self.replies == self.expected
        assert bytes(self.tx) == b"".join(P.slip_encode(r) for r in self.expected)
        assert self.events == self.model.events
        assert self.store == self.model.store


# -- tests ---------------------------------------------------------------------------------
def test_identify():
    h = Harness(seed=1)

    async def script(h, ctx):
        got = b""
        for seq, off in enumerate(range(0, len(BLOB), 256)):
            r = await h.request(ctx, seq, P.OP_IDENTIFY, P.pack_identify(off))
            got += r.body
        assert got == BLOB
        for off in (len(BLOB) - 1, len(BLOB), 300, 65535):
            r = await h.request(ctx, 9, P.OP_IDENTIFY, P.pack_identify(off))
            assert r.body == BLOB[off:off + 256]

    h.run(script)
    assert h.events == []


def test_read_write_widths():
    h = Harness(seed=2)
    rng = random.Random(5)

    async def script(h, ctx):
        seq = 0
        for rid in (2, 3, 1, 6, 0, 9):
            w, depth = WIDTH[rid], DEPTH[rid]
            for n in (1, min(6, depth)):
                addr = rng.randrange(depth - n + 1)
                words = [rng.getrandbits(w) for _ in range(n)]
                if w >= 8:
                    words[0] = 0xDBC0DBC0 & ((1 << w) - 1)          # escapes in the data
                r = await h.request(ctx, seq, P.OP_WRITE, P.pack_write(rid, addr, words, w))
                assert r.status == P.OK
                r = await h.request(ctx, seq + 1, P.OP_READ, P.pack_read(rid, addr, n))
                assert P.unpack_words(r.body, w) == words
                seq += 2
        # the largest bodies: WRITE of 256 bytes, READ replies of 255/256 bytes
        words = [rng.getrandbits(16) for _ in range(P.max_write_words(16))]
        r = await h.request(ctx, 100, P.OP_WRITE, P.pack_write(1, 300 - len(words), words, 16))
        assert r.status == P.OK
        r = await h.request(ctx, 101, P.OP_READ, P.pack_read(1, 300 - 128, 128))
        assert len(r.body) == 256 and P.unpack_words(r.body, 16)[2:] == words
        r = await h.request(ctx, 102, P.OP_READ, P.pack_read(2, 600 - 255, 255))
        assert len(r.body) == 255
        r = await h.request(ctx, 103, P.OP_READ, P.pack_read(0, 0, 20))
        assert len(r.body) == 80

    h.run(script, deadline=60.0)


def _raw(seq, op, body):
    return P.slip_encode(P.with_crc(bytes([seq, op]) + bytes(body)))


def test_error_statuses():
    h = Harness(seed=3)
    good = P.build_request(5, P.OP_WRITE, P.pack_write(1, 4, [0x1234, 0x5678], 16))
    E = P.END

    async def script(h, ctx):
        async def expect(wire, status, echo=None):
            n = len(h.replies)
            before = list(h.events)
            await h.drive(ctx, wire)
            assert len(h.replies) == n + 1
            r = P.parse_reply(h.replies[-1])
            assert r.status == status, (r, status)
            if echo is not None:
                assert (r.seq, r.op) == echo
            if status != P.OK:
                assert h.events == before, "a refused request caused an access or a pulse"

        # BAD_CRC: one flipped bit anywhere (each position), a missing byte, truncations
        for i in range(len(good)):
            bad = bytearray(good)
            bad[i] ^= 1 << (i % 8)
            await expect(P.slip_encode(bytes(bad)), P.BAD_CRC)
        await expect(P.slip_encode(good[:3] + good[4:]), P.BAD_CRC)
        await expect(P.slip_encode(good[:-1]), P.BAD_CRC)
        await expect(bytes([E]) + good[:7] + bytes([E, E]), P.BAD_CRC)    # END lost: cut
        await expect(bytes([E, 0x42, E]), P.BAD_CRC, (0x42, 0))
        await expect(bytes([E, 1, 2, 3, E]), P.BAD_CRC, (1, 2))
        # BAD_FRAME: bad escapes, ESC END, overlong (the rest discarded up to END)
        await expect(bytes([E, 7, 3, P.ESC, 0x00]) + good[2:] + bytes([E]), P.BAD_FRAME, (7, 3))
        await expect(bytes([E, P.ESC, E]), P.BAD_FRAME, (0, 0))
        await expect(bytes([E, 9, P.ESC, P.ESC, P.ESC_END, E]), P.BAD_FRAME, (9, 0))
        await expect(P.slip_encode(bytes([0x33, 0x44]) + bytes(P.MAX_PAYLOAD - 1)),
                     P.BAD_FRAME, (0x33, 0x44))
        await expect(_raw(1, 2, bytes(P.MAX_PAYLOAD - 4)), P.BAD_LENGTH)
        await expect(_raw(1, 0, b""), P.UNKNOWN_OP)
        await expect(_raw(1, 8, b""), P.UNKNOWN_OP)
        await expect(_raw(1, 0x84, P.pack_start(1, 1, 1)), P.UNKNOWN_OP)
        for op, n in P.REQUEST_LENGTH.items():
            await expect(_raw(2, op, bytes(n + 1 if op != P.OP_WRITE else 3)), P.BAD_LENGTH)
            if n:
                await expect(_raw(2, op, bytes(n - 1)), P.BAD_LENGTH)
        await expect(_raw(3, P.OP_WRITE, P.pack_read(0, 0, 64) + bytes(256)), P.BAD_LENGTH)
        await expect(_raw(3, P.OP_WRITE, P.pack_read(4, 0, 1) + bytes(1)), P.BAD_REGION)
        await expect(_raw(3, P.OP_READ, P.pack_read(255, 0, 1)), P.BAD_REGION)
        await expect(_raw(3, P.OP_WRITE, P.pack_read(6, 0, 2) + bytes(5)), P.BAD_LENGTH)
        await expect(_raw(3, P.OP_WRITE, P.pack_read(6, 0, 2) + bytes(7)), P.BAD_LENGTH)
        await expect(_raw(3, P.OP_WRITE, P.pack_read(6, 0, 0)), P.BAD_RANGE)
        await expect(_raw(3, P.OP_READ, P.pack_read(6, 0, 0)), P.BAD_RANGE)
        await expect(_raw(3, P.OP_READ, P.pack_read(6, 49, 2)), P.BAD_RANGE)
        await expect(_raw(3, P.OP_READ, P.pack_read(6, 0xFFFF, 255)), P.BAD_RANGE)
        await expect(_raw(3, P.OP_WRITE, P.pack_read(6, 50, 1) + bytes(3)), P.BAD_RANGE)
        await expect(_raw(3, P.OP_READ, P.pack_read(1, 0, 129)), P.BAD_RANGE)
        await expect(_raw(3, P.OP_READ, P.pack_read(0, 0, 65)), P.BAD_RANGE)
        await expect(_raw(3, P.OP_READ, P.pack_read(9, 65535, 1)), P.OK)
        # BAD_ARG: a set bit above the width in any word (checked before any write)
        for rid, words in [(3, [0, 0, 0x1000]), (6, [0x20000, 0]), (9, [1, 2]), (0, [0, 1])]:
            w = WIDTH[rid]
            body = P.pack_read(rid, 0, len(words)) + b"".join(
                x.to_bytes(P.word_bytes(w), "little") for x in words)
            await expect(_raw(4, P.OP_WRITE, body), P.BAD_ARG if rid != 0 else P.OK)
        for e, lr in [(0, 1), (1, 0), (1, 65), (1, 255)]:
            await expect(_raw(5, P.OP_START, P.pack_start(e, lr, 7)), P.BAD_ARG)
        # BUSY (and the order BAD_RANGE < BUSY < BAD_ARG)
        h.set_busy(ctx, 1)
        await expect(_raw(6, P.OP_READ, P.pack_read(1, 0, 1)), P.BUSY)
        await expect(_raw(6, P.OP_WRITE, P.pack_write(1, 0, [1], 16)), P.BUSY)
        await expect(_raw(6, P.OP_WRITE, P.pack_read(3, 0, 1) + b"\xff\xff"), P.BUSY)
        await expect(_raw(6, P.OP_START, P.pack_start(0, 0, 0)), P.BUSY)
        await expect(_raw(6, P.OP_EVALUATE, b""), P.BUSY)
        await expect(_raw(6, P.OP_READ, P.pack_read(1, 300, 1)), P.BAD_RANGE)
        await expect(_raw(6, P.OP_STATUS, b""), P.OK)
        await expect(_raw(6, P.OP_IDENTIFY, b"\x00\x00"), P.OK)
        h.set_busy(ctx, 0)

    h.run(script, deadline=60.0)


def test_start_stop_evaluate_status_dedup():
    h = Harness(seed=4)

    async def script(h, ctx):
        s = TrainerStatus(state=1, error=3, epoch=0x1234, sample=0xC0DB, correct=0xDBC0,
                          last_correct=0xFFFF, steps=0xC0C0DBDB)
        h.set_status(ctx, s)
        r = await h.request(ctx, 0, P.OP_STATUS)
        assert TrainerStatus.from_bytes(r.body) == s
        start = P.build_request(1, P.OP_START, P.pack_start(10, 64, 0xDEADBEEF))
        await h.drive(ctx, P.slip_encode(start))
        h.set_busy(ctx, 1)
        for _ in range(2):                       # retries while it runs: OK, no second pulse
            await h.drive(ctx, P.slip_encode(start))
            assert P.parse_reply(h.replies[-1]).status == P.OK
        assert [e[0] for e in h.events] == ["start"]
        assert h.events[0] == ("start", 10, 64, 0xDEADBEEF)      # valid with the pulse
        r = await h.request(ctx, 2, P.OP_STATUS)  # another request: a new (seq, op) ...
        await h.drive(ctx, P.slip_encode(start))  # ... so the same START is BUSY now
        assert P.parse_reply(h.replies[-1]).status == P.BUSY
        for _ in range(2):
            assert (await h.request(ctx, 3, P.OP_STOP)).status == P.OK
        h.set_busy(ctx, 0)
        for _ in range(2):
            assert (await h.request(ctx, 4, P.OP_EVALUATE)).status == P.OK
        assert (await h.request(ctx, 5, P.OP_START, P.pack_start(1, 1, 0))).status == P.OK
        assert (await h.request(ctx, 6, P.OP_STOP)).status == P.OK
        assert [e[0] for e in h.events] == ["start", "stop", "evaluate", "start", "stop"]
        assert h.events[3] == ("start", 1, 1, 0)

    h.run(script)


def test_half_duplex_drop():
    """Bytes that arrive while a reply is being sent are dropped, and so is the rest of
    their frame (no reply to it), whether it ends during the reply or after it."""
    h = Harness(seed=6, divisor=8)

    async def script(h, ctx):
        req = P.build_request(1, P.OP_READ, P.pack_read(2, 0, 40))
        stop = P.slip_encode(P.build_request(2, P.OP_STOP))
        reply = h.model.request(req)
        h.expected.append(reply)
        n_wire = len(P.slip_encode(reply))
        await h.drive(ctx, P.slip_encode(req), model=False)
        await h.drive(ctx, stop, model=False)        # entirely into the reply
        while len(h.tx) < n_wire - 4:
            await ctx.delay(h.divisor * T)
        await h.drive(ctx, stop, model=False)        # starts in the reply, ends after it
        await ctx.delay(60 * h.divisor * T)
        assert len(h.replies) == 1
        await h.drive(ctx, stop)                     # now it is received

    h.run(script)


def _corrupt(rng, wire):
    kind = rng.choice(["flip", "flip", "drop", "insert", "truncate", "none"])
    w = bytearray(wire)
    if kind == "flip":
        for _ in range(rng.choice([1, 1, 2, 3])):
            w[rng.randrange(len(w))] ^= 1 << rng.randrange(8)
    elif kind == "drop":
        del w[rng.randrange(len(w))]
    elif kind == "insert":
        w.insert(rng.randrange(len(w) + 1), rng.choice([P.END, P.ESC, rng.randrange(256)]))
    elif kind == "truncate":
        w = w[:rng.randrange(1, len(w))]
    return bytes(w)


def _random_request(rng, seq):
    op = rng.choice([P.OP_READ, P.OP_WRITE, P.OP_WRITE, P.OP_START, P.OP_STOP, P.OP_STATUS,
                     P.OP_EVALUATE, P.OP_IDENTIFY])
    rid = rng.choice(list(WIDTH) + [4])
    w, depth = WIDTH.get(rid, 8), DEPTH.get(rid, 10)
    n = rng.randrange(1, 9)
    addr = rng.randrange(max(1, depth - n + 2))
    if op == P.OP_READ:
        body = P.pack_read(rid, addr, n)
    elif op == P.OP_WRITE:
        words = [rng.getrandbits(min(w + (rng.random() < 0.1), 8 * P.word_bytes(w)))
                 for _ in range(n)]
        body = P.pack_read(rid, addr, n) + b"".join(
            x.to_bytes(P.word_bytes(w), "little") for x in words)
    elif op == P.OP_START:
        body = P.pack_start(rng.choice([0, 1, 5]), rng.choice([0, 1, 64, 65]), rng.getrandbits(32))
    elif op == P.OP_IDENTIFY:
        body = P.pack_identify(rng.choice([0, 256, 500, len(BLOB) - 2]))
    else:
        body = b""
    return P.build_request(seq, op, body)


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(2, marks=pytest.mark.slow)])
def test_fault_injection(seed):
    """Random requests, many corrupted on the wire (bit flips, dropped or inserted bytes,
    truncations); retries re-send the same bytes, also after a good reply (as if it was
    lost: START/STOP/EVALUATE must not run twice). The device must answer exactly as the
    model, and never execute a corrupted frame."""
    rng = random.Random(seed)
    h = Harness(seed=seed + 10, max_delay=2)
    n_req = 40

    sent = set()

    async def script(h, ctx):
        seq = 0
        for _ in range(n_req):
            if rng.random() < 0.15:
                h.set_busy(ctx, rng.random() < 0.5)
            payload = _random_request(rng, seq)
            for attempt in range(4):
                wire = P.slip_encode(payload)
                if attempt < 3 and rng.random() < 0.5:
                    wire = _corrupt(rng, wire)
                sent.add(payload)
                n = len(h.expected)
                await h.drive(ctx, wire)
                mine = [P.parse_reply(r) for r in h.expected[n:]]
                if any(r.seq == seq and r.op == payload[1] and r.status not in
                       (P.BAD_FRAME, P.BAD_CRC) for r in mine) and rng.random() < 0.8:
                    break                                 # else: as if the reply was lost
            seq = (seq + 1) % 256
        await h.drive(ctx, bytes([P.END]))       # close whatever a truncation left open

    h.run(script, deadline=120.0)
    # the device did what the model did (checked by run); and every frame that got past
    # BAD_FRAME/BAD_CRC was an intact request: no corrupted frame was acted on
    statuses = [P.parse_reply(r).status for _, r in h.handled]
    for (f, _), st in zip(h.handled, statuses):
        if st not in (P.BAD_FRAME, P.BAD_CRC):
            assert f.error is None and f.payload in sent
    assert statuses.count(P.BAD_CRC) + statuses.count(P.BAD_FRAME) >= 5


def test_parameters():
    with pytest.raises(ValueError, match="divisor"):
        Link(BLOB, REGIONS, 3)
    with pytest.raises(ValueError, match="identify"):
        Link(b"", REGIONS, 4)
    with pytest.raises(ValueError, match="width"):
        Link(BLOB, [(0, "x", 0, 4)], 4)
    with pytest.raises(ValueError, match="duplicate"):
        Link(BLOB, [(0, "x", 8, 4), (0, "y", 8, 4)], 4)


def test_bus_widths_are_the_wire_format():
    """hw/bus.py takes the START and STATUS field widths and the region/address/word widths
    from golden/link.py."""
    members = ControlSignature.members
    for name, size in {**P.START_FIELDS, **P.STATUS_FIELDS}.items():
        assert Shape.cast(members[name].shape).width == 8 * size, name
    bus = MemBus.members
    assert [Shape.cast(bus[n].shape).width for n in ("cmd_region", "cmd_addr", "cmd_wdata")] \
        == [P.REGION_BITS, P.ADDR_BITS, P.WORD_BITS]
