"""golden/trainer.py: the trainer's run control against train_lns and its refusals."""
from types import SimpleNamespace

import numpy as np

from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
from lnsmadam.golden.trainer import DeviceTrainer


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, size=(n, 64)) / 16.0, rng.integers(0, 10, size=n)


def test_epochs_match_train_lns():
    """START(2) at epoch_base 0 is train_lns' two epochs: counts, weights and steps."""
    cfg, seed = MLPConfig(), 4
    x, y = _data(30)
    dev = DeviceTrainer(LNSMLP(cfg, seed), x, y, max_records=30)
    dev.n_train, dev.n_test = 24, 6
    counts = dev.start(2, 1, seed)
    data = SimpleNamespace(x_train=x[:24], y_train=y[:24], x_test=x[24:], y_test=y[24:])
    ref = train_lns(cfg, data, 2, seed)
    assert counts == [round(h["train_acc"] * 24) for h in ref["history"]]
    assert (dev.steps, dev.epoch, dev.last_correct, dev.error) == (48, 2, counts[-1], 0)
    assert dev.evaluate() == dev.last_correct == round(ref["history"][-1]["test_acc"] * 6)
    for a, b in zip(dev.model.u + dev.model.v, ref["model"].u + ref["model"].v):
        assert np.array_equal(a, b)


def test_epoch_base_and_lr_step_change_the_run():
    cfg, seed = MLPConfig(), 1
    x, y = _data(20, 1)
    runs = []
    for base, lr in [(0, 1), (0, 1), (5, 1), (0, 3)]:
        dev = DeviceTrainer(LNSMLP(cfg, seed), x, y, max_records=20, epoch_base=base)
        dev.n_train = 20
        dev.start(1, lr, seed)
        runs.append(np.concatenate([u.ravel() for u in dev.model.u]))
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2]) and not np.array_equal(runs[0], runs[3])


def test_refused_commands_change_nothing():
    cfg = MLPConfig()
    x, y = _data(10, 2)
    dev = DeviceTrainer(LNSMLP(cfg, 0), x, y, max_records=10)
    u0 = [u.copy() for u in dev.model.u + dev.model.v]
    assert dev.start(1, 1, 0) == [] and dev.error == 1            # n_train = 0
    dev.n_train, dev.n_test = 8, 3                                 # 11 > 10 records
    assert dev.start(1, 1, 0) == [] and dev.evaluate() == -1 and dev.error == 1
    dev.n_test = 2
    for epochs, lr in [(0, 1), (1, 0), (1, 65)]:
        assert dev.start(epochs, lr, 0) == [] and dev.error == 1
    assert all(np.array_equal(a, b) for a, b in zip(u0, dev.model.u + dev.model.v)) and dev.steps == 0
    dev.n_test = 0
    assert dev.evaluate() == -1 and dev.error == 1
    dev.start(1, 1, 0)
    assert dev.error == 0 and dev.steps == 8
    dev.write_weights()
    assert dev.steps == 0
