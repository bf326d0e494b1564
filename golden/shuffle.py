"""The per-epoch sample order: xorshift32 and an inside-out Fisher-Yates shuffle.

Every trainer (golden and hardware) visits the ``n`` training samples of an epoch in the
order :func:`epoch_order` ``(n, seed, epoch)``; the hardware twin is
:class:`lnsmadam.hw.shuffle.Shuffler`. Everything is 32-bit integer arithmetic chosen to be
small in fabric: one shift-add multiplier serves ``32 x bits(n)`` per element and the
``32 x 32`` constant multiplies of the seeding.

**Seeding** (``seed`` in ``[0, 2**32)``, ``epoch`` in ``[0, 2**16)``)::

    x0 = seed ^ ((epoch ^ 0xFFFF) << 16)          # a bijection of (seed mod 2**16, epoch)
    x0 = 1 if x0 == 0 else x0                     # xorshift32 must never hold 0
    s  = x0
    repeat MIX_ROUNDS (2) times:
        s = xorshift32(s) * MIX_MUL mod 2**32     # MIX_MUL = 0x9E3779B9 (odd)

Both steps of a round are bijections of the 32-bit words that keep 0 at 0, so ``s`` is
never 0, and for seeds below ``2**16`` distinct ``(seed, epoch)`` pairs give distinct
states, except that ``(0, 65535)`` (the zero ``x0``) shares its state with ``(1, 65535)``
(inverting ``epoch`` moves that exception to the last possible epoch). The mix must be
non-linear: xorshift32 is linear over GF(2), and with a linear seeding the words of
consecutive epochs are linear functions of a few epoch bits, which measurably skews the
orders over epochs (the position chi-square of ``tests/test_golden_shuffle.py`` was 164
where 56 is expected).
The multiply carries low bits upwards and the ``>> 17`` of the next xorshift brings them
back down; after two rounds (and the first generator step) one flipped input bit flips
every output bit with probability 0.5 +- 0.04 (measured over 2000 random states), which is
also what three rounds give. In hardware the constant multiply is the element multiplier's
shift-add loop run over 32 bits (no extra adder).

**Generator**: Marsaglia's xorshift32 with shifts (13, 17, 5), a bijection of the non-zero
32-bit words with period ``2**32 - 1``::

    s ^= s << 13 (mod 2**32);  s ^= s >> 17;  s ^= s << 5 (mod 2**32)

**Shuffle** (inside-out Fisher-Yates, no initialisation pass): for ``i = 0 .. n-1``, step
the generator (``r = s`` after the step, a fresh word even for ``i = 0``) and::

    j = (r * (i + 1)) >> 32                      # uniform in [0, i] up to (i+1)/2**32
    a[i] = a[j];  a[j] = i                       # in that order: j == i leaves a[i] = i

The result is a permutation of ``range(n)``; ``n`` is in ``[0, 65535]``.
"""

from __future__ import annotations

import numpy as np

from .format import check_int

__all__ = ["xorshift32", "seed_state", "mixed_state", "random_words", "epoch_order",
           "SEED_BITS", "EPOCH_BITS", "N_MAX", "MIX_ROUNDS", "MIX_MUL"]

SEED_BITS = 32
EPOCH_BITS = 16
#: Largest number of samples (the hardware's element counter is 16 bits).
N_MAX = 65535
#: Rounds of ``s = xorshift32(s) * MIX_MUL`` in the seeding.
MIX_ROUNDS = 2
#: The odd multiplier of the seeding mix (``2**32`` over the golden ratio).
MIX_MUL = 0x9E3779B9

_MASK = 0xFFFFFFFF


def xorshift32(s: int) -> int:
    """One xorshift32 (13, 17, 5) step of a non-zero 32-bit state; never returns 0."""
    s ^= (s << 13) & _MASK
    s ^= s >> 17
    s ^= (s << 5) & _MASK
    return s


def seed_state(seed: int, epoch: int) -> int:
    """The generator state before the warm-up: ``seed ^ ((epoch ^ 0xFFFF) << 16)``, 0 -> 1."""
    seed = check_int("seed", seed, 0, (1 << SEED_BITS) - 1)
    epoch = check_int("epoch", epoch, 0, (1 << EPOCH_BITS) - 1)
    x = seed ^ ((epoch ^ 0xFFFF) << 16)
    return x if x else 1


def mixed_state(seed: int, epoch: int) -> int:
    """The generator state after the seeding mix (never 0); the first word is its successor."""
    s = seed_state(seed, epoch)
    for _ in range(MIX_ROUNDS):
        s = (xorshift32(s) * MIX_MUL) & _MASK
    return s


def random_words(seed: int, epoch: int, count: int) -> list[int]:
    """The ``count`` 32-bit words ``r`` the shuffle of ``(seed, epoch)`` consumes, in order."""
    count = check_int("count", count, 0)
    s = mixed_state(seed, epoch)
    out = []
    for _ in range(count):
        s = xorshift32(s)
        out.append(s)
    return out


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``range(n)`` for ``(seed, epoch)`` as an ``int64`` array.

    ``n`` in ``[0, 65535]``, ``seed`` in ``[0, 2**32)``, ``epoch`` in ``[0, 2**16)``
    (module docstring for the algorithm). About 1 ms for ``n = 1437``.
    """
    n = check_int("n", n, 0, N_MAX)
    a = [0] * n
    for i, r in enumerate(random_words(seed, epoch, n)):
        j = (r * (i + 1)) >> 32
        a[i] = a[j]
        a[j] = i
    return np.array(a, dtype=np.int64)
