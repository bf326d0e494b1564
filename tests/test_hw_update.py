# amaranth: UnusedElaboratable=no
"""hw/update.py: the streaming LNS-Madam update engine against golden.update.madam_step.

Every update goes through the engine's stream interface (random input gaps and output
backpressure unless a test needs full rate; the handshake rules are checked on every
cycle) and every output -- ``w_new``, ``v_new`` and ``n`` -- is compared bit for bit with
``madam_step`` on the same inputs. The long tests are closed-loop training sequences: the
engine's own outputs are the next step's weights and states, two tensors with their own
``g_bias``/``e_clamp`` alternate (one engine "step" = one tensor), and with bias correction
a :class:`BiasCorrection` register advances once per pair of tensors (one training sample),
as in ``golden/mlp.py``.
"""

from dataclasses import replace

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.update import BiasCorrection, MadamConfig, StateFormat, madam_step
from lnsmadam.hw.update import MadamUpdate, state_layout

DEFAULT = MadamConfig()
BC = MadamConfig(bias_correction=True)
SMALL = MadamConfig(weight=LNSFormat(10, 5, underflow="min"), grad=LNSFormat(6, 2),
                    state=StateFormat(4, 6, -20), beta_k=3, lr_step=3, g_bound=4)


# -- stream harness --------------------------------------------------------------------
class Step:
    """One engine step: a tensor's codes and its side-band inputs."""

    def __init__(self, w, v, g, g_bias, e_clamp, bc_exp=0):
        self.w, self.v, self.g = (np.asarray(x, np.int64) for x in (w, v, g))
        self.g_bias, self.e_clamp, self.bc_exp = int(g_bias), int(e_clamp), int(bc_exp)
        self.out = None                      # (w_new, v_new, n) from the engine

    def golden(self, cfg):
        return madam_step(self.w, self.v, self.g, self.g_bias, self.e_clamp, cfg, self.bc_exp)


def run_steps(dut: MadamUpdate, make_step, seed=0, p_gap=0.0, p_stall=0.0,
              max_cycles=2_000_000, lr_step=None):
    """Stream steps through ``dut``; ``make_step(k, prev)`` returns step ``k`` (or None to
    stop) given the previous :class:`Step` with its outputs filled in.

    The side-band inputs are changed only while the engine is empty (between steps). Input
    gaps and output stalls are drawn with probabilities ``p_gap``/``p_stall``; an offered
    beat is held until taken. Every cycle checks ``i.ready == ~o.valid | o.ready`` and that
    a presented result is held unchanged until taken; the payload carries junk while
    ``valid`` is low. Returns ``(steps, timing)``: the steps with their outputs, and per
    step the cycles in which its weights were accepted and its results taken.
    """
    cfg = dut.cfg
    wb, vb = cfg.weight.bits, cfg.state.bits
    lay = dut.o_stream.payload.shape()
    assert lay["w_new"].offset == 0 and lay["v_new"].offset == wb and lay["n"].offset == wb + vb
    nb = lay["n"].shape.width
    pmask = (1 << dut.i_stream.payload.shape().size) - 1
    rng = np.random.default_rng([seed, 3])
    steps, timing = [], []
    i, o = dut.i_stream, dut.o_stream

    async def bench(ctx):
        cycle = 0
        prev = None
        k = 0
        if lr_step is not None:
            ctx.set(dut.lr_step, lr_step)
        while True:
            st = make_step(k, prev)
            if st is None:
                break
            ctx.set(dut.g_bias, st.g_bias)
            ctx.set(dut.e_clamp, st.e_clamp)
            ctx.set(dut.bc_exp, st.bc_exp)
            words = (st.w | st.v << wb | st.g << (wb + vb)).tolist()
            n = len(words)
            got, acc_t, out_t = [], [], []
            idx, offering, held = 0, False, None
            while len(got) < n:
                if not offering and idx < n and not (p_gap and rng.random() < p_gap):
                    offering = True
                    ctx.set(i.payload.as_value(), words[idx])
                elif not offering:                # junk while idle: must be ignored
                    ctx.set(i.payload.as_value(), int(rng.integers(0, 1 << 62)) & pmask)
                ctx.set(i.valid, int(offering))
                ctx.set(o.ready, int(not (p_stall and rng.random() < p_stall)))
                _, _, iv, ir, ov, orr, op = await ctx.tick().sample(
                    i.valid, i.ready, o.valid, o.ready, o.payload.as_value())
                assert ir == int(not ov or orr), "i_stream.ready must be ~o.valid | o.ready"
                if held is not None:
                    assert ov and op == held, "a presented result changed before it was taken"
                held = op if (ov and not orr) else None
                if iv and ir:
                    idx += 1
                    offering = False
                    acc_t.append(cycle)
                if ov and orr:
                    got.append(op)
                    out_t.append(cycle)
                cycle += 1
                assert cycle < max_cycles, "stream deadlock"
            ctx.set(i.valid, 0)
            got = np.array(got, dtype=np.int64)
            nn = got >> (wb + vb)
            nn = np.where(nn >= 1 << (nb - 1), nn - (1 << nb), nn)
            st.out = (got & ((1 << wb) - 1), (got >> wb) & ((1 << vb) - 1), nn)
            steps.append(st)
            timing.append((acc_t, out_t))
            prev = st
            k += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return steps, timing


