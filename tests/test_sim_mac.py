"""cocotb regression of the generated Verilog of the streaming dot-product units (hw/mac.py).

LNSMAC on Icarus and Verilator in four configurations (8-bit gamma=8 with 1 and 8 lanes,
6-bit gamma=4 with 4 lanes and a minimal saturating or a wrapping accumulator; output
converter pipelines 3 (the default), 4, 0 and 2), plus the INT8MAC baseline. Every result (accumulator word and its LNS conversion) is compared bit
for bit with lnsmadam.golden.mac (sim/cocotb_mac.py): corner vectors (ZERO, ±max, window
edge, cancellation, saturation and recovery, one-beat vectors back to back) and random
vectors, at full rate (latency and throughput checked cycle by cycle) and with random
valid gaps and backpressure. LNSMADAM_WAVES=1 records waveforms.
"""

from __future__ import annotations

import pytest

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig
from lnsmadam.hw.mac import INT8MAC, LNSMAC
from lnsmadam.sim.runner import SIMULATORS, default_build_root, export_verilog, run_cocotb

# name: (MACConfig, pipeline, out_pipeline)
CONFIGS = {
    "b8g8l1": (MACConfig(LNSFormat(8, 3), lanes=1), 2, 3),         # the defaults
    "b8g8l8": (MACConfig(LNSFormat(8, 3), lanes=8), 5, 4),         # deepest pipelines
    "b6g4l4": (MACConfig(LNSFormat(6, 2), lut_frac=6, window=12, acc_bits=19, lanes=4), 1, 0),
    "b6g4l4wrap": (MACConfig(LNSFormat(6, 2), lut_frac=6, window=12, acc_bits=19, lanes=4,
                             saturate=False), 3, 2),
}
N_RANDOM = 250          # random vectors per cocotb test (two tests per configuration)


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_lns_mac_verilog(name, sim):
    cfg, pipeline, out_pipeline = CONFIGS[name]
    dut = LNSMAC(cfg, pipeline=pipeline, out_pipeline=out_pipeline)
    design = export_verilog(dut, f"lns_mac_{name}", default_build_root() / "verilog")
    run_cocotb(design, "lnsmadam.sim.cocotb_mac", sim=sim, test_name=name, params={
        "kind": "lns", "bits": cfg.fmt.bits, "frac_bits": cfg.fmt.frac_bits,
        "lut_frac": cfg.lut_frac, "window": cfg.window, "acc_bits": cfg.acc_bits,
        "saturate": cfg.saturate, "lanes": cfg.lanes, "mid_bits": cfg.mid_bits,
        "pipeline": pipeline, "out_pipeline": out_pipeline,
        "latency": dut.latency, "seed": 11, "n_random": N_RANDOM,
        "valid_prob": 0.7, "ready_prob": 0.45})


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("lanes, acc_bits, saturate, pipeline", [(4, 16, True, 2),
                                                                   (3, 20, False, 4)])
def test_int8_mac_verilog(lanes, acc_bits, saturate, pipeline, sim):
    dut = INT8MAC(lanes, acc_bits=acc_bits, saturate=saturate, pipeline=pipeline)
    name = f"int8_mac_l{lanes}a{acc_bits}{'s' if saturate else 'w'}p{pipeline}"
    design = export_verilog(dut, name, default_build_root() / "verilog")
    run_cocotb(design, "lnsmadam.sim.cocotb_mac", sim=sim, test_name=name, params={
        "kind": "int8", "lanes": lanes, "acc_bits": acc_bits, "saturate": saturate,
        "pipeline": pipeline, "latency": dut.latency, "seed": 5, "n_random": N_RANDOM,
        "valid_prob": 0.7, "ready_prob": 0.45})
