"""The host link protocol in executable form (``docs/protocol.md``, version 1).

Part of the contract between host and device, so it lives in the specification, below both:
the host client (:mod:`lnsmadam.host.device`) builds its frames with it, the RTL
(:mod:`lnsmadam.hw.link`, :mod:`lnsmadam.hw.bus`) takes its constants and field widths from
it, and is tested byte for byte against :class:`DeviceModel`, the golden model of the
device side. Pure Python (no NumPy, no Amaranth).

Layers, bottom up:

* framing: :func:`slip_encode` (``END payload END``) and the streaming :class:`SlipDecoder`,
  which yields :class:`Frame` objects (payload plus an error flag for a bad escape or an
  overlong frame);
* payloads: :func:`crc16` (CRC-16/CCITT-FALSE), :func:`build_request` / :func:`parse_request`,
  :func:`build_reply` / :func:`parse_reply` (raises :class:`ProtocolError`);
* bodies: ``pack_*`` / ``unpack_*`` for each op, :class:`TrainerStatus` for ``STATUS``,
  :func:`identify_blob` / :func:`parse_identify` for ``IDENTIFY``;
* :class:`DeviceModel`: request payload in, reply payload out, exactly as the RTL answers,
  including every error status, the check order and the ``(seq, op)`` de-duplication of
  ``START``/``STOP``/``EVALUATE``. It is also a wire-level loopback (:meth:`DeviceModel.feed`).
"""

from __future__ import annotations

import binascii
import enum
import json
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "PROTOCOL_VERSION", "END", "ESC", "ESC_END", "ESC_ESC", "MAX_PAYLOAD", "MAX_BODY",
    "REPLY_FLAG", "LR_STEP_MAX", "STATUS_BODY_LEN", "IDENTIFY_MAGIC", "IDENTIFY_HEADER_LEN",
    "REGION_BITS", "ADDR_BITS", "WORD_BITS", "START_FIELDS", "STATUS_FIELDS",
    "Op", "Status", "ProtocolError", "Frame", "Request", "Reply", "Region", "TrainerStatus",
    "OP_IDENTIFY", "OP_READ", "OP_WRITE", "OP_START", "OP_STOP", "OP_STATUS", "OP_EVALUATE",
    "OK", "BAD_FRAME", "BAD_CRC", "UNKNOWN_OP", "BAD_LENGTH", "BAD_REGION", "BAD_RANGE",
    "BUSY", "BAD_ARG", "REQUEST_LENGTH",
    "crc16", "with_crc", "word_bytes", "max_read_words", "max_write_words",
    "slip_encode", "SlipDecoder",
    "build_request", "parse_request", "build_reply", "parse_reply",
    "pack_identify", "unpack_identify", "pack_read", "unpack_read", "pack_write",
    "unpack_write", "pack_start", "unpack_start", "pack_words", "unpack_words",
    "identify_blob", "parse_identify", "identify_length", "regions_from_identify",
    "region_table",
    "DeviceModel",
]

PROTOCOL_VERSION = 1
END = 0xC0
ESC = 0xDB
ESC_END = 0xDC      # ESC ESC_END stands for a payload byte END
ESC_ESC = 0xDD      # ESC ESC_ESC stands for a payload byte ESC
MAX_PAYLOAD = 270   # longest payload a receiver accepts (request or reply)
MAX_BODY = 256      # longest body in either direction
REPLY_FLAG = 0x80   # reply op = request op | REPLY_FLAG
LR_STEP_MAX = 64    # START: lr_step in 1..LR_STEP_MAX
IDENTIFY_MAGIC = b"LNSM"
IDENTIFY_HEADER_LEN = 7   # magic, version:u8, json_len:u16
REGION_BITS = 8     # READ/WRITE: region:u8
ADDR_BITS = 16      # READ/WRITE: addr:u16 (a region holds at most 2**16 words)
WORD_BITS = 32      # widest region word

#: START body fields in wire order: name -> bytes (``docs/protocol.md`` §5)
START_FIELDS = {"epochs": 2, "lr_step": 1, "seed": 4}
#: STATUS reply body fields in wire order: name -> bytes (then zero padding)
STATUS_FIELDS = {"state": 1, "error": 1, "epoch": 2, "sample": 2, "correct": 2,
                 "last_correct": 2, "steps": 4}
STATUS_BODY_LEN = 16    # the fields and a u16 pad


