"""Energy per operation from simulated activity: stimulus, gate-level run, result check.

For a synthesised block (:class:`~.flow.Synthesis`) and a recorded training trace
(:func:`~.stimulus.record_training`): build the stimulus streams of the block's kind, run
the mapped netlist (:func:`~.gatesim.simulate`), check every result it emits against the
golden model (the netlist must compute exactly what the spec says, or its toggles mean
nothing), and return each instance's output activity plus the operations done in the
counted cycles.

Block kinds: ``lns`` (:class:`~lnsmadam.hw.mac.LNSMAC`), ``int8``
(:class:`~lnsmadam.hw.mac.INT8MAC`), ``fp8`` and ``fp32`` (:class:`~lnsmadam.hw.fpmac.FP8MAC`,
:class:`~lnsmadam.hw.fpmac.FP32MAC`) and
``update`` (:class:`~lnsmadam.hw.update.MadamUpdate`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...golden.format import LNSFormat
from ...golden.mac import MACConfig, matmul
from ...golden.update import madam_step
from .gatesim import Netlist, simulate
from .liberty import read_liberty
from .stimulus import (field_values, lns_values, mac_streams, quantise_int8,
                       update_streams)

__all__ = ["KINDS", "activity_from_training", "int_bits"]

KINDS = ("lns", "int8", "fp8", "fp32", "update")


def int_bits(v, width: int) -> np.ndarray:
    """``(cycles, streams)`` integers -> ``(cycles, width, streams)`` two's-complement bits."""
    v = np.asarray(v, np.int64) & ((1 << width) - 1)
    return ((v[:, None, :] >> np.arange(width)[None, :, None]) & 1).astype(np.uint8)


def _requant(codes, src: LNSFormat, dst: LNSFormat) -> np.ndarray:
    if src == dst:
        return np.asarray(codes, np.int64)
    x = lns_values(codes, src)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return dst.encode(x, dst.bias_for_max(m) if m > 0 else 0)


def _mac_operands(kind: str, comp, trace):
    """Per matmul ``(A, b)`` encoded as the unit's unsigned operand codes, and the golden
    accumulator words of its rows (and, for ``lns``, the unit's MACConfig)."""
    src = trace.cfg.fmt
    out = []
    for A, b in trace.matmuls:
        if kind == "lns":
            cfg = comp.cfg
            Aq, bq = _requant(A, src, cfg.fmt), _requant(b, src, cfg.fmt)
            exp = matmul(Aq, bq[:, None], cfg)[:, 0]
            out.append((Aq, bq, exp))
        elif kind == "int8":
            Aq, bq = quantise_int8(lns_values(A, src)), quantise_int8(lns_values(b, src))
            exp = Aq @ bq
            lim = 1 << (comp.acc_bits - 1)
            if np.abs(exp).max(initial=0) * 2 >= lim:
                raise ValueError("INT8 stimulus could saturate the accumulator: widen acc_bits")
            out.append((Aq & 0xFF, bq & 0xFF, exp))
        elif kind in ("fp8", "fp32"):
            from ...golden.fpmac import encode_tensor
            Aq = encode_tensor(lns_values(A, src), comp.a_fmt if kind == "fp8" else "fp32")
            bq = encode_tensor(lns_values(b, src), comp.b_fmt if kind == "fp8" else "fp32")
            exp = comp.golden.matvec(Aq, bq)
            out.append((Aq, bq, exp))
        else:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return out


def _check(got_valid, got, items, expected) -> int:
    """Compare each stream's emitted results with the expected ones, in order."""
    checked = 0
    for s, its in enumerate(items):
        g = got[got_valid[:, s] == 1, s]
        n = min(len(g), len(its))
        if len(its) and n == 0:
            raise AssertionError(f"stream {s} emitted no result")
        if n == 0:
            continue
        e = np.array([expected[i] for i in its[:n]])
        bad = np.nonzero(np.any((g[:n] != e).reshape(n, -1), axis=1))[0]
        if bad.size:
            k = bad[0]
            raise AssertionError(f"gate-level result differs from golden: stream {s}, result "
                                 f"{k}: got {g[k]}, expected {e[k]}")
        checked += n
    return checked


def activity_from_training(kind: str, comp, syn, trace, streams: int = 256,
                           cycles: int = 256, warmup: int = 16) -> dict:
    """Simulate ``syn`` (the synthesised ``comp``) on the trace; see the module docstring.

    Returns ``alpha`` (instance -> output toggles per cycle), ``ops`` and ``slots`` (real
    operations and operation slots in the counted cycles), ``cycles`` (counted cycles x
    streams), ``checked`` (results compared with golden) and ``mean_toggle_rate``.
    """
    lib = read_liberty(syn.workdir / "cells.lib")
    nl = Netlist(syn.netlist, lib)
    pl = comp.i_stream.payload.shape()
    ol = comp.o_stream.payload.shape()
    if kind == "update":
        cfg = comp.cfg
        segs = []
        expected = {}
        for si, (u, v, g, gb, ec, bc) in enumerate(trace.updates):
            segs.append((u.ravel(), v.ravel(), g.ravel(), gb, ec, bc))
            w2, v2, n2 = madam_step(u.ravel(), v.ravel(), g.ravel(), gb, ec, cfg, bc)
            for j in range(u.size):
                expected[(si, j)] = (int(w2[j]), int(v2[j]), int(n2[j]))
        st = update_streams(segs, pl, streams, cycles)
        for name in ("g_bias", "e_clamp", "bc_exp"):
            st.inputs[name] = int_bits(st.inputs[name], len(getattr(comp, name)))
        act, outs = simulate(nl, st.inputs, ["o_stream__valid", "o_stream__payload"], warmup)
        ov = outs["o_stream__valid"][:, 0, :]
        got = np.stack([field_values(ol, outs["o_stream__payload"], f)
                        for f in ("w_new", "v_new", "n")], -1)
        checked = _check(ov, got, st.items, expected)
    else:
        mats = _mac_operands(kind, comp, trace)
        vectors, expected = [], []
        for A, b, exp in mats:
            for r in range(A.shape[0]):
                vectors.append((A[r], b))
                expected.append(int(exp[r]))
        st = mac_streams(vectors, comp.lanes, pl, streams, cycles)
        act, outs = simulate(nl, st.inputs, ["o_stream__valid", "o_stream__payload"], warmup)
        ov = outs["o_stream__valid"][:, 0, :]
        fields = [n for n, _ in ol]
        checked = 0
        if "acc" in fields:
            got = field_values(ol, outs["o_stream__payload"], "acc")
            checked = _check(ov, got, st.items, expected)
        if kind == "lns" and getattr(comp, "has_lns_output", True):   # the LNS fields too
            sg, x, z = comp.cfg.to_lns(np.array(expected, np.int64))
            for fld, ref in (("sign", sg), ("exp", x), ("zero", z)):
                vals = field_values(ol, outs["o_stream__payload"], fld)
                checked = max(checked, _check(ov, vals, st.items,
                                              np.asarray(ref, np.int64).tolist()))
    lo = max(warmup, 1)
    alpha = {}
    for name, ctype, conn in nl.cells:
        outs_ = [p for p in lib.cells[ctype].outputs if p in conn]
        if outs_:
            alpha[name] = float(np.mean(act.rate([conn[p] for p in outs_])))
    return {"alpha": alpha, "ops": int(st.ops[lo:].sum()), "slots": int(st.slots[lo:].sum()),
            "cycles": act.samples, "checked": checked,
            "mean_toggle_rate": float(np.mean(list(alpha.values()))) if alpha else 0.0}
