"""A small Liberty (.lib) reader: cells, areas, pins, Boolean functions and flip-flops.

Only what the ASIC flow needs: each cell's ``area``, ``cell_leakage_power``, its pins
(direction, capacitance, ``function``, ``three_state``) and its ``ff`` group (state names,
``next_state``, ``clocked_on``). Timing and power tables are left to OpenSTA.

:func:`parse_function` turns a Liberty Boolean expression into a tree, :func:`to_python`
into a NumPy bitwise expression over uint64 words (the gate-level simulator's cell models,
:mod:`.gatesim`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Pin", "Cell", "Library", "read_liberty", "parse_liberty", "parse_function",
           "to_python", "func_inputs", "eval_function"]


@dataclass
class Pin:
    name: str
    direction: str                       # "input", "output", "inout", "internal"
    capacitance: float = 0.0
    function: str | None = None
    three_state: str | None = None
    clock: bool = False


@dataclass
class Cell:
    name: str
    area: float = 0.0
    leakage: float = 0.0
    pins: dict[str, Pin] = field(default_factory=dict)
    #: ``(state, state_inverted, next_state, clocked_on)`` of an ``ff`` group, else None
    ff: tuple[str, str, str, str] | None = None
    latch: bool = False
    dont_use: bool = False

    @property
    def inputs(self) -> list[str]:
        return [p.name for p in self.pins.values() if p.direction == "input"]

    @property
    def outputs(self) -> list[str]:
        return [p.name for p in self.pins.values() if p.direction == "output"]


@dataclass
class Library:
    name: str
    cells: dict[str, Cell]
    attrs: dict[str, str]

    @property
    def time_unit(self) -> str:
        return self.attrs.get("time_unit", "1ns")


# -- the group/attribute syntax ------------------------------------------------------------
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|[{}();:,]|[^\s{}();:,"]+')


def _tokens(text: str):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = text.replace("\\\n", " ")
    return _TOKEN.findall(text)


class _Group:
    __slots__ = ("kind", "args", "attrs", "groups")

    def __init__(self, kind, args):
        self.kind, self.args, self.attrs, self.groups = kind, args, {}, []


def _parse(tokens) -> _Group:
    root = _Group("root", [])
    stack = [root]
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t == "}":
            stack.pop()
            i += 1
            continue
        if i + 1 < n and tokens[i + 1] == ":":          # simple attribute  name : value ;
            j = i + 2
            val = []
            while j < n and tokens[j] not in (";", "}"):
                val.append(tokens[j])
                j += 1
            stack[-1].attrs[t] = " ".join(val).strip('"')
            i = j + 1 if j < n and tokens[j] == ";" else j
            continue
        if i + 1 < n and tokens[i + 1] == "(":          # group or complex attribute
            j = i + 2
            args = []
            while j < n and tokens[j] != ")":
                if tokens[j] != ",":
                    args.append(tokens[j].strip('"'))
                j += 1
            j += 1
            if j < n and tokens[j] == "{":
                g = _Group(t, args)
                stack[-1].groups.append(g)
                stack.append(g)
                i = j + 1
            else:
                stack[-1].attrs.setdefault(t, ",".join(args))
                i = j + 1 if j < n and tokens[j] == ";" else j
            continue
        i += 1                                          # stray token (e.g. a lone ";")
    return root


def parse_liberty(text: str) -> Library:
    root = _parse(_tokens(text))
    libs = [g for g in root.groups if g.kind == "library"]
    if not libs:
        raise ValueError("no library group in the Liberty text")
    lib = libs[0]
    cells = {}
    for g in lib.groups:
        if g.kind != "cell" or not g.args:
            continue
        c = Cell(g.args[0], area=float(g.attrs.get("area", 0) or 0),
                 leakage=float(g.attrs.get("cell_leakage_power", 0) or 0),
                 dont_use=g.attrs.get("dont_use", "false") == "true")
        for sub in g.groups:
            if sub.kind == "pin":
                for name in sub.args:
                    c.pins[name] = Pin(name, sub.attrs.get("direction", "input"),
                                       float(sub.attrs.get("capacitance", 0) or 0),
                                       sub.attrs.get("function"), sub.attrs.get("three_state"),
                                       sub.attrs.get("clock", "false") == "true")
            elif sub.kind == "ff":
                c.ff = (sub.args[0], sub.args[1] if len(sub.args) > 1 else "",
                        sub.attrs.get("next_state", ""), sub.attrs.get("clocked_on", ""))
            elif sub.kind in ("latch", "statetable"):
                c.latch = True
        cells[c.name] = c
    return Library(lib.args[0] if lib.args else "", cells, dict(lib.attrs))


def read_liberty(path) -> Library:
    return parse_liberty(Path(path).read_text(errors="replace"))


# -- Boolean functions -------------------------------------------------------------------
# Liberty precedence, highest first: ' and ! (NOT), ^ (XOR), & * or juxtaposition (AND),
# + | (OR).
_FTOK = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_\[\]\.]*|[01]|[!'^&*+|()])")


def _ftokens(s: str) -> list[str]:
    out, pos = [], 0
    s = s.strip()
    while pos < len(s):
        m = _FTOK.match(s, pos)
        if not m:
            raise ValueError(f"bad character in Liberty function {s!r} at {pos}")
        out.append(m.group(1))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    return out


def parse_function(s: str):
    """Tree of a Liberty function: ``("var", name)``, ``("const", 0|1)``, ``("not", x)``,
    ``("and"|"or"|"xor", x, y)``."""
    toks = _ftokens(s)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        if pos >= len(toks):
            raise ValueError(f"Liberty function {s!r} ends early")
        pos += 1
        return toks[pos - 1]

    def primary():
        t = peek()
        if t is None:
            raise ValueError(f"Liberty function {s!r} ends early")
        if t == "!":
            take()
            return ("not", primary_post())
        if t == "(":
            take()
            e = or_()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {s!r}")
            return e
        take()
        if t in ("0", "1"):
            return ("const", int(t))
        if not re.match(r"[A-Za-z_]", t):
            raise ValueError(f"unexpected {t!r} in Liberty function {s!r}")
        return ("var", t)

    def primary_post():
        e = primary()
        while peek() == "'":
            take()
            e = ("not", e)
        return e

    def xor_():
        e = primary_post()
        while peek() == "^":
            take()
            e = ("xor", e, primary_post())
        return e

    def and_():
        e = xor_()
        while True:
            t = peek()
            if t in ("&", "*"):
                take()
                e = ("and", e, xor_())
            elif t is not None and (t in ("(", "!", "0", "1") or re.match(r"[A-Za-z_]", t)):
                e = ("and", e, xor_())              # juxtaposition is AND
            else:
                return e

    def or_():
        e = and_()
        while peek() in ("+", "|"):
            take()
            e = ("or", e, and_())
        return e

    tree = or_()
    if pos != len(toks):
        raise ValueError(f"trailing tokens in Liberty function {s!r}: {toks[pos:]}")
    return tree


def func_inputs(tree) -> list[str]:
    """Variable names of a function tree, in first-use order."""
    out = []

    def walk(t):
        if t[0] == "var":
            if t[1] not in out:
                out.append(t[1])
        elif t[0] != "const":
            for x in t[1:]:
                walk(x)
    walk(tree)
    return out


def to_python(tree, name=lambda v: v) -> str:
    """A Python bitwise expression (``~ & | ^``; constants ``ZERO``/``ONES``) of a tree."""
    k = tree[0]
    if k == "var":
        return name(tree[1])
    if k == "const":
        return "ONES" if tree[1] else "ZERO"
    if k == "not":
        return f"(~{to_python(tree[1], name)})"
    op = {"and": "&", "or": "|", "xor": "^"}[k]
    return f"({to_python(tree[1], name)} {op} {to_python(tree[2], name)})"


def eval_function(tree, env: dict) -> int:
    """Value (0/1) of a tree for 0/1 variable values ``env``."""
    k = tree[0]
    if k == "var":
        return int(env[tree[1]]) & 1
    if k == "const":
        return tree[1]
    if k == "not":
        return 1 - eval_function(tree[1], env)
    a, b = eval_function(tree[1], env), eval_function(tree[2], env)
    return {"and": a & b, "or": a | b, "xor": a ^ b}[k]
