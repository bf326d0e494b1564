# amaranth: UnusedElaboratable=no
"""hw/util/: the small gateware helpers (pipeline stages, constant comparisons, ROMs, the
registered read port, the LED square wave)."""

import itertools

import pytest
from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from lnsmadam.golden.format import pow2_table
from lnsmadam.hw.util.compare import ge_const, gt_const
from lnsmadam.hw.util.registered_read import RegisteredRead
from lnsmadam.hw.util.rom import rom, signed_rom
from lnsmadam.hw.util.square_wave import square_wave
from lnsmadam.hw.util.stages import Stages


def _run(dut, tb, clock=False):
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


# -- comparisons with a constant ------------------------------------------------------------
@pytest.mark.parametrize("width, is_signed", [(1, False), (4, False), (5, False), (2, True),
                                              (4, True), (5, True)])
@pytest.mark.parametrize("net", [False, True])
def test_compare_const_exhaustive(width, is_signed, net):
    """Every value of the input against every constant from below to above its range."""
    lo, hi = ((-(1 << (width - 1)), (1 << (width - 1)) - 1) if is_signed
              else (0, (1 << width) - 1))
    consts = list(range(lo - 2, hi + 3))
    m = Module()
    x = Signal(signed(width) if is_signed else width)
    # an expression as the input too, so that the net variant binds it first
    src = x if not net else (x + 0)[:width].as_signed() if is_signed else (x + 0)[:width]
    outs = []
    for c in consts:
        ge, gt = Signal(name=f"ge{len(outs)}"), Signal(name=f"gt{len(outs)}")
        m.d.comb += [ge.eq(ge_const(src, c, m if net else None)),
                     gt.eq(gt_const(src, c, m if net else None))]
        outs.append((c, ge, gt))
    bad = []

    async def tb(ctx):
        for v in range(lo, hi + 1):
            ctx.set(x, v)
            for c, ge, gt in outs:
                if (ctx.get(ge), ctx.get(gt)) != (int(v >= c), int(v > c)):
                    bad.append((v, c))

    _run(m, tb)
    assert bad == []


def test_compare_const_out_of_range_is_constant():
    x = Signal(4)
    assert isinstance(ge_const(x, 0), Const) and ge_const(x, 0).value == 1
    assert isinstance(ge_const(x, 16), Const) and ge_const(x, 16).value == 0
    assert isinstance(gt_const(x, -1), Const) and gt_const(x, -1).value == 1
    assert isinstance(gt_const(x, 15), Const) and gt_const(x, 15).value == 0


# -- pipeline stages ---------------------------------------------------------------------------
@pytest.mark.parametrize("enabled", [(), ("a",), ("b",), ("a", "b")])
def test_stages_delay_and_stall_together(enabled):
    """Each enabled cut delays the data and the travelling control bits by one advancing
    cycle; ``adv`` low holds everything."""
    m = Module()
    adv, valid, first, d_in = Signal(), Signal(), Signal(), Signal(8)
    st = Stages(m, adv, enabled, valid=valid, first=first)
    (a,) = st.cut("a", [d_in + 1])
    b = st.cut("b", {"x": a})["x"]
    out, o_valid, o_first = Signal(9), Signal(), Signal()
    m.d.comb += [out.eq(b), o_valid.eq(st.valid), o_first.eq(st.first)]
    depth = len(enabled)
    tick = Signal()                      # a sync domain also without any enabled cut
    m.d.sync += tick.eq(~tick)
    trace = []

    async def tb(ctx):
        for t, (v, f, go) in enumerate(itertools.islice(itertools.cycle(
                [(1, 1, 1), (1, 0, 1), (0, 0, 0), (1, 0, 1), (0, 1, 1)]), 24)):
            ctx.set(d_in, t), ctx.set(valid, v), ctx.set(first, f), ctx.set(adv, go)
            trace.append((ctx.get(out), ctx.get(o_valid), ctx.get(o_first), go, t, v, f))
            await ctx.tick()

    _run(m, tb, clock=True)
    # the beats accepted (adv high) come out in order, `depth` advancing cycles later
    accepted = [(t + 1, v, f) for (_, _, _, go, t, v, f) in trace if go]
    if depth == 0:
        assert all((o, ov, of) == (t + 1, v, f) for o, ov, of, _, t, v, f in trace)
    else:
        seen = [(o, ov, of) for o, ov, of, go, *_ in trace if go]
        assert seen[depth:] == accepted[:len(seen) - depth]
    assert st.enabled == set(enabled)