class Op(enum.IntEnum):
    IDENTIFY = 0x01
    READ = 0x02
    WRITE = 0x03
    START = 0x04
    STOP = 0x05
    STATUS = 0x06
    EVALUATE = 0x07


class Status(enum.IntEnum):
    OK = 0
    BAD_FRAME = 1
    BAD_CRC = 2
    UNKNOWN_OP = 3
    BAD_LENGTH = 4
    BAD_REGION = 5
    BAD_RANGE = 6
    BUSY = 7
    BAD_ARG = 8


OP_IDENTIFY, OP_READ, OP_WRITE, OP_START, OP_STOP, OP_STATUS, OP_EVALUATE = (int(o) for o in Op)
(OK, BAD_FRAME, BAD_CRC, UNKNOWN_OP, BAD_LENGTH, BAD_REGION, BAD_RANGE, BUSY,
 BAD_ARG) = (int(s) for s in Status)

#: request body length of every op (WRITE: the minimum, ``4 + count * word_bytes``)
REQUEST_LENGTH = {OP_IDENTIFY: 2, OP_READ: 4, OP_WRITE: 4,
                  OP_START: sum(START_FIELDS.values()), OP_STOP: 0, OP_STATUS: 0,
                  OP_EVALUATE: 0}
#: ops that are not executed again when repeated with the same (seq, op)
_DEDUP_OPS = (OP_START, OP_STOP, OP_EVALUATE)


class ProtocolError(ValueError):
    """A payload that is not a well-formed request/reply (length, CRC, flag, field)."""


def _check(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


# -- CRC -----------------------------------------------------------------------------------
def crc16(data: bytes | Iterable[int], crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, MSB first, no final XOR) of ``data``.

    ``crc16(b"123456789") == 0x29B1``. ``crc`` continues a previous computation. This is
    the standard library's ``binascii.crc_hqx`` started at 0xFFFF (same polynomial, MSB
    first, no final XOR).
    """
    return binascii.crc_hqx(bytes(data), crc)


def with_crc(data: bytes) -> bytes:
    """``data`` followed by its CRC (u16, little-endian)."""
    data = bytes(data)
    return data + crc16(data).to_bytes(2, "little")


def word_bytes(width: int) -> int:
    """Bytes per word on the wire: ``ceil(width / 8)``."""
    _check("width", width, 1, WORD_BITS)
    return (width + 7) // 8


def max_read_words(width: int) -> int:
    """Most words one READ can return (``count <= 255``, reply body <= MAX_BODY)."""
    return min(255, MAX_BODY // word_bytes(width))


def max_write_words(width: int) -> int:
    """Most words one WRITE can carry (``count <= 255``, body ``4 + count*wb <= MAX_BODY``)."""
    return min(255, (MAX_BODY - 4) // word_bytes(width))


# -- SLIP ----------------------------------------------------------------------------------
def slip_encode(payload: bytes) -> bytes:
    """``END payload END`` with ``END``/``ESC`` inside escaped (RFC 1055)."""
    out = bytearray([END])
    for b in bytes(payload):
        if b == END:
            out += bytes((ESC, ESC_END))
        elif b == ESC:
            out += bytes((ESC, ESC_ESC))
        else:
            out.append(b)
    out.append(END)
    return bytes(out)


class Frame(NamedTuple):
    """One received frame: the payload bytes decoded so far and ``error`` (None, ``"escape"``:
    ESC followed by something other than ESC_END/ESC_ESC, or ``"overlong"``: more than
    ``MAX_PAYLOAD`` bytes). After an error the rest of the frame is discarded, so ``payload``
    holds the bytes decoded before it (its first two bytes are what a BAD_FRAME reply echoes).
    """
    payload: bytes
    error: str | None = None


class SlipDecoder:
    """Streaming SLIP decoder, the receiver of ``docs/protocol.md`` §2.

    :meth:`feed` takes any chunk of wire bytes and returns the frames completed in it. A frame
    is everything between two ENDs (bytes before the first END form a frame too: a receiver
    cannot know where it joined the line); an empty frame (END END) yields nothing, but
    ``END ESC END`` is a frame with a bad escape.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = _check("max_payload", max_payload, 1, 1 << 20)
        self._reset()

    def _reset(self):
        self._buf = bytearray()
        self._raw = False       # any byte since the last END
        self._esc = False
        self._error = None

    def _put(self, b):
        if len(self._buf) >= self.max_payload:
            self._error = "overlong"
        else:
            self._buf.append(b)

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        for b in bytes(data):
            if b == END:
                if self._esc and self._error is None:
                    self._error = "escape"
                if self._raw:
                    frames.append(Frame(bytes(self._buf), self._error))
                self._reset()
                continue
            self._raw = True
            if self._error is not None:
                continue
            if self._esc:
                self._esc = False
                if b == ESC_END:
                    self._put(END)
                elif b == ESC_ESC:
                    self._put(ESC)
                else:
                    self._error = "escape"
            elif b == ESC:
                self._esc = True
            else:
                self._put(b)
        return frames


