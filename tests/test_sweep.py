"""``lnsmadam sweep``: grid files, jobs, the Dask engine (local and remote), resume, report.

* grid validation and point keys: pure Python, instant;
* ``test_local_cluster_four_points``: generate + synth of the LNS multiplier at 4 configs
  on a 2-worker LocalCluster, then a second run that skips everything;
* ``test_killed_sweep_resumes``: ``lnsmadam sweep`` killed (SIGKILL, its whole process
  group) after its first finished job; the rerun does only the rest;
* ``test_remote_scheduler``: ``dask scheduler`` and ``dask worker`` started here on
  loopback, the sweep pointed at the scheduler's address, one failing point recorded;
* the jobs one by one without Dask: partial builds, golden training, the twin's cycles, a
  generated block with its AXI4-Stream wrapper, a cocotb verification, an ASIC area report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lnsmadam.sweep import engine, report
from lnsmadam.sweep.grid import GridError, parse, point_key

LNSMADAM = Path(sys.executable).parent / "lnsmadam"
DASK = Path(sys.executable).parent / "dask"

MUL_GRID = """
title = "mul"
jobs = ["generate", "synth"]
[fixed]
block = "mul"
[axes]
bits = [6, 8]
registered = [true, false]
"""


def _cli(*args):
    from lnsmadam.cli.sweep import sweep
    return CliRunner().invoke(sweep, list(args))


# -- grid files ------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ('jobs = ["nope"]', "jobs: unknown job 'nope' (known: generate, synth, build"),
    ('jobs = []', "jobs must be a non-empty list"),
    ('jobs = ["generate"]\n[axes]\nblock = ["mul"]\nlanez = [1]',
     "axes.lanez: no job of this grid (generate) has a parameter 'lanez'"),
    ('jobs = ["generate"]\n[axes]\nblock = []', "axes.block is empty"),
    ('jobs = ["generate"]\n[axes]\nblock = "mul"', "axes.block must be a list of values"),
    ('jobs = ["synth"]\n[fixed]\nblock = "mac"\nlanes = "8"',
     "fixed.lanes: lanes must be an integer"),
    ('jobs = ["synth"]\n[fixed]\nblock = "mac"\ntarget = "xilinx"',
     "fixed.target: target must be one of ice40, ecp5, got 'xilinx' (job synth)"),
    ('jobs = ["generate"]\n[fixed]\nblock = "adder"', "block must be one of"),
    ('jobs = ["build"]\n[fixed]\nlanes = 1\n[axes]\nlanes = [1, 2]',
     "axes.lanes: also set in fixed.lanes"),
    ('jobs = ["cycles"]\n[axes]\nsizes = [[64, 16, 10], 7]',
     "axes.sizes: sizes must be a non-empty list of integers"),
    ('jobs = ["train-golden"]\n[fixed]\noptimizer = "rmsprop"', "optimizer must be one of"),
    ('jobs = ["cycles"]\nwhat = 1', "unknown top-level entry 'what'"),
    ('jobs = ["cycles"]\n[axes\n', "not valid TOML"),
    ('jobs = ["cycles"]\n[axes]\nseed = [0, 1]\n[report]\naggregate = "lanes"',
     "report.aggregate must be a key that varies between points (seed), got 'lanes'"),
    ('jobs = ["cycles"]\n[axes]\nseed = [0, 1]\n[report]\naggregate = "seed"\nmetrics = "a"',
     "report.metrics must be a non-empty list of column names"),
    ('jobs = ["cycles"]\n[report]\nmetrics = ["a"]', "report.metrics needs report.aggregate"),
    ('jobs = ["cycles"]\n[report]\nmedian = true', "report.median: unknown entry"),
    # empty cases and [report] are refused like an empty axis
    ('jobs = ["cycles"]\ncases = []', "cases is empty: give at least one [[cases]] table"),
    ('jobs = ["cycles"]\n[report]', "report is empty: give report.aggregate"),
    # the jobs' own checks run at load (--list included), not at run time
    ('jobs = ["asic"]\n[fixed]\nblock = "mul"\nclock_ns = nan',
     "fixed.clock_ns: clock_ns must be a finite number (clock period in ns), got nan (job "
     "asic)"),
    ('jobs = ["generate"]\n[fixed]\nblock = "mul"\nbits = 99',
     "fixed.bits: bits must be in [3, 24], got 99 (job generate)"),
    ('jobs = ["generate"]', "block is required (one of mac, int8-mac, fp8-mac, fp32-mac, mul, "
     "convert, update) (job generate): set block in [fixed], [axes] or [[cases]]"),
    ('jobs = ["synth"]\n[fixed]\nblock = "mul"\nname = "module"',
     "fixed.name: name must not be a Verilog/SystemVerilog keyword, got 'module' (job synth)"),
    ('jobs = ["generate"]\n[fixed]\nblock = "mul"\n[axes]\naxis = [false, true]',
     "axes.axis: axis applies to the streaming blocks"),
    ('jobs = ["generate"]\n[fixed]\nblock = "convert"\ndirection = "to-linear"\nacc_bits = 20',
     "fixed.acc_bits: acc_bits has no effect with direction to-linear: leave it out (job "
     "generate)"),
    ('jobs = ["area"]\n[fixed]\ndesign = "fp32"\nlanes = 2',
     'point {"design":"fp32","lanes":2}: the fp32 baseline has 1 lane (job area)'),
    ('jobs = ["asic"]\n[fixed]\nblock = "mul"\nlib = "sky130-area"\nclock_ns = 5.0',
     "fixed.clock_ns: clock_ns has no effect with lib sky130-area (area only)"),
    ('jobs = ["train-golden"]\n[fixed]\noptimizer = "sgd"\nbits = 6',
     "fixed.optimizer: optimizer sgd has no parameter bits (job train-golden)"),
    ('jobs = ["train-golden"]\n[fixed]\nlr = inf', "fixed.lr: lr must be a finite number"),
    ('jobs = ["area"]\n[fixed]\npnr_seed = 3', "fixed.pnr_seed: pnr_seed has no effect "
     "without pnr = true (job area)"),
    ('jobs = ["area"]\n[fixed]\ndesign = "lns.table"\nlanes = 2',
     "fixed.lanes: lanes: lns.table is one lane's part, so lanes must be 1"),
    ('jobs = ["build"]\n[fixed]\nboard = "icebreaker"\nn_records = 65535',
     "fixed.n_records: n_records must be <= 1985 for 64 inputs"),
    ('jobs = ["build"]\n[fixed]\ndesign = "standin"\nlanes = 2',
     "point {\"design\":\"standin\",\"lanes\":2}: unknown config option(s) lanes"),
    ('jobs = ["cycles"]\n[fixed]\nsizes = [64]',
     "fixed.sizes: sizes must start with 64 (the digits' pixels) and end with 10"),
    ('jobs = ["train-golden"]\n[axes]\nsizes = [[64, 4, 10], [10, 4, 10]]',
     "axes.sizes: sizes must start with 64 (the digits' pixels) and end with 10 (their "
     "classes), got [10, 4, 10] (job train-golden)"),
    ('jobs = ["cycles"]\n[fixed]\nsizes = [64, 64, 10]\nlanes = 64',
     "fixed.lanes: lanes must be at most 32 for 2 layers"),
])
def test_grid_errors_are_one_line(text, message):
    with pytest.raises(GridError) as e:
        parse(text, "g.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("g.toml: ") and message in msg, msg


def test_grid_verify_and_asic_need_their_extras(monkeypatch):
    from lnsmadam.sweep import jobs
    from lnsmadam.sweep.jobs import asic, verify
    assert {"verify", "asic"} <= set(jobs.available())     # [dev] has [sim] and [boards]
    for mod, extra in ((verify, "sim"), (asic, "boards")):
        monkeypatch.setattr(mod, "AVAILABLE", False)
        name = mod.__name__.rsplit(".", 1)[1]
        with pytest.raises(GridError, match=rf"job '{name}' needs .*\[{extra}\] extra"):
            parse(f'jobs = ["{name}"]\n[fixed]\nblock = "mul"')


def test_grid_expansion_cases_and_keys():
    g = parse("""
