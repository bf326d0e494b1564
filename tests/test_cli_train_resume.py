"""``lnsmadam train --checkpoint/--resume`` (golden backend, on a small slice of the digits
so that it is quick): Ctrl-C writes a checkpoint, a resume ends where the uninterrupted run
ends, and bad checkpoints or conflicting options are one clear line."""
import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import lnsmadam.golden.data as gdata
from lnsmadam.cli.main import cli
from lnsmadam.host import session

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.fixture
def small(monkeypatch):
    d = gdata.load_digits_split(0)
    sub = SimpleNamespace(x_train=d.x_train[:40], y_train=d.y_train[:40],
                          x_test=d.x_test[:12], y_test=d.y_test[:12], seed=d.seed)
    monkeypatch.setattr(gdata, "load_digits_split", lambda seed=0: sub)
    return sub


def _train(*args):
    return CliRunner().invoke(cli, ["train", "--backend", "golden", "--baseline", "none",
                                    "--no-progress", "--hidden", "6", "--seed", "4"] + list(args))


def test_ctrl_c_checkpoint_then_resume_matches_the_whole_run(small, tmp_path, monkeypatch):
    whole = _train("--epochs", "3", "--json", str(tmp_path / "whole.json"))
    assert whole.exit_code == 0, whole.output
    orig = session.train

    def interrupted(dev, data, *a, progress=None, **kw):
        seen = [0]

        def p(n):
            progress(n)
            seen[0] += n
            if seen[0] >= 57:
                raise KeyboardInterrupt
        return orig(dev, data, *a, progress=p, **kw)

    ck = tmp_path / "run.npz"
    monkeypatch.setattr(session, "train", interrupted)
    res = _train("--epochs", "3", "--checkpoint", str(ck))
    assert res.exit_code == 130 and "continue with `lnsmadam train --resume" in res.output
    monkeypatch.setattr(session, "train", orig)
    res = CliRunner().invoke(cli, ["train", "--backend", "golden", "--baseline", "none",
                                   "--no-progress", "--resume", str(ck),
                                   "--json", str(tmp_path / "resumed.json")])
    assert res.exit_code == 0, res.output
    assert "resuming" in res.output and "epoch 2, sample" in res.output
    a = json.loads((tmp_path / "whole.json").read_text())["runs"]["lns-madam"]
    b = json.loads((tmp_path / "resumed.json").read_text())["runs"]["lns-madam"]
    assert a["history"] == b["history"] and b["steps"] == 3 * 40


def test_resume_refusals(small, tmp_path):
    ck = tmp_path / "c.npz"
    assert _train("--epochs", "2", "--checkpoint", str(ck)).exit_code == 0
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    cases = [(["--resume", str(tmp_path / "none.npz")], "does not exist"),
             (["--resume", str(tmp_path / "junk.npz")], "is corrupt"),
             (["--resume", str(ck), "--hidden", "7"], "--hidden 7 conflicts with the "
                                                      "checkpoint's sizes = (64, 6, 10)"),
             (["--resume", str(ck), "--lanes", "2"], "--lanes (lanes = 2) conflicts with the "
                                                     "checkpoint's lanes = 1"),
             (["--resume", str(ck), "--seed", "5"], "--seed 5 conflicts with the "
                                                    "checkpoint's 4"),
             (["--resume", str(ck), "--mode", "pipelined"], "--mode pipelined conflicts"),
             (["--resume", str(ck), "--epochs", "1"], "at least the checkpoint's 2 epochs "
                                                      "done, got 1"),
             (["--checkpoint", str(tmp_path)], "--checkpoint"),
             (["--sim", "--resume", str(ck)], "another configuration")]
    for args, needle in cases:
        res = CliRunner().invoke(cli, ["train", "--no-progress"] + args)
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output and "Traceback" not in res.output, (args, res.output)


def test_golden_pipelined_mode(small, tmp_path):
    res = _train("--epochs", "1", "--mode", "pipelined", "--json", str(tmp_path / "p.json"))
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "p.json").read_text())["mode"] == "pipelined"
