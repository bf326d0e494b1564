"""The LNS word: parameters, float encode/decode, and the exact integer tables.

This module is the single source of truth for the number formats (``docs/format.md`` is the
binding prose version). A *code* is an unsigned integer ``sign << (bits - 1) | E``:

* ``E`` (``bits - 1`` bits) is the biased exponent field. ``E == 0`` is reserved for an
  exact ZERO (either sign bit; the canonical ZERO that every function produces is code 0).
* For ``E >= 1`` the value is ``(-1)**sign * 2**((E + bias) / gamma)``, ``gamma = 2**frac_bits``.
* Overflow saturates to ``E = emax``; magnitudes that round below ``E = 1`` flush to ZERO
  (``underflow="flush"``) or round up to ``E = 1`` (``underflow="min"``).

The bias is an integer in units of 1/gamma octave. A format carries a default bias; per-tensor
biases (scales) are passed explicitly as integers wherever a tensor has its own scale.

The tables :func:`pow2_table` and :func:`midpoint_table` are computed with exact big-integer
comparisons, so they are bit-identical on every machine; hardware ROMs are generated from them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = [
    "LNSFormat",
    "pow2_table",
    "midpoint_table",
    "round_threshold_table",
    "check_int",
    "check_float",
    "check_type",
    "ParameterTypeError",
]

#: Widest word supported. Codes, exponents and accumulators are held in int64.
MAX_BITS = 24


class ParameterTypeError(TypeError, ValueError):
    """A parameter of the wrong type. Both a ``TypeError`` (the Python convention) and a
    ``ValueError`` (what every other parameter check raises, so one ``except ValueError``
    turns any bad parameter into a one-line message)."""


def check_type(name: str, value, cls: type | tuple[type, ...]):
    """Return ``value`` if it is an instance of ``cls``; else raise
    :class:`ParameterTypeError` naming the parameter and the expected type."""
    if not isinstance(value, cls):
        classes = cls if isinstance(cls, tuple) else (cls,)
        if classes == (bool,):
            raise ParameterTypeError(f"{name} must be true or false, got {value!r}")
        want = " or ".join(c.__name__ for c in classes)
        raise ParameterTypeError(f"{name} must be an instance of {want}, got {value!r}")
    return value


def check_float(name: str, value, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, unit: str = "") -> float:
    """Validate a real parameter: a finite int or float (never a bool, NaN or infinity) in
    ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); raise ``ValueError`` naming it and its
    allowed range (``unit`` is appended to the numbers, e.g. ``" s"``)."""
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "+inf" if hi is None else f"{hi:g}"
    rng = f"{'(' if lo_open else '['}{lo_s}, {hi_s}]{unit}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise ParameterTypeError(f"{name} must be a number in {rng}, got {value!r}")
    try:
        v = float(value)
    except OverflowError:             # an int beyond float range
        v = float("inf") if value > 0 else float("-inf")
    if (not np.isfinite(v) or (lo is not None and (v < lo or (lo_open and v == lo)))
            or (hi is not None and v > hi)):
        raise ValueError(f"{name} must be a finite number in {rng}, got {value!r}")
    return v


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Validate an integer parameter and return it as a plain ``int``; raise ``ValueError``
    naming it and its allowed range. Any integer type is accepted (``int``, NumPy integers:
    whatever has ``__index__``), never a bool or a float (a wrong type raises
    :class:`ParameterTypeError`, also a ``ValueError``)."""
    if isinstance(value, (bool, np.bool_)):
        raise ParameterTypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ParameterTypeError(f"{name} must be an integer, got {value!r}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "+inf" if hi is None else str(hi)
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], got {value}")
    return value


@lru_cache(maxsize=None)
def pow2_table(frac_bits: int, lut_frac: int) -> tuple[int, ...]:
    """``T[r] = round(2**(r / gamma) * 2**lut_frac)`` for ``r in range(gamma)``, exactly.

    Every entry is rounded to nearest (no entry can be a tie: ``2**(r/gamma)`` is irrational
    for ``0 < r < gamma``). Entries lie in ``[2**lut_frac, 2**(lut_frac + 1))``.
    """
    frac_bits = check_int("frac_bits", frac_bits, 0, 12)
    lut_frac = check_int("lut_frac", lut_frac, 0, 40)
    gamma = 1 << frac_bits
    out = []
    for r in range(gamma):
        # n = round(2**(r/gamma + F)): the unique n with (2n-1)^g < 2^(r + gF + g) < (2n+1)^g.
        target = r + gamma * lut_frac + gamma
        n = int(round(2.0 ** (r / gamma + lut_frac)))
        while (2 * n + 1) ** gamma < 2**target:
            n += 1
        while (2 * n - 1) ** gamma > 2**target:
            n -= 1
        out.append(n)
    return tuple(out)


