"""The reference device: the link's :class:`~lnsmadam.golden.link.DeviceModel` with the golden
trainer (:class:`lnsmadam.golden.trainer.DeviceTrainer`) behind it.

Whatever the host writes lands in the model's word store, exactly as on the device; a
START or EVALUATE loads the trainer from it (registers, records, per-layer constants,
weight and state banks), the trainer then finishes ``per_frame`` samples for every frame
the device receives while it is busy (a clock that runs at link speed: a host polling
STATUS sees a run progress, and a STOP lands at some sample), and when it is idle again
its weights and state are written back to the store. Reached through
``CallbackTransport(GoldenDevice(...).feed)`` and the normal ``host.device.Device`` client,
it is the device that host code (session, checkpoints, resume) is tested against and that
``lnsmadam train --backend golden --checkpoint`` trains on; it runs the run control of
``docs/protocol.md`` §8-§9 (``sample_base``, ``mode``, errors 1 and 2, STOP).
"""

from __future__ import annotations

import numpy as np

from . import image
from .format import check_int
from .link import DeviceModel, Frame, TrainerStatus, identify_blob
from .mlp import LNSMLP
from .soc import SoCConfig
from .trainer import REGS, DeviceTrainer

__all__ = ["GoldenDevice"]


def _signed(w: int) -> int:
    return w - (1 << 32) if w >> 31 else w


class GoldenDevice(DeviceModel):
    """A device of configuration ``soc`` that trains with the golden model (see the module
    docstring). ``per_frame``: samples finished per received frame while busy (1..65535);
    ``pipelined``: whether it has the pipelined mode.
    """

    def __init__(self, soc: SoCConfig, per_frame: int = 16, pipelined: bool = True):
        ident = self.identify_of(soc, pipelined)
        super().__init__(ident["regions"], identify=identify_blob(ident))
        self.ident = ident
        self.soc = soc
        self.per_frame = check_int("per_frame", per_frame, 1, 0xFFFF)
        self.ids = {r.name: r.id for r in self.regions.values()}
        self.trainer = DeviceTrainer(LNSMLP(soc.mlp_config(), 0),
                                     np.zeros((0, soc.sizes[0]), np.int64), [],
                                     max_records=soc.n_records, pipelined=pipelined,
                                     encoded=True)

    @staticmethod
    def identify_of(soc: SoCConfig, pipelined: bool = True) -> dict:
        """The identify JSON of the golden device of ``soc``: the design's, with
        ``config.pipelined`` as given (the golden model has both schedules whatever the
        design was built with)."""
        ident = soc.identify_json()
        ident["config"]["pipelined"] = bool(pipelined)
        return ident

    # -- the word store <-> the golden trainer -------------------------------------------------
    def _words(self, region: str, count: int, addr: int = 0) -> np.ndarray:
        rid = self.ids[region]
        return np.array([self.store.get((rid, addr + a), 0) for a in range(count)], np.int64)

    def _load(self) -> None:
        """Registers, records, constants, weights and state from the store into the trainer."""
        tr, m, soc = self.trainer, self.trainer.model, self.soc
        regs = self._words("regs", image.LAYER_REGS)
        for name, addr in REGS.items():
            setattr(tr, name, int(regs[addr]))
        n = min(tr.n_train + tr.n_test, tr.max_records)
        tr.codes, tr.labels = image.unpack_dataset(self._words("data", n * soc.record_words),
                                                   soc.sizes[0])
        for l, (rows, cols) in enumerate(image.layer_shapes(soc.sizes)):
            consts = self._words("regs", len(image.LAYER_FIELDS),
                                 image.LAYER_REGS + image.LAYER_STRIDE * l)
            for f, w in zip(image.LAYER_FIELDS, consts):
                getattr(m, f)[l] = _signed(int(w))
            for kind, dest in (("u", m.u), ("v", m.v)):
                names = [f"{kind}{l}.{b}" for b in range(soc.lanes + soc.bias_lane)]
                banks = [self._words(n, self.regions[self.ids[n]].depth) for n in names]
                dest[l] = image.from_banks(banks, rows, cols, soc.bias_lane)

    def _save(self) -> None:
        """The trained weights and state back into the store's banks."""
        for name, words in image.model_image(self.trainer.model, self.soc.lanes,
                                             self.soc.bias_lane).items():
            rid = self.ids[name]
            for a, w in enumerate(words):
                self.store[(rid, a)] = int(w)

    def _sync(self) -> None:
        tr = self.trainer
        if self.busy and not tr.busy:
            self._save()
        self.busy = tr.busy
        self.status = TrainerStatus(**tr.status())

    # -- the device model's hooks -----------------------------------------------------------------
    def handle(self, frame: Frame) -> bytes:
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
