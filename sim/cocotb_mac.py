"""cocotb testbench of the streaming dot-product units ``LNSMAC`` / ``INT8MAC`` (``hw/mac.py``).

Model: :func:`lnsmadam.golden.mac.dot` and :meth:`MACConfig.to_lns
<lnsmadam.golden.mac.MACConfig.to_lns>` for ``LNSMAC`` (accumulator word ``acc`` and its LNS
conversion ``sign``/``exp``/``zero``); a lane-grouped saturating/wrapping integer replay for
``INT8MAC``. Driver: :class:`~lnsmadam.sim.stream.StreamSource` on ``i_stream`` (``lanes``
operand pairs per beat, ``first``/``last`` flags, last beat padded with ZERO). Monitor:
:class:`~lnsmadam.sim.stream.StreamSink` on ``o_stream`` (random ``ready``). Checker:
:class:`~lnsmadam.sim.stream.Scoreboard`, every field of every result, in order.

Parameters (``params.json``): ``kind`` (``"lns"`` or ``"int8"``), ``lanes``, ``acc_bits``,
``saturate``, ``latency`` and, for ``lns``, ``bits``, ``frac_bits``, ``lut_frac``,
``window``, ``mid_bits``; optionally ``pipeline`` (and, for ``lns``, ``out_pipeline``);
``seed``, ``n_random`` (random vectors per test), ``valid_prob`` and ``ready_prob``
(random-backpressure test). When ``pipeline``
is given, ``latency`` must equal the documented ``pipeline + 2 + out_pipeline``
(``pipeline + 2`` for ``int8``): the bench checks the parameters against that formula, then
the hardware against ``latency``, cycle by cycle.

Tests:

* ``full_rate``: corner vectors (ZERO with both signs, ±max products, the window edge,
  exact cancellation within a beat and across beats, positive/negative accumulator
  saturation and recovery from it, one-beat vectors back to back) then random vectors,
  valid every cycle and ready always: checks bit-exactness, throughput (the input never
  stalls) and the documented latency (``pipeline + 2 + out_pipeline``), cycle by cycle.
* ``random_backpressure``: random vectors with random valid gaps and random ``ready``;
  also checks the stream rule on the output (an offered result is held until taken).
"""

from __future__ import annotations

import random

import cocotb
import numpy as np

from ..golden.format import LNSFormat
from ..golden.mac import MACConfig, dot
from .stream import (Bench, Scoreboard, StreamSink, StreamSource, load_params)


