"""The common part of every formal harness: free inputs, named properties, probes, streams.

A harness is an ``Elaboratable`` that instantiates the block under test, drives its inputs
from *free* inputs (top-level ports: the solver picks a value every cycle) constrained by
``Assume``, and states properties with ``Assert``/``Cover``. Each property gets the
source location ``<block>.<name>:0``, so solver messages name it.

Helpers:

* :meth:`Harness.free`, :meth:`Harness.anyconst`: free inputs (per cycle / fixed);
* :meth:`Harness.past`: the value of the previous cycle; :attr:`Harness.started`: 0 in the
  first cycle after reset (k-induction may start anywhere, so it guards only base cases);
* :func:`probe`: an internal signal of the block, found by name in its elaborated
  fragment (read only; used for the invariants that strengthen an induction);
* :func:`drive_stream` (a legal ``lib.stream`` source: valid held until ready, payload
  stable while waiting) and :func:`check_stream` (the same rules asserted on an output).
"""

from __future__ import annotations

from amaranth.hdl import (Assert, Assume, Cat, Cover, Elaboratable, Module, ResetSignal, Signal,
                          Value)
from amaranth.hdl._ir import Fragment

__all__ = ["Harness", "probe", "probes", "fsm_encoding", "drive_stream", "check_stream",
           "check_pipeline", "popcount", "Elaborated"]


class Elaborated:
    """A block elaborated once, so that the harness can probe its internal signals while
    the same netlist is the one under test (``m.submodules.dut = Elaborated(dut).fragment``)."""

    def __init__(self, component, platform=None, mutate=None):
        self.component = component
        self.fragment = Fragment.get(component, platform)
        if mutate is not None:
            self.fragment = mutate(self.fragment)

    def probe(self, name: str) -> Signal:
        return probe(self.fragment, name)

    def source(self, name: str) -> Value:
        """The right-hand side of the block's first top-level assignment to ``name`` (to
        reach a register the block left unnamed through the one it feeds)."""
        from amaranth.hdl._ast import Assign

        for stmts in self.fragment.statements.values():
            for st in stmts:
                if isinstance(st, Assign) and getattr(st.lhs, "name", None) == name:
                    return st.rhs
        raise LookupError(f"the block has no top-level assignment to {name!r}")


def probes(frag: Fragment, prefix: str = "") -> dict:
    """``{path: signal}`` of every signal assigned or read in ``frag`` and its
    subfragments (``path`` = ``sub/.../name``; a name assigned in the fragment wins)."""
    out, read = {}, {}
    for stmts in frag.statements.values():
        for st in stmts:
            for sig in st._lhs_signals():
                out.setdefault(prefix + sig.name, sig)
            for sig in st._rhs_signals():
                read.setdefault(prefix + sig.name, sig)
    out = {**read, **out}
    for sub, name, *_ in frag.subfragments:
        out.update(probes(sub, f"{prefix}{name}/"))
    return out


def fsm_encoding(state: Signal) -> dict:
    """``{state name: encoding}`` of an Amaranth FSM from its (probed) state signal, whose
    decoder names the encodings ``0 .. count - 1``."""
    enc = {}
    for value in range(1 << len(state)):
        try:
            name = state.decoder(value)
        except KeyError:
            break
        enc[name.rsplit("/", 1)[0]] = value
    return enc


def probe(frag: Fragment, name: str) -> Signal:
    """The signal called ``name`` that ``frag`` assigns or reads (``sub/name`` for one of
    its subfragments).

    Raises ``LookupError`` naming what exists when the block no longer has it (the
    invariant that used it must then be revised with the block)."""
    table = probes(frag)
    if name not in table:
        raise LookupError(f"no signal {name!r} in the block; it has: "
                          + ", ".join(sorted(table)))
    return table[name]


class Harness(Elaboratable):
    """Base class: subclasses set :attr:`block` and implement :meth:`build`."""

    block = "harness"

    def __init__(self, make=None, mutate=None, only=None):
        #: zero-argument callable returning the block under test
        self.make = make
        #: a netlist rewrite applied to the block under test (:mod:`.mutants`), or None
        self.mutate = mutate
        #: assert only these properties (names; None: all), to split a costly job
        self.only = set(only) if only else None
        self._inputs: list[Signal] = []
        self.prop_names: list[str] = []

    def elaborated(self, component, platform) -> Elaborated:
        """``component`` elaborated (and mutated, for a mutant) for probing."""
        return Elaborated(component, platform, self.mutate)

    def instantiate(self, m: Module, platform):
        """Build the block (``make``), elaborate it and add it as ``dut``: returns the
        component (its ports) and the :class:`Elaborated` (its internals)."""
        dut = self.make()
        el = self.elaborated(dut, platform)
        m.submodules.dut = el.fragment
        return dut, el

    # -- inputs ----------------------------------------------------------------------
    def free(self, shape, name: str) -> Signal:
        """A free input: any value in every cycle."""
        sig = Signal(shape, name=name)
        self._inputs.append(sig)
        return sig

    def anyconst(self, m: Module, shape, name: str) -> Signal:
        """A free value that never changes (chosen by the solver once)."""
        sig = self.free(shape, name)
        held = self.past(m, sig)
        self.assume(m, f"{name}_const", ~self.started | (sig == held))
        return sig

    def ports(self) -> list[Signal]:
        return list(self._inputs)

    # -- properties ------------------------------------------------------------------
    def _prop(self, m: Module, kind, name: str, test):
        if name in self.prop_names:
            raise ValueError(f"{self.block}: property {name!r} defined twice")
        self.prop_names.append(name)
        p = kind(test)
        p.src_loc = (f"{self.block}.{name}", 0)
        m.d.comb += p

    def check(self, m: Module, name: str, test):
        """``Assert(test)`` named ``name`` (unless :attr:`only` leaves it out)."""
        if self.only is None or name in self.only:
            self._prop(m, Assert, name, test)

    def assume(self, m: Module, name: str, test):
        self._prop(m, Assume, name, test)

    def cover(self, m: Module, name: str, test):
        self._prop(m, Cover, name, test)

    # -- time --------------------------------------------------------------------------
    def past(self, m: Module, value, init=0) -> Signal:
        value = Value.cast(value)
        reg = Signal(value.shape(), init=init)
        m.d.sync += reg.eq(value)
        return reg

    def elaborate(self, platform):
        m = Module()
        self.prop_names = []
        self._inputs = []
        # no reset after the first cycle: registers start from their init values (BMC)
        # or anywhere (the inductive step)
        m.d.comb += Assume(~ResetSignal())
        self.started = Signal()
        m.d.sync += self.started.eq(1)
        self.build(m, platform)
        return m

    def build(self, m: Module, platform):
        raise NotImplementedError


