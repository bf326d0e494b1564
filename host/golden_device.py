"""The reference device: the link's :class:`~.protocol.DeviceModel` with the golden trainer
(:class:`lnsmadam.golden.trainer.DeviceTrainer`) behind it.

Whatever the host writes lands in the model's word store, exactly as on the device; a
START or EVALUATE loads the trainer from it (registers, records, per-layer constants,
weight and state banks), the trainer then finishes ``per_frame`` samples for every frame
the device receives while it is busy (a clock that runs at link speed: a host polling
STATUS sees a run progress, and a STOP lands at some sample), and when it is idle again
its weights and state are written back to the store. Reached through
``CallbackTransport(GoldenDevice(...).feed)`` and the normal :class:`~.device.Device`
client, it is the device that host code (session, checkpoints, resume) is tested against,
and it runs the run control the new engine implements (``sample_base``, ``mode``, errors
1 and 2, STOP semantics) before that engine exists.
"""

from __future__ import annotations

import copy

import numpy as np

from lnsmadam.golden.mlp import LNSMLP, MLPConfig
from lnsmadam.golden.trainer import REGS, DeviceTrainer

from . import image
from . import protocol as P

__all__ = ["GoldenDevice"]


def _signed(w: int) -> int:
    return w - (1 << 32) if w >> 31 else w


class GoldenDevice(P.DeviceModel):
    """A device that trains with the golden model (see the module docstring).

    ``ident``: the identify JSON of the design it stands for (regions, ``config`` with
    ``sizes``, ``lanes``, ``max_records``); its ``config.regs`` gains the run-control
    registers of :data:`~lnsmadam.golden.trainer.REGS` and ``config.pipelined`` is set to
    ``pipelined``. ``cfg``: that design's golden :class:`MLPConfig`. ``per_frame``:
    samples finished per received frame while busy (1..65535).
    """

    def __init__(self, ident: dict, cfg: MLPConfig, per_frame: int = 16,
                 pipelined: bool = True):
        from lnsmadam.golden.format import check_int

        ident = copy.deepcopy(ident)
        conf = ident["config"]
        conf["regs"] = {**conf.get("regs", {}), **REGS}
        conf["pipelined"] = bool(pipelined)
        super().__init__(ident["regions"], identify=P.identify_blob(ident))
        self.ident = ident
        self.per_frame = check_int("per_frame", per_frame, 1, 0xFFFF)
        self.sizes = [int(s) for s in conf["sizes"]]
        self.lanes = int(conf.get("lanes", 1))
        self.bias_lane = bool(conf.get("bias_lane", False))
        self.layer_base = int(conf["regs"].get("layer_base", image.LAYER_REGS))
        self.layer_stride = int(conf["regs"].get("layer_stride", 4))
        self.ids = {r.name: r.id for r in self.regions.values()}
        n_in = self.sizes[0]
        self.trainer = DeviceTrainer(LNSMLP(cfg, 0), np.zeros((0, n_in), np.int64), [],
                                     max_records=int(conf["max_records"]),
                                     pipelined=pipelined, encoded=True)

    # -- the word store <-> the golden trainer -------------------------------------------------
    def _words(self, region: str, count: int, addr: int = 0) -> np.ndarray:
        rid = self.ids[region]
        return np.array([self.store.get((rid, addr + a), 0) for a in range(count)], np.int64)

    def _load(self) -> None:
        """Registers, records, constants, weights and state from the store into the trainer."""
        tr, m = self.trainer, self.trainer.model
        regs = self._words("regs", self.layer_base)
        for name, addr in REGS.items():
            setattr(tr, name, int(regs[addr]))
        n = min(tr.n_train + tr.n_test, tr.max_records)
        rec = image.record_words(self.sizes[0])
        tr.codes, tr.labels = image.unpack_dataset(self._words("data", n * rec), self.sizes[0])
        for l in range(len(self.sizes) - 1):
            c = self._words("regs", 3, self.layer_base + self.layer_stride * l)
            m.u_bias[l], m.f_bias[l], m.e_clamp[l] = (_signed(int(w)) for w in c)
            rows, cols = self.sizes[l + 1], self.sizes[l] + 1
            for kind, dest in (("u", m.u), ("v", m.v)):
                names = [f"{kind}{l}.{b}" for b in range(self.lanes + self.bias_lane)]
                banks = [self._words(n, self.regions[self.ids[n]].depth) for n in names]
                dest[l] = image.from_banks(banks, rows, cols, self.bias_lane)

    def _save(self) -> None:
        """The trained weights and state back into the store's banks."""
        m = self.trainer.model
        for name, words in image.model_image(m, self.lanes, self.bias_lane).items():
            rid = self.ids[name]
            for a, w in enumerate(words):
                self.store[(rid, a)] = int(w)

    def _sync(self) -> None:
        tr = self.trainer
        if self.busy and not tr.busy:
            self._save()
        self.busy = tr.busy
        self.status = P.TrainerStatus(**tr.status())

    # -- the device model's hooks -----------------------------------------------------------------
    def handle(self, frame: P.Frame) -> bytes:
        if self.busy:
            self.trainer.advance(self.per_frame)
            self._sync()
        return super().handle(frame)

    def on_write(self, region: int, addr: int, word: int) -> None:
        super().on_write(region, addr, word)
        if self.regions[region].name[0] in "uv":
            self.trainer.write_weights()
            self._sync()

    def on_start(self, epochs: int, lr_step: int, seed: int) -> None:
        super().on_start(epochs, lr_step, seed)
        self._load()
        self.trainer.begin(epochs, lr_step, seed)
        self._sync()

    def on_evaluate(self) -> None:
        super().on_evaluate()
        self._load()
        self.trainer.begin_evaluate()
        self._sync()

    def on_stop(self) -> None:
        super().on_stop()
        self.trainer.stop()
        self._sync()
