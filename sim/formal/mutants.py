"""Known bugs injected into copies of the RTL, to show that the proofs catch them.

A mutation rewrites the elaborated netlist of a block (its Amaranth fragment, before RTLIL
conversion), never the source: :class:`Rewrite` replaces the right-hand side of every
assignment to a named signal (``assign``) or every use of a named signal (``use``) in the
block's own statements (not its submodules'). A few bugs are easier to state as a
subclass that elaborates with one parameter changed (:class:`NoSaturation`).

:func:`lnsmadam.sim.formal.jobs.mutant_jobs` lists them: each names the block, the bug,
the job it runs (a harness built with the mutation) and the properties expected to fail;
``tests/test_formal.py`` checks that every one fails with a counterexample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from amaranth.hdl import Const, Signal, Value
from amaranth.hdl._ast import Assign, Slice
from amaranth.hdl._ir import Fragment
from amaranth.hdl._xfrm import FragmentTransformer, StatementTransformer, ValueTransformer

__all__ = ["Rewrite", "Mutant", "NoSaturation", "set_to"]


def _assigned(frag: Fragment) -> dict:
    """Signals assigned by ``frag``'s own statements, by name."""
    out = {}
    for stmts in frag.statements.values():
        for st in stmts:
            for sig in st._lhs_signals():
                out.setdefault(sig.name, []).append(sig)
    return out


class Rewrite(FragmentTransformer, ValueTransformer, StatementTransformer):
    """Rewrite a block's top fragment.

    ``assign``: ``{name: fn(rhs, lhs)}``, the new right-hand side of each assignment to the
    signal ``name`` (``lhs`` is the signal or the slice of it being assigned);
    ``use``: ``{name: fn(signal)}``, what every read of the signal ``name`` becomes. Only the
    fragment it is called on is rewritten: its submodules are kept as they are.
    """

    def __init__(self, assign: dict | None = None, use: dict | None = None):
        self.assign = dict(assign or {})
        self.use = dict(use or {})

    def map_subfragments(self, fragment, new_fragment):
        for sub, name, src_loc in fragment.subfragments:
            new_fragment.add_subfragment(sub, name, src_loc=src_loc)

    def on_Signal(self, value):
        fn = self.use.get(value.name)
        return Value.cast(fn(value)) if fn else value

    def on_Assign(self, stmt):
        lhs, rhs = stmt.lhs, self.on_value(stmt.rhs)
        sig = lhs.value if isinstance(lhs, Slice) else lhs
        if isinstance(sig, Signal) and sig.name in self.assign:
            rhs = self.assign[sig.name](rhs, lhs)
        return Assign(lhs, rhs)

    def __call__(self, frag: Fragment) -> Fragment:
        missing = set(self.assign) - set(_assigned(frag))
        if missing:
            raise LookupError(f"mutation targets {sorted(missing)} are not assigned by the block")
        return self.on_fragment(frag)


def set_to(value) -> Callable:
    return lambda rhs, lhs: Const(value, len(lhs))


@dataclass
class Mutant:
    """One injected bug: ``job`` builds the :class:`~.sby.Job` with the mutation applied;
    ``expect`` lists properties of which at least one must fail."""

    block: str
    name: str
    bug: str
    job: Callable
    expect: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.block}.{self.name}"


def NoSaturation(base):
    """A subclass of the dot-product unit ``base`` that claims ``saturate`` but wraps."""

    class _NoSaturation(base):
        def elaborate(self, platform):
            claimed, self.saturate = self.saturate, False
            try:
                return super().elaborate(platform)
            finally:
                self.saturate = claimed

    _NoSaturation.__name__ = f"NoSaturation{base.__name__}"
    return _NoSaturation

