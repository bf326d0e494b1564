"""Tests of the float reference optimisers (lnsmadam.golden.optim).

Two kinds of checks:

* Parity with PyTorch.  Madam, LNS-Madam and Fromage are re-expressed below in torch ops in
  their authors' code order; Adam and SGD are ``torch.optim.Adam``/``SGD`` themselves
  (``foreach=False``).  Every check runs >= 200 steps on random tensors with zeros in the
  weights and gradients and compares float32 bit patterns.  PyTorch's own ``sqrt``/``exp``
  of float32 tensors go through MKL and are not correctly rounded (see the golden module
  docstring), so the bit-exact runs route those calls through float64 (correctly rounded
  after the final float32 rounding); the runs with unmodified torch assert the documented
  bounds instead (SGD, Fromage and default LNS-Madam are bit-exact even then).
* Hand-computed single steps of the behaviours the hardware relies on.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from lnsmadam.golden import optim as O

F32 = np.float32
STEPS = 250
SHAPES = [(16, 64), (16,), (10, 16), (10,), (3, 5, 7), (1,), (13,)]


def bits(a) -> np.ndarray:
    return np.asarray(a, F32).view(np.int32)


def assert_bits_equal(ours, ref, what=""):
    ours = np.asarray(ours, F32)
    ref = np.asarray(ref, F32)
    assert ours.shape == ref.shape
    if not np.array_equal(bits(ours), bits(ref)):
        bad = np.nonzero(bits(ours).ravel() != bits(ref).ravel())[0]
        i = bad[0]
        raise AssertionError(f"{what}: {bad.size} elements differ, first at {i}: "
                             f"{ours.ravel()[i]!r} vs {ref.ravel()[i]!r}")


def ulp_distance(a, b) -> np.ndarray:
    """Distance in float32 units in the last place (monotone integer mapping)."""
    def key(x):
        i = np.asarray(x, F32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return np.abs(key(a) - key(b))


# ---------------------------------------------------------------------------------------
# torch helpers
# ---------------------------------------------------------------------------------------

class CorrectlyRounded:
    """Transcendentals evaluated in float64 by torch, then rounded to float32."""

    @staticmethod
    def sqrt(t):
        return torch.sqrt(t.double()).float()

    @staticmethod
    def exp(t):
        return torch.exp(t.double()).float()

    @staticmethod
    def pow2(t):
        return torch.pow(2.0, t.double()).float()


class Native:
    """The calls exactly as the authors wrote them."""

    sqrt = staticmethod(torch.sqrt)
    exp = staticmethod(torch.exp)

    @staticmethod
    def pow2(t):
        return 2.0 ** t


def torch_madam_normed(p, g, state, *, p_scale, g_bound, ops):
    """The state and clamped, normalised gradient that jxbz/madam madam.py, int_madam.py and
    lns-madam lns_madam.py share, in the authors' order."""
    if len(state) == 0:
        state["max"] = p_scale * ops.sqrt((p * p).mean()).item()
        state["step"] = 0
        state["exp_avg_sq"] = torch.zeros_like(p)
    state["step"] += 1
    bias_correction = 1 - 0.999 ** state["step"]
    state["exp_avg_sq"] = 0.999 * state["exp_avg_sq"] + 0.001 * g ** 2
    g_normed = g / ops.sqrt(state["exp_avg_sq"] / bias_correction)
    g_normed[torch.isnan(g_normed)] = 0
    g_normed.clamp_(-g_bound, g_bound)
    return g_normed


def torch_madam_step(params, grads, states, *, lr, p_scale, g_bound, ops,
                     rounded=False, wd=None):
    """jxbz/madam madam.py (rounded=False) or lns-madam lns_madam.py (rounded=True)."""
    for p, g, state in zip(params, grads, states):
        if g is None:
            continue
        g_normed = torch_madam_normed(p, g, state, p_scale=p_scale, g_bound=g_bound, ops=ops)
        if not rounded:
            p *= ops.exp(-lr * g_normed * torch.sign(p))
        else:
            g_normed.round_()
            if wd is not None:
                p *= ops.exp(-lr * g_normed * torch.sign(p) - lr * wd)
            else:
                p *= ops.pow2(-lr * g_normed * torch.sign(p))
        p.clamp_(-state["max"], state["max"])


def torch_int_madam_step(params, grads, states, codes, *, base_lr, lr_factor, levels, p_scale,
                         g_bound, ops):
    """jxbz/madam int_madam.py; ``codes[i]`` is tensor i's ``randint_like`` draw, made beforehand
    (:func:`torch_codes`) so that the golden optimiser can be given the same codes."""
    for p, g, state, c in zip(params, grads, states, codes):
        if g is None:
            continue
        fresh = len(state) == 0
        g_normed = torch_madam_normed(p, g, state, p_scale=p_scale, g_bound=g_bound, ops=ops)
        if fresh:
            state["integer"] = c.clone()
        rounded = torch.round(g_normed * lr_factor) * torch.sign(p)
        state["integer"] = (state["integer"] + rounded).clamp_(0, levels - 1)
        p.data = torch.sign(p) * state["max"] * ops.exp(-base_lr * state["integer"])


def torch_codes(seed, levels, shapes=SHAPES):
    """The authors' initial codes: ``torch.randint_like(p, low=0, high=levels-1)`` (float32)."""
    torch.manual_seed(seed)
    return [torch.randint_like(torch.zeros(s), low=0, high=levels - 1) for s in shapes]


