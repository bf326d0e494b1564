"""LNS <-> linear fixed point in hardware (twin of :mod:`lnsmadam.golden.convert`).

* :class:`ToLinear`: exponent ``p`` (+ sign, zero) to a signed fixed-point word,
  ``T[p & (gamma-1)] << (p >> f) - q_lo``: one ``gamma``-entry ROM and a barrel shifter of
  ``window`` positions, 0 below the window.
* :class:`FromLinear`: a signed integer to ``(sign, x, zero)``: leading-one detector,
  normalising shifter, ``gamma`` comparisons of the mantissa against the log-domain
  midpoints, carry into the next octave when the last midpoint is reached.

Both convert one value per cycle and are combinational by default (latency 0); with
``registered=True`` their outputs are registered (latency 1).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsmadam.golden.format import LNSFormat, check_int, midpoint_table, pow2_table

from .format import check_bool, check_format, rom, signed_bits

__all__ = ["ToLinear", "FromLinear"]


def _balanced_sum(values):
    """Sum of Amaranth values as a balanced tree (log depth, exact widths)."""
    values = list(values)
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


class ToLinear(wiring.Component):
    """Linear magnitude of ``±2**(p/gamma)``, bit-exact with ``golden.convert.to_linear``.

    ``q = p >> f``, ``r = p & (gamma-1)``; ``lin = ±(T[r] << (q - q_lo))`` if
    ``q >= q_lo``, else 0; ``zero`` forces 0 and ``sign`` negates. ``T`` is
    ``pow2_table(f, lut_frac)``. The LSB of ``lin`` weighs ``2**(q_lo - lut_frac)``.
    Exponents above the window (``q > q_lo + window - 1``) are outside the contract
    (the golden model raises); the caller sizes the window to cover its largest ``p``.

    One conversion per cycle; latency 0, or 1 with ``registered``.

    Parameters
    ----------
    fmt : LNSFormat
        Supplies ``f = fmt.frac_bits`` (0..12, the table's limit).
    lut_frac : int, 0..40
        Fraction bits ``F`` of the table; ``lut_frac + window <= 62``.
    q_lo : int in [-2**30, 2**30]
        Lowest octave kept.
    window : int, 1..62
        Octaves kept; ``lin`` has ``lut_frac + window`` magnitude bits plus a sign bit.
    p_bits : int, default: just wide enough
        Width of the signed input ``p``; at least wide enough for ``0``, ``gamma*q_lo - 1``
        and the window top ``gamma*(q_lo + window) - 1``, at most 64.
    registered : bool
        Register the output.

    Ports: ``p`` (``signed(p_bits)``), ``sign``, ``zero`` in; ``lin``
    (``signed(lut_frac + window + 1)``) out.
    """

    def __init__(self, fmt: LNSFormat, lut_frac: int, q_lo: int, window: int,
                 p_bits: int | None = None, registered: bool = False):
        self.fmt = check_format("fmt", fmt)
        check_int("fmt.frac_bits", fmt.frac_bits, 0, 12)
        self.lut_frac = check_int("lut_frac", lut_frac, 0, 40)
        self.window = check_int("window", window, 1, 62)
        if lut_frac + window > 62:
            raise ValueError(f"lut_frac + window must be <= 62, got {lut_frac + window}")
        self.q_lo = check_int("q_lo", q_lo, -(1 << 30), 1 << 30)
        g = fmt.gamma
        need = signed_bits(0, g * q_lo - 1, g * (q_lo + window) - 1)
        self.p_bits = need if p_bits is None else check_int("p_bits", p_bits, need, 64)
        self.registered = check_bool("registered", registered)
        self.table = pow2_table(fmt.frac_bits, lut_frac)
        super().__init__({
            "p": In(signed(self.p_bits)),
            "sign": In(1),
            "zero": In(1),
            "lin": Out(signed(lut_frac + window + 1)),
        })

    @property
    def mag_bits(self) -> int:
        return self.lut_frac + self.window

    def elaborate(self, platform):
        m = Module()
        f = self.fmt.frac_bits
        q = self.p >> f                      # arithmetic: exponents may be negative
        s = q - self.q_lo
        inside = (s >= 0) & ~self.zero
        t = rom(self.table, self.p[:f])
        sh_bits = (self.window - 1).bit_length()
        shifted = t << s[:sh_bits] if sh_bits else t
        mag = Mux(inside, shifted[:self.mag_bits], 0)
        domain = m.d.sync if self.registered else m.d.comb
        domain += self.lin.eq(Mux(self.sign, -mag, mag))
        return m


class FromLinear(wiring.Component):
    """Nearest LNS exponent of a signed integer, bit-exact with ``golden.convert.from_linear``.

    For ``S`` (LSB weight ``2**lsb_q``): ``lz = floor(log2|S|)``,
    ``m = floor(|S| * 2**(mid_bits - lz))``, ``r = #{k : m >= MID[k]}`` (0..gamma),
    ``x = gamma*(lz + lsb_q) + r``; ``sign = S < 0``; ``S == 0`` gives ``zero = 1``,
    ``x = 0``. ``MID`` is ``midpoint_table(frac_bits, mid_bits)``.

    One conversion per cycle; latency 0, or 1 with ``registered``.

    Parameters
    ----------
    acc_width : int, 2..63
        Width of the signed input ``S`` (the golden model computes in int64).
    frac_bits : int, 0..12
        ``f``, ``gamma = 2**f``.
    mid_bits : int, 0..40
        Mantissa bits compared against the midpoints (bits below are truncated).
    lsb_q : int in [-2**30, 2**30]
        Octave of the LSB of ``S``.
    registered : bool
        Register the outputs.

    Ports: ``S`` (``signed(acc_width)``) in; ``sign``, ``x`` (``signed(x_bits)``),
    ``zero`` out.
    """

    def __init__(self, acc_width: int, frac_bits: int, mid_bits: int, lsb_q: int,
                 registered: bool = False):
        self.acc_width = check_int("acc_width", acc_width, 2, 63)
        self.frac_bits = check_int("frac_bits", frac_bits, 0, 12)
        self.mid_bits = check_int("mid_bits", mid_bits, 0, 40)
        self.lsb_q = check_int("lsb_q", lsb_q, -(1 << 30), 1 << 30)
        self.registered = check_bool("registered", registered)
        self.mids = midpoint_table(frac_bits, mid_bits)
        super().__init__({
            "S": In(signed(acc_width)),
            "sign": Out(1),
            "x": Out(signed(self.x_bits_for(acc_width, frac_bits, lsb_q))),
            "zero": Out(1),
        })

    @staticmethod
    def x_bits_for(acc_width: int, frac_bits: int, lsb_q: int) -> int:
        """Width of ``x``: holds 0 and ``gamma*lsb_q .. gamma*(acc_width + lsb_q)``."""
        g = 1 << frac_bits
        return signed_bits(0, g * lsb_q, g * (acc_width + lsb_q))

    def elaborate(self, platform):
        m = Module()
        n, K, f = self.acc_width, self.mid_bits, self.frac_bits
        S = self.S
        # |S| fits n unsigned bits, including |-2**(n-1)|
        mag = Signal(n)
        m.d.comb += mag.eq(Mux(S[-1], -S, S))
        # leading-zero count: the last matching If wins, i.e. the highest set bit
        lzc = Signal(range(n))
        for i in range(n):
            with m.If(mag[i]):
                m.d.comb += lzc.eq(n - 1 - i)
        norm = Signal(n)                      # leading one at bit n-1
        m.d.comb += norm.eq(mag << lzc)
        if K <= n - 1:
            mant = norm[n - 1 - K:]
        else:
            mant = Cat(Const(0, K - (n - 1)), norm)
        # the midpoints are increasing, so the comparisons form a thermometer code and
        # their count is the level r; r == gamma carries into the next octave
        r = _balanced_sum(mant >= mid for mid in self.mids)
        lz = (n - 1) - lzc
        x = (lz << f) + r + (1 << f) * self.lsb_q
        zero = mag == 0
        domain = m.d.sync if self.registered else m.d.comb
        domain += [
            self.sign.eq(S[-1]),
            self.x.eq(Mux(zero, 0, x)),
            self.zero.eq(zero),
        ]
        return m
