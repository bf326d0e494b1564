"""cocotb testbench of the FP8 and FP32 baselines ``FP8MAC`` / ``FP32MAC`` (``hw/fpmac.py``).

Model: :class:`lnsmadam.golden.fpmac.FP8MACConfig` / :class:`~lnsmadam.golden.fpmac.FP32MACConfig`
(``dot``). Driver, monitor, scoreboard and the timing checks are those of the LNS/INT8 bench
(:func:`lnsmadam.sim.cocotb_mac.run_vectors`).

Parameters (``params.json``): ``kind`` (``"fp8"`` or ``"fp32"``), ``lanes``, ``latency``,
``pipeline``; for ``fp8`` also ``a_fmt``, ``b_fmt``, ``window``, ``acc_bits``, ``saturate``;
``seed``, ``n_random``, ``valid_prob``, ``ready_prob``.

Tests: ``full_rate`` (corner vectors, then random ones; valid every cycle, ready always;
bit-exactness, throughput and the documented latency ``pipeline + 2``) and
``random_backpressure`` (random valid gaps and ready).

Corners: FP8: ±0, NaN and Inf operands (they contribute 0), the largest and the smallest
subnormal products, exact cancellation, accumulator saturation both ways and recovery.
FP32: ±0 (a vector of -0 products stays -0), Inf and NaN (the canonical NaN out), overflow to
infinity, exact cancellation to +0, subnormal results, products that need the sticky bit.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np

from ..golden.fpmac import FP8MACConfig, FP32MACConfig
from .cocotb_mac import run_vectors
from .stream import load_params


class FPModel:
    """Golden prediction and stimulus of one FP unit configuration."""

    def __init__(self, p: dict):
        self.p = p
        self.kind = p["kind"]
        self.lanes = p["lanes"]
        if self.kind == "fp8":
            self.cfg = FP8MACConfig(p["a_fmt"], p["b_fmt"], window=p["window"],
                                    acc_bits=p["acc_bits"], saturate=p["saturate"],
                                    lanes=p["lanes"])
        elif self.kind == "fp32":
            self.cfg = FP32MACConfig(lanes=p["lanes"])
        else:
            raise ValueError(f"unknown kind {self.kind!r}")
        if p["latency"] != p["pipeline"] + 2:
            raise ValueError(f"latency {p['latency']} is not the documented pipeline + 2")

    def expected(self, a, b) -> dict:
        return {"acc": int(self.cfg.dot(np.array(a, np.int64), np.array(b, np.int64)))}

    def beats(self, a, b) -> list[dict]:
        n = len(a)
        n_beats = max(1, -(-n // self.lanes))
        out = []
        for c in range(n_beats):
            beat = {"first": int(c == 0), "last": int(c == n_beats - 1)}
            for k in range(self.lanes):
                j = c * self.lanes + k
                beat[f"a.{k}"] = a[j] if j < n else 0          # pad with +0
                beat[f"b.{k}"] = b[j] if j < n else 0
            out.append(beat)
        return out

    # -- stimulus --------------------------------------------------------------------
    def random_operand(self, rng: random.Random, side: str) -> int:
        if self.kind == "fp8":
            f = self.cfg.fa if side == "a" else self.cfg.fb
            r = rng.random()
            if r < 0.1:
                return rng.choice([0x00, 0x80, f.max_code, f.max_code | 0x80, 0x01, 0x81])
            if r < 0.14:
                return rng.choice([0x7F, 0xFF, 0x7C, 0xFC])      # NaN (and E5M2 Inf)
            return rng.randrange(256)
        r = rng.random()
        if r < 0.08:
            return rng.choice([0, 0x80000000, 1, 0x007FFFFF, 0x7F7FFFFF, 0x3F800000])
        if r < 0.6:                                             # exponents near each other
            return rng.getrandbits(1) << 31 | rng.randint(110, 140) << 23 | rng.getrandbits(23)
        return rng.getrandbits(32)

    def random_vector(self, rng: random.Random):
        n = rng.randint(1, 3 * self.lanes + 2)
        return ([self.random_operand(rng, "a") for _ in range(n)],
                [self.random_operand(rng, "b") for _ in range(n)])

    def corner_vectors(self, rng: random.Random):
        if self.kind == "fp8":
            L = self.lanes
            fa, fb = self.cfg.fa, self.cfg.fb
            mx_a, mx_b = fa.max_code, fb.max_code
            one_b = fb.bias << fb.man_bits                    # 1.0
            vecs = [([0x80], [0x80]), ([0x7F], [one_b]), ([0x01], [0x01]),
                    ([mx_a], [mx_b]), ([mx_a | 0x80], [mx_b]),
                    ([mx_a, mx_a], [one_b, one_b | 0x80]),    # exact cancellation
                    ([0x7C, one_b], [0x00, one_b])]           # Inf (E5M2) x 0, then 1
            top = int(self.cfg.products(mx_a, mx_b))
            n_sat = min(-(-((1 << (self.cfg.acc_bits - 1)) - 1) // top) + 2 * L, 400)
            vecs.append(([mx_a] * n_sat, [mx_b] * n_sat))
            vecs.append(([mx_a] * n_sat, [mx_b | 0x80] * n_sat))
            vecs.append(([mx_a] * (n_sat + 3 * L), [mx_b] * n_sat + [mx_b | 0x80] * 3 * L))
            return vecs
        one, big = 0x3F800000, 0x7F7FFFFF
        eps = 0x3F800001                                      # 1 + 2^-23
        return [([0x80000000, 0x80000000], [one, one]),       # -0 products stay -0
                ([one, one], [one, 0xBF800000]),              # exact cancellation: +0
                ([big, big, big], [0x40000000] * 3),          # overflow to +inf
                ([0x7F800000, one], [0x00000000, one]),       # inf * 0: NaN
                ([0x7FC00001], [one]),                        # NaN in
                ([0x00000003, 0x00000001], [0x3F000000, 0x3F000000]),  # subnormal ties
                ([eps, 0xBF800002], [eps, one]),              # fused: 2^-46 exactly
                ([rng.getrandbits(32)], [rng.getrandbits(32)])]


@cocotb.test()
async def full_rate(dut):
    p = load_params()
    model = FPModel(p)
    rng = random.Random(p["seed"])
    vectors = model.corner_vectors(rng) + [model.random_vector(rng) for _ in range(p["n_random"])]
    await run_vectors(dut, p, vectors, 1.0, 1.0, check_timing=True, model=model)


@cocotb.test()
async def random_backpressure(dut):
    p = load_params()
    model = FPModel(p)
    rng = random.Random(p["seed"] + 1)
    vectors = [model.random_vector(rng) for _ in range(p["n_random"])]
    await run_vectors(dut, p, vectors, p["valid_prob"], p["ready_prob"], check_timing=False,
               model=model)
