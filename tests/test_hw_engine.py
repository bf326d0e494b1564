"""The training engine in the Amaranth simulator, bit-exact against its golden twin.

Small MLPs (a few samples each) so that every pass kind -- UF_0, F_l, the softmax error,
BU_l and the drain U_0 -- and the run control (``docs/protocol.md`` §8: the 32-bit register
checks, ``sample_base``, ``mode``, bad labels, STOP, exact resume) run in seconds at 1, 2
and 4 lanes. The golden side is :class:`lnsmadam.golden.trainer.DeviceTrainer` given the
same registers and commands; after every command the STATUS fields must agree, and at the
end the weight and state banks. The digits MLP runs on the Verilator twin
(``tests/test_twin_training.py``; both modes at 4 and 8 lanes: ``tests/test_twin_modes.py``).
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mlp import LNSMLP, MLPConfig
from lnsmadam.golden.trainer import DeviceTrainer
from lnsmadam.golden import image
from lnsmadam.hw.engine.engine import Engine

STATUS = ("state", "error", "epoch", "sample", "correct", "last_correct", "steps")
REGS = image.REGS


class BusDriver:
    """The link's side of ``MemBus`` and ``ControlSignature``, one access at a time."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut
        self.ids = {name: rid for rid, name, _, _ in dut.regions()}

    async def access(self, region, addr, wdata=None):
        ctx, bus = self.ctx, self.dut.bus
        ctx.set(bus.cmd_valid, 1)
        ctx.set(bus.cmd_write, wdata is not None)
        ctx.set(bus.cmd_region, self.ids[region] if isinstance(region, str) else region)
        ctx.set(bus.cmd_addr, addr)
        ctx.set(bus.cmd_wdata, 0 if wdata is None else int(wdata) & 0xFFFFFFFF)
        for _ in range(100):
            await ctx.tick()
            if ctx.get(bus.cmd_ready):
                break
        else:
            raise AssertionError(f"access to {region} not accepted")
        ctx.set(bus.cmd_valid, 0)
        # the link may change the address while it waits for the response
        ctx.set(bus.cmd_addr, 0x5A5A)
        for _ in range(100):
            if ctx.get(bus.rsp_valid):
                break
            await ctx.tick()
        else:
            raise AssertionError(f"no response from {region}")
        data = ctx.get(bus.rsp_rdata)
        await ctx.tick()
        return data

    async def write_words(self, region, words, base=0):
        for k, w in enumerate(words):
            await self.access(region, base + k, int(w))

    async def read_words(self, region, n):
        return np.array([await self.access(region, k) for k in range(n)], np.int64)

    async def pulse(self, name, **fields):
        ctx, ctl = self.ctx, self.dut.ctl
        for k, v in fields.items():
            ctx.set(getattr(ctl, k), v)
        ctx.set(getattr(ctl, name), 1)
        await ctx.tick()
        ctx.set(getattr(ctl, name), 0)
        for k in fields:
            ctx.set(getattr(ctl, k), 0)

    async def wait_idle(self, stop_at=None, limit=200_000):
        """Clock until idle; with ``stop_at``, pulse STOP after that many cycles."""
        ctx = self.ctx
        await ctx.tick()
        for cyc in range(limit):
            if stop_at is not None and cyc == stop_at:
                await self.pulse("stop")
            if ctx.get(self.dut.ctl.state) == 0:
                return cyc
            await ctx.tick()
        raise AssertionError("engine did not finish")

    def status(self):
        return {k: self.ctx.get(getattr(self.dut.ctl, k)) for k in STATUS}


