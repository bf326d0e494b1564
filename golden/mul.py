"""LNS multiply: exponent add, sign xor, ZERO absorbs, saturation/underflow.

For codes ``a``, ``b`` of one :class:`~lnsmadam.golden.format.LNSFormat` the exact product
field is ``Ea + Eb``; the result is re-biased by ``shift`` (``E = Ea + Eb - shift``) and
then saturated at ``emax`` / flushed below 1 like any requantisation. With tensor biases
``ba``, ``bb`` the result's bias is ``ba + bb + shift``. The default ``shift = emax`` maps the
largest product (both operands at ``emax``) to ``emax``, so a product of two tensors scaled
to their max-abs is itself scaled to its max-abs.
"""

from __future__ import annotations

import numpy as np

from .format import LNSFormat, check_int, check_type

__all__ = ["mul", "shift_range"]


def shift_range(fmt: LNSFormat) -> tuple[int, int]:
    """``(lo, hi)``: the re-bias values for which some product lands in ``[1, emax]``
    (``2 - emax``: the smallest product at ``emax``; ``2*emax - 1``: the largest at 1).
    Outside it every product saturates or underflows, a constant function (legal, but
    ``lnsmadam generate mul`` refuses it as a likely mistake)."""
    return 2 - fmt.emax, 2 * fmt.emax - 1


def mul(a, b, fmt: LNSFormat, shift: int | None = None) -> np.ndarray:
    """Elementwise (broadcasting) LNS product of codes ``a`` and ``b``; see module docstring."""
    check_type("fmt", fmt, LNSFormat)
    sa, ea, za = fmt.split(a, "a")
    sb, eb, zb = fmt.split(b, "b")
    sh = fmt.emax if shift is None else check_int("shift", shift, -(1 << 30), 1 << 30)
    return fmt.from_exponent(sa ^ sb, ea + eb, za | zb, bias=sh)
