"""Integer LNS-Madam: the exact per-weight function the update engine (``hw/update.py``) computes.

Inputs per weight: the stored weight code ``w`` (update format, e.g. sign + 11-bit exponent
at ``gamma_U = 128``), its gradient code ``g`` (LNS, e.g. 8-bit ``gamma = 8``, tensor bias
``g_bias``) and its second-moment state ``v`` (:class:`StateFormat`, an unsigned minifloat).
Per tensor: ``e_clamp``, the sigma* clamp as a weight exponent field value.

One step, all in integers (``f``/``gamma`` are the gradient format's):

1. ``x_g = Eg + g_bias``. ``g**2`` as a minifloat: ``t = 2*x_g``, exponent ``(t >> f) - offset``,
   mantissa ``T[t & (gamma-1)]`` (:func:`~lnsmadam.golden.format.pow2_table` with
   ``man_bits - 1`` fraction bits). Above the state range it saturates; below it the gradient
   is treated as ZERO (for the whole step).
2. EMA with ``beta = 1 - 2**-k``:
   * without bias correction only: ``v == 0`` and ``g`` non-zero gives ``v' = g**2`` (the
     seed; Madam's first bias-corrected estimate is exactly ``g1**2``);
   * otherwise align the addends ``v`` and ``g**2 * 2**-k`` to ``e = max(ev, eg - k)`` with
     ``guard_bits`` extra bits (``g**2`` with ``k`` more; floor),
     ``S = A * (2**k - 1) + B`` (``B = 0`` for a ZERO gradient), and renormalise ``S``
     to ``man_bits`` bits, rounding half up (a carry out renormalises). Exponent overflow
     saturates; underflow gives ``v' = 0``.
3. Normalise in the log domain: ``x_v`` = LNS exponent of ``v'`` (leading one + midpoints at
   resolution ``gamma``), minus the step's bias-correction exponent (``v_hat = v' /
   (1 - beta**t)``, :class:`BiasCorrection`), ``z = 2*x_g - x_v``, so
   ``|g|/sqrt(v_hat) = 2**(z / (2 gamma))``.
4. ``n = round_half_even(|g|/sqrt(v'))`` clamped to ``g_bound``, read off integer
   thresholds (:func:`~lnsmadam.golden.format.round_threshold_table`); ``n = 0`` if ``g`` is
   ZERO or ``v' == 0`` (Madam's NaN -> 0).
5. ``E' = E - lr_step * n`` if sign(w) == sign(g) (the magnitude shrinks), ``E + lr_step * n``
   otherwise; then ``E' = clip(E', 1, e_clamp)``: the sigma* clamp on top, saturation at the
   smallest magnitude below (a weight never becomes ZERO). The sign never changes; a ZERO
   weight stays ZERO, as the canonical code 0 (a sign bit it came with is cleared).

This is ``lns_madam.py``'s step with ``lr = lr_step / gamma_U``, an integer state format
instead of FP32 ``v``, seeding instead of bias correction, and nearest-in-log rounding of the
normaliser; ``docs/format.md`` states every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .convert import bit_length
from .format import (LNSFormat, check_int, check_type, midpoint_table, pow2_table,
                     round_threshold_table)

__all__ = ["StateFormat", "MadamConfig", "BiasCorrection", "madam_step", "forward_weights",
           "sigma_clamp_field"]


@dataclass(frozen=True)
class StateFormat:
    """Unsigned minifloat for the second moment ``v``.

    A code is ``ev << (man_bits - 1) | frac``; ``ev == 0`` is zero (canonical code 0). For
    ``ev >= 1`` the value is ``m * 2**(ev + offset - (man_bits - 1))`` with
    ``m = 2**(man_bits-1) + frac``, i.e. ``m / 2**(man_bits-1)`` in ``[1, 2)`` times
    ``2**(ev + offset)``.

    exp_bits : 2..8.   man_bits : mantissa incl. hidden one, 2..24.
    offset : octave of ``ev = 0``, any integer in [-1024, 1024].
    """

    exp_bits: int = 6
    man_bits: int = 12
    offset: int = -52

    def __post_init__(self):
        check_int("state exp_bits", self.exp_bits, 2, 8)
        check_int("state man_bits", self.man_bits, 2, 24)
        check_int("state offset", self.offset, -1024, 1024)

    @property
    def bits(self) -> int:
        return self.exp_bits + self.man_bits - 1

    @property
    def emax(self) -> int:
        return (1 << self.exp_bits) - 1

    def split(self, codes):
        c = np.asarray(codes, dtype=np.int64)
        if c.size and (c.min() < 0 or c.max() >= (1 << self.bits)):
            raise ValueError(f"state codes must be in [0, {(1 << self.bits) - 1}]")
        fb = self.man_bits - 1
        ev = c >> fb
        m = (c & ((1 << fb) - 1)) | (1 << fb)
        return ev, np.where(ev == 0, 0, m)

    def join(self, ev, m):
        fb = self.man_bits - 1
        ev = np.asarray(ev, np.int64)
        return np.where(ev == 0, 0, (ev << fb) | (np.asarray(m, np.int64) & ((1 << fb) - 1)))

    def decode(self, codes) -> np.ndarray:
        ev, m = self.split(codes)
        return np.where(ev == 0, 0.0, m * np.exp2(ev + self.offset - (self.man_bits - 1.0)))


@dataclass(frozen=True)
class MadamConfig:
    """Parameters of the integer LNS-Madam step (see module docstring).

    weight : update format of stored weights (default sign + 11 bits, gamma_U = 128).
    grad : gradient format (default 8-bit, gamma = 8).
    state : second-moment format.
    lr_step : learning rate in weight-exponent LSBs per unit of normalised gradient,
        1..64 (``lr = lr_step / gamma_U``; 1 = the reference 1/128).
    g_bound : integer clamp of the normalised gradient, 1..64.
    beta_k : ``beta = 1 - 2**-beta_k``, 1..20.
    guard_bits : extra alignment bits in the EMA add, 0..8.
    bias_correction : True: Madam's ``v / (1 - beta**t)``, with ``beta**t`` tracked once per
        step by :class:`BiasCorrection` and applied as an exponent subtraction; False (the
        default: measured as good, one register simpler): seed ``v`` with ``g**2`` at the
        first non-zero gradient instead.
    bc_bits : fraction bits of the ``beta**t`` register, 12..40.
    """

    weight: LNSFormat = field(default_factory=lambda: LNSFormat(12, 7, underflow="min"))
    grad: LNSFormat = field(default_factory=lambda: LNSFormat(8, 3))
    state: StateFormat = field(default_factory=StateFormat)
    lr_step: int = 1
    g_bound: int = 10
    beta_k: int = 10
    guard_bits: int = 2
    bias_correction: bool = False
    bc_bits: int = 24

    def __post_init__(self):
        check_type("weight", self.weight, LNSFormat)
        check_type("grad", self.grad, LNSFormat)
        check_type("state", self.state, StateFormat)
        if not isinstance(self.bias_correction, (bool, np.bool_)):
            raise ValueError(f"bias_correction must be a bool, got {self.bias_correction!r}")
        check_int("bc_bits", self.bc_bits, 12, 40)
        check_int("lr_step", self.lr_step, 1, 64)
        check_int("g_bound", self.g_bound, 1, 64)
        check_int("beta_k", self.beta_k, 1, 20)
        check_int("guard_bits", self.guard_bits, 0, 8)
        if self.beta_k + self.guard_bits < 2:
            # the renormalising shift is >= beta_k - 1 + guard_bits and must be >= 1
            raise ValueError(f"beta_k + guard_bits must be >= 2, got {self.beta_k} + "
                             f"{self.guard_bits}")
        if self.state.man_bits - 1 < self.grad.frac_bits + 1:
            raise ValueError(f"state man_bits must be >= grad frac_bits + 2 "
                             f"({self.grad.frac_bits + 2}), got {self.state.man_bits}")

    @property
    def bits_per_weight(self) -> int:
        return self.weight.bits + self.state.bits


class BiasCorrection:
    """The per-step bias-correction exponent, shared by every weight of a step.

    Holds ``B = round-down(beta**t * 2**bc_bits)``, updated once per training step by
    ``B <- B - (B >> beta_k)`` (exactly the EMA's decay applied to 1), starting at
    ``2**bc_bits`` (t = 0). :meth:`exponent` is the LNS exponent of ``1 - beta**t`` at the
    gradient format's resolution, ``from_linear(2**bc_bits - B)``: 0 once the correction is
    below half a step, negative (e.g. ``-80`` at t = 1 for beta_k = 10, gamma = 8) before.
    """

    def __init__(self, cfg: "MadamConfig"):
        self.cfg = cfg
        self.B = 1 << cfg.bc_bits
        self.t = 0

    def step(self) -> int:
        """Advance to the next step (t += 1) and return its exponent."""
        self.B -= self.B >> self.cfg.beta_k
        self.t += 1
        return self.exponent()

    def exponent(self) -> int:
        from .convert import from_linear
        if not self.cfg.bias_correction or self.t == 0:
            return 0
        g = self.cfg.grad
        _, x, _ = from_linear(np.array([(1 << self.cfg.bc_bits) - self.B]), -self.cfg.bc_bits,
                              g.frac_bits, self.cfg.state.man_bits - 1)
        return int(x[0])


def sigma_clamp_field(sigma: float, weight: LNSFormat, bias: int) -> int:
    """Field value of the sigma* clamp: ``floor(gamma_U * log2(sigma)) - bias``, in [1, emax]."""
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma* must be a finite positive number, got {sigma}")
    u = int(np.floor(weight.gamma * np.log2(sigma)))
    return int(np.clip(u - bias, 1, weight.emax))


def forward_weights(w_codes, weight: LNSFormat, w_bias: int, fwd: LNSFormat, fwd_bias: int):
    """Round stored weights to the forward format: ``E_f = round_half_up(x / 2**s) - fwd_bias``.

    ``x = E + w_bias`` at ``gamma_U``, ``s = log2(gamma_U / gamma_f)``; the rounding is an
    add of ``2**(s-1)`` and an arithmetic shift. Saturation/underflow follow ``fwd``.
    """
    s = weight.frac_bits - fwd.frac_bits
    if s < 0:
        raise ValueError("forward format must not be finer than the weight format")
    sign, x, zero = weight.exponent(w_codes, w_bias)
    xf = (x + ((1 << s) >> 1)) >> s
    return fwd.from_exponent(sign, xf, zero, bias=fwd_bias)


def madam_step(w_codes, v_codes, g_codes, g_bias: int, e_clamp, cfg: MadamConfig,
               bc_exp: int = 0):
    """One integer LNS-Madam step on whole arrays (broadcast ``e_clamp``).

    ``bc_exp`` is this step's :meth:`BiasCorrection.exponent` (ignored without bias
    correction).

    Returns ``(w_new, v_new, n)`` with ``n`` the signed exponent change applied to each
    weight's magnitude field (before the clamps), for statistics.
    """
    check_type("cfg", cfg, MadamConfig)
    W, G, V = cfg.weight, cfg.grad, cfg.state
    shapes = {n: np.shape(c) for n, c in (("w_codes", w_codes), ("v_codes", v_codes),
                                          ("g_codes", g_codes))}
    if len(set(shapes.values())) != 1:
        raise ValueError("w_codes, v_codes and g_codes must have one shape, got "
                         + ", ".join(f"{n} {s}" for n, s in shapes.items()))
    g_bias = check_int("g_bias", g_bias)
    sw, ew, zw = W.split(w_codes, "w_codes")
    sg, eg, zg = G.split(g_codes, "g_codes")
    ev, mv = V.split(v_codes)
    f, gamma = G.frac_bits, G.gamma
    fb = V.man_bits - 1
    # 1. g^2 as a minifloat
    xg = eg + int(g_bias)
    t = 2 * xg
    tab = np.asarray(pow2_table(f, fb), np.int64)
    mg = tab[t & (gamma - 1)]
    egs = (t >> f) - V.offset
    over = egs > V.emax
    mg = np.where(over, (1 << V.man_bits) - 1, mg)
    egs = np.where(over, V.emax, egs)
    zg = zg | (egs < 1)
    egs = np.where(zg, 0, egs)
    # 2. EMA
    vzero = ev == 0
    k = cfg.beta_k
    # align v and g^2 * 2^-k (the two addends) to the larger one, so the alignment
    # truncation costs at most 2^-guard ULP of the larger addend
    e = np.where(zg, ev, np.maximum(ev, egs - k))
    gd = cfg.guard_bits
    A = np.where(vzero, 0, (mv << gd) >> np.clip(e - ev, 0, 62))
    # g^2 keeps k more bits than v: truncating it at v's resolution would bias v low by
    # half a unit every step, which the EMA accumulates over its 2^k-step memory
    B = np.where(zg, 0, (mg << (gd + k)) >> np.clip(e - egs + k, 0, 62))
    S = A * ((1 << k) - 1) + B
    L = bit_length(S) - 1
    sh = np.clip(L - fb, 1, 62)           # >= beta_k - 1 + guard_bits whenever S > 0
    m_new = (S + (np.int64(1) << (sh - 1))) >> sh
    e_new = e + sh - gd - cfg.beta_k
    carry = m_new >> V.man_bits            # rounding up past the binade: renormalise
    m_new = m_new >> carry
    e_new = e_new + carry
    seed = vzero & ~zg & (not cfg.bias_correction)
    m_new = np.where(seed, mg, m_new)
    e_new = np.where(seed, egs, e_new)
    ov = e_new > V.emax
    m_new = np.where(ov, (1 << V.man_bits) - 1, m_new)
    e_new = np.where(ov, V.emax, e_new)
    e_new = np.where((e_new < 1) | (vzero & zg), 0, e_new)
    v_new = V.join(e_new, m_new)
    # 3. log-domain normalisation
    mids = np.asarray(midpoint_table(f, fb), np.int64)
    rv = (m_new[..., None] >= mids).sum(-1)
    xv = gamma * (e_new + V.offset) + rv
    if cfg.bias_correction:
        xv = xv - int(bc_exp)                  # v_hat = v / (1 - beta^t)
    z = 2 * xg - xv
    # 4. round to an integer, clamp to g_bound
    thr = np.asarray(round_threshold_table(f, cfg.g_bound), np.int64)
    n = (z[..., None] >= thr).sum(-1)
    n = np.where(zg | (e_new == 0), 0, n)
    # 5. exponent add with sign, clamps
    step = np.where(sw == sg, -n, n) * cfg.lr_step
    e_w = np.clip(ew + step, 1, e_clamp)
    # a ZERO weight stays ZERO as the canonical code 0 (docs/format.md: every function
    # outputs it), whatever sign bit it came in with
    w_new = np.where(zw, 0, W.join(sw, e_w))
    return w_new.astype(np.int64), v_new.astype(np.int64), np.where(zw, 0, step)
