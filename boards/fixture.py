"""Hardware fixtures: record a UART session to JSON, replay it to the host library.

A board's link can be kept under test without the board (the Glasgow pattern): record once
what the host wrote and what the device answered, then replay the device's side to the
host code in CI.

* :class:`RecordingTransport` wraps any :class:`~lnsmadam.host.transport.Transport` and
  logs both directions with timestamps: ``{"t": s, "dir": "tx", "data": hex}`` (host ->
  device), ``"rx"`` (device -> host), and ``{"t", "dir": "timeout", "timeout": s}`` for a
  read that returned nothing.
* :class:`ReplayTransport` plays a session back: host writes must equal the recorded
  host->device byte stream (else :class:`ReplayMismatch` with the offset and both bytes);
  a recorded device->host chunk becomes readable once the host has written every byte that
  preceded it in the recording; otherwise a read returns ``b""`` at once (a timeout without
  waiting, so a recorded retry replays too). :meth:`ReplayTransport.assert_done` checks
  that the whole session was used.
* The session file: ``{"format": "lnsmadam-uart-session", "version": 1, "meta": {...},
  "events": [...]}``; ``meta["source"]`` says where it came from (``board``, ``twin`` or
  ``model``).

Recording a real run: ``python -m lnsmadam.boards.fixture record -o FILE --board NAME --
train --board NAME ...`` runs an ``lnsmadam`` command in-process with every
:class:`~lnsmadam.host.transport.SerialTransport` (and the twin's transport) recording
(:func:`recording`). ``python -m lnsmadam.boards.fixture replay FILE`` replays one through
:class:`~lnsmadam.host.device.Device` (``identify``) and reports what it used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import threading
import time
from pathlib import Path

from ..host.transport import Transport

__all__ = ["RecordingTransport", "ReplayTransport", "ReplayMismatch", "load_session",
           "save_session", "merge_rx", "recording", "model_session", "twin_session", "twin_run_spec",
           "twin_data", "FORMAT"]

FORMAT = "lnsmadam-uart-session"


class ReplayMismatch(AssertionError):
    """The host did something the recorded session did not (one line with the offset)."""


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def merge_rx(events: list[dict]) -> list[dict]:
    """Consecutive device->host chunks (and the empty reads between them) as one event:
    the same replay, as the host cannot tell how the bytes were split on the wire."""
    out: list[dict] = []
    for e in events:
        if e["dir"] == "rx" and out and out[-1]["dir"] == "rx":
            out[-1] = {**out[-1], "data": out[-1]["data"] + e["data"]}
        elif e["dir"] == "timeout" and out and out[-1]["dir"] == "rx":
            continue
        else:
            out.append(dict(e))
    return out


def save_session(session: dict, path, merge: bool = True) -> Path:
    """Write a session; ``merge`` joins consecutive rx chunks (:func:`merge_rx`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    events = merge_rx(session["events"]) if merge else session["events"]
    # one event per line: diffable, and a long session stays readable
    body = ",\n".join("  " + json.dumps(e, separators=(", ", ": ")) for e in events)
    head = {k: v for k, v in session.items() if k != "events"}
    text = json.dumps(head, indent=1)[:-2] + ',\n "events": [\n' + body + "\n ]\n}\n"
    path.write_text(text)
    return path


def load_session(path) -> dict:
    """A session dict from a fixture file (format and version checked)."""
    session = json.loads(Path(path).read_text())
    if session.get("format") != FORMAT or session.get("version") != 1:
        raise ValueError(f"{path}: not a {FORMAT} version 1 file")
    return session


class RecordingTransport(Transport):
    """Wraps ``inner`` and logs every write and read (see the module docstring)."""

    def __init__(self, inner: Transport, meta: dict | None = None):
        self.inner = inner
        self.default_timeout = inner.default_timeout
        self.meta = {"recorded": _now_iso(), "transport": type(inner).__name__,
                     **(meta or {})}
        self.events: list[dict] = []
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def _log(self, **ev) -> None:
        with self._lock:
            self.events.append({"t": round(time.monotonic() - self._t0, 6), **ev})

    def write(self, data: bytes) -> None:
        self._log(dir="tx", data=bytes(data).hex())
        self.inner.write(data)

    def read(self, n: int, timeout: float) -> bytes:
        data = self.inner.read(n, timeout)
        if data:
            self._log(dir="rx", data=bytes(data).hex())
        else:
            self._log(dir="timeout", timeout=round(float(timeout), 6))
        return data

    def close(self) -> None:
        self.inner.close()

    def session(self) -> dict:
        with self._lock:
            return {"format": FORMAT, "version": 1, "meta": dict(self.meta),
                    "events": list(self.events)}

    def save(self, path) -> Path:
        return save_session(self.session(), path)


class ReplayTransport(Transport):
    """Plays a recorded session's device side back (see the module docstring)."""

    default_timeout = 0.05

    def __init__(self, session: dict | str | Path):
        if not isinstance(session, dict):
            session = load_session(session)
        self.meta = session.get("meta", {})
        self._tx = bytearray()             # the recorded host -> device stream
        self._rx: list[tuple[int, bytes]] = []   # (tx bytes before it, chunk)
        for ev in session["events"]:
            if ev["dir"] == "tx":
                self._tx += bytes.fromhex(ev["data"])
            elif ev["dir"] == "rx":
                self._rx.append((len(self._tx), bytes.fromhex(ev["data"])))
        self._tx = bytes(self._tx)
        self.tx_pos = 0                    # host bytes matched so far
        self._next = 0                     # next rx chunk
        self._pending = b""                # part of a chunk not read yet
        self.closed = False

    def write(self, data: bytes) -> None:
        data = bytes(data)
        end = self.tx_pos + len(data)
        want = self._tx[self.tx_pos:end]
        if data != want:
            k = next((i for i in range(min(len(data), len(want))) if data[i] != want[i]),
                     min(len(data), len(want)))
            got_b = f"0x{data[k]:02x}" if k < len(data) else "nothing"
            want_b = f"0x{want[k]:02x}" if k < len(want) else "end of the recording"
            raise ReplayMismatch(
                f"host wrote {got_b} at byte {self.tx_pos + k} of the session, the recording "
                f"has {want_b} (write {data[:32].hex()}..., recorded "
                f"{self._tx[self.tx_pos:self.tx_pos + 32].hex()}...)")
        self.tx_pos = end

    def read(self, n: int, timeout: float) -> bytes:
        if n <= 0:
            return b""
        if not self._pending and self._next < len(self._rx) \
                and self._rx[self._next][0] <= self.tx_pos:
            self._pending = self._rx[self._next][1]
            self._next += 1
        out, self._pending = self._pending[:n], self._pending[n:]
        if not out and timeout > 0:
            time.sleep(min(timeout, 0.002))    # nothing will arrive: do not spin
        return out

    def close(self) -> None:
        self.closed = True

    @property
    def done(self) -> bool:
        return self.tx_pos == len(self._tx) and self._next == len(self._rx) \
            and not self._pending

    def assert_done(self) -> None:
        """Raise :class:`ReplayMismatch` unless the host consumed the whole session."""
        if self.tx_pos != len(self._tx):
            raise ReplayMismatch(f"host wrote {self.tx_pos} of the {len(self._tx)} recorded "
                                 "bytes")
        if self._next != len(self._rx) or self._pending:
            left = sum(len(c) for _, c in self._rx[self._next:]) + len(self._pending)
            raise ReplayMismatch(f"{left} recorded device bytes were never read")


# -- recording a command ----------------------------------------------------------------------
@contextlib.contextmanager
def recording(meta: dict | None = None):
    """Inside the block, every SerialTransport / TwinTransport created records into one
    session; yields a list that holds the :class:`RecordingTransport` objects made."""
    from ..host import transport as T
    classes = [T.SerialTransport]
    try:
        from ..sim.twin import TwinTransport
        classes.append(TwinTransport)
    except ImportError:
        pass
    made: list[RecordingTransport] = []
    saved = {}
    for cls in classes:
        saved[cls] = (cls.write, cls.read)

        def wrap(cls=cls):
            orig_write, orig_read = saved[cls]

            def rec_of(self):
                r = self.__dict__.get("_fixture_recorder")
                if r is None:
                    inner = _Raw(self, orig_write, orig_read)
                    extra = {"port": getattr(self, "port", None),
                             "baud": getattr(self, "baud", None)}
                    r = RecordingTransport(inner, {**(meta or {}), **extra,
                                                   "transport": cls.__name__})
                    self.__dict__["_fixture_recorder"] = r
                    made.append(r)
                return r

            cls.write = lambda self, data: rec_of(self).write(data)
            cls.read = lambda self, n, timeout: rec_of(self).read(n, timeout)

        wrap()
    try:
        yield made
    finally:
        for cls, (w, r) in saved.items():
            cls.write, cls.read = w, r


class _Raw(Transport):
    """The un-patched methods of a patched transport instance."""

    def __init__(self, obj, write, read):
        self._obj, self._write, self._read = obj, write, read
        self.default_timeout = getattr(obj, "default_timeout", 1.0)

    def write(self, data):
        return self._write(self._obj, data)

    def read(self, n, timeout):
        return self._read(self._obj, n, timeout)


def _merge(recs: list[RecordingTransport], meta: dict) -> dict:
    if not recs:
        return {"format": FORMAT, "version": 1, "meta": meta, "events": []}
    if len(recs) > 1:
        meta = {**meta, "note": f"{len(recs)} transports were opened; this file holds the "
                                "last one"}
    s = recs[-1].session()
    s["meta"] = {**s["meta"], **meta}
    return s


def model_data() -> list[int]:
    """The 300 data words the model session writes and reads back."""
    return [(i * 2654435761) & 0xFFFF for i in range(300)]


def model_session(seed: int = 3, p_flip: float = 0.001) -> dict:
    """A session recorded from :class:`~lnsmadam.golden.link.DeviceModel` (no hardware):
    identify (the default SoC's identify JSON), data and register writes and read-backs,
    STATUS, with seeded bit flips in both directions so that retries are in the recording.

    ``meta["expect"]`` holds what the host saw, for a replay test to compare."""
    from ..golden import link as P
    from ..golden.soc import SoCConfig
    from ..host.device import Device
    from ..host.faults import FaultyTransport
    from ..host.transport import CallbackTransport

    ident = SoCConfig().identify_json()
    model = P.DeviceModel(P.regions_from_identify(ident), identify=P.identify_blob(ident),
                          status=P.TrainerStatus(state=0, epoch=3, last_correct=321, steps=999))
    faulty = FaultyTransport(CallbackTransport(model.feed), seed=seed, p_flip=p_flip, rx=True)
    rec = RecordingTransport(faulty, {"source": "model", "board": None,
                                      "note": "synthetic: golden.link.DeviceModel behind "
                                              "FaultyTransport (seeded bit flips); no board "
                                              "or twin involved"})
    dev = Device(rec, timeout=0.05, retries=8, poll=0)
    info = dev.identify()
    data = model_data()
    dev.write_region("data", 0, data)
    back = dev.read_region("data", 0, 300).tolist()
    dev.write_region("regs", 0, [1500, 297])
    regs = dev.read_region("regs", 0, 2).tolist()
    st = dev.status()
    rec.meta["expect"] = {"design": info["design"], "n_regions": len(info["regions"]),
                          "data_ok": back == data, "regs": regs,
                          "status": {"epoch": st.epoch, "last_correct": st.last_correct,
                                     "steps": st.steps},
                          "faults": dict(faulty.counts), "retries": dev.stats["retries"]}
    return rec.session()


def twin_run_spec() -> dict:
    """What :func:`twin_session` runs (and a replay test repeats): the default 64-16-10
    model, seed 5, the first 32 training and 8 test digits of split 0, one epoch."""
    return {"seed": 5, "split": 0, "n_train": 32, "n_test": 8, "epochs": 1}


def twin_data(spec: dict):
    from types import SimpleNamespace

    from ..golden.data import load_digits_split
    d = load_digits_split(spec["split"])
    return SimpleNamespace(x_train=d.x_train[:spec["n_train"]], y_train=d.y_train[:spec["n_train"]],
                           x_test=d.x_test[:spec["n_test"]], y_test=d.y_test[:spec["n_test"]],
                           seed=d.seed)


def twin_session() -> dict:
    """A session recorded from the simulation twin (the SoC's Verilog in Verilator, over
    its UART): identify, upload, one short training epoch, evaluation, weight read-back
    (:func:`twin_run_spec`). Builds the twin (minutes the first time)."""
    import numpy as np

    from ..golden.mlp import LNSMLP, MLPConfig
    from ..host import session
    from ..host.device import Device
    from ..sim.twin import open_twin, twin_config

    spec = twin_run_spec()
    data = twin_data(spec)
    tr = open_twin()
    try:
        rec = RecordingTransport(tr, {"source": "twin", "board": None,
                                      "config": twin_config().to_dict(),
                                      "run": spec,
                                      "note": "recorded from the Verilator twin of the SoC "
                                              "(no board)"})
        dev = Device(rec, poll=0.05)
        session.prepare(dev, LNSMLP(MLPConfig(), spec["seed"]), data)
        run = session.train(dev, data, spec["epochs"], spec["seed"])
        u, v = dev.read_weights()
        rec.meta["expect"] = {"history": run.history,
                              "u_sum": [int(np.asarray(a).sum()) for a in u],
                              "v_sum": [int(np.asarray(a).sum()) for a in v]}
        return rec.session()
    finally:
        tr.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lnsmadam.boards.fixture",
                                 description="Record or replay a UART session fixture.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run an lnsmadam command and record its UART session")
    rec.add_argument("-o", "--out", required=True, help="fixture file to write")
    rec.add_argument("--board", default=None, help="board name, stored in the metadata")
    rec.add_argument("--source", default="board", choices=("board", "twin", "model"))
    rec.add_argument("args", nargs=argparse.REMAINDER,
                     help="the lnsmadam command line, after --")
    mod = sub.add_parser("model", help="write the synthetic DeviceModel session")
    mod.add_argument("-o", "--out", required=True)
    twn = sub.add_parser("twin", help="record a short training session from the twin")
    twn.add_argument("-o", "--out", required=True)
    rep = sub.add_parser("replay", help="replay a fixture's IDENTIFY through Device")
    rep.add_argument("fixture")
    a = ap.parse_args(argv)
    if a.cmd == "record":
        args = a.args[1:] if a.args[:1] == ["--"] else a.args
        if not args:
            ap.error("give the lnsmadam command to record after --")
        meta = {"source": a.source, "board": a.board, "command": "lnsmadam " + " ".join(args)}
        from ..cli.main import main as lnsmadam_main
        code = 0
        with recording(meta) as recs:
            try:
                lnsmadam_main(args)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        path = save_session(_merge(recs, meta), a.out)
        n = sum(len(r.events) for r in recs[-1:])
        print(f"wrote {path} ({n} events, exit {code})", file=sys.stderr)
        return code
    if a.cmd in ("model", "twin"):
        s = model_session() if a.cmd == "model" else twin_session()
        print(f"wrote {save_session(s, a.out)} ({len(s['events'])} events)", file=sys.stderr)
        return 0
    from ..host.device import Device
    rt = ReplayTransport(a.fixture)
    info = Device(rt).identify()
    print(json.dumps({"design": info.get("design"), "protocol": info.get("protocol"),
                      "replayed_tx_bytes": rt.tx_pos, "recorded_tx_bytes": len(rt._tx)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
