"""The trainer's sequencer: run control, status, and the phase FSM.

The FSM only chooses the phase and moves between phases; the datapath, the counters and the
memory ports are steered by one-hot phase flags (:class:`Phases`), so that every register
and port has one short mux instead of one branch per state.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from ...golden.link import LR_STEP_MAX
from .geometry import Geometry

__all__ = ["Phases", "Sequencer"]

#: the STATUS ``state`` codes (:attr:`lnsmadam.golden.link.TrainerStatus.STATE_NAMES`)
IDLE, TRAINING, EVALUATING = 0, 1, 2


class Phases:
    """One-hot phase flags: ``idle``, ``load``, ``fwd``, ``hreq``, ``smx``, ``bwd``, ``ereq``,
    ``upd`` (driven by the FSM state)."""

    NAMES = ("idle", "load", "fwd", "hreq", "smx", "bwd", "ereq", "upd")

    def __init__(self):
        (self.idle, self.load, self.fwd, self.hreq, self.smx, self.bwd, self.ereq,
         self.upd) = (Signal(name=f"ph_{n}") for n in self.NAMES)


class Sequencer:
    """Run control and status (built into ``m`` on construction), then the FSM
    (:meth:`build`).

    Run control: ``START``'s arguments are valid with the pulse only
    (:data:`~lnsmadam.hw.bus.ControlSignature`), so ``epochs``, ``seed`` and ``lr_step``
    are copied; ``mode_eval``, ``stop_req``; the status ``epoch``, ``sample``, ``correct``,
    ``last_correct``, ``steps``, ``error``, ``state`` drive ``ctl``. Per sample: ``record``
    (its data record) and ``label``. ``ph``: the :class:`Phases`; ``restart`` starts the next
    phase's stream, ``co_inc`` counts one result of the phase.
    """

    def __init__(self, m: Module, geo: Geometry, ctl, engines):
        self.m, self.geo, self.ctl = m, geo, ctl
        self.epochs = Signal(len(ctl.epochs))
        self.seed = Signal(len(ctl.seed))
        self.lr_step = Signal(7, init=geo.mlp.madam.lr_step)
        self.mode_eval = Signal()
        self.stop_req = Signal()
        self.epoch = Signal(len(ctl.epoch))
        n_rec = range(geo.n_records + 1)
        self.sample = Signal(n_rec)
        self.correct = Signal(n_rec)
        self.last_correct = Signal(n_rec)
        self.steps = Signal(len(ctl.steps))
        self.error = Signal(len(ctl.error))
        self.state = Signal(len(ctl.state))
        m.d.comb += [ctl.state.eq(self.state), ctl.error.eq(self.error),
                     ctl.epoch.eq(self.epoch), ctl.sample.eq(self.sample),
                     ctl.correct.eq(self.correct), ctl.last_correct.eq(self.last_correct),
                     ctl.steps.eq(self.steps), ctl.busy.eq(self.state != IDLE)]
        for eng in engines:
            m.d.comb += eng.lr_step.eq(self.lr_step)
        with m.If(ctl.stop):
            m.d.sync += self.stop_req.eq(1)

        self.record = Signal(range(geo.n_records))   # the data record of the current sample
        self.label = Signal(range(max(geo.rows[-1], 2)))
        self.ph = Phases()
        self.restart = Signal()
        self.co_inc = Signal()

    def build(self, layers, regs, mem, cnt, dp, smx, shuf, port) -> None:
        """The FSM over the phases, with the blocks it steers."""
        m, geo = self.m, self.geo
        self.layers, self.regs, self.mem, self.cnt, self.dp = layers, regs, mem, cnt, dp
        self.smx, self.shuf, self.port = smx, shuf, port
        self.n_run = Signal(range(geo.n_records + 1))    # samples in this epoch / evaluation
        ep = Signal(len(shuf.epoch))
        m.d.comb += [shuf.n.eq(regs.n_train), shuf.seed.eq(self.seed),
                     ep.eq(regs.epoch_base + self.epoch), shuf.epoch.eq(ep),
                     shuf.rd_addr.eq(self.sample)]
        self.run_state = Mux(self.mode_eval, EVALUATING, TRAINING)
        base = self.base = Signal(range(mem.data.depth))
        m.d.comb += base.eq(self.record * geo.rec)

        with m.FSM(name="seq"):
            self._idle()
            self._shuffle()
            self._fetch()
            self._load()
            self._forward()
            self._softmax()
            self._backward()
            self._update()
            self._done()

    def _idle(self):
        m, ctl, regs = self.m, self.ctl, self.regs
        with m.State("IDLE"):
            m.d.comb += [self.state.eq(IDLE), self.ph.idle.eq(1)]
            self.port.serve()
            with m.If(ctl.start | ctl.evaluate):
                m.d.sync += [self.stop_req.eq(0), self.epoch.eq(0), self.sample.eq(0),
                             self.correct.eq(0), self.error.eq(0)]
                ok = ((regs.n_train != 0)
                      & (regs.n_train + regs.n_test <= self.geo.n_records))
                with m.If(ctl.start):
                    with m.If(ok & (ctl.epochs != 0) & (ctl.lr_step >= 1)
                              & (ctl.lr_step <= LR_STEP_MAX)):
                        m.d.sync += [self.epochs.eq(ctl.epochs), self.seed.eq(ctl.seed),
                                     self.lr_step.eq(ctl.lr_step), self.mode_eval.eq(0),
                                     self.n_run.eq(regs.n_train)]
                        m.next = "SHUF"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                with m.Else():
                    with m.If(ok & (regs.n_test != 0)):
                        m.d.sync += [self.mode_eval.eq(1), self.n_run.eq(regs.n_test)]
                        m.next = "FETCH"
                    with m.Else():
                        m.d.sync += self.error.eq(1)

    def _shuffle(self):
        m, shuf = self.m, self.shuf
        with m.State("SHUF"):
            m.d.comb += [self.state.eq(TRAINING), shuf.start.eq(1)]
            m.next = "SHUF_GO"
        with m.State("SHUF_GO"):
            m.d.comb += self.state.eq(TRAINING)
            m.next = "SHUF_WAIT"
        with m.State("SHUF_WAIT"):
            m.d.comb += self.state.eq(TRAINING)
            with m.If(~shuf.busy):
                m.next = "FETCH"

    def _fetch(self):
        """Sample index -> data record (the shuffled order, or the test set)."""
        m = self.m
        with m.State("FETCH"):
            m.d.comb += self.state.eq(self.run_state)
            m.next = "FETCH2"
        with m.State("FETCH2"):
            m.d.comb += [self.state.eq(self.run_state), self.restart.eq(1)]
            m.d.sync += self.record.eq(Mux(self.mode_eval, self.regs.n_train + self.sample,
                                           self.shuf.rd_data))
            m.next = "LOAD"

    def _load(self):
        """LOAD: features j = 0..n_in-1 from the record, then the label word."""
        m, cnt, geo, mem, dp = self.m, self.cnt, self.geo, self.mem, self.dp
        with m.State("LOAD"):
            m.d.comb += [self.state.eq(self.run_state), self.ph.load.eq(1),
                         mem.d_addr.eq(self.base + Mux(cnt.issuing & (cnt.oc == geo.n_in),
                                                       geo.rec - 1, cnt.oc >> 1))]
            with m.If(cnt.d1_valid & dp.load_const):
                m.d.sync += [self.label.eq(mem.d_rp.data), cnt.mx.eq(0), cnt.any_live.eq(1),
                             self.layers.lay.eq(0)]
                m.d.comb += self.restart.eq(1)
                m.next = "FWD"

    def _forward(self):
        """FWD through layer ``lay``; HREQ requantises ``a_{lay+1}`` (hidden outputs, then
        the constant 1)."""
        m, cnt, lay, dp, mem = self.m, self.cnt, self.layers, self.dp, self.mem
        nl = self.geo.n_layers
        with m.State("FWD"):
            m.d.comb += [self.state.eq(self.run_state), self.ph.fwd.eq(1)]
            if nl > 1:
                with m.If(~lay.is_last):
                    # hidden layer: XT entry, ReLU mask, running max
                    with m.If(dp.o.valid):
                        m.d.comb += [self.co_inc.eq(1), mem.XT.wr.en.eq(1),
                                     mem.MASK.wr.en.eq(1)]
                        cnt.track_max(dp.x_res, dp.live)
                        with m.If(cnt.co == lay.rows_m1):
                            m.d.comb += self.restart.eq(1)
                            m.next = "HREQ"
            # output layer: the logits (accumulator words), then SMX also in evaluation,
            # since the softmax unit's search for max S gives the prediction
            with m.If(lay.is_last & dp.mac.tap_valid):
                m.d.comb += [self.co_inc.eq(1), mem.XT.wr.en.eq(1)]
                with m.If(cnt.co == self.geo.rows[-1] - 1):
                    m.d.comb += self.restart.eq(1)
                    m.next = "SMX"

        if nl > 1:
            with m.State("HREQ"):
                m.d.comb += [self.state.eq(self.run_state), self.ph.hreq.eq(1)]
                with m.If(cnt.d1_valid & (cnt.d1_idx == lay.rows_t)):
                    for l in range(nl - 1):
                        with m.If(lay.lay == l):
                            m.d.sync += self.regs.a_bias[l + 1].eq(dp.bnew)
                    m.d.comb += self.restart.eq(1)
                    m.d.sync += [cnt.mx.eq(0), cnt.any_live.eq(1), lay.lay.eq(lay.lay + 1)]
                    m.next = "FWD"

    def _softmax(self):
        """SMX: the softmax cross-entropy error, and the prediction."""
        m, cnt, smx, lay = self.m, self.cnt, self.smx, self.layers
        nl = self.geo.n_layers
        with m.State("SMX"):
            m.d.comb += [self.state.eq(self.run_state), self.ph.smx.eq(1)]
            with m.If(smx.o_stream.valid):
                m.d.comb += self.co_inc.eq(1)
                m.d.sync += self.regs.e_bias[-1].eq(smx.o_bias)
                with m.If(cnt.co == self.geo.rows[-1] - 1):
                    m.d.comb += self.restart.eq(1)
                    m.d.sync += self.dp.s_valid.eq(0)
                    # the prediction: the first largest logit (LNSMLP.predict)
                    with m.If(smx.argmax == self.label):
                        m.d.sync += self.correct.eq(self.correct + 1)
                    with m.If(self.mode_eval):
                        m.next = "DONE"
                    with m.Else():
                        if nl > 1:
                            m.d.sync += [cnt.mx.eq(0), cnt.any_live.eq(0), lay.lay.eq(nl - 1)]
                            m.next = "BWD"
                        else:
                            m.d.sync += lay.lay.eq(0)
                            m.next = "UPD"

    def _backward(self):
        """BWD: ``e_{lay-1}[j] = sum_i W_lay[i, j] e_lay[i]``, ``j < cols - 1``; EREQ
        requantises it."""
        m, cnt, lay, dp = self.m, self.cnt, self.layers, self.dp
        nl = self.geo.n_layers
        if nl == 1:
            return
        with m.State("BWD"):
            m.d.comb += [self.state.eq(TRAINING), self.ph.bwd.eq(1)]
            with m.If(dp.o.valid):
                m.d.comb += [self.co_inc.eq(1), self.mem.XT.wr.en.eq(1)]
                cnt.track_max(dp.x_res, dp.live)
                with m.If(cnt.co == lay.prev_m1):
                    m.d.comb += self.restart.eq(1)
                    m.next = "EREQ"

        with m.State("EREQ"):
            m.d.comb += [self.state.eq(TRAINING), self.ph.ereq.eq(1)]
            with m.If(cnt.d1_valid & (cnt.d1_idx == lay.prev_m1)):
                for l in range(1, nl):
                    with m.If(lay.lay == l):
                        m.d.sync += self.regs.e_bias[l - 1].eq(dp.bnew)
                m.d.comb += self.restart.eq(1)
                with m.If(lay.lay == 1):
                    m.d.sync += lay.lay.eq(0)
                    m.next = "UPD"
                with m.Else():
                    m.d.sync += [cnt.mx.eq(0), cnt.any_live.eq(0), lay.lay.eq(lay.lay - 1)]
                    m.next = "BWD"

    def _update(self):
        """UPD: ``G = e_lay (x) a_lay`` on the fly, LNS-Madam, written back."""
        m, lay = self.m, self.layers
        with m.State("UPD"):
            m.d.comb += [self.state.eq(TRAINING), self.ph.upd.eq(1)]
            with m.If(self.dp.o0.valid):
                m.d.comb += self.co_inc.eq(1)
                with m.If(self.cnt.co == lay.words_m1):
                    m.d.comb += self.restart.eq(1)
                    with m.If(lay.is_last):
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += lay.lay.eq(lay.lay + 1)

    def _done(self):
        """DONE: count the sample; the next sample, epoch, or idle."""
        m = self.m
        with m.State("DONE"):
            m.d.comb += self.state.eq(self.run_state)
            with m.If(~self.mode_eval):
                m.d.sync += self.steps.eq(self.steps + 1)
            m.d.sync += self.sample.eq(self.sample + 1)
            with m.If(self.sample == self.n_run - 1):
                m.d.sync += [self.last_correct.eq(self.correct), self.sample.eq(0)]
                with m.If(self.mode_eval):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [self.epoch.eq(self.epoch + 1), self.correct.eq(0)]
                    with m.If((self.epoch == self.epochs - 1) | self.stop_req):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "SHUF"
            with m.Elif(self.stop_req):
                m.next = "IDLE"
            with m.Else():
                m.next = "FETCH"