def torch_fromage_step(params, grads, states, *, lr, p_bound):
    """jxbz/fromage fromage.py (the deprecated ``add_(scalar, tensor)`` written with alpha=)."""
    for p, g, state in zip(params, grads, states):
        if g is None:
            continue
        if len(state) == 0 and p_bound is not None:
            state["max"] = p_bound * p.norm().item()
        d_p_norm = g.norm()
        p_norm = p.norm()
        if p_norm > 0.0 and d_p_norm > 0.0:
            p.add_(g * (p_norm / d_p_norm), alpha=-lr)
        else:
            p.add_(g, alpha=-lr)
        p /= math.sqrt(1 + lr ** 2)
        if p_bound is not None:
            p_norm = p.norm().item()
            if p_norm > state["max"]:
                p *= state["max"] / p_norm


# ---------------------------------------------------------------------------------------
# random trajectories
# ---------------------------------------------------------------------------------------

def random_params(rng, shapes=SHAPES):
    params = []
    for s in shapes:
        w = (rng.standard_normal(s) * 0.2).astype(F32)
        w[rng.random(s) < 0.1] = 0
        params.append(w)
    return params


def random_grads(rng, params, allow_none=True):
    grads = []
    for p in params:
        if allow_none and rng.random() < 0.05:
            grads.append(None)
            continue
        g = (rng.standard_normal(p.shape) * 10.0 ** rng.uniform(-5, 2)).astype(F32)
        g[rng.random(p.shape) < 0.1] = 0
        if rng.random() < 0.05:
            g[...] = 0
        grads.append(g)
    return grads


def run_pair(seed, golden_opt, torch_step, steps=STEPS, shapes=SHAPES):
    """Run golden and torch side by side; yield (step, golden params, torch params)."""
    rng = np.random.default_rng(seed)
    ours = random_params(rng, shapes)
    theirs = [torch.from_numpy(p.copy()) for p in ours]
    for t in range(steps):
        grads = random_grads(rng, ours)
        golden_opt.step(ours, grads)
        torch_step(theirs, [None if g is None else torch.from_numpy(g.copy()) for g in grads])
        yield t, ours, [p.numpy() for p in theirs]


# ---------------------------------------------------------------------------------------
# primitives against torch
# ---------------------------------------------------------------------------------------

SIZES = list(range(1, 40)) + [63, 64, 65, 100, 160, 255, 256, 257, 1000, 1024, 4099]


@pytest.mark.parametrize("n", SIZES)
def test_reductions_match_torch(n):
    rng = np.random.default_rng(n)
    for _ in range(10):
        x = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3)).astype(F32)
        x[rng.random(n) < 0.2] = 0
        t = torch.from_numpy(x)
        assert_bits_equal(O.sum32(x), t.sum().numpy(), "sum")
        assert_bits_equal(O.mean32(x), t.mean().numpy(), "mean")
        assert_bits_equal(O.norm32(x), t.norm().numpy(), "norm")
        assert_bits_equal(O.mean32(x * x), (t * t).mean().numpy(), "mean of squares")


def test_reductions_of_matrices_and_signed_zero():
    rng = np.random.default_rng(1)
    for shape in [(16, 64), (10, 16), (3, 5, 7)]:
        x = rng.standard_normal(shape).astype(F32)
        t = torch.from_numpy(x)
        assert_bits_equal(O.sum32(x), t.sum().numpy())
        assert_bits_equal(O.norm32(x), t.norm().numpy())
    z = -np.zeros(9, F32)
    assert_bits_equal(O.sum32(z), torch.from_numpy(z).sum().numpy(), "sum of -0")


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1024])
def test_fused_elementwise_ops_match_torch(n):
    rng = np.random.default_rng(100 + n)
    for _ in range(20):
        a, b, c = (rng.standard_normal(n).astype(F32) for _ in range(3))
        d = np.abs(rng.standard_normal(n)).astype(F32) + F32(1e-3)
        ta, tb, tc, td = (torch.from_numpy(x.copy()) for x in (a, b, c, d))
        alpha = float(rng.uniform(-1, 1))
        assert_bits_equal(O.add_alpha32(a, b, alpha), ta.clone().add_(tb, alpha=alpha), "add")
        assert_bits_equal(O.addcmul32(a, b, c, alpha), ta.clone().addcmul_(tb, tc, value=alpha))
        assert_bits_equal(O.addcdiv32(a, b, d, alpha), ta.clone().addcdiv_(tb, td, value=alpha))
        for w in (0.1, 1 - 0.9, 0.3, 0.5, 0.7, 1 - 0.3):
            assert_bits_equal(O.lerp32(a, b, w), ta.clone().lerp_(tb, w), f"lerp {w}")
    # scalar-tensor rounding: Python floats meet float32 tensors as float32
    x = rng.standard_normal(n).astype(F32)
    tx = torch.from_numpy(x)
    bc = 1 - 0.999 ** 7
    assert_bits_equal(x / F32(bc), (tx / bc).numpy())
    assert_bits_equal(F32(0.999) * x, (0.999 * tx).numpy())


def round_f32(q: Fraction) -> F32:
    """Correctly rounded (ties to even) float32 of an exact rational."""
    f = F32(float(q))
    best = None
    for c in (np.nextafter(f, F32(-np.inf)), f, np.nextafter(f, F32(np.inf))):
        key = (abs(Fraction(float(c)) - q), int(np.asarray(c).view(np.int32)) & 1)
        if best is None or key < best[0]:
            best = (key, c)
    return best[1]