jobs = ["build"]
[fixed]
pnr_seed = 1
[axes]
lanes = [1, 2]
[[cases]]
board = "icebreaker"
[[cases]]
board = "ulx3s-85f"
clk_freq = 30e6
""")
    assert [(p.config["lanes"], p.config["board"]) for p in g.points] == [
        (1, "icebreaker"), (1, "ulx3s-85f"), (2, "icebreaker"), (2, "ulx3s-85f")]
    assert g.points[1].config == {"pnr_seed": 1, "lanes": 1, "board": "ulx3s-85f",
                                  "clk_freq": 30e6}
    assert g.varied == ["lanes", "board", "clk_freq"]
    # the key does not depend on key order or on 30e6 being written as a float
    assert point_key({"clk_freq": 30000000, "board": "ulx3s-85f", "lanes": 1, "pnr_seed": 1}) \
        == g.points[1].key
    assert len({p.key for p in g.points}) == 4
    assert g.points[0].job_config("build") == g.points[0].config


def test_grid_size_is_counted_before_expanding():
    """10^9 points: refused from the axes' lengths at once (it used to take all the RAM)."""
    from lnsmadam.sweep.grid import MAX_POINTS
    axes = "\n".join(f"{k} = {list(range(10))}" for k in
                     ("seed", "epochs", "lr_step", "g_bound", "beta_k", "bits", "p_scale",
                      "state_man_bits", "weight_bits"))
    t0 = time.monotonic()
    with pytest.raises(GridError) as e:
        parse(f'jobs = ["train-golden"]\n[axes]\n{axes}', "astro.toml")
    assert time.monotonic() - t0 < 1
    assert str(e.value) == (
        f"astro.toml: the grid has 1000000000 points (10 seed x 10 epochs x 10 lr_step x 10 "
        f"g_bound x 10 beta_k x 10 bits x 10 p_scale x 10 state_man_bits x 10 weight_bits), "
        f"more than the maximum of {MAX_POINTS}: split it into smaller grids")
    # cases count too: 2 x 3 cases over the limit of 5
    import lnsmadam.sweep.grid as grid_mod
    text = ('jobs = ["cycles"]\ncases = [{lanes = 1}, {lanes = 2}, {lanes = 4}]\n'
            '[axes]\nseed = [0, 1]')
    assert len(parse(text).points) == 6
    old, grid_mod.MAX_POINTS = grid_mod.MAX_POINTS, 5
    try:
        with pytest.raises(GridError, match=r"the grid has 6 points \(2 seed x 3 cases\), more "
                                            r"than the maximum of 5"):
            parse(text)
    finally:
        grid_mod.MAX_POINTS = old


