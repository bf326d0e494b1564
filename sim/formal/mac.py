"""Formal harness of the streaming dot-product units (:class:`~lnsmadam.hw.mac.LNSMAC`,
:class:`~lnsmadam.hw.mac.INT8MAC`).

Environment: any legal input stream (``lib.stream`` rules assumed, every vector starts with
``first``), any backpressure on the output; for the bounded data checks optionally vectors
of at most ``max_beats`` beats (``short_vectors``).

``scope="control"`` (k-induction):

* ``o_valid_held``, ``o_payload_stable``: the output obeys the stream rules;
* ``pipe_count``, ``pipe_latency`` (+ the invariants ``pipe_position``, ``pipe_order``): one
  result per vector, none lost, duplicated or invented, in order, presented exactly
  ``latency`` advancing cycles after the vector's last beat (``i_stream.ready`` is the
  advance: the unit stalls as a whole);

``scope="accumulate"`` (k-induction, white box: the registers around the accumulator are
probed by name, so it needs the accumulator's input registered: ``pipeline >= 2`` or one
lane):

* ``acc_clip``, ``acc_held``: every beat's sum is added as ``acc = clip(first ? tree :
  acc + tree)``, bubbles and stalls leave ``acc`` alone; with saturation
  ``acc_saturates_hi``/``acc_saturates_lo``: a sum above (below) the range gives exactly
  ``2**(acc_bits-1) - 1`` (``-2**(acc_bits-1)``): the accumulator never wraps;
* ``tree_exact`` (products and tree root registered, ``pipeline = 2``): the tree is the
  exact sum of the lane products, so lane grouping cannot change a result short of
  saturation;
* ``zero_lane<k>`` (LNS, products one stage after the input): a lane with a ZERO operand
  contributes 0.

``scope="data"`` (bounded model check), for the tracked vector's result:

* ``acc_golden``: ``acc`` equals the golden accumulation (``MACConfig.accumulate``): the
  golden product of every lane (``to_linear`` of ``Ea + Eb`` with the sign, 0 for a lane
  with a ZERO operand, as ``MACConfig.products``), summed per beat, added with saturation
  at ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]`` (or wrap) after every beat;
* ``acc_exact``: lane grouping and order do not matter: ``acc`` is the exact sum of all the
  vector's products whenever no running sum (product by product) leaves the accumulator's
  range (saturate), or that sum modulo ``2**acc_bits`` (wrap);
* ``zero_vector``: a vector in which every pair has a ZERO operand (LNS) gives 0.
* ``saturated_hi``/``saturated_lo`` (covers, in the same job run as asserts): saturation
  is reachable within the depth, so ``acc_golden`` is exercised at the bounds.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed

from ...golden.convert import to_linear
from ...golden.mac import MACConfig
from ...hw.format import is_zero
from ...hw.mac import LNSMAC

from .harness import Elaborated, Harness, check_pipeline, check_stream, drive_stream

__all__ = ["MACHarness", "mac_chain"]


def mac_chain(dut, el: Elaborated) -> list:
    """The unit's result tokens in pipeline order: each enabled cut's ``valid & last``,
    the accumulator's ``done``, the output converter stages' ``out_done_j``, the output
    ``valid``."""
    enabled = set(dut.cut_order[:dut.pipeline])
    levels = (dut.lanes - 1).bit_length()
    path = list(reversed(dut._path_cuts)) + [f"t{i}" for i in range(1, levels)] + ["tree"]
    chain = [el.probe(f"{c}_valid") & el.probe(f"{c}_last") for c in path if c in enabled]
    chain.append(el.probe("done"))
    chain += [el.probe(f"out_done_{j}") for j in range(1, dut.out_stages + 1)]
    chain.append(dut.o_stream.valid)
    if len(chain) != dut.latency:
        raise AssertionError(f"chain of {len(chain)} stages for latency {dut.latency}")
    return chain


class MACHarness(Harness):
    """Parameters: ``make`` (a zero-argument callable returning the unit: an
    :class:`LNSMAC` or :class:`INT8MAC`, or a mutant of one), ``scope`` (``"control"`` or
    ``"data"``)."""

    block = "mac"

    def __init__(self, make, scope: str = "control", mutate=None, max_beats: int = 0):
        super().__init__(make, mutate)
        #: data scope: vectors of at most this many beats (0: any), to keep the bounded
        #: check affordable at a useful depth
        self.max_beats = max_beats
        if scope not in ("control", "accumulate", "data"):
            raise ValueError(f"scope must be 'control', 'accumulate' or 'data', got {scope!r}")
        self.scope = scope

    def build(self, m: Module, platform):
        dut, el = self.instantiate(m, platform)
        i, o = dut.i_stream, dut.o_stream
        take, pl = drive_stream(self, m, i, "i")
        leave = check_stream(self, m, o, "o")
        # every vector starts with ``first``: mid-vector is a harness register
        open_vec = Signal()
        beats = Signal(8)
        with m.If(take):
            m.d.sync += [open_vec.eq(~pl.last), beats.eq(Mux(pl.last, 0, beats + 1))]
        self.assume(m, "first_starts_vectors", ~take | (pl.first == ~open_vec))
        if self.max_beats:
            self.assume(m, "short_vectors", ~take | pl.last | (beats < self.max_beats - 1))
        if self.scope == "accumulate":
            self._accumulate(m, dut, el, pl)
            return
        enter = take & pl.last
        track, tracking, pos = check_pipeline(self, m, mac_chain(dut, el), enter, leave, i.ready)
        if self.scope == "data":
            self._data(m, dut, take, pl, track, tracking, pos)

    # -- the registers around the accumulator (white box, inductive) ----------------------
    def _accumulate(self, m, dut, el, pl):
        prod_cut = dut._path_cuts[0]                 # "lin" (LNS) / "mul" (INT8)
        enabled = set(dut.cut_order[:dut.pipeline])
        if "tree" in enabled:
            acc_in = "tree"
        elif dut.lanes == 1 and prod_cut in enabled:
            acc_in = prod_cut                        # one lane: its product is the sum
        else:
            raise ValueError("scope 'accumulate' needs the accumulator's input registered "
                             "(pipeline >= 2, or lanes = 1)")
        ab, sat = dut.acc_bits, dut.saturate
        lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
        adv = dut.i_stream.ready
        tree, tv, tf = (el.probe(f"{acc_in}_{s}") for s in ("0", "valid", "first"))
        acc = el.probe("acc")
        wide = signed(ab + 12)
        direct = enabled == {prod_cut, "tree"}       # products, then the tree root
        if direct:
            # the tree sums the lane products exactly (no overflow: grouping cannot matter)
            prods = [el.probe(f"{prod_cut}_{k}") for k in range(dut.lanes)]
            exact = Signal(wide)
            m.d.comb += exact.eq(sum(prods[1:], prods[0]))
            stepped = self.past(m, adv & el.probe(f"{prod_cut}_valid"))
            self.check(m, "tree_exact", ~self.started | ~stepped
                       | (tree == self.past(m, exact)))
        # the accumulator: acc = clip(first ? tree : acc + tree), saturating at the bounds
        total = Signal(wide)
        m.d.comb += total.eq(Mux(tf, tree, acc + tree))
        if sat:
            want = Mux(total > hi, hi, Mux(total < lo, lo, total))
        else:
            want = total[:ab].as_signed()
        added = self.past(m, adv & tv)
        self.check(m, "acc_clip", ~self.started | ~added | (acc == self.past(m, want)))
        self.check(m, "acc_held", ~self.started | added | (acc == self.past(m, acc)))
        if sat:
            self.check(m, "acc_saturates_hi", ~self.started | ~added
                       | ~self.past(m, total > hi) | (acc == hi))
            self.check(m, "acc_saturates_lo", ~self.started | ~added
                       | ~self.past(m, total < lo) | (acc == lo))
        # a lane with a ZERO operand contributes 0 (LNS): its registered product is 0
        if isinstance(dut, LNSMAC) and prod_cut in enabled and "sum" not in enabled:
            prods = [el.probe(f"{prod_cut}_{k}") for k in range(dut.lanes)]
            for k in range(dut.lanes):
                z = is_zero(pl.a[k]) | is_zero(pl.b[k])
                came = self.past(m, adv & dut.i_stream.valid & z)
                self.check(m, f"zero_lane{k}", ~self.started | ~came | (prods[k] == 0))

    # -- the golden reference of the tracked vector ---------------------------------------
    def _products(self, dut, pl):
        """Per lane: the golden signed product and whether it has a ZERO operand."""
        if isinstance(dut, LNSMAC):
            cfg: MACConfig = dut.cfg
            emax = cfg.fmt.emax
            tab = to_linear(np.arange(2 * emax + 1), cfg.fmt.frac_bits, cfg.lut_frac,
                            cfg.q_lo, cfg.window)
            rom = Array(Const(int(t), signed(cfg.product_bits + 1)) for t in tab)
            out = []
            for k in range(dut.lanes):
                a, b = pl.a[k], pl.b[k]
                z = is_zero(a) | is_zero(b)
                mag = rom[a.exp + b.exp]
                out.append((Mux(z, 0, Mux(a.sign ^ b.sign, -mag, mag)), z))
            return out
        return [(pl.a[k] * pl.b[k], Const(0)) for k in range(dut.lanes)]

    def _data(self, m, dut, take, pl, track, tracking, pos):
        ab, sat = dut.acc_bits, dut.saturate
        lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
        wide = signed(ab + 12)

        def clip(x):
            if sat:
                return Mux(x > hi, hi, Mux(x < lo, lo, x))
            return x[:ab].as_signed()

        prods = self._products(dut, pl)
        acc_g = Signal(signed(ab), name="ref_grouped")      # golden, per beat
        acc_x = Signal(wide, name="ref_exact")              # exact running sum
        in_range = Signal(name="ref_in_range")              # no product-wise overflow
        all_zero = Signal(name="ref_all_zero")
        base_g = Mux(pl.first, 0, acc_g)
        base_x = Mux(pl.first, 0, acc_x)
        ok = Mux(pl.first, 1, in_range)
        zeros = Mux(pl.first, 1, all_zero)
        run = base_x
        group = Const(0, wide)
        for p, z in prods:
            run = run + p
            group = group + p
            ok = ok & (run >= lo) & (run <= hi)
            zeros = zeros & z
        nxt_g, nxt_x = clip(base_g + group), base_x + group
        with m.If(take):
            m.d.sync += [acc_g.eq(nxt_g), acc_x.eq(nxt_x), in_range.eq(ok),
                         all_zero.eq(zeros)]
        # the tracked vector's expected results, latched with its last beat
        exp_g, exp_x = Signal(signed(ab)), Signal(wide)
        exp_ok, exp_z = Signal(), Signal()
        with m.If(track):
            m.d.sync += [exp_g.eq(nxt_g), exp_x.eq(nxt_x), exp_ok.eq(ok), exp_z.eq(zeros)]
        out = dut.o_stream.payload.acc
        shown = tracking & (pos == dut.latency - 1)
        self.check(m, "acc_golden", ~shown | (out == exp_g))
        if sat:
            self.check(m, "acc_exact", ~shown | ~exp_ok | (out == exp_x))
        else:
            self.check(m, "acc_exact", ~shown | (out == exp_x[:ab].as_signed()))
        if isinstance(dut, LNSMAC):
            self.check(m, "zero_vector", ~shown | ~exp_z | (out == 0))
        if sat:
            self.cover(m, "saturated_hi", shown & (out == hi))
            self.cover(m, "saturated_lo", shown & (out == lo))
