"""The host side of the link: :class:`Device`, a trainer reached over any :class:`Transport`.

Every request goes through :meth:`Device.request`, which implements ``docs/protocol.md``
§4: requests are numbered ``seq = 0, 1, ..., 255, 0, ...``; only a reply with a valid CRC,
the request's ``seq`` and ``op | 0x80`` is accepted (anything else is counted and dropped);
after a timeout or a ``BAD_FRAME``/``BAD_CRC`` reply the same frame is sent again, up to
``retries`` attempts in all, then :class:`~.transport.LinkError` names the operation, the
attempts and the last error. A reply with another error status raises :class:`DeviceError`
(a :class:`LinkError`) at once: it was executed-and-refused, retrying cannot help.

On top of that: the identify blob (:meth:`Device.identify`), region reads and writes chunked
to ``MAX_BODY`` (:meth:`read_region`, :meth:`write_region`), and the trainer's memory image
(``docs/protocol.md`` §7, via :mod:`lnsmadam.golden.image`): data set, weights and state,
per-layer constants, then ``START``/``EVALUATE`` with STATUS polling. The wire format is
:mod:`lnsmadam.golden.link`.

``stats`` counts what the link saw: ``requests``, ``attempts``, ``retries``, ``timeouts``,
``bad_frame``/``bad_crc`` (error replies from the device: it received a damaged frame),
``garbled`` (replies that failed SLIP/CRC/format checks here), ``stale`` (valid replies
with another ``seq``/``op``: late answers to earlier attempts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ..golden import image
from ..golden import link as P
from ..golden.format import check_int
from .checkpoint import Checkpoint, CheckpointError, RunPosition, config_hash, data_hash
from .transport import LinkError, Transport

__all__ = ["Device", "DeviceError", "LinkError"]

_OP_NAMES = {int(o): o.name for o in P.Op}


#: STATUS.error codes of the trainer (docs/protocol.md §8)
_TRAINER_ERRORS = {1: "command refused: check n_train, n_test, sample_base, mode",
                   2: "a record's label is outside 0..n_out-1"}


class DeviceError(LinkError):
    """The device answered a request with an error status (``status``: its number)."""

    def __init__(self, message: str, op: int, status: int):
        super().__init__(message)
        self.op = op
        self.status = status


def _int_array(name: str, value, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"{name} must be an array of integers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    return arr.astype(np.int64)


class Device:
    """A trainer behind ``transport`` (see the module docstring).

    ``transport``: a :class:`~.transport.Transport`; ``timeout``: seconds to wait for each
    reply, in (0, 86400] (default: the transport's ``default_timeout``); ``retries``:
    attempts per request (1..255, default 8); ``poll``: seconds between STATUS polls while
    training or evaluating, [0, 60].
    """

    #: longest reply timeout and poll interval accepted (seconds): beyond these a typo, not
    #: a setting (and the waits of the standard library overflow near 1e9 s)
    MAX_TIMEOUT = 86400.0
    MAX_POLL = 60.0

    def __init__(self, transport: Transport, timeout: float | None = None, retries: int = 8,
                 poll: float = 0.02):
        from ..golden.format import check_float, check_int, check_type

        self.transport = check_type("transport", transport, Transport)
        if timeout is None:
            timeout = getattr(transport, "default_timeout", 1.0)
        self.timeout = check_float("timeout", timeout, 0, self.MAX_TIMEOUT, lo_open=True,
                                   unit=" s")
        self.retries = check_int("retries", retries, 1, 255)
        self.poll = check_float("poll", poll, 0, self.MAX_POLL, unit=" s")
        self.seq = 0
        self.stop_requested = False    # a STOP was sent since the last START/EVALUATE
        self.dataset_hash: str | None = None   # of the words upload_dataset wrote
        self.info: dict | None = None
        self._regions: dict[str, P.Region] | None = None
        self._decoder = P.SlipDecoder()
        self._fresh = True
        self.stats = dict.fromkeys(("requests", "attempts", "retries", "timeouts", "bad_frame",
                                    "bad_crc", "garbled", "stale"), 0)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------
    def request(self, op: int, body: bytes = b"", what: str | None = None) -> P.Reply:
        """Send one request (retrying per §4) and return its OK
        :class:`~lnsmadam.golden.link.Reply`."""
        what = what or _OP_NAMES.get(op, f"op 0x{op:02X}")
        if self._fresh and op in (P.OP_START, P.OP_STOP, P.OP_EVALUATE):
            # The device skips a START/STOP/EVALUATE that repeats the (seq, op) it executed
            # last; a new host starting at seq 0 must not hit a previous host's last request.
            self._fresh = False
            self.request(P.OP_STATUS, what=f"{what} (link check)")
        self._fresh = False
        seq = self.seq
        frame = P.slip_encode(P.build_request(seq, op, body))
        self.stats["requests"] += 1
        last = "no reply"
        try:
            for attempt in range(1, self.retries + 1):
                if attempt > 1:
                    self.stats["retries"] += 1
                self.stats["attempts"] += 1
                self.transport.write(frame)
                reply, why = self._await(seq, op)
                if reply is not None:
                    break
                last = why
            else:
                raise LinkError(f"{what}: no valid reply after {self.retries} attempts "
                                f"(last error: {last})")
        finally:
            self.seq = (seq + 1) & 0xFF
        if reply.status != P.OK:
            raise DeviceError(f"{what}: device answered {reply.status_name}", op, reply.status)
        return reply

    def _await(self, seq: int, op: int) -> tuple[P.Reply | None, str]:
        """The reply to (seq, op) within one timeout, or ``(None, why)`` to retry."""
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stats["timeouts"] += 1
                return None, f"timeout after {self.timeout:g} s"
            data = self.transport.read(4096, left)
            for frame in self._decoder.feed(data):
                if frame.error is not None:
                    self.stats["garbled"] += 1
                    continue
                try:
                    rep = P.parse_reply(frame.payload)
                except P.ProtocolError:
                    self.stats["garbled"] += 1
                    continue
                if rep.seq != seq or rep.op != op:
                    self.stats["stale"] += 1
                    continue
                if rep.status in (P.BAD_FRAME, P.BAD_CRC):
                    key = "bad_frame" if rep.status == P.BAD_FRAME else "bad_crc"
                    self.stats[key] += 1
                    return None, f"device answered {rep.status_name}"
                return rep, ""

    # -- identify and regions -----------------------------------------------------------------
    def identify(self) -> dict:
        """Read the whole identify blob (offset by offset) and return its parsed JSON; also
        sets ``info`` and the region table."""
        blob = self.request(P.OP_IDENTIFY, P.pack_identify(0), "IDENTIFY").body
        try:
            total = P.identify_length(blob)
            while len(blob) < total:
                part = self.request(P.OP_IDENTIFY, P.pack_identify(len(blob)),
                                    f"IDENTIFY at offset {len(blob)}").body
                if not part:
                    raise P.ProtocolError(f"identify blob ends at {len(blob)} bytes, "
                                          f"its header says {total}")
                blob += part
            info = P.parse_identify(blob[:total])
            regions = P.regions_from_identify(info)
        except (P.ProtocolError, KeyError, TypeError, ValueError) as exc:
            raise LinkError(f"IDENTIFY: malformed identify blob: {exc}") from None
        self.info = info
        self._regions = {r.name: r for r in regions}
        return info

    @property
    def regions(self) -> dict[str, P.Region]:
        """Region name -> :class:`~lnsmadam.golden.link.Region` (identifies the device on
        first use)."""
        if self._regions is None:
            self.identify()
        return self._regions

    @property
    def config(self) -> dict:
        """The identify JSON's ``config`` object."""
        if self.info is None:
            self.identify()
        return self.info.get("config", {})

    def _region(self, name: str) -> P.Region:
        r = self.regions.get(name)
        if r is None:
            raise ValueError(f"region must be one of {', '.join(self.regions)}, got {name!r}")
        return r

    def read_region(self, name: str, addr: int = 0, count: int | None = None) -> np.ndarray:
        """``count`` words (default: to the region's end) from ``addr`` as int64."""
        r = self._region(name)
        addr = check_int("addr", addr, 0, r.depth - 1)
        count = r.depth - addr if count is None else check_int("count", count, 0, r.depth - addr)
        out = np.zeros(count, np.int64)
        step = P.max_read_words(r.width)
        for off in range(0, count, step):
            n = min(step, count - off)
            body = self.request(P.OP_READ, P.pack_read(r.id, addr + off, n),
                                f"READ {name}[{addr + off}:{addr + off + n}]").body
            words = P.unpack_words(body, r.width)
            if len(words) != n:
                raise LinkError(f"READ {name}[{addr + off}:{addr + off + n}]: reply holds "
                                f"{len(words)} words")
            out[off:off + n] = words
        return out

    def write_region(self, name: str, addr: int, words) -> None:
        """Write ``words`` (integers in ``[0, 2**width)``) from ``addr``."""
        r = self._region(name)
        w = _int_array("words", words, 1)
        addr = check_int("addr", addr, 0, r.depth)
        if addr + len(w) > r.depth:
            raise ValueError(f"words must fit region {name!r} (depth {r.depth}): "
                             f"{len(w)} words from address {addr}")
        if w.size and (w.min() < 0 or w.max() >= 1 << r.width):
            bad = int(np.flatnonzero((w < 0) | (w >= 1 << r.width))[0])
            raise ValueError(f"words[{bad}] must be in [0, {(1 << r.width) - 1}] for region "
                             f"{name!r}, got {int(w[bad])}")
        step = P.max_write_words(r.width)
        for off in range(0, len(w), step):
            chunk = [int(x) for x in w[off:off + step]]
            self.request(P.OP_WRITE, P.pack_write(r.id, addr + off, chunk, r.width),
                         f"WRITE {name}[{addr + off}:{addr + off + len(chunk)}]")

    # -- the trainer's memory image -------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        return [int(s) for s in self.config["sizes"]]

    @property
    def lanes(self) -> int:
        return int(self.config.get("lanes", 1))

    @property
    def bias_lane(self) -> bool:
        """Whether each layer's bias column is a bank of its own (``u{l}.{lanes}``)."""
        return bool(self.config.get("bias_lane", False))

    def _layer_shape(self, l: int) -> tuple[int, int]:
        return image.layer_shapes(self.sizes)[l]

    def _regs(self) -> tuple[dict, int, int]:
        regs = self.config.get("regs", {})
        base = int(regs.get("layer_base", image.LAYER_REGS))
        stride = int(regs.get("layer_stride", image.LAYER_STRIDE))
        # a design that reports no map has the first three at their addresses; sample_base
        # and mode only where the device reports them (design 0.2 on)
        names = {k: int(regs.get(k, v)) for k, v in image.REGS.items()
                 if k in regs or k in ("n_train", "n_test", "epoch_base")}
        return names, base, stride

    def upload_dataset(self, codes, labels, n_train: int) -> None:
        """Store ``codes`` (n, n_in) in 0..255 and ``labels`` (n,) in 0..n_out-1, the first
        ``n_train`` samples as the training set, the rest as the test set; writes the
        ``n_train``/``n_test`` registers."""
        sizes = self.sizes
        codes = _int_array("codes", codes, 2)
        labels = _int_array("labels", labels, 1)
        n = len(codes)
        if codes.shape[1] != sizes[0]:
            raise ValueError(f"codes must have shape (n, {sizes[0]}), got {codes.shape}")
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        if codes.size and (codes.min() < 0 or codes.max() > 255):
            raise ValueError(f"codes must be in [0, 255], got [{codes.min()}, {codes.max()}]")
        if labels.size and (labels.min() < 0 or labels.max() >= sizes[-1]):
            raise ValueError(f"labels must be in [0, {sizes[-1] - 1}], "
                             f"got [{labels.min()}, {labels.max()}]")
        n_train = check_int("n_train", n_train, 0, n)
        words = image.pack_dataset(codes, labels)
        depth = self._region("data").depth
        if len(words) > depth:
            rec = image.record_words(sizes[0])
            raise ValueError(f"codes must hold at most {depth // rec} samples (the device's "
                             f"data memory), got {n}")
        regs, _, _ = self._regs()
        self.write_region("data", 0, words)
        self.write_region("regs", regs["n_train"], [n_train, n - n_train])
        self.dataset_hash = data_hash(words)

    def write_weights(self, u_list: Sequence, v_list: Sequence | None = None) -> None:
        """Store per-layer weight codes ``u_list[l]`` and second-moment state ``v_list[l]``
        (integer arrays of shape (sizes[l+1], sizes[l]+1); ``v_list=None`` writes zeros, a
        fresh state). Resets the device's ``steps``."""
        n_layers = len(self.sizes) - 1
        if len(u_list) != n_layers:
            raise ValueError(f"u_list must hold {n_layers} layers, got {len(u_list)}")
        if v_list is not None and len(v_list) != n_layers:
            raise ValueError(f"v_list must hold {n_layers} layers, got {len(v_list)}")
        banks = []   # everything is checked before the first word is written
        for l in range(n_layers):
            shape = self._layer_shape(l)
            for kind, mats in (("u", u_list), ("v", v_list)):
                mat = (np.zeros(shape, np.int64) if mats is None
                       else _int_array(f"{kind}_list[{l}]", mats[l], 2))
                if mat.shape != shape:
                    raise ValueError(f"{kind}_list[{l}] must have shape {shape}, got {mat.shape}")
                width = self._region(f"{kind}{l}.0").width
                if mat.size and (mat.min() < 0 or mat.max() >= 1 << width):
                    raise ValueError(f"{kind}_list[{l}] must be in [0, {(1 << width) - 1}], "
                                     f"got [{mat.min()}, {mat.max()}]")
                banks += [(f"{kind}{l}.{b}", w)
                          for b, w in enumerate(image.to_banks(mat, self.lanes,
                                                                self.bias_lane))]
        for name, words in banks:
            self.write_region(name, 0, words)

    def read_weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(u_list, v_list)``: every layer's weight codes and state, shape (rows, cols)."""
        u_list, v_list = [], []
        for l in range(len(self.sizes) - 1):
            rows, cols = self._layer_shape(l)
            for kind, out in (("u", u_list), ("v", v_list)):
                names = [f"{kind}{l}.{b}" for b in range(self.lanes + self.bias_lane)]
                banks = [self.read_region(n, 0, self._region(n).depth) for n in names]
                out.append(image.from_banks(banks, rows, cols, self.bias_lane))
        return u_list, v_list

    def write_layer_constants(self, u_bias: Sequence[int], f_bias: Sequence[int],
                              e_clamp: Sequence[int]) -> None:
        """Per-layer ``u_bias``, ``f_bias``, ``e_clamp`` (signed 32-bit) into ``regs``."""
        n_layers = len(self.sizes) - 1
        cols = {"u_bias": u_bias, "f_bias": f_bias, "e_clamp": e_clamp}
        for name, vals in cols.items():
            if len(vals) != n_layers:
                raise ValueError(f"{name} must hold {n_layers} values, got {len(vals)}")
            for l, v in enumerate(vals):
                if (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                        or not -(1 << 31) <= int(v) < 1 << 31):
                    raise ValueError(f"{name}[{l}] must be a signed 32-bit integer, got {v!r}")
        _, base, stride = self._regs()
        for l in range(n_layers):
            self.write_region("regs", base + stride * l,
                              [image.to_u32(u_bias[l]), image.to_u32(f_bias[l]),
                               image.to_u32(e_clamp[l])])

    def read_layer_constants(self) -> dict[str, list[int]]:
        """``{"u_bias", "f_bias", "e_clamp"}``: per-layer lists, as signed integers."""
        _, base, stride = self._regs()
        out = {"u_bias": [], "f_bias": [], "e_clamp": []}
        for l in range(len(self.sizes) - 1):
            words = self.read_region("regs", base + stride * l, 3)
            for key, w in zip(out, words):
                w = int(w)
                out[key].append(w - (1 << 32) if w >> 31 else w)
        return out

    # -- run control ----------------------------------------------------------------------------
    def status(self) -> P.TrainerStatus:
        """The trainer's :class:`~lnsmadam.golden.link.TrainerStatus`."""
        body = self.request(P.OP_STATUS, what="STATUS").body
        try:
            return P.TrainerStatus.from_bytes(body)
        except P.ProtocolError as exc:
            raise LinkError(f"STATUS: {exc}") from None

    def stop(self, wait: bool = True) -> P.TrainerStatus | None:
        """Ask the trainer to finish the samples in flight and go idle (sets
        ``stop_requested``); with ``wait``, poll until idle and return the final status."""
        self.stop_requested = True
        self.request(P.OP_STOP, what="STOP")
        return self._wait_idle("STOP", None) if wait else None

    def _wait_idle(self, what: str, progress: Callable | None) -> P.TrainerStatus:
        try:
            while True:
                st = self.status()
                if progress is not None:
                    progress(st)
                if st.state == 0:
                    break
                if self.poll:
                    time.sleep(self.poll)
        except KeyboardInterrupt:
            # leave the device idle for the next session, then let the interrupt through
            self.stop_requested = True
            try:
                self.request(P.OP_STOP, what="STOP")
            except LinkError:
                pass
            raise
        if st.error:
            why = _TRAINER_ERRORS.get(st.error, "unknown error")
            raise DeviceError(f"{what}: the trainer reports error {st.error} ({why}; stopped "
                              f"at sample {st.sample} after {st.epoch} epochs)", P.OP_STATUS,
                              st.error)
        return st

    def train(self, epochs: int = 1, lr_step: int = 1, seed: int = 0,
              progress: Callable[[P.TrainerStatus], None] | None = None) -> P.TrainerStatus:
        """Train ``epochs`` epochs of the stored training set (``START``), polling STATUS until
        the trainer is idle; ``progress(status)`` is called at every poll. Returns the final
        status (``last_correct``: correct predictions of the last epoch)."""
        epochs = check_int("epochs", epochs, 1, 0xFFFF)
        lr_step = check_int("lr_step", lr_step, 1, P.LR_STEP_MAX)
        seed = check_int("seed", seed, 0, 0xFFFFFFFF)
        self.stop_requested = False
        self.request(P.OP_START, P.pack_start(epochs, lr_step, seed), "START")
        return self._wait_idle("START", progress)

    def evaluate(self, progress: Callable[[P.TrainerStatus], None] | None = None) -> int:
        """Inference over the stored test set (``EVALUATE``); returns the correct count."""
        self.stop_requested = False
        self.request(P.OP_EVALUATE, what="EVALUATE")
        return self._wait_idle("EVALUATE", progress).last_correct

    # -- run position and checkpoints (docs/protocol.md §10) ------------------------------------
    def run_registers(self) -> dict[str, int]:
        """Name -> word address of the run-control registers this device has (its identify
        ``regs`` map; ``sample_base`` and ``mode`` only on designs that have them)."""
        return self._regs()[0]

    def write_position(self, epoch_base: int, sample_base: int = 0, mode: int = 0) -> None:
        """Where the next START begins: ``epoch_base`` (0..2**32-1), ``sample_base`` (its
        first epoch's first position) and ``mode`` (0 exact, 1 pipelined). A design without
        the ``sample_base``/``mode`` register accepts only 0 there (ValueError otherwise)."""
        vals = {"epoch_base": check_int("epoch_base", epoch_base, 0, 0xFFFFFFFF),
                "sample_base": check_int("sample_base", sample_base, 0, 0xFFFFFFFF),
                "mode": check_int("mode", mode, 0, 1)}
        regs = self.run_registers()
        for name, val in vals.items():
            if val and name not in regs:
                design = (self.info or {}).get("design", {})
                raise ValueError(f"{name} must be 0 on this device ({design.get('name')} "
                                 f"{design.get('version')} has no {name} register: "
                                 f"rebuild it with a newer lnsmadam), got {val}")
        for name, val in vals.items():
            if name in regs:
                self.write_region("regs", regs[name], [val])

    def _read_run_registers(self) -> dict[str, int]:
        return {name: int(self.read_region("regs", addr, 1)[0])
                for name, addr in self.run_registers().items()}

    def _dataset_hash(self, regs: dict[str, int]) -> str:
        """Hash of the stored records (what upload_dataset wrote, else read back)."""
        if self.dataset_hash is None:
            count = (regs["n_train"] + regs["n_test"]) * image.record_words(self.sizes[0])
            self.dataset_hash = data_hash(self.read_region("data", 0, count) if count else [])
        return self.dataset_hash

    def checkpoint(self, position: RunPosition, steps_before: int = 0) -> Checkpoint:
        """The idle device's trained state at ``position`` (weights, state, registers,
        constants; see :class:`~.checkpoint.Checkpoint`). Its ``steps`` is the device's
        counter plus ``steps_before``, the run's steps before the weights were last written
        (a resume's :meth:`restore`)."""
        st = self.status()
        if st.state != 0:
            raise ValueError("the trainer is busy: checkpoint it after STOP or the run's end")
        regs = self._read_run_registers()
        data = self._dataset_hash(regs)
        u, v = self.read_weights()
        return Checkpoint(position=position, u=u, v=v, regs=regs,
                          consts=self.read_layer_constants(), steps=steps_before + st.steps,
                          config_hash=config_hash(self.info), data_hash=data)

    def restore(self, ck: Checkpoint) -> None:
        """Load a checkpoint's weights, state and constants into this device, after checking
        that it has the checkpoint's configuration and data set (:class:`CheckpointError`
        otherwise). Resets the device's ``steps`` (a weight write)."""
        if config_hash(self.info or self.identify()) != ck.config_hash:
            raise CheckpointError("the checkpoint was written on a device with another "
                                  "configuration (identify config differs): resume it on "
                                  "the same design")
        regs = self._read_run_registers()
        if (self._dataset_hash(regs) != ck.data_hash
                or any(regs[k] != ck.regs.get(k) for k in ("n_train", "n_test"))):
            raise CheckpointError("the checkpoint was written with another data set (records "
                                  "or the train/test split differ)")
        self.write_layer_constants(ck.consts["u_bias"], ck.consts["f_bias"],
                                   ck.consts["e_clamp"])
        self.write_weights(ck.u, ck.v)
