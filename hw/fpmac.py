"""The FP8 dot-product baseline (twin of :mod:`lnsmadam.golden.fpmac`).

:class:`FP8MAC` has the stream protocol, accumulator, pipeline cuts and output register of
:class:`~lnsmadam.hw.mac.LNSMAC` and :class:`~lnsmadam.hw.mac.INT8MAC` (their shared
skeleton); only the lane differs: an exact ``(man_bits_a + 1) x (man_bits_b + 1)``-bit
significand multiplier, an exponent adder and one left shifter that places the product in
the accumulator window (products below it are truncated by the same shifter).
"""

from __future__ import annotations

from amaranth.hdl import Mux, unsigned

from lnsmadam.golden.fpmac import FP8MACConfig

from .mac import _StreamDot

__all__ = ["FP8MAC"]


class FP8MAC(_StreamDot):
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

    Latency ``pipeline + 2`` cycles; throughput one beat per cycle.
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
