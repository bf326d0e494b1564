"""The trainer's memories: the data set, the weight and state banks, the per-sample vectors."""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ...golden.image import RECORD_WORD_BITS
from ..util.registered_read import RegisteredRead
from .geometry import BIAS_BITS, Geometry

__all__ = ["Bank", "Memories"]


class Bank(NamedTuple):
    """One memory with a registered read port ``rd`` (enable ``rd.en``) and a write port
    ``wr``."""
    mem: Memory
    rd: RegisteredRead
    wr: object


class Memories:
    """Every memory of the trainer, built into ``m``.

    ``data``: the records (``n_records * record_words`` 16-bit words; one address ``d_addr``
    for both ports and no read while writing, the shape Yosys maps to the iCE40UP5K's
    single-port SPRAM), read port ``d_rp``, write port ``d_wp``.
    ``U[l][b]``, ``V[l][b]``: the weights and second-moment state of layer ``l``, lane bank
    ``b`` (``docs/protocol.md`` §7). The small vectors of all layers share one memory per kind
    (one EBR each on iCE40 instead of one per layer), at per-layer bases (``geo``):
    ``A[b]`` the layer inputs (constant 1 included, banked like the weights), ``E`` the
    errors at the layer outputs, ``MASK`` the ReLU derivatives of the hidden layers (None
    for one layer) and ``XT``, the scratch: a hidden layer's exponents before
    requantisation (entries of :attr:`xt_layout`, in FWD/HREQ and BWD/EREQ) or the output
    layer's accumulator words (FWD/SMX), never both live.
    """

    def __init__(self, m: Module, geo: Geometry):
        L, nl, rows, wpr = geo.lanes, geo.n_layers, geo.rows, geo.wpr
        fmt, W, V = geo.fmt, geo.mlp.madam.weight, geo.mlp.madam.state

        def mem(name, width, depth):
            # RegisteredRead saves about 100 logic cells in all on iCE40; the sequencer
            # never uses a read of the word being written in the same cycle (the bus's
            # write cycles ignore the read)
            mm = Memory(shape=unsigned(width), depth=max(depth, 2), init=[],
                        attrs={"no_rw_check": 1})
            m.submodules[name] = mm
            return Bank(mm, RegisteredRead(m, mm, name, enable=True), mm.write_port())

        data_mem = Memory(shape=unsigned(RECORD_WORD_BITS), depth=geo.data_words, init=[])
        m.submodules.data_mem = data_mem
        self.data = data_mem
        self.d_addr = d_addr = Signal(range(data_mem.depth))
        self.d_rp = d_rp = data_mem.read_port()
        self.d_wp = d_wp = data_mem.write_port()
        m.d.comb += [d_rp.addr.eq(d_addr), d_wp.addr.eq(d_addr), d_rp.en.eq(~d_wp.en)]

        self.U = [[mem(f"u{l}_{b}", W.bits, rows[l] * wpr[l]) for b in range(L)]
                  for l in range(nl)]
        self.V = [[mem(f"v{l}_{b}", V.bits, rows[l] * wpr[l]) for b in range(L)]
                  for l in range(nl)]
        self.A = [mem(f"act{b}", fmt.bits, sum(wpr)) for b in range(L)]
        self.E = mem("err", fmt.bits, sum(rows))
        self.MASK = mem("mask", 1, sum(rows[:-1])) if nl > 1 else None
        #: a scratch entry: a hidden result's exponent with its tensor biases, sign, zero
        self.xt_layout = data.StructLayout({"x": signed(BIAS_BITS + 2), "sign": 1, "zero": 1})
        self.XT = mem("scratch", max(self.xt_layout.size, geo.acc_bits),
                      max(max(rows) + 1, 2))
