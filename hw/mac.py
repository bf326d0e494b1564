"""Streaming N-lane dot-product units (twin of :mod:`lnsmadam.golden.mac`).

* :class:`LNSMAC`: LNS operands; per lane an exponent add, the signed ``±2**(r/gamma)`` ROM
  and a barrel shifter (:class:`~lnsmadam.hw.convert.ToLinear`); an exact adder tree; an
  ``acc_bits`` saturating or wrapping accumulator; the result also converted back to an LNS
  exponent by a pipelined :class:`~lnsmadam.hw.convert.FromLinear`.
* :class:`INT8MAC`: the area baseline, signed 8-bit operands and a plain
  multiply-accumulate, with the same stream protocol.

Stream protocol (both units). Input ``i_stream`` payload: ``a``, ``b`` (``lanes`` operands
each), ``first``, ``last``. One beat carries ``lanes`` operand pairs of one vector (pad the
last beat of a vector with ZERO / 0 operands). ``first`` marks the first beat of a vector
(the accumulator restarts: ``acc = tree``, every vector must start with one), ``last`` its
final beat (the result is emitted); a one-beat vector has both. Output ``o_stream`` payload:
``acc`` (plus ``sign``, ``exp``, ``zero`` for :class:`LNSMAC`), one per vector, in order.

Timing. Throughput one beat (``lanes`` products) per cycle. The datapath has ``pipeline``
register stages before the accumulator, the accumulator, ``out_stages`` register stages of
the output converter (``LNSMAC``'s ``out_pipeline``, default 3; none in ``INT8MAC``) and an
output register, so a vector whose last beat is accepted in cycle ``t`` is presented in
cycle ``t + latency``, ``latency = pipeline + 2 + out_stages`` (the ``latency`` property).
All stages, the output converter's included, advance together and stall together.
Backpressure stalls the whole unit: ``i_stream.ready = ~o_stream.valid | o_stream.ready``,
i.e. the input is refused exactly while the output holds a result that is not being taken in
this cycle (a combinational path from ``o_stream.ready`` to ``i_stream.ready``; it is what
lets back-to-back vectors stream at full rate).
"""

from __future__ import annotations

from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.format import check_int
from ..golden.mac import MACConfig
from .convert import FromLinear, ToLinear
from .format import check_bool, is_zero, lns_layout
from .util.stages import Stages

__all__ = ["LNSMAC", "INT8MAC", "StreamDot", "mac_input_layout", "OUT_PIPELINE"]

#: default register stages inside LNSMAC's output converter (FromLinear ``pipeline``)
OUT_PIPELINE = 3


def mac_input_layout(operand, lanes: int) -> data.StructLayout:
    """Input beat: ``a``, ``b`` (arrays of ``lanes`` operands), ``first``, ``last``."""
    return data.StructLayout({
        "a": data.ArrayLayout(operand, lanes),
        "b": data.ArrayLayout(operand, lanes),
        "first": 1,
        "last": 1,
    })


def _tree_levels(lanes: int) -> int:
    return (lanes - 1).bit_length()


