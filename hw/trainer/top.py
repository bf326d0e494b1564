"""The trainer component: its units, and its blocks built in order (package docstring)."""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ...golden.soc import SoCConfig
from ..bus import ControlSignature, MemBus
from ..mac import LNSMAC
from ..shuffle import Shuffler
from ..softmax import SoftmaxError
from ..update import MadamUpdate
from .bus_port import BusPort
from .counters import Counters
from .datapath import Datapath
from .geometry import BIAS_BITS, Geometry
from .layers import Layers
from .memories import Memories
from .registers import Registers
from .sequencer import Sequencer

__all__ = ["Trainer"]


class Units(NamedTuple):
    """The trainer's arithmetic units."""
    mac: LNSMAC
    engines: list
    smx: SoftmaxError
    shuf: Shuffler


class Trainer(wiring.Component):
    """Per-sample integer MLP training and evaluation, bit-exact with ``golden.mlp``.

    Runs ``START`` (train epochs over the stored training set, in the on-device epoch
    order) and ``EVALUATE`` (count the correct predictions over the test set) exactly as
    :class:`lnsmadam.golden.trainer.DeviceTrainer` does around ``LNSMLP.step``.

    Parameters
    ----------
    cfg : :class:`~lnsmadam.golden.soc.SoCConfig`
        The model (``sizes``, ``bits``, ``gamma``, ``lr_step``: :meth:`SoCConfig.mlp_config`),
        ``lanes``, ``n_records`` (samples the data memory holds) and the pipeline stages of
        the MAC (``mac_pipeline``, ``mac_out_pipeline``) and of the update engines
        (``update_pipeline``); checked by the config itself.

    Members
    -------
    bus : In(:data:`~lnsmadam.hw.bus.MemBus`)
        Host access to the regions :meth:`SoCConfig.regions` (only while idle).
    ctl : In(:data:`~lnsmadam.hw.bus.ControlSignature`)
        Run control in, status out.

    Latency
    -------
    Per training sample of an ``n_0 - n_1 - ... - n_L`` MLP with ``c_l = n_l + 1`` columns,
    about ``n_0 + 1 + 2 sum_l n_{l+1} ceil(c_l / lanes) + sum_{l>=1} n_l n_{l+1}`` cycles
    (load, forward and update, backward) plus ~10-20 cycles of pipeline drain per phase,
    the softmax unit's ~300 and, once per epoch, the shuffle (package docstring;
    ``bench/trainer_cycles.py`` measures it).

    Throughput
    ----------
    One sample at a time; ``lanes`` weights per cycle in the forward pass and the update,
    one in the backward pass.

    Notes
    -----
    The structure (one layer-generic sequencer, phase flags steering one shared datapath,
    the bank layout) is described in the package docstring. A ``START`` or ``EVALUATE``
    with no training data, more records than fit or (``START``) ``epochs == 0`` or
    ``lr_step`` outside 1..64 sets ``error`` and stays idle.
    """

    def __init__(self, cfg: SoCConfig):
        # a rejected configuration is not an unused elaboratable (no warning for it)
        self._MustUse__silence = True
        if not isinstance(cfg, SoCConfig):
            raise ValueError(f"cfg must be a SoCConfig, got {cfg!r}")
        self.cfg = cfg
        self.geo = Geometry(cfg)
        super().__init__({"bus": In(MemBus), "ctl": In(ControlSignature)})
        self._MustUse__silence = False

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        layers = Layers(m, geo)
        mem = Memories(m, geo)
        regs = Registers(m, geo, layers)
        units = self._units(m)
        seq = Sequencer(m, geo, self.ctl, units.engines)
        layers.bounds()
        pb = regs.phase_bias(seq.ph.upd, seq.ph.bwd)
        ecl = layers.pick(regs.e_clamp, "ecl")
        cnt = Counters(m, geo)
        cnt.build(seq.ph, layers, seq.restart, seq.co_inc)
        dp = Datapath(m, geo, self.bus, mem, layers, regs, seq.ph, cnt, pb, ecl, units,
                      seq.label)
        port = BusPort(m, geo, self.bus, mem, regs, dp, seq.steps)
        seq.build(layers, regs, mem, cnt, dp, units.smx, units.shuf, port)
        return m

    def _units(self, m: Module) -> Units:
        cfg, geo = self.cfg, self.geo
        # the output layer's words come from the tap, so the stream need not carry them
        mac = m.submodules.mac = LNSMAC(geo.mac_cfg, pipeline=cfg.mac_pipeline,
                                        out_pipeline=cfg.mac_out_pipeline,
                                        out_acc=False, acc_tap=True)
        engines = [MadamUpdate(geo.mlp.madam, pipeline=cfg.update_pipeline,
                               bias_bits=BIAS_BITS + 2, runtime_lr=True)
                   for _ in range(geo.lanes)]
        for b, eng in enumerate(engines):
            m.submodules[f"update{b}"] = eng
        smx = m.submodules.softmax = SoftmaxError(geo.mlp, bias_bits=BIAS_BITS)
        shuf = m.submodules.shuffle = Shuffler(geo.n_records)
        m.d.comb += mac.o_stream.ready.eq(1)
        for eng in engines:
            m.d.comb += eng.o_stream.ready.eq(1)
        return Units(mac, engines, smx, shuf)
