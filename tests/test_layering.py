"""The package's layering, from the source (``docs/architecture.md``, "Who imports whom").

An AST scan of every package module: ``golden`` (the specification and the host/device
contract) imports no other part and no Amaranth, and its bit-exact spec none of the float
research code; ``hw`` never imports ``host`` and ``host`` never imports ``hw``; inside the
package every import of the package is relative; no ``elaborate`` in ``hw`` is longer than
220 lines; every ``wiring.Component`` has the docstring skeleton. And ``lnsmadam.host``
imports with Amaranth absent.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["golden", "hw", "sim", "boards", "host", "sweep", "cli"]
#: the float research code inside golden/: the spec must not depend on it
FLOAT_RESEARCH = {"lnsmadam.golden.optim", "lnsmadam.golden.baseline",
                  "lnsmadam.golden.experiment"}
ELABORATE_MAX_LINES = 220


def _modules():
    """``{module name: (path, ast)}`` of every package module."""
    out = {}
    for part in PARTS:
        for path in sorted((ROOT / part).rglob("*.py")):
            rel = path.relative_to(ROOT / part).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join(["lnsmadam", part, *parts])] = (path, ast.parse(path.read_text()))
    return out


MODULES = _modules()


def _package(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def _imports(name: str, path: Path, tree) -> list[tuple[str, bool, int]]:
    """``(imported module, absolute?, line)`` for every import in the module (also inside
    functions); ``from X import y`` counts as X and, if that is a module, X.y."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, True, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(name, path).split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.append((mod, node.level == 0, node.lineno))
            out += [(f"{mod}.{a.name}", node.level == 0, node.lineno) for a in node.names
                    if f"{mod}.{a.name}" in MODULES]
    return out


def _part(module: str) -> str | None:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[0] == "lnsmadam" else None


def _offenders(rule) -> list[str]:
    bad = []
    for name, (path, tree) in MODULES.items():
        for mod, absolute, line in _imports(name, path, tree):
            if rule(name, mod, absolute):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    return bad


def test_every_part_is_scanned():
    assert {_part(n) for n in MODULES} == set(PARTS)
    assert "lnsmadam.hw.engine.engine" in MODULES and "lnsmadam.golden.link" in MODULES


def test_golden_imports_no_other_part_and_no_amaranth():
    assert _offenders(lambda n, mod, a: _part(n) == "golden" and (
        (_part(mod) not in (None, "golden")) or mod.split(".")[0] == "amaranth")) == []


def test_the_spec_does_not_import_the_float_research_code():
    assert _offenders(lambda n, mod, a: _part(n) == "golden" and n not in FLOAT_RESEARCH
                      and mod in FLOAT_RESEARCH) == []


#: the layers of docs/architecture.md: a part imports only parts of a lower layer
LAYER = {"golden": 0, "hw": 1, "host": 1, "sim": 2, "boards": 3, "sweep": 4, "cli": 5}
#: ``python -m lnsmadam.boards.fixture record`` runs the command under a recording transport
UPWARD = {("lnsmadam.boards.fixture", "lnsmadam.cli.main")}


def test_parts_import_only_parts_below():
    def upward(n, mod, a):
        mine, theirs = _part(n), _part(mod)
        return (theirs is not None and theirs != mine and LAYER[theirs] >= LAYER[mine]
                and (n, mod) not in UPWARD)
    assert _offenders(upward) == []


def test_hw_does_not_import_host():
    assert _offenders(lambda n, mod, a: _part(n) == "hw" and _part(mod) == "host") == []


def test_host_does_not_import_hw_or_amaranth():
    assert _offenders(lambda n, mod, a: _part(n) == "host" and (
        _part(mod) in ("hw", "sim", "boards", "cli") or mod.split(".")[0] == "amaranth")) == []


def test_imports_of_the_package_are_relative():
    assert _offenders(lambda n, mod, a: a and mod.split(".")[0] == "lnsmadam") == []


def test_relative_imports_resolve():
    def missing(n, mod, a):
        if a or mod in MODULES:
            return False
        return not any(m.startswith(mod + ".") for m in MODULES)
    assert _offenders(missing) == []


def test_no_long_elaborate_in_hw():
    long = []
    for name, (path, tree) in MODULES.items():
        if _part(name) != "hw":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "elaborate":
                n = node.end_lineno - node.lineno + 1
                if n > ELABORATE_MAX_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} elaborate is {n} lines")
    assert long == []


SKELETON = ["Parameters", "Members", "Latency", "Throughput", "Notes"]


def test_component_docstrings_follow_the_skeleton():
    """Every ``wiring.Component`` in the package documents Parameters, Members (its ports),
    Latency, Throughput and Notes, in this order (numpydoc sections)."""
    classes = [(path, node) for path, tree in MODULES.values() for node in ast.walk(tree)
               if isinstance(node, ast.ClassDef)]
    by_name = {}
    for path, node in classes:
        by_name.setdefault(node.name, []).append(node)

    def is_component(node, seen=()):
        for b in node.bases:
            base = ast.unparse(b)
            if base in ("wiring.Component", "Component"):
                return True
            if base not in seen and any(is_component(n, seen + (base,))
                                        for n in by_name.get(base, [])):
                return True
        return False

    found, bad = [], []
    for path, node in classes:
        if not is_component(node):
            continue
        found.append(node.name)
        lines = [ln.strip() for ln in (ast.get_docstring(node) or "").splitlines()]
        heads = [lines[i] for i in range(len(lines) - 1)
                 if lines[i] in SKELETON and set(lines[i + 1]) == {"-"}]
        if heads != SKELETON:
            bad.append(f"{path.relative_to(ROOT)}: {node.name} has {heads}")
    assert {"Engine", "PassUnit", "Link", "SoC", "LNSMAC", "MadamUpdate"} <= set(found)
    assert found.count("UARTRx") == 2           # hw/uart.py and boards/standin.py
    assert bad == []


_BLOCKED = """
import importlib, importlib.abc, pkgutil, sys

class NoAmaranth(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "amaranth":
            raise ImportError(f"amaranth is blocked ({name})")
        return None

sys.meta_path.insert(0, NoAmaranth())
import lnsmadam.host
for info in pkgutil.iter_modules(lnsmadam.host.__path__):
    importlib.import_module("lnsmadam.host." + info.name)
from lnsmadam.golden.soc import SoCConfig
SoCConfig(sizes=(64, 32, 10), lanes=4).identify_blob()    # the contract needs no hardware
print(" ".join(sorted(m for m in sys.modules if m.startswith("lnsmadam."))))
"""


def test_host_imports_without_amaranth():
    out = subprocess.run([sys.executable, "-c", _BLOCKED], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.split()
    assert {"lnsmadam.host.device", "lnsmadam.host.session", "lnsmadam.host.transport",
            "lnsmadam.host.faults"} <= set(loaded)
    assert [m for m in loaded if _part(m) not in ("golden", "host")] == []


@pytest.mark.parametrize("part", PARTS)
def test_part_docstring_names_no_missing_module(part):
    """The module lists in the parts' docstrings name modules that exist."""
    import re
    doc = ast.get_docstring(MODULES[f"lnsmadam.{part}"][1]) or ""
    for ref in re.findall(r"lnsmadam\.(?:\w+\.)*\w+", doc):
        assert ref in MODULES or any(m.startswith(ref + ".") for m in MODULES) or \
            ref.rsplit(".", 1)[0] in MODULES, ref
