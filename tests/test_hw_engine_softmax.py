# amaranth: UnusedElaboratable=no
"""hw/engine/softmax.py: the parallel softmax-error unit against ``LNSMLP._error_out``.

Vectors stream in one logit per cycle with random gaps; every output beat, the error bias
and the prediction are compared with golden, for random words over the accumulator range,
near-ties, one dominant logit (nothing live), shifts below ``sh_lo`` and above ``sh_hi`` (the
clamps) and left shifts, on the default and several small formats.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mlp import LNSMLP, SOFTMAX_P, MLPConfig
from lnsmadam.hw.engine.softmax import ParallelSoftmax
from lnsmadam.hw.softmax import softmax_constants


def run(cfg, cases, seed=0, p_gap=0.3):
    dut = ParallelSoftmax(cfg)
    n = cfg.sizes[-1]
    rng = np.random.default_rng(seed)
    got = []

    async def bench(ctx):
        i, o = dut.i_stream, dut.o_stream
        ctx.set(o.ready, 1)
        for S, bias, label in cases:
            ctx.set(dut.bias, int(bias))
            ctx.set(dut.label, int(label))
            k = 0
            while k < n:
                offer = not rng.random() < p_gap
                ctx.set(i.valid, int(offer))
                ctx.set(i.payload.S, int(S[k]) if offer else 12345)
                await ctx.tick()
                k += offer
            ctx.set(i.valid, 0)
            codes, lat = [], 0
            while len(codes) < n:
                await ctx.tick()
                lat += 1
                if ctx.get(o.valid):
                    assert ctx.get(o.payload.index) == len(codes)
                    if not codes:
                        first = lat
                        ob, am = ctx.get(dut.o_bias), ctx.get(dut.argmax)
                    codes.append(ctx.get(o.payload.code.as_value()))
                assert lat < 200
            assert first == dut.latency
            got.append((codes, ob, am))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    model = LNSMLP(cfg, 0)
    for (S, bias, label), (codes, ob, am) in zip(cases, got):
        want = model._error_out(np.asarray(S, np.int64), int(bias), int(label))
        assert (codes, ob) == (want.codes.tolist(), want.bias), (S, bias, label)
        assert am == int(np.argmax(np.asarray(S)))


def cases_for(cfg, count, seed):
    kc = softmax_constants(cfg)
    n, ab = cfg.sizes[-1], cfg.mac.acc_bits
    lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    rng = np.random.default_rng(seed)

    def bias_for(sh, r=0):
        return (SOFTMAX_P - cfg.mac.lsb_q - sh) * cfg.fmt.gamma + r

    out = [([0] * n, bias_for(20), 0), ([hi] + [0] * (n - 1), bias_for(20), 0),
           ([lo] * n, bias_for(kc["sh_hi"] + 5), n - 1),
           ([hi - k for k in range(n)], bias_for(kc["sh_hi"] - 1), 0),
           ([k * 1000 for k in range(n)], bias_for(kc["sh_lo"] - 9), n - 1),
           ([k - 3 for k in range(n)], bias_for(0), 0), ([k - 3 for k in range(n)], bias_for(1), 0)]
    while len(out) < count:
        mode = len(out) % 3
        if mode == 0:
            S = rng.integers(lo, hi + 1, n)
        elif mode == 1:
            sp = 1 << int(rng.integers(0, ab - 2))
            S = np.clip(int(rng.integers(lo // 2, hi // 2)) + rng.integers(-sp, sp + 1, n), lo, hi)
        else:
            S = np.full(n, int(rng.integers(lo, hi + 1)))
            S[rng.integers(0, n)] -= int(rng.integers(0, 1 << 12))
            S = np.clip(S, lo, hi)
        sh = int(rng.integers(max(kc["sh_lo"] - 8, 0), kc["sh_hi"] + 9))
        out.append((S.tolist(), bias_for(sh, int(rng.integers(0, cfg.fmt.gamma))),
                    int(rng.integers(0, n))))
    return out


@pytest.mark.parametrize("cfg", [
    MLPConfig(),
    MLPConfig(sizes=(8, 3), fmt=LNSFormat.from_gamma(6, 4)),
    MLPConfig(sizes=(8, 1)),
    MLPConfig(sizes=(8, 6), fmt=LNSFormat(6, 2, underflow="min")),
    MLPConfig(sizes=(8, 5), fmt=LNSFormat(7, 0), softmax_window=30),
    MLPConfig(sizes=(8, 16), softmax_window=8),
], ids=["default", "gamma16", "one_output", "underflow_min", "gamma1_window30", "sixteen"])
def test_against_golden(cfg):
    run(cfg, cases_for(cfg, 60, 1))


def test_bad_parameters():
    with pytest.raises(ValueError, match="frac_bits"):
        ParallelSoftmax(MLPConfig(sizes=(4, 2), fmt=LNSFormat(10, 5)))
    with pytest.raises(ValueError, match="bias_bits"):
        ParallelSoftmax(MLPConfig(), bias_bits=4)