# -- payloads ------------------------------------------------------------------------------
class Request(NamedTuple):
    seq: int
    op: int
    body: bytes


class Reply(NamedTuple):
    """A parsed reply; ``op`` is the request's op (``REPLY_FLAG`` removed)."""
    seq: int
    op: int
    status: int
    body: bytes

    @property
    def status_name(self) -> str:
        return Status(self.status).name


def build_request(seq: int, op: int, body: bytes = b"") -> bytes:
    """Request payload ``seq | op | body | crc`` (before SLIP)."""
    _check("seq", seq, 0, 255)
    _check("op", op, 0, 255)
    body = bytes(body)
    if len(body) > MAX_BODY:
        raise ValueError(f"body must be at most {MAX_BODY} bytes, got {len(body)}")
    return with_crc(bytes((seq, op)) + body)


def parse_request(payload: bytes) -> Request:
    """Inverse of :func:`build_request`; :class:`ProtocolError` on a short payload or bad CRC."""
    payload = bytes(payload)
    if len(payload) < 4:
        raise ProtocolError(f"request payload too short ({len(payload)} bytes, minimum 4)")
    if crc16(payload[:-2]) != int.from_bytes(payload[-2:], "little"):
        raise ProtocolError("request CRC mismatch")
    return Request(payload[0], payload[1], payload[2:-2])


def build_reply(seq: int, op: int, status: int, body: bytes = b"") -> bytes:
    """Reply payload ``seq | op|0x80 | status | body | crc`` (``op`` without the flag)."""
    _check("seq", seq, 0, 255)
    _check("op", op, 0, 255)
    _check("status", status, 0, 255)
    body = bytes(body)
    if len(body) > MAX_BODY:
        raise ValueError(f"body must be at most {MAX_BODY} bytes, got {len(body)}")
    return with_crc(bytes((seq, op | REPLY_FLAG, status)) + body)


def parse_reply(payload: bytes) -> Reply:
    """Check and split a reply payload; :class:`ProtocolError` names what is wrong."""
    payload = bytes(payload)
    if len(payload) < 5:
        raise ProtocolError(f"reply payload too short ({len(payload)} bytes, minimum 5)")
    if len(payload) > 5 + MAX_BODY:
        raise ProtocolError(f"reply payload too long ({len(payload)} bytes, "
                            f"maximum {5 + MAX_BODY})")
    got = int.from_bytes(payload[-2:], "little")
    want = crc16(payload[:-2])
    if got != want:
        raise ProtocolError(f"reply CRC mismatch (got 0x{got:04X}, computed 0x{want:04X})")
    seq, op, status = payload[0], payload[1], payload[2]
    if not op & REPLY_FLAG:
        raise ProtocolError(f"reply op byte 0x{op:02X} lacks the reply flag 0x80")
    if status not in Status._value2member_map_:
        raise ProtocolError(f"unknown reply status {status}")
    body = payload[3:-2]
    if status != OK and body:
        raise ProtocolError(f"error reply {Status(status).name} with a non-empty body")
    return Reply(seq, op & ~REPLY_FLAG & 0xFF, status, body)


# -- bodies --------------------------------------------------------------------------------
def _u16(b, i):
    return b[i] | b[i + 1] << 8


def pack_identify(offset: int) -> bytes:
    return _check("offset", offset, 0, 0xFFFF).to_bytes(2, "little")


def unpack_identify(body: bytes) -> int:
    if len(body) != 2:
        raise ProtocolError(f"IDENTIFY body must be 2 bytes, got {len(body)}")
    return _u16(body, 0)


def pack_read(region: int, addr: int, count: int) -> bytes:
    _check("region", region, 0, (1 << REGION_BITS) - 1)
    _check("addr", addr, 0, (1 << ADDR_BITS) - 1)
    _check("count", count, 0, 255)
    return bytes((region, addr & 0xFF, addr >> 8, count))


