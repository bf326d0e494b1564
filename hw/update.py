"""The streaming LNS-Madam weight-update engine (twin of :mod:`lnsmadam.golden.update`).

:class:`MadamUpdate` takes one weight per clock -- its stored code ``w``, its second-moment
state ``v`` and its gradient ``g`` -- and returns ``w_new``, ``v_new`` and the applied
exponent step ``n``, exactly :func:`lnsmadam.golden.update.madam_step` (``docs/format.md``
§7). The datapath, stage by stage (each name is the optional pipeline cut after the stage):

1. ``in``: ``x_g = Eg + g_bias``, clamped to a narrow window that keeps every later
   decision (below it the gradient underflows, above it g² saturates and ``n`` is
   ``g_bound`` whatever the state); the g² under/overflow flags and exponent.
2. ``align``: g²'s mantissa (the ``2**(r/gamma)`` ROM, saturation); the EMA's common
   exponent ``e = max(ev, eg - k)`` and the two (saturated) alignment shifts, from one
   difference ``eg - k - ev``. The seed (``v = 0``, ``g != 0``, no bias correction) is
   routed through the same adder as ``A = 0, B = g² << (guard + k), e = eg``, which the
   normaliser turns back into exactly g²; with bias correction ``v = 0`` always takes the
   g²-dominant path (``v' = g² * 2**-k`` exactly, or 0 below the range).
3. ``sum``: the two barrel shifters and ``S = A*(2**k - 1) + B``; beside them the constant
   part of ``z`` (``2*x_g - gamma*offset [+ bc_exp]``).
4. ``norm``: leading one of ``S`` (it can only sit in the top three positions: the larger
   addend is never shifted), normalising shift, round half up, carry renormalisation,
   state saturation/underflow: ``v'``.
5. ``z``: the log-domain normaliser: ``r_v`` (``gamma`` midpoint comparisons),
   ``z = 2*x_g - x_v [+ bc_exp]`` with ``x_v = gamma*(ev' + offset) + r_v``.
6. ``thr``: the ``g_bound`` threshold comparisons of ``z``;
   ``n``: ``lr_step * n`` with ``n = #{j : z >= t[j]}`` (the comparisons read as a
   thermometer code), 0 for a ZERO gradient or ``v' = 0``, signed.
7. (the output register) ``E' = clip(E + step, 1, e_clamp)``; ZERO weights stay ZERO
   (the canonical code 0).

Comparisons with constants are built as AND/OR chains
(:func:`~lnsmadam.hw.util.compare.ge_const`), which synthesis maps to
small LUT trees instead of one carry-chain LC per bit (a fifth of the iCE40 area).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.format import check_int, midpoint_table, pow2_table, round_threshold_table
from ..golden.update import MadamConfig, StateFormat
from .format import check_bool, is_zero, lns_layout, signed_bits
from .util.compare import ge_const
from .util.rom import rom
from .util.stages import Stages

__all__ = ["MadamUpdate", "state_layout", "update_input_layout", "update_output_layout",
           "config_to_dict", "config_from_dict"]


def config_to_dict(cfg: MadamConfig) -> dict:
    """JSON-able description of a :class:`MadamConfig` (inverse: :func:`config_from_dict`).

    Used by ``lnsmadam generate update`` (the JSON ``parameters``) and by the cocotb
    regression, which rebuilds the golden model from it.
    """
    fmt = lambda f: {"bits": f.bits, "frac_bits": f.frac_bits, "gamma": f.gamma,  # noqa: E731
                     "bias": f.bias, "underflow": f.underflow}
    return {"weight": fmt(cfg.weight), "grad": fmt(cfg.grad),
            "state": {"exp_bits": cfg.state.exp_bits, "man_bits": cfg.state.man_bits,
                      "offset": cfg.state.offset, "bits": cfg.state.bits},
            "lr_step": cfg.lr_step, "g_bound": cfg.g_bound, "beta_k": cfg.beta_k,
            "guard_bits": cfg.guard_bits, "bias_correction": bool(cfg.bias_correction),
            "bc_bits": cfg.bc_bits, "bits_per_weight": cfg.bits_per_weight}


def config_from_dict(d: dict) -> MadamConfig:
    """The :class:`MadamConfig` described by :func:`config_to_dict`."""
    from ..golden.format import LNSFormat

    fmt = lambda f: LNSFormat(f["bits"], f["frac_bits"], f["bias"], f["underflow"])  # noqa: E731
    st = d["state"]
    return MadamConfig(weight=fmt(d["weight"]), grad=fmt(d["grad"]),
                       state=StateFormat(st["exp_bits"], st["man_bits"], st["offset"]),
                       lr_step=d["lr_step"], g_bound=d["g_bound"], beta_k=d["beta_k"],
                       guard_bits=d["guard_bits"], bias_correction=d["bias_correction"],
                       bc_bits=d["bc_bits"])


def state_layout(state: StateFormat) -> data.StructLayout:
    """Layout of one state code: ``frac`` (``man_bits - 1``, LSBs) then ``exp``.

    The packed word equals the golden :class:`~lnsmadam.golden.update.StateFormat` code
    (``ev << (man_bits - 1) | frac``).
    """
    if not isinstance(state, StateFormat):
        raise ValueError(f"state must be a StateFormat, got {state!r}")
    return data.StructLayout({"frac": unsigned(state.man_bits - 1),
                              "exp": unsigned(state.exp_bits)})


def _n_bits(cfg: MadamConfig, runtime_lr: bool = False) -> int:
    top = (64 if runtime_lr else cfg.lr_step) * cfg.g_bound
    return signed_bits(-top, top)


def update_input_layout(cfg: MadamConfig) -> data.StructLayout:
    """Input beat: ``w`` (weight code), ``v`` (state code), ``g`` (gradient code)."""
    return data.StructLayout({"w": lns_layout(cfg.weight), "v": state_layout(cfg.state),
                              "g": lns_layout(cfg.grad)})


def update_output_layout(cfg: MadamConfig, runtime_lr: bool = False) -> data.StructLayout:
    """Output beat: ``w_new``, ``v_new`` and ``n``, the signed applied exponent step."""
    return data.StructLayout({"w_new": lns_layout(cfg.weight),
                              "v_new": state_layout(cfg.state),
                              "n": signed(_n_bits(cfg, runtime_lr))})


def _thermometer_value(bits: list, values: list) -> Value:
    """``values[c]`` where ``c`` is the number of ones in the thermometer code ``bits``.

    ``bits[j]`` must imply ``bits[j - 1]`` (comparisons against non-decreasing constants).
    ``c == j`` is detected as ``bits[j-1] & ~bits[j]``, so the result is an OR of one-hot
    terms (a few LUT levels) instead of an adder tree and a multiplier.
    """
    n = len(bits)
    width = max(max(int(v).bit_length() for v in values), 1)
    terms = [Mux(~bits[0], values[0], 0) if n else Const(values[0], width)]
    for c in range(1, n + 1):
        if values[c] == 0:
            continue
        hit = bits[c - 1] if c == n else bits[c - 1] & ~bits[c]
        terms.append(Mux(hit, values[c], 0))
    # a balanced OR tree: a chain of gamma terms (4096 at most) would nest too deeply for
    # Amaranth's recursive checks
    while len(terms) > 1:
        terms = [terms[j] | terms[j + 1] if j + 1 < len(terms) else terms[j]
                 for j in range(0, len(terms), 2)]
    return terms[0]


class MadamUpdate(wiring.Component):
    """Pipelined integer LNS-Madam step, bit-exact with ``golden.update.madam_step``.

    Per weight (one input beat): the gradient's square as a state minifloat (saturating;
    below the state range the gradient counts as ZERO), the EMA
    ``v' = v*(1 - 2**-k) + g²*2**-k`` (aligned to the larger addend with ``guard_bits``,
    g² with ``k`` more, rounded half up; or the seed ``v' = g²`` when ``v = 0`` without bias
    correction), ``n = round_half_even(min(|g|/sqrt(v' [/(1 - beta**t)]), g_bound))`` from
    the log domain, and ``E' = clip(E -/+ lr_step*n, 1, e_clamp)`` (minus when the weight and
    gradient signs agree); ZERO weights stay ZERO (code 0, sign bit cleared). See the
    module docstring for the
    stages and ``docs/format.md`` §7 for every rule.

    Parameters
    ----------
    cfg : MadamConfig
        Formats, ``lr_step`` (1..64), ``g_bound`` (1..64), ``beta_k`` (1..20),
        ``guard_bits`` (0..8), ``bias_correction``, ``bc_bits`` (12..40), all validated by
        the dataclass. Hardware cost grows with ``gamma`` of the gradient format (``gamma``
        midpoint comparators; up to 4096 are legal) and ``g_bound`` (threshold comparators).
    pipeline : int, 0..7 (default 5)
        Register cuts enabled, in the order ``CUT_ORDER``: ``sum``, ``align``, ``norm``,
        ``n``, ``z``, ``in`` (the order of their measured effect on the iCE40 Fmax), then
        ``thr`` (between the threshold comparisons and the ``lr_step`` multiply: the
        ECP5 clock with ``runtime_lr``).
    bias_bits : int, 2..48 (default 32: every legal LNS bias, ±2**30)
        Width of the signed ``g_bias`` input.
    runtime_lr : bool (default False)
        Take ``lr_step`` (1..64) from a side-band input port ``lr_step`` instead of
        ``cfg.lr_step`` (a small multiplier replaces the constant table; the trainer
        uses it so that ``START`` can choose the step). Held like ``g_bias``.

    Members
    -------
    i_stream : In(stream.Signature(:func:`update_input_layout`))
        ``w``, ``v``, ``g`` codes (packed words equal the golden codes).
    o_stream : Out(stream.Signature(:func:`update_output_layout`))
        ``w_new``, ``v_new`` and ``n`` (signed, ``lr_step * (+-n)``, 0 for a ZERO weight;
        golden's third result).
    g_bias : In(signed(bias_bits))
        Side-band, per step: the gradient tensor's bias.
    e_clamp : In(weight field width)
        Side-band, per step: the sigma* clamp.
    bc_exp : In(signed)
        Side-band, per step: the step's :meth:`BiasCorrection.exponent
        <lnsmadam.golden.update.BiasCorrection.exponent>`; wide enough for
        ``-gamma*bc_bits .. 0``; ignored unless ``cfg.bias_correction``.
    lr_step : In(7), with ``runtime_lr`` only
        Side-band, per step: the step, 1..64.

    Latency
    -------
    A weight accepted in cycle ``t`` is presented in cycle ``t + latency``,
    ``latency = pipeline + 1`` (the cuts plus the output register): 6 cycles at the
    default ``pipeline=5``.

    Throughput
    ----------
    One weight per cycle after the pipeline fills. Backpressure stalls the whole
    pipeline: ``i_stream.ready = ~o_stream.valid | o_stream.ready`` (as in
    :mod:`lnsmadam.hw.mac`), so the input is refused exactly while a result is presented
    and not taken.

    Notes
    -----
    The side-band inputs are read combinationally by the stage that needs them, so they
    must be held from the moment the first weight of a step is accepted until its last
    result has been presented (change them only while the engine is empty, e.g. between
    tensors). Every representable value is handled exactly, including ``e_clamp = 0``
    (golden's ``clip`` then gives ZERO). Measured on an iCE40UP5K (``bench/update_area.py``,
    ``docs/update-engine.md``): about 28-30 MHz at ``pipeline=5`` and 31-34 MHz at 6 for
    the default formats.
    """

    #: cut names along the datapath
    CUTS = ("in", "align", "sum", "norm", "z", "thr", "n")
    #: the order in which ``pipeline`` enables them (chosen by measured iCE40 Fmax)
    CUT_ORDER = ("sum", "align", "norm", "n", "z", "in", "thr")

    def __init__(self, cfg: MadamConfig, pipeline: int = 5, bias_bits: int = 32,
                 runtime_lr: bool = False):
        if not isinstance(cfg, MadamConfig):
            raise ValueError(f"cfg must be a MadamConfig, got {cfg!r}")
        self.cfg = cfg
        self.runtime_lr = check_bool("runtime_lr", runtime_lr)
        self.pipeline = check_int("pipeline", pipeline, 0, len(self.CUT_ORDER))
        self.bias_bits = check_int("bias_bits", bias_bits, 2, 48)
        self.cuts = tuple(c for c in self.CUTS if c in self.CUT_ORDER[:self.pipeline])
        G, V = cfg.grad, cfg.state
        g, f = G.gamma, G.frac_bits
        fb = V.man_bits - 1
        k, gd = cfg.beta_k, cfg.guard_bits
        #: width of ``bc_exp``: holds every BiasCorrection exponent, -gamma*bc_bits .. 0
        self.bc_width = signed_bits(-g * cfg.bc_bits, 0)
        # the gradient underflows (g² below the state range) iff x_g < U0 and overflows
        # (g² saturates) iff x_g >= O0
        self.U0 = -((-g * (1 + V.offset)) // 2)
        self.O0 = -((-g * (V.emax + V.offset + 1)) // 2)
        self.thr = round_threshold_table(f, cfg.g_bound)
        self.mids = midpoint_table(f, fb)
        self.pow2 = pow2_table(f, fb)
        # largest x_v (state exponent in the log domain, bias correction subtracted)
        xv_max = g * (V.emax + V.offset + 1)
        if cfg.bias_correction:
            xv_max += 1 << (self.bc_width - 1)
        # x_g >= X_HI: overflowing g² and z >= t[-1] (n = g_bound) whatever x_v is
        self.X_HI = max(self.O0, -((-(self.thr[-1] + xv_max)) // 2))
        self.xg_bits = signed_bits(self.U0 - 1, self.X_HI)
        # g_bias below G_LO underflows for every Eg, above X_HI it clamps for every Eg
        self.G_LO = self.U0 - 1 - cfg.grad.emax
        #: bits of g_bias added to Eg (enough for any bias in [G_LO, X_HI])
        self.gb_bits = min(signed_bits(self.G_LO, self.X_HI), self.bias_bits)
        # S = A*(2**k - 1) + B < 2**WS; its leading one is never below l_lo (the larger
        # addend is unshifted), except where golden clips (sh = 1) or the result is masked
        self.s_bits = V.man_bits + gd + k + 1
        self.l_lo = max(fb + 1, fb + gd + k - 1)
        ports = {
            "i_stream": In(stream.Signature(update_input_layout(cfg))),
            "o_stream": Out(stream.Signature(update_output_layout(cfg, self.runtime_lr))),
            "g_bias": In(signed(self.bias_bits)),
            "e_clamp": In(unsigned(cfg.weight.exp_bits)),
            "bc_exp": In(signed(self.bc_width)),
        }
        if self.runtime_lr:
            ports["lr_step"] = In(7)
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Cycles from accepting a weight to presenting its result."""
        return self.pipeline + 1

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        W, G, V = cfg.weight, cfg.grad, cfg.state
        f, gamma = G.frac_bits, G.gamma
        fb, MB, EV = V.man_bits - 1, V.man_bits, V.exp_bits
        k, gd = cfg.beta_k, cfg.guard_bits
        i, o = self.i_stream, self.o_stream
        adv = Signal()
        m.d.comb += [adv.eq(~o.valid | o.ready), i.ready.eq(adv)]
        st = Stages(m, adv, self.cuts, valid=i.valid)
        p = i.payload

        # 1. x_g = Eg + g_bias, clamped to [U0 - 1, X_HI] (exact for every later use). The
        #    wide range test of the bias runs beside a narrow add of its low bits: a bias
        #    below G_LO underflows for every Eg, one above X_HI clamps for every Eg, and
        #    in between the narrow sum is exact
        gb = self.g_bias
        b_lo, b_hi = ~ge_const(gb, self.G_LO, m), ge_const(gb, self.X_HI + 1, m)
        x_n = p.g.exp + gb[:self.gb_bits].as_signed()
        under = b_lo | (~b_hi & ~ge_const(x_n, self.U0, m))
        over = b_hi | (~b_lo & ge_const(x_n, self.O0, m))           # g² saturates
        xgc = Signal(signed(self.xg_bits))
        m.d.comb += xgc.eq(Mux(under, self.U0 - 1,
                               Mux(b_hi | ge_const(x_n, self.X_HI + 1, m), self.X_HI, x_n)))
        two_xg = Cat(Const(0, 1), x_n).as_signed()       # t = 2*x_g
        egs = Mux(over, V.emax, (two_xg >> f) - V.offset)[:EV]   # exact unless g is ZERO
        s = st.cut("in", {"xg": xgc, "zg": is_zero(p.g) | under, "over": over,
                          "r": two_xg[:f], "egs": egs, "sg": p.g.sign, "v": p.v.as_value(),
                          "w": p.w.as_value()})

        # 2. g² = 2**(2*x_g/gamma) as a minifloat; EMA exponent e = max(ev, eg - k) and the
        #    alignment shifts e - ev (of v) and e - eg + k (of g²), from one difference
        zg, egs = s["zg"], s["egs"]
        mg = Mux(s["over"], (1 << MB) - 1, rom(self.pow2, s["r"]))
        v = data.View(state_layout(V), s["v"])
        ev = v.exp
        vzero = ev == 0
        mv = Mux(vzero, 0, Cat(v.frac, Const(1, 1)))
        seed = (vzero & ~zg) if not cfg.bias_correction else Const(0)
        d = egs - k - ev                                 # > 0: g² * 2**-k is the larger
        if cfg.bias_correction:
            # v = 0: S = B = g² * 2**-k exactly (golden: e = max(0, eg - k)); taking the
            # g²-dominant path for every eg keeps the leading one of S at a fixed place,
            # and eg <= k (v' below the state range) is flagged instead
            gdom = ~zg & ((d > 0) | vzero)
            vlow = vzero & ~zg & ~ge_const(egs, k + 1, m)
        else:
            gdom = ~zg & ~seed & (d > 0)
            vlow = Const(0)
        nd = ev + k - egs
        # shifts are saturated where the shifted addend is gone (A: man_bits + guard bits,
        # B: k more); a ZERO gradient shifts B out entirely
        asat, bsat = MB + gd, MB + gd + k
        e = Signal(EV)
        da = Signal(range(asat + 1))
        db = Signal(range(bsat + 1))
        m.d.comb += [
            e.eq(Mux(seed, egs, Mux(gdom, egs - k, ev))),
            da.eq(Mux(gdom, Mux(ge_const(d, asat, m), asat, d), 0)),
            db.eq(Mux(zg, bsat, Mux(seed | gdom, 0, Mux(ge_const(nd, bsat, m), bsat, nd)))),
        ]
        s = st.cut("align", {"mv": mv, "mg": mg, "da": da, "db": db, "e": e, "zg": zg,
                             "vzg": (vzero & zg) | vlow, "xg": s["xg"], "sg": s["sg"],
                             "w": s["w"]})

        # 3. S = A*(2**k - 1) + B (< 2**WS)
        WS = self.s_bits
        A = (Cat(Const(0, gd), s["mv"]) >> s["da"]) if gd else s["mv"] >> s["da"]
        B = Cat(Const(0, gd + k), s["mg"]) >> s["db"]
        S = Signal(WS)
        m.d.comb += S.eq((A << k) - A + B)
        # beside it, the constant part of z: 2*x_g - gamma*offset [+ bc_exp]
        xk = 2 * s["xg"] - gamma * V.offset
        if cfg.bias_correction:
            xk = xk + self.bc_exp
        s = st.cut("sum", {"S": S, "e": s["e"], "zg": s["zg"], "vzg": s["vzg"], "xk": xk,
                           "sg": s["sg"], "w": s["w"]})

        # 4. normalise: leading one (at or above l_lo), round half up, carry, saturate
        S = s["S"]
        top = WS - 1 - self.l_lo                          # largest left shift
        lsh = Signal(range(top + 1))
        lsh_v = Const(top, lsh.shape())
        for j in range(self.l_lo + 1, WS):                # the highest set bit wins
            lsh_v = Mux(S[j], WS - 1 - j, lsh_v)
        m.d.comb += lsh.eq(lsh_v)
        Y = (S << lsh)[WS - fb - 2:WS]                    # fb + 2 bits below the leading one
        m_r = (Y + 1)[1:]                                 # (S + 2**(sh-1)) >> sh
        carry = Y.all()                                   # m_r == 2**man_bits: renormalise
        m_new = Mux(carry, 1 << fb, m_r[:MB])
        # ev' = e + sh - guard - k (+ carry); both candidates' saturation and underflow
        # tests run beside the rounding adder, the carry only selects
        e1 = s["e"] + 1 - lsh
        ov = Mux(carry, ge_const(e1, V.emax, m), ge_const(e1, V.emax + 1, m))
        low = Mux(carry, ~ge_const(e1, 0, m), ~ge_const(e1, 1, m)) | s["vzg"]
        m_fin, e_fin = Signal(MB), Signal(EV)
        m.d.comb += [m_fin.eq(Mux(ov, (1 << MB) - 1, m_new)),
                     e_fin.eq(Mux(low, 0, Mux(ov, V.emax, e1 + carry)))]
        s = st.cut("norm", {"m": m_fin, "e": e_fin, "zg": s["zg"], "xk": s["xk"],
                            "sg": s["sg"], "w": s["w"]})

        # 5. log-domain normaliser: z = 2*x_g - x_v [+ bc_exp] = xk - gamma*ev' - r_v
        m_fin, e_fin = s["m"], s["e"]
        rv = _thermometer_value([ge_const(m_fin, mid, m) for mid in self.mids],
                                list(range(len(self.mids) + 1)))
        z = Signal(signed(signed_bits(2 * (self.U0 - 1) - self.xv_range[1],
                                      2 * self.X_HI - self.xv_range[0])))
        m.d.comb += z.eq(s["xk"] - gamma * e_fin - rv)
        v_new = Mux(e_fin == 0, 0, Cat(m_fin[:fb], e_fin))
        s = st.cut("z", {"z": z, "nz": s["zg"] | (e_fin == 0), "v": v_new, "sg": s["sg"],
                         "w": s["w"]})

        # 6. n = round_half_even(min(2**(z/(2 gamma)), g_bound)) by thresholds, times
        #    lr_step (read off the thermometer code), signed: the magnitude shrinks when the
        #    weight and gradient signs agree
        bits = Cat(*(ge_const(s["z"], t, m) for t in self.thr))
        s = st.cut("thr", {"bits": bits, "nz": s["nz"], "v": s["v"], "sg": s["sg"],
                           "w": s["w"]})
        bits = [s["bits"][j] for j in range(len(self.thr))]
        w = data.View(lns_layout(W), s["w"])
        if self.runtime_lr:
            mag = _thermometer_value(bits, list(range(cfg.g_bound + 1))) * self.lr_step
        else:
            mag = _thermometer_value(bits, [cfg.lr_step * j for j in range(cfg.g_bound + 1)])
        step = Signal(signed(_n_bits(cfg, self.runtime_lr)))
        m.d.comb += step.eq(Mux(s["nz"], 0, Mux(w.sign == s["sg"], -mag, mag)))
        s = st.cut("n", {"step": step, "v": s["v"], "w": s["w"]})

        # 7. the exponent add and the clamps (numpy's clip: min(max(x, 1), e_clamp), both
        #    comparisons on the sum); ZERO weights give code 0
        w = data.View(lns_layout(W), s["w"])
        step = s["step"]
        e_sum = w.exp + step
        e_w = Mux(~ge_const(e_sum, 1, m), Mux(self.e_clamp == 0, 0, 1),
                  Mux(e_sum > self.e_clamp, self.e_clamp, e_sum))
        zw = is_zero(w)
        # ZERO in, canonical ZERO (code 0) out, as golden (a "-0" loses its sign bit)
        w_new = Mux(zw | (e_w == 0), 0, Cat(e_w[:W.exp_bits], w.sign))
        with m.If(adv):
            m.d.sync += o.valid.eq(st.valid)
            m.d.sync += [o.payload.w_new.eq(w_new), o.payload.v_new.eq(s["v"]),
                         o.payload.n.eq(Mux(zw, 0, step))]
        return m

    @property
    def xv_range(self) -> tuple[int, int]:
        """Range of ``x_v`` (bias correction included) over every state and ``bc_exp``."""
        cfg, V, g = self.cfg, self.cfg.state, self.cfg.grad.gamma
        lo, hi = g * V.offset, g * (V.emax + V.offset + 1)
        if cfg.bias_correction:
            lo -= (1 << (self.bc_width - 1)) - 1
            hi += 1 << (self.bc_width - 1)
        return lo, hi
