# amaranth: UnusedElaboratable=no
"""hw/convert.py: ToLinear and FromLinear against golden.convert (exhaustive where feasible)."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from lnsmadam.golden.convert import from_linear, to_linear
from lnsmadam.golden.format import LNSFormat, midpoint_table
from lnsmadam.golden.mac import MACConfig
from lnsmadam.hw.convert import FromLinear, ToLinear

F8 = LNSFormat(8, 3)


def stream_through(dut, latency: int, inputs: dict, outputs: list) -> dict:
    """Apply one input vector per clock and collect the outputs ``latency`` cycles later.

    ``inputs`` maps ports to equal-length integer arrays; returns ``{port name: array}``.
    A combinational design (``latency == 0``) has no clock, so it is not ticked.
    """
    cols = [(getattr(dut, k), v.tolist()) for k, v in inputs.items()]
    n = len(cols[0][1])
    ports = [getattr(dut, name) for name in outputs]
    rows = []

    async def tb(ctx):
        for i in range(n + latency):
            if i < n:
                for port, vals in cols:
                    ctx.set(port, vals[i])
            if i >= latency:
                rows.append([ctx.get(p) for p in ports])
            if latency:
                await ctx.tick()

    sim = Simulator(dut)
    if latency:
        sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    arr = np.array(rows, dtype=np.int64).reshape(n, len(outputs))
    return {name: arr[:, j] for j, name in enumerate(outputs)}


class RoundTrip(wiring.Component):
    """Test harness: ToLinear -> FromLinear, with both intermediate and final results out."""

    def __init__(self, cfg: MACConfig, reg_to: bool, reg_from: bool):
        self.to = ToLinear(cfg.fmt, cfg.lut_frac, cfg.q_lo, cfg.window, registered=reg_to)
        self.fr = FromLinear(cfg.product_bits + 1, cfg.fmt.frac_bits, cfg.mid_bits, cfg.lsb_q,
                             registered=reg_from)
        self.latency = int(reg_to) + int(reg_from)
        self.lin_latency = int(reg_to)
        super().__init__({
            "p": In(self.to.p.shape()), "sign": In(1), "zero": In(1),
            "lin": Out(self.to.lin.shape()),
            "osign": Out(1), "x": Out(self.fr.x.shape()), "ozero": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.to = to = self.to
        m.submodules.fr = fr = self.fr
        m.d.comb += [to.p.eq(self.p), to.sign.eq(self.sign), to.zero.eq(self.zero),
                     self.lin.eq(to.lin), fr.S.eq(to.lin),
                     self.osign.eq(fr.sign), self.x.eq(fr.x), self.ozero.eq(fr.zero)]
        return m


def test_round_trip_exhaustive_8bit():
    """Every 8-bit operand pair's product exponent: ToLinear -> FromLinear (both registered,
    latency 2) gives golden's products and their from_linear, bit-exact; inside the window
    the exponent comes back unchanged."""
    cfg = MACConfig(fmt=F8)
    c = np.arange(256)
    A, B = (v.ravel() for v in np.meshgrid(c, c, indexing="ij"))
    sa, ea, za = F8.split(A)
    sb, eb, zb = F8.split(B)
    dut = RoundTrip(cfg, True, True)
    out = stream_through(dut, 2, {"p": ea + eb, "sign": sa ^ sb, "zero": (za | zb).astype(int)},
                         ["osign", "x", "ozero"])
    P = cfg.products(A, B)
    s, x, z = cfg.to_lns(P)
    assert np.array_equal(out["osign"], s)
    assert np.array_equal(out["x"], x)
    assert np.array_equal(out["ozero"], z)
    inside = ~(za | zb) & (((ea + eb) >> 3) >= cfg.q_lo)
    assert np.array_equal(out["x"][inside], (ea + eb)[inside])


def test_to_linear_exhaustive_8bit_products():
    """The linear word itself for all 2**16 pairs (combinational ToLinear)."""
    cfg = MACConfig(fmt=F8)
    c = np.arange(256)
    A, B = (v.ravel() for v in np.meshgrid(c, c, indexing="ij"))
    sa, ea, za = F8.split(A)
    sb, eb, zb = F8.split(B)
    dut = ToLinear(F8, cfg.lut_frac, cfg.q_lo, cfg.window)
    out = stream_through(dut, 0, {"p": ea + eb, "sign": sa ^ sb, "zero": (za | zb).astype(int)},
                         ["lin"])
    assert np.array_equal(out["lin"], cfg.products(A, B))


@pytest.mark.parametrize("bits, f, F, W, reg_to, reg_from", [
    (6, 2, 6, 8, False, True), (4, 1, 4, 4, True, False), (8, 3, 5, 31, False, False),
    (10, 4, 8, 12, True, True), (6, 0, 3, 9, False, True)])
def test_round_trip_other_formats(bits, f, F, W, reg_to, reg_from):
    fmt = LNSFormat(bits, f)
    cfg = MACConfig(fmt=fmt, lut_frac=F, window=W, acc_bits=F + W + 2)
    rng = np.random.default_rng(bits * 100 + W)
    p = np.arange(2, 2 * fmt.emax + 1)
    sign = rng.integers(0, 2, p.size)
    zero = (rng.random(p.size) < 0.1).astype(int)
    dut = RoundTrip(cfg, reg_to, reg_from)
    out = stream_through(dut, dut.latency, {"p": p, "sign": sign, "zero": zero},
                         ["osign", "x", "ozero"])
    lin = np.where(zero == 1, 0, to_linear(p, f, F, cfg.q_lo, W))
    lin = np.where(sign == 1, -lin, lin)
    s, x, z = from_linear(lin, cfg.lsb_q, f, cfg.mid_bits)
    assert np.array_equal(out["osign"], s) and np.array_equal(out["x"], x)
    assert np.array_equal(out["ozero"], z)
    inside = (zero == 0) & ((p >> f) >= cfg.q_lo)
    assert np.array_equal(x[inside], p[inside])
    # and the linear word on its own, at its own latency
    lin_out = stream_through(dut, dut.lin_latency, {"p": p, "sign": sign, "zero": zero},
                             ["lin"])["lin"]
    assert np.array_equal(lin_out, lin)


@pytest.mark.parametrize("f, F, q_lo, W, p_bits", [
    (3, 8, 0, 16, 12),      # the softmax use: q_lo = 0, exponents far below the window
    (2, 5, -5, 7, None),    # negative octaves
    (3, 6, 4, 1, 10),       # window of one octave: no shifter at all
    (0, 4, -3, 9, 8),       # gamma = 1: one-entry table
])
def test_to_linear_signed_exponents(f, F, q_lo, W, p_bits):
    fmt = LNSFormat(12, f)
    dut = ToLinear(fmt, F, q_lo, W, p_bits=p_bits)
    top = (q_lo + W) * (1 << f) - 1
    p = np.arange(-(1 << (dut.p_bits - 1)), top + 1)
    rng = np.random.default_rng(W)
    sign = rng.integers(0, 2, p.size)
    zero = (rng.random(p.size) < 0.05).astype(int)
    out = stream_through(dut, 0, {"p": p, "sign": sign, "zero": zero}, ["lin"])
    ref = np.where(zero == 1, 0, to_linear(p, f, F, q_lo, W))
    assert np.array_equal(out["lin"], np.where(sign == 1, -ref, ref))
    assert (ref[(p >> f) < q_lo] == 0).all()


def test_to_linear_signed_table_every_exponent_and_sign():
    """The sign folded into the table: every p of the default MAC (including those below the
    window, which must flush to exactly 0 for both signs) with sign 0 and 1, zero 0 and 1."""
    cfg = MACConfig(fmt=F8)
    dut = ToLinear(F8, cfg.lut_frac, cfg.q_lo, cfg.window)
    T = dut.table
    assert dut.signed_table == list(T) + [-t for t in T]
    p = np.arange(0, 8 * (cfg.q_lo + cfg.window))
    P, sign, zero = (v.ravel() for v in np.meshgrid(p, [0, 1], [0, 1], indexing="ij"))
    out = stream_through(dut, 0, {"p": P, "sign": sign, "zero": zero}, ["lin"])["lin"]
    ref = to_linear(P, 3, cfg.lut_frac, cfg.q_lo, cfg.window)
    ref = np.where(zero == 1, 0, np.where(sign == 1, -ref, ref))
    assert np.array_equal(out, ref)
    below = (P >> 3) < cfg.q_lo
    assert below.any() and (out[below] == 0).all()
    # the extremes of the signed word: +-T[7] << (window - 1)
    top = (P == p[-1]) & (zero == 0)
    assert sorted(out[top].tolist()) == [-(470 << 15), 470 << 15]


@pytest.mark.parametrize("pipeline, registered", [(0, True), (1, False), (2, True), (3, False),
                                                  (4, True)])
def test_from_linear_exhaustive_16bit(pipeline, registered):
    """Every 16-bit S through every pipeline depth, at latency ``pipeline + registered``,
    one input per clock, against golden from_linear."""
    S = np.arange(-(1 << 15), 1 << 15)
    dut = FromLinear(16, 3, 8, -8, registered=registered, pipeline=pipeline)
    assert dut.latency == pipeline + int(registered)
    assert dut.cuts == FromLinear.CUTS[:pipeline]
    out = stream_through(dut, dut.latency, {"S": S}, ["sign", "x", "zero"])
    s, x, z = from_linear(S, -8, 3, 8)
    assert np.array_equal(out["sign"], s)
    assert np.array_equal(out["x"], x)
    assert np.array_equal(out["zero"], z)


def corner_values(n: int, f: int, K: int) -> np.ndarray:
    """0, ±1, the extremes, and for several octaves every midpoint exactly, just below
    (one LSB of the compared mantissa less) and at the top of its truncated bits; the
    last midpoint is the carry into the next octave."""
    lo, hi = -(1 << (n - 1)), (1 << (n - 1)) - 1
    vals = {0, 1, -1, 2, -2, 3, hi, lo, hi - 1, lo + 1}
    for lz in sorted({0, 1, 2, K - 1, K, K + 1, K + 5, n // 2, n - 3, n - 2}):
        if not 0 <= lz <= n - 2:
            continue
        for mid in midpoint_table(f, K):
            if lz >= K:
                at = mid << (lz - K)
                vals |= {at, at - (1 << (lz - K)), at + (1 << (lz - K)) - 1, at - 1}
            else:                                  # the mantissa has fewer bits than K
                at = -(-mid >> (K - lz))           # smallest S whose mantissa reaches mid
                vals |= {at, at - 1}
    vals = np.array(sorted(vals), dtype=np.int64)
    vals = np.concatenate([vals, -vals])
    return vals[(vals >= lo) & (vals <= hi)]


@pytest.mark.parametrize("n, f, K, lsb_q, pipeline", [
    (40, 3, 30, -12, 0), (62, 4, 20, 5, 4), (63, 3, 40, 0, 2), (32, 3, 8, 8, 3),
    (32, 3, 8, 8, 0), (25, 5, 13, -100, 1)])
def test_from_linear_random_wide_and_corners(n, f, K, lsb_q, pipeline):
    rng = np.random.default_rng(n * K)
    # log-uniform magnitudes, so every octave of the word is exercised
    lz = rng.integers(0, n - 1, 20000)
    mag = (np.int64(1) << lz) | (rng.integers(0, 1 << 62, lz.size) & ((np.int64(1) << lz) - 1))
    S = np.where(rng.random(lz.size) < 0.5, -mag, mag)
    S = np.concatenate([corner_values(n, f, K), S])
    dut = FromLinear(n, f, K, lsb_q, pipeline=pipeline)
    out = stream_through(dut, pipeline, {"S": S}, ["sign", "x", "zero"])
    s, x, z = from_linear(S, lsb_q, f, K)
    assert np.array_equal(out["sign"], s)
    bad = np.flatnonzero(out["x"] != x)
    assert bad.size == 0, f"S={S[bad[0]]}: hw x={out['x'][bad[0]]}, golden {x[bad[0]]}"
    assert np.array_equal(out["zero"], z)


@pytest.mark.parametrize("n, f, K, lsb_q, pipeline", [
    (12, 4, 20, 0, 0), (12, 4, 20, 0, 4), (10, 0, 0, 3, 3), (11, 1, 0, -2, 2),
    (2, 0, 0, 0, 4), (2, 1, 3, 1, 0), (3, 1, 1, -1, 3), (5, 2, 3, 0, 1), (9, 3, 7, 2, 4)])
def test_from_linear_exhaustive_small(n, f, K, lsb_q, pipeline):
    """Mantissa wider than the word (K > n - 1), gamma = 1, K = 0, the narrowest words
    (one or two shifter levels, so the "half" cut sits before the first level) and a
    power-of-two-plus-one width, each through a pipeline depth."""
    S = np.arange(-(1 << (n - 1)), 1 << (n - 1))
    dut = FromLinear(n, f, K, lsb_q, registered=bool(n % 2), pipeline=pipeline)
    out = stream_through(dut, pipeline + n % 2, {"S": S}, ["sign", "x", "zero"])
    s, x, z = from_linear(S, lsb_q, f, K)
    assert np.array_equal(out["x"], x) and np.array_equal(out["sign"], s)
    assert np.array_equal(out["zero"], z)


def test_from_linear_carry_and_midpoints():
    """The golden worked cases: 491/256 >= MID[7] carries into the next octave."""
    S = np.array([491, 490, 268, 267, 256, -256, 0, 1, 279 << 13])
    out = stream_through(FromLinear(25, 3, 8, -8), 0, {"S": S}, ["sign", "x", "zero"])
    assert out["x"].tolist()[:8] == [8, 7, 1, 0, 0, 0, 0, -64]
    assert out["sign"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert out["zero"].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0]
    # docs/format.md section 5 example: lin = 279 << 13 at lsb_q = 8 is p = 233
    out = stream_through(FromLinear(25, 3, 8, 8), 0, {"S": S[-1:]}, ["x"])
    assert out["x"].tolist() == [233]


def test_widths():
    dut = ToLinear(F8, 8, 16, 16)
    assert dut.lin.shape().width == 25 and dut.lin.shape().signed
    assert dut.p.shape().signed and dut.p_bits == 9      # holds 0 .. 8 * 32 - 1 = 255
    fl = FromLinear(32, 3, 8, 8)
    assert fl.x.shape().signed
    assert fl.x.shape().width == FromLinear.x_bits_for(32, 3, 8)


def test_validation():
    with pytest.raises(ValueError, match="fmt must be an LNSFormat"):
        ToLinear(None, 8, 16, 16)
    with pytest.raises(ValueError, match=r"frac_bits must be in \[0, 12\]"):
        ToLinear(LNSFormat(16, 13), 14, 0, 4)         # the format itself stops at gamma 4096
    with pytest.raises(ValueError, match=r"window must be in \[1, 62\]"):
        ToLinear(F8, 8, 16, 0)
    with pytest.raises(ValueError, match="lut_frac \\+ window must be <= 62"):
        ToLinear(F8, 40, 0, 30)
    with pytest.raises(ValueError, match=r"p_bits must be in \[9, 64\]"):
        ToLinear(F8, 8, 16, 16, p_bits=8)
    with pytest.raises(ValueError, match=r"q_lo must be in"):
        ToLinear(F8, 8, 1 << 31, 16)
    with pytest.raises(ValueError, match="registered must be a bool"):
        ToLinear(F8, 8, 16, 16, registered="no")
    with pytest.raises(ValueError, match=r"acc_width must be in \[2, 63\]"):
        FromLinear(64, 3, 8, 0)
    with pytest.raises(ValueError, match=r"frac_bits must be in \[0, 12\]"):
        FromLinear(32, 13, 8, 0)
    with pytest.raises(ValueError, match=r"mid_bits must be in \[0, 40\]"):
        FromLinear(32, 3, 41, 0)
    with pytest.raises(ValueError, match=r"lsb_q must be an integer"):
        FromLinear(32, 3, 8, 0.5)
    with pytest.raises(ValueError, match=r"pipeline must be in \[0, 4\]"):
        FromLinear(32, 3, 8, 0, pipeline=5)
    with pytest.raises(ValueError, match=r"pipeline must be in \[0, 4\]"):
        FromLinear(32, 3, 8, 0, pipeline=-1)
