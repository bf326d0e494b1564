"""golden/trainer.py: the trainer's run control against train_lns and its refusals."""
from types import SimpleNamespace

import numpy as np
import pytest

from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
from lnsmadam.golden.pipeline import MODES, train_samples
from lnsmadam.golden.shuffle import epoch_order
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


# -- the engine's run control (docs/protocol.md §7-§9) ----------------------------------------
SMALL = MLPConfig(sizes=(6, 4, 3))


def _small(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, size=(n, 6)) / 16.0, rng.integers(0, 3, size=n)


def _trainer(n_train=5, n_test=3, seed=0, mode=0, **kw):
    x, y = _small(n_train + n_test, seed)
    dev = DeviceTrainer(LNSMLP(SMALL, seed), x, y, max_records=n_train + n_test, **kw)
    dev.n_train, dev.n_test, dev.mode = n_train, n_test, mode
    return dev


def _model_state(dev):
    m = dev.model
    return [a.copy() for a in m.u + m.v] + [m.bc.B, dev.steps]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


def _feed(dev, positions, order):
    m = dev.model
    return [(m.input_tensor(dev.codes[order[p]]), int(dev.labels[order[p]])) for p in positions]


def test_pipelined_mode_is_train_lns_pipelined():
    x, y = _small(14, 3)
    dev = DeviceTrainer(LNSMLP(SMALL, 3), x, y, max_records=14)
    dev.n_train, dev.n_test, dev.mode = 10, 4, 1
    counts = dev.start(3, 1, 3)
    data = SimpleNamespace(x_train=x[:10], y_train=y[:10], x_test=x[10:], y_test=y[10:])
    ref = train_lns(SMALL, data, 3, 3, mode="pipelined")
    assert counts == [round(h["train_acc"] * 10) for h in ref["history"]]
    assert _same(dev.model.u + dev.model.v, ref["model"].u + ref["model"].v)
    assert dev.evaluate() == round(ref["history"][-1]["test_acc"] * 4)