def unpack_read(body: bytes) -> tuple[int, int, int]:
    """``(region, addr, count)`` of a READ (or the head of a WRITE) body."""
    if len(body) < 4:
        raise ProtocolError(f"READ/WRITE body must be at least 4 bytes, got {len(body)}")
    return body[0], _u16(body, 1), body[3]


def pack_words(words: Iterable[int], width: int) -> bytes:
    """Words as ``word_bytes(width)`` bytes each, little-endian; each must fit ``width``."""
    wb = word_bytes(width)
    out = bytearray()
    for i, w in enumerate(words):
        if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w < (1 << width):
            raise ValueError(f"words[{i}] must be an integer in [0, {(1 << width) - 1}] "
                             f"(width {width}), got {w!r}")
        out += w.to_bytes(wb, "little")
    return bytes(out)


def unpack_words(body: bytes, width: int) -> list[int]:
    """Inverse of :func:`pack_words` (no range check: the device may send any bits)."""
    wb = word_bytes(width)
    if len(body) % wb:
        raise ProtocolError(f"{len(body)} bytes is not a whole number of {wb}-byte words")
    return [int.from_bytes(body[i:i + wb], "little") for i in range(0, len(body), wb)]


def pack_write(region: int, addr: int, words: Iterable[int], width: int) -> bytes:
    words = list(words)
    return pack_read(region, addr, len(words)) + pack_words(words, width)


def unpack_write(body: bytes, width: int) -> tuple[int, int, list[int]]:
    """``(region, addr, words)``; the length must match ``count``."""
    region, addr, count = unpack_read(body)
    if len(body) != 4 + count * word_bytes(width):
        raise ProtocolError(f"WRITE body of {len(body)} bytes does not hold {count} words")
    return region, addr, unpack_words(body[4:], width)


def pack_start(epochs: int, lr_step: int, seed: int) -> bytes:
    """START body. Values outside the device's ranges (``epochs == 0``, ``lr_step`` not in
    1..64) are encodable on purpose: the device answers them with BAD_ARG."""
    args = {"epochs": epochs, "lr_step": lr_step, "seed": seed}
    return b"".join(_check(k, args[k], 0, (1 << (8 * n)) - 1).to_bytes(n, "little")
                    for k, n in START_FIELDS.items())


def _unpack_fields(body: bytes, sizes) -> list[int]:
    vals, i = [], 0
    for n in sizes:
        vals.append(int.from_bytes(body[i:i + n], "little"))
        i += n
    return vals


def unpack_start(body: bytes) -> tuple[int, int, int]:
    """``(epochs, lr_step, seed)`` of a START body."""
    if len(body) != REQUEST_LENGTH[OP_START]:
        raise ProtocolError(f"START body must be {REQUEST_LENGTH[OP_START]} bytes, "
                            f"got {len(body)}")
    return tuple(_unpack_fields(body, START_FIELDS.values()))


@dataclass(frozen=True)
class TrainerStatus:
    """The STATUS reply body (:data:`STATUS_FIELDS`, 16 bytes; ``docs/protocol.md`` §5)."""
    state: int = 0          # 0 idle, 1 training, 2 evaluating
    error: int = 0
    epoch: int = 0
    sample: int = 0
    correct: int = 0
    last_correct: int = 0
    steps: int = 0

    STATE_NAMES = ("idle", "training", "evaluating")

    def __post_init__(self):
        for name, size in STATUS_FIELDS.items():
            _check(name, getattr(self, name), 0, (1 << (8 * size)) - 1)

    def to_bytes(self) -> bytes:
        out = b"".join(getattr(self, k).to_bytes(n, "little") for k, n in STATUS_FIELDS.items())
        return out.ljust(STATUS_BODY_LEN, b"\0")

    @classmethod
    def from_bytes(cls, body: bytes) -> TrainerStatus:
        if len(body) != STATUS_BODY_LEN:
            raise ProtocolError(f"STATUS body must be {STATUS_BODY_LEN} bytes, got {len(body)}")
        return cls(**dict(zip(STATUS_FIELDS, _unpack_fields(body, STATUS_FIELDS.values()))))

    @property
    def state_name(self) -> str:
        return self.STATE_NAMES[self.state] if self.state < 3 else f"state{self.state}"