def check_steps(cfg, steps):
    """Every output of every step equals madam_step on that step's inputs."""
    for k, st in enumerate(steps):
        want = st.golden(cfg)
        for name, a, b in zip(("w_new", "v_new", "n"), st.out, want):
            bad = np.nonzero(a != b)[0]
            assert not bad.size, (
                f"step {k} {name} mismatch at {bad[:5].tolist()}: engine {a[bad[:5]].tolist()} "
                f"golden {b[bad[:5]].tolist()}; w {st.w[bad[:5]].tolist()} v "
                f"{st.v[bad[:5]].tolist()} g {st.g[bad[:5]].tolist()} g_bias {st.g_bias} "
                f"e_clamp {st.e_clamp} bc_exp {st.bc_exp}")


def one_step(cfg, w, v, g, g_bias, e_clamp=None, bc_exp=0, pipeline=None, **kw):
    """Run a single step through a fresh engine; check it; return (w_new, v_new, n)."""
    dut = MadamUpdate(cfg) if pipeline is None else MadamUpdate(cfg, pipeline=pipeline)
    e_clamp = cfg.weight.emax if e_clamp is None else e_clamp
    st0 = Step(w, v, g, g_bias, e_clamp, bc_exp)
    steps, _ = run_steps(dut, lambda k, prev: st0 if k == 0 else None, **kw)
    check_steps(cfg, steps)
    return tuple(x.tolist() for x in steps[0].out)


# -- hand cases (docs/format.md §7) ------------------------------------------------------
GB = -127                    # gradient tensor bias: max |g| = 1.0 at 8 bits, gamma = 8
NEG, GNEG = 1 << 11, 1 << 7  # sign bits of the weight and the gradient
G8, V17 = DEFAULT.grad, DEFAULT.state


def vcode(value, st=V17):
    e = int(np.floor(np.log2(value)))
    m = int(value / 2.0 ** (e - (st.man_bits - 1)))
    return (e - st.offset) << (st.man_bits - 1) | (m & ((1 << (st.man_bits - 1)) - 1))


def test_documented_first_and_second_step():
    g1, g2 = int(G8.encode(0.01, GB)), int(G8.encode(0.03, GB))
    (w1,), (v1,), (n1,) = one_step(DEFAULT, [2000], [0], [g1], GB)
    assert (g1, w1, n1) == (74, 1999, -1)                 # the seed: a sign step
    (w2,), _, (n2,) = one_step(DEFAULT, [w1], [v1], [g2], GB)
    assert (g2, w2, n2) == (87, 1996, -3)
    # the same first step with bias correction (x_bc = -80 at t = 1)
    bc = BiasCorrection(BC)
    assert bc.step() == -80
    (w1,), (v1,), (n1,) = one_step(BC, [2000], [0], [g1], GB, bc_exp=-80)
    assert (w1, n1) == (1999, -1) and v1 != 0


def test_signs_zero_gradient_and_zero_state():
    g = int(G8.encode(0.01, GB))
    v0 = vcode(1e-4)
    w, v, n = one_step(DEFAULT, [2000, 2000 | NEG, 2000, 1500, 1500, 1500],
                       [0, 0, 0, 0, v0, v0], [g, g, g | GNEG, 0, 0, GNEG], GB)
    assert w[:3] == [1999, 2001 | NEG, 2001] and n[:3] == [-1, 1, 1]
    assert (w[3], v[3], n[3]) == (1500, 0, 0)             # g = 0, v = 0: nothing happens
    assert (w[4], n[4]) == (1500, 0) and 0 < v[4] < v0     # g = 0, v > 0: v decays
    assert (w[5], n[5], v[5]) == (1500, 0, v[4])           # negative ZERO gradient: same


