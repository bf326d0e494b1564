"""The supported boards: device resources, clock, UART, LEDs, programmer, default SoC config.

:data:`BOARDS` maps a board name to a :class:`Board`; :func:`get_board` looks one up and
raises :class:`UnknownBoard` (a ``ValueError``) listing the choices. The amaranth-boards
platform class is imported only when a build needs it (:meth:`Board.platform`).

Resources are the device data-sheet figures (iCE40 UltraPlus DS FPGA-DS-02008, ECP5
FPGA-DS-02012); a build reports what nextpnr counts as used and available
(:mod:`lnsmadam.boards.report`).

PLL settings are computed from the PLL equations (:func:`ice40_pll`, :func:`ecp5_pll`) when
the SoC's ``clk_freq`` differs from the board oscillator; the default configs run from the
oscillator where it is fast enough for the design.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

__all__ = ["Board", "BOARDS", "DEFAULT_BOARD", "UnknownBoard", "get_board", "board_names",
           "ice40_pll", "ecp5_pll", "PLLParams"]


class UnknownBoard(ValueError):
    """An unknown board name; the message lists the supported ones."""


@dataclass(frozen=True)
class Board:
    """One supported board.

    ``resources``: data-sheet counts of the FPGA: ``lut4``, ``ff``, ``bram`` (blocks),
    ``bram_bits`` (bits per block, without parity), ``spram`` (blocks), ``spram_bits``,
    ``dsp`` (multiplier blocks), ``pll``. ``uart``: the pins of the board's USB-serial
    bridge as the FPGA sees them (``rx`` into the FPGA). ``leds``: what each LED shows.
    ``config``: SoCConfig overrides of this board's default design.
    """

    name: str
    title: str
    platform_path: str            # "module:Class" of the amaranth-boards platform
    family: str                   # "ice40" or "ecp5"
    device: str
    package: str
    clk_name: str
    clk_freq: float               # oscillator, Hz
    resources: dict
    uart: dict
    leds: tuple
    usb_bridge: str
    usb_id: tuple                 # (vid, pid, interface) of the UART's USB bridge
    serial_port: str              # usual device node of the UART on Linux
    programmers: tuple            # ((tool, args before the bitstream, install hint), ...)
    bitstream_ext: str
    config: dict = field(default_factory=dict)
    notes: str = ""

    def platform(self):
        """A fresh instance of the amaranth-boards platform class."""
        module, cls = self.platform_path.split(":")
        return getattr(importlib.import_module(module), cls)()

    def max_pll_freq(self) -> float:
        return 275e6 if self.family == "ice40" else 400e6

    def pll(self, freq: float):
        """PLL settings giving ``freq`` Hz from the oscillator (see :func:`ice40_pll`)."""
        return (ice40_pll if self.family == "ice40" else ecp5_pll)(self.clk_freq, freq)

    def summary(self) -> dict:
        return {"name": self.name, "title": self.title, "family": self.family,
                "device": self.device, "package": self.package,
                "clock": {"pin": self.clk_name, "freq": self.clk_freq},
                "resources": dict(self.resources), "uart": dict(self.uart),
                "usb_bridge": self.usb_bridge, "serial_port": self.serial_port,
                "leds": list(self.leds),
                "programmers": [p[0] for p in self.programmers],
                "config": dict(self.config), "notes": self.notes}


# -- PLLs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PLLParams:
    """Divider settings of a PLL and the frequency they give."""

    family: str
    fin: float
    fout: float
    params: dict

    @property
    def error(self) -> float:
        """Relative error of ``fout`` against the requested frequency (set by the solver)."""
        return self.params.get("_error", 0.0)


def ice40_pll(fin: float, fout: float) -> PLLParams:
    """SB_PLL40 in SIMPLE feedback: ``fout = fin * (DIVF+1) / ((DIVR+1) * 2**DIVQ)``.

    Constraints (iCE40 sysCLOCK PLL guide): PFD ``fin/(DIVR+1)`` in 10..133 MHz, VCO
    ``PFD*(DIVF+1)`` in 533..1066 MHz, ``DIVQ`` 1..6, ``fout`` 16..275 MHz. Returns the
    closest setting; ``FILTER_RANGE`` follows the PFD frequency. Raises ValueError when
    ``fout`` is out of range.
    """
    if not 16e6 <= fout <= 275e6:
        raise ValueError(f"clk_freq must be in [16e6, 275e6] Hz for the iCE40 PLL, got {fout:g}")
    best = None
    for divr in range(16):
        pfd = fin / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divq in range(1, 7):
            for divf in range(128):
                vco = pfd * (divf + 1)
                if not 533e6 <= vco <= 1066e6:
                    continue
                f = vco / 2 ** divq
                err = abs(f - fout)
                if best is None or err < best[0] - 1e-3:
                    best = (err, divr, divf, divq, f, pfd)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting gives {fout:g} Hz from {fin:g} Hz")
    err, divr, divf, divq, f, pfd = best
    mhz = pfd / 1e6
    filt = 1 if mhz < 17 else 2 if mhz < 26 else 3 if mhz < 44 else 4 if mhz < 66 else \
        5 if mhz < 101 else 6
    return PLLParams("ice40", fin, f, {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                                       "FILTER_RANGE": filt, "_error": err / fout})


def ecp5_pll(fin: float, fout: float) -> PLLParams:
    """EHXPLLL with CLKOP feedback: ``fout = fin * CLKFB_DIV / CLKI_DIV``, VCO ``fout *
    CLKOP_DIV`` in 400..800 MHz, PFD ``fin / CLKI_DIV`` >= 3.125 MHz, ``fout`` 3.125..400 MHz.
    Returns the closest setting (ties: the VCO nearest 600 MHz)."""
    if not 3.125e6 <= fout <= 400e6:
        raise ValueError(f"clk_freq must be in [3.125e6, 400e6] Hz for the ECP5 PLL, got {fout:g}")
    best = None
    for clki in range(1, 129):
        pfd = fin / clki
        if pfd < 3.125e6:
            break
        for clkfb in range(1, 81):
            f = pfd * clkfb
            if not 3.125e6 <= f <= 400e6:
                continue
            for clkop in range(1, 129):
                vco = f * clkop
                if 400e6 <= vco <= 800e6:
                    key = (abs(f - fout), abs(vco - 600e6))
                    if best is None or key < best[0]:
                        best = (key, clki, clkfb, clkop, f)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting gives {fout:g} Hz from {fin:g} Hz")
    (err, _), clki, clkfb, clkop, f = best
    return PLLParams("ecp5", fin, f, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb,
                                      "CLKOP_DIV": clkop, "_error": err / fout})


# -- the table --------------------------------------------------------------------------
_ICEPROG_HINT = ("iceprog: apt-get install fpga-icestorm (Debian/Ubuntu), "
                 "or build it from https://github.com/YosysHQ/icestorm")
_OFL_HINT = ("openFPGALoader: apt-get install openfpgaloader (Debian/Ubuntu), brew install "
             "openfpgaloader (macOS), or see https://trabucayre.github.io/openFPGALoader")


def _ecp5(size: str, lut: int, ebr: int, mult: int, pll: int, config: dict, notes: str = ""):
    return Board(
        name=f"ulx3s-{size}f",
        title=f"Radiona ULX3S (ECP5 LFE5U-{size}F)",
        platform_path=f"amaranth_boards.ulx3s:ULX3S_{size}F_Platform",
        family="ecp5", device=f"LFE5U-{size}F", package="CABGA381",
        clk_name="clk25", clk_freq=25e6,
        resources={"lut4": lut, "ff": lut, "bram": ebr, "bram_bits": 16384, "spram": 0,
                   "spram_bits": 0, "dsp": mult, "pll": pll},
        uart={"rx": "M1", "tx": "L4"},
        leds=("led0: idle", "led1: training (blinks)", "led2: error", "led7: heartbeat"),
        usb_bridge="FTDI FT231X (US1 port)", usb_id=(0x0403, 0x6015, None),
        serial_port="/dev/ttyUSB0",
        programmers=(("openFPGALoader", ["-b", "ulx3s"], _OFL_HINT),),
        bitstream_ext="bit", config=config, notes=notes)


#: Every supported board, by name.
BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker",
        title="1BitSquared iCEBreaker (iCE40UP5K-SG48)",
        platform_path="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40", device="iCE40UP5K", package="SG48",
        clk_name="clk12", clk_freq=12e6,
        resources={"lut4": 5280, "ff": 5280, "bram": 30, "bram_bits": 4096, "spram": 4,
                   "spram_bits": 262144, "dsp": 8, "pll": 1},
        uart={"rx": "6", "tx": "9"},
        leds=("green (37): on = idle, blinking = training",
              "red (11): error"),
        usb_bridge="FTDI FT2232H, interface B", usb_id=(0x0403, 0x6010, 1),
        serial_port="/dev/ttyUSB1",
        programmers=(("iceprog", [], _ICEPROG_HINT),
                     ("openFPGALoader", ["-b", "ice40_generic"], _OFL_HINT)),
        bitstream_ext="bin",
        # 18 MHz from the PLL: the default engine places at 20.2 MHz with that constraint
        # (docs/results.md section 8), 95 us per 64-16-10 sample against 143 at 12 MHz
        config={"state_man_bits": 7, "beta_k": 5, "read_reg": 0, "clk_freq": 18e6},
        notes="data set in the 4 SPRAMs (64k x 16), weights and state (state12: 24 bits "
              "per weight) in EBR; 18 MHz from the PLL"),
    "ulx3s-12f": _ecp5("12", 12288, 32, 28, 2, {"n_records": 600, "clk_freq": 40e6},
                       "data set in EBR: 32 EBR hold about 600 records; 40 MHz from the PLL"),
    "ulx3s-25f": _ecp5("25", 24288, 56, 28, 2, {"n_records": 1300, "clk_freq": 40e6},
                       "data set in EBR: 56 EBR hold 1300 of the 1797 records (all need 58); "
                       "40 MHz from the PLL"),
    # 40 MHz: the fused engine's 64-32-10 x 4 default placed at 51.7 (45F) and 53.7 MHz
    # (85F) against 30 (docs/results.md section 9)
    "ulx3s-45f": _ecp5("45", 43848, 108, 72, 4,
                       {"sizes": (64, 32, 10), "lanes": 4, "clk_freq": 40e6},
                       "64-32-10 with 4 MAC lanes; 40 MHz from the PLL"),
    "ulx3s-85f": _ecp5("85", 83640, 208, 156, 4,
                       {"sizes": (64, 32, 10), "lanes": 4, "clk_freq": 40e6},
                       "64-32-10 with 4 MAC lanes; 40 MHz from the PLL"),
}

DEFAULT_BOARD = "icebreaker"


def board_names() -> list[str]:
    return list(BOARDS)


def get_board(name: str) -> Board:
    """The :class:`Board` called ``name``; :class:`UnknownBoard` (one line) otherwise."""
    try:
        return BOARDS[name]
    except (KeyError, TypeError):
        raise UnknownBoard(f"unknown board {name!r}; choose one of: "
                           f"{', '.join(BOARDS)}") from None
