"""Exact integer conversions between LNS exponents and linear fixed point.

``to_linear``: a magnitude ``2**(p / gamma)`` with integer exponent ``p`` becomes
``T[p & (gamma-1)] << (p >> f) - q_lo`` in a fixed-point word whose LSB weighs
``2**(q_lo - lut_frac)``; exponents whose octave ``p >> f`` is below ``q_lo`` flush to 0 (the
*window*: the shifter only spans the octaves ``q_lo .. q_lo + window - 1``).

``from_linear``: a signed integer ``S`` whose LSB weighs ``2**lsb_q`` becomes the absolute
exponent ``x = gamma * (lz + lsb_q) + r`` with ``lz = floor(log2|S|)`` (leading one) and ``r``
the number of log-domain midpoints (:func:`~lnsmadam.golden.format.midpoint_table`) that the
mantissa reaches; reaching the last one carries into the next octave (``r = gamma``).

Both are pure functions of integers; ``hw/convert.py`` implements exactly these.
"""

from __future__ import annotations

import numpy as np

from .format import check_int, midpoint_table, pow2_table

__all__ = ["to_linear", "from_linear", "bit_length"]


def bit_length(a: np.ndarray) -> np.ndarray:
    """``int.bit_length`` for non-negative int64 arrays (exact: no float rounding)."""
    a = np.asarray(a, dtype=np.int64)
    n = np.zeros(a.shape, dtype=np.int64)
    v = a.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (np.int64(1) << s)
        n = np.where(big, n + s, n)
        v = np.where(big, v >> s, v)
    return n + (v > 0)


def to_linear(p, frac_bits: int, lut_frac: int, q_lo: int, window: int) -> np.ndarray:
    """Linear magnitude of ``2**(p/gamma)``: ``T[r] << (q - q_lo)``, 0 when ``q < q_lo``.

    ``p`` is an int array of exponents; octaves above ``q_lo + window - 1`` are an error
    (the caller's window must cover its largest exponent). Result is int64, LSB weight
    ``2**(q_lo - lut_frac)``.
    """
    check_int("window", window, 1, 62)
    table = np.asarray(pow2_table(frac_bits, lut_frac), dtype=np.int64)
    if lut_frac + window > 62:
        raise ValueError(f"lut_frac + window must be <= 62, got {lut_frac + window}")
    p = np.asarray(p, dtype=np.int64)
    q = p >> frac_bits
    r = p & ((1 << frac_bits) - 1)
    s = q - q_lo
    if s.size and s.max() >= window:
        raise ValueError(f"exponent octave {int(q.max())} is above the window "
                         f"[{q_lo}, {q_lo + window - 1}]")
    inside = s >= 0
    return np.where(inside, table[r] << np.where(inside, s, 0), 0)


def from_linear(S, lsb_q: int, frac_bits: int, mid_bits: int):
    """Nearest LNS exponent of signed integers ``S`` whose LSB weighs ``2**lsb_q``.

    Returns ``(sign, x, zero)``: ``sign`` 1 for negative, ``x`` the absolute exponent in
    1/gamma octaves, ``zero`` where ``S == 0``. The mantissa is compared on its ``mid_bits``
    bits below the leading one (bits further down are truncated, as in the hardware).
    """
    S = np.asarray(S, dtype=np.int64)
    mids = np.asarray(midpoint_table(frac_bits, mid_bits), dtype=np.int64)
    gamma = 1 << frac_bits
    sign = (S < 0).astype(np.int64)
    mag = np.abs(S)
    zero = mag == 0
    lz = bit_length(mag) - 1
    # mantissa scaled to mid_bits fractional bits: floor(mag * 2^(mid_bits - lz))
    sh = mid_bits - lz
    m = np.where(sh >= 0, mag << np.clip(sh, 0, 62), mag >> np.clip(-sh, 0, 62))
    r = (m[..., None] >= mids).sum(axis=-1)
    x = gamma * (lz + lsb_q) + r           # r == gamma is the carry into the next octave
    return sign, np.where(zero, 0, x), zero
