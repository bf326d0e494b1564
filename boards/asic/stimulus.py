"""Operands from real training, as gate-level stimulus, and the check of the results.

:func:`record_training` trains the digits MLP with the golden integer LNS-Madam step
(:class:`~lnsmadam.golden.mlp.LNSMLP`) for ``warm_samples`` samples, then records every
dot product (forward ``W a`` and backward ``W^T e``, in the order the trainer issues them)
and every weight update ``(u, v, g, g_bias, e_clamp)`` of the next ``samples`` samples.

The baselines see the same tensors: each recorded tensor's LNS values, scaled per tensor, are
quantised to INT8 (symmetric, ``max |x| -> 127``), to FP8 (a power-of-two scale that puts
``max |x|`` at or below the format's largest finite value, round to nearest even) or rounded
to FP32.

:func:`mac_streams` deals the vectors out to independent streams (:mod:`.gatesim` runs
them side by side): each stream gets whole vectors back to back, one beat per cycle
(``valid`` always high after reset, ``ready`` always high), padded with zero operands to
whole beats, so every lane slot of every counted cycle is either a real product or a
padding zero.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ...golden.baseline import epoch_order
from ...golden.data import load_digits_split
from ...golden.format import LNSFormat
from ...golden.mlp import LNSMLP, MLPConfig
from ...golden.update import madam_step

__all__ = ["TrainingTrace", "record_training", "samples_to_fill", "mac_streams", "update_streams",
           "layout_bits", "field_values", "quantise_int8", "lns_values"]


@dataclass
class TrainingTrace:
    cfg: MLPConfig
    #: (A codes (M, K), b codes (K,)): one matrix-vector product of the trainer
    matmuls: list = field(default_factory=list)
    #: (u, v, g codes (same shape), g_bias, e_clamp, bc_exp) per layer and sample
    updates: list = field(default_factory=list)
    samples: int = 0

    def vectors(self):
        """Every dot product as ``(matmul index, a codes (K,), b codes (K,))``."""
        for i, (A, b) in enumerate(self.matmuls):
            for row in A:
                yield i, row, b

    def ops_per_sample(self) -> dict:
        """MACs (forward, backward) and weight updates of one training sample."""
        fwd = bwd = 0
        sizes = self.cfg.sizes
        for l in range(len(sizes) - 1):
            fwd += sizes[l + 1] * (sizes[l] + 1)
            if l > 0:
                bwd += sizes[l] * sizes[l + 1]
        return {"mac_forward": fwd, "mac_backward": bwd, "updates": fwd}


def samples_to_fill(kind: str, lanes: int, streams: int, cycles: int,
                    sizes=(64, 16, 10)) -> int:
    """Training samples whose operations fill ``streams`` x ``cycles`` (see
    :func:`mac_streams` / :func:`update_streams`), plus one."""
    if kind == "update":                 # full runs only (see update_streams)
        run = cycles - 1
        per = sum((sizes[l + 1] * (sizes[l] + 1)) // run for l in range(len(sizes) - 1))
        return -(-streams // max(per, 1)) + 1
    beats = 0
    for l in range(len(sizes) - 1):
        beats += sizes[l + 1] * -(-(sizes[l] + 1) // lanes)                # forward
        if l > 0:
            beats += sizes[l] * -(-sizes[l + 1] // lanes)                  # backward
    return -(-streams * cycles // beats) + 1


@contextmanager
def _recording_matmul(log):
    from ...golden import mlp as mlp_mod

    orig = mlp_mod.matmul

    def rec(a, b, cfg, *args, **kw):
        log.append((np.array(a, np.int64), np.array(b, np.int64)[:, 0]))
        return orig(a, b, cfg, *args, **kw)

    mlp_mod.matmul = rec
    try:
        yield
    finally:
        mlp_mod.matmul = orig


def record_training(samples: int = 4, warm_samples: int = 200, seed: int = 0,
                    sizes=(64, 16, 10)) -> TrainingTrace:
    """Record ``samples`` training steps after ``warm_samples`` steps (see module doc)."""
    cfg = MLPConfig(sizes=tuple(sizes))
    data = load_digits_split(seed)
    model = LNSMLP(cfg, seed)
    trace = TrainingTrace(cfg)
    n = len(data.x_train)
    order = np.concatenate([epoch_order(n, seed, ep)
                            for ep in range((warm_samples + samples) // n + 1)])
    for k in range(warm_samples):
        i = order[k]
        model.step(data.x_train[i], int(data.y_train[i]))

    def updater(m, grads):
        bc = m.bc.step()                     # as LNSMLP.step
        for l, g in enumerate(grads):
            trace.updates.append((m.u[l].copy(), m.v[l].copy(), g.codes.copy(), int(g.bias),
                                  int(m.e_clamp[l]), int(bc)))
            m.u[l], m.v[l], _ = madam_step(m.u[l], m.v[l], g.codes, g.bias, m.e_clamp[l],
                                           cfg.madam, bc)

    with _recording_matmul(trace.matmuls):
        for k in range(warm_samples, warm_samples + samples):
            i = order[k]
            model.step(data.x_train[i], int(data.y_train[i]), updater)
    trace.samples = samples
    return trace


# -- operand encodings of the baselines ----------------------------------------------------
def lns_values(codes, fmt: LNSFormat) -> np.ndarray:
    """Float values of LNS codes with tensor bias 0 (ZERO -> 0)."""
    return fmt.decode(np.asarray(codes, np.int64), 0)


def quantise_int8(x) -> np.ndarray:
    """Symmetric per-tensor INT8: ``round(x * 127 / max|x|)`` (all-zero stays 0)."""
    x = np.asarray(x, np.float64)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m == 0:
        return np.zeros(x.shape, np.int64)
    return np.clip(np.rint(x * (127.0 / m)), -127, 127).astype(np.int64)


# -- payload packing -------------------------------------------------------------------------
def layout_bits(layout, values: dict, shape) -> np.ndarray:
    """Pack per-field integer arrays into ``(cycles, width, streams)`` payload bits.

    ``layout`` is an Amaranth ``StructLayout``; ``values[name]`` has shape ``shape`` =
    ``(cycles, streams)`` for a scalar field or ``(cycles, streams, n)`` for an
    ``ArrayLayout`` field of ``n`` elements. Fields not given are 0.
    """
    from amaranth.lib import data

    cycles, streams = shape
    out = np.zeros((cycles, layout.size, streams), np.uint8)
    for name, fld in layout:
        if name not in values:
            continue
        v = np.asarray(values[name], np.int64)
        if isinstance(fld.shape, data.ArrayLayout):
            n = fld.shape.length
            w = fld.shape.size // n
            vv = v.reshape(cycles, streams, n)
            bits = (vv[..., None] >> np.arange(w)) & 1                  # (C, S, n, w)
            bits = bits.reshape(cycles, streams, n * w)
            out[:, fld.offset:fld.offset + n * w, :] = bits.transpose(0, 2, 1)
        else:
            w = fld.width
            bits = (v[..., None] >> np.arange(w)) & 1                   # (C, S, w)
            out[:, fld.offset:fld.offset + w, :] = bits.transpose(0, 2, 1)
    return out


def field_values(layout, bits: np.ndarray, name: str) -> np.ndarray:
    """``(cycles, streams)`` integers of field ``name`` from ``(cycles, width, streams)``
    payload bits (two's complement for signed fields)."""
    fld = layout[name]
    w = fld.width
    sl = np.asarray(bits[:, fld.offset:fld.offset + w, :], np.int64)
    v = (sl << np.arange(w)[None, :, None]).sum(1)
    if fld.shape.signed if hasattr(fld.shape, "signed") else False:
        v = np.where(v >= (1 << (w - 1)), v - (1 << w), v)
    return v


# -- streams -------------------------------------------------------------------------------
#: how far ahead a stream looks for a vector that fits its remaining cycles
LOOKAHEAD = 64

@dataclass
class Streams:
    """Per-port stimulus and the bookkeeping needed to check results and count operations."""

    inputs: dict
    cycles: int
    streams: int
    #: per stream, the list of item indices (vectors or weights) whose results it emits
    items: list
    #: per cycle and stream: real operations presented (valid beats: products or weights)
    ops: np.ndarray
    #: per cycle and stream: operation slots presented (lanes per valid beat)
    slots: np.ndarray


def mac_streams(vectors, lanes: int, layout, streams: int, cycles: int,
                reset_cycles: int = 1) -> Streams:
    """Stimulus for a streaming dot-product unit from a list of ``(a, b)`` operand vectors
    (already encoded as unsigned operand codes). Vectors are dealt out in order: stream 0
    takes vectors until its cycles are used up (then also any of the next
    :data:`LOOKAHEAD` vectors that still fits), then stream 1, and so on; vectors left over
    are not used (raise ``cycles`` or ``streams`` to use more)."""
    A = np.zeros((cycles, streams, lanes), np.int64)
    B = np.zeros((cycles, streams, lanes), np.int64)
    first = np.zeros((cycles, streams), np.int64)
    last = np.zeros((cycles, streams), np.int64)
    valid = np.zeros((cycles, streams), np.int64)
    ops = np.zeros((cycles, streams), np.int64)
    items = [[] for _ in range(streams)]
    beats = [max(1, -(-len(a) // lanes)) for a, _ in vectors]
    left = list(range(len(vectors)))            # vectors not dealt yet, in order
    for s in range(streams):
        t = reset_cycles
        j = 0
        # take the next vector that still fits (looking a little ahead), so that the end of a
        # stream is not left idle when a long vector does not fit but a short one does
        while j < min(len(left), LOOKAHEAD) and t < cycles:
            idx = left[j]
            nb = beats[idx]
            if t + nb > cycles:
                j += 1
                continue
            a, b = vectors[idx]
            k = len(a)
            pa = np.zeros(nb * lanes, np.int64)
            pb = np.zeros(nb * lanes, np.int64)
            pa[:k], pb[:k] = a, b
            A[t:t + nb, s] = pa.reshape(nb, lanes)
            B[t:t + nb, s] = pb.reshape(nb, lanes)
            first[t, s] = 1
            last[t + nb - 1, s] = 1
            valid[t:t + nb, s] = 1
            ops[t:t + nb, s] = [min(lanes, k - i * lanes) for i in range(nb)]
            items[s].append(idx)
            t += nb
            del left[j]
    payload = layout_bits(layout, {"a": A, "b": B, "first": first, "last": last},
                          (cycles, streams))
    rst = np.zeros((cycles, 1, streams), np.uint8)
    rst[:reset_cycles] = 1
    inputs = {"i_stream__payload": payload, "i_stream__valid": valid[:, None, :],
              "o_stream__ready": np.ones((cycles, 1, streams), np.uint8), "rst": rst}
    return Streams(inputs, cycles, streams, items, ops, valid * lanes)


def update_streams(weights, layout, streams: int, cycles: int,
                   reset_cycles: int = 1) -> Streams:
    """Stimulus for the update engine from ``weights``: a list of segments, each
    ``(w, v, g, g_bias, e_clamp, bc_exp)`` with flat code arrays of one layer's update.
    Each stream takes one full run of ``cycles - reset_cycles`` consecutive weights of one
    segment, so the engine is busy every cycle and its side-band inputs stay constant (as it
    requires within a step); a segment's remainder shorter than a run is left out."""
    W = np.zeros((cycles, streams), np.int64)
    V = np.zeros((cycles, streams), np.int64)
    G = np.zeros((cycles, streams), np.int64)
    side = {k: np.zeros((cycles, streams), np.int64) for k in ("g_bias", "e_clamp", "bc_exp")}
    valid = np.zeros((cycles, streams), np.int64)
    items = [[] for _ in range(streams)]
    run = cycles - reset_cycles
    sl = slice(reset_cycles, cycles)
    s = 0
    for seg, (w, v, g, gb, ec, bc) in enumerate(weights):
        for j in range(0, len(w) - run + 1, run):
            if s == streams:
                break
            W[sl, s], V[sl, s], G[sl, s] = w[j:j + run], v[j:j + run], g[j:j + run]
            side["g_bias"][:, s], side["e_clamp"][:, s], side["bc_exp"][:, s] = gb, ec, bc
            valid[sl, s] = 1
            items[s] = [(seg, j + i) for i in range(run)]
            s += 1
    payload = layout_bits(layout, {"w": W, "v": V, "g": G}, (cycles, streams))
    rst = np.zeros((cycles, 1, streams), np.uint8)
    rst[:reset_cycles] = 1
    inputs = {"i_stream__payload": payload, "i_stream__valid": valid[:, None, :],
              "o_stream__ready": np.ones((cycles, 1, streams), np.uint8), "rst": rst}
    for k, a in side.items():
        inputs[k] = a                      # widths are filled in by the caller
    return Streams(inputs, cycles, streams, items, valid.copy(), valid.copy())
