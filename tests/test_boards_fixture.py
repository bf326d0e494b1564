"""Hardware fixture replay: recorded UART sessions played back through the host library.

``boards/fixtures/session-model.json`` was recorded from ``golden.link.DeviceModel``
(``python -m lnsmadam.boards.fixture model``), NOT from a board or the twin: no board
session has been recorded yet. It includes seeded bit flips in both directions, so the
replay covers retries too. A board session recorded with
``python -m lnsmadam.boards.fixture record`` replays the same way.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from lnsmadam.boards.fixture import (RecordingTransport, ReplayMismatch, ReplayTransport,
                                     load_session, model_data, recording)
from lnsmadam.golden import link as P
from lnsmadam.host.device import Device
from lnsmadam.host.transport import CallbackTransport

FIXTURES = Path(__file__).resolve().parents[1] / "boards" / "fixtures"


def test_replay_model_session():
    session = load_session(FIXTURES / "session-model.json")
    exp = session["meta"]["expect"]
    assert session["meta"]["source"] == "model"
    rt = ReplayTransport(session)
    dev = Device(rt, poll=0)
    info = dev.identify()
    assert info["design"] == exp["design"] and len(info["regions"]) == exp["n_regions"]
    dev.write_region("data", 0, model_data())
    assert dev.read_region("data", 0, 300).tolist() == model_data()
    dev.write_region("regs", 0, [1500, 297])
    assert dev.read_region("regs", 0, 2).tolist() == exp["regs"]
    st = dev.status()
    assert {"epoch": st.epoch, "last_correct": st.last_correct, "steps": st.steps} == \
        exp["status"]
    rt.assert_done()
    assert dev.stats["retries"] == exp["retries"] > 0     # the recorded retries replayed


@pytest.mark.parametrize("path", sorted(glob.glob(str(FIXTURES / "session-*.json"))),
                         ids=lambda p: Path(p).name)
def test_every_fixture_identifies(path):
    """Whatever was recorded (board, twin or model), its IDENTIFY replays and parses."""
    dev = Device(ReplayTransport(path), poll=0)
    info = dev.identify()
    assert info["protocol"] == P.PROTOCOL_VERSION
    assert {r["name"] for r in info["regions"]} >= {"regs", "data"}


def _model():
    ident = {"protocol": 1, "design": {"name": "t", "version": "0"},
             "regions": [{"id": 0, "name": "regs", "width": 32, "depth": 16},
                         {"id": 1, "name": "data", "width": 16, "depth": 64}]}
    return P.DeviceModel(P.regions_from_identify(ident), identify=P.identify_blob(ident))


def test_record_replay_roundtrip_and_mismatch(tmp_path):
    rec = RecordingTransport(CallbackTransport(_model().feed), {"source": "model"})
    dev = Device(rec, poll=0)
    dev.identify()
    dev.write_region("data", 3, [1, 2, 3])
    path = rec.save(tmp_path / "s.json")
    ev = load_session(path)["events"]
    assert {e["dir"] for e in ev} == {"tx", "rx"}
    assert all(ev[i]["t"] <= ev[i + 1]["t"] for i in range(len(ev) - 1))

    # the same host calls replay
    rt = ReplayTransport(path)
    dev = Device(rt, poll=0)
    dev.identify()
    dev.write_region("data", 3, [1, 2, 3])
    rt.assert_done()

    # a host that sends something else is caught at the first differing byte
    rt = ReplayTransport(path)
    dev = Device(rt, poll=0, retries=1)
    dev.identify()
    with pytest.raises(ReplayMismatch, match=r"host wrote 0x.. at byte \d+ of the session"):
        dev.write_region("data", 3, [1, 2, 4])
    # and one that stops early leaves recorded bytes unused
    rt = ReplayTransport(path)
    Device(rt, poll=0).identify()
    with pytest.raises(ReplayMismatch, match="host wrote .* of the .* recorded bytes"):
        rt.assert_done()


def test_recorded_timeout_replays_as_retry():
    """A reply lost on the wire: the recording has the timeout and the retry, the replay
    gives the host no reply until it has sent the retry."""
    model = _model()
    state = {"drop": True}

    def respond(data):
        out = model.feed(data)
        if state["drop"] and out:
            state["drop"] = False
            return b""
        return out

    rec = RecordingTransport(CallbackTransport(respond))
    dev = Device(rec, timeout=0.02, poll=0)
    dev.status()
    assert dev.stats["retries"] == 1
    assert [e["dir"] for e in rec.events][:2] == ["tx", "timeout"]
    rt = ReplayTransport(rec.session())
    dev = Device(rt, timeout=0.02, poll=0)
    dev.status()
    assert dev.stats["retries"] == 1
    rt.assert_done()


def test_recording_patches_serial_transport(monkeypatch):
    """``recording()`` makes every SerialTransport record (used by ``fixture record``)."""
    from lnsmadam.host import transport as T

    model = _model()

    def fake_write(self, data):
        self._out += model.feed(data)

    def fake_read(self, n, timeout):
        out, self._out = self._out[:n], self._out[n:]
        return out

    class FakeSerial(T.SerialTransport):
        """No port: only the instance state the patched methods use."""

        def __init__(self):
            self.port, self.baud, self._out = "/dev/fake", 1_000_000, b""

        def close(self):
            pass

    # the real class's methods stand in for pyserial; recording() wraps them
    monkeypatch.setattr(T.SerialTransport, "write", fake_write)
    monkeypatch.setattr(T.SerialTransport, "read", fake_read)
    with recording({"source": "board"}) as made:
        Device(FakeSerial(), poll=0).identify()
    assert len(made) == 1 and made[0].meta["port"] == "/dev/fake"
    rt = ReplayTransport(made[0].session())
    Device(rt, poll=0).identify()
    rt.assert_done()
    assert T.SerialTransport.write is fake_write       # restored


TWIN = FIXTURES / "session-twin.json"


@pytest.mark.skipif(not TWIN.exists(), reason="no twin fixture recorded")
def test_replay_twin_training_session():
    """The host's whole training path (identify, upload, START/STATUS/EVALUATE, weight
    read-back) against bytes recorded from the Verilator twin; the history and weights it
    gets are the golden model's, bit for bit."""
    import numpy as np

    from lnsmadam.boards.fixture import twin_data
    from lnsmadam.golden.seeded import epoch_order
    from lnsmadam.golden.mlp import LNSMLP, MLPConfig, train_lns
    from lnsmadam.host import session

    s = load_session(TWIN)
    assert s["meta"]["source"] == "twin"
    spec = s["meta"]["run"]
    data = twin_data(spec)
    rt = ReplayTransport(s)
    dev = Device(rt, poll=0)
    session.prepare(dev, LNSMLP(MLPConfig(), spec["seed"]), data)
    run = session.train(dev, data, spec["epochs"], spec["seed"])
    u, v = dev.read_weights()
    rt.assert_done()
    assert run.history == s["meta"]["expect"]["history"]
    assert run.history == train_lns(MLPConfig(), data, spec["epochs"], spec["seed"])["history"]
    gold = LNSMLP(MLPConfig(), spec["seed"])
    for ep in range(spec["epochs"]):
        for i in epoch_order(len(data.x_train), spec["seed"], ep):
            gold.step(data.x_train[i], int(data.y_train[i]))
    for a, b in zip(u + v, gold.u + gold.v):
        np.testing.assert_array_equal(a, b)