@lru_cache(maxsize=None)
def midpoint_table(frac_bits: int, mid_bits: int) -> tuple[int, ...]:
    """Log-domain midpoints ``MID[k] = ceil(2**((k + 1/2) / gamma) * 2**mid_bits)``, exactly.

    ``MID[k]`` separates level ``k`` from level ``k + 1`` of a mantissa ``m`` in ``[1, 2)``
    scaled by ``2**mid_bits``; ``MID[gamma - 1]`` is the carry into the next octave.
    A mantissa rounds up past ``k`` iff ``floor(m * 2**mid_bits) >= MID[k]``, which is the
    exact nearest-in-log rule except for ``m`` within ``2**-mid_bits`` above a midpoint.
    """
    frac_bits = check_int("frac_bits", frac_bits, 0, 12)
    mid_bits = check_int("mid_bits", mid_bits, 0, 40)
    gamma = 1 << frac_bits
    out = []
    for k in range(gamma):
        # smallest n with n^(2g) >= 2^(2k + 1 + 2g*K)
        target = 2**(2 * k + 1 + 2 * gamma * mid_bits)
        n = int(np.ceil(2.0 ** ((k + 0.5) / gamma + mid_bits)))
        while n**(2 * gamma) < target:
            n += 1
        while n > 1 and (n - 1) ** (2 * gamma) >= target:
            n -= 1
        out.append(n)
    return tuple(out)


@lru_cache(maxsize=None)
def round_threshold_table(frac_bits: int, bound: int) -> tuple[int, ...]:
    """Thresholds for rounding an LNS magnitude ``2**(z / (2 gamma))`` to an integer.

    ``t[j - 1]`` (``j = 1 .. bound``) is the smallest integer ``z`` for which
    ``round_half_even(2**(z / (2*gamma))) >= j``. Only ``j = 1`` has a tie (0.5 = 2**-1,
    which rounds to 0 under half-to-even, so ``t[0] = -2*gamma + 1``); every other
    ``j - 1/2`` is not a power of two, so it is never hit exactly.
    """
    frac_bits = check_int("frac_bits", frac_bits, 0, 12)
    bound = check_int("bound", bound, 1, 1 << 12)
    g2 = 2 << frac_bits  # 2 * gamma
    out = [-g2 + 1]
    for j in range(2, bound + 1):
        # smallest z with 2^z * 2^g2 >= (2j - 1)^g2   (z may be negative only for j == 1)
        rhs = (2 * j - 1) ** g2
        z = int(np.floor(g2 * np.log2(j - 0.5)))
        while 2 ** (z + g2) < rhs:
            z += 1
        while 2 ** (z - 1 + g2) >= rhs:
            z -= 1
        out.append(z)
    return tuple(out)


