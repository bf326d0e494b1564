"""cocotb testbench of ``ToLinear`` / ``FromLinear`` (``hw/convert.py``) against
:func:`lnsmadam.golden.convert.to_linear` / :func:`~lnsmadam.golden.convert.from_linear`.

Parameters (``params.json``): ``kind`` (``"to_linear"`` or ``"from_linear"``), ``latency``,
``seed``, ``n_random`` and the block's own parameters:

* to_linear: ``frac_bits``, ``lut_frac``, ``q_lo``, ``window``, ``p_bits``. Stimulus: every
  exponent from two octaves below the window to its top (all of them: below-window flush,
  every table entry at every shift) with every sign/zero combination, then random
  exponents over the whole input range up to the window top.
* from_linear: ``acc_width``, ``frac_bits``, ``mid_bits``, ``lsb_q``. Stimulus: 0, ±1, the
  extremes ``2**(n-1) - 1`` and ``-2**(n-1)``, values on and one below every midpoint
  (including the carry midpoint) at every leading-one position, then random values with a
  uniformly random bit length.

One input per cycle; every output compared with the golden function.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np

from ..golden.convert import from_linear, to_linear
from ..golden.format import midpoint_table
from .stream import Bench, PipelineChecker, Scoreboard, load_params, to_signed


def _sval(handle, width):
    return to_signed(handle.value.to_unsigned(), width)


def to_linear_vectors(p, rng):
    g = 1 << p["frac_bits"]
    lo_all = -(1 << (p["p_bits"] - 1))
    top = g * (p["q_lo"] + p["window"]) - 1
    start = max(lo_all, g * (p["q_lo"] - 2))
    exps = list(range(start, top + 1)) + [lo_all, top]
    vecs = [{"p": e, "sign": s, "zero": z} for e in exps for s in (0, 1) for z in (0, 1)]
    vecs += [{"p": rng.randint(lo_all, top), "sign": rng.getrandbits(1),
              "zero": int(rng.random() < 0.1)} for _ in range(p["n_random"])]
    return vecs


def from_linear_vectors(p, rng):
    n, K = p["acc_width"], p["mid_bits"]
    lo, hi = -(1 << (n - 1)), (1 << (n - 1)) - 1
    mids = midpoint_table(p["frac_bits"], K)
    vals = {0, 1, -1, 2, -2, hi, lo, hi - 1, lo + 1}
    for lz in range(n - 1):
        for mid in mids:
            # |S| whose mantissa floor(|S| * 2**(K - lz)) is on / just below the midpoint
            v = -(-(mid << lz) >> K)          # ceil(mid * 2**(lz - K))
            for c in (v - 1, v, v + 1):
                if 0 < c <= hi and c.bit_length() - 1 == lz:
                    vals |= {c, -c}
    vecs = [{"S": v} for v in sorted(vals)]
    for _ in range(p["n_random"]):
        bl = rng.randint(0, n - 1)
        v = rng.getrandbits(bl) | (1 << bl) >> 1 if bl else 0
        vecs.append({"S": -v if rng.getrandbits(1) else v})
    return vecs


@cocotb.test()
async def convert_vectors(dut):
    p = load_params()
    rng = random.Random(p["seed"])
    if p["kind"] == "to_linear":
        vectors = to_linear_vectors(p, rng)
        lin_w = p["lut_frac"] + p["window"] + 1

        def model(v):
            lin = int(to_linear(v["p"], p["frac_bits"], p["lut_frac"], p["q_lo"], p["window"]))
            lin = 0 if v["zero"] else lin
            return -lin if v["sign"] else lin

        def read():
            return _sval(dut.lin, lin_w)
    elif p["kind"] == "from_linear":
        vectors = from_linear_vectors(p, rng)
        x_w = next(q["width"] for q in p["ports"] if q["name"] == "x")

        def model(v):
            s, x, z = from_linear(np.int64(v["S"]), p["lsb_q"], p["frac_bits"], p["mid_bits"])
            return (int(s), int(x), int(bool(z)))

        def read():
            return (int(dut.sign.value), _sval(dut.x, x_w), int(dut.zero.value))
    else:
        raise ValueError(f"unknown kind {p['kind']!r}")
    sb = Scoreboard(p["kind"], dut._log)
    chk = PipelineChecker(dut, vectors, p["latency"], read=read, model=model, scoreboard=sb)
    bench = Bench(dut, [chk])
    await bench.start()
    await bench.run_until(lambda: not chk.busy, len(vectors) + p["latency"] + 10)
    sb.finish()
