# amaranth: UnusedElaboratable=no
"""hw/mul.py: LNSMul against golden.mul, exhaustive over every operand pair of small formats."""

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mul import mul
from lnsmadam.hw.mul import LNSMul

F8 = LNSFormat(8, 3)


def run_pairs(dut: LNSMul, a, b) -> np.ndarray:
    """Drive one operand pair per clock; return the products, aligned to the inputs."""
    out = []
    av, bv, pv = dut.a.as_value(), dut.b.as_value(), dut.p.as_value()

    async def tb(ctx):
        for x, y in zip(a.tolist(), b.tolist()):
            ctx.set(av, x)
            ctx.set(bv, y)
            if dut.registered:
                await ctx.tick()             # latency 1: this pair's product is now visible
            out.append(ctx.get(pv))

    sim = Simulator(dut)
    if dut.registered:                       # a combinational design has no clock domain
        sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return np.array(out)


def all_pairs(fmt):
    c = np.arange(fmt.ncodes)
    A, B = np.meshgrid(c, c, indexing="ij")
    return A.ravel(), B.ravel()


def test_exhaustive_8bit_gamma8():
    """All 2**16 pairs of the 8-bit gamma = 8 format, default shift, registered (1 cycle)."""
    a, b = all_pairs(F8)
    got = run_pairs(LNSMul(F8), a, b)
    ref = mul(a, b, F8)
    bad = np.flatnonzero(got != ref)
    assert bad.size == 0, f"{bad.size} mismatches, first a={a[bad[0]]} b={b[bad[0]]}: " \
                          f"hw {got[bad[0]]} golden {ref[bad[0]]}"


@pytest.mark.parametrize("fmt, shift, registered", [
    (F8, 100, False),                                # shift below emax: saturation is common
    (F8, 0, True),                                   # nothing flushes
    (LNSFormat(6, 2), None, False),
    (LNSFormat(6, 2, underflow="min"), 40, True),    # underflow clamps to E = 1
    (LNSFormat(3, 0, underflow="min"), -2, False),   # negative shift: everything saturates
    (LNSFormat(4, 1), 1 << 30, True),                # extreme shift: everything flushes
], ids=["f8_s100", "f8_s0", "f6", "f6min_s40", "f3min_sneg", "f4_shuge"])
def test_exhaustive_other_formats_and_shifts(fmt, shift, registered):
    a, b = all_pairs(fmt)
    got = run_pairs(LNSMul(fmt, shift=shift, registered=registered), a, b)
    assert np.array_equal(got, mul(a, b, fmt, shift=shift))


def test_random_wide_format():
    fmt = LNSFormat(16, 7, underflow="min")
    rng = np.random.default_rng(16)
    a = rng.integers(0, fmt.ncodes, 20000)
    b = rng.integers(0, fmt.ncodes, 20000)
    a[:4], b[:4] = [0, 1 << 15, fmt.emax, fmt.emax | 1 << 15], [fmt.emax, fmt.emax, 1, fmt.emax]
    got = run_pairs(LNSMul(fmt, shift=fmt.emax + 7), a, b)
    assert np.array_equal(got, mul(a, b, fmt, shift=fmt.emax + 7))


def test_corners():
    neg = 1 << 7
    a = np.array([0, neg, 127, 127 | neg, 127 | neg, 1, 1, 64, 64 | neg])
    b = np.array([127, 127, 127, 127, 127 | neg, 127, 126, 63 | neg, 63])
    got = run_pairs(LNSMul(F8), a, b)
    # ZERO absorbs (either sign), max*max = max, sign xor, flush below E = 1 with a clear
    # sign bit (canonical ZERO)
    assert got.tolist() == [0, 0, 127, 127 | neg, 127, 1, 0, 0, 0]
    assert np.array_equal(got, mul(a, b, F8))


def test_latency():
    """Registered: the output changes only at the clock edge; combinational: at once."""
    for registered in (True, False):
        dut = LNSMul(F8, registered=registered)
        seen = []

        async def tb(ctx):
            ctx.set(dut.a.as_value(), 127)
            ctx.set(dut.b.as_value(), 127)
            seen.append(ctx.get(dut.p.as_value()))
            if registered:
                await ctx.tick()
                seen.append(ctx.get(dut.p.as_value()))

        sim = Simulator(dut)
        if registered:
            sim.add_clock(1e-6)
        sim.add_testbench(tb)
        sim.run()
        assert seen == ([0, 127] if registered else [127])


def test_ports_and_rtlil():
    dut = LNSMul(LNSFormat(10, 4))
    assert dut.a.shape().size == 10 and dut.p.shape().size == 10
    assert "module" in rtlil.convert(dut)


def test_validation():
    with pytest.raises(ValueError, match="fmt must be an LNSFormat"):
        LNSMul("lns8")
    with pytest.raises(ValueError, match=r"shift must be in \[-1073741824, 1073741824\]"):
        LNSMul(F8, shift=1 << 31)
    with pytest.raises(ValueError, match="shift must be an integer"):
        LNSMul(F8, shift=1.5)
    with pytest.raises(ValueError, match="registered must be a bool"):
        LNSMul(F8, registered=1)
