"""Bit-exact model of the LNS dot-product unit (``hw/mac.py``).

Datapath, for operand codes ``a_k``, ``b_k`` of one format (``gamma = 2**f``):

1. **Multiply** ``p_k = Ea_k + Eb_k`` (field sum, ``2 .. 2*emax``), ``s_k = sa_k ^ sb_k``;
   a ZERO operand gives a zero product.
2. **To linear**: ``q = p >> f``, ``r = p & (gamma-1)``; with ``q_top = (2*emax) >> f`` and
   ``q_lo = q_top - window + 1`` the product is ``T[r] << (q - q_lo)`` if ``q >= q_lo``,
   else 0 (products more than ``window`` octaves below the largest possible product are
   dropped: this is the truncation). ``T`` is :func:`~lnsmadam.golden.format.pow2_table`.
3. **Accumulate**: each cycle the ``lanes`` signed products of one group (operands
   ``k = lanes*c .. lanes*c + lanes - 1``, missing ones zero) are summed exactly by an
   adder tree, then added to an ``acc_bits`` two's-complement accumulator that either
   saturates at ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]`` after every add or wraps.
   The accumulator starts at 0 for every vector.
4. **Out**: the accumulator value ``S`` weighs ``S * 2**(q_lo - lut_frac)`` in field units;
   :meth:`MACConfig.to_lns` converts it with
   :func:`~lnsmadam.golden.convert.from_linear` (leading one, log midpoints, carry).

Operand tensor biases ``ba``, ``bb`` never enter the datapath: the true dot product is
``value(S) * 2**((ba + bb) / gamma)``, i.e. they are added to the output exponent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .convert import from_linear, to_linear
from .format import LNSFormat, check_int, check_type, midpoint_table, pow2_table

__all__ = ["MACConfig", "matmul", "dot", "int8_dot"]


@dataclass(frozen=True)
class MACConfig:
    """Parameters of the dot-product unit.

    fmt : operand format (both operands).
    lut_frac : fractional bits of the ``2**(r/gamma)`` table, ``f+1 .. 24``.
    window : octaves of products kept below the largest product, ``1 .. q_top - q_min + 1``.
    acc_bits : accumulator width, ``lut_frac + window + 1 .. 62`` (one product must fit).
    saturate : saturate (True) or wrap (False) on accumulator overflow.
    lanes : products summed per cycle, ``1 .. 256``. Only changes results when the
        accumulator saturates (the grouping decides where the clamp happens).
    mid_bits : mantissa bits compared against the midpoints on output; default ``lut_frac``.
    """

    fmt: LNSFormat = field(default_factory=lambda: LNSFormat(8, 3))
    lut_frac: int = 8
    window: int = 16
    acc_bits: int = 32
    saturate: bool = True
    lanes: int = 1
    mid_bits: int | None = None

    def __post_init__(self):
        f = check_type("fmt", self.fmt, LNSFormat).frac_bits
        check_int("lut_frac", self.lut_frac, f + 1, 24)
        q_top = (2 * self.fmt.emax) >> f
        q_min = 2 >> f
        check_int("window", self.window, 1, q_top - q_min + 1)
        check_int("acc_bits", self.acc_bits, self.lut_frac + self.window + 1, 62)
        check_int("lanes", self.lanes, 1, 256)
        if not isinstance(self.saturate, (bool, np.bool_)):
            raise ValueError(f"saturate must be a bool, got {self.saturate!r}")
        if self.mid_bits is None:
            object.__setattr__(self, "mid_bits", self.lut_frac)
        check_int("mid_bits", self.mid_bits, f + 1, 40)
        # The table must survive its own round trip, or single products would not be exact.
        T = pow2_table(f, self.lut_frac)
        mids = midpoint_table(f, self.mid_bits)
        for r, t in enumerate(T):
            m = t << self.mid_bits >> self.lut_frac
            if sum(m >= x for x in mids) != r:
                raise ValueError(
                    f"lut_frac={self.lut_frac}/mid_bits={self.mid_bits} too small for "
                    f"gamma={self.fmt.gamma}: table entry {r} does not convert back to itself")

    @classmethod
    def for_format(cls, fmt: LNSFormat, **kw) -> "MACConfig":
        """The defaults fitted to ``fmt``: the window is capped at the format's product range
        and the accumulator widened to hold one product, unless given in ``kw``."""
        q_top = (2 * fmt.emax) >> fmt.frac_bits
        kw.setdefault("window", min(16, q_top - (2 >> fmt.frac_bits) + 1))
        kw.setdefault("lut_frac", max(8, fmt.frac_bits + 1))
        kw.setdefault("acc_bits", max(32, kw["lut_frac"] + kw["window"] + 1))
        return cls(fmt=fmt, **kw)

    @property
    def q_top(self) -> int:
        return (2 * self.fmt.emax) >> self.fmt.frac_bits

    @property
    def q_lo(self) -> int:
        return self.q_top - self.window + 1

    @property
    def lsb_q(self) -> int:
        """Octave weight of the accumulator LSB (field units, biases excluded)."""
        return self.q_lo - self.lut_frac

    @property
    def product_bits(self) -> int:
        """Magnitude bits of one linear product."""
        return self.lut_frac + self.window

    def exact_acc_bits(self, k: int) -> int:
        """Accumulator width that can never overflow for a ``k``-term dot product."""
        return self.product_bits + max(1, int(k - 1).bit_length()) + 1

    def products(self, a, b) -> np.ndarray:
        """Signed linear products of code arrays ``a``, ``b`` (broadcasting)."""
        sa, ea, za = self.fmt.split(a)
        sb, eb, zb = self.fmt.split(b)
        p = ea + eb
        lin = to_linear(np.where(za | zb, 0, p), self.fmt.frac_bits, self.lut_frac,
                        self.q_lo, self.window)
        lin = np.where(za | zb, 0, lin)
        return np.where((sa ^ sb) == 1, -lin, lin)

    def _clip(self, acc):
        lo, hi = -(1 << (self.acc_bits - 1)), (1 << (self.acc_bits - 1)) - 1
        if self.saturate:
            return np.clip(acc, lo, hi)
        return ((acc - lo) & ((1 << self.acc_bits) - 1)) + lo

    def accumulate(self, prods: np.ndarray, axis: int = -1) -> np.ndarray:
        """Accumulate signed products along ``axis`` in lane groups, as the hardware does."""
        prods = np.moveaxis(np.asarray(prods, dtype=np.int64), axis, -1)
        k = prods.shape[-1]
        n_groups = -(-k // self.lanes) if k else 0
        pad = n_groups * self.lanes - k
        if pad:
            prods = np.concatenate([prods, np.zeros(prods.shape[:-1] + (pad,), np.int64)], -1)
        groups = prods.reshape(prods.shape[:-1] + (n_groups, self.lanes)).sum(-1)
        lo, hi = -(1 << (self.acc_bits - 1)), (1 << (self.acc_bits - 1)) - 1
        if not self.saturate:
            return self._clip(groups.sum(-1))
        csum = np.cumsum(groups, axis=-1)
        if csum.size == 0 or (csum.min() >= lo and csum.max() <= hi):
            return csum[..., -1] if n_groups else np.zeros(prods.shape[:-1], np.int64)
        acc = np.zeros(groups.shape[:-1], np.int64)
        for c in range(n_groups):   # saturation makes the order matter: replay it
            acc = np.clip(acc + groups[..., c], lo, hi)
        return acc

    def to_lns(self, S):
        """``(sign, x, zero)`` of accumulator values, ``x`` in field units (add biases)."""
        return from_linear(S, self.lsb_q, self.fmt.frac_bits, self.mid_bits)

    def value(self, S, bias: int = 0) -> np.ndarray:
        """Float value of accumulator words (for tests and reports)."""
        return np.asarray(S, np.float64) * np.exp2(self.lsb_q + bias / self.fmt.gamma)


def matmul(a, b, cfg: MACConfig, chunk: int = 1 << 22) -> np.ndarray:
    """Accumulator words of ``a @ b`` for code matrices ``a`` (M, K) and ``b`` (K, N).

    Every output is one dot product through the unit described in the module docstring;
    the result is int64 (M, N). Two exact evaluation strategies give the same bits:

    * **separable** (used whenever no accumulator saturation is possible and the sums fit
      53 bits): with ``Ea = gamma*qa + ra``, ``Eb = gamma*qb + rb`` the untruncated product
      ``T[(ra+rb) mod gamma] * 2**(qa+qb+carry)`` splits into ``gamma`` integer-valued
      float64 matrix products (BLAS, exact because every partial sum is an integer below
      2**53); the products below the window are then subtracted exactly (when they are
      more than a quarter of all, replaying is cheaper and is used instead);
    * **replay** (otherwise): every product is formed and accumulated lane group by lane
      group with the saturation rule, in chunks of rows.
    """
    a = cfg.fmt.check_codes(a, "a")
    b = cfg.fmt.check_codes(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs (M, K) @ (K, N) codes, got {a.shape} @ {b.shape}")
    K = a.shape[1]
    if K == 0:
        return np.zeros((a.shape[0], b.shape[1]), np.int64)
    # tiny products (the MLP's per-sample matrix-vector products) are cheaper to replay
    if a.shape[0] * K * b.shape[1] >= 4096:
        out = _matmul_separable(a, b, cfg)
        if out is not None:
            return out
    return _matmul_replay(a, b, cfg, chunk)


def _matmul_separable(a, b, cfg: MACConfig, max_low: float = 0.25):
    """The separable strategy; None when float64 could not be exact, when saturation is
    possible, or when more than ``max_low`` of all pairs fall below the window (then
    replaying is cheaper)."""
    fmt = cfg.fmt
    f, gamma = fmt.frac_bits, fmt.gamma
    if cfg.lut_frac + 2 + cfg.q_top + max(1, (a.shape[1] - 1).bit_length()) >= 53:
        return None     # partial sums could exceed 2**53: float64 would not be exact
    T = np.asarray(pow2_table(f, cfg.lut_frac), np.float64)
    sa, ea, za = fmt.split(a)
    sb, eb, zb = fmt.split(b)
    lim = 1 << (cfg.acc_bits - 1)
    if cfg.saturate and cfg.acc_bits < cfg.exact_acc_bits(K := a.shape[1]):
        # Upper bound of sum |product| (>= every partial sum): if it fits, nothing saturates.
        # Each product is <= 2**(p/gamma) * 2**(F - q_lo) * (1 + 2**-(F+1)).
        wa = np.where(za, 0.0, np.exp2(ea / gamma))
        wb = np.where(zb, 0.0, np.exp2(eb / gamma))
        bound = (wa @ wb) * (2.0 ** (cfg.lut_frac - cfg.q_lo) * (1 + 2.0 ** -cfg.lut_frac))
        if bound.max() >= lim:
            return None
    qa, ra = ea >> f, ea & (gamma - 1)
    qb, rb = eb >> f, eb & (gamma - 1)
    M, K = a.shape
    N = b.shape[1]
    # subtract the products below the window (p = Ea + Eb < gamma * q_lo), visiting only
    # those pairs. Candidates: A entries that can pair below P0 with the smallest Eb of
    # their row of B, and B entries likewise; one sorted search over the candidate B keys
    # (grouped by k) then finds, for each candidate A entry, its partners.
    P0 = gamma * cfg.q_lo
    big = 1 << 20
    ea_l = np.where(za, big, ea)
    eb_l = np.where(zb, big, eb)
    min_a = ea_l.min(axis=0)                                   # per k
    min_b = eb_l.min(axis=1)                                   # per k
    ia, ka = np.nonzero(ea_l < (P0 - min_b)[None, :])          # candidate A entries (i, k)
    kb, jb = np.nonzero(eb_l < (P0 - min_a)[:, None])          # candidate B entries (k, j)
    total = 0
    if ia.size and kb.size:
        stride = 4 * big
        kv = eb_l[kb, jb] + stride * kb
        order = np.argsort(kv, kind="stable")
        keys = kv[order]
        lo_idx = np.searchsorted(keys, stride * ka, side="left")
        hi_idx = np.searchsorted(keys, (P0 - ea_l[ia, ka]) + stride * ka, side="left")
        cnt = np.maximum(hi_idx - lo_idx, 0)
        total = int(cnt.sum())
    if total > max_low * (M * K * N):
        return None     # mostly below the window: replaying every product is cheaper
    pow2 = np.exp2(np.arange(2 * fmt.emax + 2, dtype=np.float64))      # small tables, no exp2
    ga = np.where(za, 0.0, np.where(sa == 1, -1.0, 1.0) * pow2[qa])
    gb = np.where(zb, 0.0, np.where(sb == 1, -1.0, 1.0) * pow2[qb])
    # all gamma remainder classes in one BLAS call: [A_0 .. A_g-1] @ [B_0; ..; B_g-1],
    # A_t = A's entries with remainder t, B_t[k, j] = B's entry times T[(t + rb) mod gamma]
    # with the carry into the next octave (table h below, indexed by t + rb)
    A_st = np.zeros((M, gamma, K))
    A_st[np.arange(M)[:, None], ra, np.arange(K)[None, :]] = ga
    s_ = np.arange(gamma)[:, None] + np.arange(gamma)[None, :]            # t + rb
    h = T[s_ & (gamma - 1)] * pow2[s_ >> f]                                # (gamma, gamma)
    B_st = np.take(h, rb, axis=1)                                          # (gamma, K, N)
    B_st *= gb
    B_st = B_st.reshape(gamma * K, N)
    full = A_st.reshape(M, gamma * K) @ B_st
    if total:
        src = np.repeat(np.arange(ia.size), cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        sel = order[np.repeat(lo_idx, cnt) + np.arange(total) - first]
        ii, kk, jj = ia[src], ka[src], jb[sel]
        p = ea_l[ii, kk] + eb_l[kk, jj]
        val = T[p & (gamma - 1)] * pow2[p >> f]
        val = np.where((sa[ii, kk] ^ sb[kk, jj]) == 1, -val, val)
        # float64 sums of integers below 2**53 are exact in any order
        full -= np.bincount(ii * N + jj, weights=val, minlength=M * N).reshape(M, N)
    # exact: full is an integer-valued float below 2**53 and a multiple of 2**q_lo
    S = full.astype(np.int64) >> cfg.q_lo if cfg.q_lo >= 0 else \
        (full * 2.0 ** -cfg.q_lo).astype(np.int64)
    if not cfg.saturate:
        return cfg._clip(S)
    return S


def _matmul_replay(a, b, cfg: MACConfig, chunk: int) -> np.ndarray:
    M, K = a.shape
    N = b.shape[1]
    out = np.empty((M, N), np.int64)
    # Product lookup by field sum: one table of size 2*emax + 1, zero operands masked.
    fmt = cfg.fmt
    psum = np.arange(2 * fmt.emax + 1)
    lin_tab = to_linear(psum, fmt.frac_bits, cfg.lut_frac, cfg.q_lo, cfg.window)
    sa, ea, za = fmt.split(a)
    sb, eb, zb = fmt.split(b)
    sgn_a = 1 - 2 * sa
    sgn_b = 1 - 2 * sb
    rows = max(1, chunk // max(1, K * N))
    for i in range(0, M, rows):
        j = slice(i, min(M, i + rows))
        p = ea[j, :, None] + eb[None, :, :]
        lin = lin_tab[p] * (sgn_a[j, :, None] * sgn_b[None, :, :])
        lin *= ~(za[j, :, None] | zb[None, :, :])
        out[j] = cfg.accumulate(lin, axis=1)
    return out


def dot(a, b, cfg: MACConfig) -> int:
    """Accumulator word of one dot product of code vectors ``a`` and ``b``."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"dot needs two equal-length code vectors, got {a.shape} and {b.shape}")
    return int(matmul(a[None, :], b[:, None], cfg)[0, 0])


def int8_dot(a, b, lanes: int, acc_bits: int, saturate: bool = True) -> int:
    """Accumulator word of the INT8 baseline unit for one vector.

    Products ``a_k * b_k`` of signed 8-bit integers are summed exactly in groups of
    ``lanes`` (operands ``lanes*c .. lanes*c + lanes - 1``, missing ones 0); each group sum
    is added to a two's-complement ``acc_bits`` accumulator starting at 0, which after every
    add saturates to ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]`` (``saturate``) or wraps.
    """
    check_int("lanes", lanes, 1, 256)
    check_int("acc_bits", acc_bits, 16, 62)
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError("int8_dot needs two equal-length vectors")
    if a.size and (min(a.min(), b.min()) < -128 or max(a.max(), b.max()) > 127):
        raise ValueError("int8_dot operands must be in [-128, 127]")
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    prods = (a * b).tolist()
    acc = 0
    for c in range(0, len(prods), lanes):
        acc += sum(prods[c:c + lanes])
        acc = min(max(acc, lo), hi) if saturate else ((acc - lo) % (1 << acc_bits)) + lo
    return acc
