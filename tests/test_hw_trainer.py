"""The trainer in the Amaranth simulator, bit-exact against golden/mlp.py.

Small MLPs (a few samples each) so that every phase -- load, forward, requantisation,
softmax error, backward, update, shuffle, evaluation -- runs in seconds; the full digits
MLP over >= 200 samples runs on the Verilator twin (tests/test_twin_training.py).
"""

import gc
import warnings

import numpy as np
import pytest
from amaranth.sim import Simulator

from lnsmadam.golden import image
from lnsmadam.golden.mac import MACConfig
from lnsmadam.golden.mlp import LNSMLP, MLPConfig
from lnsmadam.golden.soc import MAC_OUT_PIPELINE_MAX, UPDATE_PIPELINE_MAX, SoCConfig
from lnsmadam.golden.trainer import DeviceTrainer
from lnsmadam.hw.convert import FromLinear
from lnsmadam.hw.mac import LNSMAC
from lnsmadam.hw.trainer import Trainer
from lnsmadam.hw.update import MadamUpdate


class BusDriver:
    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut
        self.ids = {name: rid for rid, name, _, _ in dut.cfg.regions()}

    async def access(self, region, addr, wdata=None):
        ctx, bus = self.ctx, self.dut.bus
        ctx.set(bus.cmd_valid, 1)
        ctx.set(bus.cmd_write, wdata is not None)
        ctx.set(bus.cmd_region, self.ids[region] if isinstance(region, str) else region)
        ctx.set(bus.cmd_addr, addr)
        ctx.set(bus.cmd_wdata, 0 if wdata is None else int(wdata))
        while True:
            await ctx.tick()
            if ctx.get(bus.cmd_ready):
                break
        ctx.set(bus.cmd_valid, 0)
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
        # the arguments are valid in the pulse cycle only (the link reuses the registers)
        for k in fields:
            ctx.set(getattr(ctl, k), 0)

    async def wait_idle(self, limit=2_000_000):
        ctx = self.ctx
        await ctx.tick()
        for _ in range(limit):
            if ctx.get(self.dut.ctl.state) == 0:
                return
            await ctx.tick()
        raise AssertionError("trainer did not finish")


def _data(n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, size=(n, n_in)) / 16.0
    y = rng.integers(0, n_out, size=n)
    return x, y


def run_case(sizes, lanes, n_train, n_test, seed, epochs=1, lr_step=1, **soc):
    soc_cfg = SoCConfig(sizes=sizes, lanes=lanes, n_records=n_train + n_test + 1, **soc)
    cfg = soc_cfg.mlp_config()
    model = LNSMLP(cfg, seed)
    x, y = _data(n_train + n_test, sizes[0], sizes[-1], seed + 100)
    codes = np.array([model.input_codes(xi).codes[:-1] for xi in x])
    dut = Trainer(soc_cfg)
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
        out["regs"] = await bd.read_words("regs", image.regs_depth(len(sizes) - 1))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()

    # golden: the same records, registers and commands
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


def test_three_layers_two_lanes():
    run_case((5, 4, 3, 3), 2, n_train=3, n_test=2, seed=2)


def test_one_layer_four_lanes_lr3():
    run_case((7, 3), 4, n_train=3, n_test=2, seed=3, lr_step=3)


def test_fewest_pipeline_stages():
    """The iCE40-sized knobs: no optional register in the MAC's converter or the update
    engine, one before the accumulator; the sequencer follows the shorter latencies."""
    run_case((6, 4, 3), 2, n_train=3, n_test=2, seed=5, mac_pipeline=1, mac_out_pipeline=0,
             update_pipeline=0)


def test_most_pipeline_stages():
    run_case((5, 3, 2), 4, n_train=2, n_test=2, seed=6, mac_pipeline=4, mac_out_pipeline=4,
             update_pipeline=6)


def test_small_format():
    run_case((4, 3, 2), 1, n_train=3, n_test=2, seed=4, bits=6, gamma=4)


def test_bad_config():
    """The configuration checks itself (tests/test_golden_soc.py); the trainer only needs
    one, and a refusal leaves no UnusedElaboratable warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="cfg must be a SoCConfig"):
            Trainer(MLPConfig(sizes=(4, 2)))
        gc.collect()
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
def test_config_limits_are_the_units(lanes):
    """SoCConfig's pipeline ranges (pure Python) are those the MAC and the update engine
    accept."""
    cfg = SoCConfig(lanes=lanes)
    most = 2 + (lanes - 1).bit_length()
    mac = LNSMAC(MACConfig(cfg.mlp_config().fmt, lanes=lanes))
    mac._MustUse__silence = True          # only its parameters are looked at
    assert len(mac.cut_order) == most
    with pytest.raises(ValueError, match="mac_pipeline"):
        SoCConfig(lanes=lanes, mac_pipeline=most + 1)
    assert MAC_OUT_PIPELINE_MAX == len(FromLinear.CUTS)
    assert UPDATE_PIPELINE_MAX == len(MadamUpdate.CUT_ORDER)
