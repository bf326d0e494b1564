"""Tests of the FP32 baseline MLP (golden/baseline.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lnsmadam.golden.baseline import FloatMLP, train_float
from lnsmadam.golden.seeded import init_mlp
from lnsmadam.golden.data import load_digits_split

#: Test accuracy the short Adam run (3 epochs, lr 3e-3, 64-16-10) must exceed.
SHORT_RUN_MIN_TEST_ACC = 0.85


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(0)


def test_train_float_he_init(digits):
    r = train_float("sgd", {"lr": 0.01}, (64, 8, 8, 10), epochs=1, seed=2, data=digits, init="he")
    assert r["config"]["init"] == "he"
    start = FloatMLP((64, 8, 8, 10), init=init_mlp((64, 8, 8, 10), 2, "he"))
    ref = train_float("sgd", {"lr": 0.01}, (64, 8, 8, 10), epochs=0, seed=2, data=digits,
                      init="he")["model"]
    assert all(np.array_equal(a, b) for a, b in zip(ref.params, start.params))
    with pytest.raises(ValueError, match=r"init must be one of \['he', 'torch'\]"):
        train_float("sgd", {}, (64, 4, 10), epochs=1, seed=0, data=digits, init="xavier")


def test_params_layout_matches_nn_linear():
    model = FloatMLP((64, 16, 10), seed=0)
    assert [p.shape for p in model.params] == [(16, 64), (16,), (10, 16), (10,)]
    lin = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    assert [tuple(p.shape) for p in lin.parameters()] == [p.shape for p in model.params]


@pytest.mark.parametrize("sizes,batch", [((64, 16, 10), 1), ((64, 16, 10), 5), ((7, 5, 4, 3), 3)])
def test_backward_matches_finite_differences(sizes, batch):
    rng = np.random.default_rng(1)
    model = FloatMLP(sizes, seed=2, dtype=np.float64)
    x = rng.uniform(0, 1, (batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch)
    loss, grads, _ = model.loss_and_grads(x, y)
    h = 1e-6
    for p, g in zip(model.params, grads):
        assert g.shape == p.shape
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 25), replace=False):
            old = flat[i]
            flat[i] = old + h
            lp = model.loss_and_grads(x, y)[0]
            flat[i] = old - h
            lm = model.loss_and_grads(x, y)[0]
            flat[i] = old
            num = (lp - lm) / (2 * h)
            assert abs(num - gflat[i]) <= 1e-6 * max(1.0, abs(num)), (i, num, gflat[i])


def test_float32_gradients_match_torch_autograd():
    rng = np.random.default_rng(4)
    model = FloatMLP((64, 16, 10), seed=5)
    x = rng.uniform(0, 1, (4, 64)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    loss, grads, _ = model.loss_and_grads(x, y)
    ps = [torch.tensor(p, requires_grad=True) for p in model.params]
    h = torch.relu(torch.from_numpy(x) @ ps[0].T + ps[1])
    tl = torch.nn.functional.cross_entropy(h @ ps[2].T + ps[3], torch.from_numpy(y))
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-5)
    for g, p in zip(grads, ps):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_training_is_deterministic_for_a_seed(digits):
    small = type("D", (), dict(x_train=digits.x_train[:300], y_train=digits.y_train[:300],
                               x_test=digits.x_test, y_test=digits.y_test))
    for name in ("adam", "madam", "fromage"):
        a = train_float(name, {}, (64, 16, 10), 2, 7, small)
        b = train_float(name, {}, (64, 16, 10), 2, 7, small)
        strip = lambda h: [{k: v for k, v in m.items() if k != "seconds"} for m in h]
        assert strip(a["history"]) == strip(b["history"])
        for p, q in zip(a["model"].params, b["model"].params):
            assert np.array_equal(p.view(np.int32), q.view(np.int32))
    c = train_float("adam", {}, (64, 16, 10), 2, 8, small)
    assert not np.array_equal(c["model"].params[0], a["model"].params[0])


def test_short_adam_run_learns_digits(digits):
    seen = []
    t0 = time.perf_counter()
    r = train_float("adam", {"lr": 3e-3}, (64, 16, 10), 3, 0, digits,
                    callback=lambda ep, m: seen.append((ep, m["test_acc"])))
    elapsed = time.perf_counter() - t0
    hist = r["history"]
    assert [m["epoch"] for m in hist] == [1, 2, 3] and [e for e, _ in seen] == [1, 2, 3]
    assert hist[-1]["test_acc"] > SHORT_RUN_MIN_TEST_ACC
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert set(hist[0]) >= {"train_loss", "train_acc", "test_loss", "test_acc",
                            "running_loss", "running_acc", "seconds"}
    print(f"3 Adam epochs: test acc {hist[-1]['test_acc']:.4f}, {elapsed:.2f} s")


def test_quantizer_hook_is_applied_after_every_step(digits):
    small = type("D", (), dict(x_train=digits.x_train[:50], y_train=digits.y_train[:50],
                               x_test=digits.x_test[:20], y_test=digits.y_test[:20]))
    calls = []

    def q(i, p):
        calls.append(i)
        return np.round(p * 64) / 64                  # a fixed-point grid

    r = train_float("sgd", {"lr": 0.05}, (64, 16, 10), 1, 0, small, quantizer=q)
    assert calls == [0, 1, 2, 3] * 50
    for p in r["model"].params:
        assert p.dtype == np.float32 and np.array_equal(p, np.round(p * 64) / 64)


def test_minibatch_and_argument_checks(digits):
    small = type("D", (), dict(x_train=digits.x_train[:64], y_train=digits.y_train[:64],
                               x_test=digits.x_test[:20], y_test=digits.y_test[:20]))
    r = train_float("sgd", {"lr": 0.1}, (64, 16, 10), 1, 0, small, batch_size=10)
    assert len(r["history"]) == 1 and r["config"]["batch_size"] == 10
    with pytest.raises(ValueError, match="optimizer"):
        train_float("rmsprop", {}, (64, 16, 10), 1, 0, small)
    with pytest.raises(ValueError, match="batch_size"):
        train_float("sgd", {}, (64, 16, 10), 1, 0, small, batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        train_float("sgd", {"lr": -1}, (64, 16, 10), 1, 0, small)
    with pytest.raises(ValueError, match="x must have shape"):
        FloatMLP().loss_and_grads(np.zeros((1, 63), np.float32), [0])
