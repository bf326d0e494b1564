# amaranth: UnusedElaboratable=no
"""hw/shuffle.py: the on-device epoch order against golden.shuffle.epoch_order.

Every shuffle is read back in full through the read port and compared with the golden
permutation; the busy time is checked against ``Shuffler.cycles`` and ``done`` must be a
single-cycle pulse in the first idle cycle.
"""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from lnsmadam.golden.shuffle import epoch_order
from lnsmadam.hw.shuffle import Shuffler


async def shuffle(ctx, dut, n, seed, epoch):
    """Start a shuffle, wait for it, check the timing and ``done``; return the busy cycles."""
    ctx.set(dut.n, n)
    ctx.set(dut.seed, seed)
    ctx.set(dut.epoch, epoch)
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    ctx.set(dut.n, 0)               # latched: the inputs may change during the run
    ctx.set(dut.seed, 0)
    ctx.set(dut.epoch, 0)
    cycles = 0
    while ctx.get(dut.busy):
        assert not ctx.get(dut.done)
        await ctx.tick()
        cycles += 1
    assert ctx.get(dut.done)
    assert cycles == dut.cycles(n)
    await ctx.tick()
    assert not ctx.get(dut.done)
    return cycles


async def read_order(ctx, dut, n, addrs=None):
    out = []
    for a in (range(n) if addrs is None else addrs):
        ctx.set(dut.rd_addr, a)
        await ctx.tick()
        assert not ctx.get(dut.busy)
        out.append(ctx.get(dut.rd_data))
    return out


def run(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("n_max,cases", [
    (1, [(1, 0, 0), (0, 5, 5), (1, 2**32 - 1, 2**16 - 1)]),
    (2, [(2, s, e) for s in range(4) for e in range(2)] + [(1, 9, 9), (0, 0, 0)]),
    (64, [(64, 0, 0), (64, 0, 1), (63, 1, 0), (17, 2**32 - 1, 65535), (2, 3, 3),
          (64, 0, 65535)]),        # (0, 65535): the zero seeding input
    (1437, [(1437, 0, 0), (1000, 7, 29)]),
    (65535, [(300, 0xDEADBEEF, 12345)]),   # W = 16, the widest multiplier
])
def test_bit_exact(n_max, cases):
    dut = Shuffler(n_max)
    assert dut.cycles_per_element == n_max.bit_length() + 3

    async def tb(ctx):
        for n, seed, epoch in cases:
            await shuffle(ctx, dut, n, seed, epoch)
            got = await read_order(ctx, dut, n)
            assert got == epoch_order(n, seed, epoch).tolist(), (n, seed, epoch)

    run(dut, tb)


@pytest.mark.parametrize("n_max,cases", [
    (2, [(2, 1, 0), (1, 9, 9)]),
    (1437, [(1437, 0, 0), (777, 2**32 - 1, 65535)]),
    (65535, [(300, 0xDEADBEEF, 12345)]),
])
def test_fast_multiplier_bit_exact(n_max, cases):
    """``fast``: the element's multiply in one cycle, 4 cycles per element."""
    dut = Shuffler(n_max, fast=True)
    assert dut.cycles_per_element == 4

    async def tb(ctx):
        for n, seed, epoch in cases:
            await shuffle(ctx, dut, n, seed, epoch)
            got = await read_order(ctx, dut, n)
            assert got == epoch_order(n, seed, epoch).tolist(), (n, seed, epoch)

    run(dut, tb)


def test_restart():
    n_max = 50
    dut = Shuffler(n_max)
    a, b, c = (epoch_order(n_max, 3, e).tolist() for e in (0, 1, 2))

    async def tb(ctx):
        await shuffle(ctx, dut, n_max, 3, 0)
        assert await read_order(ctx, dut, 20) == a[:20]
        # restart while the consumer is reading
        ctx.set(dut.rd_addr, 20)
        await shuffle(ctx, dut, n_max, 3, 1)
        assert await read_order(ctx, dut, n_max, reversed(range(n_max))) == b[::-1]
        # restart while busy (mid-way through the elements): only the last run counts
        ctx.set(dut.n, n_max)
        ctx.set(dut.seed, 3)
        ctx.set(dut.epoch, 0)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(67 + 20 * dut.cycles_per_element + 2):
            await ctx.tick()
            assert ctx.get(dut.busy)
        await shuffle(ctx, dut, n_max, 3, 2)
        assert await read_order(ctx, dut, n_max) == c
        # a shorter order over a longer one: the first n entries are the new order
        await shuffle(ctx, dut, 7, 3, 2)
        assert await read_order(ctx, dut, 7) == epoch_order(7, 3, 2).tolist()
        # random access
        addrs = np.random.default_rng(0).integers(0, 7, 30).tolist()
        want = epoch_order(7, 3, 2)
        assert await read_order(ctx, dut, 7, addrs) == want[addrs].tolist()

    run(dut, tb)


def test_ports_and_params():
    dut = Shuffler(1437)
    assert dut.n.shape().width == 11 and dut.rd_addr.shape().width == 11
    assert dut.rd_data.shape().width == 11 and dut.seed.shape().width == 32
    assert dut.epoch.shape().width == 16
    assert dut.cycles(1437) == 67 + 1437 * 14 and dut.cycles(0) == 0
    assert Shuffler(1).rd_data.shape().width == 1
    assert Shuffler(256).rd_data.shape().width == 8
    verilog.convert(Shuffler(100), name="shuffler")
    for bad in (0, 65536, 2.0, True):
        with pytest.raises(ValueError, match="n_max"):
            Shuffler(bad)


@pytest.mark.slow
def test_n_max_65535():
    dut = Shuffler(65535)

    async def tb(ctx):
        await shuffle(ctx, dut, 65535, 1, 2)
        got = await read_order(ctx, dut, 65535)
        assert got == epoch_order(65535, 1, 2).tolist()

    run(dut, tb)
