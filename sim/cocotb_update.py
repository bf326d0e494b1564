"""cocotb testbench of the LNS-Madam update engine ``MadamUpdate`` (``hw/update.py``).

Model: :func:`lnsmadam.golden.update.madam_step`, per engine step (one tensor: its codes
and its side-band inputs ``g_bias``, ``e_clamp``, ``bc_exp``). Driver:
:class:`~lnsmadam.sim.stream.StreamSource` on ``i_stream`` (``w``, ``v``, ``g`` codes); a
step controller sets the side-band inputs while the engine is empty, then queues the step's
beats. Monitor: :class:`~lnsmadam.sim.stream.StreamSink` on ``o_stream`` (random
``ready``). Checker: :class:`~lnsmadam.sim.stream.Scoreboard`, ``w_new``, ``v_new`` and
``n`` of every weight, in order.

Parameters (``params.json``): ``config`` (:func:`lnsmadam.hw.update.config_to_dict`),
``pipeline``, ``bias_bits``, ``latency``, ``seed``, ``n_weights``/``n_steps`` (the
training run: ``n_weights * n_steps`` updates), ``valid_prob``, ``ready_prob``.

Tests:

* ``corners_full_rate``: corner steps at full rate (valid every cycle, ready always):
  first step (the seed), ZERO gradients of both signs on zero and non-zero states, ZERO
  weights of both signs, the largest gradient on the smallest state (``n`` at its bound),
  the smallest on the largest, weights pushed into the sigma* clamp and into the floor
  ``E = 1``, g² above the state range (saturation) and below it (ZERO gradient), the
  smallest state decaying to 0, ``e_clamp = 0``, the extremes of ``g_bias`` and ``bc_exp``
  and a sweep of ``g_bias`` across the window the datapath clamps to; then random codes.
  Checks bit-exactness, that the input never stalls within a step and that every result
  comes exactly ``latency`` cycles after its weight was accepted.
* ``training_backpressure``: a closed-loop training run of two tensors (the engine's
  outputs are the next step's weights and states; with bias correction a
  :class:`~lnsmadam.golden.update.BiasCorrection` register advances once per pair of
  tensors) with random valid gaps and random ``ready``; also checks the stream rule on the
  output and that the run reached the state/weight corners.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np

from ..golden.update import BiasCorrection, madam_step
from ..hw.update import MadamUpdate, config_from_dict
from .stream import (Bench, Scoreboard, StreamSink, StreamSource, load_params,
                                 ports_by_name)


class Codes:
    """Split codes into a payload's leaf fields (``w.exp``, ``w.sign``, ...) and back."""

    def __init__(self, port: dict):
        self.fields = port["fields"]

    def split(self, prefix: str, code: int) -> dict:
        fs = [f for f in self.fields if f["path"].startswith(prefix + ".") or f["path"] == prefix]
        base = min(f["offset"] for f in fs)
        return {f["path"]: (code >> (f["offset"] - base)) & ((1 << f["width"]) - 1) for f in fs}

    def join(self, prefix: str, values: dict) -> int:
        fs = [f for f in self.fields if f["path"].startswith(prefix + ".") or f["path"] == prefix]
        base = min(f["offset"] for f in fs)
        return sum((values[f["path"]] & ((1 << f["width"]) - 1)) << (f["offset"] - base)
                   for f in fs)


class Step:
    def __init__(self, w, v, g, g_bias, e_clamp, bc_exp=0, tag=""):
        self.w, self.v, self.g = (np.asarray(x, np.int64) for x in (w, v, g))
        self.g_bias, self.e_clamp, self.bc_exp = int(g_bias), int(e_clamp), int(bc_exp)
        self.tag = tag
        self.out: list[dict] = []


