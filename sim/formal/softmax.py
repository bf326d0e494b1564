"""Formal harness of the softmax-error unit (:class:`~lnsmadam.hw.softmax.SoftmaxError`).

Environment: any legal input stream of logit words, any backpressure; ``bias`` and
``label`` free but held for the whole run (the unit requires them held per vector).
Asserted (k-induction):

* ``o_valid_held``, ``o_payload_stable`` (and ``side_stable``: ``o_bias`` too, while a
  beat waits);
* ``one_vector_at_a_time``: ``i_stream.ready`` only while a vector is being received
  (no output of the previous one pending);
* ``outputs_after_inputs``: an output beat only once all ``n_out`` input beats were taken;
* ``index_order``: the output beats carry indices ``0 .. n_out - 1`` in order, so exactly
  ``n_out`` beats per vector, none lost or repeated;
* ``counters_range``, ``fsm_in``, ``fsm_mid``, ``fsm_out``, ``fsm_range``, ``fsm_no_write``, ``fsm_norm_ix``,
  ``fsm_out_read``: the invariants tying the unit's state register and element counter
  (``fsm_state`` with its state names, ``ix``, ``validE`` and its source, the read address:
  probed) to the harness's beat counters, and the presented word to its memory read.

Not asserted: that ``argmax`` holds while a beat waits (its enable is an unnamed register
of the unit, so the invariant that would make it inductive cannot be written without a
name for it).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from .harness import Harness, check_stream, drive_stream, fsm_encoding

__all__ = ["SoftmaxHarness"]


class SoftmaxHarness(Harness):
    block = "softmax"

    def build(self, m: Module, platform):
        dut, el = self.instantiate(m, platform)
        n = dut.n_out
        i, o = dut.i_stream, dut.o_stream
        take, _ = drive_stream(self, m, i, "i")
        leave = check_stream(self, m, o, "o")
        bias = self.anyconst(m, dut.bias.shape(), "bias")
        label = self.anyconst(m, dut.label.shape(), "label")
        self.assume(m, "label_range", label < n)
        m.d.comb += [dut.bias.eq(bias), dut.label.eq(label)]
        wait = self.past(m, o.valid & ~o.ready)
        side = self.past(m, dut.o_bias)
        self.check(m, "side_stable", ~self.started | ~wait | (dut.o_bias == side))

        ins = Signal(range(n + 1))          # input beats of this vector
        outs = Signal(range(n + 1))         # output beats of this vector
        with m.If(leave & (outs == n - 1)):
            m.d.sync += [ins.eq(0), outs.eq(0)]
        with m.Else():
            m.d.sync += [ins.eq(ins + take), outs.eq(outs + leave)]
        self.check(m, "counters_range", (ins <= n) & (outs < n))
        self.check(m, "one_vector_at_a_time", ~i.ready | ((outs == 0) & (ins < n)))
        self.check(m, "outputs_after_inputs", ~o.valid | (ins == n))
        self.check(m, "index_order", ~o.valid | (o.payload.index == outs))
        state, ix = el.probe("fsm_state"), el.probe("ix")
        enc = fsm_encoding(state)
        is_in, is_out = state == enc["IN"], state == enc["OUT"]
        self.check(m, "fsm_in", ~is_in | ((ix == ins) & (outs == 0) & (ins < n)))
        self.check(m, "fsm_out", ~is_out | ((ins == n) & (ix == outs)))
        self.check(m, "fsm_mid", is_in | is_out | ((ins == n) & (outs == 0)))
        self.check(m, "fsm_range", state < len(enc))
        # the presented code comes from the registered read of word SA + ix: that address
        # was read in the previous cycle, and nothing writes the memory from the
        # normalisation on (the last element's extraction and accumulation are done)
        late = is_out | (state == enc["NORM_R"]) | (state == enc["NORM_T"])
        # validE's source is the (unnamed) validX register
        busy_w = el.source("validE") | el.probe("validE")
        self.check(m, "fsm_no_write", ~late | ~busy_w)
        self.check(m, "fsm_norm_ix", ~late | is_out | (ix == 0))
        raddr = self.past(m, el.probe("rda__addr"))
        self.check(m, "fsm_out_read", ~self.started | ~is_out | (raddr == dut.SA + ix))
