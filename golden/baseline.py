"""The FP32 baseline MLP, trained with the float reference optimisers.

It starts from the initial weights and visits the samples in the order every trainer shares
with the integer golden MLP (:func:`~lnsmadam.golden.seeded.init_mlp`,
:func:`~lnsmadam.golden.seeded.epoch_order`).

:class:`FloatMLP` is a plain NumPy float32 multilayer perceptron:
fully connected layers ``z = a @ W.T + b`` (``W`` of shape ``(fan_out, fan_in)`` as in
``nn.Linear``), ReLU on hidden layers, softmax cross-entropy on the output, trained per
sample (batch 1) by default.  Its parameters are a flat list ``[W1, b1, W2, b2, ...]``, one
array per PyTorch parameter, so a per-tensor optimiser (e.g. Madam's per-tensor sigma*)
treats the weight matrix and the bias vector separately, exactly as with ``nn.Linear``.

:func:`train_float` trains it with one of the float reference optimisers of
:mod:`lnsmadam.golden.optim`; its ``quantizer`` hook re-quantises every parameter after
each optimiser step (used to build "SGD/Adam updating LNS-quantised weights directly").
"""

from __future__ import annotations

import time
from numbers import Integral
from typing import Any, Callable, Sequence

import numpy as np

from .optim import OPTIMIZERS, make_optimizer
from .seeded import INIT_SCHEMES, check_sizes, epoch_order, init_mlp

__all__ = ["FloatMLP", "train_float", "DEFAULT_SIZES"]

DEFAULT_SIZES = (64, 16, 10)


class FloatMLP:
    """Float MLP (default 64-16-10): ReLU hidden layers, softmax cross-entropy output.

    ``params`` is the flat list ``[W1, b1, W2, b2, ...]`` (``W_l`` of shape
    ``(fan_out, fan_in)``); the arrays are updated in place by the optimisers.  ``dtype``
    is float32 for training; float64 is accepted for gradient checks.

    Forward, for a batch ``x`` of shape ``(B, n_in)`` (``a_0 = x``)::

        z_l = a_{l-1} @ W_l.T + b_l;   a_l = relu(z_l)  (hidden layers),  logits = z_L
        p = softmax(logits);  loss = mean_i(-log p[i, y_i])

    Backward (mean over the batch)::

        dz_L = (p - onehot(y)) / B
        dW_l = dz_l.T @ a_{l-1};   db_l = sum_i dz_l[i]
        dz_{l-1} = (dz_l @ W_l) * (z_{l-1} > 0)
    """

    def __init__(self, sizes: Sequence[int] = DEFAULT_SIZES, seed: int = 0,
                 init: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                 dtype=np.float32) -> None:
        self.sizes = check_sizes(sizes)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        layers = init if init is not None else init_mlp(self.sizes, seed)
        if len(layers) != len(self.sizes) - 1:
            raise ValueError(f"init has {len(layers)} layers, sizes need {len(self.sizes) - 1}")
        self.params: list[np.ndarray] = []
        for (w, b), fan_in, fan_out in zip(layers, self.sizes[:-1], self.sizes[1:]):
            w = np.array(w, dtype=self.dtype, copy=True)
            b = np.array(b, dtype=self.dtype, copy=True)
            if w.shape != (fan_out, fan_in) or b.shape != (fan_out,):
                raise ValueError(f"layer {fan_in}->{fan_out}: got W {w.shape}, b {b.shape}")
            self.params += [w, b]

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def _as_batch(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x must have shape (B, {self.sizes[0]}), got {x.shape}")
        return x

    def forward(self, x) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Logits ``(B, n_out)`` and the per-layer inputs ``a`` and pre-activations ``z``."""
        a = self._as_batch(x)
        acts, pre = [a], []
        for l in range(self.n_layers):
            w, b = self.params[2 * l], self.params[2 * l + 1]
            z = a @ w.T + b
            pre.append(z)
            if l < self.n_layers - 1:
                a = np.maximum(z, 0)
                acts.append(a)
        return pre[-1], acts, pre

    def logits(self, x) -> np.ndarray:
        return self.forward(x)[0]

    def predict(self, x) -> np.ndarray:
        """Predicted class per sample (first maximum on ties)."""
        return np.argmax(self.logits(x), axis=1)

    @staticmethod
    def _softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample loss and softmax probabilities (max-shifted for stability)."""
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        probs = e / s
        rows = np.arange(len(y))
        loss = np.log(s[:, 0]) - shifted[rows, y]
        return loss, probs

    def loss_and_grads(self, x, y) -> tuple[float, list[np.ndarray], np.ndarray]:
        """Mean cross-entropy loss, the gradients (same layout as ``params``), the logits."""
        x = self._as_batch(x)
        y = np.atleast_1d(np.asarray(y, dtype=np.int64))
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},), got {y.shape}")
        logits, acts, pre = self.forward(x)
        loss, probs = self._softmax_xent(logits, y)
        dz = probs
        dz[np.arange(len(y)), y] -= 1
        if len(y) > 1:
            dz /= self.dtype.type(len(y))
        grads: list[np.ndarray] = [None] * len(self.params)  # type: ignore[list-item]
        for l in range(self.n_layers - 1, -1, -1):
            grads[2 * l] = dz.T @ acts[l]
            grads[2 * l + 1] = dz.sum(axis=0)
            if l > 0:
                dz = (dz @ self.params[2 * l]) * (pre[l - 1] > 0)
        return float(loss.mean()), grads, logits

    def evaluate(self, x, y, chunk: int = 4096) -> tuple[float, float]:
        """(mean loss, accuracy) over a data set."""
        x = self._as_batch(x)
        y = np.asarray(y, dtype=np.int64)
        total, correct = 0.0, 0
        for i in range(0, len(y), chunk):
            logits = self.logits(x[i:i + chunk])
            loss, _ = self._softmax_xent(logits, y[i:i + chunk])
            total += float(loss.astype(np.float64).sum())
            correct += int(np.sum(np.argmax(logits, axis=1) == y[i:i + chunk]))
        n = max(len(y), 1)
        return total / n, correct / n


