"""The board top: clock (oscillator or PLL), reset, UART pins and LEDs around a SoC.

:class:`BoardTop` wraps any component with the SoC's ports (``uart_rx: In(1)``,
``uart_tx: Out(1)``, ``leds: Out(3)`` = idle, training, error) in the ``sync`` domain:

* ``clk_freq`` equal to the board oscillator: the platform's default ``sync`` domain
  (amaranth's power-on reset, which on iCE40 also covers the ~3 us after configuration
  when EBRs read as zero);
* otherwise a PLL (SB_PLL40_PAD on iCE40, EHXPLLL on ECP5) makes ``sync``; the domain is
  held in reset until the PLL locks (and, on iCE40, 15 us longer, for the EBRs).

``uart_rx`` passes a 2-flip-flop synchroniser (the pin is asynchronous to ``sync``).
LEDs: see :data:`lnsmadam.boards.platforms.BOARDS` (iCEBreaker: green = idle, blinking =
training, red = error; ULX3S: led0..2 = idle, training, error, led7 = a 1 Hz heartbeat).
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module
from amaranth.hdl import Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer

from .platforms import Board, PLLParams

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """``soc`` on ``board`` with its ``sync`` domain at ``clk_freq`` Hz (PLL if it differs
    from the oscillator by more than 0.01 %)."""

    def __init__(self, board: Board, soc, clk_freq: float):
        self.board = board
        self.soc = soc
        self.clk_freq = float(clk_freq)
        self.pll: PLLParams | None = None
        if abs(self.clk_freq - board.clk_freq) > 1e-4 * board.clk_freq:
            self.pll = board.pll(self.clk_freq)
            if self.pll.error > 1e-3:
                raise ValueError(
                    f"clk_freq {self.clk_freq:g} Hz is not reachable by the {board.family} PLL "
                    f"from {board.clk_freq:g} Hz (nearest {self.pll.fout:g} Hz)")

    # -- clocks ----------------------------------------------------------------------------
    def _ice40_pll(self, m, platform):
        p = self.pll.params
        clk_port = platform.request(self.board.clk_name, dir="-")
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        clk, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
            p_FILTER_RANGE=p["FILTER_RANGE"],
            i_PACKAGEPIN=clk_port.io, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=clk, o_LOCK=lock)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]
        # EBRs read as zero for ~3 us after configuration: hold reset 15 us past lock
        delay = int(15e-6 * self.clk_freq)
        timer = Signal(range(delay + 1))
        ready = Signal()
        lock_s = Signal()
        m.submodules.lock_sync = FFSynchronizer(lock, lock_s, o_domain="por")
        with m.If(~lock_s):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.submodules.rst_sync = ResetSynchronizer(~ready, domain="sync")
        platform.add_clock_constraint(clk, self.pll.fout)

    def _ecp5_pll(self, m, platform):
        p = self.pll.params
        clk_port = platform.request(self.board.clk_name, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
        m.domains.sync = ClockDomain("sync")
        clk, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.board.clk_freq / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{self.pll.fout / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"], p_CLKI_DIV=p["CLKI_DIV"],
            i_CLKI=clk_buf.i, i_CLKFB=clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
            i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk, o_LOCK=lock)
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")
        platform.add_clock_constraint(clk, self.pll.fout)

    # -- pins ------------------------------------------------------------------------------
    def _leds(self, m, platform, idle, training, error):
        def led(k, value):
            m.submodules[f"led{k}"] = buf = io.Buffer("o", platform.request("led", k, dir="-"))
            m.d.comb += buf.o.eq(value)

        if self.board.family == "ice40":
            led(0, error)                    # red
            led(1, idle | training)          # green; the SoC blinks `training`
            return
        for k, value in enumerate((idle, training, error)):
            led(k, value)
        from ..hw.util.square_wave import square_wave
        led(7, square_wave(m, self.clk_freq, 1))       # the 1 Hz heartbeat

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            (self._ice40_pll if self.board.family == "ice40" else self._ecp5_pll)(m, platform)
        m.submodules.soc = soc = self.soc
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.rx_sync = FFSynchronizer(rx_buf.i, soc.uart_rx, init=1)
        m.d.comb += tx_buf.o.eq(soc.uart_tx)
        self._leds(m, platform, soc.leds[0], soc.leds[1], soc.leds[2])
        return m