def test_fma32_is_single_rounding():
    one = F32(1 + 2 ** -12)
    # 1 + 2**-11 + 2**-24 is a float32 midpoint; a tiny addend must break the tie upwards
    assert O.fma32(one, one, F32(2 ** -60)) == F32(1 + 2 ** -11 + 2 ** -23)
    assert O.fma32(one, one, F32(0)) == F32(1 + 2 ** -11)
    assert O.fma32(one, one, F32(-2 ** -60)) == F32(1 + 2 ** -11)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 100000)).astype(F32)
    c = (rng.standard_normal(100000) * 10.0 ** rng.integers(-45, 5, 100000)).astype(F32)
    exact = [round_f32(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
             for x, y, z in zip(a[:3000], b[:3000], c[:3000])]
    assert_bits_equal(O.fma32(a, b, c)[:3000], np.array(exact, F32))
    assert O.fma32(a, b, c).dtype == F32


def test_transcendentals_are_correctly_rounded():
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 0.5, 100000).astype(F32)
    for ours, ref in ((O.exp32, np.exp), (O.exp2_32, np.exp2)):
        y = ours(x)
        exact = ref(x.astype(np.longdouble))
        err = np.abs((y.astype(np.longdouble) - exact) / np.spacing(y).astype(np.longdouble))
        assert err.max() <= 0.5 + 1e-6
    v = np.abs(rng.standard_normal(1000)).astype(F32)
    assert_bits_equal(O.sqrt32(v), torch.sqrt(torch.from_numpy(v).double()).float())


# ---------------------------------------------------------------------------------------
# Madam
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,kw", [(0, {}), (1, dict(lr=0.03, p_scale=1.5, g_bound=2.0)),
                                     (2, dict(lr=0.2, p_scale=20.0))])
def test_madam_bit_exact_vs_torch(seed, kw):
    full = dict(lr=0.01, p_scale=3.0, g_bound=10.0) | kw
    states = [{} for _ in SHAPES]
    opt = O.Madam(**kw)
    step = lambda ps, gs: torch_madam_step(ps, gs, states, ops=CorrectlyRounded, **full)
    for t, ours, theirs in run_pair(seed, opt, step):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bits_equal(a, b, f"step {t} tensor {i}")
    for st_ours, st_torch in zip(opt.state, states):
        if st_torch:
            assert st_ours["max"] == st_torch["max"] and st_ours["step"] == st_torch["step"]
            assert_bits_equal(st_ours["exp_avg_sq"], st_torch["exp_avg_sq"].numpy())


def test_madam_vs_unmodified_torch_within_bound():
    """torch's MKL exp/sqrt are within 1 ulp of correct rounding; the drift stays small.

    Per step the golden and torch multiplicative factors differ by at most ~2 ulp (exp
    rounding plus the effect of a 1-ulp sqrt difference on the exponent), so after T steps
    the weights differ by at most ~2T ulp; the bound asserted is 2 ulp per step.  ``max``
    (sigma*) itself may differ by one ulp through the sqrt.
    """
    states = [{} for _ in SHAPES]
    opt = O.Madam()
    step = lambda ps, gs: torch_madam_step(ps, gs, states, ops=Native, lr=0.01, p_scale=3.0,
                                           g_bound=10.0)
    worst = 0
    for t, ours, theirs in run_pair(10, opt, step):
        for a, b in zip(ours, theirs):
            d = int(ulp_distance(a, b).max())
            worst = max(worst, d)
            assert d <= 2 * (t + 1)
            assert np.array_equal(a == 0, b == 0)
    print(f"Madam vs unmodified torch: max {worst} ulp after {STEPS} steps")


def unit_v_state(opt, g_values, step=10 ** 6):
    """Give tensor 0 a state in which the next update has v / bc == 1 exactly, so gn == g.

    With ``step`` huge, ``bc = 1 - 0.999**(step+1)`` rounds to float32 1.0; ``v0`` is
    searched per element so that ``0.999 * v0 + 0.001 * g**2`` rounds to exactly 1.0.
    """
    g = np.asarray(g_values, F32)
    v0 = np.empty_like(g)
    for i, gi in enumerate(g):
        cand = F32((1 - 0.001 * float(gi) ** 2) / 0.999)
        for _ in range(1000):
            v = F32(0.999) * cand + F32(0.001) * (gi * gi)
            if v == 1:
                break
            cand = np.nextafter(cand, F32(np.inf) if v < 1 else F32(-np.inf))
        else:  # pragma: no cover
            raise AssertionError("no v0 found")
        v0[i] = cand
    assert F32(1 - 0.999 ** (step + 1)) == 1
    opt.state = [{"max": 1e30, "step": step, "exp_avg_sq": v0}]
    return g


def test_madam_first_step_is_sign_step_in_log_space():
    rng = np.random.default_rng(4)
    w = (rng.standard_normal(200) * 0.3).astype(F32)
    g = (rng.standard_normal(200) * 10.0 ** rng.uniform(-6, 3, 200)).astype(F32)
    w0 = w.copy()
    O.Madam(lr=0.01, p_scale=1e6).step([w], [g])
    ratio = np.log(w.astype(np.float64) / w0)
    expect = -0.01 * np.sign(g) * np.sign(w0)
    assert np.allclose(ratio, expect, rtol=1e-5, atol=0)


def test_madam_zero_gradient_leaves_weights_unchanged():
    w = np.array([0.5, -0.25, 0.125, -1.0], F32)
    opt = O.Madam(p_scale=100.0)
    opt.step([w], [np.array([1.0, -2.0, 0.5, 3.0], F32)])      # now v > 0
    before = w.copy()
    opt.step([w], [np.zeros(4, F32)])                           # gn = 0 / sqrt(v) = 0
    assert_bits_equal(w, before)
    fresh = np.array([0.5, -0.25], F32)
    opt2 = O.Madam()
    opt2.step([fresh], [np.zeros(2, F32)])                      # v == 0: 0/0 = NaN -> 0
    assert_bits_equal(fresh, np.array([0.5, -0.25], F32))
    assert opt2.state[0]["step"] == 1


def test_madam_zero_weight_stays_zero():
    rng = np.random.default_rng(5)
    w = np.array([0.0, 0.3, -0.0, -0.2], F32)
    opt = O.Madam(p_scale=10.0)
    for _ in range(100):
        opt.step([w], [rng.standard_normal(4).astype(F32)])
        assert w[0] == 0 and w[2] == 0


