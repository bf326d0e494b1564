"""LNS <-> linear fixed point in hardware (twin of :mod:`lnsmadam.golden.convert`).

* :class:`ToLinear`: exponent ``p`` (+ sign, zero) to a signed fixed-point word,
  ``±T[p & (gamma-1)] << (p >> f) - q_lo``: one ``2*gamma``-entry signed ROM (the sign is
  folded into the table) and a barrel shifter of ``window`` positions, 0 below the window.
* :class:`FromLinear`: a signed integer to ``(sign, x, zero)``: magnitude, a normalising
  shifter that also detects the leading one, ``gamma`` comparisons of the mantissa against
  the log-domain midpoints, carry into the next octave when the last midpoint is reached;
  optionally split into ``pipeline`` registered stages.

Both convert one value per cycle and are combinational by default (latency 0); with
``registered=True`` their outputs are registered (one more cycle), and ``FromLinear``'s
``pipeline`` adds that many internal register stages.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.format import LNSFormat, check_int, midpoint_table, pow2_table
from .format import check_bool, check_format, signed_bits
from .util.rom import signed_rom

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

    Members
    -------
    p : In(signed(p_bits))
        The exponent.
    sign, zero : In(1)
        Negate; force 0.
    lin : Out(signed(lut_frac + window + 1))
        The linear value.

    Latency
    -------
    0 (combinational), or 1 with ``registered``.

    Throughput
    ----------
    One conversion per cycle.

    Notes
    -----
    The sign is folded into the table, :attr:`signed_table` holds ``T[r]`` at index ``r``
    and ``-T[r]`` at ``gamma + r``; the signed entry is shifted left by ``q - q_lo`` and
    replaced by 0 below the window or for ``zero``. No negate follows the shifter. This is
    exact because only left shifts occur (golden flushes every octave below ``q_lo`` to 0
    instead of shifting right, where an arithmetic shift of a negative value would round
    towards minus infinity), ``(-T) << s == -(T << s)``, and ``T[r] << s <
    2**(lut_frac + window)`` fits the signed output either way.
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
        #: ``2*gamma`` signed entries indexed by ``sign*gamma + r``: ``T[r]``, then ``-T[r]``
        self.signed_table = [int(t) for t in self.table] + [-int(t) for t in self.table]
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
        # the sign is folded into the table (entry sign*gamma + r is (-1)**sign * T[r]) and
        # the signed entry is shifted left by 0..window-1: exact, see the class docstring
        t = signed_rom(self.signed_table, Cat(self.p[:f], self.sign))
        sh_bits = (self.window - 1).bit_length()
        shifted = t << s[:sh_bits] if sh_bits else t
        lin = Mux(inside, shifted[:self.mag_bits + 1].as_signed(), 0)
        domain = m.d.sync if self.registered else m.d.comb
        domain += self.lin.eq(lin)
        return m


class FromLinear(wiring.Component):
    """Nearest LNS exponent of a signed integer, bit-exact with ``golden.convert.from_linear``.

    For ``S`` (LSB weight ``2**lsb_q``): ``lz = floor(log2|S|)``,
    ``m = floor(|S| * 2**(mid_bits - lz))``, ``r = #{k : m >= MID[k]}`` (0..gamma),
    ``x = gamma*(lz + lsb_q) + r``; ``sign = S < 0``; ``S == 0`` gives ``zero = 1``,
    ``x = 0``. ``MID`` is ``midpoint_table(frac_bits, mid_bits)``.

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
    pipeline : int, 0..4
        Internal register stages (Notes). With 3 (``"norm"``, ``"abs"``, ``"half"``) the
        converter is no longer the critical path of :class:`~lnsmadam.hw.mac.LNSMAC` at
        32 bits on iCE40 and ECP5 (``docs/area.md``). The registers advance every cycle;
        wrap the component in ``EnableInserter`` to stall them.

    Members
    -------
    S : In(signed(acc_width))
        The integer.
    sign, zero : Out(1)
        ``S < 0``; ``S == 0``.
    x : Out(signed(:meth:`x_bits_for`))
        The exponent in field units (0 when ``zero``).

    Latency
    -------
    ``pipeline + registered`` cycles (:attr:`latency`).

    Throughput
    ----------
    One conversion per cycle.

    Notes
    -----
    Datapath and its register cuts (``pipeline`` enables the first ``pipeline`` cuts of
    :attr:`CUTS`, in that order; each cut registers everything live at that point):

    1. ``sign = S[-1]``, ``zero = (S == 0)``, ``|S|`` (a negate and a mux);
       cut ``"abs"`` after it.
    2. Normalising shifter, high levels: level ``j`` shifts by ``2**j`` when the top
       ``2**j`` bits are zero, which is also bit ``j`` of the leading-zero count (the
       leading-one detection is the shifter's select logic); the word narrows after each
       level. Cut ``"half"`` after the first ``floor(levels/2)`` levels
       (``levels = bit_length(acc_width - 1)``: the 16- and 8-position levels at 32 bits).
    3. The remaining levels, down to the ``mid_bits + 1`` mantissa bits and the count;
       cut ``"norm"`` after them.
    4. ``gamma`` comparisons with the midpoints, their count ``r``; cut ``"mid"`` after it.
    5. ``x = gamma*(lz + lsb_q) + r`` (0 when ``zero``), then the output register if
       ``registered``.
    """

    #: internal register cuts, in the order in which ``pipeline`` enables them
    CUTS = ("norm", "abs", "half", "mid")

    def __init__(self, acc_width: int, frac_bits: int, mid_bits: int, lsb_q: int,
                 registered: bool = False, pipeline: int = 0):
        self.acc_width = check_int("acc_width", acc_width, 2, 63)
        self.frac_bits = check_int("frac_bits", frac_bits, 0, 12)
        self.mid_bits = check_int("mid_bits", mid_bits, 0, 40)
        self.lsb_q = check_int("lsb_q", lsb_q, -(1 << 30), 1 << 30)
        self.registered = check_bool("registered", registered)
        self.pipeline = check_int("pipeline", pipeline, 0, len(self.CUTS))
        #: the enabled cuts
        self.cuts = self.CUTS[:pipeline]
        self.mids = midpoint_table(frac_bits, mid_bits)
        super().__init__({
            "S": In(signed(acc_width)),
            "sign": Out(1),
            "x": Out(signed(self.x_bits_for(acc_width, frac_bits, lsb_q))),
            "zero": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``S`` to the outputs: ``pipeline + registered``."""
        return self.pipeline + int(self.registered)

    @staticmethod
    def x_bits_for(acc_width: int, frac_bits: int, lsb_q: int) -> int:
        """Width of ``x``: holds 0 and ``gamma*lsb_q .. gamma*(acc_width + lsb_q)``."""
        g = 1 << frac_bits
        return signed_bits(0, g * lsb_q, g * (acc_width + lsb_q))

    def elaborate(self, platform):
        m = Module()
        n, K, f = self.acc_width, self.mid_bits, self.frac_bits

        def stage(name, values):
            """Registered copies of ``values`` if ``name`` is an enabled cut, else them."""
            if name not in self.cuts:
                return values
            regs = [Signal.like(v, name=f"{name}_{v.name}") for v in values]
            m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
            return regs

        S = self.S
        # 1. sign, zero, |S| (n unsigned bits hold |-2**(n-1)| too)
        sign, zero, mag = Signal(name="sign"), Signal(name="zero"), Signal(n, name="mag")
        m.d.comb += [sign.eq(S[-1]), zero.eq(S == 0), mag.eq(Mux(S[-1], -S, S))]
        sign, zero, mag = stage("abs", [sign, zero, mag])

        # 2.-3. normalise: level j (high j first) shifts by 2**j exactly when the top 2**j
        # bits are zero. Before level j fewer than 2**(j+1) leading zeros remain (the count
        # is < n <= 2**levels), so afterwards fewer than 2**j do, and the select bits are
        # the binary leading-zero count. After level j at most 2**j - 1 positions remain to
        # be shifted, so only the top K + 2**j bits can still reach the K + 1 mantissa bits
        # (the leading one and K below it): the word narrows level by level. For S == 0
        # the count is meaningless and unused (x is forced to 0).
        levels = (n - 1).bit_length()
        v = Value.cast(mag)
        if K + 1 > n:                       # fewer bits than the mantissa: pad below
            v = Cat(Const(0, K + 1 - n), v)
        lzc_bits = []                       # leading-zero count, MSB first
        for i, j in enumerate(reversed(range(levels))):
            if i == levels // 2:
                w = Signal(len(v), name="w")
                m.d.comb += w.eq(v)
                sign, zero, v, *lzc_bits = stage("half", [sign, zero, w, *lzc_bits])
            d = 1 << j
            top_zero = Signal(name=f"lzc{j}")
            m.d.comb += top_zero.eq(v[len(v) - d:] == 0)
            v = Mux(top_zero, v << d, v)[:len(v)]
            v = v[len(v) - min(len(v), K + d):]
            lzc_bits.append(top_zero)
        assert len(v) == K + 1
        mant = Signal(K + 1, name="mant")
        lzc = Signal(levels, name="lzc")
        m.d.comb += [mant.eq(v), lzc.eq(Cat(*reversed(lzc_bits)))]
        sign, zero, mant, lzc = stage("norm", [sign, zero, mant, lzc])

        # 4. the midpoints are increasing, so the comparisons form a thermometer code and
        # their count is the level r; r == gamma carries into the next octave
        r = Signal(range(len(self.mids) + 1), name="r")
        m.d.comb += r.eq(_balanced_sum(mant >= mid for mid in self.mids))
        sign, zero, r, lzc = stage("mid", [sign, zero, r, lzc])

        # 5. the exponent
        lz = (n - 1) - lzc
        x = (lz << f) + r + (1 << f) * self.lsb_q
        domain = m.d.sync if self.registered else m.d.comb
        domain += [
            self.sign.eq(sign),
            self.x.eq(Mux(zero, 0, x)),
            self.zero.eq(zero),
        ]
        return m
