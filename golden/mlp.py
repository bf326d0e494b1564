"""The integer MLP trainer: the bit-level specification of on-device training.

Every tensor is an LNS code array with an integer tensor bias, every step is integer and
deterministic for a seed. Shape ``sizes = (64, H, 10)`` (any depth >= 1 layer). Per sample
(batch 1), for layers ``l = 1..L`` with stored weights ``U_l`` (update format, the bias as
an extra input column fed by a constant 1):

Forward
  ``a_0`` = input codes (pixel/16 encoded with bias ``-emax``, so 1.0 is ``E = emax``) plus
  the constant 1. ``W_l`` = :func:`~lnsmadam.golden.update.forward_weights` of ``U_l``.
  ``S_l = MAC(W_l, a_{l-1})`` (accumulator words); for hidden layers
  ``x = to_lns(S_l) + bW_l + b_a`` and ReLU (negative -> ZERO), then the constant 1
  (absolute exponent 0) is appended and the tensor is requantised with the dynamic bias
  ``b = max(x) - emax`` (the largest element lands on ``emax``).
Loss gradient (softmax cross-entropy), from the last accumulator words ``S_L``
  ``z_i = round(gamma * log2(e) * y_i)`` with ``y_i`` the logit: an integer multiply of
  ``S_L`` by the constant ``C[r] = round(gamma*log2(e)*2**(r/gamma)*2**P)`` (``r`` the
  remainder of the logit bias), round-half-up shift. ``d_i = z_i - max z``;
  ``L_i = to_linear(d_i + gamma*(Ws-1))`` over a ``Ws``-octave window; ``Sum = sum L_i``.
  Error ``e_i = p_i = 2**(d_i/gamma) / Sum`` for ``i != label`` (exponent
  ``d_i + gamma*(Ws-1) - log(Sum)``), ``e_label = -(Sum - L_label) / Sum``. Requantised with
  the dynamic bias.
Backward
  ``G_l = e_l (x) a_{l-1}`` (outer product: :func:`~lnsmadam.golden.mul.mul`, bias
  ``b_e + b_a + emax``). ``e_{l-1} = MAC(W_l[:, :-1]^T, e_l)`` masked by ``S_{l-1} > 0`` (ReLU
  derivative), requantised with the dynamic bias.
Update
  :func:`~lnsmadam.golden.update.madam_step` on every ``U_l`` with ``G_l`` (all gradients are
  computed from the weights before the update).

Initial weights come from :func:`~lnsmadam.golden.seeded.init_mlp` (the same float32
values the FP32 baselines start from); per layer ``sigma* = p_scale * RMS(W_0)`` over the
weight and bias columns together, ``U``'s bias puts sigma* at the top field value, and the
forward bias puts sigma* at ``emax`` of the forward format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .seeded import epoch_order, init_mlp
from .format import LNSFormat, check_float, check_int, check_type
from .mac import MACConfig, matmul
from .mul import mul
from .pipeline import MODES, train_samples
from .softmax import LOG2E, SOFTMAX_P, requant_dynamic, softmax_error
from .update import BiasCorrection, MadamConfig, forward_weights, madam_step

__all__ = ["MLPConfig", "LNSMLP", "train_lns", "LOG2E", "SOFTMAX_P"]


def _check_sizes(sizes) -> tuple[int, ...]:
    # a mapping or a set iterates, but not as an ordered list of widths (a dict would give
    # its keys and drop its values)
    if (isinstance(sizes, (str, bytes, dict, set, frozenset))
            or not hasattr(sizes, "__iter__")):
        raise ValueError(f"sizes must be a sequence of layer widths, e.g. (64, 16, 10), "
                         f"got {sizes!r}")
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output layer, got {sizes}")
    for i, s in enumerate(sizes):
        check_int(f"sizes[{i}]", s, 1, 4096)
    return sizes


@dataclass(frozen=True)
class MLPConfig:
    """Everything that defines an integer training run (besides data and seed).

    sizes : layer widths, input first (default 64-16-10).
    fmt : format of every forward/backward tensor (W, A, E, G), default 8-bit gamma = 8.
    mac : dot-product unit (its ``fmt`` is replaced by ``fmt``); default
        :meth:`MACConfig.for_format` of ``fmt``.
    madam : integer LNS-Madam parameters (its ``grad`` is replaced by ``fmt``).
    p_scale : sigma* = p_scale * RMS(W_0) per layer, (0, 1e6].
    softmax_window : octaves of exp(logit - max) kept, 1..30.
    """

    sizes: tuple[int, ...] = (64, 16, 10)
    fmt: LNSFormat = field(default_factory=lambda: LNSFormat(8, 3))
    mac: MACConfig | None = None
    madam: MadamConfig = field(default_factory=MadamConfig)
    p_scale: float = 10.0
    softmax_window: int = 16

    def __post_init__(self):
        object.__setattr__(self, "sizes", _check_sizes(self.sizes))
        check_type("fmt", self.fmt, LNSFormat)
        if self.mac is not None:
            check_type("mac", self.mac, MACConfig)
        check_type("madam", self.madam, MadamConfig)
        mac = self.mac if self.mac is not None else MACConfig.for_format(self.fmt)
        if mac.fmt != self.fmt:
            mac = replace(mac, fmt=self.fmt)
        object.__setattr__(self, "mac", mac)
        if self.madam.grad != self.fmt:
            object.__setattr__(self, "madam", replace(self.madam, grad=self.fmt))
        if self.madam.weight.frac_bits < self.fmt.frac_bits:
            raise ValueError("the weight update format must be at least as fine as fmt")
        check_float("p_scale", self.p_scale, 0, 1e6, lo_open=True)
        check_int("softmax_window", self.softmax_window, 1, 30)

    def to_dict(self) -> dict:
        f, m, md = self.fmt, self.mac, self.madam
        return {
            "sizes": list(self.sizes), "bits": f.bits, "gamma": f.gamma,
            "mac": {"lut_frac": m.lut_frac, "window": m.window, "acc_bits": m.acc_bits,
                    "saturate": m.saturate, "lanes": m.lanes, "mid_bits": m.mid_bits},
            "weight_format": {"bits": md.weight.bits, "gamma": md.weight.gamma},
            "state_format": {"exp_bits": md.state.exp_bits, "man_bits": md.state.man_bits,
                             "offset": md.state.offset},
            "lr_step": md.lr_step, "g_bound": md.g_bound, "beta_k": md.beta_k,
            "guard_bits": md.guard_bits, "bias_correction": md.bias_correction,
            "bc_bits": md.bc_bits, "p_scale": self.p_scale,
            "softmax_window": self.softmax_window,
            "bits_per_weight": md.bits_per_weight,
        }


class _Tensor:
    """Codes plus their integer tensor bias."""

    __slots__ = ("codes", "bias")

    def __init__(self, codes, bias):
        self.codes = codes
        self.bias = int(bias)


class LNSMLP:
    """Integer MLP state (weights, second moments, per-layer constants) and its step."""

    def __init__(self, cfg: MLPConfig, seed: int, init=None):
        self.cfg = check_type("cfg", cfg, MLPConfig)
        fmt, W = cfg.fmt, cfg.madam.weight
        init = init if init is not None else init_mlp(cfg.sizes, seed)
        self.u, self.v, self.u_bias, self.e_clamp, self.f_bias = [], [], [], [], []
        for (w, b) in init:
            full = np.concatenate([np.asarray(w, np.float64), np.asarray(b, np.float64)[:, None]], 1)
            sigma = float(cfg.p_scale) * float(np.sqrt(np.mean(full**2)))
            if not sigma > 0:
                raise ValueError("a layer's initial weights are all zero; sigma* would be 0")
            u_max = int(np.floor(W.gamma * np.log2(sigma)))
            ub = u_max - W.emax                    # sigma* sits at the top field value
            s = W.frac_bits - fmt.frac_bits
            fb = ((u_max + ((1 << s) >> 1)) >> s) - fmt.emax
            self.u.append(W.encode(full, bias=ub))
            self.v.append(np.zeros(full.shape, np.int64))
            self.u_bias.append(ub)
            self.e_clamp.append(W.emax)
            self.f_bias.append(fb)
        self._x_bias = -fmt.emax
        self.bc = BiasCorrection(cfg.madam)
        self.steps = 0

    # -- pieces ------------------------------------------------------------------------
    def input_codes(self, x: np.ndarray) -> _Tensor:
        """Encode features in [0, 1] (one sample or a batch) with bias -emax, append 1."""
        n_in = self.cfg.sizes[0]
        try:
            x = np.asarray(x, np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"x must be numbers of shape ({n_in},) or (n, {n_in}), "
                             f"got {type(x).__name__}") from None
        if x.ndim not in (1, 2) or x.shape[-1] != n_in:
            raise ValueError(f"x must have shape ({n_in},) or (n, {n_in}), got {x.shape}")
        if np.isnan(x).any():
            raise ValueError(f"x must be numbers (features in [0, 1]), got NaN at index "
                             f"{tuple(int(i) for i in np.argwhere(np.isnan(x))[0])}")
        return self.input_tensor(self.cfg.fmt.encode(x, bias=self._x_bias))

    def input_tensor(self, codes) -> _Tensor:
        """The input tensor of stored feature codes (one sample or a batch, bias -emax, as
        the device's records hold them), the constant 1 appended."""
        c = np.asarray(codes, np.int64)
        one = np.full(c.shape[:-1] + (1,), self.cfg.fmt.emax, np.int64)
        return _Tensor(np.concatenate([c, one], -1), self._x_bias)

    def forward_weights(self, l: int) -> _Tensor:
        cfg = self.cfg
        codes = forward_weights(self.u[l], cfg.madam.weight, self.u_bias[l], cfg.fmt, self.f_bias[l])
        return _Tensor(codes, self.f_bias[l])

    def _requant_dynamic(self, sign, x, zero) -> _Tensor:
        return _Tensor(*requant_dynamic(self.cfg.fmt, sign, x, zero))

    def _hidden(self, S, bias) -> _Tensor:
        sign, x, zero = self.cfg.mac.to_lns(S)
        x = x + bias
        zero = zero | (sign == 1)                            # ReLU
        sign = np.zeros_like(sign)
        x = np.concatenate([x, [0]])                         # constant 1 for the next bias
        zero = np.concatenate([zero, [False]])
        sign = np.concatenate([sign, [0]])
        return self._requant_dynamic(sign, x, zero)

    def _error_out(self, S, bias: int, label: int) -> _Tensor:
        """Softmax cross-entropy error ``p - onehot`` (:func:`~.softmax.softmax_error`)."""
        return _Tensor(*softmax_error(S, bias, label, self.cfg))

    # -- per-layer pieces (the schedules of golden/trainer.py and golden/pipeline.py
    #    compose these; ``step`` below is their batch-1 order) ----------------------------
    def layer_forward(self, l: int, a: _Tensor):
        """Layer ``l`` on its input ``a``: ``(S_l, a_{l+1})``, ``a_{l+1}`` None for the last."""
        w = self.forward_weights(l)
        S = matmul(w.codes, a.codes[:, None], self.cfg.mac)[:, 0]
        if l == len(self.u) - 1:
            return S, None
        return S, self._hidden(S, w.bias + a.bias)

    def output_error(self, S, a: _Tensor, label: int) -> _Tensor:
        """The error ``e_L`` from the last accumulator words ``S`` (``a``: the last layer's
        input, whose bias enters the logits' bias)."""
        return self._error_out(S, self.f_bias[-1] + a.bias, int(label))

    def layer_backward(self, l: int, e: _Tensor, S_prev) -> _Tensor:
        """``e_{l-1} = MAC(W_l[:, :-1]^T, e_l)`` masked by ``S_{l-1} > 0`` (layer ``l >= 1``;
        reads the weights as they are now: call it before :meth:`layer_update` of ``l``)."""
        mac = self.cfg.mac
        w = self.forward_weights(l)
        Sb = matmul(w.codes[:, :-1].T, e.codes[:, None], mac)[:, 0]
        sign, xb, zero = mac.to_lns(Sb)
        xb = xb + w.bias + e.bias
        zero = zero | ~(S_prev > 0)                          # ReLU derivative
        return self._requant_dynamic(sign, xb, zero)

    def weight_grad(self, e: _Tensor, a: _Tensor) -> _Tensor:
        """``G = e (x) a``, the outer product of a layer's error and its input."""
        fmt = self.cfg.fmt
        return _Tensor(mul(e.codes[:, None], a.codes[None, :], fmt), e.bias + a.bias + fmt.emax)

    def layer_update(self, l: int, g: _Tensor, bc: int) -> None:
        """LNS-Madam on layer ``l`` with gradient ``g`` and bias-correction exponent ``bc``."""
        self.u[l], self.v[l], _ = madam_step(self.u[l], self.v[l], g.codes, g.bias,
                                             self.e_clamp[l], self.cfg.madam, bc)

    def check_label(self, label) -> int:
        """``label`` as an int; ``ValueError`` unless it is an integer in ``0..n_out-1``."""
        n_out = self.cfg.sizes[-1]
        if (isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer))
                or not 0 <= int(label) < n_out):
            raise ValueError(f"label must be an integer in 0..{n_out - 1}, got {label!r}")
        return int(label)

    # -- passes ------------------------------------------------------------------------
    def forward(self, a: _Tensor, keep: bool = False):
        """Forward pass of one sample; returns the last accumulator words (and the trace)."""
        trace = [a]
        Ss = []
        for l in range(len(self.u)):
            S, a = self.layer_forward(l, a)
            Ss.append(S)
            if a is not None:
                trace.append(a)
        if keep:
            return S, trace, Ss
        return S

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class predictions (argmax of the last accumulator words, lowest index on ties)."""
        x = np.atleast_2d(x)
        out = np.empty(len(x), np.int64)
        for i in range(len(x)):
            out[i] = int(np.argmax(self.forward(self.input_codes(x[i]))))
        return out

    def gradients(self, x: np.ndarray, label: int):
        """Forward + backward of one sample: ``(prediction, [G_l tensors])``.

        ``label`` must be an integer in ``0..n_out-1`` (``ValueError`` otherwise)."""
        a0 = self.input_codes(x)
        if a0.codes.ndim != 1:
            raise ValueError(f"x must be one sample, shape ({self.cfg.sizes[0]},), got "
                             f"{np.shape(x)}")
        label = self.check_label(label)
        S, trace, Ss = self.forward(a0, keep=True)
        pred = int(np.argmax(S))
        e = self.output_error(S, trace[-1], label)
        grads = [None] * len(self.u)
        for l in range(len(self.u) - 1, -1, -1):
            grads[l] = self.weight_grad(e, trace[l])
            if l > 0:
                e = self.layer_backward(l, e, Ss[l - 1])
        return pred, grads

    def step(self, x: np.ndarray, label: int, updater=None):
        """One training step (forward, backward, update); returns the prediction."""
        pred, grads = self.gradients(x, label)
        if updater is None:
            bc = self.bc.step()
            for l, g in enumerate(grads):
                self.layer_update(l, g, bc)
        else:
            updater(self, grads)
        self.steps += 1
        return pred

    def weights_float(self):
        """Stored weights decoded to float64, one (out, in + 1) matrix per layer."""
        W = self.cfg.madam.weight
        return [W.decode(u, b) for u, b in zip(self.u, self.u_bias)]

    def state(self) -> dict:
        """Everything the device holds, as integer arrays (for bit-exact comparisons)."""
        return {"u": [u.copy() for u in self.u], "v": [v.copy() for v in self.v],
                "u_bias": list(self.u_bias), "f_bias": list(self.f_bias),
                "e_clamp": list(self.e_clamp), "steps": self.steps, "bc_B": self.bc.B}


def accuracy(model: LNSMLP, x, y) -> float:
    return float(np.mean(model.predict(x) == np.asarray(y)))


def train_lns(cfg: MLPConfig, data, epochs: int, seed: int,
              callback: Callable[[int, dict], None] | None = None,
              updater=None, progress: Callable[[int], None] | None = None,
              mode: str = "exact") -> dict:
    """Train the integer MLP; returns per-epoch metrics, the final state and the config.

    ``data`` has ``x_train``/``y_train``/``x_test``/``y_test``; ``callback(epoch, metrics)``
    runs after each epoch and ``progress(n)`` after every ``n`` samples. ``mode``:
    ``"exact"`` (batch-1 :meth:`LNSMLP.step`) or ``"pipelined"`` (the engine's pipelined
    schedule, :mod:`lnsmadam.golden.pipeline`; each epoch fills and drains; no ``updater``).
    """
    check_int("epochs", epochs, 0, 100000)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if updater is not None and mode != "exact":
        raise ValueError("updater replaces LNSMLP.step's update: it needs mode 'exact'")
    model = LNSMLP(cfg, seed)
    hist = []
    n = len(data.x_train)
    for ep in range(epochs):
        order = epoch_order(n, seed, ep)
        y = np.asarray(data.y_train)[order]
        if mode == "exact":
            preds = (model.step(data.x_train[i], int(data.y_train[i]), updater) for i in order)
        else:
            preds = train_samples(model, ((model.input_codes(data.x_train[i]), int(data.y_train[i]))
                                          for i in order), mode)
        correct = 0
        for k, pred in enumerate(preds):
            correct += pred == y[k]
            if progress is not None and (k + 1) % 64 == 0:
                progress(64)
        if progress is not None and n % 64:
            progress(n % 64)
        m = {"epoch": ep + 1, "train_acc": correct / n,
             "test_acc": accuracy(model, data.x_test, data.y_test)}
        hist.append(m)
        if callback is not None:
            callback(ep + 1, m)
    return {"history": hist, "model": model, "config": cfg.to_dict()}
