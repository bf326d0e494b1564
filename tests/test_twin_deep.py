"""A deep MLP (four hidden layers) on the training SoC's Verilator twin, bit-exact with golden.

Only public APIs are used (``sim.twin.open_twin``, the host's ``session.prepare``/``train``
and ``Device``), so the test carries over to any trainer behind that protocol: after two short
epochs the accuracies the device counted, the weights and the second-moment state it holds and
its step counter equal ``golden.mlp.train_lns`` on the same samples and seed.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from lnsmadam.golden.data import load_digits_split
from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
from lnsmadam.host import session
from lnsmadam.host.device import Device
from lnsmadam.sim.twin import open_twin, twin_config

SIZES = (64, 32, 32, 32, 32, 10)
N_TRAIN, N_TEST, EPOCHS, SEED = 128, 32, 2, 5


@pytest.fixture(scope="module")
def deep_twin():
    # a data memory of just the samples used keeps the Verilator build small
    tr = open_twin(twin_config(sizes=SIZES, n_records=N_TRAIN + N_TEST))
    yield tr
    tr.close()


def test_deep_mlp_trains_bit_exact_on_the_twin(deep_twin):
    d = load_digits_split(0)
    data = SimpleNamespace(x_train=d.x_train[:N_TRAIN], y_train=d.y_train[:N_TRAIN],
                           x_test=d.x_test[:N_TEST], y_test=d.y_test[:N_TEST], seed=d.seed)
    cfg = MLPConfig(sizes=SIZES)
    dev = Device(deep_twin)
    start = LNSMLP(cfg, SEED)
    ident = session.prepare(dev, start, data)
    assert ident["config"]["soc"]["sizes"] == list(SIZES)
    run = session.train(dev, data, EPOCHS, SEED)
    ref = train_lns(cfg, data, EPOCHS, SEED)
    assert run.history == ref["history"]
    u, v = dev.read_weights()
    gold = ref["model"]
    assert len(u) == len(SIZES) - 1
    for l in range(len(SIZES) - 1):
        np.testing.assert_array_equal(u[l], gold.u[l], err_msg=f"weights of layer {l}")
        np.testing.assert_array_equal(v[l], gold.v[l], err_msg=f"state of layer {l}")
        # every layer, the first included, was updated (the error reached it)
        assert np.mean(u[l] != start.u[l]) > 0.1, f"layer {l} barely moved"
    assert dev.status().steps == EPOCHS * N_TRAIN
