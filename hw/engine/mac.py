"""The engine's dot-product unit: ``lanes`` LNS products per cycle, summed in a tree (one
dot product, the forward pass) or accumulated lane by lane (``lanes`` dot products, the
backward pass at full lane width).

Arithmetic (:mod:`lnsmadam.golden.mac`): per lane ``p = Ea + Eb``, ``s = sa ^ sb``, ZERO
absorbs, ``±T[p & (gamma-1)] << (p >> f) - q_lo`` (0 below the window,
:class:`~lnsmadam.hw.convert.ToLinear`). The accumulators are exact: the engine requires
``acc_bits >= MACConfig.exact_acc_bits(longest dot product)``, so no add can saturate or wrap
and the order in which products are added cannot change a sum (integer addition is
associative). That is what lets the backward pass accumulate ``e_{l-1}[j] = sum_i W[i, j]
e_l[i]`` with rows inner in lane ``j % lanes`` while golden's ``matmul`` sums the same
products in one go: both are the same exact integer.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...golden.format import check_int
from ...golden.mac import MACConfig
from ..convert import ToLinear
from ..format import is_zero, lns_layout

__all__ = ["LaneMAC"]


class LaneMAC(wiring.Component):
    """``lanes`` LNS products per cycle into a tree accumulator or ``lanes`` accumulators.

    Parameters
    ----------
    cfg : MACConfig
        Operand format, table, window (``lanes`` and ``saturate`` are not used: the
        accumulators are exact).
    lanes : int, 1..256
    acc_bits : int, ``cfg.product_bits + 2 .. 62``
        Accumulator width; the caller guarantees it holds every sum it asks for.
    pipeline : int, 0..2 + ceil(log2(lanes + tree_only))
        Register cuts before the accumulators, enabled in this order: after the shifters
        (``lin``), after the adder tree (``tree``, tree mode only), after the exponent adds
        (``sum``), then between adder-tree levels.
    tree_only : int, 0..1
        Extra operand pairs that join the tree but have no lane accumulator (the engine's
        bias lane).

    Members
    -------
    valid, first, last, lane_mode : In(1)
        One beat per cycle (no backpressure). ``first`` restarts the accumulators with this
        beat, ``last`` ends a vector. ``lane_mode`` 0: tree mode, 1: lane mode; it must not
        change while a vector is in flight.
    a, b : In(ArrayLayout(lns_layout(fmt), lanes + tree_only))
        The operand codes of lane ``c`` (the tree-only ones last).
    done : Out(1)
        High for one cycle when ``acc`` holds finished vectors: ``acc[0]`` the tree sum in
        tree mode, ``acc[c]`` lane ``c``'s sum in lane mode. ``acc`` holds until the next
        vector's first beat reaches the accumulators.
    acc : Out(ArrayLayout(signed(acc_bits), lanes))

    Latency
    -------
    ``done`` rises :meth:`latency` cycles after the beat with ``last`` (tree and lane mode
    differ: lane mode skips the tree's cuts).

    Throughput
    ----------
    One beat (``lanes`` products) per cycle, in both modes.

    Notes
    -----
    Lane 0's accumulator is the tree accumulator (its adder input is a mux), so one lane
    costs one accumulator, as a plain MAC does.
    """

    def __init__(self, cfg: MACConfig, lanes: int, acc_bits: int, pipeline: int = 2,
                 tree_only: int = 0):
        # a rejected configuration is not an unused elaboratable (no warning for it)
        self._MustUse__silence = True
        if not isinstance(cfg, MACConfig):
            raise ValueError(f"cfg must be a MACConfig, got {cfg!r}")
        self.cfg = cfg
        self.lanes = check_int("lanes", lanes, 1, 256)
        self.acc_bits = check_int("acc_bits", acc_bits, cfg.product_bits + 2, 62)
        self.tree_only = check_int("tree_only", tree_only, 0, 1)
        self.n_ops = lanes + tree_only
        self.levels = (self.n_ops - 1).bit_length()
        order = ["lin"] + (["tree"] if self.levels else []) + ["sum"] + \
            [f"t{i}" for i in range(1, self.levels)]
        self.pipeline = check_int("pipeline", pipeline, 0, len(order))
        self.cuts = set(order[:self.pipeline])
        code = lns_layout(cfg.fmt)
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1), "lane_mode": In(1),
            "a": In(data.ArrayLayout(code, self.n_ops)),
            "b": In(data.ArrayLayout(code, self.n_ops)),
            "done": Out(1), "acc": Out(data.ArrayLayout(signed(acc_bits), lanes)),
        })
        self._MustUse__silence = False

    def latency(self, lane_mode: bool) -> int:
        """Cycles from a ``last`` beat at the inputs to ``done``."""
        n = sum(c in self.cuts for c in ("sum", "lin")) + 1
        if not lane_mode:
            n += sum(c in self.cuts for c in ["tree"] + [f"t{i}" for i in range(1, self.levels)])
        return n

    def elaborate(self, platform):
        m = Module()
        cfg, L = self.cfg, self.lanes
        ctl = [self.valid, self.first, self.last]

        def cut(name, values, ctl):
            if name not in self.cuts:
                return values, ctl
            regs = [Signal(Value.cast(v).shape(), name=f"{name}_{k}") for k, v in enumerate(values)]
            cregs = [Signal(name=f"{name}_{c}") for c in ("valid", "first", "last")]
            m.d.sync += [r.eq(v) for r, v in zip(regs + cregs, list(values) + ctl)]
            return regs, cregs

        N = self.n_ops
        sums = []
        for c in range(N):
            a, b = self.a[c], self.b[c]
            sums += [a.exp + b.exp, a.sign ^ b.sign, is_zero(a) | is_zero(b)]
        sums, ctl = cut("sum", sums, ctl)
        lins = []
        for c in range(N):
            tl = m.submodules[f"to_linear{c}"] = ToLinear(cfg.fmt, cfg.lut_frac, cfg.q_lo,
                                                          cfg.window)
            m.d.comb += [tl.p.eq(sums[3 * c]), tl.sign.eq(sums[3 * c + 1]),
                         tl.zero.eq(sums[3 * c + 2])]
            lins.append(tl.lin)
        lins, lctl = cut("lin", lins, ctl)

        # beats of lane mode do not enter the tree's cuts (they would come out as tree
        # results after a later switch to tree mode)
        level, tctl = lins, [lctl[0] & ~self.lane_mode] + lctl[1:]
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level, tctl = cut("tree" if len(nxt) == 1 else f"t{depth}", nxt, tctl)

        # the lane-mode flag is static while a vector is in flight: no need to pipe it
        lane = self.lane_mode
        valid, first, last = [Mux(lane, lc, tc) for lc, tc in zip(lctl, tctl)]
        acc = self.acc
        for c in range(L):
            add = Mux(lane, lins[c], level[0]) if c == 0 else lins[c]
            en = valid if c == 0 else valid & lane
            with m.If(en):
                m.d.sync += acc[c].eq(Mux(first, add, acc[c] + add))
        m.d.sync += self.done.eq(valid & last)
        return m
