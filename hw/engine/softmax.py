"""The parallel softmax-error unit: :func:`lnsmadam.golden.softmax.softmax_error` in a few
tens of cycles, for boards with multipliers to spare (the digit-serial
:class:`~lnsmadam.hw.softmax.SoftmaxError` stays the small one, for the iCE40).

Golden (``docs/format.md``; ``f`` the fraction bits, ``gamma = 2**f``, ``top = gamma*(Ws-1)``):
``z_i = round_half_up(S_i * C / 2**sh)`` with ``C = C[bias & (gamma-1)]``,
``sh = 16 - lsb_q - (bias >> f)``; ``pe_i = z_i - max z + top``; ``L_i = to_linear(pe_i)``
(0 for ``pe_i < 0``); ``total = sum L``, ``rest = total - L_label``; ``x_i = pe_i -
from_linear(total)``, ``x_label = from_linear(rest) - from_linear(total)`` (sign 1), ZERO
where ``L_i = 0`` (``rest = 0`` at the label); then the dynamic requantisation.

Datapath:

1. as each logit arrives (one per cycle at most): the product ``S_i * C`` (a multiplier,
   pipelined), the rounding add and the right shift by ``sh``, clamped to ``[sh_lo,
   sh_hi]`` (golden's result does not change outside: :func:`~lnsmadam.hw.softmax.
   softmax_constants`); ``z_i`` into a register per element; running ``max z`` and, on
   ``S``, the prediction (the first largest logit);
2. after the last one, every element at once: ``d_i = max z - z_i``, alive when
   ``d_i <= top``, ``pe_i = top - d_i``, ``L_i = T[pe_i mod gamma] << (pe_i >> f)``, the
   sums ``rest`` and ``total`` by adder trees;
3. ``from_linear`` of both (two :class:`~lnsmadam.hw.convert.FromLinear`);
4. ``M`` = the largest live exponent (``pe_i`` of the others, ``x_r`` at the label);
   ``E_i = pe_i - M + emax`` (``x_r - M + emax`` at the label), which never exceeds
   ``emax``; the error bias ``M - x_s - emax`` (0 when nothing is live).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...golden.format import check_int, pow2_table
from ...golden.mlp import MLPConfig
from ...golden.softmax import SOFTMAX_P, logit_constants
from ..convert import FromLinear
from ..format import lns_layout, signed_bits
from ..softmax import softmax_constants
from .pipe import delay

__all__ = ["ParallelSoftmax"]


class ParallelSoftmax(wiring.Component):
    """Softmax cross-entropy error at the output layer, bit-exact with ``LNSMLP._error_out``,
    all elements at once.

    Parameters
    ----------
    cfg : MLPConfig
        Uses ``sizes[-1]`` (``n_out``, 1..256), ``fmt`` (``frac_bits`` 0..4), ``mac``
        (``acc_bits``, ``lut_frac``, ``mid_bits``, ``lsb_q``) and ``softmax_window``.
    bias_bits : int, 2..64
        Width of ``bias`` and ``o_bias`` (wide enough for every error bias).
    conv_pipeline : int, 0..4
        Register stages of the two converters.

    Members
    -------
    i_stream : In(stream.Signature(StructLayout({"S": signed(acc_bits)})))
        ``n_out`` beats per vector, the logits' accumulator words in index order; always
        ready.
    bias : In(signed(bias_bits)); label : In(range(n_out))
        The logit tensor bias and the class, held from the first input beat until the last
        output beat.
    o_stream : Out(stream.Signature(StructLayout({"code": lns_layout(fmt), "index": range(n_out)})))
        ``n_out`` beats in index order, one per cycle (``ready`` must be high).
    o_bias : Out(signed(bias_bits))
        The error bias, valid while the output beats are presented.
    argmax : Out(range(n_out))
        The first largest logit, valid from the first output beat until the next vector's
        first input beat.

    Latency
    -------
    The first output beat :attr:`latency` cycles after the last input beat.

    Throughput
    ----------
    One vector per ``max(n_out, latency) + n_out`` cycles; one logit per cycle in.

    Notes
    -----
    ``n_out`` registers of ``z`` (about 40 bits each), ``n_out`` subtractors and
    ``to_linear`` tables, one multiplier (DSP blocks on ECP5).
    """

    def __init__(self, cfg: MLPConfig, bias_bits: int = 16, conv_pipeline: int = 3):
        self._MustUse__silence = True
        if not isinstance(cfg, MLPConfig):
            raise ValueError(f"cfg must be an MLPConfig, got {cfg!r}")
        self.cfg = cfg
        fmt, mac = cfg.fmt, cfg.mac
        check_int("cfg.fmt.frac_bits", fmt.frac_bits, 0, 4)
        self.n_out = n = check_int("n_out (sizes[-1])", cfg.sizes[-1], 1, 256)
        self.bias_bits = check_int("bias_bits", bias_bits, 2, 64)
        self.conv_pipeline = check_int("conv_pipeline", conv_pipeline, 0, 4)
        k = softmax_constants(cfg)
        self.C, self.top, self.sh_lo, self.sh_hi = k["C"], k["top"], k["sh_lo"], k["sh_hi"]
        self.sum_bits = k["sum_bits"]
        g, F = fmt.gamma, mac.lut_frac
        self.x_lo, self.x_hi = -g * F, g * (self.sum_bits - F)
        need = signed_bits(self.x_lo - self.x_hi - fmt.emax, 0)
        if bias_bits < need:
            raise ValueError(f"bias_bits must be in [{need}, 64] for this configuration, "
                             f"got {bias_bits}")
        self.c_bits = max(self.C).bit_length()
        self.p_bits = mac.acc_bits + self.c_bits + 1
        self.z_bits = self.p_bits - self.sh_lo + 1
        self.pe_bits = max(self.top.bit_length(), 1)
        #: cycles from the last input beat to the first output beat
        #: register stages of the sum / max trees (one per two levels)
        self.tree_stages = -(-((n - 1).bit_length()) // 2)
        #: cycles from the last input beat to the first output beat
        self.latency = 11 + self.tree_stages + conv_pipeline
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({"S": signed(mac.acc_bits)}))),
            "bias": In(signed(bias_bits)), "label": In(range(max(n, 2))),
            "o_stream": Out(stream.Signature(data.StructLayout({
                "code": lns_layout(fmt), "index": range(max(n, 2))}))),
            "o_bias": Out(signed(bias_bits)), "argmax": Out(range(max(n, 2))),
        })
        self._MustUse__silence = False

    def elaborate(self, platform):
        m = Module()
        cfg, fmt, mac = self.cfg, self.cfg.fmt, self.cfg.mac
        n, f, g, top = self.n_out, fmt.frac_bits, fmt.gamma, self.top
        emax = fmt.emax
        i = self.i_stream
        m.d.comb += i.ready.eq(1)
        go = self._logits(m)                 # the cycle after the last z is in its register
        pe, alive, Ls, cand, lab_L, go = self._elements(m, go)
        rest, pmax, any_nl, go = self._sums(m, Ls, cand, alive, go)
        total = Signal(self.sum_bits)
        m.d.sync += total.eq(rest + lab_L)
        rest_r = delay(m, rest, 1, "rest_r")
        go = delay(m, go, 1, "go_total")

        # from_linear(rest), from_linear(total)
        Pc = self.conv_pipeline
        fr = m.submodules.from_rest = FromLinear(self.sum_bits + 1, f, mac.mid_bits,
                                                 -mac.lut_frac, pipeline=Pc)
        ft = m.submodules.from_total = FromLinear(self.sum_bits + 1, f, mac.mid_bits,
                                                  -mac.lut_frac, pipeline=Pc)
        m.d.comb += [fr.S.eq(rest_r), ft.S.eq(total)]
        go = delay(m, go, Pc, "go_conv")
        pmax, any_nl = delay(m, pmax, Pc + 1, "pmax_c"), delay(m, any_nl, Pc + 1, "any_c")

        # the largest live exponent M (pe of the others, xr at the label), then the bias
        xr, zr, xs = Signal.like(fr.x), Signal(), Signal.like(ft.x)
        xw = signed_bits(self.x_lo - emax, max(top, self.x_hi))
        M, live = Signal(signed(xw + 1)), Signal()
        m.d.sync += [xr.eq(fr.x), zr.eq(fr.zero), xs.eq(ft.x),
                     M.eq(Mux(any_nl & (fr.zero | (pmax >= fr.x)), pmax, fr.x)),
                     live.eq(any_nl | ~fr.zero)]
        go = delay(m, go, 1, "go_m")
        ob = Signal(signed(self.bias_bits))
        m.d.sync += ob.eq(Mux(live, M - xs - emax, 0))
        m.d.comb += self.o_bias.eq(ob)

        # output: one registered beat per cycle, E = pe - M + emax (xr - M + emax at the
        # label), which never exceeds emax
        out = Signal(range(n + 1))
        running, o_run = Signal(), Signal()
        with m.If(go):
            m.d.sync += [running.eq(1), out.eq(0)]
        with m.Elif(running):
            m.d.sync += out.eq(out + 1)
            with m.If(out == n - 1):
                m.d.sync += running.eq(0)
        lab = out == self.label
        E = Signal(signed(xw + 2))
        m.d.comb += E.eq(Mux(lab, xr, Array(pe)[out]) - M + emax)
        under = E < 1
        zero = Mux(lab, zr, ~(alive.bit_select(out, 1) if n > 1 else alive[0]))
        if fmt.underflow == "flush":
            code = Mux(zero | under, 0, Cat(E[:fmt.exp_bits], lab))
        else:
            code = Mux(zero, 0, Cat(Mux(under, 1, E[:fmt.exp_bits]), lab))
        o = self.o_stream
        m.d.sync += [o.valid.eq(running), o.payload.code.as_value().eq(code),
                     o.payload.index.eq(out)]
        return m

    def _logits(self, m):
        """As each logit arrives: ``z_i`` into register ``i``, ``max z``, the prediction.
        Returns the pulse one cycle after the last ``z`` is written."""
        cfg, fmt, mac = self.cfg, self.cfg.fmt, self.cfg.mac
        n, f, g = self.n_out, fmt.frac_bits, fmt.gamma
        i = self.i_stream
        qb = self.bias >> f
        c0 = SOFTMAX_P - mac.lsb_q
        sh_n = Signal(range(self.sh_hi + 1))
        m.d.comb += sh_n.eq(Mux(qb >= c0 - self.sh_lo, self.sh_lo,
                                Mux(qb <= c0 - self.sh_hi, self.sh_hi, c0 - qb)))
        C = Signal(self.c_bits)
        m.d.comb += C.eq(Array(Const(c, self.c_bits) for c in logit_constants(g))
                         [self.bias[:f]] if f else self.C[0])
        sh, Cr, sh_m1 = Signal.like(sh_n), Signal.like(C), Signal.like(sh_n)
        # the bias is held: registered copies (one cycle of slack before the first logit)
        m.d.sync += [sh.eq(sh_n), Cr.eq(C), sh_m1.eq(sh_n - 1)]
        half = Signal(signed(self.p_bits + 1))
        m.d.sync += half.eq(Mux(sh == 0, 0, Const(1, self.p_bits) << sh_m1))
        S1, v1 = Signal(signed(mac.acc_bits)), Signal()
        m.d.sync += [S1.eq(i.payload.S), v1.eq(i.valid)]
        p = Signal(signed(self.p_bits))
        m.d.sync += p.eq(S1 * Cr)                     # a pipelined multiplier
        p2 = delay(m, p, 1, "prod")
        ph = Signal(signed(self.p_bits + 1))
        m.d.sync += ph.eq(p2 + half)                  # round half up ...
        z = Signal(signed(self.z_bits))
        m.d.sync += z.eq(ph >> sh)                    # ... and the shift
        vz = delay(m, v1, 4, "z_v")
        ix = Signal(range(n + 1))
        with m.If(vz):
            m.d.sync += ix.eq(Mux(ix == n - 1, 0, ix + 1))
        self._zs = [Signal(signed(self.z_bits), name=f"z{k}") for k in range(n)]
        self._zmax = zmax = Signal(signed(self.z_bits))
        for k in range(n):
            with m.If(vz & (ix == k)):
                m.d.sync += self._zs[k].eq(z)
        with m.If(vz & ((ix == 0) | (z > zmax))):
            m.d.sync += zmax.eq(z)
        # the prediction on S: the first largest logit (golden's argmax)
        smax = Signal(signed(mac.acc_bits))
        ia = Signal(range(n + 1))
        with m.If(i.valid):
            m.d.sync += ia.eq(Mux(ia == n - 1, 0, ia + 1))
            with m.If((ia == 0) | (i.payload.S > smax)):
                m.d.sync += [smax.eq(i.payload.S), self.argmax.eq(ia)]
        return delay(m, vz & (ix == n - 1), 1, "go")

    def _elements(self, m, go):
        """Every element at once: ``d = max z - z``, alive when ``d <= top``, ``pe = top -
        d``; then ``L = T[pe mod gamma] << (pe >> f)`` and the max-candidates."""
        fmt, mac = self.cfg.fmt, self.cfg.mac
        n, f, top = self.n_out, fmt.frac_bits, self.top
        pe = [Signal(self.pe_bits, name=f"pe{k}") for k in range(n)]
        alive = Signal(n)
        for k in range(n):
            d = Signal(self.z_bits + 1, name=f"d{k}")
            m.d.comb += d.eq(self._zmax - self._zs[k])
            m.d.sync += [pe[k].eq(top - d[:self.pe_bits + 1]), alive[k].eq(d <= top)]
        T = pow2_table(f, mac.lut_frac)
        Ws = self.cfg.softmax_window
        Ls, cand = [], []
        lab_L = Signal(mac.lut_frac + Ws)
        for k in range(n):
            t = Array(Const(int(v), mac.lut_frac + 1) for v in T)[pe[k][:f]] if f else \
                Const(int(T[0]), mac.lut_frac + 1)
            L = Signal(mac.lut_frac + Ws, name=f"L{k}")
            c = Signal(self.pe_bits, name=f"cand{k}")
            is_lab = self.label == k
            # the label's L is kept apart (rest leaves it out), and it is no candidate of M
            m.d.sync += [L.eq(Mux(alive[k] & ~is_lab, t << (pe[k] >> f), 0)),
                         c.eq(Mux(alive[k] & ~is_lab, pe[k], 0))]
            with m.If(is_lab):
                m.d.sync += lab_L.eq(Mux(alive[k], t << (pe[k] >> f), 0))
            Ls.append(L)
            cand.append(c)
        return pe, alive, Ls, cand, lab_L, delay(m, go, 2, "go_el")

    def _sums(self, m, Ls, cand, alive, go):
        """``rest = sum L`` and ``max cand`` by trees with a register every two levels."""
        n = self.n_out
        any_nl = Signal()
        m.d.sync += any_nl.eq((alive & ~Cat(*(self.label == k for k in range(n)))).any())
        sums, maxes, stage = list(Ls), list(cand), 0
        while len(sums) > 1:
            for _ in range(2):
                if len(sums) == 1:
                    break
                sums = [sums[k] + sums[k + 1] for k in range(0, len(sums) - 1, 2)] + \
                    ([sums[-1]] if len(sums) % 2 else [])
                maxes = [Mux(maxes[k] > maxes[k + 1], maxes[k], maxes[k + 1])
                         for k in range(0, len(maxes) - 1, 2)] + \
                    ([maxes[-1]] if len(maxes) % 2 else [])
            stage += 1
            sums = [_reg(m, v, self.sum_bits, f"rs{stage}_{k}") for k, v in enumerate(sums)]
            maxes = [_reg(m, v, self.pe_bits, f"mx{stage}_{k}") for k, v in enumerate(maxes)]
        any_nl = delay(m, any_nl, stage, "any_nl")
        return sums[0], maxes[0], any_nl, delay(m, go, max(stage, 0), "go_sum")


def _reg(m, value, width, name):
    r = Signal(width, name=name)
    m.d.sync += r.eq(value)
    return r


def _max_tree(values):
    """The largest of unsigned values, as a balanced tree of comparisons."""
    values = list(values)
    while len(values) > 1:
        nxt = [Mux(values[k] > values[k + 1], values[k], values[k + 1])
               for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]

