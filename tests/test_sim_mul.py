"""cocotb regression of the generated Verilog of LNSMul (hw/mul.py) on Icarus and Verilator.

Every output is compared bit for bit with lnsmadam.golden.mul.mul (sim/cocotb_mul.py):
all corner pairs (ZERO with either sign, ±min, ±max, saturation and flush boundaries) and
random pairs, one per cycle. Set LNSMADAM_WAVES=1 for waveforms (path in the test dir).
"""

from __future__ import annotations

import pytest

from lnsmadam.golden.format import LNSFormat
from lnsmadam.hw.mul import LNSMul
from lnsmadam.sim.runner import SIMULATORS, default_build_root, export_verilog, run_cocotb

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
    top = f"lns_mul_{name}"
    design = export_verilog(LNSMul(fmt, shift=shift, registered=registered), top,
                            default_build_root() / "verilog")
    run_cocotb(design, "lnsmadam.sim.cocotb_mul", sim=sim, test_name=name, params={
        "bits": bits, "frac_bits": fmt.frac_bits, "underflow": underflow, "shift": shift,
        "latency": 1 if registered else 0, "seed": 1, "n_random": 400})
