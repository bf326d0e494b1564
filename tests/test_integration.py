# amaranth: UnusedElaboratable=no
"""What an outsider integrating a generated block relies on (docs/integration.md).

* every block's Verilog is defined (no X or Z on any net) from time 0 on, under Icarus in
  both Verilog-2005 and SystemVerilog semantics, with its inputs set to 0 at time 0 and
  never changed (the hard case: only the reset and the clock move, so a combinational
  block whose inputs are registers that keep their initial value is never evaluated);
* ``verilator --lint-only -Wall`` with the shipped waiver file reports nothing;
* the instantiation template compiles;
* the AXI4-Stream wrappers, driven with random gaps and backpressure, equal the golden model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal
from amaranth.sim import Simulator
from click.testing import CliRunner

from lnsmadam.cli.main import cli
from lnsmadam.golden.mac import MACConfig, dot
from lnsmadam.golden.update import MadamConfig, madam_step
from lnsmadam.hw.axis import AXIStreamWrapper
from lnsmadam.hw.mac import LNSMAC
from lnsmadam.hw.update import MadamUpdate
from lnsmadam.sim.runner import check_simulator

BLOCKS = {
    "mac4": (["mac", "--lanes", "4", "--axis"], "lns_mac_b8g8l4"),
    "int8": (["int8-mac", "--lanes", "3", "--axis"], "int8_mac_l3"),
    "fp8": (["fp8-mac", "--lanes", "2", "--b-format", "e5m2", "--axis"], "fp8_mac_e4m3_e5m2_l2"),
    "fp32": (["fp32-mac", "--axis"], "fp32_mac"),
    "mul": (["mul"], "lns_mul_b8g8"),
    "mulc": (["mul", "--combinational", "--name", "mul_comb"], "mul_comb"),
    "tolin": (["convert", "--direction", "to-linear", "--registered"], "to_linear_b8g8"),
    "fromlin": (["convert", "--direction", "from-linear"], "from_linear_b8g8"),
    "update": (["update", "--axis"], "madam_update_b8g8w12"),
    # the configuration whose ROM output stayed X from reset under Icarus 11 (issue 14)
    "update_bc6": (["update", "--bias-correction", "--pipeline", "6"],
                   "madam_update_b8g8w12bc"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("rtl")
    for args, _ in BLOCKS.values():
        res = CliRunner().invoke(cli, ["generate", *args, "-o", str(out)])
        assert res.exit_code == 0, res.output
    return out


def _testbench(meta_ports: list[dict], top: str) -> str:
    """Every input set to 0 at time 0 (rst to 1 for two cycles) and never changed but clk,
    every net dumped to a VCD. (The inputs are assigned in the initial block, as a
    testbench does: SystemVerilog runs declaration initialisers before time 0, and Icarus
    11 then never propagates them into the module's input ports.)"""
    decl, init, conn = [], [], []
    for p in meta_ports:
        rng = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        name = p["name"]
        if p["direction"] == "input":
            decl.append(f"reg {rng}{name};")
            init.append(f"{name} = {int(name == 'rst')};")
        else:
            decl.append(f"wire {rng}{name};")
        conn.append(f".{name}({name})")
    clocked = any(p["name"] == "clk" for p in meta_ports)
    body = ["always #5 clk = ~clk;"] if clocked else []
    reset = "#22 rst = 0;" if any(p["name"] == "rst" for p in meta_ports) else ""
    return "\n".join([
        "`timescale 1ns/1ps", "module tb;", *decl, *body,
        f"{top} dut({', '.join(conn)});",
        "initial begin", *init, '$dumpfile("tb.vcd");', "$dumpvars(0, dut);", reset,
        "#100 $finish;", "end", "endmodule", ""])


def _undefined_after_time_0(vcd: str) -> list[str]:
    """Names of the signals whose value contains x or z at any time after 0, or at the end."""
    names, value, bad, t = {}, {}, set(), 0
    for line in vcd.splitlines():
        m = re.match(r"\$var \S+ \d+ (\S+) (\S+)", line)
        if m:
            names.setdefault(m.group(1), m.group(2))
            continue
        if line.startswith("#"):
            t = int(line[1:])
            continue
        m = re.match(r"^(?:b([01xzXZ]+) |([01xzXZ]))(\S+)$", line.strip())
        if m:
            val, code = m.group(1) or m.group(2), m.group(3)
            value[code] = val
            if t > 0 and re.search("[xzXZ]", val):
                bad.add(names.get(code, code))
    bad |= {names.get(c, c) for c, v in value.items() if re.search("[xzXZ]", v)}
    return sorted(bad)


@pytest.mark.parametrize("std", ["2005", "2012"])
@pytest.mark.parametrize("key", list(BLOCKS))
def test_defined_from_time_0_in_icarus(generated, tmp_path, key, std):
    iverilog = check_simulator("icarus")
    _, name = BLOCKS[key]
    meta = json.loads((generated / f"{name}.json").read_text())
    (tmp_path / "tb.v").write_text(_testbench(meta["ports"], name))
    subprocess.run([iverilog, f"-g{std}", "-o", "tb.vvp", "tb.v",
                    str(generated / f"{name}.v")], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    subprocess.run([shutil.which("vvp"), "-n", "tb.vvp"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    bad = _undefined_after_time_0((tmp_path / "tb.vcd").read_text())
    assert not bad, f"{name} (-g{std}) has X/Z after time 0 on: {bad[:10]}"


@pytest.mark.parametrize("key", list(BLOCKS))
def test_lint_clean_with_the_waiver_file(generated, key):
    verilator = check_simulator("verilator")
    _, name = BLOCKS[key]
    meta = json.loads((generated / f"{name}.json").read_text())
    tops = [(f"{name}.v", name)]
    if "axis" in meta:
        tops.append((meta["axis"]["verilog"], meta["axis"]["top_module"]))
    vlt = generated / meta["files"]["lint_waivers"]
    assert "lint_off" in vlt.read_text()
    for verilog, top in tops:
        res = subprocess.run([verilator, "--lint-only", "-Wall", "--top-module", top,
                              str(vlt), str(generated / verilog)], capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]


def test_waivers_are_needed_and_scoped(generated):
    """Without the file -Wall complains; the file waives only its own rules and files."""
    verilator = check_simulator("verilator")
    v = generated / "lns_mac_b8g8l4.v"
    res = subprocess.run([verilator, "--lint-only", "-Wall", str(v)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode != 0 and "%Warning" in res.stderr
    rules = re.findall(r"lint_off -rule (\w+) -file \"\*(\S+)\"",
                       (generated / "lns_mac_b8g8l4.vlt").read_text())
    assert {f for _, f in rules} == {"lns_mac_b8g8l4.v", "lns_mac_b8g8l4_axis.v"}
    assert {r for r, _ in rules} == {"DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL",
                                     "WIDTHEXPAND", "WIDTHTRUNC"}


@pytest.mark.parametrize("key", ["mac4", "update", "mulc"])
def test_instance_template_compiles(generated, tmp_path, key):
    iverilog = check_simulator("icarus")
    _, name = BLOCKS[key]
    (tmp_path / "top.v").write_text(f'module top;\n`include "{name}_inst.vh"\nendmodule\n')
    subprocess.run([iverilog, "-g2012", "-I", str(generated), "-s", "top", "-o", "a.out",
                    "top.v", str(generated / f"{name}.v")], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)


# -- the AXI4-Stream wrappers, in simulation -------------------------------------------------
def _axis_run(wrapper, beats: list[tuple[int, int]], n_out: int, seed: int,
              side: dict | None = None):
    """Drive ``(tdata, tlast)`` beats into ``wrapper`` with random TVALID gaps and TREADY
    backpressure; return the ``(tdata, tlast)`` results. The AXI rule that a presented
    beat holds until taken is checked on every cycle."""
    m = Module()
    m.domains.tb = ClockDomain()          # the wrapper's own sync domain is local to it
    m.submodules.w = w = wrapper
    m.d.comb += [w.aclk.eq(ClockSignal("tb")), w.aresetn.eq(~ResetSignal("tb"))]
    rng_in, rng_out = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    out = []

    async def producer(ctx):
        for name, value in (side or {}).items():
            ctx.set(getattr(w, name), value)
        for data, last in beats:
            while rng_in.random() < 0.3:
                ctx.set(w.s_axis_tvalid, 0)
                await ctx.tick("tb")
            ctx.set(w.s_axis_tdata, data)
            ctx.set(w.s_axis_tlast, last)
            ctx.set(w.s_axis_tvalid, 1)
            await ctx.tick("tb").until(w.s_axis_tready)
        ctx.set(w.s_axis_tvalid, 0)

    async def consumer(ctx):
        held, cycles = None, 0
        while len(out) < n_out:
            ready = rng_out.random() >= 0.3
            ctx.set(w.m_axis_tready, int(ready))
            _, _, valid, data, last = await ctx.tick("tb").sample(w.m_axis_tvalid,
                                                              w.m_axis_tdata, w.m_axis_tlast)
            if held is not None:
                assert valid and (data, last) == held, "a presented beat changed"
            held = (data, last) if valid and not ready else None
            if valid and ready:
                out.append((data, last))
            cycles += 1
            assert cycles < 100_000, "stream deadlock"

    sim = Simulator(m)
    sim.add_clock(1e-6, domain="tb")
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return out


def test_axis_mac_against_golden():
    cfg = MACConfig(lanes=4)
    wrapper = AXIStreamWrapper(LNSMAC(cfg, pipeline=3), framed=True)
    rng = np.random.default_rng(5)
    bits, lanes = cfg.fmt.bits, cfg.lanes
    vectors, beats = [], []
    for k in rng.integers(1, 20, 60):
        a, b = rng.integers(0, 256, k), rng.integers(0, 256, k)
        vectors.append((a, b))
        n = -(-k // lanes)
        pa, pb = np.pad(a, (0, n * lanes - k)), np.pad(b, (0, n * lanes - k))
        for c in range(n):
            word = 0
            for j in range(lanes):
                word |= int(pa[c * lanes + j]) << (bits * j)
                word |= int(pb[c * lanes + j]) << (bits * (lanes + j))
            beats.append((word, int(c == n - 1)))
    got = _axis_run(wrapper, beats, len(vectors), seed=1)
    acc_bits = cfg.acc_bits
    for (a, b), (data, last) in zip(vectors, got):
        acc = data & ((1 << acc_bits) - 1)
        acc -= (acc >> (acc_bits - 1)) << acc_bits
        assert acc == dot(a, b, cfg) and last == 1


def test_axis_update_against_golden():
    cfg = MadamConfig()
    eng = MadamUpdate(cfg, pipeline=5)
    wrapper = AXIStreamWrapper(eng, framed=False, depth=eng.latency + 2)
    W, V, G = cfg.weight, cfg.state, cfg.grad
    rng = np.random.default_rng(9)
    n = 200
    w = rng.integers(0, W.ncodes, n)
    v = rng.integers(0, 1 << V.bits, n)
    g = rng.integers(0, G.ncodes, n)
    last = (rng.random(n) < 0.2).astype(int)
    g_bias, e_clamp = -20, W.emax - 3
    beats = [(int(w[i]) | int(v[i]) << W.bits | int(g[i]) << (W.bits + V.bits), int(last[i]))
             for i in range(n)]
    got = _axis_run(wrapper, beats, n, seed=2, side={"g_bias": g_bias, "e_clamp": e_clamp})
    w_new, v_new, _ = madam_step(w, v, g, g_bias, e_clamp, cfg)
    for i, (data, tl) in enumerate(got):
        assert data & ((1 << W.bits) - 1) == w_new[i]
        assert (data >> W.bits) & ((1 << V.bits) - 1) == v_new[i]
        assert tl == last[i]


def test_axis_wrapper_refuses_a_non_stream_block():
    from lnsmadam.golden.format import LNSFormat
    from lnsmadam.hw.mul import LNSMul

    with pytest.raises(ValueError, match="block must have a In stream member 'i_stream'"):
        AXIStreamWrapper(LNSMul(LNSFormat(8, 3)), framed=False)