def test_madam_gradient_bound_clamps_normalised_gradient():
    opt = O.Madam(lr=0.01, g_bound=10.0)
    g = unit_v_state(opt, [50.0, -50.0, 3.0])       # gn == g exactly
    w = np.array([0.5, 0.5, 0.5], F32)
    opt.step([w], [g])
    expect = F32(0.5) * O.exp32(F32(-0.01) * np.array([10.0, -10.0, 3.0], F32))
    assert_bits_equal(w, expect)


def test_madam_sigma_star_clamp_pins_weights():
    w = np.array([0.1, -0.2, 0.3, -0.4, 0.0], F32)
    opt = O.Madam(lr=0.05, p_scale=1.2)
    sigma = 1.2 * float(np.sqrt(np.mean(w.astype(np.float64) ** 2)))
    for _ in range(300):                              # gradient pushes |w| up
        opt.step([w], [-np.sign(w).astype(F32)])
    m = F32(opt.state[0]["max"])
    assert math.isclose(opt.state[0]["max"], sigma, rel_tol=1e-6)
    assert_bits_equal(w, np.array([m, -m, m, -m, 0], F32))


# ---------------------------------------------------------------------------------------
# LNS-Madam (float)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,kw", [(0, {}), (1, dict(lr=0.01, p_scale=20.0)),
                                     (2, dict(wd=0.5)), (3, dict(lr=0.03, g_bound=4.0, wd=0.0))])
def test_lns_madam_bit_exact_vs_torch(seed, kw):
    full = dict(lr=1 / 128, p_scale=3.0, g_bound=10.0, wd=None) | kw
    states = [{} for _ in SHAPES]
    opt = O.LNSMadamFloat(**kw)
    step = lambda ps, gs: torch_madam_step(ps, gs, states, ops=CorrectlyRounded, rounded=True,
                                           **full)
    for t, ours, theirs in run_pair(seed, opt, step):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bits_equal(a, b, f"step {t} tensor {i}")


def test_lns_madam_default_bit_exact_vs_unmodified_torch():
    """lr = 1/128: every 2**(k/128) torch produces is correctly rounded, and rounding gn to
    an integer absorbs the sqrt differences unless gn is within an ulp of a half-integer.
    The only other inexact ingredient is sigma* (sqrt), so sigma* is taken from torch."""
    states = [{} for _ in SHAPES]
    opt = O.LNSMadamFloat()
    step = lambda ps, gs: torch_madam_step(ps, gs, states, ops=Native, rounded=True,
                                           lr=1 / 128, p_scale=3.0, g_bound=10.0)
    for t, ours, theirs in run_pair(11, opt, step):
        if t == 0:
            for st_ours, st_torch in zip(opt.state, states):
                if st_torch:
                    assert abs(F32(st_ours["max"]) - F32(st_torch["max"])) <= np.spacing(
                        F32(st_torch["max"]))
                    st_ours["max"] = st_torch["max"]
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bits_equal(a, b, f"step {t} tensor {i}")


def test_lns_madam_first_step_is_one_lr_octave():
    rng = np.random.default_rng(6)
    w = (rng.standard_normal(300) * 0.3).astype(F32)
    w[:5] = 0
    g = (rng.standard_normal(300) * 10.0 ** rng.uniform(-6, 3, 300)).astype(F32)
    w0 = w.copy()
    O.LNSMadamFloat(p_scale=1e6).step([w], [g])
    k = -np.sign(g) * np.sign(w0)                               # +-1, 0 for zero weights
    expect = w0 * O.exp2_32((k / 128).astype(F32))
    assert_bits_equal(w, expect)
    assert np.all(w[:5] == 0)
    nz = w0 != 0
    assert np.allclose(np.log2(w[nz].astype(np.float64) / w0[nz]), k[nz] / 128, rtol=0, atol=1e-6)


def test_lns_madam_rounding_dead_zone_and_ties():
    opt = O.LNSMadamFloat()
    targets = [0.25, 0.49, 0.5, -0.5, 1.5, -1.5, 2.5, 0.51]
    g = unit_v_state(opt, targets)
    w = np.full(len(targets), 0.75, F32)
    opt.step([w], [g])
    k = np.array([0, 0, 0, 0, 2, -2, 2, 1], F32)                  # round half to even
    assert_bits_equal(w, F32(0.75) * O.exp2_32(F32(-1 / 128) * k))
    assert np.all(w[:4] == F32(0.75))


def test_lns_madam_weight_decay_uses_base_e():
    lr, wd = 1 / 128, 0.5
    w = np.array([0.5, -0.5, 0.25], F32)
    opt = O.LNSMadamFloat(lr=lr, wd=wd, p_scale=100.0)
    opt.step([w], [np.zeros(3, F32)])                               # gn = 0: decay only
    expect = np.array([0.5, -0.5, 0.25], F32) * O.exp32(np.full(3, -F32(lr * wd), F32))
    assert_bits_equal(w, expect)
    base2 = np.array([0.5, -0.5, 0.25], F32) * O.exp2_32(np.full(3, -F32(lr * wd), F32))
    assert not np.array_equal(w, base2)
    assert math.isclose(float(w[0]), 0.5 * math.exp(-lr * wd), rel_tol=1e-6)


# ---------------------------------------------------------------------------------------
# IntegerMadam
# ---------------------------------------------------------------------------------------

INT_MADAM_CASES = [
    (0, {}),                                                    # the authors' defaults
    (1, dict(base_lr=0.005, lr_factor=16, levels=1024, p_scale=20.0)),
    (2, dict(base_lr=0.02, lr_factor=2.5, levels=64, g_bound=4.0)),     # clamps at both ends
    (3, dict(lr_factor=1, levels=2)),
]


