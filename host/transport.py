"""Byte transports between the host and a device: a serial port, in-memory pipes.

A :class:`Transport` moves raw bytes; framing, CRCs and retries live above it
(:mod:`lnsmadam.golden.link`, :mod:`lnsmadam.host.device`). Its contract:

* ``write(data)`` queues all of ``data`` for the device (never partial);
* ``read(n, timeout)`` returns as soon as at least one byte has arrived, with at most ``n``
  bytes, or ``b""`` when nothing arrived within ``timeout`` seconds (``timeout=0`` polls);
* ``close()`` releases the resource (idempotent); every transport is a context manager.

Arguments of the wrong type (``write("text")``, ``read("5", 0)``), a negative ``n`` or a
NaN or infinite ``timeout`` raise a ``ValueError`` naming the argument (a
:class:`~lnsmadam.golden.format.ParameterTypeError`, also a ``TypeError``, for a wrong
type): :func:`check_data`, :func:`check_read`. So do a bad ``port``/``baud`` or a
``respond`` that is not callable, at construction.

``default_timeout`` is the reply timeout (seconds) that suits the transport, used by
:class:`~lnsmadam.host.device.Device` when none is given.

Implementations: :class:`SerialTransport` (pyserial), :class:`PipeTransport` (one end of an
in-memory byte pipe, made in pairs by :func:`pipe_pair`), :class:`CallbackTransport` (every
write is handed to a function whose returned bytes become readable: a pure-Python device
model behind a loopback). The simulation twin is :class:`lnsmadam.sim.twin.TwinTransport`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..golden.format import ParameterTypeError, check_float, check_int, check_type

__all__ = [
    "LinkError", "Transport", "SerialTransport", "PipeTransport", "CallbackTransport",
    "pipe_pair", "ByteQueue", "check_data", "check_read",
]


class LinkError(RuntimeError):
    """The link to a device failed: port unavailable, or a request failed after retries.

    The message is one line naming what failed.
    """


def check_data(data) -> bytes:
    """``data`` (``write``'s argument) as ``bytes``; anything but bytes, bytearray or
    memoryview raises :class:`~lnsmadam.golden.format.ParameterTypeError` naming it."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParameterTypeError(f"data must be bytes, bytearray or memoryview, got "
                                 f"{type(data).__name__}")
    return bytes(data)


def check_read(n, timeout) -> tuple[int, float]:
    """``read``'s arguments checked: ``n`` an integer >= 0, ``timeout`` a finite number of
    seconds (a negative one, a deadline already passed, polls like 0)."""
    n = check_int("n", n, 0)
    try:
        timeout = check_float("timeout", timeout)
    except ValueError as exc:        # ParameterTypeError for a wrong type
        raise type(exc)(f"timeout must be a finite number of seconds (0 or less polls), got "
                        f"{timeout!r}") from None
    return n, max(0.0, timeout)


class Transport:
    """Interface of a byte transport (see the module docstring for the contract)."""

    #: reply timeout in seconds that suits this transport
    default_timeout: float = 1.0

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, n: int, timeout: float) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ByteQueue:
    """Thread-safe byte FIFO with a blocking ``get(n, timeout)`` (transport building block)."""

    def __init__(self):
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, data: bytes) -> None:
        if not data:
            return
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def get(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes once at least one is there, or ``b""`` after ``timeout``."""
        if n <= 0:
            return b""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._buf and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cond.wait(left)
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._buf)


class PipeTransport(Transport):
    """One end of an in-memory, full-duplex byte pipe; make a connected pair with
    :func:`pipe_pair`."""

    default_timeout = 0.2

    def __init__(self, rx: ByteQueue, tx: ByteQueue):
        self._rx = check_type("rx", rx, ByteQueue)
        self._tx = check_type("tx", tx, ByteQueue)
        self.closed = False

    def write(self, data: bytes) -> None:
        data = check_data(data)
        if self.closed:
            raise LinkError("write on a closed pipe transport")
        self._tx.put(data)

    def read(self, n: int, timeout: float) -> bytes:
        return self._rx.get(*check_read(n, timeout))

    def close(self) -> None:
        self.closed = True
        self._tx.close()


def pipe_pair() -> tuple[PipeTransport, PipeTransport]:
    """Two connected :class:`PipeTransport` ends: what one writes, the other reads."""
    a, b = ByteQueue(), ByteQueue()
    return PipeTransport(a, b), PipeTransport(b, a)


class CallbackTransport(Transport):
    """Loopback to a function: ``write(data)`` calls ``respond(data)`` synchronously and the
    bytes it returns become readable. Wraps a pure-Python device model, e.g.
    ``CallbackTransport(model.feed)``."""

    default_timeout = 0.05

    def __init__(self, respond: Callable[[bytes], bytes | None]):
        if not callable(respond):
            raise ParameterTypeError(f"respond must be callable (bytes -> bytes or None), "
                                     f"got {respond!r}")
        self._respond = respond
        self._rx = ByteQueue()
        self.closed = False

    def write(self, data: bytes) -> None:
        data = check_data(data)
        if self.closed:
            raise LinkError("write on a closed loopback transport")
        out = self._respond(data)
        if out:
            self._rx.put(bytes(out))

    def read(self, n: int, timeout: float) -> bytes:
        return self._rx.get(*check_read(n, timeout))

    def close(self) -> None:
        self.closed = True
        self._rx.close()


class SerialTransport(Transport):
    """A serial port (pyserial), 8N1 at ``baud``.

    ``port``: a non-empty device name or pyserial URL (``/dev/ttyUSB1``, ``COM3``);
    ``baud``: 300..50,000,000 (what a device's UART supports, as ``SoCConfig.baud``). A
    wrong type or range raises ``ValueError`` naming the parameter; a missing or unopenable
    port raises :class:`LinkError` naming the port. The default reply timeout is 0.25 s plus
    two maximal frames at this baud rate.
    """

    MIN_BAUD, MAX_BAUD = 300, 50_000_000

    def __init__(self, port: str, baud: int = 1_000_000):
        import serial

        if not isinstance(port, str):
            raise ParameterTypeError(f"port must be a serial port name (a str such as "
                                     f"/dev/ttyUSB1), got {port!r}")
        if not port.strip():
            raise ValueError(f"port must not be empty (a serial port such as /dev/ttyUSB1), "
                             f"got {port!r}")
        baud = check_int("baud", baud, self.MIN_BAUD, self.MAX_BAUD)
        self.port = port
        self.baud = baud
        self.default_timeout = 0.25 + 2 * 10 * 2 * 280 / baud
        try:
            self._ser = serial.Serial(port, baudrate=baud, bytesize=8, parity="N",
                                      stopbits=1, timeout=0, write_timeout=5.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LinkError(f"cannot open serial port {port!r} at {baud} baud: {reason}") from None
        self._ser.reset_input_buffer()

    def write(self, data: bytes) -> None:
        import serial

        data = check_data(data)
        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"write to serial port {self.port!r} failed: {exc}") from None

    def read(self, n: int, timeout: float) -> bytes:
        import serial

        n, timeout = check_read(n, timeout)
        if n <= 0:
            return b""
        try:
            self._ser.timeout = timeout
            first = self._ser.read(1)
            if not first:
                return b""
            self._ser.timeout = 0
            rest = self._ser.read(min(n - 1, self._ser.in_waiting)) if n > 1 else b""
            return first + rest
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"read from serial port {self.port!r} failed: {exc}") from None

    def close(self) -> None:
        ser = getattr(self, "_ser", None)
        if ser is not None and ser.is_open:
            ser.close()
