"""The training SoC: :class:`~.engine.engine.Engine` + :class:`~.link.Link` + status LEDs.

One top for every board and for the simulation twin, generated from a
:class:`~lnsmadam.golden.soc.SoCConfig` (which checks itself and describes the device: its
regions and its identify JSON, without building hardware). The host reaches it over one
UART (``docs/protocol.md``).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.soc import SoCConfig
from .link import Link
from .engine.engine import Engine
from .util.square_wave import square_wave

__all__ = ["SoC"]


class SoC(wiring.Component):
    """The training engine and its host link behind one UART, with status LEDs.

    Parameters
    ----------
    cfg : :class:`~lnsmadam.golden.soc.SoCConfig`
        The design (default: the 64-16-10 MLP at 12 MHz, 1,000,000 baud).
    busy_port : bool
        Also expose ``busy``, which the simulation twin uses to clock the model only while
        there is work.

    Members
    -------
    uart_rx : In(1), init 1
        UART receive pin (asynchronous).
    uart_tx : Out(1), init 1
        UART transmit pin.
    leds : Out(3)
        ``leds[0]`` idle (on while waiting for the host), ``leds[1]`` training or evaluating
        (blinks at about 3 Hz of the training clock), ``leds[2]`` error (the last ``START`` or
        ``EVALUATE`` was refused: no data, bad counts).
    busy : Out(1), with ``busy_port`` only
        1 while training or evaluating.

    Latency
    -------
    That of the :class:`~.link.Link` per request and of the :class:`~.engine.engine.Engine`
    per sample.

    Throughput
    ----------
    One request at a time at the UART's rate; one training sample at a time (two in
    pipelined mode).

    Notes
    -----
    ``IDENTIFY`` returns :meth:`SoCConfig.identify_blob`, stored in a ROM of the link.
    """

    def __init__(self, cfg: SoCConfig = SoCConfig(), busy_port: bool = False):
        if not isinstance(cfg, SoCConfig):
            raise ValueError(f"cfg must be a SoCConfig, got {cfg!r}")
        self.cfg = cfg
        self.trainer = Engine(cfg.mlp_config(), **cfg.engine_options())
        ports = {"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(3)}
        if busy_port:
            ports["busy"] = Out(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        tr = m.submodules.trainer = self.trainer
        link = m.submodules.link = Link(self.cfg.identify_blob(), self.cfg.regions(),
                                        self.cfg.divisor)
        wiring.connect(m, link.bus, tr.bus)
        wiring.connect(m, link.ctl, tr.ctl)
        m.d.comb += [link.uart_rx.eq(self.uart_rx), self.uart_tx.eq(link.uart_tx)]
        on = square_wave(m, self.cfg.clk_freq, 3)
        m.d.comb += [self.leds[0].eq(tr.ctl.state == 0),
                     self.leds[1].eq((tr.ctl.state != 0) & on),
                     self.leds[2].eq(tr.ctl.error != 0)]
        if hasattr(self, "busy"):
            m.d.comb += self.busy.eq(tr.ctl.busy)
        return m
