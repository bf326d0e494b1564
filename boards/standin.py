"""TEST DESIGN, not the trainer: a stand-in SoC with the real SoC's ports and memory shapes.

It exists so that the board flow (``lnsmadam build --design standin``) and its tests run
without the trainer: a UART echo whose bytes go through

* a ``n_records * 33`` x 16 dataset memory (``lib.memory.Memory``, one address shared by
  its read and write port, read enable = not write enable: the port style that maps to
  the iCE40UP5K's SPRAM, see :mod:`lnsmadam.boards.build`), and
* two EBR-sized memories (1024 x 8 and 1024 x 17, the weight/state shapes),

so every received byte is stored at the next address of all three (twice in each 16-bit
word), read back, and sent as the XOR of the five copies read, i.e. the byte itself. LEDs:
idle, activity (toggles per byte), framing error (sticky).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.format import check_int
from ..golden.image import record_words

__all__ = ["StandInConfig", "StandInSoC", "UARTRx", "UARTTx"]

RECORD_WORDS = record_words(64)     # the SoC's record size for 64 inputs (33)


@dataclass(frozen=True)
class StandInConfig:
    """Parameters of the stand-in (the subset of ``SoCConfig`` the board flow uses)."""

    n_records: int = 1797
    clk_freq: float = 12e6
    baud: int = 1_000_000

    def __post_init__(self):
        check_int("n_records", self.n_records, 1, 65536 // RECORD_WORDS)
        check_int("baud", self.baud, 300, 50_000_000)
        if not 4 <= self.divisor <= 65535:
            raise ValueError(f"clk_freq / baud must round to 4..65535 cycles per bit, "
                             f"got {self.divisor}")

    @property
    def divisor(self) -> int:
        return int(round(float(self.clk_freq) / self.baud))

    def to_dict(self) -> dict:
        return {**asdict(self), "divisor": self.divisor, "design": "standin"}


class UARTRx(wiring.Component):
    """8N1 receiver of the stand-in (the SoC's is :class:`lnsmadam.hw.uart.UARTRx`).

    Parameters
    ----------
    divisor : int, 4..65535
        Clocks per bit.

    Members
    -------
    rx : In(1), init 1
        The pin, already synchronised.
    data : Out(8); valid, error : Out(1)
        ``data``/``valid`` pulse one cycle after the stop bit's middle; ``error`` pulses on
        a missing stop bit.

    Latency
    -------
    ``valid`` one cycle after the stop bit's middle.

    Throughput
    ----------
    One byte per UART frame.

    Notes
    -----
    Test design only (module docstring).
    """

    def __init__(self, divisor: int):
        self.divisor = check_int("divisor", divisor, 4, 65535)
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1),
                          "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d + d // 2 + 1))
        bits = Signal(4)
        shreg = Signal(8)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~self.rx):
                    # first sample in the middle of data bit 0
                    m.d.sync += [timer.eq(d + d // 2 - 1), bits.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bits.eq(bits + 1)]
                    with m.If(bits == 8):
                        m.d.sync += [self.data.eq(shreg), self.valid.eq(self.rx),
                                     self.error.eq(~self.rx)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += shreg.eq((shreg >> 1) | (self.rx << 7))
        with m.If(self.valid | self.error):
            m.d.sync += [self.valid.eq(0), self.error.eq(0)]
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter of the stand-in (the SoC's is :class:`lnsmadam.hw.uart.UARTTx`).

    Parameters
    ----------
    divisor : int, 4..65535
        Clocks per bit.

    Members
    -------
    data : In(8); valid : In(1); ready : Out(1)
        ``data`` is taken when ``valid & ready``.
    tx : Out(1), init 1
        The pin; idles high.

    Latency
    -------
    The start bit begins in the cycle after ``data`` is taken.

    Throughput
    ----------
    One byte per ``10 * divisor`` clocks when fed back to back.

    Notes
    -----
    Test design only (module docstring).
    """

    def __init__(self, divisor: int):
        self.divisor = check_int("divisor", divisor, 4, 65535)
        super().__init__({"data": In(8), "valid": In(1), "ready": Out(1),
                          "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10, init=0x3FF)
        bits = Signal(4)
        m.d.comb += [self.ready.eq(bits == 0), self.tx.eq(shreg[0])]
        with m.If(bits == 0):
            with m.If(self.valid):
                m.d.sync += [shreg.eq((self.data << 1) | (1 << 9)), bits.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shreg.eq((shreg >> 1) | (1 << 9)), bits.eq(bits - 1),
                         timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class StandInSoC(wiring.Component):
    """The stand-in: a UART echo through the SoC's memory shapes (module docstring).

    Parameters
    ----------
    cfg : StandInConfig
        ``n_records`` (sizes the data memory), ``clk_freq`` and ``baud``.

    Members
    -------
    uart_rx : In(1), init 1; uart_tx : Out(1), init 1; leds : Out(3)
        As :class:`lnsmadam.hw.soc.SoC`'s: the UART pins, LEDs idle / activity / framing
        error.

    Latency
    -------
    A received byte is sent back 3 cycles after it arrives (then its UART time).

    Throughput
    ----------
    One byte at a time, UART-bound.

    Notes
    -----
    Test design, not the trainer.
    """

    def __init__(self, cfg: StandInConfig = StandInConfig()):
        self.cfg = cfg
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1),
                          "leds": Out(3)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.rx = rx = UARTRx(cfg.divisor)
        m.submodules.tx = tx = UARTTx(cfg.divisor)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]

        m.submodules.data_mem = data_mem = Memory(shape=16, depth=cfg.n_records * RECORD_WORDS,
                                                  init=[])
        d_wp = data_mem.write_port()
        d_rp = data_mem.read_port()
        addr = Signal(range(data_mem.depth))
        # the SPRAM rule: one address for both ports, no read while writing
        m.d.comb += [d_wp.addr.eq(addr), d_rp.addr.eq(addr), d_rp.en.eq(~d_wp.en)]

        m.submodules.w_mem = w_mem = Memory(shape=8, depth=1024, init=[])
        m.submodules.s_mem = s_mem = Memory(shape=17, depth=1024, init=[])
        w_wp, w_rp = w_mem.write_port(), w_mem.read_port()
        s_wp, s_rp = s_mem.write_port(), s_mem.read_port()
        m.d.comb += [w_wp.addr.eq(addr), w_rp.addr.eq(addr),
                     s_wp.addr.eq(addr), s_rp.addr.eq(addr)]

        byte = Signal(8)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(rx.valid):
                    m.d.sync += byte.eq(rx.data)
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [d_wp.en.eq(1), d_wp.data.eq(byte | (byte << 8)),
                             w_wp.en.eq(1), w_wp.data.eq(byte),
                             s_wp.en.eq(1), s_wp.data.eq(byte | (byte << 8) | (addr[0] << 16))]
                m.next = "READ"
            with m.State("READ"):
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [tx.valid.eq(1),
                             tx.data.eq(d_rp.data[:8] ^ d_rp.data[8:] ^ w_rp.data ^
                                        s_rp.data[:8] ^ s_rp.data[8:16])]
                with m.If(tx.ready):
                    m.d.sync += addr.eq(addr + 1)
                    with m.If(addr == data_mem.depth - 1):
                        m.d.sync += addr.eq(0)
                    m.next = "IDLE"

        active, error = Signal(), Signal()
        with m.If(rx.valid):
            m.d.sync += active.eq(~active)
        with m.If(rx.error):
            m.d.sync += error.eq(1)
        m.d.comb += [self.leds[0].eq(~active), self.leds[1].eq(active), self.leds[2].eq(error)]
        return m