class Rig:
    """An engine and its golden twin holding the same records, weights and registers.

    ``script`` steps: ``("regs", {name: value})``; ``("start", epochs, lr_step, seed[,
    stop_at])``; ``("evaluate"[, stop_at])``; ``("resume", epochs, lr_step, seed)``: continue
    the stopped run from the last STATUS (``epoch_base += epoch``, ``sample_base = sample``,
    START of the epochs left of ``epochs``; ``docs/protocol.md`` §10). ``stop_at`` pulses
    STOP that many cycles after the command. The golden twin runs each step right after the
    hardware (a STOP as ``stop_after`` the samples the hardware took) and the STATUS fields
    must agree after every command; at the end the registers and every bank."""

    def __init__(self, sizes, lanes, n_train, n_test, seed=0, fmt=None, labels=None, **hw):
        cfg = MLPConfig(sizes=sizes) if fmt is None else MLPConfig(sizes=sizes, fmt=fmt)
        self.cfg, self.seed, self.lanes = cfg, seed, lanes
        self.bias_lane = hw.get("bias_lane", False)
        self.n_train, self.n_test = n_train, n_test
        rng = np.random.default_rng(seed + 100)
        n = n_train + n_test
        x = rng.integers(0, 17, size=(n, sizes[0])) / 16.0
        self.y = rng.integers(0, sizes[-1], size=n) if labels is None else np.asarray(labels)
        self.max_records = n + 1
        self.model = LNSMLP(cfg, seed)
        self.codes = self.model.input_codes(x).codes[:, :-1]
        self.dut = Engine(cfg, lanes=lanes, max_records=self.max_records, **hw)
        self.gold = DeviceTrainer(LNSMLP(cfg, seed), self.codes, self.y, self.max_records,
                                  pipelined=hw.get("pipelined", False), encoded=True)
        self.gold.n_train, self.gold.n_test = n_train, n_test

    def _golden(self, step, st):
        g = self.gold
        if step[0] == "start":
            steps0 = g.steps
            if g.begin(*step[1:4]) and len(step) > 4:
                g.stop_after(st["steps"] - steps0)
        else:
            if g.begin_evaluate() and len(step) > 1:
                g.stop_after(st["sample"] if st["sample"] else self.n_test)
        g.advance()
        assert st == g.status(), (step, st, g.status())

    def run(self, script):
        dut, out = self.dut, {"status": []}
        img = image.model_image(self.model, self.lanes, self.bias_lane)
        g = self.gold

        async def tb(ctx):
            bd = BusDriver(ctx, dut)

            async def regs(values):
                for name, val in values.items():
                    await bd.access("regs", REGS[name], val)
                    setattr(g, name, val)

            await bd.write_words("regs", [self.n_train, self.n_test, 0])
            for adr, val in image.layer_regs(self.model).items():
                await bd.access("regs", adr, val)
            await bd.write_words("data", image.pack_dataset(self.codes, self.y))
            for name, w in img.items():
                await bd.write_words(name, w)
            done = 0                         # epochs finished by the run being resumed
            for step in script:
                if step[0] == "regs":
                    await regs(step[1])
                    continue
                if step[0] == "resume":
                    if done == step[1]:              # the run already ended
                        continue
                    last = out["status"][-1]
                    done += last["epoch"]
                    if done == step[1]:
                        continue
                    await regs({"epoch_base": g.epoch_base + last["epoch"],
                                "sample_base": last["sample"]})
                    step = ("start", step[1] - done) + tuple(step[2:])
                if step[0] == "start":
                    epochs, lr, seed = step[1:4]
                    await bd.pulse("start", epochs=epochs, lr_step=lr, seed=seed)
                    stop_at = step[4] if len(step) > 4 else None
                else:
                    await bd.pulse("evaluate")
                    stop_at = step[1] if len(step) > 1 else None
                await bd.wait_idle(stop_at)
                st = bd.status()
                out["status"].append(st)
                self._golden(step, st)
            out["regs"] = await bd.read_words("regs", 8 + 4 * (len(self.cfg.sizes) - 1))
            out["img"] = {name: await bd.read_words(name, len(w)) for name, w in img.items()}

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(tb)
        sim.run()
        want_img = image.model_image(g.model, self.lanes, self.bias_lane)
        for name in want_img:
            np.testing.assert_array_equal(out["img"][name], want_img[name], err_msg=name)
        for name, adr in REGS.items():
            assert out["regs"][adr] == getattr(g, name) & 0xFFFFFFFF, name
        return out


def run_case(sizes, lanes, n_train, n_test, seed, epochs=1, lr_step=1, fmt=None, **hw):
    """``epochs`` one-epoch STARTs (epoch_base = epoch) and an EVALUATE."""
    rig = Rig(sizes, lanes, n_train, n_test, seed, fmt=fmt, **hw)
    script = []
    for ep in range(epochs):
        script += [("regs", {"epoch_base": ep}), ("start", 1, lr_step, seed)]
    return rig.run(script + [("evaluate",)])


def test_two_layers_one_lane():
    run_case((6, 4, 3), 1, n_train=4, n_test=3, seed=1, epochs=2)


