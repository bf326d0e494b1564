"""cocotb regression of the generated Verilog of ToLinear/FromLinear (hw/convert.py).

Icarus and Verilator; every output is compared bit for bit with
lnsmadam.golden.convert.to_linear/from_linear (sim/cocotb_convert.py): the whole exponent
range around the window, every midpoint boundary at every leading-one position, the
accumulator extremes, and random values, through lnsmadam.sim.verify (the code of
`lnsmadam verify`). LNSMADAM_WAVES=1 (or WAVES=1) records waveforms.
"""

from __future__ import annotations

import pytest

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig
from lnsmadam.hw import blocks
from lnsmadam.sim.runner import SIMULATORS
from lnsmadam.sim.verify import verify_block


def _from_mac(cfg: MACConfig, registered=False) -> dict:
    """The converters of a dot-product unit configuration."""
    return {"fmt": cfg.fmt, "lut_frac": cfg.lut_frac, "q_lo": cfg.q_lo, "window": cfg.window,
            "acc_width": cfg.acc_bits, "mid_bits": cfg.mid_bits, "lsb_q": cfg.lsb_q,
            "registered": registered}


CONFIGS = {
    # the MAC's converters at 8 bits, gamma = 8 and at 6 bits, gamma = 4
    "b8g8": _from_mac(MACConfig(LNSFormat(8, 3))),
    "b6g4": _from_mac(MACConfig(LNSFormat(6, 2), lut_frac=6, window=12, acc_bits=20)),
    # registered, window reaching below octave 0 (negative q_lo and lsb_q), wide table
    "b8g8neg_reg": {"fmt": LNSFormat(8, 3), "lut_frac": 10, "q_lo": -3, "window": 24,
                    "acc_width": 40, "mid_bits": 11, "lsb_q": -13, "registered": True},
    # gamma = 1 (no fraction bits: a one-entry table, no midpoint but the carry)
    "b5g1": _from_mac(MACConfig(LNSFormat(5, 0), lut_frac=1, window=20, acc_bits=24)),
}


def _block(name, kind):
    c = CONFIGS[name]
    top = f"{kind}_{name}"
    if kind == "to_linear":
        return blocks.to_linear(c["fmt"], c["lut_frac"], c["q_lo"], c["window"],
                                c["registered"], name=top)
    return blocks.from_linear(c["fmt"], c["acc_width"], c["mid_bits"], c["lsb_q"],
                              c["registered"], name=top)


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("kind", ["to_linear", "from_linear"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_convert_verilog(name, kind, sim):
    verify_block(_block(name, kind), [sim], check=True, seed=3, n_random=300)
