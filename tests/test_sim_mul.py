"""cocotb regression of the generated Verilog of LNSMul (hw/mul.py) on Icarus and Verilator.

Every output is compared bit for bit with lnsmadam.golden.mul.mul (sim/cocotb_mul.py):
all corner pairs (ZERO with either sign, ±min, ±max, saturation and flush boundaries) and
random pairs, one per cycle, through lnsmadam.sim.verify (the code of `lnsmadam verify`).
Set LNSMADAM_WAVES=1 (or WAVES=1) for waveforms (path in the test dir).
"""

from __future__ import annotations

import pytest

from lnsmadam.golden.format import LNSFormat
from lnsmadam.hw import blocks
from lnsmadam.sim.runner import SIMULATORS
from lnsmadam.sim.verify import verify_block

# name: (bits, gamma, underflow, shift, registered)
CONFIGS = {
    "b8g8": (8, 8, "flush", None, True),
    "b6g4min": (6, 4, "min", 25, True),
    "b8g8comb": (8, 8, "flush", 140, False),
}


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_mul_verilog(name, sim):
    bits, gamma, underflow, shift, registered = CONFIGS[name]
    fmt = LNSFormat.from_gamma(bits, gamma, underflow=underflow)
    block = blocks.mul(fmt, shift, registered, name=f"lns_mul_{name}")
    verify_block(block, [sim], test_name=name, check=True, seed=1, n_random=400)
