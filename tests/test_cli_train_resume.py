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
             (["--resume", str(ck), "--epochs", "1"], "more than the checkpoint's 2 epochs "
                                                      "done, got 1: nothing to do"),
             (["--resume", str(ck), "--epochs", "2"], "more than the checkpoint's 2 epochs "
                                                      "done, got 2: nothing to do"),
             (["--resume", str(ck)], "--resume: the checkpoint's run has done all its 2 "
                                     "epochs: nothing to do; give --epochs"),
             (["--resume", str(ck), "--epochs", "3", "--baseline", "adam"],
              "--baseline adam conflicts with the checkpoint's --baseline none"),
             (["--resume", str(ck), "--epochs", "3", "--baseline-lr", "0.5"],
              "--baseline-lr 0.5 conflicts with the checkpoint's --baseline none"),
             (["--resume", str(ck), "--epochs", "3", "--json", str(ck)],
              "--json names the --resume checkpoint"),
             (["--checkpoint", str(tmp_path)], "--checkpoint"),
             (["--sim", "--resume", str(ck)], "--resume: the checkpoint was written by "
                                              "--backend golden, not --backend sim: resume it "
                                              "with --backend golden")]
    for args, needle in cases:
        res = CliRunner().invoke(cli, ["train", "--no-progress"] + args)
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output and "Traceback" not in res.output, (args, res.output)


def test_golden_pipelined_mode(small, tmp_path):
    res = _train("--epochs", "1", "--mode", "pipelined", "--json", str(tmp_path / "p.json"))
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "p.json").read_text())["mode"] == "pipelined"


def test_outputs_never_replace_each_other_or_a_file(small, tmp_path):
    """--json, --plot and --checkpoint on one file are refused, and --checkpoint never
    overwrites a user's file or another run's checkpoint (fuzz 22, 23); nothing is written."""
    ck, other = tmp_path / "c.npz", tmp_path / "other.npz"
    assert _train("--epochs", "1", "--checkpoint", str(other)).exit_code == 0
    mine = tmp_path / "precious.txt"
    mine.write_text("my precious data\n")
    before = other.read_bytes()
    cases = [(["--json", str(ck), "--checkpoint", str(tmp_path / "." / "c.npz")],
              "--json and --checkpoint name the same file"),
             (["--plot", str(ck.with_suffix(".png")), "--checkpoint",
               str(ck.with_suffix(".png"))], "--plot and --checkpoint name the same file"),
             (["--checkpoint", str(mine)], f"--checkpoint: {mine} exists and is not an "
                                          "lnsmadam checkpoint"),
             (["--checkpoint", str(other)], f"--checkpoint: {other} holds the checkpoint of "
                                           f"another run: continue that run with --resume"),
             (["--resume", str(other), "--epochs", "2", "--checkpoint", str(mine)],
              "is not an lnsmadam checkpoint")]
    for args, needle in cases:
        res = _train("--epochs", "1", *args)
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output and "Traceback" not in res.output, (args, res.output)
    assert mine.read_text() == "my precious data\n" and other.read_bytes() == before
    assert not ck.exists() and not ck.with_suffix(".png").exists()


def test_plain_resume_takes_backend_and_baseline_from_the_checkpoint(small, tmp_path):
    """A golden checkpoint resumes on golden without --backend, its --baseline none stays
    none, and --checkpoint may overwrite the checkpoint being resumed (fuzz 28); an older
    checkpoint that does not record the backend is recognised by its configuration."""
    from lnsmadam.host.checkpoint import Checkpoint

    ck = tmp_path / "c.npz"
    assert _train("--epochs", "1", "--checkpoint", str(ck)).exit_code == 0
    res = CliRunner().invoke(cli, ["train", "--no-progress", "--resume", str(ck), "--epochs",
                                   "2", "--checkpoint", str(ck), "--json",
                                   str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "golden device" in res.output
    assert list(json.loads((tmp_path / "r.json").read_text())["runs"]) == ["lns-madam"]
    c = Checkpoint.load(ck)
    assert c.position.epochs_done == 2 and c.position.run["baseline"] == "none"
    del c.position.run["backend"]                     # as written before it was recorded
    c.save(ck)
    res = CliRunner().invoke(cli, ["train", "--no-progress", "--resume", str(ck), "--epochs",
                                   "3"])
    assert res.exit_code == 0 and "golden device" in res.output, res.output
