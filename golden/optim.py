"""Float reference optimisers: Madam, LNS-Madam (float), IntegerMadam, Fromage, Adam, SGD.

These are the FP32 baselines the LNS hardware is compared with.  Each optimiser holds its
per-tensor state and updates a list of ``float32`` NumPy arrays in place::

    opt = make_optimizer("madam", lr=0.01)
    opt.step(params, grads)        # params[i] updated in place; grads[i] None -> skipped

A gradient of ``None`` skips its tensor and creates no state for it (like a PyTorch
parameter whose ``.grad`` is ``None``).  State is keyed by the position in the list, so
the same list layout must be passed on every call.

Float32 semantics (how every reference mirrors its authors' PyTorch code)
-------------------------------------------------------------------------
* State that is a Python number in the PyTorch code stays a Python ``float`` (float64):
  step counters, bias corrections such as ``1 - 0.999**step``, Madam's ``max``.
* Tensor arithmetic is float32.  A Python scalar combined with a float32 tensor is first
  rounded to float32 (PyTorch casts the wrapped number to the tensor's dtype), e.g.
  ``0.999 * v`` is ``float32(0.999) * v`` and ``v / bc`` is ``v / float32(bc)``.
* Fused operations are fused exactly where PyTorch's CPU kernels fuse them (verified bit
  for bit against torch 2.13 on x86-64, see ``tests/test_optim.py``):

  - ``add(self, other, alpha)`` is ``fma(other, alpha, self)`` (:func:`add_alpha32`);
  - ``addcmul(self, t1, t2, value)`` is ``fma(value * t1, t2, self)`` (:func:`addcmul32`);
  - ``addcdiv(self, t1, t2, value)`` is ``self + (value * t1) / t2``, unfused
    (:func:`addcdiv32`);
  - ``lerp(start, end, w)`` is ``fma(w, end - start, start)`` for ``|w| < 0.5`` and
    ``fma(w - 1, end - start, end)`` otherwise (:func:`lerp32`).

  :func:`fma32` computes a float32 fused multiply-add exactly (one rounding).
* Reductions follow PyTorch's summation order (``torch.sum``/``mean``: the cascade sum of
  ``SumKernel.cpp``; ``Tensor.norm()``: the vectorised sum of squares of
  ``ReduceOpsKernel.cpp``), as dispatched on x86-64 CPUs with AVX2 (8 float lanes; the
  reduction kernels are not compiled for AVX-512): see :func:`sum32`, :func:`norm32`.
  Exact for tensors of fewer than 32768 elements (larger ones are reduced in parallel by
  PyTorch, in an order that depends on the thread count).

What is *not* bit-exact against PyTorch, and why
------------------------------------------------
PyTorch (the x86 CPU wheels, built with MKL) evaluates ``sqrt`` and ``exp`` of float32
tensors with MKL's VML in "high accuracy" mode, whose code is closed, differs per CPU
vendor and generation, and is not correctly rounded: on the AMD EPYC reference machine
``torch.sqrt`` is off by one ulp from the IEEE result in ~17% of elements (max error 0.75
ulp; it starts from the hardware ``rsqrtps`` estimate, whose table differs between Intel
and AMD) and ``torch.exp`` in ~1% (max 0.56 ulp).  ``2.0 ** t`` (``torch.pow``) uses SLEEF
in SIMD lanes and glibc ``powf`` in the scalar tail, so its result depends on the
element's position.  None of these can be reproduced in portable NumPy, so this module
uses the correctly rounded function instead (:func:`sqrt32`, :func:`exp32`,
:func:`exp2_32`), which is also what PyTorch computes without MKL.  Consequences:

* With ``sqrt``/``exp``/``pow`` replaced by the correctly rounded functions, the PyTorch
  code of every optimiser (the authors' code order, and ``torch.optim.Adam``/``SGD``
  themselves) reproduces these references bit for bit over hundreds of steps.
* Against unmodified PyTorch, SGD and Fromage are bit-exact (no tensor sqrt/exp).
  LNS-Madam with the default ``lr = 1/128`` is bit-exact given the same sigma* (torch
  computes sigma* with its MKL sqrt, so it may differ by an ulp) unless a normalised
  gradient lies within an ulp of a half-integer, where ``round`` may go either way: for
  ``lr`` in {1/128, 1/256, 1/512, 1/1024} and ``g_bound <= 10`` torch's ``pow`` returns
  the correctly rounded ``2**(k*lr)`` for every reachable ``k`` (checked; not so for 1/32
  and 1/64).  Madam and Adam drift by a few ulp (bounds asserted in the tests).
  IntegerMadam recomputes every weight from its integer code, so it does not drift: the
  codes are identical (given the same sigma*) except where ``lr_factor * gn`` lies within
  an ulp of a half-integer, and the weights are within 2 ulp (torch's MKL ``exp``).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "FloatOptimizer", "Madam", "LNSMadamFloat", "IntegerMadam", "Fromage", "Adam", "SGD",
    "OPTIMIZERS", "make_optimizer",
    "fma32", "add_alpha32", "addcmul32", "addcdiv32", "lerp32",
    "sqrt32", "exp32", "exp2_32", "sum32", "mean32", "norm32",
]

F32 = np.float32

# ---------------------------------------------------------------------------------------
# float32 primitives mirroring PyTorch's CPU kernels
# ---------------------------------------------------------------------------------------

_F32_DROPPED_BITS = 29                      # float64 mantissa bits below float32's
_F32_MID = np.int64(1) << (_F32_DROPPED_BITS - 1)
_F32_LOW_MASK = (np.int64(1) << _F32_DROPPED_BITS) - 1
_F32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def fma32(a, b, c) -> np.ndarray:
    """Exact float32 fused multiply-add ``round32(a * b + c)`` (a single rounding).

    ``a * b`` of two float32 values is exact in float64; ``a * b + c`` in float64 is
    rounded once more, and that double rounding can only be wrong when the float64 sum
    lands exactly on a float32 rounding midpoint (or in the float32 subnormal range).
    Those rare elements are recomputed with round-to-odd (TwoSum error term), which makes
    the final float32 rounding correct.
    """
    a64 = np.asarray(a, dtype=F32).astype(np.float64)
    b64 = np.asarray(b, dtype=F32).astype(np.float64)
    c64 = np.asarray(c, dtype=F32).astype(np.float64)
    prod = a64 * b64                                    # exact
    total = np.asarray(prod + c64)                      # rounded to float64
    risky = (total.view(np.int64) & _F32_LOW_MASK) == _F32_MID
    # results in float32's subnormal range (an exact zero sum is exact, hence safe)
    risky |= (np.abs(total) < _F32_MIN_NORMAL) & (total != 0)
    if risky.any():
        prod, c64, total = np.broadcast_arrays(prod, c64, total)
        flat = np.array(total, dtype=np.float64).reshape(-1)
        idx = np.nonzero(np.broadcast_to(risky, total.shape).reshape(-1))
        s = flat[idx]
        p = prod.reshape(-1)[idx]
        c = c64.reshape(-1)[idx]
        bv = s - p
        err = (p - (s - bv)) + (c - bv)                 # TwoSum: s + err == p + c exactly
        even = (s.view(np.int64) & 1) == 0
        fix = (err != 0) & even & np.isfinite(s)        # round to odd
        flat[idx] = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
        total = flat.reshape(total.shape)
    return total.astype(F32)


def add_alpha32(self, other, alpha: float) -> np.ndarray:
    """``torch.add(self, other, alpha=alpha)`` for float32: ``fma(other, f32(alpha), self)``."""
    return fma32(other, F32(alpha), self)


def addcmul32(self, t1, t2, value: float) -> np.ndarray:
    """``torch.addcmul(self, t1, t2, value=value)``: ``fma(f32(value) * t1, t2, self)``."""
    return fma32(F32(value) * np.asarray(t1, F32), t2, self)


def addcdiv32(self, t1, t2, value: float) -> np.ndarray:
    """``torch.addcdiv(self, t1, t2, value=value)``: ``self + (f32(value) * t1) / t2``."""
    return np.asarray(self, F32) + (F32(value) * np.asarray(t1, F32)) / np.asarray(t2, F32)


def lerp32(start, end, weight: float) -> np.ndarray:
    """``torch.lerp(start, end, weight)`` with a Python-number weight, float32.

    PyTorch: ``w = float32(weight)``; ``|w| < 0.5``: ``start + w * (end - start)``,
    otherwise ``end - (end - start) * (1 - w)``, both evaluated as one FMA.
    """
    start = np.asarray(start, F32)
    end = np.asarray(end, F32)
    w = F32(weight)
    diff = end - start
    if abs(w) < F32(0.5):
        return fma32(w, diff, start)
    return fma32(w - F32(1), diff, end)


def sqrt32(x) -> np.ndarray:
    """IEEE (correctly rounded) float32 square root.

    PyTorch's MKL ``vsSqrt`` is not correctly rounded (see the module docstring); this is
    the value PyTorch returns where it uses the SIMD ``sqrtps`` instruction.
    """
    return np.sqrt(np.asarray(x, F32))


def exp32(x) -> np.ndarray:
    """float32 ``exp``, correctly rounded (computed in float64, then rounded once more).

    The float64 detour mis-rounds only when ``exp(x)`` lies within about 2**-29 relative
    of a float32 rounding midpoint (probability ~1e-8 per element).  Differs from
    PyTorch's MKL ``vsExp`` by at most one ulp (~1% of elements).
    """
    return np.exp(np.asarray(x, F32).astype(np.float64)).astype(F32)


def exp2_32(x) -> np.ndarray:
    """float32 ``2**x``, correctly rounded (like :func:`exp32`, via float64)."""
    return np.exp2(np.asarray(x, F32).astype(np.float64)).astype(F32)


_SUM_LANES = 8          # Vectorized<float>::size() of the AVX2 reduction kernels
_SUM_ILP = 4            # row_sum's ilp_factor
_SUM_LEVELS = 4         # multi_row_sum's num_levels


def _ceil_log2(x: int) -> int:
    return 1 if x <= 2 else (x - 1).bit_length()


def _multi_row_sum(rows: np.ndarray) -> np.ndarray:
    """Cascade sum over axis 0 of ``rows`` (shape ``(size, *lanes)``), float32.

    Mirrors ``multi_row_sum`` of PyTorch's ``SumKernel.cpp``: four accumulator levels;
    every ``2**level_power`` rows the level-0 sums are pushed up one level.
    """
    size = rows.shape[0]
    level_power = max(4, _ceil_log2(size) // _SUM_LEVELS)
    level_step = 1 << level_power
    level_mask = level_step - 1
    acc = np.zeros((_SUM_LEVELS,) + rows.shape[1:], F32)
    i = 0
    while i + level_step <= size:
        for _ in range(level_step):
            acc[0] += rows[i]
            i += 1
        for j in range(1, _SUM_LEVELS):
            acc[j] += acc[j - 1]
            acc[j - 1] = 0
            if i & (level_mask << (j * level_power)):
                break
    while i < size:
        acc[0] += rows[i]
        i += 1
    for j in range(1, _SUM_LEVELS):
        acc[0] += acc[j]
    return acc[0]


def _row_sum(items: np.ndarray) -> np.ndarray:
    """PyTorch's ``row_sum``: items (shape ``(size, *lanes)``) in 4 interleaved partial sums."""
    size = items.shape[0]
    size_ilp = size // _SUM_ILP
    if size_ilp:
        partial = _multi_row_sum(items[: size_ilp * _SUM_ILP].reshape(
            (size_ilp, _SUM_ILP) + items.shape[1:])).copy()
    else:
        partial = np.zeros((_SUM_ILP,) + items.shape[1:], F32)
    for i in range(size_ilp * _SUM_ILP, size):
        partial[0] += items[i]
    for k in range(1, _SUM_ILP):
        partial[0] += partial[k]
    return partial[0]


