"""A square wave from the clock: an LED blinker."""

from __future__ import annotations

from amaranth.hdl import Module, Signal

__all__ = ["square_wave"]


def square_wave(m: Module, clk_freq: float, hz: float) -> Signal:
    """A signal toggling at ``2 * hz`` per second of a ``clk_freq`` clock (a ``hz`` square
    wave, for LEDs): one down-counter and one flip-flop in ``m``'s ``sync`` domain."""
    period = max(int(clk_freq / (2 * hz)), 2)
    count = Signal(range(period))
    on = Signal()
    with m.If(count == 0):
        m.d.sync += [count.eq(period - 1), on.eq(~on)]
    with m.Else():
        m.d.sync += count.eq(count - 1)
    return on
