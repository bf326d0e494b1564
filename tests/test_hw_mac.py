# amaranth: UnusedElaboratable=no
"""hw/mac.py: the streaming LNS and INT8 dot-product units against their golden models.

Every vector goes through the unit's stream interface with random input gaps and random
output backpressure (unless a test needs full rate); every result is compared with
``golden.mac.dot`` / ``matmul`` (LNS) or ``golden.mac.int8_dot`` (INT8), and the handshake rules
are checked on every cycle.
"""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig, dot, int8_dot, matmul
from lnsmadam.hw.mac import INT8MAC, LNSMAC, OUT_PIPELINE


# -- golden twin of INT8MAC (to be moved to golden/mac.py) ---------------------------
def test_int8_dot_twin():
    big = [127, -128, 127]
    assert int8_dot(big, big, 1, 16) == 32767                             # saturates
    assert int8_dot(big, big, 2, 32) == 2 * 127 * 127 + 128 * 128
    assert int8_dot([-128, -128], [-128, -128], 1, 16, saturate=False) == -32768  # wraps
    # grouping matters only under saturation: + + + - clamps before the minus one lane
    # at a time, but not when all four are summed first
    a, b = [127] * 4, [127, 127, 127, -127]
    assert int8_dot(a, b, 1, 16) == 32767 - 16129
    assert int8_dot(a, b, 4, 16) == 2 * 16129


