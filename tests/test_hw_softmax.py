# amaranth: UnusedElaboratable=no
"""hw/softmax.py: SoftmaxError against ``LNSMLP._error_out``, bit for bit.

Every vector goes through the unit's streams (random input gaps and output stalls unless a
test measures latency); every cycle checks the stream rules (a presented output beat is held
until taken, beats in index order, ``o_bias`` constant over a vector, ``i_stream.ready`` low
from the last input beat to the last output beat). Codes and bias are compared with
``LNSMLP(cfg, 0)._error_out(S, bias, label)`` on the same inputs.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden.data import load_digits_split
from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig
from lnsmadam.golden.mlp import LNSMLP, SOFTMAX_P, MLPConfig
from lnsmadam.hw.softmax import SoftmaxError, softmax_constants

DEFAULT = MLPConfig()
SMALL = MLPConfig(sizes=(64, 16, 3), fmt=LNSFormat.from_gamma(6, 4))
OTHERS = {
    "one_output": MLPConfig(sizes=(4, 1)),
    "underflow_min": MLPConfig(sizes=(8, 6), fmt=LNSFormat(6, 2, underflow="min")),
    "gamma1_window30": MLPConfig(sizes=(8, 5), fmt=LNSFormat(7, 0), softmax_window=30),
    "gamma16_window3": MLPConfig(sizes=(8, 4), fmt=LNSFormat(10, 4), softmax_window=3),
    "acc40_mid11": MLPConfig(sizes=(8, 7), fmt=LNSFormat(8, 2), mac=MACConfig.for_format(
        LNSFormat(8, 2), acc_bits=40, lut_frac=9, mid_bits=11)),
    "window1": MLPConfig(sizes=(8, 2), fmt=LNSFormat(5, 1), softmax_window=1),
    "sixteen_window8": MLPConfig(sizes=(8, 16), softmax_window=8),
}


# -- harness ---------------------------------------------------------------------------
def run_vectors(cfg, cases, seed=0, p_gap=0.3, p_stall=0.3):
    """Stream ``cases`` (``(S, bias, label)``) back to back through one unit.

    Returns per case ``(codes, bias, cycles)``; ``cycles`` counts from the cycle of the first
    input beat to the cycle of the last output beat, both included.
    """
    dut = SoftmaxError(cfg)
    n = cfg.sizes[-1]
    rng = np.random.default_rng([seed, 11])
    out = []
    i, o = dut.i_stream, dut.o_stream

    async def bench(ctx):
        cycle = 0
        for S, bias, label in cases:
            ctx.set(dut.bias, int(bias))
            ctx.set(dut.label, int(label))
            k, codes, ob, held, first = 0, [], None, None, None
            while len(codes) < n:
                offer = k < n and not (p_gap and rng.random() < p_gap)
                ctx.set(i.valid, int(offer))
                ctx.set(i.payload.S, int(S[k]) if offer else int(rng.integers(-99, 99)))
                rdy = int(not (p_stall and rng.random() < p_stall))
                ctx.set(o.ready, rdy)
                _, _, ir, ov, code, idx, b, we, wa, ra, am = await ctx.tick().sample(
                    i.ready, o.valid, o.payload.code.as_value(), o.payload.index, dut.o_bias,
                    wp.en, wp.addr, rp.addr, dut.argmax)
                # the memory is marked no_rw_check: a same-address read and write is undefined
                assert not (we and wa == ra), f"memory read/write collision at {wa} cycle {cycle} k {k}"

                if held is not None:
                    assert ov and (code, idx, b) == held, "an output beat changed before taken"
                held = (code, idx, b) if ov and not rdy else None
                if k == n:
                    assert not ir, "i_stream.ready while the vector is being processed"
                if offer and ir:
                    if k == 0:
                        first = cycle
                    k += 1
                if ov and rdy:
                    assert k == n, "output before all inputs were taken"
                    assert idx == len(codes), "output beats out of order"
                    assert ob is None or b == ob, "o_bias changed within a vector"
                    # argmax: the first maximum (LNSMLP.predict), steady while outputs go
                    assert am == int(np.argmax(np.asarray(S))), (list(S), am)
                    codes.append(code)
                    ob = b
                cycle += 1
                assert cycle < 1_000_000, "deadlock"
            out.append((codes, ob, cycle - first))
        ctx.set(i.valid, 0)

    sim = Simulator(dut)
    wp, rp = dut._mem_ports
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def check(cfg, cases, **kw):
    model = LNSMLP(cfg, 0)
    got = run_vectors(cfg, cases, **kw)
    for (S, bias, label), (codes, b, _) in zip(cases, got):
        want = model._error_out(np.asarray(S, np.int64), int(bias), int(label))
        assert (codes, b) == (want.codes.tolist(), want.bias), \
            f"S={list(S)} bias={bias} label={label}: {codes}, {b} != " \
            f"{want.codes.tolist()}, {want.bias}"
    return got


def shift(cfg, bias):
    return SOFTMAX_P - cfg.mac.lsb_q - (bias >> cfg.fmt.frac_bits)


def bias_for(cfg, sh, r=0):
    """The logit bias with golden's shift ``sh`` and remainder ``r``."""
    return (SOFTMAX_P - cfg.mac.lsb_q - sh) * cfg.fmt.gamma + r


