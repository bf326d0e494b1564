"""bench/tune_lns_variants.py: its stochastic-rounding updater and its reference variant.

No accuracy is asserted: the benchmark measures it. These check that the screened variants
are what the script says they are.
"""

import numpy as np

from lnsmadam.golden.data import load_digits_split
from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
from lnsmadam.golden.update import madam_step


class _ConstRng:
    def __init__(self, u):
        self.u = u

    def random(self, shape):
        return np.full(shape, self.u)


def _one_update(mod, u):
    """Gradients of one sample, then the SR updater with every draw equal to ``u``."""
    data = load_digits_split(0)
    model = LNSMLP(MLPConfig(p_scale=40.0), seed=0)
    _, grads = model.gradients(data.x_train[0], int(data.y_train[0]))
    before = [w.copy() for w in model.u], [v.copy() for v in model.v]
    mod.sr_updater(_ConstRng(u))(model, grads)
    return model, grads, before


def test_sr_updater_keeps_the_golden_state_signs_and_zero_gradients(bench_module):
    mod = bench_module("tune_lns_variants")
    model, grads, (u0, v0) = _one_update(mod, 0.5)
    cfg = model.cfg.madam
    moved = 0
    for l, g in enumerate(grads):
        _, v_ref, _ = madam_step(u0[l], v0[l], g.codes, g.bias, model.e_clamp[l], cfg)
        assert np.array_equal(model.v[l], v_ref)                 # v' is the golden state
        sw0, e0, _ = cfg.weight.split(u0[l])
        sw1, e1, _ = cfg.weight.split(model.u[l])
        assert np.array_equal(sw0, sw1)                          # signs never change
        zg = cfg.grad.split(g.codes)[2]
        assert np.array_equal(e1[zg], e0[zg])                    # ZERO gradient: no move
        moved += int(np.count_nonzero(e1 != e0))
    assert moved > 0


def test_sr_updater_draws_between_floor_and_ceil(bench_module):
    """On a later step (v no longer seeded) u = 0 gives floor(r) and u -> 1 gives ceil(r)."""
    mod = bench_module("tune_lns_variants")
    data = load_digits_split(0)
    model = LNSMLP(MLPConfig(p_scale=40.0), seed=0)
    for i in range(20):
        model.step(data.x_train[i], int(data.y_train[i]))
    _, grads = model.gradients(data.x_train[20], int(data.y_train[20]))
    cfg = model.cfg.madam
    W, G, V = cfg.weight, cfg.grad, cfg.state
    results = []
    for u in (0.0, 1.0 - 1e-12):
        m = LNSMLP(MLPConfig(p_scale=40.0), seed=0)
        m.u, m.v = [w.copy() for w in model.u], [v.copy() for v in model.v]
        mod.sr_updater(_ConstRng(u))(m, grads)
        results.append(m)
    fractional = 0
    for l, g in enumerate(grads):
        _, v_ref, _ = madam_step(model.u[l], model.v[l], g.codes, g.bias, model.e_clamp[l], cfg)
        ratio = np.abs(G.decode(g.codes, g.bias)) / np.sqrt(np.maximum(V.decode(v_ref), 1e-300))
        ratio = np.minimum(ratio, cfg.g_bound)
        _, e0, _ = W.split(model.u[l])
        d = [np.abs(W.split(m.u[l])[1] - e0) for m in results]
        e_clamp = model.e_clamp[l]
        _, eg, zg = G.split(g.codes)
        live = ~zg & ((((eg + g.bias) * 2) >> G.frac_bits) - V.offset >= 1) & (v_ref > 0)
        free = live & (e0 - cfg.g_bound > 1) & (e0 + cfg.g_bound < e_clamp)
        assert np.array_equal(d[0][free], np.floor(ratio[free]).astype(np.int64))
        assert np.array_equal(d[1][free], np.ceil(ratio[free]).astype(np.int64))
        fractional += int(np.count_nonzero(d[1][free] != d[0][free]))
    assert fractional > 0


def test_base_variant_is_the_golden_trainer(bench_module):
    mod = bench_module("tune_lns_variants")
    data = load_digits_split(0)
    hist = mod.run_lns("base", data, 1, 0, 40.0)
    ref = train_lns(MLPConfig(p_scale=40.0), data, 1, 0)["history"]
    # same counts (percentages computed in another order, so compared to 1e-9)
    assert abs(hist[0]["train_acc"] - 100 * ref[0]["train_acc"]) < 1e-9
    assert abs(hist[0]["test_acc"] - 100 * ref[0]["test_acc"]) < 1e-9
