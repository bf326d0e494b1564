# amaranth: UnusedElaboratable=no
"""Bad input, by class, through the command line (click's CliRunner) and the Python API.

Every case must give exit status 2 (usage) or 1 and exactly one ``error:`` line that names
the parameter or option (and its allowed range where it has one), no traceback, and must
write nothing: each command runs in an empty directory that is checked afterwards. The
classes are the ones a fuzzer found (issue 14): wrong values blamed on the wrong option,
Verilog keywords as module names, malformed ``--sizes``, conflicting options, options the
chosen backend or direction would ignore, output paths that fail only after the work,
malformed ``--set``/``--config``, and wrong types or shapes given to the Python API.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

from lnsmadam.cli.main import cli

# (args, exit code, text the one error line must contain)
CLI_CASES = {
    # values out of range blame their own option and state the range
    "mac lanes -1": (["generate", "mac", "--lanes", "-1", "-o", "x"], 2,
                     "--lanes must be in [1, 256], got -1"),
    "mac window": (["generate", "mac", "--window", "40", "-o", "x"], 2,
                   "--window must be in [1, 32], got 40"),
    "mac mid-bits": (["generate", "mac", "--mid-bits", "2", "-o", "x"], 2,
                     "--mid-bits must be in [4, 40], got 2"),
    "int8 lanes": (["generate", "int8-mac", "--lanes", "-3", "-o", "x"], 2,
                   "--lanes must be in [1, 256], got -3"),
    "mul shift +": (["generate", "mul", "--shift", "1000", "-o", "x"], 2,
                    "--shift must be in [-125, 253], got 1000"),
    "mul shift -": (["generate", "mul", "--shift", "-1000", "-o", "x"], 2,
                    "--shift must be in [-125, 253], got -1000"),
    "update gamma": (["generate", "update", "--gamma", "3", "-o", "x"], 2,
                     "--gamma must be a power of two"),
    "update gamma cap": (["generate", "update", "--bits", "24", "--gamma", "8192", "-o",
                          "x"], 2, "--gamma must be in [1, 4096], got 8192"),
    "fp8 window": (["generate", "fp8-mac", "--window", "0", "-o", "x"], 2,
                   "--window must be in [1, 36], got 0"),
    "fp8 window e5m2": (["generate", "fp8-mac", "--a-format", "e5m2", "--b-format", "e5m2",
                         "--window", "65", "-o", "x"], 2, "--window must be in [1, 57] for "
                                                          "e5m2 x e5m2"),
    # a joint limit blames the option that broke it, with a non-empty range (fuzz 13, 17)
    "asic fp8 window 64": (["asic", "fp8-mac", "--a-format", "e5m2", "--b-format", "e5m2",
                            "--window", "64", "-o", "x"], 2,
                           "--window must be in [1, 57] for e5m2 x e5m2"),
    "to-linear window": (["generate", "convert", "--direction", "to-linear", "--bits", "24",
                          "--gamma", "4096", "--lut-frac", "24", "--window", "62", "-o", "x"],
                         2, "--window must be in [1, 38] with --lut-frac 24"),
    "q-lo unreachable": (["generate", "convert", "--direction", "to-linear", "--q-lo",
                          "1073741824", "-o", "x"], 2, "--q-lo must be in [-15, 31]"),
    "lsb-q unreachable": (["generate", "convert", "--direction", "from-linear", "--lsb-q",
                           "-1073741824", "-o", "x"], 2, "--lsb-q must be in [-31, 31]"),
    "bc-bits seeding": (["generate", "update", "--bc-bits", "30", "-o", "x"], 2,
                        "--bc-bits has no effect without --bias-correction"),
    "name empty": (["generate", "mul", "--name", "", "-o", "x"], 2,
                   "--name must be a Verilog identifier"),
    "fp8 acc-bits": (["generate", "fp8-mac", "--acc-bits", "10", "-o", "x"], 2,
                     "--acc-bits must be in [23, 62], got 10"),
    "fp8 lanes": (["generate", "fp8-mac", "--lanes", "300", "-o", "x"], 2,
                  "--lanes must be in [1, 256], got 300"),
    "fp8 pipeline": (["generate", "fp8-mac", "--lanes", "4", "--pipeline", "5", "-o", "x"], 2,
                     "--pipeline must be in [1, 4], got 5"),
    "fp8 format": (["generate", "fp8-mac", "--a-format", "e3m4", "-o", "x"], 2,
                   "'--a-format'"),
    "fp32 pipeline": (["generate", "fp32-mac", "--pipeline", "3", "-o", "x"], 2,
                      "--pipeline must be in [1, 2], got 3"),
    "fp32 lanes": (["generate", "fp32-mac", "--lanes", "2", "-o", "x"], 2,
                   "No such option '--lanes'"),
    "mac first-cut": (["generate", "mac", "--first-cut", "middle", "-o", "x"], 2,
                      "'--first-cut'"),
    "build lanes": (["build", "--lanes", "3"], 2, "--lanes must be a power of two in 1..64"),
    "build clk": (["build", "--clk-freq", "0"], 2, "--clk-freq must be a finite number in "
                                                   "[0.001, 1000] MHz"),
    "train hidden": (["train", "--backend", "golden", "--hidden", "0"], 2,
                     "--hidden must be in [1, 4096], got 0"),
    "train epochs": (["train", "--epochs", "0"], 2, "'--epochs': 0 is not in the range"),
    "sim lanes": (["train", "--sim", "--lanes", "3"], 2, "--lanes must be a power of two"),
    "sim bits": (["train", "--sim", "--bits", "12"], 2, "--bits must be in [3, 8], got 12"),
    # module names
    "name keyword": (["generate", "mac", "--name", "module", "-o", "x"], 2,
                     "--name must not be a Verilog/SystemVerilog keyword, got 'module'"),
    "name sv keyword": (["generate", "mul", "--name", "logic", "-o", "x"], 2,
                        "--name must not be a Verilog/SystemVerilog keyword"),
    "name digit": (["generate", "mac", "--name", "9x", "-o", "x"], 2,
                   "--name must be a Verilog identifier"),
    "name dash": (["generate", "update", "--name", "a-b", "-o", "x"], 2,
                  "--name must be a Verilog identifier"),
    "name long": (["generate", "mul", "--name", "n" * 129, "-o", "x"], 2,
                  "at most 128 characters"),
    "name fp8 keyword": (["generate", "fp8-mac", "--name", "wire", "-o", "x"], 2,
                         "--name must not be a Verilog/SystemVerilog keyword, got 'wire'"),
    "name fp32": (["generate", "fp32-mac", "--name", "fp32 mac", "-o", "x"], 2,
                  "--name must be a Verilog identifier"),
    # --sizes
    "sizes negative": (["build", "--sizes", "64,-16,10"], 2, "--sizes must be two or more"),
    "sizes empty": (["train", "--backend", "golden", "--sizes", "64,,10"], 2,
                    "--sizes must be two or more"),
    "sizes one": (["build", "--sizes", "64"], 2, "--sizes must be two or more"),
    "sizes mixed": (["build", "--sizes", "64,16-10"], 2, "--sizes must be two or more"),
    "sizes zero": (["train", "--backend", "golden", "--sizes", "64-0-10"], 2,
                   "--sizes widths must be >= 1"),
    "sizes too wide": (["build", "--sizes", "64,2000,10"], 2,
                       "--sizes (entry 1) must be in [1, 1024], got 2000"),
    # conflicts
    "hidden+sizes": (["build", "--hidden", "8", "--sizes", "64,8,10"], 2,
                     "--hidden conflicts with --sizes"),
    "lanes+set": (["train", "--sim", "--lanes", "2", "--set", "lanes=4"], 2,
                  "--lanes conflicts with --set lanes"),
    "hidden+set sizes": (["build", "--hidden", "8", "--set", "sizes=64,8,10"], 2,
                         "--hidden conflicts with --set sizes"),
    "set twice": (["build", "--set", "lanes=2", "--set", "lanes=4"], 2,
                  "--set lanes is given twice"),
    "set malformed": (["build", "--set", "lanes"], 2, "--set must be KEY=VALUE"),
    "set type": (["build", "--set", "lanes=two"], 2,
                 "--set lanes must be an integer, got 'two'"),
    "set unknown": (["build", "--set", "speed=9"], 2, "unknown config option(s) speed"),
    "sim before": (["train", "--sim", "--backend", "golden"], 2, "--sim"),
    # options the backend or direction would not use
    "golden records": (["train", "--backend", "golden", "--records", "100"], 2,
                       "--records has no effect with --backend golden"),
    "golden clk": (["train", "--backend", "golden", "--clk-freq", "20"], 2,
                   "--clk-freq has no effect with --backend golden"),
    "golden set pipe": (["train", "--backend", "golden", "--set", "mac_pipeline=1"], 2,
                        "--set mac_pipeline has no effect with --backend golden"),
    "port no board": (["train", "--backend", "golden", "--port", "/dev/ttyUSB1"], 2,
                      "--port has no effect without --board"),
    "sim port": (["train", "--sim", "--port", "/dev/ttyUSB1"], 2,
                 "--port has no effect without --board"),
    "baseline-lr": (["train", "--backend", "golden", "--baseline", "none", "--baseline-lr",
                     "0.1"], 2, "--baseline-lr has no effect with --baseline none"),
    "sim bias corr": (["train", "--sim", "--bias-correction"], 2, "seeding mode only"),
    # train: what golden checks as a device does, the digits' widths, empty values (fuzz
    # 24-27, 29)
    "golden lanes 3": (["train", "--backend", "golden", "--lanes", "3"], 2,
                       "--lanes must be a power of two in 1..64, got 3"),
    "golden lanes 128": (["train", "--backend", "golden", "--lanes", "128"], 2,
                         "--lanes must be in [1, 64], got 128"),
    "golden set lanes": (["train", "--backend", "golden", "--set", "lanes=3"], 2,
                         "--set lanes must be a power of two in 1..64, got 3"),
    "golden bits 17": (["train", "--backend", "golden", "--bits", "17"], 2,
                       "--bits must be in [3, 16], got 17"),
    "digits input": (["train", "--backend", "golden", "--sizes", "63,16,10"], 2,
                     "--sizes: the 8x8 digits need an input width of 64 and an output width "
                     "of 10 (64,...,10), got 63,16,10"),
    "digits output": (["train", "--backend", "golden", "--sizes", "64,16,9"], 2,
                      "--sizes: the 8x8 digits need an input width of 64"),
    "digits output 11": (["train", "--sim", "--set", "sizes=64,16,11"], 2,
                         "--set sizes: the 8x8 digits need"),
    "baseline-lr nan": (["train", "--backend", "golden", "--baseline-lr", "nan"], 2,
                        "--baseline-lr must be a finite number > 0, got nan"),
    "baseline-lr inf": (["train", "--backend", "golden", "--baseline-lr", "inf"], 2,
                        "--baseline-lr must be a finite number > 0, got inf"),
    "port empty": (["train", "--board", "icebreaker", "--port", ""], 2,
                   "--port must not be empty"),
    # train: outputs on one file, --checkpoint over a user's file (fuzz 22, 23)
    "json = checkpoint": (["train", "--backend", "golden", "--json", "same",
                           "--checkpoint", "./adir/../same"], 2,
                          "--json and --checkpoint name the same file"),
    "json = plot": (["train", "--backend", "golden", "--json", "x.png", "--plot", "x.png"], 2,
                    "--json and --plot name the same file (x.png)"),
    "checkpoint user file": (["train", "--backend", "golden", "--checkpoint", "afile"], 2,
                             "--checkpoint: afile exists and is not an lnsmadam checkpoint"),
    "to-linear acc": (["generate", "convert", "--direction", "to-linear", "--acc-bits", "40",
                       "-o", "x"], 2, "--acc-bits has no effect with --direction to-linear"),
    "to-linear lsb": (["generate", "convert", "--direction", "to-linear", "--lsb-q", "3",
                       "--mid-bits", "9", "-o", "x"], 2,
                      "--mid-bits, --lsb-q has no effect with --direction to-linear"),
    "from-linear q-lo": (["generate", "convert", "--direction", "from-linear", "--q-lo", "3",
                          "-o", "x"], 2, "--q-lo has no effect with --direction from-linear"),
    "from-linear window": (["generate", "convert", "--direction", "from-linear", "--lsb-q",
                            "-5", "--window", "12", "-o", "x"], 2,
                           "--window has no effect with --direction from-linear and --lsb-q"),
    "weight-underflow": (["generate", "update", "--weight-underflow", "flush", "-o", "x"], 2,
                         "No such option '--weight-underflow'"),
    "mul axis": (["generate", "mul", "--axis", "-o", "x"], 2, "No such option '--axis'"),
    # lnsmadam asic: its own options, the block's, and those that would change nothing
    "asic clock": (["asic", "int8-mac", "--clock-ns", "0", "-o", "x"], 2,
                   "--clock-ns must be in [0.05, 1000], got 0.0"),
    "asic clock nan": (["asic", "int8-mac", "--clock-ns", "nan", "-o", "x"], 2,
                       "--clock-ns must be in [0.05, 1000], got nan"),
    "asic activity": (["asic", "mac", "--activity", "3", "-o", "x"], 2,
                      "--activity must be in [0, 2] transitions per cycle, got 3.0"),
    "asic activity word": (["asic", "mac", "--activity", "often", "-o", "x"], 2,
                           "--activity must be 'training' or a number in [0, 2], got 'often'"),
    "asic streams": (["asic", "mac", "--streams", "100", "-o", "x"], 2,
                     "--streams must be a multiple of 64 in [64, 4096], got 100"),
    "asic cycles": (["asic", "mac", "--cycles", "10", "-o", "x"], 2,
                    "--cycles must be in [32, 100000], got 10"),
    "asic stimulus": (["asic", "mul", "--activity", "training", "-o", "x"], 2,
                      "block 'mul' has no training stimulus"),
    # the block's options come first (the default activity of mul is an assumed one)
    "asic mul bits": (["asic", "mul", "--bits", "2", "-o", "x"], 2,
                      "--bits must be in [3, 24], got 2"),
    "asic to-linear moot": (["asic", "convert", "--direction", "to-linear", "--acc-bits", "3",
                             "-o", "x"], 2, "--acc-bits has no effect with --direction "
                                            "to-linear"),
    "asic mul streams": (["asic", "mul", "--streams", "128", "-o", "x"], 2,
                         "--streams has no effect for block mul (no training stimulus"),
    "asic foreign dir": (["asic", "mul", "--lib", "sky130-area", "-o", "adir"], 2,
                         "--out: adir already holds files that lnsmadam did not write"),
    "asic -o .": (["asic", "int8-mac", "-o", "."], 2,
                  "already holds files that lnsmadam did not write"),
    # lnsmadam prove (fuzz 15, 16)
    "prove timeout inf": (["prove", "int8-mac", "--match", "accumulate", "--timeout", "inf"],
                          2, "--timeout must be a finite number in (0, 86400] s, got inf"),
    "prove timeout huge": (["prove", "int8-mac", "--timeout", "1e300", "--list"], 2,
                           "--timeout must be a finite number in (0, 86400] s"),
    "prove timeout nan": (["prove", "int8-mac", "--timeout", "nan"], 2,
                          "--timeout must be a finite number in (0, 86400] s, got nan"),
    "prove timeout -1": (["prove", "int8-mac", "--timeout", "-1"], 2,
                         "--timeout must be a finite number in (0, 86400] s, got -1.0"),
    "prove timeout 0": (["prove", "shuffle", "--timeout", "0", "--list"], 2,
                        "--timeout must be a finite number in (0, 86400] s, got 0.0"),
    "prove match none": (["prove", "mac", "--match", "zzz", "--json", "p.json"], 2,
                         "--match zzz matches no job of mac (ids: mac.control_b8g8l1a32sp2o3"),
    "prove mac sizes": (["prove", "mac", "--sizes", "abc", "--list"], 2,
                        "--sizes has no effect for mac: leave it out"),
    "prove mac n-out": (["prove", "mac", "--n-out", "0"], 2, "--n-out has no effect for mac"),
    "prove mac records": (["prove", "mac", "--max-records", "0"], 2,
                          "--max-records has no effect for mac"),
    "prove int8 bits": (["prove", "int8-mac", "--bits", "5"], 2,
                        "--bits has no effect for int8-mac"),
    "prove update bits": (["prove", "update", "--bits", "5"], 2,
                          "--bits has no effect for update"),
    "prove link lanes": (["prove", "link", "--lanes", "4"], 2, "--lanes has no effect for link"),
    "prove ci lanes": (["prove", "ci", "--lanes", "4", "--list"], 2,
                       "--lanes has no effect for ci (its jobs are fixed)"),
    "prove softmax n-out": (["prove", "softmax", "--n-out", "0", "--list"], 2,
                            "--n-out must be in [1, 4096], got 0"),
    "prove json under file": (["prove", "shuffle", "--json", "afile/p.json"], 2,
                              "--json: cannot create afile/p.json"),
    "asic lanes": (["asic", "fp8-mac", "--lanes", "0", "-o", "x"], 2,
                   "--lanes must be in [1, 256], got 0"),
    "asic fp32 pipeline": (["asic", "fp32-mac", "--pipeline", "0", "-o", "x"], 2,
                           "--pipeline must be in [1, 2], got 0"),
    "asic lib": (["asic", "mac", "--lib", "tsmc5", "-o", "x"], 2, "'--lib'"),
    "asic area-only": (["asic", "mac", "--lib", "sky130-area", "--activity", "0.1",
                        "--clock-ns", "5", "-o", "x"], 2,
                       "--clock-ns, --activity has no effect with --lib sky130-area (area "
                       "only): leave them out"),
    "asic assumed": (["asic", "mul", "--activity", "0.1", "--streams", "128", "-o", "x"], 2,
                     "--streams has no effect with an assumed --activity: leave it out"),
    "asic to-linear": (["asic", "convert", "--direction", "to-linear", "--acc-bits", "40",
                        "--activity", "0.1", "-o", "x"], 2,
                       "--acc-bits has no effect with --direction to-linear"),
    "asic name": (["asic", "mac", "--name", "m", "-o", "x"], 2, "No such option '--name'"),
    "asic axis": (["asic", "mac", "--axis", "-o", "x"], 2, "No such option '--axis'"),
    # output paths, checked before any work
    "plot suffix": (["train", "--backend", "golden", "--plot", "out.txt"], 2,
                    "--plot must end in one of .png, .pdf"),
    "plot dir": (["train", "--backend", "golden", "--plot", "adir.png"], 2,
                 "'--plot': File 'adir.png' is a directory"),
    "json under file": (["train", "--backend", "golden", "--json", "afile/r.json"], 2,
                        "--json: cannot create afile/r.json: "),
    # os.access says yes to root in /proc: the check must try to create a file there
    "json in /proc": (["train", "--backend", "golden", "--json", "/proc/r.json"], 2,
                      "--json: cannot create /proc/r.json: /proc does not take new files"),
    "build -o in /proc": (["build", "--design", "standin", "-o", "/proc/lnsmadam-build"], 2,
                          "--out: cannot create /proc/lnsmadam-build"),
    "generate -o file": (["generate", "mul", "-o", "afile"], 2, "afile"),
    "asic -o file": (["asic", "int8-mac", "-o", "afile"], 2, "Directory 'afile' is a file"),
    "asic -o under file": (["asic", "fp32-mac", "-o", "afile/report"], 2,
                           "--out: cannot create afile/report: "),
    "build foreign dir": (["build", "--design", "standin", "-o", "adir"], 2,
                          "--out: adir already holds files that lnsmadam did not write"),
    "build -o .": (["build", "-o", "."], 2, "already holds files that lnsmadam did not write"),
    "generate foreign": (["generate", "mul", "--name", "mine", "-o", "adir"], 2,
                         "adir/mine.v exist and were not written by lnsmadam generate"),
    # --config files
    "config missing": (["build", "--config", "nope.toml"], 2, "--config: cannot read nope.toml"),
    "config syntax": (["build", "--config", "bad.toml"], 2, "--config: bad.toml is not valid "
                                                            "TOML"),
    "config type": (["train", "--sim", "--config", "types.toml"], 2,
                    "lanes in types.toml must be an integer, got 'four'"),
    "config table": (["build", "--config", "table.toml"], 2, "[soc] tables are not supported"),
    "set bool": (["train", "--sim", "--set", "bias_lane=maybe"], 2,
                 "--set bias_lane must be true or false, got 'maybe'"),
    "config unknown": (["train", "--sim", "--config", "unknown.toml"], 2,
                       "unknown config field(s) speed"),
    # unknown board, program without a bitstream
    "board": (["build", "--board", "nope"], 2, "unknown board 'nope'"),
    "program": (["program", "--bitstream", "x.bin"], 1, "no bitstream at x.bin"),
}


def _fixture_files(root):
    (root / "afile").write_text("not a directory\n")
    (root / "adir").mkdir()
    (root / "adir" / "mine.v").write_text("module mine; endmodule  // the user's own file\n")
    (root / "adir.png").mkdir()
    (root / "build").mkdir()
    (root / "build" / "keep.txt").write_text("a user's build folder\n")
    (root / "bad.toml").write_text("lanes = \n")
    (root / "types.toml").write_text('lanes = "four"\n')
    (root / "table.toml").write_text("[soc]\nlanes = 2\n")
    (root / "unknown.toml").write_text("speed = 9\n")


def _tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = b""
    return out


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, case):
    args, code, needle = CLI_CASES[case]
    monkeypatch.setenv("LNSMADAM_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    _fixture_files(work)
    before = _tree(work)
    monkeypatch.chdir(work)
    res = CliRunner().invoke(cli, args)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, (
        AttributeError, TypeError, IndexError, KeyError, RecursionError)), res.output
    assert len(lines) == 1 and lines[0].lower().startswith("error:"), res.output
    assert needle in lines[0], lines[0]
    assert _tree(work) == before, "a refused command wrote or changed files"


def test_train_json_write_failure_is_one_line(tmp_path):
    """A --json that cannot be written after the run (checked before it; a disk may fill up
    meanwhile) ends in a one-line error, not a traceback."""
    import click

    from lnsmadam.cli.train import _write_json

    with pytest.raises(click.ClickException, match=r"--json: could not write /proc/x/r.json "
                                                   r"\(.*\); the run's accuracies are in"):
        _write_json("/proc/x/r.json", {"backend": "golden"}, [])


def test_console_script_missing_extra(monkeypatch, capsys):
    """A command whose optional extra is missing says which one, on one line (exit 1)."""
    import sys

    from lnsmadam.cli import main as cli_main

    monkeypatch.setitem(sys.modules, "cocotb_tools", None)     # as if [sim] were absent
    monkeypatch.setitem(sys.modules, "cocotb_tools.check_results", None)
    monkeypatch.delenv("LNSMADAM_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["verify", "mul", "--sim", "icarus"])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert err.strip().splitlines()[-1] == (
        "error: this needs the optional extra [sim] (module cocotb_tools is missing): "
        "pip install 'lnsmadam[sim]'")


# -- the Python API ----------------------------------------------------------------------------
def _api_cases():
    from lnsmadam.golden.format import LNSFormat, check_float
    from lnsmadam.golden.mac import MACConfig, matmul
    from lnsmadam.golden.mlp import LNSMLP, MLPConfig
    from lnsmadam.golden.mul import mul
    from lnsmadam.golden.update import MadamConfig, StateFormat, madam_step
    from lnsmadam.host.device import Device
    from lnsmadam.host.transport import (CallbackTransport, PipeTransport, SerialTransport,
                                         pipe_pair)
    from lnsmadam.boards.asic import check_options
    from lnsmadam.golden.fpmac import FP8MACConfig
    from lnsmadam.hw import blockparams, blocks
    from lnsmadam.hw.blocks import check_module_name
    from lnsmadam.golden.soc import SoCConfig

    model = LNSMLP(MLPConfig(), 0)
    tr = pipe_pair()[0]
    F = LNSFormat(8, 3)
    return {
        # wrong types into config constructors: TypeError (and ValueError) naming the field
        "MACConfig fmt": (lambda: MACConfig(fmt=None), "fmt must be an instance of LNSFormat"),
        "MACConfig fmt int": (lambda: MACConfig(fmt=8), "fmt must be an instance of LNSFormat"),
        "MadamConfig grad": (lambda: MadamConfig(grad=None), "grad must be an instance of"),
        "MadamConfig state": (lambda: MadamConfig(state=3), "state must be an instance of "
                                                            "StateFormat"),
        "MadamConfig weight": (lambda: MadamConfig(weight="12"), "weight must be an instance"),
        "MLPConfig madam": (lambda: MLPConfig(madam=None), "madam must be an instance of "
                                                           "MadamConfig"),
        "MLPConfig fmt": (lambda: MLPConfig(fmt=None), "fmt must be an instance of LNSFormat"),
        "MLPConfig mac": (lambda: MLPConfig(mac=5), "mac must be an instance of MACConfig"),
        "MLPConfig sizes": (lambda: MLPConfig(sizes=None), "sizes must be a sequence"),
        "MLPConfig sizes str": (lambda: MLPConfig(sizes="64,16,10"), "sizes must be a sequence"),
        # a dict iterates over its keys only: refused, not read as (64, 10)
        "MLPConfig sizes dict": (lambda: MLPConfig(sizes={64: 1, 10: 2}),
                                 "sizes must be a sequence"),
        "MLPConfig sizes set": (lambda: MLPConfig(sizes={64, 10}), "sizes must be a sequence"),
        "MLPConfig p_scale": (lambda: MLPConfig(p_scale=None), "p_scale must be a number in "
                                                               "(0, 1e+06]"),
        "MLPConfig p_scale nan": (lambda: MLPConfig(p_scale=math.nan), "p_scale must be a "
                                                                      "finite number"),
        "LNSMLP cfg": (lambda: LNSMLP(None, 0), "cfg must be an instance of MLPConfig"),
        "LNSMLP seed": (lambda: LNSMLP(MLPConfig(), -1), "seed must be a non-negative integer"),
        "StateFormat": (lambda: StateFormat(None), "state exp_bits must be an integer"),
        "SoCConfig sizes": (lambda: SoCConfig(sizes=None), "sizes must be a sequence"),
        "SoCConfig clk": (lambda: SoCConfig(clk_freq=None), "clk_freq must be a number in "
                                                            "[1000, 1e+09] Hz"),
        "SoCConfig clk inf": (lambda: SoCConfig(clk_freq=math.inf), "clk_freq must be a "
                                                                     "finite number"),
        "mul fmt": (lambda: mul(1, 2, None), "fmt must be an instance of LNSFormat"),
        "mul shift": (lambda: mul(1, 2, F, shift=1 << 40), "shift must be in"),
        "madam_step cfg": (lambda: madam_step(1, 0, 1, 0, 10, None), "cfg must be an "
                                                                     "instance of MadamConfig"),
        "module name": (lambda: check_module_name("endmodule"), "name must not be a "
                                                                "Verilog/SystemVerilog keyword"),
        # blocks from configurations, and from flat parameters (the sweep's grids)
        "fp8_mac cfg": (lambda: blocks.fp8_mac(None), "cfg must be an instance of "
                                                      "FP8MACConfig"),
        "fp32_mac cfg": (lambda: blocks.fp32_mac(FP8MACConfig()), "cfg must be an instance "
                                                                  "of FP32MACConfig"),
        "build kind": (lambda: blockparams.build("adder"), "block must be one of mac, "),
        "build unknown": (lambda: blockparams.build("mac", {"lanez": 2}),
                          "lanez is not a parameter of block mac (it has: bits, "),
        "build type": (lambda: blockparams.build("mac", {"lanes": "4"}),
                       "lanes must be an integer, got '4'"),
        "build bool": (lambda: blockparams.build("int8-mac", {"saturate": 1}),
                       "saturate must be true or false, got 1"),
        "build choice": (lambda: blockparams.build("fp8-mac", {"b_format": "e3m4"}),
                         "b_format must be one of e4m3, e5m2, got 'e3m4'"),
        "build required": (lambda: blockparams.build("convert", {"bits": 6}),
                           "direction is required for block convert (one of to-linear, "
                           "from-linear)"),
        "build moot": (lambda: blockparams.build("convert", {"direction": "from-linear",
                                                              "lsb_q": -5, "window": 8}),
                       "window has no effect with direction from-linear and lsb_q: leave it "
                       "out"),
        "build range": (lambda: blockparams.build("update", {"weight_gamma": 3}),
                        "weight_gamma must be a power of two"),
        "asic streams": (lambda: check_options(10.0, "training", streams=96),
                         "streams must be a multiple of 64 in [64, 4096], got 96"),
        "asic clock": (lambda: check_options("10", "training"), "clock_ns must be in "),
        # wrong shapes name the expected shape
        "step shape": (lambda: model.step(np.zeros(10), 1), "x must have shape (64,) or "
                                                            "(n, 64), got (10,)"),
        "step batch": (lambda: model.step(np.zeros((2, 64)), 1), "x must be one sample, "
                                                                 "shape (64,)"),
        "step None": (lambda: model.step(None, 1), "x must have shape (64,)"),
        "step nan": (lambda: model.step(np.full(64, np.nan), 1), "x must be numbers"),
        "predict shape": (lambda: model.predict(np.zeros((3, 10))), "x must have shape"),
        "madam_step shapes": (lambda: madam_step(np.ones(3, int), np.zeros(4, int),
                                                 np.ones(5, int), 0, 10, MadamConfig()),
                              "w_codes, v_codes and g_codes must have one shape"),
        "matmul shapes": (lambda: matmul(np.zeros((3, 4), int), np.zeros((5, 1), int),
                                         MACConfig()), "matmul needs (M, K) @ (K, N)"),
        # Device: transport and times (a NaN timeout spun forever; inf overflowed)
        "Device transport": (lambda: Device(None), "transport must be an instance of "
                                                   "Transport"),
        "Device nan": (lambda: Device(tr, timeout=math.nan), "timeout must be a finite number "
                                                             "in (0, 86400] s"),
        "Device inf": (lambda: Device(tr, timeout=math.inf), "timeout must be a finite"),
        "Device huge": (lambda: Device(tr, timeout=1e300), "timeout must be a finite"),
        "Device huge int": (lambda: Device(tr, timeout=10**400), "timeout must be a finite"),
        "Device negative": (lambda: Device(tr, timeout=-1), "timeout must be a finite"),
        "Device zero": (lambda: Device(tr, timeout=0), "timeout must be a finite"),
        "Device str": (lambda: Device(tr, timeout="1"), "timeout must be a number"),
        "Device bool": (lambda: Device(tr, timeout=True), "timeout must be a number"),
        "Device poll": (lambda: Device(tr, poll=math.nan), "poll must be a finite number in "
                                                           "[0, 60] s"),
        "Device retries": (lambda: Device(tr, retries=0), "retries must be in [1, 255]"),
        "check_float": (lambda: check_float("x", "1.0", 0, 1), "x must be a number in [0, 1]"),
        # NumPy integers, non-str keys, containers and transports (fuzz 31-34)
        "SoCConfig np lanes": (lambda: SoCConfig(lanes=np.int64(3)),
                               "lanes must be a power of two in 1..64, got 3"),
        "SoCConfig np float": (lambda: SoCConfig(bits=np.float64(8)),
                               "bits must be an integer, got np.float64(8.0)"),
        "SoCConfig sizes dict": (lambda: SoCConfig(sizes={64: 1, 16: 1}),
                                 "sizes must be a sequence"),
        "SoCConfig key": (lambda: SoCConfig.from_dict({1: 4}),
                          "unknown SoCConfig field(s) 1; known: sizes"),
        "Serial None": (lambda: SerialTransport(None), "port must be a serial port name"),
        "Serial baud": (lambda: SerialTransport("/dev/x", baud=10**15),
                        "baud must be in [300, 50000000]"),
        "Callback None": (lambda: CallbackTransport(None), "respond must be callable"),
        "Pipe None": (lambda: PipeTransport(None, None), "rx must be an instance of ByteQueue"),
        "Pipe read nan": (lambda: tr.read(5, math.nan), "timeout must be a finite number"),
        "Pipe read -1": (lambda: tr.read(-1, 1), "n must be in [0, +inf], got -1"),
        "Pipe read str": (lambda: tr.read("5", 0), "n must be an integer, got '5'"),
        "Pipe write str": (lambda: tr.write("str"), "data must be bytes"),
    }


def test_api_bad_input_names_the_parameter():
    failures = []
    for name, (fn, needle) in _api_cases().items():
        try:
            fn()
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            if needle not in msg or "\n" in msg:
                failures.append(f"{name}: {type(exc).__name__}: {msg}")
        except Exception as exc:          # any other class is the bug this test is about
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{name}: no error")
    assert not failures, "\n".join(failures)


def test_type_errors_are_both_type_and_value_errors():
    from lnsmadam.golden.format import ParameterTypeError
    from lnsmadam.golden.mac import MACConfig

    with pytest.raises(TypeError):
        MACConfig(fmt=None)
    with pytest.raises(ValueError):
        MACConfig(fmt=None)
    assert issubclass(ParameterTypeError, TypeError) and issubclass(ParameterTypeError,
                                                                    ValueError)


def test_device_timeout_is_honoured():
    """A valid tiny timeout still ends (the NaN case used to spin forever)."""
    from lnsmadam.host.device import Device
    from lnsmadam.host.transport import LinkError, pipe_pair

    a, _ = pipe_pair()
    dev = Device(a, timeout=0.01, retries=2)
    with pytest.raises(LinkError, match="no valid reply after 2 attempts"):
        dev.status()


def test_help_states_the_real_ranges():
    res = CliRunner().invoke(cli, ["generate", "mac", "--help"])
    text = " ".join(res.output.split())
    for needle in ("1..min(2**(bits-2), 4096)", "1 .. (2*emax >> log2(gamma)) + 1 - (2 >> "
                   "log2(gamma)) (32 at 8 bits, gamma 8) and at most 61 - lut_frac",
                   "log2(gamma)+1 .. 40"):
        assert needle in text, needle
    res = CliRunner().invoke(cli, ["generate", "mul", "--help"])
    assert "2-emax .. 2*emax-1" in " ".join(res.output.split())
    res = CliRunner().invoke(cli, ["generate", "fp8-mac", "--help"])
    text = " ".join(res.output.split())
    for needle in ("36 (e4m3 x e4m3), 50 (e4m3 x e5m2), 57 (e5m2 x e5m2)",
                   "window + man_bits(a) + man_bits(b) + 1 .. 62", "23 .. 62 at the defaults"):
        assert needle in text, needle
    res = CliRunner().invoke(cli, ["generate", "convert", "--help"])
    text = " ".join(res.output.split())
    for needle in ("lowest octave kept, 1 - window .. q_top", "1 .. 62 - lut_frac",
                   "octave of the input LSB, 1 - acc_bits .. q_top"):
        assert needle in text, needle
    res = CliRunner().invoke(cli, ["generate", "update", "--help"])
    assert "onlywith--bias-correction" in "".join(res.output.split())
    res = CliRunner().invoke(cli, ["prove", "--help"])
    assert "(0, 86400]" in " ".join(res.output.split())
    res = CliRunner().invoke(cli, ["asic", "mul", "--help"])
    assert "0.1 for the others" in " ".join(res.output.split())
    res = CliRunner().invoke(cli, ["asic", "fp32-mac", "--help"])
    text = " ".join(res.output.split())
    for needle in ("1..2", "0.05..1000", "a multiple of 64 in 64..4096", "32..100000", "0..2"):
        assert needle in text, needle
    res = CliRunner().invoke(cli, ["train", "--help"])
    text = " ".join(res.output.split())
    for needle in ("3..8 on a device, 3..16 in golden", "1, 2, 4, ..., 64 on a device",
                   "1..64", "(0, 1e6]"):
        assert needle in text, needle