@pytest.mark.parametrize("mode", [0, 1])
def test_stop_at_every_sample_and_its_counters(mode):
    """STOP after m samples of a 2-epoch run of 3 samples: the state is that of the samples
    taken (each epoch filled and drained on its own), the counters say where it stopped."""
    n, epochs = 3, 2
    for m in range(n * epochs + 1):
        dev = _trainer(n_train=n, n_test=1, mode=mode)
        counts = dev.start(epochs, 1, 7, stop_after=m)
        ref = _trainer(n_train=n, n_test=1, mode=mode)
        preds = []
        for e in range(epochs):
            order = epoch_order(n, 7, e)
            take = range(min(n, max(0, m - e * n)))
            preds.append([int(p == ref.labels[order[i]]) for i, p in enumerate(
                train_samples(ref.model, _feed(ref, take, order), MODES[mode]))])
        assert _same(dev.model.u + dev.model.v, ref.model.u + ref.model.v), m
        st = dev.status()
        assert (st["state"], st["error"], st["epoch"], st["sample"]) == (0, 0, m // n, m % n)
        assert counts == [sum(p) for p in preds[:m // n]]
        assert st["correct"] == (sum(preds[m // n]) if m < n * epochs else 0)
        assert st["steps"] == dev.model.steps == m
        assert st["last_correct"] == (counts[-1] if counts else 0)


@pytest.mark.parametrize("mode", [0, 1])
def test_stop_while_running_finishes_samples_in_flight(mode):
    """advance/stop as a host sees them: after 3 finished samples the pipelined engine has
    a fourth in stage A, which STOP lets finish; exact mode has none in flight."""
    dev = _trainer(n_train=5, mode=mode)
    assert dev.begin(2, 1, 0)
    assert dev.advance(3) and dev.status()["state"] == 1 and dev.sample == 3
    dev.stop()
    assert dev.status()["state"] == 0 and dev.sample == 3 + mode and dev.steps == 3 + mode
    ref = _trainer(n_train=5, mode=mode)
    ref.start(2, 1, 0, stop_after=3 + mode)
    assert _same(_model_state(dev), _model_state(ref))
    dev.stop()                                              # no effect when idle
    assert dev.sample == 3 + mode


def test_exact_resume_at_every_sample_is_bit_exact():
    """Stopped at (epoch e, sample k), resumed with epoch_base += e, sample_base = k and the
    remaining epochs: weights, state, steps and per-epoch counts equal the uninterrupted run."""
    n, epochs, seed = 4, 3, 2
    whole = _trainer(n_train=n, n_test=2, seed=1, epoch_base=5)
    want = whole.start(epochs, 2, seed)
    for m in range(n * epochs):
        dev = _trainer(n_train=n, n_test=2, seed=1, epoch_base=5)
        counts = dev.start(epochs, 2, seed, stop_after=m)
        e, k, partial = dev.epoch, dev.sample, dev.correct
        dev.epoch_base += e
        dev.sample_base = k
        more = dev.start(epochs - e, 2, seed)
        assert dev.error == 0
        assert counts + [more[0] + partial] + more[1:] == want, m
        assert _same(_model_state(dev), _model_state(whole)), m
        assert dev.evaluate() == whole.evaluate()


def test_sample_base_starts_the_first_epoch_only():
    dev = _trainer(n_train=6)
    dev.sample_base = 4
    dev.start(2, 1, 3, stop_after=3)          # positions 4, 5 of epoch 0, then 0 of epoch 1
    assert (dev.epoch, dev.sample, dev.steps) == (1, 1, 3)
    ref = _trainer(n_train=6)
    o0, o1 = epoch_order(6, 3, 0), epoch_order(6, 3, 1)
    list(train_samples(ref.model, _feed(ref, [4, 5], o0) + _feed(ref, [0], o1), "exact"))
    assert _same(dev.model.u + dev.model.v, ref.model.u + ref.model.v)


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("bad", [3, 65535, -1])
def test_bad_label_stops_the_run(mode, bad):
    """A label >= n_out (or negative) is never trained or counted: the run stops there with
    error 2, sample = its position, the samples before it finished and drained. Here the
    record sits at position 1 of epoch 0, which sample_base 2 skips: epoch 1 reaches it."""
    n, seed = 5, 4
    rec = epoch_order(n, seed, 0)[1]
    pos = int(np.flatnonzero(epoch_order(n, seed, 1) == rec)[0])
    dev = _trainer(n_train=n, n_test=2, mode=mode)
    dev.labels[rec] = bad
    dev.sample_base = 2
    counts = dev.start(3, 1, seed)
    st = dev.status()
    assert (st["error"], st["state"], st["epoch"], st["sample"]) == (2, 0, 1, pos)
    assert st["steps"] == 3 + pos and len(counts) == 1 and st["last_correct"] == counts[0]
    ref = _trainer(n_train=n, n_test=2, mode=mode)
    ref.sample_base = 2
    ref.start(3, 1, seed, stop_after=3 + pos)
    assert _same(_model_state(dev), _model_state(ref))
    assert st["correct"] == ref.status()["correct"]
    dev.labels[rec] = 1                        # the next START clears the error
    dev.start(1, 1, seed)
    assert dev.error == 0
    dev.labels[epoch_order(n, seed, 0)[0]] = bad
    dev.sample_base = 0
    assert dev.start(1, 1, seed) == [] and (dev.error, dev.epoch, dev.sample) == (2, 0, 0)


def test_bad_label_in_evaluation_and_outside_the_run():
    dev = _trainer(n_train=4, n_test=4)
    dev.labels[4 + 2] = 3                      # third test record
    dev.start(1, 1, 0)                         # training never reaches it
    assert dev.error == 0 and dev.epoch == 1
    last = dev.last_correct
    assert dev.evaluate() == -1
    st = dev.status()
    assert (st["error"], st["sample"], st["last_correct"]) == (2, 2, last)
    preds = dev.model.predict(dev.model.cfg.fmt.decode(dev.codes[4:6], -dev.model.cfg.fmt.emax))
    assert st["correct"] == int(np.sum(preds == dev.labels[4:6]))
    assert dev.evaluate(stop_after=1) == -1 and dev.error == 0 and dev.sample == 1
    dev.labels[6] = 0
    assert dev.evaluate() == dev.last_correct and dev.sample == 0


def test_refusals_32_bit_registers_and_modes():
    """error 1 (nothing else changes) for every START/EVALUATE check; n_train/n_test are
    compared as full 32-bit values (0x10001 is not 1), mode bits other than 0 are reserved."""
    dev = _trainer(n_train=3, n_test=2)
    dev.start(1, 1, 0, stop_after=2)
    before = (_model_state(dev), dev.status())
    refusals = [dict(n_train=0x10001), dict(n_train=0xFFFFFFFF, n_test=2),
                dict(n_test=0xFFFFFFFE), dict(sample_base=3), dict(sample_base=0xFFFFFFFF),
                dict(mode=2), dict(mode=3), dict(mode=0x80000000)]
    for regs in refusals:
        saved = {k: getattr(dev, k) for k in regs}
        for k, v in regs.items():
            setattr(dev, k, v)
        assert dev.start(1, 1, 0) == [] and dev.error == 1, regs
        for k, v in saved.items():
            setattr(dev, k, v)
        dev.error = 0
        assert _same(_model_state(dev), before[0]) and dev.status() == before[1]
    for args in [(0, 1, 0), (1, 0, 0), (1, 65, 0)]:
        assert dev.start(*args) == [] and dev.error == 1
    dev.n_test = 0
    assert dev.evaluate() == -1 and dev.error == 1
    dev.n_test = 2
    no_pipe = _trainer(n_train=3, n_test=2, mode=1, pipelined=False)
    assert no_pipe.start(1, 1, 0) == [] and no_pipe.error == 1 and no_pipe.steps == 0
    no_pipe.mode = 0
    assert no_pipe.start(1, 1, 0) != [] and no_pipe.error == 0
    with pytest.raises(ValueError, match=r"register n_train must be an integer in 0\.\.4294967295"):
        dev.n_train = 1 << 32
        dev.start(1, 1, 0)


def test_epoch_base_wraps_at_16_bits_and_steps_at_32():
    a, b = _trainer(n_train=4), _trainer(n_train=4)
    a.epoch_base = 0xFFFF
    a.start(2, 1, 9)
    b.epoch_base = 0xFFFF
    b.start(1, 1, 9)
    b.epoch_base = 0x10000                    # the same shuffle as epoch 0
    b.start(1, 1, 9)
    assert _same(a.model.u + a.model.v, b.model.u + b.model.v)
    a.steps = (1 << 32) - 1
    a.start(1, 1, 9, stop_after=1)
    assert a.status()["steps"] == 0
