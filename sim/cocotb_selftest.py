"""cocotb testbench of the verification infrastructure itself (not of a product block).

Runs on the toy components of ``tests/test_sim_runner.py``:

* ``toy_accum``: a stream accumulator (``i``: ``{x: signed, last}`` -> ``o``: signed sum
  per vector). Checks :class:`~lnsmadam.sim.stream.StreamSource`,
  :class:`~lnsmadam.sim.stream.StreamSink` and the scoreboard under random valid gaps and
  backpressure.
* ``toy_mul``: a registered LNS multiply checked by
  :class:`~lnsmadam.sim.stream.PipelineChecker` against :func:`lnsmadam.golden.mul.mul`.

Not a pytest module (pytest collects ``tests/test_*.py`` only).
"""

from __future__ import annotations

import random

import cocotb

from .stream import (Bench, Packer, PipelineChecker, Scoreboard, StreamSink,
                                 StreamSource, load_params, ports_by_name)


@cocotb.test()
async def stream_roundtrip(dut):
    p = load_params()
    if p["kind"] != "toy_accum":
        return
    rng = random.Random(p["seed"])
    width = ports_by_name(p)["i__payload"]["fields"][0]["width"]
    sb = Scoreboard("toy_accum", dut._log)
    src = StreamSource(dut, "i", p, rng, valid_prob=p["valid_prob"])
    sink = StreamSink(dut, "o", p, rng, ready_prob=p["ready_prob"],
                      on_recv=lambda beat, cycle: sb.check(beat[""]))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    out_w = ports_by_name(p)["o__payload"]["width"]
    for _ in range(p["n_vectors"]):
        n = rng.randint(1, 5)
        xs = [rng.choice([lo, hi, 0, rng.randint(lo, hi)]) for _ in range(n)]
        src.send({"x": x, "last": int(k == n - 1)} for k, x in enumerate(xs))
        total = sum(xs)
        total = ((total + (1 << (out_w - 1))) % (1 << out_w)) - (1 << (out_w - 1))
        sb.expect(total, xs)
    bench = Bench(dut, [src, sink])
    await bench.start()
    await bench.run_until(lambda: not src.busy and sb.pending == 0, 50 * p["n_vectors"] + 100)
    sb.finish()


@cocotb.test()
async def pipeline(dut):
    p = load_params()
    if p["kind"] != "toy_mul":
        return
    from ..golden.format import LNSFormat
    from ..golden.mul import mul

    fmt = LNSFormat(p["bits"], p["frac_bits"])
    rng = random.Random(p["seed"])
    out = Packer(ports_by_name(p)["o"])
    vectors = [{"a": rng.randrange(fmt.ncodes), "b": rng.randrange(fmt.ncodes)}
               for _ in range(p["n_vectors"])]
    sb = Scoreboard("toy_mul", dut._log)
    chk = PipelineChecker(dut, vectors, p["latency"],
                          read=lambda: out.unpack(int(dut.o.value))[""],
                          model=lambda v: int(mul(v["a"], v["b"], fmt)),
                          scoreboard=sb)
    bench = Bench(dut, [chk])
    await bench.start()
    await bench.run_until(lambda: not chk.busy, p["n_vectors"] + 10)
    sb.finish()
