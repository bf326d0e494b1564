"""Formal harness of the LNS-Madam update engine (:class:`~lnsmadam.hw.update.MadamUpdate`).

Environment: any legal input stream of ``(w, v, g)`` codes, any backpressure, and side-band
inputs (``g_bias``, ``e_clamp``, ``bc_exp``, ``lr_step`` 1..64 when runtime) that are free
but held for the whole run (the engine requires them held while it is not empty).

Always (k-induction at every ``pipeline``):

* ``o_valid_held``, ``o_payload_stable``; ``pipe_count``, ``pipe_latency`` (one result per
  weight, in order, ``pipeline + 1`` advancing cycles after it was accepted);
* of the tracked weight's result: ``w_in_clamp`` (a non-ZERO weight stays inside its clamp:
  ``1 <= E' <= e_clamp``, ZERO only for ``e_clamp = 0`` as golden's ``clip``),
  ``zero_stays_zero`` (a ZERO weight, by its zero flag ``E = 0``, stays ZERO and reports
  ``n = 0``; the sign bit of a ZERO is left open), ``sign_kept``, ``step_applied``
  (``E' = clip(E + n, 1, e_clamp)`` with the reported ``n``), ``step_bounded``
  (``|n| <= lr_step * g_bound``); ``pipe_w_<cut>``, ``pipe_step_bounded``: the invariants
  that carry the tracked weight's code (and its step) through the cuts.

``state=True`` adds the properties that relate the result to the gradient and the second
moment (inductive at ``pipeline = 0``; bounded at other depths, since these inputs are
transformed stage by stage):

* ``step_direction`` (the magnitude shrinks when the weight's and gradient's signs agree,
  grows otherwise), ``zero_grad_no_step`` (a ZERO gradient moves nothing);
* ``state_no_wrap``: the EMA never wraps: ``ev' >= ev - 1`` for ``ev >= 2`` (a decay by
  ``1 - 2**-k >= 1/2`` loses at most one octave; a new g² only adds);
* ``state_keeps_g2``: the EMA never loses the new gradient's share: ``ev' >= eg - k - 1``
  with ``eg`` the exponent of g² (``v' >= g² * 2**-k`` up to the rounding), whenever that
  is inside the range (seeding mode);
* ``state_saturates``: a saturated state with a saturating g² stays at the largest code;
* ``state_zero``: a ZERO state with a ZERO gradient stays ZERO.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed

from ...hw.format import lns_layout
from ...hw.update import state_layout

from .harness import Harness, check_pipeline, check_stream, drive_stream

__all__ = ["UpdateHarness"]


class UpdateHarness(Harness):
    """Parameters: ``make`` (zero-argument callable returning the engine or a mutant),
    ``state`` (add the second-moment properties)."""

    block = "update"

    def __init__(self, make, state: bool = False, mutate=None):
        super().__init__(make, mutate)
        self.state = state

    def build(self, m: Module, platform):
        dut, el = self.instantiate(m, platform)
        cfg = dut.cfg
        W, G, V = cfg.weight, cfg.grad, cfg.state
        i, o = dut.i_stream, dut.o_stream
        take, pl = drive_stream(self, m, i, "i")
        leave = check_stream(self, m, o, "o")
        g_bias = self.anyconst(m, signed(dut.bias_bits), "g_bias")
        e_clamp = self.anyconst(m, W.exp_bits, "e_clamp")
        bc_exp = self.anyconst(m, signed(dut.bc_width), "bc_exp")
        m.d.comb += [dut.g_bias.eq(g_bias), dut.e_clamp.eq(e_clamp), dut.bc_exp.eq(bc_exp)]
        if dut.runtime_lr:
            lr = self.anyconst(m, 7, "lr_step")
            self.assume(m, "lr_range", (lr >= 1) & (lr <= 64))
            m.d.comb += dut.lr_step.eq(lr)
            lr_max = lr * cfg.g_bound
        else:
            lr_max = Const(cfg.lr_step * cfg.g_bound)

        chain = [el.probe(f"{c}_valid") for c in dut.cuts] + [o.valid]
        track, tracking, pos = check_pipeline(self, m, chain, take, leave, i.ready)
        # the tracked weight's inputs
        w = Signal(lns_layout(W))
        g = Signal(lns_layout(G))
        v = Signal(state_layout(V))
        with m.If(track):
            m.d.sync += [w.eq(pl.w), g.eq(pl.g), v.eq(pl.v)]
        # the weight code travels unchanged through every cut: where the tracked one is
        for j, cut in enumerate(dut.cuts):
            self.check(m, f"pipe_w_{cut}", ~tracking | (pos != j)
                       | (el.probe(f"{cut}_w") == w.as_value()))

        if "n" in dut.cuts:
            # the step, once formed, is already bounded
            step = el.probe("n_step")
            self.check(m, "pipe_step_bounded", ~tracking | (pos != dut.cuts.index("n"))
                       | ((step <= lr_max) & (-step <= lr_max)))
        shown = tracking & (pos == dut.latency - 1)
        out = o.payload
        wn, n = out.w_new, out.n
        zw = w.exp == 0
        e_sum = Signal(signed(W.exp_bits + n.shape().width + 2))
        m.d.comb += e_sum.eq(w.exp + n)
        clipped = Mux(e_sum < 1, Mux(e_clamp == 0, 0, 1),
                      Mux(e_sum > e_clamp, e_clamp, e_sum))
        self.check(m, "zero_stays_zero", ~shown | ~zw | ((wn.exp == 0) & (n == 0)))
        self.check(m, "w_in_clamp", ~shown | zw | (wn.exp <= e_clamp)
                   & ((wn.exp >= 1) | (e_clamp == 0)))
        self.check(m, "sign_kept", ~shown | zw | (wn.exp == 0) | (wn.sign == w.sign))
        self.check(m, "step_applied", ~shown | zw | (wn.exp == clipped))
        self.check(m, "step_bounded", ~shown | ((n <= lr_max) & (-n <= lr_max)))
        if self.state:
            self.check(m, "step_direction", ~shown | zw
                       | Mux(w.sign == g.sign, n <= 0, n >= 0))
            self.check(m, "zero_grad_no_step", ~shown | (g.exp != 0) | (n == 0))
            vn = out.v_new
            # g² saturates iff (2 x_g >> f) - offset > emax, x_g = Eg + g_bias (golden)
            xg = Signal(signed(dut.bias_bits + 2))
            m.d.comb += xg.eq(g.exp + g_bias)
            t = Signal(signed(dut.bias_bits + 3))
            m.d.comb += t.eq(Cat(Const(0, 1), xg).as_signed())
            g_over = (g.exp != 0) & (((t >> G.frac_bits) - V.offset) > V.emax)
            vmax = (1 << V.bits) - 1
            # g²'s exponent as golden forms it (saturated at the top)
            egs = Signal(signed(dut.bias_bits + 4))
            m.d.comb += egs.eq(Mux(g_over, V.emax, (t >> G.frac_bits) - V.offset))
            floor = egs - cfg.beta_k - 1
            self.check(m, "state_keeps_g2", ~shown | (g.exp == 0) | (floor < 1)
                       | cfg.bias_correction | (vn.exp >= floor))
            self.check(m, "state_no_wrap", ~shown | (v.exp < 2) | (vn.exp + 1 >= v.exp))
            self.check(m, "state_saturates", ~shown | (v.as_value() != vmax) | ~g_over
                       | (vn.as_value() == vmax))
            self.check(m, "state_zero", ~shown | (v.exp != 0) | (g.exp != 0)
                       | (vn.as_value() == 0))