def test_grid_file_not_utf8(tmp_path):
    from lnsmadam.sweep.grid import load
    bad = tmp_path / "binary.toml"
    bad.write_bytes(b"\xff\xfejobs = 1\n")
    with pytest.raises(GridError) as e:
        load(bad)
    assert str(e.value) == f"{bad}: not valid TOML (not UTF-8 text: byte 0xff at offset 0)"
    res = _cli(str(bad), "--list")
    assert res.exit_code == 2 and res.output == f"error: {e.value}\n"


def test_grid_job_checks_run_once_per_config():
    """The block is built once per distinct block config (a name axis builds it once)."""
    from lnsmadam.sweep.jobs import _blocks
    _blocks._refusal.cache_clear()
    g = parse('jobs = ["generate", "synth"]\n[fixed]\nblock = "mul"\n[axes]\n'
              f'name = {[f"n{i}" for i in range(200)]}\ntarget = ["ice40", "ecp5"]'
              .replace("'", '"'))
    assert len(g.points) == 400 and _blocks._refusal.cache_info().misses == 1


def test_grid_twice_the_same_point_is_refused():
    with pytest.raises(GridError, match="same config"):
        parse('jobs = ["cycles"]\n[axes]\nlanes = [1, 1]')


# -- the report ------------------------------------------------------------------------
def test_pareto_front():
    rows = [{"logic": 100, "us_per_sample": 10.0, "test_acc": 0.9},
            {"logic": 200, "us_per_sample": 5.0, "test_acc": 0.9},
            {"logic": 200, "us_per_sample": 10.0, "test_acc": 0.9},     # dominated by both
            {"logic": 300, "us_per_sample": 20.0, "test_acc": 0.95},    # best accuracy
            {"logic": 50, "status": "failed"}]
    assert report.pareto(rows) == [True, True, False, True, None]
    assert report.pareto([{"logic": 1}, {"logic": 2}]) == [None, None]   # one objective


def test_report_aggregates_over_seeds(tmp_path):
    """2 settings x 3 seeds (FP32 baselines, 2 epochs: fast), run job by job without Dask
    (engine.execute and store, what a worker and the client do); one point left pending."""
    import statistics
    grid = parse("""
jobs = ["train-golden"]
[fixed]
sizes = [64, 4, 10]
epochs = 2
[axes]
optimizer = ["sgd", "adam"]
seed = [0, 1, 2]
[report]
aggregate = "seed"
metrics = ["test_acc", "train_acc"]
""", "tiny.toml")
    out = tmp_path / "out"
    for p in grid.points[:-1]:
        assert engine.store(out, p, "train-golden", engine.execute("train-golden", p.config))
    doc = report.build(out, grid)
    acc = {(r["optimizer"], r["seed"]): r["test_acc"] for r in doc["points"]
           if r["status"] == "done"}
    assert len(acc) == 5 and len(set(acc.values())) > 1
    sgd, adam = doc["groups"]
    assert sgd["optimizer"] == "sgd" and sgd["seed"] == [0, 1, 2] and sgd["n"] == 3
    vals = [acc["sgd", s] for s in range(3)]
    assert (sgd["test_acc_median"], sgd["test_acc_min"], sgd["test_acc_max"]) == (
        statistics.median(vals), min(vals), max(vals))
    assert adam["seed"] == [0, 1] and adam["n"] == 2 and adam["missing"] == 1
    assert adam["test_acc_median"] == statistics.median([acc["adam", 0], acc["adam", 1]])
    assert sgd["train_acc_min"] <= sgd["train_acc_median"] <= sgd["train_acc_max"]
    md = (out / "sweep.md").read_text()
    assert "## Over seed: median (min..max)" in md
    assert "| optimizer | seed | n | test_acc | train_acc |" in md
    assert f"| adam | 0, 1 | 2 (1 missing) | {report._fmt(adam['test_acc_median'])} (" in md
    lines = (out / "sweep_groups.csv").read_text().splitlines()
    assert lines[0].startswith("optimizer,seed,n,missing,test_acc_median,test_acc_min")
    assert len(lines) == 3
    # without [report] there are no groups and no groups file
    plain = parse(grid.text.split("[report]")[0], "plain.toml")
    assert report.build(tmp_path / "plain", plain)["groups"] == []
    assert not (tmp_path / "plain" / "sweep_groups.csv").exists()


