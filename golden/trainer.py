"""Run control of the on-device trainer: the executable spec of ``docs/protocol.md`` §7-§9.

The per-sample arithmetic is :class:`~lnsmadam.golden.mlp.LNSMLP`'s, in the schedules of
:mod:`lnsmadam.golden.pipeline` (exact: bit-identical with ``LNSMLP.step``; pipelined: layer
0 one sample stale); the epoch order is :func:`lnsmadam.golden.shuffle.epoch_order`.
:class:`DeviceTrainer` adds what the engine does with them, as seen through its registers
and its STATUS:

* the stored records: ``n_train`` training samples, then ``n_test`` test samples, each a
  row of feature codes and a label (any integer; the device's are 16-bit words);
* registers (32-bit values): ``n_train``, ``n_test``, ``epoch_base`` (its low 16 bits pick
  the shuffle), ``sample_base``, ``mode`` (bit 0: pipelined);
* ``START(epochs, lr_step, seed)`` is refused (``error = 1``, nothing else changes) unless
  ``n_train >= 1``, ``n_train + n_test <= max_records`` (no wrap-around), ``epochs >= 1``,
  ``1 <= lr_step <= 64``, ``sample_base < n_train`` and ``mode`` is 0, or 1 on a build with
  the pipelined capability. Otherwise epoch ``e`` (0-based) visits positions
  ``sample_base .. n_train-1`` (``e = 0``) or ``0 .. n_train-1`` (later epochs) of
  ``epoch_order(n_train, seed, (epoch_base + e) mod 2**16)``;
* counters: a sample *finishes* when its stage B does (its prediction is known, its
  updates of layers >= 1 are written): ``sample`` (its position + 1), ``correct``
  (prediction before its own update was right) and ``steps`` advance. An epoch finishes
  after its last sample and the drain of layer 0's pending updates: ``epoch`` advances,
  ``last_correct = correct``, ``correct = sample = 0``. START sets ``epoch = 0``,
  ``sample = sample_base``, ``correct = 0``; ``last_correct`` changes only when an epoch
  (or evaluation) finishes;
* STOP (``stop()``, or ``stop_after``) takes effect when stage A would take its next
  sample: the samples taken finish (pipelined: the one in stage B and the one in stage A),
  the pending updates drain, the engine is idle with ``sample < n_train``;
* a record whose label is not in ``0..n_out-1`` is never trained or counted: when stage A
  reaches it the run stops as for STOP, with ``error = 2`` and ``sample`` = its position;
* ``EVALUATE`` is refused (``error = 1``) unless the record check holds and
  ``n_test >= 1``; it counts the test records predicted right (``correct``, then
  ``last_correct`` and ``sample = 0`` at its end); a bad label stops it (``error = 2``,
  ``sample`` = its position, ``last_correct`` unchanged); STOP ends it after the sample
  in flight (``last_correct`` unchanged);
* a host write to a weight or state region resets ``steps`` (:meth:`write_weights`).

The engine runs a command as a sequence of finished samples: :meth:`begin` /
:meth:`begin_evaluate` accept or refuse it, :meth:`advance` finishes samples, :meth:`stop`
models STOP. :meth:`start` / :meth:`evaluate` do all of it at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from . import image
from .mlp import LNSMLP
from .pipeline import MODES, train_samples
from .shuffle import epoch_order

__all__ = ["DeviceTrainer", "REGS", "REG_MAX", "LR_STEP_MAX", "STATE_IDLE", "STATE_TRAINING",
           "STATE_EVALUATING", "ERR_NONE", "ERR_REFUSED", "ERR_LABEL", "MODE_PIPELINED"]

#: word addresses of the run-control registers in region ``regs`` (per-layer constants follow
#: at ``8 + 4l``): the register table :data:`~lnsmadam.golden.image.REGS`
REGS = image.REGS
REG_MAX = 0xFFFFFFFF
LR_STEP_MAX = 64
STATE_IDLE, STATE_TRAINING, STATE_EVALUATING = 0, 1, 2
ERR_NONE, ERR_REFUSED, ERR_LABEL = 0, 1, 2
#: bit 0 of the ``mode`` register; every other bit is reserved (must be 0)
MODE_PIPELINED = 1


class DeviceTrainer:
    """The engine's run control over an :class:`LNSMLP` (see the module docstring).

    ``x``: the stored records' features in [0, 1] (floats, encoded as ``LNSMLP.input_codes``
    does) or, with ``encoded=True``, their stored feature codes (``n_in`` per record, bias
    ``-emax``); ``y``: their labels (integers); ``max_records``: the data memory's capacity
    in records; ``pipelined``: whether the build has the pipelined capability.
    """

    def __init__(self, model: LNSMLP, x, y, max_records: int, epoch_base: int = 0,
                 pipelined: bool = True, encoded: bool = False):
        self.model = model
        x = np.asarray(x)
        self.codes = (np.asarray(x, np.int64) if encoded
                      else model.input_codes(np.atleast_2d(x)).codes[:, :-1])
        self.labels = np.asarray(y).astype(np.int64).reshape(-1)
        if len(self.labels) != len(self.codes):
            raise ValueError(f"y must hold one label per record ({len(self.codes)}), "
                             f"got {len(self.labels)}")
        self.max_records = int(max_records)
        self.pipelined = bool(pipelined)
        self.n_train = self.n_test = self.sample_base = self.mode = 0
        self.epoch_base = int(epoch_base)
        self.state = STATE_IDLE
        self.error = ERR_NONE
        self.epoch = self.sample = self.correct = self.last_correct = self.steps = 0
        self.counts: list[int] = []   # correct count of each epoch finished in this run
        self._run: Iterator | None = None
        self._stop = False
        self._left: int | None = None  # samples stage A may still take (stop_after)
        self._done = False             # the last command ran to its end

    # -- registers and status ------------------------------------------------------------
    def _regs_ok(self) -> None:
        for name in REGS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= REG_MAX:
                raise ValueError(f"register {name} must be an integer in 0..{REG_MAX}, got {v!r}")

    def _records_ok(self) -> bool:
        self._regs_ok()
        return self.n_train >= 1 and self.n_train + self.n_test <= self.max_records

    def status(self) -> dict:
        """The STATUS fields (``steps`` modulo 2**32, as the 32-bit counter reports it)."""
        return {"state": self.state, "error": self.error, "epoch": self.epoch,
                "sample": self.sample, "correct": self.correct,
                "last_correct": self.last_correct, "steps": self.steps & REG_MAX}

    @property
    def busy(self) -> bool:
        return self.state != STATE_IDLE

    def write_weights(self) -> None:
        """A host write to a weight or state region: ``steps`` restarts from 0."""
        self.steps = 0

    # -- commands ------------------------------------------------------------------------
    def begin(self, epochs: int, lr_step: int, seed: int) -> bool:
        """START: accept (busy, nothing trained yet) or refuse (``error = 1``); returns
        whether it was accepted."""
        if self.busy:
            raise RuntimeError("START while the engine runs (the link answers BUSY)")
        ok = (self._records_ok() and epochs >= 1 and 1 <= lr_step <= LR_STEP_MAX
              and self.sample_base < self.n_train
              and self.mode & ~MODE_PIPELINED == 0
              and (self.pipelined or not self.mode & MODE_PIPELINED))
        self.error = ERR_NONE if ok else ERR_REFUSED
        if not ok:
            return False
        cfg = self.model.cfg
        self.model.cfg = replace(cfg, madam=replace(cfg.madam, lr_step=int(lr_step)))
        self.state = STATE_TRAINING
        self.epoch, self.sample, self.correct = 0, self.sample_base, 0
        self.counts = []
        self._stop, self._left, self._done = False, None, False
        self._run = self._train(int(epochs), int(seed), MODES[self.mode & MODE_PIPELINED])
        return True

    def begin_evaluate(self) -> bool:
        """EVALUATE: accept or refuse (``error = 1``); returns whether it was accepted."""
        if self.busy:
            raise RuntimeError("EVALUATE while the engine runs (the link answers BUSY)")
        ok = self._records_ok() and self.n_test >= 1
        self.error = ERR_NONE if ok else ERR_REFUSED
        if not ok:
            return False
        self.state = STATE_EVALUATING
        self.sample = self.correct = 0
        self._stop, self._left, self._done = False, None, False
        self._run = self._evaluate()
        return True

    def advance(self, n: int | None = None) -> bool:
        """Run until ``n`` more samples have finished (``None``: to the end); returns
        whether the engine is still busy."""
        while self._run is not None and (n is None or n > 0):
            if next(self._run, StopIteration) is StopIteration:
                self._run = None
                self.state = STATE_IDLE
            elif n is not None:
                n -= 1
        return self.busy

    def stop(self) -> None:
        """STOP: the samples stage A has taken finish, the pending updates drain, idle.
        No effect when idle."""
        self._stop = True
        self.advance()

    def stop_after(self, n: int) -> None:
        """Let stage A take at most ``n`` more samples in this command (a STOP timed so
        that exactly that many more samples finish)."""
        self._left = int(n)

    def start(self, epochs: int, lr_step: int, seed: int,
              stop_after: int | None = None) -> list[int]:
        """START and run to idle; ``stop_after``: STOP once that many samples of this run
        have been taken. Returns each finished epoch's correct count ([] if refused)."""
        if not self.begin(epochs, lr_step, seed):
            return []
        if stop_after is not None:
            self.stop_after(stop_after)
        self.advance()
        return list(self.counts)

    def evaluate(self, stop_after: int | None = None) -> int:
        """EVALUATE and run to idle: the correct count, or -1 if it was refused or did not
        finish (STOP, a bad label)."""
        if not self.begin_evaluate():
            return -1
        if stop_after is not None:
            self.stop_after(stop_after)
        self.advance()
        return self.last_correct if self._done else -1

    # -- the runs --------------------------------------------------------------------------
    def _take(self, index: int) -> bool:
        """Stage A asks for the record at ``index``: False when the run must stop there."""
        if self._stop or self._left == 0:
            return False
        if not 0 <= self.labels[index] < self.model.cfg.sizes[-1]:
            self.error = ERR_LABEL
            return False
        if self._left is not None:
            self._left -= 1
        return True

    def _epoch_samples(self, order, first: int):
        for p in range(first, len(order)):
            i = int(order[p])
            if not self._take(i):
                return
            yield self.model.input_tensor(self.codes[i]), int(self.labels[i])

    def _train(self, epochs: int, seed: int, mode: str):
        n = self.n_train
        for e in range(epochs):
            order = epoch_order(n, seed, (self.epoch_base + e) & 0xFFFF)
            for pred in train_samples(self.model, self._epoch_samples(order, self.sample), mode):
                self.correct += int(pred == self.labels[order[self.sample]])
                self.sample += 1
                self.steps += 1
                if self.sample < n:
                    yield
            if self.sample < n:          # stopped (STOP or a bad label), drained
                return
            self.epoch += 1
            self.last_correct, self.correct, self.sample = self.correct, 0, 0
            self.counts.append(self.last_correct)
            self._done = e == epochs - 1
            yield

    def _evaluate(self):
        for p in range(self.n_test):
            i = self.n_train + p
            if not self._take(i):
                return
            pred = int(np.argmax(self.model.forward(self.model.input_tensor(self.codes[i]))))
            self.correct += int(pred == self.labels[i])
            self.sample += 1
            if self.sample < self.n_test:
                yield
        self.last_correct, self.sample = self.correct, 0
        self._done = True
        yield
