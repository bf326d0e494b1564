"""Both engine modes and multi-lane engines on the SoC's Verilator twin, bit-exact with golden.

Issue 13's done-means: the twin tests cover exact and pipelined mode and a multi-lane
configuration of each layer size (64-16-10 and 64-64-10). Each case is one Verilator build of
``twin_config(...)`` (a data memory of just the 96 + 32 samples used), driven only through
the public host API (``session.prepare``/``train``, ``Device``): after two epochs the
accuracies the device counted, its weights, second-moment state and step counter equal
``golden.mlp.train_lns(soc.mlp_config(), ..., mode=...)``.

Pipelined builds also STOP inside the second epoch and resume in a new session from the
checkpoint. The host supports that, but by design (``docs/protocol.md`` §10) the pipeline
refills at the resume, so the end state is not the uninterrupted run's: the reference is the
golden run control (``golden.trainer.DeviceTrainer``) with the same STOP and resume, and the
test checks that the refill really changed the result.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from lnsmadam.golden.data import load_digits_split
from lnsmadam.golden.mlp import LNSMLP, train_lns
from lnsmadam.golden.pipeline import MODES
from lnsmadam.golden.soc import SoCConfig
from lnsmadam.golden.trainer import DeviceTrainer
from lnsmadam.host import session
from lnsmadam.host.checkpoint import Checkpoint
from lnsmadam.host.device import Device
from lnsmadam.sim.twin import TWIN_BAUD, TWIN_CLK, open_twin, twin_config

N_TRAIN, N_TEST, EPOCHS, SEED = 96, 32, 2, 7
#: STOP at the first progress report of the second epoch: the twin runs on while the host
#: polls (an epoch here takes ~0.1 s of wall time), so the earliest target leaves the most
#: margin before the epoch's end; it lands a few samples in (UART round trips)
STOP_AT = N_TRAIN + 1

#: (id, twin_config fields, mode); one Verilator build each
CASES = [
    ("64-16-10x4-exact", dict(sizes=(64, 16, 10), lanes=4), "exact"),
    ("64-16-10x4-pipelined", dict(sizes=(64, 16, 10), lanes=4, pipelined=True), "pipelined"),
    # the ECP5 engine options: the parallel softmax unit and the multiplier shuffle
    ("64-64-10x8-exact-ecp5", dict(sizes=(64, 64, 10), lanes=8, softmax="parallel",
                                   fast_shuffle=True), "exact"),
    ("64-64-10x8-pipelined-bias", dict(sizes=(64, 64, 10), lanes=8, pipelined=True,
                                       bias_lane=True), "pipelined"),
]
PIPELINED = [c for c in CASES if c[2] == "pipelined"]


@pytest.fixture(scope="module")
def data():
    d = load_digits_split(0)
    return SimpleNamespace(x_train=d.x_train[:N_TRAIN], y_train=d.y_train[:N_TRAIN],
                           x_test=d.x_test[:N_TEST], y_test=d.y_test[:N_TEST], seed=d.seed)


@pytest.fixture(scope="module")
def twins():
    """The running twins by case id, built on first use and shared by the tests of a case."""
    running = {}
    yield running
    for tr in running.values():
        tr.close()


def _twin(twins, name, fields):
    soc = twin_config(n_records=N_TRAIN + N_TEST, **fields)
    if name not in twins:
        twins[name] = open_twin(soc)
    return soc, twins[name]


def _same_model(u, v, model, what):
    assert len(u) == len(model.u)
    for l in range(len(u)):
        np.testing.assert_array_equal(u[l], model.u[l], err_msg=f"{what}: weights of layer {l}")
        np.testing.assert_array_equal(v[l], model.v[l], err_msg=f"{what}: state of layer {l}")


def golden_stopped_run(cfg, data, epochs, seed, mode, stop=None):
    """The golden run control (``DeviceTrainer``, ``docs/protocol.md`` §9-§10) doing what
    ``session.train`` asks of a device: one START per epoch (``epoch_base`` = the epoch), an
    EVALUATE after each; with ``stop = (e, k)`` a STOP after ``k`` samples of epoch ``e``
    and a resume there (``sample_base = k``). Returns the history, the trainer and, for a
    stop, ``(u, v, correct)`` at the STOP."""
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    tr = DeviceTrainer(LNSMLP(cfg, seed), x, y, len(x), pipelined=True)
    tr.n_train, tr.n_test, tr.mode = len(data.x_train), len(data.x_test), MODES.index(mode)
    hist, at_stop = [], None
    for e in range(epochs):
        tr.epoch_base, tr.sample_base, before = e, 0, 0
        if stop is not None and stop[0] == e:
            assert tr.start(1, 1, seed, stop_after=stop[1]) == [] and tr.sample == stop[1]
            before = tr.correct
            at_stop = ([w.copy() for w in tr.model.u], [s.copy() for s in tr.model.v], before)
            tr.sample_base = stop[1]
        (count,) = tr.start(1, 1, seed)
        hist.append({"epoch": e + 1, "train_acc": (before + count) / tr.n_train,
                     "test_acc": tr.evaluate() / tr.n_test})
    return hist, tr, at_stop


def test_twin_config_passes_soc_fields_through():
    assert twin_config() == SoCConfig(clk_freq=TWIN_CLK, baud=TWIN_BAUD)
    soc = twin_config(sizes=(64, 64, 10), lanes=8, n_records=128, pipelined=True,
                      bias_lane=True, read_reg=0)
    assert (soc.sizes, soc.lanes, soc.n_records, soc.pipelined, soc.bias_lane, soc.read_reg,
            soc.clk_freq, soc.divisor) == ((64, 64, 10), 8, 128, True, True, 0, TWIN_CLK, 8)
    with pytest.raises(ValueError, match="unknown SoCConfig field.s. lanez; known: sizes"):
        twin_config(lanez=2)
    with pytest.raises(ValueError, match="softmax must be one of serial, parallel, got 'fast'"):
        twin_config(softmax="fast")


@pytest.mark.parametrize("name,fields,mode", CASES, ids=[c[0] for c in CASES])
def test_mode_and_lanes_train_bit_exact_on_the_twin(twins, data, name, fields, mode):
    soc, tr = _twin(twins, name, fields)
    cfg = soc.mlp_config()
    dev = Device(tr)
    start = LNSMLP(cfg, SEED)
    ident = session.prepare(dev, start, data)
    assert ident["config"]["soc"] == soc.to_dict()      # the twin is the configuration asked
    run = session.train(dev, data, EPOCHS, SEED, mode=MODES.index(mode))
    ref = train_lns(cfg, data, EPOCHS, SEED, mode=mode)
    assert run.history == ref["history"]
    u, v = dev.read_weights()
    _same_model(u, v, ref["model"], f"{name} after {EPOCHS} epochs")
    for l in range(len(u)):
        assert np.mean(u[l] != start.u[l]) > 0.1, f"layer {l} barely moved"
    assert dev.status().steps == run.steps == EPOCHS * N_TRAIN
    assert run.cycles and run.cycles > 0
    if mode == "pipelined":
        # the check tells the modes apart: an engine that ignored the mode bit would fail it
        exact = train_lns(cfg, data, EPOCHS, SEED)["model"]
        assert any(not np.array_equal(a, b) for a, b in zip(u, exact.u))


@pytest.mark.parametrize("name,fields,mode", PIPELINED, ids=[c[0] for c in PIPELINED])
def test_pipelined_stop_and_resume_on_the_twin(twins, data, tmp_path, name, fields, mode,
                                               stop_at):
    """STOP early in epoch 2, checkpoint, resume in a new session: the checkpoint and the end
    state equal the golden run control's with the same STOP and resume (the pipeline
    refills: §10), and the refill made the result differ from the uninterrupted run's."""
    soc, tr = _twin(twins, name, fields)
    cfg = soc.mlp_config()
    path = tmp_path / "pipelined.npz"
    # poll STATUS back to back so that the STOP lands a few samples after STOP_AT
    dev = Device(tr, poll=0)
    session.prepare(dev, LNSMLP(cfg, SEED), data)
    res = session.train(dev, data, EPOCHS, SEED, mode=1, progress=stop_at(dev, STOP_AT),
                        checkpoint=path)
    assert res.stopped
    ck = Checkpoint.load(path)
    pos = ck.position
    assert pos.epochs_done == 1 and 0 < pos.sample < N_TRAIN, (pos.epochs_done, pos.sample)
    assert pos.run["mode"] == 1 and "refills" not in pos.run
    hist, gold, at_stop = golden_stopped_run(cfg, data, EPOCHS, SEED, mode,
                                             stop=(1, pos.sample))
    gu, gv, gcorrect = at_stop
    _same_model(ck.u, ck.v, SimpleNamespace(u=gu, v=gv), f"{name} at the STOP")
    assert pos.correct == gcorrect and pos.history == hist[:1]
    assert ck.steps == N_TRAIN + pos.sample

    dev = Device(tr, poll=0)                            # a new session
    session.prepare(dev, LNSMLP(cfg, SEED + 1), data, resume=ck)
    res = session.train(dev, data, 0, 0, resume=ck)
    assert not res.stopped and res.position.run["refills"] == 1
    assert res.history == hist
    u, v = dev.read_weights()
    _same_model(u, v, gold.model, f"{name} resumed at sample {pos.sample}")
    assert res.steps == gold.steps == EPOCHS * N_TRAIN
    # the golden reference without the STOP is train_lns's pipelined run, and the refill
    # changed the weights (the first sample after the resume saw every earlier update)
    whole = train_lns(cfg, data, EPOCHS, SEED, mode=mode)
    h0, g0, _ = golden_stopped_run(cfg, data, EPOCHS, SEED, mode)
    assert h0 == whole["history"]
    _same_model(g0.model.u, g0.model.v, whole["model"], "golden run control, no STOP")
    assert any(not np.array_equal(a, b) for a, b in zip(u, whole["model"].u))