# -- the engine ------------------------------------------------------------------------
def test_local_cluster_four_points(tmp_path):
    grid = tmp_path / "mul.toml"
    grid.write_text(MUL_GRID)
    out = tmp_path / "out"
    res = _cli(str(grid), "-o", str(out), "--jobs", "2", "-q")
    assert res.exit_code == 0, res.output
    assert "8 jobs run, 0 already done, 0 failed" in res.output
    doc = json.loads((out / "sweep.json").read_text())
    assert [(p["bits"], p["registered"], p["status"]) for p in doc["points"]] == [
        (6, True, "done"), (6, False, "done"), (8, True, "done"), (8, False, "done")]
    for p in doc["points"]:
        folder = out / "points" / p["point"]
        gen = json.loads((folder / "generate.json").read_text())
        assert gen["ok"] and gen["config"]["bits"] == p["bits"]
        (v,) = [a for a in gen["artefacts"] if a.endswith(".v")]
        assert "module lns_mul_b" in (folder / "generate" / v).read_text()
        syn = json.loads((folder / "synth.json").read_text())["result"]
        assert syn["parameters"]["registered"] == p["registered"]
        assert p["lut4"] == syn["lut4"] > 0
        assert p["ff"] == (p["bits"] if p["registered"] else 0)   # the output register
        assert p["latency_cycles"] == int(p["registered"])
    csv = (out / "sweep.csv").read_text().splitlines()
    assert len(csv) == 5 and csv[0].startswith("point,bits,registered,status")
    assert "| point | bits | registered | status |" in (out / "sweep.md").read_text()
    # a second run finds everything done and starts no cluster
    t0 = time.monotonic()
    res = _cli(str(grid), "-o", str(out), "-q")
    assert res.exit_code == 0 and "0 jobs run, 8 already done" in res.output
    assert time.monotonic() - t0 < 5
    # a result made by other code is stale: reused only when asked, else run again with
    # the old result kept beside the new one
    code = engine.code_version()
    assert gen["code"] == code and code.startswith("0.1.0+")
    old = json.loads((folder / "generate.json").read_text())
    (folder / "generate.json").write_text(json.dumps({**old, "code": "0.0.9+0123456789ab"}))
    res = _cli(str(grid), "-o", str(out), "-q", "--reuse-stale")
    assert res.exit_code == 0 and "1 results were made by other lnsmadam code" in res.output
    assert "reused (--reuse-stale)" in res.output and "0 jobs run, 8 already done" in res.output
    res = _cli(str(grid), "-o", str(out), "-q")
    assert res.exit_code == 0 and "1 jobs run, 7 already done" in res.output, res.output
    assert "kept as <job>.stale.json" in res.output
    assert json.loads((folder / "generate.stale.json").read_text())["code"] == "0.0.9+0123456789ab"
    assert json.loads((folder / "generate.json").read_text())["code"] == code
    # the report is rebuilt from the folder alone
    doc = json.loads((out / "sweep.json").read_text())
    (out / "sweep.json").unlink()
    res = _cli("--report-only", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert json.loads((out / "sweep.json").read_text())["points"] == doc["points"]


def _done(out: Path) -> list[Path]:
    return [p for p in (out / "points").glob("*/train-golden.json")] \
        if (out / "points").exists() else []


def test_killed_sweep_resumes(tmp_path):
    grid = tmp_path / "train.toml"
    grid.write_text('jobs = ["train-golden"]\n[fixed]\nsizes = [64, 4, 10]\nepochs = 1\n'
                    '[axes]\nseed = [0, 1, 2, 3]\n')
    out = tmp_path / "out"
    cmd = [str(LNSMADAM), "sweep", str(grid), "-o", str(out), "--jobs", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _done(out) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)     # the sweep and its Dask workers
        proc.wait()
    first = {p: p.stat().st_mtime_ns for p in _done(out)}
    assert 1 <= len(first) < 4, "the sweep was not killed mid-run"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{4 - len(first)} jobs run, {len(first)} already done, 0 failed" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in first} == first     # not redone
    doc = json.loads((out / "sweep.json").read_text())
    assert [p["seed"] for p in doc["points"]] == list(range(4))
    assert all(p["status"] == "done" and 0 < p["test_acc"] <= 1 for p in doc["points"])
    assert not list(out.rglob(".*.tmp"))


def test_remote_scheduler(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
              "cwd": tmp_path, "start_new_session": True}
    sched = subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                              "--no-dashboard", "--scheduler-file", str(sched_file)], **common)
    procs = [sched]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen(
            [str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1",
             "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "2GiB"], **common))
        text = 'jobs = ["generate"]\n[fixed]\nblock = "mac"\n[axes]\nlanes = [2]\n'
        grid = tmp_path / "g.toml"
        grid.write_text(text)
        out = tmp_path / "out"
        res = _cli(str(grid), "-o", str(out), "--scheduler", address, "--wait", "30", "-q")
        assert res.exit_code == 0, res.output
        assert "1 jobs run, 0 already done, 0 failed" in res.output
        # a job failing on a worker is recorded: a point the grid check would refuse (300
        # lanes), put into the grid by hand, fails at run time
        from lnsmadam.sweep.grid import Point
        g = parse(text, str(grid))
        g.points.append(Point({"block": "mac", "lanes": 300}, g.jobs))
        # (reuse_stale: the first result stays done even if the sources changed meanwhile)
        s = engine.run(g, out, scheduler=address, progress=False, reuse_stale=True)
        assert (s["ran"], s["skipped"], s["failed"]) == (1, 1, 1)
        doc = report.build(out, g)
        ok, bad = doc["points"]
        assert ok["status"] == "done" and ok["ports"] > 0
        assert bad["status"] == "failed"
        assert "ValueError: lanes must be in [1, 256], got 300" in bad["errors"]["generate"]
        tb = (out / "points" / bad["point"] / "generate.traceback.txt").read_text()
        assert "Traceback" in tb and "ValueError" in tb
        assert "lanes must be in [1, 256]" in (out / "sweep.md").read_text()
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# -- options, -o and --report-only: refused before anything starts ---------------------------
def _one_error(res, *parts):
    """One ``error:`` line containing ``parts``, exit status 2, nothing else printed (no
    "sweep ... on N workers" header, no traceback)."""
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    for part in parts:
        assert part in res.output, res.output


@pytest.fixture
def ok_grid(tmp_path):
    grid = tmp_path / "ok.toml"
    grid.write_text('jobs = ["generate"]\n[fixed]\nblock = "mul"\n[axes]\nbits = [6, 8]\n')
    return grid


@pytest.mark.parametrize("value", ["-1", "-5GiB", "1B", "100kB", "", "abc", "nan", "10%", "0",
                                   "0GiB", "255MiB", "1e30GiB", "1000TiB", "4"])
def test_memory_limit_refused(tmp_path, ok_grid, value):
    res = _cli(str(ok_grid), "-o", str(tmp_path / "o"), "--memory-limit", value, "-q")
    _one_error(res, "error: --memory-limit must be 'auto' or a size in [256MiB, ",
               f"got {value!r}")
    assert not (tmp_path / "o").exists()


def test_memory_limit_parsed():
    assert engine.parse_memory_limit("auto") == "auto"
    assert engine.parse_memory_limit("512MiB") == 512 << 20
    assert engine.parse_memory_limit(" 1.5 gb ") == 1_500_000_000
    assert engine.parse_memory_limit("1GiB") == 1 << 30


@pytest.mark.parametrize("value", ["inf", "1e308", "-1", "nan", "0", "0.5", "86401", "x"])
def test_wait_refused(tmp_path, ok_grid, value):
    res = _cli(str(ok_grid), "-o", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9",
               "--wait", value, "-q")
    _one_error(res, f"error: --wait must be a number of seconds in [1, 86400], got {value!r}")


@pytest.mark.parametrize("value", ["", "nonsense", "http://x:1", "tcp://host", "tcp://h:0",
                                   "tcp://h:65536", "tcp://h:1/x"])
def test_scheduler_address_refused(tmp_path, ok_grid, value):
    res = _cli(str(ok_grid), "-o", str(tmp_path / "o"), "--scheduler", value, "-q")
    _one_error(res, "error: --scheduler must be a scheduler address such as tcp://host:8786",
               f"got {value!r}")


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "tcp://h:1", "-j", "7", "--memory-limit", "3GiB"],
     "error: --jobs, --memory-limit have no effect with --scheduler"),
    (["--scheduler", "tcp://h:1", "--memory-limit", "auto"],
     "error: --memory-limit has no effect with --scheduler"),
    (["--wait", "5"], "error: --wait has no effect without --scheduler: leave it out"),
    (["-j", "0"], "error: --jobs must be in [1, 1024], got 0"),
])
def test_option_conflicts_refused(tmp_path, ok_grid, args, message):
    res = _cli(str(ok_grid), "-o", str(tmp_path / "o"), *args, "-q")
    _one_error(res, message)


