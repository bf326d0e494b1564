"""cocotb testbench of ``LNSMul`` (``hw/mul.py``) against :func:`lnsmadam.golden.mul.mul`.

Parameters (``params.json``, see :mod:`lnsmadam.sim.runner`): ``bits``, ``frac_bits``,
``underflow``, ``shift`` (or null for ``emax``), ``latency``, ``seed``, ``n_random``.

Stimulus: every corner pair (ZERO with either sign bit, ±min, ±max, the products that
land exactly on the saturation and flush boundaries and one step past them) back to back,
then ``n_random`` random code pairs, one pair per cycle. Every output is compared with the
golden product of the pair applied ``latency`` cycles earlier.
"""

from __future__ import annotations

import random

import cocotb

from ..golden.format import LNSFormat
from ..golden.mul import mul
from .stream import Bench, PipelineChecker, Scoreboard, load_params


def corner_pairs(fmt: LNSFormat, shift: int) -> list[tuple[int, int]]:
    emax, sbit = fmt.emax, 1 << fmt.exp_bits
    fields = {0, 1, 2, emax - 1, emax, (emax + 1) // 2}
    # products on and around the saturation (E = emax) and flush (E = 1) boundaries
    for target in (emax - 1, emax, emax + 1, 2, 1, 0, -1):
        s = target + shift
        for ea in (1, emax, min(emax, max(1, s - emax)), min(emax, max(1, s // 2))):
            eb = s - ea
            if 1 <= eb <= emax:
                fields |= {ea, eb}
    pairs = []
    fl = sorted(fields)
    for ea in fl:
        for eb in fl:
            for sa in (0, sbit):
                for sb in (0, sbit):
                    pairs.append((sa | ea, sb | eb))
    return pairs


@cocotb.test()
async def mul_vectors(dut):
    p = load_params()
    fmt = LNSFormat(p["bits"], p["frac_bits"], underflow=p["underflow"])
    shift = fmt.emax if p["shift"] is None else p["shift"]
    rng = random.Random(p["seed"])
    pairs = corner_pairs(fmt, shift)
    pairs += [(rng.randrange(fmt.ncodes), rng.randrange(fmt.ncodes))
              for _ in range(p["n_random"])]
    vectors = [{"a": a, "b": b} for a, b in pairs]
    sb = Scoreboard("mul", dut._log)
    chk = PipelineChecker(
        dut, vectors, p["latency"],
        read=lambda: dut.p.value.to_unsigned(),
        model=lambda v: int(mul(v["a"], v["b"], fmt, shift)),
        scoreboard=sb)
    bench = Bench(dut, [chk])
    await bench.start()
    await bench.run_until(lambda: not chk.busy, len(vectors) + p["latency"] + 10)
    sb.finish()
    dut._log.info("%d corner + %d random pairs", len(pairs) - p["n_random"], p["n_random"])
