"""The training SoC's configuration: what a device is generated for, and what it reports.

:class:`SoCConfig` is the one description of a device, shared by the generator
(:mod:`lnsmadam.hw.soc`, :mod:`lnsmadam.hw.trainer`), the host client
(:mod:`lnsmadam.host.session`) and the tests. It checks itself once, on construction, in
pure Python (no hardware is built): every limit of the trainer, each error naming the field
and its allowed range. From it follow, without hardware, the golden model it trains
(:meth:`SoCConfig.mlp_config`), its host-visible regions (:meth:`SoCConfig.regions`,
``docs/protocol.md`` §7) and the identify JSON it answers with
(:meth:`SoCConfig.identify_json`); :meth:`SoCConfig.to_dict` / :meth:`SoCConfig.from_dict`
round-trip it through that JSON's ``config.soc``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, replace

from .format import LNSFormat, check_float, check_int
from .mac import MACConfig
from .image import (RECORD_WORD_BITS, layer_shapes, record_words, regs_depth,
                    regs_description, words_per_row)
from .link import ADDR_BITS, LR_STEP_MAX, PROTOCOL_VERSION, WORD_BITS, identify_blob
from .mlp import MLPConfig

__all__ = ["SoCConfig", "PROTOCOL_VERSION", "DESIGN_NAME", "DESIGN_VERSION", "MAX_WIDTH",
           "MAC_OUT_PIPELINE_MAX", "UPDATE_PIPELINE_MAX"]

DESIGN_NAME = "lnsmadam-soc"
DESIGN_VERSION = "0.1.0"
#: widest layer the trainer's counters and memories are sized for
MAX_WIDTH = 1024
#: register stages of the MAC's output converter and of the update engine
#: (``len(FromLinear.CUTS)``, ``len(MadamUpdate.CUT_ORDER)``; a test keeps them equal)
MAC_OUT_PIPELINE_MAX = 4
UPDATE_PIPELINE_MAX = 6


@dataclass(frozen=True)
class SoCConfig:
    """Generator parameters of the training SoC (checked on construction).

    sizes : MLP layer widths, input first (each 1..1024; default 64-16-10). Every dot product
        (a layer's inputs + 1, and its outputs) must fit the exact accumulator: at most 128
        terms at the default 8-bit format.
    lanes : weights per cycle in forward and update (1, 2, 4, 8, 16).
    n_records : samples the on-chip data memory holds (train + test), 1..65535 and
        ``n_records * (ceil(n_in/2) + 1) <= 65536``.
    bits, gamma : LNS format of every forward/backward tensor (bits 3..8: two input codes per
        16-bit data word; gamma 1..2**(bits-2)).
    lr_step : default LNS-Madam step (``START`` chooses it per run), 1..64.
    clk_freq : Hz of the ``sync`` domain, 1e3..1e9; baud : UART rate, 300..50e6.
        ``clk_freq / baud`` rounds to the bit time in cycles, which must be 4..65535.
    mac_pipeline (1..2 + log2(lanes)), mac_out_pipeline (0..4), update_pipeline (0..6):
        register stages of the MAC and the update engine; fewer cost fewer logic cells and
        a lower clock.

    The trainer runs the golden model :meth:`mlp_config` (seeding mode, default MAC and
    LNS-Madam formats).
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
            raise ValueError(f"sizes must be a sequence of layer widths, got {self.sizes!r}")
        object.__setattr__(self, "sizes", tuple(self.sizes))
        if len(self.sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output layer, got "
                             f"{self.sizes}")
        for i, s in enumerate(self.sizes):
            check_int(f"sizes[{i}]", s, 1, MAX_WIDTH)
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        check_int("lanes", self.lanes, 1, 16)
        if self.lanes & (self.lanes - 1):
            raise ValueError(f"lanes must be a power of two in 1..16, got {self.lanes}")
        check_int("n_records", self.n_records, 1, 65535)
        check_int("bits", self.bits, 3, 8)
        check_int("lr_step", self.lr_step, 1, LR_STEP_MAX)
        check_int("baud", self.baud, 300, 50_000_000)
        check_float("clk_freq", self.clk_freq, 1e3, 1e9, unit=" Hz")
        d = self.divisor
        if not 4 <= d <= 65535:
            raise ValueError(f"clk_freq / baud must round to 4..65535 cycles per bit, got {d} "
                             f"({self.clk_freq:g} Hz / {self.baud} baud)")
        check_int("mac_pipeline", self.mac_pipeline, 1, 2 + (self.lanes - 1).bit_length())
        check_int("mac_out_pipeline", self.mac_out_pipeline, 0, MAC_OUT_PIPELINE_MAX)
        check_int("update_pipeline", self.update_pipeline, 0, UPDATE_PIPELINE_MAX)
        rec = record_words(self.sizes[0])
        most = (1 << ADDR_BITS) // rec
        if self.n_records > most:
            raise ValueError(f"n_records must be <= {most} for {self.sizes[0]} inputs "
                             f"({1 << ADDR_BITS} data words), got {self.n_records}")
        mac = self.mlp_config().mac          # checks gamma and the number of layers
        longest = max(max(self.sizes[:-1]) + 1, max(self.sizes[1:]))
        if mac.exact_acc_bits(longest) > mac.acc_bits:
            terms = 1 << (mac.acc_bits - mac.product_bits - 1)
            raise ValueError(f"sizes must give dot products of at most {terms} terms (a "
                             f"layer's inputs + 1, and its outputs) for the exact "
                             f"{mac.acc_bits}-bit accumulator at bits={self.bits}, "
                             f"gamma={self.gamma}; the longest has {longest}")

    # -- derived -----------------------------------------------------------------------
    @property
    def divisor(self) -> int:
        """UART bit time in clock cycles."""
        return int(round(float(self.clk_freq) / self.baud))

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def record_words(self) -> int:
        """16-bit words of one stored sample (:func:`~lnsmadam.golden.image.record_words`)."""
        return record_words(self.sizes[0])

    def mlp_config(self) -> MLPConfig:
        """The golden model the device trains (seeding mode; the default MAC with ``lanes``
        lanes, default weight and state formats)."""
        base = MLPConfig()
        fmt = LNSFormat.from_gamma(self.bits, self.gamma)
        return MLPConfig(sizes=self.sizes, fmt=fmt,
                         mac=MACConfig.for_format(fmt, lanes=self.lanes),
                         madam=replace(base.madam, lr_step=self.lr_step))

    def regions(self) -> list[tuple[int, str, int, int]]:
        """``(id, name, width, depth)`` of every host-visible region, in id order
        (``docs/protocol.md`` §7)."""
        md = self.mlp_config().madam
        out = [(0, "regs", WORD_BITS, regs_depth(self.n_layers)),
               (1, "data", RECORD_WORD_BITS, self.n_records * self.record_words)]
        for l, (rows, cols) in enumerate(layer_shapes(self.sizes)):
            depth = rows * words_per_row(cols, self.lanes)
            for b in range(self.lanes):
                out.append((len(out), f"u{l}.{b}", md.weight.bits, depth))
            for b in range(self.lanes):
                out.append((len(out), f"v{l}.{b}", md.state.bits, depth))
        return out

    # -- identify ------------------------------------------------------------------------
    def describe(self) -> dict:
        """The identify JSON's ``config`` object: the model, the trainer and ``soc``."""
        mlp = self.mlp_config()
        d = mlp.to_dict()
        d.update({"lanes": self.lanes, "max_records": self.n_records,
                  "record_words": self.record_words, "fmt_underflow": mlp.fmt.underflow,
                  "weight_underflow": mlp.madam.weight.underflow,
                  "mac_pipeline": self.mac_pipeline, "update_pipeline": self.update_pipeline,
                  "mac_out_pipeline": self.mac_out_pipeline, "regs": regs_description(),
                  "soc": self.to_dict()})
        return d

    def identify_json(self) -> dict:
        """What ``IDENTIFY`` returns (``docs/protocol.md`` §6), before encoding."""
        return {"protocol": PROTOCOL_VERSION,
                "design": {"name": DESIGN_NAME, "version": DESIGN_VERSION},
                "config": self.describe(),
                "clk_freq": float(self.clk_freq), "baud": self.baud, "divisor": self.divisor,
                "regions": [{"id": i, "name": n, "width": w, "depth": d}
                            for i, n, w, d in self.regions()]}

    def identify_blob(self) -> bytes:
        """The identify blob (:func:`~lnsmadam.golden.link.identify_blob`)."""
        return identify_blob(self.identify_json())

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every field (``sizes`` as a list) plus the derived ``divisor``."""
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        d["divisor"] = self.divisor
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SoCConfig:
        """Inverse of :meth:`to_dict`; missing fields take their defaults, unknown ones and a
        ``divisor`` that does not follow from ``clk_freq`` and ``baud`` raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"a SoCConfig dict must be a dict, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names) - {"divisor"})
        if unknown:
            raise ValueError(f"unknown SoCConfig field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(names)}")
        cfg = cls(**{k: d[k] for k in names if k in d})
        if "divisor" in d and d["divisor"] != cfg.divisor:
            raise ValueError(f"divisor must be {cfg.divisor} for clk_freq {cfg.clk_freq:g} "
                             f"and baud {cfg.baud}, got {d['divisor']!r}")
        return cfg
