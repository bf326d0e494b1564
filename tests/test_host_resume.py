"""Checkpoint and exact resume (docs/protocol.md §10) through the normal Device client:
against the golden device (the link's DeviceModel with golden/trainer.py behind it) and, once
the engine has the sample_base register, against the Verilator twin."""
from types import SimpleNamespace

import numpy as np
import pytest

from lnsmadam.golden import link as P
from lnsmadam.golden.data import load_digits_split
from lnsmadam.golden.device import GoldenDevice
from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
from lnsmadam.golden.soc import SoCConfig
from lnsmadam.host import session
from lnsmadam.host.checkpoint import Checkpoint, CheckpointError
from lnsmadam.host.device import Device, DeviceError
from lnsmadam.host.transport import CallbackTransport

SIZES = (64, 6, 10)
N_TRAIN, N_TEST, EPOCHS = 30, 10, 3


def _soc(lanes=2, n_records=48):
    return SoCConfig(sizes=SIZES, lanes=lanes, n_records=n_records)


@pytest.fixture(scope="module")
def soc():
    return _soc()


@pytest.fixture(scope="module")
def data():
    d = load_digits_split(0)
    return SimpleNamespace(x_train=d.x_train[:N_TRAIN], y_train=d.y_train[:N_TRAIN],
                           x_test=d.x_test[:N_TEST], y_test=d.y_test[:N_TEST])


CFG = _soc().mlp_config()


def golden_device(soc, per_frame=3, **kw):
    gd = GoldenDevice(soc, per_frame=per_frame, **kw)
    return gd, Device(CallbackTransport(gd.feed), poll=0)


@pytest.fixture(scope="module")
def whole(data):
    """The uninterrupted run (train_lns is the spec of the device's exact mode)."""
    return train_lns(CFG, data, EPOCHS, seed=5)


def _check_end(dev, res, whole):
    u, v = dev.read_weights()
    m = whole["model"]
    assert all(np.array_equal(a, b) for a, b in zip(u + v, m.u + m.v))
    assert res.history == whole["history"]
    assert res.steps == EPOCHS * N_TRAIN and not res.stopped


def test_golden_device_trains_like_train_lns(soc, data, whole, tmp_path):
    gd, dev = golden_device(soc)
    session.prepare(dev, LNSMLP(CFG, 5), data)
    res = session.train(dev, data, EPOCHS, 5, checkpoint=tmp_path / "c.npz")
    _check_end(dev, res, whole)
    ck = Checkpoint.load(tmp_path / "c.npz")          # written after every epoch
    assert ck.position.epochs_done == EPOCHS and ck.position.epochs_left == 0
    assert ck.steps == EPOCHS * N_TRAIN and ck.position.history == whole["history"]


@pytest.mark.parametrize("draw", range(4))
def test_stop_at_random_sample_then_resume_is_bit_exact(soc, data, whole, tmp_path, draw,
                                                         stop_at):
    """STOP at a random sample (twice), checkpoint, save, load, resume on a fresh device:
    the end state equals the uninterrupted run's (weights, state, steps, every epoch's
    accuracies)."""
    rng = np.random.default_rng(draw)
    path = tmp_path / "run.npz"
    gd, dev = golden_device(soc, per_frame=int(rng.integers(1, 5)))
    session.prepare(dev, LNSMLP(CFG, 5), data)
    targets = sorted(rng.choice(np.arange(1, EPOCHS * N_TRAIN), 2, replace=False))
    res = session.train(dev, data, EPOCHS, 5, progress=stop_at(dev, targets[0]),
                        checkpoint=path, run={"p_scale": CFG.p_scale})
    assert res.stopped
    stops = []
    for t in list(targets[1:]) + [None]:
        ck = Checkpoint.load(path)
        p = ck.position
        stops.append((p.epochs_done, p.sample))
        assert p.run["p_scale"] == CFG.p_scale and p.run["seed"] == 5
        gd, dev = golden_device(soc, per_frame=int(rng.integers(1, 5)))   # a new session
        session.prepare(dev, LNSMLP(CFG, 99), data, resume=ck)
        done = p.epochs_done * N_TRAIN + p.sample
        prog = None if t is None else stop_at(dev, max(1, t - done))
        res = session.train(dev, data, 0, 0, resume=ck, checkpoint=path, progress=prog)
    assert any(s for _, s in stops), stops         # at least one stop inside an epoch
    _check_end(dev, res, whole)


def test_ctrl_c_writes_a_checkpoint_and_resumes(soc, data, whole, tmp_path):
    path = tmp_path / "c.npz"
    gd, dev = golden_device(soc)
    session.prepare(dev, LNSMLP(CFG, 5), data)
    seen = [0]

    def interrupt(n):
        seen[0] += n
        if seen[0] >= 40:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        session.train(dev, data, EPOCHS, 5, progress=interrupt, checkpoint=path)
    assert dev.status().state == 0
    ck = Checkpoint.load(path)
    assert ck.position.epochs_done == 1 and 10 <= ck.position.sample < N_TRAIN
    gd, dev = golden_device(soc)
    session.prepare(dev, LNSMLP(CFG, 5), data, resume=ck)
    _check_end(dev, session.train(dev, data, 0, 0, resume=ck), whole)