# -- stream harness ------------------------------------------------------------------
def pack_beats(a, b, lanes: int, bits: int) -> list[int]:
    """Packed input beats of one vector: operands padded with 0 (ZERO) to whole beats."""
    n = max(1, -(-len(a) // lanes))
    mask = (1 << bits) - 1
    pa = [int(x) & mask for x in a] + [0] * (n * lanes - len(a))
    pb = [int(x) & mask for x in b] + [0] * (n * lanes - len(b))
    beats = []
    for c in range(n):
        w = 0
        for k in range(lanes):
            w |= pa[c * lanes + k] << (bits * k) | pb[c * lanes + k] << (bits * (lanes + k))
        beats.append(w | int(c == 0) << (2 * lanes * bits) | int(c == n - 1) << (2 * lanes * bits + 1))
    return beats


def run_stream(dut, beats: list[int], n_results: int, seed: int = 0, p_gap: float = 0.0,
               p_stall: float = 0.0, max_cycles: int = 200_000, taps: list | None = None):
    """Stream packed beats into ``dut`` and collect ``n_results`` output payloads.

    Input gaps (valid low) and output stalls (ready low) are drawn with probabilities
    ``p_gap``/``p_stall``. On every cycle the harness checks the documented handshake:
    ``i_stream.ready == ~o_stream.valid | o_stream.ready``, and a presented result stays
    valid and unchanged until it is taken. Returns ``(results, log)`` with per-cycle
    ``(i_valid, i_ready, i_last, o_valid, o_ready)`` samples.
    """
    lay = dut.i_stream.payload.shape()
    bits = lay["a"].shape.size // dut.lanes
    assert lay["first"].offset == 2 * dut.lanes * bits and lay["last"].offset == lay["first"].offset + 1
    gen_in, gen_out = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    results, log = [], []
    i, o = dut.i_stream, dut.o_stream
    last_bit = lay["last"].offset

    async def producer(ctx):
        for w in beats:
            while p_gap and gen_in.random() < p_gap:
                ctx.set(i.valid, 0)
                await ctx.tick()
            ctx.set(i.payload.as_value(), w)
            ctx.set(i.valid, 1)
            await ctx.tick().until(i.ready)
        ctx.set(i.valid, 0)

    async def consumer(ctx):
        held = None
        while len(results) < n_results:
            ready = not (p_stall and gen_out.random() < p_stall)
            ctx.set(o.ready, int(ready))
            _, _, iv, ir, ip, ov, orr, op = await ctx.tick().sample(
                i.valid, i.ready, i.payload.as_value(), o.valid, o.ready, o.payload.as_value())
            assert ir == int(not ov or orr), "i_stream.ready must be ~o.valid | o.ready"
            if held is not None:
                assert ov and op == held, "a presented result changed before it was taken"
            held = op if (ov and not orr) else None
            if ov and orr:
                results.append(op)
            log.append((iv, ir, (ip >> last_bit) & 1, ov, orr))
            assert len(log) < max_cycles, "stream deadlock"

    async def tap_monitor(ctx):
        async for _, _, tv, ta in ctx.tick().sample(dut.tap_valid, dut.tap_acc):
            if tv:
                taps.append(ta)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    if taps is not None:
        sim.add_testbench(tap_monitor, background=True)
    sim.run()
    out_layout = o.payload.shape()
    fields = {name: (f.offset, Shape.cast(f.shape)) for name, f in out_layout}
    decoded = []
    for w in results:
        row = {}
        for name, (off, shape) in fields.items():
            v = (w >> off) & ((1 << shape.width) - 1)
            if shape.signed and v >> (shape.width - 1):
                v -= 1 << shape.width
            row[name] = v
        decoded.append(row)
    return decoded, log


def random_codes(rng, fmt: LNSFormat, k: int) -> np.ndarray:
    """Codes biased towards large same-sign magnitudes and ZERO, so saturation happens."""
    mode = rng.integers(0, 4)
    if mode == 0:
        return rng.integers(0, fmt.ncodes, k)
    big = rng.integers(max(1, fmt.emax - 10), fmt.emax + 1, k)
    if mode == 1:
        return big
    if mode == 2:
        return big | (1 << fmt.exp_bits)
    c = rng.integers(0, fmt.ncodes, k)
    return np.where(rng.random(k) < 0.5, 0, c)


def check_lns(dut: LNSMAC, vectors, seed=0, p_gap=0.3, p_stall=0.3):
    cfg = dut.cfg
    beats = [w for a, b in vectors for w in pack_beats(a, b, cfg.lanes, cfg.fmt.bits)]
    got, log = run_stream(dut, beats, len(vectors), seed, p_gap, p_stall)
    S = np.array([dot(a, b, cfg) for a, b in vectors])
    s, x, z = cfg.to_lns(S)
    assert [g["acc"] for g in got] == S.tolist()
    assert [(g["sign"], g["exp"], g["zero"]) for g in got] == \
        list(zip(s.tolist(), x.tolist(), z.astype(int).tolist()))
    return got, log


# (cfg, pipeline, out_pipeline): every out_pipeline 0..4 runs under random gaps and stalls
LNS_CONFIGS = [
    (MACConfig(), 1, 0),
    (MACConfig(lanes=4), 2, 3),
    (MACConfig(lanes=8), 5, 4),                                               # max pipelines
    (MACConfig(fmt=LNSFormat(6, 2), lut_frac=6, window=8, acc_bits=16, lanes=4), 4, 1),
    (MACConfig(acc_bits=25, lanes=4), 3, 2),                                  # saturates
    (MACConfig(acc_bits=25, saturate=False, lanes=8), 1, 3),                  # wraps
    (MACConfig(acc_bits=25, lanes=3), 2, 0),                                  # odd tree
    (MACConfig(fmt=LNSFormat(10, 4, underflow="min"), lut_frac=9, window=20, acc_bits=40,
               lanes=2, mid_bits=12), 3, 4),
    (MACConfig(lut_frac=5, window=31, acc_bits=40), 2, 2),
]


def _cfg_id(v):
    if isinstance(v, MACConfig):
        return (f"b{v.fmt.bits}g{v.fmt.gamma}_F{v.lut_frac}_W{v.window}"
                f"_acc{v.acc_bits}{'s' if v.saturate else 'w'}_l{v.lanes}")
    return None


@pytest.mark.parametrize("cfg, pipeline, out_pipeline", LNS_CONFIGS,
                         ids=[f"{_cfg_id(c)}-pipe{p}-out{o}" for c, p, o in LNS_CONFIGS])
def test_lns_random_vectors(cfg, pipeline, out_pipeline):
    rng = np.random.default_rng(cfg.acc_bits * 1000 + cfg.lanes * 10 + pipeline)
    vectors = []
    for k in rng.integers(1, 71, 250):
        vectors.append((random_codes(rng, cfg.fmt, k), random_codes(rng, cfg.fmt, k)))
    dut = LNSMAC(cfg, pipeline=pipeline, out_pipeline=out_pipeline)
    assert dut.latency == pipeline + 2 + out_pipeline
    _, log = check_lns(dut, vectors, seed=pipeline)
    # the random stalls really exercised the backpressure path
    assert any(ov and not orr and not ir for _, ir, _, ov, orr in log)


@pytest.mark.parametrize("pipeline", [1, 2, 3])
def test_lns_first_cut_log(pipeline):
    """The first register after the exponent adders instead of after the shifters."""
    cfg = MACConfig(lanes=3)
    rng = np.random.default_rng(pipeline)
    vectors = [(random_codes(rng, cfg.fmt, k), random_codes(rng, cfg.fmt, k))
               for k in rng.integers(1, 20, 60)]
    dut = LNSMAC(cfg, pipeline=pipeline, out_pipeline=1, first_cut="log")
    assert dut.cut_order[:3] == ("sum", "tree", "lin")
    assert dut.latency == pipeline + 3
    check_lns(dut, vectors, seed=pipeline)
    with pytest.raises(ValueError, match="first_cut must be 'linear' or 'log', got 'x'"):
        LNSMAC(cfg, first_cut="x")


def test_lns_exhaustive_single_products():
    """All 2**16 operand pairs of the 8-bit format, each a one-element vector, at full
    rate (one pair per clock): the MAC's product path equals MACConfig.products."""
    cfg = MACConfig()
    c = np.arange(256)
    A, B = (v.ravel() for v in np.meshgrid(c, c, indexing="ij"))
    dut = LNSMAC(cfg, pipeline=2)
    beats = [w | 3 << 16 for w in (A | B << 8).tolist()]     # first = last = 1
    got, log = run_stream(dut, beats, len(beats))
    assert len(log) == len(beats) + dut.latency
    P = cfg.products(A, B)
    assert np.array_equal(np.array([g["acc"] for g in got]), P)
    s, x, z = cfg.to_lns(P)
    assert np.array_equal(np.array([g["exp"] for g in got]), x)
    assert np.array_equal(np.array([g["sign"] for g in got]), s)
    assert np.array_equal(np.array([g["zero"] for g in got]), z)


def test_lns_saturation_really_happens():
    """The small saturating and the wrapping configurations do reach their limits."""
    cfg = MACConfig(acc_bits=25, lanes=4)
    a = np.full(40, 127)
    lim = 1 << 24
    vectors = [(a, a), (a | 128, a), (np.r_[a, 127 | 128], np.full(41, 127))]
    got, _ = check_lns(LNSMAC(cfg, pipeline=3), vectors)
    assert [g["acc"] for g in got][:2] == [lim - 1, -lim]
    wrap = MACConfig(acc_bits=25, saturate=False, lanes=8)
    got, _ = check_lns(LNSMAC(wrap, pipeline=1), vectors[:1])
    assert got[0]["acc"] == ((40 * (431 << 15) + lim) % (2 * lim)) - lim


def test_lns_corners():
    cfg = MACConfig(acc_bits=25, lanes=4)
    neg = 128
    ones = [([c], [d]) for c, d in [(127, 127), (127 | neg, 127), (1, 1), (0, 127), (neg, 127),
                                    (113, 120)]]
    vectors = [
        (np.zeros(9, int), np.full(9, 127)),                     # ZERO absorbs
        (np.full(5, neg), np.full(5, 127 | neg)),                # ZERO with the sign bit set
        (np.array([127, 127 | neg]), np.array([100, 100])),      # exact cancellation -> ZERO
        (np.full(4, 127), np.full(4, 127)),                      # exactly one full beat
        (np.full(5, 127 | neg), np.full(5, 127)),                # one beat + one lane
        (np.full(70, 127 | neg), np.full(70, 127 | neg)),        # saturates high
        (np.full(70, 127), np.full(70, 127 | neg)),              # saturates low
        (np.r_[np.full(40, 127), np.full(3, 127 | neg)], np.full(43, 127)),  # sat, then back
        (np.full(16, 1), np.full(16, 1)),                        # all below the window
    ] + ones * 3                                                 # back-to-back 1-beat vectors
    got, _ = check_lns(LNSMAC(cfg), vectors, p_gap=0.2, p_stall=0.2)
    assert got[0]["zero"] == 1 and got[2]["zero"] == 1 and got[8]["zero"] == 1
    assert got[5]["acc"] == (1 << 24) - 1 and got[6]["acc"] == -(1 << 24)
    # docs/format.md section 5: codes 113 * 120 -> p = 233 -> back to x = 233
    assert got[14]["exp"] == 233 and got[14]["acc"] == 279 << 13


def test_lns_matmul():
    """An 8 x 64 @ 64 x 8 matrix product, one dot product per vector, against matmul()."""
    cfg = MACConfig(lanes=8)
    rng = np.random.default_rng(7)
    A = rng.integers(0, 256, (8, 64))
    B = rng.integers(0, 256, (64, 8))
    vectors = [(A[i], B[:, j]) for i in range(8) for j in range(8)]
    got, _ = check_lns(LNSMAC(cfg, pipeline=2), vectors, p_gap=0.1, p_stall=0.1)
    assert np.array_equal(np.array([g["acc"] for g in got]).reshape(8, 8), matmul(A, B, cfg))


@pytest.mark.parametrize("pipeline, out_pipeline", [(1, 0), (2, 3), (3, 1), (1, 2), (2, 4),
                                                    (3, None)])
def test_latency_and_full_rate(pipeline, out_pipeline):
    """With no gaps and no stalls the input never stalls (one beat per cycle) and each
    result appears exactly ``pipeline + 2 + out_pipeline`` cycles after its last beat was
    accepted (``out_pipeline`` defaults to 3)."""
    cfg = MACConfig(lanes=2)
    rng = np.random.default_rng(pipeline)
    vectors = [(rng.integers(0, 256, k), rng.integers(0, 256, k)) for k in [1, 2, 3, 7, 1, 1, 4]]
    if out_pipeline is None:
        dut = LNSMAC(cfg, pipeline=pipeline)
        out_pipeline = 3
    else:
        dut = LNSMAC(cfg, pipeline=pipeline, out_pipeline=out_pipeline)
    assert dut.out_pipeline == out_pipeline
    assert dut.latency == pipeline + 2 + out_pipeline
    _, log = check_lns(dut, vectors, p_gap=0.0, p_stall=0.0)
    n_beats = sum(len(pack_beats(a, b, 2, 8)) for a, b in vectors)
    accepted = [t for t, (iv, ir, _, _, _) in enumerate(log) if iv and ir]
    assert accepted == list(range(n_beats))                   # back to back, no bubble
    lasts = [t for t, (iv, ir, il, _, _) in enumerate(log) if iv and ir and il]
    shown = [t for t, (_, _, _, ov, _) in enumerate(log) if ov]
    # log[t] samples the edge that ends cycle t; a beat accepted at edge t is in cycle t
    assert shown == [t + dut.latency for t in lasts]


@pytest.mark.parametrize("out_pipeline, max_len", [(3, 8), (4, 4)])
def test_backpressure_holds_everything(out_pipeline, max_len):
    """A long output stall: the input is refused, nothing is lost, duplicated or reordered;
    with one-beat vectors (``max_len = lanes``) every stage of the output converter holds
    a different result while stalled."""
    cfg = MACConfig(lanes=4)
    rng = np.random.default_rng(11)
    vectors = [(rng.integers(0, 256, k), rng.integers(0, 256, k))
               for k in rng.integers(1, max_len + 1, 30)]
    dut = LNSMAC(cfg, pipeline=4, out_pipeline=out_pipeline)
    got, log = check_lns(dut, vectors, p_gap=0.0, p_stall=0.85)
    refused = sum(1 for iv, ir, _, _, _ in log if iv and not ir)
    assert refused > 30


@pytest.mark.parametrize("out_pipeline", [0, 3])
def test_acc_tap_without_acc_output(out_pipeline):
    """``out_acc=False, acc_tap=True`` (the trainer's configuration): the output stream has
    no ``acc`` and the same LNS results; the tap shows every accumulator word exactly once,
    in order, under gaps and stalls, ``out_pipeline + 1`` cycles before the stream would."""
    cfg = MACConfig(lanes=2)
    rng = np.random.default_rng(out_pipeline + 40)
    vectors = [(random_codes(rng, cfg.fmt, k), random_codes(rng, cfg.fmt, k))
               for k in rng.integers(1, 9, 40)]
    dut = LNSMAC(cfg, pipeline=2, out_pipeline=out_pipeline, out_acc=False, acc_tap=True)
    assert "acc" not in dict(dut.o_stream.payload.shape())
    beats = [w for a, b in vectors for w in pack_beats(a, b, 2, 8)]
    taps = []
    got, _ = run_stream(dut, beats, len(vectors), 3, 0.3, 0.5, taps=taps)
    S = np.array([dot(a, b, cfg) for a, b in vectors])
    s, x, z = cfg.to_lns(S)
    assert taps == S.tolist()
    assert [(g["sign"], g["exp"], g["zero"]) for g in got] == \
        list(zip(s.tolist(), x.tolist(), z.astype(int).tolist()))
    # full rate: the tap leads the stream by out_pipeline + 1 cycles
    dut = LNSMAC(cfg, pipeline=2, out_pipeline=out_pipeline, acc_tap=True)
    taps = []
    got, _ = run_stream(dut, beats, len(vectors), taps=taps)
    assert taps == [g["acc"] for g in got] == S.tolist()
    with pytest.raises(ValueError, match="out_acc"):
        LNSMAC(cfg, out_acc=2)


def test_first_restarts_the_accumulator():
    """A vector abandoned without ``last`` is discarded by the next ``first``."""
    cfg = MACConfig(lanes=2)
    dut = LNSMAC(cfg, pipeline=1)
    a, b = np.full(6, 120), np.full(6, 127)
    beats = pack_beats(a, b, 2, 8)
    abandoned = beats[0] & ~(1 << 33)                          # first beat, last cleared
    beats = [abandoned, abandoned] + beats
    got, _ = run_stream(dut, beats, 1)
    assert got[0]["acc"] == dot(a, b, cfg)


# -- INT8 baseline ---------------------------------------------------------------------
INT8_CONFIGS = [(1, 16, True, 1), (1, 20, False, 2), (4, 16, True, 4), (4, 32, True, 2),
                (8, 18, False, 3), (8, 24, True, 5), (3, 17, True, 3)]


@pytest.mark.parametrize("lanes, acc_bits, saturate, pipeline", INT8_CONFIGS)
def test_int8_random_vectors(lanes, acc_bits, saturate, pipeline):
    rng = np.random.default_rng(lanes * 100 + acc_bits)
    vectors = []
    for k in rng.integers(1, 71, 80):
        mode = rng.integers(0, 3)
        if mode == 0:
            a, b = rng.integers(-128, 128, k), rng.integers(-128, 128, k)
        else:                                   # large, same sign: saturation / wrap
            a = rng.integers(100, 128, k) * (1 if mode == 1 else -1)
            b = rng.choice([-128, 127, 126], k) if mode == 2 else rng.integers(100, 128, k)
        vectors.append((a, b))
    vectors.append((np.array([-128, 0, 127]), np.array([-128, 5, -128])))
    dut = INT8MAC(lanes, acc_bits, saturate=saturate, pipeline=pipeline)
    beats = [w for a, b in vectors for w in pack_beats(a, b, lanes, 8)]
    got, _ = run_stream(dut, beats, len(vectors), seed=pipeline, p_gap=0.3, p_stall=0.3)
    ref = [int8_dot(a, b, lanes, acc_bits, saturate) for a, b in vectors]
    assert [g["acc"] for g in got] == ref
    assert list(got[0]) == ["acc"]
    lim = 1 << (acc_bits - 1)
    if acc_bits <= 18:                          # these configurations do hit their limits
        hit = [r for r in ref if r in (lim - 1, -lim)] if saturate else \
            [r for r, (a, b) in zip(ref, vectors) if r != int(np.dot(a, b))]
        assert hit


def test_int8_latency_and_full_rate():
    dut = INT8MAC(4, 32)
    assert dut.pipeline == 2 and dut.latency == 4
    vectors = [(np.arange(k) - 3, np.arange(k) * 3 - 50) for k in [1, 5, 8, 2]]
    beats = [w for a, b in vectors for w in pack_beats(a, b, 4, 8)]
    got, log = run_stream(dut, beats, len(vectors))
    assert [g["acc"] for g in got] == [int8_dot(a, b, 4, 32) for a, b in vectors]
    lasts = [t for t, (iv, ir, il, _, _) in enumerate(log) if iv and ir and il]
    assert [t for t, e in enumerate(log) if e[3]] == [t + 4 for t in lasts]


# -- structure and parameters -------------------------------------------------------------
def test_interfaces():
    cfg = MACConfig(lanes=4)
    dut = LNSMAC(cfg)
    assert dut.pipeline == 2 and dut.cut_order == ("lin", "tree", "sum", "t1")
    assert dut.out_pipeline == OUT_PIPELINE == 3 and dut.latency == 7
    assert INT8MAC(4).out_stages == 0
    lay = dut.i_stream.payload.shape()
    assert lay.size == 2 * 4 * 8 + 2
    out = dut.o_stream.payload.shape()
    assert out["acc"].shape.width == 32 and out["acc"].shape.signed and out["exp"].shape.signed
    assert LNSMAC(MACConfig()).cut_order == ("lin", "sum")
    assert INT8MAC(8).cut_order == ("mul", "tree", "in", "t1", "t2")
    # both convert to Verilog through Yosys (synthesisable constructs only)
    assert "module" in verilog.convert(LNSMAC(MACConfig(lanes=3), pipeline=4))
    assert "module" in verilog.convert(LNSMAC(MACConfig(lanes=2), pipeline=1, out_pipeline=4))
    assert "module" in verilog.convert(INT8MAC(3, 20, pipeline=3))


def test_validation():
    with pytest.raises(ValueError, match="cfg must be a MACConfig"):
        LNSMAC(LNSFormat(8, 3))
    with pytest.raises(ValueError, match=r"pipeline must be in \[1, 2\]"):
        LNSMAC(MACConfig(), pipeline=3)
    with pytest.raises(ValueError, match=r"pipeline must be in \[1, 5\]"):
        LNSMAC(MACConfig(lanes=8), pipeline=0)
    with pytest.raises(ValueError, match=r"out_pipeline must be in \[0, 4\]"):
        LNSMAC(MACConfig(), out_pipeline=5)
    with pytest.raises(ValueError, match=r"out_pipeline must be in \[0, 4\]"):
        LNSMAC(MACConfig(), out_pipeline=-1)
    with pytest.raises(ValueError, match=r"lanes must be in \[1, 256\]"):
        INT8MAC(0)
    with pytest.raises(ValueError, match=r"acc_bits must be in \[16, 62\]"):
        INT8MAC(4, 15)
    with pytest.raises(ValueError, match="saturate must be a bool"):
        INT8MAC(4, 32, saturate=1)
    with pytest.raises(ValueError, match=r"pipeline must be in \[1, 2\]"):
        INT8MAC(1, 32, pipeline=3)
