"""The training engine in the Amaranth simulator, bit-exact against golden/mlp.py.

Small MLPs (a few samples each) so that every pass kind -- UF_0, F_l, the softmax error, BU_l
and the drain U_0 -- and the run control run in seconds at 1, 2 and 4 lanes; the digits MLP
runs on the Verilator twin (tests/test_twin_training.py).
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mlp import LNSMLP, MLPConfig
from lnsmadam.golden.trainer import DeviceTrainer
from lnsmadam.host import image
from lnsmadam.hw.engine.engine import Engine


class BusDriver:
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
        while True:
            await ctx.tick()
            if ctx.get(bus.cmd_ready):
                break
        ctx.set(bus.cmd_valid, 0)
        # the link may change the address while it waits for the response
        ctx.set(bus.cmd_addr, 0x5A5A & ((1 << len(bus.cmd_addr)) - 1))
        while not ctx.get(bus.rsp_valid):
            await ctx.tick()
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

    async def wait_idle(self, limit=200_000):
        ctx = self.ctx
        await ctx.tick()
        for _ in range(limit):
            if ctx.get(self.dut.ctl.state) == 0:
                return
            await ctx.tick()
        raise AssertionError("engine did not finish")


def _data(n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, size=(n, n_in)) / 16.0
    y = rng.integers(0, n_out, size=n)
    return x, y


def run_case(sizes, lanes, n_train, n_test, seed, epochs=1, lr_step=1, fmt=None, **hw):
    cfg = MLPConfig(sizes=sizes) if fmt is None else MLPConfig(sizes=sizes, fmt=fmt)
    model = LNSMLP(cfg, seed)
    x, y = _data(n_train + n_test, sizes[0], sizes[-1], seed + 100)
    codes = np.array([model.input_codes(xi).codes[:-1] for xi in x])
    dut = Engine(cfg, lanes=lanes, max_records=n_train + n_test + 1, **hw)
    img = image.model_image(model, lanes)
    words = image.pack_dataset(codes, y)
    out = {}

    async def tb(ctx):
        bd = BusDriver(ctx, dut)
        await bd.write_words("regs", [n_train, n_test, 0])
        for adr, val in image.layer_regs(model).items():
            await bd.access("regs", adr, val)
        await bd.write_words("data", words)
        for name, w in img.items():
            await bd.write_words(name, w)
        out["train_correct"] = []
        for ep in range(epochs):
            await bd.access("regs", image.REGS["epoch_base"], ep)
            await bd.pulse("start", epochs=1, lr_step=lr_step, seed=seed)
            await bd.wait_idle()
            out["train_correct"].append(ctx.get(dut.ctl.last_correct))
            assert ctx.get(dut.ctl.error) == 0
        await bd.pulse("evaluate")
        await bd.wait_idle()
        out["eval_correct"] = ctx.get(dut.ctl.last_correct)
        out["steps"] = ctx.get(dut.ctl.steps)
        out["img"] = {name: await bd.read_words(name, len(w)) for name, w in img.items()}

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()

    gm = LNSMLP(cfg, seed)
    ref = DeviceTrainer(gm, x, y, max_records=n_train + n_test + 1)
    ref.n_train, ref.n_test = n_train, n_test
    gcorrect = []
    for ep in range(epochs):
        ref.epoch_base = ep
        gcorrect += ref.start(1, lr_step, seed)
    want = image.model_image(gm, lanes)
    for name in want:
        np.testing.assert_array_equal(out["img"][name], want[name], err_msg=name)
    assert out["train_correct"] == gcorrect
    assert out["eval_correct"] == ref.evaluate()
    assert out["steps"] == ref.steps == epochs * n_train
    return out


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


def test_lr_step_and_two_epochs_at_four_lanes():
    run_case((6, 8, 3), 4, n_train=3, n_test=2, seed=3, epochs=2, lr_step=3)


def test_fewest_pipeline_stages():
    """No optional register anywhere: the schedule follows the shorter latencies."""
    run_case((6, 4, 3), 2, n_train=3, n_test=2, seed=5, read_reg=0, conv_pipeline=0,
             mac_pipeline=0, update_pipeline=0)


def test_most_pipeline_stages():
    run_case((5, 3, 2), 4, n_train=2, n_test=2, seed=6, read_reg=1, conv_pipeline=4,
             mac_pipeline=4, update_pipeline=6)


def test_small_format():
    run_case((4, 3, 2), 1, n_train=3, n_test=2, seed=4, fmt=LNSFormat.from_gamma(6, 4))


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
        Engine(MLPConfig(sizes=(4, 2)), update_pipeline=7)
    with pytest.raises(ValueError, match="read_reg"):
        Engine(MLPConfig(sizes=(4, 2)), read_reg=2)
    with pytest.raises(ValueError, match="fmt.bits"):
        Engine(MLPConfig(sizes=(4, 2), fmt=LNSFormat(10, 3)))