# -- constant tables -------------------------------------------------------------------------
class _Rom(wiring.Component):
    def __init__(self, table, index_bits):
        self.table = table
        super().__init__({"index": In(index_bits), "value": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.value.eq(rom(self.table, self.index))
        return m


@pytest.mark.parametrize("f, F", [(3, 8), (0, 4), (5, 12)])
def test_rom_returns_golden_table(f, F):
    table = pow2_table(f, F)
    dut = _Rom(table, max(f, 1) if f else 0)
    got = []

    async def tb(ctx):
        for i in range(len(table)):
            if f:
                ctx.set(dut.index, i)
            got.append(ctx.get(dut.value))

    _run(dut, tb)
    assert tuple(got) == table




@pytest.mark.parametrize("table", [[5], [-3, 0, 7, -8], [100, -100]])
def test_signed_rom(table):
    m = Module()
    index = Signal(range(max(len(table), 2)))
    value = Signal(signed(16))
    m.d.comb += value.eq(signed_rom(table, index))
    got = []

    async def tb(ctx):
        for i in range(len(table)):
            ctx.set(index, i)
            got.append(ctx.get(value))

    _run(m, tb)
    assert got == table


def test_rom_validation():
    with pytest.raises(ValueError, match="rom table"):
        rom([], Signal(2))
    with pytest.raises(ValueError, match="rom table"):
        rom([1, -1], Signal(1))


# -- the registered read port and the square wave ---------------------------------------------
def test_registered_read():
    """One cycle of latency, the old word on a same-address write (as in simulation; on an
    FPGA that read is undefined under no_rw_check), ``en`` low holds the data."""
    with pytest.raises(ValueError, match="no_rw_check"):
        RegisteredRead(Module(), Memory(shape=8, depth=4, init=[]))
    m = Module()
    mem = m.submodules.mem = Memory(shape=8, depth=4, init=[10, 11, 12, 13],
                                    attrs={"no_rw_check": 1})
    rd, wp = RegisteredRead(m, mem, "t", enable=True), mem.write_port()
    assert not hasattr(RegisteredRead(Module(), Memory(shape=8, depth=4, init=[],
                                                       attrs={"no_rw_check": 1})), "en")
    seen = []

    async def bench(ctx):
        ctx.set(rd.addr, 2)
        await ctx.tick()
        seen.append(ctx.get(rd.data))                        # 12
        ctx.set(wp.addr, 2), ctx.set(wp.data, 99), ctx.set(wp.en, 1)
        await ctx.tick()
        ctx.set(wp.en, 0)
        seen.append(ctx.get(rd.data))                        # old word 12
        await ctx.tick()
        seen.append(ctx.get(rd.data))                        # 99
        ctx.set(rd.en, 0), ctx.set(rd.addr, 3)
        await ctx.tick()
        seen.append(ctx.get(rd.data))                        # held 99
        ctx.set(rd.en, 1)
        await ctx.tick()
        seen.append(ctx.get(rd.data))                        # 13

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [12, 12, 99, 99, 13]


def test_square_wave_period():
    """The LED blinker toggles every clk_freq / (2 hz) cycles (3 Hz training LED, 1 Hz
    heartbeat)."""
    m = Module()
    out = Signal()
    m.d.comb += out.eq(square_wave(m, 1200, 50))       # toggles every 12 cycles
    edges = []

    async def bench(ctx):
        prev = ctx.get(out)
        for t in range(100):
            await ctx.tick()
            if ctx.get(out) != prev:
                edges.append(t)
                prev = ctx.get(out)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(edges) >= 7 and {b - a for a, b in zip(edges, edges[1:])} == {12}
