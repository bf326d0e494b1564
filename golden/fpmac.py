"""Bit-exact models of the FP8 and FP32 multiply-accumulate baselines (``hw/fpmac.py``).

The FP32 baseline (:func:`fma32_bits`, :class:`FP32MACConfig`) is an IEEE binary32 fused
multiply-add with round to nearest even, on integer bit patterns; the FP8 one follows.

Operands are OCP FP8 codes, ``E4M3`` (bias 7, no infinities, ``S.1111.111`` is NaN, largest
448) or ``E5M2`` (bias 15, IEEE-like: exponent 31 is Inf/NaN, largest 57344), each with
subnormals; ``a`` and ``b`` may use different formats (E4M3 weights/activations times E5M2
gradients is the usual training mix).

Datapath, for one product (``m`` the significand with its hidden bit, ``e`` the weight of
its LSB, ``e = max(E, 1) - bias - man_bits``):

1. **Multiply exactly**: ``P = ma * mb`` (at most ``2 * man_bits + 2`` bits) at LSB weight
   ``ea + eb``; sign ``sa ^ sb``. A NaN or Inf operand gives the product 0 (the unit has no
   NaN output; FP8 training scales tensors so that none occur).
2. **Align into the window**: like the LNS unit's, the accumulator keeps ``window`` octaves
   below the largest possible product (``q_top``) with every product bit above them:
   its LSB weighs ``2**lsb``, ``lsb = q_top - window + 1 - (man_bits_a + man_bits_b)``. A
   product is ``P << (ea + eb - lsb)``, or, below the window, ``P >> (lsb - ea - eb)``:
   its magnitude truncated (towards zero), then signed.
3. **Accumulate** exactly like :class:`~lnsmadam.golden.mac.MACConfig`: lane groups summed
   exactly, then a saturating (or wrapping) ``acc_bits`` accumulator, restarted per vector.

Why fixed point and not FP32 accumulation: the same 16-octave window and 32-bit saturating
accumulator as the LNS unit make the comparison one of the multiply and alignment only,
and it is what FP8 tensor cores do inside a dot product (products aligned to a common
exponent and summed in fixed point before one conversion); an FP32 adder per lane would be
larger and slower, never cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .format import check_int
from .mac import MACConfig

__all__ = ["FP8Format", "E4M3", "E5M2", "FP8_FORMATS", "FP8MACConfig", "encode_fp8",
           "decode_fp8", "encode_tensor", "fma32_bits", "FP32MACConfig", "QNAN32",
           "NEG_ZERO32"]


@dataclass(frozen=True)
class FP8Format:
    name: str
    exp_bits: int
    man_bits: int
    bias: int
    #: True for E4M3: only ``S.1111.111`` is special (NaN), no infinities
    finite_top: bool

    def fields(self, codes):
        c = np.asarray(codes, np.int64)
        s = (c >> 7) & 1
        E = (c >> self.man_bits) & ((1 << self.exp_bits) - 1)
        M = c & ((1 << self.man_bits) - 1)
        return s, E, M

    def finite(self, codes) -> np.ndarray:
        _, E, M = self.fields(codes)
        top = (1 << self.exp_bits) - 1
        if self.finite_top:
            return ~((E == top) & (M == (1 << self.man_bits) - 1))
        return E != top

    @property
    def max_code(self) -> int:
        """Code of the largest finite magnitude."""
        top = (1 << self.exp_bits) - 1
        if self.finite_top:
            return (top << self.man_bits) | ((1 << self.man_bits) - 2)
        return ((top - 1) << self.man_bits) | ((1 << self.man_bits) - 1)

    @property
    def max_value(self) -> float:
        return float(decode_fp8(self.max_code, self))

    def significand(self, codes):
        """``(sign, m, e)``: significand with hidden bit and LSB weight exponent."""
        s, E, M = self.fields(codes)
        m = np.where(E > 0, M | (1 << self.man_bits), M)
        e = np.maximum(E, 1) - self.bias - self.man_bits
        return s, m, e


E4M3 = FP8Format("e4m3", 4, 3, 7, True)
E5M2 = FP8Format("e5m2", 5, 2, 15, False)
FP8_FORMATS = {"e4m3": E4M3, "e5m2": E5M2}


def _fmt(f) -> FP8Format:
    if isinstance(f, FP8Format):
        return f
    if f not in FP8_FORMATS:
        raise ValueError(f"FP8 format must be one of {', '.join(FP8_FORMATS)}, got {f!r}")
    return FP8_FORMATS[f]


def decode_fp8(codes, fmt) -> np.ndarray:
    """Float values of FP8 codes (NaN for NaN codes, ±inf for E5M2 infinities)."""
    f = _fmt(fmt)
    s, m, e = f.significand(codes)
    v = np.ldexp(m.astype(np.float64), e)
    v = np.where(s == 1, -v, v)
    _, E, M = f.fields(codes)
    nan = ~f.finite(codes)
    if not f.finite_top:
        inf = (E == (1 << f.exp_bits) - 1) & (M == 0)
        v = np.where(inf, np.where(s == 1, -np.inf, np.inf), v)
        nan &= ~inf
    return np.where(nan, np.nan, v)


def encode_fp8(x, fmt) -> np.ndarray:
    """Round floats to the nearest FP8 code (ties to even), saturating at the largest finite
    magnitude; ±0 keep their sign; NaN raises ``ValueError``."""
    f = _fmt(fmt)
    x = np.asarray(x, np.float64)
    if np.isnan(x).any():
        raise ValueError("encode_fp8: input contains NaN")
    # every finite code's value, sorted by magnitude: nearest by searching the positive half
    pos = np.arange(f.max_code + 1)
    vals = decode_fp8(pos, f)
    mag = np.minimum(np.abs(x), f.max_value)
    hi = np.clip(np.searchsorted(vals, mag, side="left"), 0, f.max_code)
    lo = np.maximum(hi - 1, 0)
    dlo, dhi = mag - vals[lo], vals[hi] - mag
    pick = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(hi % 2 == 0, hi, lo)))
    return (np.signbit(x).astype(np.int64) << 7) | pick


def encode_tensor(x, fmt: str) -> np.ndarray:
    """A tensor in FP8 with a per-tensor power-of-two scale that puts ``max |x|`` at or below
    the format's largest value (``fmt`` ``e4m3``/``e5m2``), or as FP32 bit patterns
    (``fmt`` ``fp32``, unscaled)."""
    x = np.asarray(x, np.float64)
    if fmt == "fp32":
        return x.astype(np.float32).view(np.uint32).astype(np.int64)
    f = _fmt(fmt)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    scale = 2.0 ** np.floor(np.log2(f.max_value / m)) if m > 0 else 1.0
    return encode_fp8(x * scale, f)


@dataclass(frozen=True)
class FP8MACConfig:
    """Parameters of the FP8 dot-product unit (see the module docstring).

    a_fmt, b_fmt : ``"e4m3"`` or ``"e5m2"``.
    window : octaves of products kept, ``1 .. q_top - q_min + 1``.
    acc_bits : ``product_bits + 1 .. 62``; saturate; lanes ``1 .. 256``.
    """

    a_fmt: str = "e4m3"
    b_fmt: str = "e4m3"
    window: int = 16
    acc_bits: int = 32
    saturate: bool = True
    lanes: int = 1

    # the accumulator is MACConfig's, rule for rule
    accumulate = MACConfig.accumulate
    _clip = MACConfig._clip

    def __post_init__(self):
        fa, fb = _fmt(self.a_fmt), _fmt(self.b_fmt)
        check_int("window", self.window, 1, self.q_top - self.q_min + 1)
        check_int("acc_bits", self.acc_bits, self.product_bits + 1, 62)
        check_int("lanes", self.lanes, 1, 256)
        if not isinstance(self.saturate, (bool, np.bool_)):
            raise ValueError(f"saturate must be a bool, got {self.saturate!r}")
        del fa, fb

    @property
    def fa(self) -> FP8Format:
        return _fmt(self.a_fmt)

    @property
    def fb(self) -> FP8Format:
        return _fmt(self.b_fmt)

    @property
    def frac_bits(self) -> int:
        return self.fa.man_bits + self.fb.man_bits

    @property
    def q_top(self) -> int:
        """Octave of the largest finite product."""
        _, ma, ea = self.fa.significand(self.fa.max_code)
        _, mb, eb = self.fb.significand(self.fb.max_code)
        return int(ma * mb).bit_length() - 1 + int(ea) + int(eb)

    @property
    def q_min(self) -> int:
        """Octave of the smallest non-zero product (two smallest subnormals)."""
        return int(self.fa.significand(1)[2]) + int(self.fb.significand(1)[2])

    @property
    def lsb(self) -> int:
        return self.q_top - self.window + 1 - self.frac_bits

    @property
    def product_bits(self) -> int:
        """Magnitude bits of one aligned product."""
        return self.window + self.frac_bits

    def products(self, a, b) -> np.ndarray:
        """Signed aligned products of code arrays ``a``, ``b`` (broadcasting)."""
        sa, ma, ea = self.fa.significand(a)
        sb, mb, eb = self.fb.significand(b)
        ok = self.fa.finite(a) & self.fb.finite(b)
        P = ma * mb
        t = ea + eb - self.lsb
        mag = np.where(t >= 0, P << np.maximum(t, 0), P >> np.minimum(-t, 62))
        mag = np.where(ok, mag, 0)
        return np.where((sa ^ sb) == 1, -mag, mag)

    def matvec(self, A, b) -> np.ndarray:
        """Accumulator words of ``A @ b`` (codes ``(M, K)`` and ``(K,)``)."""
        return self.accumulate(self.products(np.asarray(A), np.asarray(b)[None, :]), axis=-1)

    def dot(self, a, b) -> int:
        return int(self.matvec(np.asarray(a)[None, :], b)[0])


# -- FP32: the fused multiply-add baseline --------------------------------------------------
#: the one NaN the FP32 unit produces (quiet, positive, payload 0)
QNAN32 = 0x7FC00000


def _split32(x: int):
    s, E, M = (x >> 31) & 1, (x >> 23) & 0xFF, x & 0x7FFFFF
    return s, E, M


def fma32_bits(a: int, b: int, c: int) -> int:
    """IEEE binary32 ``round(a * b + c)``, round to nearest even, on bit patterns.

    Subnormals in and out (no flush); any NaN in, ``inf * 0`` and ``inf - inf`` give
    :data:`QNAN32`; overflow rounds to infinity; an exact zero sum is ``+0`` unless both
    ``a * b`` and ``c`` are zeros of negative sign.
    """
    sa, Ea, Ma = _split32(a)
    sb, Eb, Mb = _split32(b)
    sc, Ec, Mc = _split32(c)
    if (Ea == 255 and Ma) or (Eb == 255 and Mb) or (Ec == 255 and Mc):
        return QNAN32
    sp = sa ^ sb
    a_inf, b_inf, c_inf = Ea == 255, Eb == 255, Ec == 255
    a_zero, b_zero = Ea == 0 and Ma == 0, Eb == 0 and Mb == 0
    if a_inf or b_inf:
        if a_zero or b_zero:
            return QNAN32
        if c_inf and sc != sp:
            return QNAN32
        return (sp << 31) | 0x7F800000
    if c_inf:
        return c
    ma = (Ma | (1 << 23)) if Ea else Ma
    mb = (Mb | (1 << 23)) if Eb else Mb
    mc = (Mc | (1 << 23)) if Ec else Mc
    ep = max(Ea, 1) + max(Eb, 1) - 300          # LSB exponents: max(E, 1) - 150 each
    ec = max(Ec, 1) - 150
    P = ma * mb
    if P == 0 and mc == 0:
        return (sp & sc) << 31
    e0 = min(ep, ec)
    X = (-P if sp else P) * (1 << (ep - e0)) + (-mc if sc else mc) * (1 << (ec - e0))
    if X == 0:
        return 0
    s = 1 if X < 0 else 0
    mag = -X if s else X
    eR = max(e0 + mag.bit_length() - 24, -149)   # exponent of the result's LSB
    sh = eR - e0
    if sh > 0:
        q, rem = mag >> sh, mag & ((1 << sh) - 1)
        half = 1 << (sh - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
    else:
        q = mag << -sh
    if q == 1 << 24:
        q, eR = 1 << 23, eR + 1
    if q >= 1 << 23:
        E = eR + 150
        if E >= 255:
            return (s << 31) | 0x7F800000
        return (s << 31) | (E << 23) | (q - (1 << 23))
    return (s << 31) | q


_fma32_vec = np.frompyfunc(fma32_bits, 3, 1)

#: the accumulator's start value for a ``first`` beat: -0, so the first result is exactly
#: ``round(a * b)`` (``-0 + x = x`` for every x, signed zeros included)
NEG_ZERO32 = 0x80000000


@dataclass(frozen=True)
class FP32MACConfig:
    """The FP32 MAC baseline: one fused multiply-add per cycle, ``acc = fma(a, b, acc)``,
    ``acc = fma(a, b, -0)`` on a ``first`` beat (``lanes`` is 1: a second lane would chain
    a second FMA into the same cycle)."""

    lanes: int = 1

    def __post_init__(self):
        check_int("lanes", self.lanes, 1, 1)

    def matvec(self, A, b) -> np.ndarray:
        """Accumulator words (FP32 bit patterns) of each row of ``A`` (``(M, K)`` FP32 bit
        patterns) with ``b`` (``(K,)``), the products accumulated in order."""
        A = np.asarray(A, np.int64)
        b = np.asarray(b, np.int64)
        acc = np.full(A.shape[0], NEG_ZERO32, dtype=object)
        for k in range(A.shape[1]):
            acc = _fma32_vec(A[:, k].astype(object), int(b[k]), acc)
        return acc.astype(np.int64)

    def dot(self, a, b) -> int:
        return int(self.matvec(np.asarray(a)[None, :], b)[0])