@pytest.mark.parametrize("args, message", [
    (["--list", "-o", "DIR"], "error: --out has no effect with --list"),
    (["--list", "-j", "3", "--reuse-stale"], "error: --jobs, --reuse-stale have no effect "
                                             "with --list: leave them out"),
    (["--report-only", "-o", "DIR", "--scheduler", "tcp://h:1"],
     "error: --scheduler has no effect with --report-only"),
    (["--report-only", "-o", "DIR", "--list"], "error: --list has no effect with --report-only"),
])
def test_moot_options_refused(tmp_path, ok_grid, args, message):
    res = _cli(str(ok_grid), *[str(tmp_path / a) if a == "DIR" else a for a in args])
    _one_error(res, message)


def test_out_under_a_file(tmp_path, ok_grid):
    (tmp_path / "afile").write_text("hello\n")
    res = _cli(str(ok_grid), "-o", str(tmp_path / "afile" / "sub"), "-q")
    _one_error(res, f"error: -o: cannot create {tmp_path / 'afile' / 'sub'}: "
                    f"{tmp_path / 'afile'} is a file")


def test_out_of_user_files_is_never_written(tmp_path, ok_grid):
    user = tmp_path / "user"
    (user / "points").mkdir(parents=True)
    files = {"notes.txt": "important\n", "sweep.md": "x\n", "sweep.json": '{"mine":true}\n'}
    for name, text in files.items():
        (user / name).write_text(text)
    res = _cli(str(ok_grid), "-o", str(user), "-q")
    _one_error(res, f"error: -o: {user} already holds files that lnsmadam did not write",
               "give a new or empty directory, or an earlier sweep's folder")
    assert sorted(p.name for p in user.iterdir()) == sorted([*files, "points"])
    assert all((user / n).read_text() == t for n, t in files.items())
    # new, empty, marked and earlier (unmarked: grid.toml beside points/) folders are fine
    (tmp_path / "empty").mkdir()
    (tmp_path / "old" / "points").mkdir(parents=True)
    (tmp_path / "old" / "grid.toml").write_text(ok_grid.read_text())
    (tmp_path / "marked").mkdir()
    (tmp_path / "marked" / engine.OUT_MARKER).write_text("{}")
    (tmp_path / "marked" / "notes.txt").write_text("mine")
    for name in ("new/sub", "empty", "old", "marked"):
        assert engine.check_out_dir(tmp_path / name) == tmp_path / name
    assert not (tmp_path / "new").exists()


