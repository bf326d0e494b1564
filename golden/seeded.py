"""What every trainer of the digits MLP shares, float or integer: the start and the order.

The integer golden model (:mod:`lnsmadam.golden.mlp`, the specification) and the float
research code (:mod:`lnsmadam.golden.baseline`) both import these, so neither depends on
the other:

* :func:`init_mlp` -- the initial float32 weights and biases, drawn like PyTorch's
  ``nn.Linear`` default (uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, biases too), or
  with He-scaled weights (``scheme="he"``, an option for the float baselines of deep MLPs).
  Biases start non-zero on purpose: a multiplicative update (Madam, LNS-Madam) can never
  move a weight that is exactly zero.
* :func:`epoch_order` -- the per-epoch shuffle of the training samples, the order the
  device generates (:mod:`lnsmadam.golden.shuffle`).
"""

from __future__ import annotations

from numbers import Integral
from typing import Sequence

import numpy as np

from . import shuffle

__all__ = ["init_mlp", "INIT_SCHEMES", "epoch_order", "check_sizes"]


def _check_seed(name: str, seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """``sizes`` as a tuple of ints; ValueError unless >= 2 positive integers."""
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1
                             for s in sizes):
        raise ValueError(f"sizes must be >= 2 positive integers (inputs, ..., outputs), "
                         f"got {sizes!r}")
    return tuple(int(s) for s in sizes)


#: ``init_mlp`` schemes: the bound of the uniform weight draw, times ``1 / sqrt(fan_in)``.
INIT_SCHEMES = {"torch": 1.0, "he": float(np.sqrt(6.0))}


def init_mlp(sizes: Sequence[int], seed: int,
             scheme: str = "torch") -> list[tuple[np.ndarray, np.ndarray]]:
    """Initial float32 ``(W, b)`` per layer, PyTorch ``nn.Linear`` distribution by default.

    One generator ``rng = np.random.default_rng(seed)`` serves all layers, in order; for
    the layer ``fan_in -> fan_out``, with ``k = 1 / sqrt(fan_in)``::

        W = rng.uniform(-c * k, c * k, (fan_out, fan_in)).astype(float32)
        b = rng.uniform(-k, k, fan_out).astype(float32)

    (``W`` is drawn before ``b``.)  ``scheme`` sets ``c`` (:data:`INIT_SCHEMES`):
    ``"torch"`` (default, ``c = 1``: ``nn.Linear``'s default; the integer model and every
    default run start from it) or ``"he"`` (``c = sqrt(6)``: ``kaiming_uniform_(W,
    nonlinearity="relu")``, variance ``2 / fan_in``, which keeps the activation scale
    through deep ReLU stacks).  Both draw the same numbers, so ``"he"`` is the default ``W``
    scaled by ``sqrt(6)``, up to float32 rounding.  Biases keep ``nn.Linear``'s draw in both
    schemes and are non-zero: multiplicative updates cannot move a zero.
    """
    sizes = check_sizes(sizes)
    rng = np.random.default_rng(_check_seed("seed", seed))
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(INIT_SCHEMES)}, got {scheme!r}")
    c = INIT_SCHEMES[scheme]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        k = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-c * k, c * k, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-k, k, fan_out).astype(np.float32)
        layers.append((w, b))
    return layers


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which every trainer visits the ``n`` training samples in ``epoch``.

    :func:`lnsmadam.golden.shuffle.epoch_order` ``(n, seed, epoch)``: xorshift32 seeded from
    ``(seed, epoch)`` and an inside-out Fisher-Yates shuffle, the order the hardware
    generates on device -- independent of anything else drawn from ``seed`` (epochs count
    from 0). ``n`` in ``[0, 65535]``, ``seed`` in ``[0, 2**32)``, ``epoch`` in ``[0, 2**16)``;
    an ``int64`` array.
    """
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    seed = _check_seed("seed", seed)
    epoch = _check_seed("epoch", epoch)
    return shuffle.epoch_order(n, seed, epoch)
