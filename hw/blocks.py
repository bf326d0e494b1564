"""The blocks ``lnsmadam generate`` writes and ``lnsmadam verify`` checks, one place each.

A :class:`Block` is a hardware component plus what an integrator needs to use it: its top
module name, the JSON ``parameters`` (enough to rebuild its golden model: the cocotb
regression reads them back), ``timing`` (latency, throughput) and ``interface`` (the stream
rules and field meanings of its ports). One function per block kind builds it from golden
configurations:

==============  ==========================================  ====================================
kind            function                                    component
==============  ==========================================  ====================================
``mac``         :func:`mac` (``MACConfig``)                 :class:`~.mac.LNSMAC`
``int8-mac``    :func:`int8_mac`                            :class:`~.mac.INT8MAC`
``fp8-mac``     :func:`fp8_mac` (``FP8MACConfig``)          :class:`~.fpmac.FP8MAC`
``fp32-mac``    :func:`fp32_mac` (``FP32MACConfig``)        :class:`~.fpmac.FP32MAC`
``mul``         :func:`mul` (``LNSFormat``)                 :class:`~.mul.LNSMul`
``convert``     :func:`to_linear`, :func:`from_linear`      :class:`~.convert.ToLinear` /
                                                            :class:`~.convert.FromLinear`
``update``      :func:`update` (``MadamConfig``)            :class:`~.update.MadamUpdate`
==============  ==========================================  ====================================

A new block adds a function here, its flat-parameter builder in :mod:`.blockparams` (what the
command line and the sweep call) and its bench in :mod:`lnsmadam.sim.verify`. Every
function validates its parameters through the golden dataclasses and the component
constructors (``ValueError`` naming the parameter) and the module name with
:func:`check_module_name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..golden.format import LNSFormat, check_type
from ..golden.fpmac import FP8MACConfig, FP32MACConfig
from ..golden.mac import MACConfig
from ..golden.update import MadamConfig

__all__ = ["Block", "check_module_name", "mac", "int8_mac", "fp8_mac", "fp32_mac", "mul",
           "to_linear", "from_linear", "update", "STREAMING", "VERILOG_KEYWORDS", "STREAM_RULES",
           "RESET_RULES"]

#: Reserved words of Verilog-2005 and SystemVerilog-2017 (IEEE 1364 annex B, 1800 annex B):
#: none may name a module that other tools will read.
VERILOG_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic
before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle
checker class clocking cmos config const constraint context continue cover covergroup
coverpoint cross deassign default defparam design disable dist do edge else end endcase
endchecker endclass endclocking endconfig endfunction endgenerate endgroup endinterface
endmodule endpackage endprimitive endprogram endproperty endspecify endsequence endtable
endtask enum event eventually expect export extends extern final first_match for force
foreach forever fork forkjoin function generate genvar global highz0 highz1 if iff ifnone
ignore_bins illegal_bins implements implies import incdir include initial inout input inside
instance int integer interconnect interface intersect join join_any join_none large let
liblist library local localparam logic longint macromodule matches medium modport module
nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or output
package packed parameter pmos posedge primitive priority program property protected pull0
pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase
randsequence rcmos real realtime ref reg reject_on release repeat restrict return rnmos rpmos
rtran rtranif0 rtranif1 s_always s_eventually s_nexttime s_until s_until_with scalared
sequence shortint shortreal showcancelled signed small soft solve specify specparam static
string strong strong0 strong1 struct super supply0 supply1 sync_accept_on sync_reject_on
table tagged task this throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0
tri1 triand trior trireg type typedef union unique unique0 unsigned until until_with untyped
use uwire var vectored virtual void wait wait_order wand weak weak0 weak1 while wildcard wire
with within wor xnor xor
""".split())

#: The block kinds with ``lib.stream`` ports ``i_stream``/``o_stream`` (an AXI4-Stream
#: wrapper exists for them, :class:`~.axis.AXIStreamWrapper`).
STREAMING = ("mac", "int8-mac", "fp8-mac", "fp32-mac", "update")

#: How every streaming block's ports behave (``lib.stream``), for manifests and docs.
STREAM_RULES = (
    "lib.stream (AXI-Stream-like): a beat moves on a rising clock edge where valid and "
    "ready are both high; a source keeps valid and payload stable until the beat moves; "
    "valid never waits for ready (ready may depend on valid). o_stream.payload is "
    "meaningful only while o_stream.valid is high.")