# -- identify ------------------------------------------------------------------------------
def identify_blob(obj: dict) -> bytes:
    """``b"LNSM" | version:u8 | json_len:u16 | json``; compact UTF-8 JSON of ``obj``.

    The whole blob must fit 65535 bytes (the ROM's address range)."""
    if not isinstance(obj, dict):
        raise ValueError(f"obj must be a dict, got {type(obj).__name__}")
    js = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if IDENTIFY_HEADER_LEN + len(js) > 0xFFFF:
        raise ValueError(f"identify JSON must be at most {0xFFFF - IDENTIFY_HEADER_LEN} "
                         f"bytes, got {len(js)}")
    return IDENTIFY_MAGIC + bytes((PROTOCOL_VERSION,)) + len(js).to_bytes(2, "little") + js


def identify_length(prefix: bytes) -> int:
    """Total blob length from its first :data:`IDENTIFY_HEADER_LEN` bytes."""
    prefix = bytes(prefix)
    if len(prefix) < IDENTIFY_HEADER_LEN or prefix[:4] != IDENTIFY_MAGIC:
        raise ProtocolError("identify blob does not start with b'LNSM' and its header")
    if prefix[4] != PROTOCOL_VERSION:
        raise ProtocolError(f"identify blob version {prefix[4]}, expected {PROTOCOL_VERSION}")
    return IDENTIFY_HEADER_LEN + _u16(prefix, 5)