class StreamDot(wiring.Component):
    """Shared skeleton of the dot-product units: lane products -> adder tree ->
    accumulator -> output register (a subclass supplies the products).

    Parameters
    ----------
    operand : shape
        Shape of one operand (``a`` and ``b`` carry ``lanes`` each).
    lanes : int
        Operand pairs per beat.
    acc_bits : int
        Accumulator width; ``saturate`` or wrap on overflow.
    pipeline : int, 1..len(:attr:`cut_order`)
        Register stages before the accumulator: the subclass's ``_path_cuts`` and the
        adder-tree levels, in :attr:`cut_order`.
    extra_out : dict
        Further ``o_stream`` fields, loaded by the subclass's ``_out_fields``;
        ``out_stages`` register stages of theirs sit before the output register.
    out_acc, acc_tap : bool
        Carry ``acc`` in ``o_stream``; add the accumulator tap (as :class:`LNSMAC`).

    Members
    -------
    i_stream : In(stream.Signature(:func:`mac_input_layout`))
        ``a``, ``b``, ``first``, ``last`` (module docstring).
    o_stream : Out(stream.Signature(...))
        ``acc`` and ``extra_out``, one result per vector.
    tap_valid, tap_acc : Out, with ``acc_tap`` only
        The finished accumulator word.

    Latency
    -------
    ``pipeline + 2 + out_stages`` cycles (:attr:`latency`).

    Throughput
    ----------
    One beat per cycle; backpressure stalls the whole unit (module docstring).

    Notes
    -----
    Subclasses set ``_path_cuts`` and implement ``_products`` (and ``_out_fields``).
    """

    #: cut names in the order in which ``pipeline`` stages are enabled (set by subclasses)
    _path_cuts: tuple[str, ...] = ()

    def __init__(self, operand, lanes: int, acc_bits: int, saturate: bool, pipeline: int,
                 extra_out: dict, out_stages: int = 0, out_acc: bool = True,
                 acc_tap: bool = False):
        self.lanes = lanes
        self.out_acc = check_bool("out_acc", out_acc)
        self.acc_tap = check_bool("acc_tap", acc_tap)
        if not out_acc and not extra_out:
            raise ValueError("out_acc=False needs an output converter (LNSMAC only)")
        #: register stages between the accumulator and the output register (the output
        #: converter's pipeline; the accumulator word is delayed alongside)
        self.out_stages = out_stages
        self.acc_bits = acc_bits
        self.saturate = saturate
        levels = _tree_levels(lanes)
        # after the lanes' own cuts: the tree root, then the inner tree levels
        self.cut_order = (self._path_cuts[:1] + (("tree",) if levels else ())
                          + self._path_cuts[1:] + tuple(f"t{i}" for i in range(1, levels)))
        self.pipeline = check_int("pipeline", pipeline, 1, len(self.cut_order))
        out_layout = data.StructLayout({**({"acc": signed(acc_bits)} if out_acc else {}),
                                        **extra_out})
        ports = {
            "i_stream": In(stream.Signature(mac_input_layout(operand, lanes))),
            "o_stream": Out(stream.Signature(out_layout)),
        }
        if acc_tap:
            ports.update({"tap_valid": Out(1), "tap_acc": Out(signed(acc_bits))})
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Cycles from accepting a vector's last beat to presenting its result:
        ``pipeline + 2 + out_stages``."""
        return self.pipeline + 2 + self.out_stages

    def _products(self, m: Module, st: Stages, a, b) -> list:
        raise NotImplementedError

    def _out_fields(self, m: Module, acc, adv) -> list:
        """Statements that load the extra output fields from ``acc``; they see ``acc`` as it
        was ``out_stages`` advancing cycles earlier (their registers advance on ``adv``)."""
        return []

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        adv = Signal()
        m.d.comb += [adv.eq(~o.valid | o.ready), i.ready.eq(adv)]
        st = Stages(m, adv, self.cut_order[:self.pipeline], valid=i.valid,
                    first=i.payload.first, last=i.payload.last)

        level = self._products(m, st, i.payload.a, i.payload.b)
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = st.cut("tree" if len(nxt) == 1 else f"t{depth}", nxt)
        tree = level[0]

        acc = Signal(signed(self.acc_bits))
        done = Signal()                       # acc holds a finished vector
        # restart by selecting the tree, not by zeroing the adder input: the mux then sits
        # beside the adder instead of in front of it (cheaper on iCE40 in measured area);
        # clip(tree) on a first beat is golden's clip(0 + tree)
        total = Mux(st.first, tree, acc + tree)
        if self.saturate:
            hi, lo = (1 << (self.acc_bits - 1)) - 1, -(1 << (self.acc_bits - 1))
            total = Mux(total > hi, hi, Mux(total < lo, lo, total))
        with m.If(adv):
            m.d.sync += done.eq(st.valid & st.last)
            with m.If(st.valid):
                m.d.sync += acc.eq(total)     # wrap mode: truncation is two's-complement wrap

        if self.acc_tap:
            m.d.comb += [self.tap_valid.eq(done & adv), self.tap_acc.eq(acc)]
        fields = self._out_fields(m, acc, adv)
        # the finished word travels beside the output converter's pipeline stages
        for j in range(1, self.out_stages + 1):
            done_j = Signal(name=f"out_done_{j}")
            with m.If(adv):
                m.d.sync += done_j.eq(done)
            done = done_j
            if self.out_acc:
                acc_j = Signal.like(acc, name=f"out_acc_{j}")
                with m.If(adv):
                    m.d.sync += acc_j.eq(acc)
                acc = acc_j

        with m.If(adv):
            m.d.sync += o.valid.eq(done)
            with m.If(done):
                if self.out_acc:
                    m.d.sync += o.payload.acc.eq(acc)
                m.d.sync += fields
        return m


class LNSMAC(StreamDot):
    """Streaming LNS dot-product unit, bit-exact with :mod:`lnsmadam.golden.mac`.

    Per beat, lane ``k``: ``p = Ea + Eb``, ``sign = sa ^ sb``, ZERO absorbs, then
    ``±T[p & (gamma-1)] << (p >> f) - q_lo`` (0 below the window): ``MACConfig.products``.
    The ``lanes`` products are summed exactly, then ``acc = clip(acc + tree)`` (saturate or
    wrap at ``acc_bits``) with ``acc = clip(tree)`` on a ``first`` beat:
    ``MACConfig.accumulate``. The output carries the accumulator word ``acc`` (LSB weight
    ``2**lsb_q``) and its LNS conversion ``MACConfig.to_lns(acc)``: ``sign``, ``exp`` (the
    absolute exponent ``x`` in field units: add the operand biases, then requantise) and
    ``zero``.

    Parameters
    ----------
    cfg : MACConfig
        Format, table, window, accumulator and ``lanes`` (1..256).
    pipeline : int, 1..(2 + ceil(log2(lanes)))
        Register stages before the accumulator, enabled in this order: after the shifters
        (the products), after the adder tree (if ``lanes > 1``), after the exponent adders,
        then between adder-tree levels (first level first); with ``first_cut="log"`` the
        cuts after the exponent adders and after the shifters swap places.
    first_cut : "linear" (default) or "log"
        Where the first register stage sits in each lane: after the shifter (the
        ``lut_frac + window + 1``-bit linear product) or after the exponent adder (the
        exponent sum, sign and ZERO flag: ``exp_bits + 3`` bits). ``"log"`` registers fewer
        bits per lane (11 against 25 at the defaults): at 16 lanes on the OSU 0.18 µm library
        it measured 12 % less area and 6 % less energy per MAC than ``"linear"``
        (``docs/asic.md``); the shifters then share the adder tree's cycle.
    out_pipeline : int, 0..4, default :data:`OUT_PIPELINE` (3)
        Register stages inside the output converter between the accumulator and the output
        register (:class:`~lnsmadam.hw.convert.FromLinear` ``pipeline``: its cuts
        ``"norm"``, ``"abs"``, ``"half"``, ``"mid"`` in this order); the accumulator word
        travels beside them, so each stage also costs ``acc_bits + 1`` flip-flops. 0 is
        the unpipelined converter, which limits the clock (about 14 MHz on iCE40UP5K
        against 35 MHz for the rest of the 8-lane unit); 3 takes it off the critical path
        on iCE40 and ECP5 at the default configuration (``docs/area.md``).
    out_acc : bool, default True
        Carry ``acc`` in ``o_stream``. False drops the field and the ``out_pipeline``
        registers that delay it (``acc_bits + 1`` flip-flops each) for users that need only
        the LNS result, or that take the word from the tap.
    acc_tap : bool, default False
        Add ports ``tap_valid`` and ``tap_acc``: the finished accumulator word of each
        vector, ``pipeline + 1`` cycles after its last beat was accepted (``out_pipeline + 1``
        cycles before ``o_stream`` presents it). ``tap_valid`` is high for exactly one
        cycle per vector (the cycle the word moves on, so also under backpressure); the tap
        itself cannot stall the unit.

    Members
    -------
    i_stream : In(stream.Signature(:func:`mac_input_layout` ``(lns_layout(fmt), lanes)``))
        One beat: ``lanes`` operand pairs ``a``, ``b`` and the vector framing ``first``,
        ``last`` (module docstring).
    o_stream : Out(stream.Signature(...))
        One result per vector: ``acc`` (with ``out_acc``), ``sign``, ``exp``, ``zero``.
    tap_valid : Out(1), tap_acc : Out(signed(acc_bits)), with ``acc_tap`` only
        The finished accumulator word of each vector.

    Latency
    -------
    ``pipeline + 2 + out_pipeline`` cycles from a vector's last beat to its result (5 with
    the defaults).

    Throughput
    ----------
    One beat (``lanes`` products) per cycle; ``i_stream.ready = ~o_stream.valid |
    o_stream.ready`` (module docstring).

    Notes
    -----
    Area and Fmax against :class:`INT8MAC`: ``docs/area.md``.
    """

    _path_cuts = ("lin", "sum")

    def __init__(self, cfg: MACConfig, pipeline: int = 2, out_pipeline: int = OUT_PIPELINE,
                 out_acc: bool = True, acc_tap: bool = False, first_cut: str = "linear"):
        if not isinstance(cfg, MACConfig):
            raise ValueError(f"cfg must be a MACConfig, got {cfg!r}")
        if first_cut not in ("linear", "log"):
            raise ValueError(f"first_cut must be 'linear' or 'log', got {first_cut!r}")
        self.first_cut = first_cut
        if first_cut == "log":
            self._path_cuts = ("sum", "lin")
        self.cfg = cfg
        self.out_pipeline = check_int("out_pipeline", out_pipeline, 0, len(FromLinear.CUTS))
        x_shape = signed(FromLinear.x_bits_for(cfg.acc_bits, cfg.fmt.frac_bits, cfg.lsb_q))
        super().__init__(lns_layout(cfg.fmt), cfg.lanes, cfg.acc_bits, bool(cfg.saturate),
                         pipeline, {"sign": 1, "exp": x_shape, "zero": 1},
                         out_stages=out_pipeline, out_acc=out_acc, acc_tap=acc_tap)

    def _products(self, m, st, a, b):
        cfg = self.cfg
        sums = []
        for k in range(self.lanes):
            sums += [a[k].exp + b[k].exp, a[k].sign ^ b[k].sign, is_zero(a[k]) | is_zero(b[k])]
        sums = st.cut("sum", sums)
        lins = []
        for k in range(self.lanes):
            tl = m.submodules[f"to_linear{k}"] = ToLinear(cfg.fmt, cfg.lut_frac, cfg.q_lo,
                                                          cfg.window)
            p, sign, zero = sums[3 * k:3 * k + 3]
            m.d.comb += [tl.p.eq(p), tl.sign.eq(sign), tl.zero.eq(zero)]
            lins.append(tl.lin)
        return st.cut("lin", lins)

    def _out_fields(self, m, acc, adv):
        cfg = self.cfg
        fl = FromLinear(cfg.acc_bits, cfg.fmt.frac_bits, cfg.mid_bits, cfg.lsb_q,
                        pipeline=self.out_pipeline)
        # its stage registers stall with the rest of the unit
        m.submodules.from_linear = EnableInserter(adv)(fl)
        m.d.comb += fl.S.eq(acc)
        o = self.o_stream.payload
        return [o.sign.eq(fl.sign), o.exp.eq(fl.x), o.zero.eq(fl.zero)]


class INT8MAC(StreamDot):
    """Streaming signed 8-bit dot-product unit: the area baseline for :class:`LNSMAC`.

    Per beat the ``lanes`` products ``a_k * b_k`` (signed 8 x 8 bits) are summed exactly,
    then ``acc = clip(acc + tree)`` (saturate or wrap at ``acc_bits``), ``acc = clip(tree)``
    on a ``first`` beat.

    Parameters
    ----------
    lanes : int, 1..256
    acc_bits : int, 16..62 (16 holds one product, ``(-128)**2``)
    saturate : bool
        Saturate (default) or wrap on overflow.
    pipeline : int, 1..(2 + ceil(log2(lanes)))
        Register stages before the accumulator, enabled in this order: after the
        multipliers, after the adder tree (if ``lanes > 1``), on the operands (before the
        multipliers), then between adder-tree levels (first level first).

    Members
    -------
    i_stream : In(stream.Signature(:func:`mac_input_layout` ``(signed(8), lanes)``))
        As :class:`LNSMAC`'s.
    o_stream : Out(stream.Signature(...))
        ``acc`` only.

    Latency
    -------
    ``pipeline + 2`` cycles (it has no output converter).

    Throughput
    ----------
    One beat per cycle, the stream protocol of :class:`LNSMAC`.

    Notes
    -----
    The area baseline of ``docs/area.md``.
    """

    _path_cuts = ("mul", "in")

    def __init__(self, lanes: int, acc_bits: int = 32, saturate: bool = True, pipeline: int = 2):
        check_int("lanes", lanes, 1, 256)
        check_int("acc_bits", acc_bits, 16, 62)
        check_bool("saturate", saturate)
        super().__init__(signed(8), lanes, acc_bits, saturate, pipeline, {})

    def _products(self, m, st, a, b):
        ops = st.cut("in", [a[k] for k in range(self.lanes)] + [b[k] for k in range(self.lanes)])
        return st.cut("mul", [ops[k] * ops[self.lanes + k] for k in range(self.lanes)])