class Engine:
    """The configuration, the golden model and the engine's own constants."""

    def __init__(self, p: dict):
        self.p = p
        self.cfg = cfg = config_from_dict(p["config"])
        self.dut = MadamUpdate(cfg, pipeline=p["pipeline"], bias_bits=p["bias_bits"])
        assert self.dut.latency == p["latency"], "latency in params != the engine's"
        self.W, self.G, self.V = cfg.weight, cfg.grad, cfg.state

    def expected(self, st: Step) -> list[dict]:
        w, v, n = madam_step(st.w, st.v, st.g, st.g_bias, st.e_clamp, self.cfg, st.bc_exp)
        return [{"w_new": int(a), "v_new": int(b), "n": int(c)} for a, b, c in zip(w, v, n)]

    # -- stimulus ----------------------------------------------------------------------
    def random_step(self, rng: random.Random, n: int, tag="random") -> Step:
        W, G, V, d = self.W, self.G, self.V, self.dut
        return Step([rng.randrange(W.ncodes) for _ in range(n)],
                    [rng.randrange(1 << V.bits) for _ in range(n)],
                    [rng.randrange(G.ncodes) for _ in range(n)],
                    rng.randint(d.G_LO - 4, d.X_HI + 4), rng.randint(0, W.emax),
                    rng.randint(-G.gamma * self.cfg.bc_bits, 0), tag)

    def corner_steps(self, rng: random.Random) -> list[Step]:
        W, G, V, d, cfg = self.W, self.G, self.V, self.dut, self.cfg
        fb = V.man_bits - 1
        wneg, gneg = 1 << W.exp_bits, 1 << G.exp_bits
        vmin, vmax = 1 << fb, (1 << V.bits) - 1
        mid_v = (V.emax // 2) << fb | rng.getrandbits(fb)
        emax_w = W.emax
        # tensor bias with the largest gradient near the top of the state range
        gb = (G.gamma * (V.emax + V.offset)) // 2 - G.emax
        bc = -G.gamma * 2 if cfg.bias_correction else 0
        g_mid = G.emax - G.gamma
        steps = [
            Step([emax_w - 5] * 4 + [(emax_w - 5) | wneg] * 2, [0] * 6,
                 [g_mid, g_mid | gneg, 0, gneg, g_mid, g_mid | gneg], gb, emax_w, bc,
                 "first step, ZERO gradients"),
            Step([100, 100, 100 | wneg, 0, wneg, 0, wneg], [mid_v, mid_v, mid_v, 0, 0, mid_v,
                                                            vmin],
                 [0, gneg, 0, g_mid, g_mid | gneg, gneg, G.emax], gb, emax_w, bc,
                 "ZERO gradient on a state, ZERO weights"),
            Step([200, 200 | wneg, 200, 200 | wneg], [vmin, vmin, vmax, vmax],
                 [G.emax, G.emax, 1 | gneg, 1], gb, emax_w, bc, "n at its bound, dead zone"),
            Step([emax_w - 3, emax_w - 3, (emax_w - 2) | wneg, 3, 2 | wneg, 1, 1 | wneg],
                 [vmin] * 7, [G.emax | gneg, G.emax, G.emax, G.emax, G.emax | gneg, G.emax,
                              G.emax | gneg], gb, emax_w - 4, bc, "sigma* clamp and floor"),
            Step([300] * 4, [0, vmax, mid_v, vmin], [G.emax] * 4, d.X_HI + 3, emax_w, bc,
                 "g² saturates"),
            Step([300] * 4, [0, vmin, mid_v, vmin | 1], [G.emax, G.emax, 1, 0],
                 d.U0 - G.emax - 1, emax_w, bc, "g² underflows, state decays to 0"),
            Step([300, 5 | wneg, 0], [mid_v] * 3, [G.emax] * 3, gb, 0, bc, "e_clamp = 0"),
        ]
        lo_b, hi_b = -(1 << (d.bias_bits - 1)), (1 << (d.bias_bits - 1)) - 1
        lo_c, hi_c = -(1 << (d.bc_width - 1)), (1 << (d.bc_width - 1)) - 1
        for g_bias in (lo_b, hi_b, d.G_LO - 1, d.G_LO, d.U0, d.O0, d.X_HI, d.X_HI + 1):
            for bce in ((lo_c, hi_c) if cfg.bias_correction else (0,)):
                st = self.random_step(rng, 6, f"g_bias {g_bias}, bc_exp {bce}")
                st.g_bias, st.bc_exp = g_bias, bce
                steps.append(st)
        # a sweep of the bias across the clamp window, one step each
        for g_bias in range(d.G_LO - 2, d.X_HI + 3, max(1, (d.X_HI - d.G_LO) // 12)):
            st = self.random_step(rng, 8, f"g_bias sweep {g_bias}")
            st.g_bias = g_bias
            steps.append(st)
        return steps


class Training:
    """Closed-loop training of two tensors (alternating engine steps)."""

    def __init__(self, eng: Engine, rng: random.Random, n_weights: int, n_steps: int):
        self.eng, self.rng, self.n, self.n_steps = eng, rng, n_weights, n_steps
        W, V, d = eng.W, eng.V, eng.dut
        fb = V.man_bits - 1
        self.lo, self.hi = d.U0 - eng.G.emax, d.O0
        self.tensors = []
        for t in range(2):
            e_clamp = W.emax if t == 0 else rng.randint(W.emax * 3 // 4, W.emax)
            ws, vs = [], []
            for _ in range(n_weights):
                r = rng.random()
                e = (0 if r < 0.05 else rng.randint(1, 10) if r < 0.3
                     else max(1, e_clamp - rng.randint(0, 10)) if r < 0.55
                     else rng.randint(1, e_clamp))
                ws.append(0 if e == 0 and rng.random() < 0.5 else
                          e | (rng.getrandbits(1) << W.exp_bits))
                r = rng.random()
                vs.append(0 if r < 0.4 else (1 << fb) | rng.getrandbits(3) if r < 0.6
                          else (1 << V.bits) - 1 if r < 0.7 else rng.randrange(1 << V.bits))
            self.tensors.append({"w": ws, "v": vs, "e_clamp": e_clamp,
                                 "dir": [rng.getrandbits(1) for _ in range(n_weights)],
                                 "dead": [rng.random() < 0.15 for _ in range(n_weights)],
                                 "gb": rng.randint(self.lo, self.hi)})
        self.bc = BiasCorrection(eng.cfg)
        self.bc_exp = 0
        self.k = 0

    def next(self, prev: Step | None) -> Step | None:
        if prev is not None:
            s = self.tensors[(self.k - 1) % 2]
            s["w"] = [o["w_new"] for o in prev.out]
            s["v"] = [o["v_new"] for o in prev.out]
        if self.k == self.n_steps:
            return None
        k, rng, G = self.k, self.rng, self.eng.G
        self.k += 1
        t = k % 2
        if t == 0:
            self.bc_exp = self.bc.step()
        s = self.tensors[t]
        s["gb"] = min(max(s["gb"] + rng.randint(-3, 3), self.lo), self.hi)
        phase = "loud" if k < 6 else ["normal", "quiet", "normal", "loud"][(k - 6) // 12 % 4]
        gb = {"quiet": self.lo - 40, "loud": self.hi + 10}.get(phase, s["gb"])
        if rng.random() < 0.03:
            s["dir"] = [1 - x for x in s["dir"]]
        g = []
        for j in range(self.n):
            e = max(0, G.emax - int(abs(rng.gauss(0, G.gamma * 1.5))))
            if s["dead"][j] or rng.random() < 0.1:
                e = 0
            sign = s["dir"][j] if rng.random() < 0.8 else 1 - s["dir"][j]
            g.append(e | sign << G.exp_bits if e else 0)
        return Step(s["w"], s["v"], g, gb, s["e_clamp"], self.bc_exp, f"training step {k}")


def coverage(eng: Engine, steps: list[Step]) -> dict:
    W, G, V = eng.W, eng.G, eng.V
    fb = V.man_bits - 1
    cov = dict.fromkeys(["n_nonzero", "sigma_clamp", "floor", "zero_weight", "v_saturated",
                         "v_underflow", "g_over", "g_under"], 0)
    for st in steps:
        for j, o in enumerate(st.out):
            w, v, g = int(st.w[j]), int(st.v[j]), int(st.g[j])
            ew, eg = w & W.emax, g & G.emax
            egs = (2 * (eg + st.g_bias) >> G.frac_bits) - V.offset
            cov["n_nonzero"] += o["n"] != 0
            cov["sigma_clamp"] += ew != 0 and ew + o["n"] > st.e_clamp
            cov["floor"] += ew != 0 and ew + o["n"] < 1
            cov["zero_weight"] += ew == 0 and eg != 0
            cov["v_saturated"] += o["v_new"] == (1 << V.bits) - 1
            cov["v_underflow"] += (v >> fb) != 0 and o["v_new"] == 0
            cov["g_over"] += eg != 0 and egs > V.emax
            cov["g_under"] += eg != 0 and egs < 1
    return cov


async def _run(dut, p, step_source, valid_prob, ready_prob, check_timing):
    eng = Engine(p)
    rng = random.Random(p["seed"] * 7919 + int(check_timing))
    ports = ports_by_name(p)
    cin, cout = Codes(ports["i_stream__payload"]), Codes(ports["o_stream__payload"])
    sb = Scoreboard("madam_update", dut._log)
    done: list[Step] = []
    timing_errors: list[str] = []
    state = {"step": None, "n_out": 0, "acc": [], "stalled": 0, "offered": 0, "updates": 0}

    def on_send(beat, cycle):
        state["acc"].append(cycle)

    def on_recv(beat, cycle):
        out = {"w_new": cout.join("w_new", beat), "v_new": cout.join("v_new", beat),
               "n": beat["n"]}
        st = state["step"]
        k = len(st.out)
        st.out.append(out)
        sb.check(out)
        if check_timing and len(timing_errors) < 5:
            lat = cycle - state["acc"][k]
            if lat != p["latency"]:
                timing_errors.append(f"{st.tag}: weight {k} presented {lat} cycles after it "
                                     f"was accepted, documented latency {p['latency']}")

    src = StreamSource(dut, "i_stream", p, rng, valid_prob=valid_prob, on_send=on_send)
    sink = StreamSink(dut, "o_stream", p, rng, ready_prob=ready_prob, on_recv=on_recv)

    class Controller:
        """Starts the next step once every result of the current one has been taken."""

        busy = True

        def drive(self, cycle):
            st = state["step"]
            if st is not None and len(st.out) < len(st.w):
                return
            if st is not None:
                done.append(st)
            nxt = step_source(st)
            if nxt is None:
                self.busy = False
                state["step"] = None
                return
            for name in ("g_bias", "e_clamp", "bc_exp"):      # two's complement on the pins
                getattr(dut, name).value = getattr(nxt, name) & ((1 << ports[name]["width"]) - 1)
            state["step"], state["acc"] = nxt, []
            beats = []
            for w, v, g in zip(nxt.w.tolist(), nxt.v.tolist(), nxt.g.tolist()):
                beats.append({**cin.split("w", w), **cin.split("v", v), **cin.split("g", g)})
            src.send(beats)
            for e in eng.expected(nxt):
                sb.expect(e, {"step": nxt.tag, "g_bias": nxt.g_bias, "e_clamp": nxt.e_clamp,
                              "bc_exp": nxt.bc_exp})
            state["updates"] += len(beats)

        def sample(self, cycle):
            if src.current is not None:
                state["offered"] += 1
                state["stalled"] += not int(dut.i_stream__ready.value)

    ctl = Controller()
    bench = Bench(dut, [ctl, src, sink])
    await bench.start()
    slack = 1.0 / max(min(valid_prob, ready_prob), 0.05)
    cycles = await bench.run_until(lambda: not ctl.busy, 10**8)
    sb.finish()
    sink.check_protocol()
    dut._log.info("%d steps, %d updates in %d cycles (valid_prob %.2f, ready_prob %.2f)",
                  len(done), state["updates"], cycles, valid_prob, ready_prob)
    assert cycles <= slack * 3 * state["updates"] + (p["latency"] + 8) * len(done) + 100
    if check_timing:
        assert not timing_errors, "; ".join(timing_errors)
        assert state["stalled"] == 0, (
            f"input stalled {state['stalled']} of {state['offered']} cycles at full rate")
    return eng, done


@cocotb.test()
async def corners_full_rate(dut):
    p = load_params()
    eng = Engine(p)
    rng = random.Random(p["seed"])
    steps = eng.corner_steps(rng) + [eng.random_step(rng, 64) for _ in range(4)]
    it = iter(steps)
    _, done = await _run(dut, p, lambda prev: next(it, None), 1.0, 1.0, check_timing=True)
    cov = coverage(eng, done)
    dut._log.info("corner coverage: %s", cov)
    missing = [k for k, v in cov.items() if not v]
    assert not missing, f"corner steps miss {missing}: {cov}"


@cocotb.test()
async def training_backpressure(dut):
    p = load_params()
    eng = Engine(p)
    train = Training(eng, random.Random(p["seed"] + 1), p["n_weights"], p["n_steps"])
    _, done = await _run(dut, p, train.next, p["valid_prob"], p["ready_prob"],
                         check_timing=False)
    assert sum(len(s.w) for s in done) == p["n_weights"] * p["n_steps"]
    cov = coverage(eng, done)
    dut._log.info("training coverage: %s", cov)
    missing = [k for k, v in cov.items() if not v]
    assert not missing, f"the training run misses {missing}: {cov}"
