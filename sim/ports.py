"""Port lists of Amaranth components, as they appear in the generated Verilog.

:func:`describe_ports` walks ``component.signature`` and returns, for every top-level
port of ``amaranth.back.verilog.convert(component)``, its Verilog name, direction, width
and signedness, plus, for ports whose shape is a :mod:`amaranth.lib.data` layout, the bit
fields inside it (``fields``: dotted path, offset, width, signed). The result is plain
JSON-able data: the generator writes it next to the ``.v`` file, and the cocotb testbenches
use the fields to pack and unpack stream payloads (see :mod:`lnsmadam.sim.stream`).

Amaranth names a flattened port by joining its signature path with ``__``
(``i.payload`` -> ``i__payload``); a component with a ``sync`` domain also gets ``clk`` and
``rst`` inputs. This module imports Amaranth but never cocotb.
"""

from __future__ import annotations

import re

from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data, wiring

__all__ = ["describe_ports", "layout_fields", "verilog_ports", "check_ports_match",
           "instance_template", "lint_waivers", "LINT_WAIVERS"]


def _shape(obj) -> Shape:
    return Shape.cast(obj)


def layout_fields(shape, prefix: str = "") -> list[dict]:
    """Leaf bit fields of a (possibly nested) shape, LSB-first offsets.

    A plain ``Shape`` gives one field with an empty path. Struct/union fields are joined
    with ``.``, array elements use their index (``a.3``).
    """
    out: list[dict] = []

    def walk(sh, path: str, offset: int):
        if isinstance(sh, data.Layout) or (isinstance(sh, ShapeCastable)
                                          and isinstance(getattr(sh, "_layout", None), data.Layout)):
            layout = sh if isinstance(sh, data.Layout) else sh._layout
            for name, field in layout:
                sub = f"{path}.{name}" if path else str(name)
                walk(field.shape, sub, offset + field.offset)
            return
        s = _shape(sh)
        out.append({"path": path, "offset": offset, "width": s.width, "signed": s.signed})

    walk(shape, prefix, 0)
    return out


def describe_ports(component: wiring.Component, *, clocked: bool | None = None) -> list[dict]:
    """Every port of ``component`` as it appears in its Verilog, in signature order.

    ``clocked``: add ``clk``/``rst`` (default: when the component has a ``sync`` domain,
    detected from the generated Verilog by :func:`verilog_ports`; pass it explicitly to
    avoid elaborating here).
    """
    ports: list[dict] = []
    if clocked:
        ports.append({"name": "clk", "direction": "input", "width": 1, "signed": False})
        ports.append({"name": "rst", "direction": "input", "width": 1, "signed": False})
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        sh = member.shape
        s = _shape(sh)
        entry = {
            "name": name,
            "direction": "input" if member.flow == wiring.In else "output",
            "width": s.width,
            "signed": s.signed,
        }
        fields = layout_fields(sh)
        if len(fields) > 1 or (fields and fields[0]["path"]):
            entry["fields"] = fields
        ports.append(entry)
    return ports


_PORT_RE = re.compile(
    r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(signed\s+)?(\[(\d+):(\d+)\]\s*)?\\?([A-Za-z_][\w$.]*)\s*;",
    re.M)


def verilog_ports(verilog_text: str, module: str) -> dict[str, dict]:
    """``{name: {direction, width}}`` of the ports declared in ``module`` of Yosys output."""
    m = re.search(rf"^module\s+\\?{re.escape(module)}\s*\((.*?)\);(.*?)^endmodule",
                  verilog_text, re.M | re.S)
    if not m:
        raise ValueError(f"module {module!r} not found in the Verilog")
    body = m.group(2)
    ports = {}
    for d, _signed, _rng, hi, lo, name in _PORT_RE.findall(body):
        width = (int(hi) - int(lo) + 1) if hi else 1
        ports[name] = {"direction": d, "width": width}
    return ports


def check_ports_match(ports: list[dict], verilog_text: str, module: str) -> None:
    """Raise ``ValueError`` unless ``ports`` equals the Verilog module's port list."""
    vp = verilog_ports(verilog_text, module)
    mine = {p["name"]: {"direction": p["direction"], "width": p["width"]} for p in ports}
    if mine != vp:
        raise ValueError(f"port list of {module} does not match its Verilog: "
                         f"described {mine}, Verilog {vp}")


def instance_template(module: str, ports: list[dict], header: str = "") -> str:
    """A Verilog snippet instantiating ``module``: one wire per port (width, signedness)
    and the instance ``u_<module>`` connecting them, with each structured payload's fields
    listed beside its wire (LSB offset and width). Paste it into a module and rename the
    wires."""
    lines = [f"// {header}" if header else "", f"// Instantiation template of {module}: "
             "declare (or rename) the wires, then keep the instance.", ""]
    for p in ports:
        rng = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        sgn = "signed " if p.get("signed") else ""
        note = f"  // {p['direction']}"
        if p.get("fields"):
            note += ": " + ", ".join(f"{f['path']} [{f['offset'] + f['width'] - 1}:"
                                     f"{f['offset']}]" for f in p["fields"])
        lines.append(f"wire {sgn}{rng}{p['name']};{note}")
    lines += ["", f"{module} u_{module} ("]
    lines += [f"    .{p['name']}({p['name']}){',' if k < len(ports) - 1 else ''}"
              for k, p in enumerate(ports)]
    lines.append(");")
    return "\n".join(line for line in lines[1 if not header else 0:]) + "\n"


#: Verilator -Wall warnings that the Verilog Amaranth/Yosys writes always trips, and why
#: each is harmless; ``<name>.vlt`` waives exactly these for the generated files.
LINT_WAIVERS = {
    "DECLFILENAME": "submodules are written into the top's file as <top>.<sub>",
    "PROCASSINIT": "registers carry their reset value as a declaration initialiser (the "
                   "power-on value) as well as in the reset logic",
    "UNUSEDSIGNAL": "Yosys keeps full-width temporaries of which only some bits are used, "
                    "and a time-zero trigger register",
    "WIDTHEXPAND": "operands are written at their natural widths and extended by Verilog's "
                   "rules, which are the Amaranth semantics the design was checked with",
    "WIDTHTRUNC": "results are truncated by assignment, likewise",
}


def lint_waivers(files: list[str], header: str = "") -> str:
    """A Verilator configuration file (``verilator --lint-only -Wall <name>.vlt <name>.v``)
    waiving :data:`LINT_WAIVERS` for ``files`` only, each with its reason."""
    out = ["`verilator_config"]
    if header:
        out.append(f"// {header}")
    out.append("// Lint waivers of the generated Verilog: with this file, verilator "
               "--lint-only -Wall reports nothing.")
    for rule, why in LINT_WAIVERS.items():
        out.append(f"// {rule}: {why}")
        out += [f'lint_off -rule {rule} -file "*{f}"' for f in files]
    return "\n".join(out) + "\n"
