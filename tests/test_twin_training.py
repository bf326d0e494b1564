"""The training SoC in its Verilator twin, driven by the host library over the real UART path.

* bit-exactness: after K >= 200 samples the weights and state read back over the link equal
  ``golden/mlp.py`` trained on the same K samples with the same seed, bit for bit;
* a full short training run reaches the golden model's accuracy exactly, epoch by epoch;
* link faults (bit flips, dropped bytes, truncated frames, both directions) are detected
  and retried, the device never executes a corrupted command (``steps`` counts exactly the
  samples of the runs that were asked for), and the final weights are still bit-exact.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from lnsmadam.golden.data import load_digits_split
from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
from lnsmadam.golden.seeded import epoch_order
from lnsmadam.host import session
from lnsmadam.host.device import Device
from lnsmadam.host.faults import FaultyTransport
from lnsmadam.sim.twin import open_twin


@pytest.fixture(scope="module")
def twin():
    tr = open_twin()
    yield tr
    tr.close()


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(0)


def subset(d, n_train, n_test):
    return SimpleNamespace(x_train=d.x_train[:n_train], y_train=d.y_train[:n_train],
                           x_test=d.x_test[:n_test], y_test=d.y_test[:n_test], seed=d.seed)


def golden_after(cfg, data, seed, epochs):
    model = LNSMLP(cfg, seed)
    n = len(data.x_train)
    for ep in range(epochs):
        for i in epoch_order(n, seed, ep):
            model.step(data.x_train[i], int(data.y_train[i]))
    return model


def assert_same_state(dev, model):
    u, v = dev.read_weights()
    for l, (a, b) in enumerate(zip(u, model.u)):
        np.testing.assert_array_equal(a, b, err_msg=f"weights of layer {l}")
    for l, (a, b) in enumerate(zip(v, model.v)):
        np.testing.assert_array_equal(a, b, err_msg=f"state of layer {l}")


def test_bit_exact_after_256_samples(twin, digits):
    cfg, seed = MLPConfig(), 7
    data = subset(digits, 256, 40)
    dev = Device(twin)
    model = LNSMLP(cfg, seed)
    session.prepare(dev, model, data)
    run = session.train(dev, data, 1, seed)
    cycles = run.cycles
    gold = golden_after(cfg, data, seed, 1)
    assert_same_state(dev, gold)
    assert dev.status().steps == 256
    # the accuracy the device counted is golden's running accuracy
    ref = train_lns(cfg, data, 1, seed)["history"][0]
    assert run.history[0] == ref
    # lane-bound ideal of 64-16-10 is 3790 MAC operations per sample; we stay below it
    assert cycles / 256 < 3790


def test_full_run_matches_golden_accuracy(twin, digits):
    cfg, seed = MLPConfig(), 3
    dev = Device(twin)
    model = LNSMLP(cfg, seed)
    session.prepare(dev, model, digits)
    run = session.train(dev, digits, 2, seed)
    ref = train_lns(cfg, digits, 2, seed)
    assert run.history == ref["history"]
    assert_same_state(dev, ref["model"])


def test_link_faults_are_retried_and_never_executed(twin, digits):
    cfg, seed = MLPConfig(), 11
    data = subset(digits, 96, 24)
    # random faults plus a script that makes every kind happen at least once, whatever
    # the number of status polls (which depends on timing)
    script = {("tx", 2): "flip", ("tx", 5): "drop", ("tx", 8): "truncate",
              ("tx", 11): "insert", ("rx", 3): "flip", ("rx", 6): "drop",
              ("rx", 9): "insert", ("rx", 12): "truncate"}
    faulty = FaultyTransport(twin, seed=5, p_flip=2e-4, p_drop=2e-4, p_insert=1e-4,
                             p_truncate=0.02, rx=True, script=script)
    dev = Device(faulty, timeout=0.5, retries=30)
    model = LNSMLP(cfg, seed)
    session.prepare(dev, model, data)
    run = session.train(dev, data, 2, seed)
    gold = golden_after(cfg, data, seed, 2)
    assert_same_state(dev, gold)
    st = dev.status()
    assert st.steps == 2 * 96          # no START executed twice, none from a corrupt frame
    assert run.history == train_lns(cfg, data, 2, seed)["history"]
    assert all(faulty.counts.values()), faulty.counts
    assert dev.stats["retries"] > 0, (faulty.counts, dev.stats)


def test_twin_transport_checks_its_arguments(twin):
    """The twin refuses what every other transport refuses (a str, a negative count, a NaN
    timeout), before anything reaches the model; the link still works afterwards."""
    from lnsmadam.golden.format import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="data must be bytes"):
        twin.write("PING")
    with pytest.raises(ValueError, match="n must be"):
        twin.read(-1, 0.1)
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        twin.read(1, float("nan"))
    assert twin.read(0, 0.0) == b""
    assert Device(twin).identify()
