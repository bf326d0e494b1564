"""The training engine's two schedules: exact (default) and pipelined (opt-in).

Both are built from :class:`~lnsmadam.golden.mlp.LNSMLP`'s per-layer pieces and split a
sample into two stages (``docs/protocol.md`` §8 is the binding text):

* **stage A**: layer 0. It first applies layer 0's *pending* update (the oldest one
  waiting), then forwards the sample through layer 0 (``S_0``, ``a_1``).
* **stage B**: everything after it: the forward of layers ``1..L-1``, the softmax error,
  backward and update of layers ``L-1..1`` (the old weight goes into the backward product,
  the new one is written back), the backward into layer 0's error ``e_0`` and
  ``G_0 = e_0 (x) a_0``, which becomes layer 0's pending update (with the sample's
  bias-correction exponent).

**Exact mode**: step ``t`` runs stage A then stage B of sample ``t``; the pending update
applied by stage A is sample ``t-1``'s. This is :meth:`LNSMLP.step` in another order (every
gradient is formed from the weights before the sample's update, and each layer's update
only reads that layer), so the weights after any number of samples are bit-identical.

**Pipelined mode**: step ``k = 0 .. N`` runs stage A on sample ``k`` (if ``k < N``) while
stage B handles sample ``k - 1`` (if ``k >= 1``). Stage A's pending update is sample
``k-2``'s, so layer 0's forward of sample ``k`` reads weights that lack sample ``k-1``'s
update (one sample stale); stage B sees every earlier update of layers ``>= 1``. The two
stages touch disjoint weights (stage B never reads ``U_0``), so running them one after the
other here is the concurrent hardware's result.

Both schedules end with a **drain**: the pending updates still waiting are applied in
sample order, so the model is never left half-updated. A schedule stops early (STOP, a bad
label) simply by being given fewer samples: the samples it was given finish, then it drains.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:                   # mlp.train_lns runs these schedules
    from .mlp import LNSMLP

__all__ = ["stage_a", "stage_b", "train_samples", "MODES"]

#: schedule names, in the order of the ``mode`` register's bit 0
MODES = ("exact", "pipelined")


def stage_a(model: LNSMLP, a0, pending: deque) -> tuple:
    """Apply the oldest pending layer-0 update (if any), then forward ``a0`` through layer 0.

    Returns the stage's output ``(a0, S_0, a_1)`` (``a_1`` None for a one-layer model)."""
    if pending:
        g, bc = pending.popleft()
        model.layer_update(0, g, bc)
    S0, a1 = model.layer_forward(0, a0)
    return a0, S0, a1


def stage_b(model: LNSMLP, fwd: tuple, label: int, pending: deque) -> int:
    """Finish a sample from stage A's output ``fwd``: layers ``>= 1``, their updates, and
    layer 0's gradient appended to ``pending``. Returns the prediction (first largest logit)."""
    a0, S, a = fwd
    ins, Ss = [a0], [S]
    for l in range(1, len(model.u)):
        ins.append(a)
        S, a = model.layer_forward(l, a)
        Ss.append(S)
    pred = int(np.argmax(S))
    e = model.output_error(S, ins[-1], label)
    bc = model.bc.step()
    for l in range(len(model.u) - 1, 0, -1):
        g = model.weight_grad(e, ins[l])
        e_below = model.layer_backward(l, e, Ss[l - 1])   # the old W_l, before its update
        model.layer_update(l, g, bc)
        e = e_below
    pending.append((model.weight_grad(e, a0), bc))
    model.steps += 1
    return pred


def train_samples(model: LNSMLP, samples: Iterable, mode: str = "exact") -> Iterator[int]:
    """Train on ``samples`` (``(a0, label)`` pairs: input tensors from
    :meth:`LNSMLP.input_tensor`/``input_codes``) with the schedule ``mode`` (``"exact"`` or
    ``"pipelined"``); yields each sample's prediction when stage B finishes it.

    The samples are pulled one at a time when stage A takes them (in pipelined mode one
    sample ahead of the predictions), so a caller that stops yielding them stops the
    schedule there: the samples taken finish and the pending updates drain before the
    generator ends. Run it to its end. ``ValueError`` for a label outside ``0..n_out-1``
    (when stage A takes it, before anything of that sample happens).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    lag = MODES.index(mode)
    it = iter(samples)
    pending: deque = deque()
    held: deque = deque()           # stage A outputs waiting for stage B
    while True:
        nxt = next(it, None)
        if nxt is not None:
            a0, label = nxt
            label = model.check_label(label)
            held.append((stage_a(model, a0, pending), label))
        if len(held) > lag or (nxt is None and held):
            fwd, label = held.popleft()
            yield stage_b(model, fwd, label, pending)
        elif nxt is None:
            break
    while pending:                  # the drain
        g, bc = pending.popleft()
        model.layer_update(0, g, bc)
