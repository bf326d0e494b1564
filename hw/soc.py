"""The training SoC: :class:`~.trainer.Trainer` + :class:`~.link.Link` + status LEDs.

One top for every board and for the simulation twin. The host reaches it over one UART
(``docs/protocol.md``); :meth:`SoC.identify_json` is what ``IDENTIFY`` returns.

LEDs: ``leds[0]`` idle (on while waiting for the host), ``leds[1]`` training or evaluating
(blinks at about 3 Hz of the training clock), ``leds[2]`` error (the last ``START`` or
``EVALUATE`` was refused: no data, bad counts).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsmadam.golden.format import LNSFormat, check_float, check_int
from lnsmadam.golden.mlp import MLPConfig

from .trainer import Trainer

__all__ = ["SoCConfig", "SoC", "PROTOCOL_VERSION", "DESIGN_VERSION", "square_wave"]

PROTOCOL_VERSION = 1
DESIGN_VERSION = "0.1.0"


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


@dataclass(frozen=True)
class SoCConfig:
    """Generator parameters of the SoC.

    sizes : MLP layer widths, input first (each 1..1024; default 64-16-10).
    lanes : weights per cycle in forward and update (1, 2, 4, 8, 16).
    n_records : samples the on-chip data memory holds (train + test), 1..65535 and
        ``n_records * (ceil(n_in/2) + 1) <= 65536``.
    bits, gamma : LNS format of every forward/backward tensor (bits 3..8, gamma 1..2**(bits-2)).
    lr_step : default LNS-Madam step (``START`` chooses it per run), 1..64.
    clk_freq : Hz of the ``sync`` domain; baud : UART rate. ``clk_freq / baud`` rounds to the
        bit time in cycles, which must be 4..65535.
    mac_pipeline (1..2 + log2(lanes)), mac_out_pipeline (0..4), update_pipeline (0..6):
        register stages of the MAC and the update engine (:class:`~.trainer.Trainer`);
        fewer cost fewer logic cells and a lower clock.
    """

    sizes: tuple = (64, 16, 10)
    lanes: int = 1
    n_records: int = 1797
    bits: int = 8
    gamma: int = 8
    lr_step: int = 1
    clk_freq: float = 12e6
    baud: int = 1_000_000
    mac_pipeline: int = 2
    mac_out_pipeline: int = 3
    update_pipeline: int = 5

    def __post_init__(self):
        if isinstance(self.sizes, (str, bytes)) or not hasattr(self.sizes, "__iter__"):
            raise ValueError(f"sizes must be a sequence of layer widths, e.g. (64, 16, 10), "
                             f"got {self.sizes!r}")
        object.__setattr__(self, "sizes", tuple(check_int(f"sizes[{i}]", s, 1, 1024)
                                                for i, s in enumerate(self.sizes)))
        check_int("lanes", self.lanes, 1, 16)
        check_int("n_records", self.n_records, 1, 65535)
        check_int("bits", self.bits, 3, 8)
        check_int("lr_step", self.lr_step, 1, 64)
        check_int("baud", self.baud, 300, 50_000_000)
        check_float("clk_freq", self.clk_freq, 1e3, 1e9, unit=" Hz")
        d = self.divisor
        if not 4 <= d <= 65535:
            raise ValueError(f"clk_freq / baud must round to 4..65535 cycles per bit, got {d} "
                             f"({self.clk_freq:g} Hz / {self.baud} baud)")
        self.mlp_config()          # validates bits/gamma/sizes
        try:
            t = self.trainer()     # validates lanes/records/pipelines against the sizes
        except ValueError as e:
            # the trainer calls it max_records; here it is n_records
            raise ValueError(str(e).replace("max_records", "n_records")) from None
        t._MustUse__silence = True

    @property
    def divisor(self) -> int:
        return int(round(float(self.clk_freq) / self.baud))

    def mlp_config(self) -> MLPConfig:
        """The golden model of this SoC (its MAC with ``lanes`` lanes, as the trainer's)."""
        from dataclasses import replace

        from ..golden.mac import MACConfig
        base = MLPConfig()
        fmt = LNSFormat.from_gamma(self.bits, self.gamma)
        return MLPConfig(sizes=self.sizes, fmt=fmt,
                         mac=MACConfig.for_format(fmt, lanes=self.lanes),
                         madam=replace(base.madam, lr_step=self.lr_step))

    def trainer(self) -> Trainer:
        return Trainer(self.mlp_config(), lanes=self.lanes, max_records=self.n_records,
                       mac_pipeline=self.mac_pipeline, mac_out_pipeline=self.mac_out_pipeline,
                       update_pipeline=self.update_pipeline)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        d["divisor"] = self.divisor
        return d


class SoC(wiring.Component):
    """Trainer, host link and LEDs (ports ``uart_rx``, ``uart_tx``, ``leds``).

    ``busy_port``: also expose ``busy`` (1 while training or evaluating), which the
    simulation twin uses to clock the model only while there is work.
    """

    def __init__(self, cfg: SoCConfig = SoCConfig(), busy_port: bool = False):
        if not isinstance(cfg, SoCConfig):
            raise ValueError(f"cfg must be a SoCConfig, got {cfg!r}")
        self.cfg = cfg
        self.trainer = cfg.trainer()
        ports = {"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(3)}
        if busy_port:
            ports["busy"] = Out(1)
        super().__init__(ports)

    def identify_json(self) -> dict:
        return {"protocol": PROTOCOL_VERSION,
                "design": {"name": "lnsmadam-soc", "version": DESIGN_VERSION},
                "config": {**self.trainer.describe(), "soc": self.cfg.to_dict()},
                "clk_freq": float(self.cfg.clk_freq), "baud": self.cfg.baud,
                "divisor": self.cfg.divisor,
                "regions": [{"id": i, "name": n, "width": w, "depth": d}
                            for i, n, w, d in self.trainer.regions()]}

    def identify_blob(self) -> bytes:
        from lnsmadam.host.protocol import identify_blob
        return identify_blob(self.identify_json())

    def elaborate(self, platform):
        from .link import Link
        m = Module()
        tr = m.submodules.trainer = self.trainer
        link = m.submodules.link = Link(self.identify_blob(), self.trainer.regions(),
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

    @staticmethod
    def dumps(obj) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))
