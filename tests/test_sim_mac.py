"""cocotb regression of the generated Verilog of the streaming dot-product units (hw/mac.py).

LNSMAC on Icarus and Verilator in four configurations (8-bit gamma=8 with 1 and 8 lanes,
6-bit gamma=4 with 4 lanes and a minimal saturating or a wrapping accumulator; output
converter pipelines 3 (the default), 4, 0 and 2), plus the INT8MAC baseline. Every result (accumulator word and its LNS conversion) is compared bit
for bit with lnsmadam.golden.mac (sim/cocotb_mac.py): corner vectors (ZERO, ±max, window
edge, cancellation, saturation and recovery, one-beat vectors back to back) and random
vectors, at full rate (latency and throughput checked cycle by cycle) and with random
valid gaps and backpressure. The benches run through lnsmadam.sim.verify, the code of
`lnsmadam verify`. LNSMADAM_WAVES=1 (or WAVES=1) records waveforms.
"""

from __future__ import annotations

import pytest

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig
from lnsmadam.hw import blocks
from lnsmadam.sim.runner import SIMULATORS
from lnsmadam.sim.verify import verify_block

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
    block = blocks.mac(cfg, pipeline, out_pipeline, name=f"lns_mac_{name}")
    verify_block(block, [sim], test_name=name, check=True, seed=11, n_random=N_RANDOM,
                 valid_prob=0.7, ready_prob=0.45)


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("lanes, acc_bits, saturate, pipeline", [(4, 16, True, 2),
                                                                   (3, 20, False, 4)])
def test_int8_mac_verilog(lanes, acc_bits, saturate, pipeline, sim):
    name = f"int8_mac_l{lanes}a{acc_bits}{'s' if saturate else 'w'}p{pipeline}"
    block = blocks.int8_mac(lanes, acc_bits, saturate, pipeline, name=name)
    verify_block(block, [sim], check=True, seed=5, n_random=N_RANDOM, valid_prob=0.7,
                 ready_prob=0.45)
