"""cocotb regression of the generated Verilog of the FP8 and FP32 baselines (hw/fpmac.py) on
Icarus and Verilator: every result compared bit for bit with lnsmadam.golden.fpmac
(sim/cocotb_fpmac.py), corner and random vectors, at full rate (latency and throughput
checked) and with random valid gaps and backpressure."""

from __future__ import annotations

import pytest

from lnsmadam.golden.fpmac import FP8MACConfig, FP32MACConfig
from lnsmadam.hw.fpmac import FP8MAC, FP32MAC
from lnsmadam.sim.runner import SIMULATORS, default_build_root, export_verilog, run_cocotb

N_RANDOM = 120


FP8_CONFIGS = [("e4m3", "e5m2", 4, 16, 32, True, 2, sim) for sim in SIMULATORS]
# the wrapping E5M2 configuration on Icarus only: a Verilator build costs ~30 s of CI
FP8_CONFIGS.append(("e5m2", "e5m2", 2, 20, 30, False, 3, "icarus"))


@pytest.mark.parametrize("a_fmt, b_fmt, lanes, window, acc_bits, saturate, pipeline, sim",
                         FP8_CONFIGS)
def test_fp8_mac_verilog(a_fmt, b_fmt, lanes, window, acc_bits, saturate, pipeline, sim):
    cfg = FP8MACConfig(a_fmt, b_fmt, window=window, acc_bits=acc_bits, saturate=saturate,
                       lanes=lanes)
    dut = FP8MAC(cfg, pipeline=pipeline)
    name = f"fp8_mac_{a_fmt}_{b_fmt}_l{lanes}"
    design = export_verilog(dut, name, default_build_root() / "verilog")
    run_cocotb(design, "lnsmadam.sim.cocotb_fpmac", sim=sim, test_name=name, params={
        "kind": "fp8", "a_fmt": a_fmt, "b_fmt": b_fmt, "lanes": lanes, "window": window,
        "acc_bits": acc_bits, "saturate": saturate, "pipeline": pipeline,
        "latency": dut.latency, "seed": 3, "n_random": N_RANDOM,
        "valid_prob": 0.7, "ready_prob": 0.45})


@pytest.mark.parametrize("sim", SIMULATORS)
def test_fp32_mac_verilog(sim):
    dut = FP32MAC(FP32MACConfig(), pipeline=2)
    design = export_verilog(dut, "fp32_mac", default_build_root() / "verilog")
    run_cocotb(design, "lnsmadam.sim.cocotb_fpmac", sim=sim, test_name="fp32_mac", params={
        "kind": "fp32", "lanes": 1, "pipeline": 2, "latency": dut.latency, "seed": 4,
        "n_random": N_RANDOM, "valid_prob": 0.7, "ready_prob": 0.45})
