"""LNS multiply, conversions and the dot-product model: exhaustive at 8 bits, random beyond."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lnsmadam.golden.convert import bit_length, from_linear, to_linear
from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig, _matmul_replay, _matmul_separable, dot, matmul
from lnsmadam.golden.mul import mul

F8 = LNSFormat(8, 3)
ALL = np.arange(256)
A, B = np.meshgrid(ALL, ALL, indexing="ij")          # all 2**16 operand pairs


def test_product_exhaustive_against_float():
    """Every 8-bit pair: the product code is the float product re-encoded (error bound 0).

    With operand bias 0 and shift = emax the result bias is emax; the float reference
    encodes decode(a) * decode(b) with that bias. The product is exact in the log domain,
    so the two agree on every pair, saturated and flushed ones included.
    """
    got = mul(A, B, F8)
    ref = F8.encode(F8.decode(A) * F8.decode(B), bias=F8.emax)
    assert np.array_equal(got, ref)
    # corners, listed explicitly
    neg = 1 << 7
    assert mul(0, 127, F8) == 0 and mul(neg, 127, F8) == 0       # ZERO absorbs
    assert mul(127, 127, F8) == 127                              # max*max -> max
    assert mul(127 | neg, 127, F8) == 127 | neg                  # sign xor
    assert mul(127 | neg, 127 | neg, F8) == 127
    assert mul(1, 127, F8) == 1 and mul(1, 126, F8) == 0          # flush below E=1
    assert mul(127, 127, F8, shift=100) == 127                   # saturation


def test_product_shift_and_bias_bookkeeping():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, 1000), rng.integers(0, 256, 1000)
    ba, bb, sh = -120, -100, 90
    got = F8.decode(mul(a, b, F8, shift=sh), ba + bb + sh)
    ref = F8.quantize(F8.decode(a, ba) * F8.decode(b, bb), ba + bb + sh)
    assert np.array_equal(got, ref)


def test_round_trip_exhaustive():
    """LNS -> linear -> LNS over all 2**16 operand products (default MAC, window 16).

    Inside the window the round trip returns the exact product exponent; the linear value
    is within the table's rounding, |lin/exact - 1| <= 2**-(F+1); below the window it is 0.
    """
    cfg = MACConfig(fmt=F8)
    P = cfg.products(A, B)
    sa, ea, za = F8.split(A)
    sb, eb, zb = F8.split(B)
    p = ea + eb
    live = ~(za | zb)
    inside = live & ((p >> 3) >= cfg.q_lo)
    s, x, z = cfg.to_lns(P)
    assert np.array_equal(x[inside], p[inside])
    assert np.array_equal(s[inside], (sa ^ sb)[inside])
    assert not z[inside].any()
    assert (P[~inside] == 0).all() and z[~inside].all()
    exact = 2.0 ** (p[inside] / 8.0)
    rel = np.abs(np.abs(cfg.value(P[inside])) / exact - 1)
    assert rel.max() <= 2.0 ** -(cfg.lut_frac + 1)


@pytest.mark.parametrize("bits, f, F, W", [(8, 3, 8, 16), (6, 2, 6, 8), (4, 1, 4, 4),
                                           (8, 3, 5, 31), (10, 4, 8, 12)])
def test_round_trip_other_formats(bits, f, F, W):
    fmt = LNSFormat(bits, f)
    cfg = MACConfig(fmt=fmt, lut_frac=F, window=W, acc_bits=F + W + 2)
    p = np.arange(2, 2 * fmt.emax + 1)
    lin = to_linear(p, f, F, cfg.q_lo, W)
    s, x, z = from_linear(lin, cfg.lsb_q, f, cfg.mid_bits)
    inside = (p >> f) >= cfg.q_lo
    assert np.array_equal(x[inside], p[inside]) and z[~inside].all()


def test_from_linear_carry_and_midpoints():
    # 8 fraction bits, gamma 8: mantissa 491/256 >= MID[7] carries into the next octave
    s, x, z = from_linear(np.array([491, 490, 268, 267, 256, -256, 0, 1]), -8, 3, 8)
    assert list(x[:6]) == [8, 7, 1, 0, 0, 0]
    assert list(s) == [0, 0, 0, 0, 0, 1, 0, 0]
    assert list(z) == [0, 0, 0, 0, 0, 0, 1, 0]
    assert x[7] == 8 * (0 - 8)               # S = 1 -> 2**-8 exactly


def test_from_linear_matches_float_nearest_in_log():
    rng = np.random.default_rng(3)
    S = rng.integers(-(1 << 40), 1 << 40, 20000)
    s, x, z = from_linear(S, -12, 3, 30)
    ref = np.rint(8 * np.log2(np.abs(S.astype(np.float64)) * 2.0**-12))
    assert np.array_equal(x, ref.astype(np.int64))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 62) - 1))
def test_bit_length(v):
    assert bit_length(np.array([v]))[0] == v.bit_length()


# -- the accumulator ----------------------------------------------------------------
def _ref_dot(a, b, cfg):
    """Scalar reference: Python ints, one product at a time, lane groups, saturation."""
    prods = [int(cfg.products(int(x), int(y))) for x, y in zip(a, b)]
    lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    acc = 0
    for c in range(0, len(prods), cfg.lanes):
        acc += sum(prods[c:c + cfg.lanes])
        if cfg.saturate:
            acc = min(max(acc, lo), hi)
        else:
            acc = ((acc - lo) % (1 << cfg.acc_bits)) + lo
    return acc


CONFIGS = [MACConfig(), MACConfig(lanes=8), MACConfig(fmt=LNSFormat(6, 2), lut_frac=6, window=8,
                                                      acc_bits=16, lanes=4),
           MACConfig(acc_bits=25, lanes=4), MACConfig(acc_bits=25, saturate=False),
           MACConfig(acc_bits=25, lanes=3)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"b{c.fmt.bits}_acc{c.acc_bits}_l{c.lanes}_s{int(c.saturate)}")
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_dot_matches_scalar_reference(cfg, data):
    k = data.draw(st.integers(1, 70))
    top = cfg.fmt.ncodes - 1
    # bias the draw towards large magnitudes and one sign, so saturation really happens
    big = st.integers(cfg.fmt.emax - 10, cfg.fmt.emax)
    code = st.one_of(st.integers(0, top), big, big.map(lambda e: e | (1 << (cfg.fmt.bits - 1))),
                     st.just(0))
    a = np.array(data.draw(st.lists(code, min_size=k, max_size=k)))
    b = np.array(data.draw(st.lists(code, min_size=k, max_size=k)))
    assert dot(a, b, cfg) == _ref_dot(a, b, cfg)


def test_saturation_and_wrap_corners():
    cfg = MACConfig(acc_bits=25, lanes=1)
    hi = (1 << 24) - 1
    a = np.full(40, 127)
    assert dot(a, a, cfg) == hi                                   # saturates high
    assert dot(a | 128, a, cfg) == -(1 << 24)                     # saturates low
    # cancellation after saturation is order dependent: +,+,...,-,- ends below the true sum
    x = np.array([127] * 40 + [127 | 128])
    assert dot(x, np.full(41, 127), cfg) == hi - (431 << 15)
    wrap = MACConfig(acc_bits=25, saturate=False)
    true = 40 * (431 << 15)          # p = 254: q = 31, r = 6, T[6] = 431
    assert dot(a, a, wrap) == ((true + (1 << 24)) % (1 << 25)) - (1 << 24)
    # exact cancellation
    assert dot(np.array([127, 127 | 128]), np.array([100, 100]), cfg) == 0
    assert dot(np.zeros(8, int), np.full(8, 127), cfg) == 0


def test_matmul_equals_dots_and_float():
    rng = np.random.default_rng(5)
    cfg = MACConfig(lanes=8)
    a = rng.integers(0, 256, (7, 33))
    b = rng.integers(0, 256, (33, 5))
    R = matmul(a, b, cfg)
    for i in range(7):
        for j in range(5):
            assert R[i, j] == _ref_dot(a[i], b[:, j], cfg)
    # against float: error bounded by table rounding plus the truncated products
    fa, fb = F8.decode(a), F8.decode(b)
    ref = fa @ fb
    tol = np.abs(fa) @ np.abs(fb) * 2.0**-9 + 33 * 2.0 ** (cfg.q_lo + 1)
    assert (np.abs(cfg.value(R) - ref) <= tol).all()


def test_for_format_fits_small_formats():
    assert MACConfig.for_format(F8) == MACConfig()
    c4 = MACConfig.for_format(LNSFormat(4, 1))
    assert c4.window == 7 and c4.q_lo == 1
    c16 = MACConfig.for_format(LNSFormat(16, 10), lanes=4)
    assert c16.window == 16 and c16.lut_frac == 11 and c16.lanes == 4


def test_mac_config_validation():
    with pytest.raises(ValueError, match="acc_bits"):
        MACConfig(acc_bits=20)
    with pytest.raises(ValueError, match="window"):
        MACConfig(window=40)
    with pytest.raises(ValueError, match="lanes"):
        MACConfig(lanes=0)
    with pytest.raises(ValueError, match="lut_frac"):
        MACConfig(lut_frac=3)
    with pytest.raises(ValueError, match="saturate"):
        MACConfig(saturate="yes")
    with pytest.raises(ValueError, match=r"\(M, K\)"):
        matmul(np.zeros((2, 3), int), np.zeros((2, 3), int), MACConfig())
    with pytest.raises(ValueError, match=r"a must be in \[0, 255\]"):
        matmul(np.full((1, 1), 300), np.zeros((1, 1), int), MACConfig())


@pytest.mark.parametrize("cfg", CONFIGS + [MACConfig(window=4, acc_bits=20),
                                           MACConfig(fmt=LNSFormat(10, 4), lut_frac=8, window=20,
                                                     acc_bits=40)],
                         ids=lambda c: f"b{c.fmt.bits}_w{c.window}_acc{c.acc_bits}_l{c.lanes}_s{int(c.saturate)}")
def test_separable_and_replay_strategies_agree(cfg):
    """The BLAS (separable + window correction) strategy equals the product-by-product
    replay on random and max-scaled operands; where saturation is possible it declines."""
    rng = np.random.default_rng(cfg.acc_bits * 7 + cfg.lanes)
    fmt = cfg.fmt
    for m, k, n in [(1, 1, 1), (3, 70, 5), (40, 64, 33), (64, 65, 16)]:
        a = rng.integers(0, fmt.ncodes, (m, k))
        b = rng.integers(0, fmt.ncodes, (k, n))
        g = rng.standard_normal((m, k))
        ag = fmt.encode(g, fmt.bias_for_max(np.abs(g).max()))
        for x in (a, ag):
            ref = _matmul_replay(x, b, cfg, 1 << 20)
            sep = _matmul_separable(x, b, cfg, max_low=1.0)   # force the correction path
            if sep is None:
                # declined: only when the sums could exceed 2**53 or saturation is possible
                big = cfg.lut_frac + 2 + cfg.q_top + max(1, (k - 1).bit_length()) >= 53
                assert big or (cfg.saturate and cfg.acc_bits < cfg.exact_acc_bits(k))
            else:
                assert np.array_equal(sep, ref)
            assert np.array_equal(matmul(x, b, cfg), ref)
