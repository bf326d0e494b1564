# amaranth: UnusedElaboratable=no
"""hw/format.py: the LNS word layout, the ZERO test and requantisation, against golden."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.hw.format import Requantize, check_bool, is_zero, lns_layout, signed_bits

FORMATS = [LNSFormat(8, 3), LNSFormat(6, 2, underflow="min"), LNSFormat(3, 0),
           LNSFormat(12, 7, underflow="min")]


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()


class _Split(wiring.Component):
    """Test harness: a raw word viewed as an LNS code, its fields and the ZERO test."""

    def __init__(self, fmt):
        self.layout = lns_layout(fmt)
        super().__init__({"word": In(fmt.bits), "exp": Out(fmt.exp_bits), "sign": Out(1),
                          "zero": Out(1)})

    def elaborate(self, platform):
        m = Module()
        view = data.View(self.layout, self.word)
        m.d.comb += [self.exp.eq(view.exp), self.sign.eq(view.sign),
                     self.zero.eq(is_zero(view))]
        return m


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"b{f.bits}f{f.frac_bits}")
def test_layout_is_the_golden_code(fmt):
    layout = lns_layout(fmt)
    assert layout.size == fmt.bits
    assert list(layout) == [("exp", layout["exp"]), ("sign", layout["sign"])]
    assert layout["exp"].offset == 0 and layout["sign"].offset == fmt.bits - 1
    codes = np.arange(min(fmt.ncodes, 1 << 10))
    codes = np.concatenate([codes, np.arange(fmt.ncodes - 256, fmt.ncodes)]) \
        if fmt.ncodes > 1024 else codes
    s, e, z = fmt.split(codes)
    dut = _Split(fmt)
    got = []

    async def tb(ctx):
        for c in codes.tolist():
            ctx.set(dut.word, c)
            got.append((ctx.get(dut.sign), ctx.get(dut.exp), ctx.get(dut.zero)))

    _run(dut, tb)
    assert got == list(zip(s.tolist(), e.tolist(), z.astype(int).tolist()))
    # a constant built from fields packs to the golden code (non-zero codes)
    for sign, exp in [(0, 1), (1, 1), (1, fmt.emax), (0, fmt.emax // 2)]:
        assert layout.const({"exp": exp, "sign": sign}).as_value().value == fmt.join(sign, exp)


def _requant_case(fmt, x_bits, bias_bits, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << (x_bits - 1)), 1 << (x_bits - 1), n)
    bias = rng.integers(-(1 << (bias_bits - 1)), 1 << (bias_bits - 1), n)
    # steer most cases near the saturation and underflow edges: E = x - bias in -3..emax+3
    near = rng.random(n) < 0.7
    e_near = rng.choice(np.r_[-3:4, fmt.emax - 3:fmt.emax + 4], n)
    bias = np.where(near, np.clip(x - e_near, -(1 << (bias_bits - 1)), (1 << (bias_bits - 1)) - 1),
                    bias)
    sign = rng.integers(0, 2, n)
    zero = rng.random(n) < 0.1
    return sign, x, zero, bias


@pytest.mark.parametrize("fmt, x_bits, bias_bits", [
    (LNSFormat(8, 3), 16, 32),
    (LNSFormat(6, 2, underflow="min"), 10, 8),
    (LNSFormat(12, 7, underflow="min"), 20, 20),
    (LNSFormat(3, 0), 4, 3),
], ids=["f8", "f6min", "f12min", "f3"])
def test_requantize_matches_from_exponent(fmt, x_bits, bias_bits):
    sign, x, zero, bias = _requant_case(fmt, x_bits, bias_bits, 4000, fmt.bits)
    # plus every x for a few biases (exhaustive over the small widths)
    xs = np.arange(-(1 << (x_bits - 1)), 1 << (x_bits - 1))[:4096]
    for b in (0, 1, -1):
        sign = np.r_[sign, xs & 1]
        x = np.r_[x, xs]
        zero = np.r_[zero, np.zeros(len(xs), bool)]
        bias = np.r_[bias, np.full(len(xs), b)]
    ref = np.array([fmt.from_exponent(s, xx, z, bias=int(b))
                    for s, xx, z, b in zip(sign, x, zero, bias)])
    dut = Requantize(fmt, x_bits=x_bits, bias_bits=bias_bits)
    got = []

    async def tb(ctx):
        code = dut.code.as_value()
        for s, xx, z, b in zip(sign.tolist(), x.tolist(), zero.tolist(), bias.tolist()):
            ctx.set(dut.sign, s)
            ctx.set(dut.x, xx)
            ctx.set(dut.zero, int(z))
            ctx.set(dut.bias, b)
            got.append(ctx.get(code))

    _run(dut, tb)
    assert np.array_equal(np.array(got), ref)


def test_signed_bits():
    assert signed_bits(0) == 1
    assert signed_bits(-1) == 1
    assert signed_bits(1) == 2
    assert signed_bits(127, -128) == 8
    assert signed_bits(128) == 9
    assert signed_bits(0, 255) == 9


def test_validation():
    with pytest.raises(ValueError, match="fmt must be an LNSFormat"):
        lns_layout((8, 3))
    with pytest.raises(ValueError, match=r"x_bits must be in \[2, 64\]"):
        Requantize(LNSFormat(8, 3), x_bits=1)
    with pytest.raises(ValueError, match=r"bias_bits must be in \[2, 64\]"):
        Requantize(LNSFormat(8, 3), bias_bits=65)
    with pytest.raises(ValueError, match="registered must be a bool"):
        check_bool("registered", 1)
