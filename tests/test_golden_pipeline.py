"""golden/pipeline.py: the exact schedule against LNSMLP.step, the pipelined schedule against
a slow reference written from the contract's wording (docs/protocol.md §8), fill/drain
corners, the staleness itself, and the label rule of LNSMLP.step/gradients."""
from types import SimpleNamespace

import numpy as np
import pytest

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
from lnsmadam.golden.pipeline import train_samples
from lnsmadam.golden.shuffle import epoch_order
from lnsmadam.golden.update import MadamConfig, madam_step

# one hidden layer, none, two, three; the 6-bit format; bias correction (its per-sample
# exponent must follow the sample into the pending update)
CASES = [((6, 4, 3), {}), ((7, 3), {}), ((5, 4, 3, 3), {}), ((5, 4, 4, 3, 3), {}),
         ((6, 5, 4), {"fmt": LNSFormat.from_gamma(6, 4)}),
         ((6, 4, 3), {"madam": MadamConfig(bias_correction=True)})]


def _cfg(sizes, kw):
    return MLPConfig(sizes=sizes, **kw)


def _samples(n, sizes, seed, bad=()):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, size=(n, sizes[0])) / 16.0
    y = rng.integers(0, sizes[-1], size=n)
    return x, y


def _state(m):
    return [a.copy() for a in m.u + m.v] + [m.bc.B, m.steps]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


def _run(model, x, y, mode):
    return list(train_samples(model, ((model.input_codes(xi), int(yi)) for xi, yi in zip(x, y)),
                              mode))


def reference_pipelined(model, x, y):
    """The contract's pipelined epoch, step by step, from LNSMLP.gradients and madam_step
    only: in step k stage A applies the pending layer-0 update of sample k-2 and forwards
    sample k (we keep the U_0 it read); stage B finishes sample k-1 from those weights.
    Returns the predictions and the U_0 each forward read."""
    n, md = len(x), model.cfg.madam
    pending, read, preds = [], {}, []
    for k in range(n + 1):
        if k < n:
            if k >= 2:
                j, g, bc = pending.pop(0)
                assert j == k - 2
                model.u[0], model.v[0], _ = madam_step(model.u[0], model.v[0], g.codes, g.bias,
                                                       model.e_clamp[0], md, bc)
            read[k] = model.u[0].copy()
        if k >= 1:
            j = k - 1
            now, model.u[0] = model.u[0], read[j]      # the forward ran on these weights
            pred, grads = model.gradients(x[j], int(y[j]))
            model.u[0] = now
            bc = model.bc.step()
            for l in range(1, len(model.u)):
                model.u[l], model.v[l], _ = madam_step(model.u[l], model.v[l], grads[l].codes,
                                                       grads[l].bias, model.e_clamp[l], md, bc)
            model.steps += 1
            pending.append((j, grads[0], bc))
            preds.append(pred)
    for _, g, bc in pending:                           # the drain, in sample order
        model.u[0], model.v[0], _ = madam_step(model.u[0], model.v[0], g.codes, g.bias,
                                               model.e_clamp[0], md, bc)
    return preds, read


@pytest.mark.parametrize("sizes,kw", CASES)
def test_exact_schedule_is_lnsmlp_step(sizes, kw):
    cfg = _cfg(sizes, kw)
    x, y = _samples(9, sizes, 1)
    a, b = LNSMLP(cfg, 3), LNSMLP(cfg, 3)
    preds = _run(a, x, y, "exact")
    assert preds == [b.step(xi, int(yi)) for xi, yi in zip(x, y)]
    assert _same(_state(a), _state(b))


@pytest.mark.parametrize("sizes,kw", CASES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 9])
def test_pipelined_matches_reference(sizes, kw, n):
    cfg = _cfg(sizes, kw)
    x, y = _samples(n, sizes, n + 7)
    a, b = LNSMLP(cfg, 5), LNSMLP(cfg, 5)
    assert _run(a, x, y, "pipelined") == reference_pipelined(b, x, y)[0]
    assert _same(_state(a), _state(b))


def test_pipelined_differs_from_exact_but_not_for_one_sample():
    """Fill/drain: one sample has nothing stale; sample 1's layer-0 forward already lacks
    sample 0's update."""
    cfg = MLPConfig(sizes=(6, 4, 3))
    x, y = _samples(6, cfg.sizes, 2)
    for n, same in [(1, True), (2, False), (6, False)]:
        a, b = LNSMLP(cfg, 1), LNSMLP(cfg, 1)
        _run(a, x[:n], y[:n], "pipelined")
        _run(b, x[:n], y[:n], "exact")
        assert _same(_state(a), _state(b)) is same, n


