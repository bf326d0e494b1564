"""The trainer's registers: the host-visible ones of the ``regs`` region and the runtime
tensor biases."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed

from ...golden.image import LAYER_FIELDS, REGS, register_map
from .geometry import BIAS_BITS, Geometry
from .layers import Layers

__all__ = ["Registers"]


class Registers:
    """Registers, built into ``m``.

    Host-visible (region ``regs``, :func:`~lnsmadam.golden.image.register_map`): ``n_train``,
    ``n_test``, ``epoch_base`` (16 bits) and per layer ``u_bias[l]``, ``f_bias[l]``
    (signed, :data:`BIAS_BITS`) and ``e_clamp[l]`` (weight field width). Runtime tensor
    biases, per layer: ``a_bias[l]`` (the layer's input; layer 0's stays ``-emax``) and
    ``e_bias[l]`` (the error at its output). ``ub``, ``fb``, ``ab``, ``eb``: those of the
    current layer.
    """

    def __init__(self, m: Module, geo: Geometry, layers: Layers):
        self.m, self.geo = m, geo
        nl, emax = geo.n_layers, geo.fmt.emax
        W = geo.mlp.madam.weight
        self.n_train = Signal(16)
        self.n_test = Signal(16)
        self.epoch_base = Signal(16)
        self.u_bias = [Signal(signed(BIAS_BITS), name=f"u_bias{l}") for l in range(nl)]
        self.f_bias = [Signal(signed(BIAS_BITS), name=f"f_bias{l}") for l in range(nl)]
        self.e_clamp = [Signal(W.exp_bits, name=f"e_clamp{l}") for l in range(nl)]
        self.a_bias = [Signal(signed(BIAS_BITS), name=f"a_bias{l}", init=-emax)
                       for l in range(nl)]
        self.e_bias = [Signal(signed(BIAS_BITS), name=f"e_bias{l}") for l in range(nl)]
        pick = layers.pick
        self.ub, self.fb, self.ab, self.eb = (pick(self.u_bias, "ub"), pick(self.f_bias, "fb"),
                                              pick(self.a_bias, "ab"), pick(self.e_bias, "eb"))

    def by_address(self) -> dict[int, Signal]:
        """Word address -> register, for every register of the golden register map, in
        address order: a global register is the attribute of its name (:data:`REGS`), a
        per-layer one element ``l`` of the list named after its field
        (:data:`LAYER_FIELDS`). A register added to the map needs its attribute here."""
        nl = self.geo.n_layers
        sigs = {name: getattr(self, name) for name in REGS}
        sigs.update({f"{f}{l}": getattr(self, f)[l] for l in range(nl) for f in LAYER_FIELDS})
        addr = register_map(nl)
        return {addr[name]: sigs[name] for name in addr}

    def phase_bias(self, ph_upd, ph_bwd) -> Signal:
        """The one bias sum each phase needs, from one adder: FWD ``fb + ab`` (the exponent
        of a result), SMX the same for the output layer (the softmax's logit bias), BWD
        ``fb + eb``, UPD ``eb + ab + emax`` (the gradient's bias)."""
        pb = Signal(signed(BIAS_BITS + 2))
        self.m.d.comb += pb.eq(Mux(ph_upd, self.eb, self.fb) + Mux(ph_bwd, self.eb, self.ab)
                               + Mux(ph_upd, self.geo.fmt.emax, 0))
        return pb