def train_float(optimizer_name: str, opt_kwargs: dict[str, Any] | None,
                sizes: Sequence[int] = DEFAULT_SIZES, epochs: int = 30, seed: int = 0,
                data=None, callback: Callable[[int, dict], None] | None = None,
                quantizer: Callable[[int, np.ndarray], np.ndarray] | None = None,
                batch_size: int = 1, init: str = "torch") -> dict[str, Any]:
    """Train :class:`FloatMLP` with a float reference optimiser; per-epoch metrics.

    ``optimizer_name`` is a key of :data:`lnsmadam.golden.optim.OPTIMIZERS`, built with
    ``opt_kwargs`` (IntegerMadam's ``seed``, which draws its initial codes, defaults to
    ``seed``).  ``data`` has ``x_train`` (float32 ``(N, 64)`` in [0, 1]), ``y_train``,
    ``x_test``, ``y_test`` (e.g. :func:`lnsmadam.golden.data.load_digits_split`).
    Weights come from :func:`init_mlp` ``(sizes, seed, init)``; epoch ``e`` (from 0) visits the
    samples in :func:`epoch_order` ``(N, seed, e)`` order, in consecutive mini-batches of
    ``batch_size`` (default 1: per-sample updates; the last batch may be smaller).

    After every optimiser step, if ``quantizer`` is given, each parameter is replaced in
    place: ``params[i][...] = quantizer(i, params[i])`` (``i`` indexes ``[W1, b1, ...]``).
    After every epoch ``callback(epoch, metrics)`` is called (``epoch`` from 1).

    Returns ``{"history": [metrics per epoch], "model": FloatMLP, "config": {...},
    "seconds": float}`` where metrics are ``epoch``, ``train_loss``/``train_acc`` and
    ``test_loss``/``test_acc`` (whole sets, evaluated after the epoch),
    ``running_loss``/``running_acc`` (each sample's loss and prediction just before the
    update it caused, averaged over the epoch) and ``seconds`` (training time).
    """
    if optimizer_name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer_name!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if init not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {sorted(INIT_SCHEMES)}, got {init!r}")
    if data is None:
        raise ValueError("data must be given (x_train, y_train, x_test, y_test)")
    opt_kwargs = dict(opt_kwargs or {})
    if optimizer_name == "int-madam":
        opt_kwargs.setdefault("seed", seed)     # its random initial codes follow the run's seed
    model = FloatMLP(sizes, seed, init=init_mlp(sizes, seed, init))
    opt = make_optimizer(optimizer_name, **opt_kwargs)
    params = model.params
    x_train = np.asarray(data.x_train, dtype=np.float32)
    y_train = np.asarray(data.y_train, dtype=np.int64)
    x_test = np.asarray(data.x_test, dtype=np.float32)
    y_test = np.asarray(data.y_test, dtype=np.int64)
    n = len(y_train)
    history = []
    t_start = time.perf_counter()
    for ep in range(epochs):
        t0 = time.perf_counter()
        order = epoch_order(n, seed, ep)
        run_loss, run_correct = 0.0, 0
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            loss, grads, logits = model.loss_and_grads(x_train[idx], y_train[idx])
            run_loss += loss * len(idx)
            run_correct += int(np.sum(np.argmax(logits, axis=1) == y_train[idx]))
            opt.step(params, grads)
            if quantizer is not None:
                for i, p in enumerate(params):
                    p[...] = quantizer(i, p)
        seconds = time.perf_counter() - t0
        train_loss, train_acc = model.evaluate(x_train, y_train)
        test_loss, test_acc = model.evaluate(x_test, y_test)
        m = {"epoch": ep + 1, "train_loss": train_loss, "train_acc": train_acc,
             "test_loss": test_loss, "test_acc": test_acc,
             "running_loss": run_loss / max(n, 1), "running_acc": run_correct / max(n, 1),
             "seconds": seconds}
        history.append(m)
        if callback is not None:
            callback(ep + 1, m)
    config = {"optimizer": optimizer_name, "opt_kwargs": opt_kwargs, "sizes": list(model.sizes),
              "epochs": int(epochs), "seed": int(seed), "batch_size": int(batch_size),
              "quantizer": quantizer is not None, "init": init}
    return {"history": history, "model": model, "config": config,
            "seconds": time.perf_counter() - t_start}