def drive_stream(h: Harness, m: Module, stream, name: str, valid=None):
    """Drive the input ``stream`` (a DUT's ``In(stream.Signature)`` member) from free
    inputs, with the ``lib.stream`` rules assumed: once ``valid`` is offered it stays
    until ``ready``, and the payload does not change meanwhile. Returns
    ``(take, payload)``: the transfer condition and the payload value."""
    v = h.free(1, f"{name}_valid") if valid is None else valid
    pl = h.free(len(stream.payload.as_value()), f"{name}_payload")
    m.d.comb += [stream.valid.eq(v), stream.payload.as_value().eq(pl)]
    wait = h.past(m, stream.valid & ~stream.ready)
    held = h.past(m, pl)
    h.assume(m, f"{name}_rules", ~h.started | ~wait | (v & (pl == held)))
    return stream.valid & stream.ready, stream.payload


def check_stream(h: Harness, m: Module, stream, name: str, ready=None):
    """Drive ``ready`` of the output ``stream`` freely (any backpressure) and assert the
    ``lib.stream`` rules on it. Returns the transfer condition."""
    r = h.free(1, f"{name}_ready") if ready is None else ready
    m.d.comb += stream.ready.eq(r)
    wait = h.past(m, stream.valid & ~stream.ready)
    held = h.past(m, stream.payload.as_value())
    h.check(m, f"{name}_valid_held", ~h.started | ~wait | stream.valid)
    h.check(m, f"{name}_payload_stable", ~h.started | ~wait
            | (stream.payload.as_value() == held))
    return stream.valid & stream.ready


def popcount(bits) -> Value:
    """Number of ones in a list of 1-bit values."""
    total = Value.cast(0)
    for b in bits:
        total = total + Value.cast(b)
    return total


def check_pipeline(h: Harness, m: Module, chain: list, enter, leave, adv, name: str = "pipe"):
    """Tokens through a fixed-latency pipeline that advances on ``adv`` as a whole.

    ``chain`` lists the block's per-stage token bits in order (probed; the last is the
    output ``valid``), so the latency is ``len(chain)``: a token accepted (``enter``) in an
    advancing cycle is at ``chain[0]`` after it and moves one stage per advancing cycle;
    ``leave`` is the output transfer. Asserted, with a free choice of one tracked token:

    * ``<name>_count``: results due (``enter`` minus ``leave`` so far, a harness counter)
      equal the tokens in the chain: none lost, duplicated or invented;
    * ``<name>_latency``: the tracked token is presented (output ``valid``) exactly after
      ``len(chain)`` advancing cycles, with every earlier result taken before it;
    * ``<name>_position``, ``<name>_order``: where the tracked token is, and how many are
      ahead of it (the invariants that make the two above inductive).
    """
    L = len(chain)
    chain_v = Cat(*chain)
    inflight = Signal(range(L + 2), name=f"{name}_inflight")
    m.d.sync += inflight.eq(inflight + enter - leave)
    h.check(m, f"{name}_count", inflight == popcount(chain))

    track = h.free(1, f"{name}_track")
    tracking = Signal(name=f"{name}_tracking")
    pos = Signal(range(L), name=f"{name}_pos")
    ahead = Signal(range(L + 1), name=f"{name}_ahead")
    h.assume(m, f"{name}_track_once", ~track | (enter & ~tracking))
    with m.If(track):
        m.d.sync += [tracking.eq(1), pos.eq(0), ahead.eq(inflight - leave)]
    with m.Elif(tracking):
        with m.If(leave & (ahead != 0)):
            m.d.sync += ahead.eq(ahead - 1)
        with m.If(adv):
            with m.If(pos == L - 1):
                m.d.sync += tracking.eq(0)
            with m.Else():
                m.d.sync += pos.eq(pos + 1)
    in_front = popcount([Value.cast(c) & (pos < i) for i, c in enumerate(chain)])
    h.check(m, f"{name}_position", ~tracking | chain_v.bit_select(pos, 1))
    h.check(m, f"{name}_order", ~tracking | (ahead == in_front))
    h.check(m, f"{name}_latency", ~tracking | (pos != L - 1) | (chain[-1] & (ahead == 0)))
    h.cover(m, f"{name}_delivered", tracking & (pos == L - 1) & leave)
    return track, tracking, pos