def int_madam_pair(seed, kw, ops):
    full = dict(base_lr=0.001, lr_factor=10, levels=4096, p_scale=3.0, g_bound=10.0) | kw
    codes = torch_codes(seed, full["levels"])
    states = [{} for _ in SHAPES]
    opt = O.IntegerMadam(**kw, init_codes=[c.numpy() for c in codes])
    seen = {}

    def step(ps, gs):
        seen["grads"] = [None if g is None else g.numpy() for g in gs]
        torch_int_madam_step(ps, gs, states, codes, ops=ops, **full)
    return opt, states, run_pair(seed, opt, step), full, seen


@pytest.mark.parametrize("seed,kw", INT_MADAM_CASES)
def test_int_madam_bit_exact_vs_torch(seed, kw):
    opt, states, pairs, full, _ = int_madam_pair(seed, kw, CorrectlyRounded)
    hit_floor = hit_top = False
    for t, ours, theirs in pairs:
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bits_equal(a, b, f"step {t} tensor {i}")
        for st_ours, st_torch in zip(opt.state, states):
            if st_torch:
                assert np.array_equal(st_ours["integer"], st_torch["integer"].numpy())
                hit_floor |= bool(np.any(st_ours["integer"] == 0))
                hit_top |= bool(np.any(st_ours["integer"] == full["levels"] - 1))
    for st_ours, st_torch in zip(opt.state, states):
        if st_torch:
            assert st_ours["max"] == st_torch["max"] and st_ours["step"] == st_torch["step"]
            assert_bits_equal(st_ours["exp_avg_sq"], st_torch["exp_avg_sq"].numpy())
    assert hit_floor and hit_top or full["levels"] > 64        # small grids reach both clamps


def test_int_madam_vs_unmodified_torch():
    """MKL's exp/sqrt: every code matches except where lr_factor * gn is within an ulp of a
    half-integer (those are re-synchronised after the check), the weights stay within
    2 ulp (one ulp of exp, then the product with sigma*) and never drift: each step
    recomputes them from the codes.  sigma* (through sqrt) is taken from torch."""
    opt, states, pairs, full, seen = int_madam_pair(12, {}, Native)
    worst, near_ties = 0, 0
    for t, ours, theirs in pairs:
        for i, (st_ours, st_torch) in enumerate(zip(opt.state, states)):
            if not st_torch:
                continue
            if st_ours["step"] == 1:
                assert abs(F32(st_ours["max"]) - F32(st_torch["max"])) <= np.spacing(
                    F32(st_torch["max"]))
                if st_ours["max"] != st_torch["max"]:           # resync sigma* and W
                    st_ours["max"] = st_torch["max"]
                    ours[i][...] = theirs[i]
                    continue
            n_ours, n_torch = st_ours["integer"], st_torch["integer"].numpy()
            diff = n_ours != n_torch
            if diff.any():
                # this step's |lr_factor * gn| (float64) must be a near-tie where they differ
                v = st_ours["exp_avg_sq"].astype(np.float64)
                bc = 1 - 0.999 ** st_ours["step"]
                with np.errstate(divide="ignore", invalid="ignore"):
                    z = np.abs(full["lr_factor"] * seen["grads"][i] / np.sqrt(v / bc))
                assert np.all(np.abs(z[diff] - np.floor(z[diff]) - 0.5) < 1e-4)
                assert np.all(np.abs(n_ours[diff] - n_torch[diff]) == 1)
                near_ties += int(diff.sum())
                n_ours[diff] = n_torch[diff]
                ours[i][...] = theirs[i]
                continue
            d = int(ulp_distance(ours[i], theirs[i]).max())
            worst = max(worst, d)
            assert d <= 2
    print(f"IntegerMadam vs unmodified torch: max {worst} ulp, {near_ties} near-tie codes")


def test_int_madam_round_half_to_even_and_dead_zone():
    opt = O.IntegerMadam(lr_factor=4)
    targets = [0.125, 0.375, 0.625, -0.875, -0.125, 0.1, 0.51 / 4]
    g = unit_v_state(opt, targets)                      # gn == g exactly
    opt.state[0]["max"] = 0.5
    opt.state[0]["integer"] = np.full(len(targets), 100, np.int64)
    w = np.full(len(targets), 0.3, F32)
    opt.step([w], [g])
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -3.5 -> -4, -0.5 -> 0, 0.4 -> 0, 0.51 -> 1
    n = np.array([100, 102, 102, 96, 100, 100, 101])
    assert np.array_equal(opt.state[0]["integer"], n)
    assert_bits_equal(w, F32(0.5) * O.exp32(F32(-0.001) * n.astype(F32)))
    # a tie made in float32: f32(0.05) * 10 is 0.5000000075, which rounds to 0.5 in float32
    opt = O.IntegerMadam()
    g = unit_v_state(opt, [0.05, -0.05, 0.25, 0.85, 0.15])
    # 8.50000024 exactly, a tie once rounded to float32: half to even gives 8, not 9
    assert F32(0.85) * F32(10) == F32(8.5) and float(F32(0.85)) * 10 > 8.5
    opt.state[0]["max"] = 1.0
    opt.state[0]["integer"] = np.full(5, 7, np.int64)
    w = np.array([1.0, -1.0, 1.0, 1.0, 1.0], F32)
    opt.step([w], [g])
    assert np.array_equal(opt.state[0]["integer"], [7, 7, 9, 15, 9])   # 0.5 0.5 2.5 8.5 1.5