def sum32(x) -> F32:
    """``torch.sum`` of a float32 tensor, in PyTorch's cascade order (see module notes).

    Contiguous input of ``n >= 8`` elements: ``n // 8`` vectors of 8 lanes are summed by
    the cascade (:func:`_row_sum`), the ``n % 8`` leftover elements are summed
    sequentially, and then the 8 lane sums are added to that in lane order.  Fewer than 8
    elements: the scalar cascade.  The output is ``0 + sum`` (the output buffer starts at
    zero), so an all-negative-zero input sums to ``+0``.
    """
    flat = np.ascontiguousarray(x, dtype=F32).ravel()
    n = flat.size
    if n < _SUM_LANES:
        total = _row_sum(flat)
    else:
        nvec = n // _SUM_LANES
        lanes = _row_sum(flat[: nvec * _SUM_LANES].reshape(nvec, _SUM_LANES))
        total = F32(0)
        for v in flat[nvec * _SUM_LANES:]:
            total = F32(total + v)
        for v in lanes:
            total = F32(total + v)
    return F32(F32(0) + total)


def mean32(x) -> F32:
    """``torch.mean`` of a float32 tensor: :func:`sum32` divided by ``float32(numel)``."""
    flat = np.asarray(x, dtype=F32)
    return F32(sum32(flat) / F32(flat.size))