class Model:
    """Golden prediction and stimulus helpers for one unit configuration."""

    def __init__(self, p: dict):
        self.p = p
        self.kind = p["kind"]
        self.lanes = p["lanes"]
        self.acc_bits = p["acc_bits"]
        self.saturate = p["saturate"]
        self.lo = -(1 << (self.acc_bits - 1))
        self.hi = (1 << (self.acc_bits - 1)) - 1
        if self.kind == "lns":
            self.fmt = LNSFormat(p["bits"], p["frac_bits"])
            self.cfg = MACConfig(self.fmt, lut_frac=p["lut_frac"], window=p["window"],
                                 acc_bits=p["acc_bits"], saturate=p["saturate"],
                                 lanes=p["lanes"], mid_bits=p["mid_bits"])
        elif self.kind != "int8":
            raise ValueError(f"unknown kind {self.kind!r}")
        # the documented latency: pipeline stages, accumulator, output converter stages
        # (LNSMAC only), output register; callers that only know the latency (the
        # generated JSON's latency_cycles) may leave out pipeline/out_pipeline
        if "pipeline" in p:
            out = p["out_pipeline"] if self.kind == "lns" else 0
            if p["latency"] != p["pipeline"] + 2 + out:
                raise ValueError(f"latency {p['latency']} is not the documented "
                                 f"pipeline + 2 + out_pipeline = {p['pipeline'] + 2 + out}")

    # -- model -----------------------------------------------------------------------
    def expected(self, a: list[int], b: list[int]) -> dict:
        if self.kind == "lns":
            S = dot(np.array(a, np.int64), np.array(b, np.int64), self.cfg)
            sign, x, zero = self.cfg.to_lns(np.int64(S))
            return {"acc": S, "sign": int(sign), "exp": int(x), "zero": int(bool(zero))}
        acc = 0
        for c in range(0, len(a), self.lanes):
            acc += sum(x * y for x, y in zip(a[c:c + self.lanes], b[c:c + self.lanes]))
            if self.saturate:
                acc = min(max(acc, self.lo), self.hi)
            else:
                acc = ((acc - self.lo) & ((1 << self.acc_bits) - 1)) + self.lo
        return {"acc": acc}

    def exact(self, a: list[int], b: list[int]) -> int:
        """The dot product without accumulator overflow handling (for coverage)."""
        if self.kind == "lns":
            return int(np.sum(self.cfg.products(np.array(a, np.int64), np.array(b, np.int64))))
        return sum(x * y for x, y in zip(a, b))

    def coverage(self, vectors) -> dict:
        """How many vectors exercise each corner (checked by the full-rate test)."""
        cov = {"saturated_hi": 0, "saturated_lo": 0, "wrapped": 0, "zero_result": 0,
               "one_beat": 0, "multi_beat": 0, "cancelled": 0}
        for a, b in vectors:
            acc = self.expected(a, b)["acc"]
            exact = self.exact(a, b)
            cov["saturated_hi"] += acc == self.hi and exact > self.hi
            cov["saturated_lo"] += acc == self.lo and exact < self.lo
            cov["wrapped"] += not self.saturate and acc != exact
            cov["zero_result"] += acc == 0
            cov["cancelled"] += acc == 0 and any(
                x * y != 0 if self.kind == "int8" else int(self.cfg.products(x, y)) != 0
                for x, y in zip(a, b))
            one = len(a) <= self.lanes
            cov["one_beat"] += one
            cov["multi_beat"] += not one
        return cov

    # -- beats -----------------------------------------------------------------------
    def beats(self, a: list[int], b: list[int]) -> list[dict]:
        n = len(a)
        n_beats = max(1, -(-n // self.lanes))
        out = []
        for c in range(n_beats):
            beat = {"first": int(c == 0), "last": int(c == n_beats - 1)}
            for k in range(self.lanes):
                j = c * self.lanes + k
                for name, vec in (("a", a), ("b", b)):
                    v = vec[j] if j < n else 0          # pad: ZERO code / integer 0
                    if self.kind == "lns":
                        beat[f"{name}.{k}.exp"] = v & self.fmt.emax
                        beat[f"{name}.{k}.sign"] = v >> self.fmt.exp_bits
                    else:
                        beat[f"{name}.{k}"] = v
            out.append(beat)
        return out

    # -- stimulus --------------------------------------------------------------------
    def code(self, sign: int, e: int) -> int:
        return (sign << self.fmt.exp_bits) | e

    def random_operand(self, rng: random.Random) -> int:
        if self.kind == "int8":
            r = rng.random()
            if r < 0.1:
                return 0
            if r < 0.3:
                return rng.choice([-128, 127, -127])
            return rng.randint(-128, 127)
        fmt = self.fmt
        r = rng.random()
        if r < 0.12:
            return self.code(rng.getrandbits(1), 0)         # ZERO, either sign bit
        if r < 0.45:
            e = rng.randint(max(1, fmt.emax - 2 * fmt.gamma), fmt.emax)
            return self.code(rng.getrandbits(1), e)         # near the top: big products
        return rng.randrange(fmt.ncodes)

    def random_vector(self, rng: random.Random):
        n = rng.choice([rng.randint(1, 3 * self.lanes + 2), self.lanes, 2 * self.lanes])
        return ([self.random_operand(rng) for _ in range(n)],
                [self.random_operand(rng) for _ in range(n)])

    def corner_vectors(self, rng: random.Random):
        L = self.lanes
        vecs = []
        if self.kind == "int8":
            big, neg = [-128] * 4, [127] * 4
            n_sat = max(2, -(-self.hi // (128 * 128)) + 2 * L)
            vecs += [([0] * L, [5] * L), ([-128], [-128]), ([-128], [127]), ([127], [127])]
            vecs += [([-128, 127], [-128, -128]), (big, [-128] * 4), (neg, [-128] * 4)]
            # exact cancellation, in one beat and across beats
            vecs += [([-100, -100], [77, -77]), ([9] + [0] * 2 * L + [9], [-3] + [0] * 2 * L + [3])]
            # saturate up, then pull back down; and the negative side
            vecs.append(([-128] * n_sat + [127] * 3 * L, [-128] * n_sat + [-128] * 3 * L))
            vecs.append(([127] * n_sat, [-128] * n_sat))
            vecs += [([rng.randint(-128, 127)], [rng.randint(-128, 127)]) for _ in range(8)]
            return vecs
        fmt, cfg = self.fmt, self.cfg
        emax, g = fmt.emax, fmt.gamma
        zero_n = self.code(1, 0)                           # "negative ZERO"
        vecs.append(([0] * L, [self.code(0, emax)] * L))
        vecs.append(([zero_n] * (L + 1), [self.code(1, emax)] * (L + 1)))
        for sa in (0, 1):
            for sb in (0, 1):
                vecs.append(([self.code(sa, emax)], [self.code(sb, emax)]))   # ±max product
        vecs.append(([self.code(0, 1)], [self.code(1, 1)]))                   # ±min product
        # window edge: products at p = gamma*q_lo (kept) and p = gamma*q_lo - 1 (dropped)
        p0 = g * cfg.q_lo
        for p in (p0 - 1, p0, p0 + 1, p0 + g - 1):
            ea = min(emax, max(1, p - 1))
            eb = p - ea
            if 1 <= eb <= emax:
                vecs.append(([self.code(0, ea)], [self.code(0, eb)]))
                vecs.append(([self.code(0, ea), self.code(0, emax)],
                             [self.code(1, eb), self.code(0, emax)]))
        # exact cancellation: in one beat, and across beats
        x, y = self.code(0, emax - 3), self.code(0, emax - 1)
        vecs.append(([x, x], [y, y | (1 << fmt.exp_bits)]))
        far = 2 * L + 1
        a = [x] + [0] * (far - 2) + [x]
        b = [y] + [0] * (far - 2) + [y | (1 << fmt.exp_bits)]
        vecs.append((a, b))
        # accumulator saturation: enough max products to overflow, then recovery
        top = int(cfg.products(self.code(0, emax), self.code(0, emax)))
        n_sat = min(max(-(-self.hi // top) + 2 * L, 2), 400)
        mx, mn = self.code(0, emax), self.code(1, emax)
        vecs.append(([mx] * n_sat, [mx] * n_sat))                              # +saturate
        vecs.append(([mx] * n_sat, [mn] * n_sat))                              # -saturate
        vecs.append(([mx] * (n_sat + 3 * L), [mx] * n_sat + [mn] * 3 * L))    # up, back down
        vecs.append(([mx] * (n_sat + 3 * L), [mn] * n_sat + [mx] * 3 * L))    # down, back up
        # one-beat vectors back to back
        for _ in range(6):
            n = rng.randint(1, L)
            vecs.append(([self.random_operand(rng) for _ in range(n)],
                         [self.random_operand(rng) for _ in range(n)]))
        return vecs


async def run_vectors(dut, p, vectors, valid_prob, ready_prob, check_timing, model=None):
    """Drive ``vectors`` and check every result against ``model`` (default ``Model(p)``;
    any object with ``kind``, ``expected(a, b)`` and ``beats(a, b)``, e.g. the FP baselines'
    model in :mod:`lnsmadam.sim.cocotb_fpmac`)."""
    model = model if model is not None else Model(p)
    rng = random.Random(p["seed"] * 7919 + int(check_timing))
    sb = Scoreboard(f"{model.kind}_mac", dut._log)
    accepted_last: list[int] = []      # cycle in which each vector's last beat was taken
    timing_errors: list[str] = []
    offered = {"n": 0, "stalled": 0}

    def on_send(beat, cycle):
        if beat["last"]:
            accepted_last.append(cycle)

    def on_recv(beat, cycle):
        k = sb.n_checked
        got = {name: beat[name] for name in sb.expected[0][0]} if sb.expected else beat
        sb.check(got)
        if check_timing and k < len(accepted_last):
            lat = cycle - accepted_last[k]
            if lat != p["latency"] and len(timing_errors) < 5:
                timing_errors.append(f"vector {k}: result after {lat} cycles, "
                                     f"documented latency {p['latency']}")

    src = StreamSource(dut, "i_stream", p, rng, valid_prob=valid_prob, on_send=on_send)
    sink = StreamSink(dut, "o_stream", p, rng, ready_prob=ready_prob, on_recv=on_recv)
    n_beats = 0
    for a, b in vectors:
        beats = model.beats(a, b)
        n_beats += len(beats)
        src.send(beats)
        sb.expect(model.expected(a, b), {"a": a, "b": b})

    class StallProbe:
        busy = False

        def drive(self, cycle):
            pass

        def sample(self, cycle):
            if src.current is not None:
                offered["n"] += 1
                if not int(dut.i_stream__ready.value):
                    offered["stalled"] += 1

    bench = Bench(dut, [src, sink, StallProbe()])
    await bench.start()
    slack = 1.0 / max(min(valid_prob, ready_prob), 0.05)
    cycles = await bench.run_until(lambda: not src.busy and sb.pending == 0,
                                   int(slack * 4 * n_beats) + 50 * len(vectors) + 200)
    sb.finish()
    sink.check_protocol()
    dut._log.info("%d vectors, %d beats in %d cycles (valid_prob %.2f, ready_prob %.2f)",
                  len(vectors), n_beats, cycles, valid_prob, ready_prob)
    if check_timing:
        assert not timing_errors, "; ".join(timing_errors)
        assert offered["stalled"] == 0, (
            f"input stalled {offered['stalled']} of {offered['n']} cycles at full rate: "
            "throughput is not one beat per cycle")
        # back to back: all beats in consecutive cycles, the last result `latency` later
        assert cycles <= n_beats + p["latency"] + 2, (cycles, n_beats, p["latency"])


@cocotb.test()
async def full_rate(dut):
    p = load_params()
    model = Model(p)
    rng = random.Random(p["seed"])
    vectors = model.corner_vectors(rng)
    vectors += [model.random_vector(rng) for _ in range(p["n_random"])]
    cov = model.coverage(vectors)
    dut._log.info("coverage: %s", cov)
    need = ["zero_result", "cancelled", "one_beat", "multi_beat"]
    need += ["saturated_hi", "saturated_lo"] if model.saturate else ["wrapped"]
    missing = [k for k in need if not cov[k]]
    assert not missing, f"stimulus misses corner cases {missing}: {cov}"
    await run_vectors(dut, p, vectors, 1.0, 1.0, check_timing=True)


@cocotb.test()
async def random_backpressure(dut):
    p = load_params()
    model = Model(p)
    rng = random.Random(p["seed"] + 1)
    vectors = [model.random_vector(rng) for _ in range(p["n_random"])]
    vectors += model.corner_vectors(rng)[:6]
    await run_vectors(dut, p, vectors, p["valid_prob"], p["ready_prob"], check_timing=False)
