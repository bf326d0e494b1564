"""golden/fpmac.py: FP8 codes and the FP8 dot-product unit's products and accumulator,
exhaustively over every operand pair of every format combination."""

import numpy as np
import pytest

from lnsmadam.golden.fpmac import (E4M3, E5M2, FP8MACConfig, decode_fp8, encode_fp8,
                                   encode_tensor)

PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]
A, B = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")


def test_decode_special_values():
    assert decode_fp8(0x7E, "e4m3") == 448 and decode_fp8(0xFE, "e4m3") == -448
    assert np.isnan(decode_fp8(0x7F, "e4m3")) and np.isnan(decode_fp8(0xFF, "e4m3"))
    assert decode_fp8(0x01, "e4m3") == 2.0 ** -9                       # smallest subnormal
    assert decode_fp8(0x7B, "e5m2") == 57344
    assert decode_fp8(0x7C, "e5m2") == np.inf and decode_fp8(0xFC, "e5m2") == -np.inf
    assert np.isnan(decode_fp8(0x7D, "e5m2"))
    assert decode_fp8(0x01, "e5m2") == 2.0 ** -16
    assert E4M3.max_value == 448 and E5M2.max_value == 57344
    assert np.signbit(decode_fp8(0x80, "e4m3"))


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_encode_every_code_and_ties(fmt):
    codes = np.arange(256)
    v = decode_fp8(codes, fmt)
    ok = np.isfinite(v)
    assert np.array_equal(encode_fp8(v[ok], fmt), codes[ok])           # exact round trip
    # midpoints between neighbours go to the even code; just off them to the nearer one
    pos = codes[(codes < 128) & ok]
    lo, hi = pos[:-1], pos[1:]
    mid = (decode_fp8(lo, fmt) + decode_fp8(hi, fmt)) / 2
    want = np.where(hi % 2 == 0, hi, lo)
    assert np.array_equal(encode_fp8(mid, fmt), want)
    assert np.array_equal(encode_fp8(np.nextafter(mid, 0), fmt), lo)
    assert np.array_equal(encode_fp8(np.nextafter(mid, np.inf), fmt), hi)
    top = {"e4m3": 0x7E, "e5m2": 0x7B}[fmt]
    assert encode_fp8([1e30, -1e30, np.inf], fmt).tolist() == [top, top | 128, top]
    with pytest.raises(ValueError, match="NaN"):
        encode_fp8([np.nan], fmt)


def test_encode_tensor_scales_to_the_top():
    x = np.array([0.01, -0.5, 0.25])
    c = encode_tensor(x, "e4m3")
    assert decode_fp8(c, "e4m3")[1] == -256            # 0.5 * 2**9 <= 448
    assert encode_tensor(np.array([1.5]), "fp32").tolist() == [0x3FC00000]


@pytest.mark.parametrize("fa, fb", PAIRS)
def test_products_exact_when_the_window_covers_everything(fa, fb):
    c0 = FP8MACConfig(fa, fb)
    w = min(c0.q_top - c0.q_min + 1, 61 - c0.frac_bits)
    cfg = FP8MACConfig(fa, fb, window=w, acc_bits=62)
    p = cfg.products(A, B)
    with np.errstate(invalid="ignore"):
        ref = decode_fp8(A, fa) * decode_fp8(B, fb) * 2.0 ** -cfg.lsb
    fin = np.isfinite(ref)
    assert np.all(p[~fin] == 0)                        # NaN/Inf operands contribute 0
    if w == c0.q_top - c0.q_min + 1:
        assert np.array_equal(p[fin], ref[fin])
    else:                                              # e5m2 x e5m2: 62 bits cannot hold all
        assert np.array_equal(p[fin], np.trunc(ref[fin]))


@pytest.mark.parametrize("fa, fb", PAIRS)
def test_default_window_truncates_towards_zero(fa, fb):
    cfg = FP8MACConfig(fa, fb)
    assert cfg.window == 16 and cfg.product_bits == 16 + cfg.frac_bits
    p = cfg.products(A, B)
    with np.errstate(invalid="ignore"):
        ref = decode_fp8(A, fa) * decode_fp8(B, fb) * 2.0 ** -cfg.lsb
    fin = np.isfinite(ref)
    assert np.array_equal(p[fin], np.trunc(ref[fin]))
    assert np.abs(p).max() < 2 ** cfg.product_bits
    # the largest product uses the top bit of the window
    assert np.abs(p).max() >= 2 ** (cfg.product_bits - 1)


def test_accumulator_is_the_lns_units():
    cfg = FP8MACConfig(lanes=2, acc_bits=23)
    big = 0x7E                                         # 448 * 448 fills the 22 magnitude bits
    prods = cfg.products(np.array([big] * 4), np.array([big] * 4))
    assert cfg.accumulate(prods) == (1 << 22) - 1      # saturates
    wrap = FP8MACConfig(lanes=1, acc_bits=23, saturate=False)
    s = int(prods.sum())
    assert wrap.accumulate(prods) == ((s + (1 << 22)) % (1 << 23)) - (1 << 22)
    assert cfg.dot([0x38, 0xB8], [0x38, 0x38]) == 0    # 1*1 + (-1)*1


