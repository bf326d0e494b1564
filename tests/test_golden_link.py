"""golden/link.py: the executable link spec (framing, CRC, bodies, DeviceModel)."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnsmadam.golden import link as P
from lnsmadam.golden.link import (DeviceModel, Frame, ProtocolError, SlipDecoder,
                                  TrainerStatus)

REGIONS = [(0, "regs", 32, 16), (1, "data", 16, 300), (2, "u0.0", 12, 40), (5, "v0.0", 17, 40),
           (9, "bits", 1, 65536), (7, "b8", 8, 1)]
BLOB = P.identify_blob({"protocol": 1, "regions": [
    {"id": i, "name": n, "width": w, "depth": d} for i, n, w, d in REGIONS], "pad": "x" * 600})


def reply(model, seq, op, body=b""):
    return P.parse_reply(model.request(P.build_request(seq, op, body)))


# -- CRC and SLIP ------------------------------------------------------------------------
def test_crc_check_value():
    assert P.crc16(b"123456789") == 0x29B1
    assert P.crc16(b"") == 0xFFFF
    assert P.crc16(b"6789", P.crc16(b"12345")) == 0x29B1


def _crc_bitwise(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@given(st.binary(max_size=300))
def test_crc_matches_bitwise_definition(data):
    assert P.crc16(data) == _crc_bitwise(data)


@given(st.binary(max_size=P.MAX_PAYLOAD))
def test_slip_round_trip(payload):
    wire = P.slip_encode(payload)
    assert wire[0] == P.END and wire[-1] == P.END
    assert P.END not in wire[1:-1]
    frames = SlipDecoder().feed(wire)
    assert frames == ([Frame(payload, None)] if payload else [])


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=6), st.data())
def test_slip_stream_any_chunking(payloads, data):
    wire = b"".join(P.slip_encode(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    dec, got, prev = SlipDecoder(), [], 0
    for c in cuts + [len(wire)]:
        got += dec.feed(wire[prev:c])
        prev = c
    assert [f.payload for f in got] == payloads and all(f.error is None for f in got)


def test_slip_errors():
    dec = SlipDecoder()
    assert dec.feed(bytes([P.END, P.END, P.END])) == []                     # empty frames
    assert dec.feed(bytes([P.END, 1, 2, P.ESC, 0x00, 3, P.END])) == [Frame(b"\x01\x02", "escape")]
    assert dec.feed(bytes([P.ESC, P.END])) == [Frame(b"", "escape")]         # ESC END
    assert dec.feed(bytes([P.ESC, P.ESC, P.ESC_END, P.END])) == [Frame(b"", "escape")]
    assert dec.feed(bytes([7, P.END])) == [Frame(b"\x07", None)]             # no leading END
    n = P.MAX_PAYLOAD
    assert dec.feed(bytes([P.END]) + bytes(n) + bytes([P.END])) == [Frame(bytes(n), None)]
    f = dec.feed(bytes([P.END]) + bytes(range(1, 0xC0)) * 2 + bytes([P.ESC, 0, P.END]))
    assert f == [Frame((bytes(range(1, 0xC0)) * 2)[:n], "overlong")]


# -- payloads ----------------------------------------------------------------------------
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=P.MAX_BODY))
def test_request_round_trip(seq, op, body):
    assert P.parse_request(P.build_request(seq, op, body)) == (seq, op, body)


@given(st.integers(0, 255), st.integers(0, 127), st.sampled_from(list(P.Status)),
       st.binary(max_size=P.MAX_BODY))
def test_reply_round_trip(seq, op, status, body):
    body = body if status == P.OK else b""
    r = P.parse_reply(P.build_reply(seq, op, status, body))
    assert r == (seq, op, status, body) and r.status_name == status.name


def test_parse_reply_errors():
    good = P.build_reply(3, P.OP_READ, P.OK, b"abc")
    with pytest.raises(ProtocolError, match="short"):
        P.parse_reply(good[:4])
    with pytest.raises(ProtocolError, match="CRC"):
        P.parse_reply(good[:3] + b"abd" + good[-2:])
    with pytest.raises(ProtocolError, match="reply flag"):
        P.parse_reply(P.with_crc(bytes([3, P.OP_READ, 0])))
    with pytest.raises(ProtocolError, match="unknown reply status"):
        P.parse_reply(P.with_crc(bytes([3, 0x82, 99])))
    with pytest.raises(ProtocolError, match="non-empty"):
        P.parse_reply(P.with_crc(bytes([3, 0x82, P.BUSY, 1])))
    with pytest.raises(ProtocolError, match="too long"):
        P.parse_reply(P.with_crc(bytes([3, 0x82, 0]) + bytes(257)))
    with pytest.raises(ProtocolError, match="CRC"):
        P.parse_request(b"\x00\x01\x00\x00")
    with pytest.raises(ValueError, match="seq"):
        P.build_request(256, 1)
    with pytest.raises(ValueError, match="body"):
        P.build_request(0, 1, bytes(257))


@given(st.integers(1, 32), st.data())
def test_words_round_trip(width, data):
    words = data.draw(st.lists(st.integers(0, (1 << width) - 1), max_size=30))
    body = P.pack_write(3, 0x1234, words, width)
    assert len(body) == 4 + len(words) * P.word_bytes(width)
    assert P.unpack_write(body, width) == (3, 0x1234, words)
    assert P.unpack_words(P.pack_words(words, width), width) == words


def test_body_helpers():
    assert [P.word_bytes(w) for w in (1, 8, 9, 16, 17, 24, 25, 32)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [P.max_read_words(w) for w in (8, 16, 17, 32)] == [255, 128, 85, 64]
    assert [P.max_write_words(w) for w in (8, 16, 17, 32)] == [252, 126, 84, 63]
    assert P.unpack_identify(P.pack_identify(0xBEEF)) == 0xBEEF
    assert P.unpack_read(P.pack_read(9, 0xFFFF, 255)) == (9, 0xFFFF, 255)
    assert P.unpack_start(P.pack_start(65535, 64, 0xDEADBEEF)) == (65535, 64, 0xDEADBEEF)
    with pytest.raises(ValueError, match="words"):
        P.pack_words([256], 8)
    with pytest.raises(ValueError, match="width"):
        P.word_bytes(33)
    with pytest.raises(ProtocolError):
        P.unpack_write(P.pack_read(1, 0, 2) + b"\x00", 8)
    with pytest.raises(ProtocolError):
        P.unpack_words(b"\x00\x00\x00", 16)


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 65535), st.integers(0, 65535),
       st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_status_round_trip(a, b, c, d, e, f, g):
    s = TrainerStatus(a, b, c, d, e, f, g)
    b = s.to_bytes()
    assert len(b) == P.STATUS_BODY_LEN and b[-2:] == b"\x00\x00"
    assert TrainerStatus.from_bytes(b) == s


def test_status_layout():
    b = TrainerStatus(1, 2, 0x0403, 0x0605, 0x0807, 0x0A09, 0x0E0D0C0B).to_bytes()
    assert b == bytes(range(1, 15)) + b"\x00\x00"
    assert TrainerStatus(state=2).state_name == "evaluating"
    with pytest.raises(ValueError, match="epoch"):
        TrainerStatus(epoch=1 << 16)


def test_field_tables():
    """START and STATUS are written once, as field tables; the hardware takes its widths
    from them (hw/bus.py)."""
    assert tuple(f.name for f in dataclasses.fields(TrainerStatus)) == tuple(P.STATUS_FIELDS)
    assert sum(P.STATUS_FIELDS.values()) + 2 == P.STATUS_BODY_LEN
    assert P.REQUEST_LENGTH[P.OP_START] == sum(P.START_FIELDS.values()) == 7
    assert P.pack_start(0x0201, 3, 0x07060504) == bytes([1, 2, 3, 4, 5, 6, 7])
    with pytest.raises(ValueError, match="lr_step"):
        P.pack_start(1, 256, 0)
    with pytest.raises(ProtocolError, match="START body must be 7 bytes"):
        P.unpack_start(bytes(6))


def test_identify_blob():
    obj = {"protocol": 1, "design": {"name": "x", "version": "0.1"}, "ü": [1, 2]}
    blob = P.identify_blob(obj)
    assert blob[:5] == b"LNSM\x01" and P.identify_length(blob[:7]) == len(blob)
    assert P.parse_identify(blob) == obj
    with pytest.raises(ProtocolError):
        P.parse_identify(blob[:-1])
    with pytest.raises(ProtocolError):
        P.parse_identify(b"LNSX" + blob[4:])
    with pytest.raises(ValueError):
        P.identify_blob({"x": "y" * 70000})
    regs = P.regions_from_identify(json.loads(BLOB[7:]))
    assert [tuple(r) for r in regs] == REGIONS


def test_region_table_checks():
    with pytest.raises(ValueError, match="width"):
        P.region_table([(0, "a", 33, 1)])
    with pytest.raises(ValueError, match="depth"):
        P.region_table([(0, "a", 8, 65537)])
    with pytest.raises(ValueError, match="duplicate"):
        P.region_table([(0, "a", 8, 1), (0, "b", 8, 1)])


# -- DeviceModel -------------------------------------------------------------------------
@pytest.fixture
def model():
    return DeviceModel(REGIONS, identify=BLOB)


def test_model_identify(model):
    got = b""
    for off in range(0, len(BLOB) + 256, 256):
        r = reply(model, off % 256, P.OP_IDENTIFY, P.pack_identify(off))
        assert r.status == P.OK and len(r.body) == min(256, max(0, len(BLOB) - off))
        got += r.body
    assert got == BLOB
    assert reply(model, 0, P.OP_IDENTIFY, P.pack_identify(len(BLOB) - 3)).body == BLOB[-3:]
    assert reply(model, 0, P.OP_IDENTIFY, P.pack_identify(65535)).body == b""
    assert model.events == []


@pytest.mark.parametrize("rid", [0, 1, 2, 5, 9, 7])
def test_model_read_write(model, rid):
    width, depth = {r[0]: (r[2], r[3]) for r in REGIONS}[rid]
    n = min(depth, P.max_write_words(width), 20)
    words = [(i * 0x9E3779B1 + 5) & ((1 << width) - 1) for i in range(n)]
    addr = depth - n
    assert reply(model, 1, P.OP_WRITE, P.pack_write(rid, addr, words, width)) == (1, 3, 0, b"")
    r = reply(model, 2, P.OP_READ, P.pack_read(rid, addr, n))
    assert r.status == P.OK and P.unpack_words(r.body, width) == words
    assert model.events == ([("write", rid, addr + i, w) for i, w in enumerate(words)]
                            + [("read", rid, addr + i) for i in range(n)])


def test_model_max_bodies(model):
    words = list(range(63))
    assert reply(model, 0, P.OP_WRITE, P.pack_write(0, 0, words[:17], 32)).status == P.BAD_RANGE
    body = P.pack_write(1, 0, list(range(126)), 16)
    assert len(body) == 256 and reply(model, 0, P.OP_WRITE, body).status == P.OK
    r = reply(model, 1, P.OP_READ, P.pack_read(1, 0, 128))
    assert len(r.body) == 256 and P.unpack_words(r.body, 16) == list(range(126)) + [0, 0]
    assert reply(model, 2, P.OP_READ, P.pack_read(1, 0, 129)).status == P.BAD_RANGE
    assert reply(model, 2, P.OP_READ, P.pack_read(9, 0, 255)).status == P.OK
    # a body beyond MAX_BODY (only possible for WRITE: 4 + 64 * 4 = 260) is BAD_LENGTH
    p = P.with_crc(bytes([3, P.OP_WRITE]) + P.pack_read(0, 0, 64) + bytes(256))
    assert P.parse_reply(model.request(p)).status == P.BAD_LENGTH


def _raw(seq, op, body):
    return P.with_crc(bytes([seq, op]) + body)


def test_model_error_paths(model):
    def st(payload, frame_error=None):
        return P.parse_reply(model.handle(Frame(payload, frame_error)))

    assert st(b"\x05\x02\x00", "escape") == (5, 2, P.BAD_FRAME, b"")
    assert st(b"\x05", "overlong") == (5, 0, P.BAD_FRAME, b"")
    assert st(b"") == (0, 0, P.BAD_CRC, b"")
    assert st(b"\x09\x06\x00") == (9, 6, P.BAD_CRC, b"")
    good = P.build_request(4, P.OP_STATUS)
    assert st(good[:-1] + bytes([good[-1] ^ 1])) == (4, 6, P.BAD_CRC, b"")
    assert st(_raw(1, 0, b"")).status == P.UNKNOWN_OP
    assert st(_raw(1, 8, b"")).status == P.UNKNOWN_OP
    assert st(_raw(1, 0x86, b"")).status == P.UNKNOWN_OP
    for op, n in P.REQUEST_LENGTH.items():
        bad_n = n + 1 if op != P.OP_WRITE else 3
        assert st(_raw(1, op, bytes(bad_n))).status == P.BAD_LENGTH, op
    assert st(_raw(1, P.OP_READ, P.pack_read(3, 0, 1))).status == P.BAD_REGION
    assert st(_raw(1, P.OP_WRITE, P.pack_read(3, 0, 1) + b"\x00")).status == P.BAD_REGION
    assert st(_raw(1, P.OP_WRITE, P.pack_read(1, 0, 2) + bytes(3))).status == P.BAD_LENGTH
    assert st(_raw(1, P.OP_WRITE, P.pack_read(1, 0, 0))).status == P.BAD_RANGE
    assert st(_raw(1, P.OP_READ, P.pack_read(1, 0, 0))).status == P.BAD_RANGE
    assert st(_raw(1, P.OP_READ, P.pack_read(1, 299, 2))).status == P.BAD_RANGE
    assert st(_raw(1, P.OP_READ, P.pack_read(1, 299, 1))).status == P.OK
    assert st(_raw(1, P.OP_READ, P.pack_read(9, 65535, 1))).status == P.OK
    assert st(_raw(1, P.OP_READ, P.pack_read(9, 65535, 2))).status == P.BAD_RANGE
    assert st(_raw(1, P.OP_WRITE, P.pack_read(2, 0, 1) + b"\x00\x10")).status == P.BAD_ARG
    assert st(_raw(1, P.OP_WRITE, P.pack_read(5, 0, 2) + bytes(5) + b"\x02")).status == P.BAD_ARG
    for e, lr in [(0, 1), (1, 0), (1, 65), (1, 255)]:
        assert st(_raw(1, P.OP_START, P.pack_start(e, lr, 0))).status == P.BAD_ARG
    model.busy = True
    for op, body in [(P.OP_READ, P.pack_read(1, 0, 1)), (P.OP_WRITE, P.pack_write(1, 0, [1], 16)),
                     (P.OP_START, P.pack_start(0, 0, 0)), (P.OP_EVALUATE, b"")]:
        assert st(_raw(2, op, body)).status == P.BUSY
    # order: BAD_RANGE before BUSY, BUSY before BAD_ARG
    assert st(_raw(2, P.OP_READ, P.pack_read(1, 0, 0))).status == P.BAD_RANGE
    assert st(_raw(2, P.OP_WRITE, P.pack_read(2, 0, 1) + b"\xff\xff")).status == P.BUSY
    assert st(_raw(2, P.OP_STOP, b"")).status == P.OK
    assert st(_raw(2, P.OP_STATUS, b"")).status == P.OK
    assert st(_raw(2, P.OP_IDENTIFY, b"\x00\x00")).status == P.OK
    assert model.events == [("read", 1, 299), ("read", 9, 65535), ("stop",)]


def test_model_dedup(model):
    start = P.build_request(7, P.OP_START, P.pack_start(3, 5, 99))
    for _ in range(3):
        assert P.parse_reply(model.request(start)) == (7, P.OP_START, P.OK, b"")
    assert model.events == [("start", 3, 5, 99)]
    model.busy = True           # a retry while the run it started is going: still OK
    assert P.parse_reply(model.request(start)).status == P.OK
    # a corrupted retry does not reset the memory
    assert P.parse_reply(model.request(start[:-1] + b"\x00")).status == P.BAD_CRC
    assert P.parse_reply(model.request(start)).status == P.OK
    # another valid request in between does: the same (seq, op) is a new request then
    assert reply(model, 8, P.OP_STATUS).status == P.OK
    assert P.parse_reply(model.request(start)).status == P.BUSY
    model.busy = False
    # an unexecuted START (BAD_ARG) is not remembered as executed
    bad = P.build_request(9, P.OP_START, P.pack_start(0, 5, 1))
    assert P.parse_reply(model.request(bad)).status == P.BAD_ARG
    assert P.parse_reply(model.request(P.build_request(9, P.OP_START, P.pack_start(1, 5, 1)))
                         ).status == P.OK
    for op in (P.OP_STOP, P.OP_EVALUATE):
        for _ in range(2):
            assert reply(model, 10, op).status == P.OK
    assert reply(model, 11, P.OP_STOP).status == P.OK
    assert model.events == [("start", 3, 5, 99), ("start", 1, 5, 1), ("stop",), ("evaluate",),
                            ("stop",)]


def test_model_status_and_wire(model):
    model.status = TrainerStatus(1, 0, 3, 100, 90, 1500, 123456)
    r = reply(model, 0, P.OP_STATUS)
    assert TrainerStatus.from_bytes(r.body) == model.status
    wire = (P.slip_encode(P.build_request(0xC0, P.OP_STATUS)) + bytes([P.END, 1, P.ESC, 5, P.END])
            + P.slip_encode(P.build_request(0xDB, P.OP_STOP)))
    out = SlipDecoder().feed(model.feed(wire[:7]) + model.feed(wire[7:]))
    assert [P.parse_reply(f.payload)[:3] for f in out] == [
        (0xC0, P.OP_STATUS, P.OK), (1, 0, P.BAD_FRAME), (0xDB, P.OP_STOP, P.OK)]


@settings(max_examples=200)
@given(st.binary(max_size=40))
def test_model_never_executes_garbage(payload):
    """A payload without a valid CRC is never executed (and always gets exactly one reply)."""
    model = DeviceModel(REGIONS, identify=BLOB)
    r = P.parse_reply(model.request(payload))
    crc_ok = len(payload) >= 4 and P.crc16(payload[:-2]) == int.from_bytes(payload[-2:], "little")
    if not crc_ok:
        assert r.status == P.BAD_CRC and model.events == [] and model.last is None
