"""cocotb regression of the generated Verilog of the LNS-Madam update engine (hw/update.py).

MadamUpdate on Icarus and Verilator in three configurations: the default MadamConfig
(seeding), the same with bias correction (a BiasCorrection register stepping bc_exp once
per pair of tensors), and a small one (10-bit gamma=32 weights, 6-bit gamma=4 gradients, a
4+6-bit state, beta_k=3, lr_step=3, g_bound=4). Every w_new / v_new / n is compared bit for
bit with lnsmadam.golden.update.madam_step (sim/cocotb_update.py): corner steps at full rate
(latency and one weight per cycle checked cycle by cycle), then a closed-loop training run
(the engine's outputs fed back as the next step's inputs) with random valid gaps and
backpressure. The benches run through lnsmadam.sim.verify, the code of `lnsmadam verify`.
LNSMADAM_WAVES=1 (or WAVES=1) records waveforms.
"""

from __future__ import annotations

import pytest

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.update import MadamConfig, StateFormat
from lnsmadam.hw import blocks
from lnsmadam.sim.runner import SIMULATORS
from lnsmadam.sim.verify import verify_block

# name: (MadamConfig, pipeline)
CONFIGS = {
    "default": (MadamConfig(), 5),
    "bc": (MadamConfig(bias_correction=True), 6),
    "small": (MadamConfig(weight=LNSFormat(10, 5, underflow="min"), grad=LNSFormat(6, 2),
                          state=StateFormat(4, 6, -20), beta_k=3, lr_step=3, g_bound=4), 0),
}
#: training-run size per simulator: n_weights x n_steps updates
RUN = {"verilator": (128, 80), "icarus": (128, 80)}


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_update_verilog(name, sim):
    cfg, pipeline = CONFIGS[name]
    n_weights, n_steps = RUN[sim]
    block = blocks.update(cfg, pipeline, name=f"madam_update_{name}")
    verify_block(block, [sim], test_name=name, check=True, seed=7, n_weights=n_weights,
                 n_steps=n_steps, valid_prob=0.75, ready_prob=0.6)
