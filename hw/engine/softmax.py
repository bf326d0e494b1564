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
from ..convert import FromLinear, _balanced_sum
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
        self.latency = 8 + conv_pipeline
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

        # ---- 1. per logit: z = round_half_up(S * C / 2**sh), sh clamped -------------------
        qb = self.bias >> f
        c0 = SOFTMAX_P - mac.lsb_q
        sh_n = Signal(range(self.sh_hi + 1))
        m.d.comb += sh_n.eq(Mux(qb >= c0 - self.sh_lo, self.sh_lo,
                                Mux(qb <= c0 - self.sh_hi, self.sh_hi, c0 - qb)))
        C = Signal(self.c_bits)
        m.d.comb += C.eq(Array(Const(c, self.c_bits) for c in logit_constants(g))
                         [self.bias[:f]] if f else self.C[0])
        sh, Cr = Signal.like(sh_n), Signal.like(C)
        m.d.sync += [sh.eq(sh_n), Cr.eq(C)]           # the bias is held: registered copies
        S1, v1 = Signal(signed(mac.acc_bits)), Signal()
        m.d.sync += [S1.eq(i.payload.S), v1.eq(i.valid)]
        p = Signal(signed(self.p_bits))
        m.d.sync += p.eq(S1 * Cr)                     # a pipelined multiplier
        p2 = delay(m, p, 1, "prod")
        v2 = delay(m, v1, 2, "prod_v")
        half = Signal(signed(self.p_bits + 1))
        sh_m1 = Signal.like(sh)
        m.d.comb += [sh_m1.eq(sh - 1),
                     half.eq(Mux(sh == 0, 0, Const(1, self.p_bits) << sh_m1))]
        z = Signal(signed(self.z_bits))
        m.d.sync += z.eq((p2 + half) >> sh)
        v3 = delay(m, v2, 1, "z_v")
        # the element index travels beside it
        ix = Signal(range(n + 1))
        with m.If(v3):
            m.d.sync += ix.eq(Mux(ix == n - 1, 0, ix + 1))
        zs = [Signal(signed(self.z_bits), name=f"z{k}") for k in range(n)]
        zmax = Signal(signed(self.z_bits))
        for k in range(n):
            with m.If(v3 & (ix == k)):
                m.d.sync += zs[k].eq(z)
        with m.If(v3 & ((ix == 0) | (z > zmax))):
            m.d.sync += zmax.eq(z)
        # the prediction on S: the first largest logit (golden's argmax)
        smax = Signal(signed(mac.acc_bits))
        ia = Signal(range(n + 1))
        with m.If(i.valid):
            m.d.sync += ia.eq(Mux(ia == n - 1, 0, ia + 1))
            with m.If((ia == 0) | (i.payload.S > smax)):
                m.d.sync += [smax.eq(i.payload.S), self.argmax.eq(ia)]
        last_z = v3 & (ix == n - 1)

        # ---- 2. every element: d, alive, pe, L; rest and total ----------------------------
        go = delay(m, last_z, 1, "go")               # zs and zmax settled
        T = pow2_table(f, mac.lut_frac)
        Ws = cfg.softmax_window
        pe = [Signal(self.pe_bits, name=f"pe{k}") for k in range(n)]
        alive = Signal(n)
        Ls = []
        for k in range(n):
            d = Signal(self.z_bits + 1, name=f"d{k}")
            m.d.comb += d.eq(zmax - zs[k])
            m.d.sync += [pe[k].eq(top - d[:self.pe_bits + 1]), alive[k].eq(d <= top)]
        go2 = delay(m, go, 1, "go2")
        for k in range(n):
            t = Array(Const(int(v), mac.lut_frac + 1) for v in T)[pe[k][:f]] if f else \
                Const(int(T[0]), mac.lut_frac + 1)
            L = Signal(mac.lut_frac + Ws, name=f"L{k}")
            m.d.comb += L.eq(Mux(alive[k], t << (pe[k] >> f), 0))
            Ls.append(L)
        is_lab = [self.label == k for k in range(n)]
        rest = Signal(self.sum_bits)
        lab_L = Signal(mac.lut_frac + Ws)
        m.d.sync += [rest.eq(_balanced_sum(Mux(is_lab[k], 0, Ls[k]) for k in range(n))),
                     lab_L.eq(Array(Ls)[self.label])]
        pmax = Signal(self.pe_bits)
        any_nl = Signal()
        cand = [Mux(alive[k] & ~is_lab[k], pe[k], 0) for k in range(n)]
        m.d.sync += [pmax.eq(_max_tree(cand)),
                     any_nl.eq((alive & ~Cat(*is_lab)).any())]
        total = Signal(self.sum_bits)
        m.d.comb += total.eq(rest + lab_L)
        go3 = delay(m, go2, 1, "go3")

        # ---- 3. from_linear(rest), from_linear(total) ---------------------------------------
        Pc = self.conv_pipeline
        fr = m.submodules.from_rest = FromLinear(self.sum_bits + 1, f, mac.mid_bits,
                                                 -mac.lut_frac, pipeline=Pc)
        ft = m.submodules.from_total = FromLinear(self.sum_bits + 1, f, mac.mid_bits,
                                                  -mac.lut_frac, pipeline=Pc)
        m.d.comb += [fr.S.eq(rest), ft.S.eq(total)]
        go4 = delay(m, go3, Pc, "go4")
        pmax4, any4 = delay(m, pmax, Pc, "pmax4"), delay(m, any_nl, Pc, "any4")

        # ---- 4. the largest live exponent, the codes, the bias ----------------------------
        xr, zr = fr.x, fr.zero
        xw = signed_bits(self.x_lo - emax, max(top, self.x_hi))
        M = Signal(signed(xw + 1))
        m.d.sync += M.eq(Mux(any4 & (zr | (pmax4 >= xr)), pmax4, xr))
        ob = Signal(signed(self.bias_bits))
        m.d.sync += ob.eq(Mux(any4 | ~zr, Mux(any4 & (zr | (pmax4 >= xr)), pmax4, xr)
                              - ft.x - emax, 0))
        xr5, zr5 = Signal.like(xr), Signal()
        m.d.sync += [xr5.eq(xr), zr5.eq(zr)]
        go5 = delay(m, go4, 1, "go5")
        m.d.comb += self.o_bias.eq(ob)

        # ---- output: one beat per cycle ------------------------------------------------------
        out = Signal(range(n + 1))
        running = Signal()
        with m.If(go5):
            m.d.sync += [running.eq(1), out.eq(0)]
        with m.Elif(running):
            m.d.sync += out.eq(out + 1)
            with m.If(out == n - 1):
                m.d.sync += running.eq(0)
        pe_o = Array(pe)[out]
        al_o = alive.bit_select(out, 1) if n > 1 else alive[0]
        lab = out == self.label
        E = Signal(signed(xw + 2))
        m.d.comb += E.eq(Mux(lab, xr5, pe_o) - M + emax)
        under = E < 1
        zero = Mux(lab, zr5, ~al_o)
        if fmt.underflow == "flush":
            code = Mux(zero | under, 0, Cat(E[:fmt.exp_bits], lab))
        else:
            code = Mux(zero, 0, Cat(Mux(under, 1, E[:fmt.exp_bits]), lab))
        o = self.o_stream
        m.d.comb += [o.valid.eq(running), o.payload.code.as_value().eq(code),
                     o.payload.index.eq(out)]
        return m


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

