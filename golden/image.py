"""The trainer's memory image: registers, records and weight banks (``docs/protocol.md`` §7).

Part of the host/device contract, so it lives in the specification, below both sides: the
host client (:mod:`lnsmadam.host.device`) loads and reads the device through it, the RTL
(:mod:`lnsmadam.hw.engine`) takes its register map, record layout and bank layout from it,
and the trainer's tests load the hardware through the same functions. The region list of
a configuration is :meth:`lnsmadam.golden.soc.SoCConfig.regions`. Pure NumPy.

* registers (region ``regs``): :func:`register_map`, one table of every register --
  :data:`REGS` (global registers) at their addresses, then per layer ``l`` the fields
  :data:`LAYER_FIELDS` at ``LAYER_REGS + LAYER_STRIDE * l``. To add a register, add it to
  :data:`REGS` (or :data:`LAYER_FIELDS`) and give it a signal in the trainer.
* records (region ``data``): :func:`record_words` 16-bit words per sample, two feature codes
  per word, then the label (:func:`pack_dataset`, :func:`unpack_dataset`).
* weight and state banks (regions ``u{l}.{b}``, ``v{l}.{b}``): weight ``(i, j)`` of a
  ``(rows, cols)`` matrix lives in bank ``j % lanes`` at ``i * wpr + j // lanes`` with
  ``wpr =`` :func:`words_per_row` ``(cols, lanes)`` (:func:`to_banks`, :func:`from_banks`);
  padding is ZERO. With a bias lane the bias column (the last) is bank ``lanes`` of its own
  (``rows`` words) and the other ``cols - 1`` columns are banked as above.
"""

from __future__ import annotations

import numpy as np

__all__ = ["REGS", "LAYER_REGS", "LAYER_STRIDE", "LAYER_FIELDS", "register_map",
           "regs_depth", "regs_description", "layer_regs", "RECORD_WORD_BITS", "record_words",
           "pack_dataset", "unpack_dataset", "layer_shapes", "words_per_row", "to_banks",
           "from_banks", "model_image", "to_u32", "region_table"]

#: global registers of ``regs``: name -> word address (below :data:`LAYER_REGS`); the run
#: control's (``docs/protocol.md`` §8): ``sample_base`` is where a run's first epoch starts,
#: ``mode`` bit 0 selects the pipelined schedule
REGS = {"n_train": 0, "n_test": 1, "epoch_base": 2, "sample_base": 3, "mode": 4}
#: address of layer 0's registers; layer ``l``'s are at ``LAYER_REGS + LAYER_STRIDE * l``
LAYER_REGS = 8
LAYER_STRIDE = 4
#: the per-layer registers, in address order (signed 32-bit on the bus; the names are the
#: :class:`~lnsmadam.golden.mlp.LNSMLP` attributes that hold them)
LAYER_FIELDS = ("u_bias", "f_bias", "e_clamp")


def register_map(n_layers: int) -> dict[str, int]:
    """Every register of ``regs`` for ``n_layers`` layers: name -> word address, in address
    order; per-layer registers are named ``f"{field}{l}"`` (``u_bias0``, ``f_bias0``, ...)."""
    out = dict(REGS)
    for l in range(n_layers):
        for k, f in enumerate(LAYER_FIELDS):
            out[f"{f}{l}"] = LAYER_REGS + LAYER_STRIDE * l + k
    return out


def regs_depth(n_layers: int) -> int:
    """Words of the ``regs`` region."""
    return LAYER_REGS + LAYER_STRIDE * n_layers


def regs_description() -> dict:
    """The register map as the identify JSON's ``config.regs`` describes it."""
    return {**REGS, "layer_base": LAYER_REGS, "layer_stride": LAYER_STRIDE,
            "layer_fields": list(LAYER_FIELDS)}


def to_u32(v: int) -> int:
    return int(v) & 0xFFFFFFFF


def layer_regs(model) -> dict[int, int]:
    """``regs`` words of a golden :class:`~lnsmadam.golden.mlp.LNSMLP`'s per-layer constants."""
    addr = register_map(len(model.u))
    return {addr[f"{f}{l}"]: to_u32(getattr(model, f)[l])
            for l in range(len(model.u)) for f in LAYER_FIELDS}


#: width of a ``data`` word (two 8-bit feature codes, or the label)
RECORD_WORD_BITS = 16


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


def layer_shapes(sizes) -> list[tuple[int, int]]:
    """``(rows, cols)`` of every layer's stored matrix: ``sizes[l+1]`` outputs by
    ``sizes[l] + 1`` inputs (the bias column last)."""
    return [(int(sizes[l + 1]), int(sizes[l]) + 1) for l in range(len(sizes) - 1)]


def words_per_row(cols: int, lanes: int, bias_lane: bool = False) -> int:
    """Words one matrix row takes in each of ``lanes`` column banks: ``ceil(cols / lanes)``,
    or ``ceil((cols - 1) / lanes)`` when the bias column has a lane of its own."""
    return -(-(cols - int(bias_lane)) // lanes)


def to_banks(mat, lanes: int, bias_lane: bool = False) -> list[np.ndarray]:
    """Split a (rows, cols) matrix into ``lanes`` banks of ``rows * words_per_row`` words
    (and, with ``bias_lane``, the last column as one more bank of ``rows`` words)."""
    mat = np.asarray(mat, np.int64)
    if bias_lane:
        return to_banks(mat[:, :-1], lanes) + [mat[:, -1].copy()]
    rows, cols = mat.shape
    wpr = words_per_row(cols, lanes)
    pad = np.zeros((rows, wpr * lanes), np.int64)
    pad[:, :cols] = mat
    return [pad[:, b::lanes].reshape(-1).copy() for b in range(lanes)]


def from_banks(banks, rows: int, cols: int, bias_lane: bool = False) -> np.ndarray:
    """Inverse of :func:`to_banks`."""
    if bias_lane:
        return np.concatenate([from_banks(banks[:-1], rows, cols - 1),
                               np.asarray(banks[-1], np.int64).reshape(rows, 1)], 1)
    lanes = len(banks)
    wpr = words_per_row(cols, lanes)
    out = np.zeros((rows, wpr * lanes), np.int64)
    for b, bank in enumerate(banks):
        out[:, b::lanes] = np.asarray(bank, np.int64).reshape(rows, wpr)
    return out[:, :cols]


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


def region_table(sizes, lanes: int, n_records: int, weight_bits: int, state_bits: int,
                 bias_lane: bool = False) -> list[tuple[int, str, int, int]]:
    """``(id, name, width, depth)`` of every host-visible region, in id order
    (``docs/protocol.md`` §7): ``regs``, ``data``, then per layer its weight banks
    ``u{l}.{b}`` and state banks ``v{l}.{b}`` (with ``bias_lane`` one more of each, ``rows``
    deep, for the bias column)."""
    out = [(0, "regs", 32, regs_depth(len(sizes) - 1)),
           (1, "data", RECORD_WORD_BITS, n_records * record_words(sizes[0]))]
    for l, (rows, cols) in enumerate(layer_shapes(sizes)):
        depths = [rows * words_per_row(cols, lanes, bias_lane)] * lanes + [rows] * bias_lane
        for kind, bits in (("u", weight_bits), ("v", state_bits)):
            for b, depth in enumerate(depths):
                out.append((len(out), f"{kind}{l}.{b}", bits, depth))
    return out
