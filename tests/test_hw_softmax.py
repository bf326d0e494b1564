"""SoftmaxError in the Amaranth simulator against ``LNSMLP._error_out``, bit for bit."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden.data import load_digits_split
from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mlp import LNSMLP, MLPConfig
from lnsmadam.hw.softmax import SoftmaxError


def run_vectors(cfg, cases, seed=0, p_gap=0.3, p_stall=0.3):
    """cases: list of (S list, bias, label); returns [(codes, bias)] from the unit."""
    dut = SoftmaxError(cfg)
    n = cfg.sizes[-1]
    rng = np.random.default_rng(seed)
    got = []

    async def tb(ctx):
        for S, bias, label in cases:
            ctx.set(dut.bias, int(bias))
            ctx.set(dut.label, int(label))
            k = 0
            while k < n:
                if p_gap and rng.random() < p_gap:
                    ctx.set(dut.i_stream.valid, 0)
                    await ctx.tick()
                    continue
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload.S, int(S[k]))
                _, _, rdy = await ctx.tick().sample(dut.i_stream.ready)
                if rdy:
                    k += 1
            ctx.set(dut.i_stream.valid, 0)
            codes, ob = [], None
            while len(codes) < n:
                r = int(not (p_stall and rng.random() < p_stall))
                ctx.set(dut.o_stream.ready, r)
                _, _, v, code, idx, b = await ctx.tick().sample(
                    dut.o_stream.valid, dut.o_stream.payload.code.as_value(),
                    dut.o_stream.payload.index, dut.o_bias)
                if v and r:
                    assert idx == len(codes)
                    codes.append(code)
                    assert ob is None or ob == b
                    ob = b
            ctx.set(dut.o_stream.ready, 0)
            got.append((codes, ob))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return got


def check(cfg, cases, **kw):
    model = LNSMLP(cfg, 0)
    got = run_vectors(cfg, cases, **kw)
    for (S, bias, label), (codes, b) in zip(cases, got):
        want = model._error_out(np.asarray(S, np.int64), int(bias), int(label))
        assert codes == want.codes.tolist() and b == want.bias, (S, bias, label)


def forward_cases(cfg, n_cases, seed):
    model = LNSMLP(cfg, seed)
    d = load_digits_split(0)
    cases = []
    for i in range(n_cases):
        if i == n_cases // 2:                    # later in training: sharper logits
            for j in range(200):
                model.step(d.x_train[j], int(d.y_train[j]))
        a0 = model.input_codes(d.x_train[i])
        S, trace, _ = model.forward(a0, keep=True)
        bias = model.forward_weights(len(model.u) - 1).bias + trace[-1].bias
        cases.append((S.tolist(), bias, int(d.y_train[i])))
    return cases


def test_real_forward_passes():
    cfg = MLPConfig()
    check(cfg, forward_cases(cfg, 8, 1))


def test_corners():
    cfg = MLPConfig()
    big = (1 << 31) - 1
    cases = [
        ([0] * 10, 0, 0),                                  # all equal (ties, zero S)
        ([5] * 10, -20, 9),
        ([big] + [0] * 9, -40, 0),                         # one huge logit at the label
        ([big] + [0] * 9, -40, 3),
        ([-big - 1] * 5 + [big] * 5, 3, 9),
        ([-(1 << 20)] * 10, -60, 4),                       # all negative
        (list(range(-5, 5)), 200, 2),                      # sh very negative: left shift
        (list(range(-5, 5)), -3000, 7),                    # sh very large: z = 0
        ([1000 * k for k in range(10)], -100, 5),
        ([1 << 24] + [0] * 9, -30, 0),                     # rest == 0 at the label
    ]
    check(cfg, cases)


def test_random_words_and_biases():
    cfg = MLPConfig()
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(12):
        scale = int(rng.integers(0, 32))
        S = rng.integers(-(1 << scale), 1 << scale, 10)
        cases.append((S.tolist(), int(rng.integers(-300, 100)), int(rng.integers(0, 10))))
    check(cfg, cases, seed=3)


def test_small_format_three_outputs():
    cfg = MLPConfig(sizes=(5, 4, 3), fmt=LNSFormat.from_gamma(6, 4))
    rng = np.random.default_rng(2)
    cases = [(rng.integers(-(1 << 20), 1 << 20, 3).tolist(), int(rng.integers(-80, 40)),
              int(rng.integers(0, 3))) for _ in range(10)]
    cases += forward_cases(cfg, 0, 0) + [([0, 0, 0], 0, 2), ([7, -7, 7], -10, 1)]
    check(cfg, cases)


def test_bad_parameters():
    with pytest.raises(ValueError, match="bias_bits"):
        SoftmaxError(MLPConfig(), bias_bits=1)
