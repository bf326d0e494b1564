"""The trainer's sizes and memory layout, derived once from its :class:`SoCConfig`."""

from __future__ import annotations

from dataclasses import replace

from amaranth.hdl import Const

from ...golden.image import layer_shapes, words_per_row
from ...golden.soc import SoCConfig

__all__ = ["Geometry", "BIAS_BITS"]

#: width of every runtime tensor bias register
BIAS_BITS = 16


class Geometry:
    """Everything the trainer's blocks size themselves by (pure Python).

    ``mlp`` (the golden model), ``fmt``, ``lanes`` and ``lane_bits``, ``n_layers``,
    per layer ``rows``, ``cols`` and ``wpr`` (:func:`~lnsmadam.golden.image.words_per_row`),
    the bases of each layer's vector in the shared memories (``a_base``, ``e_base``,
    ``k_base``), the data memory's ``rec`` words per record and ``data_words``, the MAC
    configuration ``mac_cfg`` (``lanes`` wide) and its ``acc_bits``, and ``n_max``, the
    largest count a streaming counter reaches.
    """

    def __init__(self, cfg: SoCConfig):
        self.cfg = cfg
        self.mlp = mlp = cfg.mlp_config()
        self.fmt = mlp.fmt
        self.lanes = cfg.lanes
        self.lane_bits = cfg.lanes.bit_length() - 1
        self.n_records = cfg.n_records
        self.rec = cfg.record_words
        self.data_words = cfg.n_records * self.rec
        self.n_in = cfg.sizes[0]
        self.n_layers = nl = cfg.n_layers
        shapes = layer_shapes(cfg.sizes)
        self.rows = rows = [r for r, _ in shapes]
        self.cols = [c for _, c in shapes]
        self.wpr = wpr = [words_per_row(c, cfg.lanes) for c in self.cols]
        self.a_base = [sum(wpr[:l]) for l in range(nl)]
        self.e_base = [sum(rows[:l]) for l in range(nl)]
        # the ReLU masks of the hidden layers have their own offsets, not e_base: for one
        # hidden layer they are constant 0 and cost no adder
        self.k_base = [sum(rows[:l]) for l in range(nl - 1)]
        self.mac_cfg = replace(mlp.mac, lanes=cfg.lanes)
        self.acc_bits = self.mac_cfg.acc_bits
        self.n_max = max(max(r * w for r, w in zip(rows, wpr)), self.n_in + 1, max(rows) + 1)

    def bank(self, x):
        """The lane bank of vector index ``x`` (``x % lanes``)."""
        return x[:self.lane_bits] if self.lane_bits else Const(0, 1)

    def word(self, x):
        """The word of vector index ``x`` within its bank (``x // lanes``)."""
        return x >> self.lane_bits
