"""The training data: scikit-learn's bundled 8x8 handwritten digits, split reproducibly.

Source: :func:`sklearn.datasets.load_digits` -- 1797 images of 8x8 pixels, classes 0..9,
shipped inside scikit-learn (no network access).  Each pixel is an integer 0..16 (the
count of set pixels in a 4x4 block of the original 32x32 bitmap).

Split: :func:`sklearn.model_selection.train_test_split` with ``test_size=360``,
``stratify=y`` and ``random_state=seed``, giving exactly 1437 training and 360 test
samples with every class present in both, and the same split for the same seed.

Encodings (rows are samples, the 64 columns are the pixels in row-major order):

* ``pixels_train`` / ``pixels_test`` -- ``uint8`` with values 0..16, the raw integers;
  this is what the hardware stores.
* ``x_train`` / ``x_test`` -- ``float32`` features ``pixel / 16`` in [0, 1].  The
  division by a power of two is exact, so ``x * 16 == pixels`` holds exactly.
* ``y_train`` / ``y_test`` -- ``int64`` class labels 0..9.

All arrays are read-only, because :func:`load_digits_split` caches one split per seed
and hands the same object to every caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral

import numpy as np

__all__ = ["DigitsSplit", "load_digits_split", "N_TRAIN", "N_TEST", "N_FEATURES",
           "N_CLASSES", "PIXEL_MAX"]

N_TRAIN = 1437
N_TEST = 360
N_FEATURES = 64
N_CLASSES = 10
PIXEL_MAX = 16


@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """One reproducible train/test split of the digits data (see the module docstring)."""

    x_train: np.ndarray       # (1437, 64) float32, pixel / 16 in [0, 1]
    y_train: np.ndarray       # (1437,) int64, 0..9
    x_test: np.ndarray        # (360, 64) float32, pixel / 16 in [0, 1]
    y_test: np.ndarray        # (360,) int64, 0..9
    pixels_train: np.ndarray  # (1437, 64) uint8, 0..16
    pixels_test: np.ndarray   # (360, 64) uint8, 0..16
    seed: int                 # the random_state of the split


def load_digits_split(seed: int = 0) -> DigitsSplit:
    """Return the stratified 1437/360 split of the 8x8 digits for ``seed``.

    ``seed`` must be a non-negative integer (it is passed to scikit-learn as
    ``random_state``); anything else raises :class:`ValueError`.  The result is cached
    per seed, so repeated calls return the same (read-only) object.
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return _load_split(int(seed))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@lru_cache(maxsize=16)
def _load_split(seed: int) -> DigitsSplit:
    # Imported here: scikit-learn is slow to import and only needed to load the data.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    raw = np.asarray(digits.data)
    y = np.asarray(digits.target).astype(np.int64)
    if (raw.shape != (N_TRAIN + N_TEST, N_FEATURES) or raw.min() < 0
            or raw.max() > PIXEL_MAX or not np.all(raw == np.round(raw))):
        raise RuntimeError("unexpected contents of sklearn.datasets.load_digits")
    pixels = raw.astype(np.uint8)

    p_train, p_test, y_train, y_test = train_test_split(
        pixels, y, test_size=N_TEST, stratify=y, random_state=seed)

    def features(p: np.ndarray) -> np.ndarray:
        return p.astype(np.float32) / np.float32(PIXEL_MAX)

    return DigitsSplit(
        x_train=_readonly(features(p_train)),
        y_train=_readonly(y_train),
        x_test=_readonly(features(p_test)),
        y_test=_readonly(y_test),
        pixels_train=_readonly(p_train),
        pixels_test=_readonly(p_test),
        seed=seed,
    )