def test_zero_weights_stay_zero():
    g = [int(G8.encode(x, GB)) for x in (0.5, 0.01)]
    w, v, n = one_step(DEFAULT, [0, NEG, 0, NEG], [0, 0, vcode(1e-8), vcode(1e-8)],
                       [g[0], g[1] | GNEG, g[0], g[0] | GNEG], GB)
    assert w == [0, 0, 0, 0] and n == [0, 0, 0, 0]         # canonical ZERO, sign bit cleared
    assert v[0] != 0                                      # the state still updates


@pytest.mark.parametrize("cfg", [DEFAULT, BC, SMALL], ids=["default", "bc", "small"])
def test_clamps_at_g_bound(cfg):
    G, V = cfg.grad, cfg.state
    fb = V.man_bits - 1
    vmin = 1 << fb                                        # smallest non-zero state
    vmax = (1 << V.bits) - 1
    # a large gradient on the smallest state: n = g_bound; a tiny one on the largest: 0
    gb = (G.gamma * (V.emax + V.offset)) // 2 - G.emax    # max |g| near the top of the state
    top = G.emax
    w, v, n = one_step(cfg, [100, 100 | (1 << cfg.weight.exp_bits), 100, 100],
                       [vmin, vmin, vmax, vmax], [top, top, 1, 1 | (1 << G.exp_bits)], gb,
                       bc_exp=0)
    step = cfg.lr_step * n_reach(cfg)
    assert n[0] == -step and n[1] == step
    assert n[2] == 0 and n[3] == 0


def n_reach(cfg) -> int:
    """Largest reachable n: v' >= 2**-k g², so |g|/sqrt(v') <= 2**(k/2) (2.83 at k = 3,
    below SMALL's g_bound of 4; DEFAULT's 32 is clamped to 10)."""
    return min(cfg.g_bound, int(np.floor(2 ** (cfg.beta_k / 2) + 0.5)))


def test_sigma_clamp_floor_and_e_clamp_zero():
    v1 = vcode(1e-6)
    g = int(G8.encode(0.5, GB))
    w, _, n = one_step(DEFAULT, [1500 | NEG, 5, 1, 1504, 1510], [v1] * 5,
                       [g, g, g, g | GNEG, g | GNEG], GB, e_clamp=1505)
    assert w[0] == 1505 | NEG and n[0] == 10              # grows by 10, clamped at sigma*
    assert w[1] == 1 and w[2] == 1                        # shrinks, saturates at E = 1
    assert w[3] == 1505 and w[4] == 1505                  # above the clamp: pulled down
    # e_clamp = 0 (outside the sigma_clamp_field range): golden's clip gives ZERO
    w, _, _ = one_step(DEFAULT, [1500, 7 | NEG], [v1, v1], [g, g], GB, e_clamp=0)
    assert w == [0, 0]


def test_state_saturation_and_underflow():
    V = V17
    # |g| far above the state range: g² saturates, n = g_bound
    w, v, n = one_step(DEFAULT, [1000, 1000], [0, vcode(1.0)], [G8.emax, G8.emax], 200)
    assert v[0] == (1 << V.bits) - 1 and n[0] == -10    # the seed: the largest state
    assert v[1] > vcode(4.0) and n[1] == -10              # 1 + 2**-10 * 2**11.99
    # the EMA of the largest state and a saturated g² stays the largest state
    vmax = (1 << V.bits) - 1
    _, v, _ = one_step(DEFAULT, [1000], [vmax], [G8.emax], 200)
    assert v == [vmax]
    # |g| below it: the gradient counts as ZERO; v decays to 0 from its smallest value
    vmin = 1 << (V.man_bits - 1)
    w, v, n = one_step(DEFAULT, [1000, 1000, 1000], [0, vmin, vcode(1e-3)],
                       [G8.emax, G8.emax, 0], -400)
    assert (w[0], v[0], n[0]) == (1000, 0, 0)
    assert v[1] == 0 and w[1] == 1000
    assert 0 < v[2] < vcode(1e-3)


