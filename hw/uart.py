"""UART receiver and transmitter: 8N1, LSB first, idle high, ``divisor`` clocks per bit.

:class:`UARTRx` -- ports ``rx: In(1)`` (the pin, asynchronous), ``o: Out(stream.Signature(8))``
(received bytes), ``frame_error: Out(1)`` and ``overrun: Out(1)`` (one-cycle pulses).
The pin passes a 2-flip-flop synchroniser. A low level on it starts a byte; the start bit
is checked again at its middle (``divisor // 2`` clocks later; high again = a glitch, ignored)
and every following bit is sampled ``divisor`` clocks after the previous one, i.e. in its
middle. After the stop-bit sample (``divisor // 2 + 9 * divisor`` clocks after the falling
edge was seen, plus the 2 synchroniser clocks) the byte is offered on ``o``:

* a stop bit of 0 drops the byte and pulses ``frame_error``; the receiver then waits for
  the line to go high before looking for the next start bit (a break is one error);
* ``o`` holds one byte (the receive shift register itself): if it has not been taken when
  the next byte's start bit is confirmed, that next byte is dropped and ``overrun`` pulses at
  its stop-bit sample (the held byte stays valid until taken).

The receiver looks for the next start bit right after the stop-bit sample, so back-to-back
bytes and a transmitter up to ~4 % off the nominal rate (less a clock or two of
quantisation at small divisors) are received.

:class:`UARTTx` -- ports ``i: In(stream.Signature(8))``, ``tx: Out(1)`` (registered, idle 1).
A byte is taken when ``i.valid`` and ``i.ready``; its start bit appears on ``tx`` in the next
cycle and each of the 10 bits lasts exactly ``divisor`` clocks. ``ready`` is high while idle
and in the last clock of a stop bit, so back-to-back bytes leave no idle time (one byte
every ``10 * divisor`` clocks).

``divisor`` is 4..65535 for both.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..golden.format import check_int

__all__ = ["UARTRx", "UARTTx", "DIVISOR_MIN", "DIVISOR_MAX"]

DIVISOR_MIN, DIVISOR_MAX = 4, 65535


class UARTRx(wiring.Component):
    """8N1 receiver.

    Parameters
    ----------
    divisor : int, 4..65535
        Clocks per bit.

    Members
    -------
    rx : In(1), init 1
        The pin (asynchronous; a 2-flip-flop synchroniser inside).
    o : Out(stream.Signature(8))
        Received bytes.
    frame_error, overrun : Out(1)
        One-cycle pulses (a stop bit of 0; a byte dropped because ``o`` was not taken).

    Latency
    -------
    A byte is offered ``divisor // 2 + 9 * divisor + 2`` clocks after its start bit's
    falling edge.

    Throughput
    ----------
    Back-to-back bytes, from a transmitter up to ~4 % off the nominal rate.

    Notes
    -----
    The module docstring gives the sampling, the error and the overrun rules.
    """

    def __init__(self, divisor: int):
        self.divisor = check_int("divisor", divisor, DIVISOR_MIN, DIVISOR_MAX)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        pin = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, pin, init=1, stages=2)

        timer = Signal(range(div))
        bits = Signal(range(10))          # bits sampled since the start bit
        shreg = Signal(8)
        valid = Signal()
        drop = Signal()                   # the byte being received is dropped (overrun)
        m.d.comb += [self.o.payload.eq(shreg), self.o.valid.eq(valid)]
        with m.If(self.o.ready):
            m.d.sync += valid.eq(0)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]

        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~pin):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(pin):
                    m.next = "IDLE"                    # glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bits.eq(0),
                                 drop.eq(valid & ~self.o.ready)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bits.eq(bits + 1)]
                    with m.If(bits != 8):
                        with m.If(~drop):
                            m.d.sync += shreg.eq(Cat(shreg[1:], pin))
                    with m.Elif(~pin):
                        m.d.sync += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.Else():
                        with m.If(drop):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += valid.eq(1)
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(pin):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int, 4..65535
        Clocks per bit.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1), init 1
        The pin (registered).

    Latency
    -------
    The start bit of a byte taken in cycle ``t`` appears on ``tx`` in cycle ``t + 1``.

    Throughput
    ----------
    One byte every ``10 * divisor`` clocks, back to back (``ready`` in the last clock of a
    stop bit).

    Notes
    -----
    Idle, ``tx`` is high.
    """

    def __init__(self, divisor: int):
        self.divisor = check_int("divisor", divisor, DIVISOR_MIN, DIVISOR_MAX)
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        # bits still to send, LSB first, above them a marker 1; zeros are shifted in, so
        # when idle only the marker is left and it drives the pin high
        shreg = Signal(11, init=1)
        timer = Signal(range(div))
        busy = shreg[1:] != 0
        last = (shreg[2:] == 0) & (~shreg[1] | (timer == 0))
        m.d.comb += [self.i.ready.eq(last), self.tx.eq(shreg[0])]
        with m.If(self.i.valid & last):
            m.d.sync += [shreg.eq(Cat(Const(0, 1), self.i.payload, Const(0b11, 2))),
                         timer.eq(div - 1)]
        with m.Elif(busy):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [shreg.eq(shreg[1:]), timer.eq(div - 1)]
        return m