def test_report_only_refuses_another_grid(tmp_path, ok_grid):
    out = tmp_path / "out"
    (out / "points").mkdir(parents=True)
    (out / "grid.toml").write_text(ok_grid.read_text())
    other = tmp_path / "other.toml"
    other.write_text('jobs = ["generate"]\n[fixed]\nblock = "mul"\n[axes]\nbits = [5]\n')
    res = _cli(str(other), "--report-only", "-o", str(out))
    _one_error(res, f"error: --report-only: {other} is not the grid of {out} (its grid.toml "
                    f"differs): leave GRID_FILE out")
    assert not (out / "sweep.json").exists()
    # the same grid (even spelt differently) is used, with its title
    same = tmp_path / "same.toml"
    same.write_text("# the same grid\n" + ok_grid.read_text().replace("[6, 8]", "[6,8]"))
    res = _cli(str(same), "--report-only", "-o", str(out))
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["title"] == "same" and [p["status"] for p in doc["points"]] == ["pending"] * 2
    res = _cli("--report-only", "-o", str(out))
    assert res.exit_code == 0, res.output


def test_no_scheduler_is_one_line_error(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('jobs = ["generate"]\n[fixed]\nblock = "mul"\n')
    res = _cli(str(grid), "-o", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9",
               "--wait", "2", "-q")
    assert res.exit_code == 2
    assert "error: --scheduler: cannot connect to tcp://127.0.0.1:9" in res.output


# -- the jobs without Dask -------------------------------------------------------------
def test_execute_records_a_failure_and_its_logs():
    p = engine.execute("generate", {"block": "mul", "bits": 2})
    assert not p["ok"] and p["error"].startswith("ValueError: bits must be in [3, ")
    assert "Traceback" in p["traceback"]


@pytest.mark.parametrize("until", ["synth", "pack"])
def test_build_job_partial(tmp_path, until):
    from lnsmadam.sweep.jobs import build
    r = build.run({"board": "icebreaker", "design": "standin", "until": until}, tmp_path)
    m = build.metrics(r)
    assert r["until"] == until and r["ok"] and r["bitstream"] is None
    assert m["fmax_mhz"] is None and m["lut4"] > 0 and m["build_ok"]
    assert ("logic" in m) == (until == "pack")
    if until == "pack":
        assert m["spram"] == 4 and m["logic"] > 0
    assert r["artefacts"] == ["report.json", "report.md"]


def test_train_golden_job_matches_experiment(tmp_path):
    from lnsmadam.golden.data import load_digits_split
    from lnsmadam.golden.experiment import run
    from lnsmadam.golden.mlp import MLPConfig
    from lnsmadam.golden.update import MadamConfig
    from lnsmadam.sweep.jobs import train_golden
    cfg = {"sizes": [64, 4, 10], "epochs": 1, "seed": 3, "lr_step": 2, "p_scale": 20.0}
    r = train_golden.run(cfg, tmp_path)
    want = run("lns-madam", load_digits_split(0), 1, 3, lns_config=MLPConfig(
        sizes=(64, 4, 10), madam=MadamConfig(lr_step=2), p_scale=20.0))
    assert r["history"] == want.history
    r = train_golden.run({"optimizer": "sgd", "epochs": 1, "lr": 0.01}, tmp_path)
    assert r["config"]["lr"] == 0.01 and 0 < train_golden.metrics(r)["test_acc"] <= 1
    with pytest.raises(ValueError, match="optimizer sgd has no parameter bits"):
        train_golden.run({"optimizer": "sgd", "bits": 6}, tmp_path)


def test_train_golden_job_storage_updater(tmp_path):
    """lns-sgd: the integer model at 5 bits with 5-bit stored weights that SGD updates
    directly (docs/results.md §3); the job's flat keys give that MLPConfig."""
    from lnsmadam.golden.data import load_digits_split
    from lnsmadam.golden.experiment import StorageUpdater, run
    from lnsmadam.golden.format import LNSFormat
    from lnsmadam.golden.mlp import LNSMLP, MLPConfig
    from lnsmadam.golden.update import MadamConfig
    from lnsmadam.sweep.jobs import train_golden
    fmt, w = LNSFormat.from_gamma(5, 2), LNSFormat.from_gamma(5, 2, underflow="min")
    cfg = MLPConfig(sizes=(64, 4, 10), fmt=fmt, madam=MadamConfig(weight=w))
    r = train_golden.run({"optimizer": "lns-sgd", "sizes": [64, 4, 10], "epochs": 1,
                          "bits": 5, "gamma": 2, "weight_bits": 5, "weight_gamma": 2,
                          "lr": 0.1}, tmp_path)
    want = run("lns-sgd", load_digits_split(0), 1, 0, lns_config=cfg, opt_kwargs={"lr": 0.1})
    assert r["history"] == want.history and r["config"]["weight_format"]["bits"] == 5
    assert r["config"]["updater"] == {"optimizer": "sgd", "lr": 0.1}
    # one step by hand: decode, w - lr * g, re-encode
    model = LNSMLP(cfg, 0)
    _, grads = model.gradients(load_digits_split(0).x_train[0], 3)
    before = [w.decode(u, b) for u, b in zip(model.u, model.u_bias)]
    StorageUpdater("sgd", {"lr": 0.1})(model, grads)
    for l, g in enumerate(grads):
        step = before[l].astype(np.float32) - np.float32(0.1) * fmt.decode(
            g.codes, g.bias).astype(np.float32)
        assert np.array_equal(model.u[l], w.encode(step, model.u_bias[l]))
    with pytest.raises(ValueError, match="optimizer lns-adam has no parameter lr_step"):
        train_golden.run({"optimizer": "lns-adam", "lr_step": 2}, tmp_path)


def test_cycles_job_on_the_twin(tmp_path):
    from lnsmadam.sweep.jobs import cycles
    r = cycles.run({"sizes": [64, 16, 10], "lanes": 1, "clock_mhz": 12.0}, tmp_path)
    m = cycles.metrics(r)
    assert r["ideal_per_sample"] == 1380 and r["n_train"] == 1437 and r["mode"] == "exact"
    assert 0.5 < m["efficiency"] <= 1.0 and m["bit_exact"]
    assert m["epoch_s"] == pytest.approx(r["epoch_cycles"] / 12e6)
    assert cycles.ideal_cycles((64, 64, 10), 4) == 5460 / 4
    assert cycles.ideal_cycles((64, 64, 10), 4, "pipelined") == 4160 / 4
    row = {"required_mhz": None, **m}
    report._derive(row, {"clock_mhz": 12.0})
    assert row["us_per_sample"] == pytest.approx(m["cycles_per_sample"] / 12.0)


@pytest.mark.parametrize("required, fmax, clock_mhz, run", [
    (50.0, 42.0, None, 42.0),      # missed its clock: it runs at its Fmax, not at 50
    (18.0, 20.1, None, 18.0),      # met it: the clock asked for
    (50.0, None, 12.0, 50.0),      # no Fmax (a synth-only build): the required clock
    (None, None, 12.0, 12.0),      # no build: the cycles job's clock
])
def test_report_us_per_sample_uses_the_clock_the_design_runs_at(required, fmax, clock_mhz,
                                                                  run):
    from lnsmadam.sweep import report
    row = {"required_mhz": required, "fmax_mhz": fmax, "cycles_per_sample": 154.0,
           "n_train": 1000}
    report._derive(row, {} if clock_mhz is None else {"clock_mhz": clock_mhz})
    assert row["run_mhz"] == run
    assert row["us_per_sample"] == pytest.approx(154.0 / run)
    assert row["epoch_s"] == pytest.approx(154.0 / run * 1000 / 1e6)


def test_cycles_job_takes_the_points_board():
    """A point that builds for a board measures that board's engine on the twin: the
    board's engine fields, unless the point sets them."""
    from lnsmadam.boards.platforms import get_board
    from lnsmadam.sweep.jobs import cycles
    g = parse('jobs = ["build", "cycles"]\n[fixed]\nboard = "icebreaker"\nlanes = 1\n'
              '[axes]\nread_reg = [0, 1]\n', "b.toml")
    ice = get_board("icebreaker").config
    for p, rr in zip(g.points, (0, 1)):
        jc = p.job_config("cycles")
        assert jc["board"] == "icebreaker"
        soc = cycles.soc_config(jc)
        assert (soc.state_man_bits, soc.beta_k) == (7, 5)    # state12: 24 bits per weight
        assert soc.read_reg == rr
        for k in cycles.ENGINE_FIELDS:
            if k in ice and k != "read_reg":
                assert getattr(soc, k) == ice[k], k
    assert cycles.soc_config({"lanes": 1}).state_man_bits == 12


def test_generate_job_with_axis(tmp_path):
    from lnsmadam.sweep.jobs import generate
    r = generate.run({"block": "fp32-mac", "pipeline": 1, "axis": True}, tmp_path)
    assert r["name"] == "fp32_mac" and r["timing"]["latency_cycles"] == 3
    assert sorted(r["artefacts"]) == ["fp32_mac.json", "fp32_mac.v", "fp32_mac.vlt",
                                      "fp32_mac_axis.v", "fp32_mac_inst.vh"]
    assert all((tmp_path / a).is_file() for a in r["artefacts"])
    with pytest.raises(ValueError, match="axis applies to the streaming blocks"):
        generate.run({"block": "mul", "axis": True}, tmp_path / "mul")


def test_verify_job(tmp_path, monkeypatch):
    from lnsmadam.sweep.jobs import verify
    monkeypatch.setenv("LNSMADAM_SIM_BUILD", str(tmp_path / "build"))
    (tmp_path / "work").mkdir()
    r = verify.run({"block": "mul", "bits": 5, "gamma": 2, "sim": "icarus", "waves": True,
                    "seed": 2}, tmp_path / "work")
    assert r["passed"] and verify.metrics(r) == {"verified": True}
    assert r["simulators"]["icarus"]["tests"] == 1 and list(r["simulators"]) == ["icarus"]
    assert r["artefacts"] == ["verify.log", "lns_mul_b5g2_icarus.fst"]
    assert "icarus: PASS" in (tmp_path / "work" / "verify.log").read_text()
    assert (tmp_path / "work" / "lns_mul_b5g2_icarus.fst").stat().st_size > 0


def test_asic_job(tmp_path):
    from lnsmadam.sweep.jobs import asic
    r = asic.run({"block": "mul", "bits": 5, "gamma": 2, "lib": "sky130-area"}, tmp_path)
    m = asic.metrics(r)
    assert r["block"] == "mul" and r["report"]["parameters"]["bits"] == 5
    assert m["area_um2"] == r["report"]["area_um2"] > 0 and m["asic_cells"] > 0
    assert "fmax_mhz" not in m and "energy_per_op_pj" not in m          # area only
    assert {"report.json", "report.md", "net.v", "asic.log"} <= set(r["artefacts"])
    with pytest.raises(ValueError, match=r"clock_ns has no effect with lib sky130-area "
                                         r"\(area only\)"):
        asic.run({"block": "mul", "lib": "sky130-area", "clock_ns": 5.0}, tmp_path / "x")
    with pytest.raises(ValueError, match="block 'mul' has no training stimulus"):
        asic.run({"block": "mul"}, tmp_path / "y")
