# amaranth: UnusedElaboratable=no
"""hw/fpmac.py: the FP8 and FP32 units against golden/fpmac.py in the Amaranth simulator
(random vectors with corners, both FP8 formats, lanes and pipeline depths, backpressure; the
FMA on random and corner triples). Every FP8 operand pair is checked exhaustively on the
synthesised netlist in tests/test_asic_flow.py."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden.fpmac import FP8MACConfig
from lnsmadam.hw.fpmac import FP8MAC

CORNERS = [0x00, 0x80, 0x01, 0x81, 0x7E, 0xFE, 0x7F, 0xFF, 0x7C, 0xFC, 0x7B, 0xFB, 0x38, 0x08]


def _vectors(rng, n, lanes):
    out = []
    for i in range(n):
        k = int(rng.integers(1, 3 * lanes + 2))
        if i < len(CORNERS):
            a = np.full(k, CORNERS[i])
            b = rng.choice(CORNERS, k)
        else:
            a, b = rng.integers(0, 256, k), rng.integers(0, 256, k)
        out.append((a, b))
    # saturation: many large products of one sign, then recovery
    out.append((np.full(6 * lanes, 0x7E), np.full(6 * lanes, 0x7E)))
    return out


def _pack(vectors, lanes, bits):
    """Packed input beats: ``lanes`` operand pairs of ``bits`` bits, first/last flags."""
    beats = []
    for a, b in vectors:
        nb = max(1, -(-len(a) // lanes))
        pa = np.zeros(nb * lanes, np.int64)
        pb = np.zeros(nb * lanes, np.int64)
        pa[:len(a)], pb[:len(b)] = a, b
        for c in range(nb):
            w = 0
            for k in range(lanes):
                w |= (int(pa[c * lanes + k]) << (bits * k)
                      | int(pb[c * lanes + k]) << (bits * (lanes + k)))
            beats.append(w | int(c == 0) << (2 * bits * lanes)
                         | int(c == nb - 1) << (2 * bits * lanes + 1))
    return beats


def _run(dut, beats, n_results, p_stall=0.0, seed=0):
    """Stream ``beats`` in (full rate) and collect ``n_results`` accumulator words, the
    output ``ready`` low with probability ``p_stall``."""
    results = []
    rng = np.random.default_rng(seed)

    async def producer(ctx):
        for w in beats:
            ctx.set(dut.i_stream.payload.as_value(), w)
            ctx.set(dut.i_stream.valid, 1)
            await ctx.tick().until(dut.i_stream.ready)
        ctx.set(dut.i_stream.valid, 0)

    async def consumer(ctx):
        while len(results) < n_results:
            ready = int(rng.random() >= p_stall)
            ctx.set(dut.o_stream.ready, ready)
            valid, acc = ctx.get(dut.o_stream.valid), ctx.get(dut.o_stream.payload.acc)
            await ctx.tick()
            if ready and valid:                    # a transfer happens at this edge
                results.append(acc)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-6 * (len(beats) * 4 + 200))
    return results


@pytest.mark.parametrize("fa, fb, lanes, pipeline, acc_bits, saturate, p_stall", [
    ("e4m3", "e4m3", 1, 1, 32, True, 0.0),
    ("e4m3", "e5m2", 3, 2, 32, True, 0.3),
    ("e5m2", "e5m2", 4, 4, 40, True, 0.0),
    ("e5m2", "e4m3", 2, 3, 24, False, 0.2),
])
def test_fp8_mac_random(fa, fb, lanes, pipeline, acc_bits, saturate, p_stall):
    cfg = FP8MACConfig(fa, fb, acc_bits=acc_bits, saturate=saturate, lanes=lanes)
    dut = FP8MAC(cfg, pipeline=pipeline)
    assert dut.latency == pipeline + 2
    vectors = _vectors(np.random.default_rng(lanes), 60, lanes)
    got = _run(dut, _pack(vectors, lanes, 8), len(vectors), p_stall)
    want = [cfg.dot(a, b) for a, b in vectors]
    assert got == want


def test_fp8_mac_validation():
    with pytest.raises(ValueError, match="cfg must be an FP8MACConfig"):
        FP8MAC("e4m3")
    with pytest.raises(ValueError, match="pipeline must be in"):
        FP8MAC(FP8MACConfig(lanes=1), pipeline=3)


# -- FP32 -------------------------------------------------------------------------------
from lnsmadam.golden.fpmac import FP32MACConfig, fma32_bits  # noqa: E402
from lnsmadam.hw.fpmac import FMA32, FP32MAC  # noqa: E402

F32_CORNERS = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x3F800000,
               0xBF800001, 0x7F7FFFFF, 0xFF800000, 0x7F800000, 0x7FC00000, 0xFF800001,
               0x33800000, 0x3F000000, 0x4B000001, 0x34000000]


def _random_f32(rng, n):
    x = rng.integers(0, 2**32, (3, n), dtype=np.uint64)
    E = rng.integers(90, 166, (3, n)).astype(np.uint64)
    kind = rng.integers(0, 8, (3, n))
    x = np.where(kind < 5, (x & 0x807FFFFF) | (E << 23), x)
    x = np.where(kind == 5, x & 0x807FFFFF, x)
    a, b, c = x.astype(np.int64)
    with np.errstate(all="ignore"):
        p = a.astype(np.uint32).view(np.float32) * b.astype(np.uint32).view(np.float32)
    cancel = (rng.random(n) < 0.25) & np.isfinite(p)
    return a, b, np.where(cancel, (-p).view(np.uint32).astype(np.int64), c)


def test_fma32_combinational():
    rng = np.random.default_rng(3)
    a, b, c = _random_f32(rng, 700)
    k = np.array(F32_CORNERS)
    ca, cb = (x.ravel() for x in np.meshgrid(k, k, indexing="ij"))
    cc = rng.choice(k, ca.size)
    a, b, c = np.concatenate([a, ca]), np.concatenate([b, cb]), np.concatenate([c, cc])
    dut = FMA32()
    got = []

    async def tb(ctx):
        for x, y, z in zip(a, b, c):
            ctx.set(dut.a, int(x))
            ctx.set(dut.b, int(y))
            ctx.set(dut.c, int(z))
            got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    want = [fma32_bits(int(x), int(y), int(z)) for x, y, z in zip(a, b, c)]
    assert got == want


@pytest.mark.parametrize("pipeline, p_stall", [(1, 0.0), (2, 0.3)])
def test_fp32_mac_stream(pipeline, p_stall):
    rng = np.random.default_rng(pipeline)
    vectors = []
    for i in range(25):
        k = int(rng.integers(1, 6))
        a, b, _ = _random_f32(rng, k)
        vectors.append((a, b))
    vectors.append(([0x80000000], [0x3F800000]))          # -0 * 1 from the -0 start: -0
    vectors.append(([0x7F7FFFFF] * 3, [0x40000000] * 3))  # overflow to inf, stays inf
    dut = FP32MAC(FP32MACConfig(), pipeline=pipeline)
    assert dut.latency == pipeline + 2
    got = _run(dut, _pack(vectors, 1, 32), len(vectors), p_stall)
    cfg = FP32MACConfig()
    assert got == [cfg.dot(a, b) for a, b in vectors]
    assert got[-2] == 0x80000000 and got[-1] == 0x7F800000


def test_fp32_mac_validation():
    with pytest.raises(ValueError, match="pipeline must be in"):
        FP32MAC(FP32MACConfig(), pipeline=3)
    with pytest.raises(ValueError, match="cfg must be an FP32MACConfig"):
        FP32MAC(FP8MACConfig())