def test_extreme_side_band_values():
    """Every representable g_bias / bc_exp: the narrow datapath clamps exactly."""
    dut = MadamUpdate(BC)
    lo_b, hi_b = -(1 << (dut.bias_bits - 1)), (1 << (dut.bias_bits - 1)) - 1
    lo_c, hi_c = -(1 << (dut.bc_width - 1)), (1 << (dut.bc_width - 1)) - 1
    rng = np.random.default_rng(5)
    W, G, V = BC.weight, BC.grad, BC.state
    steps = []
    for gb in (lo_b, hi_b, dut.G_LO - 1, dut.G_LO, dut.X_HI, dut.X_HI + 1, dut.U0,
               dut.O0 - G.emax, -1 << 20, 1 << 20):
        for bc in (lo_c, hi_c, 0, -80):
            steps.append(Step(rng.integers(0, W.ncodes, 24), rng.integers(0, 1 << V.bits, 24),
                              rng.integers(0, G.ncodes, 24), gb,
                              int(rng.integers(0, W.emax + 1)), bc))
    got, _ = run_steps(dut, lambda k, prev: steps[k] if k < len(steps) else None, seed=1,
                       p_gap=0.2, p_stall=0.2)
    check_steps(BC, got)


# -- random codes, every pipeline setting ------------------------------------------------
@pytest.mark.parametrize("pipeline", range(8))
def test_every_pipeline_random_codes(pipeline):
    """Uniformly random codes (any state code, any gradient) for each pipeline depth."""
    cfg = [DEFAULT, BC, SMALL][pipeline % 3]
    rng = np.random.default_rng(pipeline)
    W, G, V = cfg.weight, cfg.grad, cfg.state
    dut = MadamUpdate(cfg, pipeline=pipeline)
    assert dut.latency == pipeline + 1
    lo, hi = dut.G_LO - G.emax // 4, dut.X_HI + 8
    steps = [Step(rng.integers(0, W.ncodes, 100), rng.integers(0, 1 << V.bits, 100),
                  rng.integers(0, G.ncodes, 100), rng.integers(lo, hi),
                  rng.integers(0, W.emax + 1), rng.integers(-G.gamma * cfg.bc_bits, 1))
             for _ in range(4)]
    got, _ = run_steps(dut, lambda k, prev: steps[k] if k < len(steps) else None,
                       seed=pipeline, p_gap=0.3, p_stall=0.3)
    check_steps(cfg, got)


@pytest.mark.parametrize("lr_step", [1, 5, 64])
def test_runtime_lr_step(lr_step):
    """``runtime_lr``: the step from the ``lr_step`` port equals golden with that lr_step."""
    rng = np.random.default_rng(lr_step)
    W, G, V = SMALL.weight, SMALL.grad, SMALL.state
    dut = MadamUpdate(SMALL, runtime_lr=True)
    steps = [Step(rng.integers(0, W.ncodes, 200), rng.integers(0, 1 << V.bits, 200),
                  rng.integers(0, G.ncodes, 200), rng.integers(-40, 10), W.emax)
             for _ in range(2)]
    got, _ = run_steps(dut, lambda k, prev: steps[k] if k < len(steps) else None,
                       seed=lr_step, p_gap=0.2, p_stall=0.2, lr_step=lr_step)
    check_steps(replace(SMALL, lr_step=lr_step), got)


# -- the parameter ranges ----------------------------------------------------------------
ODD_CONFIGS = [
    # gamma = 1 gradients, k = 1 with the one guard bit the spec requires (k + guard >= 2,
    # so the renormalising shift is always >= 1)
    (MadamConfig(grad=LNSFormat(5, 0), state=StateFormat(3, 3, -6), beta_k=1, guard_bits=1,
                 bias_correction=True, bc_bits=12), 4),
    (MadamConfig(grad=LNSFormat(5, 0), state=StateFormat(3, 2, -6), beta_k=1, guard_bits=1), 1),
    # the widest sum: 24-bit mantissa, k = 20, 8 guard bits (S has 53 bits)
    (MadamConfig(state=StateFormat(8, 24, -200), beta_k=20, guard_bits=8, bc_bits=40,
                 bias_correction=True), 6),
    # gamma = 16, lr_step and g_bound at their maximum
    (MadamConfig(weight=LNSFormat(16, 10, underflow="min"), grad=LNSFormat(9, 4),
                 state=StateFormat(7, 14, -100), lr_step=64, g_bound=64, beta_k=7), 2),
    # a flushing 4-bit weight format with gamma_U = 1, the smallest state
    (MadamConfig(weight=LNSFormat(4, 0), grad=LNSFormat(3, 0), state=StateFormat(2, 2, 0),
                 beta_k=2, guard_bits=1, g_bound=3), 0),
]


