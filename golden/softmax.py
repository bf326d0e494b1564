"""The softmax cross-entropy error at the output layer (twin of ``hw/softmax.py``).

:func:`softmax_error` is the bit-level specification of the output-loss gradient of
:mod:`lnsmadam.golden.mlp`, from the last layer's accumulator words ``S``:

* ``z_i = round(gamma * log2(e) * y_i)`` with ``y_i`` the logit: an integer multiply of
  ``S_i`` by ``C[r] = round(gamma*log2(e)*2**(r/gamma)*2**P)`` (:func:`logit_constants`,
  ``r`` the remainder of the logit bias), round-half-up shift by
  ``sh = P - lsb_q - (bias >> f)`` (a left shift when ``sh <= 0``);
* ``d_i = z_i - max z``; ``L_i = to_linear(d_i + gamma*(Ws-1))`` over a ``Ws``-octave
  window; ``Sum = sum L_i``;
* ``e_i = p_i`` (exponent ``d_i + gamma*(Ws-1) - log(Sum)``) for ``i != label``,
  ``e_label = -(Sum - L_label) / Sum``;
* requantised with the dynamic bias (:func:`requant_dynamic`).
"""

from __future__ import annotations

import numpy as np

from .convert import from_linear, to_linear

__all__ = ["LOG2E", "SOFTMAX_P", "logit_constants", "requant_dynamic", "softmax_error"]

LOG2E = 1.4426950408889634
#: Fraction bits of the logit-to-exponent constants.
SOFTMAX_P = 16


def logit_constants(gamma: int) -> list[int]:
    """``C[r] = round(gamma * log2(e) * 2**(r/gamma) * 2**SOFTMAX_P)``, ``r = 0..gamma-1``."""
    return [int(round(gamma * LOG2E * 2.0 ** (r / gamma) * 2.0**SOFTMAX_P))
            for r in range(gamma)]


def requant_dynamic(fmt, sign, x, zero) -> tuple[np.ndarray, int]:
    """Codes and bias of a tensor requantised so that its largest live exponent is ``emax``
    (bias 0 when every entry is ZERO): ``(codes, b)``, ``b = max(x[~zero]) - emax``."""
    live = ~zero
    b = (int(x[live].max()) if live.any() else fmt.emax) - fmt.emax
    return fmt.from_exponent(sign, x, zero, bias=b), b


def softmax_error(S, bias: int, label: int, cfg) -> tuple[np.ndarray, int]:
    """Error codes and bias of softmax cross-entropy for accumulator words ``S`` with logit
    tensor bias ``bias`` and class ``label`` (``cfg``: an ``MLPConfig``)."""
    fmt, mac = cfg.fmt, cfg.mac
    gamma, f = fmt.gamma, fmt.frac_bits
    # logit y = S * 2^(lsb_q + bias/gamma); z = round(gamma * log2e * y)
    qb, rb = bias >> f, bias & (gamma - 1)
    C = logit_constants(gamma)[rb]
    sh = SOFTMAX_P - mac.lsb_q - qb
    prod = [int(s) * C for s in S]                       # Python ints: no overflow
    if sh > 0:
        z = np.array([(p + (1 << (sh - 1))) >> sh for p in prod], np.int64)
    else:
        z = np.array([p << -sh for p in prod], np.int64)
    d = z - z.max()
    Ws = cfg.softmax_window
    top = gamma * (Ws - 1)
    pe = d + top
    L = to_linear(np.maximum(pe, -gamma * 64), f, mac.lut_frac, 0, Ws)
    total = int(L.sum())
    _, xs, _ = from_linear(np.array([total]), -mac.lut_frac, f, mac.mid_bits)
    x = pe - int(xs[0])
    zero = L == 0
    sign = np.zeros_like(d)
    rest = total - int(L[label])
    _, xr, zr = from_linear(np.array([rest]), -mac.lut_frac, f, mac.mid_bits)
    x[label] = int(xr[0]) - int(xs[0])
    zero[label] = bool(zr[0])
    sign[label] = 1
    return requant_dynamic(fmt, sign, x, zero)