def in_golden_range(cfg, S, bias):
    """Golden's int64 ``z = p << -sh`` and ``z - max z`` stay exact (sh < 0 only)."""
    sh = shift(cfg, bias)
    if sh >= 0:
        return True
    C = softmax_constants(cfg)["C"][bias & (cfg.fmt.gamma - 1)]
    return (max(abs(int(s)) for s in S) * C) << -sh < 1 << 61


def logits_for(cfg, z, sh=24, r=0):
    """``(S, bias)`` whose logits are ``z`` (in 1/(gamma log2 e) units) at shift ``sh``."""
    C = softmax_constants(cfg)["C"][r]
    return [(int(v) << sh) // C for v in z], bias_for(cfg, sh, r)


def forward_cases(cfg, count, seed, train_steps=150):
    """Logits of real forward passes on digits samples (half after some training)."""
    model = LNSMLP(cfg, seed)
    d = load_digits_split(0)
    n = cfg.sizes[-1]
    cases = []
    for j in range(count):
        if j == count // 2:
            for t in range(train_steps):
                model.step(d.x_train[t], int(d.y_train[t]) % n)
        S, trace, _ = model.forward(model.input_codes(d.x_train[400 + j]), keep=True)
        bias = model.forward_weights(len(model.u) - 1).bias + trace[-1].bias
        cases.append((S.tolist(), int(bias), int(d.y_train[400 + j]) % n))
    return cases


def random_cases(cfg, count, rng):
    """Random words over the accumulator range (several spreads, near-ties), biases whose
    shift covers [sh_lo - 8, sh_hi + 8] (left shifts included), random labels."""
    kc = softmax_constants(cfg)
    n, ab = cfg.sizes[-1], cfg.mac.acc_bits
    lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    cases = []
    while len(cases) < count:
        mode = len(cases) % 4
        if mode == 0:                                     # the full range
            S = rng.integers(lo, hi + 1, n)
        elif mode == 1:                                   # a cluster of any spread
            sp = 1 << int(rng.integers(0, ab))
            S = int(rng.integers(lo, hi + 1)) + rng.integers(-sp, sp + 1, n)
        elif mode == 2:                                   # small words
            sc = int(rng.integers(0, ab))
            S = rng.integers(-(1 << sc), 1 << sc, n)
        else:                                             # near-ties with the maximum
            S = np.full(n, int(rng.integers(lo, hi + 1)))
            S[rng.integers(0, n)] -= int(rng.integers(0, 1 << 12))
        S = np.clip(S, lo, hi)
        sh = int(rng.integers(kc["sh_lo"] - 8, kc["sh_hi"] + 9))
        bias = bias_for(cfg, sh, int(rng.integers(0, cfg.fmt.gamma)))
        if in_golden_range(cfg, S, bias):
            cases.append((S.tolist(), bias, int(rng.integers(0, n))))
    return cases


def corner_cases(cfg, realistic_bias, sh_step=1):
    n, ab = cfg.sizes[-1], cfg.mac.acc_bits
    big, small = (1 << (ab - 1)) - 1, -(1 << (ab - 1))
    kc = softmax_constants(cfg)
    b = realistic_bias
    ramp = [k * (1 << 16) for k in range(n)]
    cases = [
        ([0] * n, b, 0),                                  # all zero: all tie
        ([12345] * n, b, n - 1),                          # all equal
        ([big] * n, b, n // 2),
        ([small] * n, b, 0),
        ([7] + [9] * (n - 1), b, 0),                      # tie for the max, label below
        ([9] * (n - 1) + [7], b, n - 1),
        ([big] + [0] * (n - 1), b, 0),                    # one huge logit at the label:
        ([0] * (n - 1) + [big], b, n - 1),                # rest = 0, nothing live, b = 0
        ([big] + [0] * (n - 1), b, n - 1),                # ... and away from the label
        ([big] + [small] * (n - 1), b, 0),                # the full range
        ([small] + [big] * (n - 1), b, 0),
        ([-(1 << 20) - k for k in range(n)], b, n - 1),   # all negative
        (ramp, b, 0), (ramp[::-1], b, n - 1),             # some below the window
        ([k * 1000 for k in range(n)], bias_for(cfg, kc["sh_lo"] - 20), 1 % n),   # sh < 0
        ([k - 3 for k in range(n)], bias_for(cfg, -5, 1), 0),                      # left shift
        ([k - 3 for k in range(n)], bias_for(cfg, 0), 0),
        ([k - 3 for k in range(n)], bias_for(cfg, 1), 0),
        ([big - k for k in range(n)], bias_for(cfg, kc["sh_hi"] - 1), 0),         # z in {0, 1}
        ([big - k for k in range(n)], bias_for(cfg, kc["sh_hi"] + 30), 0),        # z = 0
        ([small + k for k in range(n)], bias_for(cfg, kc["sh_hi"]), n - 1),
        ([big] * n, -(1 << 15), 0),                       # extreme biases
        ([small] * n, (1 << 15) - 1, 0),
    ]
    g = cfg.fmt.gamma
    # logits spread by fixed z steps: exponents far below the largest one underflow
    for step in (max(1, kc["top"] // 3), cfg.fmt.emax // 2 + 1, cfg.fmt.emax + 3):
        for label in (0, n - 1):
            cases.append(logits_for(cfg, [-step * k for k in range(n)]) + (label,))
            cases.append(logits_for(cfg, [-step * (k % 3) for k in range(n)], r=1 % g) + (label,))
    # shifts from below the lowest to above the highest clamp point (every sh_step-th)
    for sh in range(kc["sh_lo"] - 1, kc["sh_hi"] + 2, sh_step):
        S = [(k * 0x9E3779B1 + sh * 7919) % (1 << 24) - (1 << 23) for k in range(n)]
        cases.append((S, bias_for(cfg, sh, sh % g), sh % n))
    return [c for c in cases if in_golden_range(cfg, *c[:2])]


# -- tests -------------------------------------------------------------------------------
def test_argmax_ties_take_the_lowest_index():
    """argmax over logits with repeated maxima, at the first, middle and last index (the
    check inside run_vectors compares with np.argmax, which takes the first)."""
    cfg = MLPConfig()
    n = cfg.sizes[-1]
    cases = []
    for pos in ([0, 5], [3, 9], [9], [2, 3, 4], list(range(n))):
        S = np.full(n, -1000, np.int64)
        S[pos] = 123456
        cases.append((S, 0, pos[0]))
    cases.append((np.arange(n, dtype=np.int64) * -7, 0, 1))     # maximum at 0, no tie
    check(cfg, cases)


def test_clamped_shift_changes_nothing():
    """The documented clamp: golden gives the same result at sh and at clamp(sh)."""
    rng = np.random.default_rng(5)
    for cfg in (DEFAULT, SMALL):
        kc = softmax_constants(cfg)
        model = LNSMLP(cfg, 0)
        n = cfg.sizes[-1]
        for _ in range(150):
            sh = int(rng.choice([rng.integers(-12, kc["sh_lo"] + 1),
                                 rng.integers(kc["sh_hi"], kc["sh_hi"] + 40)]))
            r = int(rng.integers(0, cfg.fmt.gamma))
            S = rng.integers(-(1 << 31), 1 << 31, n) >> int(rng.integers(0, 31))
            bias = bias_for(cfg, sh, r)
            if not in_golden_range(cfg, S, bias):
                continue
            label = int(rng.integers(0, n))
            a = model._error_out(S, bias, label)
            c = model._error_out(S, bias_for(cfg, min(max(sh, kc["sh_lo"]), kc["sh_hi"]), r),
                                 label)
            assert a.codes.tolist() == c.codes.tolist() and a.bias == c.bias


def test_real_forward_passes():
    check(DEFAULT, forward_cases(DEFAULT, 16, 1), seed=1)


def test_random_words_and_shifts():
    check(DEFAULT, random_cases(DEFAULT, 80, np.random.default_rng(2)), seed=2)


def test_corners():
    realistic = forward_cases(DEFAULT, 1, 0)[0][1]
    check(DEFAULT, corner_cases(DEFAULT, realistic), seed=3)


def test_small_format_three_outputs():
    """6-bit words, gamma = 4, three classes: forward passes, random words, corners."""
    fw = forward_cases(SMALL, 8, 2)
    cases = fw + random_cases(SMALL, 60, np.random.default_rng(4)) + corner_cases(SMALL, fw[0][1])
    check(SMALL, cases, seed=4)


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_other_configs(name):
    cfg = OTHERS[name]
    rng = np.random.default_rng(sorted(OTHERS).index(name))
    check(cfg, random_cases(cfg, 12, rng) + corner_cases(cfg, bias_for(cfg, 40), 5), seed=5)


def test_latency_full_rate():
    """No gaps or stalls: cycles = n*(2(k+n_hi)+3) + k + n_hi + 7 + (normaliser shifts, one bit
    each), within the 400-cycle budget for the default at the digits MLP's logit biases."""
    cases = forward_cases(DEFAULT, 6, 3)
    got = check(DEFAULT, cases, p_gap=0, p_stall=0)
    kc = softmax_constants(DEFAULT)
    n = DEFAULT.sizes[-1]
    for (S, bias, _), (_, _, cycles) in zip(cases, got):
        k = (min(max(shift(DEFAULT, bias), kc["sh_lo"]), kc["sh_hi"]) - kc["E0"]) >> 2
        base = n * (2 * (k + kc["n_hi"]) + 3) + k + kc["n_hi"] + 7
        assert base <= cycles <= base + kc["sum_bits"] + 4, (cycles, base)
        assert cycles <= 400


def test_bad_parameters():
    with pytest.raises(ValueError, match="bias_bits"):
        SoftmaxError(DEFAULT, bias_bits=9)              # error biases need 10 bits
    with pytest.raises(ValueError, match="bias_bits"):
        SoftmaxError(DEFAULT, bias_bits=65)
    with pytest.raises(ValueError, match="frac_bits"):
        SoftmaxError(MLPConfig(sizes=(4, 3), fmt=LNSFormat(12, 5)))
    with pytest.raises(ValueError, match="cfg"):
        SoftmaxError(DEFAULT.fmt)


@pytest.mark.slow
def test_random_sweep():
    """More random vectors on every configuration (about a minute)."""
    for j, cfg in enumerate([DEFAULT, SMALL, *OTHERS.values()]):
        check(cfg, random_cases(cfg, 60, np.random.default_rng(100 + j)), seed=j)
