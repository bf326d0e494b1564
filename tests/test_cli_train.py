"""``lnsmadam train --backend golden``: outputs, JSON contents, bad input."""

import json

import pytest
from click.testing import CliRunner

from lnsmadam.cli.main import cli


def test_train_writes_json_and_plot(tmp_path):
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    res = CliRunner().invoke(cli, ["train", "--backend", "golden", "--epochs", "2", "--hidden", "8", "--seed", "1",
                                   "--baseline", "sgd", "--json", str(js), "--plot", str(png),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "final test accuracy" in res.output
    out = json.loads(js.read_text())
    assert set(out["runs"]) == {"lns-madam", "sgd"}
    for name, r in out["runs"].items():
        assert [m["epoch"] for m in r["history"]] == [1, 2]
        assert 0.5 < r["final_test_acc"] <= 1.0, name
    assert out["lns_config"]["sizes"] == [64, 8, 10]
    assert out["lns_config"]["bits"] == 8 and out["lns_config"]["gamma"] == 8
    assert out["dataset"]["train"] == 1437 and out["seed"] == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_other_format_and_no_baseline(tmp_path):
    js = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["train", "--backend", "golden", "--epochs", "1", "--bits", "6", "--gamma", "4",
                                   "--p-scale", "12", "--lr-step", "2", "--baseline", "none",
                                   "--bias-correction",
                                   "--json", str(js)])
    assert res.exit_code == 0, res.output
    out = json.loads(js.read_text())
    assert list(out["runs"]) == ["lns-madam"]
    assert out["lns_config"]["gamma"] == 4 and out["lns_config"]["lr_step"] == 2
    assert out["lns_config"]["p_scale"] == 12 and out["lns_config"]["bias_correction"]


def test_train_deep_sizes(tmp_path):
    js = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["train", "--backend", "golden", "--epochs", "1",
                                   "--sizes", "64-8-8-8-10", "--baseline", "adam",
                                   "--json", str(js), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "digits MLP 64-8-8-8-10" in res.output
    out = json.loads(js.read_text())
    assert out["lns_config"]["sizes"] == [64, 8, 8, 8, 10]
    assert out["runs"]["adam"]["config"]["sizes"] == [64, 8, 8, 8, 10]


@pytest.mark.parametrize("args, needle", [
    (["--gamma", "6"], "power of two"),
    (["--bits", "4", "--gamma", "8"], "gamma must be in [1, 4]"),
    (["--bits", "2"], "--bits"),
    (["--epochs", "0"], "--epochs"),
    (["--p-scale", "0"], "--p-scale"),
    (["--baseline", "rmsprop"], "--baseline"),
    (["--backend", "fpga"], "--backend"),
    # golden checks what a device checks; the digits fix the ends of --sizes (fuzz 24-27)
    (["--backend", "golden", "--bits", "17"], "--bits must be in [3, 16], got 17"),
    (["--backend", "golden", "--lanes", "3"], "--lanes must be a power of two in 1..64"),
    (["--backend", "golden", "--set", "lanes=128"], "--set lanes must be in [1, 64]"),
    (["--backend", "golden", "--sizes", "64,16,11"], "--sizes: the 8x8 digits need an input "
                                                     "width of 64 and an output width of 10"),
    (["--backend", "golden", "--sizes", "63-16-10"], "got 63,16,10"),
    (["--backend", "golden", "--baseline-lr", "inf"], "--baseline-lr must be a finite number "
                                                      "> 0, got inf"),
    (["--board", "icebreaker", "--port", " "], "--port must not be empty"),
])
def test_bad_input_is_one_clear_error(args, needle):
    res = CliRunner().invoke(cli, ["train"] + args)
    assert res.exit_code == 2, res.output
    assert needle in res.output, res.output
    assert "digits MLP" not in res.output           # refused before the run's header
    assert "Traceback" not in res.output


def test_config_file_set_and_effective_config(tmp_path):
    """--config FILE and --set, one definition with build's; the JSON records the effective
    configuration (the MAC lanes too); a device-only field from the file is warned about."""
    cfg = tmp_path / "soc.toml"
    cfg.write_text("sizes = [64, 8, 10]\nlr_step = 3\nclk_freq = 12e6\n")
    js = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["train", "--backend", "golden", "--epochs", "1",
                                   "--baseline", "none", "--config", str(cfg), "--set",
                                   "lr_step=2", "--lanes", "2", "--json", str(js),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert f"warning: clk_freq in {cfg}: not used by --backend golden" in res.output
    out = json.loads(js.read_text())["lns_config"]
    assert out["sizes"] == [64, 8, 10] and out["lr_step"] == 2 and out["mac"]["lanes"] == 2
