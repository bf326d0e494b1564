"""Optional pipeline registers along a datapath, advancing (and stalling) together."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value

__all__ = ["Stages"]


class Stages:
    """Register cuts of one datapath, all advancing on ``adv``.

    ``cut(name, values)`` returns registered copies of ``values`` (a list, or a dict whose
    keys name the registers) when ``name`` is one of the ``enabled`` cuts, else the values
    themselves. The beat's control bits given as keywords (e.g. ``valid``, ``first``,
    ``last``) travel along: after an enabled cut, the attribute of that name is its registered
    copy, so the stage after the last cut reads them in step with its data. Registers are
    named ``{name}_{key}`` and ``{name}_{control}``.
    """

    def __init__(self, m: Module, adv, enabled, **travel):
        self.m, self.adv, self.enabled = m, adv, set(enabled)
        self._travel = tuple(travel)
        for k, v in travel.items():
            setattr(self, k, v)

    def cut(self, name: str, values):
        if name not in self.enabled:
            return values
        keyed = values if isinstance(values, dict) else dict(enumerate(values))
        regs = {k: Signal(Value.cast(v).shape(), name=f"{name}_{k}") for k, v in keyed.items()}
        ctl = [Signal(name=f"{name}_{c}") for c in self._travel]
        with self.m.If(self.adv):
            self.m.d.sync += [regs[k].eq(v) for k, v in keyed.items()]
            self.m.d.sync += [c.eq(getattr(self, t)) for c, t in zip(ctl, self._travel)]
        for c, t in zip(ctl, self._travel):
            setattr(self, t, c)
        return regs if isinstance(values, dict) else list(regs.values())
