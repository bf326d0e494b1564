"""The trainer's shared datapath: the wiring between its memories and its units.

Built once and steered by the phase flags: per lane, ``forward_weights`` of one stored weight
code (FWD, BWD) and the gradient ``G = e (x) a`` (UPD), formed on the fly; the read and
write ports of every memory; the dynamic requantisation of the scratch entries (HREQ,
EREQ); the MAC's, the update engines' and the softmax unit's inputs.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value
from amaranth.lib import data

from ..format import is_zero, lns_layout, requantize
from .counters import Counters
from .geometry import Geometry
from .layers import Layers
from .memories import Memories
from .registers import Registers

__all__ = ["Datapath"]


class Datapath:
    """The datapath, built into ``m`` on construction.

    Outputs used by the sequencer and the bus port: ``u_rd[b]``, ``v_rd[b]`` (the weight and
    state words read from lane bank ``b`` of layer ``lsel``: the sequencer's layer, or while
    idle ``rd_layer``, which the bus port sets), ``o`` (the MAC's results), ``x_res`` (a
    result's exponent with its tensor biases), ``live`` (ReLU: it is positive; BWD: the ReLU
    derivative of its column), ``bnew`` (the dynamic bias of the phase's maximum),
    ``load_const`` (LOAD reached the constant 1), ``o0`` (update engine 0's results) and
    ``s_valid`` (a logit is offered to the softmax unit).
    """

    def __init__(self, m: Module, geo: Geometry, bus, mem: Memories, layers: Layers,
                 regs: Registers, ph, cnt: Counters, pb, ecl, units, label):
        self.m, self.geo, self.bus, self.mem, self.layers = m, geo, bus, mem, layers
        self.regs, self.ph, self.cnt, self.pb, self.ecl = regs, ph, cnt, pb, ecl
        self.mac, self.engines, self.smx = units.mac, units.engines, units.smx
        self._forward_weights()
        self._gradients()
        self._weight_reads()
        self._activations()
        self._errors()
        self._scratch()
        self._mac_input()
        self._mask()
        self._update_input()
        self._weight_writes()
        self._softmax_input(label)

    def _forward_weights(self):
        """``fq_out[b]``: the forward code of stored weight ``fq_in[b]`` (FWD, BWD)."""
        geo, regs = self.geo, self.regs
        fmt, W = geo.fmt, geo.mlp.madam.weight
        self.fq_in = [Signal(W.bits, name=f"fq_in{b}") for b in range(geo.lanes)]
        self.fq_out = []
        s_fw = W.frac_bits - fmt.frac_bits
        for b in range(geo.lanes):
            w = data.View(lns_layout(W), self.fq_in[b])
            xf = (w.exp + regs.ub + ((1 << s_fw) >> 1)) >> s_fw
            self.fq_out.append(requantize(fmt, w.sign, xf - regs.fb, is_zero(w)))

    def _gradients(self):
        """``g_out[b]``: the gradient code ``e (x) a`` of ``g_e`` and ``g_a[b]`` (UPD)."""
        geo = self.geo
        fmt, code_l = geo.fmt, lns_layout(geo.fmt)
        self.g_e = g_e = Signal(fmt.bits)
        self.g_a = [Signal(fmt.bits, name=f"g_a{b}") for b in range(geo.lanes)]
        self.g_out = []
        for b in range(geo.lanes):
            ev, av = data.View(code_l, g_e), data.View(code_l, self.g_a[b])
            self.g_out.append(requantize(fmt, ev.sign ^ av.sign, ev.exp + av.exp - fmt.emax,
                                         is_zero(ev) | is_zero(av)))

    def _weight_reads(self):
        # every layer's weight and state memories see the same read address (the bus's,
        # or the sequencer's); reads are harmless, writes are enabled per layer
        m, geo, mem, ph, cnt = self.m, self.geo, self.mem, self.ph, self.cnt
        nl, L = geo.n_layers, geo.lanes
        w_raddr = Signal(cnt.count_range)
        m.d.comb += w_raddr.eq(Mux(ph.idle, self.bus.cmd_addr, Mux(ph.bwd, cnt.cadr, cnt.lin)))
        for l in range(nl):
            for b in range(L):
                m.d.comb += [mem.U[l][b].rd.addr.eq(w_raddr), mem.V[l][b].rd.addr.eq(w_raddr)]
        # the layer whose weights are read: the sequencer's, or (idle) the bus's, so that
        # bus reads share these muxes
        self.rd_layer = rd_layer = Signal(range(max(nl, 2)))
        lsel = Signal(range(max(nl, 2)))
        m.d.comb += lsel.eq(Mux(ph.idle, rd_layer, self.layers.lay))
        pick = self.layers.pick
        self.u_rd = [pick([mem.U[l][b].rd.data for l in range(nl)], f"u_rd{b}", lsel)
                     for b in range(L)]
        self.v_rd = [pick([mem.V[l][b].rd.data for l in range(nl)], f"v_rd{b}", lsel)
                     for b in range(L)]

    def _activations(self):
        """``a``: read by FWD and UPD (layer ``lay``), written by LOAD (layer 0; the
        constant 1 at index ``n_in``) and HREQ (layer ``lay + 1``, the constant 1 at
        ``rows``), with the dynamic requantisation of the scratch entry read last cycle
        (``req_code``, also EREQ's); the next layer's constant 1 enters as ``d1_const``."""
        m, geo, mem, ph, cnt, layers = self.m, self.geo, self.mem, self.ph, self.cnt, self.layers
        fmt, emax = geo.fmt, geo.fmt.emax
        self.bnew = Mux(cnt.any_live, cnt.mx, emax) - emax
        xv = data.View(mem.xt_layout, mem.XT.rd.data[:mem.xt_layout.size])
        d1_const = cnt.d1_const
        self.req_code = requantize(fmt, Mux(d1_const, 0, xv.sign),
                                   Mux(d1_const, 0, xv.x) - self.bnew,
                                   Mux(d1_const, 0, xv.zero))
        byte = Mux(cnt.d1_idx[0], mem.d_rp.data[8:16], mem.d_rp.data[0:8])
        self.load_const = cnt.d1_idx == geo.n_in
        a_wdata = Mux(ph.hreq, self.req_code, Mux(self.load_const, emax, byte[:fmt.bits]))
        a_waddr = Mux(ph.hreq, layers.a_next_t, 0) + geo.word(cnt.d1_idx)
        for b in range(geo.lanes):
            rp, wp = mem.A[b].rd, mem.A[b].wr
            m.d.comb += [rp.addr.eq(layers.a_base_t + cnt.ic), wp.addr.eq(a_waddr),
                         wp.data.eq(a_wdata),
                         wp.en.eq(cnt.d1_valid & (ph.load | ph.hreq)
                                  & (geo.bank(cnt.d1_idx) == b))]

    def _errors(self):
        """``e``: read by BWD (layer ``lay``, by row) and UPD (by output), written by SMX
        (the output layer) and EREQ (layer ``lay - 1``)."""
        m, E, ph, cnt, layers = self.m, self.mem.E, self.ph, self.cnt, self.layers
        smx_o = self.smx.o_stream
        m.d.comb += [E.rd.addr.eq(layers.e_base_t + Mux(ph.bwd, cnt.ic, cnt.oc)),
                     E.wr.addr.eq(Mux(ph.smx, self.geo.e_base[-1] + smx_o.payload.index,
                                      layers.e_prev_t + cnt.d1_idx)),
                     E.wr.data.eq(Mux(ph.smx, Value.cast(smx_o.payload.code), self.req_code)),
                     E.wr.en.eq(Mux(ph.smx, smx_o.valid, ph.ereq & cnt.d1_valid))]

    def _scratch(self):
        """Scratch: XT entries (FWD of a hidden layer, BWD) or logits (FWD of the output
        layer) written at index ``co``; read at ``oc`` (HREQ, EREQ, SMX)."""
        m, mem, ph, cnt = self.m, self.mem, self.ph, self.cnt
        self.o = o = self.mac.o_stream
        self.x_res = o.payload.exp + self.pb
        # hidden FWD: ReLU (live = positive); BWD: the ReLU derivative of the column
        mask_bit = mem.MASK.rd.data if mem.MASK is not None else Const(1)
        self.live = live = ~o.payload.zero & Mux(ph.bwd, mask_bit, ~o.payload.sign)
        xt_w = Signal(mem.xt_layout)
        m.d.comb += [xt_w.x.eq(self.x_res), xt_w.sign.eq(ph.bwd & o.payload.sign),
                     xt_w.zero.eq(~live)]
        m.d.comb += [mem.XT.rd.addr.eq(cnt.oc), mem.XT.wr.addr.eq(cnt.co),
                     mem.XT.wr.data.eq(Mux(ph.fwd & self.layers.is_last, self.mac.tap_acc,
                                           xt_w.as_value()))]

    def _mac_input(self):
        """The MAC: FWD streams ``lanes`` weights and activations per beat; BWD reads one
        weight per cycle (a column), through lane 0, the other lanes see ZERO operands."""
        m, mac, ph, cnt, mem = self.m, self.mac, self.ph, self.cnt, self.mem
        mac_in = mac.i_stream.payload
        for b in range(self.geo.lanes):
            m.d.comb += mac_in.a[b].as_value().eq(self.fq_out[b])
        m.d.comb += [mac.i_stream.valid.eq(cnt.d1_valid & (ph.fwd | ph.bwd)),
                     mac_in.first.eq(cnt.d1_first), mac_in.last.eq(cnt.d1_last)]
        wsel = Array(self.u_rd)[cnt.d1_bank]
        for b in range(self.geo.lanes):
            if b == 0:
                m.d.comb += [self.fq_in[0].eq(Mux(ph.bwd, wsel, self.u_rd[0])),
                             mac_in.b[0].as_value().eq(Mux(ph.bwd, mem.E.rd.data,
                                                           mem.A[0].rd.data))]
            else:
                m.d.comb += [self.fq_in[b].eq(Mux(ph.bwd, 0, self.u_rd[b])),
                             mac_in.b[b].as_value().eq(Mux(ph.bwd, 0, mem.A[b].rd.data))]

    def _mask(self):
        """BWD: the mask bit of the column whose result comes next (``co`` after this
        cycle), read one cycle ahead of it."""
        MASK, cnt, layers = self.mem.MASK, self.cnt, self.layers
        if MASK is not None:
            self.m.d.comb += [MASK.rd.addr.eq(layers.k_prev_t + cnt.co
                                              + (self.ph.bwd & self.o.valid)),
                              MASK.wr.addr.eq(layers.k_base_t + cnt.co),
                              MASK.wr.data.eq(self.live)]

    def _update_input(self):
        m, ph, mem = self.m, self.ph, self.mem
        m.d.comb += self.g_e.eq(mem.E.rd.data)
        for b, eng in enumerate(self.engines):
            p = eng.i_stream.payload
            m.d.comb += [eng.i_stream.valid.eq(ph.upd & self.cnt.d1_valid),
                         self.g_a[b].eq(mem.A[b].rd.data),
                         p.w.as_value().eq(self.u_rd[b]), p.v.as_value().eq(self.v_rd[b]),
                         p.g.as_value().eq(self.g_out[b]), eng.g_bias.eq(self.pb),
                         eng.e_clamp.eq(self.ecl)]

    def _weight_writes(self):
        """UPD writes the engines' results back in place (layer ``lay``); while idle the
        ports carry the bus's address and data (the bus port enables them)."""
        m, ph, mem, bus, co = self.m, self.ph, self.mem, self.bus, self.cnt.co
        self.o0 = self.engines[0].o_stream
        upd_we = ph.upd & self.o0.valid
        for l in range(self.geo.n_layers):
            for b, eng in enumerate(self.engines):
                wpu, wpv = mem.U[l][b].wr, mem.V[l][b].wr
                m.d.comb += [wpu.addr.eq(Mux(ph.idle, bus.cmd_addr, co)),
                             wpv.addr.eq(Mux(ph.idle, bus.cmd_addr, co)),
                             wpu.data.eq(Mux(ph.idle, bus.cmd_wdata,
                                             eng.o_stream.payload.w_new)),
                             wpv.data.eq(Mux(ph.idle, bus.cmd_wdata,
                                             eng.o_stream.payload.v_new)),
                             wpu.en.eq(upd_we & (self.layers.lay == l)),
                             wpv.en.eq(upd_we & (self.layers.lay == l))]

    def _softmax_input(self, label):
        """SMX: a stall-able read of the logits; the read port holds while the softmax unit
        does not take one."""
        m, ph, smx, XT, cnt = self.m, self.ph, self.smx, self.mem.XT, self.cnt
        s_valid = self.s_valid = Signal()
        m.d.comb += [cnt.smx_adv.eq(~s_valid | smx.i_stream.ready),
                     smx.bias.eq(self.pb), smx.label.eq(label),
                     XT.rd.en.eq(~ph.smx | cnt.smx_adv),
                     smx.i_stream.valid.eq(s_valid),
                     smx.i_stream.payload.S.eq(XT.rd.data[:self.geo.acc_bits]),
                     smx.o_stream.ready.eq(1)]
        with m.If(ph.smx & cnt.smx_adv):
            m.d.sync += s_valid.eq(cnt.issuing)