@pytest.mark.parametrize("cfg, pipeline", ODD_CONFIGS,
                         ids=[f"cfg{i}" for i in range(len(ODD_CONFIGS))])
def test_parameter_corners(cfg, pipeline):
    """Configurations at the edges of MadamConfig's ranges, random codes, swept g_bias."""
    rng = np.random.default_rng(pipeline + 100)
    W, G, V = cfg.weight, cfg.grad, cfg.state
    dut = MadamUpdate(cfg, pipeline=pipeline, bias_bits=20)
    gbs = np.linspace(dut.G_LO - 3, dut.X_HI + 3, 8).astype(int)
    steps = [Step(rng.integers(0, W.ncodes, 40), rng.integers(0, 1 << V.bits, 40),
                  rng.integers(0, G.ncodes, 40), gb, rng.integers(0, W.emax + 1),
                  rng.integers(-G.gamma * cfg.bc_bits, 1)) for gb in gbs]
    got, _ = run_steps(dut, lambda k, prev: steps[k] if k < len(steps) else None,
                       seed=pipeline, p_gap=0.2, p_stall=0.2)
    check_steps(cfg, got)


# -- closed-loop training sequences ------------------------------------------------------
class Training:
    """Two weight tensors trained by the engine: each step feeds back its outputs.

    Gradients: a persistent per-weight direction (80 % of the time) so that weights walk to
    their clamps, ZERO gradients, magnitudes concentrated near the tensor's max, and ~15 %
    "dead" weights (a dead ReLU: always a ZERO gradient; their states decay and underflow). The
    tensor bias drifts, with loud phases (g² saturates; the run starts with one) and quiet
    ones (every gradient below the state range). States start at 0 (the seed), random, at
    the smallest and at the largest state.
    """

    PHASES = ["loud"] * 8 + (["normal"] * 16 + ["quiet"] * 8 + ["normal"] * 16 + ["loud"] * 8) * 9

    def __init__(self, cfg: MadamConfig, n_weights: int, n_steps: int, seed: int):
        self.cfg, self.n, self.n_steps = cfg, n_weights, n_steps
        self.rng = rng = np.random.default_rng(seed)
        W, G, V = cfg.weight, cfg.grad, cfg.state
        fb = V.man_bits - 1
        dut = MadamUpdate(cfg)
        self.lo, self.hi = dut.U0 - G.emax, dut.O0            # interesting g_bias range
        self.state = []
        for t in range(2):
            e_clamp = int(rng.integers(W.emax * 3 // 4, W.emax + 1)) if t else W.emax
            e = np.concatenate([rng.integers(1, 12, n_weights // 4),                 # floor
                                e_clamp - rng.integers(0, 12, n_weights // 4),       # sigma*
                                rng.integers(1, e_clamp + 1, n_weights - n_weights // 2)])
            e[rng.random(n_weights) < 0.05] = 0                                      # ZERO
            w = W.join(rng.integers(0, 2, n_weights), e)
            w[(e == 0) & (rng.random(n_weights) < 0.5)] = 1 << W.exp_bits            # -ZERO
            kind = rng.choice(4, n_weights, p=[0.4, 0.3, 0.2, 0.1])
            v = np.select([kind == 0, kind == 1, kind == 2],
                          [0, rng.integers(0, 1 << V.bits, n_weights),
                           (1 << fb) | rng.integers(0, 8, n_weights)],           # bottom
                          (1 << V.bits) - 1)                                      # top
            self.state.append({"w": w, "v": v, "e_clamp": e_clamp,
                               "dir": rng.integers(0, 2, n_weights),
                               "dead": rng.random(n_weights) < 0.15,
                               "gb": int(rng.integers(self.lo, self.hi))})
        self.bc = BiasCorrection(cfg)
        self.bc_exp = 0

    def gradients(self, t):
        rng, G = self.rng, self.cfg.grad
        s = self.state[t]
        sign = np.where(rng.random(self.n) < 0.8, s["dir"], 1 - s["dir"])
        e = G.emax - np.abs(rng.normal(0, G.gamma * 1.5, self.n)).astype(np.int64)
        e = np.where(s["dead"], 0, np.clip(e, 0, G.emax))
        e[rng.random(self.n) < 0.1] = 0
        return G.join(sign, e)

    def __call__(self, k, prev):
        if prev is not None:                             # feed the outputs back
            s = self.state[(k - 1) % 2]
            s["w"], s["v"] = prev.out[0], prev.out[1]
        if k == self.n_steps:
            return None
        t = k % 2
        if t == 0:                                       # one training sample: both tensors
            self.bc_exp = self.bc.step()
        s, rng = self.state[t], self.rng
        s["gb"] = int(np.clip(s["gb"] + rng.integers(-3, 4), self.lo, self.hi))
        gb = {"quiet": self.lo - 40, "loud": self.hi + 10}.get(self.PHASES[k], s["gb"])
        if rng.random() < 0.03:
            s["dir"] = 1 - s["dir"]                      # the gradient turns around
        return Step(s["w"], s["v"], self.gradients(t), gb, s["e_clamp"], self.bc_exp)


def coverage(cfg, steps) -> dict:
    """How often each corner of the step was exercised (from the inputs and outputs)."""
    W, G, V = cfg.weight, cfg.grad, cfg.state
    fb = V.man_bits - 1
    top = cfg.lr_step * n_reach(cfg)
    cov = dict.fromkeys(["n_max", "n_min", "dead_zone", "sigma_clamp", "floor", "zero_weight",
                         "seed", "v_saturated", "v_underflow", "g_over", "g_under",
                         "v_decay_only"], 0)
    for st in steps:
        w_new, v_new, n = st.out
        sw, ew, zw = W.split(st.w)
        _, eg, zg = G.split(st.g)
        ev = st.v >> fb
        xg = eg + st.g_bias
        egs = (2 * xg >> G.frac_bits) - V.offset
        cov["n_max"] += int(np.sum(n == top))
        cov["n_min"] += int(np.sum(n == -top))
        cov["dead_zone"] += int(np.sum(~zg & (n == 0) & ~zw & (egs >= 1)))
        cov["sigma_clamp"] += int(np.sum(~zw & (ew + n > st.e_clamp)))
        cov["floor"] += int(np.sum(~zw & (ew + n < 1)))
        cov["zero_weight"] += int(np.sum(zw & ~zg))
        cov["seed"] += int(np.sum((ev == 0) & ~zg & (egs >= 1)))
        cov["v_saturated"] += int(np.sum(v_new == (1 << V.bits) - 1))
        cov["v_underflow"] += int(np.sum((ev > 0) & (v_new == 0)))
        cov["g_over"] += int(np.sum(~zg & (egs > V.emax)))
        cov["g_under"] += int(np.sum(~zg & (egs < 1)))
        cov["v_decay_only"] += int(np.sum((zg | (egs < 1)) & (ev > 0)))
    return cov


@pytest.mark.parametrize("name, cfg, pipeline, seed", [
    ("default", DEFAULT, None, 1),
    ("bias_correction", BC, 3, 2),
    ("small", SMALL, 0, 3),
])
def test_training_sequences(name, cfg, pipeline, seed):
    """>= 10 000 closed-loop updates per configuration, gaps and backpressure."""
    n_weights, n_steps = 128, 80                         # 10 240 updates
    train = Training(cfg, n_weights, n_steps, seed)
    dut = MadamUpdate(cfg) if pipeline is None else MadamUpdate(cfg, pipeline=pipeline)
    steps, _ = run_steps(dut, train, seed=seed, p_gap=0.25, p_stall=0.3)
    assert sum(len(s.w) for s in steps) >= 10_000
    check_steps(cfg, steps)
    cov = coverage(cfg, steps)
    missing = [k for k, v in cov.items() if v == 0 and not (k == "seed" and cfg.bias_correction)]
    assert not missing, f"the sequence never reached {missing}: {cov}"
    if cfg.bias_correction:
        assert train.bc.t == n_steps // 2 and steps[-1].bc_exp < 0


# -- timing and backpressure -------------------------------------------------------------
@pytest.mark.parametrize("pipeline", [0, 2, 6])
def test_latency_and_full_rate(pipeline):
    """No gaps, no stalls: one weight per cycle, each result exactly ``latency`` later."""
    cfg = SMALL
    rng = np.random.default_rng(pipeline)
    W, G, V = cfg.weight, cfg.grad, cfg.state
    dut = MadamUpdate(cfg, pipeline=pipeline)
    st0 = Step(rng.integers(0, W.ncodes, 50), rng.integers(0, 1 << V.bits, 50),
               rng.integers(0, G.ncodes, 50), -40, W.emax)
    steps, timing = run_steps(dut, lambda k, prev: st0 if k == 0 else None)
    check_steps(cfg, steps)
    acc, out = timing[0]
    assert acc == list(range(50))                        # back to back, no bubble
    assert out == [t + dut.latency for t in acc]


def test_backpressure_holds_everything():
    """Long output stalls: the input is refused, nothing is lost, duplicated or reordered."""
    cfg = DEFAULT
    rng = np.random.default_rng(11)
    W, G, V = cfg.weight, cfg.grad, cfg.state
    steps = [Step(rng.integers(0, W.ncodes, 60), rng.integers(0, 1 << V.bits, 60),
                  rng.integers(0, G.ncodes, 60), -150, W.emax) for _ in range(2)]
    got, timing = run_steps(MadamUpdate(cfg), lambda k, p: steps[k] if k < 2 else None,
                            seed=4, p_gap=0.0, p_stall=0.85)
    check_steps(cfg, got)
    acc, _ = timing[0]
    assert acc[-1] - acc[0] > 2 * len(acc)               # the input really was held back


# -- structure and parameters -------------------------------------------------------------
def test_interfaces():
    dut = MadamUpdate(DEFAULT)
    assert dut.pipeline == 5 and dut.latency == 6
    assert dut.cuts == ("align", "sum", "norm", "z", "n")          # all but "in" and "thr"
    assert MadamUpdate(DEFAULT, pipeline=6).cuts == ("in", "align", "sum", "norm", "z", "n")
    assert MadamUpdate(DEFAULT, pipeline=7).cuts == MadamUpdate.CUTS
    lay = dut.i_stream.payload.shape()
    assert [n for n, _ in lay] == ["w", "v", "g"] and lay.size == 12 + 17 + 8
    out = dut.o_stream.payload.shape()
    assert [n for n, _ in out] == ["w_new", "v_new", "n"]
    assert out["n"].shape.signed and out["n"].shape.width == 5       # -10..10
    assert state_layout(DEFAULT.state).size == 17
    assert len(dut.g_bias) == 32 and dut.g_bias.shape().signed
    assert len(dut.e_clamp) == 11 and len(dut.bc_exp) == 9            # -192 .. 0
    assert MadamUpdate(SMALL, pipeline=2).cuts == ("align", "sum")
    assert MadamUpdate(SMALL, pipeline=0).latency == 1
    text = verilog.convert(MadamUpdate(BC, pipeline=3), name="upd")
    assert "module upd" in text


def test_validation():
    with pytest.raises(ValueError, match="cfg must be a MadamConfig"):
        MadamUpdate(LNSFormat(8, 3))
    with pytest.raises(ValueError, match=r"pipeline must be in \[0, 7\]"):
        MadamUpdate(DEFAULT, pipeline=8)
    with pytest.raises(ValueError, match=r"bias_bits must be in \[2, 48\]"):
        MadamUpdate(DEFAULT, bias_bits=64)
    with pytest.raises(ValueError, match="state must be a StateFormat"):
        state_layout(LNSFormat(8, 3))


def test_gamma_1024_elaborates_and_is_exact():
    """The largest gradient gammas are legal (up to 4096): gamma = 1024 (1,024 midpoint
    comparators) elaborates (its OR tree is balanced: a chain hit Python's recursion limit)
    and equals golden on random weights across the whole g_bias range."""
    cfg = MadamConfig(grad=LNSFormat(12, 10), state=StateFormat(6, 12, -52))
    dut = MadamUpdate(cfg, pipeline=5)
    rng = np.random.default_rng(1024)
    W, G, V = cfg.weight, cfg.grad, cfg.state
    gbs = np.linspace(dut.U0 - G.emax, dut.X_HI, 5).astype(int)
    steps = [Step(rng.integers(0, W.ncodes, 24), rng.integers(0, 1 << V.bits, 24),
                  rng.integers(0, G.ncodes, 24), gb, W.emax) for gb in gbs]
    got, _ = run_steps(dut, lambda k, prev: steps[k] if k < len(steps) else None, seed=3)
    check_steps(cfg, got)
    assert sum(int(np.count_nonzero(st.out[2])) for st in got) > 10   # real steps taken
