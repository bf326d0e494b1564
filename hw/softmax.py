"""The output-loss gradient of the trainer: softmax cross-entropy error in LNS.

:class:`SoftmaxError` computes ``LNSMLP._error_out`` of :mod:`lnsmadam.golden.mlp` bit for
bit: from the logit accumulator words ``S_i`` (LSB weight ``2**lsb_q`` times the runtime
tensor bias), ``z_i = round_half_up(S_i * C[r] / 2**sh)`` with the ``gamma``-entry table
``C[r] = round(gamma * log2(e) * 2**(r/gamma) * 2**P)``, ``d_i = z_i - max z``,
``L_i = to_linear(d_i + gamma*(Ws - 1))`` over ``Ws`` octaves, ``Sum = sum L_i``, the error
exponents ``d_i + gamma*(Ws-1) - log(Sum)`` (``p_i``) and ``log(Sum - L_label) - log(Sum)``
with a minus sign at the label, and the dynamic requantisation (largest live exponent at
``emax``).

Only ``d_i`` in ``[-gamma*Ws, 0]`` can give a non-ZERO ``L_i``, so ``d_i`` is clamped at
``-(gamma*Ws)`` (the golden ``max(pe, -64 gamma)`` clamp plays the same role); the
difference ``z_i - max z`` is formed from the exact 54-bit products, so the clamp never
changes a result.

Schedule (``n = n_out``): pass A takes the ``n`` input beats (one per cycle, ``i_stream``
ready) and keeps ``S`` and the largest product; pass B re-reads ``S`` and forms ``d``,
``L`` and ``Sum`` (``n + 3`` cycles); two cycles convert ``Sum`` and ``Sum - L_label``;
pass C finds the largest live exponent (``n + 1`` cycles); pass D presents the ``n`` codes
on ``o_stream`` (one per cycle while ``ready``). Latency from the last input beat to the
first output beat is about ``2n + 8`` cycles; one vector at a time.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lnsmadam.golden.format import check_int
from lnsmadam.golden.mlp import LOG2E, SOFTMAX_P, MLPConfig

from .convert import FromLinear, ToLinear
from .format import lns_layout, requantize, signed_bits

__all__ = ["SoftmaxError"]


class SoftmaxError(wiring.Component):
    """Softmax cross-entropy error codes of one logit vector (see the module docstring).

    Parameters
    ----------
    cfg : MLPConfig
        Supplies ``n_out = sizes[-1]`` (1..4096), ``fmt`` (``frac_bits`` 0..12), ``mac``
        (``acc_bits``, ``lut_frac``, ``mid_bits``, ``lsb_q``) and ``softmax_window``.
    bias_bits : int, 2..32
        Width of the signed logit bias input and of the error bias output.

    Ports: ``i_stream`` (payload ``S``, ``n_out`` beats in index order); ``bias``, ``label``
    (held from the first input beat until the last output beat is taken); ``o_stream``
    (payload ``code``, ``index``; ``n_out`` beats in index order); ``o_bias`` (the error
    tensor's bias, valid with the output beats).
    """

    def __init__(self, cfg: MLPConfig, bias_bits: int = 16):
        if not isinstance(cfg, MLPConfig):
            raise ValueError(f"cfg must be an MLPConfig, got {cfg!r}")
        self.cfg = cfg
        self.bias_bits = check_int("bias_bits", bias_bits, 2, 32)
        self.n = check_int("n_out (sizes[-1])", cfg.sizes[-1], 1, 4096)
        fmt, mac = cfg.fmt, cfg.mac
        g, f = fmt.gamma, fmt.frac_bits
        self.table = [int(round(g * LOG2E * 2.0 ** (r / g) * 2.0 ** SOFTMAX_P))
                      for r in range(g)]
        idx = range(max(self.n, 2))
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({"S": signed(mac.acc_bits)}))),
            "bias": In(signed(self.bias_bits)),
            "label": In(idx),
            "o_stream": Out(stream.Signature(data.StructLayout({"code": lns_layout(fmt),
                                                                 "index": idx}))),
            "o_bias": Out(signed(self.bias_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, n = self.cfg, self.n
        fmt, mac = cfg.fmt, cfg.mac
        g, f = fmt.gamma, fmt.frac_bits
        Ws = cfg.softmax_window
        top = g * (Ws - 1)
        dmax = g * Ws                        # d below -dmax + gamma is ZERO already
        emax = fmt.emax
        acc = mac.acc_bits
        cbits = max(self.table).bit_length()
        pbits = acc + cbits + 1              # signed product
        # sh = P - lsb_q - (bias >> f): beyond [-kmax, shmax] the results no longer change
        shmax = pbits + 1
        kmax = dmax.bit_length() + 1

        s_mem = Memory(shape=signed(acc), depth=max(n, 2), init=[])
        m.submodules.s_mem = s_mem
        s_wp = s_mem.write_port()
        s_rp = s_mem.read_port()
        pe_layout = data.StructLayout({"pe": signed(signed_bits(-dmax + top, top)),
                                       "zero": 1})
        pe_mem = Memory(shape=pe_layout, depth=max(n, 2), init=[])
        m.submodules.pe_mem = pe_mem
        pe_wp = pe_mem.write_port()
        pe_rp = pe_mem.read_port()

        # per-vector constants from the bias
        qb = self.bias >> f
        rb = self.bias[:f] if f else Const(0, 1)
        C = Array(Const(c, cbits) for c in self.table)[rb]
        sh_full = Signal(signed(self.bias_bits + 8))
        m.d.comb += sh_full.eq(SOFTMAX_P - mac.lsb_q - qb)
        sh = Signal(range(shmax + 1))        # right shift, 0 when sh_full <= 0
        k = Signal(range(kmax + 1))          # left shift when sh_full < 0
        m.d.comb += [sh.eq(Mux(sh_full <= 0, 0, Mux(sh_full > shmax, shmax, sh_full))),
                     k.eq(Mux(sh_full >= 0, 0, Mux(-sh_full > kmax, kmax, -sh_full)))]

        def zr(p):
            """round_half_up(p / 2**sh) for sh > 0, p itself otherwise (p signed)."""
            half = (Const(1, shmax + 2) << sh) >> 1          # 2**(sh-1), 0 for sh = 0
            return (p.as_signed() + half).as_signed() >> sh

        cnt = Signal(range(max(n, 2) + 1))
        pmax = Signal(signed(pbits))
        zmax = Signal(signed(pbits + 1))
        total = Signal(unsigned(mac.lut_frac + Ws + max(n - 1, 1).bit_length() + 1))
        l_lab = Signal.like(total)
        xs = Signal(signed(16))
        xr = Signal(signed(16))
        zr_lab = Signal()
        xmax = Signal(signed(18))
        any_live = Signal()
        tl = m.submodules.to_linear = ToLinear(fmt, mac.lut_frac, 0, Ws)
        fl = m.submodules.from_linear = FromLinear(len(total) + 1, f, mac.mid_bits,
                                                   -mac.lut_frac)
        d1 = Signal()
        d1_idx = Signal(range(max(n, 2)))
        d2 = Signal()
        d2_idx = Signal(range(max(n, 2)))
        p2 = Signal(signed(pbits))
        m.d.sync += [d1.eq(0), d2.eq(0)]

        o = self.o_stream
        with m.FSM(name="smx"):
            with m.State("A"):
                # take the inputs, store S, track the largest product
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(self.i_stream.valid):
                    S = self.i_stream.payload.S
                    P = S * C
                    m.d.comb += [s_wp.en.eq(1), s_wp.addr.eq(cnt), s_wp.data.eq(S)]
                    with m.If((cnt == 0) | (P > pmax)):
                        m.d.sync += pmax.eq(P)
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == n - 1):
                        m.d.sync += [cnt.eq(0), total.eq(0), l_lab.eq(0)]
                        m.next = "ZMAX"
            with m.State("ZMAX"):
                m.d.sync += zmax.eq(zr(pmax))
                m.next = "B"
            with m.State("B"):
                # read S (cycle 0), product (cycle 1), d -> L (cycle 2)
                m.d.comb += s_rp.addr.eq(cnt)
                with m.If(cnt < n):
                    m.d.sync += [cnt.eq(cnt + 1), d1.eq(1), d1_idx.eq(cnt)]
                with m.If(d1):
                    m.d.sync += [p2.eq(s_rp.data * C), d2.eq(1), d2_idx.eq(d1_idx)]
                with m.If(d2):
                    diff = Signal(signed(pbits + 2))
                    m.d.comb += diff.eq(zr(p2) - zmax)
                    # left shift k only when sh_full < 0 (then zr is the identity)
                    dl = Mux(diff < -dmax, -dmax, diff)
                    dsh = Signal(signed(signed_bits(-dmax << kmax, 0)))
                    m.d.comb += dsh.eq(dl << k)
                    d = Mux(dsh < -dmax, -dmax, dsh)
                    pe = Signal(pe_layout.members["pe"])
                    m.d.comb += [pe.eq(d + top), tl.p.eq(pe), tl.sign.eq(0), tl.zero.eq(0)]
                    m.d.comb += [pe_wp.en.eq(1), pe_wp.addr.eq(d2_idx)]
                    pv = data.View(pe_layout, pe_wp.data)
                    m.d.comb += [pv.pe.eq(pe), pv.zero.eq(tl.lin == 0)]
                    m.d.sync += total.eq(total + tl.lin)
                    with m.If(d2_idx == self.label):
                        m.d.sync += l_lab.eq(tl.lin)
                    with m.If(d2_idx == n - 1):
                        m.next = "LOGSUM"
            with m.State("LOGSUM"):
                m.d.comb += fl.S.eq(total)
                m.d.sync += xs.eq(fl.x)
                m.next = "LOGREST"
            with m.State("LOGREST"):
                m.d.comb += fl.S.eq(total - l_lab)
                m.d.sync += [xr.eq(fl.x), zr_lab.eq(fl.zero), cnt.eq(0), any_live.eq(0)]
                m.next = "C"
            # x_i = pe_i - log(Sum), the label x = log(rest) - log(Sum); the largest live one
            with m.State("C"):
                m.d.comb += pe_rp.addr.eq(cnt)
                with m.If(cnt < n):
                    m.d.sync += [cnt.eq(cnt + 1), d1.eq(1), d1_idx.eq(cnt)]
                with m.If(d1):
                    v = data.View(pe_layout, pe_rp.data)
                    lab = d1_idx == self.label
                    x = Mux(lab, xr - xs, v.pe - xs)
                    live = ~Mux(lab, zr_lab, v.zero)
                    with m.If(live & (~any_live | (x > xmax))):
                        m.d.sync += [xmax.eq(x), any_live.eq(1)]
                    with m.If(d1_idx == n - 1):
                        m.d.sync += cnt.eq(0)
                        m.next = "D"
            # the codes, with the stall-able read: the port holds while not advancing
            with m.State("D"):
                b = Mux(any_live, xmax, emax) - emax
                m.d.comb += self.o_bias.eq(b)
                adv = ~o.valid | o.ready
                m.d.comb += [pe_rp.en.eq(adv), pe_rp.addr.eq(cnt)]
                with m.If(adv):
                    m.d.sync += [o.valid.eq(cnt < n), d1_idx.eq(cnt)]
                    with m.If(cnt < n):
                        m.d.sync += cnt.eq(cnt + 1)
                v = data.View(pe_layout, pe_rp.data)
                lab = d1_idx == self.label
                x = Mux(lab, xr - xs, v.pe - xs)
                zero = Mux(lab, zr_lab, v.zero)
                m.d.comb += [o.payload.code.as_value().eq(requantize(fmt, lab, x - b, zero)),
                             o.payload.index.eq(d1_idx)]
                with m.If(o.valid & o.ready & (d1_idx == n - 1)):
                    m.d.sync += [o.valid.eq(0), cnt.eq(0)]
                    m.next = "A"
        return m
