"""The training SoC's configuration: what a device is generated for, and what it reports.

:class:`SoCConfig` is the one description of a device, shared by the generator
(:mod:`lnsmadam.hw.soc`, :mod:`lnsmadam.hw.engine`), the host client
(:mod:`lnsmadam.host.session`) and the tests. It checks itself once, on construction, in
pure Python (no hardware is built): every limit of the training engine
(:func:`check_engine`, which the engine itself calls too), each error naming the field and
its allowed range. From it follow, without hardware, the golden model it trains
(:meth:`SoCConfig.mlp_config`), its host-visible regions (:meth:`SoCConfig.regions`,
``docs/protocol.md`` §7) and the identify JSON it answers with
(:meth:`SoCConfig.identify_json`); :meth:`SoCConfig.to_dict` / :meth:`SoCConfig.from_dict`
round-trip it through that JSON's ``config.soc``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from .format import LNSFormat, ParameterTypeError, check_float, check_int, check_type
from .mac import MACConfig
from .image import record_words, region_table, regs_description
from .link import ADDR_BITS, LR_STEP_MAX, PROTOCOL_VERSION, identify_blob
from .mlp import MLPConfig

__all__ = ["SoCConfig", "PROTOCOL_VERSION", "DESIGN_NAME", "DESIGN_VERSION", "MAX_WIDTH",
           "MAX_LANES", "CONV_PIPELINE_MAX", "UPDATE_PIPELINE_MAX", "SOFTMAX_UNITS",
           "check_engine", "mac_pipeline_max"]

DESIGN_NAME = "lnsmadam-soc"
#: 0.2: the fused, lane-parallel training engine (``sample_base``, ``mode``, bias lane)
DESIGN_VERSION = "0.2.0"
#: widest layer the engine's counters and memories are sized for
MAX_WIDTH = 1024
#: most lanes (weights per cycle) of a datapath
MAX_LANES = 64
#: register stages of the output converters and of the update engine
#: (``len(FromLinear.CUTS)``, ``len(MadamUpdate.CUT_ORDER)``; a test keeps them equal)
CONV_PIPELINE_MAX = 4
UPDATE_PIPELINE_MAX = 7
#: the integer fields of :class:`SoCConfig` (stored as plain ``int`` whatever the given type)
_INT_FIELDS = ("lanes", "n_records", "bits", "gamma", "lr_step", "state_man_bits", "beta_k",
               "baud", "read_reg", "mac_pipeline", "conv_pipeline", "update_pipeline")
#: the softmax-error units: digit-serial (small; the iCE40's) or parallel (a multiplier)
SOFTMAX_UNITS = ("serial", "parallel")


def mac_pipeline_max(lanes: int, bias_lane: bool = False) -> int:
    """Most register stages of the engine's lane MAC: ``2 + ceil(log2(lanes + bias_lane))``."""
    return 2 + (lanes + int(bias_lane) - 1).bit_length()


