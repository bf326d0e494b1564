"""Device memory images: how golden tensors map onto the trainer's regions.

Pure NumPy; the layout is ``docs/protocol.md`` §7. Used by :class:`~.device.Device` and by
the hardware tests, which load the trainer through the same functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["record_words", "pack_dataset", "unpack_dataset", "to_banks", "from_banks",
           "layer_regs", "REGS", "LAYER_REGS", "model_image", "to_u32"]

REGS = {"n_train": 0, "n_test": 1, "epoch_base": 2}
LAYER_REGS = 8


def record_words(n_in: int) -> int:
    """16-bit words per sample: two feature codes per word, then the label."""
    return (n_in + 1) // 2 + 1


def pack_dataset(codes, labels) -> np.ndarray:
    """Records (uint16 words) of ``codes`` (n, n_in) in 0..255 and ``labels`` (n,) in 0..65535."""
    codes = np.asarray(codes)
    labels = np.asarray(labels)
    if codes.ndim != 2:
        raise ValueError(f"codes must have shape (n, n_in), got {codes.shape}")
    n, n_in = codes.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if codes.size and (codes.min() < 0 or codes.max() > 255):
        raise ValueError("codes must be in 0..255")
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError("labels must be in 0..65535")
    rec = record_words(n_in)
    out = np.zeros((n, rec), np.int64)
    padded = np.zeros((n, 2 * (rec - 1)), np.int64)
    padded[:, :n_in] = codes
    out[:, :rec - 1] = padded[:, 0::2] | (padded[:, 1::2] << 8)
    out[:, rec - 1] = labels
    return out.reshape(-1)


def unpack_dataset(words, n_in: int):
    """Inverse of :func:`pack_dataset`: ``(codes, labels)``."""
    rec = record_words(n_in)
    w = np.asarray(words, np.int64).reshape(-1, rec)
    codes = np.empty((len(w), 2 * (rec - 1)), np.int64)
    codes[:, 0::2] = w[:, :rec - 1] & 0xFF
    codes[:, 1::2] = w[:, :rec - 1] >> 8
    return codes[:, :n_in], w[:, rec - 1]


def to_banks(mat, lanes: int, bias_lane: bool = False) -> list[np.ndarray]:
    """Split a (rows, cols) matrix into ``lanes`` banks of ``rows * ceil(cols/lanes)`` words.

    With ``bias_lane`` the last column (the bias) is a bank of its own, ``rows`` words, after
    the ``lanes`` banks of the other ``cols - 1`` columns (``rows * ceil((cols-1)/lanes)``
    words each)."""
    mat = np.asarray(mat, np.int64)
    if bias_lane:
        return to_banks(mat[:, :-1], lanes) + [mat[:, -1].copy()]
    rows, cols = mat.shape
    wpr = -(-cols // lanes)
    pad = np.zeros((rows, wpr * lanes), np.int64)
    pad[:, :cols] = mat
    return [pad[:, b::lanes].reshape(-1).copy() for b in range(lanes)]


def from_banks(banks, rows: int, cols: int, bias_lane: bool = False) -> np.ndarray:
    """Inverse of :func:`to_banks`."""
    if bias_lane:
        return np.concatenate([from_banks(banks[:-1], rows, cols - 1),
                               np.asarray(banks[-1], np.int64).reshape(rows, 1)], 1)
    lanes = len(banks)
    wpr = -(-cols // lanes)
    out = np.zeros((rows, wpr * lanes), np.int64)
    for b, bank in enumerate(banks):
        out[:, b::lanes] = np.asarray(bank, np.int64).reshape(rows, wpr)
    return out[:, :cols]


def to_u32(v: int) -> int:
    return int(v) & 0xFFFFFFFF


def layer_regs(model) -> dict[int, int]:
    """``regs`` words of a golden :class:`~lnsmadam.golden.mlp.LNSMLP`'s per-layer constants."""
    out = {}
    for l in range(len(model.u)):
        out[LAYER_REGS + 4 * l] = to_u32(model.u_bias[l])
        out[LAYER_REGS + 4 * l + 1] = to_u32(model.f_bias[l])
        out[LAYER_REGS + 4 * l + 2] = to_u32(model.e_clamp[l])
    return out


def model_image(model, lanes: int, bias_lane: bool = False) -> dict[str, np.ndarray]:
    """Region name -> words for the weights and state of ``model`` (the bias bank, with
    ``bias_lane``, is ``u{l}.{lanes}`` / ``v{l}.{lanes}``)."""
    out = {}
    for l, (u, v) in enumerate(zip(model.u, model.v)):
        for b, w in enumerate(to_banks(u, lanes, bias_lane)):
            out[f"u{l}.{b}"] = w
        for b, w in enumerate(to_banks(v, lanes, bias_lane)):
            out[f"v{l}.{b}"] = w
    return out
