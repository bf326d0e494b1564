# amaranth: UnusedElaboratable=no
"""hw/uart.py: 8N1 receiver and transmitter in the Amaranth simulator."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from lnsmadam.hw.uart import UARTRx, UARTTx


async def drive_byte(ctx, pin, byte, divisor, stop=1, bit_time=None):
    """Drive one 8N1 character on ``pin`` (``bit_time`` clocks per bit, default divisor)."""
    t = divisor if bit_time is None else bit_time
    for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
        ctx.set(pin, bit)
        await ctx.tick().repeat(t)
    ctx.set(pin, 1)


def run(dut, *benches, deadline=200_000):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for b in benches:
        sim.add_testbench(b)

    async def watchdog(ctx):
        # background benches use plain awaits only: a `repeat`/`until` left pending at the
        # end of the simulation leaks an async generator
        await ctx.delay(deadline * 1e-6)
        raise AssertionError("simulation deadline")

    sim.add_testbench(watchdog, background=True)
    sim.run()


class Loop:
    """UARTTx wired to UARTRx."""

    def __init__(self, divisor):
        self.m = Module()
        self.tx = self.m.submodules.tx = UARTTx(divisor)
        self.rx = self.m.submodules.rx = UARTRx(divisor)
        self.m.d.comb += self.rx.rx.eq(self.tx.tx)


@pytest.mark.parametrize("divisor", [4, 5, 7, 16])
def test_loopback_back_to_back(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(40)]
    lp = Loop(divisor)
    got, errors = [], []

    async def send(ctx):
        for b in data:
            ctx.set(lp.tx.i.payload, b)
            ctx.set(lp.tx.i.valid, 1)
            await ctx.tick().until(lp.tx.i.ready)
        ctx.set(lp.tx.i.valid, 0)

    async def recv(ctx):
        ctx.set(lp.rx.o.ready, 1)
        cycle = 0
        while len(got) < len(data):
            _, _, valid, payload, fe, ov = await ctx.tick().sample(
                lp.rx.o.valid, lp.rx.o.payload, lp.rx.frame_error, lp.rx.overrun)
            cycle += 1
            if valid:
                got.append((cycle, payload))
            if fe or ov:
                errors.append(cycle)

    run(lp.m, send, recv)
    assert [b for _, b in got] == data and not errors
    gaps = {b - a for (a, _), (b, _) in zip(got, got[1:])}
    assert gaps == {10 * divisor}           # back to back: one byte every 10 bit times


@pytest.mark.parametrize("divisor", [4, 6])
def test_loopback_with_idle_gaps(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(12)]
    lp = Loop(divisor)
    got = []

    async def send(ctx):
        for b in data:
            ctx.set(lp.tx.i.payload, b)
            ctx.set(lp.tx.i.valid, 1)
            await ctx.tick().until(lp.tx.i.ready)
            ctx.set(lp.tx.i.valid, 0)
            await ctx.tick().repeat(rng.randrange(1, 30 * divisor))

    async def recv(ctx):
        ctx.set(lp.rx.o.ready, 1)
        while len(got) < len(data):
            _, _, valid, payload = await ctx.tick().sample(lp.rx.o.valid, lp.rx.o.payload)
            if valid:
                got.append(payload)

    run(lp.m, send, recv)
    assert got == data


@pytest.mark.parametrize("divisor", [4, 9])
def test_tx_waveform(divisor):
    dut = UARTTx(divisor)
    wave = []

    async def bench(ctx):
        assert ctx.get(dut.tx) == 1 and ctx.get(dut.i.ready) == 1
        ctx.set(dut.i.payload, 0b1011_0010)
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(12 * divisor):
            wave.append(ctx.get(dut.tx))
            await ctx.tick()

    run(dut, bench)
    bits = [0, 0, 1, 0, 0, 1, 1, 0, 1, 1]
    assert wave[:10 * divisor] == [b for b in bits for _ in range(divisor)]
    assert set(wave[10 * divisor:]) == {1}


def _rx_bench(dut, divisor, script, take=True):
    """Run ``script(ctx)`` driving ``dut.rx``; collect (byte | 'fe' | 'ov') events."""
    events = []

    async def mon(ctx):
        ctx.set(dut.o.ready, 1 if take else 0)
        while True:
            _, _, valid, ready, payload, fe, ov = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload, dut.frame_error, dut.overrun)
            if valid and ready:
                events.append(payload)
            if fe:
                events.append("fe")
            if ov:
                events.append("ov")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(mon, background=True)
    sim.add_testbench(script)
    sim.run()
    return events


@pytest.mark.parametrize("divisor", [4, 8, 50])
def test_rx_frame_error_and_recovery(divisor):
    dut = UARTRx(divisor)

    async def script(ctx):
        await ctx.tick().repeat(3)
        await drive_byte(ctx, dut.rx, 0x3C, divisor)
        await drive_byte(ctx, dut.rx, 0x81, divisor, stop=0)     # bad stop bit
        ctx.set(dut.rx, 0)                                        # and a break after it
        await ctx.tick().repeat(25 * divisor)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(2 * divisor)
        await drive_byte(ctx, dut.rx, 0xC3, divisor)
        await ctx.tick().repeat(3 * divisor)

    assert _rx_bench(dut, divisor, script) == [0x3C, "fe", 0xC3]


@pytest.mark.parametrize("divisor", [4, 50])
def test_rx_glitch_and_rate_tolerance(divisor):
    dut = UARTRx(divisor)

    async def script(ctx):
        await ctx.tick().repeat(3)
        ctx.set(dut.rx, 0)                                        # glitch shorter than half a bit
        await ctx.tick().repeat(divisor // 2 - 1)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(2 * divisor)
        for b, t in [(0xA5, divisor), (0x5A, divisor)]:
            await drive_byte(ctx, dut.rx, b, divisor, bit_time=t)
        if divisor >= 50:                                         # +-4 % off the nominal rate
            await drive_byte(ctx, dut.rx, 0x96, divisor, bit_time=divisor + 2)
            await drive_byte(ctx, dut.rx, 0x69, divisor, bit_time=divisor - 2)
        await ctx.tick().repeat(3 * divisor)

    want = [0xA5, 0x5A] + ([0x96, 0x69] if divisor >= 50 else [])
    assert _rx_bench(dut, divisor, script) == want


def test_rx_overrun_keeps_first_byte():
    divisor = 4
    dut = UARTRx(divisor)
    seen = []

    async def script(ctx):
        await ctx.tick().repeat(3)
        await drive_byte(ctx, dut.rx, 0x11, divisor)
        await drive_byte(ctx, dut.rx, 0x22, divisor)              # not taken: overrun
        await ctx.tick().repeat(2 * divisor)
        seen.append((ctx.get(dut.o.valid), ctx.get(dut.o.payload)))
        ctx.set(dut.o.ready, 1)
        await ctx.tick()
        ctx.set(dut.o.ready, 0)
        await drive_byte(ctx, dut.rx, 0x33, divisor)
        await ctx.tick().repeat(2 * divisor)
        seen.append((ctx.get(dut.o.valid), ctx.get(dut.o.payload)))

    assert _rx_bench(dut, divisor, script, take=False) == ["ov", 0x11]
    assert seen == [(1, 0x11), (1, 0x33)]


def test_rx_byte_taken_during_next_is_still_an_overrun():
    """The held byte is the receive shift register: if it is taken only after the next
    start bit was confirmed, that next byte is dropped (overrun) all the same."""
    divisor = 4
    dut = UARTRx(divisor)
    seen = []

    async def script(ctx):
        await ctx.tick().repeat(3)
        await drive_byte(ctx, dut.rx, 0x11, divisor)
        await ctx.tick().repeat(2)
        ctx.set(dut.rx, 0)                                        # start bit of 0x22 ...
        await ctx.tick().repeat(2 * divisor)
        ctx.set(dut.o.ready, 1)                                   # ... then 0x11 is taken
        await ctx.tick()
        ctx.set(dut.o.ready, 0)
        for bit in [(0x22 >> i) & 1 for i in range(1, 8)] + [1]:
            ctx.set(dut.rx, bit)
            await ctx.tick().repeat(divisor)
        await ctx.tick().repeat(2 * divisor)
        seen.append(ctx.get(dut.o.valid))

    assert _rx_bench(dut, divisor, script, take=False) == [0x11, "ov"]
    assert seen == [0]


def test_divisor_range():
    for bad in (3, 65536, 4.0):
        with pytest.raises(ValueError, match="divisor"):
            UARTRx(bad)
        with pytest.raises(ValueError, match="divisor"):
            UARTTx(bad)