def check_engine(mlp: MLPConfig, *, lanes: int, max_records: int, read_reg: int,
                 conv_pipeline: int, mac_pipeline: int, update_pipeline: int, softmax: str,
                 bias_lane: bool, fast_shuffle: bool, pipelined: bool) -> None:
    """Every limit of the training engine (:class:`lnsmadam.hw.engine.engine.Engine`), in
    pure Python; raise ``ValueError`` naming the parameter and its allowed range. The engine
    calls it before it builds anything, and so does :class:`SoCConfig`."""
    check_type("mlp", mlp, MLPConfig)
    check_int("lanes", lanes, 1, MAX_LANES)
    if lanes & (lanes - 1):
        raise ValueError(f"lanes must be a power of two in 1..{MAX_LANES}, got {lanes}")
    check_int("max_records", max_records, 1, 65535)
    for name, v in (("bias_lane", bias_lane), ("fast_shuffle", fast_shuffle),
                    ("pipelined", pipelined)):
        check_type(name, v, bool)
    if mlp.fmt.bits > 8:
        raise ValueError(f"the engine stores two codes per 16-bit word: fmt.bits must be "
                         f"3..8, got {mlp.fmt.bits}")
    if mlp.madam.bias_correction:
        raise ValueError("the engine implements the seeding mode: "
                         "madam.bias_correction must be False")
    for i, s in enumerate(mlp.sizes):
        check_int(f"sizes[{i}]", s, 1, MAX_WIDTH)
    longest = max(max(mlp.sizes[:-1]) + 1, max(mlp.sizes[1:]))
    if mlp.mac.exact_acc_bits(longest) > mlp.mac.acc_bits:
        terms = 1 << (mlp.mac.acc_bits - mlp.mac.product_bits - 1)
        raise ValueError(f"sizes must give dot products of at most {terms} terms (a layer's "
                         f"inputs + 1, and its outputs) for the exact {mlp.mac.acc_bits}-bit "
                         f"accumulator at bits={mlp.fmt.bits}, gamma={mlp.fmt.gamma}; the "
                         f"longest has {longest}")
    rec = record_words(mlp.sizes[0])
    if max_records * rec > 1 << ADDR_BITS:
        raise ValueError(f"max_records must be <= {(1 << ADDR_BITS) // rec} for "
                         f"{mlp.sizes[0]} inputs ({1 << ADDR_BITS} data words), got "
                         f"{max_records}")
    n_layers = len(mlp.sizes) - 1
    n_regions = 2 + 2 * n_layers * (lanes + int(bias_lane))
    if n_regions > 256:
        most = 1 << ((254 // (2 * n_layers) - int(bias_lane)).bit_length() - 1)
        raise ValueError(f"lanes must be at most {most} for {n_layers} layers"
                         f"{' with a bias lane' if bias_lane else ''}: the protocol addresses "
                         f"256 regions (regs, data, a weight and a state bank per lane and "
                         f"layer), this design needs {n_regions}")
    if pipelined and n_layers < 2:
        raise ValueError(f"pipelined needs at least two layers (stage B is layers 1.."
                         f"{n_layers - 1}), got sizes {tuple(mlp.sizes)}")
    check_int("read_reg", read_reg, 0, 1)
    check_int("conv_pipeline", conv_pipeline, 0, CONV_PIPELINE_MAX)
    check_int("mac_pipeline", mac_pipeline, 0, mac_pipeline_max(lanes, bias_lane))
    check_int("update_pipeline", update_pipeline, 0, UPDATE_PIPELINE_MAX)
    if softmax not in SOFTMAX_UNITS:
        raise ValueError(f"softmax must be one of {', '.join(SOFTMAX_UNITS)}, got {softmax!r}")
    if softmax == "parallel":
        # the parallel unit's exp table and its one multiplier are sized for these
        if mlp.sizes[-1] > 256:
            raise ValueError(f"softmax='parallel' needs at most 256 outputs (sizes[-1]), got "
                             f"{mlp.sizes[-1]}")
        if mlp.fmt.frac_bits > 4:
            raise ValueError(f"softmax='parallel' needs gamma in [1, 16], got "
                             f"{mlp.fmt.gamma}")


@dataclass(frozen=True)
class SoCConfig:
    """Generator parameters of the training SoC (checked on construction).

    Integer fields take any integer type (NumPy's too: stored as ``int``), never a bool or
    a float.

    sizes : MLP layer widths, input first, a list or tuple (each 1..1024; default 64-16-10).
        Every dot product (a layer's inputs + 1, and its outputs) must fit the exact
        accumulator: at most 128 terms at the default 8-bit format.
    lanes : weights per cycle in every pass of each datapath (1, 2, 4, ..., 64).
    n_records : samples the on-chip data memory holds (train + test), 1..65535 and
        ``n_records * (ceil(n_in/2) + 1) <= 65536``.
    bits, gamma : LNS format of every forward/backward tensor (bits 3..8: two input codes per
        16-bit data word; gamma 1..2**(bits-2)).
    lr_step : default LNS-Madam step (``START`` chooses it per run), 1..64.
    state_man_bits (5..16), beta_k (1..20): the second-moment state
        (``StateFormat(6, state_man_bits, -52)``, ``beta = 1 - 2**-beta_k``): 12 and 10 (17
        state bits, the default) or 7 and 5 (``state12``: 12 state bits, 24 bits per weight,
        the same accuracy: docs/results.md §4; the iCEBreaker's, to fit its block RAM).
    clk_freq : Hz of the ``sync`` domain, 1e3..1e9; baud : UART rate, 300..50e6.
        ``clk_freq / baud`` rounds to the bit time in cycles, which must be 4..65535.
    softmax : "serial" (digit-serial, small: the iCE40's) or "parallel" (a multiplier, about
        11 + n_out cycles instead of ~300; n_out <= 256, gamma <= 16).
    bias_lane : a lane of its own for every layer's bias column (one more update engine; a
        layer whose width the lanes divide then needs one word per row less).
    fast_shuffle : the epoch order's multiplies by a multiplier (4 cycles per sample and epoch
        instead of bits(n_records) + 3; a DSP block on ECP5).
    pipelined : the pipelined capability (``mode`` bit 0): a datapath for layer 0 and one for
        the other layers, at once in pipelined mode (needs two or more layers).
    read_reg (0..1), mac_pipeline (0..2 + log2(lanes + bias_lane)), conv_pipeline (0..4),
        update_pipeline (0..7): register stages after the memories (read_reg also registers
        the host's request before the engine serves it), in the lane MAC, the output
        converters and the update engines; fewer cost fewer flip-flops and a lower clock.

    The engine runs the golden model :meth:`mlp_config` (seeding mode, default MAC with
    ``lanes`` lanes and LNS-Madam formats, the state format above).
    """

    sizes: tuple = (64, 16, 10)
    lanes: int = 1
    n_records: int = 1797
    bits: int = 8
    gamma: int = 8
    lr_step: int = 1
    state_man_bits: int = 12
    beta_k: int = 10
    clk_freq: float = 12e6
    baud: int = 1_000_000
    softmax: str = "serial"
    bias_lane: bool = False
    fast_shuffle: bool = False
    pipelined: bool = False
    read_reg: int = 1
    mac_pipeline: int = 2
    conv_pipeline: int = 3
    update_pipeline: int = 5

    def __post_init__(self):
        if (isinstance(self.sizes, (str, bytes, bytearray))
                or not isinstance(self.sizes, (Sequence, np.ndarray))):
            raise ParameterTypeError(f"sizes must be a sequence (list or tuple) of layer "
                                     f"widths, got {self.sizes!r}")
        object.__setattr__(self, "sizes", tuple(self.sizes))
        if len(self.sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output layer, got "
                             f"{self.sizes}")
        object.__setattr__(self, "sizes", tuple(check_int(f"sizes[{i}]", s, 1, MAX_WIDTH)
                                                for i, s in enumerate(self.sizes)))
        # integers of any type (NumPy's too) are stored as plain ints
        for name in _INT_FIELDS:
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        if isinstance(self.clk_freq, np.generic):
            object.__setattr__(self, "clk_freq", self.clk_freq.item())
        check_int("lanes", self.lanes, 1, MAX_LANES)
        if self.lanes & (self.lanes - 1):
            raise ValueError(f"lanes must be a power of two in 1..{MAX_LANES}, got {self.lanes}")
        check_int("n_records", self.n_records, 1, 65535)
        check_int("bits", self.bits, 3, 8)
        check_int("lr_step", self.lr_step, 1, LR_STEP_MAX)
        check_int("state_man_bits", self.state_man_bits, 5, 16)
        check_int("beta_k", self.beta_k, 1, 20)
        check_int("baud", self.baud, 300, 50_000_000)
        check_float("clk_freq", self.clk_freq, 1e3, 1e9, unit=" Hz")
        d = self.divisor
        if not 4 <= d <= 65535:
            raise ValueError(f"clk_freq / baud must round to 4..65535 cycles per bit, got {d} "
                             f"({self.clk_freq:g} Hz / {self.baud} baud)")
        try:
            check_engine(self.mlp_config(), **self.engine_options())
        except ValueError as e:
            # the engine's max_records is this config's n_records
            raise ValueError(str(e).replace("max_records", "n_records")) from None

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
        lanes, the default weight format, the state of ``state_man_bits`` and ``beta_k``)."""
        base = MLPConfig()
        fmt = LNSFormat.from_gamma(self.bits, self.gamma)
        state = replace(base.madam.state, man_bits=self.state_man_bits)
        return MLPConfig(sizes=self.sizes, fmt=fmt,
                         mac=MACConfig.for_format(fmt, lanes=self.lanes),
                         madam=replace(base.madam, lr_step=self.lr_step, state=state,
                                       beta_k=self.beta_k))

    def engine_options(self) -> dict:
        """The keyword arguments of the engine (and of :func:`check_engine`) besides the
        model."""
        return {"lanes": self.lanes, "max_records": self.n_records, "read_reg": self.read_reg,
                "conv_pipeline": self.conv_pipeline, "mac_pipeline": self.mac_pipeline,
                "update_pipeline": self.update_pipeline, "softmax": self.softmax,
                "bias_lane": self.bias_lane, "fast_shuffle": self.fast_shuffle,
                "pipelined": self.pipelined}

    def regions(self) -> list[tuple[int, str, int, int]]:
        """``(id, name, width, depth)`` of every host-visible region, in id order
        (``docs/protocol.md`` §7)."""
        md = self.mlp_config().madam
        return region_table(self.sizes, self.lanes, self.n_records, md.weight.bits,
                            md.state.bits, self.bias_lane)

    # -- identify ------------------------------------------------------------------------
    def describe(self) -> dict:
        """The identify JSON's ``config`` object: the model, the trainer and ``soc``."""
        mlp = self.mlp_config()
        d = mlp.to_dict()
        d.update({"lanes": self.lanes, "max_records": self.n_records,
                  "record_words": self.record_words, "fmt_underflow": mlp.fmt.underflow,
                  "weight_underflow": mlp.madam.weight.underflow,
                  "engine": {"read_reg": self.read_reg, "conv_pipeline": self.conv_pipeline,
                             "mac_pipeline": self.mac_pipeline,
                             "update_pipeline": self.update_pipeline,
                             "softmax": self.softmax, "fast_shuffle": self.fast_shuffle},
                  "pipelined": self.pipelined, "bias_lane": self.bias_lane,
                  "regs": regs_description(), "soc": self.to_dict()})
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
        unknown = sorted((str(k) for k in d if k not in names and k != "divisor"))
        if unknown:
            raise ValueError(f"unknown SoCConfig field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(names)}")
        cfg = cls(**{k: d[k] for k in names if k in d})
        if "divisor" in d and d["divisor"] != cfg.divisor:
            raise ValueError(f"divisor must be {cfg.divisor} for clk_freq {cfg.clk_freq:g} "
                             f"and baud {cfg.baud}, got {d['divisor']!r}")
        return cfg
