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
