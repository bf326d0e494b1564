# amaranth: UnusedElaboratable=no
"""The ASIC flow end to end on the OSU 0.18 µm library (fetched by the flow itself):
``lnsmadam asic`` on a small block, its reports and its refusals; and every FP8 operand
pair through the synthesised, mapped FP8 unit (gate-level simulation against golden)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from lnsmadam.boards.asic.flow import synthesize
from lnsmadam.boards.asic.gatesim import Netlist, simulate
from lnsmadam.boards.asic.libs import find_lib
from lnsmadam.boards.asic.liberty import read_liberty
from lnsmadam.boards.asic.stimulus import field_values, layout_bits
from lnsmadam.cli import main as cli_main
from lnsmadam.cli.main import cli
from lnsmadam.golden.fpmac import FP8MACConfig
from lnsmadam.hw.fpmac import FP8MAC


@pytest.fixture(scope="module")
def osu018():
    return find_lib("osu018")


def test_asic_report_int8_mac(tmp_path, osu018):
    out = tmp_path / "int8"
    res = CliRunner().invoke(cli, ["asic", "int8-mac", "--lanes", "2", "--lib", "osu018",
                                   "--clock-ns", "8", "--streams", "64", "--cycles", "64",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["block"] == "int8-mac" and rep["parameters"]["lanes"] == 2
    assert rep["library"]["name"] == "osu018" and "1.8 V" in rep["library"]["corner"]
    assert rep["cells"] == sum(rep["cells_by_type"].values()) and rep["flops"] > 50
    assert rep["area_um2"] > rep["flop_area_um2"] > 0
    t = rep["timing"]
    assert t["fmax_mhz"] == pytest.approx(1000 / t["critical_path_ns"], rel=1e-3)
    assert t["slack_ns"] == pytest.approx(8 - t["critical_path_ns"], abs=1e-3)
    p = rep["power"]
    assert p["results_checked"] > 50
    assert p["total_mw"] == pytest.approx(p["internal_mw"] + p["switching_mw"] + p["leakage_mw"],
                                          rel=1e-4)
    assert 0 < p["flop_clock_pin_mw"] < p["total_mw"]
    assert 0 < p["ops_per_cycle"] <= p["slots_per_cycle"] <= 2
    assert p["energy_per_op_pj"] == pytest.approx(p["energy_per_cycle_pj"] / p["ops_per_cycle"],
                                                  rel=1e-3)
    assert p["energy_per_cycle_pj"] == pytest.approx(p["total_mw"] * 8, rel=1e-3)
    assert rep["power_assumed"]["activity"] == 0.1
    md = (out / "report.md").read_text()
    assert "Not included" in md and "clock tree" in md and "Fmax" in md
    assert (out / "net.v").read_text().startswith("/*")
    assert not (out / "work").exists()


def test_asic_assumed_activity_and_refusals(tmp_path, osu018):
    r = CliRunner().invoke(cli, ["asic", "mul", "--activity", "0.2", "--clock-ns", "5",
                                 "-o", str(tmp_path / "mul"), "--keep"])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "mul" / "report.json").read_text())
    assert "power" not in rep and rep["power_assumed"]["activity"] == 0.2
    assert (tmp_path / "mul" / "work" / "timing.log").exists()
    for args, msg in [
        (["mul", "--activity", "training", "-o", str(tmp_path / "x")],
         "has no training stimulus: give --activity"),
        (["int8-mac", "--clock-ns", "0", "-o", str(tmp_path / "x")],
         "--clock-ns must be in [0.05, 1000], got 0.0"),
        (["int8-mac", "--activity", "3", "-o", str(tmp_path / "x")],
         "--activity must be in [0, 2]"),
        (["int8-mac", "--lanes", "0", "-o", str(tmp_path / "x")], "--lanes must be in"),
    ]:
        with pytest.raises(SystemExit) as e:
            cli_main.main(["asic", *args])
        assert e.value.code == 2, args
    r = CliRunner().invoke(cli, ["asic", "int8-mac", "--streams", "100", "-o", str(tmp_path)])
    assert r.exit_code == 2 and "multiple of 64" in r.output


def test_asic_area_only_fp8_mac(tmp_path):
    """A baseline block, through the library without timing: area only, the block's own
    parameters in the report, no training stimulus needed."""
    out = tmp_path / "fp8"
    r = CliRunner().invoke(cli, ["asic", "fp8-mac", "--lanes", "2", "--b-format", "e5m2",
                                 "--lib", "sky130-area", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["block"] == "fp8-mac" and rep["library"]["name"] == "sky130-area"
    assert (rep["parameters"]["b_format"], rep["parameters"]["lanes"]) == ("e5m2", 2)
    assert rep["area_um2"] > 0 and "timing" not in rep and "power" not in rep
    assert "area only" in (out / "report.md").read_text()


def test_asic_mul_out_of_the_box(tmp_path, osu018):
    """A block without a training stimulus works with the defaults: an assumed activity
    (0.1), said so in the report; the simulation options are refused for it."""
    r = CliRunner().invoke(cli, ["asic", "mul", "-o", str(tmp_path / "mul")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "mul" / "report.json").read_text())
    assert "power" not in rep and rep["power_assumed"]["activity"] == 0.1
    assert rep["clock_ns"] == 10.0 and "at 10.0 ns" in r.output
    r = CliRunner().invoke(cli, ["asic", "convert", "--direction", "to-linear", "--cycles",
                                 "64", "-o", str(tmp_path / "cvt")])
    assert r.exit_code == 2 and "--cycles has no effect for block convert" in r.output
    assert not (tmp_path / "cvt").exists()


def test_asic_area_only_states_no_clock(tmp_path):
    """With the area-only library nothing claims a clock: not the progress line, not the
    report (clock_ns null, "clock: none")."""
    r = CliRunner().invoke(cli, ["asic", "mul", "--lib", "sky130-area",
                                 "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert " ns" not in r.output and "area only" in r.output
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    assert rep["clock_ns"] is None and "timing" not in rep
    assert "clock: none" in (tmp_path / "a" / "report.md").read_text()


def test_asic_out_dir_is_new_empty_or_an_earlier_report(tmp_path):
    """-o refuses a directory with files lnsmadam asic did not write (before any work,
    nothing changed); a new, empty or earlier report's directory (marked, or from before
    the marker: its report.json) is written."""
    user = tmp_path / "user"
    user.mkdir()
    mine = {"report.md": "my report\n", "report.json": '{"mine": 1}\n', "net.v": "my netlist\n"}
    for name, text in mine.items():
        (user / name).write_text(text)
    args = ["asic", "mul", "--lib", "sky130-area", "-o"]
    r = CliRunner().invoke(cli, [*args, str(user)])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == (f"error: --out: {user} already holds files that lnsmadam did "
                                "not write (no .lnsmadam-asic in it): give a new or empty "
                                "directory")
    assert {p.name: p.read_text() for p in user.iterdir()} == mine
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new" / "dir", empty):
        r = CliRunner().invoke(cli, [*args, str(out)])
        assert r.exit_code == 0, r.output
        assert (out / ".lnsmadam-asic").exists() and (out / "report.json").exists()
    r = CliRunner().invoke(cli, [*args, str(empty)])             # an earlier report's
    assert r.exit_code == 0, r.output
    (empty / ".lnsmadam-asic").unlink()                          # from before the marker
    r = CliRunner().invoke(cli, [*args, str(empty)])
    assert r.exit_code == 0, r.output


def _stderr_line(capsys):
    return capsys.readouterr().err.strip().splitlines()


def test_refusals_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["asic", "int8-mac", "--clock-ns", "0", "-o", str(tmp_path)])
    lines = _stderr_line(capsys)
    assert lines == ["error: --clock-ns must be in [0.05, 1000], got 0.0"]


@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e5m2")])
def test_fp8_every_operand_pair_on_the_netlist(tmp_path, osu018, fa, fb):
    """All 65,536 pairs as one-beat vectors through the mapped FP8 unit (pipeline 1)."""
    cfg = FP8MACConfig(fa, fb, lanes=1)
    dut = FP8MAC(cfg, pipeline=1)
    syn = synthesize(dut, osu018, 10.0, tmp_path)
    nl = Netlist(syn.netlist, read_liberty(tmp_path / "cells.lib"))
    S, n = 256, 256                                    # stream s takes a = s, b = 0..255
    C = n + 1 + dut.latency + 1
    a = np.zeros((C, S), np.int64)
    b = np.zeros((C, S), np.int64)
    valid = np.zeros((C, S), np.int64)
    a[1:n + 1] = np.arange(S)[None, :]
    b[1:n + 1] = np.arange(n)[:, None]
    valid[1:n + 1] = 1
    lay = dut.i_stream.payload.shape()
    payload = layout_bits(lay, {"a": a[..., None], "b": b[..., None], "first": valid,
                                "last": valid}, (C, S))
    rst = np.zeros((C, 1, S), np.uint8)
    rst[0] = 1
    _, outs = simulate(nl, {"i_stream__payload": payload, "i_stream__valid": valid[:, None, :],
                            "o_stream__ready": np.ones((C, 1, S), np.uint8), "rst": rst},
                       ["o_stream__valid", "o_stream__payload"], warmup=1)
    ov = outs["o_stream__valid"][:, 0, :]
    acc = field_values(dut.o_stream.payload.shape(), outs["o_stream__payload"], "acc")
    got = np.stack([acc[ov[:, s] == 1, s] for s in range(S)])          # (a, b)
    A, B = np.meshgrid(np.arange(S), np.arange(n), indexing="ij")
    want = cfg.accumulate(cfg.products(A, B)[..., None], axis=-1)
    assert np.array_equal(got, want)
