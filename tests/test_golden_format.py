"""LNSFormat: validation, encode/decode properties, corners, exact tables, xlns cross-check."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lnsmadam.golden.format import (LNSFormat, midpoint_table, pow2_table,
                                    round_threshold_table)

F8 = LNSFormat(8, 3, bias=-127)
FORMATS = [LNSFormat(8, 3, -127), LNSFormat(6, 2, -31), LNSFormat(4, 1, -7),
           LNSFormat(5, 1, -15), LNSFormat(12, 7, -2047), LNSFormat(16, 10, -30000),
           LNSFormat(3, 0, 0)]

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@pytest.mark.parametrize("kw, name", [
    (dict(bits=2, frac_bits=0), "bits"),
    (dict(bits=25, frac_bits=3), "bits"),
    (dict(bits=8, frac_bits=7), "frac_bits"),
    (dict(bits=8, frac_bits=8), "frac_bits"),
    (dict(bits=8, frac_bits=-1), "frac_bits"),
    (dict(bits=8.0, frac_bits=3), "bits"),
    (dict(bits=8, frac_bits=3, bias=1.5), "bias"),
    (dict(bits=8, frac_bits=3, underflow="zero"), "underflow"),
])
def test_bad_parameters_name_the_parameter(kw, name):
    with pytest.raises(ValueError, match=name):
        LNSFormat(**kw)


@pytest.mark.parametrize("bits, gamma, msg", [(8, 3, "power of two"), (8, 6, "power of two"),
                                               (8, 128, r"gamma must be in \[1, 64\]"),
                                               (8, 0, "gamma"), (2, 1, "bits")])
def test_from_gamma_validates(bits, gamma, msg):
    with pytest.raises(ValueError, match=msg):
        LNSFormat.from_gamma(bits, gamma)


def test_from_gamma():
    assert LNSFormat.from_gamma(8, 8) == LNSFormat(8, 3)
    assert LNSFormat.from_gamma(4, 1, bias=-3).bias == -3


def test_gamma_must_be_power_of_two_by_construction():
    # gamma is 2**frac_bits: a non power of two cannot be expressed; frac_bits range is checked
    assert [LNSFormat(8, f).gamma for f in range(7)] == [1, 2, 4, 8, 16, 32, 64]


def test_nan_raises_with_position():
    with pytest.raises(ValueError, match="NaN"):
        F8.encode([1.0, float("nan")])


def test_bad_codes_rejected():
    with pytest.raises(ValueError, match="codes"):
        F8.decode([256])
    with pytest.raises(ValueError, match="codes"):
        F8.decode([-1])
    with pytest.raises(ValueError, match="integers"):
        F8.decode([1.5])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.bits}b_g{f.gamma}")
def test_zero_saturation_underflow_corners(fmt):
    top = 2.0 ** ((fmt.emax + fmt.bias) / fmt.gamma)
    bottom = 2.0 ** ((1 + fmt.bias) / fmt.gamma)
    assert fmt.encode(0.0) == 0 and fmt.encode(-0.0) == 0
    assert fmt.encode(np.inf) == fmt.emax
    assert fmt.encode(-np.inf) == fmt.emax | (1 << (fmt.bits - 1))
    assert fmt.encode(top * 1e6) == fmt.emax
    assert fmt.decode(fmt.encode(-top * 3)) == -top
    assert fmt.encode(bottom) == 1
    # below the geometric midpoint between E=1 and the virtual E=0: flush to ZERO
    below = 2.0 ** ((0.4 + fmt.bias) / fmt.gamma)
    above = 2.0 ** ((0.6 + fmt.bias) / fmt.gamma)
    assert fmt.encode(below) == 0 and fmt.encode(-below) == 0
    assert fmt.encode(above) == 1
    fmin = LNSFormat(fmt.bits, fmt.frac_bits, fmt.bias, underflow="min")
    assert fmin.encode(below) == 1 and fmin.encode(-below) == 1 | (1 << (fmt.bits - 1))
    assert fmin.encode(0.0) == 0
    # every code decodes; negative-zero code decodes to 0
    assert fmt.decode(1 << (fmt.bits - 1)) == 0.0


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.bits}b_g{f.gamma}")
def test_every_code_round_trips(fmt):
    codes = np.arange(fmt.ncodes)
    canon = np.where((codes & fmt.emax) == 0, 0, codes)
    assert np.array_equal(fmt.encode(fmt.decode(codes)), canon)


def test_ties_go_to_even():
    """Exact float64 ties: gamma*log2|x| is exactly a half-integer for these x."""
    g = LNSFormat(4, 0, bias=-4)          # gamma = 1, E = rint(t) + 4
    assert np.log2(2.8284271247461903) == 1.5 and np.log2(0.3535533905932738) == -1.5
    assert int(g.encode(2.8284271247461903)) == 2 + 4          # 1.5 -> 2
    assert int(g.encode(0.3535533905932738)) == -2 + 4         # -1.5 -> -2
    assert int(g.encode(-0.3535533905932738)) == (-2 + 4) | 8
    h = LNSFormat(8, 1, bias=0)           # gamma = 2: 2*log2(2.378414230005442) == 2.5 -> 2
    assert 2 * np.log2(2.378414230005442) == 2.5
    assert int(h.encode(2.378414230005442)) == 2
    k = LNSFormat(8, 3, bias=-127)        # gamma = 8: -2.5 -> -2 (even)
    assert 8 * np.log2(0.8052451659746271) == -2.5
    assert int(k.encode(0.8052451659746271)) == 125


@settings(max_examples=400, deadline=None)
@given(x=finite, fi=st.integers(0, len(FORMATS) - 1))
def test_error_at_most_half_step_in_log_domain(x, fi):
    fmt = FORMATS[fi]
    c = fmt.encode(x)
    y = float(fmt.decode(c))
    e = int(c) & fmt.emax
    if x == 0:
        assert c == 0
        return
    if 1 < e < fmt.emax:
        assert math.copysign(1, y) == math.copysign(1, x)
        assert abs(math.log2(abs(y)) - math.log2(abs(x))) <= 0.5 / fmt.gamma + 1e-12
    elif e == fmt.emax:
        assert abs(x) >= 2 ** ((fmt.emax - 0.5 + fmt.bias) / fmt.gamma) * (1 - 1e-12)
    elif e == 0:
        assert abs(x) <= 2 ** ((0.5 + fmt.bias) / fmt.gamma) * (1 + 1e-12)


@settings(max_examples=300, deadline=None)
@given(a=finite, b=finite, fi=st.integers(0, len(FORMATS) - 1))
def test_monotonic_and_sign_symmetric(a, b, fi):
    fmt = FORMATS[fi]
    lo, hi = sorted([a, b])
    assert fmt.decode(fmt.encode(lo)) <= fmt.decode(fmt.encode(hi))
    assert fmt.decode(fmt.encode(-a)) == -fmt.decode(fmt.encode(a))


def test_split_join_and_exponent():
    s, e, z = F8.split([0, 113, 241, 128])
    assert list(s) == [0, 0, 1, 1] and list(e) == [0, 113, 113, 0] and list(z) == [1, 0, 0, 1]
    assert list(F8.join(s, e)) == [0, 113, 241, 0]
    s, x, z = F8.exponent([113])
    assert x[0] == 113 - 127


def test_bias_for_max():
    f = LNSFormat(8, 3)
    b = f.bias_for_max(0.3)
    assert f.encode(0.3, b) == f.emax
    with pytest.raises(ValueError, match="maxabs"):
        f.bias_for_max(0.0)


def test_worked_example_from_docs():
    assert [int(F8.encode(v)) for v in (0.3, -0.3, 1.0, 5.0, 1.9e-5, 1.8e-5, 2**-16)] == \
        [113, 241, 127, 127, 2, 1, 0]


# -- exact tables --------------------------------------------------------------------
@pytest.mark.parametrize("f, F", [(0, 4), (1, 6), (2, 8), (3, 8), (3, 11), (4, 12), (7, 12), (7, 16)])
def test_pow2_table_is_round_to_nearest(f, F):
    g = 1 << f
    T = pow2_table(f, F)
    assert T[0] == 1 << F
    for r, t in enumerate(T):
        exact = 2 ** (r / g + F)
        assert abs(t - exact) < 0.5 + 1e-9
        assert (1 << F) <= t < (2 << F)


def test_tables_documented_values():
    assert pow2_table(3, 8) == (256, 279, 304, 332, 362, 395, 431, 470)
    assert midpoint_table(3, 8) == (268, 292, 318, 347, 379, 413, 450, 491)
    assert round_threshold_table(3, 10) == (-15, 10, 22, 29, 35, 40, 44, 47, 50, 52)


@pytest.mark.parametrize("f, K", [(0, 6), (2, 8), (3, 8), (3, 11), (7, 16)])
def test_midpoints_are_ceil_of_geometric_means(f, K):
    g = 1 << f
    for k, m in enumerate(midpoint_table(f, K)):
        exact = 2 ** ((k + 0.5) / g + K)
        assert m - 1 < exact <= m


@pytest.mark.parametrize("f", [0, 1, 3, 5])
def test_round_thresholds(f):
    g2 = 2 << f
    thr = round_threshold_table(f, 12)
    for j, t in enumerate(thr, start=1):
        # t is the smallest z whose magnitude rounds (half to even) to >= j
        assert round(2 ** (t / g2)) >= j
        assert round(2 ** ((t - 1) / g2)) < j


def test_cross_check_against_xlns():
    """Independent oracle: xlns (Arnold's LNS library) quantises to the same levels.

    xlns at F fractional bits represents |x| as 2**(k / 2**F) with k = round(2**F log2|x|);
    our format with frac_bits = F, a bias wide enough to avoid saturation, must pick the same
    k for every value in range.
    """
    import xlns as xl   # dev dependency, installed by ./run test: a missing oracle fails

    F = 3
    xl.xlnssetF(F)
    fmt = LNSFormat(12, F, bias=-1024)
    rng = np.random.default_rng(1)
    vals = np.concatenate([rng.uniform(-50, 50, 500), 2.0 ** rng.uniform(-60, 5, 500)])
    mine = fmt.decode(fmt.encode(vals))
    theirs = np.array([float(xl.xlns(float(v))) for v in vals])
    assert np.allclose(mine, theirs, rtol=1e-12, atol=0)
