"""``lnsmadam generate``: files written, JSON matches the Verilog, bad parameters, end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from lnsmadam.cli import main as cli_main
from lnsmadam.cli.main import cli

CASES = [
    (["mac", "--bits", "8", "--gamma", "8", "--lanes", "8"], "lns_mac_b8g8l8", "mac"),
    (["mac", "--bits", "6", "--gamma", "4", "--lanes", "4", "--acc-bits", "19", "--window", "12",
      "--lut-frac", "6", "--wrap", "--pipeline", "1", "--name", "small_mac"], "small_mac", "mac"),
    (["mul", "--bits", "8", "--gamma", "8"], "lns_mul_b8g8", "mul"),
    (["mul", "--bits", "6", "--gamma", "4", "--underflow", "min", "--shift", "20",
      "--combinational"], "lns_mul_b6g4", "mul"),
    (["convert", "--direction", "to-linear"], "to_linear_b8g8", "convert"),
    (["convert", "--direction", "from-linear", "--acc-bits", "40", "--lsb-q", "-5",
      "--registered"], "from_linear_b8g8", "convert"),
    (["int8-mac", "--lanes", "4", "--acc-bits", "20"], "int8_mac_l4", "int8-mac"),
]

_DECL = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                   r"(?:\[(\d+):(\d+)\]\s*)?\\?(\w+)\s*;", re.M)


def _verilog_ports(text: str, module: str) -> dict:
    """Ports of ``module``, parsed independently of lnsmadam.sim.ports."""
    m = re.search(rf"^module {module}\((.*?)\);(.*?)^endmodule", text, re.M | re.S)
    assert m, f"module {module} not in the Verilog"
    header = [p.strip().lstrip("\\") for p in m.group(1).replace("\n", " ").split(",")]
    decls = {name: {"direction": d, "width": int(hi) - int(lo) + 1 if hi else 1}
             for d, hi, lo, name in _DECL.findall(m.group(2))}
    assert sorted(header) == sorted(decls)
    return decls


@pytest.mark.parametrize("args, name, block", CASES, ids=[c[1] + "-" + c[0][0] for c in CASES])
def test_generate_writes_verilog_and_json(tmp_path, args, name, block):
    out = tmp_path / "rtl"
    res = CliRunner().invoke(cli, ["generate", *args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    v, js = out / f"{name}.v", out / f"{name}.json"
    assert f"wrote {v}" in res.output and f"wrote {js}" in res.output
    meta = json.loads(js.read_text())
    assert meta["block"] == block and meta["name"] == name and meta["verilog"] == v.name
    text = v.read_text()
    ports = _verilog_ports(text, name)
    assert {p["name"]: {"direction": p["direction"], "width": p["width"]}
            for p in meta["ports"]} == ports
    assert meta["timing"]["latency_cycles"] >= 0 and meta["timing"]["initiation_interval"] == 1
    assert (meta["clock"] == "clk") == ("clk" in ports)
    for p in meta["ports"]:   # structured payloads: fields tile the port exactly
        if "fields" in p:
            assert sum(f["width"] for f in p["fields"]) == p["width"]
            ends = sorted((f["offset"], f["offset"] + f["width"]) for f in p["fields"])
            assert ends[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ends, ends[1:]))
    # the file is valid Verilog for a second tool too
    iverilog = shutil.which("iverilog")
    assert iverilog, "iverilog is required (./run test installs it)"
    subprocess.run([iverilog, "-g2012", "-o", str(tmp_path / "a.out"), str(v)], check=True,
                   capture_output=True, timeout=60)


def test_mac_json_describes_the_unit(tmp_path):
    res = CliRunner().invoke(cli, ["generate", "mac", "--lanes", "8", "--pipeline", "3",
                                   "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "lns_mac_b8g8l8.json").read_text())
    p = meta["parameters"]
    assert (p["bits"], p["gamma"], p["lanes"], p["acc_bits"], p["window"], p["lut_frac"],
            p["saturate"], p["pipeline"]) == (8, 8, 8, 32, 16, 8, True, 3)
    assert (p["q_lo"], p["lsb_q"]) == (16, 8)
    # pipeline + 2 + LNSMAC's default out_pipeline (3): hw/mac.py
    assert meta["timing"]["latency_cycles"] == 3 + 2 + 3 and p["out_pipeline"] == 3
    assert meta["timing"]["products_per_cycle"] == 8
    names = [q["name"] for q in meta["ports"]]
    assert names == ["clk", "rst", "i_stream__payload", "i_stream__valid", "i_stream__ready",
                     "o_stream__payload", "o_stream__valid", "o_stream__ready"]
    payload = next(q for q in meta["ports"] if q["name"] == "i_stream__payload")
    paths = [f["path"] for f in payload["fields"]]
    assert paths[:2] == ["a.0.exp", "a.0.sign"] and paths[-2:] == ["first", "last"]
    assert payload["width"] == 2 * 8 * 8 + 2
    out = next(q for q in meta["ports"] if q["name"] == "o_stream__payload")
    assert [f["path"] for f in out["fields"]][0] == "acc"


def test_mac_out_pipeline_option(tmp_path):
    res = CliRunner().invoke(cli, ["generate", "mac", "--out-pipeline", "0", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "lns_mac_b8g8l1.json").read_text())
    assert meta["parameters"]["out_pipeline"] == 0
    assert meta["timing"]["latency_cycles"] == 2 + 2 + 0


@pytest.mark.parametrize("args, needle", [
    (["mac", "--out-pipeline", "5"], "--out-pipeline must be in [0, 4], got 5"),
    (["mac", "--acc-bits", "10"], "--acc-bits must be in [25, 62], got 10"),
    (["mac", "--gamma", "6"], "--gamma must be a power of two"),
    (["mac", "--bits", "4", "--gamma", "8"], "--gamma must be in [1, 4], got 8"),
    (["mac", "--bits", "30"], "--bits must be in [3, 24], got 30"),
    (["mac", "--lanes", "0"], "--lanes must be in [1, 256], got 0"),
    (["mac", "--lanes", "8", "--pipeline", "9"], "--pipeline must be in [1, 5], got 9"),
    (["mac", "--window", "40"], "--window must be in [1, 32], got 40"),
    (["mac", "--lut-frac", "2"], "--lut-frac must be in [4, 24], got 2"),
    (["mul", "--shift", str(1 << 31)], "--shift must be in"),
    (["convert", "--direction", "from-linear", "--acc-bits", "99"], "--acc-bits must be in"),
    (["int8-mac", "--acc-bits", "8"], "--acc-bits must be in [16, 62], got 8"),
    (["mac", "--name", "9bad"], "--name must be a Verilog identifier"),
    (["mul", "--name", ""], "--name must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*, at "
                            "most 128 characters), got ''"),
    # a window that no accumulator can hold blames --window with its joint range, not an
    # empty range of --acc-bits
    (["mac", "--bits", "10", "--window", "60"],
     "--window must be in [1, 53] with --lut-frac 8 (a product"),
    (["mac", "--bits", "10", "--lut-frac", "24", "--window", "40"],
     "--window must be in [1, 37] with --lut-frac 24"),
    (["convert", "--direction", "to-linear", "--bits", "24", "--gamma", "4096", "--lut-frac",
      "24", "--window", "62"], "--window must be in [1, 38] with --lut-frac 24 (the output"),
    (["convert", "--direction", "from-linear", "--bits", "24", "--gamma", "4096",
      "--lut-frac", "24", "--window", "62"], "--window must be in [1, 37] with --lut-frac 24"),
    # a window placed where no exponent reaches: a constant output
    (["convert", "--direction", "to-linear", "--q-lo", str(1 << 30)],
     "--q-lo must be in [-15, 31] with --window 16"),
    (["convert", "--direction", "to-linear", "--q-lo", str(-(1 << 30))],
     "--q-lo must be in [-15, 31] with --window 16"),
    (["convert", "--direction", "to-linear", "--q-lo", "1000"], "--q-lo must be in [-15, 31]"),
    (["convert", "--direction", "to-linear", "--window", "4", "--q-lo", "-4"],
     "--q-lo must be in [-3, 31] with --window 4"),
    (["convert", "--direction", "from-linear", "--lsb-q", str(1 << 30)],
     "--lsb-q must be in [-31, 31] with --acc-bits 32"),
    (["convert", "--direction", "from-linear", "--acc-bits", "40", "--lsb-q", "-40"],
     "--lsb-q must be in [-39, 31] with --acc-bits 40"),
])
def test_bad_parameters_one_line_error(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.delenv("LNSMADAM_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["generate", *args, "-o", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert needle in err, err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_options_are_the_block_parameters():
    """Each generate subcommand has one option per flat parameter of its block
    (lnsmadam.hw.blockparams, which verify, asic and the sweep grids take too), with the
    same type, default, choices and requiredness."""
    import click

    from lnsmadam.cli.generate import BLOCKS, generate
    from lnsmadam.hw import blockparams

    assert list(BLOCKS) == list(blockparams.KINDS) == list(generate.commands)
    for kind, cmd in generate.commands.items():
        opts = {o.name: o for o in cmd.params if o.name not in ("out_dir", "axis")}
        params = blockparams.parameters(kind)
        assert sorted(opts) == sorted(params), kind
        for name, p in params.items():
            o = opts[name]
            where = f"{kind} {name}"
            assert o.required == p.required and (p.required or o.default == p.default), where
            if p.choices is not None:
                assert isinstance(o.type, click.Choice), where
                assert tuple(o.type.choices) == p.choices, where
            else:
                want = {int: click.types.IntParamType, bool: click.types.BoolParamType,
                        str: click.types.StringParamType}[p.type]
                assert isinstance(o.type, want), where


def test_missing_output_dir_is_a_usage_error():
    res = CliRunner().invoke(cli, ["generate", "mac"])
    assert res.exit_code == 2 and "--out" in res.output


def test_console_script(tmp_path):
    script = Path(sysconfig.get_path("scripts")) / "lnsmadam"
    ok = subprocess.run([str(script), "generate", "mul", "-o", str(tmp_path)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "lns_mul_b8g8.v").exists()
    bad = subprocess.run([str(script), "generate", "mac", "--lanes", "300", "-o", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr == "error: --lanes must be in [1, 256], got 300\n"


def test_generated_mac_simulates_bit_exact(tmp_path):
    """End to end: the CLI's .v and .json drive the cocotb regression (Icarus), through the
    code `lnsmadam verify` runs."""
    from lnsmadam.sim.verify import verify_files

    args = ["--bits", "6", "--gamma", "4", "--lanes", "4", "--acc-bits", "19", "--window",
            "12", "--lut-frac", "6", "--pipeline", "2", "--name", "cli_mac"]
    res = CliRunner().invoke(cli, ["generate", "mac", *args, "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (r,) = verify_files(tmp_path / "cli_mac.json", ["icarus"], build_root=tmp_path / "b",
                        check=True, seed=2, n_random=40, valid_prob=0.8, ready_prob=0.6)
    assert r.passed and r.tests == 2


# -- generate update (the LNS-Madam update engine) ----------------------------------------
UPDATE_CASES = [
    ([], "madam_update_b8g8w12"),
    (["--bits", "6", "--gamma", "4", "--weight-bits", "10", "--weight-gamma", "32",
      "--state-exp-bits", "4", "--state-man-bits", "6", "--state-offset", "-20", "--beta-k",
      "3", "--lr-step", "3", "--g-bound", "4", "--pipeline", "0", "--name", "small_update"],
     "small_update"),
    (["--bias-correction", "--pipeline", "6", "--bias-bits", "16"], "madam_update_b8g8w12bc"),
]


@pytest.mark.parametrize("args, name", UPDATE_CASES, ids=[c[1] for c in UPDATE_CASES])
def test_generate_update(tmp_path, args, name):
    from lnsmadam.golden.update import MadamConfig
    from lnsmadam.hw.update import config_from_dict

    res = CliRunner().invoke(cli, ["generate", "update", *args, "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / f"{name}.json").read_text())
    assert meta["block"] == "update" and meta["class"] == "lnsmadam.hw.update.MadamUpdate"
    ports = _verilog_ports((tmp_path / f"{name}.v").read_text(), name)
    assert {p["name"]: {"direction": p["direction"], "width": p["width"]}
            for p in meta["ports"]} == ports
    assert sorted(ports) == sorted(["clk", "rst", "i_stream__payload", "i_stream__valid",
                                    "i_stream__ready", "o_stream__payload", "o_stream__valid",
                                    "o_stream__ready", "g_bias", "e_clamp", "bc_exp"])
    p = meta["parameters"]
    cfg = config_from_dict(p["config"])
    assert meta["timing"]["latency_cycles"] == p["pipeline"] + 1
    assert meta["timing"]["initiation_interval"] == 1
    if not args:
        assert cfg == MadamConfig() and p["pipeline"] == 5 and p["bias_bits"] == 32
        assert ports["i_stream__payload"]["width"] == 12 + 17 + 8
        assert ports["o_stream__payload"]["width"] == 12 + 17 + 5
        assert (ports["g_bias"]["width"], ports["e_clamp"]["width"],
                ports["bc_exp"]["width"]) == (32, 11, 9)
        fields = next(q for q in meta["ports"] if q["name"] == "i_stream__payload")["fields"]
        assert [f["path"] for f in fields] == ["w.exp", "w.sign", "v.frac", "v.exp", "g.exp",
                                               "g.sign"]
    elif name == "small_update":
        assert (cfg.weight.bits, cfg.weight.gamma, cfg.grad.gamma, cfg.state.bits,
                cfg.beta_k, cfg.lr_step, cfg.g_bound) == (10, 32, 4, 9, 3, 3, 4)
    else:
        assert cfg.bias_correction and ports["g_bias"]["width"] == 16


@pytest.mark.parametrize("args, needle", [
    (["--weight-bits", "30"], "--weight-bits must be in [3, 24], got 30"),
    (["--weight-gamma", "6"], "--weight-gamma must be a power of two"),
    (["--bits", "30"], "--bits must be in [3, 24], got 30"),
    (["--state-exp-bits", "1"], "--state-exp-bits must be in [2, 8], got 1"),
    (["--state-man-bits", "4"], "--state-man-bits must be >= grad frac_bits + 2 (5), got 4"),
    (["--state-offset", "5000"], "--state-offset must be in [-1024, 1024], got 5000"),
    (["--lr-step", "0"], "--lr-step must be in [1, 64], got 0"),
    (["--g-bound", "65"], "--g-bound must be in [1, 64], got 65"),
    (["--beta-k", "21"], "--beta-k must be in [1, 20], got 21"),
    (["--guard-bits", "9"], "--guard-bits must be in [0, 8], got 9"),
    (["--bias-correction", "--bc-bits", "50"], "--bc-bits must be in [12, 40], got 50"),
    (["--bias-bits", "1"], "--bias-bits must be in [2, 48], got 1"),
    (["--pipeline", "8"], "--pipeline must be in [0, 7], got 8"),
    (["--name", "1x"], "--name must be a Verilog identifier"),
    (["--name", ""], "--name must be a Verilog identifier"),
    # the beta**t register exists only with bias correction
    (["--bc-bits", "30"], "--bc-bits has no effect without --bias-correction: leave it out"),
    (["--seeding", "--bc-bits", "24"], "--bc-bits has no effect without --bias-correction"),
])
def test_update_bad_parameters_one_line_error(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.delenv("LNSMADAM_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["generate", "update", *args, "-o", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert needle in err, err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_generated_update_simulates_bit_exact(tmp_path):
    """End to end: the CLI's .v and .json drive the update engine's cocotb regression."""
    from lnsmadam.sim.verify import verify_files

    args = ["--bits", "6", "--gamma", "4", "--weight-bits", "10", "--weight-gamma", "32",
            "--state-exp-bits", "4", "--state-man-bits", "6", "--state-offset", "-20",
            "--beta-k", "3", "--lr-step", "3", "--g-bound", "4", "--bias-correction",
            "--pipeline", "2", "--name", "cli_update"]
    res = CliRunner().invoke(cli, ["generate", "update", *args, "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    verify_files(tmp_path / "cli_update.json", ["icarus"], build_root=tmp_path / "b",
                 check=True, seed=3, n_weights=32, n_steps=40, valid_prob=0.8,
                 ready_prob=0.6)


def test_reachable_windows_are_accepted(tmp_path):
    """The edges of the --q-lo / --lsb-q ranges, --bc-bits with --bias-correction and a
    to-linear window up to the output's 63 bits all generate."""
    for args in (["convert", "--direction", "to-linear", "--q-lo", "-15", "--name", "lo"],
                 ["convert", "--direction", "to-linear", "--q-lo", "31", "--name", "hi"],
                 ["convert", "--direction", "from-linear", "--lsb-q", "-31", "--name", "flo"],
                 ["convert", "--direction", "from-linear", "--lsb-q", "31", "--name", "fhi"],
                 ["convert", "--direction", "to-linear", "--bits", "24", "--gamma", "4096",
                  "--lut-frac", "24", "--window", "38", "--name", "wide"],
                 ["update", "--bias-correction", "--bc-bits", "30", "--name", "bc30"]):
        res = CliRunner().invoke(cli, ["generate", *args, "-o", str(tmp_path)])
        assert res.exit_code == 0, (args, res.output)
    meta = json.loads((tmp_path / "wide.json").read_text())
    assert meta["parameters"]["out_bits"] == 63
    assert json.loads((tmp_path / "bc30.json").read_text())["parameters"]["config"][
        "bc_bits"] == 30


