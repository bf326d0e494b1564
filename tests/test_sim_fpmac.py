"""cocotb regression of the generated Verilog of the FP8 and FP32 baselines (hw/fpmac.py) on
Icarus and Verilator: every result compared bit for bit with lnsmadam.golden.fpmac
(sim/cocotb_fpmac.py), corner and random vectors, at full rate (latency and throughput
checked) and with random valid gaps and backpressure. The benches run through
lnsmadam.sim.verify, the code of `lnsmadam verify fp8-mac` / `fp32-mac`."""

from __future__ import annotations

import pytest

from lnsmadam.golden.fpmac import FP8MACConfig
from lnsmadam.hw import blocks
from lnsmadam.sim.runner import SIMULATORS
from lnsmadam.sim.verify import verify_block

N_RANDOM = 120


FP8_CONFIGS = [("e4m3", "e5m2", 4, 16, 32, True, 2, sim) for sim in SIMULATORS]
# the wrapping E5M2 configuration on Icarus only: a Verilator build costs ~30 s of CI
FP8_CONFIGS.append(("e5m2", "e5m2", 2, 20, 30, False, 3, "icarus"))


@pytest.mark.parametrize("a_fmt, b_fmt, lanes, window, acc_bits, saturate, pipeline, sim",
                         FP8_CONFIGS)
def test_fp8_mac_verilog(a_fmt, b_fmt, lanes, window, acc_bits, saturate, pipeline, sim):
    cfg = FP8MACConfig(a_fmt, b_fmt, window=window, acc_bits=acc_bits, saturate=saturate,
                       lanes=lanes)
    block = blocks.fp8_mac(cfg, pipeline)
    assert block.name == f"fp8_mac_{a_fmt}_{b_fmt}_l{lanes}"
    verify_block(block, [sim], check=True, seed=3, n_random=N_RANDOM, valid_prob=0.7,
                 ready_prob=0.45)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_fp32_mac_verilog(sim):
    verify_block(blocks.fp32_mac(pipeline=2), [sim], check=True, seed=4, n_random=N_RANDOM,
                 valid_prob=0.7, ready_prob=0.45)