def norm32(x) -> F32:
    """``Tensor.norm()`` (2-norm of all elements) in PyTorch's float32 order.

    PyTorch's vectorised kernel: 8 lanes accumulate ``x*x`` (product rounded, then added)
    over the first ``n - n % 8`` elements; the lane sums are folded in lane order; of the
    ``n % 8`` leftover elements, a first group of four (when there are at least four) is
    added as rounded squares, the remaining ones as fused ``fma(x, x, acc)`` (this is how
    the compiled scalar tail loop evaluates); finally a correctly rounded float32 sqrt.
    """
    flat = np.ascontiguousarray(x, dtype=F32).ravel()
    n = flat.size
    m = n - n % _SUM_LANES
    if m:
        sq = (flat[:m] * flat[:m]).reshape(-1, _SUM_LANES)
        lanes = np.add.accumulate(sq, axis=0, dtype=F32)[-1]
    else:
        lanes = np.zeros(_SUM_LANES, F32)
    acc = lanes[0]
    for v in lanes[1:]:
        acc = F32(acc + v)
    tail = flat[m:]
    n4 = 4 if tail.size >= 4 else 0
    for v in tail[:n4]:
        acc = F32(acc + F32(v * v))
    for v in tail[n4:]:
        acc = fma32(v, v, acc)[()]
    return F32(np.sqrt(F32(acc)))


