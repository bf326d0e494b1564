"""Run control of the on-device trainer: the spec of ``hw/trainer/`` around the sample step.

The per-sample arithmetic is :meth:`lnsmadam.golden.mlp.LNSMLP.step` (and ``predict``); the
epoch order is :func:`lnsmadam.golden.shuffle.epoch_order`. :class:`DeviceTrainer` adds what
the sequencer does with them, as seen through its registers (``docs/protocol.md`` §7) and
its status (``ControlSignature``):

* the stored records: ``n_train`` training samples, then ``n_test`` test samples;
* ``start(epochs, lr_step, seed)``: refused (``error = 1``, nothing changes) unless
  ``n_train >= 1``, ``n_train + n_test <= max_records``, ``epochs >= 1`` and
  ``1 <= lr_step <= 64``; otherwise epoch ``e`` (0-based) visits the training records in
  ``epoch_order(n_train, seed, epoch_base + e)`` and steps on each with LNS-Madam at
  ``lr_step``; ``correct`` counts the samples whose prediction (before their own update)
  was right, ``last_correct`` is the count of the last epoch, ``steps`` counts updates;
* ``evaluate()``: refused unless the same record check holds and ``n_test >= 1``; counts
  the test records whose prediction is right (``last_correct``);
* a host write to a weight or state region resets ``steps`` (``write_weights``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .mlp import LNSMLP
from .shuffle import epoch_order

__all__ = ["DeviceTrainer"]


class DeviceTrainer:
    """The trainer's run control over an :class:`LNSMLP` (see the module docstring).

    ``x``: the stored records' inputs (floats, as ``LNSMLP.step`` takes them), ``y`` their
    labels; ``max_records`` the data memory's capacity in records.
    """

    def __init__(self, model: LNSMLP, x, y, max_records: int, epoch_base: int = 0):
        self.model = model
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.max_records = int(max_records)
        self.n_train = self.n_test = 0
        self.epoch_base = int(epoch_base)
        self.error = 0
        self.epoch = self.last_correct = self.steps = 0

    def _records_ok(self) -> bool:
        return self.n_train >= 1 and self.n_train + self.n_test <= self.max_records

    def start(self, epochs: int, lr_step: int, seed: int) -> list[int]:
        """Train ``epochs`` epochs; returns each epoch's correct count ([] if refused)."""
        self.error = 0
        if not (self._records_ok() and epochs >= 1 and 1 <= lr_step <= 64):
            self.error = 1
            return []
        cfg = self.model.cfg
        self.model.cfg = replace(cfg, madam=replace(cfg.madam, lr_step=int(lr_step)))
        counts = []
        for e in range(epochs):
            correct = 0
            for i in epoch_order(self.n_train, seed, self.epoch_base + e):
                correct += int(self.model.step(self.x[i], int(self.y[i])) == self.y[i])
                self.steps += 1
            counts.append(correct)
        self.epoch, self.last_correct = epochs, counts[-1]
        return counts

    def evaluate(self) -> int:
        """Correct predictions over the test records (-1 if refused)."""
        self.error = 0
        if not (self._records_ok() and self.n_test >= 1):
            self.error = 1
            return -1
        test = slice(self.n_train, self.n_train + self.n_test)
        self.last_correct = int(np.sum(self.model.predict(self.x[test]) == self.y[test]))
        return self.last_correct

    def write_weights(self) -> None:
        """A host write to a weight or state region: ``steps`` restarts from 0."""
        self.steps = 0
