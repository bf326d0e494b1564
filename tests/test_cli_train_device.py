"""``lnsmadam train --sim`` / ``--board``: a short twin run and bad host input."""

import json

import pytest
from click.testing import CliRunner

from lnsmadam.cli.main import cli


def test_sim_run_is_bit_exact_and_writes_json(tmp_path, monkeypatch):
    from lnsmadam.hw.engine.engine import Engine

    built, init = [], Engine.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "__init__", counting)
    from lnsmadam.sim import twin

    cached, real_verilog = [], twin.soc_verilog

    def recording(cfg, build_root=None):
        cached.append(twin.soc_verilog_path(cfg, build_root).exists())
        return real_verilog(cfg, build_root)

    monkeypatch.setattr(twin, "soc_verilog", recording)
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    res = CliRunner().invoke(cli, ["train", "--sim", "--epochs", "1", "--seed", "2",
                                   "--baseline", "none", "--json", str(js), "--plot", str(png),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "bit-exact with the golden model (weights, state, every epoch's accuracy): yes" \
        in res.output
    out = json.loads(js.read_text())
    assert out["backend"] == "sim" and all(out["bit_exact"].values())
    dev, gold = out["runs"]["device"], out["runs"]["lns-madam"]
    assert dev["history"] == gold["history"] and dev["final_test_acc"] > 0.6
    # the fused engine at 1 lane: at least the 1,380 weight visits of a 64-16-10 sample,
    # and within 1.5x of them
    assert 1380 <= dev["cycles"] / 1437 < 1.5 * 1380
    assert out["device"]["identify"]["protocol"] == 1
    # the effective configuration: the MAC the device ran, and the whole SoC config
    assert out["lns_config"]["mac"]["lanes"] == out["device"]["identify"]["config"]["lanes"]
    assert out["device_config"]["sizes"] == [64, 16, 10] and out["device_config"]["lanes"] == 1
    assert png.read_bytes()[:4] == b"\x89PNG"
    # the generator's, unless the twin's Verilog cache held the design; the configuration
    # checks itself without building an engine
    assert len(cached) == 1 and len(built) == (0 if cached[0] else 1)


@pytest.mark.parametrize("args, needle, code", [
    (["--board", "nosuch"], "unknown board", 2),
    (["--board", "icebreaker", "--port", "/dev/does-not-exist"], "/dev/does-not-exist", 1),
    (["--sim", "--bias-correction"], "seeding mode", 2),
    (["--sim", "--backend", "golden"], "--sim", 2),
    (["--backend", "board"], "--board", 2),
    (["--sim", "--lanes", "3"], "lanes", 2),
    (["--board", "icebreaker", "--port", "/dev/none", "--lanes", "2"], "/dev/none", 1),
    (["--sim", "--port", "/dev/ttyUSB1"], "--port has no effect without --board", 2),
])
def test_bad_host_input_is_one_clear_line(args, needle, code):
    res = CliRunner().invoke(cli, ["train", "--epochs", "1", "--no-progress"] + args)
    assert res.exit_code == code, res.output
    assert needle in res.output
    assert "Traceback" not in res.output


def test_board_fields_must_match_the_device():
    """On a board the config options describe the design it was built with: fields left
    out come from the device, fields given must match it (one line naming the option)."""
    import click

    from lnsmadam.cli.options import ConfigValues
    from lnsmadam.cli.train import _device_config
    from lnsmadam.golden.soc import SoCConfig

    # the identify JSON a device built with this config answers with (golden owns it)
    ident = SoCConfig(sizes=(64, 32, 10), lanes=2, clk_freq=24e6).identify_json()
    cv = ConfigValues()
    assert _device_config(ident, cv) == SoCConfig(sizes=(64, 32, 10), lanes=2, clk_freq=24e6)
    cv.values, cv.source = {"lanes": 2, "clk_freq": 24e6}, {"lanes": "--lanes",
                                                          "clk_freq": "--clk-freq"}
    assert _device_config(ident, cv).lanes == 2
    cv.values, cv.source = {"lanes": 4}, {"lanes": "--lanes"}
    with pytest.raises(click.ClickException, match=r"the board's design has lanes = 2, the "
                                                   r"run asks for 4 \(--lanes\)"):
        _device_config(ident, cv)
    cv.values, cv.source = {"sizes": (64, 16, 10)}, {"sizes": "--hidden"}
    with pytest.raises(click.ClickException, match=r"sizes = \[64, 32, 10\], the run asks "
                                                   r"for \[64, 16, 10\] \(--hidden\)"):
        _device_config(ident, cv)


def test_board_built_for_other_sizes_cannot_train_the_digits():
    """A board's design (read from the board) must have the digits' 64 inputs and 10
    outputs (fuzz 24): one line naming the sizes and how to build it."""
    import click

    from lnsmadam.cli.train import _check_board_sizes

    _check_board_sizes((64, 16, 10))
    _check_board_sizes((64, 32, 32, 10))
    for sizes in ((63, 16, 10), (64, 16, 11)):
        with pytest.raises(click.ClickException, match=r"the board's design has sizes = "
                                                       r"\[6.*: the 8x8 digits need an input "
                                                       r"width of 64 and an output width of "
                                                       r"10; build it with --sizes 64,...,10"):
            _check_board_sizes(sizes)