@pytest.mark.parametrize("sizes,lanes", [
    ((6, 4, 3), 2),          # the bias column starts a word of its own (4 % 2 == 0)
    ((6, 5, 3), 2),
    ((5, 4, 3, 3), 2),       # three layers: BU_2 then BU_1, linear errors of two layers
    ((5, 4, 3, 3), 1),       # three layers at one lane: exponent-form errors
    ((9, 5, 4), 4),
    ((7, 3), 4),             # one layer: the pending update's error is the softmax's
    ((7, 3), 1),
])
def test_shapes_and_lanes(sizes, lanes):
    run_case(sizes, lanes, n_train=3, n_test=2, seed=len(sizes) + lanes)


@pytest.mark.parametrize("sizes,lanes", [((6, 4, 3), 2), ((7, 3), 1), ((5, 4, 3, 3), 4)])
def test_parallel_softmax(sizes, lanes):
    run_case(sizes, lanes, n_train=3, n_test=2, seed=9, softmax="parallel")


@pytest.mark.parametrize("sizes,lanes", [((6, 4, 3), 2), ((5, 4, 3, 3), 2), ((8, 3), 4),
                                         ((4, 8, 3), 4)])
def test_bias_lane(sizes, lanes):
    """The bias column in a lane of its own: widths the lanes divide (no bias word) and not,
    one to three layers."""
    run_case(sizes, lanes, n_train=3, n_test=2, seed=10, bias_lane=True)


@pytest.mark.parametrize("sizes,lanes", [((6, 4, 3), 1), ((6, 4, 3), 2), ((5, 4, 3, 3), 2)])
def test_pipelined_build_exact_and_pipelined_mode(sizes, lanes):
    """A pipelined build (a datapath per stage): exact mode is bit-exact with the batch-1
    step, pipelined mode with golden's pipelined schedule (fill, steps, drain per epoch)."""
    rig = Rig(sizes, lanes, n_train=4, n_test=2, seed=13, pipelined=True)
    rig.run([("start", 1, 1, 13), ("regs", {"mode": 1, "epoch_base": 1}),
             ("start", 2, 2, 13), ("evaluate",), ("regs", {"mode": 0}), ("start", 1, 1, 13)])


@pytest.mark.parametrize("lanes,seed", [(1, 21), (2, 22)])
def test_pipelined_stop_bad_label_and_refusal(lanes, seed):
    """Pipelined mode: STOP at random cycles (the samples of both stages finish, then the
    drain), a bad label (stage A does not take it), a resume (the pipeline refills), and
    mode 1 refused by a build without the capability."""
    labels = [0, 1, 2, 1, 0, 2, 1, 7, 0, 1]                 # record 7 is bad (n_out = 3)
    rig = Rig((6, 4, 3), lanes, n_train=8, n_test=2, seed=seed, labels=labels,
              pipelined=True)
    rng = np.random.default_rng(seed)
    script = [("regs", {"n_train": 6, "mode": 1}), ("start", 2, 1, seed, int(rng.integers(40, 900)))]
    script += [("resume", 2, 1, seed, int(rng.integers(40, 900))), ("resume", 2, 1, seed)]
    script += [("regs", {"n_train": 8, "sample_base": 0, "epoch_base": 0}), ("start", 1, 1, seed)]
    out = rig.run(script)
    assert out["status"][-1]["error"] == 2
    plain = Rig((6, 4, 3), lanes, n_train=3, n_test=2, seed=seed)
    out = plain.run([("regs", {"mode": 1}), ("start", 1, 1, seed)])
    assert out["status"][-1]["error"] == 1


def test_lr_step_and_two_epochs_in_one_start():
    rig = Rig((6, 8, 3), 4, n_train=3, n_test=2, seed=3)
    rig.run([("start", 2, 3, 3), ("evaluate",)])


def test_fewest_pipeline_stages():
    """No optional register anywhere: the schedule follows the shorter latencies."""
    run_case((6, 4, 3), 2, n_train=3, n_test=2, seed=5, read_reg=0, conv_pipeline=0,
             mac_pipeline=0, update_pipeline=0)


def test_most_pipeline_stages():
    run_case((5, 3, 2), 4, n_train=2, n_test=2, seed=6, read_reg=1, conv_pipeline=4,
             mac_pipeline=4, update_pipeline=7)


def test_small_format():
    run_case((4, 3, 2), 1, n_train=3, n_test=2, seed=4, fmt=LNSFormat.from_gamma(6, 4))


