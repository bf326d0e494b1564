"""Fault injection for link tests: a :class:`Transport` wrapper that corrupts bytes.

:class:`FaultyTransport` sits between :class:`~lnsmadam.host.device.Device` and a real
transport and, with a seeded RNG, injects on the host->device direction (each ``write`` is
one frame, as the device layer writes them):

* ``p_flip``: per byte, flip one random bit;
* ``p_drop``: per byte, drop it;
* ``p_insert``: per byte, insert a random byte before it;
* ``p_truncate``: per write, keep only a random prefix (the frame's tail, with its closing
  END, is lost).

With ``rx=True`` flips, drops and inserts also hit the device->host direction (per byte
read) and ``p_truncate`` drops the rest of a read chunk, each probability multiplied by
``rx_scale`` (replies are read in chunks of whatever has arrived, so a per-chunk truncation
rate depends on the transport's timing). ``counts`` holds how many of
each fault were injected (``tx_flip``, ``tx_drop``, ``tx_insert``, ``tx_truncate``,
``rx_flip``, ``rx_drop``, ``rx_insert``, ``rx_truncate``); ``injected`` is their sum.
Set ``enabled = False`` to pass bytes through untouched.

``script`` forces faults regardless of the probabilities: a mapping
``{("tx", n): kind, ("rx", n): kind}`` injects ``kind`` (one of ``flip``, ``drop``,
``insert``, ``truncate``) into the n-th write (tx) or the n-th non-empty read (rx), counting
from 0. The random faults depend on how many polls the host makes, which depends on
timing; a script makes sure each kind is exercised on every run.
"""

from __future__ import annotations

import random

from .transport import Transport

__all__ = ["FaultyTransport"]

_KINDS = ("flip", "drop", "insert", "truncate")


def _check_p(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


class FaultyTransport(Transport):
    """Wraps ``inner`` and injects faults (see the module docstring)."""

    def __init__(self, inner: Transport, seed: int = 0, p_flip: float = 0.0,
                 p_drop: float = 0.0, p_truncate: float = 0.0, p_insert: float = 0.0, *,
                 rx: bool = False, rx_scale: float = 1.0, script=None):
        self.inner = inner
        self.p_flip = _check_p("p_flip", p_flip)
        self.p_drop = _check_p("p_drop", p_drop)
        self.p_truncate = _check_p("p_truncate", p_truncate)
        self.p_insert = _check_p("p_insert", p_insert)
        self.rx = bool(rx)
        self.rx_scale = _check_p("rx_scale", rx_scale)
        self.enabled = True
        self.default_timeout = inner.default_timeout
        self._rng = random.Random(seed)
        self.counts = {f"{d}_{k}": 0 for d in ("tx", "rx") for k in _KINDS}
        self.script = {}
        for key, kind in dict(script or {}).items():
            if (not isinstance(key, tuple) or len(key) != 2 or key[0] not in ("tx", "rx")
                    or not isinstance(key[1], int) or key[1] < 0):
                raise ValueError(f"script keys must be ('tx'|'rx', n >= 0), got {key!r}")
            if kind not in _KINDS:
                raise ValueError(f"script kind must be one of {', '.join(_KINDS)}, "
                                 f"got {kind!r}")
            self.script[key] = kind
        self._n = {"tx": 0, "rx": 0}

    @property
    def injected(self) -> int:
        """Total number of faults injected so far."""
        return sum(self.counts.values())

    def _force(self, data: bytes, d: str, kind: str) -> bytes:
        rng, out = self._rng, bytearray(data)
        i = rng.randrange(len(out))
        if kind == "flip":
            out[i] ^= 1 << rng.randrange(8)
        elif kind == "drop":
            del out[i]
        elif kind == "insert":
            out.insert(i, rng.randrange(256))
        else:
            del out[i:]
        self.counts[f"{d}_{kind}"] += 1
        return bytes(out)

    def _mangle(self, data: bytes, d: str) -> bytes:
        rng = self._rng
        n, self._n[d] = self._n[d], self._n[d] + 1
        if (d, n) in self.script:
            data = self._force(data, d, self.script[(d, n)])
        k = self.rx_scale if d == "rx" else 1.0
        p_insert, p_drop, p_flip = self.p_insert * k, self.p_drop * k, self.p_flip * k
        out = bytearray()
        for b in data:
            if p_insert and rng.random() < p_insert:
                out.append(rng.randrange(256))
                self.counts[f"{d}_insert"] += 1
            if p_drop and rng.random() < p_drop:
                self.counts[f"{d}_drop"] += 1
                continue
            if p_flip and rng.random() < p_flip:
                b ^= 1 << rng.randrange(8)
                self.counts[f"{d}_flip"] += 1
            out.append(b)
        if out and self.p_truncate and rng.random() < self.p_truncate * k:
            del out[rng.randrange(len(out)):]
            self.counts[f"{d}_truncate"] += 1
        return bytes(out)

    def write(self, data: bytes) -> None:
        data = bytes(data)
        if self.enabled:
            data = self._mangle(data, "tx")
        if data:
            self.inner.write(data)

    def read(self, n: int, timeout: float) -> bytes:
        data = self.inner.read(n, timeout)
        if self.enabled and self.rx and data:
            data = self._mangle(data, "rx")
        return data

    def close(self) -> None:
        self.inner.close()
