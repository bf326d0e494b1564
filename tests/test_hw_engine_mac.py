# amaranth: UnusedElaboratable=no
"""hw/engine/mac.py: the lane MAC in tree and lane mode against golden.mac (exact sums)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig, matmul
from lnsmadam.hw.engine.mac import LaneMAC


def run(lanes, pipeline, vectors, fmt=None):
    """``vectors``: list of (lane_mode, A (beats, lanes), B (beats, lanes)); returns the
    accumulator words at each ``done``."""
    fmt = fmt or LNSFormat(8, 3)
    cfg = MACConfig.for_format(fmt)
    longest = max(len(a) * (lanes if not lm else 1) for lm, a, _ in vectors)
    dut = LaneMAC(cfg, lanes, cfg.exact_acc_bits(max(longest, 2)), pipeline=pipeline)
    got = []

    async def tb(ctx):
        pending = []
        for lm, A, B in vectors:
            ctx.set(dut.lane_mode, lm)
            for k in range(len(A)):
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, k == 0)
                ctx.set(dut.last, k == len(A) - 1)
                for c in range(lanes):
                    ctx.set(dut.a[c].as_value(), int(A[k][c]))
                    ctx.set(dut.b[c].as_value(), int(B[k][c]))
                await ctx.tick()
                if ctx.get(dut.done):
                    got.append([ctx.get(dut.acc[c]) for c in range(lanes)])
            ctx.set(dut.valid, 0)
            # drain before a mode change (the flag is static while a vector is in flight)
            for _ in range(dut.latency(lm) + 1):
                await ctx.tick()
                if ctx.get(dut.done):
                    got.append([ctx.get(dut.acc[c]) for c in range(lanes)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return cfg, got


@pytest.mark.parametrize("lanes,pipeline", [(1, 0), (1, 2), (2, 3), (4, 1), (4, 4), (8, 5)])
def test_tree_and_lane_modes_exact(lanes, pipeline):
    rng = np.random.default_rng(lanes * 10 + pipeline)
    vecs = []
    for n in (1, 3, 5):
        for lm in (0, 1):
            A = rng.integers(0, 256, size=(n, lanes))
            B = rng.integers(0, 256, size=(n, lanes))
            # corners: ZERO operands (either sign), the largest products, all-negative
            A[0, 0] = 0x80
            B[-1, -1] = 0xFF
            A[-1, -1] = 0x7F
            vecs.append((lm, A, B))
    cfg, got = run(lanes, pipeline, vecs)
    assert len(got) == len(vecs)
    for (lm, A, B), g in zip(vecs, got):
        if lm:
            want = [int(matmul(A[:, c][None, :], B[:, c][:, None], cfg)[0, 0])
                    for c in range(lanes)]
            assert g == want
        else:
            want = int(matmul(A.reshape(1, -1), B.reshape(-1, 1), cfg)[0, 0])
            assert g[0] == want


def test_latency_and_bad_parameters():
    cfg = MACConfig.for_format(LNSFormat(8, 3))
    d = LaneMAC(cfg, 4, 32, pipeline=4)
    assert d.latency(False) == 5 and d.latency(True) == 3
    with pytest.raises(ValueError, match="pipeline"):
        LaneMAC(cfg, 4, 32, pipeline=5)
    with pytest.raises(ValueError, match="acc_bits"):
        LaneMAC(cfg, 4, 10)
