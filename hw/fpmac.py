"""The FP8 and FP32 multiply-accumulate baselines (twins of :mod:`lnsmadam.golden.fpmac`).

:class:`FP32MAC` is one IEEE binary32 fused multiply-add per cycle (:class:`FMA32` is the
same arithmetic, combinational) with the same stream interface.

:class:`FP8MAC` has the stream protocol, accumulator, pipeline cuts and output register of
:class:`~lnsmadam.hw.mac.LNSMAC` and :class:`~lnsmadam.hw.mac.INT8MAC` (their shared
skeleton); only the lane differs: an exact ``(man_bits_a + 1) x (man_bits_b + 1)``-bit
significand multiplier, an exponent adder and one left shifter that places the product in
the accumulator window (products below it are truncated by the same shifter).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.format import check_int
from ..golden.fpmac import NEG_ZERO32, QNAN32, FP32MACConfig, FP8MACConfig

from .mac import StreamDot, mac_input_layout
from .util.stages import Stages

__all__ = ["FP8MAC", "FMA32", "FP32MAC"]


class FP8MAC(StreamDot):
    """Streaming FP8 dot-product unit, bit-exact with :class:`FP8MACConfig`.

    Per beat, lane ``k``: ``P = ma * mb``, ``t = ea + eb - lsb``, product
    ``±((P << (t + 2m)) >> 2m)`` (``2m`` = the product's width, so right shifts truncate), 0
    when an operand is NaN/Inf; the lanes summed exactly, then ``acc = clip(acc + tree)``
    (``clip(tree)`` on a ``first`` beat). Output payload: ``acc`` (LSB weight ``2**lsb``).

    Parameters
    ----------
    cfg : FP8MACConfig
        Operand formats, window, accumulator, ``lanes`` (1..256).
    pipeline : int, 1..(2 + ceil(log2(lanes)))
        Register stages before the accumulator: after the aligned products, after the adder
        tree (``lanes > 1``), after the significand products, then between tree levels.

    Members
    -------
    i_stream : In(stream) -- ``a``, ``b`` (``lanes`` FP8 codes each), ``first``, ``last``.
    o_stream : Out(stream) -- ``acc``.

    Latency
    -------
    ``pipeline + 2`` cycles from a vector's last beat to its result.

    Throughput
    ----------
    One beat (``lanes`` products) per cycle.

    Notes
    -----
    The stream protocol and backpressure of :class:`~lnsmadam.hw.mac.LNSMAC`; one shifter
    per lane, like the LNS lane's, in place of the LNS table lookup.
    """

    _path_cuts = ("lin", "mul")

    def __init__(self, cfg: FP8MACConfig, pipeline: int = 2):
        if not isinstance(cfg, FP8MACConfig):
            raise ValueError(f"cfg must be an FP8MACConfig, got {cfg!r}")
        self.cfg = cfg
        self.a_fmt, self.b_fmt = cfg.a_fmt, cfg.b_fmt
        self.golden = cfg
        super().__init__(unsigned(8), cfg.lanes, cfg.acc_bits, bool(cfg.saturate), pipeline, {})

    @staticmethod
    def _decode(m, code, f):
        E = code[f.man_bits:7]
        M = code[:f.man_bits]
        top = (1 << f.exp_bits) - 1
        sig = Mux(E == 0, M, M | (1 << f.man_bits))
        e = Mux(E == 0, 1, E)                        # the LSB exponent is e - bias - man_bits
        if f.finite_top:
            bad = (E == top) & (M == (1 << f.man_bits) - 1)
        else:
            bad = E == top
        return code[7], sig, e, bad

    def _products(self, m, st, a, b):
        cfg = self.cfg
        fa, fb = cfg.fa, cfg.fb
        pw = fa.man_bits + fb.man_bits + 2            # bits of P
        # t + pw >= 0 keeps the shifter's amount unsigned; e_off folds the biases in
        e_off = -fa.bias - fa.man_bits - fb.bias - fb.man_bits - cfg.lsb + pw
        mults = []
        for k in range(self.lanes):
            sa, ma, ea, ba = self._decode(m, a[k], fa)
            sb, mb, eb, bb = self._decode(m, b[k], fb)
            mults += [ma * mb, ea + eb, sa ^ sb, ba | bb]
        mults = st.cut("mul", mults)
        lins = []
        sh_bits = (cfg.product_bits + pw).bit_length()
        for k in range(self.lanes):
            P, es, sign, bad = mults[4 * k:4 * k + 4]
            sh = es + e_off                            # t + pw: below 0 the product is 0
            gone = sh < 0
            mag = ((P << sh.as_unsigned()[:sh_bits]) >> pw)[:cfg.product_bits]
            lins.append(Mux(bad | gone, 0, Mux(sign, -mag, mag)))
        return st.cut("lin", lins)


# -- FP32: one fused multiply-add per cycle -------------------------------------------------
def _w(m: Module, v, name: str, shape=None) -> Signal:
    """``v`` through a named wire: an Amaranth expression used twice is built twice, so
    every value used more than once gets one."""
    v = Value.cast(v)
    s = Signal(shape if shape is not None else v.shape(), name=name)
    m.d.comb += s.eq(v)
    return s


def _normalise(m: Module, v, width: int, name: str):
    """``(v << lzc, lzc)`` for a non-zero ``width``-bit ``v``: one shifter whose level ``j``
    shifts by ``2**j`` when the top ``2**j`` bits are zero (that select is bit ``j`` of the
    count), as in :class:`~lnsmadam.hw.convert.FromLinear`."""
    levels = max(1, (width - 1).bit_length())
    cur = _w(m, Value.cast(v)[:width], f"{name}_n{levels}")
    bits = []
    for j in reversed(range(levels)):
        s = 1 << j
        z = _w(m, cur[width - s:] == 0, f"{name}_z{j}")
        cur = _w(m, Mux(z, (cur << s)[:width], cur), f"{name}_n{j}")
        bits.append(z)
    return cur, Cat(*reversed(bits))


def _decode32(m: Module, x, name: str):
    """``(sign, significand, max(E, 1), inf, nan, zero)`` of an FP32 bit pattern."""
    x = _w(m, x, name)
    E, M = x[23:31], x[:23]
    return (x[31], _w(m, Mux(E == 0, M, M | (1 << 23)), f"{name}_m", unsigned(24)),
            _w(m, Mux(E == 0, 1, E), f"{name}_e", unsigned(8)), _w(m, E == 255, f"{name}_inf"),
            _w(m, (E == 255) & (M != 0), f"{name}_nan"), _w(m, (E == 0) & (M == 0), f"{name}_z"))


def _fma_product(m: Module, a, b) -> list:
    """Stage 1 of the FMA: the exact significand product and its flags."""
    sa, ma, ea, infa, nana, za = _decode32(m, a, "fa")
    sb, mb, eb, infb, nanb, zb = _decode32(m, b, "fb")
    nan = _w(m, nana | nanb | (infa & zb) | (infb & za), "p_nan")
    return [_w(m, ma * mb, "p_sig"), _w(m, ea + eb, "p_exp"), sa ^ sb,
            (infa | infb) & ~nan, nan, za | zb]


def _fma_add(m: Module, prod: list, c) -> Value:
    """Stage 2: ``round(P * 2**(ep - 300) + c)`` to nearest even (golden ``fma32_bits``).

    Both significands are normalised to 48 bits; the one with the larger leading-one
    exponent (``L``) sits in a 52-bit frame above 3 guard bits and a sticky bit, the other
    (``S``) is shifted right into it, every bit shifted out ORed into the sticky bit; the
    sum is exact except for that sticky bit, which only ever meets the rounding."""
    P, ep, sp, p_inf, p_nan, p_zero = [_w(m, v, f"q{k}") for k, v in enumerate(prod)]
    sc, mc, ec, c_inf, c_nan, c_zero = _decode32(m, c, "fc")
    c = Value.cast(c)
    NP, lzp = _normalise(m, P, 48, "np")
    NC, lzc = _normalise(m, mc, 24, "nc")
    xP = _w(m, ep - 300 + 47 - lzp, "xp", signed(11))
    xC = _w(m, ec - 150 + 23 - lzc, "xc", signed(11))
    p_big = _w(m, c_zero | (xP >= xC), "p_big")
    NCw = Cat(Const(0, 24), NC)
    NL = _w(m, Mux(p_big, NP, NCw), "nl")
    NS = _w(m, Mux(p_big, NCw, NP), "ns")
    sL, sS = _w(m, Mux(p_big, sp, sc), "sl"), Mux(p_big, sc, sp)
    xL = _w(m, Mux(p_big, xP, xC), "xl")
    d = _w(m, Mux(p_big, xP - xC, xC - xP), "d", signed(12))
    dc = _w(m, Mux(c_zero | (d > 63), 63, d)[:6], "dc")
    Sf = _w(m, Cat(Const(0, 4), NS), "sf")                    # 52 bits
    keep = (Sf >> dc)[:52]
    lost = (Sf & ~(Const((1 << 52) - 1, 52) << dc)[:52]) != 0
    Sfr = _w(m, Mux(c_zero, 0, keep | lost), "sfr", unsigned(52))
    Lf = Cat(Const(0, 4), NL)
    T = _w(m, Mux(sL ^ sS, Lf - Sfr, Lf + Sfr), "t", signed(54))
    neg = T[-1]
    Tm = _w(m, Mux(neg, -T, T)[:53], "tm")
    sign = _w(m, sL ^ neg, "sign")
    NT, lzt = _normalise(m, Tm, 53, "nt")
    xT = _w(m, xL + 1 - lzt, "xt", signed(12))               # xL - 52 + (53 - lzt)
    u = _w(m, Mux(xT < -126, -126 - xT, 0), "u", unsigned(9))  # a subnormal's extra shift
    sr = _w(m, Mux(u > 34, 63, u + 29)[:6], "sr")
    sr1 = _w(m, (sr - 1)[:6], "sr1")                          # sr >= 29
    q = _w(m, (NT >> sr)[:24], "qq")
    guard = (NT >> sr1)[0]
    rest = (NT & ~(Const((1 << 53) - 1, 53) << sr1)[:53]) != 0
    q2 = _w(m, q + (guard & (rest | q[0])), "q2", unsigned(25))
    carry = q2[24]
    eR = _w(m, xT - 23 + u + carry, "er", signed(12))
    man = Mux(carry, q2[1:24], q2[:23])
    E = _w(m, Mux(Mux(carry, 1, q2[23]), eR + 150, 0), "ee", signed(12))
    rounded = Mux(E >= 255, Cat(Const(0, 23), Const(0xFF, 8), sign), Cat(man, E[:8], sign))
    nan = p_nan | c_nan | (p_inf & c_inf & (sp != sc))
    return Mux(nan, QNAN32,
           Mux(p_inf, Cat(Const(0, 23), Const(0xFF, 8), sp),
           Mux(c_inf, c,
           Mux(p_zero & c_zero, Cat(Const(0, 31), sp & sc),
           Mux(p_zero, c,
           Mux(Tm == 0, 0, rounded))))))


class FMA32(wiring.Component):
    """Combinational IEEE binary32 fused multiply-add ``y = round(a * b + c)``, round to
    nearest even, bit-exact with :func:`~lnsmadam.golden.fpmac.fma32_bits` (subnormals, the
    canonical NaN, overflow to infinity).

    Parameters
    ----------
    None.

    Members
    -------
    a, b, c : In(32) -- IEEE binary32 bit patterns.
    y : Out(32) -- the result's bit pattern.

    Latency
    -------
    0 (combinational).

    Throughput
    ----------
    One result per evaluation.

    Notes
    -----
    The arithmetic of :class:`FP32MAC`'s two stages, for direct tests.
    """

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "c": In(32), "y": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(_fma_add(m, _fma_product(m, self.a, self.b), self.c))
        return m


class FP32MAC(wiring.Component):
    """Streaming FP32 multiply-accumulate: one fused multiply-add per cycle, bit-exact with
    :class:`~lnsmadam.golden.fpmac.FP32MACConfig` (``acc = fma(a, b, acc)``, restarted at
    -0 by ``first``).

    Parameters
    ----------
    cfg : FP32MACConfig (``lanes`` = 1)
    pipeline : int, 1..2
        Register stages before the accumulator: after the significand product (1), then also
        on the operands (2). The add, normalisation and rounding sit in the accumulator loop,
        one cycle.

    Members
    -------
    i_stream : In(stream) -- ``a``, ``b`` (one FP32 bit pattern each), ``first``, ``last``.
    o_stream : Out(stream) -- ``acc`` (FP32 bit pattern).

    Latency
    -------
    ``pipeline + 2`` cycles from a vector's last beat to its result.

    Throughput
    ----------
    One beat (one FMA) per cycle.

    Notes
    -----
    The stream protocol and backpressure of :class:`~lnsmadam.hw.mac.LNSMAC`. The
    accumulator loop holds alignment, the 54-bit add, normalisation and rounding: 23 ns on
    the OSU 0.18 µm library (``docs/asic.md``), where the LNS and INT8 units need 5–6 ns.
    """

    def __init__(self, cfg: FP32MACConfig = FP32MACConfig(), pipeline: int = 2):
        if not isinstance(cfg, FP32MACConfig):
            raise ValueError(f"cfg must be an FP32MACConfig, got {cfg!r}")
        self.cfg = self.golden = cfg
        self.lanes = cfg.lanes
        self.pipeline = check_int("pipeline", pipeline, 1, 2)
        super().__init__({
            "i_stream": In(stream.Signature(mac_input_layout(unsigned(32), 1))),
            "o_stream": Out(stream.Signature(data.StructLayout({"acc": unsigned(32)}))),
        })

    @property
    def latency(self) -> int:
        return self.pipeline + 2

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        adv = Signal()
        m.d.comb += [adv.eq(~o.valid | o.ready), i.ready.eq(adv)]
        cuts = ("mul", "in")[:self.pipeline]
        st = Stages(m, adv, cuts, valid=i.valid, first=i.payload.first, last=i.payload.last)
        a, b = st.cut("in", [i.payload.a[0], i.payload.b[0]])
        prod = st.cut("mul", _fma_product(m, a, b))
        acc = Signal(32)
        done = Signal()
        nxt = _fma_add(m, prod, Mux(st.first, NEG_ZERO32, acc))
        with m.If(adv):
            m.d.sync += done.eq(st.valid & st.last)
            with m.If(st.valid):
                m.d.sync += acc.eq(nxt)
            m.d.sync += o.valid.eq(done)
            with m.If(done):
                m.d.sync += o.payload.acc.eq(acc)
        return m