def test_int_madam_code_clamps():
    levels = 8
    opt = O.IntegerMadam(base_lr=0.1, lr_factor=1, levels=levels)
    g = unit_v_state(opt, [-1.0, 1.0, 2.0, -2.0, 4.0, -3.0, 50.0, 0.0])
    opt.state[0]["max"] = 2.0
    opt.state[0]["integer"] = np.array([0, 0, 7, 7, 3, 3, 0, 5], np.int64)
    w = np.array([1, -1, 1, -1, 1, 1, 1, -1], F32)
    opt.step([w], [g])
    # below 0 and above 7 clamp; 3+4 and 3-3 land on the ends exactly; 50 -> g_bound 10 -> 7
    n = np.array([0, 0, 7, 7, 7, 0, 7, 5])
    assert np.array_equal(opt.state[0]["integer"], n)
    expect = np.sign(w) * F32(2.0) * O.exp32(F32(-0.1) * n.astype(F32))
    assert_bits_equal(w, expect)
    assert w[0] == F32(2.0) and w[1] == F32(-2.0)           # code 0 is sigma* exactly
    # a step far beyond the grid (lr_factor * g_bound = 2**24) still just clamps
    big = O.IntegerMadam(lr_factor=2 ** 10, g_bound=2 ** 14, levels=4)
    g = unit_v_state(big, [2.0 ** 14, -2.0 ** 14])
    big.state[0]["max"] = 1.0
    big.state[0]["integer"] = np.array([1, 2], np.int64)
    w = np.array([1, 1], F32)
    big.step([w], [g])
    assert np.array_equal(big.state[0]["integer"], [3, 0])


def test_int_madam_first_step_replaces_magnitudes_and_keeps_zeros():
    rng = np.random.default_rng(9)
    w = (rng.standard_normal(50) * 0.3).astype(F32)
    w[:3] = 0
    w0 = w.copy()
    codes = rng.integers(0, 4095, 50)
    g = (rng.standard_normal(50)).astype(F32)
    opt = O.IntegerMadam(init_codes=[codes])
    opt.step([w], [g])
    sigma = 3.0 * float(O.sqrt32(O.mean32(w0 * w0)))
    assert opt.state[0]["max"] == sigma
    # first step: |gn| = 1 for every non-zero gradient, so the code moves by 10 * sign
    n = np.where(w0 == 0, codes, np.clip(codes + 10 * np.sign(g) * np.sign(w0), 0, 4095))
    assert np.array_equal(opt.state[0]["integer"], n)
    assert_bits_equal(w, np.sign(w0) * F32(sigma) * O.exp32(F32(-0.001) * n.astype(F32)))
    assert np.all(w[:3] == 0)
    for _ in range(20):
        opt.step([w], [rng.standard_normal(50).astype(F32)])
        assert np.all(w[:3] == 0) and np.array_equal(opt.state[0]["integer"][:3], codes[:3])


def test_int_madam_default_codes():
    a = [np.ones((64, 64), F32), np.ones(64, F32)]
    g = [np.ones((64, 64), F32), np.ones(64, F32)]
    opt = O.IntegerMadam(levels=4, lr_factor=1e-9)          # steps round to 0: codes stay
    opt.step([x.copy() for x in a], g)
    c0, c1 = opt.state[0]["integer"], opt.state[1]["integer"]
    # the authors' distribution: uniform on [0, levels - 2] (randint's high is exclusive)
    assert set(np.unique(c0)) == {0, 1, 2}
    assert np.all(np.abs(np.bincount(c0.ravel()) / c0.size - 1 / 3) < 0.03)
    assert np.array_equal(c0, np.random.default_rng((0, 0)).integers(0, 3, (64, 64)))
    assert np.array_equal(c1, np.random.default_rng((0, 1)).integers(0, 3, 64))
    again = O.IntegerMadam(levels=4, lr_factor=1e-9)
    again.step([x.copy() for x in a], g)
    assert np.array_equal(again.state[0]["integer"], c0)
    other = O.IntegerMadam(levels=4, lr_factor=1e-9, seed=1)
    other.step([x.copy() for x in a], g)
    assert not np.array_equal(other.state[0]["integer"], c0)
    # given codes for one tensor, drawn ones for the other
    mixed = O.IntegerMadam(levels=4, lr_factor=1e-9, init_codes=[None, np.full(64, 3)])
    mixed.step([x.copy() for x in a], g)
    assert np.array_equal(mixed.state[0]["integer"], c0)
    assert np.all(mixed.state[1]["integer"] == 3)


def test_int_madam_init_codes_checked_against_the_tensors():
    w = [np.ones(4, F32), np.ones(3, F32)]
    g = [np.ones(4, F32), np.ones(3, F32)]
    with pytest.raises(ValueError, match=r"init_codes\[1\] has shape \(2,\), params\[1\] \(3,\)"):
        O.IntegerMadam(init_codes=[np.zeros(4), np.zeros(2)]).step(w, g)
    with pytest.raises(ValueError, match="init_codes has 1 entries, but 2 tensors"):
        O.IntegerMadam(init_codes=[np.zeros(4)]).step(w, g)
    opt = O.IntegerMadam(init_codes=[torch.tensor([1.0, 2.0, 3.0, 4.0]), None])  # torch codes
    opt.step(w, g)
    assert opt.state[0]["integer"].tolist() == [11, 12, 13, 14]


# ---------------------------------------------------------------------------------------
# Fromage
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,kw", [(0, {}), (1, dict(lr=0.1)), (2, dict(p_bound=1.0)),
                                     (3, dict(lr=0.05, p_bound=2.0))])
def test_fromage_bit_exact_vs_unmodified_torch(seed, kw):
    """No transcendental on tensors: bit-exact against the authors' torch code as is."""
    full = dict(lr=0.01, p_bound=None) | kw
    states = [{} for _ in SHAPES]
    opt = O.Fromage(**kw)
    step = lambda ps, gs: torch_fromage_step(ps, gs, states, **full)
    for t, ours, theirs in run_pair(seed, opt, step):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bits_equal(a, b, f"step {t} tensor {i}")


