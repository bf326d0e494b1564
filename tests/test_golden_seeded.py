"""golden/seeded.py: the initial weights and the sample order every trainer shares."""

import subprocess
import sys

import numpy as np
import pytest

from lnsmadam.golden import shuffle
from lnsmadam.golden.baseline import FloatMLP
from lnsmadam.golden.mlp import LNSMLP, MLPConfig
from lnsmadam.golden.seeded import epoch_order, init_mlp
from lnsmadam.golden.shuffle import N_MAX


def test_init_mlp_distribution_and_determinism():
    layers = init_mlp((64, 16, 10), seed=3)
    assert [(w.shape, b.shape) for w, b in layers] == [((16, 64), (16,)), ((10, 16), (10,))]
    for (w, b), fan_in in zip(layers, (64, 16)):
        k = 1 / np.sqrt(fan_in)
        assert w.dtype == np.float32 and b.dtype == np.float32
        assert np.all(np.abs(w) <= k) and np.all(np.abs(b) <= k) and np.all(b != 0)
    # exactly the documented draws: one generator, W then b per layer
    rng = np.random.default_rng(3)
    w1 = rng.uniform(-1 / 8, 1 / 8, (16, 64)).astype(np.float32)
    b1 = rng.uniform(-1 / 8, 1 / 8, 16).astype(np.float32)
    w2 = rng.uniform(-0.25, 0.25, (10, 16)).astype(np.float32)
    assert np.array_equal(layers[0][0], w1) and np.array_equal(layers[0][1], b1)
    assert np.array_equal(layers[1][0], w2)
    again = init_mlp([64, 16, 10], 3)
    assert all(np.array_equal(a, b) for la, lb in zip(layers, again) for a, b in zip(la, lb))
    assert not np.array_equal(init_mlp((64, 16, 10), 4)[0][0], layers[0][0])


def test_init_mlp_he_scales_the_same_draws():
    torch_init = init_mlp((64, 32, 32, 10), seed=5)
    he = init_mlp((64, 32, 32, 10), seed=5, scheme="he")
    for (w0, b0), (w, b), fan_in in zip(torch_init, he, (64, 32, 32)):
        bound = np.sqrt(6 / fan_in)             # kaiming_uniform_, nonlinearity="relu"
        assert w.dtype == np.float32 and np.all(np.abs(w) <= bound)
        assert np.abs(w).max() > 0.9 * bound
        # the same uniform numbers, scaled; biases are the default draw, non-zero
        assert np.allclose(w, np.sqrt(6) * w0.astype(np.float64), rtol=1e-6, atol=0)
        assert np.array_equal(b, b0) and np.all(b != 0)
    assert np.array_equal(init_mlp((64, 16, 10), 3, "torch")[0][0], init_mlp((64, 16, 10), 3)[0][0])


def test_init_mlp_bad_arguments():
    for sizes in [(64,), (64, 0, 10), (64, 1.5, 10), ()]:
        with pytest.raises(ValueError, match="sizes"):
            init_mlp(sizes, 0)
    with pytest.raises(ValueError, match="seed"):
        init_mlp((4, 2), -1)
    with pytest.raises(ValueError, match="scheme must be one of"):
        init_mlp((4, 2), 0, scheme="kaiming")


def test_epoch_order():
    a = epoch_order(1437, 0, 0)
    assert sorted(a.tolist()) == list(range(1437))
    # the on-device shuffle (golden/shuffle.py) is the one order every trainer uses
    assert np.array_equal(a, shuffle.epoch_order(1437, 0, 0))
    assert np.array_equal(a, epoch_order(1437, 0, 0))
    assert not np.array_equal(a, epoch_order(1437, 0, 1))
    assert not np.array_equal(a, epoch_order(1437, 1, 0))
    with pytest.raises(ValueError, match="epoch"):
        epoch_order(10, 0, -1)



def test_is_the_device_order():
    assert np.array_equal(epoch_order(100, 3, 4), shuffle.epoch_order(100, 3, 4))
    assert epoch_order(100, 3, 4).dtype == np.int64


@pytest.mark.parametrize("args,name", [
    ((-1, 0, 0), "n"), ((1.0, 0, 0), "n"),
    ((5, -1, 0), "seed"), ((5, 2**32, 0), "seed"), ((5, True, 0), "seed"),
    ((5, 0, -1), "epoch"), ((5, 0, 2**16), "epoch"), ((5, 0, 1.5), "epoch"),
])
def test_range_errors(args, name):
    with pytest.raises(ValueError, match=name):
        epoch_order(*args)


def test_range_error_messages():
    with pytest.raises(ValueError, match="n must be in"):
        epoch_order(N_MAX + 1, 0, 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        epoch_order(3, -1, 0)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        epoch_order(3, 0, -2)


def test_float_and_integer_trainers_start_alike():
    """Both start from init_mlp: the float MLP's parameters are its draws, and the integer
    MLP's stored weights encode them (bias column last)."""
    init = init_mlp((64, 16, 10), 5)
    fm = FloatMLP((64, 16, 10), 5)
    for (w, b), pw, pb in zip(init, fm.params[0::2], fm.params[1::2]):
        assert np.array_equal(w, pw) and np.array_equal(b, pb)
    a, b = LNSMLP(MLPConfig(), 5), LNSMLP(MLPConfig(), 5, init=init)
    assert all(np.array_equal(x, y) for x, y in zip(a.u, b.u))


def test_the_spec_does_not_import_the_float_code():
    """golden/mlp.py (the bit-exact spec) and golden/seeded.py need neither the float
    optimisers nor the FP32 baseline."""
    code = ("import sys; import lnsmadam.golden.mlp, lnsmadam.golden.trainer, "
            "lnsmadam.golden.soc; "
            "print(sorted(m for m in sys.modules if m in ('lnsmadam.golden.optim', "
            "'lnsmadam.golden.baseline', 'lnsmadam.golden.experiment')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