@dataclass(frozen=True)
class LNSFormat:
    """A sign + exponent logarithmic number format.

    Parameters
    ----------
    bits : int, 3..24
        Total word width, sign included. The exponent field has ``bits - 1`` bits.
    frac_bits : int, 0..min(bits-2, 12)
        Fractional bits of the exponent; the base factor is ``gamma = 2**frac_bits`` and
        the base is ``2**(1/gamma)``. At least one integer exponent bit remains.
    bias : int
        Default exponent bias in units of 1/gamma octave: ``value = 2**((E + bias)/gamma)``.
    underflow : "flush" or "min"
        What a non-zero magnitude that rounds below ``E = 1`` becomes: ZERO, or ``E = 1``.
    """

    bits: int
    frac_bits: int
    bias: int = 0
    underflow: Literal["flush", "min"] = "flush"

    def __post_init__(self):
        check_int("bits", self.bits, 3, MAX_BITS)
        # at least one integer exponent bit; the exact tables stop at gamma = 4096
        check_int("frac_bits", self.frac_bits, 0, min(self.bits - 2, 12))
        check_int("bias", self.bias, -(1 << 30), 1 << 30)
        if self.underflow not in ("flush", "min"):
            raise ValueError(f"underflow must be 'flush' or 'min', got {self.underflow!r}")

    @classmethod
    def from_gamma(cls, bits: int, gamma: int, bias: int = 0,
                   underflow: Literal["flush", "min"] = "flush") -> "LNSFormat":
        """Build a format from its base factor ``gamma`` (a power of two, 1..2**(bits-2))."""
        check_int("bits", bits, 3, MAX_BITS)
        hi = 1 << min(int(bits) - 2, 12)
        g = check_int("gamma", gamma, 1, hi)
        if g & (g - 1):
            raise ValueError(f"gamma must be a power of two in [1, {hi}], got {g}")
        return cls(int(bits), g.bit_length() - 1, bias, underflow)

    # -- derived constants -------------------------------------------------------------
    @property
    def gamma(self) -> int:
        return 1 << self.frac_bits

    @property
    def exp_bits(self) -> int:
        return self.bits - 1

    @property
    def emax(self) -> int:
        """Largest exponent field value (the saturation level)."""
        return (1 << self.exp_bits) - 1

    @property
    def sign_shift(self) -> int:
        return self.exp_bits

    @property
    def ncodes(self) -> int:
        return 1 << self.bits

    def describe(self) -> str:
        return (f"LNS{self.bits} (1 sign + {self.exp_bits} exponent bits, gamma={self.gamma}, "
                f"bias={self.bias}, underflow={self.underflow})")

    # -- fields ------------------------------------------------------------------------
    def check_codes(self, codes, name: str = "codes") -> np.ndarray:
        c = np.asarray(codes)
        if c.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integers, got dtype {c.dtype}")
        c = c.astype(np.int64)
        if c.size and (c.min() < 0 or c.max() >= self.ncodes):
            raise ValueError(f"{name} must be in [0, {self.ncodes - 1}] for {self.bits}-bit "
                             f"words, got values in [{c.min()}, {c.max()}]")
        return c

    def split(self, codes, name: str = "codes"):
        """Return ``(sign, E, is_zero)`` int64/bool arrays for ``codes`` (``name`` is used in
        the error message when they are not codes of this format)."""
        c = self.check_codes(codes, name)
        e = c & self.emax
        return c >> self.sign_shift, e, e == 0

    def join(self, sign, e):
        """Build codes from sign bits and exponent fields; ``E == 0`` gives canonical ZERO."""
        s = np.asarray(sign, dtype=np.int64)
        e = np.asarray(e, dtype=np.int64)
        return np.where(e == 0, 0, (s << self.sign_shift) | e)

    def from_exponent(self, sign, x, zero, bias: int | None = None):
        """Codes for values ``(-1)**sign * 2**(x / gamma)`` with integer absolute exponents ``x``.

        ``E = x - bias`` saturates at ``emax``; ``E < 1`` follows the underflow rule; entries
        with ``zero`` true give ZERO. This is the requantiser used after every integer op.
        """
        b = self.bias if bias is None else int(bias)
        e = np.asarray(x, dtype=np.int64) - b
        low = e < 1
        e = np.minimum(e, self.emax)
        if self.underflow == "flush":
            e = np.where(low, 0, e)
        else:
            e = np.where(low, 1, e)
        e = np.where(np.asarray(zero, dtype=bool), 0, e)
        return self.join(sign, e)

    # -- float conversion --------------------------------------------------------------
    def encode(self, x, bias: int | None = None) -> np.ndarray:
        """Round floats to the nearest code in the log domain.

        ``E = rint(gamma * log2|x| - bias)`` (ties to even, which float64 can only reach
        when ``gamma * log2|x|`` is exactly a half-integer), then saturation/underflow.
        ``+-0`` gives ZERO, ``+-inf`` saturates to ``+-max``; NaN raises ``ValueError``.
        """
        b = self.bias if bias is None else int(bias)
        a = np.asarray(x, dtype=np.float64)
        if np.isnan(a).any():
            idx = np.argwhere(np.isnan(a))[0]
            raise ValueError(f"encode: input contains NaN (first at index {tuple(int(i) for i in idx)})")
        sign = np.signbit(a).astype(np.int64)
        mag = np.abs(a)
        zero = mag == 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t = self.gamma * np.log2(np.where(zero, 1.0, mag))
        t = np.where(np.isinf(mag), np.inf, t)
        t = np.clip(np.rint(t), -(1 << 40), 1 << 40)  # inf -> huge -> saturates below
        return self.from_exponent(sign, t.astype(np.int64), zero, bias=b)

    def decode(self, codes, bias: int | None = None) -> np.ndarray:
        """Exact float64 value of each code (ZERO decodes to 0.0)."""
        b = self.bias if bias is None else int(bias)
        s, e, z = self.split(codes)
        mag = np.exp2((e + b) / self.gamma)
        return np.where(z, 0.0, np.where(s == 1, -mag, mag))

    def quantize(self, x, bias: int | None = None) -> np.ndarray:
        """``decode(encode(x))``."""
        return self.decode(self.encode(x, bias), bias)

    def exponent(self, codes, bias: int | None = None):
        """``(sign, x, zero)`` with ``x = E + bias`` the absolute exponent (1/gamma octaves)."""
        b = self.bias if bias is None else int(bias)
        s, e, z = self.split(codes)
        return s, e + b, z

    def bias_for_max(self, maxabs: float) -> int:
        """Bias that places ``maxabs`` at ``E = emax`` (a per-tensor scale from the max-abs)."""
        if not np.isfinite(maxabs) or maxabs <= 0:
            raise ValueError(f"maxabs must be a finite positive number, got {maxabs}")
        return int(np.rint(self.gamma * np.log2(maxabs))) - self.emax
