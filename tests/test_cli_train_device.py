"""``lnsmadam train --sim`` / ``--board``: a short twin run and bad host input."""

import json

import pytest
from click.testing import CliRunner

from lnsmadam.cli.main import cli


def test_sim_run_is_bit_exact_and_writes_json(tmp_path):
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
    assert 2000 < dev["cycles"] / 1437 < 3790      # below the lane-bound ideal of 64-16-10
    assert out["device"]["identify"]["protocol"] == 1
    assert png.read_bytes()[:4] == b"\x89PNG"


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