#: Reset of every clocked block.
RESET_RULES = (
    "rst: synchronous, active high, at least one clk cycle; it empties the pipeline "
    "(o_stream.valid low) and returns every register to its initial value (which it also "
    "holds from time 0 in simulation). Every output is defined (no X) from time 0 on.")


@dataclass
class Block:
    """A generated block: ``component`` with top module ``name`` and its description."""

    kind: str
    name: str
    component: object
    cls: str
    parameters: dict
    timing: dict
    interface: dict = field(default_factory=dict)

    @property
    def streaming(self) -> bool:
        return self.kind in STREAMING


def check_module_name(name: str) -> str:
    """``name`` if it can name a Verilog module: an identifier of at most 128 characters
    that is not a (System)Verilog keyword; else ``ValueError`` naming ``name``."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
        raise ValueError(f"name must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*, at "
                         f"most 128 characters), got {name!r}")
    if name in VERILOG_KEYWORDS:
        raise ValueError(f"name must not be a Verilog/SystemVerilog keyword, got {name!r}")
    return name


def _stream_timing(latency: int, lanes: int | None, unit: str) -> dict:
    t = {"latency_cycles": latency,
         "latency_definition": f"cycles from accepting {unit} to presenting its result",
         "throughput": "one input beat per cycle", "initiation_interval": 1}
    if lanes is not None:
        t["products_per_cycle"] = lanes
    return t


def mac(cfg: MACConfig, pipeline: int = 2, out_pipeline: int = 3,
        name: str | None = None, first_cut: str = "linear") -> Block:
    """The LNS dot-product unit of ``cfg`` (default name ``lns_mac_b<bits>g<gamma>l<lanes>``);
    ``first_cut`` places its first register stage (:class:`~.mac.LNSMAC`)."""
    from .mac import LNSMAC

    check_type("cfg", cfg, MACConfig)
    comp = LNSMAC(cfg, pipeline=pipeline, out_pipeline=out_pipeline, first_cut=first_cut)
    f = cfg.fmt
    name = check_module_name(name or f"lns_mac_b{f.bits}g{f.gamma}l{cfg.lanes}")
    params = {"bits": f.bits, "gamma": f.gamma, "frac_bits": f.frac_bits, "lanes": cfg.lanes,
              "acc_bits": cfg.acc_bits, "window": cfg.window, "lut_frac": cfg.lut_frac,
              "mid_bits": cfg.mid_bits, "saturate": bool(cfg.saturate), "pipeline": pipeline,
              "out_pipeline": out_pipeline, "first_cut": first_cut, "q_top": cfg.q_top,
              "q_lo": cfg.q_lo, "lsb_q": cfg.lsb_q, "product_bits": cfg.product_bits}
    return Block("mac", name, comp, "lnsmadam.hw.mac.LNSMAC", params,
                 _stream_timing(comp.latency, cfg.lanes, "a vector's last beat"), {
                     "stream_rules": STREAM_RULES, "reset": RESET_RULES,
                     "i_stream": "one beat = lanes operand pairs a.k, b.k (LNS codes: exponent "
                                 "field in the LSBs, E = 0 is ZERO, sign in the MSB); first/"
                                 "last mark the first and last beat of a vector (a one-beat "
                                 "vector has both)",
                     "o_stream": "one result per vector: acc (signed accumulator word, LSB "
                                 "weight 2**(lsb_q) in field units) and its nearest LNS "
                                 "exponent sign/exp/zero (field units: add the two operand "
                                 "tensor biases to exp)"})


def int8_mac(lanes: int, acc_bits: int = 32, saturate: bool = True, pipeline: int = 2,
             name: str | None = None) -> Block:
    """The INT8 dot-product unit (the area baseline; default name ``int8_mac_l<lanes>``)."""
    from .mac import INT8MAC

    comp = INT8MAC(lanes, acc_bits=acc_bits, saturate=saturate, pipeline=pipeline)
    name = check_module_name(name or f"int8_mac_l{lanes}")
    params = {"lanes": lanes, "acc_bits": acc_bits, "saturate": bool(saturate),
              "pipeline": pipeline}
    return Block("int8-mac", name, comp, "lnsmadam.hw.mac.INT8MAC", params,
                 _stream_timing(comp.latency, lanes, "a vector's last beat"), {
                     "stream_rules": STREAM_RULES, "reset": RESET_RULES,
                     "i_stream": "one beat = lanes signed 8-bit operand pairs a.k, b.k; "
                                 "first/last mark a vector",
                     "o_stream": "one result per vector: acc, the signed sum of products "
                                 "(saturated or wrapped at acc_bits)"})


def fp8_mac(cfg: FP8MACConfig, pipeline: int = 2, name: str | None = None) -> Block:
    """The FP8 dot-product unit, a baseline (default name ``fp8_mac_<a>_<b>_l<lanes>``)."""
    from .fpmac import FP8MAC

    check_type("cfg", cfg, FP8MACConfig)
    comp = FP8MAC(cfg, pipeline=pipeline)
    name = check_module_name(name or f"fp8_mac_{cfg.a_fmt}_{cfg.b_fmt}_l{cfg.lanes}")
    params = {"a_format": cfg.a_fmt, "b_format": cfg.b_fmt, "lanes": cfg.lanes,
              "window": cfg.window, "acc_bits": cfg.acc_bits, "saturate": bool(cfg.saturate),
              "pipeline": pipeline, "q_top": cfg.q_top, "lsb": cfg.lsb,
              "product_bits": cfg.product_bits}
    return Block("fp8-mac", name, comp, "lnsmadam.hw.fpmac.FP8MAC", params,
                 _stream_timing(comp.latency, cfg.lanes, "a vector's last beat"), {
                     "stream_rules": STREAM_RULES, "reset": RESET_RULES,
                     "i_stream": "one beat = lanes operand pairs a.k (an a_format code), b.k "
                                 "(a b_format code): OCP FP8, sign in the MSB; first/last "
                                 "mark the first and last beat of a vector",
                     "o_stream": "one result per vector: acc (signed accumulator word, LSB "
                                 "weight 2**lsb); NaN and Inf operands contribute 0"})


def fp32_mac(cfg: FP32MACConfig | None = None, pipeline: int = 2,
             name: str | None = None) -> Block:
    """The FP32 fused multiply-add unit, a baseline (default name ``fp32_mac``)."""
    from .fpmac import FP32MAC

    cfg = FP32MACConfig() if cfg is None else check_type("cfg", cfg, FP32MACConfig)
    comp = FP32MAC(cfg, pipeline=pipeline)
    name = check_module_name(name or "fp32_mac")
    params = {"lanes": cfg.lanes, "pipeline": pipeline, "rounding": "nearest even",
              "subnormals": True, "nan": "0x7fc00000"}
    return Block("fp32-mac", name, comp, "lnsmadam.hw.fpmac.FP32MAC", params,
                 _stream_timing(comp.latency, cfg.lanes, "a vector's last beat"), {
                     "stream_rules": STREAM_RULES, "reset": RESET_RULES,
                     "i_stream": "one beat = one operand pair a.0, b.0 (IEEE binary32 bit "
                                 "patterns); first/last mark a vector",
                     "o_stream": "one result per vector: acc = fma(a, b, acc) over the "
                                 "vector from -0, IEEE binary32, round to nearest even, "
                                 "subnormals kept, every NaN out is 0x7fc00000"})


def mul(fmt: LNSFormat, shift: int | None = None, registered: bool = True,
        name: str | None = None) -> Block:
    """The LNS multiplier (default name ``lns_mul_b<bits>g<gamma>``)."""
    from .mul import LNSMul

    check_type("fmt", fmt, LNSFormat)
    comp = LNSMul(fmt, shift=shift, registered=registered)
    name = check_module_name(name or f"lns_mul_b{fmt.bits}g{fmt.gamma}")
    params = {"bits": fmt.bits, "gamma": fmt.gamma, "frac_bits": fmt.frac_bits,
              "underflow": fmt.underflow, "shift": comp.shift, "registered": registered}
    return Block("mul", name, comp, "lnsmadam.hw.mul.LNSMul", params,
                 {"latency_cycles": 1 if registered else 0,
                  "throughput": "one product per cycle", "initiation_interval": 1}, {
                     "reset": RESET_RULES if registered else None,
                     "ports": "a, b: LNS codes (exponent field in the LSBs, E = 0 is ZERO, "
                              "sign in the MSB); p = a * b: E = Ea + Eb - shift, saturated "
                              "at emax, below 1 flushed to ZERO (or E = 1 with underflow "
                              "min); p's bias is the operand biases' sum plus shift"})


def to_linear(fmt: LNSFormat, lut_frac: int, q_lo: int, window: int,
              registered: bool = False, name: str | None = None) -> Block:
    """LNS exponent to linear fixed point (default name ``to_linear_b<bits>g<gamma>``)."""
    from .convert import ToLinear

    check_type("fmt", fmt, LNSFormat)
    comp = ToLinear(fmt, lut_frac, q_lo, window, registered=registered)
    name = check_module_name(name or f"to_linear_b{fmt.bits}g{fmt.gamma}")
    params = {"direction": "to-linear", "bits": fmt.bits, "gamma": fmt.gamma,
              "frac_bits": fmt.frac_bits, "lut_frac": lut_frac, "window": window,
              "q_lo": q_lo, "p_bits": comp.p_bits, "out_bits": lut_frac + window + 1,
              "registered": registered}
    return Block("convert", name, comp, "lnsmadam.hw.convert.ToLinear", params,
                 _convert_timing(registered), {
                     "reset": RESET_RULES if registered else None,
                     "ports": "p: an exponent sum in field units (p = E1 + E2 for a "
                              "product), sign, zero; lin: the signed linear value "
                              "2**(p/gamma) scaled so that octave q_lo has weight "
                              "2**lut_frac, 0 below the window"})


def from_linear(fmt: LNSFormat, acc_bits: int, mid_bits: int, lsb_q: int,
                registered: bool = False, name: str | None = None) -> Block:
    """Linear fixed point to the nearest LNS exponent (default ``from_linear_b<bits>g<gamma>``)."""
    from .convert import FromLinear

    check_type("fmt", fmt, LNSFormat)
    comp = FromLinear(acc_bits, fmt.frac_bits, mid_bits, lsb_q, registered=registered)
    name = check_module_name(name or f"from_linear_b{fmt.bits}g{fmt.gamma}")
    params = {"direction": "from-linear", "bits": fmt.bits, "gamma": fmt.gamma,
              "frac_bits": fmt.frac_bits, "acc_bits": acc_bits, "mid_bits": mid_bits,
              "lsb_q": lsb_q, "registered": registered}
    return Block("convert", name, comp, "lnsmadam.hw.convert.FromLinear", params,
                 _convert_timing(registered), {
                     "reset": RESET_RULES if registered else None,
                     "ports": "S: a signed linear word, LSB weight 2**lsb_q octaves; sign, "
                              "x (the nearest exponent in field units, log-domain "
                              "midpoints), zero (S == 0)"})


def _convert_timing(registered: bool) -> dict:
    return {"latency_cycles": 1 if registered else 0,
            "throughput": "one conversion per cycle", "initiation_interval": 1}


def update(cfg: MadamConfig, pipeline: int = 5, bias_bits: int = 32,
           name: str | None = None) -> Block:
    """The LNS-Madam update engine (default name ``madam_update_b<bits>g<gamma>w<wbits>[bc]``)."""
    from .update import MadamUpdate, config_to_dict

    check_type("cfg", cfg, MadamConfig)
    comp = MadamUpdate(cfg, pipeline=pipeline, bias_bits=bias_bits)
    g = cfg.grad
    name = check_module_name(name or f"madam_update_b{g.bits}g{g.gamma}w{cfg.weight.bits}"
                             + ("bc" if cfg.bias_correction else ""))
    params = {"config": config_to_dict(cfg), "pipeline": pipeline, "cuts": list(comp.cuts),
              "bias_bits": bias_bits, "bc_exp_bits": comp.bc_width}
    timing = _stream_timing(comp.latency, None, "a weight")
    timing["updates_per_cycle"] = 1
    return Block("update", name, comp, "lnsmadam.hw.update.MadamUpdate", params, timing, {
        "stream_rules": STREAM_RULES, "reset": RESET_RULES,
        "i_stream": "one weight per beat: w (weight code), v (state code), g (gradient code); "
                    "packed words equal the golden codes",
        "o_stream": "w_new, v_new and n (the signed applied exponent step), in order, exactly "
                    "golden.update.madam_step; i_stream.ready = ~o_stream.valid | "
                    "o_stream.ready",
        "side_band": "g_bias (gradient tensor bias, signed), e_clamp (sigma* clamp, weight "
                     "field), bc_exp (signed bias-correction exponent, ignored when seeding): "
                     "per step; change them only while the engine is empty (from the first "
                     "weight of a step accepted to its last result presented)"})