def test_pipelined_mode_and_its_refusal(soc, data):
    gd, dev = golden_device(soc)
    session.prepare(dev, LNSMLP(CFG, 2), data)
    res = session.train(dev, data, 2, 2, mode=1)
    ref = train_lns(CFG, data, 2, 2, mode="pipelined")
    assert res.history == ref["history"]
    u, v = dev.read_weights()
    assert all(np.array_equal(a, b) for a, b in zip(u + v, ref["model"].u + ref["model"].v))
    gd, dev = golden_device(soc, pipelined=False)
    session.prepare(dev, LNSMLP(CFG, 2), data)
    with pytest.raises(DeviceError, match="error 1 .command refused"):
        session.train(dev, data, 1, 2, mode=1)


def test_bad_label_on_the_device_stops_with_error_2(soc, data):
    gd, dev = golden_device(soc)
    session.prepare(dev, LNSMLP(CFG, 2), data)
    rec = 5                                           # overwrite record 5's label word
    dev.write_region("data", (rec + 1) * 33 - 1, [10])
    with pytest.raises(DeviceError, match=r"error 2 \(a record's label is outside 0\.\.n_out-1"):
        dev.train(1, 1, 2)
    st = dev.status()
    assert st.state == 0 and st.error == 2 and st.sample < N_TRAIN
    with pytest.raises(ValueError, match=r"labels must be in \[0, 9\]"):
        dev.upload_dataset(np.zeros((2, 64), np.int64), np.array([0, 10]), 1)


def test_checkpoint_refusals(soc, data, tmp_path, stop_at):
    gd, dev = golden_device(soc)
    session.prepare(dev, LNSMLP(CFG, 5), data)
    res = session.train(dev, data, 1, 5, progress=stop_at(dev, 7), checkpoint=tmp_path / "c.npz")
    assert res.stopped
    good = (tmp_path / "c.npz").read_bytes()
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpoint.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    for blob in (b"not a zip", good[:len(good) // 2], good[:200] + bytes(200) + good[400:]):
        bad.write_bytes(blob)
        with pytest.raises(CheckpointError, match=f"checkpoint {bad} is corrupt") as e:
            Checkpoint.load(bad)
        assert "\n" not in str(e.value)
    ck = Checkpoint.load(tmp_path / "c.npz")
    ck.u[0] = ck.u[0][:, :-1]
    ck.save(bad)
    with pytest.raises(CheckpointError, match="corrupt: layer 0"):
        Checkpoint.load(bad)
    ck = Checkpoint.load(tmp_path / "c.npz")
    hdr = ck.header
    ck.header = lambda: {**hdr(), "version": 99}
    ck.save(bad)
    with pytest.raises(CheckpointError, match="format version 99; this lnsmadam reads version 1"):
        Checkpoint.load(bad)
    ck = Checkpoint.load(tmp_path / "c.npz")
    gd, other = golden_device(_soc(lanes=1))          # another configuration
    with pytest.raises(CheckpointError, match="another configuration"):
        session.prepare(other, LNSMLP(_soc(lanes=1).mlp_config(), 5), data, resume=ck)
    gd, dev = golden_device(soc)
    more = SimpleNamespace(x_train=data.x_train[:-1], y_train=data.y_train[:-1],
                           x_test=data.x_test, y_test=data.y_test)
    with pytest.raises(CheckpointError, match="another data set"):
        session.prepare(dev, LNSMLP(CFG, 5), more, resume=ck)


def test_position_registers_on_a_design_without_them(soc):
    """A design 0.1 device (the serial trainer) has no sample_base/mode: a resume at an epoch
    boundary still works (epoch_base only), one inside an epoch is refused before anything
    is written."""
    ident = soc.identify_json()
    regs = ident["config"]["regs"]
    ident["config"]["regs"] = {k: v for k, v in regs.items() if k not in ("sample_base", "mode")}
    model = P.DeviceModel(ident["regions"], identify=P.identify_blob(ident))
    dev = Device(CallbackTransport(model.feed), poll=0)
    dev.write_position(7)
    assert [e for e in model.events if e[0] == "write"] == [("write", 0, 2, 7)]
    for kw, name in [({"sample_base": 3}, "sample_base"), ({"mode": 1}, "mode")]:
        with pytest.raises(ValueError, match=f"{name} must be 0 on this device .* has no "
                                             f"{name} register"):
            dev.write_position(8, **kw)
    assert len([e for e in model.events if e[0] == "write"]) == 1


def test_twin_stop_and_resume_is_bit_exact(tmp_path, stop_at):
    """The same story on the Verilator twin: STOP inside an epoch, checkpoint, resume in a
    new session, bit-exact with the golden model (the engine's sample_base register)."""
    d = load_digits_split(0)
    data = SimpleNamespace(x_train=d.x_train[:96], y_train=d.y_train[:96],
                           x_test=d.x_test[:24], y_test=d.y_test[:24])
    from lnsmadam.sim.twin import open_twin, twin_config

    cfg = MLPConfig()
    assert "sample_base" in twin_config().identify_json()["config"]["regs"]
    tr = open_twin()
    try:
        dev = Device(tr)
        session.prepare(dev, LNSMLP(cfg, 3), data)
        path = tmp_path / "twin.npz"
        res = session.train(dev, data, 2, 3, progress=stop_at(dev, 131), checkpoint=path)
        assert res.stopped
        ck = Checkpoint.load(path)
        assert ck.position.sample and ck.position.epochs_done == 1
        dev = Device(tr)
        session.prepare(dev, LNSMLP(cfg, 11), data, resume=ck)
        res = session.train(dev, data, 0, 0, resume=ck)
        ref = train_lns(cfg, data, 2, 3)
        u, v = dev.read_weights()
        assert all(np.array_equal(a, b) for a, b in zip(u + v, ref["model"].u + ref["model"].v))
        assert res.history == ref["history"] and res.steps == 2 * 96
    finally:
        tr.close()