def test_validation():
    with pytest.raises(ValueError, match="window must be in"):
        FP8MACConfig(window=0)
    with pytest.raises(ValueError, match="acc_bits must be in"):
        FP8MACConfig(acc_bits=22)
    with pytest.raises(ValueError, match="FP8 format must be one of"):
        FP8MACConfig("e3m4")
    with pytest.raises(ValueError, match="lanes must be in"):
        FP8MACConfig(lanes=0)


# -- FP32 FMA -------------------------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from lnsmadam.golden.fpmac import NEG_ZERO32, QNAN32, FP32MACConfig, fma32_bits  # noqa: E402
from lnsmadam.golden.optim import fma32  # noqa: E402

F32_CORNERS = [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000,
               0x3F800000, 0xBF800000, 0x3F800001, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000,
               0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00001, 0x33800000, 0x4B000001,
               0x34000000, 0x3F7FFFFF]


def _ref(a, b, c):
    """optim.fma32 on bit patterns; every NaN mapped to the canonical one."""
    f = lambda x: np.array(x, np.uint32).view(np.float32)        # noqa: E731
    with np.errstate(all="ignore"):
        r = fma32(f(a), f(b), f(c)).view(np.uint32).astype(np.int64)
    return np.where(np.isnan(r.astype(np.uint32).view(np.float32)), QNAN32, r)


def _mine(a, b, c):
    return np.array([fma32_bits(int(x), int(y), int(z)) for x, y, z in zip(a, b, c)])


def test_fma32_corners_all_triples():
    k = np.array(F32_CORNERS)
    a, b, c = (x.ravel() for x in np.meshgrid(k, k, k, indexing="ij"))
    assert np.array_equal(_mine(a, b, c), _ref(a, b, c))


def _random_f32(rng, n):
    """Bit patterns biased to interact: narrow exponents, subnormals, and c = -(a*b)."""
    x = rng.integers(0, 2**32, (3, n), dtype=np.uint64)
    E = rng.integers(90, 166, (3, n)).astype(np.uint64)
    kind = rng.integers(0, 8, (3, n))
    x = np.where(kind < 5, (x & 0x807FFFFF) | (E << 23), x)
    x = np.where(kind == 5, x & 0x807FFFFF, x)                   # subnormals and zeros
    a, b, c = x.astype(np.int64)
    with np.errstate(all="ignore"):
        p = (a.astype(np.uint32).view(np.float32) * b.astype(np.uint32).view(np.float32))
        neg = (-p).view(np.uint32).astype(np.int64)
    cancel = (rng.random(n) < 0.25) & np.isfinite(p)
    return a, b, np.where(cancel, neg, c)


def test_fma32_random_against_optim():
    a, b, c = _random_f32(np.random.default_rng(7), 20000)
    assert np.array_equal(_mine(a, b, c), _ref(a, b, c))


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_fma32_hypothesis(a, b, c):
    assert fma32_bits(a, b, c) == int(_ref([a], [b], [c])[0])


def test_fma32_policies():
    one, inf, ninf = 0x3F800000, 0x7F800000, 0xFF800000
    assert fma32_bits(inf, 0, one) == QNAN32                       # inf * 0
    assert fma32_bits(inf, one, ninf) == QNAN32                    # inf - inf
    assert fma32_bits(0x7F800001, one, one) == QNAN32              # signalling NaN in
    assert fma32_bits(0x7F7FFFFF, 0x40000000, 0) == inf            # overflow
    assert fma32_bits(0x80000000, one, 0x80000000) == 0x80000000   # -0 + -0
    assert fma32_bits(0x80000000, one, 0) == 0                     # -0 + +0
    assert fma32_bits(one, one, 0xBF800000) == 0                   # exact cancellation: +0
    assert fma32_bits(0x00000001, 0x3F000000, 0) == 0              # half the least: tie to 0
    assert fma32_bits(0x00000003, 0x3F000000, 0) == 2              # 1.5 -> 2 (even)
    assert fma32_bits(0x00000001, 0x3F400000, 0) == 1              # 0.75 -> 1
    # a fused result differs from the double-rounded one
    a, b = 0x3F800001, 0x3F800001                                  # (1 + 2^-23)^2
    c = 0xBF800002                                                 # -(1 + 2^-22)
    assert fma32_bits(a, b, c) == 0x28800000                       # exactly 2^-46


def test_fp32_mac_config():
    cfg = FP32MACConfig()
    A = np.array([[0x3F800000, 0x40000000], [0x80000000, 0x80000000]])
    b = np.array([0x40400000, 0x3F800000])
    assert cfg.matvec(A, b).tolist() == [0x40A00000, 0x80000000]   # 3 + 2 = 5; -0 stays -0
    assert cfg.dot([0x3F800000], [0x3F800000]) == 0x3F800000
    assert NEG_ZERO32 == 0x80000000
    with pytest.raises(ValueError, match="lanes must be in"):
        FP32MACConfig(lanes=2)