def test_fromage_relative_step_is_lr_for_orthogonal_gradient():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((16, 64)).astype(F32)
    g = rng.standard_normal((16, 64))
    g -= w * (np.sum(g * w) / np.sum(w.astype(np.float64) ** 2))    # <g, w> = 0
    g = (g * 1e-3).astype(F32)
    w0 = w.copy()
    O.Fromage(lr=0.01).step([w], [g])
    rel = np.linalg.norm(w.astype(np.float64) - w0) / np.linalg.norm(w0.astype(np.float64))
    assert rel == pytest.approx(0.01, rel=1e-3)
    assert np.linalg.norm(w.astype(np.float64)) == pytest.approx(
        np.linalg.norm(w0.astype(np.float64)), rel=1e-5)


def test_fromage_zero_weight_takes_plain_sgd_step_then_normal():
    lr = 0.01
    w = np.zeros(5, F32)
    g = np.array([1.0, -2.0, 0.0, 4.0, 0.5], F32)
    opt = O.Fromage(lr=lr)
    opt.step([w], [g])
    assert_bits_equal(w, O.add_alpha32(np.zeros(5, F32), g, -lr) / F32(math.sqrt(1 + lr ** 2)))
    w1 = w.copy()
    g2 = np.array([0.3, 0.1, -0.2, 0.0, 1.0], F32)
    opt.step([w], [g2])
    scale = F32(O.norm32(w1) / O.norm32(g2))
    assert_bits_equal(w, O.add_alpha32(w1, g2 * scale, -lr) / F32(math.sqrt(1 + lr ** 2)))


def test_fromage_p_bound_limits_norm():
    rng = np.random.default_rng(8)
    w = rng.standard_normal(100).astype(F32)
    n0 = float(O.norm32(w))
    opt = O.Fromage(lr=0.1, p_bound=1.0)
    for _ in range(50):
        opt.step([w], [-w.copy()])               # grows the norm by (1+lr)/sqrt(1+lr^2)
        assert float(O.norm32(w)) <= n0 * (1 + 1e-6)
    assert float(O.norm32(w)) == pytest.approx(n0, rel=1e-5)
    free = rng.standard_normal(100).astype(F32)
    m0 = float(O.norm32(free))
    opt2 = O.Fromage(lr=0.1)
    for _ in range(50):
        opt2.step([free], [-free.copy()])
    assert float(O.norm32(free)) > 1.5 * m0


# ---------------------------------------------------------------------------------------
# Adam and SGD against torch.optim
# ---------------------------------------------------------------------------------------

def torch_optim_stepper(cls, **kw):
    holder = {}

    def step(ps, gs):
        if "opt" not in holder:
            for p in ps:
                p.requires_grad_(False)
            holder["opt"] = cls(ps, foreach=False, **kw)
        for p, g in zip(ps, gs):
            p.grad = g
        holder["opt"].step()
    return step


ADAM_CASES = [(0, {}), (1, dict(lr=3e-3)), (2, dict(lr=1e-2, betas=(0.3, 0.99), eps=1e-6)),
              (3, dict(weight_decay=0.01))]


@pytest.mark.parametrize("seed,kw", ADAM_CASES)
def test_adam_bit_exact_vs_torch_optim(seed, kw, monkeypatch):
    """torch.optim.Adam itself, with Tensor.sqrt correctly rounded (float64 detour)."""
    monkeypatch.setattr(torch.Tensor, "sqrt", lambda self: torch.sqrt(self.double()).float())
    opt = O.Adam(**kw)
    step = torch_optim_stepper(torch.optim.Adam, **kw)
    for t, ours, theirs in run_pair(seed, opt, step):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bits_equal(a, b, f"step {t} tensor {i}")


def test_adam_vs_unmodified_torch_optim_within_bound():
    """MKL's sqrt is off by <= 1 ulp, which changes each update by a relative ~2**-23.

    Per step the difference is at most ~1 ulp of the update plus 1 ulp of the weight, so
    the asserted bound is |dW| <= (t+1) * (lr * 2**-20 + ulp(|W|max))."""
    lr = 1e-3
    opt = O.Adam(lr=lr)
    step = torch_optim_stepper(torch.optim.Adam, lr=lr)
    worst = 0.0
    for t, ours, theirs in run_pair(12, opt, step):
        for a, b in zip(ours, theirs):
            d = float(np.max(np.abs(a.astype(np.float64) - b)))
            bound = (t + 1) * (lr * 2 ** -20 + float(np.spacing(np.max(np.abs(b)))))
            assert d <= bound
            worst = max(worst, d)
    print(f"Adam vs unmodified torch.optim.Adam: max |dW| {worst:.3g}")


SGD_CASES = [(0, {}), (1, dict(lr=0.1, momentum=0.9)), (2, dict(lr=0.03, momentum=0.5,
             dampening=0.1)), (3, dict(lr=0.01, momentum=0.9, nesterov=True)),
             (4, dict(lr=0.05, weight_decay=1e-3, momentum=0.8))]


@pytest.mark.parametrize("seed,kw", SGD_CASES)
def test_sgd_bit_exact_vs_unmodified_torch_optim(seed, kw):
    opt = O.SGD(**kw)
    step = torch_optim_stepper(torch.optim.SGD, **({"lr": 0.01} | kw))
    for t, ours, theirs in run_pair(seed, opt, step):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bits_equal(a, b, f"step {t} tensor {i}")


def test_adam_first_step_is_lr_sized_sign_step():
    w = np.array([1.0, -1.0, 0.5, 0.0], F32)
    g = np.array([0.3, -2.0, 1e-3, 5.0], F32)
    O.Adam(lr=0.01).step([w], [g])
    assert np.allclose(w, np.array([1.0, -1.0, 0.5, 0.0]) - 0.01 * np.sign(g), rtol=0, atol=1e-6)