@pytest.mark.parametrize("first, second, differ", [
    (["update", "--bias-correction", "--bc-bits", "30"], ["update", "--bias-correction"],
     "config.bc_bits 30 there, 24 now"),
    (["update", "--bias-bits", "16"], ["update"], "bias_bits 16 there, 32 now"),
    (["int8-mac", "--pipeline", "1"], ["int8-mac"], "pipeline 1 there, 2 now"),
    (["convert", "--direction", "to-linear", "--q-lo", "3"],
     ["convert", "--direction", "to-linear"], "q_lo 3 there, 16 now"),
])
def test_default_name_never_replaces_another_design(tmp_path, first, second, differ):
    """Two designs that differ only in a parameter the default name leaves out share it:
    the second is refused (exit 2, naming what differs) instead of silently replacing the
    first; the same design again, or the other under its own --name, is written."""
    def run(args):
        return CliRunner().invoke(cli, ["generate", *args, "-o", str(tmp_path)])

    assert run(first).exit_code == 0
    (v,) = [p for p in tmp_path.glob("*.v") if not p.name.endswith("_axis.v")]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    res = run(second)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --out: {tmp_path / v.stem}.json "
                                                   "describes another design"), lines
    assert differ in lines[0] and "give --name" in lines[0]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert run(first).exit_code == 0                       # the same design: replaced
    assert run([*second, "--name", "other"]).exit_code == 0
    assert (tmp_path / "other.v").exists() and v.exists()