def test_refusals_change_nothing():
    """Every refused START / EVALUATE: error 1, no weight, counter or register changes; the
    record check uses the full 32-bit registers (no wrap-around, no truncation)."""
    rig = Rig((5, 3, 2), 2, n_train=3, n_test=2, seed=7)
    script = [("start", 1, 1, 7)]                                    # accepted: steps = 3
    bad = [({"n_train": 0}, "start"), ({"n_train": 0x10001}, "start"),
           ({"n_test": 0xFFFFFFFF}, "start"), ({"n_test": 4}, "start"),
           ({"sample_base": 3}, "start"), ({"sample_base": 0x100000000 - 1}, "start"),
           ({"mode": 1}, "start"), ({"mode": 2}, "start"),
           ({"n_test": 0}, "evaluate"), ({"n_train": 0x10003}, "evaluate")]
    for regs, cmd in bad:
        script.append(("regs", regs))
        script.append(("start", 1, 1, 7) if cmd == "start" else ("evaluate",))
        script.append(("regs", {"n_train": 3, "n_test": 2, "sample_base": 0, "mode": 0}))
    script += [("start", 0, 1, 7), ("start", 1, 0, 7), ("start", 1, 65, 7)]
    script += [("regs", {"epoch_base": 0x12345678, "sample_base": 1}), ("start", 1, 1, 7),
               ("evaluate",)]
    out = rig.run(script)
    errors = [st["error"] for st in out["status"] if st is not None]
    assert errors == [0] + [1] * len(bad) + [1, 1, 1, 0, 0]


def test_bad_label_stops_training_and_evaluation():
    """A label >= n_out is never used: the run stops before it (pending update drained),
    error 2, sample = its position; the evaluation likewise."""
    labels = [0, 1, 1, 2, 7, 0, 65535, 1]          # n_out = 3: records 4 and 6 are bad
    rig = Rig((5, 4, 3), 2, n_train=6, n_test=2, seed=8, labels=labels)
    out = rig.run([("start", 2, 1, 8), ("evaluate",), ("regs", {"n_train": 4, "n_test": 4}),
                   ("start", 1, 1, 8), ("evaluate",)])
    assert [st["error"] for st in out["status"] if st] == [2, 2, 0, 2]


@pytest.mark.parametrize("lanes,seed", [(1, 11), (2, 12)])
def test_stop_anywhere_and_resume_exactly(lanes, seed):
    """STOP at random cycles of a 3-epoch run (any phase, epoch boundaries included); each
    resume writes epoch_base += epoch, sample_base = sample and STARTs the epochs left: the
    end state is the uninterrupted run's, bit for bit."""
    rig = Rig((6, 4, 3), lanes, n_train=5, n_test=2, seed=seed)
    rng = np.random.default_rng(seed)
    script = [("start", 3, 1, seed, int(rng.integers(50, 2500)))]
    for stop_at in rng.integers(50, 2500, size=3):
        script.append(("resume", 3, 1, seed, int(stop_at)))
    script.append(("resume", 3, 1, seed))
    rig.run(script)
    ref = DeviceTrainer(LNSMLP(rig.cfg, seed), rig.codes, rig.y, rig.max_records,
                        pipelined=False, encoded=True)
    ref.n_train, ref.n_test = rig.n_train, rig.n_test
    ref.start(3, 1, seed)
    for a, b in zip(ref.model.u + ref.model.v, rig.gold.model.u + rig.gold.model.v):
        np.testing.assert_array_equal(a, b)
    assert rig.gold.steps == ref.steps == 15


def test_bad_parameters():
    with pytest.raises(ValueError, match="lanes"):
        Engine(MLPConfig(sizes=(4, 3, 2)), lanes=3)
    with pytest.raises(ValueError, match="lanes"):
        Engine(MLPConfig(sizes=(4, 3, 2)), lanes=128)
    with pytest.raises(ValueError, match="max_records"):
        Engine(MLPConfig(), max_records=5000)
    with pytest.raises(ValueError, match="conv_pipeline"):
        Engine(MLPConfig(sizes=(4, 2)), conv_pipeline=5)
    with pytest.raises(ValueError, match="mac_pipeline"):
        Engine(MLPConfig(sizes=(4, 2)), lanes=2, mac_pipeline=4)
    with pytest.raises(ValueError, match="update_pipeline"):
        Engine(MLPConfig(sizes=(4, 2)), update_pipeline=8)
    with pytest.raises(ValueError, match="read_reg"):
        Engine(MLPConfig(sizes=(4, 2)), read_reg=2)
    with pytest.raises(ValueError, match="softmax"):
        Engine(MLPConfig(sizes=(4, 2)), softmax="fast")
    with pytest.raises(ValueError, match="fmt.bits"):
        Engine(MLPConfig(sizes=(4, 2), fmt=LNSFormat(10, 3)))