# ---------------------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------------------

def _check(name: str, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(float(v))


def _positive(name: str, v) -> float:
    _check(name, v, _is_real(v) and float(v) > 0, "> 0")
    return float(v)


def _nonneg(name: str, v) -> float:
    _check(name, v, _is_real(v) and float(v) >= 0, ">= 0")
    return float(v)


def _unit_interval(name: str, v) -> float:
    _check(name, v, _is_real(v) and 0 <= float(v) < 1, "in [0, 1)")
    return float(v)


# ---------------------------------------------------------------------------------------
# optimisers
# ---------------------------------------------------------------------------------------

class FloatOptimizer:
    """Base class: per-tensor state, ``step(params, grads)`` updating params in place."""

    name = "?"

    def __init__(self) -> None:
        self.state: list[dict[str, Any]] | None = None

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray | None]) -> None:
        """Update every ``params[i]`` (float32 array, in place) with ``grads[i]``.

        ``grads[i] is None`` skips tensor ``i`` (no state is created for it).
        """
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} params but {len(grads)} grads")
        if self.state is None:
            self.state = [{} for _ in params]
        elif len(self.state) != len(params):
            raise ValueError(f"optimizer was used with {len(self.state)} tensors, "
                             f"now called with {len(params)}")
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            if not isinstance(p, np.ndarray) or p.dtype != F32:
                raise TypeError(f"params[{i}] must be a float32 numpy array")
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] has shape {g.shape}, params[{i}] {p.shape}")
            self._update_at(i, p, g.astype(F32, copy=False), self.state[i])

    def _update_at(self, i: int, p: np.ndarray, g: np.ndarray, st: dict[str, Any]) -> None:
        """Update tensor ``i`` (its position in the list); most optimisers ignore ``i``."""
        self._update(p, g, st)

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of the hyper-parameters and the per-tensor state."""
        hyper = {k: v for k, v in vars(self).items() if k != "state"}
        return {"name": self.name, "hyper": hyper, "state": copy.deepcopy(self.state)}


class Madam(FloatOptimizer):
    """Madam (multiplicative Adam-normalised update), float reference.

    Source: jxbz/madam, ``pytorch/optim/madam.py`` (Bernstein et al. 2020, "Learning
    compositional functions via multiplicative weight updates").

    Per tensor ``W`` with gradient ``g`` (``t`` counts this tensor's steps)::

        first step: max = p_scale * sqrt(mean(W*W))          (Python float)
                    v = 0
        t += 1
        bc = 1 - 0.999**t                                      (Python float)
        v  = 0.999 * v + 0.001 * g**2                          (float32)
        gn = g / sqrt(v / bc);  gn[isnan(gn)] = 0;  gn = clamp(gn, -g_bound, g_bound)
        W  = W * exp(-lr * gn * sign(W))
        W  = clamp(W, -max, max)

    float32 notes: ``max`` is ``p_scale * float(sqrt32(mean32(W*W)))`` -- the torch code
    takes ``.item()`` of the float32 root, multiplies in float64, and ``clamp_`` rounds the
    bound back to float32.  ``bc``, ``0.999``, ``0.001``, ``-lr`` and ``g_bound`` are
    rounded to float32 where they meet a tensor; the exponent is ``(f32(-lr) * gn) *
    sign(W)`` (left to right).  ``exp`` is correctly rounded (torch's MKL exp differs by
    <= 1 ulp on ~1% of elements); sqrt is IEEE.  A zero weight stays zero forever.
    """

    name = "madam"

    def __init__(self, lr: float = 0.01, p_scale: float = 3.0, g_bound: float = 10.0) -> None:
        super().__init__()
        self.lr = _positive("lr", lr)
        self.p_scale = _positive("p_scale", p_scale)
        self.g_bound = _positive("g_bound", g_bound)

    def _normalised_grad(self, g: np.ndarray, st: dict[str, Any]) -> np.ndarray:
        st["step"] += 1
        bias_correction = 1 - 0.999 ** st["step"]
        v = F32(0.999) * st["exp_avg_sq"] + F32(0.001) * (g * g)
        st["exp_avg_sq"] = v
        with np.errstate(divide="ignore", invalid="ignore"):
            gn = g / sqrt32(v / F32(bias_correction))
        gn[np.isnan(gn)] = 0
        np.clip(gn, F32(-self.g_bound), F32(self.g_bound), out=gn)
        return gn

    def _init_state(self, p: np.ndarray, st: dict[str, Any]) -> None:
        if not st:
            st["max"] = self.p_scale * float(sqrt32(mean32(p * p)))
            st["step"] = 0
            st["exp_avg_sq"] = np.zeros_like(p)

    def _clamp(self, p: np.ndarray, st: dict[str, Any]) -> None:
        np.clip(p, F32(-st["max"]), F32(st["max"]), out=p)

    def _update(self, p, g, st):
        self._init_state(p, st)
        gn = self._normalised_grad(g, st)
        p *= exp32(F32(-self.lr) * gn * np.sign(p))
        self._clamp(p, st)


class LNSMadamFloat(Madam):
    """LNS-Madam in float (the log-domain Madam of the LNS training paper), reference.

    Source: jiaweizzhao/lns-madam-optimizer, ``lns_madam.py`` (Zhao et al. 2022, "LNS-Madam:
    low-precision training in logarithmic number system using multiplicative weight
    update").

    Identical state and gradient normalisation to :class:`Madam`, then::

        gn = round(gn)                                  (half to even, like torch.round)
        wd is None:  W = W * 2 ** (-lr * gn * sign(W))  (lr = 1/128: a 1/128-octave step)
        otherwise:   W = W * exp(-lr * gn * sign(W) - lr * wd)   (base e, as in the source)
        W = clamp(W, -max, max)

    float32 notes as for :class:`Madam`; the exponent is ``(f32(-lr) * gn) * sign(W)``;
    ``lr * wd`` is a Python float rounded to float32 when subtracted.  ``2 ** x`` is
    correctly rounded, which for the default ``lr = 1/128`` is exactly what torch's
    ``pow`` returns for every reachable ``x = k * lr`` (see the module docstring).  The
    authors' ``momentum`` argument is unused in their code and is not offered here.
    """

    name = "lns-madam-float"

    def __init__(self, lr: float = 1 / 128, p_scale: float = 3.0, g_bound: float = 10.0,
                 wd: float | None = None) -> None:
        super().__init__(lr=lr, p_scale=p_scale, g_bound=g_bound)
        self.wd = None if wd is None else _nonneg("wd", wd)

    def _update(self, p, g, st):
        self._init_state(p, st)
        gn = np.round(self._normalised_grad(g, st))
        step = F32(-self.lr) * gn * np.sign(p)
        if self.wd is None:
            p *= exp2_32(step)
        else:
            p *= exp32(step - F32(self.lr * self.wd))
        self._clamp(p, st)


_MAX_LEVELS = 1 << 24        # float32 holds every integer up to 2**24 exactly


def _check_codes(name: str, codes, levels: int) -> np.ndarray:
    """Integer-valued codes in ``[0, levels - 1]``, as an int64 copy."""
    a = np.asarray(codes)
    numeric = a.dtype.kind in "iuf" and a.size > 0 and bool(np.all(np.isfinite(a)))
    if not (numeric and np.all(a == np.round(a)) and a.min() >= 0 and a.max() <= levels - 1):
        got = (f"values in [{a.min()}, {a.max()}]" + ("" if np.all(a == np.round(a))
                                                      else ", not all integers")
               if numeric else f"{a.size} elements of dtype {a.dtype}")
        raise ValueError(f"{name} must be an array of integers in [0, levels - 1 = "
                         f"{levels - 1}], got {got}")
    return a.astype(np.int64)


class IntegerMadam(Madam):
    """IntegerMadam (Madam on integer log-magnitude codes, "B-bit Madam"), float reference.

    Source: jxbz/madam, ``pytorch/optim/int_madam.py`` (Bernstein et al. 2020, the LNS
    variant of Madam).  Every weight is ``sign(W) * max * exp(-base_lr * n)`` with an
    integer code ``n`` in ``[0, levels - 1]``: a sign-magnitude LNS of natural base
    ``exp(base_lr)`` whose top value is sigma* (``max``), ``log2(levels)`` code bits.

    Per tensor ``W`` with gradient ``g`` (the state and ``gn`` exactly as :class:`Madam`)::

        first step: max = p_scale * sqrt(mean(W*W));  n = init codes;  v = 0
        gn = Madam's clamped, normalised gradient
        n  = clamp(n + round(lr_factor * gn) * sign(W), 0, levels - 1)   (half to even)
        W  = (sign(W) * max) * exp(-base_lr * n)

    Initial codes: the authors draw ``n`` with ``torch.randint_like(W, 0, levels - 1)``,
    i.e. uniformly on ``[0, levels - 2]`` (``high`` is exclusive), so after the first step
    the initial magnitudes survive only through sigma*.  ``init_codes[i]`` (one
    integer-valued array per tensor position, or ``None``) gives tensor ``i``'s codes, e.g.
    the ones a torch run drew; tensors without given codes draw them from
    ``np.random.default_rng((seed, i))`` with the authors' distribution (torch's generator
    cannot be reproduced in NumPy).

    float32 notes as for :class:`Madam`.  ``round(gn * f32(lr_factor))`` is float32;
    the authors keep ``n`` as a float32 tensor, here it is int64, which is the same while
    every code and step is an integer below ``2**24`` (``levels <= 2**24`` and
    ``lr_factor * g_bound <= 2**24``; a step beyond ``levels`` is cut to ``levels`` before
    the add, which cannot change the clamped result).  The exponent is
    ``f32(-base_lr) * f32(n)``, ``exp`` correctly rounded (torch's MKL ``exp`` differs by
    <= 1 ulp), then ``(sign(W) * f32(max)) * e``.  A zero weight stays zero and keeps its
    code.  ``exp(-base_lr * n)`` underflows to zero (and the weight dies, as in the
    source) only if ``base_lr * (levels - 1) > 103``.

    Parameters (ranges): ``base_lr`` > 0; ``lr_factor`` > 0; ``levels`` an integer in
    ``[2, 2**24]``; ``p_scale``, ``g_bound`` > 0; ``init_codes`` None or a list of arrays
    (or None entries) with one entry per tensor; ``seed`` >= 0.
    """

    name = "int-madam"

    def __init__(self, base_lr: float = 0.001, lr_factor: float = 10, levels: int = 4096,
                 p_scale: float = 3.0, g_bound: float = 10.0,
                 init_codes: Sequence[np.ndarray | None] | None = None, seed: int = 0) -> None:
        FloatOptimizer.__init__(self)       # Madam's lr is base_lr * lr_factor here
        self.p_scale = _positive("p_scale", p_scale)
        self.g_bound = _positive("g_bound", g_bound)
        self.base_lr = _positive("base_lr", base_lr)
        self.lr_factor = _positive("lr_factor", lr_factor)
        _check("levels", levels, isinstance(levels, (int, np.integer)) and not isinstance(
            levels, bool) and 2 <= levels <= _MAX_LEVELS, f"an integer in [2, {_MAX_LEVELS}]")
        self.levels = int(levels)
        _check("lr_factor * g_bound", self.lr_factor * self.g_bound,
               self.lr_factor * self.g_bound <= _MAX_LEVELS, f"<= {_MAX_LEVELS}")
        _check("seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
               and seed >= 0, "a non-negative integer")
        self.seed = int(seed)
        if init_codes is not None:
            _check("init_codes", init_codes, isinstance(init_codes, (list, tuple)),
                   "None or a list with one array (or None) per tensor")
            init_codes = [None if c is None else _check_codes(f"init_codes[{i}]", c, self.levels)
                          for i, c in enumerate(init_codes)]
        self.init_codes = init_codes

    def step(self, params, grads) -> None:
        if self.init_codes is not None and len(self.init_codes) != len(params):
            raise ValueError(f"init_codes has {len(self.init_codes)} entries, but "
                             f"{len(params)} tensors were passed")
        super().step(params, grads)

    def _codes(self, i: int, p: np.ndarray) -> np.ndarray:
        given = None if self.init_codes is None else self.init_codes[i]
        if given is None:
            rng = np.random.default_rng((self.seed, i))
            return rng.integers(0, self.levels - 1, p.shape, dtype=np.int64)
        if given.shape != p.shape:
            raise ValueError(f"init_codes[{i}] has shape {given.shape}, params[{i}] {p.shape}")
        return given.copy()

    def _update_at(self, i, p, g, st):
        if not st:
            self._init_state(p, st)
            st["integer"] = self._codes(i, p)
        gn = self._normalised_grad(g, st)
        sign = np.sign(p)
        step = np.round(gn * F32(self.lr_factor)) * sign
        # |step| >= levels ends at a clamp either way; cutting it keeps int64 exact
        step = np.clip(step, -self.levels, self.levels).astype(np.int64)
        st["integer"] = np.clip(st["integer"] + step, 0, self.levels - 1)
        mag = exp32(F32(-self.base_lr) * st["integer"].astype(F32))
        p[...] = (sign * F32(st["max"])) * mag


class Fromage(FloatOptimizer):
    """Fromage (Frobenius matched gradient descent), float reference.

    Source: jxbz/fromage, ``fromage.py`` (Bernstein et al. 2020, "On the distance between
    two neural networks and the stability of learning").

    Per tensor::

        first step, if p_bound is not None: max = p_bound * ||W||   (Python float)
        if ||W|| > 0 and ||g|| > 0:  W = W - lr * g * (||W|| / ||g||)
        else:                        W = W - lr * g
        W = W / sqrt(1 + lr**2)
        if p_bound is not None and ||W|| > max:  W = W * (max / ||W||)

    float32 notes: the norms are float32 (:func:`norm32`, PyTorch's summation order);
    ``||W|| / ||g||`` is a float32 division of 0-d tensors and multiplies ``g`` in float32;
    the subtraction is ``add_(d, alpha=-lr)``, i.e. ``fma(d, f32(-lr), W)``;
    ``sqrt(1 + lr**2)`` is a Python float rounded to float32 for the division.  The
    ``p_bound`` branch follows the source: ``max`` and the later norm are taken with
    ``.item()`` (Python floats), compared in float64, and ``W *= f32(max / norm)``.
    """

    name = "fromage"

    def __init__(self, lr: float = 0.01, p_bound: float | None = None) -> None:
        super().__init__()
        self.lr = _positive("lr", lr)
        self.p_bound = None if p_bound is None else _positive("p_bound", p_bound)

    def _update(self, p, g, st):
        if not st and self.p_bound is not None:
            st["max"] = self.p_bound * float(norm32(p))
        g_norm = norm32(g)
        p_norm = norm32(p)
        if p_norm > 0 and g_norm > 0:
            p[...] = add_alpha32(p, g * F32(p_norm / g_norm), -self.lr)
        else:
            p[...] = add_alpha32(p, g, -self.lr)
        p /= F32(math.sqrt(1 + self.lr ** 2))
        if self.p_bound is not None:
            p_norm = float(norm32(p))
            if p_norm > st["max"]:
                p *= F32(st["max"] / p_norm)


class Adam(FloatOptimizer):
    """Adam exactly as ``torch.optim.Adam`` (single-tensor path, ``foreach=False``).

    Source: pytorch/pytorch, ``torch/optim/adam.py`` (``_single_tensor_adam``, torch 2.13);
    Kingma & Ba 2015.  ``amsgrad``/``maximize``/decoupled decay are not offered.

    Per tensor (``t`` a Python float, like torch's float32 step tensor read by ``.item()``)::

        t += 1
        g = g + weight_decay * W                        (only if weight_decay != 0)
        m = lerp(m, g, 1 - beta1)
        v = v * beta2 + (1 - beta2) * g * g             (mul_ then addcmul_)
        bc1 = 1 - beta1**t;  bc2 = 1 - beta2**t         (Python floats)
        step_size = lr / bc1;  bc2_sqrt = bc2 ** 0.5     (Python floats)
        denom = sqrt(v) / bc2_sqrt + eps
        W = W - step_size * m / denom                   (addcdiv_, value=-step_size)

    float32 notes: see the module docstring for ``lerp``/``addcmul``/``addcdiv``/``add``
    fusion; scalars are rounded to float32 where they meet tensors.  ``sqrt`` is IEEE
    (torch's MKL sqrt is off by one ulp on some elements).
    """

    name = "adam"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr = _positive("lr", lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_unit_interval("betas[0]", betas[0]), _unit_interval("betas[1]", betas[1]))
        self.eps = _nonneg("eps", eps)
        self.weight_decay = _nonneg("weight_decay", weight_decay)

    def _update(self, p, g, st):
        beta1, beta2 = self.betas
        if not st:
            st["step"] = 0.0
            st["exp_avg"] = np.zeros_like(p)
            st["exp_avg_sq"] = np.zeros_like(p)
        st["step"] += 1.0
        step = st["step"]
        if self.weight_decay != 0:
            g = add_alpha32(g, p, self.weight_decay)
        st["exp_avg"] = lerp32(st["exp_avg"], g, 1 - beta1)
        st["exp_avg_sq"] = addcmul32(st["exp_avg_sq"] * F32(beta2), g, g, 1 - beta2)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2 ** 0.5
        denom = sqrt32(st["exp_avg_sq"]) / F32(bias_correction2_sqrt) + F32(self.eps)
        p[...] = addcdiv32(p, st["exp_avg"], denom, -step_size)


class SGD(FloatOptimizer):
    """SGD exactly as ``torch.optim.SGD`` (single-tensor path, ``foreach=False``).

    Source: pytorch/pytorch, ``torch/optim/sgd.py`` (``_single_tensor_sgd``, torch 2.13).

    Per tensor::

        g = g + weight_decay * W                         (only if weight_decay != 0)
        if momentum != 0:
            buf = copy(g)                                (first step)
            buf = momentum * buf + (1 - dampening) * g   (later steps: mul_ then add_)
            g = g + momentum * buf if nesterov else buf
        W = W - lr * g                                   (add_(g, alpha=-lr))

    float32 notes: every ``add(x, y, alpha)`` is ``fma(y, f32(alpha), x)``; ``momentum``
    is rounded to float32 for ``mul_``.  Bit-exact against torch (no transcendental).
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__()
        self.lr = _positive("lr", lr)
        self.momentum = _unit_interval("momentum", momentum)
        _check("dampening", dampening, _is_real(dampening) and 0 <= dampening <= 1, "in [0, 1]")
        self.dampening = float(dampening)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov requires momentum > 0 and dampening == 0, "
                             f"got momentum={self.momentum!r}, dampening={self.dampening!r}")
        self.nesterov = bool(nesterov)

    def _update(self, p, g, st):
        if self.weight_decay != 0:
            g = add_alpha32(g, p, self.weight_decay)
        if self.momentum != 0:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = g.copy()
            else:
                buf = add_alpha32(buf * F32(self.momentum), g, 1 - self.dampening)
            st["momentum_buffer"] = buf
            g = add_alpha32(g, buf, self.momentum) if self.nesterov else buf
        p[...] = add_alpha32(p, g, -self.lr)


OPTIMIZERS: dict[str, Callable[..., FloatOptimizer]] = {
    "madam": Madam,
    "lns-madam-float": LNSMadamFloat,
    "int-madam": IntegerMadam,
    "fromage": Fromage,
    "adam": Adam,
    "sgd": SGD,
}


def make_optimizer(name: str, **kwargs) -> FloatOptimizer:
    """Build the optimiser registered as ``name`` in :data:`OPTIMIZERS` with ``kwargs``."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}") from None
    return cls(**kwargs)