def test_layer0_forward_is_one_sample_stale():
    """The U_0 that layer 0's forward of sample k reads has the layer-0 updates of samples
    0..k-2 and lacks sample k-1's: it is the final U_0 of a run over the first k-1 samples
    (which drains them all), and not that of a run over the first k."""
    cfg = MLPConfig(sizes=(6, 4, 3))
    x, y = _samples(8, cfg.sizes, 4)
    model = LNSMLP(cfg, 2)
    read = []
    fwd = model.layer_forward

    def spy(l, a):
        if l == 0:
            read.append(model.u[0].copy())
        return fwd(l, a)

    model.layer_forward = spy
    _run(model, x, y, "pipelined")
    assert len(read) == 8
    assert np.array_equal(read[0], LNSMLP(cfg, 2).u[0])
    for k in range(2, 8):
        upto = []
        for m in (k - 1, k):
            ref = LNSMLP(cfg, 2)
            _run(ref, x[:m], y[:m], "pipelined")
            upto.append(ref.u[0])
        assert np.array_equal(read[k], upto[0]), k
        assert not np.array_equal(read[k], upto[1]), k
    assert np.array_equal(read[1], read[0])        # sample 0's update waits for step 2


def test_stopping_the_feed_finishes_what_was_taken():
    """A schedule whose feed ends early (STOP) is the schedule of the samples it took."""
    cfg = MLPConfig(sizes=(5, 4, 3, 3))
    x, y = _samples(7, cfg.sizes, 9)
    for mode in ("exact", "pipelined"):
        for m in range(8):
            taken = []

            def feed(model):
                for xi, yi in zip(x[:m], y[:m]):
                    taken.append(1)
                    yield model.input_codes(xi), int(yi)

            a, b = LNSMLP(cfg, 0), LNSMLP(cfg, 0)
            assert len(list(train_samples(a, feed(a), mode))) == m == len(taken)
            _run(b, x[:m], y[:m], mode)
            assert _same(_state(a), _state(b))


def test_train_lns_pipelined_epochs():
    """train_lns(mode='pipelined'): every epoch fills and drains on its own."""
    cfg = MLPConfig(sizes=(6, 4, 3))
    x, y = _samples(14, cfg.sizes, 3)
    data = SimpleNamespace(x_train=x[:10], y_train=y[:10], x_test=x[10:], y_test=y[10:])
    r = train_lns(cfg, data, 3, seed=6, mode="pipelined")
    ref = LNSMLP(cfg, 6)
    for ep in range(3):
        o = epoch_order(10, 6, ep)
        preds, _ = reference_pipelined(ref, x[o], y[o])
        assert r["history"][ep]["train_acc"] == np.mean(np.array(preds) == y[o])
    assert _same(_state(r["model"]), _state(ref))
    assert r["history"][-1]["test_acc"] == np.mean(ref.predict(x[10:]) == y[10:])
    exact = train_lns(cfg, data, 3, seed=6)
    assert not _same(_state(exact["model"]), _state(ref))
    with pytest.raises(ValueError, match="mode must be one of exact, pipelined"):
        train_lns(cfg, data, 1, seed=0, mode="fast")
    with pytest.raises(ValueError, match="updater"):
        train_lns(cfg, data, 1, seed=0, mode="pipelined", updater=lambda m, g: None)


@pytest.mark.parametrize("label", [-1, 3, 65535, 1.0, True, "1", None, np.float64(2)])
def test_label_rule(label):
    """step/gradients refuse a label outside 0..n_out-1 (or not an integer) before anything
    changes: today's step(x, -1) trained toward the last class."""
    cfg = MLPConfig(sizes=(6, 4, 3))
    x, _ = _samples(1, cfg.sizes, 0)
    m = LNSMLP(cfg, 0)
    before = _state(m)
    for call in (lambda: m.step(x[0], label), lambda: m.gradients(x[0], label),
                 lambda: list(train_samples(m, [(m.input_codes(x[0]), label)], "pipelined"))):
        with pytest.raises(ValueError, match=r"label must be an integer in 0\.\.2, got"):
            call()
    assert _same(_state(m), before)
    assert m.step(x[0], np.int64(2)) in (0, 1, 2)
    with pytest.raises(ValueError, match="mode must be one of"):
        list(train_samples(m, [], "fast"))