def parse_identify(blob: bytes) -> dict:
    """Inverse of :func:`identify_blob` (:class:`ProtocolError` on a malformed blob)."""
    blob = bytes(blob)
    n = identify_length(blob)
    if len(blob) != n:
        raise ProtocolError(f"identify blob is {len(blob)} bytes, its header says {n}")
    try:
        obj = json.loads(blob[IDENTIFY_HEADER_LEN:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"identify JSON does not parse: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("identify JSON is not an object")
    return obj


class Region(NamedTuple):
    id: int
    name: str
    width: int
    depth: int

    @property
    def word_bytes(self) -> int:
        return word_bytes(self.width)


def region_table(regions) -> dict[int, Region]:
    """``{id: Region}`` from ``(id, name, width, depth)`` tuples or identify-JSON dicts;
    ``ValueError`` on an id outside 0..255, a width outside 1..32, a depth outside 1..65536
    (:data:`REGION_BITS`, :data:`WORD_BITS`, :data:`ADDR_BITS`) or a duplicate id."""
    table = {}
    for i, r in enumerate(regions):
        if isinstance(r, dict):
            r = (r["id"], r["name"], r["width"], r["depth"])
        if len(r) != 4:
            raise ValueError(f"regions[{i}] must be (id, name, width, depth), got {r!r}")
        rid, name, width, depth = r
        _check(f"regions[{i}] id", rid, 0, (1 << REGION_BITS) - 1)
        _check(f"regions[{i}] width", width, 1, WORD_BITS)
        _check(f"regions[{i}] depth", depth, 1, 1 << ADDR_BITS)
        if rid in table:
            raise ValueError(f"regions[{i}]: duplicate region id {rid}")
        table[rid] = Region(rid, str(name), width, depth)
    return table


def regions_from_identify(info: dict) -> list[Region]:
    """The region table of a parsed identify JSON."""
    return list(region_table(info["regions"]).values())


# -- the device model -----------------------------------------------------------------------
class DeviceModel:
    """The link's golden model: what the device answers, byte for byte.

    ``regions``: ``(id, name, width, depth)`` tuples (or identify-JSON dicts);
    ``store``: backing store ``{(region_id, addr): word}`` (missing words read as 0), written
    by WRITE; ``identify``: the identify blob. The trainer side is represented by the
    attributes ``busy`` (bool) and ``status`` (:class:`TrainerStatus`), set by the user.

    Every side effect is appended to ``events`` in order: ``("read", region, addr)``,
    ``("write", region, addr, word)``, ``("start", epochs, lr_step, seed)``, ``("stop",)``,
    ``("evaluate",)``. Subclasses may override :meth:`on_read`, :meth:`on_write`,
    :meth:`on_start`, :meth:`on_stop`, :meth:`on_evaluate` (call ``super()`` to keep the log).

    Check order (the first failing check answers, nothing is executed):
    BAD_FRAME, BAD_CRC, UNKNOWN_OP, BAD_LENGTH (body > MAX_BODY, or not the op's length;
    WRITE: < 4 here), [START/STOP/EVALUATE with the remembered ``(seq, op)``: OK, not
    executed], BAD_REGION, BAD_LENGTH (WRITE: ``4 + count * word_bytes``), BAD_RANGE, BUSY
    (READ, WRITE, START, EVALUATE), BAD_ARG (WRITE: a bit above ``width``; START: ``epochs``,
    ``lr_step``). Every frame with a valid CRC sets the remembered ``(seq, op)`` and whether it
    was answered OK.
    """

    def __init__(self, regions, store: MutableMapping | None = None, identify: bytes = b"",
                 busy: bool = False, status: TrainerStatus | None = None):
        self.regions = region_table(regions)
        self.store = {} if store is None else store
        self.identify = bytes(identify)
        self.busy = bool(busy)
        self.status = TrainerStatus() if status is None else status
        self.events: list[tuple] = []
        self.last: tuple[int, int, bool] | None = None   # (seq, op, answered OK)
        self._decoder = SlipDecoder()

    # -- trainer-side hooks ------------------------------------------------------------
    def on_read(self, region: int, addr: int) -> int:
        self.events.append(("read", region, addr))
        return self.store.get((region, addr), 0)

    def on_write(self, region: int, addr: int, word: int) -> None:
        self.events.append(("write", region, addr, word))
        self.store[(region, addr)] = word

    def on_start(self, epochs: int, lr_step: int, seed: int) -> None:
        self.events.append(("start", epochs, lr_step, seed))

    def on_stop(self) -> None:
        self.events.append(("stop",))

    def on_evaluate(self) -> None:
        self.events.append(("evaluate",))

    # -- requests ----------------------------------------------------------------------
    def handle(self, frame: Frame) -> bytes:
        """Reply payload to one received :class:`Frame`."""
        p = bytes(frame.payload)
        echo = (p[0] if p else 0, p[1] if len(p) > 1 else 0)
        if frame.error is not None:
            return build_reply(*echo, BAD_FRAME)
        if len(p) < 4 or crc16(p[:-2]) != int.from_bytes(p[-2:], "little"):
            return build_reply(*echo, BAD_CRC)
        seq, op, body = p[0], p[1], p[2:-2]
        status, out = self._execute(seq, op, body)
        self.last = (seq, op, status == OK)
        return build_reply(seq, op, status, out)

    def request(self, payload: bytes) -> bytes:
        """Reply payload to a request payload received intact (no SLIP error)."""
        return self.handle(Frame(bytes(payload)))

    def feed_frames(self, data: bytes) -> list[bytes]:
        """Wire bytes in (any chunking), reply payloads of the frames they complete out."""
        return [self.handle(f) for f in self._decoder.feed(data)]

    def feed(self, data: bytes) -> bytes:
        """Wire bytes in, SLIP-encoded replies out (a loopback device for a transport)."""
        return b"".join(slip_encode(r) for r in self.feed_frames(data))

    def _execute(self, seq, op, body):
        if op not in REQUEST_LENGTH:
            return UNKNOWN_OP, b""
        n = len(body)
        if n > MAX_BODY or (n < 4 if op == OP_WRITE else n != REQUEST_LENGTH[op]):
            return BAD_LENGTH, b""
        if op in _DEDUP_OPS and self.last == (seq, op, True):
            return OK, b""
        if op == OP_IDENTIFY:
            off = _u16(body, 0)
            return OK, self.identify[off:off + MAX_BODY]
        if op in (OP_READ, OP_WRITE):
            region, addr, count = unpack_read(body)
            r = self.regions.get(region)
            if r is None:
                return BAD_REGION, b""
            wb = r.word_bytes
            if op == OP_WRITE and n != 4 + count * wb:
                return BAD_LENGTH, b""
            if count == 0 or addr + count > r.depth or (op == OP_READ and count * wb > MAX_BODY):
                return BAD_RANGE, b""
            if self.busy:
                return BUSY, b""
            if op == OP_READ:
                words = [self.on_read(region, addr + i) for i in range(count)]
                return OK, b"".join((w & 0xFFFFFFFF).to_bytes(4, "little")[:wb] for w in words)
            words = unpack_words(body[4:], r.width)
            if any(w >> r.width for w in words):
                return BAD_ARG, b""
            for i, w in enumerate(words):
                self.on_write(region, addr + i, w)
            return OK, b""
        if op in (OP_START, OP_EVALUATE) and self.busy:
            return BUSY, b""
        if op == OP_START:
            epochs, lr_step, seed = unpack_start(body)
            if epochs == 0 or not 1 <= lr_step <= LR_STEP_MAX:
                return BAD_ARG, b""
            self.on_start(epochs, lr_step, seed)
        elif op == OP_EVALUATE:
            self.on_evaluate()
        elif op == OP_STOP:
            self.on_stop()
        else:   # STATUS
            return OK, self.status.to_bytes()
        return OK, b""
