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

from .format import LNSFormat

__all__ = ["mul"]


def mul(a, b, fmt: LNSFormat, shift: int | None = None) -> np.ndarray:
    """Elementwise (broadcasting) LNS product of codes ``a`` and ``b``; see module docstring."""
    sa, ea, za = fmt.split(a)
    sb, eb, zb = fmt.split(b)
    sh = fmt.emax if shift is None else int(shift)
    return fmt.from_exponent(sa ^ sb, ea + eb, za | zb, bias=sh)