def test_sgd_hand_computed():
    w = np.array([1.0, -2.0, 0.0], F32)
    g = np.array([0.5, 0.25, -1.0], F32)
    opt = O.SGD(lr=0.5, momentum=0.5)
    opt.step([w], [g])                             # buf = g
    assert_bits_equal(w, np.array([0.75, -2.125, 0.5], F32))
    opt.step([w], [g])                             # buf = 0.5 g + g = 1.5 g
    assert_bits_equal(w, np.array([0.375, -2.3125, 1.25], F32))
    assert_bits_equal(opt.state[0]["momentum_buffer"], 1.5 * g)


# ---------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------

def test_none_gradient_skips_tensor_and_creates_no_state():
    for name in O.OPTIMIZERS:
        a = np.array([0.5, -0.5], F32)
        b = np.array([0.25, 0.75], F32)
        opt = O.make_optimizer(name)
        opt.step([a, b], [None, np.array([1.0, -1.0], F32)])
        assert_bits_equal(a, np.array([0.5, -0.5], F32))
        assert opt.state[0] == {}
        assert not np.array_equal(b, np.array([0.25, 0.75], F32))
        sd = opt.state_dict()
        assert sd["name"] == name and len(sd["state"]) == 2


def test_registry():
    assert set(O.OPTIMIZERS) == {"madam", "lns-madam-float", "int-madam", "fromage", "adam",
                                 "sgd"}
    assert isinstance(O.make_optimizer("int-madam", base_lr=0.002), O.IntegerMadam)
    assert isinstance(O.make_optimizer("lns-madam-float", lr=1 / 64), O.LNSMadamFloat)
    assert O.make_optimizer("adam", lr=3e-3).lr == 3e-3
    with pytest.raises(ValueError, match="optimizer"):
        O.make_optimizer("adagrad")


@pytest.mark.parametrize("cls,kw,param", [
    (O.Madam, dict(lr=-1), "lr"), (O.Madam, dict(lr=0), "lr"),
    (O.Madam, dict(p_scale=0), "p_scale"), (O.Madam, dict(g_bound=-2), "g_bound"),
    (O.Madam, dict(lr=float("nan")), "lr"), (O.Madam, dict(lr="0.1"), "lr"),
    (O.LNSMadamFloat, dict(lr=-1 / 128), "lr"), (O.LNSMadamFloat, dict(wd=-0.1), "wd"),
    (O.LNSMadamFloat, dict(g_bound=0), "g_bound"),
    (O.Fromage, dict(lr=0), "lr"), (O.Fromage, dict(p_bound=-1.0), "p_bound"),
    (O.Adam, dict(lr=-1e-3), "lr"), (O.Adam, dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (O.Adam, dict(betas=(0.9, -0.1)), r"betas\[1\]"), (O.Adam, dict(betas=0.9), "betas"),
    (O.Adam, dict(eps=-1e-8), "eps"), (O.Adam, dict(weight_decay=-1), "weight_decay"),
    (O.SGD, dict(lr=0), "lr"), (O.SGD, dict(momentum=-0.5), "momentum"),
    (O.SGD, dict(dampening=2), "dampening"), (O.SGD, dict(weight_decay=-1), "weight_decay"),
    (O.SGD, dict(nesterov=True), "nesterov"),
    (O.IntegerMadam, dict(base_lr=0), "base_lr"), (O.IntegerMadam, dict(lr_factor=-1), "lr_factor"),
    (O.IntegerMadam, dict(levels=1), r"levels must be an integer in \[2, 16777216\]"),
    (O.IntegerMadam, dict(levels=2 ** 24 + 1), "levels"),
    (O.IntegerMadam, dict(levels=4096.0), "levels"), (O.IntegerMadam, dict(levels=True), "levels"),
    (O.IntegerMadam, dict(p_scale=0), "p_scale"), (O.IntegerMadam, dict(g_bound=-1), "g_bound"),
    (O.IntegerMadam, dict(lr_factor=1e6, g_bound=100), r"lr_factor \* g_bound must be <="),
    (O.IntegerMadam, dict(seed=-1), "seed"), (O.IntegerMadam, dict(seed=1.5), "seed"),
    (O.IntegerMadam, dict(init_codes=np.zeros(3)), "init_codes must be None or a list"),
    (O.IntegerMadam, dict(init_codes=[np.array([0.5])]), r"init_codes\[0\].*not all integers"),
    (O.IntegerMadam, dict(levels=16, init_codes=[np.array([16])]), r"\[0, levels - 1 = 15\]"),
    (O.IntegerMadam, dict(init_codes=[np.array([-1])]), r"init_codes\[0\]"),
    (O.IntegerMadam, dict(init_codes=[None, np.array([np.nan])]), r"init_codes\[1\]"),
    (O.IntegerMadam, dict(init_codes=[np.array([])]), r"init_codes\[0\]"),
    (O.IntegerMadam, dict(init_codes=["abc"]), r"init_codes\[0\]"),
])
def test_bad_arguments_raise_value_error(cls, kw, param):
    with pytest.raises(ValueError, match=param):
        cls(**kw)


def test_error_message_names_range():
    with pytest.raises(ValueError, match=r"lr must be > 0, got -1"):
        O.Madam(lr=-1)


def test_step_argument_checks():
    opt = O.SGD()
    w = np.zeros(3, F32)
    with pytest.raises(ValueError):
        opt.step([w], [])
    with pytest.raises(ValueError):
        opt.step([w], [np.zeros(4, F32)])
    with pytest.raises(TypeError):
        opt.step([np.zeros(3)], [np.zeros(3)])
    opt.step([w], [np.ones(3, F32)])
    with pytest.raises(ValueError):
        opt.step([w, w], [None, None])
