"""Small sequencing helpers of the engine: delay lines and the weight-visit counters."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value

__all__ = ["delay", "table", "VisitCounter"]


def delay(m: Module, value, n: int, name: str):
    """``value`` delayed by ``n`` clock cycles (a chain of registers; ``n = 0``: itself)."""
    value = Value.cast(value)
    for k in range(n):
        reg = Signal(value.shape(), name=f"{name}_d{k + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def table(m: Module, values, index, name: str) -> Signal:
    """``values[index]`` for a list of integer constants (a small mux)."""
    values = [int(v) for v in values]
    lo = min(values)
    width = max(max(abs(v) for v in values).bit_length() + (lo < 0), 1)
    sig = Signal(width, name=name) if lo >= 0 else Signal(range(lo, max(values) + 1), name=name)
    if len(set(values)) == 1:
        m.d.comb += sig.eq(values[0])
    else:
        m.d.comb += sig.eq(Array(Const(v, sig.shape()) for v in values)[index])
    return sig


class VisitCounter:
    """The order in which a pass visits the ``rows x words`` weights of one bank.

    Row-major (``rows`` outer, ``words`` inner; forward passes): the linear address
    ``i * words + w`` counts up by one. Word-major (``words`` outer, ``rows`` inner; the
    backward + update pass): it steps by ``words`` and wraps to ``w + 1``. ``first`` and
    ``last`` frame one dot product (a row in row-major, a word in word-major order); ``end``
    marks the pass's last visit. ``start`` (a pulse) restarts at 0; ``step`` advances.
    """

    def __init__(self, m: Module, name: str, row_major, rows_m1, words_m1, words,
                 start, step, n_max: int):
        rng = range(n_max + 1)
        self.i = i = Signal(rng, name=f"{name}_i")
        self.w = w = Signal(rng, name=f"{name}_w")
        self.lin = lin = Signal(rng, name=f"{name}_lin")
        last_w, last_i = w == words_m1, i == rows_m1
        self.first = Mux(row_major, w == 0, i == 0)
        self.last = Mux(row_major, last_w, last_i)
        self.end = last_w & last_i
        with m.If(start):
            m.d.sync += [i.eq(0), w.eq(0), lin.eq(0)]
        with m.Elif(step):
            with m.If(row_major):
                m.d.sync += lin.eq(lin + 1)
                with m.If(last_w):
                    m.d.sync += [w.eq(0), i.eq(i + 1)]
                with m.Else():
                    m.d.sync += w.eq(w + 1)
            with m.Else():
                with m.If(last_i):
                    m.d.sync += [i.eq(0), w.eq(w + 1), lin.eq(w + 1)]
                with m.Else():
                    m.d.sync += [i.eq(i + 1), lin.eq(lin + words)]
